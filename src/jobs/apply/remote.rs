//! `apply` with an object-store input or output: the input is fetched to a scratch
//! directory (hashed as it streams, ETags pinned), the run writes and commits into scratch as
//! it does locally, then the release is published with the commit protocol of
//! [`crate::io::store::RemoteRelease`]. Records name the URLs, never the scratch paths.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Apply, RunSummary};
use crate::error::{Error, Result};
use crate::io::arrival::Arrival;
use crate::io::store::{Fetched, Local, ReleaseFiles, Remote, RemoteRelease};
use crate::io::{Format, Location, ScratchDir};

/// What a remote run keeps between preparing and publishing.
pub(super) struct RemoteRun {
    input: Option<Local>,
    output: Option<Output>,
}

struct Output {
    release: RemoteRelease,
    _scratch: ScratchDir,
    /// The local path the run writes (a file, or a directory for a directory run).
    local: PathBuf,
    is_dir: bool,
    shown: String,
    sidecar_shown: String,
}

/// How to show local paths of a run: pairs (local prefix, URL).
#[derive(Clone, Default)]
pub(super) struct Shown {
    pairs: Vec<(String, String)>,
    pub(super) fetched: Option<Fetched>,
    /// The input object, when it is read while it arrives.
    arriving: Option<Arriving>,
}

#[derive(Clone)]
struct Arriving {
    local: PathBuf,
    e_tag: Option<String>,
    version: Option<String>,
    arrival: Arc<Arrival>,
}

impl Shown {
    pub(super) fn push(&mut self, local: &std::path::Path, shown: &str) {
        self.pairs
            .push((local.display().to_string(), shown.to_string()));
    }

    pub(super) fn show(&self, text: &str) -> String {
        self.pairs.iter().fold(text.to_string(), |t, (from, to)| {
            crate::io::store::relocate(&t, from, to)
        })
    }

    /// The ETag and version of the fetched object behind a local input file.
    pub(super) fn object_version(
        &self,
        local: &std::path::Path,
    ) -> (Option<String>, Option<String>) {
        if let Some(a) = self.arriving.as_ref().filter(|a| a.local == local) {
            return (a.e_tag.clone(), a.version.clone());
        }
        match self.fetched.as_ref().and_then(|f| f.object(local)) {
            Some(o) => (o.e_tag.clone(), o.version.clone()),
            None => (None, None),
        }
    }

    /// The SHA-256 the fetch computed while streaming the object behind a local input file
    /// (waiting for the fetch to end, when it is still arriving).
    pub(super) fn streamed_sha256(&self, local: &std::path::Path) -> Result<Option<String>> {
        if let Some(a) = self.arriving.as_ref().filter(|a| a.local == local) {
            return a
                .arrival
                .wait_all()
                .map(Some)
                .map_err(|e| Error::io(local, e));
        }
        Ok(self
            .fetched
            .as_ref()
            .and_then(|f| f.object(local))
            .map(|o| o.sha256.clone()))
    }

    /// Wait until the input has fully arrived: for readers other than [`crate::io::Input`]
    /// (DataFusion's, in the privacy pass), which would take a partial copy for the whole.
    pub(super) fn input_arrived(&self) -> Result<()> {
        match &self.arriving {
            Some(a) => a
                .arrival
                .wait_all()
                .map(|_| ())
                .map_err(|e| Error::io(&a.local, e)),
            None => Ok(()),
        }
    }

    fn relocate_error(&self, e: Error) -> Error {
        self.pairs
            .iter()
            .fold(e, |e, (from, to)| e.relocated(from, to))
    }
}

