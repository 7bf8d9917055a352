//! `cloakline validate`: every problem of a policy in one run, `--json`, `--strict` and
//! `--sign-key`.

use serde_json::Value;

use crate::util::*;

const HEAD: &str = "policy: t\nversion: 1\ncontroller: C\npurpose: p\n";

/// Fields in reverse alphabetical order, five of them with problems of different kinds (a
/// missing basis, an unknown action, a stray parameter, an unknown YAML key, a rename that
/// clashes), and a TODO controller: all of them in one run.
fn drafted() -> String {
    "policy: t\nversion: 1\ncontroller: TODO\npurpose: p\njurisdictions: [EU]\nfields:\n  zip: { action: keep }\n  year:\n    action: generalise\n    to: year\n  x_id: { action: mask, key: k1, basis: contract }\n  web: { action: keep, basis: contract, colour: red }\n  visit: { action: keep, basis: contract, rename: day }\n  day: { action: keep, basis: contract }\n  ok: { action: drop }\n".to_string()
}

fn validate(dir: &std::path::Path, body: &str, extra: &[&str]) -> std::process::Output {
    let p = write_policy(dir, body);
    run(&[&["validate", "--policy", p.to_str().unwrap()], extra].concat())
}

#[test]
fn every_problem_is_reported_in_one_run_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let o = validate(dir.path(), &drafted(), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("6 problems, in file order"), "{err}");
    let wanted = [
        "line 3 column 1: `controller` is TODO",
        "field `zip` (line 7 column 8): `basis` is missing",
        "field `year` (line 9 column 13): unknown action `generalise`",
        "field `x_id` (line 11 column 9): `key` is not a parameter of `mask`",
        "field `web` (line 12 column 41): unknown field `colour`",
        "field `day` (line 14 column 8): fields `visit` and `day` both write output column `day`",
    ];
    let mut last = 0;
    for w in wanted {
        let at = err.find(w).unwrap_or_else(|| panic!("{w:?} not in {err}"));
        assert!(at > last, "{w:?} out of file order in {err}");
        last = at;
    }
    // Fixed, it passes.
    let fixed = drafted()
        .replace("controller: TODO", "controller: C")
        .replace("zip: { action: keep }", "zip: { action: drop }")
        .replace("generalise", "generalize\n    basis: contract")
        .replace("mask, key: k1,", "mask,")
        .replace(", colour: red", "")
        .replace("rename: day", "rename: visit_day");
    let o = validate(dir.path(), &fixed, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn json_lists_every_problem_with_its_place_also_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let o = validate(dir.path(), &drafted(), &["--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document on stdout");
    assert_eq!(v["valid"], false);
    assert!(v["policy"].as_str().unwrap().ends_with("p.yaml"), "{v}");
    let errors = v["errors"].as_array().unwrap();
    let places: Vec<(u64, Option<&str>)> = errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str()))
        .collect();
    assert_eq!(
        places,
        [
            (3, None),
            (7, Some("zip")),
            (9, Some("year")),
            (11, Some("x_id")),
            (12, Some("web")),
            (14, Some("day")),
        ],
        "{v}"
    );
    assert_eq!(errors[0]["rule"], "DRAFT");
    assert_eq!(errors[0]["column"], 1);
    assert!(errors[1].get("rule").is_none(), "{v}");
    assert!(
        errors[2]["message"]
            .as_str()
            .unwrap()
            .contains("generalise"),
        "{v}"
    );
    assert_eq!(v["warnings"], Value::Array(vec![]));
    // A valid policy: valid, nothing listed, and only the JSON on stdout.
    let o = validate(
        dir.path(),
        &format!("{HEAD}jurisdictions: [EU]\nfields:\n  a: {{ action: keep, basis: contract }}\n"),
        &["--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["errors"], Value::Array(vec![]));
    // Invalid YAML still gives the object, with its one error placed.
    let o = validate(dir.path(), "policy: t\nversion: [1\n", &["--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["errors"][0]["line"].as_u64().is_some(), "{v}");
}

#[test]
fn strict_fails_on_a_warning_and_passes_without() {
    let dir = tempfile::tempdir().unwrap();
    // PIPL-23: provided to another handler on consent without separate consent (a warning).
    let warned = format!(
        "{HEAD}jurisdictions: [CN]\nrecipients: [Partner]\nfields:\n  a: {{ action: keep, basis: consent }}\n"
    );
    let o = validate(dir.path(), &warned, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning [PIPL-23]"), "{}", stderr(&o));
    let o = validate(dir.path(), &warned, &["--strict"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--strict"), "{}", stderr(&o));
    let o = validate(dir.path(), &warned, &["--strict", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let w = &v["warnings"][0];
    assert_eq!(
        (w["rule"].as_str(), w["field"].as_str(), w["line"].as_u64()),
        (Some("PIPL-23"), Some("a"), Some(8)),
        "{v}"
    );
    // Without the warnings (no recipient), --strict passes.
    // (and no field on consent, which without a `consent:` ledger is the CONSENT warning)
    let clean = warned
        .replace("recipients: [Partner]\n", "")
        .replace("basis: consent", "basis: contract");
    let o = validate(dir.path(), &clean, &["--strict"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn a_signing_key_that_also_protects_data_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{HEAD}jurisdictions: [EU]\nfields:\n  id: {{ action: tokenize, key: k1, basis: contract }}\n  card: {{ action: encrypt, key: k2, basis: contract }}\n  notes: {{ action: scrub, replace_with: token, key: k1, basis: contract }}\n"
    );
    let o = validate(dir.path(), &body, &["--sign-key", "k1"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // Tokenize and scrub-with-tokens use k1; encrypt uses k2 and is not named.
    for f in ["field `id` (line 7", "field `notes` (line 9"] {
        assert!(err.contains(&format!("warning: {f}")), "{f} not in {err}");
    }
    assert!(!err.contains("field `card`"), "{err}");
    assert!(
        err.contains("whoever can check the signature holds the key that protects the data")
            && err.contains("keys generate --signing"),
        "{err}"
    );
    let o = validate(dir.path(), &body, &["--sign-key", "k1", "--strict"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = validate(dir.path(), &body, &["--sign-key", "k2", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["warnings"][0]["field"], "card");
    // A key the policy does not use: no warning, --strict passes.
    let o = validate(dir.path(), &body, &["--sign-key", "s1", "--strict"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn every_problem_in_the_privacy_block_is_reported_in_one_run() {
    // Three problems in the block (a QI without a rule, k below 2, an l-diversity attribute
    // that is a QI): all reported, each with its line.
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{HEAD}jurisdictions: [EU]\nfields:\n  age: {{ action: keep, basis: contract }}\n  dx: {{ action: keep, basis: contract }}\nprivacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 10 }}] }}\n    zip: {{ levels: [{{ keep_prefix: 3 }}] }}\n  k: 1\n  l_diversity:\n    - {{ attribute: age, l: 2 }}\n"
    );
    let o = validate(dir.path(), &body, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("3 problems"), "{err}");
    for w in ["`zip`", "k is 1", "age"] {
        assert!(err.contains(w), "{w:?} not in {err}");
    }
}
