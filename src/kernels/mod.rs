//! Transform kernels over whole Arrow arrays.
//!
//! Each kernel is built once (keys derived, parameters checked against the input type) and then
//! applied to array after array. The `apply` engine and the SQL functions call these same
//! kernels: there is one implementation per transform.
//!
//! Nulls stay null in every kernel. Strings are read in place from `Utf8`, `LargeUtf8` and
//! `Utf8View` arrays; other types are first turned into their canonical strings
//! (see [`canonical_strings`]) where a kernel works on text.

pub mod custom;
pub mod descriptor;
pub mod encrypt;
pub mod fpe;
pub mod generalize;
pub mod mask;
pub mod redact;
pub mod scrub;
pub mod siv;
pub mod subject;
pub mod tokenize;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::compute::CastOptions;
use arrow::datatypes::DataType;
use arrow::util::display::FormatOptions;

use crate::error::Problem;

pub use encrypt::{Decryptor, Encryptor};
pub use fpe::{Fpe, FpeSpec};
pub use generalize::Generalizer;
pub use mask::Masker;
pub use redact::Redactor;
pub use scrub::Scrubber;
pub use siv::SivEncryptor;
pub use subject::{DateShifter, Noiser};
pub use tokenize::Tokenizer;

/// Errors from building or applying a kernel. The message never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The kernel does not accept this input type.
    #[error("{action} does not accept a column of type {data_type}: {hint}")]
    UnsupportedType {
        action: &'static str,
        data_type: DataType,
        hint: String,
    },
    /// A parameter does not fit the column (e.g. a fractional bin width on an integer column).
    #[error("{0}")]
    Parameter(String),
    /// A value could not be transformed (e.g. an envelope that fails authentication).
    #[error("{0}")]
    Value(String),
    /// Shown without arrow's own text, which quotes the value that failed.
    #[error("{}", arrow_message(.0))]
    Arrow(#[from] arrow::error::ArrowError),
}

/// An arrow error as a message without data: cast, parse and range errors name the value.
fn arrow_message(e: &arrow::error::ArrowError) -> String {
    use arrow::error::ArrowError as A;
    match e {
        A::CastError(_) => "a value cannot be converted (it is out of range or malformed for \
                            the target type)"
            .into(),
        A::ParseError(_) => "a value could not be parsed".into(),
        A::InvalidArgumentError(_) => {
            "a result does not fit the column's type (e.g. a decimal bin bound beyond its \
             precision)"
                .into()
        }
        A::ComputeError(_) | A::ArithmeticOverflow(_) => {
            "a computation on a value overflowed or failed".into()
        }
        other => other.to_string(),
    }
}

pub type KernelResult<T> = std::result::Result<T, KernelError>;

/// The type a kernel works on: a dictionary's value type (Parquet files written from
/// categorical columns read back as dictionaries), else the type itself.
pub fn value_type(dt: &DataType) -> &DataType {
    match dt {
        DataType::Dictionary(_, v) => v.as_ref(),
        other => other,
    }
}

/// A dictionary-encoded array as a plain array of its value type (null keys, null values
/// and slices kept); other arrays as they are.
pub fn plain(array: &ArrayRef) -> KernelResult<ArrayRef> {
    match array.data_type() {
        DataType::Dictionary(_, v) => Ok(arrow::compute::cast(array, v)?),
        _ => Ok(Arc::clone(array)),
    }
}

/// Is `dt` one of the three Arrow string types?
pub fn is_string_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Types whose values have a canonical string (see docs/FORMATS.md).
pub fn has_canonical_string(dt: &DataType) -> bool {
    is_string_type(dt)
        || dt.is_integer()
        || dt.is_floating()
        || matches!(
            dt,
            DataType::Boolean
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _)
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(_, _)
        )
}

/// `Utf8` for a type with a canonical string (what the keyed transforms read), else why not.
pub(crate) fn canonical_output(action: &'static str, input: &DataType) -> KernelResult<DataType> {
    if has_canonical_string(value_type(input)) {
        Ok(DataType::Utf8)
    } else {
        Err(KernelError::UnsupportedType {
            action,
            data_type: input.clone(),
            hint: format!(
                "{action} accepts strings, integers, floats, decimals, booleans, dates and timestamps"
            ),
        })
    }
}

