//! Signing provenance.
//!
//! A signature is HMAC-SHA256 over the canonical form of the sidecar document without its
//! `cl:signature` member (object keys sorted, no insignificant whitespace), under the subkey
//! HKDF(key, info `cloakline/v1/sign/provenance`). HMAC was chosen over Ed25519 because the
//! keyring already holds symmetric keys; a verifier needs the same key.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::keys::Key;
/// The member holding the signature.
pub const SIGNATURE: &str = "cl:signature";
pub(crate) const KDF_INFO: &str = "cloakline/v1/sign/provenance";
pub(crate) const CANONICALIZATION: &str =
    "cloakline-canonical/v1: the document without cl:signature, object keys sorted, no whitespace";

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

pub(crate) fn mac_of(key: &Key, doc: &Value) -> String {
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
                "canonicalization": CANONICALIZATION,
                "keyId": key.id(),
                "keyFingerprint": key.fingerprint(),
                "value": value,
            }),
        );
    }
}
