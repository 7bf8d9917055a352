//! Building the report layout from the record: the summary, fields and findings sections
//! (the privacy section is in `privacy.rs`).

use std::fmt::Write as _;

use crate::provenance::record::Signature;

use super::findings::{Finding, Level};
use super::format::{bytes, clip, group_u, join_or_none, law_of, retention};
use super::layout::{Block, Piece, Report, Section, Table, opt, t};
use super::privacy::privacy_section;
use super::read::{Doc, non_empty, some};

pub(super) fn build(d: &Doc) -> Report {
    let findings = d.findings();
    let policy = d.policy_label();
    let heading = match &policy {
        Some(p) => format!("Compliance report: {p}"),
        None => "Compliance report".into(),
    };
    let mut subtitle = t("Restated from the cloakline provenance record");
    if let Some(id) = non_empty(&d.record.id) {
        subtitle.push(Piece::Text(format!(" {id}")));
    }
    if let Some(at) = non_empty(&d.record.generated_at) {
        subtitle.push(Piece::Text(format!(", generated {at}")));
    }
    subtitle.push(Piece::Text(".".into()));
    Report {
        heading,
        subtitle,
        sections: vec![
            summary_section(d, policy, &findings),
            fields_section(d),
            privacy_section(d),
            super::release::release_section(d),
            findings_section(findings),
        ],
        footer: "This report restates the provenance record. It does not check the output's \
                 SHA-256, the policy file or the signature: cloakline verify does. Statuses are \
                 the record's own: pseudonymised, encrypted, masked or generalized data is still \
                 personal data."
            .into(),
    }
}

fn summary_section(d: &Doc, policy: Option<String>, findings: &[Finding]) -> Section {
    let mut kv = Table::kv();
    kv.pair("Controller", opt(d.controller()));
    kv.pair("Purpose", opt(d.purpose()));
    let js: Vec<String> = d
        .jurisdictions
        .iter()
        .map(|j| match law_of(j) {
            Some(l) => format!("{j} ({l})"),
            None => j.clone(),
        })
        .collect();
    kv.pair("Jurisdictions", opt(join_or_none(&js)));

    let mut pol = opt(policy);
    if let Some(p) = d.policy {
        if let Some(h) = non_empty(&p.sha256) {
            pol.push(Piece::Text(", SHA-256 ".into()));
            pol.push(Piece::Hash(h));
        }
        if let Some(path) = non_empty(&p.path) {
            pol.push(Piece::Text(format!(", file {path}")));
        }
    }
    kv.pair("Policy", pol);
    kv.pair("Started", opt(d.run.and_then(|r| non_empty(&r.started))));
    kv.pair("Ended", opt(d.run.and_then(|r| non_empty(&r.ended))));
    kv.pair(
        "Fields",
        t(format!(
            "{} output, {} dropped",
            d.fields.len(),
            d.dropped.len()
        )),
    );
    let recipients = d.recipients();
    kv.pair(
        "Recipients",
        opt((!recipients.is_empty()).then(|| recipients.join("; "))),
    );
    kv.pair("Data subjects", opt(join_or_none(&d.data_subjects())));
    kv.pair(
        "Retention",
        opt(d
            .run
            .and_then(|r| some(&r.retention))
            .map(|r| retention(&r))),
    );
    let transfers: Vec<String> = d
        .transfers()
        .iter()
        .map(|t| {
            format!(
                "{} ({})",
                non_empty(&t.recipient).unwrap_or_else(|| "—".into()),
                non_empty(&t.country).unwrap_or_else(|| "—".into())
            )
        })
        .collect();
    if !transfers.is_empty() {
        kv.pair("Cross-border transfers", t(transfers.join("; ")));
    }
    kv.pair("Signature", t(signature(d.record.signature.as_ref())));
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    kv.pair(
        "Findings",
        t(format!(
            "{} review, {} warning, {} info (see Findings)",
            count(Level::Review),
            count(Level::Warning),
            count(Level::Info)
        )),
    );

    let mut blocks = vec![Block::Table(kv)];
    datasets_blocks(d, &mut blocks);
    Section {
        id: "summary",
        title: "Summary",
        blocks,
    }
}

