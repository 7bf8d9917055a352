//! Dataset-level privacy models: measure, enforce optimally, record.
//!
//! Column transforms alone do not stop re-identification through combinations of
//! quasi-identifiers (age + ZIP + sex). A policy's `privacy:` block names the
//! quasi-identifiers, the models (k-anonymity; distinct, entropy and recursive (c,l)
//! l-diversity; t-closeness with equal or ordered distance) and what to do when the data falls
//! short. The flow:
//!
//! [`collect`] groups the input on DataFusion into distinct quasi-identifier tuples
//! ([`table::BaseTable`]) → [`models`] evaluates one generalization (classes, models,
//! suppression, loss, risks) → [`search`] finds the least-loss generalization over the lattice
//! → [`enforce`] turns the decision into column kernels and a row filter for the streaming
//! engine, and into provenance evidence.
//!
//! ```
//! use cloakline::policy::hierarchy::QiHierarchy;
//! use cloakline::privacy::{models, table::BaseTableBuilder};
//! use cloakline::policy::{LossMetric, PrivacySpec};
//! use arrow::array::{RecordBatch, StringArray, ArrayRef};
//! use std::sync::Arc;
//!
//! // Four records: two share ("30-39", "100"), two are unique.
//! let batch = RecordBatch::try_from_iter(vec![
//!     ("age", Arc::new(StringArray::from(vec!["30-39", "30-39", "40-49", "50-59"])) as ArrayRef),
//!     ("zip", Arc::new(StringArray::from(vec!["100", "100", "100", "200"])) as ArrayRef),
//! ]).unwrap();
//! let mut b = BaseTableBuilder::new(vec!["age".into(), "zip".into()], vec![]);
//! b.push_batch(&batch).unwrap();
//! let table = b.finish();
//! let qis: Vec<QiHierarchy> = (0..2)
//!     .map(|i| QiHierarchy::build(&table.qi_names[i], &table.qi_values[i], vec![]).unwrap())
//!     .collect();
//! let spec = PrivacySpec {
//!     quasi_identifiers: vec![], k: Some(2), l_diversity: vec![], t_closeness: vec![],
//!     on_violation: Default::default(), max_suppression: 0.5,
//!     metric: LossMetric::Precision, sampling_fraction: 1.0, search_budget: Default::default(),
//!     subject: None,
//! };
//! let m = models::Models::new(&spec, &table).unwrap();
//! let e = models::evaluate(&table, &qis, &m, &[0, 0], &mut Default::default());
//! assert_eq!(e.classes.sizes, vec![2, 1, 1]);
//! assert_eq!(e.suppressed, 2); // the two unique records
//! assert!(e.ok); // 2 of 4 records is within max_suppression 0.5
//! ```

pub mod collect;
pub mod enforce;
pub mod models;
pub mod search;
pub mod table;

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::ReadOptions;
use crate::keys::Keyring;
use crate::policy::Policy;
pub use collect::{Prepared, Registered, prepare, prepare_registered};
pub use enforce::{Decision, ReleaseTable, decide, enforce, enforce_table, evidence};
pub use models::Assessment;

/// What `cloakline check` reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub input: String,
    pub policy: String,
    pub quasi_identifiers: Vec<String>,
    pub sensitive_attributes: Vec<String>,
    pub k: Option<u64>,
    /// Whether the data, as the field rules release it, meets every model without suppression.
    pub meets_models: bool,
    /// Whether it meets them once violating classes are suppressed within `max_suppression`.
    pub meets_with_suppression: bool,
    /// Records in classes that violate a model (what `suppress` would drop).
    pub records_violating: u64,
    pub max_suppression: f64,
    pub assessment: Assessment,
    /// With `on_violation: suppress` or `generalize` (unless turned off): what `apply` would
    /// release. `None` for `fail`, or with `--no-preview`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    pub seconds: f64,
}

/// What `apply` would choose for this input: the levels (with their effective
/// transformations), the suppression and the resulting assessment; nothing is written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// `suppress` or `generalize`.
    pub on_violation: String,
    /// Whether `apply` would release the data (the models met within `max_suppression`).
    pub satisfied: bool,
    /// Why `apply` would stop, when it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The release `apply` would write (levels, transformations, suppressed records, k
    /// achieved as `smallestClass`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment: Option<Assessment>,
    /// Lattice nodes and nodes evaluated, when a search ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<crate::provenance::record::SearchRecord>,
}

