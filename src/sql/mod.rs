//! cloakline's transforms as DataFusion SQL functions, and a policy as a masked view.
//!
//! Every function calls the same kernel as `cloakline apply` (one implementation per
//! transform), on whole Arrow arrays — `Utf8View` included, which is how DataFusion reads
//! Parquet strings — keeping nulls and accepting scalars.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use std::sync::Arc;
//! use datafusion::prelude::SessionContext;
//! use cloakline::keys::Keyring;
//!
//! let ctx = SessionContext::new();
//! cloakline::sql::register(&ctx, Arc::new(Keyring::generate_in_memory(&["k1"])));
//! let df = ctx.sql("SELECT mask('13800138000', 0, 4) AS m, generalize(DATE '1987-07-01', 'quarter') AS q").await?;
//! let batches = df.collect().await?;
//! assert_eq!(arrow::util::pretty::pretty_format_batches(&batches)?.to_string().lines().nth(3).unwrap(),
//!            "| *******8000 | 1987-Q3 |");
//! # Ok(()) }
//! ```
//!
//! | function | meaning |
//! |---|---|
//! | `tokenize(value, key_id [, domain [, length]])` | keyed deterministic pseudonym |
//! | `encrypt(value, key_id [, domain])` / `decrypt(ciphertext [, domain])` | AES-256-GCM envelope |
//! | `encrypt_deterministic(value, key_id [, domain])` | AES-SIV envelope: joinable, `decrypt` opens it |
//! | `fpe(value, key_id [, domain [, alphabet]])` / `fpe_decrypt(…)` | NIST FF1, same length and alphabet |
//! | `shift_date(value, keyed_by, key_id, max_days [, domain])` | one keyed shift per subject |
//! | `noise(value, keyed_by, key_id, scale [, distribution [, domain]])` | keyed Laplace/Gaussian noise |
//! | `mask(value, keep_first, keep_last [, mask_char])` | hide characters |
//! | `redact(value [, replacement])` | null or a constant |
//! | `scrub(value [, replace_with [, key_id [, recognizers]]])` | replace PII found in free text |
//! | `generalize(value, spec)` | `'year'`, `'quarter'`, `'month'`, `'decade'`, `'bin:W'`, `'breaks:a,b,c'`, `'prefix:N'` |
//!
//! `domain` defaults to the name of the value's column, as in a policy.

mod crypto;
mod custom;
mod generalize;
mod mask;
mod scrub;
mod subject;
pub mod tables;
mod tokenize;
mod view;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{ArrayRef, new_null_array};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use crypto::{DecryptFunc, EncryptFunc, FpeFunc};
pub use custom::CustomFunc;
pub use generalize::{GeneralizeFunc, parse_generalize_spec};
pub use mask::{MaskFunc, RedactFunc};
pub use scrub::ScrubFunc;
pub use subject::SubjectKeyedFunc;
pub use tables::{TableArg, register_file, register_files, register_files_under};
pub use tokenize::TokenizeFunc;
pub(crate) use view::view_error;
pub use view::{
    ColumnSpec, ConsentFunc, PolicyColumnFunc, ViewColumn, policy_view_columns,
    register_policy_view, register_policy_view_gated,
};

use crate::keys::Keyring;
use crate::recognizers::RecognizerSet;

/// Register every cloakline function on `ctx`, with `keyring` for the keyed ones.
pub fn register(ctx: &SessionContext, keyring: Arc<Keyring>) {
    for udf in functions(keyring) {
        ctx.register_udf(udf);
    }
}

/// Every cloakline function, bound to `keyring`.
pub fn functions(keyring: Arc<Keyring>) -> Vec<ScalarUDF> {
    let ring = KeyringRef(keyring);
    vec![
        ScalarUDF::new_from_impl(TokenizeFunc::new(ring.clone())),
        ScalarUDF::new_from_impl(EncryptFunc::new(ring.clone())),
        ScalarUDF::new_from_impl(DecryptFunc::new(ring.clone())),
        ScalarUDF::new_from_impl(EncryptFunc::deterministic(ring.clone())),
        ScalarUDF::new_from_impl(FpeFunc::new(ring.clone(), false)),
        ScalarUDF::new_from_impl(FpeFunc::new(ring.clone(), true)),
        ScalarUDF::new_from_impl(SubjectKeyedFunc::shift_date(ring.clone())),
        ScalarUDF::new_from_impl(SubjectKeyedFunc::noise(ring.clone())),
        ScalarUDF::new_from_impl(MaskFunc::new()),
        ScalarUDF::new_from_impl(RedactFunc::new()),
        ScalarUDF::new_from_impl(GeneralizeFunc::new()),
    ]
    .into_iter()
    .chain(
        // The built-in patterns are constants; they compile or the tests fail.
        RecognizerSet::builtin()
            .ok()
            .map(|set| ScalarUDF::new_from_impl(ScrubFunc::new(ring, Arc::new(set)))),
    )
    .chain(
        crate::kernels::custom::customs()
            .into_iter()
            .filter_map(CustomFunc::new)
            .map(ScalarUDF::new_from_impl),
    )
    .collect()
}

