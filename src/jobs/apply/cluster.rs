//! `apply --cluster`: a directory run whose files are written by a Ballista cluster.
//!
//! The client lists the input, claims the output (the commit protocol of
//! [`RemoteRelease`]) and submits one physical operator, [`ReleaseExec`], with one partition
//! per input object. Each executor fetches its object pinned to the listed ETag, then plans,
//! transforms and writes it exactly as a local directory run writes a file (the same planner,
//! kernels, writer and footer record, with its own keyring), and uploads the file as a
//! multipart upload it does not complete. Only per-file facts come back: counts, checksums,
//! key fingerprints and the pending uploads. The client checks them, builds the sidecar as a
//! local run does, and commits: it completes the uploads and writes the sidecar last.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::record::run_record;
use super::release::{Staging, StagingDir};
use super::{Apply, JobOutput, RunContext, RunSummary, no_dictionary};
use crate::cluster::NodeCodec;
use crate::engine::ColumnCounts;
use crate::error::{Error, Result};
use crate::io::store::{Fetched, PendingUpload, Remote, RemoteRelease, StorageOptions};
use crate::io::{Format, Location, ReadOptions, ScratchDir};
use crate::keys::Keyring;
use crate::plan::Plan;
use crate::policy::Policy;
use crate::provenance::{self, DatasetRecord, FieldRecord, PolicySummary};

/// Marks a release operator (and its version) among plan bytes.
const TAG: &[u8] = b"cloakline-release/1\n";
/// Largest release spec a plan may carry.
const MAX_SPEC: usize = 16 << 20;
/// How a policy loaded from a plan is named: no path is derived from the plan.
const FROM_PLAN: &str = "<policy from the plan>";

/// What travels in the plan: what each executor needs to write its files as a local
/// directory run would. Key ids only (in the policy text), never key material.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ReleaseSpec {
    run_id: String,
    started: DateTime<Utc>,
    /// The policy text as the client loaded it, and its path (the record names it; no file
    /// is read from it): its ARX hierarchies travel with it, so loading it reads no file.
    policy: String,
    policy_path: String,
    hierarchies: std::collections::BTreeMap<String, crate::policy::hierarchy::ArxHierarchy>,
    /// The privacy block's evidence for the record, and where the release table is (an
    /// object beside the output, with its SHA-256): it holds data values, so it travels as
    /// data, not in the plan.
    privacy: Option<crate::provenance::record::PrivacyNode>,
    release_table: Option<TableRef>,
    /// The input and output as shown (URLs without secrets, partition values withheld), and
    /// the input as given: every object an executor reads lies below it.
    input: String,
    input_url: String,
    output: String,
    /// The output URL as given (the executors open it with their own credentials).
    output_url: String,
    input_format: Option<String>,
    output_format: String,
    read: ReadOptions,
    out_delimiter: u8,
    zstd_level: i32,
    /// Worker threads per task.
    threads: usize,
    /// The client's keyring held the public demo keys.
    demo_keys: bool,
    /// What protected the client's keys at rest.
    #[serde(default)]
    key_protection: Option<String>,
}

/// Where the run's release table is: an object beside the output holding it sealed
/// (AES-256-GCM) under a one-time key that exists only in this plan, so neither readers of
/// the output's store nor the plan alone see the quasi-identifier values it holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TableRef {
    url: String,
    sha256: String,
    /// The one-time key (hex): not a keyring key; it opens this one object.
    key: String,
}

// The key never reaches a log or an error through `{:?}` of a plan.
impl fmt::Debug for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableRef")
            .field("url", &self.url)
            .field("sha256", &self.sha256)
            .field("key", &"(withheld)")
            .finish()
    }
}

/// Seal the release table for the run's executors; returns the sealed bytes and the key.
fn seal(mut plain: Vec<u8>, run_id: &str) -> Result<(Vec<u8>, zeroize::Zeroizing<[u8; 32]>)> {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use rand::RngCore;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut key[..]);
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key[..])
        .map_err(|_| Error::Internal("a release table key".into()))?;
    let tag = cipher
        .encrypt_inout_detached(&nonce.into(), run_id.as_bytes(), (&mut plain[..]).into())
        .map_err(|_| Error::Internal("sealing the release table".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&plain);
    out.extend_from_slice(&tag);
    Ok((out, key))
}

/// Open a sealed release table; `None` when the key, the run or the bytes do not match.
fn open_sealed(sealed: &[u8], key_hex: &str, run_id: &str) -> Option<Vec<u8>> {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    let key = zeroize::Zeroizing::new(hex::decode(key_hex).ok()?);
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).ok()?;
    if sealed.len() < 12 + 16 {
        return None;
    }
    let (nonce, rest) = sealed.split_at(12);
    let (body, tag) = rest.split_at(rest.len() - 16);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let tag: [u8; 16] = tag.try_into().ok()?;
    let mut body = body.to_vec();
    cipher
        .decrypt_inout_detached(
            &nonce.into(),
            run_id.as_bytes(),
            (&mut body[..]).into(),
            &tag.into(),
        )
        .ok()?;
    Some(body)
}

/// One input object, as listed by the client.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Assigned {
    url: String,
    /// Its path below the input (`/` separators; its name for a single object).
    rel: String,
    /// Its place in the listing: temporary names stay unique across the cluster.
    index: usize,
    e_tag: Option<String>,
    version: Option<String>,
    size: u64,
}

/// What an executor reports for one input object.
#[derive(Debug, Serialize, Deserialize)]
struct FileResult {
    index: usize,
    input: DatasetRecord,
    outputs: Vec<DatasetRecord>,
    columns: Vec<ColumnCounts>,
    entities: Vec<Vec<(String, u64)>>,
    /// Per output column, the fingerprint of the key it used.
    fingerprints: Vec<Option<String>>,
    /// The file's schema as read (Arrow IPC, hex): the client plans the record from it.
    schema: String,
    uploads: Vec<PendingUpload>,
    /// Which executor wrote it (host and process).
    executor: String,
}

