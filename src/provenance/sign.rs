//! Signing provenance.
//!
//! Both kinds of signature cover the canonical form of the sidecar document without its
//! `cl:signature` member (object keys sorted, no insignificant whitespace).
//!
//! - **Ed25519**, with a signing key (`keys generate --signing`): anyone holding the public
//!   key (`keys export-public`) can verify, and the public key unlocks nothing. For releases
//!   that leave the organisation.
//! - **HMAC-SHA256**, with a data key, under the subkey HKDF(key, info
//!   `cloakline/v1/sign/provenance`): the verifier needs the same secret key, so it proves
//!   integrity only within the organisation.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::keys::{Key, KeyPurpose};
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
    // HMAC accepts keys of any length.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(sub.as_ref()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(&signed_bytes(doc));
    hex::encode(mac.finalize().into_bytes())
}

/// The bytes a signature covers: the canonical form of `doc` without `cl:signature`.
pub fn signed_bytes(doc: &Value) -> Vec<u8> {
    let mut unsigned = doc.clone();
    if let Value::Object(m) = &mut unsigned {
        m.remove(SIGNATURE);
    }
    canonical_json(&unsigned).into_bytes()
}

/// The `cl:signature` block signing `doc` with `key` would add: Ed25519 for a signing key,
/// HMAC-SHA256 for a data key.
pub fn signature_block(doc: &Value, key: &Key) -> Value {
    match key.purpose() {
        KeyPurpose::Signing => {
            let value = key
                .sign_ed25519(&signed_bytes(doc))
                .map(|s| hex::encode(s.to_bytes()))
                .unwrap_or_default();
            json!({
                "algorithm": ED25519,
                "canonicalization": CANONICALIZATION,
                "keyId": key.id(),
                "keyFingerprint": key.fingerprint(),
                "value": value,
            })
        }
        KeyPurpose::Data => json!({
            "algorithm": HMAC,
            "kdf": "HKDF-SHA256",
            "kdfInfo": KDF_INFO,
            "canonicalization": CANONICALIZATION,
            "keyId": key.id(),
            "keyFingerprint": key.fingerprint(),
            "value": mac_of(key, doc),
        }),
    }
}

/// The `algorithm` of an Ed25519 signature block.
pub const ED25519: &str = "Ed25519";
/// The `algorithm` of an HMAC signature block.
pub const HMAC: &str = "HMAC-SHA256";

/// Add a `cl:signature` member to `doc`, signed with `key`.
pub fn sign(doc: &mut Value, key: &Key) {
    let block = signature_block(doc, key);
    if let Value::Object(m) = doc {
        m.insert(SIGNATURE.into(), block);
    }
}

/// Whether `signature_hex` is a valid Ed25519 signature of `doc` under `public`.
pub fn ed25519_valid(
    doc: &Value,
    public: &ed25519_dalek::VerifyingKey,
    signature_hex: &str,
) -> bool {
    let mut bytes = [0u8; 64];
    if signature_hex.len() != 128 || hex::decode_to_slice(signature_hex, &mut bytes).is_err() {
        return false;
    }
    let signature = ed25519_dalek::Signature::from_bytes(&bytes);
    // verify_strict refuses small-order keys and non-canonical signatures (malleability).
    public.verify_strict(&signed_bytes(doc), &signature).is_ok()
}

/// A warning when the data key `key_id` would HMAC-sign provenance and also tokenizes,
/// encrypts or scrubs fields of `policy`: whoever is given it to check signatures can also
/// decrypt and re-identify.
pub fn shared_signing_key(policy: &crate::policy::Policy, key_id: &str) -> Option<String> {
    let fields: Vec<&str> = policy
        .fields
        .iter()
        .filter(|(_, f)| protects(f, key_id))
        .map(|(name, _)| name.as_str())
        .collect();
    (!fields.is_empty()).then(|| {
        format!(
            "signing key {key_id} also protects field(s) {}: anyone given it to check signatures can decrypt or re-identify them; sign with an Ed25519 key (`cloakline keys generate --signing --id s1`, partners verify with `keys export-public`)",
            fields.join(", ")
        )
    })
}

/// Whether `field` is tokenized, encrypted or scrubbed into tokens with key `key_id`.
pub fn protects(field: &crate::policy::Field, key_id: &str) -> bool {
    field.action.key_id() == Some(key_id)
}
