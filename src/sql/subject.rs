//! `shift_date(value, keyed_by, key_id, max_days [, domain])` and
//! `noise(value, keyed_by, key_id, scale [, distribution [, domain]])`: the kernels keyed by
//! a second column.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{
    KeyringRef, check_arity, default_domain, exec_error, literal_int, literal_string, plan_error,
};
use crate::kernels::subject::{DateShifter, Distribution, NoiseSpec, Noiser, ShiftDateSpec};
use crate::plan::Kernel;

/// Which of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    ShiftDate,
    Noise,
}

/// `shift_date` or `noise` as a SQL function (docs/SQL.md).
///
/// ```sql
/// SELECT shift_date(admitted, patient_id, 'k1@v1', 30) FROM visits;
/// SELECT noise(income, customer_id, 'k1@v1', 500.0, 'laplace') FROM customers;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SubjectKeyedFunc {
    signature: Signature,
    keyring: KeyringRef,
    which: Which,
}

impl SubjectKeyedFunc {
    pub fn shift_date(keyring: KeyringRef) -> Self {
        SubjectKeyedFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
            keyring,
            which: Which::ShiftDate,
        }
    }

    pub fn noise(keyring: KeyringRef) -> Self {
        SubjectKeyedFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
            keyring,
            which: Which::Noise,
        }
    }

    fn usage(&self) -> &'static str {
        match self.which {
            Which::ShiftDate => "shift_date(value, keyed_by, key_id, max_days [, domain])",
            Which::Noise => "noise(value, keyed_by, key_id, scale [, distribution [, domain]])",
        }
    }

    /// The kernel's parameters from the constant arguments (positions 3 on).
    fn action(
        &self,
        fields: &[FieldRef],
        scalars: &[Option<&ScalarValue>],
    ) -> DFResult<crate::policy::Action> {
        let f = self.name();
        let key = literal_string(f, 3, "key_id", scalars.get(2).copied().flatten())?.ok_or_else(
            || plan_error(f, "argument 3 (key_id) is null; name a key of the keyring"),
        )?;
        let keyed_by = fields.get(1).map(|x| x.name().clone()).unwrap_or_default();
        let domain_at = |i: usize| -> DFResult<String> {
            match scalars.get(i) {
                Some(s) => Ok(literal_string(f, i + 1, "domain", *s)?
                    .unwrap_or_else(|| default_domain(fields))),
                None => Ok(default_domain(fields)),
            }
        };
        Ok(match self.which {
            Which::ShiftDate => {
                let days = literal_int(f, 4, "max_days", scalars.get(3).copied().flatten())?
                    .and_then(|d| u32::try_from(d).ok())
                    .filter(|d| (1..=crate::kernels::subject::MAX_SHIFT_DAYS).contains(d))
                    .ok_or_else(|| {
                        plan_error(
                            f,
                            format!(
                                "argument 4 (max_days) must be 1 to {}",
                                crate::kernels::subject::MAX_SHIFT_DAYS
                            ),
                        )
                    })?;
                // As in a policy: one shift per subject, whatever the date column.
                let domain = match scalars.get(4) {
                    Some(s) => {
                        literal_string(f, 5, "domain", *s)?.unwrap_or_else(|| keyed_by.clone())
                    }
                    None => keyed_by.clone(),
                };
                crate::policy::Action::ShiftDate(ShiftDateSpec {
                    key,
                    domain,
                    keyed_by,
                    max_days: days,
                })
            }
            Which::Noise => {
                let scale = match scalars.get(3).copied().flatten() {
                    Some(ScalarValue::Float64(Some(v))) => *v,
                    Some(ScalarValue::Float32(Some(v))) => f64::from(*v),
                    Some(ScalarValue::Int64(Some(v))) => *v as f64,
                    Some(ScalarValue::Int32(Some(v))) => f64::from(*v),
                    _ => f64::NAN,
                };
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(plan_error(
                        f,
                        "argument 4 (scale) must be a positive number constant",
                    ));
                }
                let distribution = match scalars.get(4) {
                    Some(s) => match literal_string(f, 5, "distribution", *s)?.as_deref() {
                        None | Some("laplace") => Distribution::Laplace,
                        Some("gaussian") => Distribution::Gaussian,
                        Some(_) => {
                            return Err(plan_error(
                                f,
                                "argument 5 (distribution) must be 'laplace' or 'gaussian'",
                            ));
                        }
                    },
                    None => Distribution::Laplace,
                };
                crate::policy::Action::Noise(NoiseSpec {
                    key,
                    domain: domain_at(5)?,
                    keyed_by,
                    distribution,
                    scale,
                })
            }
        })
    }
}

impl ScalarUDFImpl for SubjectKeyedFunc {
    fn name(&self) -> &str {
        match self.which {
            Which::ShiftDate => "shift_date",
            Which::Noise => "noise",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        let max = match self.which {
            Which::ShiftDate => 5,
            Which::Noise => 6,
        };
        check_arity(self.name(), arg_types.len(), 4, max, self.usage())?;
        let out = match self.which {
            Which::ShiftDate => DateShifter::output_type(&arg_types[0]),
            Which::Noise => Noiser::output_type(&arg_types[0]),
        };
        out.map_err(|e| plan_error(self.name(), format!("argument 1 (value): {e}")))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        let out = self.return_type(&types)?;
        let action = self.action(args.arg_fields, args.scalar_arguments)?;
        if let Some(k) = action.key_id() {
            self.keyring
                .0
                .check_data_key(k)
                .map_err(|e| plan_error(self.name(), e))?;
        }
        Ok(Arc::new(Field::new(self.name(), out, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let action = self.action(&args.arg_fields, &refs)?;
        let input = args.args[0].data_type();
        let (kernel, _) = Kernel::build(&action, &input, &self.keyring.0)
            .map_err(|e| exec_error(self.name(), e))?;
        let rows = args.number_rows;
        let values = args.args[0].to_array(rows)?;
        let keys = args.args[1].to_array(rows)?;
        let out = kernel
            .apply_keyed(&values, Some(&keys))
            .map_err(|e| exec_error(self.name(), e))?;
        Ok(ColumnarValue::Array(out))
    }
}
