//! A consent ledger read, then enforced: the first byte picks the ledger's format (CSV,
//! NDJSON), the as-of time and whether to compare with the on-disk reduction; the rest is the ledger file. Whatever it holds, loading it is
//! an error or a ledger, in memory and reduced on disk alike (same standings, counts and
//! error), and a gate over a small table never panics.
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
    let load = |budget| {
        common::block_on(Ledger::load(
            &Location::Local(path.clone()),
            "ledger",
            spec,
            as_of,
            budget,
            &Default::default(),
        ))
    };
    // Reducing on disk creates 256 scratch files: one input in two takes that path too.
    let loaded = load(1 << 30);
    if mode & 8 == 0 {
        gate(loaded);
        return;
    }
    let (ledger, on_disk) = match (loaded, load(0)) {
        (Ok(m), Ok(d)) => (m, d),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            return;
        }
        (a, b) => panic!(
            "in memory {}, on disk {}",
            a.is_ok(),
            b.is_ok()
        ),
    };
    assert_eq!(
        (ledger.subjects, ledger.duplicates, ledger.events),
        (on_disk.subjects, on_disk.duplicates, on_disk.events)
    );
    // A budget of 0 bytes reduces any non-empty map on disk.
    assert_eq!(on_disk.spilled.is_some(), on_disk.subjects > 0);
    for id in ["a", "b", "", "ü", "c", "0"] {
        assert_eq!(
            ledger.standing(id).ok(),
            on_disk.standing(id).ok(),
            "standing differs"
        );
    }
    gate(Ok(on_disk));
});

/// A gate over a small table never panics.
fn gate(ledger: cloakline::Result<Ledger>) {
    let Ok(ledger) = ledger else {
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
}
