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
use crate::plan::consent::{ConsentGate, Withhold};
use crate::plan::{Kernel, Plan};
use crate::policy::Policy;

/// One policy column's compiled kernel as a scalar function (used inside policy views).
#[derive(Debug)]
pub struct PolicyColumnFunc {
    name: String,
    /// Absent in a process that plans without keys (a cluster scheduler): calling it fails.
    kernel: Option<Arc<Kernel>>,
    output: DataType,
    signature: Signature,
    /// How another process rebuilds it; absent when the policy cannot travel.
    spec: Option<Arc<ColumnSpec>>,
}

/// What another process (a cluster executor) needs to rebuild a policy column's kernel with
/// its own keyring: the policy text without its `privacy:` block (key ids only, no hierarchy
/// file to read), the column, and the types. Never key material.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ColumnSpec {
    pub policy: String,
    pub source: String,
    pub field: String,
    pub input_type: String,
    pub output_type: String,
}

/// Largest policy text a plan may carry for one column.
const MAX_SPEC_POLICY: usize = 1 << 20;

/// Marks a [`ColumnSpec`] payload (and its version) among plan bytes.
const SPEC_MAGIC: &[u8] = b"cloakline-policy-column/1\n";

impl ColumnSpec {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = SPEC_MAGIC.to_vec();
        v.extend(serde_json::to_vec(self).unwrap_or_default());
        v
    }

    /// `None` when `bytes` is not a spec (another codec's payload).
    pub fn from_bytes(bytes: &[u8]) -> Option<std::result::Result<ColumnSpec, String>> {
        let body = bytes.strip_prefix(SPEC_MAGIC)?;
        Some(serde_json::from_slice(body).map_err(|e| format!("a malformed policy column: {e}")))
    }
}

impl PartialEq for PolicyColumnFunc {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.spec == other.spec
            && match (&self.kernel, &other.kernel) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}
impl Eq for PolicyColumnFunc {}
impl Hash for PolicyColumnFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.spec.hash(state);
        self.kernel
            .as_ref()
            .map(|k| Arc::as_ptr(k) as usize)
            .hash(state);
    }
}

impl PolicyColumnFunc {
    /// `keyed`: the function also takes the row-aligned `keyed_by` column (`shift_date`,
    /// `noise`).
    fn new(
        name: String,
        kernel: Kernel,
        output: DataType,
        spec: Option<ColumnSpec>,
        keyed: bool,
    ) -> Self {
        let volatility = if kernel.descriptor().deterministic {
            Volatility::Immutable
        } else {
            Volatility::Volatile
        };
        PolicyColumnFunc {
            name,
            kernel: Some(Arc::new(kernel)),
            output,
            signature: Signature::new(TypeSignature::Any(1 + usize::from(keyed)), volatility),
            spec: spec.map(Arc::new),
        }
    }

    /// The function's spec, for a codec to send it to another process.
    pub fn spec(&self) -> Option<&ColumnSpec> {
        self.spec.as_deref()
    }

