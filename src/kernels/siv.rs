//! `encrypt_deterministic`: AES-SIV (RFC 5297) field envelopes: joinable like a token,
//! reversible like `encrypt`.
//!
//! envelope = base64url-nopad(0x02 ‖ len(key_id) ‖ key_id ‖ V[16] ‖ C), where
//! V ‖ C = AES-SIV-CMAC-512(subkey, AD = [domain], plaintext = the value's canonical string)
//! and subkey = 64 bytes of HKDF-SHA256(key, info = `cloakline/v1/encrypt_deterministic/<domain>`).
//! Same key + domain + value gives the same envelope, so equal values stay equal (and a
//! reader learns which values are equal: that is the price of joining). See docs/FORMATS.md.

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::{KernelError, KernelResult, canonical_strings, map_strings};
use crate::keys::Key;

/// The version byte of an AES-SIV envelope (AES-GCM envelopes have 1).
pub const SIV_ENVELOPE_VERSION: u8 = 2;
/// The synthetic IV, which is also the authentication tag.
pub const SIV_LEN: usize = 16;

/// The 64-byte AES-SIV subkey of `key` for `domain`.
fn siv_subkey(key: &Key, domain: &str) -> Zeroizing<[u8; 64]> {
    key.subkey64("encrypt_deterministic", domain)
}

fn cipher(subkey: &[u8; 64]) -> KernelResult<Aes256Siv> {
    Aes256Siv::new_from_slice(subkey)
        .map_err(|_| KernelError::Parameter("AES-SIV key setup failed".into()))
}

/// Encrypts values deterministically under one key and domain.
pub struct SivEncryptor {
    // The key schedule is rebuilt per array (AES-SIV's API takes `&mut self`); the subkey is
    // zeroized on drop.
    subkey: Zeroizing<[u8; 64]>,
    key_id: String,
    domain: String,
}

impl std::fmt::Debug for SivEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SivEncryptor")
            .field("key_id", &self.key_id)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl SivEncryptor {
    /// `key_id` is what the envelope names (the key's reference, e.g. `k1` or `k1@v2`).
    pub fn new(key: &Key, key_id: &str, domain: &str) -> KernelResult<Self> {
        if key_id.len() > u8::MAX as usize {
            return Err(KernelError::Parameter(
                "key id longer than 255 bytes".into(),
            ));
        }
        Ok(SivEncryptor {
            subkey: siv_subkey(key, domain),
            key_id: key_id.to_string(),
            domain: domain.to_string(),
        })
    }

    /// The output type for an input type, or why it is not accepted.
    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        super::canonical_output("encrypt_deterministic", input)
    }

    /// The envelope of one plaintext, appended to `out`; `buf` is scratch space.
    fn seal(
        &self,
        siv: &mut Aes256Siv,
        plaintext: &[u8],
        buf: &mut Vec<u8>,
        out: &mut String,
    ) -> KernelResult<()> {
        buf.clear();
        buf.push(SIV_ENVELOPE_VERSION);
        buf.push(self.key_id.len() as u8);
        buf.extend_from_slice(self.key_id.as_bytes());
        let tag_at = buf.len();
        buf.extend_from_slice(&[0u8; SIV_LEN]);
        let start = buf.len();
        buf.extend_from_slice(plaintext);
        let tag = siv
            .encrypt_inout_detached([self.domain.as_bytes()], (&mut buf[start..]).into())
            .map_err(|_| KernelError::Value("AES-SIV encryption failed".into()))?;
        buf[tag_at..start].copy_from_slice(tag.as_slice());
        URL_SAFE_NO_PAD.encode_string(&buf[..], out);
        Ok(())
    }

    /// Encrypt one string.
    pub fn encrypt_str(&self, plaintext: &str) -> KernelResult<String> {
        let mut siv = cipher(&self.subkey)?;
        let mut out = String::new();
        self.seal(&mut siv, plaintext.as_bytes(), &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    /// Encrypt a whole array; the result is `Utf8` with the same nulls.
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        Self::output_type(array.data_type())?;
        let plain = super::plain(array)?;
        let strings = canonical_strings(&plain)?;
        super::encrypt::refuse_unrestorable(&plain, &strings)?;
        let overhead = 2 + self.key_id.len() + SIV_LEN;
        let hint = (super::string_bytes(strings.as_ref()) + strings.len() * overhead) * 4 / 3 + 16;
        let mut siv = cipher(&self.subkey)?;
        let mut buf = Vec::with_capacity(256);
        let mut tmp = String::with_capacity(256);
        map_strings(strings.as_ref(), hint, |v, out| {
            tmp.clear();
            self.seal(&mut siv, v.as_bytes(), &mut buf, &mut tmp)?;
            out.append_value(&tmp);
            Ok(())
        })
    }
}

