//! `generalize(value, spec)`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{apply_to_value, check_arity, literal_string, plan_error};
use crate::error::Problem;
use crate::kernels::Generalizer;
use crate::policy::{DateLevel, GeneralizeSpec, LabelStyle, NumberBins};

/// Coarsen values, as the policy action `generalize` with text labels.
///
/// | spec | applies to | example |
/// |---|---|---|
/// | `'year'`, `'quarter'`, `'month'`, `'decade'` | dates, timestamps | `1987`, `1987-Q3`, `1987-07`, `1980-1989` |
/// | `'bin:W'` | integers, floats, decimals | `bin:10` → `30-39` |
/// | `'breaks:a,b,…'` | integers, floats, decimals | `breaks:18,65` → `<18`, `18-64`, `>=65` |
/// | `'prefix:N'` | strings | `prefix:3` → `021` |
///
/// ```sql
/// SELECT generalize(birth_date, 'year'), generalize(income, 'bin:10000') FROM customers;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GeneralizeFunc {
    signature: Signature,
}

impl Default for GeneralizeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl GeneralizeFunc {
    pub fn new() -> Self {
        GeneralizeFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// Parse a SQL generalization spec (see [`GeneralizeFunc`]).
pub fn parse_generalize_spec(spec: &str) -> Result<GeneralizeSpec, Problem> {
    let s = spec.trim();
    let date = |to| {
        Ok(GeneralizeSpec::Date {
            to,
            label: LabelStyle::Range,
        })
    };
    let num = |x: &str| -> Result<f64, Problem> {
        x.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| Problem(format!("{x:?} in spec {spec:?} is not a number")))
    };
    match s.split_once(':') {
        None => match s {
            "year" => date(DateLevel::Year),
            "quarter" => date(DateLevel::Quarter),
            "month" => date(DateLevel::Month),
            "decade" => date(DateLevel::Decade),
            _ => Err(Problem(format!(
                "unknown spec {spec:?}; use 'year', 'quarter', 'month', 'decade', 'bin:W', 'breaks:a,b,...' or 'prefix:N'"
            ))),
        },
        Some(("bin", w)) => {
            let w = num(w)?;
            if w <= 0.0 {
                return Err(Problem(format!("bin width in {spec:?} must be positive")));
            }
            Ok(GeneralizeSpec::Number(NumberBins {
                bin_width: Some(w),
                breaks: None,
                top: None,
                bottom: None,
                label: LabelStyle::Range,
            }))
        }
        Some(("breaks", list)) => {
            let breaks = list.split(',').map(num).collect::<Result<Vec<_>, _>>()?;
            if breaks.is_empty() || breaks.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Problem(format!(
                    "breaks in {spec:?} must be strictly ascending"
                )));
            }
            Ok(GeneralizeSpec::Number(NumberBins {
                bin_width: None,
                breaks: Some(breaks),
                top: None,
                bottom: None,
                label: LabelStyle::Range,
            }))
        }
        Some(("prefix", n)) => {
            let n = n.trim().parse::<usize>().map_err(|_| {
                Problem(format!("prefix length in {spec:?} must be a whole number"))
            })?;
            Ok(GeneralizeSpec::Prefix { keep_prefix: n })
        }
        Some((other, _)) => Err(Problem(format!(
            "unknown spec kind {other:?} in {spec:?}; use 'bin:W', 'breaks:a,b,...' or 'prefix:N'"
        ))),
    }
}

fn generalizer(
    input: &DataType,
    scalars: &[Option<&ScalarValue>],
) -> DFResult<Option<Generalizer>> {
    let f = "generalize";
    let spec = literal_string(f, 2, "spec", scalars.get(1).copied().flatten())?
        .ok_or_else(|| plan_error(f, "argument 2 (spec) is null"))?;
    let spec = parse_generalize_spec(&spec)
        .map_err(|e| plan_error(f, format!("argument 2 (spec): {e}")))?;
    if input == &DataType::Null {
        return Ok(None);
    }
    Generalizer::new(&spec, input)
        .map(Some)
        .map_err(|e| plan_error(f, format!("argument 1 (value): {e}")))
}

impl ScalarUDFImpl for GeneralizeFunc {
    fn name(&self) -> &str {
        "generalize"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        check_arity(
            self.name(),
            arg_types.len(),
            2,
            2,
            "generalize(value, spec)",
        )?;
        // Every SQL spec writes text labels.
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        check_arity(
            self.name(),
            args.arg_fields.len(),
            2,
            2,
            "generalize(value, spec)",
        )?;
        let out = match generalizer(args.arg_fields[0].data_type(), args.scalar_arguments)? {
            Some(g) => g.output_type(),
            None => DataType::Utf8,
        };
        Ok(Arc::new(Field::new(self.name(), out, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let g = generalizer(&args.args[0].data_type(), &refs)?;
        let out = args.return_type().clone();
        match g {
            Some(g) => apply_to_value(self.name(), &args.args[0], &out, |v| g.apply(v)),
            None => apply_to_value(self.name(), &args.args[0], &out, |v| Ok(v.clone())),
        }
    }
}
