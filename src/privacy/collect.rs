//! Grouping the input with DataFusion: one `GROUP BY` over the policy view gives the distinct
//! quasi-identifier tuples (as the field rules release them) with counts and sensitive-value
//! distributions, so the privacy computations never hold the records themselves. DataFusion
//! streams the file and aggregates in parallel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::hash::{Hash, Hasher};
use std::sync::RwLock;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::datatypes::{DataType, Int64Type, UInt32Type};
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use futures::StreamExt;

use super::models::Models;
use super::table::{BaseTable, BaseTableBuilder, ValueDict, utf8, value};
use crate::error::{Error, Problem, Result};
use crate::io::ReadOptions;
use crate::kernels::Generalizer;
use crate::keys::Keyring;
use crate::plan::Kernel;
use crate::policy::hierarchy::{QiHierarchy, TOP};
use crate::policy::{HierarchySource, Policy, PrivacySpec};
use crate::sql::{register_files_under, register_policy_view_gated};
use datafusion::prelude::SessionContext;

/// The grouped input with its hierarchies and models.
#[derive(Debug)]
pub struct Prepared {
    pub table: BaseTable,
    pub qis: Vec<QiHierarchy>,
    pub models: Models,
    /// Per quasi-identifier, its field rule (level 0: what the policy declares).
    pub rules: Vec<crate::policy::Field>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Group `files` (one table; `input` names it in messages) for the policy's privacy block.
/// With `hierarchies`, also build every quasi-identifier's generalization levels (needed to
/// enforce, not to check).
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    policy: &Policy,
    spec: &PrivacySpec,
    keyring: &Keyring,
    input: &Path,
    files: &[PathBuf],
    read: &ReadOptions,
    hierarchies: bool,
    consent: Option<Arc<crate::plan::consent::Ledger>>,
) -> Result<Prepared> {
    let shown = input.display().to_string();
    let ctx = SessionContext::new();
    let root = input.is_dir().then_some(input);
    register_files_under(&ctx, "input", root, files, Some(policy), read).await?;
    // The models judge what is released: rows the consent ledger removes are not counted.
    let gate = match consent {
        None => None,
        Some(ledger) => {
            let df = ctx
                .table("input")
                .await
                .map_err(|e| grouping_error(policy, files, read, &shown, e))?;
            let schema = df.schema().as_arrow().clone();
            Some(Arc::new(crate::plan::consent::ConsentGate::for_schema(
                policy, &schema, ledger, keyring, &shown,
            )?))
        }
    };
    let grouped = group(
        &ctx,
        "input",
        &shown,
        policy,
        spec,
        keyring,
        Coding::InScan,
        gate,
    )
    .await
    .map_err(|e| match e {
        Grouping::Engine(e) => grouping_error(policy, files, read, &shown, e),
        Grouping::Other(e) => e,
    })?;
    finish(
        &ctx,
        "input",
        &shown,
        policy,
        spec,
        keyring,
        grouped,
        hierarchies,
    )
    .await
}

/// Where a table is registered already: a session (a cluster's client), the table's name in
/// it, and how to name the table in messages.
pub struct Registered<'a> {
    pub ctx: &'a SessionContext,
    pub table: &'a str,
    pub shown: &'a str,
    /// The scheduler the plans run on: a failed query is a cluster error naming it.
    pub scheduler: Option<&'a str>,
}

/// [`prepare`] over a table registered in `at.ctx`, whose plans may run on other machines
/// (a Ballista cluster): the `GROUP BY` runs there on the released values, and only the
/// grouped rows come back to be coded here.
pub async fn prepare_registered(
    policy: &Policy,
    spec: &PrivacySpec,
    keyring: &Keyring,
    at: Registered<'_>,
    hierarchies: bool,
) -> Result<Prepared> {
    if policy.consent.is_some() {
        return Err(Error::Usage(format!(
            "{}: a policy with a `consent:` ledger is not supported on a cluster yet; run it \
             on one machine",
            at.shown
        )));
    }
    let grouped = group(
        at.ctx,
        at.table,
        at.shown,
        policy,
        spec,
        keyring,
        Coding::Here,
        None,
    )
    .await
    .map_err(|e| match (e, at.scheduler) {
        (Grouping::Engine(e), Some(s)) => Error::Cluster {
            scheduler: s.to_string(),
            message: format!("{}: {}", at.shown, without_data(&e.to_string())),
        },
        (Grouping::Engine(e), None) => df_error(at.shown, e),
        (Grouping::Other(e), _) => e,
    })?;
    finish(
        at.ctx,
        at.table,
        at.shown,
        policy,
        spec,
        keyring,
        grouped,
        hierarchies,
    )
    .await
}