/// Open the body of an AES-SIV envelope (after version byte and key id: V ‖ C) with `key`
/// and `domain`; `Err(())` when it does not authenticate.
pub(crate) fn open(key: &Key, domain: &str, body: &[u8]) -> Result<Vec<u8>, ()> {
    if body.len() < SIV_LEN {
        return Err(());
    }
    let subkey = siv_subkey(key, domain);
    let mut siv = cipher(&subkey).map_err(|_| ())?;
    let tag = aes_siv::Tag::try_from(&body[..SIV_LEN]).map_err(|_| ())?;
    let mut plain = body[SIV_LEN..].to_vec();
    siv.decrypt_inout_detached([domain.as_bytes()], (&mut plain[..]).into(), &tag)
        .map_err(|_| ())?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Decryptor;
    use crate::kernels::test_util::{string_arrays, strings};
    use crate::keys::Keyring;
    use arrow::array::*;
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;

    /// RFC 5297 Appendix A.1 (deterministic authenticated encryption) through the same S2V
    /// call the kernel makes, with one header: the AD.
    #[test]
    fn rfc5297_a1_vector() {
        let key = hex::decode("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap();
        let ad = hex::decode("101112131415161718191a1b1c1d1e1f2021222324252627").unwrap();
        let pt = hex::decode("112233445566778899aabbccddee").unwrap();
        let mut siv = aes_siv::siv::Aes128Siv::new_from_slice(&key).unwrap();
        let mut buf = pt.clone();
        let tag = siv
            .encrypt_inout_detached([&ad], (&mut buf[..]).into())
            .unwrap();
        assert_eq!(hex::encode(tag), "85632d07c6e8f37f950acd320a2ecc93");
        assert_eq!(hex::encode(&buf), "40c02b9690c4dc04daef7f6afe5c");
    }

    #[test]
    fn envelope_layout() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let key = ring.get("k1").unwrap();
        let enc = SivEncryptor::new(key, "k1", "email").unwrap();
        let a = enc.encrypt_str("alice@example.org").unwrap();
        assert_eq!(a, enc.encrypt_str("alice@example.org").unwrap());
        let raw = URL_SAFE_NO_PAD.decode(&a).unwrap();
        assert_eq!(&raw[..4], &[2, 2, b'k', b'1']);
        assert_eq!(raw.len(), 4 + 16 + "alice@example.org".len());
        assert_eq!(open(key, "email", &raw[4..]).unwrap(), b"alice@example.org");
        assert!(open(key, "phone", &raw[4..]).is_err());
        // The published vectors are in tests/it/vectors.rs.
    }

    #[test]
    fn equal_values_equal_envelopes_and_round_trip_through_decrypt() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let enc = SivEncryptor::new(ring.get("k1").unwrap(), "k1", "national_id").unwrap();
        let values = [
            Some("110101199003074518"),
            None,
            Some(""),
            Some("Zoë 🚀 身份证"),
            Some("110101199003074518"),
        ];
        for arr in string_arrays(&values) {
            let out = enc.apply(&arr).unwrap();
            let got = strings(&out);
            assert_eq!(got[0], got[4]);
            assert_ne!(got[0], got[2]);
            assert_eq!(out.null_count(), 1);
            let back = strings(&Decryptor::new(&ring, "national_id").apply(&out).unwrap());
            let want: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(back, want);
        }
        // A dictionary and a slice give the same envelopes as the plain array.
        let dict: ArrayRef = Arc::new(
            vec![Some("a"), None, Some("b"), Some("a")]
                .into_iter()
                .collect::<DictionaryArray<Int32Type>>(),
        );
        let flat: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some("b"),
            Some("a"),
        ]));
        assert_eq!(
            strings(&enc.apply(&dict).unwrap()),
            strings(&enc.apply(&flat).unwrap())
        );
        assert_eq!(
            strings(&enc.apply(&flat.slice(2, 2)).unwrap()),
            strings(&enc.apply(&flat).unwrap())[2..].to_vec()
        );
    }

    #[test]
    fn tampered_or_wrong_domain_fails_and_names_no_value() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let enc = SivEncryptor::new(ring.get("k1").unwrap(), "k1", "d").unwrap();
        let a = enc.encrypt_str("secret-value").unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&a).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let e = Decryptor::new(&ring, "d")
            .decrypt(&URL_SAFE_NO_PAD.encode(raw))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("authentication failed") && !e.contains("secret"),
            "{e}"
        );
        assert!(Decryptor::new(&ring, "other").decrypt(&a).is_err());
        assert_eq!(
            Decryptor::new(&ring, "d").decrypt(&a).unwrap(),
            b"secret-value"
        );
    }

    #[test]
    fn integers_encrypt_their_canonical_string() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let enc = SivEncryptor::new(ring.get("k1").unwrap(), "k1", "n").unwrap();
        let arr: ArrayRef = Arc::new(Int64Array::from(vec![Some(-7), None, Some(-7)]));
        let out = enc.apply(&arr).unwrap();
        let got = strings(&out);
        assert_eq!(got[0], got[2]);
        let back = strings(&Decryptor::new(&ring, "n").apply(&out).unwrap());
        assert_eq!(
            back,
            vec![Some("-7".to_string()), None, Some("-7".to_string())]
        );
    }
}
