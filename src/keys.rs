//! Named 256-bit keys, loaded from a keyring file, and the subkeys derived from them.
//!
//! Key material never leaves this module except as derived subkeys handed to the kernels.
//! `Debug` shows only the id and fingerprint, errors never quote the file's content, and every
//! buffer that held material is zeroized on drop.
//!
//! ```
//! use cloakline::keys::Keyring;
//! let ring = Keyring::generate_in_memory(&["k1"]);
//! let key = ring.get("k1").unwrap();
//! assert_eq!(key.fingerprint().len(), 16);
//! // Debug output names the key but never shows its material.
//! assert!(format!("{key:?}").starts_with("Key { id: \"k1\", fingerprint:"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Identifies the keyring file format.
pub const KEYRING_FORMAT: &str = "cloakline-keyring/v1";

/// One named 256-bit key.
pub struct Key {
    id: String,
    material: Zeroizing<[u8; 32]>,
    created: Option<String>,
}

impl Key {
    /// Build a key from raw material (used by tests and `keys generate`).
    pub fn from_bytes(id: impl Into<String>, material: [u8; 32]) -> Result<Self> {
        let id = id.into();
        validate_key_id(&id).map_err(|m| Error::Keyring {
            path: "<memory>".into(),
            message: m,
        })?;
        Ok(Key {
            id,
            material: Zeroizing::new(material),
            created: None,
        })
    }

    /// The key's name, as the policy refers to it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A public, non-reversible fingerprint: the first 8 bytes (16 hex digits) of
    /// HKDF-SHA256(ikm = key, salt = empty, info = `cloakline/v1/fingerprint`).
    pub fn fingerprint(&self) -> String {
        let okm = self.derive("cloakline/v1/fingerprint");
        hex::encode(&okm[..8])
    }

    /// The 32-byte subkey for `action` (`tokenize` or `encrypt`) and `domain`:
    /// HKDF-SHA256(ikm = key, salt = empty, info = `cloakline/v1/<action>/<domain>`).
    pub fn subkey(&self, action: &str, domain: &str) -> Zeroizing<[u8; 32]> {
        self.derive(&format!("cloakline/v1/{action}/{domain}"))
    }

    fn derive(&self, info: &str) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(None, self.material.as_ref());
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        if hk.expand(info.as_bytes(), okm.as_mut()).is_err() {
            unreachable!("HKDF output length 32 is always valid");
        }
        okm
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A set of named keys.
#[derive(Default)]
pub struct Keyring {
    keys: BTreeMap<String, Key>,
    source: String,
    warning: Option<String>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("source", &self.source)
            .field("keys", &self.keys.values().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    /// 64 hexadecimal digits.
    secret_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.secret_hex.zeroize();
    }
}

fn validate_key_id(id: &str) -> std::result::Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key id {id:?} is invalid: use 1 to 64 characters from A-Z a-z 0-9 . _ - :"
        ))
    }
}

