//! Hostile input at the CLI and SQL doors (issue 10: items 11, 12, escapes, arguments).

use serde_json::Value;

use crate::util::{apply_example, apply_example_ok, apply_files, root, run, stderr, write_policy};

fn table() -> String {
    format!(
        "customers={}",
        root().join("examples/customers.csv").display()
    )
}

fn keyring() -> String {
    root()
        .join("examples/demo-keyring.json")
        .display()
        .to_string()
}

/// Item 11: DDL, DML and statements are refused unless explicitly allowed.
#[test]
fn sql_refuses_ddl_dml_and_statements() {
    let dir = tempfile::tempdir().unwrap();
    let stolen = dir.path().join("stolen.csv");
    let copy = format!(
        "COPY (SELECT full_name, email FROM customers) TO '{}' STORED AS CSV",
        stolen.display()
    );
    let create = "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'".to_string();
    let set = "SET datafusion.execution.batch_size = 1".to_string();
    for q in [&copy, &create, &set] {
        let o = run(&["sql", q, "--table", &table()]);
        assert_eq!(o.status.code(), Some(2), "{q}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("only queries are allowed"),
            "{q}: {}",
            stderr(&o)
        );
    }
    assert!(!stolen.exists(), "COPY wrote raw data");
    // The explicit flag lets a trusted operator run them.
    let o = run(&["sql", &copy, "--table", &table(), "--allow-unsafe-sql"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stolen.exists());
}

/// `sql "SELECT 1"` needs no table.
#[test]
fn sql_without_tables() {
    let o = run(&["sql", "SELECT 1 + 1 AS two"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("| 2"));
}

fn sql_sidecar(query: &str, with_policy: bool) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.parquet");
    let policy = root().join("policies/customers.yaml");
    let (t, k) = (table(), keyring());
    let mut args = vec![
        "sql",
        query,
        "--table",
        &t,
        "--keyring",
        &k,
        "--output",
        out.to_str().unwrap(),
    ];
    if with_policy {
        args.extend(["--policy", policy.to_str().unwrap()]);
    }
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("q.parquet.provenance.json")).unwrap(),
    )
    .unwrap()
}

/// Item 12: the policy's bases are recorded only when the query read the policy view.
#[test]
fn sql_provenance_records_the_policy_only_when_its_view_was_read() {
    let side = sql_sidecar("SELECT full_name, email FROM customers", true);
    let rec = cloakline::provenance::Record::from_json(&side).unwrap();
    assert!(rec.policy().is_none(), "{side:#}");
    assert_eq!(rec.output_fields().count(), 0, "{side:#}");
    let run = rec.run().unwrap();
    assert!(
        run.basis_note.as_deref().unwrap().starts_with("not known"),
        "{side:#}"
    );
    assert_eq!(run.raw_tables_read.as_deref().unwrap(), ["customers"]);

    let side = sql_sidecar("SELECT email FROM customers_shared", true);
    let rec = cloakline::provenance::Record::from_json(&side).unwrap();
    assert_eq!(rec.policy().unwrap().name, "customers-share");
    let run = rec.run().unwrap();
    assert!(run.raw_tables_read.as_deref().unwrap().is_empty());
    // The view's own keys are recorded.
    assert!(!run.keys.as_deref().unwrap().is_empty(), "{side:#}");
}

/// Item 12: the key given to `scrub(…, 'token', key)` is recorded.
#[test]
fn sql_provenance_records_scrub_keys() {
    let side = sql_sidecar(
        "SELECT scrub(email, 'token', 'k1') AS e FROM customers",
        false,
    );
    let rec = cloakline::provenance::Record::from_json(&side).unwrap();
    let keys = rec.run().unwrap().keys.clone().unwrap();
    assert_eq!(keys[0].key_id, "k1", "{side:#}");
}

