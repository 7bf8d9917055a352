//! `encrypt` / decrypt: AES-256-GCM field envelopes (decrypt also opens the AES-SIV envelopes
//! of `encrypt_deterministic`, version byte 2, see [`super::siv`]).
//!
//! envelope = base64url-nopad(0x01 ‖ len(key_id) ‖ key_id ‖ nonce[12] ‖ ciphertext ‖ tag[16]),
//! under subkey = HKDF-SHA256(key, info = `cloakline/v1/encrypt/<domain>`), with a fresh random
//! nonce per value and associated data = the UTF-8 domain. The plaintext is the value's
//! canonical string. See docs/FORMATS.md.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use super::{KernelError, KernelResult, canonical_strings, map_strings};
use crate::keys::{Key, Keyring};

/// Envelope format version byte.
pub const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Encrypts values under one key and domain.
pub struct Encryptor {
    cipher: Aes256Gcm,
    key_id: String,
    domain: String,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("key_id", &self.key_id)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

fn cipher_for(key: &Key, domain: &str) -> KernelResult<Aes256Gcm> {
    let subkey = key.subkey("encrypt", domain);
    Aes256Gcm::new_from_slice(subkey.as_ref())
        .map_err(|_| KernelError::Parameter("AES key setup failed".into()))
}

impl Encryptor {
    pub fn new(key: &Key, domain: &str) -> KernelResult<Self> {
        Ok(Encryptor {
            cipher: cipher_for(key, domain)?,
            // The exact version (`k1@v2` after a rotation), so decryption finds it.
            key_id: key.reference(),
            domain: domain.to_string(),
        })
    }

    /// The output type for an input type, or why it is not accepted.
    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        super::canonical_output("encrypt", input)
    }

    /// Encrypt one plaintext into an envelope appended to `out`; `buf` is scratch space.
    pub fn encrypt_into(
        &self,
        plaintext: &[u8],
        rng: &mut impl RngCore,
        buf: &mut Vec<u8>,
        out: &mut String,
    ) -> KernelResult<()> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal(plaintext, nonce, buf, out)
    }

    /// The envelope of `plaintext` under a given nonce (which must never repeat for a key).
    fn seal(
        &self,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
        buf: &mut Vec<u8>,
        out: &mut String,
    ) -> KernelResult<()> {
        buf.clear();
        buf.push(ENVELOPE_VERSION);
        buf.push(self.key_id.len() as u8);
        buf.extend_from_slice(self.key_id.as_bytes());
        buf.extend_from_slice(&nonce);
        let start = buf.len();
        buf.extend_from_slice(plaintext);
        let nonce = Nonce::from(nonce);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, self.domain.as_bytes(), (&mut buf[start..]).into())
            .map_err(|_| KernelError::Value("encryption failed (value too long)".into()))?;
        buf.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode_string(&buf[..], out);
        Ok(())
    }

    /// Encrypt one string into a new envelope.
    pub fn encrypt_str(&self, plaintext: &str) -> KernelResult<String> {
        let mut out = String::new();
        self.encrypt_into(
            plaintext.as_bytes(),
            &mut rand::rng(),
            &mut Vec::new(),
            &mut out,
        )?;
        Ok(out)
    }

    /// Encrypt a whole array; the result is `Utf8` with the same nulls.
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        Self::output_type(array.data_type())?;
        let plain = super::plain(array)?;
        let strings = canonical_strings(&plain)?;
        refuse_unrestorable(&plain, &strings)?;
        let overhead = 2 + self.key_id.len() + NONCE_LEN + TAG_LEN;
        let hint = (super::string_bytes(strings.as_ref()) + strings.len() * overhead) * 4 / 3 + 16;
        // One call to the CSPRNG for all the array's nonces.
        let mut nonces = vec![0u8; strings.len() * NONCE_LEN];
        rand::rng().fill_bytes(&mut nonces);
        let mut nonces = nonces.chunks_exact(NONCE_LEN);
        let mut buf = Vec::with_capacity(256);
        let mut tmp = String::with_capacity(256);
        map_strings(strings.as_ref(), hint, |v, out| {
            let nonce: [u8; NONCE_LEN] = nonces
                .next()
                .and_then(|n| n.try_into().ok())
                .ok_or_else(|| KernelError::Value("internal: nonce buffer exhausted".into()))?;
            tmp.clear();
            self.seal(v.as_bytes(), nonce, &mut buf, &mut tmp)?;
            out.append_value(&tmp);
            Ok(())
        })
    }
}

