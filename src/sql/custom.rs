//! SQL functions of registered transforms ([`crate::kernels::custom`]):
//! `name(value [, params_json])`, calling the transform's own kernel.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{apply_to_value, check_arity, exec_error, literal_string, plan_error};
use crate::kernels::custom::{CustomTransform, Params, check_params};

/// The SQL function of one registered transform.
#[derive(Debug)]
pub struct CustomFunc {
    transform: &'static dyn CustomTransform,
    function: &'static str,
    signature: Signature,
}

impl CustomFunc {
    /// `None` when the transform has no SQL exposure.
    pub fn new(transform: &'static dyn CustomTransform) -> Option<Self> {
        let d = transform.descriptor();
        let volatility = if d.deterministic {
            Volatility::Immutable
        } else {
            Volatility::Volatile
        };
        Some(CustomFunc {
            transform,
            function: d.sql?.function,
            signature: Signature::variadic_any(volatility),
        })
    }

    /// The parameters: a constant JSON object as the second argument, or none.
    fn params(&self, scalar: Option<Option<&ScalarValue>>) -> DFResult<Params> {
        let f = self.function;
        let params = match scalar {
            None => Params::new(),
            Some(s) => {
                let text = literal_string(f, 2, "params", s)?.unwrap_or_else(|| "{}".into());
                serde_json::from_str::<Params>(&text).map_err(|_| {
                    plan_error(
                        f,
                        "argument 2 (params) must be a JSON object, e.g. '{\"n\": 2}'",
                    )
                })?
            }
        };
        check_params(self.transform, &params).map_err(|e| plan_error(f, e))?;
        Ok(params)
    }
}

impl PartialEq for CustomFunc {
    fn eq(&self, other: &Self) -> bool {
        self.function == other.function
    }
}
impl Eq for CustomFunc {}
impl Hash for CustomFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.function.hash(state);
    }
}

impl ScalarUDFImpl for CustomFunc {
    fn name(&self) -> &str {
        self.function
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        let usage = format!("{}(value [, params_json])", self.function);
        check_arity(self.function, arg_types.len(), 1, 2, &usage)?;
        self.transform
            .output_type(&arg_types[0])
            .map_err(|e| plan_error(self.function, format!("argument 1 (value): {e}")))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        let out = self.return_type(&types)?;
        let params = self.params(args.scalar_arguments.get(1).copied())?;
        self.transform
            .kernel(&params, &types[0])
            .map_err(|e| plan_error(self.function, e))?;
        Ok(Arc::new(Field::new(self.function, out, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let params = self.params(refs.get(1).copied())?;
        let input = args.args[0].data_type();
        let out = self
            .transform
            .output_type(&input)
            .map_err(|e| exec_error(self.function, e))?;
        let kernel = self
            .transform
            .kernel(&params, &input)
            .map_err(|e| exec_error(self.function, e))?;
        apply_to_value(self.function, &args.args[0], &out, |v| kernel.apply(v))
    }
}
