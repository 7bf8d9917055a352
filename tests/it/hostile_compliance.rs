//! Issue 10, compliance and keys: a stripped signature, a fake output node, keyring errors that
//! quote secrets, formula and HTML injection through `ropa`, the demo keyring, loose keyring
//! permissions and plaintext written world-readable.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{
    HEAD, apply_customers, apply_example_ok, apply_example_tree, decrypt_demo, demo_keyring,
    generate_ring, keys_generate, root, run, split_csv_line, stderr,
};

fn side(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.provenance.json", out.display()))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// `verify OUT [extra...]`: exit code and stdout + stderr.
fn verify(out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["verify", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o),
    )
}

/// `verify OUT [extra...]` must fail (exit 4) on the embedded record; `what` labels the case.
fn embedded_check_fails(out: &Path, extra: &[&str], what: &str) {
    let (code, text) = verify(out, extra);
    assert_eq!(code, Some(4), "{what}: {text}");
    assert!(text.contains("FAIL embedded record"), "{what}: {text}");
}

/// Every field node's status, set to "unchanged": the downgrade an attacker wants.
fn downgrade_statuses(doc: &mut Value) {
    for n in doc["@included"].as_array_mut().unwrap() {
        if n.get("cl:status").is_some() {
            n["cl:status"] = "unchanged".into();
        }
    }
}

/// #2: a signed CSV sidecar (no footer copy to fall back on) with its signature deleted and
/// its statuses downgraded passed `verify --keyring` as "PASS signature not signed".
#[test]
fn stripped_signature_fails_when_a_keyring_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    apply_example_ok(&out, &["--sign-key", "k1"]);
    let keyring = demo_keyring();
    let with_keys = ["--keyring", keyring.to_str().unwrap()];
    let (code, text) = verify(&out, &with_keys);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("PASS signature"), "{text}");

    let mut doc = read_json(&side(&out));
    doc.as_object_mut().unwrap().remove("cl:signature");
    downgrade_statuses(&mut doc);
    doc["@included"][3]["cl:purpose"] = "anything at all".into();
    write_json(&side(&out), &doc);
    let (code, text) = verify(&out, &with_keys);
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("FAIL signature") && text.contains("not signed"),
        "{text}"
    );
    assert!(!text.contains("PASS signature"), "{text}");

    // Without a keyring an unsigned record is reported, never as PASS.
    let (code, text) = verify(&out, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("SKIP signature"), "{text}");
    assert!(!text.contains("PASS signature"), "{text}");

    // The library option behind `verify --require-signature` fails it too.
    let read = cloakline::io::ReadOptions::default();
    let opts = cloakline::jobs::verify::VerifyOptions::default().with_require_signature(true);
    let v = cloakline::jobs::verify::verify_with(&out, &read, &opts).unwrap();
    assert!(!v.passed(), "{}", v.to_text());
    let sig = v.checks.iter().find(|c| c.name == "signature").unwrap();
    assert!(!sig.passed && !sig.skipped, "{sig:?}");
    let v = cloakline::jobs::verify::verify_with(&out, &read, &Default::default()).unwrap();
    assert!(v.passed(), "{}", v.to_text());
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["passed"], true);
}

/// #2: the signature covers the whole document, its own block included, and a member named
/// twice (which readers resolve differently) is refused.
#[test]
fn signature_block_and_duplicate_members_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    apply_example_ok(&out, &["--sign-key", "k2"]);
    let keyring = demo_keyring();
    let with_keys = ["--keyring", keyring.to_str().unwrap()];
    let original = std::fs::read_to_string(side(&out)).unwrap();

    let mut doc: Value = serde_json::from_str(&original).unwrap();
    doc["cl:signature"]["keyFingerprint"] = "0000000000000000".into();
    write_json(&side(&out), &doc);
    let (code, text) = verify(&out, &with_keys);
    assert_eq!(code, Some(4), "{text}");
    assert!(
        text.contains("FAIL signature") && text.contains("keyFingerprint"),
        "{text}"
    );

    // A second "cl:format" member after the first: the signed value is still first.
    let dup = original.replacen(
        "\"cl:format\": \"cloakline-provenance/v2\",",
        "\"cl:format\": \"cloakline-provenance/v2\", \"cl:format\": \"cloakline-provenance/v2\",",
        1,
    );
    assert_ne!(dup, original);
    std::fs::write(side(&out), dup).unwrap();
    let (code, text) = verify(&out, &with_keys);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("appears twice"), "{text}");
}