/// Measure the input against the policy's privacy block without writing anything. With
/// `preview` and `on_violation: suppress` or `generalize`, also decide as `apply` would.
/// With a `consent:` block, `consent` is the ledger read for the check: rows it removes are
/// not counted, as `apply` would not release them.
pub async fn check(
    policy: &Policy,
    keyring: &Keyring,
    input: &Path,
    read: &ReadOptions,
    preview: bool,
    consent: Option<std::sync::Arc<crate::plan::consent::Ledger>>,
) -> Result<CheckReport> {
    let clock = std::time::Instant::now();
    let spec = privacy_block(policy)?;
    let files = crate::io::table_files(input)?;
    let (preview, hierarchies) = check_needs(spec, preview);
    if policy.consent.is_some() && consent.is_none() {
        return Err(Error::Usage(
            "the policy has a `consent:` ledger: read it (plan::consent::Ledger::load) and pass \
             it, so the check counts what apply would release"
                .into(),
        ));
    }
    let prep = prepare(
        policy,
        spec,
        keyring,
        input,
        &files,
        read,
        hierarchies,
        consent,
    )
    .await?;
    report(
        policy,
        spec,
        &prep,
        &input.display().to_string(),
        preview,
        clock,
    )
}

/// [`check`] of a table registered in a session whose plans may run elsewhere (a cluster):
/// the grouping runs there, the models here.
pub async fn check_registered(
    policy: &Policy,
    keyring: &Keyring,
    at: collect::Registered<'_>,
    preview: bool,
) -> Result<CheckReport> {
    let clock = std::time::Instant::now();
    let spec = privacy_block(policy)?;
    let (preview, hierarchies) = check_needs(spec, preview);
    let shown = at.shown.to_string();
    let prep = collect::prepare_registered(policy, spec, keyring, at, hierarchies).await?;
    report(policy, spec, &prep, &shown, preview, clock)
}

/// Whether a check previews `apply`'s decision, and whether it needs the hierarchies.
fn check_needs(spec: &crate::policy::PrivacySpec, preview: bool) -> (bool, bool) {
    let preview = preview && spec.on_violation != crate::policy::OnViolation::Fail;
    // `min_level` above 0: even `fail` releases generalized data, so measure that, not level 0.
    let raised = spec.quasi_identifiers.iter().any(|q| q.min_level > 0);
    (preview, preview || raised)
}

fn privacy_block(policy: &Policy) -> Result<&crate::policy::PrivacySpec> {
    policy.privacy.as_ref().ok_or_else(|| {
        Error::Usage(format!(
            "policy {} has no `privacy:` block; add one naming the quasi-identifiers and models \
             (see docs/PRIVACY.md)",
            policy.source
        ))
    })
}

/// The check's report on the prepared input.
fn report(
    policy: &Policy,
    spec: &crate::policy::PrivacySpec,
    prep: &Prepared,
    input: &str,
    preview: bool,
    clock: std::time::Instant,
) -> Result<CheckReport> {
    let base = prep.models.min_levels(&prep.qis);
    let eval = models::evaluate(
        &prep.table,
        &prep.qis,
        &prep.models,
        &base,
        &mut models::Scratch::default(),
    );
    let mut assessment = models::assess(&prep.table, &prep.qis, &prep.models, &eval, false);
    assessment.transformations = enforce::transformations(prep, spec, &base);
    let preview = if preview {
        Some(preview_of(prep, spec, input)?)
    } else {
        None
    };
    Ok(CheckReport {
        input: input.to_string(),
        policy: format!("{} v{}", policy.name, policy.version),
        quasi_identifiers: spec
            .quasi_identifiers
            .iter()
            .map(|q| q.field.clone())
            .collect(),
        sensitive_attributes: spec.sensitive_attributes(),
        k: spec.k,
        meets_models: eval.suppressed == 0,
        meets_with_suppression: eval.ok,
        records_violating: eval.suppressed,
        max_suppression: spec.max_suppression,
        assessment,
        preview,
        seconds: clock.elapsed().as_secs_f64(),
    })
}

/// `apply`'s decision on the prepared input, as a preview: a privacy failure (budget spent,
/// nothing meets the models) is part of the preview, not an error of the check.
fn preview_of(prep: &Prepared, spec: &crate::policy::PrivacySpec, input: &str) -> Result<Preview> {
    let on_violation = serde_json::to_value(spec.on_violation)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match decide(prep, spec, input) {
        Ok(d) => Ok(Preview {
            on_violation,
            satisfied: d.assessment.satisfied,
            message: None,
            search: d.search.map(|(size, evaluated, seconds)| {
                crate::provenance::record::SearchRecord {
                    lattice_nodes: size as u64,
                    nodes_evaluated: evaluated as u64,
                    seconds,
                }
            }),
            assessment: Some(d.assessment),
        }),
        Err(Error::Privacy { message, .. }) => Ok(Preview {
            on_violation,
            satisfied: false,
            message: Some(message.replace("Nothing was written", "apply would write nothing")),
            assessment: None,
            search: None,
        }),
        Err(e) => Err(e),
    }
}

