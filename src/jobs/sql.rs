//! `cloakline sql`: run a query with the functions (and optionally a policy view) registered,
//! print the result or write it atomically with a provenance sidecar.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::io::{
    AtomicFile, Format, Location, ROW_GROUP_ROWS, ReadOptions, WriteOptions, commit_all,
    open_writer, sha256_file, table_files,
};
use crate::keys::Keyring;
use crate::policy::Policy;
use crate::provenance::record::{DatasetNode, KeyUse, Node, RunKind, Summary};
use crate::provenance::{
    DatasetRecord, FieldFacts, Ids, PolicySummary, Record, field_node, new_run_id,
};
use crate::sql::tables::{TableArg, df_err, register_file};
use crate::sql::withhold_quoted;

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
    output: Option<Location>,
    read: ReadOptions,
    allow_unsafe: bool,
    cancel: crate::engine::Cancel,
    storage: crate::io::store::StorageOptions,
    /// URL tables fetched to scratch: (scratch path, URL) pairs and the objects read.
    shown: Vec<(String, String)>,
    fetched: Vec<crate::io::store::FetchedObject>,
    /// A cluster's scheduler (`df://host:port`): the query runs there.
    cluster: Option<String>,
    /// The consent ledger instead of the policy's, and the time consent is judged at.
    consent: crate::plan::consent::ConsentOptions,
    /// The policy view's consent gate, once registered: its tally goes into the record.
    gate: Arc<std::sync::Mutex<Option<Arc<crate::plan::consent::ConsentGate>>>>,
    /// On a cluster, URL tables are read in place: their objects as listed (URL, ETag,
    /// version, size), recorded without a SHA-256 (nothing streams them whole).
    listed: Vec<(String, bool, Vec<crate::io::store::Listed>)>,
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
            storage: Default::default(),
            shown: Vec::new(),
            fetched: Vec::new(),
            cluster: None,
            consent: Default::default(),
            gate: Default::default(),
            listed: Vec::new(),
        }
    }

    /// With a policy that has a `consent:` block: read the ledger from `o.ledger` instead of
    /// the policy's, judge consent as of `o.as_of` instead of now, keep its map within
    /// `o.memory`.
    pub fn with_consent(mut self, o: crate::plan::consent::ConsentOptions) -> Self {
        self.consent = o;
        self
    }

    /// Run on the cluster whose scheduler is at `url` (`df://host:port`): tables are read
    /// where they are (URLs, or paths every executor sees), the result comes back here.
    pub fn with_cluster(mut self, url: Option<String>) -> Self {
        self.cluster = url;
        self
    }

    /// Settings of the object stores URL tables or a URL output are in (docs/STORAGE.md).
    pub fn with_storage_options(mut self, options: crate::io::store::StorageOptions) -> Self {
        self.storage = options;
        self
    }

    fn show(&self, text: &str) -> String {
        self.shown.iter().fold(text.to_string(), |t, (a, b)| {
            crate::io::store::relocate(&t, a, b)
        })
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
    pub fn with_output(mut self, output: impl Into<Location>) -> Self {
        self.output = Some(output.into());
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

/// Longest operator chain accepted in one expression. DataFusion plans (and clones) a chain
/// like `1+1+…` recursively: 8,000 links overflowed the stack of a debug build, an abort no
/// error handler sees. Nesting by parentheses is bounded by the parser already (depth 50).
pub const MAX_OPERATOR_CHAIN: usize = 2_000;

/// Refuse a query with an operator chain longer than [`MAX_OPERATOR_CHAIN`], counted on the
/// tokens (no recursion): operators at one parenthesis level, between commas and clause
/// keywords. It over-counts (`a = 1 AND b = 2` is three), never under-counts.
fn check_chains(query: &str) -> Result<()> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    // Unparseable text is the parser's to report, with its position.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, query).tokenize() else {
        return Ok(());
    };
    let mut levels: Vec<usize> = vec![0];
    let mut longest = 0;
    for t in tokens {
        let op = match &t {
            Token::LParen => {
                levels.push(0);
                false
            }
            Token::RParen => {
                if levels.len() > 1 {
                    levels.pop();
                }
                false
            }
            Token::Comma | Token::SemiColon => {
                if let Some(n) = levels.last_mut() {
                    *n = 0;
                }
                false
            }
            Token::Word(w) => match w.keyword {
                Keyword::AND | Keyword::OR => true,
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::ON
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::UNION => {
                    if let Some(n) = levels.last_mut() {
                        *n = 0;
                    }
                    false
                }
                _ => false,
            },
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::DuckIntDiv
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe
            | Token::ShiftLeft
            | Token::ShiftRight => true,
            _ => false,
        };
        if op && let Some(n) = levels.last_mut() {
            *n += 1;
            longest = longest.max(*n);
        }
    }
    if longest > MAX_OPERATOR_CHAIN {
        return Err(Error::Usage(format!(
            "SQL: an expression chains {longest} operators; cloakline accepts up to \
             {MAX_OPERATOR_CHAIN} in one expression (the planner recurses over the chain and \
             would overflow its stack). Split it, or use `IN (…)` for a long OR chain"
        )));
    }
    Ok(())
}

