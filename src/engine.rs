//! The streaming engine: batches in, transformed batches out, in input order, on all cores.
//!
//! A reader thread decodes batches, worker threads apply the plan's kernels, and the calling
//! thread writes results in their original order. A fixed number of batches is in flight at
//! any time, so memory does not grow with the input size.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{Error, Result};
use crate::io::BatchIter;
use crate::plan::consent::{ConsentCounts, Withhold};
use crate::plan::{Kernel, Plan};

/// Run a job's blocking work (file I/O and CPU) on Tokio's blocking pool, for the async job
/// builders. Awaited outside a Tokio runtime it is a usage error, not a panic; a panic in the
/// work is an internal error whose message (which may quote a value) is dropped.
pub async fn run_blocking<T: Send + 'static>(
    job: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::runtime::Handle::try_current()
        .map_err(|_| Error::Usage(format!("{job} must be awaited inside a Tokio runtime")))?;
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(Error::Internal(format!(
            "the {job} job panicked; nothing was written"
        )))
    })
}

/// Asks a running job to stop. The engine checks it between units and fails with
/// [`Error::Interrupted`]; a job that stops this way commits nothing. Clones share one flag, so
/// a caller keeps one and hands another to the job (the CLI cancels on Ctrl-C).
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every holder of this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// Receives a job's progress; the CLI draws a progress bar with it. Every method has a no-op
/// default, so an implementation picks what it shows.
pub trait Progress: Send + Sync {
    /// The job starts writing; `total_rows` when the inputs tell it (Parquet footers).
    fn start(&self, total_rows: Option<u64>) {
        let _ = total_rows;
    }
    /// `rows` more rows were written.
    fn advance(&self, rows: u64) {
        let _ = rows;
    }
    /// The job finished writing (before its commit).
    fn finish(&self) {}
}

/// A transformed and encoded unit, or the error that stopped it.
type Done<T> = (u64, Result<Unit<T>>);

/// Per-output-column counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnCounts {
    /// Non-null values passed through a transforming action (0 for `keep`).
    pub transformed: u64,
    /// Null values (they stay null).
    pub nulls: u64,
}

/// Totals of one stream.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    /// Rows written.
    pub rows: u64,
    /// Rows dropped by the plan's row filter (suppressed records).
    pub suppressed: u64,
    pub batches: u64,
    pub columns: Vec<ColumnCounts>,
    /// What the consent gate did (zero without one).
    pub consent: ConsentCounts,
}

impl StreamStats {
    fn add(&mut self, unit: &UnitCounts) {
        let UnitCounts {
            rows,
            suppressed,
            batches,
            counts,
            consent,
        } = unit;
        self.consent.add(consent);
        self.rows += *rows as u64;
        self.suppressed += *suppressed as u64;
        self.batches += *batches as u64;
        if self.columns.len() < counts.len() {
            self.columns.resize(counts.len(), ColumnCounts::default());
        }
        for (a, b) in self.columns.iter_mut().zip(counts) {
            a.transformed += b.transformed;
            a.nulls += b.nulls;
        }
    }
}

/// Apply the plan to one batch.
pub fn transform_batch(
    plan: &Plan,
    batch: &RecordBatch,
) -> Result<(RecordBatch, Vec<ColumnCounts>)> {
    transform_gated(plan, batch).map(|t| (t.batch, t.counts))
}

/// One batch's result: the released rows, per-column counts and what consent removed.
struct Transformed {
    batch: RecordBatch,
    counts: Vec<ColumnCounts>,
    /// Rows the consent gate removed or withheld fields of.
    consent: ConsentCounts,
    /// Rows after the consent gate (the privacy filter's input).
    gated_rows: usize,
}

