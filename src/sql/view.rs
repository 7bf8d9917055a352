//! A policy as a view: `SELECT * FROM <view>` returns what `cloakline apply` would write.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::{Column, DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::{apply_to_value, plan_error};
use crate::keys::Keyring;
use crate::plan::{Kernel, Plan};
use crate::policy::Policy;

/// One policy column's compiled kernel as a scalar function (used inside policy views).
#[derive(Debug)]
pub struct PolicyColumnFunc {
    name: String,
    kernel: Arc<Kernel>,
    output: DataType,
    signature: Signature,
}

impl PartialEq for PolicyColumnFunc {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.kernel, &other.kernel)
    }
}
impl Eq for PolicyColumnFunc {}
impl Hash for PolicyColumnFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        (Arc::as_ptr(&self.kernel) as usize).hash(state);
    }
}

impl PolicyColumnFunc {
    fn new(name: String, kernel: Kernel, output: DataType) -> Self {
        let volatility = if kernel.descriptor().deterministic {
            Volatility::Immutable
        } else {
            Volatility::Volatile
        };
        PolicyColumnFunc {
            name,
            kernel: Arc::new(kernel),
            output,
            signature: Signature::new(TypeSignature::Any(1), volatility),
        }
    }
}

impl ScalarUDFImpl for PolicyColumnFunc {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(self.output.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        apply_to_value(&self.name, &args.args[0], &self.output, |v| {
            self.kernel.apply(v)
        })
    }
}

/// Register `view` over the registered table `table`: its columns are the policy's outputs
/// (renamed, in input order), computed by the same kernels as `apply`. Columns the policy
/// drops are not in the view and cannot be selected through it. Returns the plan, for
/// provenance.
pub async fn register_policy_view(
    ctx: &SessionContext,
    table: &str,
    policy: &Policy,
    keyring: &Keyring,
    view: &str,
) -> DFResult<Vec<crate::policy::Field>> {
    let df = ctx.table(table).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let plan = Plan::new(policy, schema, keyring, &format!("table {table}"))
        // Kept whole (not re-worded as a planning error) so the caller can return the
        // plan's own problems, without a doubled "Error during planning: plan for …".
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let input_schema = Arc::clone(&plan.input_schema);
    let mut exprs = Vec::with_capacity(plan.columns.len());
    let mut fields = Vec::with_capacity(plan.columns.len());
    for c in plan.columns {
        let source = Expr::Column(Column::new_unqualified(
            input_schema.field(c.input_index).name(),
        ));
        let out_name = c.rule.output_name.clone();
        let expr = match c.kernel {
            Kernel::Keep => source,
            kernel => {
                let name = format!(
                    "cloakline_{}_{}",
                    c.rule.action.kind().keyword(),
                    c.rule.input_name
                );
                let udf = ScalarUDF::new_from_impl(PolicyColumnFunc::new(
                    name,
                    kernel,
                    c.output_field.data_type().clone(),
                ));
                udf.call(vec![source])
            }
        };
        exprs.push(expr.alias(out_name));
        fields.push(c.rule);
    }
    if exprs.is_empty() {
        return Err(plan_error(
            "policy view",
            format!(
                "policy {} leaves no column of {table} in the output",
                policy.name
            ),
        ));
    }
    let projected = df.select(exprs)?;
    ctx.register_table(view, projected.into_view())?;
    Ok(fields)
}

/// An error of [`register_policy_view`] as one plan error for `input` (the table's file): the
/// plan's own problems when it is they, else DataFusion's message without its "Error during
/// planning: " prefix (the error says it is a plan already).
pub(crate) fn view_error(input: &str, e: DataFusionError) -> crate::Error {
    use crate::Error;
    match e {
        DataFusionError::External(inner) => match inner.downcast::<Error>() {
            Ok(err) => match *err {
                Error::Plan { problems, .. } => Error::Plan {
                    input: input.to_string(),
                    problems,
                },
                other => other,
            },
            Err(other) => Error::plan(input, other),
        },
        other => Error::plan(input, other.message()),
    }
}
