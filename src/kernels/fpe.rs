//! `fpe`: format-preserving encryption, NIST SP 800-38G FF1 with AES-256.
//!
//! A value is split into characters: those in `separators` stay in place, the rest must be in
//! the alphabet. Of the alphabet characters, `keep_first` and `keep_last` stay in the clear;
//! the others are enciphered as one numeral string (radix = the alphabet's size) under
//! subkey = HKDF-SHA256(key, info = `cloakline/v1/fpe/<domain>`), tweak = the UTF-8 domain.
//! The output has the input's length, separators and kept characters.
//!
//! With `luhn`, the last enciphered digit is not enciphered but recomputed so the whole
//! number passes the Luhn check again; decryption recomputes it the same way, which restores
//! it because the input passed the check. So a card number keeps its last four digits, its
//! length and its validity.
//!
//! FF1 is weak on small domains: NIST requires radix^length ≥ 1,000,000 for the enciphered
//! part. Shorter values are refused (or nulled, with `on_invalid: null`); so are values with
//! characters outside the alphabet and separators. Errors count values, never show one.

use aes_gcm::aes::Aes256;
use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use fpe::ff1::{FF1, FlexibleNumeralString};
use serde::Serialize;

use super::{KernelError, KernelResult, canonical_strings, has_canonical_string, map_strings};
use crate::keys::Key;

/// NIST SP 800-38G Rev. 1: the smallest domain (radix^length) FF1 may encipher.
pub const MIN_DOMAIN: u64 = 1_000_000;

/// The longest value FF1 enciphers, in characters: FF1's cost grows with the square of the
/// length (big-number arithmetic), and it is made for identifiers, not free text.
pub const MAX_CHARS: usize = 4096;

/// The largest alphabet: FF1 numerals are below 2^16.
pub const MAX_RADIX: usize = 1 << 16;

/// The named alphabets of `alphabet:`.
pub const NAMED_ALPHABETS: &[(&str, &str)] = &[
    ("digits", "0123456789"),
    ("hex", "0123456789abcdef"),
    ("lower", "abcdefghijklmnopqrstuvwxyz"),
    ("upper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ("lower_alphanumeric", "0123456789abcdefghijklmnopqrstuvwxyz"),
    ("upper_alphanumeric", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    (
        "alphanumeric",
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    ),
];

/// What to do with a value FF1 cannot encipher (outside the alphabet, or too short).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Fail the run, naming the column and how many values (default).
    #[default]
    Error,
    /// Write null instead (the count is in the error-free run's log).
    Null,
}

/// The parameters of one `fpe` use, as the policy states them and provenance records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FpeSpec {
    pub key: String,
    pub domain: String,
    /// The alphabet's name (`digits`, …) or `custom`.
    pub alphabet: String,
    /// The alphabet's characters, in numeral order.
    pub characters: String,
    pub separators: String,
    pub keep_first: usize,
    pub keep_last: usize,
    pub luhn: bool,
    pub on_invalid: OnInvalid,
}

/// The characters of a named alphabet.
pub fn named_alphabet(name: &str) -> Option<&'static str> {
    NAMED_ALPHABETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// Check an alphabet and separators: 2 to 65,536 distinct characters, none of them a
/// separator; `luhn` needs the digits alphabet.
pub fn check_alphabet(characters: &str, separators: &str, luhn: bool) -> Result<(), String> {
    let chars: Vec<char> = characters.chars().collect();
    if chars.len() < 2 || chars.len() > MAX_RADIX {
        return Err(format!(
            "the alphabet has {} characters; FF1 needs 2 to {MAX_RADIX}",
            chars.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(c) = chars.iter().find(|c| !seen.insert(**c)) {
        return Err(format!(
            "the alphabet repeats the character {c:?}; list each character once"
        ));
    }
    if let Some(c) = separators.chars().find(|c| seen.contains(c)) {
        return Err(format!(
            "{c:?} is both in the alphabet and a separator; a character is one or the other"
        ));
    }
    if luhn && characters != "0123456789" {
        return Err(
            "`luhn` needs `alphabet: digits` (the Luhn check is over decimal digits)".into(),
        );
    }
    Ok(())
}

/// The shortest enciphered part (in characters) NIST allows for a radix.
pub fn min_length(radix: usize) -> usize {
    let mut n = 0usize;
    let mut domain = 1u128;
    while domain < MIN_DOMAIN as u128 {
        domain *= radix as u128;
        n += 1;
    }
    n
}

/// An FF1 cipher bound to one key, domain and format.
pub struct Fpe {
    ff1: FF1<Aes256>,
    tweak: Vec<u8>,
    alphabet: Vec<char>,
    /// Numeral of each ASCII character (u32::MAX: not in the alphabet).
    ascii: [u32; 128],
    others: std::collections::HashMap<char, u32>,
    separators: Vec<char>,
    keep_first: usize,
    keep_last: usize,
    luhn: bool,
    on_invalid: OnInvalid,
    min_len: usize,
}

impl std::fmt::Debug for Fpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fpe")
            .field("radix", &self.alphabet.len())
            .field("keep_first", &self.keep_first)
            .field("keep_last", &self.keep_last)
            .field("luhn", &self.luhn)
            .finish_non_exhaustive()
    }
}

/// Why one value could not be enciphered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invalid {
    OutsideAlphabet,
    TooShort,
    NotLuhn,
    TooLong,
}

