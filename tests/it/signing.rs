//! Ed25519 provenance signatures a partner checks with a public key, and the separation of
//! signing keys from data keys.

use std::path::{Path, PathBuf};

use crate::util::{apply_files, demo_keyring, root, run, stderr};

/// A copy of the demo keyring (owner-only) plus Ed25519 signing keys `ids`.
fn ring_with_signing(dir: &Path, ids: &[&str]) -> PathBuf {
    let ring = dir.join("keys.json");
    std::fs::copy(demo_keyring(), &ring).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for id in ids {
        let o = run(&[
            "keys",
            "generate",
            "--signing",
            "--id",
            id,
            "--keyring",
            ring.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("Ed25519 signing key"), "{}", stderr(&o));
    }
    ring
}

fn export_public(ring: &Path, id: &str, out: &Path) -> std::process::Output {
    run(&[
        "keys",
        "export-public",
        "--id",
        id,
        "--keyring",
        ring.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ])
}

/// The example applied and signed with `sign_key` from `ring`.
fn signed(dir: &Path, ring: &Path, sign_key: &str) -> (PathBuf, std::process::Output) {
    let out = dir.join("out.parquet");
    let o = apply_files(
        &root().join("policies/customers.yaml"),
        Some(ring),
        &root().join("examples/customers.csv"),
        &out,
        &["--sign-key", sign_key],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    (out, o)
}

fn verify_public(out: &Path, public: &Path) -> (bool, String) {
    let o = run(&[
        "verify",
        out.to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
    ]);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o),
    )
}

fn sidecar(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.provenance.json", out.display()))
}

#[test]
fn a_partner_verifies_an_ed25519_signature_with_the_public_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_signing(dir.path(), &["s1"]);
    let (out, _) = signed(dir.path(), &ring, "s1");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sidecar(&out)).unwrap()).unwrap();
    assert_eq!(doc["cl:signature"]["algorithm"], "Ed25519");
    assert_eq!(doc["cl:signature"]["keyId"], "s1");

    let public = dir.path().join("s1.pub.pem");
    let o = export_public(&ring, "s1", &public);
    assert!(o.status.success(), "{}", stderr(&o));
    let pem = std::fs::read_to_string(&public).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert!(!pem.contains("PRIVATE"));

    // No keyring: only the public key.
    let (ok, text) = verify_public(&out, &public);
    assert!(ok, "{text}");
    assert!(
        text.contains("PASS signature") && text.contains("Ed25519"),
        "{text}"
    );
    // The fingerprint in the record is computable from the public key alone.
    let fp = doc["cl:signature"]["keyFingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&fp), "{text}");
}

#[test]
fn an_edited_or_stripped_or_foreign_signed_record_fails_with_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_signing(dir.path(), &["s1", "s2"]);
    let (out, _) = signed(dir.path(), &ring, "s1");
    let public = dir.path().join("s1.pem");
    assert!(export_public(&ring, "s1", &public).status.success());
    let other = dir.path().join("s2.pem");
    assert!(export_public(&ring, "s2", &other).status.success());
    let side = sidecar(&out);
    let original = std::fs::read_to_string(&side).unwrap();

    // Another signer's public key.
    let (ok, text) = verify_public(&out, &other);
    assert!(
        !ok && text.contains("FAIL signature") && text.contains("another key"),
        "{text}"
    );

    // An edited record (the policy name changed), signature kept.
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    let edited = original.replacen(
        "\"cl:signature\"",
        "\"cl:note\": \"x\", \"cl:signature\"",
        1,
    );
    assert_ne!(edited, original);
    std::fs::write(&side, &edited).unwrap();
    let (ok, text) = verify_public(&out, &public);
    assert!(!ok && text.contains("FAIL signature"), "{text}");

    // The signature value flipped.
    let v = doc["cl:signature"]["value"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if v.starts_with('0') { '1' } else { '0' }, &v[1..]);
    doc["cl:signature"]["value"] = flipped.into();
    std::fs::write(&side, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let (ok, text) = verify_public(&out, &public);
    assert!(!ok && text.contains("does not match"), "{text}");

    // Stripped: a public key was given, so an unsigned record fails.
    doc.as_object_mut().unwrap().remove("cl:signature");
    std::fs::write(&side, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let (ok, text) = verify_public(&out, &public);
    assert!(!ok && text.contains("not signed"), "{text}");

    // Restored, it passes again: the failures above came from the edits.
    std::fs::write(&side, &original).unwrap();
    let (ok, text) = verify_public(&out, &public);
    assert!(ok, "{text}");
}

#[test]
fn an_hmac_signed_record_cannot_be_checked_with_a_public_key_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_signing(dir.path(), &["s1"]);
    let (out, o) = signed(dir.path(), &ring, "k2");
    // k2 encrypts a field of the example policy: signing with it is warned about.
    assert!(
        stderr(&o).contains("warning: signing key k2 also protects field(s)"),
        "{}",
        stderr(&o)
    );
    let public = dir.path().join("s1.pem");
    assert!(export_public(&ring, "s1", &public).status.success());
    let (ok, text) = verify_public(&out, &public);
    assert!(
        !ok && text.contains("HMAC") && text.contains("Ed25519"),
        "{text}"
    );
}

#[test]
fn signing_with_an_ed25519_key_is_not_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_signing(dir.path(), &["s1"]);
    let (_, o) = signed(dir.path(), &ring, "s1");
    assert!(!stderr(&o).contains("also protects"), "{}", stderr(&o));
}

#[test]
fn a_data_key_has_no_public_half_and_a_signing_key_protects_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_signing(dir.path(), &["s1"]);
    let o = export_public(&ring, "k1", &dir.path().join("k1.pem"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no public half"), "{}", stderr(&o));
    assert!(!dir.path().join("k1.pem").exists());

    // A policy that tokenizes with the signing key is refused before anything is written.
    let policy = std::fs::read_to_string(root().join("policies/customers.yaml")).unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(&p, policy.replace("key: k1", "key: s1")).unwrap();
    let out = dir.path().join("o.parquet");
    let o = apply_files(
        &p,
        Some(&ring),
        &root().join("examples/customers.csv"),
        &out,
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("s1 is an Ed25519 signing key"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn a_private_key_file_is_refused_as_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_signing(dir.path(), &["s1"]);
    let (out, _) = signed(dir.path(), &ring, "s1");
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let o = run(&[
        "verify",
        out.to_str().unwrap(),
        "--public-key",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("PRIVATE key"), "{}", stderr(&o));
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let o = run(&[
        "verify",
        out.to_str().unwrap(),
        "--public-key",
        junk.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not an Ed25519 public key"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn with_a_public_key_an_hmac_record_fails_even_when_a_keyring_is_at_hand() {
    // Someone holding a shared data key re-signs an edited record with HMAC; the partner
    // checks with the public key while CLOAKLINE_KEYRING happens to point at that keyring.
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_with_signing(dir.path(), &["s1"]);
    let (out, _) = signed(dir.path(), &ring, "k2");
    let public = dir.path().join("s1.pem");
    assert!(export_public(&ring, "s1", &public).status.success());
    let o = crate::util::bin()
        .env("CLOAKLINE_KEYRING", &ring)
        .args([
            "verify",
            out.to_str().unwrap(),
            "--public-key",
            public.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(
        !o.status.success(),
        "an HMAC signature passed a public-key check: {text}"
    );
    assert!(text.contains("must carry an Ed25519 signature"), "{text}");
}