/// Where values become the small integer codes the models work on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coding {
    /// Inside the scan, by a function sharing this process's dictionaries (DataFusion then
    /// groups integers, not strings).
    InScan,
    /// Here, on the grouped rows: the plan holds no state, so it can run anywhere.
    Here,
}

enum Grouping {
    /// A failure of the query engine (reading, grouping).
    Engine(datafusion::error::DataFusionError),
    Other(Error),
}

impl From<Error> for Grouping {
    fn from(e: Error) -> Self {
        Grouping::Other(e)
    }
}

/// The base table of `table` (registered in `ctx`).
#[allow(clippy::too_many_arguments)]
async fn group(
    ctx: &SessionContext,
    table: &str,
    shown: &str,
    policy: &Policy,
    spec: &PrivacySpec,
    keyring: &Keyring,
    coding: Coding,
    gate: Option<Arc<crate::plan::consent::ConsentGate>>,
) -> std::result::Result<BaseTable, Grouping> {
    let grouping = grouping_policy(policy, spec);
    let view = format!("{table}_shared");
    register_policy_view_gated(ctx, table, &grouping, keyring, &view, gate)
        .await
        .map_err(|e| crate::sql::view_error(shown, e))?;
    let qi_names: Vec<String> = spec
        .quasi_identifiers
        .iter()
        .map(|q| q.field.clone())
        .collect();
    let mut sa_names = spec.sensitive_attributes();
    // The subject is grouped like a sensitive attribute that no report names.
    sa_names.extend(spec.subject.iter().cloned());
    let dicts: Vec<Arc<RwLock<ValueDict>>> = (0..qi_names.len() + sa_names.len())
        .map(|_| Arc::new(RwLock::new(ValueDict::default())))
        .collect();
    let sql = grouping_sql(ctx, &grouping, &qi_names, &sa_names, &dicts, &view, coding);
    let mut groups = group_rows(ctx, &sql).await.map_err(Grouping::Engine)?;
    if coding == Coding::Here {
        groups = code_groups(&groups, &dicts).map_err(|m| Error::data(shown, m))?;
    }
    Ok(build_table(&dicts, &groups, qi_names, sa_names, shown)?)
}

/// Hierarchies, the size check and the models, on the grouped table.
#[allow(clippy::too_many_arguments)]
async fn finish(
    ctx: &SessionContext,
    table_name: &str,
    shown: &str,
    policy: &Policy,
    spec: &PrivacySpec,
    keyring: &Keyring,
    table: BaseTable,
    hierarchies: bool,
) -> Result<Prepared> {
    let qis = build_hierarchies(
        ctx,
        table_name,
        policy,
        spec,
        keyring,
        &table,
        hierarchies,
        shown,
    )
    .await?;
    if let Some(k) = spec.k
        && k > table.rows
    {
        return Err(Error::plan(
            shown,
            format!(
                "k = {k} exceeds the {} records in the input; no release of it can be \
                 {k}-anonymous",
                table.rows
            ),
        ));
    }
    let models = Models::new(spec, &table).map_err(|m| Error::plan(shown, m))?;
    let rules = spec
        .quasi_identifiers
        .iter()
        .map(|q| {
            policy
                .fields
                .get(&q.field)
                .cloned()
                .ok_or_else(|| Error::Usage(format!("internal: no rule for `{}`", q.field)))
        })
        .collect::<Result<_>>()?;
    Ok(Prepared {
        table,
        qis,
        models,
        rules,
    })
}

