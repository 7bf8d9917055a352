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
    /// A cluster's scheduler (`df://host:port`): the grouping runs there.
    cluster: Option<String>,
    consent: crate::plan::consent::ConsentOptions,
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
            cluster: None,
            consent: Default::default(),
        }
    }

    /// With a `consent:` block: read the ledger from `o.ledger` instead of the policy's,
    /// judge consent as of `o.as_of` instead of now, keep its map within `o.memory`.
    pub fn with_consent(mut self, o: crate::plan::consent::ConsentOptions) -> Self {
        self.consent = o;
        self
    }

    /// Group on the cluster whose scheduler is at `url` (`df://host:port`): the executors
    /// read the input (a URL) in place and run the `GROUP BY`; only the grouped rows come
    /// back, and the models are evaluated here, as for a local check.
    pub fn with_cluster(mut self, url: Option<String>) -> Self {
        self.cluster = url;
        self
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
        self.consent.check_for(Some(&self.policy))?;
        if let Some(url) = &self.cluster {
            return self.run_on_cluster(url).await;
        }
        let local = Local::of(&self.input, &self.storage, |p| {
            Format::from_path(p).is_some()
        })
        .await?;
        let input = local.path.as_path();
        tracing::info!(input = %self.input, "check: grouping the input");
        let shown = |t: &str| local.show(t);
        let consent = self
            .consent
            .load(&self.policy, chrono::Utc::now(), None, &self.storage)
            .await?
            .map(Arc::new);
        match privacy::check(
            &self.policy,
            &self.keyring,
            input,
            &self.read,
            self.preview,
            consent,
        )
        .await
        {
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

    async fn run_on_cluster(&self, cluster: &str) -> Result<CheckReport> {
        let ctx = cluster_context(cluster, &self.keyring, &self.storage).await?;
        // A URL is listed here and read by the executors in place; a local path must be one
        // every executor sees (a shared filesystem), as for `sql --cluster`.
        let mut listed = None;
        let (shown, objects) = match &self.input {
            Location::Url(url) => {
                let table = super::cluster_input::list("--input", url, &self.storage).await?;
                super::cluster_input::register(
                    &ctx,
                    "input",
                    "--input",
                    url,
                    &table,
                    Some(&self.policy),
                    &self.read,
                )
                .await?;
                let shown = crate::io::store::Remote::open(url, &self.storage)?.shown();
                let n = table.objects.len();
                listed = Some((url, table.objects));
                (shown, n)
            }
            Location::Local(path) => {
                let files = crate::io::table_files(path)?;
                let root = path.is_dir().then_some(path.as_path());
                crate::sql::register_files_under(
                    &ctx,
                    "input",
                    root,
                    &files,
                    Some(&self.policy),
                    &self.read,
                )
                .await?;
                (path.display().to_string(), files.len())
            }
        };
        tracing::info!(input = %shown, objects, "check: grouping on the cluster");
        let at = privacy::Registered {
            ctx: &ctx,
            table: "input",
            shown: &shown,
            scheduler: Some(cluster),
        };
        let report =
            privacy::check_registered(&self.policy, &self.keyring, at, self.preview).await?;
        if let Some((url, objects)) = listed {
            super::cluster_input::unchanged("--input", url, &self.storage, &objects).await?;
        }
        Ok(report)
    }
}

#[cfg(feature = "cluster")]
async fn cluster_context(
    url: &str,
    keyring: &Arc<Keyring>,
    storage: &StorageOptions,
) -> Result<datafusion::prelude::SessionContext> {
    crate::cluster::connect(url, Arc::clone(keyring), storage).await
}

#[cfg(not(feature = "cluster"))]
async fn cluster_context(
    url: &str,
    _keyring: &Arc<Keyring>,
    _storage: &StorageOptions,
) -> Result<datafusion::prelude::SessionContext> {
    Err(crate::error::Error::Usage(format!(
        "--cluster {url}: this cloakline was built without the `cluster` feature"
    )))
}