/// Encryption must be reversible: a value whose canonical string does not parse back to the
/// same value (a date after year 9999, a timestamp in a zone's local mean time) would be
/// written as an envelope `decrypt` cannot restore. Refuse the array instead, naming no value.
pub(crate) fn refuse_unrestorable(plain: &ArrayRef, strings: &ArrayRef) -> KernelResult<()> {
    let dt = plain.data_type();
    if super::is_string_type(dt) {
        return Ok(());
    }
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    let again = arrow::compute::cast_with_options(strings, dt, &options)
        .ok()
        .and_then(|back| canonical_strings(&back).ok());
    if again.is_some_and(|a| a.to_data() == strings.to_data()) {
        return Ok(());
    }
    Err(KernelError::Value(format!(
        "a {dt} value cannot be encrypted reversibly: its text form does not parse back to the \
         same value (dates after year 9999 or before year 0, timestamps in a time zone's local \
         mean time before standard time). Cast the column to a string type (policy `type:`) or \
         generalize it; the value is not shown"
    )))
}

/// Decrypts envelopes, finding each one's key id in the envelope.
pub struct Decryptor<'k> {
    keyring: &'k Keyring,
    domain: String,
    ciphers: HashMap<String, Aes256Gcm>,
}

impl<'k> Decryptor<'k> {
    pub fn new(keyring: &'k Keyring, domain: &str) -> Self {
        Decryptor {
            keyring,
            domain: domain.to_string(),
            ciphers: HashMap::new(),
        }
    }

    /// Decrypt one envelope to its plaintext bytes.
    pub fn decrypt(&mut self, envelope: &str) -> KernelResult<Vec<u8>> {
        let bad = |why: &str| KernelError::Value(format!("not a cloakline envelope: {why}"));
        let raw = URL_SAFE_NO_PAD
            .decode(envelope.trim())
            .map_err(|_| bad("not base64url without padding"))?;
        let version = raw.first().copied();
        if version != Some(ENVELOPE_VERSION) && version != Some(super::siv::SIV_ENVELOPE_VERSION) {
            return Err(bad("unknown version byte"));
        }
        let id_len = *raw.get(1).ok_or_else(|| bad("too short"))? as usize;
        if version == Some(super::siv::SIV_ENVELOPE_VERSION) {
            // encrypt_deterministic: 0x02 ‖ len ‖ key id ‖ V ‖ C.
            let body_start = 2 + id_len;
            if raw.len() < body_start + super::siv::SIV_LEN {
                return Err(bad("too short"));
            }
            let key_id =
                std::str::from_utf8(&raw[2..body_start]).map_err(|_| bad("key id is not UTF-8"))?;
            let key = self
                .keyring
                .data_key_exact(key_id)
                .map_err(|e| KernelError::Value(e.to_string()))?;
            return super::siv::open(key, &self.domain, &raw[body_start..]).map_err(|()| {
                KernelError::Value(format!(
                    "authentication failed for key {key_id:?} and domain {:?}: wrong key, wrong domain, or altered data",
                    self.domain
                ))
            });
        }
        let body_start = 2 + id_len + NONCE_LEN;
        if raw.len() < body_start + TAG_LEN {
            return Err(bad("too short"));
        }
        let key_id =
            std::str::from_utf8(&raw[2..2 + id_len]).map_err(|_| bad("key id is not UTF-8"))?;
        if !self.ciphers.contains_key(key_id) {
            let key = self
                .keyring
                .data_key_exact(key_id)
                .map_err(|e| KernelError::Value(e.to_string()))?;
            self.ciphers
                .insert(key_id.to_string(), cipher_for(key, &self.domain)?);
        }
        let cipher = &self.ciphers[key_id];
        let nonce_bytes: [u8; NONCE_LEN] = raw[2 + id_len..body_start]
            .try_into()
            .map_err(|_| bad("nonce"))?;
        let nonce = Nonce::from(nonce_bytes);
        let tag_start = raw.len() - TAG_LEN;
        let tag_bytes: [u8; TAG_LEN] = raw[tag_start..].try_into().map_err(|_| bad("tag"))?;
        let mut body = raw[body_start..tag_start].to_vec();
        cipher
            .decrypt_inout_detached(&nonce, self.domain.as_bytes(), (&mut body[..]).into(), &tag_bytes.into())
            .map_err(|_| {
                KernelError::Value(format!(
                    "authentication failed for key {key_id:?} and domain {:?}: wrong key, wrong domain, or altered data",
                    self.domain
                ))
            })?;
        Ok(body)
    }