impl Fpe {
    pub fn new(key: &Key, spec: &FpeSpec) -> KernelResult<Self> {
        check_alphabet(&spec.characters, &spec.separators, spec.luhn)
            .map_err(KernelError::Parameter)?;
        let alphabet: Vec<char> = spec.characters.chars().collect();
        let subkey = key.subkey("fpe", &spec.domain);
        let ff1 = FF1::<Aes256>::new(subkey.as_ref(), alphabet.len() as u32)
            .map_err(|_| KernelError::Parameter("FF1 radix out of range".into()))?;
        let mut ascii = [u32::MAX; 128];
        let mut others = std::collections::HashMap::new();
        for (i, c) in alphabet.iter().enumerate() {
            if c.is_ascii() {
                ascii[*c as usize] = i as u32;
            } else {
                others.insert(*c, i as u32);
            }
        }
        Ok(Fpe {
            ff1,
            tweak: spec.domain.as_bytes().to_vec(),
            min_len: min_length(alphabet.len()),
            alphabet,
            ascii,
            others,
            separators: spec.separators.chars().collect(),
            keep_first: spec.keep_first,
            keep_last: spec.keep_last,
            luhn: spec.luhn,
            on_invalid: spec.on_invalid,
        })
    }

    /// Strings and values with a canonical string (integers, dates) are accepted; the
    /// output is text of the same length.
    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        if has_canonical_string(super::value_type(input)) {
            Ok(DataType::Utf8)
        } else {
            Err(KernelError::UnsupportedType {
                action: "fpe",
                data_type: input.clone(),
                hint: "fpe accepts strings and values with a text form (integers, dates)".into(),
            })
        }
    }

    fn numeral(&self, c: char) -> Option<u32> {
        let n = if c.is_ascii() {
            self.ascii[c as usize]
        } else {
            *self.others.get(&c)?
        };
        (n != u32::MAX).then_some(n)
    }

    /// Encipher (`decrypt == false`) or decipher one value into `out`.
    fn transform_into(&self, value: &str, decrypt: bool, out: &mut String) -> Result<(), Invalid> {
        if value.is_empty() {
            return Ok(());
        }
        // Positions (char index) and numerals of the alphabet characters.
        let chars: Vec<char> = value.chars().take(MAX_CHARS + 1).collect();
        if chars.len() > MAX_CHARS {
            return Err(Invalid::TooLong);
        }
        let mut positions = Vec::with_capacity(chars.len());
        let mut numerals: Vec<u16> = Vec::with_capacity(chars.len());
        for (i, c) in chars.iter().enumerate() {
            if self.separators.contains(c) {
                continue;
            }
            let n = self.numeral(*c).ok_or(Invalid::OutsideAlphabet)?;
            positions.push(i);
            numerals.push(n as u16);
        }
        let m = numerals.len();
        let kept = self.keep_first.saturating_add(self.keep_last);
        if kept >= m {
            return Err(Invalid::TooShort);
        }
        let (start, mut end) = (self.keep_first, m - self.keep_last);
        if self.luhn {
            if !decrypt && !luhn_valid(&numerals) {
                return Err(Invalid::NotLuhn);
            }
            // The last enciphered position is recomputed, not enciphered.
            end -= 1;
        }
        if end - start < self.min_len {
            return Err(Invalid::TooShort);
        }
        let middle = FlexibleNumeralString::from(numerals[start..end].to_vec());
        let done = if decrypt {
            self.ff1.decrypt(&self.tweak, &middle)
        } else {
            self.ff1.encrypt(&self.tweak, &middle)
        }
        .map_err(|_| Invalid::TooShort)?;
        let done: Vec<u16> = done.into();
        numerals[start..end].copy_from_slice(&done);
        if self.luhn {
            numerals[end] = luhn_fix(&numerals, end);
        }
        let mut next = positions.iter().zip(&numerals).peekable();
        for (i, c) in chars.iter().enumerate() {
            match next.peek() {
                Some((p, n)) if **p == i => {
                    out.push(self.alphabet[**n as usize]);
                    next.next();
                }
                _ => out.push(*c),
            }
        }
        Ok(())
    }

    /// Encipher (or decipher) a whole array; the result is `Utf8` with the same nulls.
    pub fn apply_direction(&self, array: &ArrayRef, decrypt: bool) -> KernelResult<ArrayRef> {
        Self::output_type(array.data_type())?;
        let plain = super::plain(array)?;
        let strings = canonical_strings(&plain)?;
        if !decrypt {
            super::encrypt::refuse_unrestorable(&plain, &strings)?;
        }
        let mut counts = [0usize; 4];
        let mut tmp = String::new();
        let null = self.on_invalid == OnInvalid::Null;
        let out = map_strings(
            strings.as_ref(),
            super::string_bytes(strings.as_ref()),
            |v, out| {
                tmp.clear();
                match self.transform_into(v, decrypt, &mut tmp) {
                    Ok(()) => out.append_value(&tmp),
                    Err(why) => {
                        counts[why as usize] += 1;
                        out.append_null();
                    }
                }
                Ok(())
            },
        )?;
        let [outside, short, not_luhn, long] = counts;
        if !null && outside + short + not_luhn + long > 0 {
            let mut why = Vec::new();
            if outside > 0 {
                why.push(format!(
                    "{outside} with characters outside the alphabet and `separators`"
                ));
            }
            if short > 0 {
                why.push(format!(
                    "{short} too short: FF1 needs at least {} enciphered characters of this \
                     alphabet (NIST SP 800-38G: radix^length ≥ 1,000,000{})",
                    self.min_len,
                    if self.luhn {
                        ", plus the Luhn digit"
                    } else {
                        ""
                    }
                ));
            }
            if not_luhn > 0 {
                why.push(format!("{not_luhn} failing the Luhn check"));
            }
            if long > 0 {
                why.push(format!("{long} longer than {MAX_CHARS} characters"));
            }
            return Err(KernelError::Value(format!(
                "{} value(s) cannot be {}: {}. Values are not shown; set `on_invalid: null` to \
                 write null for them",
                outside + short + not_luhn + long,
                if decrypt {
                    "deciphered"
                } else {
                    "enciphered with FF1"
                },
                why.join(", ")
            )));
        }
        Ok(out)
    }

    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        self.apply_direction(array, false)
    }

    /// One value, enciphered (tests, the SQL function on literals).
    pub fn encrypt_str(&self, value: &str) -> KernelResult<String> {
        self.one(value, false)
    }

    /// One value, deciphered.
    pub fn decrypt_str(&self, value: &str) -> KernelResult<String> {
        self.one(value, true)
    }

    fn one(&self, value: &str, decrypt: bool) -> KernelResult<String> {
        let mut out = String::new();
        self.transform_into(value, decrypt, &mut out)
            .map_err(|w| KernelError::Value(format!("the value cannot be transformed ({w:?})")))?;
        Ok(out)
    }
}

