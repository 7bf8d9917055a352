//! Hostile parameters and data at the kernels, the policy loader and the privacy search
//! (issue 10: items 4, 14, 15, 16 and the low ones on dictionaries, messages, empty outputs
//! and hierarchy files).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, DictionaryArray, RecordBatch};
use arrow::datatypes::Int32Type;

use crate::util::{
    HEAD, PEOPLE, apply_files, apply_in_tempdir, check, demo_keyring, dir_names, people_csv,
    read_parquet, run, stderr, write_policy,
};

/// Expect `apply` to fail with `code`, name every needle, quote none of `secrets`, and
/// write nothing.
fn refused(policy: &str, data: &[u8], code: i32, needles: &[&str], secrets: &[&str]) -> String {
    let (o, out, _dir) = apply_in_tempdir(policy, "d.csv", data);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    for s in secrets {
        assert!(!err.contains(s), "the message quotes {s:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    let out_dir = out.parent().unwrap();
    assert!(dir_names(out_dir).is_empty(), "{:?}", dir_names(out_dir));
    err
}

const NAMES: &[u8] = "id,name\n1,secret-ascii\n2,张伟明秘密\n".as_bytes();

/// Item 4: `keep_first`/`keep_last` beyond any value wrapped around in `kf + kl`: ASCII
/// panicked with the value in the message, non-ASCII was written in clear. Now the policy
/// is refused at load, with the position.
#[test]
fn huge_mask_parameters_are_refused_at_load() {
    let big = "18446744073709551615";
    for rule in [
        format!("{{ action: mask, keep_first: {big}, keep_last: 1, basis: contract }}"),
        format!("{{ action: mask, keep_last: {big}, basis: contract }}"),
        format!(
            "{{ action: scrub, replace_with: mask, keep_first: {big}, keep_last: 1, basis: contract }}"
        ),
        "{ action: mask, keep_first: 1001, basis: contract }".to_string(),
    ] {
        let policy =
            format!("{HEAD}fields:\n  id: {{ action: keep, basis: contract }}\n  name: {rule}\n");
        refused(
            &policy,
            NAMES,
            2,
            &["field `name`", "line 8", "at most 1000"],
            &["secret-ascii", "张伟明"],
        );
    }
    // A bound that is still large masks every short value entirely.
    let policy = format!(
        "{HEAD}fields:\n  id: {{ action: keep, basis: contract }}\n  name: {{ action: mask, keep_first: 1000, keep_last: 1000, basis: contract }}\n"
    );
    let (o, out, _dir) = apply_in_tempdir(&policy, "d.csv", NAMES);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&out);
    let names = batches[0].column(1).as_string::<i32>();
    assert_eq!(names.value(0), "************");
    assert_eq!(names.value(1), "*****");
}

/// Item 16: a NaN `top` matched nothing (values released unchanged as "generalized"); a
/// tiny `bin_width` gave `[-inf, NaN)`.
#[test]
fn non_finite_and_overflowing_generalize_parameters_are_refused() {
    let data = b"id,income\n1,52000.5\n2,61000.25\n";
    for (rule, needle) in [
        ("top: .nan", "`top` is NaN"),
        ("bottom: -.inf", "`bottom` is -inf"),
        ("bin_width: 5e-324", "`bin_width`"),
        ("bin_width: .inf", "`bin_width` is inf"),
        ("breaks: [0, .nan]", "`breaks`"),
    ] {
        let policy = format!(
            "{HEAD}fields:\n  id: {{ action: keep, basis: contract }}\n  income: {{ action: generalize, {rule}, basis: contract }}\n"
        );
        refused(
            &policy,
            data,
            2,
            &["field `income`", "line 8", needle],
            &["52000"],
        );
    }
    // The same checks hold for the levels of a quasi-identifier.
    let policy = format!(
        "{HEAD}fields:\n  id: {{ action: keep, basis: contract }}\n  income: {{ action: keep, basis: contract }}\nprivacy:\n  quasi_identifiers:\n    income: {{ levels: [{{ top: .nan }}] }}\n  k: 2\n"
    );
    refused(
        &policy,
        data,
        2,
        &["income", "level 1", "`top` is NaN"],
        &[],
    );
}

/// Low item: a policy that drops every column wrote an output that failed its own verify.
#[test]
fn a_policy_that_drops_every_column_is_refused() {
    for fields in [
        "  id: { action: drop }\n  name: { action: drop }\n".to_string(),
        "  id: { action: drop }\nunlisted: drop\n".to_string(),
    ] {
        refused(
            &format!("{HEAD}fields:\n{fields}"),
            NAMES,
            2,
            &["no column in the output"],
            &[],
        );
    }
}

/// Low item: messages written for Rust programmers, and "`rename` is empty" for an empty
/// field name.
#[test]
fn policy_errors_speak_to_people() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!(
                "{HEAD}fields:\n  id: {{ action: keep, basis: contract }}\n  id: {{ action: drop }}\n"
            ),
            vec!["duplicate", "line 8"],
        ),
        (
            "policy: ~\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nfields:\n  id: { action: drop }\n".to_string(),
            vec!["null", "line 1"],
        ),
        (
            format!("{HEAD}fields:\n  \"\": {{ action: keep, basis: contract }}\n"),
            vec!["empty name", "line 7"],
        ),
        (
            format!("{HEAD}fields:\n  id: {{ action: keep, basis: contract, rename: \"\" }}\n"),
            vec!["`rename` is empty", "field `id`", "line 7", "leave `rename` out"],
        ),
    ];
    for (text, needles) in cases {
        let p = write_policy(dir.path(), &text);
        let o = run(&["validate", "--policy", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{text}\n{err}");
        assert!(err.contains("p.yaml"), "{err}");
        for n in needles {
            assert!(err.contains(n), "expected {n:?} in: {err}");
        }
        for hint in ["DuplicateKeyPolicy", "Options", "Option<String>"] {
            assert!(!err.contains(hint), "library hint in: {err}");
        }
    }
}

/// Low item: dictionary-encoded string columns (pandas categoricals) were refused by
/// tokenize, encrypt, mask, generalize and scrub with a misleading message.
#[test]
fn dictionary_encoded_columns_are_transformed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cat.parquet");
    let values = vec![
        Some("ann@example.com"),
        None,
        Some("10115"),
        Some("ann@example.com"),
    ];
    let dict: DictionaryArray<Int32Type> = values.clone().into_iter().collect();
    let col: ArrayRef = Arc::new(dict);
    let names = ["t", "e", "m", "g", "s", "k"];
    let batch = RecordBatch::try_from_iter(names.iter().map(|n| (*n, Arc::clone(&col)))).unwrap();
    let f = std::fs::File::create(&input).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let policy = write_policy(
        dir.path(),
        &format!(
            "{HEAD}fields:\n  t: {{ action: tokenize, key: k1, basis: contract }}\n  e: {{ action: encrypt, key: k1, basis: contract }}\n  m: {{ action: mask, keep_last: 3, basis: contract }}\n  g: {{ action: generalize, keep_prefix: 2, basis: contract }}\n  s: {{ action: scrub, basis: contract }}\n  k: {{ action: keep, basis: contract }}\n"
        ),
    );
    let out = dir.path().join("o.parquet");
    let o = apply_files(&policy, Some(&demo_keyring()), &input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&out);
    let b = &batches[0];
    let col = |n: &str| -> Vec<Option<String>> {
        let a = arrow::compute::cast(
            b.column_by_name(n).unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        a.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    };
    for n in names {
        assert_eq!(col(n)[1], None, "null stays null in {n}");
    }
    let t = col("t");
    assert_eq!(t[0], t[3], "equal values, equal tokens");
    assert!(t[0].as_deref().is_some_and(|v| !v.contains("example")));
    assert!(
        col("e")[0]
            .as_deref()
            .is_some_and(|v| !v.contains("example"))
    );
    assert_eq!(col("m")[2].as_deref(), Some("**115"));
    assert_eq!(col("g")[2].as_deref(), Some("10"));
    assert_eq!(col("s")[0].as_deref(), Some("<EMAIL>"));
    assert_eq!(col("k")[0].as_deref(), Some("ann@example.com"));
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
}

/// Item 14: the lattice search had no budget and said nothing while it ran for half an
/// hour. A spent budget now fails with exit 3 and says what to do.
#[test]
fn the_privacy_search_stops_at_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let policy = dir.path().join("p.yaml");
    let out = dir.path().join("out.parquet");
    let write = |budget: &str| {
        std::fs::write(
            &policy,
            format!(
                "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 5 }}, {{ bin_width: 10 }}] }}\n    zip: {{ levels: [{{ keep_prefix: 4 }}] }}\n  k: 3\n  on_violation: generalize\n{budget}"
            ),
        )
        .unwrap();
    };
    let apply = || apply_files(&policy, None, &data, &out, &[]);
    write("  search_budget: { nodes: 1 }\n");
    let o = apply();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    for n in [
        "budget (1 nodes)",
        "fewer quasi-identifiers",
        "coarser hierarchies",
        "search_budget",
        "Nothing was written",
    ] {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    assert!(!out.exists());
    // Short searches are quiet and a budget they fit in changes nothing.
    write("  search_budget: { seconds: 60, nodes: 1000 }\n");
    let o = apply();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("privacy search:"), "{}", stderr(&o));
    // Budgets are checked at load.
    for (b, needle) in [
        ("{ seconds: 0 }", "`seconds` is 0"),
        ("{ nodes: 0 }", "`nodes` is 0"),
        ("{ minutes: 5 }", "minutes"),
    ] {
        write(&format!("  search_budget: {b}\n"));
        let o = apply();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        assert!(stderr(&o).contains("line"), "{}", stderr(&o));
    }
}

