//! The privacy-model section: models and settings, quasi-identifiers, sensitive attributes,
//! risk and loss before and after enforcement, and the class-size charts.

use std::fmt::Write as _;

use serde_json::Value;

use super::format::{human, join_or_none, num, pct};
use super::layout::{Block, Bucket, Chart, Section, Table, opt, t};
use super::read::{Doc, get_text, objects, scalar, strings};

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
    let achieved = p.get("cl:achieved");
    let before = p.get("cl:beforeEnforcement");
    let models = p.get("cl:models");

    models_blocks(models, &mut blocks);
    settings_blocks(p, achieved, &mut blocks);
    quasi_identifier_blocks(p, &mut blocks);
    sensitive_attribute_blocks(p, achieved, &mut blocks);
    risk_and_loss_blocks(achieved, before, &mut blocks);
    class_size_charts(achieved, before, &mut blocks);
    Section {
        id: "privacy",
        title: "Privacy model",
        blocks,
    }
}

/// The privacy models applied and their parameters.
fn models_blocks(models: Option<&Value>, blocks: &mut Vec<Block>) {
    // Models and settings.
    let mut items = Vec::new();
    if let Some(k) = models.and_then(|m| get_text(m, "k")) {
        items.push(t(format!("k-anonymity with k = {k}")));
    }
    for l in objects(models.and_then(|m| m.get("lDiversity"))) {
        let mut s = format!(
            "{} l-diversity of {}: l = {}",
            get_text(l, "variant").unwrap_or_else(|| "distinct".into()),
            get_text(l, "attribute").unwrap_or_else(|| "—".into()),
            get_text(l, "l").unwrap_or_else(|| "—".into())
        );
        if let Some(c) = get_text(l, "c") {
            let _ = write!(s, ", c = {c}");
        }
        items.push(t(s));
    }
    for tc in objects(models.and_then(|m| m.get("tCloseness"))) {
        let mut s = format!(
            "t-closeness of {}: t = {}",
            get_text(tc, "attribute").unwrap_or_else(|| "—".into()),
            get_text(tc, "t").unwrap_or_else(|| "—".into())
        );
        if let Some(dist) = get_text(tc, "distance") {
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
fn settings_blocks(p: &Value, achieved: Option<&Value>, blocks: &mut Vec<Block>) {
    let mut kv = Table::kv();
    let satisfied = achieved
        .and_then(|a| a.get("satisfied"))
        .and_then(Value::as_bool);
    kv.pair(
        "Models satisfied",
        t(match satisfied {
            Some(true) => "yes",
            Some(false) => "no",
            None => "—",
        }),
    );
    kv.pair(
        "k achieved (smallest class)",
        opt(achieved.and_then(|a| a.get("smallest_class")).and_then(num)),
    );
    let suppressed = achieved
        .and_then(|a| a.get("suppressed"))
        .or_else(|| p.get("cl:suppressedRecords"))
        .and_then(num);
    let fraction = achieved
        .and_then(|a| a.get("suppressed_fraction"))
        .and_then(Value::as_f64)
        .map(pct);
    kv.pair(
        "Suppressed records",
        opt(match (suppressed, fraction) {
            (Some(s), Some(f)) => Some(format!("{s} ({f})")),
            (s, f) => s.or(f),
        }),
    );
    kv.pair(
        "Records released",
        opt(achieved.and_then(|a| {
            let r = a.get("records_released").and_then(num)?;
            Some(match a.get("records").and_then(num) {
                Some(all) => format!("{r} of {all}"),
                None => r,
            })
        })),
    );
    kv.pair(
        "On violation",
        opt(get_text(p, "cl:onViolation").map(|s| human(&s))),
    );
    kv.pair(
        "Maximum suppression",
        opt(p.get("cl:maxSuppression").and_then(Value::as_f64).map(pct)),
    );
    kv.pair("Loss metric", opt(get_text(p, "cl:metric")));
    if let Some(s) = p.get("cl:search").filter(|s| s.is_object()) {
        let mut text = format!(
            "{} of {} lattice nodes evaluated",
            s.get("nodesEvaluated")
                .and_then(num)
                .unwrap_or_else(|| "—".into()),
            s.get("latticeNodes")
                .and_then(num)
                .unwrap_or_else(|| "—".into())
        );
        if let Some(sec) = s.get("seconds").and_then(Value::as_f64) {
            let _ = write!(text, " in {sec:.3} s");
        }
        kv.pair("Search", t(text));
    }
    blocks.push(Block::Table(kv));
}

fn quasi_identifier_blocks(p: &Value, blocks: &mut Vec<Block>) {
    // Quasi-identifiers.
    blocks.push(Block::H3("Quasi-identifiers".into()));
    let qis = objects(p.get("cl:quasiIdentifiers"));
    if qis.is_empty() {
        blocks.push(Block::Para(t("None recorded.")));
    } else {
        let mut tb = Table::new(vec!["Field", "Hierarchy", "Chosen level", "Max level"]);
        tb.num = vec![2, 3];
        for q in qis {
            let hierarchy = match q.get("source") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => get_text(q, "hierarchy")
                    .map(|h| human(&h))
                    .unwrap_or_else(|| "—".into()),
            };
            tb.rows.push(vec![
                opt(get_text(q, "field")),
                t(hierarchy),
                opt(get_text(q, "chosenLevel")),
                opt(get_text(q, "levels")),
            ]);
        }
        blocks.push(Block::Table(tb));
    }
}

fn sensitive_attribute_blocks(p: &Value, achieved: Option<&Value>, blocks: &mut Vec<Block>) {
    // Sensitive attributes: l and t achieved.
    blocks.push(Block::H3("Sensitive attributes".into()));
    let sens = objects(achieved.and_then(|a| a.get("sensitive")));
    if sens.is_empty() {
        let declared = strings(p.get("cl:sensitiveAttributes"));
        blocks.push(Block::Para(t(match join_or_none(&declared) {
            Some(s) => format!("Declared: {s}; no l or t achieved is recorded."),
            None => "None declared: l-diversity and t-closeness were not assessed.".into(),
        })));
    } else {
        let mut tb = Table::new(vec!["Attribute", "Distinct l", "Entropy l", "t achieved"]);
        tb.num = vec![1, 2];
        for s in sens {
            let ts: Vec<String> = match s.get("t") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| match x {
                        Value::Array(pair) => {
                            let kind = pair.first().and_then(scalar).map(|k| human(&k));
                            let v = pair.get(1).and_then(num);
                            match (kind, v) {
                                (Some(k), Some(v)) => Some(format!("{v} ({k})")),
                                (None, Some(v)) => Some(v),
                                _ => None,
                            }
                        }
                        other => num(other),
                    })
                    .collect(),
                Some(v) => num(v).into_iter().collect(),
                None => Vec::new(),
            };
            tb.rows.push(vec![
                opt(get_text(s, "attribute")),
                opt(s.get("distinct_l").and_then(num)),
                opt(s.get("entropy_l").and_then(num)),
                opt(join_or_none(&ts)),
            ]);
        }
        blocks.push(Block::Table(tb));
    }
}

