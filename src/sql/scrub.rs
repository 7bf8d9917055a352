//! `scrub(value [, replace_with [, key_id [, recognizers]]])`: replace the personal data that
//! the recognizers find inside free text.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{KeyringRef, apply_to_value, check_arity, exec_error, literal_string, plan_error};
use crate::kernels::Scrubber;
use crate::kernels::scrub::ScrubMode;
use crate::recognizers::RecognizerSet;

const USAGE: &str = "scrub(value [, 'placeholder'|'token'|'mask' [, key_id [, 'recognizer,...']]])";

/// Replace every entity the built-in recognizers find (emails, phone numbers, ID numbers,
/// cards, IBANs, IP addresses, ...) and keep the text around them. The same kernel as the
/// policy action `scrub`; tokens equal `tokenize(entity, key_id, <recognizer name>)`.
///
/// ```sql
/// SELECT scrub(notes) FROM t;                              -- 'call <PHONE> or <EMAIL>'
/// SELECT scrub(notes, 'mask') FROM t;                      -- 'call **************** or ...'
/// SELECT scrub(notes, 'token', 'k1') FROM t;               -- keyed tokens, domain = recognizer
/// SELECT scrub(notes, 'placeholder', NULL, 'email') FROM t; -- emails only
/// ```
#[derive(Debug)]
pub struct ScrubFunc {
    signature: Signature,
    keyring: KeyringRef,
    set: Arc<RecognizerSet>,
}

impl PartialEq for ScrubFunc {
    fn eq(&self, other: &Self) -> bool {
        self.keyring == other.keyring && Arc::ptr_eq(&self.set, &other.set)
    }
}
impl Eq for ScrubFunc {}
impl Hash for ScrubFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.keyring.hash(state);
        (Arc::as_ptr(&self.set) as usize).hash(state);
    }
}

impl ScrubFunc {
    pub fn new(keyring: KeyringRef, set: Arc<RecognizerSet>) -> Self {
        ScrubFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
            keyring,
            set,
        }
    }

    fn scrubber(&self, scalars: &[Option<&ScalarValue>], at_plan: bool) -> DFResult<Scrubber> {
        let f = "scrub";
        let err = |m: String| {
            if at_plan {
                plan_error(f, m)
            } else {
                exec_error(f, m)
            }
        };
        let arg = |i: usize, what: &str| match scalars.get(i) {
            None => Ok(None),
            Some(s) => literal_string(f, i + 1, what, *s),
        };
        let mode = arg(1, "replace_with")?.unwrap_or_else(|| "placeholder".into());
        let key = arg(2, "key_id")?;
        let names: Option<Vec<String>> = arg(3, "recognizers")?.map(|s| {
            s.split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        });
        let mode = match mode.as_str() {
            "placeholder" => ScrubMode::Placeholder,
            "mask" => ScrubMode::Mask {
                mask_char: '*',
                keep_first: 0,
                keep_last: 0,
            },
            "token" => ScrubMode::Token {
                key: key.ok_or_else(|| {
                    err(
                        "argument 3 (key_id) is needed with 'token'; name a key of the keyring"
                            .into(),
                    )
                })?,
                domains: BTreeMap::new(),
                length: 32,
                prefix: String::new(),
            },
            other => {
                return Err(err(format!(
                    "argument 2 (replace_with) is {other:?}; use 'placeholder', 'token' or 'mask'"
                )));
            }
        };
        Scrubber::new(&self.set, names.as_deref(), &mode, &self.keyring.0)
            .map_err(|e| err(e.to_string()))
    }
}

impl ScalarUDFImpl for ScrubFunc {
    fn name(&self) -> &str {
        "scrub"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        check_arity(self.name(), arg_types.len(), 1, 4, USAGE)?;
        if arg_types[0] != DataType::Null {
            Scrubber::output_type(&arg_types[0])
                .map_err(|e| plan_error(self.name(), format!("argument 1 (value): {e}")))?;
        }
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        self.return_type(&types)?;
        self.scrubber(args.scalar_arguments, true)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let s = self.scrubber(&refs, false)?;
        apply_to_value(self.name(), &args.args[0], &DataType::Utf8, |v| s.apply(v))
    }
}
