//! `verify` on object-store URLs: the release (or the one object) and its record are fetched
//! to scratch, checked as local files, and every path in the result shown as its URL.
//!
//! A URL naming one object of a directory release finds its record the way a reader would:
//! `<object>.provenance.json`, else the sidecar of the nearest enclosing prefix
//! (`s3://share/customers/part-0.parquet` → `s3://share/customers.provenance.json`).

use std::path::{Path, PathBuf};

use super::Verify;
use crate::error::{Error, Result};
use crate::io::store::{Covering, Local, Remote};
use crate::io::{Location, ScratchDir};

/// What was fetched for one verification.
pub(super) struct Fetched {
    pub output: PathBuf,
    pub provenance: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    /// (local path, URL) pairs to show results with.
    pub pairs: Vec<(String, String)>,
    pub scratch: Scratch,
}

/// Scratch directories, removed when dropped.
pub(super) struct Scratch {
    _dirs: Vec<ScratchDir>,
    _locals: Vec<Local>,
}

use crate::io::store::SIDECAR_SUFFIX as SIDECAR;

/// Fetch what `v` names by URL; `None` when everything is local.
pub(super) async fn fetch(v: &Verify) -> Result<Option<Fetched>> {
    let remote_record = matches!(v.provenance, Some(Location::Url(_)));
    let remote_policy = matches!(v.policy, Some(Location::Url(_)));
    if !matches!(v.output, Location::Url(_)) && !remote_record && !remote_policy {
        return Ok(None);
    }
    let mut pairs = Vec::new();
    let mut locals = Vec::new();
    let mut dirs = Vec::new();
    // An explicit record or policy by URL: fetched as one object each.
    let mut provenance = None;
    if let Some(loc @ Location::Url(_)) = &v.provenance {
        let l = Local::of(loc, &v.storage, |_| true).await?;
        pairs.push((
            l.path.display().to_string(),
            l.show(&l.path.display().to_string()),
        ));
        provenance = Some(l.path.clone());
        locals.push(l);
    } else if let Some(Location::Local(p)) = &v.provenance {
        provenance = Some(p.clone());
    }
    let mut policy = None;
    if let Some(loc @ Location::Url(_)) = &v.policy {
        let l = Local::of(loc, &v.storage, |_| true).await?;
        policy = Some(l.path.clone());
        locals.push(l);
    }
    let output = match &v.output {
        Location::Local(p) => p.clone(),
        Location::Url(u) => {
            let remote = Remote::open(u, &v.storage)?;
            let scratch = ScratchDir::create()?;
            let root = scratch.path().join("release");
            let (local, record) = if remote.head().await?.is_some() {
                fetch_object(&remote, &root, provenance.is_none()).await?
            } else {
                // A prefix: every object under it (verify reports unrecorded ones).
                let fetched = remote.fetch(&root, |_| true).await?;
                let sidecar = remote.with_suffix(SIDECAR);
                let record = match provenance.is_none() {
                    true => Some(download(&sidecar, &root.join("record")).await?),
                    false => None,
                };
                pairs.push((fetched.local.display().to_string(), remote.shown()));
                (fetched.local, record)
            };
            if let Some((path, shown)) = record {
                pairs.push((path.display().to_string(), shown));
                provenance = Some(path);
            }
            if let Some((from, to)) = object_pair(&local, &remote, &pairs) {
                pairs.push((from, to));
            }
            dirs.push(scratch);
            local
        }
    };
    Ok(Some(Fetched {
        output,
        provenance,
        policy,
        pairs,
        scratch: Scratch {
            _dirs: dirs,
            _locals: locals,
        },
    }))
}

/// For a single fetched object, the pair showing its local path as its URL.
fn object_pair(
    local: &Path,
    remote: &Remote,
    pairs: &[(String, String)],
) -> Option<(String, String)> {
    let l = local.display().to_string();
    (!pairs.iter().any(|(a, _)| l.starts_with(a.as_str()))).then(|| (l, remote.shown()))
}

/// One object and (when `want_record`) the record that covers it: its own sidecar, else the
/// sidecar of the nearest enclosing prefix, with the object placed under a mirror of that
/// prefix so its relative path matches the record's.
async fn fetch_object(
    remote: &Remote,
    root: &Path,
    want_record: bool,
) -> Result<(PathBuf, Option<(PathBuf, String)>)> {
    let covering = match want_record {
        true => remote.covering_record().await?,
        false => None,
    };
    let Some(Covering {
        sidecar,
        enclosing: Some((dir, rel)),
    }) = covering
    else {
        let record = match (want_record, &covering) {
            (false, _) => None,
            (true, Some(c)) => Some(download(&c.sidecar, &root.join("record")).await?),
            (true, None) => {
                return Err(Error::Storage {
                    location: remote.with_suffix(SIDECAR).shown(),
                    message: "no provenance record: neither this sidecar nor one of an \
                              enclosing prefix exists; pass --provenance"
                        .into(),
                });
            }
        };
        let fetched = remote.fetch(root, |_| true).await?;
        return Ok((fetched.local, record));
    };
    let record = download(&sidecar, &root.join("record")).await?;
    let fetched = dir.fetch(root, |p| p == Path::new(&rel)).await?;
    let local = fetched
        .objects
        .into_iter()
        .next()
        .map(|o| o.local)
        .ok_or_else(|| Error::Storage {
            location: remote.shown(),
            message: "vanished while being fetched".into(),
        })?;
    Ok((local, Some(record)))
}

/// Download one small object (a record) into `dir`, returning its local path and URL.
async fn download(remote: &Remote, dir: &Path) -> Result<(PathBuf, String)> {
    let fetched = remote.fetch(dir, |_| true).await?;
    Ok((fetched.local, remote.shown()))
}