    /// Decrypt a whole string array; the result is `Utf8` (cast it back with the recorded source type).
    pub fn apply(&mut self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        if !super::is_string_type(array.data_type()) {
            return Err(KernelError::UnsupportedType {
                action: "decrypt",
                data_type: array.data_type().clone(),
                hint: "decrypt reads envelopes, which are strings".into(),
            });
        }
        let hint = super::string_bytes(array.as_ref());
        let out = map_strings(array.as_ref(), hint, |v, out| {
            let plain = self.decrypt(v)?;
            let s = String::from_utf8(plain)
                .map_err(|_| KernelError::Value("plaintext is not UTF-8".into()))?;
            out.append_value(s);
            Ok(())
        })?;
        Ok(Arc::clone(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{string_arrays, strings};
    use arrow::array::*;

    fn ring() -> Keyring {
        Keyring::generate_in_memory(&["k1", "k2"])
    }

    #[test]
    fn round_trip_every_string_type_with_nulls_empty_and_unicode() {
        let ring = ring();
        let enc = Encryptor::new(ring.get("k2").unwrap(), "national_id").unwrap();
        let values = [
            Some("110101199003074518"),
            None,
            Some(""),
            Some("Zoë 🚀 身份证"),
        ];
        for arr in string_arrays(&values) {
            let out = enc.apply(&arr).unwrap();
            assert_eq!(out.null_count(), 1);
            let mut dec = Decryptor::new(&ring, "national_id");
            let back = strings(&dec.apply(&out).unwrap());
            let want: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(back, want);
        }
    }

    #[test]
    fn fresh_nonce_each_time_and_wrong_domain_or_tamper_fails() {
        let ring = ring();
        let enc = Encryptor::new(ring.get("k1").unwrap(), "d").unwrap();
        let a = enc.encrypt_str("same").unwrap();
        let b = enc.encrypt_str("same").unwrap();
        assert_ne!(a, b);
        assert!(Decryptor::new(&ring, "other").decrypt(&a).is_err());
        let mut raw = URL_SAFE_NO_PAD.decode(&a).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(raw);
        let e = Decryptor::new(&ring, "d")
            .decrypt(&tampered)
            .unwrap_err()
            .to_string();
        assert!(e.contains("authentication failed"), "{e}");
        assert!(Decryptor::new(&ring, "d").decrypt("!!").is_err());
        assert_eq!(Decryptor::new(&ring, "d").decrypt(&a).unwrap(), b"same");
    }

    #[test]
    fn envelope_layout() {
        let ring = ring();
        let enc = Encryptor::new(ring.get("k1").unwrap(), "d").unwrap();
        let raw = URL_SAFE_NO_PAD
            .decode(enc.encrypt_str("abc").unwrap())
            .unwrap();
        assert_eq!(raw[0], 1);
        assert_eq!(raw[1], 2);
        assert_eq!(&raw[2..4], b"k1");
        assert_eq!(raw.len(), 4 + 12 + 3 + 16);
    }

    #[test]
    fn integers_encrypt_their_canonical_string() {
        let ring = ring();
        let enc = Encryptor::new(ring.get("k1").unwrap(), "n").unwrap();
        let arr: ArrayRef = Arc::new(Int32Array::from(vec![Some(-7), None]));
        let out = enc.apply(&arr).unwrap();
        let back = strings(&Decryptor::new(&ring, "n").apply(&out).unwrap());
        assert_eq!(back, vec![Some("-7".to_string()), None]);
    }
}