impl ReleaseSpec {
    fn to_bytes(&self) -> DFResult<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| DataFusionError::Internal(e.to_string()))
    }

    /// A spec from a plan, which may be hostile: bounded, and its policy loaded without
    /// reading a file.
    fn from_bytes(b: &[u8]) -> DFResult<ReleaseSpec> {
        let bad = |m: &str| DataFusionError::Plan(format!("a release operator in the plan: {m}"));
        if b.len() > MAX_SPEC {
            return Err(bad("too large"));
        }
        let spec: ReleaseSpec = serde_json::from_slice(b).map_err(|_| bad("malformed"))?;
        spec.read.check().map_err(|_| bad("bad read options"))?;
        if !(1..=64).contains(&spec.threads) {
            return Err(bad("bad thread count"));
        }
        // Stores only (never http(s)://, never another location than the run's output).
        let store = |u: &str| {
            url::Url::parse(u).is_ok_and(|u| {
                matches!(
                    u.scheme(),
                    "s3" | "s3a" | "az" | "azure" | "abfs" | "abfss" | "adl" | "gs"
                )
            })
        };
        if !store(&spec.input_url) || !store(&spec.output_url) {
            return Err(bad("its input and output must be object stores"));
        }
        if let Some(t) = &spec.release_table {
            let want = format!("{}/.cloakline-release-{}.bin", spec.output, spec.run_id);
            if t.url != want {
                return Err(bad("its release table is not beside its output"));
            }
        }
        spec.load_policy()
            .map_err(|_| bad("its policy does not load"))?;
        Ok(spec)
    }

    fn load_policy(&self) -> Result<Policy> {
        crate::policy::privacy::with_hierarchies(self.hierarchies.clone(), || {
            Policy::from_yaml_str(&self.policy, &self.policy_path)
        })
        .map_err(|_| Error::plan(FROM_PLAN, "the policy sent with the plan does not load"))
    }
}

/// The operator: partition `i` writes the objects its input's partition `i` lists (one
/// [`Assigned`] as JSON per row) and yields one row (JSON) per object. The assignments are
/// an in-memory scan, which Ballista slices per task: each task writes only its objects.
#[derive(Debug)]
pub struct ReleaseExec {
    spec: Arc<ReleaseSpec>,
    input: Arc<dyn ExecutionPlan>,
    keyring: Arc<Keyring>,
    storage: StorageOptions,
    properties: Arc<PlanProperties>,
}

fn assigned_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![ArrowField::new(
        "object",
        DataType::Utf8,
        false,
    )]))
}

/// The in-memory scan of the assignments: one partition per list.
fn assignments(partitions: &[Vec<Assigned>]) -> Result<Arc<dyn ExecutionPlan>> {
    let mut parts = Vec::new();
    for p in partitions {
        let rows = p
            .iter()
            .map(|a| serde_json::to_string(a).map_err(|e| Error::Internal(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let col: ArrayRef = Arc::new(StringArray::from(rows));
        parts.push(vec![RecordBatch::try_new(assigned_schema(), vec![col])?]);
    }
    let source = datafusion::datasource::memory::MemorySourceConfig::try_new(
        &parts,
        assigned_schema(),
        None,
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
}

fn result_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![ArrowField::new(
        "file",
        DataType::Utf8,
        false,
    )]))
}

impl ReleaseExec {
    fn new(
        spec: Arc<ReleaseSpec>,
        input: Arc<dyn ExecutionPlan>,
        keyring: Arc<Keyring>,
        storage: StorageOptions,
    ) -> DFResult<Self> {
        if input.schema() != assigned_schema() {
            return Err(DataFusionError::Plan(
                "a release operator over something other than its assignments".into(),
            ));
        }
        let parts = input.properties().output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(result_schema()),
            Partitioning::UnknownPartitioning(parts),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(ReleaseExec {
            spec,
            input,
            keyring,
            storage,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for ReleaseExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        // No object names: they may hold partition values.
        write!(f, "CloaklineReleaseExec: run={}", self.spec.run_id)
    }
}

impl ExecutionPlan for ReleaseExec {
    fn name(&self) -> &str {
        "CloaklineReleaseExec"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let [input] = children.as_slice() else {
            return Err(DataFusionError::Internal(
                "the release operator has one input".into(),
            ));
        };
        Ok(Arc::new(ReleaseExec::new(
            Arc::clone(&self.spec),
            Arc::clone(input),
            Arc::clone(&self.keyring),
            self.storage.clone(),
        )?))
    }
    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let (spec, keyring, storage) = (
            Arc::clone(&self.spec),
            Arc::clone(&self.keyring),
            self.storage.clone(),
        );
        let mut input = self.input.execute(partition, context)?;
        let work = async move {
            let mut assigned: Vec<Assigned> = Vec::new();
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let col = batch.column(0).as_string::<i32>();
                for i in 0..col.len() {
                    assigned.push(serde_json::from_str(col.value(i)).map_err(|_| {
                        DataFusionError::Plan("a malformed release assignment".into())
                    })?);
                }
            }
            let rows = write_partition(spec, assigned, keyring, storage)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let col: ArrayRef = Arc::new(StringArray::from(rows));
            Ok(RecordBatch::try_new(result_schema(), vec![col])?)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            result_schema(),
            futures::stream::once(work),
        )))
    }
}

/// Carries [`ReleaseExec`] in plans; built in every cluster process with its own keyring
/// and store settings (a scheduler's plans only, never runs).
#[derive(Debug)]
pub struct ReleaseCodec {
    keyring: Arc<Keyring>,
    storage: StorageOptions,
}

/// The operators `apply` sends to a cluster, for a process holding `keyring` and `storage`.
pub fn cluster_nodes(keyring: Arc<Keyring>, storage: StorageOptions) -> Vec<Arc<dyn NodeCodec>> {
    vec![Arc::new(ReleaseCodec { keyring, storage })]
}

