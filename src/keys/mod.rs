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
//! assert!(format!("{key:?}").starts_with("Key { id: \"k1\", version: 1, fingerprint:"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Problem, Result};

mod pkcs11;
pub mod wrap;

pub use pkcs11::open_for_wrapping as open_pkcs11_kek;
pub use wrap::{KekSpec, SecretSource};

/// Identifies the keyring file format.
pub const KEYRING_FORMAT: &str = "cloakline-keyring/v1";

/// The marker in the `warning` of a keyring whose keys are public (`examples/demo-keyring.json`).
pub const DEMO_MARKER: &str = "DEMO KEYS ONLY";

/// Fingerprints of the keys in `examples/demo-keyring.json`: its keys are public wherever
/// they are copied, with or without the marker.
const DEMO_FINGERPRINTS: [&str; 2] = ["beaf4c510f29e410", "44296cb7a8b4f861"];

/// Keyring files are small; a larger "keyring" is the wrong file (or `/dev/zero`).
const MAX_KEYRING_BYTES: u64 = 1 << 20;

/// What a key is for. A data key's HKDF subkeys tokenize, encrypt and HMAC-sign; a signing
/// key is an Ed25519 private key (its 32 bytes are the seed) whose public half a partner can
/// hold without being able to decrypt anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPurpose {
    /// A secret 256-bit key (tokenize, encrypt, scrub, HMAC signatures).
    Data,
    /// An Ed25519 signing key (provenance signatures only).
    Signing,
}

/// The keyring's name for [`KeyPurpose::Signing`] keys.
const SIGNING_PURPOSE: &str = "signing-ed25519";

/// One named 256-bit key.
pub struct Key {
    id: String,
    /// 1 for a key never rotated; `keys rotate` adds the next.
    version: u32,
    /// Marked primary in the file (else the highest version of its id is).
    primary: bool,
    material: Zeroizing<[u8; 32]>,
    created: Option<String>,
    purpose: KeyPurpose,
}

impl Key {
    /// Build a key from raw material (used by tests and `keys generate`).
    pub fn from_bytes(id: impl Into<String>, material: [u8; 32]) -> Result<Self> {
        let id = id.into();
        validate_key_id(&id).map_err(|m| Error::Keyring {
            path: "<memory>".into(),
            message: m.message,
        })?;
        Ok(Key {
            id,
            version: 1,
            primary: false,
            material: Zeroizing::new(material),
            created: None,
            purpose: KeyPurpose::Data,
        })
    }

    /// Version `version` of key `id` (tests; rotation).
    pub fn versioned_from_bytes(
        id: impl Into<String>,
        version: u32,
        material: [u8; 32],
    ) -> Result<Self> {
        let mut key = Key::from_bytes(id, material)?;
        if version == 0 {
            return Err(Error::Keyring {
                path: "<memory>".into(),
                message: "key versions start at 1".into(),
            });
        }
        key.version = version;
        Ok(key)
    }

    /// A new random key (`keys generate`, `keys rotate`); a version above 1 is primary.
    fn fresh(id: &str, version: u32, purpose: KeyPurpose) -> Key {
        Key {
            id: id.to_string(),
            version,
            primary: version > 1,
            material: random_material(),
            created: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            purpose,
        }
    }

    /// The key's version (1 unless rotated).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The exact name of this version: `k1` for version 1, `k1@v2` after a rotation. This is
    /// what envelopes and provenance record.
    pub fn reference(&self) -> String {
        match self.version {
            1 => self.id.clone(),
            v => format!("{}@v{v}", self.id),
        }
    }

    /// An Ed25519 signing key from its 32-byte seed (tests; `keys generate --signing`).
    pub fn signing_from_bytes(id: impl Into<String>, seed: [u8; 32]) -> Result<Self> {
        let mut key = Key::from_bytes(id, seed)?;
        key.purpose = KeyPurpose::Signing;
        Ok(key)
    }

    /// What the key is for.
    pub fn purpose(&self) -> KeyPurpose {
        self.purpose
    }

    /// The Ed25519 public key of a signing key (`None` for a data key, which has no public half).
    pub fn verifying_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        (self.purpose == KeyPurpose::Signing)
            .then(|| ed25519_dalek::SigningKey::from_bytes(&self.material).verifying_key())
    }

    /// An Ed25519 signature over `message` (`None` for a data key).
    pub fn sign_ed25519(&self, message: &[u8]) -> Option<ed25519_dalek::Signature> {
        use ed25519_dalek::Signer;
        // SigningKey zeroizes itself on drop (the `zeroize` feature).
        (self.purpose == KeyPurpose::Signing)
            .then(|| ed25519_dalek::SigningKey::from_bytes(&self.material).sign(message))
    }

    /// The key's name, as the policy refers to it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A public, non-reversible fingerprint (16 hex digits). For a data key, the first 8 bytes
    /// of HKDF-SHA256(ikm = key, salt = empty, info = `cloakline/v1/fingerprint`); for a
    /// signing key, of SHA-256 over its public key, so a partner can compute it from the
    /// exported public key alone ([`public_key_fingerprint`]).
    pub fn fingerprint(&self) -> String {
        match self.verifying_key() {
            Some(public) => public_key_fingerprint(&public),
            None => hex::encode(&self.derive("cloakline/v1/fingerprint")[..8]),
        }
    }

    /// Whether this is one of the public keys of `examples/demo-keyring.json`.
    pub fn is_demo(&self) -> bool {
        DEMO_FINGERPRINTS.contains(&self.fingerprint().as_str())
    }

    /// The 32-byte subkey for `action` (`tokenize` or `encrypt`) and `domain`:
    /// HKDF-SHA256(ikm = key, salt = empty, info = `cloakline/v1/<action>/<domain>`).
    pub fn subkey(&self, action: &str, domain: &str) -> Zeroizing<[u8; 32]> {
        self.derive(&format!("cloakline/v1/{action}/{domain}"))
    }

    /// A 64-byte subkey (AES-SIV's two AES-256 keys): 64 bytes of
    /// HKDF-SHA256(ikm = key, salt = empty, info = `cloakline/v1/<action>/<domain>`).
    pub fn subkey64(&self, action: &str, domain: &str) -> Zeroizing<[u8; 64]> {
        let hk = Hkdf::<Sha256>::new(None, self.material.as_ref());
        let mut okm = Zeroizing::new([0u8; 64]);
        let info = format!("cloakline/v1/{action}/{domain}");
        if hk.expand(info.as_bytes(), okm.as_mut()).is_err() {
            unreachable!("HKDF output length 64 is always valid");
        }
        okm
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
            .field("version", &self.version)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The fingerprint of an Ed25519 public key: the first 8 bytes (16 hex digits) of SHA-256
/// over its 32 bytes.
pub fn public_key_fingerprint(public: &ed25519_dalek::VerifyingKey) -> String {
    use sha2::Digest;
    hex::encode(&Sha256::digest(public.as_bytes())[..8])
}

/// The public key of a signing key as PEM (SubjectPublicKeyInfo, as `openssl pkey -pubout`
/// writes it), for a partner to verify signatures with.
pub fn public_key_pem(public: &ed25519_dalek::VerifyingKey) -> Result<String> {
    use ed25519_dalek::pkcs8::EncodePublicKey;
    public
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|_| Error::Internal("cannot encode an Ed25519 public key as PEM".into()))
}