/// Terminal escapes in column names are shown escaped, never raw.
#[test]
fn control_characters_in_names_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "id,\x1b[31mred\x1b[0m\n1,2\n").unwrap();
    let policy = write_policy(
        dir.path(),
        &format!(
            "{}fields:\n  id: {{ action: keep, basis: contract }}\n",
            crate::util::HEAD
        ),
    );
    let o = apply_files(&policy, None, &csv, &dir.path().join("o.parquet"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\x1b'), "{:?}", stderr(&o));
    assert!(stderr(&o).contains("\\u{1b}"), "{:?}", stderr(&o));
}

/// Out-of-range arguments are usage errors (exit 2), never a panic or an abort.
#[test]
fn out_of_range_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.parquet");
    for extra in [
        ["--batch-size", "18446744073709551615"],
        ["--batch-size", "0"],
        ["--threads", "0"],
        ["--zstd-level", "0"],
        ["--zstd-level", "99"],
    ] {
        let o = apply_example(&out, &extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(!out.exists());
    }
}

/// Item 15 at the SQL door: an error while the query runs quotes no value.
#[test]
fn sql_execution_errors_quote_no_values() {
    let o = run(&[
        "sql",
        "SELECT CAST(email AS INT) FROM customers",
        "--table",
        &table(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let emails = std::fs::read_to_string(root().join("examples/customers.csv")).unwrap();
    for line in emails.lines().skip(1) {
        for cell in line.split(',').filter(|c| c.contains('@')) {
            assert!(!stderr(&o).contains(cell), "{}", stderr(&o));
        }
    }
    assert!(!stderr(&o).contains('@'), "{}", stderr(&o));
}

/// Item 9 at the other doors: report, ropa, decrypt and sql never write over what they read.
#[test]
fn outputs_never_replace_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.parquet");
    apply_example_ok(&out, &[]);
    let side = dir.path().join("o.parquet.provenance.json");
    let before = std::fs::read(&side).unwrap();
    let data_before = std::fs::read(&out).unwrap();

    let policy = dir.path().join("p.yaml");
    std::fs::copy(root().join("policies/customers.yaml"), &policy).unwrap();
    let policy_before = std::fs::read(&policy).unwrap();
    let csv = dir.path().join("c.csv");
    std::fs::copy(root().join("examples/customers.csv"), &csv).unwrap();
    let csv_before = std::fs::read(&csv).unwrap();
    let k = keyring();
    let (o_s, s_s, p_s, c_s) = (
        out.to_str().unwrap(),
        side.to_str().unwrap(),
        policy.to_str().unwrap(),
        csv.to_str().unwrap(),
    );
    let t = format!("c={c_s}");
    let cases: Vec<Vec<&str>> = vec![
        vec!["report", o_s, "--format", "md", "--output", s_s],
        vec!["ropa", p_s, "--format", "csv", "--output", p_s],
        vec!["decrypt", "--keyring", &k, "--input", o_s, "--output", o_s],
        vec!["sql", "SELECT * FROM c", "--table", &t, "--output", c_s],
    ];
    for args in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(std::fs::read(&side).unwrap(), before);
    assert_eq!(std::fs::read(&out).unwrap(), data_before);
    assert_eq!(std::fs::read(&policy).unwrap(), policy_before);
    assert_eq!(std::fs::read(&csv).unwrap(), csv_before);
}

/// The demo keyring's warning reaches the person running the command.
#[test]
fn demo_keys_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    let o = apply_example_ok(&dir.path().join("o.parquet"), &[]);
    assert!(stderr(&o).contains("DEMO keys"), "{}", stderr(&o));
}

/// Item 2 at the CLI: `--require-signature` fails an unsigned record without a keyring.
#[test]
fn verify_can_require_a_signature() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.parquet");
    assert!(apply_example(&out, &[]).status.success());
    let o = run(&["verify", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["verify", out.to_str().unwrap(), "--require-signature"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

/// A path named on the command line that does not exist is an argument error (exit 2), as a
/// missing policy is.
#[test]
fn missing_paths_are_argument_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let o = crate::util::apply_example(&dir.path().join("o.parquet"), &[]);
    assert!(o.status.success());
    let p = root().join("policies/customers.yaml");
    for args in [
        vec![
            "apply",
            "--policy",
            p.to_str().unwrap(),
            "--input",
            missing.to_str().unwrap(),
            "--output",
            dir.path().join("x.parquet").to_str().unwrap(),
            "--keyring",
            &keyring(),
        ],
        vec!["verify", missing.to_str().unwrap()],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("missing.csv"), "{}", stderr(&o));
    }
}

/// `.tsv` tables are tab-separated in SQL too (and so in the privacy grouping pass).
#[test]
fn sql_reads_tsv_tables_as_tab_separated() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("t.tsv");
    std::fs::write(&tsv, "id\tname\n1\tAda\n2\tBo\n").unwrap();
    let t = format!("t={}", tsv.display());
    let o = run(&["sql", "SELECT count(name) AS n FROM t", "--table", &t]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("| 2 "));
}

/// Issue 12 item 5: a missing keyring names each key the policy uses once ("k1, k2"), not once
/// per field ("k1, k1, k1").
#[test]
fn missing_keyring_names_each_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.parquet");
    let o = run(&[
        "apply",
        "--policy",
        root().join("policies/customers.yaml").to_str().unwrap(),
        "--input",
        root().join("examples/customers.csv").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("key(s) k1, k2, but no keyring"), "{e}");
}
