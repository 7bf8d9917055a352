//! `apply`: run a policy over a file or a directory of files, with provenance.
//!
//! ```no_run
//! use cloakline::{apply::Apply, keys::Keyring, policy::Policy};
//! # fn main() -> cloakline::Result<()> {
//! let policy = Policy::load("policies/customers.yaml".as_ref())?;
//! let keyring = Keyring::load("examples/demo-keyring.json".as_ref())?;
//! let summary = Apply::new(&policy, &keyring, "examples/customers.csv", "out/customers.parquet")
//!     .with_threads(2)
//!     .run()?;
//! println!("{} rows, provenance in {}", summary.rows_out, summary.provenance.display());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use chrono::Utc;
use serde::Serialize;

use crate::engine::{self, ColumnCounts};
use crate::error::{Error, Result};
use crate::io::{
    AtomicFile, Format, Input, ROW_GROUP_ROWS, ReadOptions, WriteOptions, data_files, open_writer,
    sha256_file,
};
use crate::keys::Keyring;
use crate::plan::{Kernel, Plan, apply_type_overrides};
use crate::policy::Policy;
use crate::privacy;
use crate::provenance::{self, DatasetRecord, FieldRecord, PolicySummary, RunRecord};

/// Builder for one `apply` run.
pub struct Apply<'a> {
    policy: &'a Policy,
    keyring: &'a Keyring,
    input: PathBuf,
    output: PathBuf,
    input_format: Option<Format>,
    output_format: Option<Format>,
    read: ReadOptions,
    zstd_level: i32,
    out_delimiter: u8,
    threads: usize,
    overwrite: bool,
    progress: bool,
    sign_key: Option<String>,
    openlineage: Option<(PathBuf, String)>,
}

/// What a run did (the CLI prints it with `--json`).
#[derive(Debug, Serialize)]
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
    pub seconds: f64,
    pub fields: Vec<FieldSummary>,
    pub dropped: Vec<String>,
}

/// Per-field counts in the summary.
#[derive(Debug, Serialize)]
pub struct FieldSummary {
    pub output: String,
    pub source: String,
    pub action: &'static str,
    pub transformed: u64,
    pub nulls: u64,
}

/// One input file and where its output goes (relative to the staging location).
struct Job {
    input: Input,
    plan: Plan,
    out_rel: Option<PathBuf>,
}

/// The path of the provenance sidecar for an output path.
pub fn sidecar_path(output: &Path) -> PathBuf {
    let s = output.as_os_str().to_string_lossy();
    PathBuf::from(format!(
        "{}.provenance.json",
        s.trim_end_matches(['/', '\\'])
    ))
}

/// Write the provenance document for `output` under a temporary name; the caller commits it
/// after the data, so neither appears without the other.
pub fn stage_sidecar(output: &Path, doc: &serde_json::Value) -> Result<(PathBuf, AtomicFile)> {
    let sidecar = sidecar_path(output);
    let side = AtomicFile::create(&sidecar)?;
    let mut text =
        serde_json::to_string_pretty(doc).map_err(|e| Error::data(sidecar.display(), e))?;
    text.push('\n');
    let mut f = side.file()?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Error::io(&sidecar, e))?;
    Ok((sidecar, side))
}

impl<'a> Apply<'a> {
    pub fn new(
        policy: &'a Policy,
        keyring: &'a Keyring,
        input: impl Into<PathBuf>,
        output: impl Into<PathBuf>,
    ) -> Self {
        Apply {
            policy,
            keyring,
            input: input.into(),
            output: output.into(),
            input_format: None,
            output_format: None,
            read: ReadOptions::default(),
            zstd_level: 1,
            out_delimiter: b',',
            threads: engine::default_threads(),
            overwrite: false,
            progress: false,
            sign_key: None,
            openlineage: None,
        }
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
    /// CSV delimiter for input and output.
    pub fn with_delimiter(mut self, d: u8) -> Self {
        self.read.delimiter = d;
        self.out_delimiter = d;
        self
    }
    /// Rows per batch.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.read.batch_size = n.max(1);
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
    /// Replace an existing output directory.
    pub fn with_overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }
    /// Sign the sidecar with this keyring key (HMAC-SHA256, see [`crate::verify`]).
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

