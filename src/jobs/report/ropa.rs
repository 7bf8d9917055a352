//! Records of processing activities (GDPR Art. 30(1)) from policies, with the lawful basis per
//! field and the PIPL Art. 55 impact-assessment triggers.

use serde::Serialize;

use crate::policy::jurisdiction::cn;
use crate::policy::{Action, Field, Jurisdiction, Policy};

/// One processing activity: one policy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub policy: String,
    pub version: u64,
    pub policy_sha256: String,
    pub source: String,
    /// Art. 30(1)(a).
    pub controller: String,
    /// Art. 30(1)(b).
    pub purpose: String,
    /// Art. 30(1)(c).
    pub data_subjects: Vec<String>,
    pub personal_data_categories: Vec<String>,
    /// Art. 30(1)(d).
    pub recipients: Vec<String>,
    /// Art. 30(1)(e): "recipient (country): safeguard".
    pub transfers: Vec<String>,
    /// Art. 30(1)(f).
    pub retention: Option<String>,
    /// Art. 30(1)(g): the technical measures the policy applies.
    pub security_measures: Vec<String>,
    pub jurisdictions: Vec<String>,
    /// PIPL Art. 55 triggers: sensitive data, provision to others, cross-border transfer.
    pub pia_triggers: Vec<String>,
    pub fields: Vec<FieldEntry>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldEntry {
    pub field: String,
    pub output: Option<String>,
    pub action: String,
    pub category: Option<String>,
    pub sensitive: bool,
    pub special_category: Option<String>,
    /// e.g. "GDPR Art. 6(1)(b) contract; PIPL Art. 13(1)(2) contract".
    pub lawful_basis: String,
    pub condition: Option<String>,
}

fn measure(a: &Action) -> Option<&'static str> {
    Some(match a {
        Action::Tokenize(_) => "pseudonymisation (keyed HMAC-SHA256 tokens)",
        Action::Encrypt(_) => "encryption (AES-256-GCM)",
        Action::EncryptDeterministic(_) => "deterministic encryption (AES-SIV)",
        Action::Fpe(_) => "format-preserving encryption (NIST FF1)",
        Action::ShiftDate(_) => "date shifting per subject (keyed)",
        Action::Noise(_) => "noise addition (keyed)",
        Action::Mask(_) => "masking",
        Action::Redact { .. } => "redaction",
        Action::Generalize(_) => "generalisation",
        Action::Scrub(_) => "free-text scrubbing of recognized personal data",
        Action::Drop => "data minimisation (fields removed)",
        Action::Custom(c) => c.transform.descriptor().status,
        Action::Keep => return None,
    })
}

/// The record of one policy.
pub fn activity(p: &Policy) -> Activity {
    let mut categories: Vec<String> = p
        .output_fields()
        .filter_map(|f| f.category_term.clone())
        .collect();
    categories.sort();
    categories.dedup();
    let mut measures: Vec<String> = p
        .fields
        .values()
        .filter_map(|f| measure(&f.action).map(String::from))
        .collect();
    if p.privacy.is_some() {
        measures
            .push("dataset-level privacy models (k-anonymity / l-diversity / t-closeness)".into());
    }
    measures.push("provenance record of every run (SHA-256 of inputs and outputs)".into());
    measures.sort();
    measures.dedup();
    let fields = p
        .fields
        .values()
        .map(|f| FieldEntry {
            field: f.input_name.clone(),
            output: (f.action != Action::Drop).then(|| f.output_name.clone()),
            action: f.action.kind().keyword().into(),
            category: f.category_term.clone(),
            sensitive: f.sensitive,
            special_category: f
                .special_category
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(String::from)),
            lawful_basis: f
                .bases
                .iter()
                .filter_map(|(j, b)| {
                    b.reference(*j)
                        .map(|r| format!("{} {}", r.article, b.keyword()))
                })
                .collect::<Vec<_>>()
                .join("; "),
            condition: match (f.art9_condition, f.separate_consent) {
                (Some(c), _) => Some(c.reference().0.to_string()),
                (None, true) => Some("separate consent (PIPL Art. 29)".into()),
                _ => None,
            },
        })
        .collect();
    // The PIPL-55 triggers, as the rule's own check finds them.
    let mut triggers = Vec::new();
    if p.jurisdictions.contains(&Jurisdiction::CN) {
        let output: Vec<&Field> = p.output_fields().collect();
        for (what, article) in cn::assessment_triggers(&p.recipients, &p.transfers, &output) {
            triggers.push(format!("{what} (PIPL {article})"));
        }
    }
    Activity {
        policy: p.name.clone(),
        version: p.version,
        policy_sha256: p.sha256.clone(),
        source: p.source.clone(),
        controller: p.controller.clone(),
        purpose: p.purpose.clone(),
        data_subjects: p.data_subjects.clone(),
        personal_data_categories: categories,
        recipients: p.recipients.clone(),
        transfers: p
            .transfers
            .iter()
            .map(|t| {
                format!(
                    "{} ({}): {}",
                    t.recipient,
                    t.country.to_ascii_uppercase(),
                    t.mechanism.map_or("no safeguard named", |m| m.keyword())
                )
            })
            .collect(),
        retention: p.retention.clone(),
        security_measures: measures,
        jurisdictions: p.jurisdictions.iter().map(|j| j.to_string()).collect(),
        pia_triggers: triggers,
        fields,
        warnings: p
            .warnings
            .iter()
            .map(|w| {
                format!(
                    "[{}] {}{}",
                    w.rule,
                    w.field
                        .as_ref()
                        .map(|f| format!("{f}: "))
                        .unwrap_or_default(),
                    w.message
                )
            })
            .collect(),
    }
}

