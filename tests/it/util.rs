//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::record_batch::RecordBatch;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloakline"));
    c.env_remove("CLOAKLINE_KEYRING");
    c
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run cloakline")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn read_parquet(path: &Path) -> (Vec<RecordBatch>, parquet::file::metadata::ParquetMetaData) {
    let f = std::fs::File::open(path).unwrap();
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let meta = b.metadata().as_ref().clone();
    let batches = b.build().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    (batches, meta)
}

pub fn read_csv_strings(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut r = Vec::new();
    for line in text.lines() {
        r.push(split_csv_line(line));
    }
    r
}

/// Minimal CSV splitting with quotes (test data has no embedded newlines).
pub fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, q) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => q = !q,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Files in a directory (names), to check that nothing was left behind.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub const HEAD: &str = "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\n";

/// `cloakline apply` with the example policy, keyring and data, writing `out`, plus `extra`.
pub fn apply_example(out: &Path, extra: &[&str]) -> Output {
    let root = root();
    let owned = [
        root.join("policies/customers.yaml"),
        root.join("examples/demo-keyring.json"),
        root.join("examples/customers.csv"),
    ];
    let s: Vec<&str> = owned.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec![
        "apply",
        "--policy",
        s[0],
        "--keyring",
        s[1],
        "--input",
        s[2],
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}
