//! The `consent:` block (a consent ledger the run enforces, docs/CONSENT.md) and the
//! `release:` block (the release record a DPO signs, following the items ISO/IEC 27559 asks a
//! de-identification assessment to document).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::basis::Basis;
use super::model::{Action, Field};
use crate::error::Problem;

// ---------------------------------------------------------------------------------------------
// As written.
// ---------------------------------------------------------------------------------------------

/// A consent ledger the run enforces: only subjects whose consent to `purpose` is given and
/// not withdrawn keep their consent-based fields (docs/CONSENT.md).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBlock {
    /// Where the ledger is: a local file or directory (relative to the policy file), or a URL
    /// (`s3://…`, `az://…`, `gs://…`, `https://…`). Parquet, CSV or NDJSON.
    pub ledger: String,
    /// `parquet`, `csv` or `ndjson`, when the ledger's extension does not tell.
    pub format: Option<String>,
    /// The input column identifying the person (matched against the ledger's subject ids).
    pub subject: String,
    /// The purpose id consent must be given for, as the ledger spells it.
    pub purpose: String,
    /// Subjects with no event for the purpose: `drop` (default; their consent-based fields
    /// are removed like a withdrawal's) or `fail` (the run stops, nothing is written).
    #[serde(default)]
    pub on_missing: OnMissing,
    /// A row whose every consent-based field is removed: `drop_row` (default) or
    /// `null_fields` (kept, those fields null).
    #[serde(default)]
    pub on_withdrawn: OnWithdrawn,
    /// `raw` (default): the ledger holds the subject column's values. `tokenized`: it holds
    /// them as the subject field's `tokenize` rule writes them (same key and domain).
    #[serde(default)]
    pub subject_ids: SubjectIds,
    /// The ledger's column names, where they differ from the defaults.
    #[serde(default)]
    pub columns: LedgerColumns,
}

/// What to do with a subject the ledger has no event for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    #[default]
    Drop,
    Fail,
}

/// What to do with a row whose every consent-based field is removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnWithdrawn {
    #[default]
    DropRow,
    NullFields,
}

/// How the ledger stores subject ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectIds {
    #[default]
    Raw,
    Tokenized,
}

/// The ledger's column names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerColumns {
    /// Subject id (default `subject_id`).
    pub subject: String,
    /// Purpose id (default `purpose`).
    pub purpose: String,
    /// `given` or `withdrawn` (default column `event`).
    pub event: String,
    /// When the event happened: a timestamp, or RFC 3339 text (default `timestamp`).
    pub timestamp: String,
    /// Optional: `consent` or `separate_consent` (PIPL Art. 29/23/39); absent means every
    /// event is `consent` (default column `consent_type`).
    pub consent_type: String,
}

impl Default for LedgerColumns {
    fn default() -> Self {
        LedgerColumns {
            subject: "subject_id".into(),
            purpose: "purpose".into(),
            event: "event".into(),
            timestamp: "timestamp".into(),
            consent_type: "consent_type".into(),
        }
    }
}

/// The release record: who receives the output, under which model, with which threat model
/// and risk threshold, approved by whom, until when (ISO/IEC 27559 context and governance).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBlock {
    /// Who receives this release.
    pub recipient: String,
    /// `public`, `data_sharing_agreement` or `enclave`.
    pub model: ReleaseModel,
    /// Who might try to re-identify people, and how (ISO/IEC 27559 threat modelling).
    pub threat_model: String,
    /// Highest acceptable probability of re-identifying a record, 0 < t ≤ 1 (e.g. 0.09).
    pub risk_threshold: f64,
    /// Who approved the release (name and role).
    pub approver: String,
    /// When it was approved (YYYY-MM-DD).
    pub approved_on: Option<String>,
    /// When the release must be assessed again (YYYY-MM-DD).
    pub re_evaluate_by: String,
    /// `de_identified` (default: still personal data, PIPL 去标识化) or `anonymised` (the
    /// controller's claim, PIPL 匿名化; the report states it only with its evidence).
    #[serde(default)]
    pub claim: ReleaseClaim,
    /// Controls at the recipient (contract terms, access control, audit).
    pub context: Option<String>,
    /// Governance: monitoring, incident handling, who keeps the keys.
    pub governance: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseModel {
    /// Anyone may obtain it.
    Public,
    /// A named recipient bound by a data-sharing agreement.
    DataSharingAgreement,
    /// Analysed only inside a controlled environment.
    Enclave,
}

impl ReleaseModel {
    pub fn keyword(self) -> &'static str {
        match self {
            ReleaseModel::Public => "public",
            ReleaseModel::DataSharingAgreement => "data_sharing_agreement",
            ReleaseModel::Enclave => "enclave",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseClaim {
    #[default]
    DeIdentified,
    Anonymised,
}

impl ReleaseClaim {
    pub fn keyword(self) -> &'static str {
        match self {
            ReleaseClaim::DeIdentified => "de_identified",
            ReleaseClaim::Anonymised => "anonymised",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validated.
// ---------------------------------------------------------------------------------------------

/// A checked `consent:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentSpec {
    /// As written in the policy.
    pub ledger: String,
    pub format: Option<crate::io::Format>,
    pub subject: String,
    pub purpose: String,
    pub on_missing: OnMissing,
    pub on_withdrawn: OnWithdrawn,
    pub subject_ids: SubjectIds,
    pub columns: LedgerColumns,
    /// Output fields whose basis is consent (input names), in policy order.
    pub consent_fields: Vec<String>,
    /// Of those, the ones that also need separate consent (`separate_consent: true`).
    pub separate_fields: Vec<String>,
}

/// A checked `release:` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSpec {
    pub recipient: String,
    pub model: ReleaseModel,
    pub threat_model: String,
    pub risk_threshold: f64,
    pub approver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_on: Option<String>,
    pub re_evaluate_by: String,
    pub claim: ReleaseClaim,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub governance: Option<String>,
}

/// Whether a field relies on consent in any of the policy's jurisdictions.
pub fn relies_on_consent(f: &Field) -> bool {
    f.action != Action::Drop && f.bases.values().any(|b| *b == Basis::Consent)
}

/// Purpose ids and column names: short words, so a typo is caught and no value can hide in
/// them.
fn id_like(what: &str, s: &str) -> Result<(), Problem> {
    let ok = !s.trim().is_empty()
        && s.len() <= 200
        && s == s.trim()
        && !s.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Problem(format!(
            "`{what}` must be a non-empty name of at most 200 characters, without leading or \
             trailing spaces"
        )))
    }
}