/// Code grouped rows of released values (one column per quasi-identifier and sensitive
/// attribute, then the count) into the form the in-scan coding gives. Values that differ in
/// the engine but print alike (the models compare printed values) are merged.
fn code_groups(
    groups: &[arrow::array::RecordBatch],
    dicts: &[Arc<RwLock<ValueDict>>],
) -> std::result::Result<Vec<arrow::array::RecordBatch>, Problem> {
    let width = dicts.len();
    let mut merged: HashMap<Vec<u32>, i64> = HashMap::new();
    for batch in groups {
        let mut coded = Vec::with_capacity(width);
        for (i, dict) in dicts.iter().enumerate() {
            let s = utf8(batch.column(i))?;
            let v = s.as_string::<i32>();
            coded.push(code_values(dict, v.len(), |r| value(v, r))?);
        }
        let n = batch
            .column(width)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| Problem::new("the grouped counts are not 64-bit integers"))?;
        for r in 0..batch.num_rows() {
            let key: Vec<u32> = coded.iter().map(|c| c[r]).collect();
            *merged.entry(key).or_default() += n.value(r).max(0);
        }
    }
    let mut cols: Vec<Vec<u32>> = vec![Vec::with_capacity(merged.len()); width];
    let mut counts = Vec::with_capacity(merged.len());
    for (key, n) in merged {
        for (c, k) in cols.iter_mut().zip(key) {
            c.push(k);
        }
        counts.push(n);
    }
    let mut arrays: Vec<ArrayRef> = cols
        .into_iter()
        .map(|c| Arc::new(UInt32Array::from(c)) as ArrayRef)
        .collect();
    arrays.push(Arc::new(arrow::array::Int64Array::from(counts)));
    let batch = arrow::array::RecordBatch::try_from_iter(
        arrays
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("c{i}"), a)),
    )
    .map_err(|e| Problem(e.to_string()))?;
    Ok(vec![batch])
}

/// A fresh salt for the subject's digests (hex: safe inside an SQL literal).
fn subject_salt() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Output name of the subject column in the grouping view (never written anywhere).
const SUBJECT_COLUMN: &str = "__cloakline_subject";

/// The policy the grouping pass runs: only the columns the models read (quasi-identifiers,
/// sensitive attributes, subject), so other columns' keys are not needed. Columns whose rule
/// takes a key (tokenize, encrypt, scrub with tokens) and the subject are grouped on their
/// input values: tokenization is injective per key, so classes and distinct counts are the
/// same as on tokens, and no key is needed.
fn grouping_policy(policy: &Policy, spec: &PrivacySpec) -> Policy {
    let mut p = policy.clone();
    p.unlisted = crate::policy::Unlisted::Drop;
    let needed: Vec<String> = spec
        .quasi_identifiers
        .iter()
        .map(|q| q.field.clone())
        .chain(spec.sensitive_attributes())
        .collect();
    p.fields.retain(|name, _| needed.contains(name));
    for f in p.fields.values_mut() {
        if f.action.key_id().is_some() {
            f.action = crate::policy::Action::Keep;
        }
    }
    if let Some(subject) = &spec.subject
        && let Some(rule) = policy.fields.get(subject)
    {
        let mut rule = rule.clone();
        rule.action = crate::policy::Action::Keep;
        rule.output_name = SUBJECT_COLUMN.into();
        p.fields.insert(subject.clone(), rule);
    }
    p
}

/// A DataFusion error as a data error on `shown`; library messages may quote the value or
/// row that failed, so they are stripped.
fn df_error(shown: &str, e: datafusion::error::DataFusionError) -> Error {
    Error::data(shown, without_data(&e.to_string()))
}

/// Register one coding function per column (into `dicts`, QIs then sensitive attributes)
/// and return the `GROUP BY` over the coded columns of `view`.
fn grouping_sql(
    ctx: &SessionContext,
    policy: &Policy,
    qi_names: &[String],
    sa_names: &[String],
    dicts: &[Arc<RwLock<ValueDict>>],
    view: &str,
    coding: Coding,
) -> String {
    let out_name = |f: &str| {
        policy
            .fields
            .get(f)
            .map(|r| r.output_name.clone())
            .unwrap_or_else(|| f.to_string())
    };
    let mut inner = Vec::new();
    let mut outer = Vec::new();
    for (i, (col, dict)) in qi_names.iter().chain(sa_names).zip(dicts).enumerate() {
        let column = quote(&out_name(col));
        match coding {
            Coding::InScan => {
                let f = format!("cloakline_code_{i}");
                ctx.register_udf(ScalarUDF::new_from_impl(CodeFunc::new(
                    &f,
                    Arc::clone(dict),
                )));
                inner.push(format!("{f}({column}) AS __cl_{i}"));
            }
            // The subject is only counted: it leaves the executors as a salted digest, so
            // no subject identifier reaches this process (and equal values stay equal).
            Coding::Here if out_name(col) == SUBJECT_COLUMN => inner.push(format!(
                "CASE WHEN {column} IS NULL THEN NULL ELSE \
                 encode(sha256(concat('{salt}', CAST({column} AS VARCHAR))), 'hex') END \
                 AS __cl_{i}",
                salt = subject_salt()
            )),
            Coding::Here => inner.push(format!("{column} AS __cl_{i}")),
        }
        outer.push(format!("__cl_{i}"));
    }
    let list = outer.join(", ");
    format!(
        "SELECT {list}, COUNT(*) AS __cl_n FROM (SELECT {} FROM {}) GROUP BY {list}",
        inner.join(", "),
        quote(view)
    )
}

