//! CSV and NDJSON reading through the plan: the first byte picks the input format (CSV with
//! `,` or `;`, NDJSON), the policy (field rules only, or with a privacy block) and the output
//! format; the rest is the input file. It is read on its own, then through `apply`.
#![no_main]

mod common;

use std::sync::{Arc, OnceLock};

use cloakline::io::{Format, Input, ReadOptions};
use cloakline::jobs::apply::Apply;
use cloakline::policy::Policy;
use cloakline::provenance::sidecar_path;
use libfuzzer_sys::fuzz_target;

/// Field rules over the example customer table (unlisted columns dropped).
const FIELDS: &str = "policy: fuzz-fields
version: 1
controller: C
jurisdictions: [EU, CN]
purpose: fuzzing
unlisted: drop
fields:
  customer_id: { action: tokenize, key: k1, domain: customer_id, length: 24, prefix: c_, basis: contract }
  full_name: { action: redact, basis: contract }
  email: { action: encrypt, key: k2, basis: consent, category: email }
  phone: { action: mask, keep_last: 4, basis: consent, type: string }
  birth_date: { action: generalize, to: year, basis: contract }
  zip: { action: generalize, keep_prefix: 3, basis: contract, type: string }
  income: { action: generalize, bin_width: 10000, top: 200000, basis: contract }
  signup_ts: { action: generalize, to: quarter, basis: contract }
  notes: { action: scrub, basis: contract }
";

/// A privacy block over a small table: age, zip, sex, diagnosis.
const PRIVACY: &str = "policy: fuzz-privacy
version: 1
controller: C
jurisdictions: [EU]
purpose: fuzzing
unlisted: drop
fields:
  age: { action: keep, basis: contract }
  zip: { action: keep, basis: contract, type: string }
  sex: { action: keep, basis: contract }
  diagnosis: { action: keep, basis: contract }
privacy:
  quasi_identifiers:
    age: { levels: [ { bin_width: 5 }, { bin_width: 10 } ] }
    zip: { levels: [ { keep_prefix: 3 }, { keep_prefix: 1 } ] }
    sex: {}
  k: 2
  l_diversity:
    - { attribute: diagnosis, variant: distinct, l: 2 }
  on_violation: generalize
  max_suppression: 0.3
";

fn policies() -> &'static [Policy; 2] {
    static P: OnceLock<[Policy; 2]> = OnceLock::new();
    P.get_or_init(|| {
        [
            Policy::from_yaml_str(FIELDS, "fields.yaml").expect("fields policy"),
            Policy::from_yaml_str(PRIVACY, "privacy.yaml").expect("privacy policy"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = common::scratch();
    let (format, delimiter, ext) = match mode % 3 {
        0 => (Format::Csv, b',', "csv"),
        1 => (Format::Csv, b';', "csv"),
        _ => (Format::Ndjson, b',', "ndjson"),
    };
    let policy = &policies()[usize::from(mode / 3 % 2)];
    let out_ext = if mode / 6 % 2 == 0 { "parquet" } else { "csv" };
    let input = dir.join(format!("in.{ext}"));
    if std::fs::write(&input, rest).is_err() {
        return;
    }
    // Small batches and inference windows put batch edges inside the data.
    let read = ReadOptions::default()
        .with_batch_size(3)
        .with_delimiter(delimiter)
        .with_infer_rows(4);
    let overrides = |s: &arrow::datatypes::Schema| cloakline::plan::apply_type_overrides(policy, s);
    if let Ok(src) = Input::open(&input, format, &read, &overrides)
        && let Ok(batches) = src.batches()
    {
        for b in batches.take(1000) {
            if b.is_err() {
                break;
            }
        }
    }
    let output = dir.join(format!("out.{out_ext}"));
    let _ = std::fs::remove_file(&output);
    let _ = std::fs::remove_file(sidecar_path(&output));
    let _ = common::block_on(
        Apply::new(
            policy.clone(),
            Arc::clone(common::keyring()),
            &input,
            &output,
        )
        .with_input_format(Some(format))
        .with_delimiter(delimiter)
        .with_batch_size(3)
        .with_threads(1)
        .run(),
    );
});