/// Names of the functions [`register`] adds.
pub const FUNCTION_NAMES: &[&str] = &[
    "tokenize",
    "encrypt",
    "decrypt",
    "encrypt_deterministic",
    "fpe",
    "fpe_decrypt",
    "shift_date",
    "noise",
    "mask",
    "redact",
    "generalize",
    "scrub",
];

/// A shared keyring, compared by identity (UDFs must be `Eq + Hash`).
#[derive(Clone, Debug)]
pub struct KeyringRef(pub Arc<Keyring>);

impl PartialEq for KeyringRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for KeyringRef {}
impl Hash for KeyringRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

pub(crate) fn plan_error(function: &str, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("{function}: {message}"))
}

pub(crate) fn exec_error(function: &str, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("{function}: {message}"))
}

/// Check the argument count (planning).
pub(crate) fn check_arity(
    function: &str,
    n: usize,
    min: usize,
    max: usize,
    usage: &str,
) -> DFResult<()> {
    if n < min || n > max {
        return Err(plan_error(
            function,
            format!("takes {min} to {max} arguments, got {n}; usage: {usage}"),
        ));
    }
    Ok(())
}

/// A constant string argument (planning: from `scalar_arguments`; execution: from the value).
pub(crate) fn literal_string(
    function: &str,
    position: usize,
    what: &str,
    scalar: Option<&ScalarValue>,
) -> DFResult<Option<String>> {
    match scalar {
        Some(ScalarValue::Utf8(v))
        | Some(ScalarValue::LargeUtf8(v))
        | Some(ScalarValue::Utf8View(v)) => Ok(v.clone()),
        Some(ScalarValue::Null) => Ok(None),
        Some(other) => Err(plan_error(
            function,
            format!(
                "argument {position} ({what}) must be a string, got {}",
                other.data_type()
            ),
        )),
        None => Err(plan_error(
            function,
            format!("argument {position} ({what}) must be a constant, not a column or expression"),
        )),
    }
}

/// A constant integer argument.
pub(crate) fn literal_int(
    function: &str,
    position: usize,
    what: &str,
    scalar: Option<&ScalarValue>,
) -> DFResult<Option<i64>> {
    let bad = |got: String| {
        plan_error(
            function,
            format!("argument {position} ({what}) must be an integer constant, got {got}"),
        )
    };
    match scalar {
        None => Err(bad("a column or expression".into())),
        Some(ScalarValue::Null) => Ok(None),
        Some(v) if v.data_type().is_integer() => {
            let c = v
                .cast_to(&DataType::Int64)
                .map_err(|_| bad(v.to_string()))?;
            match c {
                ScalarValue::Int64(x) => Ok(x),
                _ => Err(bad(v.to_string())),
            }
        }
        Some(v) => Err(bad(v.data_type().to_string())),
    }
}

/// The scalar values of constant arguments at execution time (`None` for arrays), the
/// value (argument 1) left out of the check.
///
/// DataFusion's FFI (the stock `datafusion` Python wheel) hands a function every argument as
/// an array, literals included. Planning saw those arguments as literals (a column in a
/// constant's place is refused there, FFI or not), so an array whose values are all one
/// value is that literal; any other array stays `None` and is refused as not constant.
pub(crate) fn scalars(args: &[ColumnarValue]) -> Vec<Option<ScalarValue>> {
    args.iter()
        .enumerate()
        .map(|(i, a)| match a {
            ColumnarValue::Scalar(s) => Some(s.clone()),
            ColumnarValue::Array(arr) if i > 0 => uniform(arr),
            ColumnarValue::Array(_) => None,
        })
        .collect()
}

