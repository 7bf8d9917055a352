//! The privacy-model section: models and settings, quasi-identifiers, sensitive attributes,
//! risk and loss before and after enforcement, and the class-size charts.

use std::fmt::Write as _;

use serde_json::Value;

use crate::provenance::record::{Assessment, ModelsRecord, PrivacyNode};

use super::format::{finite, float, group_u, human, join_or_none, pct};
use super::layout::{Block, Bucket, Chart, Section, Table, opt, t};
use super::read::{Doc, enum_text, non_empty};

pub(super) fn privacy_section(d: &Doc) -> Section {
    let mut blocks = Vec::new();
    let Some(p) = d.privacy else {
        blocks.push(Block::Para(t(
            "No privacy model was applied: the record holds no dataset-level evidence of \
             re-identification risk.",
        )));
        return Section {
            id: "privacy",
            title: "Privacy model",
            blocks,
        };
    };
    blocks.push(Block::Para(t(
        "Dataset-level evidence of re-identification risk for the quasi-identifiers listed. \
         Linkage through other attributes or outside data is not measured.",
    )));
    models_blocks(&p.models, &mut blocks);
    settings_blocks(p, &mut blocks);
    quasi_identifier_blocks(p, &mut blocks);
    sensitive_attribute_blocks(p, &mut blocks);
    risk_and_loss_blocks(&p.achieved, &p.before, &mut blocks);
    class_size_charts(&p.achieved, &p.before, &mut blocks);
    Section {
        id: "privacy",
        title: "Privacy model",
        blocks,
    }
}

/// A recorded figure as text; "—" when it is not a number.
fn fig(f: f64) -> String {
    finite(f).map(float).unwrap_or_else(|| "—".into())
}

/// The privacy models applied and their parameters.
fn models_blocks(models: &ModelsRecord, blocks: &mut Vec<Block>) {
    let mut items = Vec::new();
    if let Some(k) = models.k {
        items.push(t(format!("k-anonymity with k = {}", group_u(k))));
    }
    for l in &models.l_diversity {
        let mut s = format!(
            "{} l-diversity of {}: l = {}",
            non_empty(&l.variant).unwrap_or_else(|| "distinct".into()),
            non_empty(&l.attribute).unwrap_or_else(|| "—".into()),
            fig(l.l)
        );
        if let Some(c) = l.c.and_then(finite) {
            let _ = write!(s, ", c = {}", float(c));
        }
        items.push(t(s));
    }
    for tc in &models.t_closeness {
        let mut s = format!(
            "t-closeness of {}: t = {}",
            non_empty(&tc.attribute).unwrap_or_else(|| "—".into()),
            fig(tc.t)
        );
        if let Some(dist) = non_empty(&tc.distance) {
            let _ = write!(s, " ({} distance)", human(&dist));
        }
        items.push(t(s));
    }
    blocks.push(Block::H3("Models".into()));
    if items.is_empty() {
        blocks.push(Block::Para(t("No model parameters recorded.")));
    } else {
        blocks.push(Block::List(items));
    }
}

