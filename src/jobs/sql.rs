//! `cloakline sql`: run a query with the functions (and optionally a policy view) registered,
//! print the result or write it atomically with a provenance sidecar.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use chrono::Utc;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use serde_json::json;

use crate::error::{Error, Result};
use crate::io::{
    AtomicFile, Format, ROW_GROUP_ROWS, ReadOptions, WriteOptions, commit_all, open_writer,
    sha256_file, table_files,
};
use crate::keys::Keyring;
use crate::policy::Policy;
use crate::sql::tables::{TableArg, df_err, register_file};

/// What a query run produced.
#[non_exhaustive]
pub enum QueryOutcome {
    /// Result batches, for printing.
    Rows(Vec<RecordBatch>),
    /// Written to a file with a sidecar.
    Written {
        rows: u64,
        output: PathBuf,
        provenance: PathBuf,
    },
}

/// One `cloakline sql` run.
#[must_use]
pub struct SqlJob {
    query: String,
    tables: Vec<TableArg>,
    keyring: Arc<Keyring>,
    policy: Option<Arc<Policy>>,
    output: Option<PathBuf>,
    read: ReadOptions,
    allow_unsafe: bool,
    cancel: crate::engine::Cancel,
}

impl SqlJob {
    /// A query over no tables yet, with no keys (keyed functions fail until a keyring is set).
    pub fn new(query: impl Into<String>) -> Self {
        SqlJob {
            query: query.into(),
            tables: Vec::new(),
            keyring: Arc::new(Keyring::default()),
            policy: None,
            output: None,
            read: ReadOptions::default(),
            allow_unsafe: false,
            cancel: crate::engine::Cancel::new(),
        }
    }

    /// Register a file or a directory of files as a table.
    pub fn with_table(mut self, table: TableArg) -> Self {
        self.tables.push(table);
        self
    }

    pub fn with_keyring(mut self, keyring: Arc<Keyring>) -> Self {
        self.keyring = keyring;
        self
    }

    /// Also register the policy's view of the first table as `<table>_shared`.
    pub fn with_policy(mut self, policy: Option<Arc<Policy>>) -> Self {
        self.policy = policy;
        self
    }

    /// Write the result (Parquet or CSV) with a provenance sidecar instead of returning rows.
    pub fn with_output(mut self, output: Option<PathBuf>) -> Self {
        self.output = output;
        self
    }

    pub fn with_read_options(mut self, read: ReadOptions) -> Self {
        self.read = read;
        self
    }

    /// Allow DDL (`CREATE EXTERNAL TABLE … LOCATION`), DML (`COPY … TO`, `INSERT`) and
    /// statements (`SET`). Off by default: they read and write files with no policy and no
    /// provenance.
    pub fn allow_unsafe(mut self, yes: bool) -> Self {
        self.allow_unsafe = yes;
        self
    }

    /// Stop the query between batches when `cancel` is cancelled; nothing is written.
    pub fn with_cancel(mut self, cancel: crate::engine::Cancel) -> Self {
        self.cancel = cancel;
        self
    }
}

/// An error while the query runs: DataFusion quotes the offending value (`Cannot cast string
/// '…'`), so quoted text is withheld.
fn exec_err(e: datafusion::error::DataFusionError) -> Error {
    Error::data("query", withhold_quoted(&e.to_string()))
}

/// `text` with every single-quoted span replaced by `'…'`.
pub(crate) fn withhold_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('\'');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut inside = true;
    for p in parts {
        if inside {
            out.push_str("'…'");
        } else {
            out.push_str(p);
        }
        inside = !inside;
    }
    out
}

impl SqlJob {
    /// Register the tables, the functions and (with a policy) the view `<first table>_shared`.
    pub async fn context(&self) -> Result<(SessionContext, Option<String>)> {
        let ctx = SessionContext::new();
        crate::sql::register(&ctx, Arc::clone(&self.keyring));
        for t in &self.tables {
            register_file(&ctx, t, self.policy.as_deref(), &self.read).await?;
        }
        let mut view = None;
        if let Some(p) = self.policy.as_deref() {
            let first = self
                .tables
                .first()
                .ok_or_else(|| Error::Usage("--policy needs a --table to apply to".into()))?;
            let name = format!("{}_shared", first.name);
            crate::sql::register_policy_view(&ctx, &first.name, p, &self.keyring, &name)
                .await
                .map_err(|e| Error::plan(first.path.display(), e))?;
            view = Some(name);
        }
        Ok((ctx, view))
    }

