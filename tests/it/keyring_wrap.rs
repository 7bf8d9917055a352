//! Wrapped keyrings: keys stored under a passphrase (Argon2id) or an AES key on a PKCS#11
//! token (SoftHSM2, started by the test), and every way opening one can fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::*;

const PASS: &str = "correct horse battery staple";

fn cl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c: Command = bin();
    c.args(args);
    c.env_remove("CLOAKLINE_KEYRING_PASSPHRASE");
    c.env_remove("CLOAKLINE_PKCS11_PIN");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A plain keyring with k1, k2 in `dir`, and its wrapped copy under the test passphrase.
fn wrapped_ring(dir: &Path) -> (PathBuf, PathBuf) {
    let plain = dir.join("plain.json");
    generate_ring(&plain, &["k1", "k2"]);
    let wrapped = dir.join("wrapped.json");
    let o = cl(
        &[
            "keys",
            "wrap",
            "--keyring",
            s(&plain),
            "-o",
            s(&wrapped),
            "--argon2-memory-kib",
            "19456",
            "--argon2-passes",
            "2",
        ],
        &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    (plain, wrapped)
}

fn apply_with(ring: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let policy = root().join("policies/customers.yaml");
    let input = root().join("examples/customers.csv");
    cl(
        &[
            "apply",
            "--policy",
            s(&policy),
            "--keyring",
            s(ring),
            "--input",
            s(&input),
            "--output",
            s(out),
        ],
        env,
    )
}

/// The secrets of a plain keyring, as hex and base64, to grep outputs for.
fn secrets(plain: &Path) -> Vec<String> {
    use base64::Engine;
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plain).unwrap()).unwrap();
    let mut out = Vec::new();
    for k in v["keys"].as_array().unwrap() {
        let hex = k["secret_hex"].as_str().unwrap().to_string();
        let bytes = hex::decode(&hex).unwrap();
        out.push(hex.clone());
        out.push(hex.to_uppercase());
        out.push(base64::engine::general_purpose::STANDARD.encode(&bytes));
        out.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes));
    }
    out
}

fn assert_no_secret(plain: &Path, texts: &[&str]) {
    for secret in secrets(plain) {
        for t in texts {
            assert!(!t.contains(&secret), "key material leaked");
        }
    }
}