/// An error while the query runs: DataFusion quotes the offending value (`Cannot cast string
/// '…'`), so quoted text is withheld.
fn exec_err(e: datafusion::error::DataFusionError) -> Error {
    Error::data("query", withhold_quoted(&e.to_string()))
}

impl SqlJob {
    /// Register the tables, the functions and (with a policy) the view `<first table>_shared`.
    pub async fn context(&self) -> Result<(SessionContext, Option<String>)> {
        let ctx = match &self.cluster {
            None => {
                let ctx = SessionContext::new();
                crate::sql::register(&ctx, Arc::clone(&self.keyring));
                ctx
            }
            Some(url) => self.cluster_context(url).await?,
        };
        for t in &self.tables {
            match t.path.to_str().map(Location::parse) {
                Some(Location::Url(u)) if self.cluster.is_some() => {
                    let Some((_, object, objects)) =
                        self.listed.iter().find(|(n, _, _)| *n == t.name)
                    else {
                        return Err(Error::Usage(format!(
                            "--table {}: cannot tell its format",
                            t.name
                        )));
                    };
                    let table = super::cluster_input::ListedTable {
                        object: *object,
                        objects: objects.clone(),
                    };
                    let what = format!("--table {}", t.name);
                    super::cluster_input::register(
                        &ctx,
                        &t.name,
                        &what,
                        &u,
                        &table,
                        self.policy.as_deref(),
                        &self.read,
                    )
                    .await?
                }
                _ => register_file(&ctx, t, self.policy.as_deref(), &self.read).await?,
            }
        }
        self.consent.check_for(self.policy.as_deref())?;
        let mut view = None;
        if let Some(p) = self.policy.as_deref() {
            let first = self
                .tables
                .first()
                .ok_or_else(|| Error::Usage("--policy needs a --table to apply to".into()))?;
            let name = format!("{}_shared", first.name);
            let shown = first.path.display().to_string();
            // The ledger's removals hold in the view as in `apply` (judged as of now).
            let gate = match &p.consent {
                None => None,
                Some(_) if self.cluster.is_some() => {
                    return Err(Error::Usage(
                        "sql --cluster: a policy with a `consent:` ledger is not supported on a \
                         cluster yet; run the query without --cluster"
                            .into(),
                    ));
                }
                Some(_) => {
                    use crate::plan::consent::ConsentGate;
                    let ledger = self
                        .consent
                        .load(p, chrono::Utc::now(), None, &self.storage)
                        .await?
                        .ok_or_else(|| {
                            Error::Internal("a consent block without a ledger".into())
                        })?;
                    let df = ctx
                        .table(first.name.as_str())
                        .await
                        .map_err(|e| crate::sql::view_error(&shown, e))?;
                    let schema = df.schema().as_arrow().clone();
                    Some(Arc::new(ConsentGate::for_schema(
                        p,
                        &schema,
                        Arc::new(ledger),
                        &self.keyring,
                        &shown,
                    )?))
                }
            };
            if let (Some(g), Ok(mut held)) = (&gate, self.gate.lock()) {
                *held = Some(Arc::clone(g));
            }
            crate::sql::register_policy_view_gated(
                &ctx,
                &first.name,
                p,
                &self.keyring,
                &name,
                gate,
            )
            .await
            .map_err(|e| crate::sql::view_error(&shown, e))?;
            view = Some(name);
        }
        Ok((ctx, view))
    }

    /// The keys whose fingerprints the record may state. On a cluster the executors used
    /// their own keyrings, which this process cannot see: no fingerprint is claimed.
    fn recorded_keys(&self) -> &Keyring {
        static NONE: std::sync::OnceLock<Keyring> = std::sync::OnceLock::new();
        match self.cluster {
            Some(_) => NONE.get_or_init(Keyring::default),
            None => self.keyring.as_ref(),
        }
    }