    /// Rebuild from a spec with this process's keyring. A planning-only keyring (a cluster
    /// scheduler) gives a function that plans but does not run.
    ///
    /// A spec comes from a plan, which may be hostile: it is refused unless it is what
    /// [`register_policy_view`] sends (a policy of bounded size as JSON, without a `privacy:`
    /// block, so loading it reads no file; simple type names), and a refusal does not echo it.
    pub fn from_spec(name: &str, spec: ColumnSpec, keyring: &Keyring) -> crate::Result<Self> {
        use std::str::FromStr;
        let bad = |m: &str| crate::Error::plan("a policy column from the plan", m);
        // Arrow's type parser recurses without a depth limit: bound what reaches it.
        let simple_type = |t: &str| t.len() <= 256 && t.matches('(').count() <= 8;
        if !simple_type(&spec.input_type) || !simple_type(&spec.output_type) {
            return Err(bad("a column type is too long or too deeply nested"));
        }
        let input = DataType::from_str(&spec.input_type)
            .map_err(|_| bad("the input type does not parse"))?;
        let output = DataType::from_str(&spec.output_type)
            .map_err(|_| bad("the output type does not parse"))?;
        let doc: Option<serde_json::Value> = (spec.policy.len() <= MAX_SPEC_POLICY)
            .then(|| serde_json::from_str(&spec.policy).ok())
            .flatten();
        match doc.as_ref().and_then(|d| d.as_object()) {
            Some(o) if !o.contains_key("privacy") => {}
            _ => {
                return Err(bad(
                    "not a policy this version sends (JSON, no privacy block)",
                ));
            }
        }
        // A fixed source: no path is derived from the plan.
        let policy = Policy::from_yaml_str(&spec.policy, "<policy from the plan>")
            .map_err(|_| bad("its policy does not load"))?;
        let field = policy
            .fields
            .get(&spec.field)
            .ok_or_else(|| bad("its policy has no rule for its column"))?;
        let kernel = match Kernel::build(&field.action, &input, keyring) {
            Ok((k, out)) if out == output => Some(Arc::new(k)),
            Ok(_) => return Err(bad("the kernel's output type differs from the plan's")),
            // Only a missing key is expected where no keys are held.
            Err(crate::plan::KernelBuildError::Key(_)) if keyring.is_planning_only() => None,
            Err(e) => {
                return Err(crate::Error::plan(
                    &spec.source,
                    format!("column {}: {e}", spec.field),
                ));
            }
        };
        let volatility = match field.action.descriptor().deterministic {
            true => Volatility::Immutable,
            false => Volatility::Volatile,
        };
        let arity = 1 + usize::from(field.action.keyed_by().is_some());
        Ok(PolicyColumnFunc {
            name: name.to_string(),
            kernel,
            output,
            signature: Signature::new(TypeSignature::Any(arity), volatility),
            spec: Some(Arc::new(spec)),
        })
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
        let Some(kernel) = &self.kernel else {
            return Err(DataFusionError::Execution(format!(
                "{}: this process holds no keys and only plans; executors run it",
                self.name
            )));
        };
        if let Some(keyed_by) = args.args.get(1) {
            // Both row-aligned: the values and the column keying their draws.
            let rows = args.number_rows;
            let values = args.args[0].to_array(rows)?;
            let keys = keyed_by.to_array(rows)?;
            let out = kernel
                .apply_keyed(&values, Some(&keys))
                .map_err(|e| super::exec_error(&self.name, e))?;
            return Ok(ColumnarValue::Array(out));
        }
        apply_to_value(&self.name, &args.args[0], &self.output, |v| kernel.apply(v))
    }
}

/// One column of a policy view: the input column it reads, its output name, and the
/// function computing it (`None`: the column is kept as it is).
pub struct ViewColumn {
    pub source: String,
    /// The input column keying the function's draws (`shift_date`, `noise`): its second
    /// argument.
    pub keyed_by: Option<String>,
    pub output: String,
    pub function: Option<ScalarUDF>,
    pub rule: crate::policy::Field,
}

/// The columns of a policy view over a table of `schema` (named `table` in messages): the
/// policy's outputs in input order, each computed by the kernel `apply` uses. Every door
/// (SQL here, Python through the FFI) builds its views from this.
pub fn policy_view_columns(
    policy: &Policy,
    keyring: &Keyring,
    schema: SchemaRef,
    table: &str,
) -> crate::Result<Vec<ViewColumn>> {
    if policy.consent.is_some() {
        return Err(consent_refused(policy, table));
    }
    view_columns(policy, keyring, schema, table)
}

/// A door that cannot enforce the consent ledger refuses the policy rather than release what
/// the ledger would withhold.
fn consent_refused(policy: &Policy, table: &str) -> crate::Error {
    crate::Error::Usage(format!(
        "policy {} has a `consent:` ledger, which a view of {table} here cannot enforce; run \
         `cloakline apply` or `cloakline sql --policy` (docs/CONSENT.md)",
        policy.name
    ))
}