#[test]
fn a_passphrase_wrapped_keyring_gives_the_same_release_and_holds_no_material() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, wrapped) = wrapped_ring(dir.path());
    let text = std::fs::read_to_string(&wrapped).unwrap();
    assert!(
        text.contains("cloakline-keyring/v2") && text.contains("argon2id"),
        "{text}"
    );
    assert_no_secret(&plain, &[&text]);

    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.parquet");
    let o = apply_with(&plain, &a, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = apply_with(&wrapped, &b, &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    // One unwrap per key per run, not per value (the example has 12 rows, three keyed columns).
    assert!(
        e.contains("2 keys unwrapped") && e.contains("(2 key-encryption-key operations)"),
        "{e}"
    );
    let (ba, _) = read_parquet(&a);
    let (bb, _) = read_parquet(&b);
    assert_eq!(
        ba[0].column_by_name("email"),
        bb[0].column_by_name("email"),
        "same tokens"
    );

    // keys list needs no passphrase and shows the same fingerprints.
    let lp = cl(&["keys", "list", "--json", "--keyring", s(&plain)], &[]);
    let lw = cl(&["keys", "list", "--json", "--keyring", s(&wrapped)], &[]);
    assert!(lw.status.success(), "{}", stderr(&lw));
    let jp: serde_json::Value = serde_json::from_slice(&lp.stdout).unwrap();
    let jw: serde_json::Value = serde_json::from_slice(&lw.stdout).unwrap();
    assert_eq!(jp["keys"], jw["keys"]);
    assert_eq!(jw["provider"], "passphrase");
    assert_eq!(jp["provider"], serde_json::Value::Null);

    // keys generate adds a wrapped key; unwrap gives back a plain keyring with all three.
    let o = cl(
        &["keys", "generate", "--id", "k3", "--keyring", s(&wrapped)],
        &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let back = dir.path().join("back.json");
    let o = cl(
        &["keys", "unwrap", "--keyring", s(&wrapped), "-o", s(&back)],
        &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lb = cl(&["keys", "list", "--json", "--keyring", s(&back)], &[]);
    let jb: serde_json::Value = serde_json::from_slice(&lb.stdout).unwrap();
    assert_eq!(jb["keys"].as_array().unwrap().len(), 3);
    assert_eq!(jb["keys"][0], jp["keys"][0]);
    let all = format!(
        "{}{}{}",
        stderr(&o),
        String::from_utf8_lossy(&lw.stdout),
        std::fs::read_to_string(&wrapped).unwrap()
    );
    assert_no_secret(&plain, &[&all]);
}

#[test]
fn opening_a_wrapped_keyring_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, wrapped) = wrapped_ring(dir.path());
    let out = dir.path().join("o.parquet");
    // Wrong passphrase.
    let o = apply_with(&wrapped, &out, &[("CLOAKLINE_KEYRING_PASSPHRASE", "wrong")]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("key #1: cannot unwrap it") && e.contains("passphrase, PIN or KEK is wrong"),
        "{e}"
    );
    assert!(!e.contains("wrong\n") && !out.exists());
    // No passphrase and no terminal: names the variable.
    let o = apply_with(&wrapped, &out, &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("CLOAKLINE_KEYRING_PASSPHRASE"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // A tampered wrapped key fails authentication.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&wrapped).unwrap()).unwrap();
    let w = v["keys"][1]["wrapped"].as_str().unwrap().to_string();
    let flipped: String = w
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 20 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    v["keys"][1]["wrapped"] = flipped.into();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&v).unwrap()).unwrap();
    set_owner_only(&tampered);
    let o = apply_with(&tampered, &out, &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("key #2: cannot unwrap it"),
        "{}",
        stderr(&o)
    );
    // A key moved to another id does not unwrap either (the id is authenticated).
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&wrapped).unwrap()).unwrap();
    v["keys"][0]["id"] = "k9".into();
    std::fs::write(&tampered, serde_json::to_string(&v).unwrap()).unwrap();
    let o = apply_with(&tampered, &out, &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)]);
    assert!(
        !o.status.success() && stderr(&o).contains("key #1: cannot unwrap it"),
        "{}",
        stderr(&o)
    );
    // Parameters weakened in the file are refused before any work.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&wrapped).unwrap()).unwrap();
    v["kek"]["m_cost_kib"] = 8.into();
    std::fs::write(&tampered, serde_json::to_string(&v).unwrap()).unwrap();
    let o = apply_with(&tampered, &out, &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)]);
    assert!(
        !o.status.success() && stderr(&o).contains("out of bounds"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // Wrapping twice, or over an existing file, is refused.
    let o = cl(
        &["keys", "wrap", "--keyring", s(&plain), "-o", s(&wrapped)],
        &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("exists"),
        "{}",
        stderr(&o)
    );
    let o = cl(
        &[
            "keys",
            "wrap",
            "--keyring",
            s(&wrapped),
            "-o",
            s(&dir.path().join("x.json")),
        ],
        &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("already wrapped"),
        "{}",
        stderr(&o)
    );
}

fn set_owner_only(p: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token of its own in `dir` (SOFTHSM2_CONF), labelled `cloakline-test`, user PIN
/// 1234; `None` (and why, printed) when SoftHSM2 is not installed.
fn softhsm(dir: &Path) -> Option<Vec<(String, String)>> {
    if !Path::new(SOFTHSM).exists() {
        eprintln!("skipped: SoftHSM2 is not installed ({SOFTHSM}; Debian package softhsm2)");
        return None;
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let o = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "cloakline-test",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .output();
    match o {
        Ok(o) if o.status.success() => {
            Some(vec![("SOFTHSM2_CONF".into(), conf.display().to_string())])
        }
        Ok(o) => {
            eprintln!(
                "skipped: softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: softhsm2-util cannot run: {e}");
            None
        }
    }
}

#[test]
fn a_token_wrapped_keyring_round_trips_and_every_token_failure_is_clear() {
    let dir = tempfile::tempdir().unwrap();
    let Some(env) = softhsm(dir.path()) else {
        return;
    };
    let conf = env[0].1.clone();
    fn with<'a>(conf: &'a str, pin: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![("SOFTHSM2_CONF", conf), ("CLOAKLINE_PKCS11_PIN", pin)]
    }
    let with = |pin: &'static str| with(&conf, pin);
    let plain = dir.path().join("plain.json");
    generate_ring(&plain, &["k1", "k2"]);
    let wrapped = dir.path().join("hsm.json");
    let wrap = |out: &Path, key_label: &str, create: bool, pin: &'static str| {
        let mut args = vec![
            "keys",
            "wrap",
            "--keyring",
            s(&plain),
            "-o",
            s(out),
            "--pkcs11-module",
            SOFTHSM,
            "--token-label",
            "cloakline-test",
            "--key-label",
            key_label,
        ];
        if create {
            args.push("--pkcs11-create-kek");
        }
        cl(&args, &with(pin))
    };
    // The KEK does not exist yet: without --pkcs11-create-kek that is an error.
    let o = wrap(&wrapped, "kek1", false, "1234");
    assert!(
        !o.status.success() && stderr(&o).contains("the KEK is missing"),
        "{}",
        stderr(&o)
    );
    let o = wrap(&wrapped, "kek1", true, "1234");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&wrapped).unwrap();
    assert!(
        text.contains("\"provider\": \"pkcs11\"") && text.contains("kek1"),
        "{text}"
    );
    assert_no_secret(&plain, &[&text]);

    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.parquet");
    assert!(apply_with(&plain, &a, &[]).status.success());
    let o = apply_with(&wrapped, &b, &with("1234"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("(2 key-encryption-key operations)"),
        "{}",
        stderr(&o)
    );
    let (ba, _) = read_parquet(&a);
    let (bb, _) = read_parquet(&b);
    assert_eq!(ba[0].column_by_name("email"), bb[0].column_by_name("email"));

    let out = dir.path().join("o.parquet");
    // Wrong PIN.
    let o = apply_with(&wrapped, &out, &with("9999"));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("login failed") && e.contains("CLOAKLINE_PKCS11_PIN") && !e.contains("9999"),
        "{e}"
    );
    // Token absent.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["kek"]["token_label"] = "no-such-token".into();
    let other = dir.path().join("other.json");
    std::fs::write(&other, serde_json::to_string(&v).unwrap()).unwrap();
    set_owner_only(&other);
    let o = apply_with(&other, &out, &with("1234"));
    assert!(
        !o.status.success() && stderr(&o).contains("no PKCS#11 token labelled \"no-such-token\""),
        "{}",
        stderr(&o)
    );
    // KEK missing on the token.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["kek"]["key_label"] = "gone".into();
    std::fs::write(&other, serde_json::to_string(&v).unwrap()).unwrap();
    let o = apply_with(&other, &out, &with("1234"));
    assert!(
        !o.status.success() && stderr(&o).contains("no AES key labelled \"gone\""),
        "{}",
        stderr(&o)
    );
    // Another KEK on the same token cannot unwrap these keys.
    let again = dir.path().join("again.json");
    assert!(wrap(&again, "kek2", true, "1234").status.success());
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["kek"]["key_label"] = "kek2".into();
    std::fs::write(&other, serde_json::to_string(&v).unwrap()).unwrap();
    let o = apply_with(&other, &out, &with("1234"));
    assert!(
        !o.status.success() && stderr(&o).contains("cannot unwrap it"),
        "{}",
        stderr(&o)
    );
    // A module that does not exist.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["kek"]["module"] = "/nonexistent/libpkcs11.so".into();
    std::fs::write(&other, serde_json::to_string(&v).unwrap()).unwrap();
    let o = apply_with(&other, &out, &with("1234"));
    assert!(
        !o.status.success() && stderr(&o).contains("does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn validate_warns_about_a_plain_keyring_and_not_a_wrapped_one() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, wrapped) = wrapped_ring(dir.path());
    let policy = root().join("policies/customers.yaml");
    let o = cl(
        &["validate", "--policy", s(&policy), "--keyring", s(&plain)],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds plain key material") && stderr(&o).contains("keys wrap"),
        "{}",
        stderr(&o)
    );
    let o = cl(
        &[
            "validate",
            "--policy",
            s(&policy),
            "--keyring",
            s(&plain),
            "--strict",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = cl(
        &["validate", "--policy", s(&policy), "--keyring", s(&wrapped)],
        &[("CLOAKLINE_KEYRING_PASSPHRASE", PASS)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("plain key material"), "{}", stderr(&o));
}

fn apply_policy(policy: &Path, ring: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let input = root().join("examples/customers.csv");
    cl(
        &[
            "apply",
            "--policy",
            s(policy),
            "--keyring",
            s(ring),
            "--input",
            s(&input),
            "--output",
            s(out),
        ],
        env,
    )
}

fn column_strings(path: &Path, name: &str) -> Vec<Option<String>> {
    use arrow::array::{Array, AsArray};
    let (batches, _) = read_parquet(path);
    let a = batches[0]
        .column_by_name(name)
        .unwrap()
        .as_string::<i32>()
        .clone();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
        .collect()
}

/// A keyring whose key is at the last version cannot be rotated: a clear error, and the file
/// is unchanged (no wrapped version 0 that the next load would refuse).
#[test]
fn rotating_past_the_last_version_is_an_error_not_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keys.json");
    generate_ring(&ring, &["k1"]);
    let text = std::fs::read_to_string(&ring).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for k in doc["keys"].as_array_mut().unwrap() {
        k["version"] = serde_json::json!(u32::MAX);
    }
    std::fs::write(&ring, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let before = std::fs::read(&ring).unwrap();
    let o = cl(
        &["keys", "rotate", "--id", "k1", "--keyring", s(&ring)],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("highest version"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&ring).unwrap(), before);
}

#[test]
fn rotation_keeps_old_envelopes_readable_and_makes_deterministic_transforms_name_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keys.json");
    generate_ring(&ring, &["k1", "k2"]);
    let policy = root().join("policies/customers.yaml");
    let before = dir.path().join("before.parquet");
    assert!(apply_policy(&policy, &ring, &before, &[]).status.success());

    for id in ["k1", "k2"] {
        let o = cl(&["keys", "rotate", "--id", id, "--keyring", s(&ring)], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("added {id}@v2")),
            "{}",
            stderr(&o)
        );
    }
    let l = cl(&["keys", "list", "--json", "--keyring", s(&ring)], &[]);
    let j: serde_json::Value = serde_json::from_slice(&l.stdout).unwrap();
    let keys = j["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 4);
    assert!(
        keys.iter()
            .any(|k| k["id"] == "k1" && k["version"] == 2 && k["primary"] == true)
    );
    assert!(
        keys.iter()
            .any(|k| k["id"] == "k1" && k["version"] == 1 && k["primary"] == false)
    );

    // The bare id no longer does for tokenize: the policy must say which version.
    let after = dir.path().join("after.parquet");
    let o = apply_policy(&policy, &ring, &after, &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("key k1 has versions v1, v2 (primary v2)") && e.contains("k1@v1"),
        "{e}"
    );
    assert!(!after.exists());

    // Pinned to v1: the same tokens as before the rotation. encrypt uses the primary (k2@v2).
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("key: k1", "key: k1@v1");
    let pinned = dir.path().join("pinned.yaml");
    std::fs::write(&pinned, text).unwrap();
    let o = apply_policy(&pinned, &ring, &after, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        column_strings(&before, "email"),
        column_strings(&after, "email")
    );
    let (batches, _) = read_parquet(&after);
    let f = batches[0]
        .schema()
        .field_with_name("national_id")
        .unwrap()
        .clone();
    assert_eq!(f.metadata()["cloakline.key_id"], "k2@v2");
    // Provenance names the version too (version 1 keeps its bare id, as envelopes do).
    let side = std::fs::read_to_string(format!("{}.provenance.json", after.display())).unwrap();
    assert!(side.contains("\"cl:keyId\": \"k2@v2\""), "{side}");
    let (batches, _) = read_parquet(&before);
    let f = batches[0]
        .schema()
        .field_with_name("national_id")
        .unwrap()
        .clone();
    assert_eq!(f.metadata()["cloakline.key_id"], "k2");
    // Pinned to v2: other tokens.
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("key: k1", "key: k1@v2");
    std::fs::write(&pinned, text).unwrap();
    let v2 = dir.path().join("v2.parquet");
    assert!(apply_policy(&pinned, &ring, &v2, &[]).status.success());
    assert_ne!(
        column_strings(&before, "email"),
        column_strings(&v2, "email")
    );

    // Envelopes made before and after the rotation both decrypt with the rotated keyring.
    for (name, file) in [("b", &before), ("a", &after)] {
        let plain = dir.path().join(format!("plain-{name}.parquet"));
        let o = cl(
            &[
                "decrypt",
                "--keyring",
                s(&ring),
                "--input",
                s(file),
                "--output",
                s(&plain),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            column_strings(&plain, "national_id")[0].as_deref(),
            Some("267242198711277969")
        );
    }
    // A version that does not exist.
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("key: k1", "key: k1@v7");
    std::fs::write(&pinned, text).unwrap();
    let o = apply_policy(&pinned, &ring, &dir.path().join("x.parquet"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("k1@v7"), "{}", stderr(&o));
}

#[test]
fn rotating_a_wrapped_keyring_keeps_it_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let (_, wrapped) = wrapped_ring(dir.path());
    let env = [("CLOAKLINE_KEYRING_PASSPHRASE", PASS)];
    let o = cl(
        &["keys", "rotate", "--id", "k2", "--keyring", s(&wrapped)],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&wrapped).unwrap();
    assert!(
        text.contains("cloakline-keyring/v2") && text.contains("\"version\": 2"),
        "{text}"
    );
    let out = dir.path().join("o.parquet");
    let o = apply_with(&wrapped, &out, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 keys unwrapped"), "{}", stderr(&o));
}

#[test]
fn retokenize_moves_envelopes_to_a_new_version_and_refuses_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keys.json");
    generate_ring(&ring, &["k1", "k2"]);
    let policy = root().join("policies/customers.yaml");
    let before = dir.path().join("before.parquet");
    assert!(apply_policy(&policy, &ring, &before, &[]).status.success());
    let o = cl(
        &["keys", "rotate", "--id", "k2", "--keyring", s(&ring)],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let moved = dir.path().join("moved.parquet");
    let o = cl(
        &[
            "retokenize",
            "--keyring",
            s(&ring),
            "--input",
            s(&before),
            "--output",
            s(&moved),
            "--to",
            "k2@v2",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("national_id"), "{}", stderr(&o));
    let (batches, _) = read_parquet(&moved);
    let f = batches[0]
        .schema()
        .field_with_name("national_id")
        .unwrap()
        .clone();
    assert_eq!(f.metadata()["cloakline.key_id"], "k2@v2");
    assert_ne!(
        column_strings(&before, "national_id"),
        column_strings(&moved, "national_id")
    );
    // The other columns are untouched, and the new envelopes decrypt to the same values.
    assert_eq!(
        column_strings(&before, "email"),
        column_strings(&moved, "email")
    );
    let plain = dir.path().join("plain.parquet");
    let o = cl(
        &[
            "decrypt",
            "--keyring",
            s(&ring),
            "--input",
            s(&moved),
            "--output",
            s(&plain),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        column_strings(&plain, "national_id")[0].as_deref(),
        Some("267242198711277969")
    );
    // Tokens cannot be converted: the message says why and what to do.
    let o = cl(
        &[
            "retokenize",
            "--keyring",
            s(&ring),
            "--input",
            s(&before),
            "--output",
            s(&dir.path().join("t.parquet")),
            "--to",
            "k2@v2",
            "--column",
            "email",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("HMAC tokens") && stderr(&o).contains("Re-run `apply`"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("t.parquet").exists());
}