/// Read an Ed25519 public key file: PEM (SubjectPublicKeyInfo) or 64 hexadecimal digits.
pub fn read_public_key(path: &Path) -> Result<ed25519_dalek::VerifyingKey> {
    let shown = path.display().to_string();
    let err = |message: String| Error::Keyring {
        path: shown.clone(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    if !meta.is_file() || meta.len() > 64 * 1024 {
        return Err(err(
            "is not a public key file (expected a PEM file of a few hundred bytes, from `cloakline keys export-public`)".into(),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|_| err("is not text; expected a PEM public key".into()))?;
    let text = text.trim();
    if text.contains("PRIVATE KEY") {
        return Err(err(
            "holds a PRIVATE key; a verifier needs only the public key (`cloakline keys export-public`)".into(),
        ));
    }
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut bytes = [0u8; 32];
        if hex::decode_to_slice(text, &mut bytes).is_ok()
            && let Ok(k) = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        {
            return Ok(k);
        }
        return Err(err("is not a valid Ed25519 public key".into()));
    }
    use ed25519_dalek::pkcs8::DecodePublicKey;
    ed25519_dalek::VerifyingKey::from_public_key_pem(text).map_err(|_| {
        err("is not an Ed25519 public key in PEM form (-----BEGIN PUBLIC KEY-----); export one with `cloakline keys export-public`".into())
    })
}

/// A keyring opened to change: the keys, the KEK when it is wrapped, the file to write.
type ForUpdate = (Keyring, Option<Box<dyn wrap::Kek>>, std::path::PathBuf);

/// A set of named keys.
#[derive(Default)]
pub struct Keyring {
    /// By exact reference (`k1`, `k1@v2`).
    keys: BTreeMap<String, Key>,
    /// Each id's primary version, by reference.
    primary: BTreeMap<String, String>,
    source: String,
    warning: Option<String>,
    /// Notices from loading (loose permissions, demo keys) for the caller to show.
    notices: Vec<String>,
    /// Names keys without holding any: a cluster scheduler plans queries that executors run
    /// with their own keyrings ([`Keyring::planning_only`]).
    planning_only: bool,
    /// For a planning-only keyring: the key ids it vouches for (`None`: any).
    known_ids: Option<std::collections::BTreeSet<String>>,
    /// What protects the key material at rest: `None` for a plain keyring.
    kek: Option<wrap::KekSpec>,
    /// Wrap and unwrap operations run while loading (one per key, never per value).
    kek_operations: usize,
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
    /// Absent for version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    /// `true` on the primary version of an id that has several (default: the highest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    primary: Option<bool>,
    /// 64 hexadecimal digits.
    secret_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    /// Absent for data keys; `signing-ed25519` for signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.secret_hex.zeroize();
    }
}

fn validate_key_id(id: &str) -> std::result::Result<(), Problem> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Problem(format!(
            "key id {id:?} is invalid: use 1 to 64 characters from A-Z a-z 0-9 . _ - :"
        )))
    }
}