fn view_columns(
    policy: &Policy,
    keyring: &Keyring,
    schema: SchemaRef,
    table: &str,
) -> crate::Result<Vec<ViewColumn>> {
    let plan = Plan::new(policy, schema, keyring, &format!("table {table}"))?;
    let input_schema = Arc::clone(&plan.input_schema);
    let travel = TravellingPolicy::of(policy);
    let mut columns = Vec::with_capacity(plan.columns.len());
    for c in plan.columns {
        let source = input_schema.field(c.input_index).name().clone();
        let keyed_by = c.keyed_by.map(|j| input_schema.field(j).name().clone());
        let function = match c.kernel {
            Kernel::Keep => None,
            kernel => {
                let name = format!(
                    "cloakline_{}_{}",
                    c.rule.action.kind().keyword(),
                    c.rule.input_name
                );
                let input_type = input_schema.field(c.input_index).data_type();
                let output_type = c.output_field.data_type();
                let spec = travel.spec(&c.rule.input_name, &c.rule.action, input_type, output_type);
                Some(ScalarUDF::new_from_impl(PolicyColumnFunc::new(
                    name,
                    kernel,
                    output_type.clone(),
                    spec,
                    keyed_by.is_some(),
                )))
            }
        };
        columns.push(ViewColumn {
            source,
            keyed_by,
            output: c.rule.output_name.clone(),
            function,
            rule: c.rule,
        });
    }
    Ok(columns)
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
    if policy.consent.is_some() {
        return Err(DataFusionError::External(Box::new(consent_refused(
            policy, table,
        ))));
    }
    register_policy_view_gated(ctx, table, policy, keyring, view, None).await
}

/// The output column of the consent gate's verdict inside a gated view (never selected).
const CONSENT_COLUMN: &str = "__cloakline_consent";

/// [`register_policy_view`] with the consent gate of the policy's `consent:` block: rows the
/// ledger removes are filtered out and withheld fields are null, as `apply` writes them.
pub async fn register_policy_view_gated(
    ctx: &SessionContext,
    table: &str,
    policy: &Policy,
    keyring: &Keyring,
    view: &str,
    gate: Option<Arc<ConsentGate>>,
) -> DFResult<Vec<crate::policy::Field>> {
    let mut df = ctx.table(table).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    // Kept whole (not re-worded as a planning error) so the caller can return the plan's own
    // problems, without a doubled "Error during planning: plan for …".
    let columns = view_columns(policy, keyring, Arc::clone(&schema), table)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    if let Some(g) = &gate {
        let subject = schema.field(g.subject_column()).name().clone();
        let verdict = ScalarUDF::new_from_impl(ConsentFunc::new(Arc::clone(g)))
            .call(vec![Expr::Column(Column::new_unqualified(subject))]);
        df = df
            .with_column(CONSENT_COLUMN, verdict)?
            .filter(consent_code().not_eq(datafusion::prelude::lit(0i8)))?;
    }
    let mut exprs = Vec::with_capacity(columns.len());
    let mut fields = Vec::with_capacity(columns.len());
    for c in columns {
        let source = Expr::Column(Column::new_unqualified(&c.source));
        let expr = match c.function {
            Some(udf) => {
                let mut args = vec![source];
                args.extend(
                    c.keyed_by
                        .as_deref()
                        .map(|k| Expr::Column(Column::new_unqualified(k))),
                );
                udf.call(args)
            }
            None => source,
        };
        // Withheld fields are null: code 2 withholds every consent-based field, 3 only the
        // separate-consent ones.
        let expr = match gate.as_ref().map(|g| g.withhold_of(&c.rule.input_name)) {
            None | Some(Withhold::Never) => expr,
            Some(w) => {
                let released = match w {
                    Withhold::Separate => consent_code().eq(datafusion::prelude::lit(1i8)),
                    _ => consent_code().not_eq(datafusion::prelude::lit(2i8)),
                };
                datafusion::logical_expr::when(released, expr).otherwise(
                    datafusion::prelude::lit(datafusion::common::ScalarValue::Null),
                )?
            }
        };
        exprs.push(expr.alias(c.output));
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

fn consent_code() -> Expr {
    Expr::Column(Column::new_unqualified(CONSENT_COLUMN))
}

/// The consent gate over the subject column: each row's [`crate::plan::consent::Fate`] code.
#[derive(Debug)]
pub struct ConsentFunc {
    gate: Arc<ConsentGate>,
    signature: Signature,
}

impl ConsentFunc {
    pub fn new(gate: Arc<ConsentGate>) -> Self {
        ConsentFunc {
            gate,
            // Deterministic, but volatile: the optimizer then neither copies nor moves it, so
            // each row is judged (and counted in the gate's tally) once.
            signature: Signature::new(TypeSignature::Any(1), Volatility::Volatile),
        }
    }
}

impl PartialEq for ConsentFunc {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.gate, &other.gate)
    }
}
impl Eq for ConsentFunc {}
impl Hash for ConsentFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        CONSENT_COLUMN.hash(state);
    }
}