/// Consent first (rows of subjects without consent leave before any kernel sees them, their
/// consent-based fields are nulled), then the kernels, then the privacy block's row filter.
fn transform_gated(plan: &Plan, batch: &RecordBatch) -> Result<Transformed> {
    if batch.schema().fields().len() != plan.input_schema.fields().len() {
        return Err(Error::Data {
            path: "<stream>".into(),
            message: "a batch's columns differ from the planned schema".into(),
        });
    }
    let mut consent = ConsentCounts::default();
    let mut verdict = None;
    let gated;
    let batch = match &plan.consent {
        None => batch,
        Some(gate) => {
            let v = gate.decide(batch)?;
            consent = v.counts.clone();
            gated = match &v.keep {
                Some(keep) => arrow::compute::filter_record_batch(batch, keep)?,
                None => batch.clone(),
            };
            verdict = Some((gate, v));
            &gated
        }
    };
    let gated_rows = batch.num_rows();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len());
    let mut withheld: Vec<Option<&arrow::array::BooleanArray>> = vec![None; plan.columns.len()];
    for (n, col) in plan.columns.iter().enumerate() {
        let mut input = Arc::clone(batch.column(col.input_index));
        if input.data_type() != &col.input_type {
            return Err(Error::Transform {
                field: col.rule.input_name.clone(),
                message: format!(
                    "batch has type {} but the plan expected {}",
                    input.data_type(),
                    col.input_type
                ),
            });
        }
        if let Some((gate, v)) = &verdict {
            withheld[n] = match gate.withhold[n] {
                Withhold::Never => None,
                Withhold::General => v.general_null.as_ref(),
                Withhold::Separate => v.separate_null.as_ref(),
            };
        }
        // The kernel never sees a withheld value.
        if let Some(mask) = withheld[n] {
            input = arrow::compute::nullif(&input, mask)?;
        }
        let keyed_by = col.keyed_by.map(|j| batch.column(j));
        let mut out = col
            .kernel
            .apply_keyed(&input, keyed_by)
            .map_err(|e| Error::Transform {
                field: col.rule.input_name.clone(),
                message: e.to_string(),
            })?;
        // A kernel that writes a constant for null (redact with a replacement) writes none
        // where consent withheld the field.
        if let Some(mask) = withheld[n] {
            out = arrow::compute::nullif(&out, mask)?;
        }
        arrays.push(out);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    let mut out =
        RecordBatch::try_new_with_options(Arc::clone(&plan.output_schema), arrays, &options)?;
    // Rows of suppressed classes leave here; counts describe the rows released.
    let mut mask = None;
    if let Some(filter) = &plan.row_filter {
        let keep = filter.keep(&out).map_err(|m| Error::Transform {
            field: "<quasi-identifiers>".into(),
            message: m.message,
        })?;
        out = arrow::compute::filter_record_batch(&out, &keep)?;
        mask = Some(keep);
    }
    let mut counts = Vec::with_capacity(plan.columns.len());
    for (n, col) in plan.columns.iter().enumerate() {
        let mut input = Arc::clone(batch.column(col.input_index));
        if let Some(m) = withheld[n] {
            input = arrow::compute::nullif(&input, m)?;
        }
        let (len, nulls) = match &mask {
            None => (input.len(), input.logical_null_count()),
            Some(m) => {
                let kept = arrow::compute::filter(&input, m)?;
                (kept.len(), kept.logical_null_count())
            }
        };
        let transformed = match col.kernel {
            Kernel::Keep => 0,
            _ => (len - nulls) as u64,
        };
        counts.push(ColumnCounts {
            transformed,
            nulls: nulls as u64,
        });
    }
    Ok(Transformed {
        batch: out,
        counts,
        consent,
        gated_rows,
    })
}