    /// Run the query.
    pub async fn run(self) -> Result<QueryOutcome> {
        let started = Utc::now();
        let (ctx, view) = self.context().await?;
        let df = self.plan_query(&ctx).await?;
        let used = functions_used(df.logical_plan(), view.as_deref());
        let Some(output) = self.output.clone() else {
            let batches = df.collect().await.map_err(exec_err)?;
            return Ok(QueryOutcome::Rows(batches));
        };
        let format = Format::from_path(&output)
            .filter(|f| *f != Format::Ndjson)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--output {}: use a .parquet or .csv file",
                    output.display()
                ))
            })?;
        let af = AtomicFile::create(&output)?;
        let written = self.write(df, &af, format).await?;
        let doc = self.record(started, &used, view.as_deref(), &output, format, &written)?;
        let (sidecar, side) = crate::provenance::stage_sidecar(&output, &doc)?;
        // The same commit as `apply`: data and sidecar together, or neither.
        commit_all(vec![af.stage()?, side.stage()?])?;
        Ok(QueryOutcome::Written {
            rows: written.rows,
            output,
            provenance: sidecar,
        })
    }

    /// The query planned under the safety options (no DDL, DML or statements unless allowed).
    async fn plan_query(&self, ctx: &SessionContext) -> Result<DataFrame> {
        let options = SQLOptions::new()
            .with_allow_ddl(self.allow_unsafe)
            .with_allow_dml(self.allow_unsafe)
            .with_allow_statements(self.allow_unsafe);
        ctx.sql_with_options(&self.query, options)
            .await
            .map_err(|e| match e {
                e if !self.allow_unsafe && is_refused_statement(&e) => Error::Usage(
                    "SQL: only queries are allowed: DDL (CREATE, DROP), DML (COPY, INSERT) and \
                     statements (SET) read or write files without a policy or provenance. \
                     Pass --allow-unsafe-sql to run them anyway"
                        .into(),
                ),
                e => df_err(e),
            })
    }

    /// Stream the result into `af`, encoded in row groups as `apply` writes them.
    async fn write(&self, df: DataFrame, af: &AtomicFile, format: Format) -> Result<Written> {
        let schema = Arc::new(df.schema().as_arrow().clone());
        let options = WriteOptions {
            format,
            delimiter: self.read.delimiter,
            ..Default::default()
        };
        let (encoder, mut sink) = open_writer(af.file()?, schema, &options)?;
        let mut stream = df.execute_stream().await.map_err(exec_err)?;
        let mut group = Vec::new();
        let mut group_rows = 0;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            self.cancel.check()?;
            let batch = batch.map_err(exec_err)?;
            rows += batch.num_rows() as u64;
            group_rows += batch.num_rows();
            group.push(batch);
            if group_rows >= ROW_GROUP_ROWS {
                sink.append(encoder.encode(&group)?)?;
                group.clear();
                group_rows = 0;
            }
        }
        if !group.is_empty() {
            sink.append(encoder.encode(&group)?)?;
        }
        let (sha256, bytes) = sink.finish(None)?;
        Ok(Written {
            rows,
            sha256,
            bytes,
        })
    }

    /// The provenance record of a written query result.
    fn record(
        &self,
        started: chrono::DateTime<Utc>,
        used: &PlanUse,
        view: Option<&str>,
        output: &Path,
        format: Format,
        written: &Written,
    ) -> Result<serde_json::Value> {
        let mut inputs = Vec::new();
        for t in &self.tables {
            for f in table_files(&t.path)? {
                let (h, n) = sha256_file(&f)?;
                inputs.push(json!({"table": t.name, "path": f.display().to_string(), "sha256": h, "bytes": n}));
            }
        }
        // The policy's bases and keys describe the output only when the query read its view.
        let view_used = used.functions.iter().any(|f| f == "policy view");
        let mut key_ids = used.keys.clone();
        if let (true, Some(p)) = (view_used, self.policy.as_deref()) {
            key_ids.extend(
                p.output_fields()
                    .filter_map(|f| f.action.key_id())
                    .map(str::to_string),
            );
        }
        let keys: Vec<_> = key_ids
            .iter()
            .map(|id| json!({"keyId": id, "keyFingerprint": self.keyring.get(id).ok().map(|k| k.fingerprint())}))
            .collect();
        let policy = self
            .policy
            .as_deref()
            .filter(|_| view_used)
            .map(|p| policy_summary(p, view.unwrap_or_default()));
        let raw: Vec<&String> = used
            .tables
            .iter()
            .filter(|t| self.tables.iter().any(|a| &a.name == *t))
            .collect();
        let basis = match (&policy, raw.is_empty()) {
            (Some(_), true) => json!("recorded per field of the policy view below"),
            (Some(_), false) => json!(
                "recorded per field of the policy view below for columns read through it; not known for columns read from the raw tables listed in cl:rawTablesRead: the query's author is responsible for their basis"
            ),
            (None, _) => json!(
                "not known: no policy view was used; the query's author is responsible for the basis"
            ),
        };
        Ok(json!({
            "@context": crate::provenance::context(),
            "@id": format!("urn:cloakline:sql:{}", crate::provenance::new_run_id()),
            "@type": ["prov:Activity", "cl:SqlRun"],
            "cl:format": "cloakline-sql-provenance/v1",
            "startedAtTime": started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "endedAtTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "wasAssociatedWith": format!("urn:cloakline:software:cloakline:{}", env!("CARGO_PKG_VERSION")),
            "cl:query": self.query,
            "cl:functionsUsed": used.functions,
            "cl:rawTablesRead": raw,
            "cl:keys": keys,
            "cl:inputs": inputs,
            "cl:output": {"path": output.display().to_string(), "format": format.extension(), "rows": written.rows, "sha256": written.sha256, "bytes": written.bytes},
            "cl:lawfulBasis": basis,
            "cl:policyView": policy,
        }))
    }
}