impl Keyring {
    /// Load a keyring file. Errors name the file and a key by its position ("key #2"), never
    /// the file's content: an id may be a secret pasted into the wrong place.
    ///
    /// Refused: anything but a regular file of at most 1 MiB, a file others may write (unless
    /// it is the public demo keyring), and degenerate keys (all bytes equal, a short repeated
    /// pattern, a counting sequence). A file others may read loads with a notice
    /// ([`Keyring::notices`]).
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let err = |p: Problem| Error::Keyring {
            path: shown.clone(),
            message: p.message,
        };
        let (text, mode) = read_bounded(path).map_err(&err)?;
        if format_of(&text).as_deref() == Some(wrap::WRAPPED_FORMAT) {
            let (ring, _) = Self::load_wrapped(&shown, &text, mode, &SecretSource::process())?;
            return Ok(ring);
        }
        let file: KeyringFile = serde_json::from_str(&text).map_err(|e| {
            // serde_json's own message can quote values, which may be secrets: report position only.
            let what = match e.classify() {
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Eof => "ends too early",
                _ => "does not have the keyring layout ({\"format\", \"keys\": [{\"id\", \"secret_hex\"}]})",
            };
            err(Problem(format!(
                "{what} at line {} column {}",
                e.line(),
                e.column()
            )))
        })?;
        if file.format != KEYRING_FORMAT {
            return Err(err(Problem(format!(
                "unknown `format`; expected {KEYRING_FORMAT:?} (plain) or {:?} (wrapped)",
                wrap::WRAPPED_FORMAT
            ))));
        }
        let mut ring = Keyring {
            keys: BTreeMap::new(),
            primary: BTreeMap::new(),
            source: shown.clone(),
            warning: file.warning.clone(),
            notices: Vec::new(),
            planning_only: false,
            known_ids: None,
            kek: None,
            kek_operations: 0,
        };
        for (i, entry) in file.keys.iter().enumerate() {
            let key = key_from_entry(entry, i + 1).map_err(&err)?;
            ring.add_loaded(key, i + 1).map_err(&err)?;
        }
        ring.index().map_err(&err)?;
        ring.check_permissions(mode).map_err(&err)?;
        if ring.is_demo() {
            ring.notices.push(format!(
                "{shown} holds the public DEMO keys: anything tokenized or encrypted with them is not protected; create your own with `cloakline keys generate --id k1 --keyring keys.json`"
            ));
        }
        Ok(ring)
    }

    /// Others writing the keyring could swap keys under a run: refuse. Others reading it is
    /// a notice (the demo keyring in git is 0644, and its keys are public anyway).
    fn check_permissions(&mut self, mode: Option<u32>) -> std::result::Result<(), Problem> {
        let Some(mode) = mode else { return Ok(()) };
        if self.is_demo() {
            return Ok(());
        }
        if mode & 0o022 != 0 {
            return Err(Problem(format!(
                "group or others may write it (mode {:03o}); make it owner-only with `chmod 600 {}`",
                mode & 0o777,
                self.source
            )));
        }
        if mode & 0o044 != 0 {
            self.notices.push(format!(
                "keyring {}: group or others may read it (mode {:03o}); consider `chmod 600 {}`",
                self.source,
                mode & 0o777,
                self.source
            ));
        }
        Ok(())
    }

    /// Whether the keyring's keys are public: it carries the demo marker in its `warning`,
    /// or holds a key of `examples/demo-keyring.json`.
    pub fn is_demo(&self) -> bool {
        self.warning
            .as_deref()
            .is_some_and(|w| w.contains(DEMO_MARKER))
            || self.keys.values().any(Key::is_demo)
    }

    /// Notices from loading, for the caller to show (e.g. on stderr): a keyring others may
    /// read, or the demo keys. Never contains key material or ids.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// A keyring with fresh random keys, never written anywhere (tests, examples).
    pub fn generate_in_memory(ids: &[&str]) -> Self {
        let mut ring = Keyring {
            keys: BTreeMap::new(),
            primary: BTreeMap::new(),
            source: "<memory>".into(),
            warning: None,
            notices: Vec::new(),
            planning_only: false,
            known_ids: None,
            kek: None,
            kek_operations: 0,
        };
        for id in ids {
            let key = Key {
                id: (*id).to_string(),
                version: 1,
                primary: false,
                material: random_material(),
                created: None,
                purpose: KeyPurpose::Data,
            };
            ring.keys.insert(key.reference(), key);
        }
        let _ = ring.index();
        ring
    }

    /// A keyring that holds no key material and accepts every key id while planning; using
    /// a key fails. A cluster scheduler plans with it (constant folding of a keyed function
    /// then fails and is skipped), and each executor transforms with its own keyring, so
    /// key bytes never travel.
    pub fn planning_only() -> Self {
        Keyring {
            keys: BTreeMap::new(),
            primary: BTreeMap::new(),
            source: "<key ids only: this process plans, executors hold the keys>".into(),
            warning: None,
            notices: Vec::new(),
            planning_only: true,
            known_ids: None,
            kek: None,
            kek_operations: 0,
        }
    }

    /// This keyring's ids without its material: a cluster client plans with it, so a
    /// misspelled key id still fails here, and a keyed function over literals is never
    /// computed with the client's keys (the executors' keys are the ones that count).
    pub fn ids_only(&self) -> Self {
        Keyring {
            known_ids: Some(
                self.keys
                    .values()
                    .filter(|k| matches!(k.purpose, KeyPurpose::Data))
                    .flat_map(|k| [k.id.clone(), k.reference()])
                    .collect(),
            ),
            source: self.source.clone(),
            // Which version each id means, so a cluster client records what executors use.
            primary: self.primary.clone(),
            ..Keyring::planning_only()
        }
    }

    /// The exact reference (`k1`, `k1@v2`) a policy's key id resolves to, also for a keyring
    /// that only names keys ([`Keyring::ids_only`]); `None` when it names no key.
    pub fn resolve(&self, reference: &str) -> Option<String> {
        match reference.split_once('@') {
            Some(_) => normalize(reference),
            None => self.primary.get(reference).cloned(),
        }
    }

    /// Whether this keyring only names keys ([`Keyring::planning_only`]).
    pub fn is_planning_only(&self) -> bool {
        self.planning_only
    }

    /// While planning: whether `id` names a data key here. A planning-only keyring accepts
    /// every id (the executors check theirs when they run).
    pub fn check_data_key(&self, id: &str) -> Result<()> {
        match (self.planning_only, &self.known_ids) {
            (true, Some(known)) if !known.contains(id) => Err(Error::MissingKey {
                keyring: self.source.clone(),
                key_id: id.to_string(),
                present: known.iter().cloned().collect(),
            }),
            (true, _) => Ok(()),
            (false, _) => self.data_key(id).map(|_| ()),
        }
    }

    /// Add a key (replacing none: an existing id and version is an error).
    pub fn insert(&mut self, key: Key) -> Result<()> {
        let r = key.reference();
        if self.keys.contains_key(&r) {
            return Err(Error::Keyring {
                path: self.source.clone(),
                message: format!("key {r:?} already exists; choose another id"),
            });
        }
        self.keys.insert(r, key);
        self.index().map_err(|p| Error::Keyring {
            path: self.source.clone(),
            message: p.message,
        })
    }

    /// A key read from a file (`n`: its position): its id and version must be new.
    fn add_loaded(&mut self, key: Key, n: usize) -> std::result::Result<(), Problem> {
        let r = key.reference();
        if self.keys.contains_key(&r) {
            return Err(Problem(format!(
                "key #{n}: its id and version are used by an earlier key; they must be unique"
            )));
        }
        self.keys.insert(r, key);
        Ok(())
    }

    /// Each id's primary version: the one marked primary, else the highest.
    fn index(&mut self) -> std::result::Result<(), Problem> {
        let mut primary: BTreeMap<String, (u32, bool)> = BTreeMap::new();
        for k in self.keys.values() {
            match primary.get(&k.id) {
                Some((_, true)) if k.primary => {
                    return Err(Problem(format!(
                        "two versions of key {:?} are marked primary; mark one",
                        k.id
                    )));
                }
                Some((v, marked)) if *marked || (!k.primary && *v > k.version) => {}
                _ => {
                    primary.insert(k.id.clone(), (k.version, k.primary));
                }
            }
        }
        self.primary = primary
            .into_iter()
            .map(|(id, (v, _))| {
                let r = if v == 1 {
                    id.clone()
                } else {
                    format!("{id}@v{v}")
                };
                (id, r)
            })
            .collect();
        Ok(())
    }

    /// The versions of key `id`, ascending.
    pub fn versions(&self, id: &str) -> Vec<u32> {
        self.keys
            .values()
            .filter(|k| k.id == id)
            .map(|k| k.version)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn missing(&self, reference: &str) -> Error {
        Error::MissingKey {
            keyring: self.source.clone(),
            key_id: reference.to_string(),
            present: self.keys.keys().cloned().collect(),
        }
    }

    /// Look a key up as a policy names it, whatever its purpose: `k1` is the primary version
    /// of `k1`, `k1@v2` exactly version 2. The error lists the keys that exist.
    pub fn get(&self, reference: &str) -> Result<&Key> {
        let exact = match reference.split_once('@') {
            Some(_) => normalize(reference).ok_or_else(|| self.missing(reference))?,
            None => self
                .primary
                .get(reference)
                .cloned()
                .ok_or_else(|| self.missing(reference))?,
        };
        self.keys.get(&exact).ok_or_else(|| self.missing(reference))
    }

    /// Look a key up by its exact reference, as an envelope or a column's metadata records
    /// it: `k1` is version 1 of `k1`, whichever version is primary now.
    pub fn get_exact(&self, reference: &str) -> Result<&Key> {
        normalize(reference)
            .and_then(|r| self.keys.get(&r))
            .ok_or_else(|| self.missing(reference))
    }

    /// [`Keyring::data_key`] by exact reference (decryption).
    pub fn data_key_exact(&self, reference: &str) -> Result<&Key> {
        self.require_data(self.get_exact(reference)?, reference)
    }

    /// A key for a deterministic transform (tokenize, encrypt_deterministic, fpe, scrub
    /// tokens): when its id has several versions the policy must name one, or its output
    /// would change silently the day the primary changes.
    pub fn deterministic_key(&self, reference: &str) -> Result<&Key> {
        let key = self.data_key(reference)?;
        let versions = self.versions(&key.id);
        if !reference.contains('@') && versions.len() > 1 {
            let list: Vec<String> = versions.iter().map(|v| format!("v{v}")).collect();
            return Err(Error::Keyring {
                path: self.source.clone(),
                message: format!(
                    "key {reference} has versions {} (primary v{}): a deterministic transform must name one,                      e.g. `key: {reference}@v{}`, or its tokens would change silently when the primary changes;                      name `{reference}@v1` to keep joining with releases made before the rotation",
                    list.join(", "),
                    key.version,
                    key.version
                ),
            });
        }
        Ok(key)
    }

    /// A key to tokenize, encrypt or scrub with: a signing key is refused, so the key whose
    /// public half partners hold never protects data.
    pub fn data_key(&self, id: &str) -> Result<&Key> {
        self.require_data(self.get(id)?, id)
    }

    fn require_data<'a>(&self, key: &'a Key, id: &str) -> Result<&'a Key> {
        match key.purpose {
            KeyPurpose::Data => Ok(key),
            KeyPurpose::Signing => Err(Error::Keyring {
                path: self.source.clone(),
                message: format!(
                    "key {id} is an Ed25519 signing key; it can only sign provenance. Tokenize and encrypt with a data key (`cloakline keys generate --id ID`)"
                ),
            }),
        }
    }

    /// Where the keyring came from (a path, or `<memory>`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every key by exact reference (`k1`, `k1@v2`), sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Add a new version of key `id` to the keyring file at `path` and make it primary;
    /// returns the new version and its fingerprint. A wrapped keyring stays wrapped.
    pub fn rotate_in_file(path: &Path, id: &str) -> Result<(u32, String)> {
        let (mut ring, kek, path) = Self::open_for_update(path, id, false)?;
        let purpose = ring.get(id)?.purpose;
        let version = ring
            .versions(id)
            .last()
            .copied()
            .unwrap_or(1)
            .checked_add(1)
            .ok_or_else(|| Error::Keyring {
                path: path.display().to_string(),
                message: format!(
                    "key `{id}` is at the highest version there is; generate a key under a new \
                     id instead of rotating this one"
                ),
            })?;
        for k in ring.keys.values_mut().filter(|k| k.id == id) {
            k.primary = false;
        }
        let key = Key::fresh(id, version, purpose);
        let fingerprint = key.fingerprint();
        ring.insert(key)?;
        ring.save(&path, kek.as_deref())?;
        Ok((version, fingerprint))
    }

    /// The keyring at `path` (where its symlinks lead) to change and write back, with its
    /// KEK when it is wrapped; a missing file is an empty keyring when `create`. `id` must be
    /// a plain key id (no version).
    fn open_for_update(path: &Path, id: &str, create: bool) -> Result<ForUpdate> {
        let shown = path.display().to_string();
        let kerr = |m: Problem| Error::Keyring {
            path: shown.clone(),
            message: m.message,
        };
        validate_key_id(id).map_err(kerr)?;
        let path = link_target(path).map_err(kerr)?;
        if create && !path.exists() {
            let ring = Keyring {
                source: path.display().to_string(),
                ..Keyring::default()
            };
            return Ok((ring, None, path));
        }
        let (text, mode) = read_bounded(&path).map_err(kerr)?;
        if format_of(&text).as_deref() == Some(wrap::WRAPPED_FORMAT) {
            let (ring, kek) = Self::load_wrapped(&shown, &text, mode, &SecretSource::process())?;
            return Ok((ring, Some(kek), path));
        }
        Ok((Keyring::load(&path)?, None, path))
    }

    /// Write the keyring back as it was stored: wrapped under `kek`, or plain.
    fn save(&self, path: &Path, kek: Option<&dyn wrap::Kek>) -> Result<()> {
        match (kek, &self.kek) {
            (Some(k), Some(spec)) => self.write_wrapped(path, spec, k),
            _ => self.write(path),
        }
    }

    /// Whether `key` is the primary version of its id.
    pub fn is_primary(&self, key: &Key) -> bool {
        self.primary.get(&key.id) == Some(&key.reference())
    }

    /// Whether the file should mark `key` primary: its id has several versions.
    fn marks_primary(&self, key: &Key) -> Option<bool> {
        (self.versions(&key.id).len() > 1 && self.is_primary(key)).then_some(true)
    }

    /// Create or extend the keyring at `path` with a new random key `id`; returns its fingerprint.
    /// The file is replaced atomically and, on Unix, readable by its owner only.
    /// A symlinked keyring is updated where the link points; the link stays.
    pub fn generate_into_file(path: &Path, id: &str) -> Result<String> {
        Self::generate_into_file_as(path, id, KeyPurpose::Data)
    }

    /// [`Keyring::generate_into_file`] for a key of the given purpose.
    pub fn generate_into_file_as(path: &Path, id: &str, purpose: KeyPurpose) -> Result<String> {
        let (mut ring, kek, path) = Self::open_for_update(path, id, true)?;
        if !ring.versions(id).is_empty() {
            return Err(Error::Keyring {
                path: ring.source.clone(),
                message: format!(
                    "key {id:?} already exists; choose another id, or add a version with `cloakline keys rotate --id {id}`"
                ),
            });
        }
        let key = Key::fresh(id, 1, purpose);
        let fingerprint = key.fingerprint();
        ring.insert(key)?;
        ring.save(&path, kek.as_deref())?;
        Ok(fingerprint)
    }

    /// What protects the keys at rest (`None`: a plain keyring of hex secrets).
    pub fn kek(&self) -> Option<&wrap::KekSpec> {
        self.kek.as_ref()
    }

    /// What protects the keys at rest, as provenance records it (`cl:keyProtection`):
    /// `plain`, `passphrase` or `pkcs11`.
    pub fn protection(&self) -> &'static str {
        self.kek
            .as_ref()
            .map(wrap::KekSpec::provider)
            .unwrap_or("plain")
    }

    /// How many KEK operations loading took: one unwrap per key, whatever the data size.
    pub fn kek_operations(&self) -> usize {
        self.kek_operations
    }

    /// Load a wrapped keyring from its text; also returns the opened KEK (to add keys).
    fn load_wrapped(
        shown: &str,
        text: &str,
        mode: Option<u32>,
        secret: &SecretSource<'_>,
    ) -> Result<(Self, Box<dyn wrap::Kek>)> {
        let err = |p: Problem| Error::Keyring {
            path: shown.to_string(),
            message: p.message,
        };
        let file: wrap::WrappedFile = parse_json(text).map_err(&err)?;
        let kek = file.kek.open(secret).map_err(|p| {
            err(Problem(format!(
                "cannot open its key-encryption key: {}",
                p.message
            )))
        })?;
        let mut ring = Keyring {
            source: shown.to_string(),
            warning: file.warning.clone(),
            kek: Some(file.kek.clone()),
            ..Keyring::default()
        };
        for (i, entry) in file.keys.iter().enumerate() {
            let n = i + 1;
            let plain = KeyEntry {
                id: entry.id.clone(),
                version: entry.version,
                primary: entry.primary,
                secret_hex: String::new(),
                created: entry.created.clone(),
                purpose: entry.purpose.clone(),
            };
            let purpose = plain.purpose.clone().unwrap_or_else(|| "data".into());
            let wrapped = wrap::decode(&entry.wrapped)
                .ok_or_else(|| err(Problem(format!("key #{n}: `wrapped` is not base64url"))))?;
            let reference = match entry.version {
                None | Some(1) => entry.id.clone(),
                Some(v) => format!("{}@v{v}", entry.id),
            };
            let material = kek
                .unwrap(&wrap::aad(&reference, &purpose), &wrapped)
                .map_err(|p| {
                    err(Problem(format!(
                        "key #{n}: cannot unwrap it: it {}. The passphrase, PIN or KEK is wrong, or the file was altered",
                        p.message
                    )))
                })?;
            let key = key_from_material(&plain, n, material).map_err(&err)?;
            if key.fingerprint() != entry.fingerprint {
                return Err(err(Problem(format!(
                    "key #{n}: its recorded fingerprint does not match the unwrapped key; the file was altered"
                ))));
            }
            ring.add_loaded(key, n).map_err(&err)?;
        }
        ring.index().map_err(&err)?;
        ring.kek_operations = kek.operations();
        if let Some(mode) = mode
            && mode & 0o022 != 0
        {
            return Err(err(Problem(format!(
                "group or others may write it (mode {:03o}); make it owner-only with `chmod 600 {shown}`",
                mode & 0o777
            ))));
        }
        Ok((ring, kek))
    }

    /// Write this keyring wrapped under `kek` (described by `spec`), replacing `path`
    /// atomically, owner-only.
    pub fn write_wrapped(
        &self,
        path: &Path,
        spec: &wrap::KekSpec,
        kek: &dyn wrap::Kek,
    ) -> Result<()> {
        let err = |p: Problem| Error::Keyring {
            path: path.display().to_string(),
            message: p.message,
        };
        let mut keys = Vec::new();
        for k in self.keys.values() {
            let purpose = match k.purpose {
                KeyPurpose::Signing => SIGNING_PURPOSE,
                KeyPurpose::Data => "data",
            };
            let wrapped = kek
                .wrap(&wrap::aad(&k.reference(), purpose), &k.material)
                .map_err(&err)?;
            keys.push(wrap::WrappedEntry {
                id: k.id.clone(),
                version: (k.version != 1).then_some(k.version),
                primary: self.marks_primary(k),
                created: k.created.clone(),
                purpose: (k.purpose == KeyPurpose::Signing).then(|| SIGNING_PURPOSE.into()),
                fingerprint: k.fingerprint(),
                wrapped: wrap::encode(&wrapped),
            });
        }
        let file = wrap::WrappedFile {
            format: wrap::WRAPPED_FORMAT.into(),
            warning: self.warning.clone(),
            kek: spec.clone(),
            keys,
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| err(Problem(format!("cannot serialize: {e}"))))?;
        write_owner_only(path, &text)
    }

    /// Write this keyring as a plain file of hex secrets (`keys unwrap`), owner-only.
    pub fn write_plain(&self, path: &Path) -> Result<()> {
        self.write(path)
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
                    version: (k.version != 1).then_some(k.version),
                    primary: self.marks_primary(k),
                    secret_hex: hex::encode(k.material.as_ref()),
                    created: k.created.clone(),
                    purpose: (k.purpose == KeyPurpose::Signing).then(|| SIGNING_PURPOSE.into()),
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
        write_owner_only(path, &text)
    }
}