impl NodeCodec for ReleaseCodec {
    fn tag(&self) -> &'static [u8] {
        TAG
    }
    fn encode(&self, node: &Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> DFResult<bool> {
        let Some(r) = node.downcast_ref::<ReleaseExec>() else {
            return Ok(false);
        };
        buf.extend(r.spec.to_bytes()?);
        Ok(true)
    }
    fn decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let [input] = inputs else {
            return Err(DataFusionError::Plan(
                "a release operator has one input".into(),
            ));
        };
        let spec = ReleaseSpec::from_bytes(buf)?;
        Ok(Arc::new(ReleaseExec::new(
            Arc::new(spec),
            Arc::clone(input),
            Arc::clone(&self.keyring),
            self.storage.clone(),
        )?))
    }
}

/// An object's local path under `root`, its segments checked.
fn local_path(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut p = root.to_path_buf();
    for seg in rel.split('/') {
        let bad = seg.is_empty()
            || seg == "."
            || seg == ".."
            || seg.starts_with('.')
            || seg.contains(['\\', '\0'])
            || seg.chars().any(char::is_control);
        if bad {
            return Err(Error::Usage(
                "an input object has a name that cannot be a local file name; rename it".into(),
            ));
        }
        p.push(seg);
    }
    Ok(p)
}

fn schema_to_hex(schema: &Schema) -> Result<String> {
    let mut buf = Vec::new();
    let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut buf, schema)?;
    w.finish()?;
    drop(w);
    Ok(hex::encode(buf))
}

fn schema_from_hex(text: &str) -> Result<SchemaRef> {
    let bad = || Error::Internal("an executor reported an unreadable schema".into());
    let bytes = hex::decode(text).map_err(|_| bad())?;
    let r =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|_| bad())?;
    Ok(r.schema())
}