/// Luhn weight of a digit at `from_right` places from the end (0 = the check digit).
fn luhn_term(d: u16, from_right: usize) -> u32 {
    let d = u32::from(d);
    if from_right % 2 == 1 {
        let x = d * 2;
        if x > 9 { x - 9 } else { x }
    } else {
        d
    }
}

fn luhn_valid(digits: &[u16]) -> bool {
    let n = digits.len();
    digits
        .iter()
        .enumerate()
        .fold(0u32, |a, (i, d)| (a + luhn_term(*d, n - 1 - i)) % 10)
        == 0
}

/// The digit at `at` that makes `digits` pass the Luhn check (there is exactly one: the
/// doubling map is a permutation of 0–9).
fn luhn_fix(digits: &[u16], at: usize) -> u16 {
    let n = digits.len();
    let rest: u32 = digits
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .fold(0u32, |a, (i, d)| (a + luhn_term(*d, n - 1 - i)) % 10);
    (0..10u16)
        .find(|d| (rest + luhn_term(*d, n - 1 - at)).is_multiple_of(10))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{string_arrays, strings};
    use crate::keys::Keyring;
    use std::sync::Arc;

    fn spec(alphabet: &str) -> FpeSpec {
        FpeSpec {
            key: "k1".into(),
            domain: "card".into(),
            alphabet: alphabet.into(),
            characters: named_alphabet(alphabet).unwrap().into(),
            separators: String::new(),
            keep_first: 0,
            keep_last: 0,
            luhn: false,
            on_invalid: OnInvalid::Error,
        }
    }

    fn nist(key_hex: &str, radix: u32, tweak_hex: &str, pt: &[u16]) -> Vec<u16> {
        let key = hex::decode(key_hex).unwrap();
        let tweak = hex::decode(tweak_hex).unwrap();
        let ct = if key.len() == 32 {
            FF1::<Aes256>::new(&key, radix)
                .unwrap()
                .encrypt(&tweak, &FlexibleNumeralString::from(pt.to_vec()))
                .unwrap()
        } else {
            FF1::<aes_gcm::aes::Aes128>::new(&key, radix)
                .unwrap()
                .encrypt(&tweak, &FlexibleNumeralString::from(pt.to_vec()))
                .unwrap()
        };
        ct.into()
    }

    fn numerals(s: &str) -> Vec<u16> {
        s.chars().map(|c| c.to_digit(36).unwrap() as u16).collect()
    }

    /// NIST's FF1 samples (SP 800-38G examples, FF1samples.pdf), AES-128 and AES-256.
    #[test]
    fn nist_ff1_samples() {
        let k128 = "2b7e151628aed2a6abf7158809cf4f3c";
        let k256 = "2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f7f036d6f04fc6a94";
        let t = "3737373770717273373737";
        assert_eq!(
            nist(k128, 10, "", &numerals("0123456789")),
            numerals("2433477484")
        );
        assert_eq!(
            nist(k128, 10, "39383736353433323130", &numerals("0123456789")),
            numerals("6124200773")
        );
        assert_eq!(
            nist(k128, 36, t, &numerals("0123456789abcdefghi")),
            numerals("a9tv40mll9kdu509eum")
        );
        assert_eq!(
            nist(k256, 10, "", &numerals("0123456789")),
            numerals("6657667009")
        );
        assert_eq!(
            nist(k256, 10, "39383736353433323130", &numerals("0123456789")),
            numerals("1001623463")
        );
        assert_eq!(
            nist(k256, 36, t, &numerals("0123456789abcdefghi")),
            numerals("xs8a0azh2avyalyzuwd")
        );
    }

    #[test]
    fn length_separators_and_kept_digits_survive_and_decrypt_restores() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let mut s = spec("digits");
        s.separators = " -".into();
        s.keep_last = 4;
        let f = Fpe::new(ring.get("k1").unwrap(), &s).unwrap();
        let card = "4111 1111-1111 1111";
        let enc = f.encrypt_str(card).unwrap();
        assert_eq!(enc.len(), card.len());
        assert_eq!(&enc[4..5], " ");
        assert_eq!(&enc[9..10], "-");
        assert!(enc.ends_with(" 1111"));
        assert_ne!(enc, card);
        assert_eq!(f.encrypt_str(card).unwrap(), enc, "deterministic");
        assert_eq!(f.decrypt_str(&enc).unwrap(), card);
    }

    #[test]
    fn luhn_is_kept_and_restored() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let mut s = spec("digits");
        s.keep_last = 4;
        s.luhn = true;
        let f = Fpe::new(ring.get("k1").unwrap(), &s).unwrap();
        for card in [
            "4111111111111111",
            "5500005555555559",
            "378282246310005",
            "6011000990139424",
        ] {
            let d: Vec<u16> = numerals(card);
            assert!(luhn_valid(&d), "{card}");
            let enc = f.encrypt_str(card).unwrap();
            assert!(luhn_valid(&numerals(&enc)), "{enc}");
            assert_eq!(&enc[enc.len() - 4..], &card[card.len() - 4..]);
            assert_eq!(f.decrypt_str(&enc).unwrap(), card);
        }
        // A number failing the check is refused (it could not be restored).
        let arr: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["4111111111111112"]));
        let e = f.apply(&arr).unwrap_err().to_string();
        assert!(
            e.contains("1 failing the Luhn check") && !e.contains("4111"),
            "{e}"
        );
    }

    #[test]
    fn every_string_type_with_nulls_empty_unicode_alphabet() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let mut s = spec("digits");
        s.characters = "〇一二三四五六七八九".into();
        s.alphabet = "custom".into();
        let f = Fpe::new(ring.get("k1").unwrap(), &s).unwrap();
        let values = [Some("一二三四五六七八"), None, Some("")];
        for arr in string_arrays(&values) {
            let out = strings(&f.apply(&arr).unwrap());
            let enc = out[0].clone().unwrap();
            assert_eq!(enc.chars().count(), 8);
            assert!(enc.chars().all(|c| s.characters.contains(c)));
            assert_eq!(out[1], None);
            assert_eq!(out[2].as_deref(), Some(""));
            assert_eq!(f.decrypt_str(&enc).unwrap(), "一二三四五六七八");
        }
    }

    #[test]
    fn small_domains_and_strangers_are_refused_or_nulled_counting_not_showing() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let s = spec("digits");
        assert_eq!(min_length(10), 6);
        assert_eq!(min_length(36), 4);
        assert_eq!(min_length(2), 20);
        let f = Fpe::new(ring.get("k1").unwrap(), &s).unwrap();
        let arr: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            Some("12345"),
            Some("98765x"),
            Some("123456"),
            None,
        ]));
        let e = f.apply(&arr).unwrap_err().to_string();
        assert!(
            e.contains("2 value(s)")
                && e.contains("1 too short")
                && e.contains("1 with characters outside"),
            "{e}"
        );
        assert!(!e.contains("12345") && !e.contains("98765"), "{e}");
        let mut s = s;
        s.on_invalid = OnInvalid::Null;
        let f = Fpe::new(ring.get("k1").unwrap(), &s).unwrap();
        let out = strings(&f.apply(&arr).unwrap());
        assert_eq!(out[0], None);
        assert_eq!(out[1], None);
        assert_eq!(out[2].as_ref().map(String::len), Some(6));
        assert_eq!(out[3], None);
    }

    #[test]
    fn an_overlong_value_is_refused_before_any_work() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let f = Fpe::new(ring.get("k1").unwrap(), &spec("digits")).unwrap();
        let arr: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            "7".repeat(MAX_CHARS + 1),
        ]));
        let e = f.apply(&arr).unwrap_err().to_string();
        assert!(
            e.contains("1 longer than 4096 characters") && !e.contains("777"),
            "{e}"
        );
        assert!(f.encrypt_str(&"7".repeat(MAX_CHARS)).is_ok());
    }

    #[test]
    fn bad_alphabets_are_refused() {
        assert!(check_alphabet("0", "", false).is_err());
        assert!(
            check_alphabet("0120", "", false)
                .unwrap_err()
                .contains("repeats")
        );
        assert!(
            check_alphabet("0123456789", "0", false)
                .unwrap_err()
                .contains("separator")
        );
        assert!(
            check_alphabet("0123456789abcdef", "", true)
                .unwrap_err()
                .contains("digits")
        );
        assert!(check_alphabet("0123456789", "- ", true).is_ok());
    }

    #[test]
    fn dictionary_and_sliced_arrays_match_plain_ones() {
        use arrow::array::{DictionaryArray, StringArray, types::Int32Type};
        let ring = Keyring::generate_in_memory(&["k1"]);
        let f = Fpe::new(ring.get("k1").unwrap(), &spec("alphanumeric")).unwrap();
        let vals = vec![
            Some("AbC123xyz"),
            None,
            Some("Zz0Zz0Zz0"),
            Some("AbC123xyz"),
        ];
        let flat: ArrayRef = Arc::new(StringArray::from(vals.clone()));
        let dict: ArrayRef = Arc::new(vals.into_iter().collect::<DictionaryArray<Int32Type>>());
        let a = strings(&f.apply(&flat).unwrap());
        assert_eq!(a, strings(&f.apply(&dict).unwrap()));
        assert_eq!(a[0], a[3]);
        assert_eq!(
            strings(&f.apply(&flat.slice(2, 2)).unwrap()),
            a[2..].to_vec()
        );
    }
}
