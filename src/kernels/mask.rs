//! `mask`: hide characters, keeping the first and/or last few.
//!
//! Characters are user-perceived characters (extended grapheme clusters), so `é` written as
//! `e` + combining accent, or a flag emoji, counts as one. Output keeps the value's length in
//! characters. When `keep_first + keep_last` would reveal the whole value, every character is
//! masked: masking never returns a value unchanged.

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use unicode_segmentation::UnicodeSegmentation;

use super::{KernelError, KernelResult, canonical_strings, is_string_type, map_strings};

/// Masks values with fixed parameters.
#[derive(Debug, Clone)]
pub struct Masker {
    pub keep_first: usize,
    pub keep_last: usize,
    pub mask_char: char,
}

impl Masker {
    pub fn new(keep_first: usize, keep_last: usize, mask_char: char) -> Self {
        Masker {
            keep_first,
            keep_last,
            mask_char,
        }
    }

    /// Strings, integers and decimals (e.g. phone numbers stored as integers) are accepted.
    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        let input = super::value_type(input);
        if is_string_type(input)
            || input.is_integer()
            || matches!(input, DataType::Decimal128(..) | DataType::Decimal256(..))
        {
            Ok(DataType::Utf8)
        } else {
            Err(KernelError::UnsupportedType {
                action: "mask",
                data_type: input.clone(),
                hint: "mask accepts strings, integers and decimals; use generalize for dates and numbers".into(),
            })
        }
    }

    /// Mask one value into `out`.
    pub fn mask_into(&self, value: &str, out: &mut String) {
        let (kf, kl) = (self.keep_first, self.keep_last);
        // Saturating: huge parameters (from SQL or a library caller) must mask everything,
        // never wrap around and reveal the value.
        let kept = kf.saturating_add(kl);
        // In ASCII every byte is one grapheme, except CR LF (one cluster, UAX #29 GB3).
        if value.is_ascii() && !value.contains("\r\n") {
            let n = value.len();
            if kept >= n {
                out.extend(std::iter::repeat_n(self.mask_char, n));
            } else {
                out.push_str(&value[..kf]);
                out.extend(std::iter::repeat_n(self.mask_char, n - kf - kl));
                out.push_str(&value[n - kl..]);
            }
            return;
        }
        let n = value.graphemes(true).count();
        if kept >= n {
            out.extend(std::iter::repeat_n(self.mask_char, n));
            return;
        }
        for (i, g) in value.graphemes(true).enumerate() {
            if i < kf || i >= n - kl {
                out.push_str(g);
            } else {
                out.push(self.mask_char);
            }
        }
    }

    /// Mask one string.
    pub fn mask(&self, value: &str) -> String {
        let mut s = String::with_capacity(value.len());
        self.mask_into(value, &mut s);
        s
    }

    /// Mask a whole array; the result is `Utf8` with the same nulls.
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        Self::output_type(array.data_type())?;
        let strings = canonical_strings(&super::plain(array)?)?;
        let hint = super::string_bytes(strings.as_ref()) * self.mask_char.len_utf8();
        let mut tmp = String::new();
        map_strings(strings.as_ref(), hint, |v, out| {
            tmp.clear();
            self.mask_into(v, &mut tmp);
            out.append_value(&tmp);
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

    #[test]
    fn keeps_last_four_on_every_string_type() {
        let m = Masker::new(0, 4, '*');
        let values = [Some("+86 138 0013 8000"), None, Some(""), Some("123")];
        for arr in string_arrays(&values) {
            let out = strings(&m.apply(&arr).unwrap());
            assert_eq!(
                out,
                vec![
                    Some("*************8000".into()),
                    None,
                    Some("".into()),
                    Some("***".into())
                ]
            );
        }
    }

    #[test]
    fn unicode_graphemes_count_as_one() {
        let m = Masker::new(1, 1, '•');
        assert_eq!(m.mask("张伟明"), "张•明");
        assert_eq!(m.mask("e\u{301}abc"), "e\u{301}••c");
        assert_eq!(m.mask("🇨🇳🇪🇺🇫🇷"), "🇨🇳•🇫🇷");
        assert_eq!(m.mask("ab"), "••", "never reveals the whole value");
    }

    #[test]
    fn huge_parameters_mask_everything_instead_of_wrapping() {
        // keep_first + keep_last used to wrap to 0 or 1: ASCII panicked (printing the value),
        // non-ASCII came out in clear.
        for (kf, kl) in [(usize::MAX, 1), (1, usize::MAX), (usize::MAX, usize::MAX)] {
            let m = Masker::new(kf, kl, '*');
            assert_eq!(m.mask("secret"), "******");
            assert_eq!(m.mask("张伟明"), "***");
            assert_eq!(m.mask(""), "");
        }
    }

    #[test]
    fn integers_and_rejects_dates() {
        let m = Masker::new(0, 2, '#');
        let arr: ArrayRef = Arc::new(Int64Array::from(vec![Some(13800138000), None]));
        assert_eq!(
            strings(&m.apply(&arr).unwrap()),
            vec![Some("#########00".into()), None]
        );
        let d: ArrayRef = Arc::new(Date32Array::from(vec![1]));
        assert!(m.apply(&d).is_err());
    }
}