/// A reference in its exact form: `k1@v1` is `k1`; `k1@v2` stays; anything else after `@`
/// than `v` and a version from 1 is no reference (`None`).
fn normalize(reference: &str) -> Option<String> {
    match reference.split_once('@') {
        None => Some(reference.to_string()),
        Some((id, v)) => {
            let digits = v.strip_prefix('v')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            match digits.parse::<u32>().ok()? {
                0 => None,
                1 => Some(id.to_string()),
                n => Some(format!("{id}@v{n}")),
            }
        }
    }
}

/// Replace `path` atomically with `text` and a newline, readable by its owner only.
fn write_owner_only(path: &Path, text: &str) -> Result<()> {
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

/// The `format` member of a keyring's JSON, if it has one.
fn format_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    serde_json::from_str::<Format>(text).ok().map(|f| f.format)
}

/// Parse keyring JSON, reporting only positions: serde's messages can quote values.
fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, Problem> {
    serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Eof => "ends too early",
            _ => "does not have the wrapped-keyring layout ({\"format\", \"kek\", \"keys\": [{\"id\", \"fingerprint\", \"wrapped\"}]})",
        };
        Problem(format!("{what} at line {} column {}", e.line(), e.column()))
    })
}

/// What `keys list` shows of one key; read without any secret.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub version: u32,
    pub primary: bool,
    pub purpose: String,
    pub fingerprint: Option<String>,
    pub created: Option<String>,
}