pub(super) fn validate_consent(
    b: &ConsentBlock,
    fields: &BTreeMap<String, Field>,
) -> Result<ConsentSpec, Vec<Problem>> {
    let mut problems = Vec::new();
    if b.ledger.trim().is_empty() {
        problems.push(Problem(
            "`ledger` is empty; give the ledger's path or URL (docs/CONSENT.md)",
        ));
    }
    let format = match b.format.as_deref() {
        None => None,
        Some(f) => match f.parse::<crate::io::Format>() {
            Ok(f) => Some(f),
            Err(_) => {
                problems.push(Problem(format!(
                    "`format: {f}` is not parquet, csv or ndjson"
                )));
                None
            }
        },
    };
    for (what, v) in [
        ("purpose", &b.purpose),
        ("columns.subject", &b.columns.subject),
        ("columns.purpose", &b.columns.purpose),
        ("columns.event", &b.columns.event),
        ("columns.timestamp", &b.columns.timestamp),
        ("columns.consent_type", &b.columns.consent_type),
    ] {
        if let Err(p) = id_like(what, v) {
            problems.push(p);
        }
    }
    match fields.get(&b.subject) {
        None => problems.push(Problem(format!(
            "`subject: {}` is not a field of the policy; name the input column that identifies \
             the person (it must be listed under `fields`, even if dropped)",
            b.subject
        ))),
        Some(f) => {
            if b.subject_ids == SubjectIds::Tokenized && !matches!(f.action, Action::Tokenize(_)) {
                problems.push(Problem(format!(
                    "`subject_ids: tokenized` matches the ledger against the subject field's \
                     tokens, but field `{}` is not tokenized; tokenize it with the key and \
                     domain the ledger used, or use `subject_ids: raw`",
                    b.subject
                )));
            }
        }
    }
    let consent_fields: Vec<String> = fields
        .values()
        .filter(|f| relies_on_consent(f))
        .map(|f| f.input_name.clone())
        .collect();
    if consent_fields.is_empty() {
        problems.push(Problem(
            "no output field relies on consent (`basis: consent`), so the ledger would remove \
             nothing; remove the `consent:` block or correct the fields' bases",
        ));
    }
    let separate_fields = fields
        .values()
        .filter(|f| relies_on_consent(f) && f.separate_consent)
        .map(|f| f.input_name.clone())
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ConsentSpec {
        ledger: b.ledger.clone(),
        format,
        subject: b.subject.clone(),
        purpose: b.purpose.clone(),
        on_missing: b.on_missing,
        on_withdrawn: b.on_withdrawn,
        subject_ids: b.subject_ids,
        columns: b.columns.clone(),
        consent_fields,
        separate_fields,
    })
}

fn date(what: &str, s: &str) -> Result<NaiveDate, Problem> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| Problem(format!("`{what}: {s}` is not a date (YYYY-MM-DD)")))
}

pub(super) fn validate_release(b: &ReleaseBlock) -> Result<ReleaseSpec, Vec<Problem>> {
    let mut problems = Vec::new();
    for (what, v) in [
        ("recipient", &b.recipient),
        ("threat_model", &b.threat_model),
        ("approver", &b.approver),
    ] {
        if v.trim().is_empty() || v.trim() == "TODO" {
            problems.push(Problem(format!(
                "`{what}` is empty; a release record names it (docs/CONSENT.md)"
            )));
        }
    }
    if !(b.risk_threshold > 0.0 && b.risk_threshold <= 1.0) {
        problems.push(Problem(format!(
            "`risk_threshold: {}` must be a probability above 0 and at most 1 (e.g. 0.09 for \
             a class size of at least 11)",
            b.risk_threshold
        )));
    }
    let approved = b
        .approved_on
        .as_deref()
        .map(|s| date("approved_on", s))
        .transpose()
        .map_err(|p| problems.push(p))
        .ok()
        .flatten();
    match date("re_evaluate_by", &b.re_evaluate_by) {
        Err(p) => problems.push(p),
        Ok(by) => {
            if let Some(a) = approved
                && by <= a
            {
                problems.push(Problem(
                    "`re_evaluate_by` must come after `approved_on`".to_string(),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ReleaseSpec {
        recipient: b.recipient.trim().to_string(),
        model: b.model,
        threat_model: b.threat_model.trim().to_string(),
        risk_threshold: b.risk_threshold,
        approver: b.approver.trim().to_string(),
        approved_on: b.approved_on.as_ref().map(|s| s.trim().to_string()),
        re_evaluate_by: b.re_evaluate_by.trim().to_string(),
        claim: b.claim,
        context: b.context.clone(),
        governance: b.governance.clone(),
    })
}
