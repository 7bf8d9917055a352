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
use crate::plan::{Kernel, Plan};

/// Set by the CLI's Ctrl-C handler; the engine stops at the next batch and the run fails cleanly.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// A transformed batch with its counts, or the error that stopped it.
type Done = (u64, Result<(RecordBatch, Vec<ColumnCounts>)>);

/// Per-output-column counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ColumnCounts {
    /// Non-null values passed through a transforming action (0 for `keep`).
    pub transformed: u64,
    /// Null values (they stay null).
    pub nulls: u64,
}

/// Totals of one stream.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub rows: u64,
    pub batches: u64,
    pub columns: Vec<ColumnCounts>,
}

impl StreamStats {
    fn add(&mut self, rows: usize, counts: &[ColumnCounts]) {
        self.rows += rows as u64;
        self.batches += 1;
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
    if batch.schema().fields().len() != plan.input_schema.fields().len() {
        return Err(Error::Data {
            path: "<stream>".into(),
            message: "a batch's columns differ from the planned schema".into(),
        });
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len());
    let mut counts = Vec::with_capacity(plan.columns.len());
    for col in &plan.columns {
        let input = batch.column(col.input_index);
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
        let out = col.kernel.apply(input).map_err(|e| Error::Transform {
            field: col.rule.input_name.clone(),
            message: e.to_string(),
        })?;
        let nulls = input.logical_null_count() as u64;
        let transformed = match col.kernel {
            Kernel::Keep => 0,
            _ => input.len() as u64 - nulls,
        };
        counts.push(ColumnCounts { transformed, nulls });
        arrays.push(out);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    let out = RecordBatch::try_new_with_options(Arc::clone(&plan.output_schema), arrays, &options)?;
    Ok((out, counts))
}

/// Run `batches` through `plan` on `threads` workers, handing results to `sink` in input order.
pub fn run(
    plan: &Plan,
    batches: BatchIter,
    threads: usize,
    mut sink: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<StreamStats> {
    let threads = threads.max(1);
    let in_flight = threads * 2 + 2;
    std::thread::scope(|scope| {
        // Permits bound the number of batches between reader and writer.
        let (permit_tx, permit_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = permit_tx.send(());
        }
        let (work_tx, work_rx) = sync_channel::<(u64, Result<RecordBatch>)>(in_flight);
        let (done_tx, done_rx) =
            sync_channel::<(u64, Result<(RecordBatch, Vec<ColumnCounts>)>)>(in_flight);

        scope.spawn(move || {
            for (seq, item) in (0u64..).zip(batches) {
                if permit_rx.recv().is_err() {
                    return;
                }
                let stop = item.is_err();
                if work_tx.send((seq, item)).is_err() || stop {
                    return;
                }
            }
        });
        let work_rx = Arc::new(Mutex::new(work_rx));
        for _ in 0..threads {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, item)) = next else { return };
                    let result = item.and_then(|b| transform_batch(plan, &b));
                    if done_tx.send((seq, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        write_in_order(done_rx, permit_tx, &mut sink)
    })
}

/// Receive results, reorder them, and write. Taking ownership of `permit_tx` and `done_rx`
/// means an early error return drops them, which unblocks and stops the other threads.
fn write_in_order(
    done_rx: Receiver<Done>,
    permit_tx: SyncSender<()>,
    sink: &mut impl FnMut(RecordBatch) -> Result<()>,
) -> Result<StreamStats> {
    let mut stats = StreamStats::default();
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for (seq, result) in done_rx {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        pending.insert(seq, result?);
        while let Some((batch, counts)) = pending.remove(&next) {
            stats.add(batch.num_rows(), &counts);
            sink(batch)?;
            next += 1;
            let _ = permit_tx.send(());
        }
    }
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    Ok(stats)
}

/// Worker threads to use by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