/// Run `batches` through `plan` on `threads` workers. Batches are grouped into units of at
/// least `group_rows` rows; a worker transforms a unit and hands it to `encode` (so encoding
/// and compression run in parallel too); `sink` receives the encoded units in input order.
pub fn run<T: Send>(
    plan: &Plan,
    batches: BatchIter,
    threads: usize,
    group_rows: usize,
    cancel: &Cancel,
    encode: impl Fn(&[RecordBatch]) -> Result<T> + Sync,
    mut sink: impl FnMut(T) -> Result<()>,
) -> Result<StreamStats> {
    let threads = threads.max(1);
    let in_flight = threads + 2;
    let encode = &encode;
    std::thread::scope(|scope| {
        // Permits bound the number of units between reader and writer.
        let (permit_tx, permit_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = permit_tx.send(());
        }
        let (work_tx, work_rx) = sync_channel::<(u64, Result<Vec<RecordBatch>>)>(in_flight);
        let (done_tx, done_rx) = sync_channel::<Done<T>>(in_flight);

        let reader = std::thread::Builder::new().name("cl-reader".into());
        let spawned = reader.spawn_scoped(scope, move || {
            let mut group = Vec::new();
            let mut rows = 0;
            let mut seq = 0u64;
            let mut batches = batches;
            loop {
                let next = guarded("reading the input", || batches.next());
                let next = match next {
                    Ok(n) => n,
                    Err(e) => Some(Err(e)),
                };
                let flush = match &next {
                    Some(Ok(b)) => {
                        rows += b.num_rows();
                        false
                    }
                    _ => true,
                };
                let failed = matches!(next, Some(Err(_)));
                match next {
                    Some(Ok(b)) => group.push(b),
                    Some(Err(e)) => {
                        let _ = permit_rx.recv();
                        let _ = work_tx.send((seq, Err(e)));
                        return;
                    }
                    None => {}
                }
                if (flush || rows >= group_rows) && !group.is_empty() && !failed {
                    if permit_rx.recv().is_err()
                        || work_tx.send((seq, Ok(std::mem::take(&mut group)))).is_err()
                    {
                        return;
                    }
                    seq += 1;
                    rows = 0;
                }
                if flush {
                    return;
                }
            }
        });
        if let Err(e) = spawned {
            return Err(Error::io("<thread>", e));
        }
        let work_rx = Arc::new(Mutex::new(work_rx));
        for _ in 0..threads {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            let worker = std::thread::Builder::new().name("cl-worker".into());
            let spawned = worker.spawn_scoped(scope, move || {
                loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, item)) = next else { return };
                    let result = item.and_then(|group| {
                        guarded("transforming the data", || {
                            transform_group(plan, &group, encode)
                        })?
                    });
                    if done_tx.send((seq, result)).is_err() {
                        return;
                    }
                }
            });
            if let Err(e) = spawned {
                return Err(Error::io("<thread>", e));
            }
        }
        drop(done_tx);
        write_in_order(done_rx, permit_tx, &mut sink, cancel)
    })
}

/// Run `f`, turning a panic into [`Error::Internal`]. The panic's own message is dropped: it
/// may quote a value (e.g. a string slice out of range), and errors never carry data.
fn guarded<R>(what: &str, f: impl FnOnce() -> R) -> Result<R> {
    crate::error::catch_panic(f).map_err(|_| {
        Error::Internal(format!(
            "a worker thread panicked while {what}; nothing was written (the panic message is \
             withheld because it may contain data values)"
        ))
    })
}

/// Transform every batch of a group, then encode the group.
fn transform_group<T>(
    plan: &Plan,
    group: &[RecordBatch],
    encode: &impl Fn(&[RecordBatch]) -> Result<T>,
) -> Result<Unit<T>> {
    let mut out = Vec::with_capacity(group.len());
    let mut c = UnitCounts {
        counts: vec![ColumnCounts::default(); plan.columns.len()],
        batches: group.len(),
        ..Default::default()
    };
    for b in group {
        let t = transform_gated(plan, b)?;
        c.rows += t.batch.num_rows();
        c.suppressed += t.gated_rows - t.batch.num_rows();
        c.consent.add(&t.consent);
        for (a, x) in c.counts.iter_mut().zip(&t.counts) {
            a.transformed += x.transformed;
            a.nulls += x.nulls;
        }
        out.push(t.batch);
    }
    let payload = encode(&out)?;
    Ok(Unit { counts: c, payload })
}

