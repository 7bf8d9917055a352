//! Compliance review: `verify` (and signing), `ropa`, and the lawful-basis rule table.

use std::path::{Path, PathBuf};

use crate::util::{
    HEAD, apply_customers, apply_example_ok, apply_example_tree, apply_files, demo_keyring, root,
    run, stderr, write_policy,
};

/// Apply the example policy (copied into `dir`) and sign with k2.
fn signed_output(dir: &Path) -> (PathBuf, PathBuf) {
    let policy = dir.join("customers.yaml");
    std::fs::copy(root().join("policies/customers.yaml"), &policy).unwrap();
    let out = dir.join("out.parquet");
    let o = apply_files(
        &policy,
        Some(&demo_keyring()),
        &root().join("examples/customers.csv"),
        &out,
        &["--sign-key", "k2"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    (out, policy)
}

fn verify(out: &Path, policy: &Path) -> (Option<i32>, String) {
    let o = run(&[
        "verify",
        out.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--keyring",
        demo_keyring().to_str().unwrap(),
    ]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o),
    )
}

#[test]
fn verify_passes_fresh_and_fails_precisely_after_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (out, policy) = signed_output(dir.path());
    let (code, text) = verify(&out, &policy);
    assert_eq!(code, Some(0), "{text}");
    for name in [
        "sha256",
        "size",
        "rows",
        "schema",
        "embedded record",
        "policy",
        "signature",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("PASS") && l.contains(name)),
            "{name}: {text}"
        );
    }
    let side = PathBuf::from(format!("{}.provenance.json", out.display()));
    let doc = std::fs::read_to_string(&side).unwrap();
    assert!(doc.contains("\"cl:signature\"") && doc.contains("HMAC-SHA256"));
    // The signature names the key, never its material.
    let ring = std::fs::read_to_string(demo_keyring()).unwrap();
    let ring: serde_json::Value = serde_json::from_str(&ring).unwrap();
    for k in ring["keys"].as_array().unwrap() {
        assert!(!doc.contains(k["secret_hex"].as_str().unwrap()));
    }

    // 1. One byte of the output changed.
    let original = std::fs::read(&out).unwrap();
    let mut bytes = original.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&out, &bytes).unwrap();
    let (code, text) = verify(&out, &policy);
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("FAIL sha256") && text.contains("record says"),
        "{text}"
    );
    std::fs::write(&out, &original).unwrap();

    // 2. One line of the sidecar changed: the recorded status of a field.
    let changed = doc.replacen(
        "\"cl:status\": \"pseudonymised personal data\"",
        "\"cl:status\": \"unchanged\"",
        1,
    );
    assert_ne!(changed, doc);
    std::fs::write(&side, &changed).unwrap();
    let (code, text) = verify(&out, &policy);
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("FAIL embedded record") && text.contains("cl:status"),
        "{text}"
    );
    assert!(
        text.contains("FAIL signature") && text.contains("changed after signing"),
        "{text}"
    );
    std::fs::write(&side, &doc).unwrap();

    // 3. The policy file changed.
    let mut p = std::fs::read_to_string(&policy).unwrap();
    p.push_str("# edited after the run\n");
    std::fs::write(&policy, p).unwrap();
    let (code, text) = verify(&out, &policy);
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("FAIL policy") && text.contains("the record used"),
        "{text}"
    );

    // Without a keyring, a signed record cannot be checked: say so.
    let o = run(&["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(4));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sig = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "signature")
        .unwrap()
        .clone();
    assert_eq!(sig["passed"], false);
    assert!(sig["detail"].as_str().unwrap().contains("--keyring"));
}

#[test]
fn verify_csv_output_counts_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    apply_example_ok(&out, &[]);
    let o = run(&["verify", out.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Drop the last line: size, checksum and rows all fail.
    let text = std::fs::read_to_string(&out).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    std::fs::write(&out, cut[..cut.len() - 1].join("\n") + "\n").unwrap();
    let o = run(&["verify", out.to_str().unwrap()]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        s.contains("FAIL rows") && s.contains("file has 59 rows"),
        "{s}"
    );
}

fn policy_err(body: &str) -> String {
    let o = load(body);
    o.err().unwrap_or_default()
}

fn load(body: &str) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = write_policy(dir.path(), body);
    let o = run(&["validate", "--policy", p.to_str().unwrap()]);
    if o.status.success() {
        Ok(stderr(&o)
            .lines()
            .filter(|l| l.starts_with("warning"))
            .map(String::from)
            .collect())
    } else {
        Err(stderr(&o))
    }
}

/// Each rule of docs/RULES.md, error or warning.
#[test]
fn rule_table() {
    let cn_eu = "policy: t\nversion: 1\ncontroller: C\npurpose: p\njurisdictions: [CN, EU]\n";
    let field = |f: &str| format!("fields:\n  a: {{ action: keep, basis: {f} }}\n");
    // GDPR-6 / PIPL-13: a valid basis in every jurisdiction (error).
    assert!(
        policy_err(&format!("{cn_eu}{}", field("legitimate_interests"))).contains("PIPL Art. 13")
    );
    assert!(policy_err(&format!("{cn_eu}{}", field("news_reporting"))).contains("GDPR"));
    // GDPR-9: special category needs an Art. 9(2) condition (error).
    assert!(
        policy_err(&format!(
            "{HEAD}fields:\n  h: {{ action: keep, basis: consent, special_category: health }}\n"
        ))
        .contains("Art. 9(2)")
    );
    // PIPL-28/29: sensitive on consent needs separate consent (error).
    assert!(
        policy_err(&format!(
            "{cn_eu}fields:\n  h: {{ action: keep, basis: consent, sensitive: true }}\n"
        ))
        .contains("PIPL Art. 29")
    );
    // PIPL-23: provision to another handler on consent (warning).
    let w = load(&format!(
        "{cn_eu}recipients: [Partner]\n{}",
        field("consent")
    ))
    .unwrap();
    assert!(
        w.iter()
            .any(|l| l.contains("[PIPL-23]") && l.contains("field `a`")),
        "{w:?}"
    );
    let w = load(&format!(
        "{cn_eu}recipients: [Partner]\nfields:\n  a: {{ action: keep, basis: consent, separate_consent: true }}\n"
    ))
    .unwrap();
    assert!(!w.iter().any(|l| l.contains("[PIPL-23]")), "{w:?}");
    // PIPL-38: leaving China needs a mechanism (error); PIPL-39 separate consent (warning).
    let e = policy_err(&format!(
        "{cn_eu}transfers:\n  - {{ recipient: Partner, country: US }}\n{}",
        field("contract")
    ));
    assert!(e.contains("PIPL Art. 38(1)") && e.contains("line 7"), "{e}");
    let w = load(&format!(
        "{cn_eu}transfers:\n  - {{ recipient: Partner, country: US, mechanism: standard_contract }}\n{}",
        field("consent")
    ))
    .unwrap();
    assert!(w.iter().any(|l| l.contains("[PIPL-39]")), "{w:?}");
    assert!(
        w.iter()
            .any(|l| l.contains("[PIPL-55]") && l.contains("cross-border")),
        "{w:?}"
    );
    // GDPR-44: leaving the EEA needs a Chapter V ground (error); inside the EEA none.
    let e = policy_err(&format!(
        "{HEAD}transfers:\n  - {{ recipient: P, country: US, mechanism: security_assessment }}\n{}",
        field("contract")
    ));
    assert!(e.contains("GDPR Art. 44"), "{e}");
    assert!(
        load(&format!(
            "{HEAD}transfers:\n  - {{ recipient: P, country: DE }}\n{}",
            field("contract")
        ))
        .is_ok()
    );
    let e = policy_err(&format!(
        "{HEAD}transfers:\n  - {{ recipient: P, country: USA, mechanism: adequacy }}\n{}",
        field("contract")
    ));
    assert!(e.contains("ISO 3166-1"), "{e}");
    // PIPL-55: impact-assessment triggers (warning).
    let w = load(&format!(
        "{cn_eu}fields:\n  h: {{ action: keep, basis: contract, sensitive: true }}\n"
    ))
    .unwrap();
    assert!(
        w.iter()
            .any(|l| l.contains("[PIPL-55]") && l.contains("sensitive")),
        "{w:?}"
    );
    // GDPR-35: special category calls for a DPIA check (warning).
    let w = load(&format!(
        "{HEAD}fields:\n  h: {{ action: keep, basis: consent, special_category: health, art9_condition: explicit_consent }}\n"
    ))
    .unwrap();
    assert!(w.iter().any(|l| l.contains("[GDPR-35]")), "{w:?}");
    // TODO placeholders from a drafted policy (error).
    assert!(policy_err(&format!("{HEAD}{}", field("TODO"))).contains("TODO"));
}

#[test]
fn ropa_from_policies() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = root().join("policies/customers.yaml");
    let p2 = root().join("policies/adult.yaml");
    let o = run(&[
        "ropa",
        p1.to_str().unwrap(),
        p2.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let acts: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(acts.as_array().unwrap().len(), 2);
    let c = &acts[0];
    assert_eq!(c["controller"], "Example Retail Co.");
    assert_eq!(c["retention"], "P12M");
    assert_eq!(c["recipients"][0], "Analytics Partner Ltd.");
    let email = c["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "email")
        .unwrap();
    assert_eq!(
        email["lawfulBasis"],
        "GDPR Art. 6(1)(a) consent; PIPL Art. 13(1)(1) consent"
    );
    assert!(c["piaTriggers"].as_array().unwrap().len() >= 2);
    assert!(
        c["securityMeasures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().starts_with("pseudonymisation"))
    );
    let race = acts[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "race")
        .unwrap();
    assert_eq!(race["specialCategory"], "racial_or_ethnic_origin");
    assert_eq!(race["condition"], "GDPR Art. 9(2)(j)");

    let csv = dir.path().join("ropa.csv");
    let o = run(&[
        "ropa",
        p1.to_str().unwrap(),
        "--format",
        "csv",
        "--output",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("policy,version,controller"));
    assert_eq!(text.lines().count(), 1 + 11, "one row per field");
    let o = run(&["ropa", p1.to_str().unwrap(), "--format", "md"]);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("| (e) transfers | — |") && md.contains("\\[PIPL-23\\]"),
        "{md}"
    );
    // A bad policy names itself.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "policy: [").unwrap();
    let o = run(&["ropa", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.yaml"));
}

/// `apply --openlineage` writes a RunEvent that validates against the vendored OpenLineage
/// schemas (offline, with Python `jsonschema`; skipped with a message without it).
#[test]
fn openlineage_event_validates_against_the_vendored_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let event = dir.path().join("event.json");
    apply_example_ok(&out, &["--openlineage", event.to_str().unwrap()]);
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&event).unwrap()).unwrap();
    assert_eq!(e["eventType"], "COMPLETE");
    let facets = &e["outputs"][0]["facets"];
    let lineage = &facets["columnLineage"]["fields"];
    let email = &lineage["email"]["inputFields"][0];
    assert_eq!(email["field"], "email");
    assert_eq!(email["transformations"][0]["type"], "DIRECT");
    assert_eq!(email["transformations"][0]["subtype"], "TRANSFORMATION");
    assert_eq!(email["transformations"][0]["masking"], true);
    let city = &lineage["city"]["inputFields"][0]["transformations"][0];
    assert_eq!(city["subtype"], "IDENTITY");
    assert_eq!(city["masking"], false);
    let lb = &facets["cloakline_lawfulBasis"];
    assert!(lb["_producer"].is_string() && lb["_schemaURL"].is_string());
    assert!(lb.to_string().contains("GDPR Art. 6(1)(a)"));
    assert!(!lb.to_string().contains("secret"));

    let probe = std::process::Command::new("python3")
        .args(["-c", "import jsonschema, referencing"])
        .output();
    if !matches!(probe, Ok(ref o) if o.status.success()) {
        eprintln!("SKIPPED OpenLineage schema validation: pip install jsonschema");
        return;
    }
    let validate = |path: &Path| {
        std::process::Command::new("python3")
            .arg(root().join("tests/openlineage/validate_openlineage.py"))
            .arg(path)
            .arg(root().join("tests/openlineage/spec"))
            .arg(root().join("docs/openlineage/CloaklineLawfulBasisDatasetFacet.json"))
            .output()
            .unwrap()
    };
    let v = validate(&event);
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    // The validator can fail: a masking flag as a string is not an OpenLineage event.
    let broken = std::fs::read_to_string(&event).unwrap().replacen(
        "\"masking\": true",
        "\"masking\": \"true\"",
        1,
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, broken).unwrap();
    assert!(!validate(&bad).status.success());
}

#[test]
fn verify_files_of_a_directory_run() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = apply_example_tree(dir.path());
    let side = dir.path().join("out.provenance.json");
    for f in ["a.parquet", "sub/b.parquet"] {
        let o = run(&[
            "verify",
            out.join(f).to_str().unwrap(),
            "--provenance",
            side.to_str().unwrap(),
        ]);
        let s = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{f}: {s}");
        assert!(s.contains("PASS embedded record"), "{s}");
    }
    // A file from another run does not pass as this run's.
    let other = dir.path().join("other.parquet");
    let o = apply_customers(&demo_keyring(), &input.join("a.csv"), &other, &[]);
    assert!(o.status.success());
    std::fs::copy(&other, out.join("a.parquet")).unwrap();
    let o = run(&[
        "verify",
        out.join("a.parquet").to_str().unwrap(),
        "--provenance",
        side.to_str().unwrap(),
    ]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{s}");
    assert!(
        s.contains("FAIL sha256") && s.contains("FAIL embedded record"),
        "{s}"
    );
}
