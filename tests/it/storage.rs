//! Object stores, against a real S3-compatible server on loopback (moto's standalone server,
//! `pip install 'moto[server]'`, started here). Without it these tests say why and skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow::array::Array;

use crate::util::{bin, demo_keyring, read_parquet, root, stderr};

/// A secret only the tests know: it must never appear in anything cloakline writes or prints.
const SECRET: &str = "s3cr3t-Never-Print-This-9f27c1";
const KEY_ID: &str = "cloaklinetestkeyid";

/// A moto S3 server on a free loopback port, stopped on drop.
pub struct S3 {
    child: Child,
    pub port: u16,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    /// Start a server, or `None` (printing why) when moto is not installed or does not start.
    pub fn start() -> Option<S3> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .or_else(|_| {
                Command::new("python3")
                    .args([
                        "-m",
                        "moto.server",
                        "-H",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
            });
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "SKIPPED: cannot start moto's S3 server ({e}); pip install 'moto[server]'"
                );
                return None;
            }
        };
        let s3 = S3 { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if s3
                .request("GET", "/", b"")
                .map(|(c, _)| c == 200)
                .unwrap_or(false)
            {
                return Some(s3);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("SKIPPED: moto's S3 server did not answer within 30 s");
        None
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP request (moto does not check signatures): (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let head = format!(
            // moto does not check signatures, but refuses anonymous reads.
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut body = buf[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Ok((code, body))
    }

    pub fn bucket(&self, name: &str) {
        let (c, _) = self.request("PUT", &format!("/{name}"), b"").unwrap();
        assert_eq!(c, 200, "create bucket {name}");
    }

    pub fn put(&self, key: &str, body: &[u8]) {
        let (c, _) = self.request("PUT", &format!("/{key}"), body).unwrap();
        assert_eq!(c, 200, "put {key}");
    }

    pub fn delete(&self, key: &str) {
        let (c, _) = self.request("DELETE", &format!("/{key}"), b"").unwrap();
        assert_eq!(c, 204, "delete {key}");
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let (c, b) = self.request("GET", &format!("/{key}"), b"").unwrap();
        (c == 200).then_some(b)
    }

    /// Keys in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let (_, b) = self
            .request("GET", &format!("/{bucket}?list-type=2"), b"")
            .unwrap();
        let text = String::from_utf8_lossy(&b);
        let mut v: Vec<String> = text
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// The ETag the listing of `bucket` gives `key` (a multipart upload's ends in `-N`).
    pub fn etag(&self, bucket: &str, key: &str) -> Option<String> {
        let (_, b) = self
            .request("GET", &format!("/{bucket}?list-type=2"), b"")
            .unwrap();
        let text = String::from_utf8_lossy(&b).to_string();
        text.split("<Contents>").skip(1).find_map(|c| {
            let k = c.split("<Key>").nth(1)?.split("</Key>").next()?;
            (k == key).then(|| {
                let e = c
                    .split("<ETag>")
                    .nth(1)
                    .and_then(|e| e.split("</ETag>").next());
                e.unwrap_or("").replace("&#34;", "").replace('"', "")
            })
        })
    }

    /// `cloakline apply` with the example policy and demo keyring, plus `extra`.
    pub fn apply_customers(&self, input: &str, output: &str, extra: &[&str]) -> Output {
        Self::apply_customers_via(&self.endpoint(), input, output, extra)
    }

    /// [`S3::apply_customers`] through another endpoint (a proxy in front of this server).
    pub fn apply_customers_via(
        endpoint: &str,
        input: &str,
        output: &str,
        extra: &[&str],
    ) -> Output {
        let (policy, keyring) = (policy(), demo_keyring());
        let head = [
            "apply",
            "--policy",
            str(&policy),
            "--keyring",
            str(&keyring),
            "--input",
            input,
            "--output",
            output,
        ];
        let mut c = bin();
        Self::configure_at(&mut c, endpoint);
        c.args([&head[..], extra].concat());
        c.output().expect("run cloakline")
    }

    /// `cloakline ARGS` with credentials in the environment and the endpoint as options.
    pub fn cloakline(&self, args: &[&str]) -> Output {
        let mut c = bin();
        self.configure(&mut c);
        c.args(args);
        c.output().expect("run cloakline")
    }

    /// Point a cloakline command at this server (credentials in its environment, the
    /// endpoint as storage options).
    pub fn configure(&self, c: &mut std::process::Command) {
        Self::configure_at(c, &self.endpoint());
    }

    /// [`S3::configure`] with another endpoint (a proxy in front of this server).
    pub fn configure_at(c: &mut std::process::Command, endpoint: &str) {
        c.env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .args(["--storage-option", &format!("endpoint={endpoint}")])
            .args(["--storage-option", "allow_http=true"])
            .args(["--storage-option", "max_retries=2"]);
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

/// Nothing the run printed or wrote holds the secret.
fn assert_no_secret(o: &Output, files: &[&[u8]]) {
    for text in [&o.stdout[..], &o.stderr[..]]
        .into_iter()
        .chain(files.iter().copied())
    {
        assert!(
            !String::from_utf8_lossy(text).contains(SECRET),
            "the secret leaked"
        );
    }
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

fn str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn policy() -> PathBuf {
    root().join("policies/customers.yaml")
}

/// Every column but the encrypted one (random nonces), as text.
fn deterministic_columns(path: &Path) -> Vec<(String, Vec<String>)> {
    let (batches, _) = read_parquet(path);
    let schema = batches[0].schema();
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name() != "national_id")
        .map(|(i, f)| {
            let mut v = Vec::new();
            for b in &batches {
                let col =
                    arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
                let s = col
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                v.extend((0..s.len()).map(|r| {
                    if s.is_valid(r) {
                        s.value(r).to_string()
                    } else {
                        String::new()
                    }
                }));
            }
            (f.name().clone(), v)
        })
        .collect()
}

#[test]
fn local_to_s3_to_s3_to_local_round_trip_matches_a_local_run_and_verifies() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    let csv = std::fs::read(root().join("examples/customers.csv")).unwrap();
    s3.put("raw/customers.csv", &csv);
    let dir = tempfile::tempdir().unwrap();
    let o = s3.apply_customers(
        "s3://raw/customers.csv",
        "s3://share/customers.parquet",
        &["--json"],
    );
    ok(&o);
    // moto enforces `If-None-Match: *`: the probe after the lock must not warn.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("conditional writes"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["output"], "s3://share/customers.parquet");
    assert_eq!(
        summary["provenance"],
        "s3://share/customers.parquet.provenance.json"
    );
    assert_eq!(
        s3.keys("share"),
        ["customers.parquet", "customers.parquet.provenance.json"]
    );

    // The same run on local files: every deterministic column is identical.
    let local = dir.path().join("local.parquet");
    ok(&crate::util::apply_example(&local, &[]));
    let fetched = dir.path().join("fetched.parquet");
    std::fs::write(&fetched, s3.get("share/customers.parquet").unwrap()).unwrap();
    assert_eq!(
        deterministic_columns(&fetched),
        deterministic_columns(&local)
    );

    // The record names the URLs, the input's ETag, and never a scratch path or a secret.
    let sidecar = s3.get("share/customers.parquet.provenance.json").unwrap();
    let text = String::from_utf8_lossy(&sidecar);
    assert!(text.contains("\"s3://raw/customers.csv\""), "{text}");
    assert!(text.contains("\"s3://share/customers.parquet\""));
    assert!(text.contains("cl:etag"));
    // (The clone itself may live under $TMPDIR: look for cloakline's scratch directories.)
    let scratch = std::env::temp_dir()
        .join("cloakline-")
        .display()
        .to_string();
    assert!(!text.contains(&scratch), "a scratch path in the record");
    assert_no_secret(&o, &[&sidecar]);

    let v = s3.cloakline(&["verify", "s3://share/customers.parquet", "--json"]);
    ok(&v);
    let doc: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["output"], "s3://share/customers.parquet");

    // report reads the release's record through the store and can write to one.
    let r = s3.cloakline(&["report", "s3://share/customers.parquet", "--format", "md"]);
    ok(&r);
    let md = String::from_utf8_lossy(&r.stdout);
    assert!(md.contains("s3://share/customers.parquet"), "{md}");
    ok(&s3.cloakline(&[
        "report",
        "s3://share/customers.parquet.provenance.json",
        "--output",
        "s3://share/reports/customers.html",
    ]));
    let html = s3.get("share/reports/customers.html").unwrap();
    assert!(String::from_utf8_lossy(&html).contains("<html"));
    // It never writes over a record.
    let r = s3.cloakline(&[
        "report",
        "s3://share/customers.parquet",
        "--output",
        "s3://share/customers.parquet.provenance.json",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    let r = s3.cloakline(&["report", "s3://share/nothing-here.parquet"]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("no provenance record"),
        "{}",
        stderr(&r)
    );
    assert_no_secret(&r, &[&html]);
    s3.delete("share/reports/customers.html");

    // A second run to the same output is refused; --overwrite replaces it.
    let again = s3.apply_customers(
        "s3://raw/customers.csv",
        "s3://share/customers.parquet",
        &[],
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("--overwrite"), "{}", stderr(&again));
    let over = s3.apply_customers(
        "s3://raw/customers.csv",
        "s3://share/customers.parquet",
        &["--overwrite"],
    );
    ok(&over);
    assert_eq!(
        s3.keys("share"),
        ["customers.parquet", "customers.parquet.provenance.json"]
    );
    ok(&s3.cloakline(&["verify", "s3://share/customers.parquet"]));

    // Tampering is caught through the store too.
    let mut bytes = s3.get("share/customers.parquet").unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 1;
    s3.put("share/customers.parquet", &bytes);
    let bad = s3.cloakline(&["verify", "s3://share/customers.parquet"]);
    assert_eq!(bad.status.code(), Some(4), "{}", stderr(&bad));
}

/// `raw/orders/currency=CNY/part-0.csv`, `…USD…`.
fn put_partitioned(s3: &S3) {
    for (cur, base) in [("CNY", 0), ("USD", 10)] {
        let rows: String = (0..3)
            .map(|i| format!("{},{}\n", base + i, 100 + i))
            .collect();
        s3.put(
            &format!("raw/orders/currency={cur}/part-0.csv"),
            format!("order_id,amount\n{rows}").as_bytes(),
        );
    }
}

const ORDERS: &str = "policy: orders\nversion: 1\ncontroller: Example\njurisdictions: [EU]\npurpose: test\nunlisted: error\nfields:\n  order_id: { action: keep, basis: contract }\n  amount: { action: keep, basis: contract }\n";

#[test]
fn a_partitioned_prefix_is_released_as_a_directory_and_verified_whole_or_by_object() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    put_partitioned(&s3);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        format!("{ORDERS}  currency: {{ action: keep, basis: contract }}\n"),
    )
    .unwrap();
    let o = s3.cloakline(&[
        "apply",
        "--policy",
        str(&p),
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/orders/",
    ]);
    ok(&o);
    assert_eq!(
        s3.keys("share"),
        [
            "orders.provenance.json",
            "orders/currency=CNY/part-0.parquet",
            "orders/currency=USD/part-0.parquet"
        ]
    );
    // The record withholds partition values of inputs, as for local directories.
    let record =
        String::from_utf8_lossy(&s3.get("share/orders.provenance.json").unwrap()).to_string();
    assert!(record.contains("s3://raw/orders/"), "{record}");
    assert!(!record.contains("currency=CNY/part-0.csv"), "{record}");

    ok(&s3.cloakline(&["verify", "s3://share/orders/"]));
    let one = s3.cloakline(&[
        "verify",
        "s3://share/orders/currency=USD/part-0.parquet",
        "--json",
    ]);
    ok(&one);
    // check and scan read through the store too.
    let c = s3.cloakline(&["scan", "--input", "s3://raw/orders/currency=CNY/part-0.csv"]);
    ok(&c);
    assert!(String::from_utf8_lossy(&c.stdout).contains("s3://raw/orders/currency=CNY/part-0.csv"));

    // --partition-by: one object in, a partitioned prefix out, named by output values.
    let o = s3.cloakline(&[
        "apply",
        "--policy",
        str(&p),
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/by-amount/",
        "--partition-by",
        "amount",
    ]);
    ok(&o);
    let keys: Vec<String> = s3
        .keys("share")
        .into_iter()
        .filter(|k| k.starts_with("by-amount"))
        .collect();
    assert_eq!(
        keys,
        [
            "by-amount.provenance.json",
            "by-amount/amount=100/part-00000.parquet",
            "by-amount/amount=100/part-00001.parquet",
            "by-amount/amount=101/part-00000.parquet",
            "by-amount/amount=101/part-00001.parquet",
            "by-amount/amount=102/part-00000.parquet",
            "by-amount/amount=102/part-00001.parquet",
        ]
    );
    ok(&s3.cloakline(&["verify", "s3://share/by-amount/"]));
    // An object of a partitioned release: its report is the release's record.
    let r = s3.cloakline(&[
        "report",
        "s3://share/by-amount/amount=101/part-00001.parquet",
        "--format",
        "md",
    ]);
    ok(&r);
    assert!(String::from_utf8_lossy(&r.stdout).contains("s3://share/by-amount"));

    // An unrecorded object in the release fails verification; a prefix holding objects no
    // release lists is refused as an output.
    s3.put("share/orders/stray.parquet", b"x");
    let v = s3.cloakline(&["verify", "s3://share/orders/"]);
    assert_eq!(v.status.code(), Some(4), "{}", stderr(&v));
    // The release's record does not speak for a stray object, and a report is never
    // written into a release.
    let r = s3.cloakline(&["report", "s3://share/orders/stray.parquet"]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("does not list this object"),
        "{}",
        stderr(&r)
    );
    let r = s3.cloakline(&[
        "report",
        "s3://share/orders/",
        "--output",
        "s3://share/orders/report.html",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(s3.get("share/orders/report.html").is_none());
    let o = s3.cloakline(&[
        "apply",
        "--policy",
        str(&p),
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/orders/",
        "--overwrite",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no cloakline release there lists"),
        "{}",
        stderr(&o)
    );
    assert!(
        s3.get("share/orders.provenance.json.lock").is_none(),
        "the lock outlived the run"
    );
}

#[test]
fn a_held_lock_refuses_a_second_writer_and_gc_clears_a_dead_runs_leftovers() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    put_partitioned(&s3);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        format!("{ORDERS}  currency: {{ action: keep, basis: contract }}\n"),
    )
    .unwrap();
    // A dead run: its lock and one object it uploaded.
    s3.put("share/orders.provenance.json.lock", b"{\"runId\":\"dead\"}");
    s3.put("share/orders/currency=CNY/part-0.parquet", b"half");
    let args = [
        "apply",
        "--policy",
        str(&p),
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/orders/",
    ];
    let o = s3.cloakline(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another cloakline run is writing"),
        "{}",
        stderr(&o)
    );
    // The lock is young: gc leaves it unless told the run is dead.
    let young = s3.cloakline(&["gc", "s3://share/orders/"]);
    assert!(!young.status.success());
    let dry = s3.cloakline(&["gc", "s3://share/orders/", "--older-than", "0", "--dry-run"]);
    ok(&dry);
    // Partition values are data: withheld in what gc prints.
    assert!(
        String::from_utf8_lossy(&dry.stdout)
            .contains("would remove s3://share/orders/currency=(withheld)/part-0.parquet"),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    assert_eq!(s3.keys("share").len(), 2);
    ok(&s3.cloakline(&["gc", "s3://share/orders/", "--older-than", "0"]));
    assert!(s3.keys("share").is_empty(), "{:?}", s3.keys("share"));
    ok(&s3.cloakline(&args));
}

#[test]
fn store_failures_name_the_location_and_leave_no_release() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    let csv = std::fs::read(root().join("examples/customers.csv")).unwrap();
    s3.put("raw/customers.csv", &csv);
    // A bucket that does not exist, for input and for output.
    let o = s3.apply_customers("s3://nobucket/customers.csv", "s3://raw/out.parquet", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://nobucket/customers.csv"),
        "{}",
        stderr(&o)
    );
    assert_no_secret(&o, &[]);
    let o = s3.apply_customers("s3://raw/customers.csv", "s3://nobucket/out.parquet", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://nobucket/out.parquet"),
        "{}",
        stderr(&o)
    );
    assert_no_secret(&o, &[]);
    // A server that is gone: bounded retries, then a clear error.
    let endpoint_down = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = bin()
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .args([
            "--storage-option",
            &format!("endpoint=http://127.0.0.1:{endpoint_down}"),
        ])
        .args([
            "--storage-option",
            "allow_http=true",
            "--storage-option",
            "max_retries=1",
        ])
        .args([
            "check",
            "--policy",
            str(&policy()),
            "--input",
            "s3://raw/customers.csv",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://raw/customers.csv"),
        "{}",
        stderr(&o)
    );
    assert_no_secret(&o, &[]);
    // Credentials in a URL or an unknown option: refused without echoing them.
    let o = s3.cloakline(&[
        "scan",
        "--input",
        &format!("s3://{KEY_ID}:{SECRET}@raw/customers.csv"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_no_secret(&o, &[]);
    let o = s3.cloakline(&[
        "--storage-option",
        &format!("secret_access_key={SECRET}"),
        "scan",
        "--input",
        "s3://raw/customers.csv",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("environment"), "{}", stderr(&o));
    assert_no_secret(&o, &[]);
    let o = s3.cloakline(&[
        "--storage-option",
        &format!("bogus={SECRET}"),
        "scan",
        "--input",
        "s3://raw/customers.csv",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bogus"), "{}", stderr(&o));
    assert_no_secret(&o, &[]);
    assert_eq!(
        s3.keys("raw"),
        ["customers.csv"],
        "a failed run left objects"
    );
}

#[test]
fn a_server_killed_mid_run_fails_clearly_and_commits_nothing() {
    let Some(mut s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    // Kill the server once the run has fetched its input and is writing: the upload fails,
    // and no sidecar (no release) exists when the server is back.
    let csv = std::fs::read(root().join("examples/customers.csv")).unwrap();
    let big: Vec<u8> = {
        let mut v = csv.clone();
        let body = csv
            .split(|&b| b == b'\n')
            .skip(1)
            .collect::<Vec<_>>()
            .join(&b'\n');
        for _ in 0..200 {
            v.extend_from_slice(&body);
            v.push(b'\n');
        }
        v
    };
    s3.put("raw/customers.csv", &big);
    let keyring = demo_keyring();
    let mut child = {
        let mut c = bin();
        c.env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .args(["--storage-option", &format!("endpoint={}", s3.endpoint())])
            .args([
                "--storage-option",
                "allow_http=true",
                "--storage-option",
                "max_retries=1",
            ])
            .args([
                "-v",
                "apply",
                "--policy",
                str(&policy()),
                "--keyring",
                str(&keyring),
                "--input",
                "s3://raw/customers.csv",
                "--output",
                "s3://share/customers.parquet",
                "--batch-size",
                "64",
                "--threads",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let err = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Kill once the input has arrived (it is read while it arrives) and the output is
    // claimed (its lock exists).
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log
        .iter()
        .any(|l: &String| l.contains("fetch: the input has arrived"))
    {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => log.push(l),
            Err(_) => panic!("the input never arrived: {}", log.join("\n")),
        }
    }
    while s3
        .get("share/customers.parquet.provenance.json.lock")
        .is_none()
        && child.try_wait().unwrap().is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the run never claimed its output"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = s3.child.kill();
    let _ = s3.child.wait();
    let out = child.wait_with_output().unwrap();
    log.extend(lines.iter());
    let log = log.join("\n");
    if out.status.success() {
        eprintln!("note: the run finished before the server was killed; nothing to check");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{log}");
    // The error (not just the log around it, which names the output too) names the output.
    assert!(
        error_line(&log).contains("s3://share/customers.parquet"),
        "{log}"
    );
    assert!(!log.contains(SECRET));
    assert_no_secret(&out, &[]);
    drop(s3);
}

#[test]
fn sql_reads_url_tables_and_writes_a_url_output_with_a_record_naming_them() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    put_partitioned(&s3);
    let o = s3.cloakline(&[
        "sql",
        "SELECT currency, count(*) AS n, sum(amount) AS total FROM o GROUP BY currency ORDER BY currency",
        "--table",
        "o=s3://raw/orders/",
        "--output",
        "s3://share/agg.parquet",
    ]);
    ok(&o);
    assert_eq!(
        s3.keys("share"),
        ["agg.parquet", "agg.parquet.provenance.json"]
    );
    let record =
        String::from_utf8_lossy(&s3.get("share/agg.parquet.provenance.json").unwrap()).to_string();
    assert!(record.contains("s3://share/agg.parquet"), "{record}");
    assert!(record.contains("s3://raw/orders"), "{record}");
    assert!(
        !record.contains("currency=CNY/part-0.csv"),
        "partition values are data: {record}"
    );
    assert!(record.contains("cl:etag"), "{record}");
    let scratch = std::env::temp_dir()
        .join("cloakline-")
        .display()
        .to_string();
    assert!(!record.contains(&scratch), "{record}");
    ok(&s3.cloakline(&["verify", "s3://share/agg.parquet"]));
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("agg.parquet");
    std::fs::write(&local, s3.get("share/agg.parquet").unwrap()).unwrap();
    let (batches, _) = read_parquet(&local);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}

#[test]
fn escaped_partition_values_folder_markers_overwrite_and_gc_keep_a_release_whole() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    // A folder marker (as consoles create) and a partition value escaped in its key.
    s3.put("raw/orders/", b"");
    // (`%25` on the wire: the key itself holds `%2F`, as a Hive writer escapes `/`.)
    s3.put(
        "raw/orders/city=a%252Fb/part-0.csv",
        b"order_id,amount\n1,10\n2,20\n",
    );
    s3.put("raw/orders/city=c/part-0.csv", b"order_id,amount\n3,30\n");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        format!("{ORDERS}  city: {{ action: keep, basis: contract }}\n"),
    )
    .unwrap();
    let args = [
        "apply",
        "--policy",
        str(&p),
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/orders/",
    ];
    ok(&s3.cloakline(&args));
    // The escaped value keeps its escape in the key (not `%252F`), and verifies.
    assert_eq!(
        s3.keys("share"),
        [
            "orders.provenance.json",
            "orders/city=a%2Fb/part-0.parquet",
            "orders/city=c/part-0.parquet"
        ]
    );
    ok(&s3.cloakline(&["verify", "s3://share/orders/"]));
    // --overwrite replaces a directory release (its objects are the previous release's).
    let mut over = args.to_vec();
    over.push("--overwrite");
    ok(&s3.cloakline(&over));
    ok(&s3.cloakline(&["verify", "s3://share/orders/"]));
    // gc never touches a committed release: with a stale lock it removes only the lock.
    let o = s3.cloakline(&["gc", "s3://share/orders/", "--older-than", "0"]);
    assert!(
        !o.status.success(),
        "no lock, nothing to collect: {}",
        stderr(&o)
    );
    s3.put("share/orders.provenance.json.lock", b"{\"runId\":\"dead\"}");
    let o = s3.cloakline(&["gc", "s3://share/orders/", "--older-than", "0"]);
    ok(&o);
    assert_eq!(s3.keys("share").len(), 3, "{:?}", s3.keys("share"));
    ok(&s3.cloakline(&["verify", "s3://share/orders/"]));
    // An input and output that overlap are refused before anything is written.
    let o = s3.cloakline(&[
        "apply",
        "--policy",
        str(&p),
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://raw/orders/out/",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_policy_and_its_hierarchy_files_are_read_from_the_store_and_named_by_url() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("conf");
    s3.bucket("share");
    put_partitioned(&s3);
    let policy = format!(
        "{ORDERS}  currency: {{ action: keep, basis: contract }}\nprivacy:\n  quasi_identifiers:\n    currency: {{ hierarchy: h/currency.csv }}\n  k: 3\n"
    );
    s3.put("conf/policies/orders.yaml", policy.as_bytes());
    s3.put("conf/policies/h/currency.csv", b"CNY;*\nUSD;*\n");
    let url = "s3://conf/policies/orders.yaml";
    ok(&s3.cloakline(&["validate", "--policy", url]));
    let c = s3.cloakline(&["check", "--policy", url, "--input", "s3://raw/orders/"]);
    ok(&c);
    let o = s3.cloakline(&[
        "apply",
        "--policy",
        url,
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/orders/",
    ]);
    ok(&o);
    let record =
        String::from_utf8_lossy(&s3.get("share/orders.provenance.json").unwrap()).to_string();
    assert!(record.contains(url), "the policy is not named by its URL");
    assert!(
        record.contains("s3://conf/policies/h/currency.csv"),
        "the hierarchy file is not named by its URL"
    );
    let scratch = std::env::temp_dir()
        .join("cloakline-")
        .display()
        .to_string();
    assert!(!record.contains(&scratch), "a scratch path in the record");
    ok(&s3.cloakline(&["verify", "s3://share/orders/", "--policy", url]));

    // A policy in a bucket reaches only files beside it; a policy problem names the URL.
    s3.put(
        "conf/policies/escape.yaml",
        policy.replace("h/currency.csv", "../secret.csv").as_bytes(),
    );
    let e = s3.cloakline(&["validate", "--policy", "s3://conf/policies/escape.yaml"]);
    assert_eq!(e.status.code(), Some(2), "{}", stderr(&e));
    assert!(
        stderr(&e).contains("relative paths beside it"),
        "{}",
        stderr(&e)
    );
    s3.put(
        "conf/policies/bad.yaml",
        policy.replace("k: 3", "k: 0").as_bytes(),
    );
    let e = s3.cloakline(&["validate", "--policy", "s3://conf/policies/bad.yaml"]);
    assert_ne!(e.status.code(), Some(0));
    assert!(
        stderr(&e).contains("s3://conf/policies/bad.yaml"),
        "{}",
        stderr(&e)
    );
    assert!(!stderr(&e).contains(&scratch), "{}", stderr(&e));
    // Plain key material is not read from a bucket.
    s3.put("conf/keys.json", b"{}");
    let e = s3.cloakline(&[
        "apply",
        "--policy",
        url,
        "--keyring",
        "s3://conf/keys.json",
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/other/",
    ]);
    assert_eq!(e.status.code(), Some(2), "{}", stderr(&e));
    assert!(
        stderr(&e).contains("mount it as a secret"),
        "{}",
        stderr(&e)
    );
}

#[test]
fn an_output_over_the_part_size_goes_up_in_parts_and_reads_back_whole() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    // 200,000 rows whose encrypted column does not compress: a release of ~12 MB, more than
    // one 8 MiB part.
    let mut csv = String::from("order_id,secret\n");
    for i in 0..200_000u64 {
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        csv.push_str(&format!("{i},{h:016x}{:016x}\n", h.rotate_left(17)));
    }
    s3.put("raw/big.csv", csv.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        "policy: big\nversion: 1\ncontroller: Example\njurisdictions: [EU]\npurpose: test\nunlisted: error\nfields:\n  order_id: { action: keep, basis: contract }\n  secret: { action: encrypt, key: k1, basis: contract }\n",
    )
    .unwrap();
    let k = demo_keyring();
    let o = s3.cloakline(&[
        "apply",
        "--policy",
        str(&p),
        "--keyring",
        str(&k),
        "--input",
        "s3://raw/big.csv",
        "--output",
        "s3://share/big.parquet",
        "--json",
        "-v",
    ]);
    ok(&o);
    // Its parts went up while the file was written; publish only completed the upload.
    assert!(
        stderr(&o).contains("streamed=1"),
        "not streamed: {}",
        stderr(&o)
    );
    let body = s3.get("share/big.parquet").unwrap();
    assert!(
        body.len() > 8 << 20,
        "only {} bytes: not multipart",
        body.len()
    );
    let etag = s3.etag("share", "big.parquet").unwrap();
    assert!(
        etag.contains('-'),
        "ETag {etag} is not a multipart upload's"
    );
    // What went up is what the record lists, byte for byte.
    let record: serde_json::Value =
        serde_json::from_slice(&s3.get("share/big.parquet.provenance.json").unwrap()).unwrap();
    let text = record.to_string();
    use sha2::Digest as _;
    let sha = hex::encode(sha2::Sha256::digest(&body));
    assert!(
        text.contains(&sha),
        "the record does not list the uploaded bytes"
    );
    ok(&s3.cloakline(&["verify", "s3://share/big.parquet"]));
}

#[test]
fn a_consent_ledger_in_a_bucket_gates_a_partitioned_prefix_and_verify_checks_it_by_url() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("crm");
    s3.bucket("share");
    put_partitioned(&s3);
    // Orders 0..3 (CNY) and 10..13 (USD): 1 withdrew, 11 never consented.
    let mut ledger = String::from("subject_id,purpose,event,timestamp\n");
    for id in [0, 1, 2, 10, 12] {
        ledger.push_str(&format!("{id},billing,given,2026-01-01\n"));
    }
    ledger.push_str("1,billing,withdrawn,2026-02-01\n");
    s3.put("crm/consent/ledger.csv", ledger.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        ORDERS.replace("amount: { action: keep, basis: contract }", "amount: { action: keep, basis: consent }")
            .replace(
                "unlisted: error\n",
                "unlisted: error\nconsent: { ledger: s3://crm/consent/ledger.csv, subject: order_id, purpose: billing }\n",
            )
            + "  currency: { action: keep, basis: contract }\n",
    )
    .unwrap();
    let o = s3.cloakline(&[
        "apply",
        "--policy",
        str(&p),
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/orders/",
        "--json",
    ]);
    ok(&o);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["rowsOut"], 4, "{summary}");
    assert_eq!(summary["consent"]["rowsRemovedWithdrawn"], 1);
    assert_eq!(summary["consent"]["rowsRemovedMissing"], 1);
    assert_eq!(summary["consent"]["ledger"], "s3://crm/consent/ledger.csv");
    let v = s3.cloakline(&[
        "verify",
        "s3://share/orders/",
        "--consent-ledger",
        "s3://crm/consent/ledger.csv",
    ]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // The ledger changed after the release: verify says so.
    s3.put(
        "crm/consent/ledger.csv",
        format!("{ledger}0,billing,withdrawn,2026-03-01\n").as_bytes(),
    );
    let v = s3.cloakline(&[
        "verify",
        "s3://share/orders/",
        "--consent-ledger",
        "s3://crm/consent/ledger.csv",
    ]);
    assert_eq!(v.status.code(), Some(4), "{}", stderr(&v));
    // A policy read from a bucket reaches no local ledger.
    let remote = std::fs::read_to_string(&p)
        .unwrap()
        .replace("s3://crm/consent/ledger.csv", "/etc/passwd");
    s3.put("crm/p.yaml", remote.as_bytes());
    let e = s3.cloakline(&[
        "apply",
        "--policy",
        "s3://crm/p.yaml",
        "--input",
        "s3://raw/orders/",
        "--output",
        "s3://share/other/",
    ]);
    assert_eq!(e.status.code(), Some(2), "{}", stderr(&e));
    assert!(stderr(&e).contains("is a local path"), "{}", stderr(&e));
    assert!(s3.keys("share").iter().all(|k| !k.starts_with("other")));
}

/// How the loopback proxy in front of moto misbehaves.
#[derive(Clone, Default)]
struct Misbehave {
    /// Counts the response bytes sent, over every connection.
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Drop `If-None-Match` from every request: an S3-compatible store that ignores
    /// conditional writes, as Garage 2.5 does.
    unconditional: bool,
    /// Send responses at most this fast (bytes per second, per connection).
    rate: Option<u64>,
    /// Cut a connection once it has carried this many response bytes.
    cut_after: Option<u64>,
}

/// A loopback proxy to moto on `port` that misbehaves as told; its port.
fn proxy(port: u16, how: Misbehave) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let how = how.clone();
            std::thread::spawn(move || {
                let _ = relay(client, port, how);
            });
        }
    });
    at
}

/// Forward requests one by one (heads as told, bodies by their length), and responses as
/// they come (as slowly, or as cut short, as told).
fn relay(client: TcpStream, port: u16, how: Misbehave) -> std::io::Result<()> {
    use std::io::BufRead;
    let server = TcpStream::connect(("127.0.0.1", port))?;
    let (mut back, mut to_client) = (server.try_clone()?, client.try_clone()?);
    let cut_server = server.try_clone()?;
    let (unconditional, total) = (how.unconditional, std::sync::Arc::clone(&how.sent));
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        let mut sent = 0u64;
        loop {
            let n = match back.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(cut) = how.cut_after
                && sent + n as u64 > cut
            {
                let _ = to_client.write_all(&buf[..(cut - sent) as usize]);
                let _ = cut_server.shutdown(std::net::Shutdown::Both);
                break;
            }
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
            sent += n as u64;
            total.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
            if let Some(rate) = how.rate {
                std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
            }
        }
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
    let mut reader = std::io::BufReader::new(client);
    let mut to_server = server;
    loop {
        let mut head = Vec::new();
        let mut body = 0u64;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let lower = line.to_ascii_lowercase();
            if unconditional && lower.starts_with("if-none-match:") {
                continue;
            }
            if let Some(n) = lower.strip_prefix("content-length:") {
                body = n.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") {
                return Err(std::io::Error::other("chunked requests are not relayed"));
            }
            head.extend_from_slice(line.as_bytes());
            if line == "\r\n" {
                break;
            }
        }
        to_server.write_all(&head)?;
        std::io::copy(&mut (&mut reader).take(body), &mut to_server)?;
    }
}

/// A store that accepts a second conditional create cannot keep two runs apart: the run
/// says so (and still releases), where moto (which enforces it) gets no such warning.
#[test]
fn a_store_that_ignores_conditional_writes_is_warned_about() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    s3.bucket("share");
    let csv = std::fs::read(root().join("examples/customers.csv")).unwrap();
    s3.put("raw/customers.csv", &csv);
    let proxy = proxy(
        s3.port,
        Misbehave {
            unconditional: true,
            ..Default::default()
        },
    );
    let o = S3::apply_customers_via(
        &format!("http://127.0.0.1:{proxy}"),
        "s3://raw/customers.csv",
        "s3://share/customers.parquet",
        &[],
    );
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("does not enforce conditional writes")
            && err.contains("s3://share/customers.parquet"),
        "{err}"
    );
    assert!(s3.get("share/customers.parquet.provenance.json").is_some());
    // Straight to moto: no warning (it refuses the second create).
    let o = s3.apply_customers("s3://raw/customers.csv", "s3://share/again.parquet", &[]);
    ok(&o);
    assert!(!stderr(&o).contains("conditional writes"), "{}", stderr(&o));
}

/// A Parquet object of `rows` rows, ~37 bytes each that do not compress, in row groups of
/// 50,000: over one 8 MiB range from about 230,000 rows.
fn wide_parquet(rows: u64) -> Vec<u8> {
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;
    let ids = Int64Array::from_iter_values(0..rows as i64);
    let secrets = StringArray::from_iter_values((0..rows).map(|i| {
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{h:016x}{:016x}", h.rotate_left(17))
    }));
    let batch = arrow::record_batch::RecordBatch::try_from_iter([
        ("order_id", Arc::new(ids) as Arc<dyn Array>),
        ("secret", Arc::new(secrets) as Arc<dyn Array>),
    ])
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(50_000))
        .set_dictionary_enabled(false)
        .build();
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// A policy for [`wide_parquet`] whose output is deterministic (a keyed token).
fn wide_policy(dir: &Path) -> PathBuf {
    let p = dir.join("wide.yaml");
    std::fs::write(
        &p,
        "policy: wide\nversion: 1\ncontroller: Example\njurisdictions: [EU]\npurpose: test\nunlisted: error\nfields:\n  order_id: { action: keep, basis: contract }\n  secret: { action: tokenize, key: k1, basis: contract }\n",
    )
    .unwrap();
    p
}

/// A moto server holding `raw/wide.parquet` ([`wide_parquet`], 300,000 rows), a scratch
/// folder with [`wide_policy`], a private `TMPDIR` and an output path: what the tests of
/// arriving inputs share.
struct Wide {
    s3: S3,
    body: Vec<u8>,
    dir: tempfile::TempDir,
    policy: PathBuf,
    tmp: PathBuf,
    out: PathBuf,
}

impl Wide {
    fn start() -> Option<Wide> {
        let s3 = S3::start()?;
        s3.bucket("raw");
        let body = wide_parquet(300_000);
        s3.put("raw/wide.parquet", &body);
        let dir = tempfile::tempdir().unwrap();
        let policy = wide_policy(dir.path());
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let out = dir.path().join("out.parquet");
        Some(Wide {
            s3,
            body,
            dir,
            policy,
            tmp,
            out,
        })
    }

    /// Apply the policy to `raw/wide.parquet` through a proxy misbehaving as told.
    fn run(&self, how: Misbehave, options: &[&str]) -> WideRun {
        let at = proxy(self.s3.port, how);
        WideRun::start(
            &format!("http://127.0.0.1:{at}"),
            options,
            &self.policy,
            "s3://raw/wide.parquet",
            &self.out,
            &self.tmp,
        )
    }

    /// No output, no sidecar, nothing left in the run's `TMPDIR`.
    fn assert_nothing_left(&self) {
        assert!(!self.out.exists(), "an output was written");
        assert!(
            !self.dir.path().join("out.parquet.provenance.json").exists(),
            "a sidecar was written"
        );
        self.assert_no_scratch();
    }

    fn assert_no_scratch(&self) {
        let scratch: Vec<_> = std::fs::read_dir(&self.tmp).unwrap().collect();
        assert!(scratch.is_empty(), "scratch left behind: {scratch:?}");
    }
}

/// A `cloakline -v apply` of [`wide_policy`] from `input` to the local `output` through
/// `endpoint` (plus `options`, storage options), with its own `TMPDIR`: its standard error
/// is read line by line, with a deadline.
struct WideRun {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: Vec<String>,
    deadline: Instant,
}

impl WideRun {
    fn start(
        endpoint: &str,
        options: &[&str],
        policy: &Path,
        input: &str,
        output: &Path,
        tmp: &Path,
    ) -> WideRun {
        let k = demo_keyring();
        let mut c = bin();
        S3::configure_at(&mut c, endpoint);
        for o in options {
            c.args(["--storage-option", o]);
        }
        c.env("TMPDIR", tmp)
            .args(["-v", "apply", "--policy", str(policy), "--keyring", str(&k)])
            .args(["--input", input, "--output", str(output)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        WideRun {
            child,
            lines,
            log: Vec::new(),
            deadline: Instant::now() + Duration::from_secs(120),
        }
    }

    /// The next line of standard error; `None` once the run has closed it. Past the
    /// deadline the run is killed and the test fails (a hang is what this guards against).
    fn next(&mut self) -> Option<String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(l) => {
                self.log.push(l.clone());
                Some(l)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                panic!("the run hung: {}", self.log.join("\n"));
            }
        }
    }

    /// Read to the end; the exit code and the whole standard error.
    fn finish(mut self) -> (Option<i32>, String) {
        while self.next().is_some() {}
        let status = self.child.wait().unwrap();
        (status.code(), self.log.join("\n"))
    }
}

/// The error a failed run printed (its `error:` line), without the log around it.
fn error_line(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| l.starts_with("error: "))
        .unwrap_or("")
}

/// A single Parquet object is read while it arrives: its footer is fetched first and the
/// run plans from it when well under the whole object has come (through a proxy sending
/// 4 MiB/s per connection); the result is the same as from a local copy, and the record
/// holds the object's SHA-256 as the store sent it.
#[test]
fn a_single_object_is_read_while_it_arrives_and_the_result_is_unchanged() {
    let Some(w) = Wide::start() else { return };
    assert!(w.body.len() > 9 << 20, "{} bytes", w.body.len());
    let how = Misbehave {
        rate: Some(4 << 20),
        ..Default::default()
    };
    let sent = std::sync::Arc::clone(&how.sent);
    let mut run = w.run(how, &[]);
    let mut at_plan = None;
    while let Some(l) = run.next() {
        if l.contains("plan: the policy fits every input") {
            at_plan = Some(sent.load(std::sync::atomic::Ordering::SeqCst));
        }
    }
    let (code, log) = run.finish();
    assert_eq!(code, Some(0), "{log}");
    let at_plan = at_plan.unwrap_or_else(|| panic!("no plan line: {log}"));
    // The footer is at the object's end: planning from it with less than half of the
    // object sent means its end came first.
    assert!(
        at_plan < w.body.len() as u64 / 2,
        "planned after {at_plan} of {} bytes: {log}",
        w.body.len()
    );
    assert!(log.contains("fetch: the input has arrived"), "{log}");
    // The same run from a local copy writes the same values.
    let local_in = w.dir.path().join("wide.parquet");
    std::fs::write(&local_in, &w.body).unwrap();
    let local_out = w.dir.path().join("local.parquet");
    let k = demo_keyring();
    let lo = bin()
        .args(["apply", "--policy", str(&w.policy), "--keyring", str(&k)])
        .args(["--input", str(&local_in), "--output", str(&local_out)])
        .output()
        .unwrap();
    ok(&lo);
    assert_eq!(
        deterministic_columns(&w.out),
        deterministic_columns(&local_out)
    );
    let record = std::fs::read_to_string(w.dir.path().join("out.parquet.provenance.json")).unwrap();
    use sha2::Digest as _;
    assert!(
        record.contains(&hex::encode(sha2::Sha256::digest(&w.body))),
        "the record does not hold the object's SHA-256"
    );
    assert!(record.contains("s3://raw/wide.parquet"));
    ok(&bin().args(["verify", str(&w.out)]).output().unwrap());
    w.assert_no_scratch();
}

/// A fetch that fails while the run reads the arriving object (the proxy cuts every
/// connection after 1.5 MiB and no retry is allowed: the footer comes, the rest never does)
/// ends the run with the store's error naming the input, exit 1, no output and no scratch.
#[test]
fn a_fetch_that_fails_while_the_object_is_read_fails_the_run_and_writes_nothing() {
    let Some(w) = Wide::start() else { return };
    let cut = Misbehave {
        cut_after: Some(3 << 19),
        ..Default::default()
    };
    let (code, log) = w.run(cut, &["max_retries=0"]).finish();
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("plan: the policy fits every input"), "{log}");
    let error = error_line(&log);
    assert!(
        error.contains("s3://raw/wide.parquet") && !error.contains("fetch of this object"),
        "not the store's error naming the input: {log}"
    );
    assert!(!log.contains(SECRET));
    w.assert_nothing_left();
    let left: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left.len(), 2, "stray files: {left:?}");
}

/// Ctrl-C while the run waits for an arriving object (the proxy sends 128 KiB/s per
/// connection: the footer comes in about 8 s, the rest would take about 25 s more) stops the
/// fetch at once: exit 130, no output, no scratch.
#[cfg(unix)]
#[test]
fn ctrl_c_while_the_input_arrives_stops_the_fetch_and_the_run() {
    let Some(w) = Wide::start() else { return };
    let slow = Misbehave {
        rate: Some(128 << 10),
        ..Default::default()
    };
    let mut run = w.run(slow, &[]);
    // Planned from the footer, then waiting for the rest.
    while let Some(l) = run.next() {
        if l.contains("plan: the policy fits every input") {
            break;
        }
    }
    let asked = Instant::now();
    let pid = run.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (code, log) = run.finish();
    assert_eq!(code, Some(130), "{log}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "the run waited for the store after Ctrl-C ({:?}): {log}",
        asked.elapsed()
    );
    assert!(!log.contains("fetch: the input has arrived"), "{log}");
    w.assert_nothing_left();
}

/// The privacy pass reads the input through DataFusion's own CSV reader, which does not
/// wait for arriving bytes: with a privacy block, an arriving input is read only once whole.
/// Adult four times over (10 MB, five 2 MiB ranges, four in flight) through a proxy sending
/// 1 MiB/s per connection: the first rows are there and planned about 1.5 s before the last
/// range; the release is the one a local run of the same file makes.
#[test]
fn the_privacy_pass_reads_an_arriving_input_only_once_it_is_whole() {
    let Some(s3) = S3::start() else { return };
    s3.bucket("raw");
    let text = std::fs::read_to_string(root().join("examples/adult.csv")).unwrap();
    let (head, rows) = text.split_once('\n').unwrap();
    let csv = format!("{head}\n{}", rows.repeat(4));
    s3.put("raw/adult.csv", csv.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let local_in = dir.path().join("adult.csv");
    std::fs::write(&local_in, &csv).unwrap();
    let policy = root().join("policies/adult.yaml");
    let slow = proxy(
        s3.port,
        Misbehave {
            rate: Some(1 << 20),
            ..Default::default()
        },
    );
    let (remote, local) = (
        dir.path().join("s3.parquet"),
        dir.path().join("local.parquet"),
    );
    let k = demo_keyring();
    let apply = |input: &str, out: &Path, endpoint: Option<String>| {
        let mut c = bin();
        if let Some(e) = &endpoint {
            S3::configure_at(&mut c, e);
        }
        c.args(["apply", "--policy", str(&policy), "--keyring", str(&k)])
            .args(["--delimiter", ";", "--input", input, "--output", str(out)]);
        ok(&c.output().unwrap());
    };
    apply(
        "s3://raw/adult.csv",
        &remote,
        Some(format!("http://127.0.0.1:{slow}")),
    );
    apply(str(&local_in), &local, None);
    assert_eq!(
        deterministic_columns(&remote),
        deterministic_columns(&local)
    );
}