/// #5: a fake second output node switched verify to "directory mode", which compared neither
/// controller, purpose, recipients nor summary.
#[test]
fn fake_output_node_does_not_loosen_the_embedded_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    apply_example_ok(&out, &[]);
    let mut doc = read_json(&side(&out));
    assert_eq!(doc["cl:outputKind"], "file");
    let graph = doc["@included"].as_array_mut().unwrap();
    let fake = graph
        .iter()
        .find(|n| n.get("wasGeneratedBy").is_some() && n.get("cl:sha256").is_some())
        .unwrap()
        .clone();
    let mut fake = fake;
    fake["@id"] = "urn:fake".into();
    fake["cl:path"] = "elsewhere/fake.parquet".into();
    graph.push(fake);
    for n in graph.iter_mut() {
        if n.get("cl:purpose").is_some() {
            n["cl:purpose"] = "a purpose nobody agreed to".into();
            n["cl:recipients"] = serde_json::json!(["Anyone Ltd."]);
        }
    }
    doc["cl:summary"]["controller"] = "Someone Else".into();
    write_json(&side(&out), &doc);
    embedded_check_fails(&out, &[], "");
    // Claiming a directory run in the sidecar does not help either: the footer copy decides.
    doc["cl:outputKind"] = "directory".into();
    write_json(&side(&out), &doc);
    embedded_check_fails(&out, &[], "");
}

/// #5: in a directory run every node but counts and checksums is compared: an edited purpose,
/// controller or field status in the directory's sidecar fails each file's check.
#[test]
fn directory_sidecar_edits_fail_the_embedded_check() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = apply_example_tree(dir.path());
    let sidecar = dir.path().join("out.provenance.json");
    let original = read_json(&sidecar);
    assert_eq!(original["cl:outputKind"], "directory");
    let file = out.join("sub/b.parquet");
    let prov = ["--provenance", sidecar.to_str().unwrap()];
    let (code, text) = verify(&file, &prov);
    assert_eq!(code, Some(0), "{text}");

    type Edit = (&'static str, fn(&mut Value));
    let edits: [Edit; 3] = [
        ("purpose", |d| {
            for n in d["@included"].as_array_mut().unwrap() {
                if n.get("cl:purpose").is_some() && n.get("used").is_some() {
                    n["cl:purpose"] = "something else".into();
                }
            }
        }),
        ("summary controller", |d| {
            d["cl:summary"]["controller"] = "Someone Else".into()
        }),
        ("statuses", downgrade_statuses),
    ];
    for (what, edit) in edits {
        let mut doc = original.clone();
        edit(&mut doc);
        write_json(&sidecar, &doc);
        embedded_check_fails(&file, &prov, what);
    }
}

fn write_ring(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// `apply` of the example with `keyring`: exit code and stderr.
fn apply_with_ring(dir: &Path, keyring: &Path) -> (Option<i32>, String) {
    let input = root().join("examples/customers.csv");
    let o = apply_customers(keyring, &input, &dir.join("o.parquet"), &[]);
    (o.status.code(), stderr(&o))
}

const SECRET: &str = "7f3a9c0e5b21d4867f3a9c0e5b21d486a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// #6: a secret pasted into `id` (or `format`) was printed in the error.
#[test]
fn keyring_errors_never_print_its_strings() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keys.json");
    write_ring(
        &ring,
        &format!(
            r#"{{"format":"cloakline-keyring/v1","keys":[{{"id":"k1","secret_hex":"{SECRET}"}},{{"id":"{SECRET}","secret_hex":"k2"}}]}}"#
        ),
    );
    let (code, err) = apply_with_ring(dir.path(), &ring);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("key #2"), "{err}");
    assert!(!err.contains(&SECRET[..16]), "{err}");
    write_ring(
        &ring,
        &format!(r#"{{"format":"{SECRET}","keys":[{{"id":"k1","secret_hex":"{SECRET}"}}]}}"#),
    );
    let (code, err) = apply_with_ring(dir.path(), &ring);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("format") && !err.contains(&SECRET[..16]),
        "{err}"
    );
}

/// Low: all-zero keys, a keyring others may write, `/dev/zero`: refused with what to do.
#[test]
fn weak_keys_loose_permissions_and_unbounded_reads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keys.json");
    let zero = "0".repeat(64);
    write_ring(
        &ring,
        &format!(
            r#"{{"format":"cloakline-keyring/v1","keys":[{{"id":"k1","secret_hex":"{zero}"}},{{"id":"k2","secret_hex":"{SECRET}"}}]}}"#
        ),
    );
    let (code, err) = apply_with_ring(dir.path(), &ring);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("key #1") && err.contains("not a random key"),
        "{err}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let o = keys_generate(&ring, "k1");
        assert_eq!(o.status.code(), Some(2), "the zero key is refused here too");
        std::fs::remove_file(&ring).unwrap();
        generate_ring(&ring, &["k1", "k2"]);
        std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (code, err) = apply_with_ring(dir.path(), &ring);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        // Readable by others is allowed (the demo keyring in git is 0644).
        std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, err) = apply_with_ring(dir.path(), &ring);
        assert_eq!(code, Some(0), "{err}");

        let started = std::time::Instant::now();
        let (code, err) = apply_with_ring(dir.path(), Path::new("/dev/zero"));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
}

