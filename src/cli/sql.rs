//! `cloakline sql`: a query with the cloakline functions registered.

use super::*;

#[derive(Args)]
pub(crate) struct SqlArgs {
    /// The query, e.g. "SELECT tokenize(email, 'k1') FROM customers".
    query: String,
    /// Register a file as a table (repeatable): NAME=PATH (.parquet, .csv/.tsv, .ndjson/.jsonl).
    /// PATH may be a directory of files of one format, read as one table, or an object-store
    /// URL (an object, or a prefix read as one table).
    #[arg(long = "table", value_name = "NAME=PATH")]
    tables: Vec<cloakline::sql::TableArg>,
    #[command(flatten)]
    keyring: KeyringArg,
    /// Also register the policy's masked view of the first table, as <NAME>_shared.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write the result to this file (.parquet or .csv) with <FILE>.provenance.json,
    /// instead of printing it.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// CSV field delimiter for CSV tables and output.
    #[arg(long, default_value = ",", value_name = "CHAR")]
    delimiter: String,
    /// Run the query on a cluster (`df://HOST:PORT`, the scheduler of `cloakline cluster`):
    /// URL tables are read in place by the executors, local paths must be visible to them
    /// all; the result comes back here. Executors transform with their own keyrings.
    #[arg(long, env = "CLOAKLINE_CLUSTER", value_name = "df://HOST:PORT")]
    cluster: Option<String>,
    #[command(flatten)]
    consent: super::ConsentArgs,
    /// Also run DDL (CREATE EXTERNAL TABLE), DML (COPY … TO, INSERT) and statements (SET).
    /// Off by default: they read and write arbitrary files with no policy and no provenance.
    #[arg(long)]
    allow_unsafe_sql: bool,
}

pub(crate) fn run(q: SqlArgs, cancel: &Cancel) -> Result<()> {
    if let Some(o) = &q.output {
        let mut ins: Vec<(&str, &Path)> = q
            .tables
            .iter()
            .map(|t| ("a --table", t.path.as_path()))
            .collect();
        ins.extend(q.policy.as_deref().map(|p| ("--policy", p)));
        ins.extend(q.keyring.keyring.as_deref().map(|k| ("--keyring", k)));
        let side = cloakline::provenance::sidecar_path(o);
        refuse_collisions(&ins, &[("--output", o), ("its provenance", &side)])?;
    }
    let policy = q.policy.as_deref().map(load_policy).transpose()?;
    let consent = q
        .consent
        .options(policy.as_ref().zip(q.policy.as_deref()))?;
    let keyring = match &q.keyring.keyring {
        Some(p) => load_keyring(p)?,
        None => Keyring::default(),
    };
    let mut job = cloakline::jobs::sql::SqlJob::new(q.query)
        .with_keyring(Arc::new(keyring))
        .with_policy(policy.map(Arc::new))
        .allow_unsafe(q.allow_unsafe_sql)
        .with_cluster(q.cluster.clone())
        .with_consent(consent)
        .with_cancel(cancel.clone())
        .with_storage_options(storage())
        .with_read_options(ReadOptions::default().with_delimiter(delimiter(&q.delimiter)?));
    if let Some(o) = &q.output {
        job = job.with_output(location(o));
    }
    for t in q.tables {
        job = job.with_table(t);
    }
    match runtime()?.block_on(job.run())? {
        cloakline::jobs::sql::QueryOutcome::Rows(batches) => {
            let table = arrow::util::pretty::pretty_format_batches(&batches)?;
            outln!("{table}");
        }
        cloakline::jobs::sql::QueryOutcome::Written {
            rows,
            output,
            provenance,
        } => {
            errln!(
                "wrote {} ({rows} rows) and {}",
                output.display(),
                provenance.display()
            );
        }
        _ => {
            return Err(Error::Internal(
                "the sql job produced an outcome this CLI does not know how to show".into(),
            ));
        }
    }
    Ok(())
}
