//! Checking an output against its provenance, and signing provenance.
//!
//! `verify` checks that the output's SHA-256, size and row count match the record, that the
//! copy embedded in a Parquet footer agrees with the sidecar, that the output schema matches
//! the recorded fields, optionally that a policy file is the one recorded, and the signature
//! when there is one. Each check is reported on its own; any failure fails the whole.
//!
//! A signature is HMAC-SHA256 over the canonical form of the sidecar document without its
//! `cl:signature` member (object keys sorted, no insignificant whitespace), under the subkey
//! HKDF(key, info `cloakline/v1/sign/provenance`). HMAC was chosen over Ed25519 because the
//! keyring already holds symmetric keys; a verifier needs the same key.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::apply::sidecar_path;
use crate::error::{Error, Result};
use crate::io::{Format, Input, ReadOptions, sha256_file};
use crate::keys::{Key, Keyring};
use crate::provenance::{FORMAT, PARQUET_KEY};

/// The member holding the signature.
pub const SIGNATURE: &str = "cl:signature";
const KDF_INFO: &str = "cloakline/v1/sign/provenance";

/// The canonical text of a JSON value: object keys sorted by code point, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn mac_of(key: &Key, doc: &Value) -> String {
    let sub = key.subkey("sign", "provenance");
    let mut unsigned = doc.clone();
    if let Value::Object(m) = &mut unsigned {
        m.remove(SIGNATURE);
    }
    // HMAC accepts keys of any length.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(sub.as_ref()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(canonical_json(&unsigned).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Add a `cl:signature` member to `doc`, signed with `key`.
pub fn sign(doc: &mut Value, key: &Key) {
    let value = mac_of(key, doc);
    if let Value::Object(m) = doc {
        m.insert(
            SIGNATURE.into(),
            json!({
                "algorithm": "HMAC-SHA256",
                "kdf": "HKDF-SHA256",
                "kdfInfo": KDF_INFO,
                "canonicalization": "cloakline-canonical/v1: the document without cl:signature, object keys sorted, no whitespace",
                "keyId": key.id(),
                "keyFingerprint": key.fingerprint(),
                "value": value,
            }),
        );
    }
}

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// All checks of one verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub output: String,
    pub provenance: String,
    pub checks: Vec<Check>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
    pub fn to_text(&self) -> String {
        let mut s = format!("{} against {}\n", self.output, self.provenance);
        for c in &self.checks {
            s.push_str(&format!(
                "{} {:<18} {}\n",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        s.push_str(if self.passed() {
            "verified\n"
        } else {
            "verification FAILED\n"
        });
        s
    }
}

fn nodes_of<'a>(doc: &'a Value, ty: &str) -> Vec<&'a Value> {
    doc["@graph"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter(|n| match &n["@type"] {
                    Value::String(t) => t == ty,
                    Value::Array(a) => a.iter().any(|t| t == ty),
                    _ => false,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The recorded output dataset node for `output`.
fn output_node<'a>(doc: &'a Value, output: &Path) -> Option<&'a Value> {
    let outs: Vec<&Value> = nodes_of(doc, "cl:Dataset")
        .into_iter()
        .filter(|n| n.get("wasGeneratedBy").is_some())
        .collect();
    if outs.len() == 1 {
        return outs.first().copied();
    }
    let name = output.file_name()?;
    outs.into_iter().find(|n| {
        n["cl:path"]
            .as_str()
            .map(Path::new)
            .and_then(Path::file_name)
            == Some(name)
    })
}

/// The first place two documents differ, as a JSON pointer.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, format!("{path}/{k}")),
                _ => Some(format!("{path}/{k}")),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path} (length {} vs {})", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_difference(p, q, format!("{path}/{i}")))
        }
        _ if a == b => None,
        _ => Some(if path.is_empty() { "/".into() } else { path }),
    }
}