/// Executor side: fetch, transform and upload one partition's objects.
async fn write_partition(
    spec: Arc<ReleaseSpec>,
    assigned: Vec<Assigned>,
    keyring: Arc<Keyring>,
    storage: StorageOptions,
) -> Result<Vec<String>> {
    if assigned.is_empty() {
        return Ok(Vec::new());
    }
    let policy = spec.load_policy()?;
    let out = Remote::open(&spec.output_url, &storage)?;
    let release_table = match &spec.release_table {
        Some(t) => {
            let (bytes, _) = Remote::open(&t.url, &storage)?.read_small(1 << 30).await?;
            let ok = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)) == t.sha256;
            let table = ok
                .then(|| open_sealed(&bytes, &t.key, &spec.run_id))
                .flatten()
                .and_then(|plain| crate::privacy::ReleaseTable::from_bytes(&plain))
                .ok_or_else(|| Error::Storage {
                    location: spec.output.clone(),
                    message: "the run's release table is not the one the client wrote; \
                              nothing was committed"
                        .into(),
                })?;
            Some(table)
        }
        None => None,
    };
    let scratch = ScratchDir::create()?;
    let in_root = scratch.path().join("dataset");
    let out_root = scratch.path().join("release");
    let mut objects = Vec::new();
    for a in &assigned {
        if a.url != format!("{}/{}", spec.input_url, a.rel) {
            return Err(Error::Internal(
                "a release assignment outside the run's input".into(),
            ));
        }
        let local = local_path(&in_root, &a.rel)?;
        let obj = Remote::open(&a.url, &storage)?
            .fetch_listed(a.e_tag.clone(), a.version.clone(), a.size, local)
            .await?;
        objects.push(obj);
    }
    let mut apply = Apply::new(
        policy,
        keyring,
        Location::Local(in_root.clone()),
        Location::Local(out_root.clone()),
    );
    apply.read = spec.read.clone();
    apply.input_format = spec.input_format.as_deref().and_then(|f| f.parse().ok());
    apply.output_format = spec.output_format.parse().ok();
    apply.out_delimiter = spec.out_delimiter;
    apply.zstd_level = spec.zstd_level;
    apply.threads = spec.threads.max(1);
    apply.run_id = Some(spec.run_id.clone());
    apply.shown.push(&in_root, &spec.input);
    apply.shown.push(&out_root, &spec.output);
    apply.shown.fetched = Some(Fetched {
        local: in_root.clone(),
        is_dir: true,
        objects,
    });
    let task_spec = Arc::clone(&spec);
    let written = tokio::task::spawn_blocking(move || {
        let r = apply.write_files(&task_spec, &assigned, release_table.as_ref());
        (r, apply)
    })
    .await
    .map_err(|_| Error::Internal("a release task panicked; nothing was committed".into()))?;
    let (done, _apply) = written;
    let (results, staging) = done?;
    let executor = format!(
        "{}:{}",
        hostname().unwrap_or_else(|| "executor".into()),
        std::process::id()
    );
    let mut rows = Vec::new();
    let mut pending: Vec<PendingUpload> = Vec::new();
    let uploaded = async {
        for mut r in results {
            for o in &r.outputs {
                let rel = o.relative_path.clone().ok_or_else(|| {
                    Error::Internal("a directory run's output without a relative path".into())
                })?;
                let local = staging.join(&rel);
                let sha = o.sha256.clone().unwrap_or_default();
                let p = out.upload_pending(&local, &rel, &sha).await?;
                pending.push(p.clone());
                r.uploads.push(p);
            }
            r.executor = executor.clone();
            rows.push(
                serde_json::to_string(&r)
                    .map_err(|e| Error::Internal(format!("a file result: {e}")))?,
            );
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = uploaded {
        for p in pending {
            out.abort_pending(&p).await;
        }
        return Err(e);
    }
    drop(scratch);
    Ok(rows)
}

/// A file result against the object it was assigned: the same object (ETag, size), and
/// every output with its own upload.
fn check_result(r: &FileResult, assigned: Option<&Assigned>) -> Result<()> {
    let bad = |m: &str| Error::Internal(format!("an executor's result {m}; nothing was committed"));
    let a = assigned.ok_or_else(|| bad("names an object it was not given"))?;
    if r.input.e_tag != a.e_tag || r.input.bytes != Some(a.size) {
        return Err(bad("describes another version of its object"));
    }
    if r.outputs.len() != r.uploads.len() {
        return Err(bad("lists outputs without uploads"));
    }
    for (o, u) in r.outputs.iter().zip(&r.uploads) {
        if o.relative_path.as_deref() != Some(u.rel.as_str())
            || o.sha256.as_deref() != Some(u.sha256.as_str())
            || o.bytes != Some(u.bytes)
        {
            return Err(bad("does not match its upload"));
        }
    }
    Ok(())
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

impl Apply {
    /// Executor side, on a blocking thread: plan and write every fetched file of this
    /// partition as a local directory run writes it. Returns the per-file results and
    /// where the files were staged.
    fn write_files(
        &self,
        spec: &ReleaseSpec,
        assigned: &[Assigned],
        release_table: Option<&crate::privacy::ReleaseTable>,
    ) -> Result<(Vec<FileResult>, PathBuf)> {
        let out_format = self.output_format.unwrap_or(Format::Parquet);
        let mut jobs = self.plan_jobs(out_format)?;
        match (release_table, &self.policy.privacy) {
            (Some(t), Some(p)) => {
                crate::privacy::enforce_table(jobs.iter_mut().map(|j| &mut j.plan), t, p)?
            }
            (None, None) => {}
            _ => {
                return Err(Error::Internal(
                    "a privacy block without a release table".into(),
                ));
            }
        }
        let no_dictionary = no_dictionary(&jobs);
        let ctx = RunContext {
            run_id: spec.run_id.clone(),
            started: spec.started,
            policy: PolicySummary::of(&self.policy),
            privacy: spec.privacy.clone(),
            out_format,
            write: self.write_options(out_format, no_dictionary),
            consent: None,
            is_dir: true,
            demo_keys: spec.demo_keys,
            key_protection: spec.key_protection.clone(),
        };
        std::fs::create_dir_all(&self.output).map_err(|e| Error::io(&self.output, e))?;
        let staging_dir = StagingDir::create(&self.output.join("files"))?;
        let staged = staging_dir.path.clone();
        let staging = Staging::Dir(staging_dir);
        let mut results = Vec::new();
        for job in jobs {
            let rel = job
                .input
                .path
                .strip_prefix(&self.input)
                .map(|r| {
                    r.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            let index = assigned
                .iter()
                .find(|a| a.rel == rel)
                .map(|a| a.index)
                .ok_or_else(|| Error::Internal("a fetched file not assigned".into()))?;
            let schema = schema_to_hex(&job.input.schema)?;
            let fingerprints = job
                .plan
                .columns
                .iter()
                .map(|c| c.key_fingerprint.clone())
                .collect();
            let done: JobOutput = self.write_job(job, index, &ctx, &staging)?;
            results.push(FileResult {
                index,
                input: done.input,
                outputs: done.outputs,
                columns: done.columns,
                entities: done.fields.iter().map(|f| f.entities.clone()).collect(),
                fingerprints,
                schema,
                uploads: Vec::new(),
                executor: String::new(),
            });
        }
        // The staging directory is removed with the scratch directory, after the uploads.
        if let Staging::Dir(d) = staging {
            std::mem::forget(d);
        }
        Ok((results, staged))
    }

    /// Client side of `apply --cluster URL`.
    pub(super) async fn run_cluster(self, cluster: String) -> Result<RunSummary> {
        let clock = std::time::Instant::now();
        let started = Utc::now();
        let Location::Url(input_url) = self.input_loc.clone() else {
            return Err(Error::Usage(
                "apply --cluster: --input must be an object-store URL (s3://, az://, gs://) the \
                 executors read in place"
                    .into(),
            ));
        };
        let Location::Url(output_url) = self.output_loc.clone() else {
            return Err(Error::Usage(
                "apply --cluster: --output must be an object-store prefix (s3://, az://, gs://) \
                 the executors write to"
                    .into(),
            ));
        };
        if !self.partition_by.is_empty() {
            return Err(Error::Usage(
                "apply --cluster: --partition-by is not supported on a cluster yet".into(),
            ));
        }
        if self.openlineage.is_some() {
            return Err(Error::Usage(
                "apply --cluster: --openlineage is not supported on a cluster yet".into(),
            ));
        }
        if self.policy.consent.is_some() {
            return Err(Error::Usage(
                "apply --cluster: a policy with a `consent:` ledger runs only without --cluster \
                 for now (the executors would need the ledger's state); run it on one machine"
                    .into(),
            ));
        }
        self.read.check()?;
        let out_format = self.output_format.unwrap_or(Format::Parquet);
        let sign_key = match &self.sign_key {
            Some(id) => Some(self.keyring.get(id)?),
            None => None,
        };
        let input = Remote::open(&input_url, &self.storage)?;
        let output = Remote::open(&output_url, &self.storage)?;
        output.writable()?;
        let (a, b) = (input.shown(), output.shown());
        let within =
            |x: &str, y: &str| x == y || x.starts_with(&format!("{}/", y.trim_end_matches('/')));
        if within(&a, &b) || within(&b, &a) {
            return Err(Error::Usage(format!(
                "--output {b} is, holds or lies inside --input {a}; write the release elsewhere"
            )));
        }
        // The objects, as the executors will read them (each pinned to its ETag).
        let fmt = self.input_format;
        let table = super::super::cluster_input::list("--input", &input_url, &self.storage).await?;
        let objects: Vec<_> = table
            .objects
            .iter()
            .filter(|o| match fmt {
                Some(f) => Format::from_path(Path::new(&o.shown)) == Some(f),
                None => true,
            })
            .cloned()
            .collect();
        if objects.is_empty() {
            return Err(Error::Storage {
                location: a.clone(),
                message: "no data object to read; check the URL".into(),
            });
        }
        if table.object {
            return Err(Error::Usage(format!(
                "apply --cluster: --input {a} is one object; a cluster writes one file per \
                 input object (one task each), so give a prefix of objects, or run apply \
                 without --cluster"
            )));
        }
        let base = a.trim_end_matches('/').to_string();
        let input_base = input_url.trim_end_matches('/').to_string();
        let mut assigned = Vec::new();
        let mut names = std::collections::HashMap::new();
        for (index, o) in objects.iter().enumerate() {
            // Messages name objects as shown (partition values withheld).
            let shown_rel = o
                .shown
                .strip_prefix(&format!("{base}/"))
                .unwrap_or(&o.shown);
            // `a.csv` and `a.csv.gz` would both become `a.parquet`.
            let out_rel = crate::io::output_file_name(Path::new(&o.rel), out_format);
            if let Some(other) = names.insert(out_rel, shown_rel.to_string()) {
                return Err(Error::Usage(format!(
                    "--input {a}: {other} and {shown_rel} would both be written to one output \
                     file; rename one of them or move it out of the prefix"
                )));
            }
            assigned.push(Assigned {
                // URLs carry no credentials (refused), so the given one can travel.
                url: format!("{input_base}/{}", o.rel),
                rel: o.rel.clone(),
                index,
                e_tag: o.e_tag.clone(),
                version: o.version.clone(),
                size: o.size,
            });
        }
        let run_id = self.run_id.clone().unwrap_or_else(provenance::new_run_id);
        let mut release =
            RemoteRelease::begin(output.clone(), true, self.overwrite, &run_id).await?;
        // The privacy block: grouped on the cluster, decided here, enforced by the executors
        // from the release table.
        let decided = match &self.policy.privacy {
            Some(p) => match self
                .decide_on_cluster(&cluster, p, &input_url, &table, &a)
                .await
            {
                Ok(d) => Some(d),
                Err(e) => {
                    release.abort().await;
                    return Err(e);
                }
            },
            None => None,
        };
        let (privacy_node, release_table) = match (&decided, &self.policy.privacy) {
            (Some((prep, decision)), Some(p)) => {
                let plain = crate::privacy::ReleaseTable::of(prep, decision).to_bytes();
                let (bytes, key) = seal(plain, &run_id)?;
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                let name = format!("cloakline-release-{run_id}.bin");
                let url = match release.put_scratch(&name, bytes).await {
                    Ok(u) => u,
                    Err(e) => {
                        release.abort().await;
                        return Err(e);
                    }
                };
                (
                    Some(crate::privacy::evidence(prep, p, decision)),
                    Some(TableRef {
                        url,
                        sha256: sha,
                        key: hex::encode(*key),
                    }),
                )
            }
            _ => (None, None),
        };
        let spec = ReleaseSpec {
            run_id: run_id.clone(),
            started,
            policy: self.policy.text.to_string(),
            policy_path: self.policy.source.clone(),
            hierarchies: self
                .policy
                .privacy
                .as_ref()
                .map(crate::policy::privacy::hierarchies_of)
                .unwrap_or_default(),
            privacy: privacy_node.clone(),
            release_table,
            input: base.clone(),
            input_url: input_base.clone(),
            output: b.trim_end_matches('/').to_string(),
            output_url: output_url.clone(),
            input_format: self.input_format.map(|f| f.extension().to_string()),
            output_format: out_format.extension().to_string(),
            read: self.read.clone(),
            out_delimiter: self.out_delimiter,
            zstd_level: self.zstd_level,
            threads: 1,
            demo_keys: self.keyring.is_demo(),
            key_protection: Some(self.keyring.protection().to_string()),
        };
        let partitions: Vec<Vec<Assigned>> = assigned.into_iter().map(|a| vec![a]).collect();
        let result = self.gather(&cluster, spec, &partitions, &mut release).await;
        // The grouping read the objects unpinned: they must be those the executors read.
        let result = match (result, &decided) {
            (Ok(r), Some(_)) => super::super::cluster_input::unchanged(
                "--input",
                &input_url,
                &self.storage,
                &table.objects,
            )
            .await
            .map(|()| r),
            (r, _) => r,
        };
        let results = match result {
            Ok(r) => r,
            Err(e) => {
                release.abort().await;
                return Err(e);
            }
        };
        let committed = self
            .commit(
                release,
                results,
                (&run_id, started, out_format),
                decided.as_ref().map(|(p, d)| (p, d, privacy_node)),
                sign_key,
                &cluster,
                &b,
            )
            .await;
        let (record, fields, executors) = committed?;
        tracing::info!(
            executors,
            "commit: the cluster's files and the sidecar are in place"
        );
        let sidecar = output.with_suffix(crate::io::store::SIDECAR_SUFFIX).shown();
        Ok(RunSummary::of(
            (PathBuf::from(&a), PathBuf::from(&b), PathBuf::from(sidecar)),
            &record,
            &fields,
            decided.map(|(_, d)| d.assessment),
            clock,
        ))
    }

    /// Group the input on the cluster and decide the release here, as a local run does.
    async fn decide_on_cluster(
        &self,
        cluster: &str,
        spec: &crate::policy::PrivacySpec,
        url: &str,
        table: &super::super::cluster_input::ListedTable,
        shown: &str,
    ) -> Result<(crate::privacy::Prepared, crate::privacy::Decision)> {
        let ctx =
            crate::cluster::connect(cluster, Arc::clone(&self.keyring), &self.storage).await?;
        super::super::cluster_input::register(
            &ctx,
            "input",
            "--input",
            url,
            table,
            Some(&self.policy),
            &self.read,
        )
        .await?;
        tracing::info!(input = %shown, "privacy pass: grouping on the cluster");
        let at = crate::privacy::Registered {
            ctx: &ctx,
            table: "input",
            shown,
            scheduler: Some(cluster),
        };
        let prep =
            crate::privacy::prepare_registered(&self.policy, spec, &self.keyring, at, true).await?;
        let decision = crate::privacy::decide(&prep, spec, shown)?;
        Ok((prep, decision))
    }

    /// Run the release operator on the cluster and collect every file's result.
    async fn gather(
        &self,
        cluster: &str,
        spec: ReleaseSpec,
        partitions: &[Vec<Assigned>],
        release: &mut RemoteRelease,
    ) -> Result<Vec<FileResult>> {
        let expected: usize = partitions.iter().map(Vec::len).sum();
        let size = spec.to_bytes().map(|b| b.len()).unwrap_or(usize::MAX);
        if size > MAX_SPEC {
            return Err(Error::Usage(format!(
                "apply --cluster: the policy and its hierarchy files come to {} MiB, more than \
                 the {} MiB a plan may carry; use smaller hierarchies (or `levels:`)",
                size >> 20,
                MAX_SPEC >> 20
            )));
        }
        let by_index: std::collections::HashMap<usize, &Assigned> =
            partitions.iter().flatten().map(|a| (a.index, a)).collect();
        let ctx =
            crate::cluster::connect(cluster, Arc::clone(&self.keyring), &self.storage).await?;
        let planning = Arc::new(Keyring::planning_only());
        // The job's only stage: one task per partition, whose rows the client fetches (a
        // coalescing root would run every partition in each task).
        let plan: Arc<dyn ExecutionPlan> = Arc::new(
            ReleaseExec::new(
                Arc::new(spec),
                assignments(partitions)?,
                Arc::clone(&planning),
                self.storage.clone(),
            )
            .map_err(|e| Error::Internal(e.to_string()))?,
        );
        let nodes = cluster_nodes(Arc::clone(&planning), self.storage.clone());
        let fail = |e: DataFusionError| Error::Cluster {
            scheduler: cluster.to_string(),
            message: crate::privacy::collect::without_data(&e.to_string()),
        };
        tracing::info!(
            objects = expected,
            scheduler = cluster,
            "apply: the cluster writes the release"
        );
        let mut stream =
            crate::cluster::submit_physical(cluster, &ctx, plan, planning, nodes).await?;
        let mut results = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(fail)?;
            let col = batch.column(0).as_string::<i32>();
            for i in 0..col.len() {
                let r: FileResult = serde_json::from_str(col.value(i)).map_err(|_| {
                    Error::Internal("an executor reported an unreadable result".into())
                })?;
                // Adopted at once: any failure from here on aborts its uploads.
                for u in &r.uploads {
                    release.adopt(u.clone())?;
                }
                check_result(&r, by_index.get(&r.index).copied())?;
                results.push(r);
            }
            self.cancel.check()?;
        }
        results.sort_by_key(|r| r.index);
        let mut seen: Vec<usize> = results.iter().map(|r| r.index).collect();
        seen.dedup();
        if seen.len() != results.len() || results.len() != expected {
            return Err(Error::Cluster {
                scheduler: cluster.to_string(),
                message: format!(
                    "the job reported {} results for {expected} objects; nothing was committed",
                    results.len()
                ),
            });
        }
        Ok(results)
    }

    /// Check the executors' results against this client's plan, record and commit.
    /// Every failure aborts the release (its lock, uploads and scratch objects).
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        release: RemoteRelease,
        results: Vec<FileResult>,
        (run_id, started, out_format): (&str, DateTime<Utc>, Format),
        privacy: Option<(
            &crate::privacy::Prepared,
            &crate::privacy::Decision,
            Option<crate::provenance::record::PrivacyNode>,
        )>,
        sign_key: Option<&crate::keys::Key>,
        cluster: &str,
        output_shown: &str,
    ) -> Result<(provenance::RunRecord, Vec<FieldRecord>, usize)> {
        let built = (|| {
            let first = results
                .first()
                .ok_or_else(|| Error::Internal("no results".into()))?;
            let schema = schema_from_hex(&first.schema)?;
            let mut plan = Plan::new(&self.policy, schema, &self.keyring, &first.input.path)?;
            if let (Some((prep, decision, _)), Some(spec)) = (&privacy, &self.policy.privacy) {
                crate::privacy::enforce(std::iter::once(&mut plan), prep, decision, spec)?;
            }
            let ours: Vec<Option<String>> = plan
                .columns
                .iter()
                .map(|c| c.key_fingerprint.clone())
                .collect();
            let ctx = RunContext {
                run_id: run_id.to_string(),
                started,
                policy: PolicySummary::of(&self.policy),
                privacy: privacy.as_ref().and_then(|(_, _, n)| n.clone()),
                out_format,
                write: self.write_options(out_format, Vec::new()),
                consent: None,
                is_dir: true,
                demo_keys: self.keyring.is_demo(),
                key_protection: Some(self.keyring.protection().to_string()),
            };
            let dropped: Vec<(String, String, &'static str)> = plan
                .dropped
                .iter()
                .map(|d| (d.name.clone(), d.data_type.to_string(), d.reason))
                .collect();
            let mut executors = std::collections::BTreeSet::new();
            let mut done = Vec::new();
            for r in &results {
                if r.schema != first.schema
                    && schema_from_hex(&r.schema)?.fields() != plan.input_schema.fields()
                {
                    return Err(Error::data(
                        &r.input.path,
                        "its schema differs from the first object's; a prefix must hold one table",
                    ));
                }
                if r.fingerprints != ours {
                    return Err(Error::Cluster {
                        scheduler: String::new(),
                        message: format!(
                            "executor {} holds keys that differ from this client's (the key \
                             fingerprints differ); give every executor the same keyring",
                            r.executor
                        ),
                    });
                }
                executors.insert(r.executor.clone());
                let mut fields = FieldRecord::from_plan(&plan, &r.columns);
                for (f, e) in fields.iter_mut().zip(&r.entities) {
                    f.entities = e.clone();
                }
                done.push(JobOutput {
                    input: r.input.clone(),
                    outputs: r.outputs.clone(),
                    fields,
                    columns: r.columns.clone(),
                    dropped: dropped.clone(),
                    consent: Default::default(),
                    record: provenance::RunRecord {
                        consent: None,
                        run_id: run_id.to_string(),
                        started,
                        ended: Utc::now(),
                        policy: ctx.policy.clone(),
                        inputs: Vec::new(),
                        outputs: Vec::new(),
                        fields: Vec::new(),
                        dropped: Vec::new(),
                        privacy: None,
                        directory: true,
                        demo_keys: ctx.demo_keys,
                        key_protection: ctx.key_protection.clone(),
                        cluster: None,
                    },
                });
            }
            let (mut record, fields) = run_record(&ctx, done, ctx.demo_keys);
            record.cluster = Some(crate::provenance::record::ClusterFacts {
                scheduler: cluster.to_string(),
                executors: executors.len() as u64,
                tasks: results.len() as u64,
            });
            Ok((record, fields, executors.len()))
        })();
        let (record, fields, executors) = match built {
            Ok(b) => b,
            Err(e) => {
                release.abort().await;
                return Err(e);
            }
        };
        let typed = record.to_record(true);
        let mut doc = typed.to_json();
        if let Some(key) = sign_key {
            crate::provenance::sign::sign(&mut doc, key);
        }
        let staged = (|| {
            let scratch = ScratchDir::create()?;
            let empty = scratch.path().join("release");
            std::fs::create_dir_all(&empty).map_err(|e| Error::io(&empty, e))?;
            let sidecar = scratch.path().join("sidecar.json");
            let body = serde_json::to_vec_pretty(&doc)
                .map_err(|e| Error::Internal(format!("the record: {e}")))?;
            std::fs::write(&sidecar, body).map_err(|e| Error::io(&sidecar, e))?;
            Ok::<_, Error>((scratch, empty, sidecar))
        })();
        let (_scratch, empty, sidecar) = match staged {
            Ok(s) => s,
            Err(e) => {
                release.abort().await;
                return Err(e);
            }
        };
        let cancel = self.cancel.clone();
        release
            .publish(
                crate::io::store::ReleaseFiles {
                    data: &empty,
                    is_dir: true,
                    sidecar: &sidecar,
                },
                &|| cancel.is_cancelled(),
            )
            .await?;
        tracing::info!(output = %output_shown, "commit: sidecar written last, release complete");
        Ok((record, fields, executors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::PhysicalCodec;
    use crate::keys::Key;

    fn spec(policy: &Policy) -> ReleaseSpec {
        ReleaseSpec {
            run_id: "r".into(),
            started: Utc::now(),
            policy: policy.text.to_string(),
            policy_path: policy.source.clone(),
            hierarchies: Default::default(),
            privacy: None,
            release_table: Some(TableRef {
                url: "s3://b/out/.cloakline-release-r.bin".into(),
                sha256: "00".into(),
                key: "00".into(),
            }),
            input: "s3://b/in".into(),
            input_url: "s3://b/in".into(),
            output: "s3://b/out".into(),
            output_url: "s3://b/out/".into(),
            input_format: None,
            output_format: "parquet".into(),
            read: ReadOptions::default(),
            out_delimiter: b',',
            zstd_level: 1,
            threads: 1,
            demo_keys: false,
            key_protection: None,
        }
    }

    #[test]
    fn release_plans_carry_key_ids_and_never_key_material() {
        let material: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(91) ^ 0x3C);
        let mut ring = Keyring::default();
        ring.insert(Key::from_bytes("k1", material).unwrap())
            .unwrap();
        let ring = Arc::new(ring);
        let policy = Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nunlisted: error\nfields:\n  email: { action: tokenize, key: k1, basis: contract }\n  phone: { action: encrypt, key: k1, basis: contract }\n",
            "t.yaml",
        )
        .unwrap();
        let assigned = vec![vec![Assigned {
            url: "s3://b/in/a.csv".into(),
            rel: "a.csv".into(),
            index: 0,
            e_tag: None,
            version: None,
            size: 1,
        }]];
        let exec: Arc<dyn ExecutionPlan> = Arc::new(
            ReleaseExec::new(
                Arc::new(spec(&policy)),
                assignments(&assigned).unwrap(),
                Arc::clone(&ring),
                StorageOptions::default(),
            )
            .unwrap(),
        );
        let codec = PhysicalCodec::new(Arc::clone(&ring))
            .with_nodes(cluster_nodes(Arc::clone(&ring), StorageOptions::default()));
        let bytes =
            datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(exec, &codec)
                .unwrap();
        let key = Key::from_bytes("k1", material).unwrap();
        let mut forms = vec![material.to_vec()];
        for (a, d) in [("tokenize", "email"), ("encrypt", "phone")] {
            forms.push(key.subkey(a, d).to_vec());
        }
        let find = |hay: &[u8], n: &[u8]| hay.windows(n.len()).any(|w| w == n);
        for f in forms {
            assert!(!find(&bytes, &f), "raw key material in the plan");
            assert!(
                !find(&bytes, hex::encode(&f).as_bytes()),
                "hex key material"
            );
        }
        assert!(find(&bytes, b"k1"), "the key id travels");
        // A scheduler (no keys) decodes it, and the assignments come back as sent.
        let planning = Arc::new(Keyring::planning_only());
        let sched = PhysicalCodec::new(Arc::clone(&planning))
            .with_nodes(cluster_nodes(planning, StorageOptions::default()));
        let ctx = datafusion::prelude::SessionContext::new();
        let back = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
            &bytes,
            &ctx.task_ctx(),
            &sched,
        )
        .unwrap();
        let r = back
            .downcast_ref::<ReleaseExec>()
            .expect("a release operator");
        assert_eq!(r.spec.release_table, spec(&policy).release_table);
        assert_eq!(back.properties().output_partitioning().partition_count(), 1);
    }

    #[test]
    fn a_plan_printed_for_debugging_withholds_the_table_key() {
        let plain = Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nunlisted: error\nfields:\n  age: { action: keep, basis: contract }\n",
            "t.yaml",
        )
        .unwrap();
        let mut s = spec(&plain);
        let key = "ab".repeat(32);
        s.release_table.as_mut().unwrap().key = key.clone();
        let exec = ReleaseExec::new(
            Arc::new(s),
            assignments(&[]).unwrap(),
            Arc::new(Keyring::default()),
            StorageOptions::default(),
        )
        .unwrap();
        let shown = format!("{exec:?}");
        assert!(shown.contains("(withheld)"), "{shown}");
        assert!(
            !shown.contains(&key[..16]),
            "the table key in a debug print"
        );
    }

    fn result(e_tag: &str, size: u64, out_sha: &str, up_sha: &str, rel: &str) -> FileResult {
        let ds = |rel: Option<&str>, sha: Option<&str>, bytes| DatasetRecord {
            path: "p".into(),
            relative_path: rel.map(str::to_string),
            format: "parquet".into(),
            rows: 1,
            sha256: sha.map(str::to_string),
            bytes: Some(bytes),
            schema: Vec::new(),
            e_tag: Some(e_tag.into()),
            version: None,
        };
        FileResult {
            index: 0,
            input: ds(None, None, size),
            outputs: vec![ds(Some("a.parquet"), Some(out_sha), 5)],
            columns: Vec::new(),
            entities: Vec::new(),
            fingerprints: Vec::new(),
            schema: String::new(),
            uploads: vec![PendingUpload {
                rel: rel.into(),
                id: "u".into(),
                parts: Vec::new(),
                bytes: 5,
                sha256: up_sha.into(),
            }],
            executor: "e".into(),
        }
    }

    #[test]
    fn results_must_match_their_assigned_object_and_their_uploads() {
        let a = Assigned {
            url: "s3://b/in/a.csv".into(),
            rel: "a.csv".into(),
            index: 0,
            e_tag: Some("e1".into()),
            version: None,
            size: 10,
        };
        assert!(check_result(&result("e1", 10, "s", "s", "a.parquet"), Some(&a)).is_ok());
        assert!(check_result(&result("e1", 10, "s", "s", "a.parquet"), None).is_err());
        assert!(check_result(&result("e2", 10, "s", "s", "a.parquet"), Some(&a)).is_err());
        assert!(check_result(&result("e1", 11, "s", "s", "a.parquet"), Some(&a)).is_err());
        assert!(check_result(&result("e1", 10, "s", "t", "a.parquet"), Some(&a)).is_err());
        assert!(check_result(&result("e1", 10, "s", "s", "b.parquet"), Some(&a)).is_err());
        let mut missing = result("e1", 10, "s", "s", "a.parquet");
        missing.uploads.clear();
        assert!(
            check_result(&missing, Some(&a)).is_err(),
            "an output without its upload"
        );
    }

    #[test]
    fn release_tables_open_only_with_their_key_and_run() {
        let (sealed, key) = seal(b"secret values".to_vec(), "run-1").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "sealed in clear"
        );
        let k = hex::encode(*key);
        assert_eq!(open_sealed(&sealed, &k, "run-1").unwrap(), b"secret values");
        assert!(
            open_sealed(&sealed, &k, "run-2").is_none(),
            "another run's table"
        );
        let mut altered = sealed.clone();
        altered[14] ^= 1;
        assert!(
            open_sealed(&altered, &k, "run-1").is_none(),
            "an altered table"
        );
        assert!(
            open_sealed(&sealed, &"00".repeat(32), "run-1").is_none(),
            "another key"
        );
        assert!(open_sealed(&sealed[..10], &k, "run-1").is_none());
    }

    #[test]
    fn hostile_release_specs_are_refused_without_reading_files() {
        let plain = Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nunlisted: error\nfields:\n  age: { action: keep, basis: contract }\n",
            "t.yaml",
        )
        .unwrap();
        let refused = |s: &ReleaseSpec| ReleaseSpec::from_bytes(&serde_json::to_vec(s).unwrap());
        assert!(refused(&spec(&plain)).is_ok());
        let mut s = spec(&plain);
        s.threads = 100_000;
        assert!(refused(&s).is_err(), "threads");
        let mut s = spec(&plain);
        s.read.batch_size = usize::MAX;
        assert!(refused(&s).is_err(), "batch size");
        let mut s = spec(&plain);
        s.input_url = "http://169.254.169.254/latest".into();
        assert!(refused(&s).is_err(), "an http input");
        let mut s = spec(&plain);
        s.release_table.as_mut().unwrap().url = "s3://elsewhere/t.bin".into();
        assert!(refused(&s).is_err(), "a release table elsewhere");
        assert!(ReleaseSpec::from_bytes(b"{").is_err());
        assert!(ReleaseSpec::from_bytes(&vec![b' '; MAX_SPEC + 1]).is_err());
        // A privacy block whose hierarchy was not sent: refused, not read from disk.
        let policy = "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nunlisted: error\nfields:\n  age: { action: keep, basis: contract }\nprivacy:\n  quasi_identifiers:\n    age: { hierarchy: /etc/passwd }\n  k: 2\n";
        let mut s = spec(&Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nunlisted: error\nfields:\n  age: { action: keep, basis: contract }\n",
            "t.yaml",
        )
        .unwrap());
        s.policy = policy.into();
        let e = ReleaseSpec::from_bytes(&serde_json::to_vec(&s).unwrap()).unwrap_err();
        assert!(e.to_string().contains("does not load"), "{e}");
    }
}
