//! `mask(value, keep_first, keep_last [, mask_char])` and `redact(value [, replacement])`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{apply_to_value, check_arity, exec_error, literal_int, literal_string, plan_error};
use crate::kernels::{Masker, Redactor};

/// Hide all but the first `keep_first` and last `keep_last` characters (grapheme clusters).
///
/// ```sql
/// SELECT mask(phone, 0, 4) FROM customers;        -- '*************8000'
/// SELECT mask(name, 1, 0, '•') FROM customers;    -- 'Z••'
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskFunc {
    signature: Signature,
}

/// Replace every non-null value with null, or with `replacement` (converted to the column type).
///
/// ```sql
/// SELECT redact(notes) FROM t;                 -- NULL
/// SELECT redact(notes, '[removed]') FROM t;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RedactFunc {
    signature: Signature,
}

impl Default for MaskFunc {
    fn default() -> Self {
        Self::new()
    }
}
impl Default for RedactFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskFunc {
    pub fn new() -> Self {
        MaskFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl RedactFunc {
    pub fn new() -> Self {
        RedactFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn mask_args(scalars: &[Option<&ScalarValue>]) -> DFResult<Masker> {
    let f = "mask";
    let count = |pos: usize, what: &str| -> DFResult<usize> {
        let v = literal_int(f, pos, what, scalars.get(pos - 1).copied().flatten())?.unwrap_or(0);
        usize::try_from(v).map_err(|_| {
            plan_error(
                f,
                format!("argument {pos} ({what}) is {v}; it must be 0 or more"),
            )
        })
    };
    let keep_first = count(2, "keep_first")?;
    let keep_last = count(3, "keep_last")?;
    let mask_char = match scalars.get(3) {
        None => '*',
        Some(s) => {
            let text = literal_string(f, 4, "mask_char", *s)?.unwrap_or_else(|| "*".into());
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => c,
                _ => {
                    return Err(plan_error(
                        f,
                        format!(
                            "argument 4 (mask_char) must be one printable character, got {text:?}"
                        ),
                    ));
                }
            }
        }
    };
    Ok(Masker::new(keep_first, keep_last, mask_char))
}

impl ScalarUDFImpl for MaskFunc {
    fn name(&self) -> &str {
        "mask"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        check_arity(
            self.name(),
            arg_types.len(),
            3,
            4,
            "mask(value, keep_first, keep_last [, mask_char])",
        )?;
        if arg_types[0] != DataType::Null {
            Masker::output_type(&arg_types[0])
                .map_err(|e| plan_error(self.name(), format!("argument 1 (value): {e}")))?;
        }
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        self.return_type(&types)?;
        mask_args(args.scalar_arguments)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let m = mask_args(&refs)?;
        apply_to_value(self.name(), &args.args[0], &DataType::Utf8, |v| m.apply(v))
    }
}

fn redact_replacement(scalars: &[Option<&ScalarValue>]) -> DFResult<Option<String>> {
    match scalars.get(1) {
        None => Ok(None),
        Some(None) => Err(plan_error(
            "redact",
            "argument 2 (replacement) must be a constant",
        )),
        Some(Some(s)) if s.is_null() => Ok(None),
        Some(Some(s)) => Ok(Some(s.to_string())),
    }
}

impl ScalarUDFImpl for RedactFunc {
    fn name(&self) -> &str {
        "redact"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        check_arity(
            self.name(),
            arg_types.len(),
            1,
            2,
            "redact(value [, replacement])",
        )?;
        Ok(arg_types[0].clone())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        let out = self.return_type(&types)?;
        let replacement = redact_replacement(args.scalar_arguments)?;
        Redactor::new(&out, replacement.as_deref())
            .map_err(|e| plan_error(self.name(), format!("argument 2 (replacement): {e}")))?;
        Ok(Arc::new(Field::new(self.name(), out, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let replacement = redact_replacement(&refs)?;
        let out = args.args[0].data_type();
        let r =
            Redactor::new(&out, replacement.as_deref()).map_err(|e| exec_error(self.name(), e))?;
        apply_to_value(self.name(), &args.args[0], &out, |v| r.apply(v))
    }
}