/// Verify `output` against its sidecar (or `provenance`).
pub fn verify(
    output: &Path,
    provenance: Option<&Path>,
    policy: Option<&Path>,
    keyring: Option<&Keyring>,
    read: &ReadOptions,
) -> Result<Verification> {
    let side_path: PathBuf = provenance
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sidecar_path(output));
    let text = std::fs::read_to_string(&side_path).map_err(|e| Error::io(&side_path, e))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| Error::data(side_path.display(), format!("not valid JSON: {e}")))?;
    let mut checks = Vec::new();
    let mut check = |name: &'static str, passed: bool, detail: String| {
        checks.push(Check {
            name,
            passed,
            detail,
        })
    };
    check(
        "format",
        doc["cl:format"] == FORMAT,
        format!("cl:format is {}", doc["cl:format"]),
    );
    let node = output_node(&doc, output);
    let Some(node) = node else {
        check(
            "output recorded",
            false,
            format!(
                "no output dataset in the record matches {}",
                output.display()
            ),
        );
        return Ok(Verification {
            output: output.display().to_string(),
            provenance: side_path.display().to_string(),
            checks,
        });
    };
    // Checksum and size.
    let (sha, bytes) = sha256_file(output)?;
    let rec_sha = node["cl:sha256"].as_str().unwrap_or("");
    check(
        "sha256",
        sha == rec_sha,
        if sha == rec_sha {
            sha.clone()
        } else {
            format!("file has {sha}, record says {rec_sha}")
        },
    );
    let rec_bytes = node["cl:bytes"].as_u64();
    check(
        "size",
        rec_bytes == Some(bytes),
        format!("file has {bytes} bytes, record says {}", node["cl:bytes"]),
    );
    // Rows and schema, read as data.
    let format = Format::from_path(output).ok_or_else(|| {
        Error::Usage(format!(
            "cannot tell the format of {}; use .parquet or .csv",
            output.display()
        ))
    })?;
    let rec_rows = node["cl:rows"].as_u64();
    match Input::open(output, format, read, &|s| std::sync::Arc::new(s.clone())) {
        Ok(input) => {
            let schema = input.schema.clone();
            let mut rows = 0u64;
            let mut read_error = None;
            match input.batches() {
                Ok(batches) => {
                    for b in batches {
                        match b {
                            Ok(b) => rows += b.num_rows() as u64,
                            Err(e) => {
                                read_error = Some(e.to_string());
                                break;
                            }
                        }
                    }
                }
                Err(e) => read_error = Some(e.to_string()),
            }
            match read_error {
                Some(e) => check("rows", false, format!("cannot read the output: {e}")),
                None => check(
                    "rows",
                    rec_rows == Some(rows),
                    format!("file has {rows} rows, record says {}", node["cl:rows"]),
                ),
            }
            let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let recorded: Vec<(String, String)> = node["cl:schema"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            (
                                c["name"].as_str().unwrap_or("").to_string(),
                                c["type"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let rec_names: Vec<String> = recorded.iter().map(|(n, _)| n.clone()).collect();
            // Types are compared for Parquet only: CSV carries none.
            let types_ok = format != Format::Parquet
                || schema
                    .fields()
                    .iter()
                    .zip(&recorded)
                    .all(|(f, (_, t))| f.data_type().to_string() == *t);
            let fields: Vec<String> = doc["@graph"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .filter(|n| n.get("cl:sourceColumn").is_some())
                        .filter_map(|n| n["cl:column"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let ok = names == rec_names && types_ok && fields == names;
            check(
                "schema",
                ok,
                if ok {
                    format!("{} columns as recorded", names.len())
                } else {
                    format!(
                        "file columns [{}], recorded [{}], field records [{}]{}",
                        names.join(", "),
                        rec_names.join(", "),
                        fields.join(", "),
                        if types_ok { "" } else { "; types differ" }
                    )
                },
            );
        }
        Err(e) => check("rows", false, format!("cannot read the output: {e}")),
    }
    // The copy in the Parquet footer.
    if format == Format::Parquet {
        match embedded(output) {
            Ok(Some(emb)) if outputs_in(&doc) > 1 => {
                // A directory run: each file embeds its own record; it must be the same run,
                // policy and field rules as the directory's sidecar (counts are per file).
                let key = |d: &Value| {
                    let mut nodes: Vec<Value> = d["@graph"]
                        .as_array()
                        .map(|g| {
                            g.iter()
                                .filter(|n| {
                                    n.get("cl:sourceColumn").is_some()
                                        || n["@type"]
                                            .as_array()
                                            .is_some_and(|t| t.iter().any(|x| x == "cl:Policy"))
                                })
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    for n in &mut nodes {
                        if let Value::Object(m) = n {
                            m.remove("cl:counts");
                        }
                    }
                    (d["wasGeneratedBy"].clone(), nodes)
                };
                let ok = key(&emb) == key(&doc);
                check(
                    "embedded record",
                    ok,
                    if ok {
                        "footer copy is this directory run's record for the file".into()
                    } else {
                        "footer copy names another run, policy or field rules than the sidecar"
                            .into()
                    },
                );
            }
            Ok(Some(emb)) => {
                let mut expected = doc.clone();
                if let Value::Object(m) = &mut expected {
                    m.remove(SIGNATURE);
                }
                strip_output_checksums(&mut expected);
                match first_difference(&emb, &expected, String::new()) {
                    None => check("embedded record", true, "footer copy agrees".into()),
                    Some(p) => check(
                        "embedded record",
                        false,
                        format!("footer copy and sidecar differ at {p}"),
                    ),
                }
            }
            Ok(None) => check(
                "embedded record",
                false,
                format!("no `{PARQUET_KEY}` in the Parquet footer"),
            ),
            Err(e) => check("embedded record", false, e),
        }
    }
    if let Some(p) = policy {
        let (sha, _) = sha256_file(p)?;
        let rec = nodes_of(&doc, "cl:Policy")
            .first()
            .and_then(|n| n["cl:sha256"].as_str())
            .unwrap_or("")
            .to_string();
        check(
            "policy",
            sha == rec,
            if sha == rec {
                format!("{} is the recorded policy", p.display())
            } else {
                format!("{} has sha256 {sha}, the record used {rec}", p.display())
            },
        );
    }
    match (&doc[SIGNATURE], keyring) {
        (Value::Null, _) => check("signature", true, "not signed".into()),
        (sig, None) => check(
            "signature",
            false,
            format!(
                "signed with key {} but no keyring was given to check it (--keyring)",
                sig["keyId"]
            ),
        ),
        (sig, Some(ring)) => {
            let id = sig["keyId"].as_str().unwrap_or("");
            match ring.get(id) {
                Err(e) => check("signature", false, e.to_string()),
                Ok(key) => {
                    let ok = sig["algorithm"] == "HMAC-SHA256"
                        && sig["value"].as_str() == Some(mac_of(key, &doc).as_str());
                    check(
                        "signature",
                        ok,
                        if ok {
                            format!("HMAC-SHA256 with key {id} is valid")
                        } else {
                            format!(
                                "HMAC-SHA256 with key {id} does not match: the record was changed after signing, or another key signed it"
                            )
                        },
                    );
                }
            }
        }
    }
    Ok(Verification {
        output: output.display().to_string(),
        provenance: side_path.display().to_string(),
        checks,
    })
}

fn outputs_in(doc: &Value) -> usize {
    nodes_of(doc, "cl:Dataset")
        .into_iter()
        .filter(|n| n.get("wasGeneratedBy").is_some())
        .count()
}

/// The sidecar minus what the embedded copy cannot contain: the output's own checksum.
fn strip_output_checksums(doc: &mut Value) {
    if let Some(g) = doc.get_mut("@graph").and_then(Value::as_array_mut) {
        for n in g {
            let is_output = n.get("wasGeneratedBy").is_some()
                && n["@type"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == "cl:Dataset"));
            if is_output && let Value::Object(m) = n {
                m.remove("cl:sha256");
                m.remove("cl:bytes");
            }
        }
    }
}

/// The provenance copy in a Parquet file's footer, if any.
pub fn embedded(path: &Path) -> std::result::Result<Option<Value>, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = parquet::file::reader::SerializedFileReader::new(f).map_err(|e| e.to_string())?;
    use parquet::file::reader::FileReader;
    let kv = reader.metadata().file_metadata().key_value_metadata();
    let Some(text) = kv
        .and_then(|kv| kv.iter().find(|e| e.key == PARQUET_KEY))
        .and_then(|e| e.value.clone())
    else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("footer record is not valid JSON: {e}"))
}