/// Item 15: with a `privacy:` block the grouping pass reported lines counted from a
/// partition's start, and arrow's messages quoted the row. A file large enough for
/// DataFusion to scan in parallel ranges (> 10 MB) with a bad value near its end.
#[test]
fn grouping_errors_give_the_file_line_and_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("big.csv");
    let rows = 240_000;
    let bad = 200_000;
    let mut s = String::with_capacity(rows * 60);
    s.push_str("age,zip,dx,note\n");
    for i in 0..rows {
        if i == bad {
            s.push_str("oops-secret,10001,flu,u20000@example.com padding padding\n");
        } else {
            s.push_str(&format!(
                "{},1000{},flu,some padding text to make the file large\n",
                30 + i % 40,
                i % 3
            ));
        }
    }
    std::fs::write(&data, s).unwrap();
    assert!(std::fs::metadata(&data).unwrap().len() > 11 << 20);
    let policy = write_policy(
        dir.path(),
        &format!(
            "{HEAD}{PEOPLE}  note: {{ action: drop }}\nprivacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 10 }}] }}\n  k: 2\n"
        ),
    );
    let out = dir.path().join("o.parquet");
    for cmd in ["apply", "check"] {
        let mut args = vec![
            cmd,
            "--policy",
            policy.to_str().unwrap(),
            "--input",
            data.to_str().unwrap(),
        ];
        if cmd == "apply" {
            args.extend(["--output", out.to_str().unwrap()]);
        }
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        // Line 1 is the header: the bad record is on line bad + 2.
        let line = format!("line {}", bad + 2);
        assert!(err.contains(&line), "{cmd}: expected {line:?} in: {err}");
        assert!(err.contains("big.csv"), "{cmd}: {err}");
        for secret in ["oops-secret", "u20000@example.com", "Row data"] {
            assert!(!err.contains(secret), "{cmd}: {secret:?} in: {err}");
        }
        assert!(!out.exists());
    }
}

