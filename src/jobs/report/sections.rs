//! Building the report layout from the record: the summary, fields and findings sections
//! (the privacy section is in `privacy.rs`).

use std::fmt::Write as _;

use serde_json::Value;

use super::findings::{Finding, Level};
use super::format::{bytes, clip, join_or_none, law_of, num, retention};
use super::layout::{Block, Piece, Report, Section, Table, opt, t};
use super::privacy::privacy_section;
use super::read::{Doc, get_text, scalar, strings};

pub(super) fn build(d: &Doc) -> Report {
    let findings = d.findings();
    let policy = d.policy_label();
    let heading = match &policy {
        Some(p) => format!("Compliance report: {p}"),
        None => "Compliance report".into(),
    };
    let mut subtitle = t("Restated from the cloakline provenance record");
    if let Some(id) = get_text(d.root, "@id") {
        subtitle.push(Piece::Text(format!(" {id}")));
    }
    if let Some(at) = get_text(d.root, "generatedAtTime") {
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
    let controller = d
        .controller
        .and_then(|c| get_text(c, "label"))
        .or_else(|| d.summary("controller").and_then(scalar));
    kv.pair("Controller", opt(controller));
    let purpose = d
        .run_text("cl:purpose")
        .or_else(|| d.summary("purpose").and_then(scalar));
    kv.pair("Purpose", opt(purpose));
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
        if let Some(h) = get_text(p, "cl:sha256") {
            pol.push(Piece::Text(", SHA-256 ".into()));
            pol.push(Piece::Hash(h));
        }
        if let Some(path) = get_text(p, "cl:path") {
            pol.push(Piece::Text(format!(", file {path}")));
        }
    }
    kv.pair("Policy", pol);
    kv.pair("Started", opt(d.run_text("startedAtTime")));
    kv.pair("Ended", opt(d.run_text("endedAtTime")));
    kv.pair(
        "Fields",
        t(format!(
            "{} output, {} dropped",
            d.fields.len(),
            d.dropped.len()
        )),
    );
    kv.pair(
        "Recipients",
        opt((!d.recipients().is_empty()).then(|| d.recipients().join("; "))),
    );
    kv.pair(
        "Data subjects",
        opt(join_or_none(&strings(
            d.run.and_then(|r| r.get("cl:dataSubjects")),
        ))),
    );
    kv.pair(
        "Retention",
        opt(d.run_text("cl:retention").map(|r| retention(&r))),
    );
    let transfers: Vec<String> = d
        .transfers()
        .iter()
        .map(|t| {
            format!(
                "{} ({})",
                get_text(t, "recipient").unwrap_or_else(|| "—".into()),
                get_text(t, "country").unwrap_or_else(|| "—".into())
            )
        })
        .collect();
    if !transfers.is_empty() {
        kv.pair("Cross-border transfers", t(transfers.join("; ")));
    }
    kv.pair("Signature", t(signature(d.root)));
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
    blocks.push(Block::H3("Datasets".into()));
    if d.datasets.is_empty() {
        blocks.push(Block::Para(t("No datasets recorded.")));
    } else {
        let mut ds = Table::new(vec!["Role", "Path", "Format", "Rows", "Bytes", "SHA-256"]);
        ds.num = vec![3, 4];
        for n in &d.datasets {
            let role = if n.get("wasGeneratedBy").is_some() {
                "output"
            } else {
                "input"
            };
            ds.rows.push(vec![
                t(role),
                opt(get_text(n, "cl:path")),
                opt(get_text(n, "cl:format")),
                opt(n.get("cl:rows").and_then(num)),
                opt(n.get("cl:bytes").and_then(bytes)),
                match get_text(n, "cl:sha256") {
                    Some(h) => vec![Piece::Hash(h)],
                    None => t("—"),
                },
            ]);
        }
        blocks.push(Block::Table(ds));
    }
    Section {
        id: "summary",
        title: "Summary",
        blocks,
    }
}

fn signature(root: &Value) -> String {
    match root.get("cl:signature") {
        Some(s @ Value::Object(_)) => {
            let mut out = format!(
                "signed: {}",
                get_text(s, "algorithm").unwrap_or_else(|| "unknown algorithm".into())
            );
            if let Some(k) = get_text(s, "keyId") {
                let _ = write!(out, " with key {k}");
            }
            if let Some(f) = get_text(s, "keyFingerprint") {
                let _ = write!(out, " (fingerprint {})", clip(&f, 32));
            }
            out.push_str("; not checked by this report");
            out
        }
        _ => "not signed".into(),
    }
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
                opt(get_text(n, "cl:column").or_else(|| get_text(n, "cl:sourceColumn"))),
                opt(get_text(n, "cl:dataType")),
                opt(get_text(n, "cl:droppedBecause")),
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
