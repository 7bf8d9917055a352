//! `apply`: run a policy over a file or a directory of files, with provenance.
//!
//! A pipeline embeds it with its own cancellation and progress reporting:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use cloakline::engine::{Cancel, Progress};
//! use cloakline::{jobs::apply::Apply, keys::Keyring, policy::Policy};
//!
//! #[derive(Default)]
//! struct Rows(AtomicU64);
//! impl Progress for Rows {
//!     fn advance(&self, rows: u64) {
//!         self.0.fetch_add(rows, Ordering::Relaxed);
//!     }
//! }
//!
//! # async fn run() -> cloakline::Result<()> {
//! let policy = Policy::load("policies/customers.yaml".as_ref())?;
//! let keyring = Keyring::load("examples/demo-keyring.json".as_ref())?;
//! let cancel = Cancel::new(); // another task may call `cancel.cancel()`
//! let rows = Arc::new(Rows::default());
//! let summary = Apply::new(policy, keyring, "examples/customers.csv", "out/customers.parquet")
//!     .with_threads(2)
//!     .with_cancel(cancel.clone())
//!     .with_progress(rows.clone())
//!     .run()
//!     .await?;
//! println!("{} rows, provenance in {}", summary.rows_out, summary.provenance.display());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[cfg(feature = "cluster")]
pub mod cluster;
mod layout;
mod record;
mod release;
mod remote;
mod split;
use layout::Layout;
use record::{run_record, schema_pairs};
use release::{Staging, StagingDir, check_previous_release};

use crate::engine::{self, Cancel, ColumnCounts, Progress};
use crate::error::{Error, Result};
use crate::io::partition::{PartitionValues, check_layout, partition_values};
use crate::io::{
    AtomicFile, CreatedDirs, Format, Input, Location, OutputLock, ROW_GROUP_ROWS, ReadOptions,
    Staged, WriteOptions, commit_all, data_files, default_delimiter, open_writer_at,
    open_writer_teed, refuse_collisions, remove_stale_temps, sha256_file,
};
use crate::keys::Keyring;
use crate::plan::{Plan, apply_type_overrides};
use crate::policy::{HierarchySource, Policy};
use crate::privacy;
use crate::provenance::{
    self, DatasetRecord, FieldRecord, PolicySummary, RunRecord, sidecar_path, write_json,
};

/// Builder for one `apply` run. It owns what it needs, so `run` can move it to a blocking
/// thread of the caller's runtime.
#[must_use]
pub struct Apply {
    policy: Arc<Policy>,
    keyring: Arc<Keyring>,
    input: PathBuf,
    output: PathBuf,
    input_format: Option<Format>,
    output_format: Option<Format>,
    read: ReadOptions,
    zstd_level: i32,
    out_delimiter: u8,
    threads: usize,
    overwrite: bool,
    progress: Option<Arc<dyn Progress>>,
    cancel: Cancel,
    sign_key: Option<String>,
    openlineage: Option<(PathBuf, String)>,
    /// Other files the run reads (role, path), which no output may replace.
    read_files: Vec<(String, PathBuf)>,
    /// The locations as given: a URL is fetched to (or published from) scratch paths, which
    /// `input` and `output` then name.
    input_loc: Location,
    output_loc: Location,
    storage: crate::io::store::StorageOptions,
    /// How records and messages show scratch paths (as the URLs they stand for).
    shown: remote::Shown,
    /// The run id, when chosen before the run (a remote output's lock names it).
    run_id: Option<String>,
    /// An object-store output: its data objects upload while they are written.
    streams: Option<crate::io::store::Streams>,
    /// Output columns whose transformed values name the output's directories.
    partition_by: Vec<String>,
    /// A cluster's scheduler (`df://host:port`): its executors write the files.
    cluster: Option<String>,
    /// The consent ledger to read instead of the policy's, the instant consent is judged at
    /// (default: the run's start) and the ledger's memory budget.
    consent: crate::plan::consent::ConsentOptions,
}

/// What a run did (the CLI prints it with `--json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub input: PathBuf,
    pub output: PathBuf,
    pub provenance: PathBuf,
    pub files: usize,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Records dropped by the privacy block's suppression.
    pub suppressed: u64,
    /// What the privacy block achieved, when the policy has one.
    pub privacy: Option<crate::privacy::Assessment>,
    /// What the consent ledger removed, when the policy has one.
    pub consent: Option<crate::provenance::record::ConsentRecord>,
    pub seconds: f64,
    pub fields: Vec<FieldSummary>,
    pub dropped: Vec<String>,
}

impl RunSummary {
    /// The summary of a committed run's record: `paths` are (input, output, sidecar) as
    /// shown.
    fn of(
        (input, output, provenance): (PathBuf, PathBuf, PathBuf),
        record: &RunRecord,
        fields: &[FieldRecord],
        privacy: Option<crate::privacy::Assessment>,
        clock: Instant,
    ) -> RunSummary {
        let rows_in = record.inputs.iter().map(|d| d.rows).sum();
        let rows_out = record.outputs.iter().map(|d| d.rows).sum();
        RunSummary {
            input,
            output,
            provenance,
            files: record.outputs.len(),
            rows_in,
            rows_out,
            suppressed: rows_in
                - rows_out
                - record
                    .consent
                    .as_ref()
                    .map(|c| c.rows_removed_withdrawn + c.rows_removed_missing)
                    .unwrap_or(0),
            privacy,
            consent: record.consent.clone(),
            seconds: clock.elapsed().as_secs_f64(),
            fields: fields
                .iter()
                .map(|f| FieldSummary {
                    output: f.rule.output_name.clone(),
                    source: f.rule.input_name.clone(),
                    action: f.rule.action.kind().keyword(),
                    transformed: f.counts.transformed,
                    nulls: f.counts.nulls,
                })
                .collect(),
            dropped: record.dropped.iter().map(|d| d.0.clone()).collect(),
        }
    }
}