/// Low item: hierarchy files were read unbounded from anywhere (`/dev/zero`, FIFOs, any
/// path). They must be regular files of at most 64 MiB inside the policy's directory (or
/// the working directory), and errors name the file.
#[test]
fn hierarchy_files_are_regular_bounded_and_confined() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("policy");
    std::fs::create_dir(&sub).unwrap();
    let data = people_csv(&sub);
    std::fs::write(dir.path().join("outside.csv"), "30;30-34;*\n").unwrap();
    std::fs::create_dir(sub.join("a-directory")).unwrap();
    let big = std::fs::File::create(sub.join("huge.csv")).unwrap();
    big.set_len(65 << 20).unwrap();
    let fifo = sub.join("fifo.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let mut cases = vec![
        ("/dev/zero".to_string(), "outside the policy's directory"),
        ("/etc/passwd".to_string(), "outside the policy's directory"),
        (
            "../outside.csv".to_string(),
            "outside the policy's directory",
        ),
        ("a-directory".to_string(), "not a regular file"),
        ("huge.csv".to_string(), "larger than 64 MiB"),
        ("missing.csv".to_string(), "cannot read it"),
    ];
    if made {
        cases.push(("fifo.csv".to_string(), "not a regular file"));
    }
    let policy = sub.join("p.yaml");
    for (path, needle) in cases {
        std::fs::write(
            &policy,
            format!(
                "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{ hierarchy: \"{path}\" }}\n  k: 2\n"
            ),
        )
        .unwrap();
        let o = check(&policy, &data, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.contains(needle),
            "{path}: expected {needle:?} in: {err}"
        );
        assert!(err.contains(&path), "{path}: the file is not named: {err}");
        assert!(err.contains("line 12"), "{path}: {err}");
    }
    // A file next to the policy still works, by a relative path (and the data, six distinct
    // ages, is measured against it: exit 3, not a policy error).
    std::fs::write(
        sub.join("age.csv"),
        (30..36)
            .map(|a| format!("{a};30-39;*\n"))
            .collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        &policy,
        format!(
            "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{ hierarchy: age.csv }}\n  k: 2\n"
        ),
    )
    .unwrap();
    let o = check(&policy, &data, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("smallest k"));
}
