//! Assembling the run's provenance record from what each file's job produced.

use arrow::datatypes::SchemaRef;
use chrono::Utc;

use super::{JobOutput, RunContext};
use crate::engine::ColumnCounts;
use crate::provenance::{FieldRecord, RunRecord};

/// The run's record from its files' outputs: for a single file, the embedded record plus the
/// output checksum; for a directory, every file with the counts summed.
pub(super) fn run_record(
    ctx: &RunContext,
    done: Vec<JobOutput>,
    demo_keys: bool,
) -> (RunRecord, Vec<FieldRecord>) {
    let mut totals: Vec<ColumnCounts> = Vec::new();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut fields = Vec::new();
    let mut dropped = Vec::new();
    let mut embedded = None;
    let mut consent = crate::plan::consent::ConsentCounts::default();
    // Scrub counts per field, summed over the files like the value counts.
    let mut entities: Vec<std::collections::BTreeMap<String, u64>> = Vec::new();
    for j in done {
        if entities.len() < j.fields.len() {
            entities.resize(j.fields.len(), Default::default());
        }
        for (t, f) in entities.iter_mut().zip(&j.fields) {
            for (name, n) in &f.entities {
                *t.entry(name.clone()).or_default() += n;
            }
        }
        if totals.len() < j.columns.len() {
            totals.resize(j.columns.len(), ColumnCounts::default());
        }
        for (t, c) in totals.iter_mut().zip(&j.columns) {
            t.transformed += c.transformed;
            t.nulls += c.nulls;
        }
        consent.add(&j.consent);
        inputs.push(j.input);
        outputs.extend(j.outputs);
        fields = j.fields;
        dropped = j.dropped;
        embedded = Some(j.record);
    }
    for (f, t) in fields.iter_mut().zip(&totals) {
        f.counts = t.clone();
    }
    for (f, e) in fields.iter_mut().zip(entities) {
        f.entities = e.into_iter().collect();
    }
    let record = match (ctx.is_dir, embedded) {
        (false, Some(mut r)) => {
            r.outputs = outputs;
            r
        }
        _ => RunRecord {
            run_id: ctx.run_id.clone(),
            started: ctx.started,
            ended: Utc::now(),
            policy: ctx.policy.clone(),
            inputs,
            outputs,
            fields: fields.clone(),
            dropped,
            privacy: ctx.privacy.clone(),
            directory: ctx.is_dir,
            demo_keys,
            key_protection: ctx.key_protection.clone(),
            cluster: None,
            consent: None,
        },
    };
    let mut record = record;
    record.consent = ctx.consent_record(&consent);
    (record, fields)
}

impl RunContext {
    /// The run's (or one file's) `cl:consent` from the gate's counts.
    pub(super) fn consent_record(
        &self,
        c: &crate::plan::consent::ConsentCounts,
    ) -> Option<crate::provenance::record::ConsentRecord> {
        let (ledger, spec) = self.consent.as_ref()?;
        let fields_nulled = spec
            .consent_fields
            .iter()
            .map(|f| {
                let n = if spec.separate_fields.contains(f) {
                    c.separate_withheld
                } else {
                    c.general_withheld
                };
                (f.clone(), n)
            })
            .collect();
        Some(crate::provenance::record::ConsentRecord {
            ledger: ledger.shown.clone(),
            ledger_sha256: ledger.sha256.clone(),
            ledger_files: ledger.files as u64,
            ledger_events: ledger.events,
            purpose_events: ledger.purpose_events,
            later_events: ledger.later_events,
            duplicate_events: ledger.duplicates,
            ledger_subjects: ledger.subjects,
            as_of: ledger.as_of_text(),
            purpose: spec.purpose.clone(),
            subject: spec.subject.clone(),
            subject_ids: word(&spec.subject_ids),
            on_missing: word(&spec.on_missing),
            on_withdrawn: word(&spec.on_withdrawn),
            consent_fields: spec.consent_fields.clone(),
            separate_consent_fields: spec.separate_fields.clone(),
            rows_in: c.rows_in,
            rows_released: c.rows_in - c.removed_withdrawn - c.removed_missing,
            rows_removed_withdrawn: c.removed_withdrawn,
            rows_removed_missing: c.removed_missing,
            fields_nulled,
        })
    }
}

/// A policy keyword as the policy spells it.
fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn schema_pairs(schema: &SchemaRef) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}
