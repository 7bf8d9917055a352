//! Hive-partitioned directory inputs (`currency=CNY/part-0.csv`): partition keys are columns
//! the policy must cover, their output directories come from the transformed values, and
//! `verify DIR` checks every file of the release by its relative path.

use std::path::{Path, PathBuf};

use crate::util::{demo_keyring, read_parquet, run, stderr};

const HEAD: &str = "policy: orders\nversion: 1\ncontroller: Example\njurisdictions: [EU]\npurpose: test\nunlisted: error\nfields:\n  order_id:\n    action: keep\n    basis: contract\n  amount:\n    action: keep\n    basis: contract\n";

/// `in/currency=CNY/part-0.csv` and `in/currency=USD/part-0.csv`, 3 rows each.
fn partitioned(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    for (cur, base) in [("CNY", 0), ("USD", 10)] {
        let d = input.join(format!("currency={cur}"));
        std::fs::create_dir_all(&d).unwrap();
        let rows: String = (0..3)
            .map(|i| format!("{},{}\n", base + i, 100 + i))
            .collect();
        std::fs::write(d.join("part-0.csv"), format!("order_id,amount\n{rows}")).unwrap();
    }
    input
}

fn apply(dir: &Path, currency_rule: &str) -> (std::process::Output, PathBuf) {
    let input = partitioned(dir);
    let policy = dir.join("p.yaml");
    std::fs::write(&policy, format!("{HEAD}{currency_rule}")).unwrap();
    let out = dir.join("out");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--keyring",
        demo_keyring().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    (o, out)
}

/// Relative paths of every file under `dir`, sorted, with `/`.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(
                    p.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn sidecar(out: &Path) -> serde_json::Value {
    let p = PathBuf::from(format!("{}.provenance.json", out.display()));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn an_unlisted_partition_key_is_an_error_not_a_copied_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(dir.path(), "");
    assert!(
        !o.status.success(),
        "a partition key the policy does not list passed"
    );
    assert!(stderr(&o).contains("currency"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn a_kept_partition_key_keeps_its_directories_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(
        dir.path(),
        "  currency:\n    action: keep\n    basis: contract\n    category: transaction\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        tree(&out),
        ["currency=CNY/part-0.parquet", "currency=USD/part-0.parquet"]
    );
    // The value lives in the directory name, not in the file (as any Hive layout).
    let (batches, _) = read_parquet(&out.join("currency=CNY/part-0.parquet"));
    assert!(batches[0].schema().field_with_name("currency").is_err());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    // The provenance has a field for it, with its basis.
    let doc = sidecar(&out).to_string();
    assert!(
        doc.contains("\"currency\""),
        "no provenance entry for the partition key"
    );
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        stderr(&v)
    );
}

#[test]
fn a_tokenized_partition_key_renames_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(
        dir.path(),
        "  currency:\n    action: tokenize\n    key: k1\n    domain: currency\n    length: 8\n    prefix: \"t_\"\n    basis: contract\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let files = tree(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        assert!(f.starts_with("currency=t_"), "{f}");
        assert!(
            !f.contains("CNY") && !f.contains("USD"),
            "clear value in {f}"
        );
    }
    assert_ne!(files[0].split('/').next(), files[1].split('/').next());
}

#[test]
fn a_dropped_partition_key_flattens_the_layout_without_collisions() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(dir.path(), "  currency:\n    action: drop\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let files = tree(&out);
    assert_eq!(files, ["part-0-1.parquet", "part-0.parquet"], "{files:?}");
    let rows: usize = files
        .iter()
        .map(|f| {
            read_parquet(&out.join(f))
                .0
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(rows, 6);
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        stderr(&v)
    );
}

#[test]
fn a_renamed_generalized_partition_key_names_the_directory_by_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(
        dir.path(),
        "  currency:\n    action: mask\n    keep_first: 1\n    rename: cur\n    basis: contract\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let files = tree(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("cur=C") || f.starts_with("cur=U")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .all(|f| !f.contains("CNY") && !f.contains("USD")),
        "{files:?}"
    );
}

#[test]
fn an_encrypted_partition_key_flattens_and_stays_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(
        dir.path(),
        "  currency:\n    action: encrypt\n    key: k2\n    basis: contract\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let files = tree(&out);
    assert!(files.iter().all(|f| !f.contains('=')), "{files:?}");
    let (batches, _) = read_parquet(&out.join(&files[0]));
    assert!(batches[0].schema().field_with_name("currency").is_ok());
}

#[test]
fn k_anonymity_counts_the_partition_key() {
    // currency as the only quasi-identifier with k = 4: each class has 3 rows, so the check
    // fails; it could not if the key were invisible to the models.
    let dir = tempfile::tempdir().unwrap();
    let input = partitioned(dir.path());
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "{HEAD}  currency:\n    action: keep\n    basis: contract\nprivacy:\n  quasi_identifiers:\n    currency: {{}}\n  k: 4\n"
        ),
    )
    .unwrap();
    let o = run(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--json",
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("currency"), "{text}");
}

