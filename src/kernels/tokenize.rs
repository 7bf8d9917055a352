//! `tokenize`: deterministic keyed pseudonyms.
//!
//! token = prefix ‖ lowercase hex of HMAC-SHA256(subkey, canonical string), cut to `length`
//! hex characters, where subkey = HKDF-SHA256(key, info = `cloakline/v1/tokenize/<domain>`).
//! Same key + domain + value gives the same token in every run and dataset.

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{KernelError, KernelResult, canonical_strings, map_strings};
use crate::keys::Key;

type HmacSha256 = Hmac<Sha256>;

/// A tokenizer bound to one key and domain.
#[derive(Clone)]
pub struct Tokenizer {
    mac: HmacSha256,
    length: usize,
    prefix: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("length", &self.length)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Tokenizer {
    /// `length` is the number of hex characters kept (1 to 64).
    pub fn new(key: &Key, domain: &str, length: usize, prefix: &str) -> KernelResult<Self> {
        if !(1..=64).contains(&length) {
            return Err(KernelError::Parameter(format!(
                "token length {length} is out of range: use 1 to 64 hex characters"
            )));
        }
        let subkey = key.subkey("tokenize", domain);
        let mac = <HmacSha256 as KeyInit>::new_from_slice(subkey.as_ref())
            .map_err(|_| KernelError::Parameter("HMAC key setup failed".into()))?;
        Ok(Tokenizer {
            mac,
            length,
            prefix: prefix.to_string(),
        })
    }

    /// The output type for an input type, or why the type is not accepted.
    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        super::canonical_output("tokenize", input)
    }

    /// The token of one value's bytes, appended to `out`.
    #[inline]
    pub fn token_into(&self, value: &[u8], out: &mut impl std::fmt::Write) {
        let mut mac = self.mac.clone();
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        let mut buf = [0u8; 64];
        for (i, b) in digest.iter().enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 0xf) as usize];
        }
        // The buffer is ASCII hex, so this conversion cannot fail.
        let hex = std::str::from_utf8(&buf[..self.length]).unwrap_or_default();
        let _ = out.write_str(&self.prefix);
        let _ = out.write_str(hex);
    }

    /// The token of one string.
    pub fn token(&self, value: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + self.length);
        self.token_into(value.as_bytes(), &mut s);
        s
    }

    /// Tokenize a whole array; the result is a `Utf8` array with the same nulls.
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        Self::output_type(array.data_type())?;
        let strings = canonical_strings(&super::plain(array)?)?;
        let per = self.prefix.len() + self.length;
        map_strings(strings.as_ref(), strings.len() * per, |v, out| {
            self.token_into(v.as_bytes(), out);
            out.append_value("");
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{string_arrays, strings};
    use arrow::array::*;
    use std::sync::Arc;

    fn key() -> Key {
        let mut m = [0u8; 32];
        for (i, b) in m.iter_mut().enumerate() {
            *b = i as u8;
        }
        Key::from_bytes("k1", m).unwrap()
    }

    #[test]
    fn strings_of_every_type_give_the_same_tokens_and_keep_nulls() {
        let t = Tokenizer::new(&key(), "email", 32, "").unwrap();
        let values = [
            Some("alice@example.com"),
            None,
            Some(""),
            Some("张伟@例子.中国"),
        ];
        let mut outs = vec![];
        for arr in string_arrays(&values) {
            let out = t.apply(&arr).unwrap();
            assert_eq!(out.data_type(), &DataType::Utf8);
            assert_eq!(out.null_count(), 1);
            outs.push(strings(&out));
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
        let o = &outs[0];
        assert_eq!(o[0].as_ref().unwrap().len(), 32);
        assert!(
            o[0].as_ref()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(o[0], o[2], "empty string has its own token");
        assert_ne!(o[0], o[3]);
    }

    #[test]
    fn domain_key_length_and_prefix() {
        let a = Tokenizer::new(&key(), "email", 32, "").unwrap().token("x");
        let b = Tokenizer::new(&key(), "phone", 32, "").unwrap().token("x");
        assert_ne!(a, b, "another domain gives other tokens");
        let other = Key::from_bytes("k1", [7; 32]).unwrap();
        assert_ne!(
            a,
            Tokenizer::new(&other, "email", 32, "").unwrap().token("x")
        );
        let short = Tokenizer::new(&key(), "email", 8, "tok_")
            .unwrap()
            .token("x");
        assert_eq!(short, format!("tok_{}", &a[..8]));
        let full = Tokenizer::new(&key(), "email", 64, "").unwrap().token("x");
        assert!(full.starts_with(&a) && full.len() == 64);
        assert!(Tokenizer::new(&key(), "email", 0, "").is_err());
        assert!(Tokenizer::new(&key(), "email", 65, "").is_err());
    }

    #[test]
    fn non_string_types_tokenize_their_canonical_string() {
        let t = Tokenizer::new(&key(), "id", 16, "").unwrap();
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(42), None]));
        let out = strings(&t.apply(&ints).unwrap());
        assert_eq!(out[0].as_deref(), Some(t.token("42").as_str()));
        assert_eq!(out[1], None);
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![19723]));
        assert_eq!(
            strings(&t.apply(&dates).unwrap())[0].as_deref(),
            Some(t.token("2024-01-01").as_str())
        );
        let cases: Vec<(ArrayRef, &str)> = vec![
            (Arc::new(BooleanArray::from(vec![true])), "true"),
            (Arc::new(Float64Array::from(vec![2.5])), "2.5"),
            (
                Arc::new(
                    Decimal128Array::from(vec![1050])
                        .with_precision_and_scale(6, 2)
                        .unwrap(),
                ),
                "10.50",
            ),
            (
                Arc::new(TimestampSecondArray::from(vec![0])),
                "1970-01-01T00:00:00",
            ),
            (Arc::new(LargeStringArray::from(vec!["42"])), "42"),
        ];
        for (arr, canonical) in cases {
            let got = strings(&t.apply(&arr).unwrap());
            assert_eq!(
                got[0].as_deref(),
                Some(t.token(canonical).as_str()),
                "{}",
                arr.data_type()
            );
        }
        let list: ArrayRef = Arc::new(arrow::array::NullArray::new(1));
        assert!(t.apply(&list).is_err());
    }
}
