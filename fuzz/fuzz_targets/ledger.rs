//! A consent ledger read, then enforced: the first byte picks the ledger's format (CSV,
//! NDJSON), its consent types and the as-of time; the rest is the ledger file. Whatever it
//! holds, loading it is an error or a ledger, and a gate over a small table never panics.
#![no_main]

mod common;

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use cloakline::io::Location;
use cloakline::plan::Plan;
use cloakline::plan::consent::{ConsentGate, Ledger};
use cloakline::policy::Policy;
use libfuzzer_sys::fuzz_target;

const POLICY: &str = "policy: fuzz-consent
version: 1
controller: C
jurisdictions: [CN]
purpose: fuzzing
consent:
  ledger: ledger.csv
  subject: id
  purpose: p
  on_withdrawn: null_fields
fields:
  id: { action: keep, basis: contract }
  email: { action: keep, basis: consent }
  health: { action: keep, basis: consent, sensitive: true, separate_consent: true }
";

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::from_yaml_str(POLICY, "consent.yaml").expect("consent policy"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = common::scratch();
    let ext = if mode % 2 == 0 { "csv" } else { "ndjson" };
    let path = dir.join(format!("ledger.{ext}"));
    if std::fs::write(&path, rest).is_err() {
        return;
    }
    let spec = policy().consent.as_ref().expect("a consent block");
    // As-of times around the usual test dates, and the extremes.
    let as_of = cloakline::plan::consent::parse_as_of(match mode / 2 % 4 {
        0 => "0001-01-01",
        1 => "9999-12-31T23:59:59Z",
        _ => "2026-01-01",
    })
    .expect("a time");
    let Ok(ledger) = common::block_on(Ledger::load(
        &Location::Local(path),
        "ledger",
        spec,
        as_of,
        &Default::default(),
    )) else {
        return;
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("health", DataType::Utf8, true),
    ]));
    let ids: ArrayRef = Arc::new(StringArray::from(vec![
        Some("a"),
        Some("b"),
        None,
        Some(""),
        Some("ü"),
    ]));
    let batch = RecordBatch::try_new(schema, vec![Arc::clone(&ids), Arc::clone(&ids), ids])
        .expect("a batch");
    let ring = cloakline::keys::Keyring::default();
    let Ok(mut plan) = Plan::new(policy(), batch.schema(), &ring, "fuzz") else {
        return;
    };
    if let Ok(gate) = ConsentGate::new(policy(), &plan, Arc::new(ledger), &ring, "fuzz") {
        plan.consent = Some(Arc::new(gate));
        let _ = cloakline::engine::transform_batch(&plan, &batch);
    }
});