    /// A failed query: on a cluster, a cluster error naming the scheduler.
    fn exec_error(&self, e: datafusion::error::DataFusionError) -> Error {
        if let Some(bad) = self.undecodable_table(&e) {
            return bad;
        }
        match &self.cluster {
            Some(url) => Error::Cluster {
                scheduler: url.clone(),
                message: withhold_quoted(&e.to_string()),
            },
            None => exec_err(e),
        }
    }

    /// A table file DataFusion could not decode, met while planning (statistics) or running
    /// the query: a data error naming the tables (DataFusion does not say which file), not a
    /// mistake in the SQL.
    fn undecodable_table(&self, e: &datafusion::error::DataFusionError) -> Option<Error> {
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| format!("{} ({})", t.name, self.show(&t.path.display().to_string())))
            .collect();
        let which = match tables.len() {
            1 => format!("table {}", tables[0]),
            _ => format!("one of the tables {}", tables.join(", ")),
        };
        crate::sql::tables::undecodable(e, which)
    }

    #[cfg(feature = "cluster")]
    async fn cluster_context(&self, url: &str) -> Result<SessionContext> {
        crate::cluster::connect(url, Arc::clone(&self.keyring), &self.storage).await
    }

    #[cfg(not(feature = "cluster"))]
    async fn cluster_context(&self, url: &str) -> Result<SessionContext> {
        Err(Error::Usage(format!(
            "--cluster {url}: this cloakline was built without the `cluster` feature"
        )))
    }

    /// Run the query.
    pub async fn run(mut self) -> Result<QueryOutcome> {
        use crate::io::store::{Local, ReleaseFiles, Remote, RemoteRelease};
        // URL tables: fetched to scratch (kept until the run ends), shown as their URLs; on a
        // cluster, read in place and only listed here.
        let mut held = Vec::new();
        for i in 0..self.tables.len() {
            let Some(loc @ Location::Url(_)) = self.tables[i].path.to_str().map(Location::parse)
            else {
                continue;
            };
            if let (Some(_), Location::Url(u)) = (&self.cluster, &loc) {
                let what = format!("--table {}", self.tables[i].name);
                let t = super::cluster_input::list(&what, u, &self.storage).await?;
                self.listed
                    .push((self.tables[i].name.clone(), t.object, t.objects));
                continue;
            }
            let l = Local::of(&loc, &self.storage, |p| Format::from_path(p).is_some()).await?;
            let from = l.path.display().to_string();
            self.shown.push((from.clone(), l.show(&from)));
            self.fetched
                .extend(l.fetched.iter().flat_map(|f| f.objects.iter().cloned()));
            self.tables[i].path = l.path.clone();
            held.push(l);
        }
        // A URL output: written to scratch as a local one is, then published.
        let mut release = None;
        let mut out_scratch = None;
        if let Some(Location::Url(u)) = &self.output {
            let remote = Remote::open(u, &self.storage)?;
            let scratch = crate::io::ScratchDir::create()?;
            let name = remote
                .shown()
                .rsplit('/')
                .next()
                .unwrap_or("output")
                .to_string();
            let local = scratch.path().join(name);
            self.shown
                .push((local.display().to_string(), remote.shown()));
            release = Some((
                RemoteRelease::begin(remote.clone(), false, true, &new_run_id()).await?,
                remote,
                local.clone(),
            ));
            self.output = Some(Location::Local(local));
            out_scratch = Some(scratch);
        }
        let shown = self.shown.clone();
        let cancel = self.cancel.clone();
        let result = self.run_local().await;
        let relocate = |e: Error| shown.iter().fold(e, |e, (a, b)| e.relocated(a, b));
        let outcome = match (result, release) {
            (Err(e), Some((rel, _, _))) => {
                rel.abort().await;
                return Err(relocate(e));
            }
            (Err(e), None) => return Err(relocate(e)),
            (
                Ok(QueryOutcome::Written {
                    rows,
                    output,
                    provenance,
                }),
                Some((rel, remote, _)),
            ) => {
                rel.publish(
                    ReleaseFiles {
                        data: &output,
                        is_dir: false,
                        sidecar: &provenance,
                    },
                    &|| cancel.is_cancelled(),
                )
                .await
                .map_err(relocate)?;
                QueryOutcome::Written {
                    rows,
                    output: PathBuf::from(remote.shown()),
                    provenance: PathBuf::from(
                        remote.with_suffix(crate::io::store::SIDECAR_SUFFIX).shown(),
                    ),
                }
            }
            (Ok(o), _) => o,
        };
        drop((held, out_scratch));
        Ok(outcome)
    }

    async fn run_local(self) -> Result<QueryOutcome> {
        let started = Utc::now();
        let (ctx, view) = self.context().await?;
        tracing::info!(
            tables = self.tables.len(),
            policy_view = view.is_some(),
            "sql: tables registered"
        );
        let df = self.plan_query(&ctx).await?;
        let used = functions_used(df.logical_plan(), view.as_deref());
        let Some(output) = self.output.clone() else {
            let batches = df.collect().await.map_err(|e| self.exec_error(e))?;
            self.tables_unchanged().await?;
            tracing::debug!(batches = batches.len(), "sql: result collected");
            return Ok(QueryOutcome::Rows(batches));
        };
        let output = output.local()?.to_path_buf();
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
        let schemas = match (&view, self.tables.first()) {
            (Some(v), Some(t)) => Some((
                table_schema(&ctx, &t.name).await?,
                table_schema(&ctx, v).await?,
            )),
            _ => None,
        };
        let view_info = match (&view, &schemas) {
            (Some(v), Some((table, shared))) => Some((v.as_str(), table.as_ref(), shared.as_ref())),
            _ => None,
        };
        let record = self.record(started, &used, view_info, &output, format, &written)?;
        let (sidecar, side) = crate::provenance::stage_sidecar(&output, &record.to_json())?;
        // The same commit as `apply`: data and sidecar together, or neither.
        self.tables_unchanged().await?;
        commit_all(vec![af.stage()?, side.stage()?])?;
        Ok(QueryOutcome::Written {
            rows: written.rows,
            output,
            provenance: sidecar,
        })
    }

    /// On a cluster: the URL tables' objects are still those listed (and recorded).
    async fn tables_unchanged(&self) -> Result<()> {
        for (name, _, objects) in &self.listed {
            let url = self
                .tables
                .iter()
                .find(|t| t.name == *name)
                .and_then(|t| t.path.to_str());
            if let Some(url) = url {
                let what = format!("--table {name}");
                super::cluster_input::unchanged(&what, url, &self.storage, objects).await?;
            }
        }
        Ok(())
    }

    /// The query planned under the safety options (no DDL, DML or statements unless allowed).
    async fn plan_query(&self, ctx: &SessionContext) -> Result<DataFrame> {
        check_chains(&self.query)?;
        let options = SQLOptions::new()
            .with_allow_ddl(self.allow_unsafe)
            .with_allow_dml(self.allow_unsafe)
            .with_allow_statements(self.allow_unsafe);
        ctx.sql_with_options(&self.query, options)
            .await
            .map_err(|e| match self.undecodable_table(&e) {
                Some(bad) => bad,
                None if !self.allow_unsafe && is_refused_statement(&e) => Error::Usage(
                    "SQL: only queries are allowed: DDL (CREATE, DROP), DML (COPY, INSERT) and \
                     statements (SET) read or write files without a policy or provenance. \
                     Pass --allow-unsafe-sql to run them anyway"
                        .into(),
                ),
                None => df_err(e),
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
        let (encoder, mut sink) = open_writer(af.file()?, Arc::clone(&schema), &options)?;
        let mut stream = df.execute_stream().await.map_err(|e| self.exec_error(e))?;
        let mut group = Vec::new();
        let mut group_rows = 0;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            self.cancel.check()?;
            let batch = batch.map_err(|e| self.exec_error(e))?;
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
            schema: schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect(),
        })
    }

    /// The provenance record of a written query result: the same record type as `apply`
    /// writes, with the query on the run and, when the query read the policy view, the view's
    /// fields.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        started: chrono::DateTime<Utc>,
        used: &PlanUse,
        view: Option<(&str, &Schema, &Schema)>,
        output: &Path,
        format: Format,
        written: &Written,
    ) -> Result<Record> {
        // The policy's bases and keys describe the output only when the query read its view.
        let view = view.filter(|_| used.functions.iter().any(|f| f == "policy view"));
        let policy = self.policy.as_deref().filter(|_| view.is_some());
        let summary = policy.map(PolicySummary::of);
        let ids = match &summary {
            Some(s) => Ids::new(&new_run_id(), s),
            None => Ids::bare(&new_run_id()),
        };
        let mut nodes = match &summary {
            Some(s) => ids.agents(&s.controller),
            None => vec![ids.software_node(None)],
        };
        let inputs = self.input_nodes(&ids)?;
        let mut run = ids.run_node(&started, &Utc::now());
        run.used = inputs.iter().map(|d| d.id.clone()).collect();
        let mut key_ids = used.keys.clone();
        if let (Some(s), Some(p)) = (&summary, policy) {
            nodes.push(Node::Policy(
                ids.policy_node(s, view.map(|v| v.0.to_string())),
            ));
            run.used.push(ids.plan.clone());
            run.association.had_plan = Some(ids.plan.clone());
            run.purpose = Some(s.purpose.clone());
            run.jurisdictions = s.jurisdictions.iter().map(|j| format!("loc:{j}")).collect();
            run.recipients = s.recipients.clone();
            run.data_subjects = s.data_subjects.clone();
            run.retention = s.retention.clone();
            run.transfers = s.transfers.clone();
            key_ids.extend(
                p.output_fields()
                    .filter_map(|f| f.action.key_id())
                    .map(str::to_string),
            );
        }
        key_ids.sort();
        key_ids.dedup();
        let raw = self.raw_tables(used);
        run.basis_note = Some(basis_note(policy.is_some(), raw.is_empty()).into());
        // Rows the query read through the view, judged by its consent gate.
        if let (Some(p), Some(g)) = (policy, self.gate.lock().ok().and_then(|g| g.clone()))
            && let Some(spec) = &p.consent
        {
            run.consent = Some(crate::provenance::consent_record(
                &g.ledger,
                spec,
                &g.tally.counts(),
            ));
        }
        run.query = Some(self.query.clone());
        run.functions_used = Some(used.functions.clone());
        run.raw_tables_read = Some(raw);
        run.keys = Some(
            key_ids
                .iter()
                .map(|id| KeyUse {
                    key_id: id.clone(),
                    key_fingerprint: self.recorded_keys().get(id).ok().map(|k| k.fingerprint()),
                })
                .collect(),
        );
        nodes.push(Node::Run(Box::new(run)));
        let mut out = DatasetRecord {
            relative_path: None,
            path: self.show(&output.display().to_string()),
            format: format.extension().into(),
            rows: written.rows,
            sha256: Some(written.sha256.clone()),
            bytes: Some(written.bytes),
            schema: written.schema.clone(),
            e_tag: None,
            version: None,
        }
        .node(ids.output(0), true, Vec::new());
        out.generated_by = Some(ids.run.clone());
        out.derived_from = Some(inputs.iter().map(|d| d.id.clone()).collect());
        out.attributed_to = summary.as_ref().map(|_| ids.controller.clone());
        let fields_out = written.schema.len() as u64;
        nodes.extend(inputs.into_iter().map(Node::Dataset));
        nodes.push(Node::Dataset(out));
        if let (Some(s), Some(p), Some((_, table, shared))) = (&summary, policy, view) {
            nodes.extend(view_fields(&ids, p, s, table, shared, self.recorded_keys()));
        }
        Ok(Record::new(
            RunKind::Sql,
            &ids,
            Summary {
                policy: summary
                    .as_ref()
                    .map(|s| format!("{} v{}", s.name, s.version)),
                controller: summary.as_ref().map(|s| s.controller.clone()),
                purpose: summary.as_ref().map(|s| s.purpose.clone()),
                jurisdictions: summary.map(|s| s.jurisdictions).unwrap_or_default(),
                rows_in: None,
                rows_out: written.rows,
                fields_out,
                fields_dropped: 0,
                privacy: None,
            },
            nodes,
        ))
    }

    /// One dataset node per file of every registered table.
    fn input_nodes(&self, ids: &Ids) -> Result<Vec<DatasetNode>> {
        let mut inputs = Vec::new();
        for t in &self.tables {
            if let Some((_, _, objects)) = self.listed.iter().find(|(n, _, _)| *n == t.name) {
                for o in objects {
                    let mut node = DatasetRecord {
                        relative_path: None,
                        path: o.shown.clone(),
                        format: Format::from_path(Path::new(&o.shown))
                            .map(|f| f.extension())
                            .unwrap_or("")
                            .into(),
                        rows: 0,
                        sha256: None,
                        bytes: Some(o.size),
                        schema: Vec::new(),
                        e_tag: o.e_tag.clone(),
                        version: o.version.clone(),
                    }
                    .node(ids.input(inputs.len()), true, Vec::new());
                    node.rows = None;
                    node.table = Some(t.name.clone());
                    inputs.push(node);
                }
                continue;
            }
            for f in table_files(&t.path)? {
                let (sha256, bytes) = sha256_file(&f)?;
                let format = Format::from_path(&f).map(|f| f.extension()).unwrap_or("");
                let object = self.fetched.iter().find(|o| o.local == f);
                let mut node = DatasetRecord {
                    relative_path: None,
                    // A partition directory's value is a data value: withheld, as `apply` does.
                    path: self.show(&match t.path.is_dir() {
                        true => crate::io::partition::withheld(&t.path, &f),
                        false => f.display().to_string(),
                    }),
                    format: format.into(),
                    rows: 0,
                    sha256: Some(sha256),
                    bytes: Some(bytes),
                    schema: Vec::new(),
                    e_tag: object.and_then(|o| o.e_tag.clone()),
                    version: object.and_then(|o| o.version.clone()),
                }
                .node(ids.input(inputs.len()), true, Vec::new());
                node.rows = None;
                node.table = Some(t.name.clone());
                inputs.push(node);
            }
        }
        Ok(inputs)
    }

    /// Registered tables the plan read directly, not through the policy view.
    fn raw_tables(&self, used: &PlanUse) -> Vec<String> {
        used.tables
            .iter()
            .filter(|t| self.tables.iter().any(|a| &a.name == *t))
            .cloned()
            .collect()
    }
}