/// One CSV cell (RFC 4180). A cell a spreadsheet would run as a formula (starting with
/// = + - @, tab or carriage return, also their full-width forms) gets a leading `'`, as
/// OWASP's CSV-injection guidance says; every cell is quoted.
fn csv_cell(s: &str) -> String {
    let formula = s.starts_with([
        '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    ]);
    format!(
        "\"{}{}\"",
        if formula { "'" } else { "" },
        s.replace('"', "\"\"")
    )
}

/// One CSV row per field, the activity's columns repeated.
pub fn to_csv(acts: &[Activity]) -> String {
    let head = [
        "policy",
        "version",
        "controller",
        "purpose",
        "data_subjects",
        "recipients",
        "transfers",
        "retention",
        "security_measures",
        "pia_triggers",
        "field",
        "output",
        "action",
        "category",
        "sensitive",
        "special_category",
        "lawful_basis",
        "condition",
    ];
    let mut out = head.join(",");
    out.push('\n');
    for a in acts {
        for f in &a.fields {
            let row = [
                a.policy.clone(),
                a.version.to_string(),
                a.controller.clone(),
                a.purpose.clone(),
                a.data_subjects.join("; "),
                a.recipients.join("; "),
                a.transfers.join("; "),
                a.retention.clone().unwrap_or_default(),
                a.security_measures.join("; "),
                a.pia_triggers.join("; "),
                f.field.clone(),
                f.output.clone().unwrap_or_default(),
                f.action.clone(),
                f.category.clone().unwrap_or_default(),
                f.sensitive.to_string(),
                f.special_category.clone().unwrap_or_default(),
                f.lawful_basis.clone(),
                f.condition.clone().unwrap_or_default(),
            ];
            out.push_str(
                &row.iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
    }
    out
}

/// Text from a policy, escaped as `report --format md` escapes it: no HTML, links or
/// emphasis can come through, and a cell stays one cell.
fn md_cell(s: &str) -> String {
    crate::jobs::report::md_text(s)
}

/// A Markdown section per activity.
pub fn to_markdown(acts: &[Activity]) -> String {
    let mut s = String::from("# Records of processing activities\n\n");
    let none = || "—".to_string();
    let list = |v: &[String]| {
        if v.is_empty() {
            none()
        } else {
            md_cell(&v.join("; "))
        }
    };
    for a in acts {
        s.push_str(&format!("## {} v{}\n\n", md_cell(&a.policy), a.version));
        s.push_str("| GDPR Art. 30(1) | |\n|---|---|\n");
        s.push_str(&format!(
            "| (a) controller | {} |\n",
            md_cell(&a.controller)
        ));
        s.push_str(&format!("| (b) purpose | {} |\n", md_cell(&a.purpose)));
        s.push_str(&format!(
            "| (c) data subjects | {} |\n",
            list(&a.data_subjects)
        ));
        s.push_str(&format!(
            "| (c) personal data | {} |\n",
            list(&a.personal_data_categories)
        ));
        s.push_str(&format!("| (d) recipients | {} |\n", list(&a.recipients)));
        s.push_str(&format!("| (e) transfers | {} |\n", list(&a.transfers)));
        s.push_str(&format!(
            "| (f) retention | {} |\n",
            a.retention.as_deref().map_or_else(none, md_cell)
        ));
        s.push_str(&format!(
            "| (g) security measures | {} |\n",
            list(&a.security_measures)
        ));
        s.push_str(&format!("| jurisdictions | {} |\n", list(&a.jurisdictions)));
        s.push_str(&format!(
            "| PIPL Art. 55 triggers | {} |\n",
            list(&a.pia_triggers)
        ));
        s.push_str(&format!(
            "| policy | {} sha256 `{}` |\n\n",
            md_cell(&a.source),
            md_cell(&a.policy_sha256)
        ));
        s.push_str(
            "| field | output | action | category | sensitive | lawful basis | condition |\n",
        );
        s.push_str("|---|---|---|---|---|---|---|\n");
        for f in &a.fields {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                md_cell(&f.field),
                f.output.as_deref().map_or_else(none, md_cell),
                f.action,
                f.category.as_deref().map_or_else(none, md_cell),
                match (&f.special_category, f.sensitive) {
                    (Some(c), _) => format!("special category: {c}"),
                    (None, true) => "yes".into(),
                    _ => "no".into(),
                },
                if f.lawful_basis.is_empty() {
                    none()
                } else {
                    md_cell(&f.lawful_basis)
                },
                f.condition.as_deref().map_or_else(none, md_cell),
            ));
        }
        if !a.warnings.is_empty() {
            s.push_str("\nWarnings:\n\n");
            for w in &a.warnings {
                s.push_str(&format!("- {}\n", md_cell(w)));
            }
        }
        s.push('\n');
    }
    s
}