#[test]
fn sql_sees_partition_keys_as_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = partitioned(dir.path());
    let o = run(&[
        "sql",
        "--table",
        &format!("t={}", input.display()),
        "SELECT currency, count(*) AS n FROM t GROUP BY currency ORDER BY currency",
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(text.contains("CNY") && text.contains("USD"), "{text}");
}

#[test]
fn verify_dir_reports_missing_extra_and_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(
        dir.path(),
        "  currency:\n    action: keep\n    basis: contract\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let verify = || {
        let v = run(&["verify", out.to_str().unwrap()]);
        (
            v.status.success(),
            String::from_utf8_lossy(&v.stdout).into_owned() + &stderr(&v),
        )
    };
    let (ok, text) = verify();
    assert!(ok, "{text}");
    assert!(text.contains("currency=CNY/part-0.parquet"), "{text}");

    // Same base name in two directories: matched by relative path, so both pass.
    let a = out.join("currency=CNY/part-0.parquet");
    let b = out.join("currency=USD/part-0.parquet");
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Swapped contents: both files fail their checksum.
    std::fs::write(&a, &b_bytes).unwrap();
    std::fs::write(&b, &a_bytes).unwrap();
    let (ok, text) = verify();
    assert!(!ok && text.contains("FAIL sha256"), "{text}");
    std::fs::write(&a, &a_bytes).unwrap();
    std::fs::write(&b, &b_bytes).unwrap();

    // An extra file.
    std::fs::copy(&a, out.join("currency=CNY/part-9.parquet")).unwrap();
    let (ok, text) = verify();
    assert!(
        !ok && text.contains("not in the record: currency=CNY/part-9.parquet"),
        "{text}"
    );
    std::fs::remove_file(out.join("currency=CNY/part-9.parquet")).unwrap();

    // A missing file.
    std::fs::remove_file(&b).unwrap();
    let (ok, text) = verify();
    assert!(
        !ok && text.contains("recorded but missing: currency=USD/part-0.parquet"),
        "{text}"
    );
    std::fs::write(&b, &b_bytes).unwrap();
    let (ok, text) = verify();
    assert!(ok, "{text}");
}

#[test]
fn a_mixed_layout_is_refused_and_unlisted_drop_flattens_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = partitioned(dir.path());
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, HEAD.replace("unlisted: error", "unlisted: drop")).unwrap();
    let args = |out: &Path| {
        vec![
            "apply".to_string(),
            "--policy".into(),
            policy.display().to_string(),
            "--input".into(),
            input.display().to_string(),
            "--output".into(),
            out.display().to_string(),
        ]
    };
    // unlisted: drop drops the key like any unlisted column: the layout flattens.
    let out = dir.path().join("out");
    let o = run(&args(&out).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(tree(&out), ["part-0-1.parquet", "part-0.parquet"]);
    // A file outside the partition directories: which value would its rows have?
    std::fs::write(input.join("loose.csv"), "order_id,amount\n1,2\n").unwrap();
    let out2 = dir.path().join("out2");
    let o = run(&args(&out2).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("partitioned differently"),
        "{}",
        stderr(&o)
    );
    assert!(!out2.exists());
}

#[test]
fn the_record_withholds_partition_values_of_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = apply(
        dir.path(),
        "  currency:\n    action: tokenize\n    key: k1\n    domain: currency\n    basis: contract\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let side = std::fs::read_to_string(format!("{}.provenance.json", out.display())).unwrap();
    assert!(
        !side.contains("CNY") && !side.contains("USD"),
        "a partition value in the record"
    );
    assert!(side.contains("currency=(withheld)"), "{side}");
    for f in tree(&out) {
        let bytes = std::fs::read(out.join(&f)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("CNY") && !text.contains("USD"),
            "a partition value in {f}"
        );
    }
}

#[test]
fn flattened_names_never_overwrite_one_another() {
    // x-2.csv, x.csv and x.csv under a dropped key: the third must not land on the first.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    for (d, f, base) in [
        ("a=1", "x-2.csv", 0),
        ("a=1", "x.csv", 10),
        ("a=2", "x.csv", 20),
    ] {
        std::fs::create_dir_all(input.join(d)).unwrap();
        std::fs::write(
            input.join(d).join(f),
            format!("order_id,amount\n{base},1\n"),
        )
        .unwrap();
    }
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, format!("{HEAD}  a:\n    action: drop\n")).unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = tree(&out);
    assert_eq!(files.len(), 3, "{files:?}");
    let rows: usize = files
        .iter()
        .map(|f| {
            read_parquet(&out.join(f))
                .0
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(rows, 3);
}

#[test]
fn an_emptied_partition_goes_to_the_null_directory_and_verifies() {
    // Every USD row is suppressed (k = 4 over currency, 3 rows each, suppression allowed):
    // its file keeps the layout under the null partition.
    let dir = tempfile::tempdir().unwrap();
    let input = partitioned(dir.path());
    std::fs::write(
        input.join("currency=CNY/part-1.csv"),
        "order_id,amount\n7,1\n8,1\n",
    )
    .unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "{HEAD}  currency:\n    action: keep\n    basis: contract\nprivacy:\n  quasi_identifiers:\n    currency: {{}}\n  k: 4\n  on_violation: suppress\n  max_suppression: 0.5\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = tree(&out);
    assert!(
        files.contains(&"currency=__HIVE_DEFAULT_PARTITION__/part-0.parquet".to_string()),
        "{files:?}"
    );
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        stderr(&v)
    );
}