/// The one value of an array whose values are all equal (nulls included), else `None`.
fn uniform(arr: &arrow::array::ArrayRef) -> Option<ScalarValue> {
    use arrow::array::{Array, Scalar};
    if arr.is_empty() {
        return None;
    }
    let first = ScalarValue::try_from_array(arr, 0).ok()?;
    if first.is_null() {
        return (arr.logical_null_count() == arr.len()).then_some(first);
    }
    if arr.logical_null_count() > 0 {
        return None;
    }
    let probe = Scalar::new(first.to_array().ok()?);
    let eq = arrow::compute::kernels::cmp::eq(arr, &probe).ok()?;
    (eq.true_count() == arr.len()).then_some(first)
}

/// The planning-time shape of execution-time constants.
pub(crate) fn scalar_refs(s: &[Option<ScalarValue>]) -> Vec<Option<&ScalarValue>> {
    s.iter().map(Option::as_ref).collect()
}

/// The data types of argument fields.
pub(crate) fn field_types(fields: &[FieldRef]) -> Vec<DataType> {
    fields.iter().map(|f| f.data_type().clone()).collect()
}

/// A kernel failed on the values themselves (an envelope that does not authenticate, a value
/// outside FF1's alphabet), as opposed to a bad argument: the Python door raises a
/// `DataError` for it. Its text is `function: message`.
#[derive(Debug)]
pub struct ValueError(pub String);

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

/// A kernel's error at execution: values that fail are a [`ValueError`].
fn kernel_error(function: &str, e: crate::kernels::KernelError) -> DataFusionError {
    match e {
        crate::kernels::KernelError::Value(m) => {
            DataFusionError::External(Box::new(ValueError(format!("{function}: {m}"))))
        }
        other => exec_error(function, other),
    }
}

/// Run `kernel` over the value argument (array or scalar); a `Null`-typed value gives nulls of `out`.
pub(crate) fn apply_to_value(
    function: &str,
    value: &ColumnarValue,
    out: &DataType,
    kernel: impl FnOnce(&ArrayRef) -> Result<ArrayRef, crate::kernels::KernelError>,
) -> DFResult<ColumnarValue> {
    match value {
        ColumnarValue::Array(a) => {
            if a.data_type() == &DataType::Null {
                return Ok(ColumnarValue::Array(new_null_array(out, a.len())));
            }
            Ok(ColumnarValue::Array(
                kernel(a).map_err(|e| kernel_error(function, e))?,
            ))
        }
        ColumnarValue::Scalar(s) => {
            if s.is_null() && s.data_type() == DataType::Null {
                return Ok(ColumnarValue::Scalar(ScalarValue::try_from(out)?));
            }
            let a = s.to_array_of_size(1)?;
            let r = kernel(&a).map_err(|e| kernel_error(function, e))?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&r, 0)?))
        }
    }
}

/// The default domain: the value argument's column name.
pub(crate) fn default_domain(fields: &[FieldRef]) -> String {
    fields.first().map(|f| f.name().clone()).unwrap_or_default()
}

/// `text` with everything from its first single quote to its last replaced by `'…'` (all of
/// the rest after the first quote when the quotes do not pair): a quoted value may itself
/// hold quotes (`'O'Brien'`), so quotes cannot be paired one by one.
pub(crate) fn withhold_quoted(text: &str) -> String {
    let (Some(first), Some(last)) = (text.find('\''), text.rfind('\'')) else {
        return text.to_string();
    };
    match text.matches('\'').count().is_multiple_of(2) && last > first {
        true => format!("{}'…'{}", &text[..first], &text[last + 1..]),
        false => format!("{}'…'", &text[..first]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};

    fn arr(v: Vec<Option<&str>>) -> ColumnarValue {
        ColumnarValue::Array(Arc::new(StringArray::from(v)) as ArrayRef)
    }

    #[test]
    fn literals_handed_over_as_arrays_read_as_constants_and_columns_do_not() {
        let value = arr(vec![Some("k1"), Some("k1")]);
        let got = scalars(&[
            value.clone(),
            arr(vec![Some("k1"), Some("k1"), Some("k1")]),
            arr(vec![Some("k1"), Some("k2")]),
            arr(vec![None, None]),
            arr(vec![Some("k1"), None]),
            arr(vec![]),
            ColumnarValue::Array(Arc::new(Int64Array::from(vec![24, 24])) as ArrayRef),
        ]);
        // The value itself is never taken for a constant.
        assert_eq!(got[0], None);
        assert_eq!(got[1], Some(ScalarValue::Utf8(Some("k1".into()))));
        assert_eq!(got[2], None, "two key ids are a column, not a constant");
        assert_eq!(got[3], Some(ScalarValue::Utf8(None)));
        assert_eq!(got[4], None);
        assert_eq!(got[5], None);
        assert_eq!(got[6], Some(ScalarValue::Int64(Some(24))));
    }
}
