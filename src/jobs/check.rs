//! `check`: measure an input against the policy's privacy models (k, l, t, class sizes,
//! risks) without writing anything.

use std::sync::Arc;

use crate::error::Result;
use crate::io::store::{Local, StorageOptions};
use crate::io::{Format, Location, ReadOptions};
use crate::keys::Keyring;
use crate::policy::Policy;
use crate::privacy::{self, CheckReport};

/// Builder for one `check` run. Like `Apply`, it owns its inputs and runs on the caller's
/// runtime (the grouping pass is DataFusion).
#[must_use]
pub struct Check {
    policy: Arc<Policy>,
    keyring: Arc<Keyring>,
    input: Location,
    read: ReadOptions,
    preview: bool,
    storage: StorageOptions,
}

impl Check {
    pub fn new(
        policy: impl Into<Arc<Policy>>,
        keyring: impl Into<Arc<Keyring>>,
        input: impl Into<Location>,
    ) -> Self {
        Check {
            policy: policy.into(),
            keyring: keyring.into(),
            input: input.into(),
            read: ReadOptions::default(),
            preview: true,
            storage: StorageOptions::default(),
        }
    }

    /// Settings of the store a URL input is in (see docs/STORAGE.md).
    pub fn with_storage_options(mut self, options: StorageOptions) -> Self {
        self.storage = options;
        self
    }

    pub fn with_read_options(mut self, read: ReadOptions) -> Self {
        self.read = read;
        self
    }

    /// With `on_violation: suppress` or `generalize`, also decide as `apply` would and
    /// report that release ([`CheckReport::preview`]; on by default). Off: only the data as
    /// the field rules release it (level 0) is measured.
    pub fn with_preview(mut self, preview: bool) -> Self {
        self.preview = preview;
        self
    }

    /// The report, whether or not the models are met ([`CheckReport::passes`] says); an
    /// error means the check itself could not run (no privacy block, unreadable input…).
    pub async fn run(self) -> Result<CheckReport> {
        // DataFusion spawns Tokio tasks: another executor would make it panic.
        tokio::runtime::Handle::try_current().map_err(|_| {
            crate::Error::Usage("Check::run must be awaited inside a Tokio runtime".into())
        })?;
        let local = Local::of(&self.input, &self.storage, |p| {
            Format::from_path(p).is_some()
        })
        .await?;
        let input = local.path.as_path();
        tracing::info!(input = %self.input, "check: grouping the input");
        let shown = |t: &str| local.show(t);
        match privacy::check(&self.policy, &self.keyring, input, &self.read, self.preview).await {
            Ok(mut report) => {
                report.input = shown(&report.input);
                Ok(report)
            }
            Err(e) if local.is_remote() => {
                let from = local.path.display().to_string();
                Err(e.relocated(&from, &shown(&from)))
            }
            Err(e) => Err(e),
        }
    }
}