/// The keys of a keyring file and what protects them, without unwrapping anything. A
/// plain keyring's fingerprints are computed from its material; a wrapped one's are read
/// from the file.
pub fn list_file(path: &Path) -> Result<(Vec<KeyInfo>, Option<wrap::KekSpec>)> {
    let shown = path.display().to_string();
    let err = |p: Problem| Error::Keyring {
        path: shown.clone(),
        message: p.message,
    };
    let (text, _) = read_bounded(path).map_err(&err)?;
    if format_of(&text).as_deref() == Some(wrap::WRAPPED_FORMAT) {
        let file: wrap::WrappedFile = parse_json(&text).map_err(&err)?;
        let keys = file
            .keys
            .iter()
            .map(|e| KeyInfo {
                id: e.id.clone(),
                version: e.version.unwrap_or(1),
                primary: e.primary.unwrap_or(false)
                    || !file.keys.iter().any(|o| {
                        o.id == e.id
                            && (o.primary == Some(true)
                                || o.version.unwrap_or(1) > e.version.unwrap_or(1))
                    }),
                purpose: e.purpose.clone().unwrap_or_else(|| "data".into()),
                fingerprint: Some(e.fingerprint.clone()),
                created: e.created.clone(),
            })
            .collect();
        return Ok((keys, Some(file.kek)));
    }
    let ring = Keyring::load(path)?;
    let keys = ring
        .keys
        .values()
        .map(|k| KeyInfo {
            id: k.id.clone(),
            version: k.version,
            primary: ring.is_primary(k),
            purpose: match k.purpose {
                KeyPurpose::Signing => SIGNING_PURPOSE.into(),
                KeyPurpose::Data => "data".into(),
            },
            fingerprint: Some(k.fingerprint()),
            created: k.created.clone(),
        })
        .collect();
    Ok((keys, None))
}

