//! Wrapped keyrings (`cloakline-keyring/v2`): every data key stored encrypted under a
//! key-encryption key (KEK) that the file only names.
//!
//! ```json
//! { "format": "cloakline-keyring/v2",
//!   "kek": { "provider": "passphrase", "kdf": "argon2id", "m_cost_kib": 65536, "t_cost": 3,
//!            "p_cost": 1, "salt": "…" },
//!   "keys": [ { "id": "k1", "fingerprint": "…", "wrapped": "…" } ] }
//! ```
//!
//! `wrapped` = base64url(nonce[12] ‖ AES-256-GCM(KEK, nonce, key[32], aad) ‖ tag[16]), with
//! aad = `cloakline-keyring/v2` ‖ 0x00 ‖ id ‖ 0x00 ‖ purpose, so a wrapped key moved to another
//! id or purpose fails to unwrap. Providers: a passphrase through Argon2id (parameters in the
//! file), or an AES key on a PKCS#11 token that never leaves it (the token runs AES-GCM). A
//! provider is one [`Kek`] implementation: a cloud KMS is one more file.

use std::sync::atomic::{AtomicUsize, Ordering};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Problem;

/// The format string of a wrapped keyring.
pub const WRAPPED_FORMAT: &str = "cloakline-keyring/v2";

/// Environment variable holding a wrapped keyring's passphrase.
pub const PASSPHRASE_ENV: &str = "CLOAKLINE_KEYRING_PASSPHRASE";
/// Environment variable holding a PKCS#11 token's user PIN.
pub const PIN_ENV: &str = "CLOAKLINE_PKCS11_PIN";

/// Argon2id bounds: below OWASP's floor a stolen file is cheap to brute-force; above the
/// ceiling a hostile file could exhaust memory.
pub const MIN_M_COST_KIB: u32 = 19_456;
pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
pub const MIN_T_COST: u32 = 2;
pub const MAX_T_COST: u32 = 64;
pub const MAX_P_COST: u32 = 16;
/// The default: RFC 9106's second recommended option, with one lane.
pub const DEFAULT_M_COST_KIB: u32 = 65_536;
pub const DEFAULT_T_COST: u32 = 3;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Where the KEK lives, as the keyring file records it (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum KekSpec {
    /// A passphrase stretched with Argon2id.
    Passphrase {
        kdf: String,
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
        /// Standard base64, 16 random bytes.
        salt: String,
    },
    /// An AES-256 key on a PKCS#11 token, found by token and key label.
    Pkcs11 {
        /// Path of the PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
        module: String,
        token_label: String,
        key_label: String,
    },
}

impl KekSpec {
    /// A passphrase KEK with a fresh salt.
    pub fn new_passphrase(m_cost_kib: u32, t_cost: u32) -> KekSpec {
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        KekSpec::Passphrase {
            kdf: "argon2id".into(),
            m_cost_kib,
            t_cost,
            p_cost: 1,
            salt: STANDARD.encode(salt),
        }
    }

    /// What protects the keys, in words (for `keys list`, notices, provenance).
    pub fn describe(&self) -> String {
        match self {
            KekSpec::Passphrase {
                m_cost_kib, t_cost, ..
            } => format!("passphrase (Argon2id, {m_cost_kib} KiB, {t_cost} passes)"),
            KekSpec::Pkcs11 {
                token_label,
                key_label,
                ..
            } => format!("PKCS#11 token {token_label:?}, key {key_label:?}"),
        }
    }

    /// The provider's name as provenance records it.
    pub fn provider(&self) -> &'static str {
        match self {
            KekSpec::Passphrase { .. } => "passphrase",
            KekSpec::Pkcs11 { .. } => "pkcs11",
        }
    }

    /// Open the KEK, asking `secret` for the passphrase or PIN.
    pub fn open(&self, secret: &SecretSource<'_>) -> Result<Box<dyn Kek>, Problem> {
        match self {
            KekSpec::Passphrase {
                kdf,
                m_cost_kib,
                t_cost,
                p_cost,
                salt,
            } => {
                if kdf != "argon2id" {
                    return Err("`kek.kdf` must be \"argon2id\"".into());
                }
                if !(MIN_M_COST_KIB..=MAX_M_COST_KIB).contains(m_cost_kib)
                    || !(MIN_T_COST..=MAX_T_COST).contains(t_cost)
                    || !(1..=MAX_P_COST).contains(p_cost)
                {
                    return Err(Problem(format!(
                        "the Argon2id parameters are out of bounds (memory {MIN_M_COST_KIB}–{MAX_M_COST_KIB} KiB, \
                         passes {MIN_T_COST}–{MAX_T_COST}, lanes 1–{MAX_P_COST}); rewrap with `cloakline keys wrap`"
                    )));
                }
                let salt = STANDARD
                    .decode(salt)
                    .ok()
                    .filter(|s| (8..=64).contains(&s.len()))
                    .ok_or("`kek.salt` is not 8 to 64 bytes of base64")?;
                let pass = secret.get(PASSPHRASE_ENV, "passphrase of the keyring")?;
                if pass.is_empty() {
                    return Err("the passphrase is empty".into());
                }
                let params = argon2::Params::new(*m_cost_kib, *t_cost, *p_cost, Some(32))
                    .map_err(|_| Problem("invalid Argon2id parameters".to_string()))?;
                let a = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params,
                );
                let mut kek = Zeroizing::new([0u8; 32]);
                a.hash_password_into(pass.as_bytes(), &salt, kek.as_mut())
                    .map_err(|_| Problem("Argon2id failed".to_string()))?;
                Ok(Box::new(LocalKek {
                    cipher: Aes256Gcm::new_from_slice(kek.as_ref())
                        .map_err(|_| Problem("AES key setup failed".to_string()))?,
                    ops: AtomicUsize::new(0),
                }))
            }
            KekSpec::Pkcs11 {
                module,
                token_label,
                key_label,
            } => super::pkcs11::open(module, token_label, key_label, secret, false),
        }
    }
}