fn apply_partitioned_by(
    dir: &Path,
    input: &Path,
    rules: &str,
    by: &str,
) -> (std::process::Output, PathBuf) {
    let policy = dir.join("p.yaml");
    std::fs::write(&policy, format!("{HEAD}{rules}")).unwrap();
    let out = dir.join("out");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--keyring",
        demo_keyring().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--partition-by",
        by,
    ]);
    (o, out)
}

#[test]
fn partition_by_names_directories_by_transformed_values_never_raw_ones() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    std::fs::write(
        &input,
        "order_id,amount,region\n1,10,Zürich\n2,20,\n3,30,Zürich\n4,40,a/b\n",
    )
    .unwrap();
    let (o, out) = apply_partitioned_by(
        dir.path(),
        &input,
        "  region:\n    action: tokenize\n    key: k1\n    domain: region\n    length: 8\n    prefix: \"t_\"\n    basis: contract\n",
        "region",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let files = tree(&out);
    // Two token directories and the null partition, one file each.
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(f.ends_with("/part-00000.parquet"), "{f}");
        assert!(
            !f.contains("Zürich") && !f.contains("a%2Fb"),
            "raw value in {f}"
        );
    }
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("region=__HIVE_DEFAULT_PARTITION__/"))
    );
    let mut rows = 0;
    for f in &files {
        let (batches, _) = read_parquet(&out.join(f));
        assert!(batches[0].schema().field_with_name("region").is_err());
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    assert_eq!(rows, 4);
    // The record lists each file with its rows; verify checks them all.
    let doc = sidecar(&out).to_string();
    assert!(!doc.contains("Zürich"), "raw value in the record");
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        stderr(&v)
    );
    // Read back as a table: the directory is a column again, with the token.
    let q = run(&[
        "sql",
        "SELECT count(DISTINCT region) AS n FROM t WHERE region LIKE 't_%'",
        "--table",
        &format!("t={}", out.display()),
    ]);
    assert!(q.status.success(), "{}", stderr(&q));
    let table = String::from_utf8_lossy(&q.stdout);
    assert!(table.contains("| 2 "), "{table}");
}

#[test]
fn partition_by_over_a_partitioned_input_keeps_its_keys_as_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = partitioned(dir.path());
    let (o, out) = apply_partitioned_by(
        dir.path(),
        &input,
        "  currency:\n    action: keep\n    basis: contract\n",
        "amount",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        tree(&out),
        [
            "amount=100/part-00000.parquet",
            "amount=100/part-00001.parquet",
            "amount=101/part-00000.parquet",
            "amount=101/part-00001.parquet",
            "amount=102/part-00000.parquet",
            "amount=102/part-00001.parquet",
        ]
    );
    let (batches, _) = read_parquet(&out.join("amount=100/part-00000.parquet"));
    assert!(batches[0].schema().field_with_name("currency").is_ok());
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        stderr(&v)
    );
}

#[test]
fn partition_by_refuses_missing_dropped_and_encrypted_columns_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    std::fs::write(&input, "order_id,amount,region,note\n1,10,EU,x\n").unwrap();
    let rules = "  region:\n    action: encrypt\n    key: k1\n    basis: contract\n  note:\n    action: drop\n";
    for (by, says) in [
        ("nosuch", "no output column"),
        ("note", "drops it"),
        ("region", "different value on every row"),
        ("amount,amount", "twice"),
    ] {
        let (o, out) = apply_partitioned_by(dir.path(), &input, rules, by);
        assert_eq!(o.status.code(), Some(2), "{by}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{by}: {}", stderr(&o));
        assert!(!out.exists(), "{by}: an output was left");
    }
    let o = run(&[
        "apply",
        "--policy",
        dir.path().join("p.yaml").to_str().unwrap(),
        "--keyring",
        demo_keyring().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        "-",
        "--output-format",
        "csv",
        "--provenance",
        dir.path().join("rec.json").to_str().unwrap(),
        "--partition-by",
        "amount",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn partition_by_over_no_rows_writes_an_empty_release_and_its_lineage_event() {
    // Regression: no partition met, so no file; the OpenLineage event then has no output
    // dataset, which is what happened, not an error.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty.csv");
    std::fs::write(&input, "order_id,amount,currency\n").unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!("{HEAD}  currency:\n    action: keep\n    basis: contract\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let event = dir.path().join("event.json");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--keyring",
        demo_keyring().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--partition-by",
        "currency",
        "--openlineage",
        event.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(&event).unwrap()).unwrap();
    assert_eq!(e["outputs"], serde_json::json!([]));
    assert_eq!(e["eventType"], "COMPLETE");
    assert!(tree(&out).is_empty(), "{:?}", tree(&out));
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
}
