//! Embed `apply` in a pipeline: the caller's runtime, a cancellation token, progress, and
//! errors matched by variant.
//!
//! ```text
//! cargo run --example embed            # writes into a temporary directory, then removes it
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cloakline::engine::{Cancel, Progress};
use cloakline::jobs::apply::Apply;
use cloakline::keys::Keyring;
use cloakline::policy::Policy;
use cloakline::{Error, PlanProblem};

/// Counts rows as they are written (a pipeline would export a metric).
#[derive(Default)]
struct Rows(AtomicU64);

impl Progress for Rows {
    fn advance(&self, rows: u64) {
        self.0.fetch_add(rows, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = Arc::new(Policy::load(&root.join("policies/customers.yaml"))?);
    let keyring = Arc::new(Keyring::load(&root.join("examples/demo-keyring.json"))?);
    // A directory of our own: the example removes only what it created.
    let out = tempfile::tempdir()?;
    let output = out.path().join("customers.parquet");

    let cancel = Cancel::new(); // hand a clone to whatever may stop the pipeline
    let rows = Arc::new(Rows::default());
    let job = Apply::new(
        Arc::clone(&policy),
        Arc::clone(&keyring),
        root.join("examples/customers.csv"),
        &output,
    )
    .with_cancel(cancel.clone())
    .with_progress(rows.clone());
    match job.run().await {
        Ok(summary) => println!(
            "{} rows written ({} seen by progress); provenance in {}",
            summary.rows_out,
            rows.0.load(Ordering::Relaxed),
            summary.provenance.display()
        ),
        Err(Error::MissingKey { key_id, .. }) => eprintln!("add key {key_id} to the keyring"),
        Err(Error::Plan { problems, .. }) => {
            for p in problems {
                if let PlanProblem::UnknownColumn { field, line, .. } = &p {
                    eprintln!("policy line {line}: `{field}` is not in the data");
                } else {
                    eprintln!("{p}");
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
