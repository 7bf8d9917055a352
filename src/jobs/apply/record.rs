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
        Some(crate::provenance::consent_record(ledger, spec, c))
    }
}

pub(super) fn schema_pairs(schema: &SchemaRef) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}