/// The error to report when grouping fails. DataFusion scans a file in parallel byte ranges
/// and counts lines from a range's start: read the files in order to report the file and
/// line of the first error.
fn grouping_error(
    policy: &Policy,
    files: &[PathBuf],
    read: &ReadOptions,
    shown: &str,
    e: datafusion::error::DataFusionError,
) -> Error {
    match first_read_error(policy, files, read) {
        Some(Error::Data { path, message }) => Error::Data {
            path,
            message: without_data(&message),
        },
        Some(other) => other,
        None => df_error(shown, e),
    }
}

/// The base table from the grouped rows (coded columns, then the count) and the filled
/// dictionaries.
fn build_table(
    dicts: &[Arc<RwLock<ValueDict>>],
    groups: &[arrow::array::RecordBatch],
    qi_names: Vec<String>,
    sa_names: Vec<String>,
    shown: &str,
) -> Result<BaseTable> {
    let m = qi_names.len();
    let mut taken = Vec::with_capacity(dicts.len());
    for d in dicts {
        let mut g = d
            .write()
            .map_err(|_| Error::Internal("a grouping worker panicked".into()))?;
        taken.push(std::mem::take(&mut *g));
    }
    let sa_dicts = taken.split_off(m);
    let width = m + sa_names.len();
    let mut builder = BaseTableBuilder::from_dicts(qi_names, sa_names, taken, sa_dicts);
    let mut codes = vec![0u32; width];
    for batch in groups {
        let cols: Vec<_> = (0..width)
            .map(|i| batch.column(i).as_primitive::<UInt32Type>())
            .collect();
        let n = batch.column(width).as_primitive::<Int64Type>();
        for r in 0..batch.num_rows() {
            for (c, col) in codes.iter_mut().zip(&cols) {
                *c = col.value(r);
            }
            let n = n.value(r).max(0) as u64;
            // Without sensitive attributes the groups are exactly the distinct tuples.
            if width == m {
                builder.add_distinct(&codes, n)
            } else {
                builder.add_codes(&codes[..m], &codes[m..], n)
            }
            .map_err(|msg| Error::data(shown, msg))?;
        }
    }
    Ok(builder.finish())
}

/// Every quasi-identifier's hierarchy; only level 0 unless `hierarchies` is set.
#[allow(clippy::too_many_arguments)]
async fn build_hierarchies(
    ctx: &SessionContext,
    table_name: &str,
    policy: &Policy,
    spec: &PrivacySpec,
    keyring: &Keyring,
    table: &BaseTable,
    hierarchies: bool,
    shown: &str,
) -> Result<Vec<QiHierarchy>> {
    let df_err = |e| df_error(shown, e);
    let mut qis = Vec::with_capacity(spec.quasi_identifiers.len());
    for (i, q) in spec.quasi_identifiers.iter().enumerate() {
        let values = &table.qi_values[i];
        let h = match (&q.hierarchy, hierarchies) {
            (_, false) => QiHierarchy::build(&q.field, values, Vec::new()),
            (HierarchySource::File(h), true) => QiHierarchy::from_arx(&q.field, values, h),
            (HierarchySource::Levels(specs), true) => {
                let sql = format!(
                    "SELECT DISTINCT {} FROM {}",
                    quote(&q.field),
                    quote(table_name)
                );
                let batches = ctx
                    .sql(&sql)
                    .await
                    .map_err(df_err)?
                    .collect()
                    .await
                    .map_err(df_err)?;
                let rule = policy
                    .fields
                    .get(&q.field)
                    .ok_or_else(|| Error::Usage(format!("internal: no rule for `{}`", q.field)))?;
                level_labels(&q.field, rule, specs, values, &batches, keyring)
            }
        }
        .map_err(|m| Error::plan(shown, m))?;
        qis.push(h);
    }
    Ok(qis)
}

async fn group_rows(ctx: &SessionContext, sql: &str) -> DFResult<Vec<arrow::array::RecordBatch>> {
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    let mut groups = Vec::new();
    while let Some(batch) = stream.next().await {
        groups.push(batch?);
    }
    Ok(groups)
}