/// The file a chain of symlinks ends at (which may not exist yet); `path` itself otherwise.
fn link_target(path: &Path) -> std::result::Result<std::path::PathBuf, Problem> {
    let mut p = path.to_path_buf();
    // 40 links, as Linux allows before ELOOP.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p).map_err(|e| {
                    Problem(format!("cannot read the symlink {} ({e})", p.display()))
                })?;
                p = match p.parent() {
                    Some(dir) if t.is_relative() => dir.join(t),
                    _ => t,
                };
            }
            _ => return Ok(p),
        }
    }
    Err("too many levels of symbolic links".into())
}

/// Read at most [`MAX_KEYRING_BYTES`] of a regular file; also returns its Unix mode.
fn read_bounded(path: &Path) -> std::result::Result<(Zeroizing<String>, Option<u32>), Problem> {
    let cannot = |e: std::io::Error| {
        Problem(format!(
            "cannot read it ({e}); create one with `cloakline keys generate --id <ID> --keyring {}`",
            path.display()
        ))
    };
    let mut bytes = Zeroizing::new(Vec::new());
    let meta = match crate::io::read_regular_into(path, MAX_KEYRING_BYTES, &mut bytes) {
        Ok(meta) => meta,
        Err(crate::io::SmallFile::Io(e)) => return Err(cannot(e)),
        Err(crate::io::SmallFile::NotRegular) => {
            return Err("is not a regular file; name a keyring JSON file".into());
        }
        Err(crate::io::SmallFile::TooBig) => {
            return Err(Problem(format!(
                "is larger than {} KiB; a keyring is a small JSON file, is this the right file?",
                MAX_KEYRING_BYTES / 1024
            )));
        }
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => Zeroizing::new(t.to_string()),
        Err(e) => {
            return Err(Problem(format!(
                "is not UTF-8 text (byte {}); a keyring is a JSON file",
                e.valid_up_to()
            )));
        }
    };
    #[cfg(unix)]
    let mode = Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()));
    #[cfg(not(unix))]
    let mode = {
        let _ = meta;
        None
    };
    Ok((text, mode))
}

/// The key of one keyring entry; `n` is its 1-based position, the only way errors name it.
fn key_from_entry(entry: &KeyEntry, n: usize) -> std::result::Result<Key, Problem> {
    if validate_key_id(&entry.id).is_err() {
        return Err(Problem(format!(
            "key #{n}: its id is invalid; use 1 to 64 characters from A-Z a-z 0-9 . _ - :"
        )));
    }
    if looks_like_material(&entry.id) {
        return Err(Problem(format!(
            "key #{n}: its id looks like key material (32 or more hexadecimal digits); ids are names such as k1, secrets go in secret_hex"
        )));
    }
    let mut material = Zeroizing::new([0u8; 32]);
    if entry.secret_hex.len() != 64
        || hex::decode_to_slice(entry.secret_hex.as_bytes(), material.as_mut()).is_err()
    {
        return Err(Problem(format!(
            "key #{n}: secret_hex must be exactly 64 hexadecimal digits (a 256-bit key)"
        )));
    }
    key_from_material(entry, n, material)
}