impl Preview {
    /// The preview's lines of the text report.
    fn to_text(&self) -> String {
        let mut s = format!("preview (on_violation: {}):\n", self.on_violation);
        if let Some(a) = &self.assessment {
            for t in &a.transformations {
                let params: Vec<String> = t
                    .params
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| match v {
                        serde_json::Value::String(x) => format!("{k} {x}"),
                        v => format!("{k} {v}"),
                    })
                    .collect();
                s.push_str(&format!(
                    "  {}: level {}/{}, {}{}\n",
                    t.column,
                    t.level,
                    t.max_level,
                    t.action,
                    if params.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", params.join(", "))
                    }
                ));
            }
            s.push_str(&format!(
                "  suppressed: {} of {} records; smallest class {} ({})\n",
                a.suppressed, a.records, a.smallest_class, a.counted
            ));
        }
        if let Some(m) = &self.message {
            s.push_str(&format!("  {m}\n"));
        }
        s.push_str(if self.satisfied {
            "  apply would release the data at these levels\n"
        } else {
            "  apply would NOT release the data\n"
        });
        s
    }
}

impl CheckReport {
    /// A plain-text rendering for people: labels and values in two aligned columns (by
    /// display width, so attribute names in CJK line up too).
    pub fn to_text(&self) -> String {
        let a = &self.assessment;
        let pct = |x: f64| format!("{:.2}%", x * 100.0);
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |label: String, value: String| rows.push((label, value));
        row("input".into(), self.input.clone());
        row("policy".into(), self.policy.clone());
        row(
            "quasi-identifiers".into(),
            self.quasi_identifiers.join(", "),
        );
        if !self.sensitive_attributes.is_empty() {
            row("sensitive".into(), self.sensitive_attributes.join(", "));
        }
        row("records".into(), a.records.to_string());
        row("classes count".into(), a.counted.clone());
        row(
            "classes".into(),
            format!(
                "{} (sizes {}..{}, average {:.2})",
                a.classes, a.smallest_class, a.largest_class, a.average_class_size
            ),
        );
        row("smallest k".into(), a.smallest_class.to_string());
        if let Some(k) = self.k {
            row(
                format!("below k = {k}"),
                format!(
                    "{} records in {} classes ({})",
                    a.records_below_k,
                    a.classes_below_k,
                    pct(a.records_below_k as f64 / a.records.max(1) as f64)
                ),
            );
        }
        for x in &a.sensitive {
            row(
                format!("l ({})", x.attribute),
                format!("distinct {}, entropy {:.3}", x.distinct_l, x.entropy_l),
            );
            for (d, t) in &x.t {
                let d = match d {
                    crate::policy::TDistance::Equal => "equal",
                    crate::policy::TDistance::Ordered => "ordered",
                };
                row(
                    format!("t ({}, {d} distance)", x.attribute),
                    format!("{t:.4}"),
                );
            }
        }
        let r = &a.risks;
        row(
            "prosecutor risk".into(),
            format!(
                "highest {}, average {}, records at risk {}",
                pct(r.prosecutor_highest),
                pct(r.prosecutor_average),
                pct(r.records_at_risk)
            ),
        );
        row(
            "journalist risk".into(),
            format!(
                "highest {} (sampling fraction {})",
                pct(r.journalist_highest),
                r.sampling_fraction
            ),
        );
        row("marketer risk".into(), pct(r.marketer));
        let verdict = if self.meets_models {
            "meets every model".to_string()
        } else if self.meets_with_suppression {
            format!(
                "meets the models after suppressing {} records (within max_suppression {})",
                self.records_violating,
                pct(self.max_suppression)
            )
        } else {
            "does NOT meet the models".to_string()
        };
        let width = rows
            .iter()
            .map(|(l, _)| crate::error::display_width(l) + 2)
            .max()
            .unwrap_or(0)
            .max(20);
        let line = |label: &str, value: &str| {
            format!(
                "{}{value}\n",
                crate::error::pad_display(&format!("{label}:"), width)
            )
        };
        let mut s = String::new();
        for (label, value) in &rows {
            s.push_str(&line(label, value));
        }
        s.push_str("class sizes:\n");
        for b in &a.size_distribution {
            if b.classes > 0 {
                s.push_str(&format!(
                    "  {:>9}: {} classes, {} records\n",
                    b.size, b.classes, b.records
                ));
            }
        }
        s.push_str(&line("verdict", &verdict));
        if let Some(p) = &self.preview {
            s.push_str(&p.to_text());
        }
        s
    }

    /// Whether the check passes: the preview's verdict when there is one (what `apply` would
    /// do), else the models met at level 0 within `max_suppression`.
    pub fn passes(&self) -> bool {
        match &self.preview {
            Some(p) => p.satisfied,
            None => self.meets_with_suppression,
        }
    }
}
