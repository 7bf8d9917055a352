//! Another language reads what we write: pyarrow opens the Parquet output and Python
//! recomputes tokens and opens envelopes from docs/FORMATS.md alone.
//! Skipped, with a message, where python3 lacks pyarrow or cryptography.

use crate::util::*;

#[test]
fn python_reads_output_and_verifies_tokens_and_envelopes() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import pyarrow, cryptography"])
        .output();
    if !matches!(probe, Ok(ref o) if o.status.success()) {
        eprintln!(
            "SKIPPED interop test: python3 with pyarrow and cryptography is not available (pip install pyarrow cryptography)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let root = root();
    let keys = root.join("examples/demo-keyring.json");
    let input = root.join("examples/customers.csv");
    let o = run(&[
        "apply",
        "--policy",
        root.join("policies/customers.yaml").to_str().unwrap(),
        "--keyring",
        keys.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let check = std::process::Command::new("python3")
        .arg(root.join("tests/interop/check_output.py"))
        .args([&out, &input, &keys])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The provenance loads in standard RDF tooling (rdflib) and every output field has
/// prov:wasDerivedFrom and dpv:hasLegalBasis. Skipped, with a message, without rdflib.
#[test]
fn provenance_loads_as_rdf_with_derivation_and_legal_basis() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import rdflib"])
        .output();
    if !matches!(probe, Ok(ref o) if o.status.success()) {
        eprintln!("SKIPPED RDF test: python3 with rdflib is not available (pip install rdflib)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let root = root();
    let o = run(&[
        "apply",
        "--policy",
        root.join("policies/customers.yaml").to_str().unwrap(),
        "--keyring",
        root.join("examples/demo-keyring.json").to_str().unwrap(),
        "--input",
        root.join("examples/customers.csv").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let side = dir.path().join("c.parquet.provenance.json");
    let check = std::process::Command::new("python3")
        .arg(root.join("tests/interop/check_jsonld.py"))
        .arg(&side)
        .arg("9")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The same check fails on a document whose field lost its derivation.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&side).unwrap()).unwrap();
    let field = doc["@included"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n.get("cl:sourceColumn").is_some())
        .unwrap();
    field
        .as_object_mut()
        .unwrap()
        .remove("wasDerivedFrom")
        .unwrap();
    std::fs::write(&side, doc.to_string()).unwrap();
    let check = std::process::Command::new("python3")
        .arg(root.join("tests/interop/check_jsonld.py"))
        .arg(&side)
        .arg("9")
        .output()
        .unwrap();
    assert!(
        !check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