    /// Show a progress bar on stderr (only when it is a terminal).
    pub fn with_progress(mut self, yes: bool) -> Self {
        self.progress = yes;
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
        let overrides = |s: &arrow::datatypes::Schema| apply_type_overrides(self.policy, s);
        let mut jobs = Vec::new();
        if self.input.is_dir() {
            let files = data_files(&self.input, self.input_format)?;
            let mut first: Option<SchemaRef> = None;
            for f in files {
                let fmt = self.input_format_of(&f)?;
                let input = Input::open(&f, fmt, &self.read, &overrides)?;
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
                    self.policy,
                    input.schema.clone(),
                    self.keyring,
                    &f.display().to_string(),
                )?;
                let rel = f
                    .strip_prefix(&self.input)
                    .unwrap_or(&f)
                    .with_extension(out_format.extension());
                jobs.push(Job {
                    input,
                    plan,
                    out_rel: Some(rel),
                });
            }
        } else {
            let fmt = self.input_format_of(&self.input)?;
            let input = Input::open(&self.input, fmt, &self.read, &overrides)?;
            let plan = Plan::new(
                self.policy,
                input.schema.clone(),
                self.keyring,
                &self.input.display().to_string(),
            )?;
            jobs.push(Job {
                input,
                plan,
                out_rel: None,
            });
        }
        Ok(jobs)
    }

    /// Check the policy against the input's schema and keyring without reading data.
    pub fn validate(&self) -> Result<Vec<Plan>> {
        let out_format = self.output_format.unwrap_or(Format::Parquet);
        Ok(self
            .plan_jobs(out_format)?
            .into_iter()
            .map(|j| j.plan)
            .collect())
    }

    /// Run: plan everything, transform, write atomically, record provenance.
    pub fn run(self) -> Result<RunSummary> {
        let clock = Instant::now();
        let started = Utc::now();
        let is_dir = self.input.is_dir();
        let out_format = match self.output_format {
            Some(f) => f,
            None if is_dir => Format::Parquet,
            None => Format::from_path(&self.output).ok_or_else(|| {
                Error::Usage(format!(
                    "cannot tell the output format of {} from its extension; pass --output-format parquet|csv",
                    self.output.display()
                ))
            })?,
        };
        if out_format == Format::Ndjson {
            return Err(Error::Usage(
                "NDJSON output is not supported; write Parquet or CSV".into(),
            ));
        }
        if same_file(&self.input, &self.output) {
            return Err(Error::Usage("--output must differ from --input".into()));
        }
        if is_dir && self.output.exists() && !self.overwrite {
            return Err(Error::Usage(format!(
                "{} already exists; remove it or pass --overwrite",
                self.output.display()
            )));
        }
        if !is_dir && self.output.is_dir() {
            return Err(Error::Usage(format!(
                "{} is a directory; name an output file",
                self.output.display()
            )));
        }
        let sign_key = match &self.sign_key {
            Some(id) => Some(self.keyring.get(id)?),
            None => None,
        };
        let mut jobs = self.plan_jobs(out_format)?;
        // The privacy block: group the input, decide levels and suppression, rewrite the plan.
        let mut privacy_evidence = None;
        let mut privacy_assessment = None;
        if let Some(spec) = &self.policy.privacy {
            // One table, however many files: group them together, release them alike.
            let files: Vec<PathBuf> = jobs.iter().map(|j| j.input.path.clone()).collect();
            let prep = privacy::prepare(
                self.policy,
                spec,
                self.keyring,
                &self.input,
                &files,
                &self.read,
                true,
            )?;
            let decision = privacy::decide(&prep, spec, &self.input.display().to_string())?;
            privacy::enforce(jobs.iter_mut().map(|j| &mut j.plan), &prep, &decision, spec)?;
            privacy_evidence = Some(privacy::evidence(&prep, spec, &decision));
            privacy_assessment = Some(decision.assessment);
        }
        let run_id = provenance::new_run_id();
        let no_dictionary = jobs
            .first()
            .map(|j| {
                j.plan
                    .columns
                    .iter()
                    .filter(|c| matches!(c.kernel, Kernel::Tokenize(_) | Kernel::Encrypt(_)))
                    .map(|c| c.rule.output_name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let write_opts = WriteOptions {
            format: out_format,
            delimiter: self.out_delimiter,
            zstd_level: self.zstd_level,
            no_dictionary,
        };
        let policy_summary = PolicySummary::of(self.policy);
        let total_rows: Option<u64> = jobs.iter().map(|j| j.input.rows).sum();
        let bar = progress_bar(self.progress, total_rows);

        // Staging: a temporary file, or a temporary directory for directory runs.
        let staging_dir = if is_dir {
            Some(StagingDir::create(&self.output)?)
        } else {
            None
        };
        let single_out = if is_dir {
            None
        } else {
            Some(AtomicFile::create(&self.output)?)
        };

        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut totals: Vec<ColumnCounts> = Vec::new();
        let mut field_plan: Option<Vec<FieldRecord>> = None;
        let mut dropped = Vec::new();
        let mut embedded_record: Option<RunRecord> = None;
        for job in jobs {
            let in_path = job.input.path.clone();
            let in_format = job.input.format;
            let in_schema = schema_pairs(&job.input.schema);
            let (out_file, out_shown) = match (&staging_dir, &single_out, &job.out_rel) {
                (Some(dir), _, Some(rel)) => {
                    let p = dir.path.join(rel);
                    if let Some(parent) = p.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    let f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
                    (f, self.output.join(rel))
                }
                (_, Some(af), _) => (af.file()?, self.output.clone()),
                _ => return Err(Error::Usage("internal: no output staging".into())),
            };
            let (encoder, mut sink) =
                open_writer(out_file, job.plan.output_schema.clone(), &write_opts)?;
            // Hash the input on another thread while the engine reads it.
            let (stats, input_hash) = std::thread::scope(|s| {
                let hasher = s.spawn(|| sha256_file(&in_path));
                let batches = job.input.batches()?;
                let stats = engine::run(
                    &job.plan,
                    batches,
                    self.threads,
                    ROW_GROUP_ROWS,
                    |group| {
                        let rows: usize = group.iter().map(|b| b.num_rows()).sum();
                        encoder.encode(group).map(|e| (rows, e))
                    },
                    |(rows, encoded)| {
                        if let Some(bar) = &bar {
                            bar.inc(rows as u64);
                        }
                        sink.append(encoded)
                    },
                );
                let hash = hasher
                    .join()
                    .unwrap_or_else(|_| Err(Error::data(in_path.display(), "hashing failed")));
                Ok::<_, Error>((stats?, hash?))
            })?;
            let fields = FieldRecord::from_plan(&job.plan, &stats.columns);
            if totals.len() < stats.columns.len() {
                totals.resize(stats.columns.len(), ColumnCounts::default());
            }
            for (t, c) in totals.iter_mut().zip(&stats.columns) {
                t.transformed += c.transformed;
                t.nulls += c.nulls;
            }
            dropped = job
                .plan
                .dropped
                .iter()
                .map(|d| (d.name.clone(), d.data_type.to_string(), d.reason))
                .collect();
            let input_rec = DatasetRecord {
                path: in_path.display().to_string(),
                format: in_format.extension().into(),
                rows: stats.rows + stats.suppressed,
                sha256: Some(input_hash.0),
                bytes: Some(input_hash.1),
                schema: in_schema,
            };
            let output_rec = DatasetRecord {
                path: out_shown.display().to_string(),
                format: out_format.extension().into(),
                rows: stats.rows,
                sha256: None,
                bytes: None,
                schema: schema_pairs(&job.plan.output_schema),
            };
            // The record embedded in this file: this file's input and output, no own checksum.
            let record = RunRecord {
                run_id: run_id.clone(),
                started,
                ended: Utc::now(),
                policy: policy_summary.clone(),
                inputs: vec![input_rec.clone()],
                outputs: vec![output_rec.clone()],
                fields: fields.clone(),
                dropped: dropped.clone(),
                privacy: privacy_evidence.clone(),
                directory: is_dir,
                demo_keys: self.keyring.is_demo(),
            };
            let footer = (out_format == Format::Parquet).then(|| {
                (
                    provenance::PARQUET_KEY.to_string(),
                    record.to_jsonld(false).to_string(),
                )
            });
            let (sha, bytes) = sink.finish(footer)?;
            inputs.push(input_rec);
            outputs.push(DatasetRecord {
                sha256: Some(sha),
                bytes: Some(bytes),
                ..output_rec
            });
            field_plan = Some(fields);
            embedded_record = Some(record);
        }
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let mut fields = field_plan.unwrap_or_default();
        for (f, t) in fields.iter_mut().zip(&totals) {
            f.counts = t.clone();
        }
        // For a single file the sidecar is the embedded record plus the output checksum.
        let record = match (is_dir, embedded_record) {
            (false, Some(mut r)) => {
                r.outputs = outputs.clone();
                r
            }
            _ => RunRecord {
                run_id,
                started,
                ended: Utc::now(),
                policy: policy_summary,
                inputs: inputs.clone(),
                outputs: outputs.clone(),
                fields: fields.clone(),
                dropped: dropped.clone(),
                privacy: privacy_evidence.clone(),
                directory: is_dir,
                demo_keys: self.keyring.is_demo(),
            },
        };
        let mut doc = record.to_jsonld(true);
        if let Some(key) = sign_key {
            crate::verify::sign(&mut doc, key);
        }
        let (sidecar, side) = stage_sidecar(&self.output, &doc)?;
        let lineage = match &self.openlineage {
            None => None,
            Some((path, namespace)) => {
                let job = format!("cloakline.{}", self.policy.name);
                // OpenLineage names local files by absolute path in the `file` namespace.
                let mut lineage_doc = doc.clone();
                if let Some(g) = lineage_doc
                    .get_mut("@graph")
                    .and_then(serde_json::Value::as_array_mut)
                {
                    for n in g {
                        let abs = n
                            .get("cl:path")
                            .and_then(serde_json::Value::as_str)
                            .map(std::path::PathBuf::from)
                            .filter(|p| p.is_relative())
                            .and_then(|p| std::path::absolute(p).ok());
                        if let (Some(abs), Some(m)) = (abs, n.as_object_mut()) {
                            m.insert("cl:path".into(), abs.display().to_string().into());
                        }
                    }
                }
                let event = crate::openlineage::try_run_event(&lineage_doc, namespace, &job)
                    .map_err(|problems| {
                        Error::data(
                            path.display(),
                            format!(
                                "cannot build the OpenLineage event: {}",
                                problems.join("; ")
                            ),
                        )
                    })?;
                let af = AtomicFile::create(path)?;
                let mut f = af.file()?;
                let text = serde_json::to_string_pretty(&event)
                    .map_err(|e| Error::data(path.display(), e))?;
                std::io::Write::write_all(&mut f, text.as_bytes())
                    .map_err(|e| Error::io(path, e))?;
                Some(af)
            }
        };
        if engine::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        // Commit the data, then the sidecar.
        match (single_out, staging_dir) {
            (Some(af), _) => af.commit()?,
            (None, Some(dir)) => dir.commit(&self.output, self.overwrite)?,
            _ => {}
        }
        side.commit()?;
        if let Some(af) = lineage {
            af.commit()?;
        }

        let rows_in = inputs.iter().map(|d| d.rows).sum();
        let rows_out = outputs.iter().map(|d| d.rows).sum();
        Ok(RunSummary {
            input: self.input.clone(),
            output: self.output.clone(),
            provenance: sidecar,
            files: outputs.len(),
            rows_in,
            rows_out,
            suppressed: rows_in - rows_out,
            privacy: privacy_assessment,
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
            dropped: dropped.iter().map(|d| d.0.clone()).collect(),
        })
    }
}

fn schema_pairs(schema: &SchemaRef) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn progress_bar(enabled: bool, total: Option<u64>) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = match total {
        Some(_) => indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} rows ({per_sec}, {eta} left)",
        ),
        None => indicatif::ProgressStyle::with_template("{spinner} {pos} rows ({per_sec})"),
    };
    if let Ok(style) = style {
        bar.set_style(style);
    }
    Some(bar)
}

/// A temporary directory beside the destination, removed unless committed.
struct StagingDir {
    path: PathBuf,
    committed: bool,
}

impl StagingDir {
    fn create(dest: &Path) -> Result<Self> {
        let dest_s = dest.as_os_str().to_string_lossy();
        let dest = Path::new(dest_s.trim_end_matches(['/', '\\']));
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("output");
        let path = parent.join(format!(
            ".{name}.cloakline-tmp-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(StagingDir {
            path,
            committed: false,
        })
    }

    fn commit(mut self, dest: &Path, overwrite: bool) -> Result<()> {
        if dest.exists() && overwrite {
            std::fs::remove_dir_all(dest).map_err(|e| Error::io(dest, e))?;
        }
        std::fs::rename(&self.path, dest).map_err(|e| Error::io(dest, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