/// Whether the models hold, what was suppressed and released, and the search settings.
fn settings_blocks(p: &PrivacyNode, blocks: &mut Vec<Block>) {
    let a = &p.achieved;
    let mut kv = Table::kv();
    kv.pair("Models satisfied", t(yes_no(a.satisfied)));
    kv.pair("k achieved (smallest class)", t(group_u(a.smallest_class)));
    // Class sizes and k count people when the policy names a subject column.
    kv.pair("Classes count", t(a.counted.clone()));
    let suppressed = group_u(a.suppressed);
    kv.pair(
        "Suppressed records",
        t(match finite(a.suppressed_fraction) {
            Some(f) => format!("{suppressed} ({})", pct(f)),
            None => suppressed,
        }),
    );
    kv.pair(
        "Records released",
        t(format!(
            "{} of {}",
            group_u(a.records_released),
            group_u(a.records)
        )),
    );
    kv.pair(
        "On violation",
        opt(non_empty(&p.on_violation).map(|s| human(&s))),
    );
    kv.pair(
        "Maximum suppression",
        opt(finite(p.max_suppression).map(pct)),
    );
    kv.pair("Loss metric", opt(non_empty(&p.metric)));
    if let Some(s) = &p.search {
        let mut text = format!(
            "{} of {} lattice nodes evaluated",
            group_u(s.nodes_evaluated),
            group_u(s.lattice_nodes)
        );
        if let Some(sec) = finite(s.seconds) {
            let _ = write!(text, " in {sec:.3} s");
        }
        kv.pair("Search", t(text));
    }
    blocks.push(Block::Table(kv));
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn quasi_identifier_blocks(p: &PrivacyNode, blocks: &mut Vec<Block>) {
    blocks.push(Block::H3("Quasi-identifiers".into()));
    if p.quasi_identifiers.is_empty() {
        blocks.push(Block::Para(t("None recorded.")));
        return;
    }
    let mut tb = Table::new(vec![
        "Field",
        "Hierarchy",
        "Chosen level",
        "Max level",
        "Released as",
    ]);
    tb.num = vec![2, 3];
    for q in &p.quasi_identifiers {
        // An ARX file is shown by its path; policy levels by the kind of hierarchy.
        let hierarchy = match &q.source {
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => non_empty(&q.hierarchy)
                .map(|h| human(&h))
                .unwrap_or_else(|| "—".into()),
        };
        tb.rows.push(vec![
            opt(non_empty(&q.field)),
            t(hierarchy),
            t(group_u(q.chosen_level as u64)),
            t(group_u(q.levels as u64)),
            opt(released_as(&p.achieved, &q.field)),
        ]);
    }
    blocks.push(Block::Table(tb));
}

/// The effective transformation of quasi-identifier `field` at its chosen level, e.g.
/// `generalize (kind prefix, keepPrefix 2)`; `None` in records that do not hold it.
fn released_as(a: &Assessment, field: &str) -> Option<String> {
    let tr = a.transformations.iter().find(|x| x.field == field)?;
    let params: Vec<String> = tr
        .params
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k} {s}"),
            v => format!("{k} {v}"),
        })
        .collect();
    let action = non_empty(&tr.action)?;
    Some(match join_or_none(&params) {
        Some(p) => format!("{action} ({p})"),
        None => action,
    })
}

fn sensitive_attribute_blocks(p: &PrivacyNode, blocks: &mut Vec<Block>) {
    // Sensitive attributes: l and t achieved.
    blocks.push(Block::H3("Sensitive attributes".into()));
    let sens = &p.achieved.sensitive;
    if sens.is_empty() {
        let declared: Vec<String> = p
            .sensitive_attributes
            .iter()
            .filter_map(|s| non_empty(s))
            .collect();
        blocks.push(Block::Para(t(match join_or_none(&declared) {
            Some(s) => format!("Declared: {s}; no l or t achieved is recorded."),
            None => "None declared: l-diversity and t-closeness were not assessed.".into(),
        })));
        return;
    }
    let mut tb = Table::new(vec!["Attribute", "Distinct l", "Entropy l", "t achieved"]);
    tb.num = vec![1, 2];
    for s in sens {
        let ts: Vec<String> =
            s.t.iter()
                .filter_map(|(kind, v)| {
                    let v = float(finite(*v)?);
                    Some(match enum_text(kind) {
                        Some(k) => format!("{v} ({})", human(&k)),
                        None => v,
                    })
                })
                .collect();
        tb.rows.push(vec![
            opt(non_empty(&s.attribute)),
            t(group_u(u64::from(s.distinct_l))),
            t(fig(s.entropy_l)),
            opt(join_or_none(&ts)),
        ]);
    }
    blocks.push(Block::Table(tb));
}

