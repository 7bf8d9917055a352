//! `az://` against Azurite (Microsoft's Azure Storage emulator, `npm install -g azurite`),
//! started here on a free loopback port. Without it this test says why and skips.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{KeyInit, Mac};

use crate::util::{bin, demo_keyring, root, stderr};

const ACCOUNT: &str = "devstoreaccount1";
// Azurite's published development key (not a secret: it is in Microsoft's documentation).
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Azurite {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Azurite {
    fn start() -> Option<Azurite> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = tempfile::tempdir().ok()?;
        let child = Command::new("azurite-blob")
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args([
                "--location",
                dir.path().to_str()?,
                "--silent",
                "--skipApiVersionCheck",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIPPED: cannot start Azurite ({e}); npm install -g azurite");
                return None;
            }
        };
        let a = Azurite {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(a);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("SKIPPED: Azurite did not listen within 30 s");
        None
    }

    /// Create a container (Shared Key signed, as Azurite requires).
    fn container(&self, name: &str) {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let req = format!(
            "PUT /{ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(
            resp.starts_with("HTTP/1.1 201"),
            "create container: {}",
            resp.lines().next().unwrap_or("")
        );
    }

    fn cloakline(&self, args: &[&str]) -> Output {
        self.cloakline_with(&[], args)
    }

    /// `cloakline ARGS` with extra environment variables (other credentials).
    fn cloakline_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        bin()
            .envs(env.iter().copied())
            .env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env(
                "AZURITE_BLOB_STORAGE_URL",
                format!("http://127.0.0.1:{}", self.port),
            )
            .args(["--storage-option", "max_retries=2"])
            .args(args)
            .output()
            .expect("run cloakline")
    }
}

/// An account SAS token for the blob service (version 2020-08-04 string-to-sign) with
/// permissions `sp`, valid until `expiry`.
fn account_sas(sp: &str, expiry: chrono::DateTime<chrono::Utc>) -> String {
    let (sv, ss, srt) = ("2020-08-04", "b", "sco");
    let st = "2020-01-01T00:00:00Z";
    let se = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let to_sign = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n{st}\n{se}\n\nhttp,https\n{sv}\n");
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let enc = |v: &str| {
        v.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
            .replace(':', "%3A")
    };
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={sp}&st={}&se={}&spr=http,https&sig={}",
        enc(st),
        enc(&se),
        enc(&sig)
    )
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

#[test]
fn azure_round_trip_through_azurite_verifies_and_refuses_a_second_release() {
    let Some(az) = Azurite::start() else { return };
    az.container("lake");
    let policy = root().join("policies/customers.yaml");
    let input = root().join("examples/customers.csv");
    let keyring = demo_keyring();
    let (p, k, i) = (
        policy.to_str().unwrap(),
        keyring.to_str().unwrap(),
        input.to_str().unwrap(),
    );
    let o = az.cloakline(&[
        "apply",
        "--policy",
        p,
        "--keyring",
        k,
        "--input",
        i,
        "--output",
        "az://lake/share/customers.parquet",
    ]);
    ok(&o);
    // Azure enforces `If-None-Match: *`: the probe after the lock must not warn.
    assert!(!stderr(&o).contains("conditional writes"), "{}", stderr(&o));
    let v = az.cloakline(&["verify", "az://lake/share/customers.parquet", "--json"]);
    ok(&v);
    let doc: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(doc["output"], "az://lake/share/customers.parquet");
    let again = az.cloakline(&[
        "apply",
        "--policy",
        p,
        "--keyring",
        k,
        "--input",
        i,
        "--output",
        "az://lake/share/customers.parquet",
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    // Read back through Azure: scan names the URL.
    let s = az.cloakline(&["scan", "--input", "az://lake/share/customers.parquet"]);
    ok(&s);
    assert!(String::from_utf8_lossy(&s.stdout).contains("az://lake/share/customers.parquet"));
    // A container that does not exist: a clear error naming it.
    let o = az.cloakline(&["scan", "--input", "az://nolake/x.parquet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("az://nolake/x.parquet"),
        "{}",
        stderr(&o)
    );
    // The server's response body (it can echo the request) is not passed on.
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    assert!(!stderr(&o).contains('<'), "{}", stderr(&o));
}

#[test]
fn wrong_keys_expired_tokens_and_a_403_on_write_fail_clearly_and_commit_nothing() {
    let Some(az) = Azurite::start() else { return };
    az.container("lake");
    let policy = root().join("policies/customers.yaml");
    let input = root().join("examples/customers.csv");
    let keyring = demo_keyring();
    let (p, k, i) = (
        policy.to_str().unwrap(),
        keyring.to_str().unwrap(),
        input.to_str().unwrap(),
    );
    ok(&az.cloakline(&[
        "apply",
        "--policy",
        p,
        "--keyring",
        k,
        "--input",
        i,
        "--output",
        "az://lake/raw/customers.parquet",
    ]));
    let apply = |env: &[(&str, &str)], out: &str| {
        az.cloakline_with(
            env,
            &[
                "apply",
                "--policy",
                p,
                "--keyring",
                k,
                "--input",
                "az://lake/raw/customers.parquet",
                "--output",
                out,
            ],
        )
    };
    let no_secret = |o: &Output, secret: &str| {
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(o));
        assert!(!all.contains(secret), "a credential in the output: {all}");
    };
    // A wrong account key: the read is refused, named, and nothing is written.
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let o = apply(
        &[("AZURE_STORAGE_ACCOUNT_KEY", wrong.as_str())],
        "az://lake/share/a.parquet",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("az://lake/raw/customers.parquet"),
        "{}",
        stderr(&o)
    );
    no_secret(&o, &wrong);
    // An expired token.
    let expired = account_sas("racwdl", chrono::Utc::now() - chrono::Duration::hours(1));
    let o = apply(
        &[("AZURE_STORAGE_SAS_KEY", expired.as_str())],
        "az://lake/share/b.parquet",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("az://lake/"), "{}", stderr(&o));
    no_secret(&o, expired.split("sig=").nth(1).unwrap());
    // A token that may read but not write: the run fails on its first write (the lock, before
    // anything is transformed) with a 403 naming the output; no release, no lock left.
    let read_only = account_sas("rl", chrono::Utc::now() + chrono::Duration::hours(1));
    let o = apply(
        &[("AZURE_STORAGE_SAS_KEY", read_only.as_str())],
        "az://lake/share/c.parquet",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("az://lake/share/c.parquet"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));
    no_secret(&o, read_only.split("sig=").nth(1).unwrap());
    // The same token reads: scan works with it.
    ok(&az.cloakline_with(
        &[("AZURE_STORAGE_SAS_KEY", read_only.as_str())],
        &["scan", "--input", "az://lake/raw/customers.parquet"],
    ));
    let listed = az.cloakline(&["verify", "az://lake/share/"]);
    assert_ne!(
        listed.status.code(),
        Some(0),
        "something was released under share/"
    );
}