fn datasets_blocks(d: &Doc, blocks: &mut Vec<Block>) {
    blocks.push(Block::H3("Datasets".into()));
    if d.datasets.is_empty() {
        blocks.push(Block::Para(t("No datasets recorded.")));
        return;
    }
    let mut ds = Table::new(vec!["Role", "Path", "Format", "Rows", "Bytes", "SHA-256"]);
    ds.num = vec![3, 4];
    for n in &d.datasets {
        let role = if n.is_output() { "output" } else { "input" };
        ds.rows.push(vec![
            t(role),
            opt(non_empty(&n.path)),
            opt(non_empty(&n.format)),
            opt(n.rows.map(group_u)),
            opt(n.bytes.map(bytes)),
            match some(&n.sha256) {
                Some(h) => vec![Piece::Hash(h)],
                None => t("—"),
            },
        ]);
    }
    blocks.push(Block::Table(ds));
}

fn signature(s: Option<&Signature>) -> String {
    let Some(s) = s else {
        return "not signed".into();
    };
    let mut out = format!(
        "signed: {}",
        non_empty(&s.algorithm).unwrap_or_else(|| "unknown algorithm".into())
    );
    if let Some(k) = non_empty(&s.key_id) {
        let _ = write!(out, " with key {k}");
    }
    if let Some(f) = non_empty(&s.key_fingerprint) {
        let _ = write!(out, " (fingerprint {})", clip(&f, 32));
    }
    out.push_str("; not checked by this report");
    out
}

fn fields_section(d: &Doc) -> Section {
    let mut blocks = Vec::new();
    if d.fields.is_empty() {
        blocks.push(Block::Para(t("No output fields recorded.")));
    } else {
        let mut tb = Table::new(vec![
            "Source → output",
            "Action",
            "Lawful basis",
            "Category",
            "Sensitive / special category",
            "Status",
            "Key",
        ]);
        for f in &d.fields {
            tb.rows.push(vec![
                t(f.name()),
                t(f.action_text()),
                t(f.bases_text()),
                opt(f.category.clone().or_else(|| f.term.clone())),
                opt(f.sensitivity()),
                opt(f.status.clone()),
                opt(f.key_text()),
            ]);
        }
        blocks.push(Block::Table(tb));
    }
    blocks.push(Block::H3("Dropped fields".into()));
    if d.dropped.is_empty() {
        blocks.push(Block::Para(t("None.")));
    } else {
        let mut tb = Table::new(vec!["Field", "Type", "Why"]);
        for n in &d.dropped {
            tb.rows.push(vec![
                opt(non_empty(&n.column)),
                opt(non_empty(&n.data_type)),
                opt(some(&n.dropped_because)),
            ]);
        }
        blocks.push(Block::Table(tb));
    }
    Section {
        id: "fields",
        title: "Fields",
        blocks,
    }
}

fn findings_section(mut findings: Vec<Finding>) -> Section {
    let mut blocks = vec![Block::Para(t(
        "Points a reviewer must look at. Review: needs a reviewer's judgement. Warning: \
         something is likely missing or left identifying. Info: for awareness.",
    ))];
    // Stable: within a level, document order is kept.
    findings.sort_by_key(|f| f.level);
    if findings.is_empty() {
        blocks.push(Block::Para(t("No findings.")));
    } else {
        let mut tb = Table::new(vec!["Level", "Field", "Finding"]);
        for f in findings {
            tb.rows
                .push(vec![vec![Piece::Level(f.level)], opt(f.field), t(f.text)]);
        }
        blocks.push(Block::Table(tb));
    }
    Section {
        id: "findings",
        title: "Findings",
        blocks,
    }
}