/// Low: `keys generate` replaced a symlinked keyring with a new file.
#[cfg(unix)]
#[test]
fn keys_generate_writes_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("secrets");
    std::fs::create_dir(&real).unwrap();
    let target = real.join("keys.json");
    let link = dir.path().join("keys.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    generate_ring(&link, &["k1", "k2"]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let ring = read_json(&target);
    assert_eq!(ring["keys"].as_array().unwrap().len(), 2);
}

/// Low: the demo keyring's "DEMO KEYS ONLY" was neither recorded nor reported.
#[test]
fn demo_keys_are_recorded_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo.parquet");
    apply_example_ok(&out, &[]);
    let doc = read_json(&side(&out));
    assert_eq!(doc["cl:demoKeys"], true);
    let o = run(&["report", out.to_str().unwrap(), "--format", "md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("public demo keyring"), "{md}");

    // With keys of its own, the run is not flagged.
    let ring = dir.path().join("own.json");
    generate_ring(&ring, &["k1", "k2"]);
    let (code, err) = apply_with_ring(dir.path(), &ring);
    assert_eq!(code, Some(0), "{err}");
    let own = dir.path().join("o.parquet");
    assert!(read_json(&side(&own)).get("cl:demoKeys").is_none());
    let o = run(&["report", own.to_str().unwrap(), "--format", "md"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("public demo keyring"));
}

/// Low: `decrypt` wrote plaintext with the umask's mode (world-readable).
#[cfg(unix)]
#[test]
fn decrypted_output_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("enc.parquet");
    apply_example_ok(&out, &[]);
    let plain = dir.path().join("plain.parquet");
    let o = decrypt_demo(&out, &plain, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

fn hostile_policy(dir: &Path) -> PathBuf {
    let p = dir.join("hostile.yaml");
    let head = HEAD
        .replace(
            "controller: C",
            "controller: \"=HYPERLINK(\\\"http://evil.example\\\",\\\"click\\\")\"",
        )
        .replace(
            "purpose: p",
            "purpose: \"<script>alert(1)</script> <img src=x onerror=alert(2)>\"",
        );
    std::fs::write(
        &p,
        format!(
            "{head}recipients: [\"[click](javascript:alert(3))\", \"+cmd|' /C calc'!A0\", \"@SUM(1+1)\", \"\\tTAB\", \"-2+3\"]\nfields:\n  \"<b>x</b>\": {{ action: keep, basis: contract }}\n  \"=1+1\": {{ action: keep, basis: contract }}\n"
        ),
    )
    .unwrap();
    p
}

/// #13: `ropa --format csv` wrote formula cells as-is.
#[test]
fn ropa_csv_neutralizes_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let p = hostile_policy(dir.path());
    let o = run(&["ropa", p.to_str().unwrap(), "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<String>> = text.lines().map(split_csv_line).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for row in &rows {
        assert_eq!(row.len(), rows[0].len(), "{text}");
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {cell:?} in {text}"
            );
        }
    }
    assert!(rows[1][2].starts_with("'=HYPERLINK("), "{:?}", rows[1]);
    assert!(rows.iter().any(|r| r[10] == "'=1+1"), "{text}");
    // Recipients are one cell; its first entry starts with "[" (safe), later ones are inside.
    assert!(rows[1][5].contains("+cmd"), "{:?}", rows[1]);
}

/// #13: `ropa --format md` passed raw HTML and javascript: links through.
#[test]
fn ropa_markdown_escapes_html_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let p = hostile_policy(dir.path());
    let o = run(&["ropa", p.to_str().unwrap(), "--format", "md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = String::from_utf8(o.stdout).unwrap();
    assert!(md.contains("script") && md.contains("javascript"), "{md}");
    // Every character that opens HTML or a link is escaped.
    let chars: Vec<char> = md.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if matches!(c, '<' | '>' | '[' | ']') {
            assert!(
                i > 0 && chars[i - 1] == '\\',
                "unescaped {c:?} at {i}: {md}"
            );
        }
    }
    // Table rows keep their shape: the hostile text adds no cell.
    for line in md.lines().filter(|l| l.starts_with("| (b) purpose")) {
        let unescaped_pipes = line
            .char_indices()
            .filter(|&(i, c)| c == '|' && (i == 0 || line.as_bytes()[i - 1] != b'\\'))
            .count();
        assert_eq!(unescaped_pipes, 3, "{line}");
    }
}
