//! `redact`: replace every value with null, or with a constant of the column's type.
//!
//! Null inputs stay null either way, so a redacted column never invents values for rows
//! that had none.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, UInt32Array, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;

use super::{KernelError, KernelResult};

/// The longest replacement, in characters: it is written once per row, and a batch's text
/// must stay within Arrow's 2 GiB string offsets. The policy and SQL doors both meet it here.
pub const MAX_REPLACEMENT: usize = 1000;

/// Redacts to null or to a constant.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// A one-element array holding the replacement in the column's type, or `None` for null.
    constant: Option<ArrayRef>,
    data_type: DataType,
}

impl Redactor {
    /// Build for a column type; the replacement text must convert to that type.
    pub fn new(data_type: &DataType, replacement: Option<&str>) -> KernelResult<Self> {
        let constant = match replacement {
            None => None,
            Some(text) => {
                let n = text.chars().count();
                if n > MAX_REPLACEMENT {
                    return Err(KernelError::Parameter(format!(
                        "the replacement is {n} characters long; it must be at most \
                         {MAX_REPLACEMENT}"
                    )));
                }
                let src: ArrayRef = Arc::new(StringArray::from(vec![text]));
                let options = CastOptions {
                    safe: false,
                    ..Default::default()
                };
                let c = cast_with_options(&src, data_type, &options).map_err(|e| {
                    KernelError::Parameter(format!(
                        "replacement {text:?} cannot be written as {data_type}: {e}; give a value of the column's type"
                    ))
                })?;
                Some(c)
            }
        };
        Ok(Redactor {
            constant,
            data_type: data_type.clone(),
        })
    }

    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        Ok(input.clone())
    }

    /// Redact a whole array; the output has the input's type.
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        if array.data_type() != &self.data_type {
            return Err(KernelError::Parameter(format!(
                "redact was set up for {} but got {}",
                self.data_type,
                array.data_type()
            )));
        }
        match &self.constant {
            None => Ok(new_null_array(&self.data_type, array.len())),
            Some(c) => {
                // take() with null indices where the input is null keeps nulls null.
                let idx: UInt32Array = (0..array.len())
                    .map(|i| array.is_valid(i).then_some(0u32))
                    .collect();
                Ok(arrow::compute::take(c.as_ref(), &idx, None)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_util::{string_arrays, strings};
    use arrow::array::*;

    #[test]
    fn null_and_constant_on_strings_and_numbers() {
        for arr in string_arrays(&[Some("a"), None, Some("")]) {
            let r = Redactor::new(arr.data_type(), None).unwrap();
            let out = r.apply(&arr).unwrap();
            assert_eq!(out.null_count(), 3);
            assert_eq!(out.data_type(), arr.data_type());
            let r = Redactor::new(arr.data_type(), Some("[REDACTED]")).unwrap();
            assert_eq!(
                strings(&r.apply(&arr).unwrap()),
                vec![Some("[REDACTED]".into()), None, Some("[REDACTED]".into())]
            );
        }
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(5), None]));
        let r = Redactor::new(&DataType::Int32, Some("0")).unwrap();
        assert_eq!(
            strings(&r.apply(&ints).unwrap()),
            vec![Some("0".into()), None]
        );
        assert!(Redactor::new(&DataType::Int32, Some("zero")).is_err());
        let d = Redactor::new(&DataType::Date32, Some("1970-01-01")).unwrap();
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![100]));
        assert_eq!(
            strings(&d.apply(&dates).unwrap()),
            vec![Some("1970-01-01".into())]
        );
    }

    #[test]
    fn a_replacement_over_the_limit_is_refused_at_build_time() {
        let at = "é".repeat(MAX_REPLACEMENT);
        assert!(Redactor::new(&DataType::Utf8, Some(&at)).is_ok());
        let over = format!("{at}x");
        let e = Redactor::new(&DataType::Utf8, Some(&over))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1001 characters") && e.contains("at most 1000"),
            "{e}"
        );
        assert!(!e.contains("éé"), "the text is not echoed: {e}");
    }
}