impl ScalarUDFImpl for ConsentFunc {
    fn name(&self) -> &str {
        "cloakline_consent"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Int8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let ids = args.args[0].to_array(args.number_rows)?;
        let mut b = arrow::array::Int8Builder::with_capacity(ids.len());
        let mut counts = crate::plan::consent::ConsentCounts::default();
        counts.matched = self
            .gate
            .judge(&ids, |f| {
                self.gate.count(&mut counts, f);
                b.append_value(f.code())
            })
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.gate.tally.add(&counts);
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

/// The policy as it travels to other processes: its text without the `privacy:` block,
/// checked to give the same rules as the policy in hand (a policy changed after loading
/// cannot travel).
struct TravellingPolicy {
    text: Option<String>,
    reparsed: Option<Policy>,
    source: String,
}

impl TravellingPolicy {
    fn of(policy: &Policy) -> Self {
        let text = strip_privacy(&policy.text);
        let reparsed = text
            .as_deref()
            .and_then(|t| Policy::from_yaml_str(t, &policy.source).ok());
        TravellingPolicy {
            text,
            reparsed,
            source: policy.source.clone(),
        }
    }

    fn spec(
        &self,
        field: &str,
        action: &crate::policy::Action,
        input: &DataType,
        output: &DataType,
    ) -> Option<ColumnSpec> {
        let theirs = &self.reparsed.as_ref()?.fields.get(field)?.action;
        same_action(theirs, action).then(|| ColumnSpec {
            policy: self.text.clone().unwrap_or_default(),
            source: self.source.clone(),
            field: field.to_string(),
            input_type: input.to_string(),
            output_type: output.to_string(),
        })
    }
}

fn same_action(a: &crate::policy::Action, b: &crate::policy::Action) -> bool {
    use crate::policy::Action;
    // Recognizer sets compare by identity; the text they came from is the same.
    match (a, b) {
        (Action::Scrub(a), Action::Scrub(b)) => a.mode == b.mode && a.recognizers == b.recognizers,
        (a, b) => a == b,
    }
}

/// `text` (a policy) as JSON without its `privacy:` block; `None` when it does not parse.
fn strip_privacy(text: &str) -> Option<String> {
    let mut doc: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    doc.as_object_mut()?.remove("privacy");
    serde_json::to_string(&doc).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: &str, input_type: &str) -> ColumnSpec {
        ColumnSpec {
            policy: policy.into(),
            source: "/etc/x.yaml".into(),
            field: "zip".into(),
            input_type: input_type.into(),
            output_type: "Utf8".into(),
        }
    }

    const POLICY: &str = r#"{"policy":"t","version":1,"controller":"C","jurisdictions":["EU"],"purpose":"p","unlisted":"error","fields":{"zip":{"action":"mask","keep_first":1,"keep_last":0,"basis":"contract"}}}"#;

    #[test]
    fn a_spec_from_a_plan_is_rebuilt_only_when_it_is_what_a_view_sends() {
        let ring = Keyring::planning_only();
        assert!(PolicyColumnFunc::from_spec("f", spec(POLICY, "Utf8"), &ring).is_ok());
        // A privacy block would make loading read hierarchy files: refused, not echoed.
        let hostile = POLICY.replace(
            r#""fields""#,
            r#""privacy":{"quasi_identifiers":{"zip":{"hierarchy":"passwd"}},"k":2},"fields""#,
        );
        let e = PolicyColumnFunc::from_spec("f", spec(&hostile, "Utf8"), &ring)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("no privacy block") && !e.contains("passwd"),
            "{e}"
        );
        // Arrow's type parser recurses: a deep type is refused before it.
        let deep = format!("{}Utf8{}", "List(".repeat(10_000), ")".repeat(10_000));
        assert!(PolicyColumnFunc::from_spec("f", spec(POLICY, &deep), &ring).is_err());
        // YAML, not the JSON a view sends.
        assert!(PolicyColumnFunc::from_spec("f", spec("policy: t", "Utf8"), &ring).is_err());
    }
}