fn risk_and_loss_blocks(achieved: Option<&Value>, before: Option<&Value>, blocks: &mut Vec<Block>) {
    // Before / after.
    if achieved.is_some() || before.is_some() {
        blocks.push(Block::H3("Risk and loss".into()));
        let mut tb = Table::new(vec!["Measure", "Before enforcement", "Released"]);
        tb.num = vec![1, 2];
        let mut row = |label: String, f: &dyn Fn(&Value) -> Option<String>| {
            tb.rows.push(vec![
                t(label),
                opt(before.and_then(f)),
                opt(achieved.and_then(f)),
            ]);
        };
        let plain = |k: &'static str| move |v: &Value| v.get(k).and_then(num);
        row("Records released".into(), &plain("records_released"));
        row("Suppressed records".into(), &plain("suppressed"));
        row(
            "Equivalence classes released".into(),
            &plain("classes_released"),
        );
        row(
            "Smallest class (k achieved)".into(),
            &plain("smallest_class"),
        );
        row("Largest class".into(), &plain("largest_class"));
        row("Average class size".into(), &plain("average_class_size"));
        row(
            "Records in classes below k".into(),
            &plain("records_below_k"),
        );
        // Risk and loss keys in document order, so new figures show up without code changes.
        let keys = |k: &str| -> Vec<String> {
            let mut ks: Vec<String> = Vec::new();
            for src in [achieved, before].into_iter().flatten() {
                if let Some(Value::Object(m)) = src.get(k) {
                    for key in m.keys() {
                        if !ks.contains(key) {
                            ks.push(key.clone());
                        }
                    }
                }
            }
            ks
        };
        for key in keys("risks") {
            let label = risk_label(&key);
            let as_pct = key != "sampling_fraction";
            let k2 = key.clone();
            row(label, &move |v: &Value| {
                let x = v.get("risks")?.get(&k2)?;
                if as_pct { x.as_f64().map(pct) } else { num(x) }
            });
        }
        let metric = achieved
            .or(before)
            .and_then(|a| a.get("loss"))
            .and_then(|l| get_text(l, "metric"));
        let loss_keys = keys("loss");
        for key in &loss_keys {
            let k2 = key.clone();
            // "value" repeats the minimized metric when that has its own entry.
            let repeated = key == "value"
                && metric
                    .as_ref()
                    .is_some_and(|m| loss_keys.iter().any(|k| k == m));
            if key == "metric" || repeated {
                continue;
            }
            let label = if key == "value" {
                format!(
                    "Loss: {} (minimized)",
                    human(metric.as_deref().unwrap_or("metric"))
                )
            } else if metric.as_deref() == Some(key.as_str()) {
                format!("Loss: {} (minimized)", human(key))
            } else {
                format!("Loss: {}", human(key))
            };
            row(label, &move |v: &Value| {
                v.get("loss")?.get(&k2).and_then(num)
            });
        }
        row("Models satisfied".into(), &|v: &Value| {
            v.get("satisfied")
                .and_then(Value::as_bool)
                .map(|b| if b { "yes" } else { "no" }.to_string())
        });
        blocks.push(Block::Table(tb));
    }
}

fn class_size_charts(achieved: Option<&Value>, before: Option<&Value>, blocks: &mut Vec<Block>) {
    // Class-size distribution.
    for (src, title) in [
        (achieved, "Equivalence-class sizes, released data"),
        (before, "Equivalence-class sizes before enforcement"),
    ] {
        let buckets: Vec<Bucket> = objects(src.and_then(|a| a.get("size_distribution")))
            .into_iter()
            .map(|b| Bucket {
                label: get_text(b, "size").unwrap_or_else(|| "—".into()),
                classes: b.get("classes").and_then(Value::as_u64).unwrap_or(0),
                records: b.get("records").and_then(Value::as_u64).unwrap_or(0),
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