impl Keyring {
    /// Load a keyring file. Errors name the file and the key id, never the content.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let err = |message: String| Error::Keyring {
            path: shown.clone(),
            message,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "cannot read it ({e}); create one with `cloakline keys generate --id <ID> --keyring {shown}`"
            ))
        })?);
        let file: KeyringFile = serde_json::from_str(&text).map_err(|e| {
            // serde_json's own message can quote values, which may be secrets: report position only.
            let what = match e.classify() {
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Eof => "ends too early",
                _ => "does not have the keyring layout ({\"format\", \"keys\": [{\"id\", \"secret_hex\"}]})",
            };
            err(format!("{what} at line {} column {}", e.line(), e.column()))
        })?;
        if file.format != KEYRING_FORMAT {
            return Err(err(format!(
                "unknown format {:?}; expected {KEYRING_FORMAT:?}",
                file.format
            )));
        }
        let mut ring = Keyring {
            keys: BTreeMap::new(),
            source: shown.clone(),
            warning: file.warning.clone(),
        };
        for entry in &file.keys {
            validate_key_id(&entry.id).map_err(&err)?;
            let mut material = Zeroizing::new([0u8; 32]);
            if entry.secret_hex.len() != 64
                || hex::decode_to_slice(entry.secret_hex.as_bytes(), material.as_mut()).is_err()
            {
                return Err(err(format!(
                    "key {:?}: secret_hex must be exactly 64 hexadecimal digits (a 256-bit key)",
                    entry.id
                )));
            }
            if ring.keys.contains_key(&entry.id) {
                return Err(err(format!("key {:?} appears twice", entry.id)));
            }
            ring.keys.insert(
                entry.id.clone(),
                Key {
                    id: entry.id.clone(),
                    material,
                    created: entry.created.clone(),
                },
            );
        }
        Ok(ring)
    }

    /// A keyring with fresh random keys, never written anywhere (tests, examples).
    pub fn generate_in_memory(ids: &[&str]) -> Self {
        let mut ring = Keyring {
            keys: BTreeMap::new(),
            source: "<memory>".into(),
            warning: None,
        };
        for id in ids {
            let key = Key {
                id: (*id).to_string(),
                material: random_material(),
                created: None,
            };
            ring.keys.insert(key.id.clone(), key);
        }
        ring
    }

    /// Add a key (replacing none: an existing id is an error).
    pub fn insert(&mut self, key: Key) -> Result<()> {
        if self.keys.contains_key(&key.id) {
            return Err(Error::Keyring {
                path: self.source.clone(),
                message: format!("key {:?} already exists; choose another id", key.id),
            });
        }
        self.keys.insert(key.id.clone(), key);
        Ok(())
    }

    /// Look a key up by id; the error lists the ids that exist.
    pub fn get(&self, id: &str) -> Result<&Key> {
        self.keys.get(id).ok_or_else(|| Error::Keyring {
            path: self.source.clone(),
            message: format!(
                "no key with id {id:?} (keys present: {}); add one with `cloakline keys generate --id {id}`",
                if self.keys.is_empty() {
                    "none".to_string()
                } else {
                    self.keys.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        })
    }

    /// Where the keyring came from (a path, or `<memory>`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Ids of all keys, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Create or extend the keyring at `path` with a new random key `id`; returns its fingerprint.
    /// The file is replaced atomically and, on Unix, readable by its owner only.
    pub fn generate_into_file(path: &Path, id: &str) -> Result<String> {
        validate_key_id(id).map_err(|m| Error::Keyring {
            path: path.display().to_string(),
            message: m,
        })?;
        let mut ring = if path.exists() {
            Keyring::load(path)?
        } else {
            Keyring {
                keys: BTreeMap::new(),
                source: path.display().to_string(),
                warning: None,
            }
        };
        let key = Key {
            id: id.to_string(),
            material: random_material(),
            created: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        };
        let fingerprint = key.fingerprint();
        ring.insert(key)?;
        ring.write(path)?;
        Ok(fingerprint)
    }

    fn write(&self, path: &Path) -> Result<()> {
        let file = KeyringFile {
            format: KEYRING_FORMAT.into(),
            warning: self.warning.clone(),
            keys: self
                .keys
                .values()
                .map(|k| KeyEntry {
                    id: k.id.clone(),
                    secret_hex: hex::encode(k.material.as_ref()),
                    created: k.created.clone(),
                })
                .collect(),
        };
        let text =
            Zeroizing::new(
                serde_json::to_string_pretty(&file).map_err(|e| Error::Keyring {
                    path: path.display().to_string(),
                    message: format!("cannot serialize: {e}"),
                })?,
            );
        crate::io::write_atomically(path, |f| {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            std::io::Write::write_all(f, text.as_bytes())?;
            std::io::Write::write_all(f, b"\n")
        })
    }
}

fn random_material() -> Zeroizing<[u8; 32]> {
    let mut m = Zeroizing::new([0u8; 32]);
    // ThreadRng is a CSPRNG (ChaCha12) seeded from the OS.
    rand::RngCore::fill_bytes(&mut rand::rng(), m.as_mut());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_material() {
        let key = Key::from_bytes("k1", [0xAB; 32]).unwrap();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("abab"), "{dbg}");
        assert!(!dbg.contains("171"), "{dbg}");
        assert!(dbg.contains("k1"));
    }

    #[test]
    fn malformed_keyring_errors_do_not_quote_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let secret = "deadbeef".repeat(8);
        std::fs::write(
            &p,
            format!(r#"{{"format":"{KEYRING_FORMAT}","keys":[{{"id":"k1","secret_hex":"{secret}","x":1}}]}}"#),
        )
        .unwrap();
        let e = Keyring::load(&p).unwrap_err().to_string();
        assert!(!e.contains("deadbeef"), "{e}");
        assert!(e.contains("line 1"), "{e}");
        std::fs::write(
            &p,
            format!(
                r#"{{"format":"{KEYRING_FORMAT}","keys":[{{"id":"k1","secret_hex":"{}"}}]}}"#,
                &secret[..62]
            ),
        )
        .unwrap();
        let e = Keyring::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("64 hexadecimal digits") && !e.contains("deadbeef"),
            "{e}"
        );
    }

    #[test]
    fn generate_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let fp1 = Keyring::generate_into_file(&p, "k1").unwrap();
        Keyring::generate_into_file(&p, "k2").unwrap();
        assert!(Keyring::generate_into_file(&p, "k1").is_err());
        let ring = Keyring::load(&p).unwrap();
        assert_eq!(ring.get("k1").unwrap().fingerprint(), fp1);
        assert!(
            ring.get("k1").unwrap().created.is_some(),
            "creation time kept"
        );
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k1", "k2"]);
        let e = ring.get("nope").unwrap_err().to_string();
        assert!(e.contains("k1, k2"), "{e}");
    }
}
