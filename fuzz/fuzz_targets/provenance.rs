//! The provenance reader used by `report` and `verify`: the fuzzed bytes are a record file
//! (`report::load_record`, then every renderer), and the sidecar `verify` checks against two
//! fixed outputs (Parquet and CSV, signed). Bytes starting with `PAR1` are also read as a
//! Parquet output whose footer holds the record.
#![no_main]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use cloakline::io::ReadOptions;
use cloakline::jobs::apply::Apply;
use cloakline::policy::Policy;
use libfuzzer_sys::fuzz_target;

const POLICY: &str = include_str!("../../policies/customers.yaml");
const DATA: &str = include_str!("../../examples/customers.csv");

/// Fixed outputs made once per process: (parquet, csv).
fn outputs() -> &'static (PathBuf, PathBuf) {
    static OUT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    OUT.get_or_init(|| {
        let dir = common::scratch().join("outputs");
        std::fs::create_dir_all(&dir).expect("outputs dir");
        let input = dir.join("customers.csv");
        let head: Vec<&str> = DATA.lines().take(6).collect();
        std::fs::write(&input, head.join("\n") + "\n").expect("input");
        let policy = Policy::from_yaml_str(POLICY, "customers.yaml").expect("policy");
        let make = |name: &str| {
            let out = dir.join(name);
            common::block_on(
                Apply::new(policy.clone(), Arc::clone(common::keyring()), &input, &out)
                    .with_threads(1)
                    .with_sign_key(Some("k1".into()))
                    .run(),
            )
            .expect("fixed output");
            out
        };
        (make("out.parquet"), make("out.csv"))
    })
}

fuzz_target!(|data: &[u8]| {
    let (parquet, csv) = outputs();
    let dir = common::scratch();
    let record = dir.join("record.json");
    if std::fs::write(&record, data).is_err() {
        return;
    }
    if let Ok(doc) = cloakline::jobs::report::load_record(&record) {
        let _ = cloakline::jobs::report::findings(&doc);
        let _ = cloakline::jobs::report::render_markdown(&doc);
        let _ = cloakline::jobs::report::render_html(&doc);
    }
    let ring = common::keyring();
    let read = ReadOptions::default();
    for out in [parquet, csv] {
        if let Ok(v) = cloakline::jobs::verify::verify(out, Some(&record), None, Some(ring), &read)
        {
            let _ = v.to_text();
        }
    }
    if data.starts_with(b"PAR1") {
        let p = dir.join("fuzzed.parquet");
        if std::fs::write(&p, data).is_ok() {
            let _ = cloakline::jobs::report::load_record(&p);
        }
    }
});