/// A key-encryption key. `wrap` returns nonce ‖ ciphertext ‖ tag.
pub trait Kek: Send + Sync {
    fn wrap(&self, aad: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, Problem>;
    /// `Err` when the wrapped bytes do not authenticate (altered, or another KEK).
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, Problem>;
    /// How many wrap and unwrap operations it has run (for a token or KMS: round trips).
    fn operations(&self) -> usize;
}

/// A KEK held in this process (derived from a passphrase).
struct LocalKek {
    cipher: Aes256Gcm,
    ops: AtomicUsize,
}

impl Kek for LocalKek {
    fn wrap(&self, aad: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, Problem> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        let mut out = nonce.to_vec();
        let start = out.len();
        out.extend_from_slice(key);
        let tag = self
            .cipher
            .encrypt_inout_detached(&Nonce::from(nonce), aad, (&mut out[start..]).into())
            .map_err(|_| Problem("wrapping failed".to_string()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, Problem> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        if wrapped.len() != NONCE_LEN + 32 + TAG_LEN {
            return Err("has the wrong length".into());
        }
        let nonce: [u8; NONCE_LEN] = wrapped[..NONCE_LEN].try_into().map_err(|_| "nonce")?;
        let tag: [u8; TAG_LEN] = wrapped[NONCE_LEN + 32..].try_into().map_err(|_| "tag")?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&wrapped[NONCE_LEN..NONCE_LEN + 32]);
        self.cipher
            .decrypt_inout_detached(&Nonce::from(nonce), aad, key.as_mut().into(), &tag.into())
            .map_err(|_| Problem("does not authenticate".to_string()))?;
        Ok(key)
    }

    fn operations(&self) -> usize {
        self.ops.load(Ordering::Relaxed)
    }
}

/// Where a passphrase or PIN comes from: an environment variable, else the prompt the CLI
/// installs with [`set_prompt`] (never a command-line flag, which lands in shell history).
pub struct SecretSource<'a> {
    /// Read the environment (tests pass a map instead).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

type Prompt = fn(&str) -> Option<Zeroizing<String>>;
static PROMPT: std::sync::OnceLock<Prompt> = std::sync::OnceLock::new();

/// Install the prompt the CLI asks for a passphrase or PIN when its variable is not set.
pub fn set_prompt(prompt: Prompt) {
    let _ = PROMPT.set(prompt);
}

impl SecretSource<'_> {
    /// The process environment, then the prompt.
    pub fn process() -> SecretSource<'static> {
        SecretSource {
            env: &|name| std::env::var(name).ok(),
        }
    }