/// What is known of a query result's lawful basis.
fn basis_note(view_read: bool, no_raw_tables: bool) -> &'static str {
    match (view_read, no_raw_tables) {
        (true, true) => "recorded per field of the policy view",
        (true, false) => {
            "recorded per field of the policy view for columns read through it; not known for \
             columns read from the raw tables listed in cl:rawTablesRead: the query's author is \
             responsible for their basis"
        }
        (false, _) => {
            "not known: no policy view was used; the query's author is responsible for the basis"
        }
    }
}

/// The nodes describing the policy view's fields: what the view does to each column it shows.
fn view_fields(
    ids: &Ids,
    p: &Policy,
    s: &PolicySummary,
    table: &Schema,
    shared: &Schema,
    keyring: &Keyring,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for f in p.output_fields() {
        let input_type = table
            .field_with_name(&f.input_name)
            .map(|t| t.data_type().to_string())
            .unwrap_or_default();
        let output_type = shared
            .field_with_name(&f.output_name)
            .map(|t| t.data_type().to_string())
            .unwrap_or_default();
        nodes.push(Node::InputField(
            ids.input_field(&f.input_name, &input_type),
        ));
        let key = f.action.key_id().and_then(|id| keyring.get(id).ok());
        let facts = FieldFacts {
            rule: f,
            output_type,
            key_fingerprint: key.map(|k| k.fingerprint()),
            key_ref: key.map(|k| k.reference()),
            counts: None,
            quasi_identifier: None,
            entities: None,
        };
        nodes.push(Node::OutputField(Box::new(field_node(
            ids, facts, &s.purpose,
        ))));
    }
    nodes
}

