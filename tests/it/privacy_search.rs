//! What the privacy search releases: the effective transformation at the chosen level, classes
//! counted over subjects, level bounds and weights, and `check`'s preview. Small generated data
//! only (no `../shared`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::{HEAD, PEOPLE, apply_files, check, people_csv, run, stderr, write_policy};

/// `apply --json` of `policy` on `data` into `dir/out.parquet`; the run summary and the
/// provenance sidecar.
fn apply_json(dir: &Path, policy: &Path, data: &Path) -> (Value, Value) {
    let out = dir.join("out.parquet");
    let o = apply_files(policy, None, data, &out, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let side = dir.join("out.parquet.provenance.json");
    let record: Value = serde_json::from_str(&std::fs::read_to_string(side).unwrap()).unwrap();
    (summary, record)
}

/// The output field node of column `name` in a provenance document.
fn field_node<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["@included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["cl:column"] == name && n.get("cl:params").is_some())
        .unwrap_or_else(|| panic!("no field node {name}"))
}

#[test]
fn the_record_states_the_effective_transformation_at_the_chosen_level() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    // Six people: one class needs age in tens (level 2), zip cut to 4 (level 1), dx at `*`.
    let policy = write_policy(
        dir.path(),
        &format!(
            "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 5 }}, {{ bin_width: 10 }}] }}\n    zip: {{ levels: [{{ keep_prefix: 4 }}] }}\n    dx: {{}}\n  k: 6\n  on_violation: generalize\n  metric: height\n"
        ),
    );
    let (summary, record) = apply_json(dir.path(), &policy, &data);
    assert_eq!(summary["privacy"]["levels"], json!([2, 1, 1]));
    let age = field_node(&record, "age");
    assert_eq!(age["cl:action"], "generalize");
    assert_eq!(age["cl:params"]["binWidth"], json!(10.0), "{age}");
    assert_eq!(age["cl:quasiIdentifier"]["level"], 2);
    let zip = field_node(&record, "zip");
    assert_eq!(zip["cl:params"]["keepPrefix"], 4, "{zip}");
    let dx = field_node(&record, "dx");
    assert_eq!(
        dx["cl:params"],
        json!({"hierarchy": "policy levels", "level": 1, "label": "*"})
    );
    // The run summary and the evidence's assessment say the same, next to the declared rule.
    let t = &summary["privacy"]["transformations"];
    // Quasi-identifiers in name order: age, dx, zip.
    assert_eq!(t[2]["field"], "zip");
    assert_eq!(t[2]["level"], 1);
    assert_eq!(t[2]["action"], "generalize");
    assert_eq!(t[2]["params"], json!({"kind": "prefix", "keepPrefix": 4}));
    assert_eq!(t[2]["declared"], json!({}));
    assert_eq!(t[1]["action"], "hierarchy");
    let evidence = record["@included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n.get("cl:achieved").is_some())
        .unwrap();
    assert_eq!(evidence["cl:achieved"]["transformations"], *t);
}

#[test]
fn a_renamed_quasi_identifier_may_not_name_a_unit_a_higher_level_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let with = |zip_rule: &str, qi: &str, tail: &str| {
        format!(
            "{HEAD}fields:\n  age: {{ action: keep, basis: consent }}\n  zip: {{ {zip_rule} }}\n  dx: {{ action: keep, basis: consent }}\nprivacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 10 }}] }}\n    zip: {qi}\n  k: 2\n{tail}"
        )
    };
    let zip3 = "action: generalize, keep_prefix: 3, rename: zip3, basis: consent, type: string";
    let generalize = "  on_violation: generalize\n";
    for (rule, qi, tail, refused) in [
        // The search may choose prefix 2 or `*`: `zip3` would lie.
        (zip3, "{ levels: [{ keep_prefix: 2 }] }", generalize, true),
        (
            "action: keep, rename: birth_year, basis: consent, type: string",
            "{}",
            generalize,
            true,
        ),
        // The name is the policy's and stays true at every level the search may choose.
        (zip3, "{ levels: [{ keep_prefix: 2 }], max_level: 0 }", generalize, false),
        (
            "action: keep, rename: postcode, basis: consent, type: string",
            "{}",
            generalize,
            false,
        ),
        // Without a search the field rule's output (level 0) is released.
        (zip3, "{}", "  on_violation: suppress\n  max_suppression: 0.9\n", false),
    ] {
        let policy = write_policy(dir.path(), &with(rule, qi, tail));
        let o = run(&["validate", "--policy", policy.to_str().unwrap()]);
        if refused {
            assert_eq!(o.status.code(), Some(2), "{rule} {qi}: {}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains("renamed") && e.contains("line"), "{e}");
        } else {
            assert!(o.status.success(), "{rule} {qi}: {}", stderr(&o));
        }
    }
    let _ = data;
}

/// `rows` as a CSV with columns customer_id, age, zip, dx, written to `dir/name`.
fn csv(dir: &Path, name: &str, rows: &[(&str, u32, &str, &str)]) -> PathBuf {
    let mut s = String::from("customer_id,age,zip,dx\n");
    for (c, a, z, d) in rows {
        s.push_str(&format!("{c},{a},{z},{d}\n"));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

const SUBJECT_FIELDS: &str = "fields:\n  customer_id: { action: drop }\n  age: { action: keep, basis: consent }\n  zip: { action: keep, basis: consent, type: string }\n  dx: { action: keep, basis: consent }\n";

#[test]
fn with_a_subject_classes_count_people_not_rows() {
    let dir = tempfile::tempdir().unwrap();
    // One customer fills the (30, 100) class with three rows; (40, 200) holds three people.
    let data = csv(
        dir.path(),
        "d.csv",
        &[
            ("cust-alpha", 30, "100", "flu"),
            ("cust-alpha", 30, "100", "flu"),
            ("cust-alpha", 30, "100", "hiv"),
            ("cust-bravo", 40, "200", "flu"),
            ("cust-charlie", 40, "200", "hiv"),
            ("cust-delta", 40, "200", "cold"),
        ],
    );
    let policy = |subject: &str| {
        write_policy(
            dir.path(),
            &format!(
                "{HEAD}{SUBJECT_FIELDS}privacy:\n  quasi_identifiers:\n    age: {{}}\n    zip: {{}}\n  k: 3\n{subject}"
            ),
        )
    };
    // Counting records, both classes have 3.
    let o = check(&policy(""), &data, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["assessment"]["smallestClass"], 3);
    assert_eq!(r["assessment"]["counted"], "records");
    // Counting customers, (30, 100) has one person: k = 3 fails, 3 records violate.
    let o = check(&policy("  subject: customer_id\n"), &data, &["--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &r["assessment"];
    assert_eq!(a["smallestClass"], 1);
    assert_eq!(a["counted"], "subjects (customer_id)");
    assert_eq!(a["recordsBelowK"], 3);
    assert_eq!(r["recordsViolating"], 3);
    // The subject is never a sensitive attribute of the report.
    assert_eq!(a["sensitive"], json!([]));
    let o = check(&policy("  subject: customer_id\n"), &data, &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("subjects (customer_id)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // apply with suppression drops the lone customer's rows; the record says what was counted.
    let p = policy("  subject: customer_id\n  on_violation: suppress\n  max_suppression: 0.5\n");
    let (summary, record) = apply_json(dir.path(), &p, &data);
    assert_eq!(summary["privacy"]["suppressed"], 3);
    assert_eq!(summary["privacy"]["counted"], "subjects (customer_id)");
    let text = record.to_string();
    assert!(!text.contains("cust-"), "{text}");
}

#[test]
fn an_unknown_subject_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        &format!(
            "{HEAD}{SUBJECT_FIELDS}privacy:\n  quasi_identifiers:\n    age: {{}}\n  k: 2\n  subject: client\n"
        ),
    );
    let o = run(&["validate", "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("subject `client`") && e.contains("line 15 column 12"),
        "{e}"
    );
}