    pub(crate) fn get(&self, var: &str, what: &str) -> Result<Zeroizing<String>, Problem> {
        if let Some(v) = (self.env)(var) {
            return Ok(Zeroizing::new(v));
        }
        if let Some(prompt) = PROMPT.get()
            && let Some(v) = prompt(what)
        {
            return Ok(v);
        }
        Err(Problem(format!(
            "needs the {what}: set {var} (a secret store or CI secret), or run interactively to be asked"
        )))
    }
}

/// The associated data binding a wrapped key to its exact reference (`k1`, `k1@v2`) and
/// purpose.
pub(crate) fn aad(id: &str, purpose: &str) -> Vec<u8> {
    let mut a = WRAPPED_FORMAT.as_bytes().to_vec();
    a.push(0);
    a.extend_from_slice(id.as_bytes());
    a.push(0);
    a.extend_from_slice(purpose.as_bytes());
    a
}

/// One key of a wrapped keyring file.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrappedEntry {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The key's public fingerprint, so `keys list` needs no secret; checked on unwrap.
    pub fingerprint: String,
    /// base64url(nonce ‖ wrapped key ‖ tag).
    pub wrapped: String,
}

/// A wrapped keyring file.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrappedFile {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    pub kek: KekSpec,
    pub keys: Vec<WrappedEntry>,
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn passphrase_kek_wraps_and_refuses_a_wrong_passphrase_or_moved_key() {
        let spec = KekSpec::new_passphrase(MIN_M_COST_KIB, MIN_T_COST);
        let good = env(&[(PASSPHRASE_ENV, "correct horse battery staple")]);
        let kek = spec.open(&SecretSource { env: &good }).unwrap();
        let key = [7u8; 32];
        let w = kek.wrap(&aad("k1", "data"), &key).unwrap();
        assert_eq!(*kek.unwrap(&aad("k1", "data"), &w).unwrap(), key);
        assert!(
            kek.unwrap(&aad("k2", "data"), &w).is_err(),
            "moved to another id"
        );
        let bad = env(&[(PASSPHRASE_ENV, "Tr0ub4dor&3")]);
        let other = spec.open(&SecretSource { env: &bad }).unwrap();
        assert!(other.unwrap(&aad("k1", "data"), &w).is_err());
        assert_eq!(kek.operations(), 3);
    }

    #[test]
    fn weak_or_absurd_parameters_and_missing_secrets_are_refused() {
        let good = env(&[(PASSPHRASE_ENV, "x-passphrase")]);
        for (m, t) in [(1024, 3), (65_536, 1), (u32::MAX, 3), (65_536, 1000)] {
            let spec = KekSpec::new_passphrase(m, t);
            let e = spec
                .open(&SecretSource { env: &good })
                .err()
                .unwrap()
                .message;
            assert!(e.contains("out of bounds"), "{e}");
        }
        let none = env(&[]);
        let e = KekSpec::new_passphrase(MIN_M_COST_KIB, MIN_T_COST)
            .open(&SecretSource { env: &none })
            .err()
            .unwrap()
            .message;
        assert!(e.contains(PASSPHRASE_ENV), "{e}");
    }
}