/// The Arrow schema of a registered table or view.
async fn table_schema(ctx: &SessionContext, name: &str) -> Result<arrow::datatypes::SchemaRef> {
    let provider = ctx.table_provider(name).await.map_err(df_err)?;
    Ok(provider.schema())
}

/// What writing a query result produced.
struct Written {
    rows: u64,
    sha256: String,
    bytes: u64,
    /// The result's columns: (name, Arrow type).
    schema: Vec<(String, String)>,
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
                    } else if crate::sql::FUNCTION_NAMES.contains(&name)
                        || crate::kernels::descriptor::sql_transform(name).is_some()
                    {
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
    use crate::sql::withhold_quoted;

    #[test]
    fn quoted_spans_are_withheld() {
        assert_eq!(
            withhold_quoted("Cannot cast string 'a@b.c' to Int32"),
            "Cannot cast string '…' to Int32"
        );
        assert_eq!(withhold_quoted("no quotes"), "no quotes");
        assert_eq!(withhold_quoted("x 'a' y 'b"), "x '…'");
        // A value with a quote of its own: nothing of it shows, whatever the pairing.
        assert_eq!(
            withhold_quoted("Cannot cast string 'O'Brien-123-45-6789' to Int32"),
            "Cannot cast string '…'"
        );
        assert_eq!(
            withhold_quoted("Cannot cast string 'O'Brien's 6789' to Int32"),
            "Cannot cast string '…' to Int32"
        );
    }
}