/// The key of one entry with its material (from hex, or unwrapped).
fn key_from_material(
    entry: &KeyEntry,
    n: usize,
    material: Zeroizing<[u8; 32]>,
) -> std::result::Result<Key, Problem> {
    if validate_key_id(&entry.id).is_err() || looks_like_material(&entry.id) {
        return Err(Problem(format!(
            "key #{n}: its id is invalid; use 1 to 64 characters from A-Z a-z 0-9 . _ - :"
        )));
    }
    if degenerate(&material) {
        return Err(Problem(format!(
            "key #{n}: secret_hex is not a random key (all bytes equal, a short repeated pattern or a counting sequence); replace it with `cloakline keys generate`"
        )));
    }
    let purpose = match entry.purpose.as_deref() {
        None | Some("data") => KeyPurpose::Data,
        Some(SIGNING_PURPOSE) => KeyPurpose::Signing,
        Some(_) => {
            return Err(Problem(format!(
                "key #{n}: unknown `purpose`; use \"{SIGNING_PURPOSE}\" for a signing key, or leave it out for a data key"
            )));
        }
    };
    let version = entry.version.unwrap_or(1);
    if version == 0 {
        return Err(Problem(format!("key #{n}: `version` must be 1 or more")));
    }
    Ok(Key {
        id: entry.id.clone(),
        version,
        primary: entry.primary.unwrap_or(false),
        material,
        created: entry.created.clone(),
        purpose,
    })
}

