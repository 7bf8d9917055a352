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
    let o = apply_files(policy, None, data, &out, &["--json", "--overwrite"]);
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
    // The report shows what each column holds.
    let out = dir.path().join("out.parquet");
    let o = run(&["report", out.to_str().unwrap(), "--format", "md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("generalize (kind prefix, keepPrefix 4)")
            && md.contains("hierarchy (hierarchy policy levels, label"),
        "{md}"
    );
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
        (
            zip3,
            "{ levels: [{ keep_prefix: 2 }], max_level: 0 }",
            generalize,
            false,
        ),
        (
            "action: keep, rename: postcode, basis: consent, type: string",
            "{}",
            generalize,
            false,
        ),
        // Without a search the field rule's output (level 0) is released.
        (
            zip3,
            "{}",
            "  on_violation: suppress\n  max_suppression: 0.9\n",
            false,
        ),
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

#[test]
fn level_bounds_and_weights_come_from_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let with = |age: &str, tail: &str| {
        format!(
            "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {age}\n    zip: {{ levels: [{{ keep_prefix: 4 }}] }}\n  k: 2\n{tail}"
        )
    };
    // `min_level` holds without a search too: `suppress` releases age in bins of 5.
    let policy = write_policy(
        dir.path(),
        &with(
            "{ levels: [{ bin_width: 5 }, { bin_width: 10 }], min_level: 1 }",
            "  on_violation: suppress\n  max_suppression: 0.9\n",
        ),
    );
    let (summary, record) = apply_json(dir.path(), &policy, &data);
    assert_eq!(summary["privacy"]["levels"], json!([1, 0]));
    assert_eq!(
        field_node(&record, "age")["cl:params"]["binWidth"],
        json!(5.0)
    );
    // With `generalize`, zip may not leave level 0 and age may not reach `*`; weight 0 makes
    // age free, so the search takes it as far as allowed.
    let policy = write_policy(
        dir.path(),
        &with(
            "{ levels: [{ bin_width: 5 }, { bin_width: 10 }], max_level: 2, weight: 0 }",
            "  on_violation: generalize\n  max_suppression: 0.5\n",
        )
        .replace("keep_prefix: 4 }] }", "keep_prefix: 4 }], max_level: 0 }"),
    );
    let (summary, _) = apply_json(dir.path(), &policy, &data);
    assert_eq!(summary["privacy"]["levels"], json!([2, 0]));
    // Bounds outside the hierarchy, or crossed, are refused with the entry's position.
    for (age, want) in [
        (
            "{ levels: [{ bin_width: 5 }], max_level: 3 }",
            "levels 0 to 2",
        ),
        ("{ min_level: 1, max_level: 0 }", "above max_level"),
        ("{ weight: -1 }", "at least 0"),
    ] {
        let policy = write_policy(dir.path(), &with(age, "  on_violation: generalize\n"));
        let o = run(&["validate", "--policy", policy.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{age}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(want) && e.contains("line 12"), "{e}");
    }
}

#[test]
fn check_needs_no_keyring_for_columns_the_models_do_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv(
        dir.path(),
        "d.csv",
        &[
            ("cust-alpha", 30, "100", "flu"),
            ("cust-bravo", 30, "100", "hiv"),
            ("cust-charlie", 40, "200", "flu"),
            ("cust-delta", 40, "200", "hiv"),
        ],
    );
    // customer_id is tokenized (and the subject), dx (sensitive) too: no key is needed to
    // group them, since tokens compare as the input values do.
    let policy = write_policy(
        dir.path(),
        &format!(
            "{HEAD}fields:\n  customer_id: {{ action: tokenize, key: k1, domain: c, basis: consent }}\n  age: {{ action: keep, basis: consent }}\n  zip: {{ action: keep, basis: consent, type: string }}\n  dx: {{ action: tokenize, key: k2, domain: d, basis: consent }}\nprivacy:\n  quasi_identifiers:\n    age: {{}}\n    zip: {{}}\n  k: 2\n  l_diversity:\n    - {{ attribute: dx, l: 2 }}\n  subject: customer_id\n"
        ),
    );
    let o = crate::util::bin()
        .args(["check", "--json", "--policy"])
        .arg(&policy)
        .arg("--input")
        .arg(&data)
        .env_remove("CLOAKLINE_KEYRING")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["assessment"]["smallestClass"], 2);
    assert_eq!(r["assessment"]["sensitive"][0]["distinctL"], 2);
    // apply still needs the keys.
    let out = dir.path().join("o.parquet");
    let o = crate::util::bin()
        .args(["apply", "--policy"])
        .arg(&policy)
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(&out)
        .env_remove("CLOAKLINE_KEYRING")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn check_previews_what_apply_would_release() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let with = |tail: &str| {
        write_policy(
            dir.path(),
            &format!(
                "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 5 }}, {{ bin_width: 10 }}] }}\n    zip: {{ levels: [{{ keep_prefix: 4 }}] }}\n  k: 3\n{tail}"
            ),
        )
    };
    // Level 0 fails k = 3, but the search finds a release: check previews it and passes.
    let policy = with("  on_violation: generalize\n  metric: height\n");
    let o = check(&policy, &data, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["meetsWithSuppression"], false);
    let p = &r["preview"];
    assert_eq!(p["satisfied"], true);
    assert_eq!(p["onViolation"], "generalize");
    assert_eq!(p["assessment"]["levels"], json!([2, 1]));
    assert_eq!(p["assessment"]["smallestClass"], 6);
    assert_eq!(
        p["assessment"]["transformations"][1]["params"]["keepPrefix"],
        4
    );
    assert!(p["search"]["latticeNodes"].as_u64().unwrap() > 1);
    // The same as apply chooses.
    let (summary, _) = apply_json(dir.path(), &policy, &data);
    assert_eq!(summary["privacy"]["levels"], p["assessment"]["levels"]);
    let text = String::from_utf8_lossy(&check(&policy, &data, &[]).stdout).to_string();
    assert!(
        text.contains("preview (on_violation: generalize)") && text.contains("zip: level 1/2"),
        "{text}"
    );
    // --no-preview keeps the strict level-0 check.
    let o = check(&policy, &data, &["--json", "--no-preview"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r.get("preview").is_none());
    // A search with no solution: the preview says why, and check exits 3.
    let policy = with("  on_violation: generalize\n");
    std::fs::write(
        &policy,
        std::fs::read_to_string(&policy)
            .unwrap()
            .replace("k: 3", "k: 6\n  max_suppression: 0")
            .replace("keep_prefix: 4 }] }", "keep_prefix: 4 }], max_level: 0 }"),
    )
    .unwrap();
    let o = check(&policy, &data, &["--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["preview"]["satisfied"], false);
    assert!(
        r["preview"]["message"]
            .as_str()
            .unwrap()
            .contains("apply would write nothing"),
        "{r}"
    );
    // `fail` has nothing to preview.
    let policy = with("");
    let o = check(&policy, &data, &["--json"]);
    assert_eq!(o.status.code(), Some(3));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r.get("preview").is_none());
}

#[test]
fn check_measures_the_min_level_that_fail_releases() {
    // Ages 30..35 are unique (k = 1 at level 0) but one class in tens: with `min_level: 1`
    // and `on_violation: fail`, apply releases tens and succeeds, so check must agree.
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let policy = write_policy(
        dir.path(),
        &format!(
            "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 10 }}], min_level: 1 }}\n  k: 2\n  on_violation: fail\n"
        ),
    );
    let out = dir.path().join("out.parquet");
    let o = apply_files(&policy, None, &data, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = check(&policy, &data, &["--json"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(
        o.status.success(),
        "check measured level 0, not the min_level apply releases: {text}"
    );
}