/// The first error met reading `files` in order with the engine's reader (whose errors name
/// the file and its own line numbers), if reading fails at all.
fn first_read_error(policy: &Policy, files: &[PathBuf], read: &ReadOptions) -> Option<Error> {
    let overrides = |s: &arrow::datatypes::Schema| crate::plan::apply_type_overrides(policy, s);
    for f in files {
        let fmt = crate::io::Format::from_path(f)?;
        if fmt == crate::io::Format::Parquet {
            continue;
        }
        let batches =
            match crate::io::Input::open(f, fmt, read, &overrides).and_then(|i| i.batches()) {
                Ok(b) => b,
                Err(e) => return Some(e),
            };
        for b in batches {
            if let Err(e) = b {
                return Some(e);
            }
        }
    }
    None
}

/// A library error message without the data it may quote: arrow's CSV reader appends
/// `Row data: '[...]'` and names the value (`parsing value '...'`), its JSON reader writes
/// `failed to parse "..." as`, and date parse errors end in the text that failed.
pub(crate) fn without_data(message: &str) -> String {
    let mut m = message.to_string();
    if let Some(i) = m.find("Row data:") {
        m.truncate(i);
    }
    const VALUE: &str = "parsing value '";
    if let Some(i) = m.find(VALUE)
        && let Some(j) = m[i + VALUE.len()..].find("' as type")
    {
        m.replace_range(i..i + VALUE.len() + j + 1, "parsing a value");
    }
    const PARSE: &str = "failed to parse ";
    if let Some(i) = m.find(PARSE)
        && let Some(j) = m[i..].rfind(" as ")
    {
        m.replace_range(i..i + j, "failed to parse a value");
    }
    // "Error parsing column 3 at line 7: <what failed>": keep the position only.
    if let Some(i) = m.find("Error parsing column ")
        && let Some(j) = m[i..].find(": ")
    {
        m.truncate(i + j);
    }
    m.trim_end().trim_end_matches('.').to_string()
}

/// Levels of a quasi-identifier defined by `levels:` specs: level 0 is the field rule's
/// output, then each spec, then `*`. Computed on the column's distinct raw values.
fn level_labels(
    name: &str,
    rule: &crate::policy::Field,
    specs: &[crate::policy::GeneralizeSpec],
    base_values: &[Option<String>],
    batches: &[arrow::array::RecordBatch],
    keyring: &Keyring,
) -> std::result::Result<QiHierarchy, Problem> {
    let arrays: Vec<ArrayRef> = batches.iter().map(|b| Arc::clone(b.column(0))).collect();
    let raw: ArrayRef = match arrays.as_slice() {
        [] => {
            return QiHierarchy::build(
                name,
                base_values,
                vec![vec![Some(TOP.into()); base_values.len()]],
            );
        }
        [one] => Arc::clone(one),
        many => {
            let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs).map_err(|e| Problem(e.to_string()))?
        }
    };
    let dt = raw.data_type().clone();
    let (base_kernel, _) = Kernel::build(&rule.action, &dt, keyring)
        .map_err(|e| Problem(format!("quasi-identifier `{name}`: {e}")))?;
    let level0 = utf8(
        &base_kernel
            .apply(&raw)
            .map_err(|e| Problem(e.to_string()))?,
    )?;
    let mut levels = Vec::with_capacity(specs.len());
    for (j, s) in specs.iter().enumerate() {
        let g = Generalizer::new(s, &dt)
            .map_err(|e| Problem(format!("quasi-identifier `{name}`, level {}: {e}", j + 1)))?;
        levels.push(utf8(&g.apply(&raw).map_err(|e| Problem(e.to_string()))?)?);
    }
    let l0 = level0.as_string::<i32>();
    let lv: Vec<_> = levels.iter().map(|a| a.as_string::<i32>()).collect();
    let get =
        |a: &arrow::array::StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    // Level-0 label -> labels above it; every raw value with that label must agree.
    let mut above: HashMap<Option<String>, Vec<Option<String>>> = HashMap::new();
    for i in 0..raw.len() {
        let key = get(l0, i);
        let labels: Vec<Option<String>> = lv.iter().map(|a| get(a, i)).collect();
        match above.get(&key) {
            Some(prev) => {
                // No values in the message: errors never carry data.
                if let Some(j) = (0..labels.len()).find(|&j| prev[j] != labels[j]) {
                    return Err(Problem(format!(
                        "quasi-identifier `{name}`: levels do not nest: values in one group at \
                         level 0 (the field rule's output) fall in different groups at level {}; choose levels where each \
                         group lies inside one group of the next level (e.g. bin widths 5, 10, 20)",
                        j + 1
                    )));
                }
            }
            None => {
                above.insert(key, labels);
            }
        }
    }
    let mut higher: Vec<Vec<Option<String>>> =
        vec![Vec::with_capacity(base_values.len()); specs.len() + 1];
    for v in base_values {
        let labels = above.get(v).ok_or_else(|| {
            Problem(format!(
                "quasi-identifier `{name}`: a value appeared while grouping but not among the \
                 column's distinct values; did the input change during the run?"
            ))
        })?;
        for (j, l) in labels.iter().enumerate() {
            higher[j].push(l.clone());
        }
        higher[specs.len()].push(Some(TOP.into()));
    }
    QiHierarchy::build(name, base_values, higher)
}