/// Risk figures with their record (snake_case) names, in the order they are written.
fn risks(a: &Assessment) -> [(&'static str, f64); 6] {
    let r = &a.risks;
    [
        ("prosecutor_highest", r.prosecutor_highest),
        ("prosecutor_average", r.prosecutor_average),
        ("records_at_risk", r.records_at_risk),
        ("journalist_highest", r.journalist_highest),
        ("marketer", r.marketer),
        ("sampling_fraction", r.sampling_fraction),
    ]
}

/// Loss figures by the names the metric keywords use (`precision`, `avg_class_size`).
fn losses(a: &Assessment) -> [(&'static str, f64); 7] {
    let l = &a.loss;
    [
        ("value", l.value),
        ("generalization_height", l.generalization_height),
        ("precision", l.precision),
        ("discernibility", l.discernibility),
        ("discernibility_normalized", l.discernibility_normalized),
        ("avg_class_size", l.avg_class_size),
        ("suppressed_fraction", l.suppressed_fraction),
    ]
}

fn risk_and_loss_blocks(achieved: &Assessment, before: &Assessment, blocks: &mut Vec<Block>) {
    blocks.push(Block::H3("Risk and loss".into()));
    let mut tb = Table::new(vec!["Measure", "Before enforcement", "Released"]);
    tb.num = vec![1, 2];
    let mut row = |label: String, f: &dyn Fn(&Assessment) -> String| {
        tb.rows.push(vec![t(label), t(f(before)), t(f(achieved))]);
    };
    row("Records released".into(), &|a: &Assessment| {
        group_u(a.records_released)
    });
    row("Suppressed records".into(), &|a: &Assessment| {
        group_u(a.suppressed)
    });
    row("Equivalence classes released".into(), &|a: &Assessment| {
        group_u(a.classes_released)
    });
    row("Smallest class (k achieved)".into(), &|a: &Assessment| {
        group_u(a.smallest_class)
    });
    row("Largest class".into(), &|a: &Assessment| {
        group_u(a.largest_class)
    });
    row("Average class size".into(), &|a: &Assessment| {
        fig(a.average_class_size)
    });
    row("Records in classes below k".into(), &|a: &Assessment| {
        group_u(a.records_below_k)
    });
    for (i, (key, _)) in risks(achieved).iter().enumerate() {
        let as_pct = *key != "sampling_fraction";
        row(risk_label(key), &move |a: &Assessment| {
            let x = risks(a)[i].1;
            match finite(x) {
                Some(x) if as_pct => pct(x),
                _ => fig(x),
            }
        });
    }
    let metric = non_empty(&achieved.loss.metric);
    let names = losses(achieved).map(|(k, _)| k);
    for (i, key) in names.iter().enumerate() {
        // "value" repeats the minimized metric when that has its own entry.
        if *key == "value" && metric.as_ref().is_some_and(|m| names.contains(&m.as_str())) {
            continue;
        }
        let label = if *key == "value" {
            format!(
                "Loss: {} (minimized)",
                human(metric.as_deref().unwrap_or("metric"))
            )
        } else if metric.as_deref() == Some(*key) {
            format!("Loss: {} (minimized)", human(key))
        } else {
            format!("Loss: {}", human(key))
        };
        row(label, &move |a: &Assessment| fig(losses(a)[i].1));
    }
    row("Models satisfied".into(), &|a: &Assessment| {
        yes_no(a.satisfied).into()
    });
    blocks.push(Block::Table(tb));
}

fn class_size_charts(achieved: &Assessment, before: &Assessment, blocks: &mut Vec<Block>) {
    for (src, title) in [
        (achieved, "Equivalence-class sizes, released data"),
        (before, "Equivalence-class sizes before enforcement"),
    ] {
        let buckets: Vec<Bucket> = src
            .size_distribution
            .iter()
            .map(|b| Bucket {
                label: non_empty(&b.size).unwrap_or_else(|| "—".into()),
                classes: b.classes,
                records: b.records,
            })
            .collect();
        if !buckets.is_empty() {
            blocks.push(Block::Chart(Chart {
                title: title.into(),
                buckets,
            }));
        }
    }
}

fn risk_label(key: &str) -> String {
    match key {
        "prosecutor_highest" => "Prosecutor risk, highest".into(),
        "prosecutor_average" => "Prosecutor risk, average".into(),
        "records_at_risk" => "Records at risk (prosecutor)".into(),
        "journalist_highest" => "Journalist risk, highest".into(),
        "marketer" => "Marketer risk".into(),
        "sampling_fraction" => "Sampling fraction".into(),
        other => format!("Risk: {}", human(other)),
    }
}