/// Per-field counts in the summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSummary {
    pub output: String,
    pub source: String,
    pub action: &'static str,
    pub transformed: u64,
    pub nulls: u64,
}

/// An output file's object path relative to the release (`""` for a single-object one), as
/// publish names it.
fn object_rel(rel: Option<&Path>) -> String {
    rel.map(|r| {
        r.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    })
    .unwrap_or_default()
}

/// Output columns whose values are random (envelopes): a dictionary would only grow them.
fn no_dictionary(jobs: &[Job]) -> Vec<String> {
    jobs.first()
        .map(|j| {
            j.plan
                .columns
                .iter()
                .filter(|c| c.kernel.descriptor().random_output)
                .map(|c| c.rule.output_name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// One input file and where its output goes (relative to the staging location).
struct Job {
    input: Input,
    plan: Plan,
    out_rel: Option<PathBuf>,
    /// The file's Hive partition values (empty when it has none).
    partitions: PartitionValues,
}

/// One output file being written.
struct Written {
    rel: Option<PathBuf>,
    shown: PathBuf,
    sink: crate::io::Sink,
    rows: u64,
    schema: SchemaRef,
}

/// What every file of a run shares.
struct RunContext {
    run_id: String,
    started: DateTime<Utc>,
    policy: PolicySummary,
    privacy: Option<crate::provenance::record::PrivacyNode>,
    out_format: Format,
    write: WriteOptions,
    is_dir: bool,
    /// The keyring held public demo keys (a cluster's executors take the client's word,
    /// their key fingerprints checked against its own).
    demo_keys: bool,
    /// What protected the keys at rest ([`Keyring::protection`]).
    key_protection: Option<String>,
    /// The consent ledger the gates use, with the policy's block.
    consent: Option<(
        Arc<crate::plan::consent::Ledger>,
        crate::policy::consent::ConsentSpec,
    )>,
}

/// What one file's transform produced.
struct JobOutput {
    input: DatasetRecord,
    /// One file, or one per partition met (none when a partitioned file had no rows).
    outputs: Vec<DatasetRecord>,
    fields: Vec<FieldRecord>,
    columns: Vec<ColumnCounts>,
    dropped: Vec<(String, String, &'static str)>,
    record: RunRecord,
    consent: crate::plan::consent::ConsentCounts,
}

impl Apply {
    /// Apply `policy` to `input` (a file or a directory of files), writing `output`.
    pub fn new(
        policy: impl Into<Arc<Policy>>,
        keyring: impl Into<Arc<Keyring>>,
        input: impl Into<Location>,
        output: impl Into<Location>,
    ) -> Self {
        let (input_loc, output_loc) = (input.into(), output.into());
        let local = |l: &Location| l.as_path().map(Path::to_path_buf).unwrap_or_default();
        Apply {
            policy: policy.into(),
            keyring: keyring.into(),
            input: local(&input_loc),
            output: local(&output_loc),
            input_loc,
            output_loc,
            storage: Default::default(),
            shown: Default::default(),
            run_id: None,
            streams: None,
            partition_by: Vec::new(),
            cluster: None,
            consent: Default::default(),
            input_format: None,
            output_format: None,
            read: ReadOptions::default(),
            zstd_level: 1,
            out_delimiter: b',',
            threads: engine::default_threads(),
            overwrite: false,
            progress: None,
            cancel: Cancel::new(),
            sign_key: None,
            openlineage: None,
            read_files: Vec::new(),
        }
    }

    /// `validate` reads local files only (a run fetches a URL first).
    fn check_locations(&self) -> Result<()> {
        self.input_loc.local()?;
        self.output_loc.local().map(|_| ())
    }

    /// Name the input (a file the caller staged, e.g. stdin spooled to a scratch file) as
    /// `name` in the record, the summary and messages.
    pub fn with_input_shown_as(mut self, name: &str) -> Self {
        self.shown.push(&self.input, name);
        self
    }

    /// Name the output as `name` (e.g. `stdout`) in the record and messages.
    pub fn with_output_shown_as(mut self, name: &str) -> Self {
        self.shown.push(&self.output, name);
        self
    }

    /// Settings of the object stores a URL input or output is in (endpoint, region…;
    /// credentials come from the environment). See docs/STORAGE.md.
    pub fn with_storage_options(mut self, options: crate::io::store::StorageOptions) -> Self {
        self.storage = options;
        self
    }
    /// Input format (default: from the file extension).
    pub fn with_input_format(mut self, f: Option<Format>) -> Self {
        self.input_format = f;
        self
    }
    /// Output format (default: from the output extension; Parquet for directories).
    pub fn with_output_format(mut self, f: Option<Format>) -> Self {
        self.output_format = f;
        self
    }
    /// CSV delimiter for input and output; `,` (the default) means tab for `.tsv` files.
    pub fn with_delimiter(mut self, d: u8) -> Self {
        self.read.delimiter = d;
        self.out_delimiter = d;
        self
    }
    /// CSV delimiter chosen explicitly (`--delimiter`): used for `.tsv` inputs and outputs
    /// too.
    pub fn with_explicit_delimiter(mut self, d: u8) -> Self {
        self.read = self.read.with_explicit_delimiter(d);
        self.out_delimiter = d;
        self
    }
    /// Rows per batch (1 to [`crate::io::MAX_BATCH_ROWS`]; `run` refuses others).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.read.batch_size = n;
        self
    }
    /// How CSV/NDJSON inputs are typed: rows read to infer types (0: the whole file), and
    /// whether every column is read as text (`type:` overrides still apply).
    pub fn with_inference(mut self, infer_rows: usize, all_strings: bool) -> Self {
        self.read.infer_rows = infer_rows;
        self.read.all_strings = all_strings;
        self
    }
    /// Worker threads (default: one per core).
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
    /// Zstd level for Parquet output (1-22, default 1: higher levels cost time and gain
    /// little on tokens and envelopes).
    pub fn with_zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }
    /// Replace existing outputs: a regular file, or a directory holding only the files of a
    /// previous release (as its sidecar lists them).
    pub fn with_overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }
    /// Sign the sidecar with this keyring key (HMAC-SHA256, see [`crate::jobs::verify`]).
    pub fn with_sign_key(mut self, id: Option<String>) -> Self {
        self.sign_key = id;
        self
    }

    /// Also write an OpenLineage run event (COMPLETE, with `columnLineage` and the
    /// `cloakline_lawfulBasis` facet) to `path`, datasets in `namespace`.
    pub fn with_openlineage(mut self, path: Option<PathBuf>, namespace: &str) -> Self {
        self.openlineage = path.map(|p| (p, namespace.to_string()));
        self
    }

    /// Other files the run reads, as (role, path), e.g. `("the keyring", p)`: no output may
    /// replace them. The policy file, a keyring loaded from a file and the policy's hierarchy
    /// files are included without this.
    pub fn with_input_files(mut self, files: &[(&str, &Path)]) -> Self {
        self.read_files
            .extend(files.iter().map(|(r, p)| (r.to_string(), p.to_path_buf())));
        self
    }

    /// Report progress to `progress` (the CLI draws a bar).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Stop when `cancel` is cancelled: the run fails with [`Error::Interrupted`] and commits
    /// nothing.
    /// Write the output as Hive directories (`col=value/part-00000.parquet`) named by these
    /// output columns' *transformed* values; the output is then a directory.
    pub fn with_partition_by(mut self, columns: Vec<String>) -> Self {
        self.partition_by = columns;
        self
    }

    /// Write on the cluster whose scheduler is at `url` (`df://host:port`): the executors
    /// read each input object in place and write its output file; this process records and
    /// commits the release (docs/CLUSTER.md). Input and output must be object-store URLs.
    /// With a `consent:` block: read the ledger from `o.ledger` instead of the policy's
    /// `consent.ledger` (e.g. a dated snapshot), judge consent as of `o.as_of` (default: when
    /// the run starts; later events are ignored), keep the ledger's map within `o.memory`.
    pub fn with_consent(mut self, o: crate::plan::consent::ConsentOptions) -> Self {
        self.consent = o;
        self
    }

    /// The consent ledger's location and how records and messages show it.
    fn ledger_location(
        &self,
        spec: &crate::policy::consent::ConsentSpec,
    ) -> Result<(Location, String)> {
        crate::plan::consent::ledger_location(
            spec,
            &self.policy.source,
            self.consent.ledger.as_ref(),
        )
    }

    pub fn with_cluster(mut self, url: Option<String>) -> Self {
        self.cluster = url;
        self
    }

    /// Whether the output is a directory: for a directory input, or when partitioned.
    fn output_is_dir(&self) -> bool {
        self.input.is_dir() || !self.partition_by.is_empty()
    }

    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    fn input_format_of(&self, path: &Path) -> Result<Format> {
        self.input_format.or_else(|| Format::from_path(path)).ok_or_else(|| {
            Error::Usage(format!(
                "cannot tell the format of {} from its extension; pass --input-format parquet|csv|ndjson",
                path.display()
            ))
        })
    }

    /// Open every input and plan it, reading no data. Used by `run` and by `validate`.
    fn plan_jobs(&self, out_format: Format) -> Result<Vec<Job>> {
        let overrides = |s: &arrow::datatypes::Schema| apply_type_overrides(&self.policy, s);
        let mut jobs = Vec::new();
        if self.input.is_dir() {
            let files = data_files(&self.input, self.input_format)?;
            let parts = files
                .iter()
                .map(|f| partition_values(&self.input, f))
                .collect::<Result<Vec<_>>>()?;
            let pairs: Vec<_> = files.iter().map(PathBuf::as_path).zip(&parts).collect();
            check_layout(&self.input, &pairs)?;
            let mut first: Option<SchemaRef> = None;
            for (f, parts) in files.into_iter().zip(parts) {
                let fmt = self.input_format_of(&f)?;
                let input =
                    Input::open(&f, fmt, &self.read, &overrides)?.with_partitions(parts.clone())?;
                if let Some(s) = &first {
                    if s.fields() != input.schema.fields() {
                        return Err(Error::data(
                            f.display(),
                            "its schema differs from the directory's first file; a directory must hold one table",
                        ));
                    }
                } else {
                    first = Some(input.schema.clone());
                }
                let plan = Plan::new(
                    &self.policy,
                    input.schema.clone(),
                    &self.keyring,
                    &f.display().to_string(),
                )?;
                let in_rel = f.strip_prefix(&self.input).unwrap_or(&f);
                let rel = crate::io::output_file_name(in_rel, out_format);
                // `a.csv` and `a.csv.gz` (or `a.ndjson`) would both become `a.parquet`: the
                // second would replace the first. Files under partition directories are
                // named by their values later, never over one another.
                if parts.is_empty()
                    && let Some(other) = jobs.iter().find(|j: &&Job| {
                        j.partitions.is_empty() && j.out_rel.as_ref() == Some(&rel)
                    })
                {
                    let other = other
                        .input
                        .path
                        .strip_prefix(&self.input)
                        .unwrap_or(&other.input.path);
                    return Err(Error::Usage(format!(
                        "--input {}: {} and {} would both be written to {}; rename one of them \
                         or move it out of the directory",
                        self.shown.show(&self.input.display().to_string()),
                        other.display(),
                        in_rel.display(),
                        rel.display()
                    )));
                }
                jobs.push(Job {
                    input,
                    plan,
                    out_rel: Some(rel),
                    partitions: parts,
                });
            }
        } else {
            let fmt = self.input_format_of(&self.input)?;
            let input = Input::open(&self.input, fmt, &self.read, &overrides)?;
            let plan = Plan::new(
                &self.policy,
                input.schema.clone(),
                &self.keyring,
                &self.input.display().to_string(),
            )?;
            jobs.push(Job {
                input,
                plan,
                out_rel: None,
                partitions: Vec::new(),
            });
        }
        Ok(jobs)
    }

    /// Check the policy against the input's schema and keyring without reading data.
    pub fn validate(&self) -> Result<Vec<Plan>> {
        self.check_locations()?;
        self.read.check()?;
        let out_format = self.output_format.unwrap_or(Format::Parquet);
        let plans: Vec<Plan> = self
            .plan_jobs(out_format)?
            .into_iter()
            .map(|j| j.plan)
            .collect();
        if !self.partition_by.is_empty() {
            for p in &plans {
                split::Split::new(p, &self.partition_by)?;
            }
        }
        Ok(plans)
    }

    fn out_format(&self, is_dir: bool) -> Result<Format> {
        let f = match self.output_format {
            Some(f) => f,
            None if is_dir => Format::Parquet,
            None => Format::from_path(&self.output).ok_or_else(|| {
                Error::Usage(format!(
                    "cannot tell the output format of {} from its extension; pass --output-format parquet|csv|ndjson",
                    self.output.display()
                ))
            })?,
        };
        if !is_dir {
            crate::io::check_output(&self.output, f)?;
        }
        Ok(f)
    }

    /// Every file the run reads besides the data, with its role.
    fn files_read(&self) -> Vec<(String, PathBuf)> {
        let mut v = Vec::new();
        let policy = PathBuf::from(&self.policy.source);
        if policy.is_file() {
            v.push(("the policy".to_string(), policy));
        }
        let ring = PathBuf::from(self.keyring.source());
        if ring.is_file() {
            v.push(("the keyring".to_string(), ring));
        }
        if let Some(spec) = &self.policy.privacy {
            for q in &spec.quasi_identifiers {
                if let HierarchySource::File(h) = &q.hierarchy {
                    let role = format!("the hierarchy file of `{}`", q.field);
                    v.push((role, PathBuf::from(&h.path)));
                }
            }
        }
        if let Some(spec) = &self.policy.consent
            && let Ok((Location::Local(p), _)) = self.ledger_location(spec)
        {
            v.push(("the consent ledger".to_string(), p));
        }
        v.extend(self.read_files.iter().cloned());
        v
    }

    /// Everything refused before a byte is written: outputs that collide with an input or
    /// with each other, and destinations this run may not replace.
    fn preflight(&self, is_dir: bool, sidecar: &Path) -> Result<()> {
        if !is_dir && self.output.is_dir() {
            return Err(Error::Usage(format!(
                "{} is a directory; name an output file",
                self.output.display()
            )));
        }
        let reads = self.files_read();
        let mut inputs: Vec<(&str, &Path)> = vec![("--input", self.input.as_path())];
        inputs.extend(reads.iter().map(|(r, p)| (r.as_str(), p.as_path())));
        let mut outputs = vec![
            ("--output", self.output.as_path()),
            ("the provenance sidecar", sidecar),
        ];
        if let Some((p, _)) = &self.openlineage {
            outputs.push(("--openlineage", p.as_path()));
        }
        refuse_collisions(&inputs, &outputs)?;
        self.check_destinations(is_dir, sidecar)
    }

    /// Existing destinations are replaced only with `--overwrite`, and only when they are
    /// regular files (or, for a directory run, a previous release).
    fn check_destinations(&self, is_dir: bool, sidecar: &Path) -> Result<()> {
        let out = &self.output;
        if let Ok(meta) = std::fs::symlink_metadata(out) {
            if !self.overwrite {
                return Err(Error::Usage(format!(
                    "{} already exists; pass --overwrite to replace it, or choose another output",
                    out.display()
                )));
            }
            if is_dir {
                check_previous_release(out, sidecar, &meta)?;
            } else if !meta.file_type().is_file() {
                return Err(Error::Usage(format!(
                    "{} is not a regular file; --overwrite replaces only a regular file. \
                     Choose another output",
                    out.display()
                )));
            }
        }
        let mut others = vec![("the provenance sidecar", sidecar)];
        if let Some((p, _)) = &self.openlineage {
            others.push(("--openlineage", p.as_path()));
        }
        for (role, p) in others {
            let Ok(meta) = std::fs::symlink_metadata(p) else {
                continue;
            };
            if !meta.file_type().is_file() {
                return Err(Error::Usage(format!(
                    "{} ({role}) exists and is not a regular file; move it away or choose \
                     another output",
                    p.display()
                )));
            }
            if !self.overwrite {
                return Err(Error::Usage(format!(
                    "{} ({role}) already exists; pass --overwrite to replace it",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// Run: plan everything, transform, write atomically, record provenance.
    /// Run on the caller's Tokio runtime: the streaming write runs on one of its blocking
    /// threads (with its own worker threads), the privacy grouping pass on the runtime itself.
    /// Dropping the returned future before it completes cancels the run; nothing is committed.
    pub async fn run(self) -> Result<RunSummary> {
        // Polled by another executor, there is no runtime to run the grouping pass on: an
        // error, not the panic `Handle::current` would raise.
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Usage("Apply::run must be awaited inside a Tokio runtime".into())
        })?;
        self.consent.check_for(Some(&self.policy))?;
        let mut this = self;
        if let Some(url) = this.cluster.take() {
            return this.run_on_cluster(url).await;
        }
        let remote = remote::RemoteRun::prepare(&mut this).await?;
        let shown = this.shown.clone();
        let cancel = this.cancel.clone();
        let on_drop = CancelOnDrop(Some(this.cancel.clone()));
        let result = tokio::task::spawn_blocking(move || this.run_on(&handle))
            .await
            .unwrap_or_else(|_| {
                // A panic: a bug, and its message (dropped) may quote a value.
                Err(Error::Internal(
                    "the apply job panicked; nothing was written".into(),
                ))
            });
        on_drop.disarm();
        remote.finish(&shown, &cancel, result).await
    }

    #[cfg(feature = "cluster")]
    async fn run_on_cluster(self, url: String) -> Result<RunSummary> {
        let on_drop = CancelOnDrop(Some(self.cancel.clone()));
        let r = self.run_cluster(url).await;
        on_drop.disarm();
        r
    }

    #[cfg(not(feature = "cluster"))]
    async fn run_on_cluster(self, url: String) -> Result<RunSummary> {
        Err(Error::Usage(format!(
            "--cluster {url}: this cloakline was built without the `cluster` feature"
        )))
    }

    fn run_on(self, handle: &tokio::runtime::Handle) -> Result<RunSummary> {
        let clock = Instant::now();
        let started = Utc::now();
        let is_dir = self.output_is_dir();
        self.read.check()?;
        let out_format = self.out_format(is_dir)?;
        let sidecar = sidecar_path(&self.output);
        self.preflight(is_dir, &sidecar)?;
        let sign_key = match &self.sign_key {
            Some(id) => Some(self.keyring.get(id)?),
            None => None,
        };
        // Nothing is written before this point. Dropping these on failure removes the lock
        // and the directories created for the output.
        let created = CreatedDirs::for_output(&self.output)?;
        let lineage_dirs = match &self.openlineage {
            Some((p, _)) => Some(CreatedDirs::for_output(p)?),
            None => None,
        };
        let lock = OutputLock::acquire(&self.output)?;
        remove_stale_temps(&self.output)?;
        remove_stale_temps(&sidecar)?;
        if let Some((p, _)) = &self.openlineage {
            remove_stale_temps(p)?;
        }
        // Again under the lock: another run may have committed meanwhile.
        self.check_destinations(is_dir, &sidecar)?;
        let mut jobs = self.plan_jobs(out_format)?;
        for j in &jobs {
            if !self.partition_by.is_empty() {
                split::Split::new(&j.plan, &self.partition_by)?;
            }
        }
        tracing::info!(files = jobs.len(), "plan: the policy fits every input");
        let (ctx, privacy_assessment) =
            self.prepare_run(handle, &mut jobs, out_format, is_dir, started)?;

        // Stage every destination first: an unwritable one fails before the long part.
        let staging = match is_dir {
            true => Staging::Dir(StagingDir::create(&self.output)?),
            // A remote output's scratch copy is uploaded while written: no fsync.
            false if self.streams.is_some() => {
                Staging::File(AtomicFile::create(&self.output)?.scratch())
            }
            false => Staging::File(AtomicFile::create(&self.output)?),
        };
        let side = AtomicFile::create(&sidecar)?;
        let lineage = match &self.openlineage {
            Some((p, _)) => Some(AtomicFile::create(p)?),
            None => None,
        };

        let mut done = Vec::new();
        for (n, job) in jobs.into_iter().enumerate() {
            done.push(self.write_job(job, n, &ctx, &staging)?);
        }
        consent_matched(&ctx, &done)?;
        if let Some(p) = &self.progress {
            p.finish();
        }
        let (record, fields) = run_record(&ctx, done, ctx.demo_keys);
        let typed = record.to_record(true);
        let mut doc = typed.to_json();
        if let Some(key) = sign_key {
            crate::provenance::sign::sign(&mut doc, key);
        }
        write_json(&side, &sidecar, &doc, true)?;
        if let (Some(af), Some((path, namespace))) = (&lineage, &self.openlineage) {
            let event = self.lineage_event(typed, path, namespace, !record.outputs.is_empty())?;
            write_json(af, path, &event, false)?;
        }
        self.cancel.check()?;
        // Data, sidecar and lineage event together, or none of them.
        let mut staged = vec![staging.stage(&self.output)?, side.stage()?];
        if let Some(af) = lineage {
            staged.push(af.stage()?);
        }
        commit_all(staged)?;
        tracing::info!(output = %self.output.display(), "commit: output and provenance in place");
        created.keep();
        if let Some(d) = lineage_dirs {
            d.keep();
        }
        drop(lock);

        Ok(RunSummary::of(
            (self.input.clone(), self.output.clone(), sidecar),
            &record,
            &fields,
            privacy_assessment,
            clock,
        ))
    }

    /// The privacy decision (which rewrites the plans) and what every file of the run shares.
    fn prepare_run(
        &self,
        handle: &tokio::runtime::Handle,
        jobs: &mut [Job],
        out_format: Format,
        is_dir: bool,
        started: DateTime<Utc>,
    ) -> Result<(RunContext, Option<privacy::Assessment>)> {
        let consent = self.consent_gates(handle, jobs, started)?;
        // The privacy block: group the input, decide levels and suppression, rewrite the plan.
        let mut privacy_evidence = None;
        let mut privacy_assessment = None;
        if let Some(spec) = &self.policy.privacy {
            // One table, however many files: group them together, release them alike.
            let files: Vec<PathBuf> = jobs.iter().map(|j| j.input.path.clone()).collect();
            self.shown.input_arrived()?;
            tracing::info!(files = files.len(), "privacy pass: grouping the input");
            let prep = handle.block_on(privacy::prepare(
                &self.policy,
                spec,
                &self.keyring,
                &self.input,
                &files,
                &self.read,
                true,
                consent.as_ref().map(|(l, _)| Arc::clone(l)),
            ))?;
            let decision = privacy::decide(&prep, spec, &self.input.display().to_string())?;
            privacy::enforce(jobs.iter_mut().map(|j| &mut j.plan), &prep, &decision, spec)?;
            privacy_evidence = Some(privacy::evidence(&prep, spec, &decision));
            privacy_assessment = Some(decision.assessment);
        }
        let no_dictionary = no_dictionary(jobs);
        // Footer counts are the files' word: a checked sum, no total when it overflows.
        let total_rows: Option<u64> = jobs
            .iter()
            .try_fold(0u64, |acc, j| acc.checked_add(j.input.rows?));
        if let Some(p) = &self.progress {
            p.start(total_rows);
        }
        let ctx = RunContext {
            run_id: self.run_id.clone().unwrap_or_else(provenance::new_run_id),
            started,
            policy: PolicySummary::of(&self.policy),
            privacy: privacy_evidence,
            out_format,
            write: self.write_options(out_format, no_dictionary),
            is_dir,
            demo_keys: self.keyring.is_demo(),
            key_protection: Some(self.keyring.protection().to_string()),
            consent,
        };
        Ok((ctx, privacy_assessment))
    }

    /// Read the consent ledger and put a gate on every file's plan.
    #[allow(clippy::type_complexity)]
    fn consent_gates(
        &self,
        handle: &tokio::runtime::Handle,
        jobs: &mut [Job],
        started: DateTime<Utc>,
    ) -> Result<
        Option<(
            Arc<crate::plan::consent::Ledger>,
            crate::policy::consent::ConsentSpec,
        )>,
    > {
        use crate::plan::consent::ConsentGate;
        let Some(spec) = &self.policy.consent else {
            return Ok(None);
        };
        let Some(ledger) = handle.block_on(self.consent.load(
            &self.policy,
            started,
            Some(self.threads),
            &self.storage,
        ))?
        else {
            return Ok(None);
        };
        let ledger = Arc::new(ledger);
        for j in jobs.iter_mut() {
            let input = self.shown.show(&j.input.path.display().to_string());
            let gate = ConsentGate::new(
                &self.policy,
                &j.plan,
                Arc::clone(&ledger),
                &self.keyring,
                &input,
            )?;
            j.plan.consent = Some(Arc::new(gate));
        }
        Ok(Some((ledger, spec.clone())))
    }

    fn write_options(&self, format: Format, no_dictionary: Vec<String>) -> WriteOptions {
        WriteOptions {
            format,
            delimiter: match self.read.delimiter_given {
                true => self.out_delimiter,
                false => default_delimiter(&self.output, self.out_delimiter),
            },
            zstd_level: self.zstd_level,
            no_dictionary,
        }
    }

    /// Transform one input file into its staged output (or outputs, when partitioned).
    fn write_job(
        &self,
        job: Job,
        n: usize,
        ctx: &RunContext,
        staging: &Staging,
    ) -> Result<JobOutput> {
        let in_path = job.input.path.clone();
        let in_format = job.input.format;
        let in_schema = schema_pairs(&job.input.schema);
        let (stats, input_hash, written) = match self.partition_by.is_empty() {
            true => self.write_one(
                job.input,
                &job.plan,
                &job.partitions,
                &job.out_rel,
                n,
                ctx,
                staging,
            )?,
            false => self.write_split(job.input, &job.plan, n, ctx, staging)?,
        };
        // A partition directory's value is a data value: the record and the log withhold it.
        let in_shown = self.shown.show(&match job.partitions.is_empty() {
            false => crate::io::partition::withheld(&self.input, &in_path),
            true => in_path.display().to_string(),
        });
        let (e_tag, version) = self.shown.object_version(&in_path);
        // The record's checksum is of the local copy: it must be what the store streamed.
        if let Some(streamed) = self.shown.streamed_sha256(&in_path)?
            && streamed != input_hash.0
        {
            return Err(Error::data(
                &in_shown,
                "the fetched copy no longer matches what the store sent (its SHA-256 \
                 changed on local disk); run again",
            ));
        }
        tracing::info!(input = %in_shown, rows = stats.rows, suppressed = stats.suppressed, batches = stats.batches, outputs = written.len(), "write: file transformed");
        let fields = FieldRecord::from_plan(&job.plan, &stats.columns);
        let dropped: Vec<(String, String, &'static str)> = job
            .plan
            .dropped
            .iter()
            .map(|d| (d.name.clone(), d.data_type.to_string(), d.reason))
            .collect();
        let input_rec = DatasetRecord {
            path: in_shown,
            relative_path: None,
            format: in_format.extension().into(),
            rows: stats.rows
                + stats.suppressed
                + stats.consent.removed_withdrawn
                + stats.consent.removed_missing,
            sha256: Some(input_hash.0),
            bytes: Some(input_hash.1),
            schema: in_schema,
            e_tag,
            version,
        };
        let mut outputs = Vec::new();
        let mut record = None;
        for w in written {
            let output_rec = DatasetRecord {
                path: self.shown.show(&w.shown.display().to_string()),
                relative_path: w.rel.as_ref().map(|r| slash_path(r)),
                format: ctx.out_format.extension().into(),
                rows: w.rows,
                sha256: None,
                bytes: None,
                schema: schema_pairs(&w.schema),
                e_tag: None,
                version: None,
            };
            // The record embedded in this file: this file's input and output, no own checksum.
            let r = RunRecord {
                run_id: ctx.run_id.clone(),
                started: ctx.started,
                ended: Utc::now(),
                policy: ctx.policy.clone(),
                inputs: vec![input_rec.clone()],
                outputs: vec![output_rec.clone()],
                fields: fields.clone(),
                dropped: dropped.clone(),
                privacy: ctx.privacy.clone(),
                directory: ctx.is_dir,
                demo_keys: ctx.demo_keys,
                key_protection: ctx.key_protection.clone(),
                cluster: None,
                consent: ctx.consent_record(&stats.consent),
            };
            let footer = (ctx.out_format == Format::Parquet).then(|| {
                (
                    provenance::PARQUET_KEY.to_string(),
                    r.to_jsonld(false).to_string(),
                )
            });
            let (sha, bytes) = w.sink.finish(footer)?;
            outputs.push(DatasetRecord {
                sha256: Some(sha),
                bytes: Some(bytes),
                ..output_rec
            });
            record = Some(r);
        }
        let record = record.unwrap_or_else(|| RunRecord {
            run_id: ctx.run_id.clone(),
            started: ctx.started,
            ended: Utc::now(),
            policy: ctx.policy.clone(),
            inputs: vec![input_rec.clone()],
            outputs: Vec::new(),
            fields: fields.clone(),
            dropped: dropped.clone(),
            privacy: ctx.privacy.clone(),
            directory: ctx.is_dir,
            demo_keys: ctx.demo_keys,
            key_protection: ctx.key_protection.clone(),
            cluster: None,
            consent: ctx.consent_record(&stats.consent),
        });
        Ok(JobOutput {
            input: input_rec,
            outputs,
            fields,
            columns: stats.columns,
            dropped,
            record,
            consent: stats.consent,
        })
    }

    /// Run the engine over `input`, hashing the input file on another thread meanwhile.
    fn transform<T: Send>(
        &self,
        input: Input,
        plan: &Plan,
        encode: impl Fn(&[arrow::record_batch::RecordBatch]) -> Result<T> + Sync,
        sink: impl FnMut(T) -> Result<()>,
    ) -> Result<(engine::StreamStats, (String, u64))> {
        let in_path = input.path.clone();
        std::thread::scope(|s| {
            let hasher = s.spawn(|| sha256_file(&in_path));
            let stats = input.batches().and_then(|batches| {
                engine::run(
                    plan,
                    batches,
                    self.threads,
                    ROW_GROUP_ROWS,
                    &self.cancel,
                    encode,
                    sink,
                )
            });
            let hash = hasher
                .join()
                .unwrap_or_else(|_| Err(Error::data(in_path.display(), "hashing failed")));
            Ok::<_, Error>((stats?, hash?))
        })
    }

    /// One output file for one input file (its directories renamed by transformed values
    /// when the input is Hive-partitioned).
    #[allow(clippy::too_many_arguments)]
    fn write_one(
        &self,
        input: Input,
        plan: &Plan,
        partitions: &PartitionValues,
        out_rel: &Option<PathBuf>,
        n: usize,
        ctx: &RunContext,
        staging: &Staging,
    ) -> Result<(engine::StreamStats, (String, u64), Vec<Written>)> {
        let layout = Layout::new(plan, partitions);
        // A partitioned file's output path depends on its transformed values: write it under
        // a hidden name first, and move it into place once they are known.
        let partitioned = !partitions.is_empty();
        let (out_file, out_shown) = match (staging, out_rel) {
            (Staging::Dir(dir), Some(rel)) => {
                let p = match partitioned {
                    true => dir.path.join(format!(".partition-{n}.tmp")),
                    false => dir.path.join(rel),
                };
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                let f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
                (f, self.output.join(rel))
            }
            (Staging::File(af), None) => (af.file()?, self.output.clone()),
            _ => {
                return Err(Error::Internal(
                    "output staging does not fit the job".into(),
                ));
            }
        };
        // Known names only: a file renamed after its values are known uploads at publish.
        let tee = match (&self.streams, partitioned) {
            (Some(streams), false) => {
                let cancel = self.cancel.clone();
                streams.tee(
                    &object_rel(out_rel.as_deref()),
                    Arc::new(move || cancel.is_cancelled()),
                )
            }
            _ => None,
        };
        let (encoder, mut sink) =
            open_writer_teed(out_file, &out_shown, layout.file_schema(), &ctx.write, tee)?;
        let (stats, hash) = self.transform(
            input,
            plan,
            |group| {
                let rows: usize = group.iter().map(|b| b.num_rows()).sum();
                if layout.has_dirs() {
                    let group = group
                        .iter()
                        .map(|b| layout.project(b))
                        .collect::<Result<Vec<_>>>()?;
                    return encoder.encode(&group).map(|e| (rows, e));
                }
                encoder.encode(group).map(|e| (rows, e))
            },
            |(rows, encoded)| {
                if let Some(p) = &self.progress {
                    p.advance(rows as u64);
                }
                sink.append(encoded)
            },
        )?;
        let (rel, shown) = match (out_rel, staging) {
            (Some(rel), Staging::Dir(dir)) if partitioned => {
                let rel = layout.output_rel(rel, n, |r| dir.path.join(r).exists())?;
                let from = dir.path.join(format!(".partition-{n}.tmp"));
                let to = dir.path.join(&rel);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                if to.exists() {
                    return Err(Error::Internal(format!(
                        "{} is already written; refusing to replace it",
                        to.display()
                    )));
                }
                std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
                (Some(rel.clone()), self.output.join(rel))
            }
            _ => (out_rel.clone(), out_shown),
        };
        let written = Written {
            rel,
            shown,
            sink,
            rows: stats.rows,
            schema: layout.file_schema(),
        };
        Ok((stats, hash, vec![written]))
    }

    /// `--partition-by`: one file per partition met in this input file,
    /// `<col>=<value>/…/part-<n>.<ext>`.
    fn write_split(
        &self,
        input: Input,
        plan: &Plan,
        n: usize,
        ctx: &RunContext,
        staging: &Staging,
    ) -> Result<(engine::StreamStats, (String, u64), Vec<Written>)> {
        let Staging::Dir(dir) = staging else {
            return Err(Error::Internal(
                "a partitioned output is staged as a directory".into(),
            ));
        };
        let split = split::Split::new(plan, &self.partition_by)?;
        let schema = split.file_schema();
        // Pieces are encoded on the workers with one encoder; any file of this schema and
        // these properties accepts its row groups.
        let encoder = crate::io::Encoder::new(schema.clone(), &ctx.write)?;
        let name = format!("part-{n:05}.{}", ctx.out_format.extension());
        let mut files: Vec<Written> = Vec::new();
        let mut index: std::collections::HashMap<PathBuf, usize> = Default::default();
        let (stats, hash) = self.transform(
            input,
            plan,
            |group| {
                let rows: usize = group.iter().map(|b| b.num_rows()).sum();
                let pieces = split
                    .split(group)?
                    .into_iter()
                    .map(|p| encoder.encode(&p.batches).map(|e| (p.dir, p.rows, e)))
                    .collect::<Result<Vec<_>>>()?;
                Ok((rows, pieces))
            },
            |(rows, pieces)| {
                if let Some(p) = &self.progress {
                    p.advance(rows as u64);
                }
                for (sub, piece_rows, encoded) in pieces {
                    let i = match index.get(&sub) {
                        Some(&i) => i,
                        None => {
                            if files.len() == split::MAX_PARTITIONS {
                                return Err(Error::Usage(format!(
                                    "--partition-by: one input file holds more than {} \
                                     distinct partitions; partition by a coarser \
                                     (generalized) column",
                                    split::MAX_PARTITIONS
                                )));
                            }
                            let rel = sub.join(&name);
                            let path = dir.path.join(&rel);
                            // Messages name the file with its partition values withheld: a
                            // kept column's value is data.
                            let named = PathBuf::from(crate::io::partition::withheld(
                                &self.output,
                                &self.output.join(&rel),
                            ));
                            if let Some(parent) = path.parent() {
                                std::fs::create_dir_all(parent)
                                    .map_err(|e| Error::io(&named, e))?;
                            }
                            // Never over another partition's file (`EU` and `eu` are one
                            // directory on a case-insensitive file system).
                            let f = std::fs::File::options()
                                .write(true)
                                .create_new(true)
                                .open(&path)
                                .map_err(|e| match e.kind() {
                                    std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                                        "--partition-by: two partitions name one file ({}) on \
                                         this file system (values differing only in case?); \
                                         partition by a generalized column",
                                        named.display()
                                    )),
                                    _ => Error::io(&named, e),
                                })?;
                            let (_, sink) = open_writer_at(f, &named, schema.clone(), &ctx.write)?;
                            let shown = self.output.join(&rel);
                            files.push(Written {
                                rel: Some(rel),
                                shown,
                                sink,
                                rows: 0,
                                schema: schema.clone(),
                            });
                            index.insert(sub.clone(), files.len() - 1);
                            files.len() - 1
                        }
                    };
                    files[i].sink.append(encoded)?;
                    files[i].rows += piece_rows as u64;
                }
                Ok(())
            },
        )?;
        Ok((stats, hash, files))
    }

    /// The OpenLineage event for the run's record (the sidecar's facts, unsigned).
    fn lineage_event(
        &self,
        mut rec: provenance::Record,
        path: &Path,
        namespace: &str,
        wrote_files: bool,
    ) -> Result<serde_json::Value> {
        let job = format!("cloakline.{}", self.policy.name);
        // OpenLineage names local files by absolute path in the `file` namespace.
        for n in &mut rec.nodes {
            if let provenance::record::Node::Dataset(d) = n
                && Path::new(&d.path).is_relative()
                && let Ok(abs) = std::path::absolute(&d.path)
            {
                d.path = abs.display().to_string();
            }
        }
        match provenance::openlineage::try_run_event(&rec, namespace, &job) {
            Ok(event) => return Ok(event),
            // A partitioned run over no rows writes no file: an event with no output dataset
            // says exactly that.
            Err(problems)
                if !wrote_files && problems.iter().all(|p| p.starts_with("no output dataset")) =>
            {
                return Ok(provenance::openlineage::run_event(&rec, namespace, &job));
            }
            Err(_) => {}
        }
        provenance::openlineage::try_run_event(&rec, namespace, &job).map_err(|problems| {
            Error::data(
                path.display(),
                format!(
                    "cannot build the OpenLineage event: {}",
                    problems.join("; ")
                ),
            )
        })
    }
}

/// Cancels a run whose future was dropped before it finished (the blocking part would
/// otherwise go on and commit).
/// A ledger that matches none of a non-empty input's subjects is almost always keyed
/// differently (tokenized with another key or domain, or raw against tokens): refuse rather
/// than release nothing, or everything withheld, without saying why.
fn consent_matched(ctx: &RunContext, done: &[JobOutput]) -> Result<()> {
    let Some((ledger, spec)) = &ctx.consent else {
        return Ok(());
    };
    let rows: u64 = done.iter().map(|j| j.consent.rows_in).sum();
    let matched: u64 = done.iter().map(|j| j.consent.matched).sum();
    if rows > 0 && matched == 0 {
        let ids = match spec.subject_ids {
            crate::policy::consent::SubjectIds::Raw => "raw",
            crate::policy::consent::SubjectIds::Tokenized => "tokenized",
        };
        return Err(Error::Consent {
            ledger: ledger.shown.clone(),
            message: format!(
                "none of the {rows} input rows has a subject with an event for purpose `{}` \
                 (column `{}`, `subject_ids: {ids}`); nothing was written. The ledger's ids \
                 are most likely tokenized with another key or domain, or stored raw where \
                 the policy says tokenized (or the reverse)",
                spec.purpose, spec.subject
            ),
        });
    }
    Ok(())
}

struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.cancel();
        }
    }
}

/// A relative path with `/` separators on every platform, as the record stores it.
fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