/// A secret pasted into `id`: a long run of hexadecimal digits is no name.
fn looks_like_material(id: &str) -> bool {
    id.len() >= 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Keys no generator produces: fewer than 8 distinct bytes (all zero, all equal, a short
/// repeated pattern) or a constant step (00 01 02 ...). A random key has about 30 distinct
/// bytes; the chance it is refused is below 2^-120.
fn degenerate(m: &[u8; 32]) -> bool {
    let mut seen = [false; 256];
    for &b in m {
        seen[b as usize] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    let step = m[1].wrapping_sub(m[0]);
    distinct < 8 || m.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step)
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

    #[test]
    fn signing_keys_round_trip_and_never_protect_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        Keyring::generate_into_file(&p, "k1").unwrap();
        let fp = Keyring::generate_into_file_as(&p, "s1", KeyPurpose::Signing).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"purpose\": \"signing-ed25519\""), "{text}");
        let ring = Keyring::load(&p).unwrap();
        let s1 = ring.get("s1").unwrap();
        assert_eq!(s1.purpose(), KeyPurpose::Signing);
        assert_eq!(s1.fingerprint(), fp);
        // The fingerprint is computable from the public key alone.
        let public = s1.verifying_key().unwrap();
        assert_eq!(public_key_fingerprint(&public), fp);
        let sig = s1.sign_ed25519(b"m").unwrap();
        assert!(public.verify_strict(b"m", &sig).is_ok());
        assert!(public.verify_strict(b"n", &sig).is_err());
        // Data keys have no public half and cannot sign with Ed25519; signing keys protect no data.
        assert!(ring.get("k1").unwrap().verifying_key().is_none());
        assert!(ring.get("k1").unwrap().sign_ed25519(b"m").is_none());
        assert!(ring.data_key("k1").is_ok());
        let e = ring.data_key("s1").unwrap_err().to_string();
        assert!(e.contains("signing key"), "{e}");
        // PEM out, PEM in.
        let pem = public_key_pem(&public).unwrap();
        let pp = dir.path().join("s1.pem");
        std::fs::write(&pp, &pem).unwrap();
        assert_eq!(read_public_key(&pp).unwrap(), public);
        std::fs::write(&pp, hex::encode(public.as_bytes())).unwrap();
        assert_eq!(read_public_key(&pp).unwrap(), public);
    }

    #[test]
    fn an_unknown_key_purpose_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let secret = hex::encode(*random_material());
        std::fs::write(
            &p,
            format!(
                r#"{{"format":"{KEYRING_FORMAT}","keys":[{{"id":"k1","secret_hex":"{secret}","purpose":"weird-purpose"}}]}}"#
            ),
        )
        .unwrap();
        set_mode(&p, 0o600);
        let e = msg(Keyring::load(&p).unwrap_err());
        assert!(e.contains("key #1: unknown `purpose`"), "{e}");
        assert!(!e.contains("weird-purpose") && !e.contains(&secret), "{e}");
    }

    fn ring_file(dir: &Path, keys: &[(&str, &str)]) -> std::path::PathBuf {
        let p = dir.join("k.json");
        let keys: Vec<String> = keys
            .iter()
            .map(|(id, hex)| format!(r#"{{"id":"{id}","secret_hex":"{hex}"}}"#))
            .collect();
        std::fs::write(
            &p,
            format!(
                r#"{{"format":"{KEYRING_FORMAT}","keys":[{}]}}"#,
                keys.join(",")
            ),
        )
        .unwrap();
        #[cfg(unix)]
        set_mode(&p, 0o600);
        p
    }

    #[cfg(unix)]
    fn set_mode(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The message of a keyring error, without the path (a temporary directory's random name
    /// could contain anything).
    fn msg(e: Error) -> String {
        match e {
            Error::Keyring { message, .. } => message,
            e @ Error::MissingKey { .. } => {
                let shown = e.to_string();
                let (_, message) = shown.split_once(": ").expect("keyring: message");
                message.to_string()
            }
            other => panic!("not a keyring error: {other}"),
        }
    }

    const GOOD: &str = "0d25196dd25d92ceb34ea9073fa53d8507c41758d32ea881bc57d88051f8a468";

    #[test]
    fn errors_name_keys_by_position_never_by_content() {
        let dir = tempfile::tempdir().unwrap();
        // id and secret_hex swapped: the secret is in `id`.
        let p = ring_file(dir.path(), &[("k1", GOOD), (GOOD, "k2")]);
        let e = msg(Keyring::load(&p).unwrap_err());
        assert!(
            e.contains("key #2") && e.contains("looks like key material"),
            "{e}"
        );
        assert!(!e.contains("0d25") && !e.contains("k2"), "{e}");
        // A secret pasted into `format`.
        std::fs::write(
            &p,
            format!(r#"{{"format":"{GOOD}","keys":[{{"id":"k1","secret_hex":"{GOOD}"}}]}}"#),
        )
        .unwrap();
        let e = msg(Keyring::load(&p).unwrap_err());
        assert!(e.contains("unknown `format`") && !e.contains("0d25"), "{e}");
        // A bad secret_hex is named by position, not by id.
        let p = ring_file(dir.path(), &[("name-of-a-person", "abc")]);
        let e = msg(Keyring::load(&p).unwrap_err());
        assert!(
            e.contains("key #1") && !e.contains("name-of-a-person"),
            "{e}"
        );
        let p = ring_file(dir.path(), &[("k1", GOOD), ("k1", GOOD)]);
        let e = msg(Keyring::load(&p).unwrap_err());
        assert!(e.contains("key #2") && !e.contains("\"k1\""), "{e}");
        let p = ring_file(dir.path(), &[("bad id with spaces", GOOD)]);
        let e = msg(Keyring::load(&p).unwrap_err());
        assert!(e.contains("key #1") && !e.contains("spaces"), "{e}");
    }

    #[test]
    fn degenerate_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let counting: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
        for hex in [
            "00".repeat(32),
            "ff".repeat(32),
            "deadbeef".repeat(8),
            counting,
        ] {
            let p = ring_file(dir.path(), &[("k1", &hex)]);
            let e = msg(Keyring::load(&p).unwrap_err());
            assert!(
                e.contains("not a random key") && !e.contains(&hex[..8]),
                "{e}"
            );
        }
        assert!(Keyring::load(&ring_file(dir.path(), &[("k1", GOOD)])).is_ok());
        // Fresh keys are never refused.
        for _ in 0..1000 {
            assert!(!degenerate(&random_material()));
        }
    }

    #[test]
    fn demo_keyring_is_recognized() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-keyring.json");
        let ring = Keyring::load(&demo).unwrap();
        assert!(ring.is_demo());
        assert!(
            ring.keys.values().all(Key::is_demo),
            "DEMO_FINGERPRINTS are the demo keys'"
        );
        assert_eq!(ring.notices().len(), 1, "{:?}", ring.notices());
        assert!(ring.notices()[0].contains("DEMO"));
        // Its keys copied into a keyring without the marker are still public.
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&demo).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let hex = v["keys"][0]["secret_hex"].as_str().unwrap();
        let copied = Keyring::load(&ring_file(dir.path(), &[("mine", hex)])).unwrap();
        assert!(copied.is_demo());
        let own = Keyring::load(&ring_file(dir.path(), &[("mine", GOOD)])).unwrap();
        assert!(!own.is_demo() && own.notices().is_empty());
        assert!(!Keyring::generate_in_memory(&["k1"]).is_demo());
    }

    #[cfg(unix)]
    #[test]
    fn permissions_bounds_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = ring_file(dir.path(), &[("k1", GOOD)]);
        set_mode(&p, 0o666);
        let e = msg(Keyring::load(&p).unwrap_err());
        assert!(e.contains("chmod 600") && e.contains("666"), "{e}");
        set_mode(&p, 0o620);
        assert!(Keyring::load(&p).is_err());
        set_mode(&p, 0o644);
        let ring = Keyring::load(&p).unwrap();
        assert!(
            ring.notices()[0].contains("may read"),
            "{:?}",
            ring.notices()
        );
        set_mode(&p, 0o600);
        assert!(Keyring::load(&p).unwrap().notices().is_empty());

        let e = Keyring::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = msg(Keyring::load(dir.path()).unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; (MAX_KEYRING_BYTES + 1) as usize]).unwrap();
        let e = msg(Keyring::load(&big).unwrap_err());
        assert!(e.contains("larger than"), "{e}");

        // `keys generate` through a symlink updates the target and keeps the link.
        let target = dir.path().join("real.json");
        Keyring::generate_into_file(&target, "k1").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        Keyring::generate_into_file(&link, "k2").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(Keyring::load(&target).unwrap().ids().count(), 2);
        // A dangling link: the keyring is created where it points.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("new.json", &dangling).unwrap();
        Keyring::generate_into_file(&dangling, "k1").unwrap();
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            Keyring::load(&dir.path().join("new.json"))
                .unwrap()
                .ids()
                .count(),
            1
        );
    }

    #[test]
    fn references_resolve_to_exact_versions_also_for_a_key_ids_only_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        Keyring::generate_into_file(&p, "k1").unwrap();
        Keyring::generate_into_file(&p, "k2").unwrap();
        let (v, _) = Keyring::rotate_in_file(&p, "k2").unwrap();
        assert_eq!(v, 2);
        let ring = Keyring::load(&p).unwrap();
        let ids = ring.ids_only();
        for r in [&ring, &ids] {
            assert_eq!(r.resolve("k2").as_deref(), Some("k2@v2"));
            assert_eq!(r.resolve("k2@v1").as_deref(), Some("k2"));
            assert_eq!(r.resolve("k1").as_deref(), Some("k1"));
            assert_eq!(r.resolve("k9"), None);
            assert_eq!(r.resolve("k2@x"), None);
        }
        assert_eq!(ring.get("k2").unwrap().reference(), "k2@v2");
        assert_eq!(ring.get_exact("k2").unwrap().version(), 1);
        assert_eq!(ring.get("k2@v1").unwrap().version(), 1);
        assert!(ring.get("k2@v0").is_err() && ring.get("k2@v3").is_err());
        // A deterministic transform must name a version of a rotated key.
        let e = ring.deterministic_key("k2").unwrap_err().to_string();
        assert!(e.contains("has versions v1, v2 (primary v2)"), "{e}");
        assert!(ring.deterministic_key("k2@v1").is_ok() && ring.deterministic_key("k1").is_ok());
    }
}