/// What writing a query result produced.
struct Written {
    rows: u64,
    sha256: String,
    bytes: u64,
}

fn policy_summary(p: &Policy, view: &str) -> serde_json::Value {
    let fields: Vec<_> = p
        .output_fields()
        .map(|f| {
            json!({
                "column": f.output_name, "sourceColumn": f.input_name, "action": f.action.kind().keyword(),
                "params": crate::provenance::action_params(&f.action),
                "status": crate::provenance::status_of(&f.action, f.category.is_some()),
                "category": f.category_term,
                "sensitive": f.sensitive,
                "lawfulBasis": f.bases.iter().filter_map(|(j, b)| b.reference(*j).map(|r| json!({
                    "jurisdiction": j.to_string(), "basis": b.keyword(), "article": r.article, "dpv": r.dpv, "term": r.legal_term
                }))).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "view": view, "policy": p.name, "version": p.version, "sha256": p.sha256, "path": p.source,
        "controller": p.controller, "purpose": p.purpose,
        "jurisdictions": p.jurisdictions.iter().map(|j| j.to_string()).collect::<Vec<_>>(),
        "fields": fields,
    })
}

/// What a query plan used: cloakline functions (`policy view` when it reads the view),
/// the key ids given to them as literals, and the tables it scans.
#[derive(Debug, Default)]
pub struct PlanUse {
    pub functions: Vec<String>,
    pub keys: Vec<String>,
    pub tables: Vec<String>,
}

/// What `plan` uses; `view` is the policy view's name, if one is registered.
pub fn functions_used(plan: &LogicalPlan, view: Option<&str>) -> PlanUse {
    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut tables = BTreeSet::new();
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) if Some(scan.table_name.table()) == view => {
                names.insert("policy view".to_string());
            }
            LogicalPlan::TableScan(scan) => {
                tables.insert(scan.table_name.table().to_string());
            }
            // Registered tables are views, inlined under an alias of their name. The policy
            // view's own scan of its raw table is not a raw read; a user's alias named like
            // the view (over anything else) is.
            LogicalPlan::SubqueryAlias(a)
                if Some(a.alias.table()) == view && calls_policy_functions(&a.input) =>
            {
                names.insert("policy view".to_string());
                return Ok(TreeNodeRecursion::Jump);
            }
            LogicalPlan::SubqueryAlias(a) => {
                tables.insert(a.alias.table().to_string());
            }
            _ => {}
        }
        let _ = node.apply_expressions(|e| {
            let _ = e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    let name = f.name();
                    if name.starts_with("cloakline_") {
                        names.insert("policy view".to_string());
                    } else if crate::sql::FUNCTION_NAMES.contains(&name) {
                        names.insert(name.to_string());
                        // The key id's position, as the transform declares it.
                        let key_arg = crate::kernels::descriptor::sql_transform(name)
                            .and_then(|t| t.sql)
                            .and_then(|s| s.key_argument);
                        if let Some(Expr::Literal(ScalarValue::Utf8(Some(k)), _)) =
                            key_arg.and_then(|i| f.args.get(i))
                        {
                            keys.insert(k.clone());
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            });
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(TreeNodeRecursion::Continue)
    });
    PlanUse {
        functions: names.into_iter().collect(),
        keys: keys.into_iter().collect(),
        tables: tables.into_iter().collect(),
    }
}

/// Whether `plan` calls a policy view's column functions (`cloakline_*`) at its top node.
fn calls_policy_functions(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_expressions(|e| {
        let _ = e.apply(|e| {
            if let Expr::ScalarFunction(f) = e
                && f.name().starts_with("cloakline_")
            {
                found = true;
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether DataFusion refused a statement for our `SQLOptions` (DDL, DML or a statement).
fn is_refused_statement(e: &datafusion::error::DataFusionError) -> bool {
    let m = e.to_string();
    m.contains("not supported")
        && (m.contains("DDL") || m.contains("DML") || m.contains("Statement"))
}

#[cfg(test)]
mod tests {
    use super::withhold_quoted;

    #[test]
    fn quoted_spans_are_withheld() {
        assert_eq!(
            withhold_quoted("Cannot cast string 'a@b.c' to Int32"),
            "Cannot cast string '…' to Int32"
        );
        assert_eq!(withhold_quoted("no quotes"), "no quotes");
        assert_eq!(withhold_quoted("x 'a' y 'b"), "x '…' y '…'");
    }
}
