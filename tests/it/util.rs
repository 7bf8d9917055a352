//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::record_batch::RecordBatch;
use tempfile::TempDir;

/// Run a job's future on a runtime of the test's own (the library starts none).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

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

/// `body` written as the policy `dir/p.yaml`; returns its path.
pub fn write_policy(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(&p, body).unwrap();
    p
}

/// The bundled demo keyring.
pub fn demo_keyring() -> PathBuf {
    root().join("examples/demo-keyring.json")
}

/// `cloakline apply` with the example policy, keyring and data, writing `out`, plus `extra`.
pub fn apply_example(out: &Path, extra: &[&str]) -> Output {
    let input = root().join("examples/customers.csv");
    apply_customers(&demo_keyring(), &input, out, extra)
}

/// `apply_example`, which must succeed.
pub fn apply_example_ok(out: &Path, extra: &[&str]) -> Output {
    let o = apply_example(out, extra);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// `cloakline apply` with the example policy on `input` with `keyring`, writing `out`,
/// plus `extra`.
pub fn apply_customers(keyring: &Path, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let policy = root().join("policies/customers.yaml");
    apply_files(&policy, Some(keyring), input, out, extra)
}

/// `cloakline apply --policy POLICY [--keyring KEYRING] --input INPUT --output OUT`, plus
/// `extra`.
pub fn apply_files(
    policy: &Path,
    keyring: Option<&Path>,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Output {
    let mut flags = vec![("--policy", policy)];
    flags.extend(keyring.map(|k| ("--keyring", k)));
    flags.extend([("--input", input), ("--output", out)]);
    run_flags(&["apply"], &flags, extra)
}

/// `cloakline HEAD... FLAG PATH... EXTRA...`.
fn run_flags(head: &[&str], flags: &[(&str, &Path)], extra: &[&str]) -> Output {
    let mut args = head.to_vec();
    for (flag, path) in flags {
        args.extend([*flag, path.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    run(&args)
}

/// A directory input in `dir`: the example data as `in/a.csv` and `in/sub/b.csv`.
pub fn example_tree(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    for p in ["a.csv", "sub/b.csv"] {
        std::fs::copy(root().join("examples/customers.csv"), input.join(p)).unwrap();
    }
    input
}

/// `apply` of the example policy to `example_tree(dir)`, which must succeed, writing the
/// directory `dir/out`; returns the input and output directories.
pub fn apply_example_tree(dir: &Path) -> (PathBuf, PathBuf) {
    let input = example_tree(dir);
    let out = dir.join("out");
    let o = apply_customers(&demo_keyring(), &input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    (input, out)
}

/// `apply` `policy` to `data` (written as `name`) with the demo keyring in a fresh
/// directory, writing `out/o.parquet`; returns the run, the output path and the directory
/// (kept alive by the caller).
pub fn apply_in_tempdir(policy: &str, name: &str, data: &[u8]) -> (Output, PathBuf, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(&p, policy).unwrap();
    let input = dir.path().join(name);
    std::fs::write(&input, data).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("o.parquet");
    let o = apply_files(&p, Some(&demo_keyring()), &input, &out, &[]);
    (o, out, dir)
}

/// Fields of `people_csv`, all kept.
pub const PEOPLE: &str = "fields:\n  age: { action: keep, basis: consent }\n  zip: { action: keep, basis: consent, type: string }\n  dx: { action: keep, basis: consent }\n";

/// Six people (age, zip, dx) written to `dir/people.csv`.
pub fn people_csv(dir: &Path) -> PathBuf {
    let p = dir.join("people.csv");
    let mut s = String::from("age,zip,dx\n");
    for (i, dx) in ["flu", "hiv", "cold", "flu", "hiv", "flu"]
        .iter()
        .enumerate()
    {
        s.push_str(&format!("{},1000{},{dx}\n", 30 + i, i % 3));
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// `cloakline keys generate --id ID --keyring RING`.
pub fn keys_generate(ring: &Path, id: &str) -> Output {
    run_flags(
        &["keys", "generate", "--id", id],
        &[("--keyring", ring)],
        &[],
    )
}

/// A fresh keyring at `ring` with the keys `ids`; every `keys generate` must succeed.
pub fn generate_ring(ring: &Path, ids: &[&str]) {
    for id in ids {
        let o = keys_generate(ring, id);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

/// `cloakline decrypt` of `input` into `out` with the demo keyring, plus `extra`.
pub fn decrypt_demo(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let keyring = demo_keyring();
    let flags = [
        ("--keyring", keyring.as_path()),
        ("--input", input),
        ("--output", out),
    ];
    run_flags(&["decrypt"], &flags, extra)
}

/// `cloakline check --policy POLICY --input DATA`, plus `extra`.
pub fn check(policy: &Path, data: &Path, extra: &[&str]) -> Output {
    run_flags(
        &["check"],
        &[("--policy", policy), ("--input", data)],
        extra,
    )
}
