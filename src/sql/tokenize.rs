//! `tokenize(value, key_id [, domain [, length]])`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{
    KeyringRef, apply_to_value, check_arity, default_domain, exec_error, literal_int,
    literal_string, plan_error,
};
use crate::kernels::{Tokenizer, has_canonical_string};

const USAGE: &str = "tokenize(value, key_id [, domain [, length]])";

/// Keyed deterministic pseudonym, as the policy action `tokenize` (docs/FORMATS.md).
///
/// ```sql
/// SELECT tokenize(email, 'k1') FROM customers;              -- domain 'email', 32 hex chars
/// SELECT tokenize(email, 'k1', 'email', 16) FROM customers; -- explicit domain and length
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TokenizeFunc {
    signature: Signature,
    keyring: KeyringRef,
}

impl TokenizeFunc {
    pub fn new(keyring: KeyringRef) -> Self {
        TokenizeFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
            keyring,
        }
    }
}

struct Args {
    key: String,
    domain: String,
    length: usize,
}

fn parse(fields: &[FieldRef], scalars: &[Option<&ScalarValue>]) -> DFResult<Args> {
    let f = "tokenize";
    let key = literal_string(f, 2, "key_id", scalars.get(1).copied().flatten())?
        .ok_or_else(|| plan_error(f, "argument 2 (key_id) is null; name a key of the keyring"))?;
    let domain = match scalars.get(2) {
        Some(s) => literal_string(f, 3, "domain", *s)?.unwrap_or_else(|| default_domain(fields)),
        None => default_domain(fields),
    };
    let length = match scalars.get(3) {
        Some(s) => literal_int(f, 4, "length", *s)?.unwrap_or(32),
        None => 32,
    };
    if !(1..=64).contains(&length) {
        return Err(plan_error(
            f,
            format!("argument 4 (length) is {length}; use 1 to 64 hex characters"),
        ));
    }
    Ok(Args {
        key,
        domain,
        length: length as usize,
    })
}

pub(crate) fn check_value_type(function: &str, t: &DataType) -> DFResult<()> {
    if has_canonical_string(t) || t == &DataType::Null {
        Ok(())
    } else {
        Err(plan_error(
            function,
            format!(
                "argument 1 (value) has type {t}; strings, integers, floats, decimals, booleans, dates and timestamps are accepted"
            ),
        ))
    }
}

impl ScalarUDFImpl for TokenizeFunc {
    fn name(&self) -> &str {
        "tokenize"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        check_arity(self.name(), arg_types.len(), 2, 4, USAGE)?;
        check_value_type(self.name(), &arg_types[0])?;
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        self.return_type(&types)?;
        let a = parse(args.arg_fields, args.scalar_arguments)?;
        self.keyring
            .0
            .check_data_key(&a.key)
            .map_err(|e| plan_error(self.name(), e))?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let a = parse(&args.arg_fields, &refs)?;
        let key = self
            .keyring
            .0
            .deterministic_key(&a.key)
            .map_err(|e| exec_error(self.name(), e))?;
        let t =
            Tokenizer::new(key, &a.domain, a.length, "").map_err(|e| exec_error(self.name(), e))?;
        apply_to_value(self.name(), &args.args[0], &DataType::Utf8, |v| t.apply(v))
    }
}