impl RemoteRun {
    /// Fetch a remote input and claim a remote output, pointing `job` at scratch paths.
    pub(super) async fn prepare(job: &mut Apply) -> Result<RemoteRun> {
        let mut run = RemoteRun {
            input: None,
            output: None,
        };
        if let Location::Url(_) = &job.input_loc {
            let fmt = job.input_format;
            let keep = move |p: &std::path::Path| match fmt {
                Some(f) => Format::from_path(p) == Some(f),
                None => Format::from_path(p).is_some(),
            };
            tracing::info!(input = %job.input_loc, "fetch: reading the input from its store");
            // A single object is read while it arrives; a prefix is fetched first.
            let local = Local::arriving(&job.input_loc, &job.storage, keep).await?;
            job.input = local.path.clone();
            job.shown.pairs.push((
                local.path.display().to_string(),
                local.show(&local.path.display().to_string()),
            ));
            job.shown.fetched = local.fetched.clone();
            if let Some(a) = &local.arriving {
                let cancel = job.cancel.clone();
                a.stop_when(move || cancel.is_cancelled());
            }
            job.shown.arriving = local.arriving.as_ref().map(|a| Arriving {
                local: a.local.clone(),
                e_tag: a.e_tag.clone(),
                version: a.version.clone(),
                arrival: Arc::clone(&a.arrival),
            });
            run.input = Some(local);
            job.cancel.check()?;
        }
        if let Location::Url(u) = &job.output_loc {
            if job.openlineage.is_some() {
                return Err(Error::Usage(
                    "--openlineage with an object-store output: write the event to a local \
                     file and upload it yourself (not supported yet)"
                        .into(),
                ));
            }
            let remote = Remote::open(u, &job.storage)?;
            // An output over (or inside, or around) the input would replace what it reads.
            if let Location::Url(i) = &job.input_loc
                && let Ok(input) = Remote::open(i, &job.storage)
            {
                let (a, b) = (input.shown(), remote.shown());
                let within = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}/"));
                if within(&a, &b) || within(&b, &a) {
                    return Err(Error::Usage(format!(
                        "--output {b} is, holds or lies inside --input {a}; write the release \
                         elsewhere"
                    )));
                }
            }
            let is_dir = job.output_is_dir();
            let scratch = ScratchDir::create()?;
            // The file name keeps its extension: the format is told from it.
            let name = match is_dir {
                true => "dataset".to_string(),
                false => remote
                    .shown()
                    .rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("output")
                    .to_string(),
            };
            let local = scratch.path().join("out").join(name);
            let run_id = crate::provenance::new_run_id();
            let release =
                RemoteRelease::begin(remote.clone(), is_dir, job.overwrite, &run_id).await?;
            job.run_id = Some(run_id);
            job.streams = Some(release.streams());
            job.output = local.clone();
            job.shown
                .pairs
                .push((local.display().to_string(), remote.shown()));
            run.output = Some(Output {
                release,
                _scratch: scratch,
                local,
                is_dir,
                shown: remote.shown(),
                sidecar_shown: remote.with_suffix(crate::io::store::SIDECAR_SUFFIX).shown(),
            });
        }
        Ok(run)
    }

    /// Publish a committed local run, or clean up after a failed one.
    pub(super) async fn finish(
        self,
        shown: &Shown,
        cancel: &crate::engine::Cancel,
        result: Result<RunSummary>,
    ) -> Result<RunSummary> {
        let mut this = self;
        let result = match result {
            // Reads that stopped because the fetch was stopped: the run was interrupted.
            Err(Error::Data { .. } | Error::Io { .. }) if cancel.is_cancelled() => {
                Err(Error::Interrupted)
            }
            // Reads that stopped because the fetch failed: the store's error says why.
            Err(e @ (Error::Data { .. } | Error::Io { .. })) => {
                Err(this.fetch_error().await.unwrap_or(e))
            }
            other => other,
        };
        // The fetch lets go of the scratch copy before the scratch directory goes.
        if let Some(a) = this.input.as_mut().and_then(|i| i.arriving.as_mut()) {
            a.stop().await;
        }
        let mut summary = match (result, this.output) {
            (Ok(s), None) => s,
            (Err(e), out) => {
                if let Some(o) = out {
                    o.release.abort().await;
                }
                return Err(shown.relocate_error(e));
            }
            (Ok(mut s), Some(o)) => {
                tracing::info!(output = %o.shown, "publish: uploading the release");
                o.release
                    .publish(
                        ReleaseFiles {
                            data: &o.local,
                            is_dir: o.is_dir,
                            sidecar: &s.provenance,
                        },
                        &|| cancel.is_cancelled(),
                    )
                    .await
                    .map_err(|e| shown.relocate_error(e))?;
                tracing::info!(output = %o.shown, "commit: sidecar written last, release complete");
                s.output = PathBuf::from(&o.shown);
                s.provenance = PathBuf::from(&o.sidecar_shown);
                s
            }
        };
        if let Some(i) = &this.input {
            summary.input = PathBuf::from(i.show(&summary.input.display().to_string()));
        }
        Ok(summary)
    }

    /// When the run failed while its input was arriving and the fetch failed too, the
    /// fetch's error says why (the run's only says its reads stopped). A fetch still going
    /// is stopped.
    pub(super) async fn fetch_error(&mut self) -> Option<Error> {
        let object = self.input.as_mut()?.arriving.as_mut()?;
        if !object.arrival.has_failed() {
            return None;
        }
        object.outcome().await.err()
    }
}