/// The canonical strings of an array's values: string arrays are returned as they are;
/// other types are cast to `Utf8` with Arrow's display rules (ISO-8601 dates and timestamps).
pub fn canonical_strings(array: &ArrayRef) -> KernelResult<ArrayRef> {
    if is_string_type(array.data_type()) {
        return Ok(Arc::clone(array));
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    Ok(arrow::compute::cast_with_options(
        array,
        &DataType::Utf8,
        &options,
    )?)
}

/// Calls `f(index, value)` for every non-null value of a string array (any of the three types).
/// `f` writes the output value into the builder; nulls become nulls.
pub(crate) fn map_strings<F>(
    array: &dyn Array,
    bytes_hint: usize,
    mut f: F,
) -> KernelResult<ArrayRef>
where
    F: FnMut(&str, &mut StringBuilder) -> KernelResult<()>,
{
    let mut out = StringBuilder::with_capacity(array.len(), bytes_hint);
    macro_rules! run {
        ($arr:expr) => {{
            let arr = $arr;
            for i in 0..arr.len() {
                if arr.is_null(i) {
                    out.append_null();
                } else {
                    let v = arr.value(i);
                    room_for(out.values_slice().len(), v.len())?;
                    f(v, &mut out)?;
                }
            }
        }};
    }
    match array.data_type() {
        DataType::Utf8 => run!(array.as_string::<i32>()),
        DataType::LargeUtf8 => run!(array.as_string::<i64>()),
        DataType::Utf8View => run!(array.as_string_view()),
        other => {
            return Err(KernelError::Parameter(format!(
                "internal: expected a string array, got {other}"
            )));
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Refuse to append a value that could take a `Utf8` array past its 2 GiB offset limit
/// (arrow panics there): `written` bytes so far, the next input value `len` bytes long, its
/// output at most 4× that (a mask character is 3 bytes, an envelope ~1.4× plus a header).
pub(crate) fn room_for(written: usize, len: usize) -> KernelResult<()> {
    let worst = len.saturating_mul(4).saturating_add(1024).max(64 << 20);
    if written.saturating_add(worst) > i32::MAX as usize {
        return Err(KernelError::Parameter(
            "one batch of this column would pass 2 GiB of text; lower --batch-size".into(),
        ));
    }
    Ok(())
}

/// Refuse to append `len` more bytes when they would take a `Utf8` array past its 2 GiB
/// offset limit (for kernels that build a value before appending it).
pub(crate) fn fits(written: usize, len: usize) -> KernelResult<()> {
    if written.saturating_add(len) > i32::MAX as usize {
        return Err(KernelError::Parameter(
            "one batch of this column would pass 2 GiB of text; lower --batch-size".into(),
        ));
    }
    Ok(())
}

/// Total bytes of string data in a string array (for output capacity hints).
pub(crate) fn string_bytes(array: &dyn Array) -> usize {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().values().len(),
        DataType::LargeUtf8 => array.as_string::<i64>().values().len(),
        DataType::Utf8View => array
            .as_string_view()
            .views()
            .iter()
            .map(|v| (*v as u32) as usize)
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use arrow::array::{LargeStringArray, StringArray, StringViewArray};

    /// The same optional strings as Utf8, LargeUtf8 and Utf8View arrays.
    pub fn string_arrays(values: &[Option<&str>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from(values.to_vec())),
            Arc::new(LargeStringArray::from(values.to_vec())),
            Arc::new(StringViewArray::from(values.to_vec())),
        ]
    }

    pub fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        let a = canonical_strings(array).unwrap();
        let a = arrow::compute::cast(&a, &DataType::Utf8).unwrap();
        a.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }
}

/// The canonical strings of `array` as a `Utf8` array.
pub fn utf8(array: &ArrayRef) -> Result<ArrayRef, Problem> {
    let s = canonical_strings(array).map_err(|e| Problem(e.to_string()))?;
    if s.data_type() == &arrow::datatypes::DataType::Utf8 {
        Ok(s)
    } else {
        arrow::compute::cast(&s, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| Problem(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_batch_that_would_pass_2_gib_of_text_is_an_error_not_a_panic() {
        assert!(super::room_for(0, 100).is_ok());
        assert!(super::room_for(i32::MAX as usize - (32 << 20), 10).is_err());
        assert!(super::room_for(1 << 30, 300 << 20).is_err());
        assert!(super::fits(i32::MAX as usize - 10, 10).is_ok());
        assert!(super::fits(i32::MAX as usize - 10, 11).is_err());
        assert!(super::fits(usize::MAX, 1).is_err());
    }

    use super::*;
    use arrow::array::*;
    use arrow::datatypes::TimeUnit;

    #[test]
    fn canonical_strings_of_each_type() {
        let cases: Vec<(ArrayRef, Vec<Option<&str>>)> = vec![
            (
                Arc::new(Int64Array::from(vec![Some(-42), None, Some(0)])),
                vec![Some("-42"), None, Some("0")],
            ),
            (Arc::new(UInt8Array::from(vec![255])), vec![Some("255")]),
            (
                Arc::new(Float64Array::from(vec![1.5, 1.0, -0.25])),
                vec![Some("1.5"), Some("1.0"), Some("-0.25")],
            ),
            (
                Arc::new(BooleanArray::from(vec![Some(true), Some(false)])),
                vec![Some("true"), Some("false")],
            ),
            (
                Arc::new(Date32Array::from(vec![19723])),
                vec![Some("2024-01-01")],
            ),
            (
                Arc::new(
                    Decimal128Array::from(vec![123456])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                vec![Some("1234.56")],
            ),
            (
                Arc::new(TimestampSecondArray::from(vec![1_704_067_200])),
                vec![Some("2024-01-01T00:00:00")],
            ),
            (
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_704_067_200_000_001])
                        .with_timezone("+00:00"),
                ),
                vec![Some("2024-01-01T00:00:00.000001Z")],
            ),
        ];
        for (arr, want) in cases {
            let got = test_util::strings(&arr);
            let want: Vec<Option<String>> = want.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(got, want, "for {}", arr.data_type());
            assert!(has_canonical_string(arr.data_type()));
        }
        assert!(!has_canonical_string(&DataType::Time64(
            TimeUnit::Microsecond
        )));
    }
}