/// What one unit did.
#[derive(Default)]
struct UnitCounts {
    rows: usize,
    /// Removed by the privacy block (consent removals are counted in `consent`).
    suppressed: usize,
    batches: usize,
    counts: Vec<ColumnCounts>,
    consent: ConsentCounts,
}

/// A transformed and encoded group.
struct Unit<T> {
    counts: UnitCounts,
    payload: T,
}

/// Receive results, reorder them, and write. Taking ownership of `permit_tx` and `done_rx`
/// means an early error return drops them, which unblocks and stops the other threads.
fn write_in_order<T>(
    done_rx: Receiver<Done<T>>,
    permit_tx: SyncSender<()>,
    sink: &mut impl FnMut(T) -> Result<()>,
    cancel: &Cancel,
) -> Result<StreamStats> {
    let mut stats = StreamStats::default();
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for (seq, result) in done_rx {
        cancel.check()?;
        pending.insert(seq, result?);
        while let Some(unit) = pending.remove(&next) {
            cancel.check()?;
            stats.add(&unit.counts);
            sink(unit.payload)?;
            next += 1;
            let _ = permit_tx.send(());
        }
    }
    cancel.check()?;
    Ok(stats)
}

/// Worker threads to use by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keyring;
    use crate::policy::Policy;
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};

    fn plan_and_batches(n: usize) -> (Plan, Vec<RecordBatch>) {
        let policy = Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nfields:\n  a: { action: keep, basis: contract }\n",
            "t.yaml",
        )
        .unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        let plan = Plan::new(&policy, Arc::clone(&schema), &Keyring::default(), "in").unwrap();
        let batches = (0..n)
            .map(|_| {
                let a: ArrayRef = Arc::new(StringArray::from(vec!["secret-value"]));
                RecordBatch::try_new(Arc::clone(&schema), vec![a]).unwrap()
            })
            .collect();
        (plan, batches)
    }

    fn assert_internal_without_data(r: Result<StreamStats>) {
        match r {
            Err(e @ Error::Internal(_)) => {
                let m = e.to_string();
                assert!(!m.contains("secret-value"), "{m}");
                assert!(m.contains("panicked"), "{m}");
                assert_eq!(e.exit_code(), 70);
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    #[test]
    fn a_worker_panic_is_an_internal_error_without_its_message() {
        let (plan, batches) = plan_and_batches(4);
        let iter: BatchIter = Box::new(batches.into_iter().map(Ok));
        let r = run(
            &plan,
            iter,
            2,
            1,
            &Cancel::new(),
            |b: &[RecordBatch]| -> Result<usize> {
                let v = b[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                panic!("boom on {}", v.value(0))
            },
            |_| Ok(()),
        );
        assert_internal_without_data(r);
    }

    #[test]
    fn a_reader_panic_is_an_internal_error() {
        let (plan, _) = plan_and_batches(0);
        let iter: BatchIter =
            Box::new((0..3).map(|_| -> Result<RecordBatch> { panic!("decoder saw secret-value") }));
        let r = run(
            &plan,
            iter,
            2,
            1,
            &Cancel::new(),
            |_: &[RecordBatch]| Ok(()),
            |_| Ok(()),
        );
        assert_internal_without_data(r);
    }

    #[test]
    fn a_cancelled_run_stops_with_interrupted_and_writes_nothing_more() {
        let (plan, batches) = plan_and_batches(8);
        let iter: BatchIter = Box::new(batches.into_iter().map(Ok));
        let cancel = Cancel::new();
        let handle = cancel.clone();
        let mut written = 0;
        let r = run(
            &plan,
            iter,
            2,
            1,
            &cancel,
            |_: &[RecordBatch]| Ok(()),
            |_| {
                written += 1;
                // The caller's clone cancels after the first unit is written.
                handle.cancel();
                Ok(())
            },
        );
        assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
        assert_eq!(written, 1);
    }
}