/// Codes a column's values into the shared dictionary and returns the codes.
struct CodeFunc {
    name: String,
    dict: Arc<RwLock<ValueDict>>,
    signature: Signature,
}

impl CodeFunc {
    fn new(name: &str, dict: Arc<RwLock<ValueDict>>) -> Self {
        CodeFunc {
            name: name.to_string(),
            dict,
            signature: Signature::any(1, Volatility::Volatile),
        }
    }
}

impl std::fmt::Debug for CodeFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeFunc")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for CodeFunc {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.dict, &other.dict)
    }
}
impl Eq for CodeFunc {}
impl Hash for CodeFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        (Arc::as_ptr(&self.dict) as usize).hash(state);
    }
}

impl ScalarUDFImpl for CodeFunc {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::UInt32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let err = |m: Problem| {
            datafusion::error::DataFusionError::Execution(format!("{}: {m}", self.name))
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = arrays
            .first()
            .ok_or_else(|| err("needs one argument".into()))?;
        // Strings are read in place (Parquet gives Utf8View); other types via their text.
        let out = match a.data_type() {
            DataType::Utf8View => {
                let v = a.as_string_view();
                code_values(&self.dict, v.len(), |r| (!v.is_null(r)).then(|| v.value(r)))
            }
            DataType::LargeUtf8 => {
                let v = a.as_string::<i64>();
                code_values(&self.dict, v.len(), |r| (!v.is_null(r)).then(|| v.value(r)))
            }
            _ => {
                let s = utf8(a).map_err(err)?;
                let v = s.as_string::<i32>();
                code_values(&self.dict, v.len(), |r| value(v, r))
            }
        }
        .map_err(err)?;
        Ok(ColumnarValue::Array(Arc::new(UInt32Array::from(out))))
    }
}

/// Code `len` values in `dict`. Most values are known: they are looked up under a shared
/// lock (partitions scan in parallel); only new ones take the exclusive lock.
fn code_values<'a>(
    dict: &RwLock<ValueDict>,
    len: usize,
    get: impl Fn(usize) -> Option<&'a str>,
) -> std::result::Result<Vec<u32>, Problem> {
    let mut out = vec![0u32; len];
    let mut missing = Vec::new();
    {
        let d = dict.read().map_err(|_| Problem::new("poisoned"))?;
        for (r, o) in out.iter_mut().enumerate() {
            match d.get(get(r)) {
                Some(c) => *o = c,
                None => missing.push(r),
            }
        }
    }
    if !missing.is_empty() {
        let mut d = dict.write().map_err(|_| Problem::new("poisoned"))?;
        for r in missing {
            out[r] = d.code(get(r));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::without_data;

    #[test]
    fn library_messages_lose_the_data_they_quote() {
        let cases = [
            (
                "Arrow error: Parser error: Error while parsing value 'u20000@example.com' as type 'Int64' for column 1 at line 3. Row data: '[oops,u20000@example.com,n]'",
                "Arrow error: Parser error: Error while parsing a value as type 'Int64' for column 1 at line 3",
            ),
            (
                "Json error: failed to parse \"secret as x\" as Int64",
                "Json error: failed to parse a value as Int64",
            ),
            (
                "Parser error: Error parsing column 2 at line 9: secret-date is not a date",
                "Parser error: Error parsing column 2 at line 9",
            ),
            (
                "Csv error: Encountered unequal lengths between records on CSV file. Expected 3 records, found 2 records at line 3",
                "Csv error: Encountered unequal lengths between records on CSV file. Expected 3 records, found 2 records at line 3",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(without_data(raw), want);
        }
    }
}
