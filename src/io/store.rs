//! Object stores: `s3://`, `az://`/`abfss://`, `gs://`, and `http(s)://` for reading, through
//! the `object_store` crate DataFusion uses. Credentials come from each cloud's standard
//! environment (what `object_store`'s `from_env` builders read) plus `--storage-option
//! KEY=VALUE`; never from the policy. Messages name locations without user info or query
//! strings, and every secret value we know of is scrubbed from a store's error text.
//!
//! Jobs reach a remote location through two operations: [`Remote::fetch`] (objects streamed
//! to a local scratch directory, SHA-256 computed while streaming, the ETag pinned so an
//! object that changes mid-read is an error) and [`RemoteRelease`] (the commit protocol of
//! docs/STORAGE.md: a lock object created conditionally, data objects uploaded multipart,
//! the provenance sidecar written last as the commit marker).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjPath;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::arrival::{Arrival, Feeding};
use crate::error::{Error, Result};

mod upload;
use upload::Streamed;
pub use upload::{Cancelled, Streams, UploadTee};

/// Options for the stores (`--storage-option KEY=VALUE`): the keys `object_store`'s builders
/// know (`endpoint`, `region`, `allow_http`, `access_key_id`…), plus `max_retries` and
/// `retry_timeout_secs`. Debug output shows keys only.
#[derive(Clone, Default)]
pub struct StorageOptions {
    pairs: Vec<(String, String)>,
}

impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.pairs.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("StorageOptions")
            .field("keys", &keys)
            .finish()
    }
}

impl StorageOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one option (a later value for the same key wins).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs
            .push((key.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Parse `KEY=VALUE` (the command line's form); the error never quotes the value.
    pub fn parse_pair(text: &str) -> Result<(String, String)> {
        match text.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::Usage(
                "--storage-option takes KEY=VALUE (e.g. endpoint=http://127.0.0.1:9000)".into(),
            )),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Values that must never appear in a message: option values with secret-looking keys
    /// and the standard credential variables of the environment.
    fn secrets(&self) -> Vec<String> {
        let secret = |k: &str| {
            let k = k.to_ascii_lowercase();
            [
                "secret",
                "token",
                "key",
                "password",
                "sas",
                "signature",
                "credential",
            ]
            .iter()
            .any(|s| k.contains(s))
                && !k.ends_with("key_id")
        };
        let mut v: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| secret(k))
            .map(|(_, v)| v.clone())
            .collect();
        v.extend(
            std::env::vars()
                .filter(|(k, _)| {
                    (k.starts_with("AWS_") || k.starts_with("AZURE_") || k.starts_with("GOOGLE_"))
                        && secret(k)
                })
                .map(|(_, v)| v),
        );
        v.retain(|s| s.len() >= 4);
        v
    }
}

/// A URL's scheme family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    S3,
    Azure,
    Gcs,
    Http,
}

/// A location in an object store: the store, the key (or key prefix) it names, and how to
/// show it.
#[derive(Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    /// The same store's multipart API, for uploads another process completes (a cluster's
    /// executors write, the client commits); every writable store has one.
    multipart: Option<Arc<dyn MultipartStore>>,
    kind: Kind,
    /// The key, without a trailing `/`.
    key: ObjPath,
    /// `scheme://bucket` as shown (no user info).
    base: String,
    /// Whether the user wrote a trailing `/` (a prefix for certain).
    prefix: bool,
    secrets: Arc<Vec<String>>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// An object brought to local disk.
#[derive(Clone, Debug)]
pub struct FetchedObject {
    /// Local file.
    pub local: PathBuf,
    /// As shown in records and messages.
    pub shown: String,
    pub e_tag: Option<String>,
    pub version: Option<String>,
    pub size: u64,
    pub sha256: String,
}

/// An object being fetched by [`Remote::fetch_arriving`]: readers of `local` wait for its
/// bytes. Dropping it stops the fetch.
pub struct ArrivingObject {
    pub local: PathBuf,
    /// As shown in records and messages.
    pub shown: String,
    pub e_tag: Option<String>,
    pub version: Option<String>,
    pub arrival: Arc<Arrival>,
    task: Option<tokio::task::JoinHandle<Result<FetchedObject>>>,
    /// Last: unregistered after the task is told to stop.
    _registered: super::arrival::Registered,
}

impl ArrivingObject {
    /// The fetch's outcome (waiting for it): the object as fetched, or why it failed.
    pub async fn outcome(&mut self) -> Result<FetchedObject> {
        let Some(task) = self.task.take() else {
            return Err(Error::Internal(
                "the fetch's outcome was taken twice".into(),
            ));
        };
        task.await.unwrap_or_else(|_| {
            Err(Error::Storage {
                location: self.shown.clone(),
                message: "the fetch stopped before it was complete".into(),
            })
        })
    }

    /// Stop the fetch if it is still going, and wait until it has let go of the copy.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stop the fetch once `cancelled()` says so (checked every 100 ms while it runs): a
    /// reader waiting for bytes is then woken with an error instead of waiting for the store.
    pub fn stop_when(&self, cancelled: impl Fn() -> bool + Send + 'static) {
        let Some(task) = &self.task else { return };
        let abort = task.abort_handle();
        let arrival = Arc::clone(&self.arrival);
        tokio::spawn(async move {
            while !arrival.is_complete() && !arrival.has_failed() && !abort.is_finished() {
                if cancelled() {
                    abort.abort();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

impl Drop for ArrivingObject {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl fmt::Debug for ArrivingObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrivingObject")
            .field("shown", &self.shown)
            .finish()
    }
}

/// What [`Remote::fetch`] brought: a local file, or a local directory mirroring a prefix.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub local: PathBuf,
    pub is_dir: bool,
    pub objects: Vec<FetchedObject>,
}

impl Fetched {
    /// The fetched object behind a local file.
    pub fn object(&self, local: &Path) -> Option<&FetchedObject> {
        self.objects.iter().find(|o| o.local == local)
    }
}

/// An object as listed ([`Remote::list_data`]).
#[derive(Clone, Debug)]
pub struct Listed {
    /// As shown: partition values withheld.
    pub shown: String,
    /// Its key below the listed prefix, as stored (`""` for a single object). Partition
    /// values included: for reading it, never for messages or records.
    pub rel: String,
    pub e_tag: Option<String>,
    pub version: Option<String>,
    pub size: u64,
}

/// What a release's sidecar is called: `<output>` plus this.
pub const SIDECAR_SUFFIX: &str = ".provenance.json";

/// The record covering an object ([`Remote::covering_record`]).
pub struct Covering {
    pub sidecar: Remote,
    /// When the record is an enclosing prefix's: that prefix, and the object's path below it.
    pub enclosing: Option<(Remote, String)>,
}

/// Objects fetched at once; each streams in chunks, so memory stays bounded.
const PARALLEL: usize = 4;
/// Bytes per streamed ranged GET: large enough to stream at full speed, small enough that a
/// failed range costs little to read again.
const RANGE: u64 = 64 << 20;
/// A single object's ranges requested at once, and their size: a GET at a time leaves the
/// store (and the other core) idle between requests.
const AHEAD: usize = 4;
const RANGE_AHEAD: u64 = 8 << 20;
/// The ranges of a single object read while it arrives.
const RANGE_ARRIVING: u64 = 2 << 20;
/// A Parquet object read while it arrives has this much of its end fetched first: its
/// footer, unless the file holds thousands of row groups (then the reader waits for the
/// rest, as it would without it).
const TAIL: u64 = 1 << 20;
/// A streamed range tells its readers how far it got at least this often.
const ARRIVAL_STEP: u64 = 1 << 20;
/// Multipart part size: S3's minimum is 5 MiB.
const PART: usize = 8 << 20;

impl Remote {
    /// Open `url` with `options` (credentials from the environment as each cloud's tools
    /// read them).
    pub fn open(url: &str, options: &StorageOptions) -> Result<Remote> {
        let shown = super::location::redact_url(url);
        let parsed =
            url::Url::parse(url).map_err(|_| Error::Usage(format!("{shown}: not a valid URL")))?;
        // `abfss://container@account.dfs.core.windows.net/…` names the container as the user.
        let container_as_user = matches!(parsed.scheme(), "abfs" | "abfss");
        if (!parsed.username().is_empty() && !container_as_user) || parsed.password().is_some() {
            return Err(Error::Usage(format!(
                "{shown}: credentials in the URL are refused (they would end up in shell \
                 history and logs); use the environment or --storage-option"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::Usage(format!(
                "{shown}: a query string or fragment in a storage URL is refused; pass \
                 settings with --storage-option"
            )));
        }
        let scheme = parsed.scheme().to_ascii_lowercase();
        let kind = match scheme.as_str() {
            "s3" | "s3a" => Kind::S3,
            "az" | "azure" | "abfs" | "abfss" | "adl" => Kind::Azure,
            "gs" => Kind::Gcs,
            "http" | "https" => Kind::Http,
            _ => {
                return Err(Error::Usage(format!(
                    "{shown}: unknown storage scheme {scheme:?}; use s3://, az://, abfss://, \
                     gs://, http(s):// or a local path"
                )));
            }
        };
        let unknown = |k: &str| {
            Error::Usage(format!(
                "--storage-option {k}: not a setting of the {scheme}:// store; see \
                 docs/STORAGE.md for the keys"
            ))
        };
        let mut retry = object_store::RetryConfig {
            max_retries: 5,
            retry_timeout: Duration::from_secs(120),
            ..Default::default()
        };
        let number = |k: &str| -> Result<Option<u64>> {
            options
                .get(k)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        Error::Usage(format!("--storage-option {k} takes a whole number"))
                    })
                })
                .transpose()
        };
        if let Some(n) = number("max_retries")? {
            retry.max_retries = n.min(100) as usize;
        }
        if let Some(n) = number("retry_timeout_secs")? {
            retry.retry_timeout = Duration::from_secs(n.min(3600));
        }
        let own = |k: &str| matches!(k, "max_retries" | "retry_timeout_secs");
        let fail = |e: object_store::Error| Error::Storage {
            location: shown.clone(),
            message: describe(&e, &[]),
        };
        let mut multipart: Option<Arc<dyn MultipartStore>> = None;
        let store: Arc<dyn ObjectStore> = match kind {
            Kind::S3 => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .with_retry(retry);
                for (k, v) in options.pairs.iter().filter(|(k, _)| !own(k)) {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, v);
                }
                let built = Arc::new(b.build().map_err(fail)?);
                multipart = Some(built.clone());
                built
            }
            Kind::Azure => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry);
                for (k, v) in options.pairs.iter().filter(|(k, _)| !own(k)) {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, v);
                }
                let built = Arc::new(b.build().map_err(fail)?);
                multipart = Some(built.clone());
                built
            }
            Kind::Gcs => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry);
                for (k, v) in options.pairs.iter().filter(|(k, _)| !own(k)) {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, v);
                }
                let built = Arc::new(b.build().map_err(fail)?);
                multipart = Some(built.clone());
                built
            }
            Kind::Http => {
                let origin = &parsed[..url::Position::BeforePath];
                let mut b = object_store::http::HttpBuilder::new()
                    .with_url(origin)
                    .with_retry(retry);
                for (k, v) in options.pairs.iter().filter(|(k, _)| !own(k)) {
                    b = b.with_config(k.parse().map_err(|_| unknown(k))?, v);
                }
                Arc::new(b.build().map_err(fail)?)
            }
        };
        // The key is the URL's path (`with_url` took the bucket or container from the URL).
        let path = parsed.path().trim_start_matches('/');
        let prefix = path.ends_with('/') || path.is_empty();
        let key = ObjPath::from_url_path(path.trim_end_matches('/'))
            .map_err(|_| Error::Usage(format!("{shown}: not a valid object key")))?;
        let base = {
            let host = match parsed.username() {
                "" => parsed.host_str().unwrap_or("").to_string(),
                user => format!("{user}@{}", parsed.host_str().unwrap_or("")),
            };
            match parsed.port() {
                Some(p) => format!("{scheme}://{host}:{p}"),
                None => format!("{scheme}://{host}"),
            }
        };
        Ok(Remote {
            store,
            multipart,
            kind,
            key,
            base,
            prefix,
            secrets: Arc::new(options.secrets()),
        })
    }

    /// The location as the user gave it, without secrets.
    pub fn shown(&self) -> String {
        self.shown_key(&self.key)
    }

    fn shown_key(&self, key: &ObjPath) -> String {
        match key.as_ref() {
            "" => format!("{}/", self.base),
            k => format!("{}/{k}", self.base),
        }
    }

    /// `rel` (with `/` separators) under this location, as shown.
    pub fn shown_at(&self, rel: &str) -> String {
        self.shown_key(&self.child(rel))
    }

    /// `rel` under this key, its segments taken as they are (a partition directory's
    /// `%20` stays `%20`: `join` would encode the `%` again and name another object).
    fn child(&self, rel: &str) -> ObjPath {
        let rel = rel.trim_matches('/');
        let joined = match (self.key.as_ref(), rel) {
            (k, "") => k.to_string(),
            ("", r) => r.to_string(),
            (k, r) => format!("{k}/{r}"),
        };
        ObjPath::parse(&joined).unwrap_or_else(|_| {
            // Unreachable for names cloakline writes (checked segments); never a panic.
            let mut k = self.key.clone();
            for part in rel.split('/').filter(|p| !p.is_empty()) {
                k = k.join(part);
            }
            k
        })
    }

    /// The same store at `key + suffix` (a sidecar beside an output: `out` → `out.provenance.json`).
    pub fn with_suffix(&self, suffix: &str) -> Remote {
        let mut r = self.clone();
        let joined = format!("{}{suffix}", self.key.as_ref());
        r.key = ObjPath::parse(&joined).unwrap_or_else(|_| ObjPath::from(joined));
        r.prefix = false;
        r
    }

    /// The same store at another of its locations, given as shown (`s3://bucket/key`),
    /// taken as a prefix.
    pub fn at(&self, shown: &str) -> Result<Remote> {
        let rest = shown
            .strip_prefix(&self.base)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| Error::Internal("a location outside its store".into()))?;
        let mut r = self.clone();
        r.key = ObjPath::parse(rest)
            .map_err(|_| Error::Usage(format!("{shown}: not a valid object key")))?;
        r.prefix = true;
        Ok(r)
    }

    /// Whether this store takes writes (`http(s)://` is read-only here).
    pub fn writable(&self) -> Result<()> {
        match self.kind {
            Kind::Http => Err(Error::Usage(format!(
                "{}: http(s):// locations are read-only; write to s3://, az://, gs:// or a local path",
                self.shown()
            ))),
            _ => Ok(()),
        }
    }

    fn err(&self, key: &ObjPath, doing: &str, e: object_store::Error) -> Error {
        let message = describe(&e, &self.secrets);
        Error::Storage {
            location: self.withheld_key(key),
            message: format!("{doing}: {message}"),
        }
    }

    /// A key as shown in messages: partition directory values below this location
    /// (`currency=CNY/`) are data values, shown as `currency=(withheld)/`.
    fn withheld_key(&self, key: &ObjPath) -> String {
        let Some(rel) = self.relative(key) else {
            return self.shown_key(key);
        };
        let segs: Vec<&str> = rel.split('/').collect();
        let shown: Vec<String> = segs
            .iter()
            .enumerate()
            .map(|(i, seg)| match seg.split_once('=') {
                Some((k, _)) if i + 1 < segs.len() => format!("{k}=(withheld)"),
                _ => seg.to_string(),
            })
            .collect();
        match self.key.as_ref() {
            "" => format!("{}/{}", self.base, shown.join("/")),
            _ if rel.is_empty() => self.shown_key(key),
            k => format!("{}/{k}/{}", self.base, shown.join("/")),
        }
    }

    /// The object at this key, if there is one.
    pub async fn head(&self) -> Result<Option<ObjectMeta>> {
        if self.prefix {
            return Ok(None);
        }
        match self.store.head(&self.key).await {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&self.key, "reading its metadata", e)),
        }
    }

    /// Every object under this location taken as a prefix (`key/…`), sorted by key.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let prefix = match self.key.as_ref() {
            "" => None,
            _ => Some(&self.key),
        };
        let mut v: Vec<ObjectMeta> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| self.err(&self.key, "listing its objects", e))?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// The object's key relative to this location, with `/` separators.
    fn relative(&self, key: &ObjPath) -> Option<String> {
        let parts: Vec<_> = key.prefix_match(&self.key)?.collect();
        Some(
            parts
                .iter()
                .map(|p| p.as_ref())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// The store itself (for DataFusion's object-store registry).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// What is there without reading it: this object, or the data objects under this prefix
    /// (names `keep` accepts, hidden names and folder markers skipped, as [`Remote::fetch`]
    /// does), each shown with partition values withheld.
    /// The flag says whether the location is one object (not a prefix).
    pub async fn list_data(&self, keep: impl Fn(&Path) -> bool) -> Result<(bool, Vec<Listed>)> {
        let listed = |m: ObjectMeta, rel: String| Listed {
            shown: self.withheld_key(&m.location),
            rel,
            e_tag: m.e_tag,
            version: m.version,
            size: m.size,
        };
        if let Some(meta) = self.head().await? {
            return Ok((true, vec![listed(meta, String::new())]));
        }
        let mut v = Vec::new();
        for meta in self.list().await? {
            let Some(rel) = self.relative(&meta.location) else {
                continue;
            };
            let segs: Vec<&str> = rel.split('/').collect();
            if rel.is_empty()
                || segs.iter().any(|s| s.is_empty() || s.starts_with('.'))
                || !keep(Path::new(&rel))
            {
                continue;
            }
            v.push(listed(meta, rel));
        }
        if v.is_empty() {
            return Err(Error::Storage {
                location: self.shown(),
                message: "no object, and no data file under it as a prefix; check the URL \
                          (and the bucket)"
                    .into(),
            });
        }
        Ok((false, v))
    }

    /// The provenance record covering this object, as a reader finds it:
    /// `<key>.provenance.json`, else the sidecar of the nearest enclosing prefix
    /// (`s3://share/t/a=1/part-0.parquet` → `s3://share/t.provenance.json`), with the
    /// prefix and the object's path below it.
    pub async fn covering_record(&self) -> Result<Option<Covering>> {
        let own = self.with_suffix(SIDECAR_SUFFIX);
        if own.head().await?.is_some() {
            return Ok(Some(Covering {
                sidecar: own,
                enclosing: None,
            }));
        }
        let shown = self.shown();
        let mut cut = shown.len();
        while let Some(i) = shown[..cut].rfind('/') {
            cut = i;
            let prefix = &shown[..cut];
            if prefix.ends_with('/')
                || !prefix[prefix.find("://").map_or(0, |p| p + 3)..].contains('/')
            {
                break;
            }
            let dir = self.at(prefix)?;
            let sidecar = dir.with_suffix(SIDECAR_SUFFIX);
            if sidecar.head().await?.is_some() {
                return Ok(Some(Covering {
                    sidecar,
                    enclosing: Some((dir, shown[cut + 1..].to_string())),
                }));
            }
        }
        Ok(None)
    }

    /// Write a small object in one PUT (a report): readers see all of it or none.
    pub async fn put_small(&self, body: Vec<u8>) -> Result<()> {
        self.writable()?;
        self.store
            .put(&self.key, PutPayload::from(body))
            .await
            .map_err(|e| self.err(&self.key, "writing it", e))?;
        Ok(())
    }

    /// Read a small object whole (a sidecar, a policy).
    pub async fn read_small(&self, limit: u64) -> Result<(bytes::Bytes, ObjectMeta)> {
        let got = self
            .store
            .get(&self.key)
            .await
            .map_err(|e| self.err(&self.key, "reading it", e))?;
        if got.meta.size > limit {
            return Err(Error::Storage {
                location: self.shown(),
                message: format!("larger than {limit} bytes; is it the right object?"),
            });
        }
        let meta = got.meta.clone();
        let b = got
            .bytes()
            .await
            .map_err(|e| self.err(&self.key, "reading it", e))?;
        Ok((b, meta))
    }

    /// Bring this location to `dir`: one object (named by its last key segment), or, for a
    /// prefix, every object under it whose relative path (`a=1/x.csv`) `keep` accepts,
    /// mirrored as a directory.
    /// Names starting with `.` are skipped, as in local directories.
    pub async fn fetch(&self, dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Fetched> {
        if let Some(meta) = self.head().await? {
            let name = self.key.filename().unwrap_or("object");
            let local = dir.join(safe_segment(name).ok_or_else(|| self.bad_name())?);
            let obj = self.download(meta, local.clone(), true).await?;
            return Ok(Fetched {
                local,
                is_dir: false,
                objects: vec![obj],
            });
        }
        let root = dir.join("dataset");
        let mut wanted = Vec::new();
        for meta in self.list().await? {
            let Some(rel) = self.relative(&meta.location) else {
                continue;
            };
            // Folder markers (`prefix/`, zero bytes), hidden names and files that are not
            // data are skipped before a name is judged.
            let segs: Vec<&str> = rel.split('/').collect();
            if rel.is_empty()
                || segs.iter().any(|s| s.is_empty() || s.starts_with('.'))
                || !keep(Path::new(&rel))
            {
                continue;
            }
            let mut local = root.clone();
            for seg in segs {
                local.push(safe_segment(seg).ok_or_else(|| self.bad_name())?);
            }
            wanted.push((meta, local));
        }
        if wanted.is_empty() {
            return Err(Error::Storage {
                location: self.shown(),
                message: "no object, and no data file under it as a prefix; check the URL \
                          (and the bucket)"
                    .into(),
            });
        }
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let objects = futures::stream::iter(wanted)
            .map(|(meta, local)| self.download(meta, local, false))
            .buffered(PARALLEL)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(Fetched {
            local: root,
            is_dir: true,
            objects,
        })
    }

    fn bad_name(&self) -> Error {
        Error::Storage {
            location: self.shown(),
            message: "an object under it has a name that cannot be a local file name (`..`, \
                      a backslash or a control character); rename it"
                .into(),
        }
    }

    /// Bring one object to `local` with ranged GETs, hashing in order as it goes. Every
    /// range is pinned to the listed ETag (and version): an object replaced between two
    /// ranges is an error, never a mix of two versions; a failed range is retried alone by
    /// the store client, not the whole object. A single object is read [`AHEAD`] ranges of
    /// [`RANGE_AHEAD`] bytes at a time (a prefix's objects are already read in parallel); a
    /// plain web server, which may ignore `Range`, is read one streamed range at a time.
    async fn download(
        &self,
        meta: ObjectMeta,
        local: PathBuf,
        single: bool,
    ) -> Result<FetchedObject> {
        self.download_to(meta, local, single, None).await
    }

    /// [`Remote::download`], telling `arrival` (when given) how far it got.
    async fn download_to(
        &self,
        meta: ObjectMeta,
        local: PathBuf,
        single: bool,
        arrival: Option<&Arrival>,
    ) -> Result<FetchedObject> {
        match (self.kind, single) {
            (Kind::Http, _) => self.download_ranged(meta, local, RANGE, 1, arrival).await,
            (_, true) => {
                // Read while arriving: smaller ranges, so the front moves on sooner (the
                // ranges in flight share the link, and each is whole only at its end).
                let range = match arrival {
                    Some(_) => RANGE_ARRIVING,
                    None => RANGE_AHEAD,
                };
                self.download_ranged(meta, local, range, AHEAD, arrival)
                    .await
            }
            (_, false) => {
                self.download_ranged(meta, local, RANGE_AHEAD, 1, arrival)
                    .await
            }
        }
    }

    /// Start fetching this location into `dir` when it is a single object, and return at
    /// once: the scratch copy can be read while it arrives ([`super::arrival`]). `None` for
    /// a prefix (fetch it with [`Remote::fetch`]).
    pub async fn fetch_arriving(&self, dir: &Path) -> Result<Option<ArrivingObject>> {
        let Some(meta) = self.head().await? else {
            return Ok(None);
        };
        let name = self.key.filename().unwrap_or("object");
        let local = dir.join(safe_segment(name).ok_or_else(|| self.bad_name())?);
        std::fs::File::create(&local).map_err(|e| Error::io(&local, e))?;
        let registered = Arrival::register(&local, meta.size);
        let arrival = Arc::clone(registered.arrival());
        let (e_tag, version) = (meta.e_tag.clone(), meta.version.clone());
        let remote = self.clone();
        let path = local.clone();
        let shown = self.withheld_key(&self.key);
        let said = shown.clone();
        let feeding = Feeding(Arc::clone(&arrival));
        let task = tokio::spawn(async move {
            // Dropped with the task (finished, failed or aborted): readers then stop waiting.
            let feeding = feeding;
            let got = remote.download_to(meta, path, true, Some(&feeding.0)).await;
            if let Ok(o) = &got {
                tracing::info!(input = %said, bytes = o.size, "fetch: the input has arrived");
            }
            got
        });
        Ok(Some(ArrivingObject {
            local,
            shown,
            e_tag,
            version,
            arrival,
            task: Some(task),
            _registered: registered,
        }))
    }

    /// [`Remote::download`] with ranges of `range` bytes, `ahead` of them requested at once
    /// (then each range is held in memory until its turn; with 1 it is streamed). With an
    /// `arrival`, a Parquet object's last range is fetched first (its footer is read first).
    async fn download_ranged(
        &self,
        meta: ObjectMeta,
        local: PathBuf,
        range: u64,
        ahead: usize,
        arrival: Option<&Arrival>,
    ) -> Result<FetchedObject> {
        let key = meta.location.clone();
        if let Some(parent) = local.parent().filter(|_| arrival.is_none()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io(parent, e))?;
        }
        // An arriving copy was created before its readers could open it: written in place
        // (never created again, so nothing reappears in a scratch directory being removed).
        let mut file = match arrival {
            None => tokio::fs::File::create(&local).await,
            Some(_) => tokio::fs::OpenOptions::new().write(true).open(&local).await,
        }
        .map_err(|e| Error::io(&local, e))?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let changed = || Error::Storage {
            location: self.withheld_key(&key),
            message: "the object changed while being read (its ETag no longer matches); \
                      run again once writers are done"
                .into(),
        };
        let short = |start: u64, end: u64, got: u64| Error::Storage {
            location: self.withheld_key(&key),
            message: format!(
                "asked for bytes {start}..{end} and got {got} bytes; it changed while being read"
            ),
        };
        // One GET for an object within one range: a web server that ignores Range (and
        // answers 200 with the whole body) still serves small objects.
        let whole = meta.size <= range;
        // A Parquet object read while it arrives: its last range first.
        let tail = match arrival.is_some()
            && ahead > 1
            && !whole
            && super::Format::from_path(Path::new(key.as_ref())) == Some(super::Format::Parquet)
        {
            true => TAIL.min(meta.size),
            false => 0,
        };
        let body = meta.size - tail;
        let ranges: Vec<(u64, u64)> = (tail > 0)
            .then_some((body, meta.size))
            .into_iter()
            .chain((0..body.div_ceil(range.max(1))).map(|i| (i * range, body.min((i + 1) * range))))
            .collect();
        let mut tail_bytes = None;
        let request = |(start, end): (u64, u64)| {
            let options = object_store::GetOptions {
                if_match: meta.e_tag.clone(),
                version: meta.version.clone(),
                range: (!whole).then_some(object_store::GetRange::Bounded(start..end)),
                ..Default::default()
            };
            let key = &key;
            let meta = &meta;
            async move {
                let got = self
                    .store
                    .get_opts(key, options)
                    .await
                    .map_err(|e| match e {
                        object_store::Error::Precondition { .. } => changed(),
                        e => self.err(key, "reading it", e),
                    })?;
                // A store that ignores If-Match still reports the object's ETag and size.
                if (meta.e_tag.is_some() && got.meta.e_tag != meta.e_tag)
                    || got.meta.size != meta.size
                {
                    return Err(changed());
                }
                Ok::<_, Error>(((start, end), got))
            }
        };
        if ahead <= 1 {
            let mut shown_front = 0u64;
            for r in ranges {
                let ((start, end), got) = request(r).await?;
                let mut stream = got.into_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| self.err(&key, "reading it", e))?;
                    hash.update(&chunk);
                    size += chunk.len() as u64;
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| Error::io(&local, e))?;
                    if let Some(a) = arrival
                        && size >= shown_front + ARRIVAL_STEP
                    {
                        file.flush().await.map_err(|e| Error::io(&local, e))?;
                        a.advance(size);
                        shown_front = size;
                    }
                }
                if size != end {
                    return Err(short(start, end, size - start));
                }
            }
        } else {
            // Ranges requested `ahead` at a time, consumed in order: memory stays within
            // `ahead` ranges.
            let key = &key;
            let request = &request;
            let mut bodies = futures::stream::iter(ranges)
                .map(|r| async move {
                    let ((start, end), got) = request(r).await?;
                    let bytes = got
                        .bytes()
                        .await
                        .map_err(|e| self.err(key, "reading it", e))?;
                    Ok::<_, Error>(((start, end), bytes))
                })
                .buffered(ahead);
            while let Some(next) = bodies.next().await {
                let ((start, end), bytes) = next?;
                if bytes.len() as u64 != end - start {
                    return Err(short(start, end, bytes.len() as u64));
                }
                if tail > 0 && tail_bytes.is_none() {
                    // The tail goes in place now and into the hash last, in its order.
                    file.seek(std::io::SeekFrom::Start(start))
                        .await
                        .map_err(|e| Error::io(&local, e))?;
                    file.write_all(&bytes)
                        .await
                        .map_err(|e| Error::io(&local, e))?;
                    file.flush().await.map_err(|e| Error::io(&local, e))?;
                    file.seek(std::io::SeekFrom::Start(0))
                        .await
                        .map_err(|e| Error::io(&local, e))?;
                    if let Some(a) = arrival {
                        a.tail_from(start);
                    }
                    tail_bytes = Some(bytes);
                    continue;
                }
                hash.update(&bytes);
                size += bytes.len() as u64;
                file.write_all(&bytes)
                    .await
                    .map_err(|e| Error::io(&local, e))?;
                if let Some(a) = arrival {
                    file.flush().await.map_err(|e| Error::io(&local, e))?;
                    a.advance(size);
                }
            }
            if let Some(t) = tail_bytes {
                hash.update(&t);
                size += t.len() as u64;
            }
        }
        file.flush().await.map_err(|e| Error::io(&local, e))?;
        let sha256 = hex::encode(hash.finalize());
        if let Some(a) = arrival {
            a.finish(sha256.clone());
        }
        Ok(FetchedObject {
            local,
            shown: self.withheld_key(&key),
            e_tag: meta.e_tag,
            version: meta.version,
            size,
            sha256,
        })
    }

    /// Upload the local file `src` to `key`: one PUT when small, else a multipart upload
    /// with bounded memory (at most 4 parts in flight).
    async fn upload(&self, src: &Path, key: &ObjPath) -> Result<()> {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::open(src)
            .await
            .map_err(|e| Error::io(src, e))?;
        let len = file.metadata().await.map_err(|e| Error::io(src, e))?.len();
        if len < PART as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)
                .await
                .map_err(|e| Error::io(src, e))?;
            self.store
                .put(key, PutPayload::from(buf))
                .await
                .map_err(|e| self.err(key, "writing it", e))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| self.err(key, "starting a multipart upload", e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(Error::io(src, e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = w.wait_for_capacity(4).await {
                let _ = w.abort().await;
                return Err(self.err(key, "uploading a part", e));
            }
            w.write(&buf[..n]);
        }
        w.finish()
            .await
            .map_err(|e| self.err(key, "completing the multipart upload", e))?;
        Ok(())
    }

    async fn delete_quietly(&self, key: &ObjPath) {
        if let Err(e) = self.store.delete(key).await {
            tracing::warn!(location = %self.withheld_key(key), error = %describe(&e, &self.secrets), "cleanup: could not delete");
        }
    }

    /// Fetch the object this location names, as it was listed (`e_tag`, `version`, `size`),
    /// to `local`: pinned to that version and hashed while streaming, as [`Remote::fetch`]
    /// does. An object replaced since the listing is an error.
    pub async fn fetch_listed(
        &self,
        e_tag: Option<String>,
        version: Option<String>,
        size: u64,
        local: PathBuf,
    ) -> Result<FetchedObject> {
        let meta = ObjectMeta {
            location: self.key.clone(),
            last_modified: chrono::Utc::now(),
            size,
            e_tag,
            version,
        };
        self.download(meta, local, false).await
    }

    /// Discard an upload [`Remote::upload_pending`] left (quietly: it is a cleanup).
    pub async fn abort_pending(&self, p: &PendingUpload) {
        if let Some(store) = &self.multipart {
            let _ = store.abort_multipart(&self.child(&p.rel), &p.id).await;
        }
    }

    /// Upload `src` to `rel` under this prefix as a multipart upload left **uncompleted**:
    /// nothing is visible until [`RemoteRelease::publish`] completes it (a cluster's
    /// executors write, the client commits). Parts of 8 MiB, at most 4 in flight; a failure
    /// aborts the upload.
    pub async fn upload_pending(
        &self,
        src: &Path,
        rel: &str,
        sha256: &str,
    ) -> Result<PendingUpload> {
        use tokio::io::AsyncReadExt;
        let store = self.multipart.clone().ok_or_else(|| {
            Error::Usage(format!(
                "{}: this store cannot take uploads completed by another process; write to \
                 s3://, az:// or gs://",
                self.shown()
            ))
        })?;
        check_rel(rel).map_err(|m| Error::Internal(format!("an output named {m}")))?;
        let key = self.child(rel);
        let id = store
            .create_multipart(&key)
            .await
            .map_err(|e| self.err(&key, "starting a multipart upload", e))?;
        let sent = async {
            let mut file = tokio::fs::File::open(src)
                .await
                .map_err(|e| Error::io(src, e))?;
            let mut in_flight = futures::stream::FuturesOrdered::new();
            let mut parts: Vec<PartId> = Vec::new();
            let mut bytes = 0u64;
            let mut index = 0;
            loop {
                let mut buf = Vec::with_capacity(PART);
                (&mut file)
                    .take(PART as u64)
                    .read_to_end(&mut buf)
                    .await
                    .map_err(|e| Error::io(src, e))?;
                let n = buf.len();
                // An empty file is one empty part; otherwise the end is an empty read.
                if n == 0 && index > 0 {
                    break;
                }
                bytes += n as u64;
                in_flight.push_back(store.put_part(&key, &id, index, PutPayload::from(buf)));
                index += 1;
                while in_flight.len() >= 4 {
                    if let Some(p) = in_flight.next().await {
                        parts.push(p.map_err(|e| self.err(&key, "uploading a part", e))?);
                    }
                }
                if n < PART {
                    break;
                }
            }
            while let Some(p) = in_flight.next().await {
                parts.push(p.map_err(|e| self.err(&key, "uploading a part", e))?);
            }
            Ok::<_, Error>((parts, bytes))
        }
        .await;
        match sent {
            Ok((parts, bytes)) => Ok(PendingUpload {
                rel: rel.to_string(),
                id,
                parts: parts.into_iter().map(|p| p.content_id).collect(),
                bytes,
                sha256: sha256.to_string(),
            }),
            Err(e) => {
                let _ = store.abort_multipart(&key, &id).await;
                Err(e)
            }
        }
    }
}

/// A data object uploaded by another process (a cluster executor) and not yet completed:
/// the client's [`RemoteRelease`] completes it at publish, or aborts it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingUpload {
    /// Path under the release (`/` separators).
    pub rel: String,
    pub id: String,
    /// The parts' ids, in order.
    pub parts: Vec<String>,
    pub bytes: u64,
    pub sha256: String,
}

/// A release-relative object path cloakline may write: non-empty `/`-separated segments,
/// none hidden, `.` or `..`.
fn check_rel(rel: &str) -> std::result::Result<(), String> {
    let ok = !rel.is_empty()
        && rel
            .split('/')
            .all(|s| safe_segment(s).is_some() && !s.starts_with('.'));
    match ok {
        true => Ok(()),
        false => Err("with an empty, hidden or `..` segment".into()),
    }
}

/// A key segment usable as a local file name, or None.
fn safe_segment(seg: &str) -> Option<&str> {
    let bad = seg.is_empty()
        || seg == "."
        || seg == ".."
        || seg.contains(['\\', '/', '\0'])
        || seg.chars().any(char::is_control);
    (!bad).then_some(seg)
}

/// A store error for people: the kind of failure and what to do, without response bodies
/// (they can echo request details) and with every known secret scrubbed.
pub(crate) fn describe(e: &object_store::Error, secrets: &[String]) -> String {
    use object_store::Error as E;
    let text = match e {
        E::NotFound { .. } => "not found (check the bucket or container and the key)".to_string(),
        E::PermissionDenied { .. } => {
            "access denied (403): the credentials in use may not do this".to_string()
        }
        E::Unauthenticated { .. } => {
            "not authenticated (401): the credentials are missing, wrong or expired; see \
             docs/STORAGE.md"
                .to_string()
        }
        E::AlreadyExists { .. } => "already exists".to_string(),
        E::Precondition { .. } => "changed by another writer (precondition failed)".to_string(),
        E::NotImplemented { .. } | E::NotSupported { .. } => {
            "this store does not support the operation".to_string()
        }
        other => {
            let s = other.to_string();
            // Some clients wrap a status in a generic error: say what it means.
            for (status, meaning) in [
                (
                    "404 Not Found",
                    "not found (check the bucket or container and the key)",
                ),
                (
                    "403 Forbidden",
                    "access denied (403): the credentials in use may not do this",
                ),
                (
                    "401 Unauthorized",
                    "not authenticated (401): the credentials are missing, wrong or expired; \
                     see docs/STORAGE.md",
                ),
            ] {
                if s.contains(status) {
                    return meaning.to_string();
                }
            }
            // Drop what a server returned (`…, body: <Error>…`, `…status code: 500 …: <xml>`)
            // and any query strings.
            let mut s = s.split("body:").next().unwrap_or("").trim_end().to_string();
            if let Some(i) = s.find("status code: ") {
                let rest = &s[i + "status code: ".len()..];
                if let Some(j) = rest.find(": ") {
                    s.truncate(i + "status code: ".len() + j);
                }
            }
            if let Some(i) = s.find('<') {
                s.truncate(i);
            }
            // A request URL names the object, whose key may hold partition values: the
            // message names the location withheld already, so the URL goes.
            let s = s
                .split_whitespace()
                .map(|w| match w.contains("://") {
                    true => "(the request)".to_string(),
                    false => w.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            let s = s.trim_end_matches([',', ' ']).to_string();
            if s.is_empty() {
                "the store failed".to_string()
            } else {
                s
            }
        }
    };
    secrets
        .iter()
        .fold(text, |t, s| t.replace(s.as_str(), "***"))
}

/// What a release writes: a local file (a single-object release) or the local directory
/// whose files are the release, and the local provenance sidecar.
pub struct ReleaseFiles<'a> {
    pub data: &'a Path,
    pub is_dir: bool,
    pub sidecar: &'a Path,
}

/// One release to an object store, from claim to commit (docs/STORAGE.md):
///
/// 1. `begin` creates `<out>.provenance.json.lock` (naming this run) with a conditional PUT
///    (if-none-match): a second run to the same output fails here, before any data object
///    is written.
/// 2. It refuses an output that exists (without `--overwrite`) or a prefix holding objects
///    that no previous release lists: cloakline never deletes what it did not write.
/// 3. `publish` withdraws a previous release's sidecar, uploads the data objects one file at
///    a time (multipart parts in parallel), writes the new sidecar last (the commit marker:
///    a release exists when its sidecar does, and lists every object with its size and
///    SHA-256), deletes the previous release's objects the new one does not list, and
///    removes its own lock.
/// 4. On failure, `abort` deletes the objects this run finished uploading and its lock, and
///    the error says whether a previous release was withdrawn. A killed run leaves its lock;
///    `cloakline gc OUT` removes it and the objects no sidecar lists.
pub struct RemoteRelease {
    out: Remote,
    sidecar: Remote,
    lock: Remote,
    run_id: String,
    /// Relative paths (`""` for a single object) of the previous release, when there is one.
    previous: Option<Vec<String>>,
    /// Whether `publish` withdrew the previous release's sidecar.
    withdrawn: bool,
    /// Objects this run finished uploading (deleted again on failure).
    uploaded: Vec<ObjPath>,
    /// Objects streamed while the run writes them, completed at publish.
    streams: Streams,
    /// Uploads other processes left pending for this release, completed at publish.
    adopted: Vec<PendingUpload>,
    /// Hidden objects the run's processes share (never part of the release): deleted at
    /// publish and on failure.
    scratch: Vec<ObjPath>,
    done: bool,
}

/// The lock object's name beside a sidecar.
pub const LOCK_SUFFIX: &str = ".lock";

/// Whether the object at `remote` holds exactly `body` (a retried conditional PUT whose
/// first attempt landed: ours, not another run's).
async fn holds(remote: &Remote, body: &[u8]) -> bool {
    match remote.read_small(64 << 20).await {
        Ok((b, _)) => b.as_ref() == body,
        Err(_) => false,
    }
}

impl RemoteRelease {
    /// Claim `out` for one run (steps 1 and 2).
    pub async fn begin(out: Remote, is_dir: bool, overwrite: bool, run_id: &str) -> Result<Self> {
        out.writable()?;
        let sidecar = out.with_suffix(SIDECAR_SUFFIX);
        let lock = sidecar.with_suffix(LOCK_SUFFIX);
        let body = serde_json::json!({
            "runId": run_id,
            "started": chrono::Utc::now().to_rfc3339(),
            "pid": std::process::id(),
        })
        .to_string();
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match out
            .store
            .put_opts(&lock.key, PutPayload::from(body.clone()), opts)
            .await
        {
            Ok(_) => {}
            // A retried PUT whose first attempt landed finds its own lock.
            Err(object_store::Error::AlreadyExists { .. })
                if holds(&lock, body.as_bytes()).await => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(Error::Usage(format!(
                    "another cloakline run is writing {} (its lock {} exists); wait for it, or \
                     if no run is going on, remove the leftovers with `cloakline gc {}`",
                    out.shown(),
                    lock.shown(),
                    out.shown()
                )));
            }
            Err(e) => return Err(lock.err(&lock.key, "creating the run's lock", e)),
        }
        // A store that ignores `If-None-Match: *` (Garage, some MinIO and Ceph versions)
        // accepts a second create of the lock: then nothing keeps two runs from both
        // committing. The probe rewrites our own lock with the same bytes, so it is harmless.
        let again = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        if out
            .store
            .put_opts(&lock.key, PutPayload::from(body), again)
            .await
            .is_ok()
        {
            tracing::warn!(
                output = %out.shown(),
                "this store does not enforce conditional writes (If-None-Match): two runs \
                 writing this output at the same moment are not kept apart; run one at a time"
            );
        }
        let streams = Streams::new(out.clone(), tokio::runtime::Handle::current());
        let mut rel = RemoteRelease {
            out,
            sidecar,
            lock,
            run_id: run_id.to_string(),
            previous: None,
            withdrawn: false,
            uploaded: Vec::new(),
            streams,
            adopted: Vec::new(),
            scratch: Vec::new(),
            done: false,
        };
        if let Err(e) = rel.check_destination(is_dir, overwrite).await {
            rel.abort().await;
            return Err(e);
        }
        Ok(rel)
    }

    async fn check_destination(&mut self, is_dir: bool, overwrite: bool) -> Result<()> {
        let previous = match self.sidecar.head().await? {
            Some(_) if !overwrite => {
                return Err(Error::Usage(format!(
                    "{} already exists (its sidecar {} does); pass --overwrite to replace it, \
                     or choose another output",
                    self.out.shown(),
                    self.sidecar.shown()
                )));
            }
            Some(_) => Some(listed_in(&self.sidecar).await?),
            None => None,
        };
        let listed: std::collections::HashSet<&str> =
            previous.iter().flatten().map(String::as_str).collect();
        if is_dir {
            let strays = self
                .out
                .list()
                .await?
                .into_iter()
                .filter_map(|m| self.out.relative(&m.location))
                .filter(|r| !listed.contains(r.as_str()))
                .count();
            if strays > 0 {
                return Err(Error::Usage(format!(
                    "{} holds {strays} object(s) that no cloakline release there lists; write to \
                     an empty prefix, or move them away",
                    self.out.shown()
                )));
            }
        } else if self.out.head().await?.is_some() && !overwrite {
            return Err(Error::Usage(format!(
                "{} already exists; pass --overwrite to replace it, or choose another output",
                self.out.shown()
            )));
        }
        self.previous = previous;
        Ok(())
    }

    /// Put a hidden object beside the release for the run's other processes (a cluster's
    /// executors) to read: `.<name>` under the output, never listed by the release, deleted
    /// before the commit (a failed delete fails the run) and on failure (`gc` removes it
    /// after a killed run). Returns its URL.
    pub async fn put_scratch(&mut self, name: &str, body: Vec<u8>) -> Result<String> {
        check_rel(name).map_err(|m| Error::Internal(format!("a scratch object named {m}")))?;
        let key = self.out.child(&format!(".{name}"));
        self.scratch.push(key.clone());
        self.out
            .store
            .put(&key, PutPayload::from(body))
            .await
            .map_err(|e| self.out.err(&key, "writing a scratch object", e))?;
        Ok(self.out.shown_key(&key))
    }

    /// Take over an upload another process left pending under this output (a cluster
    /// executor's file): `publish` completes it, a failure or `abort` discards it.
    pub fn adopt(&mut self, upload: PendingUpload) -> Result<()> {
        check_rel(&upload.rel)
            .map_err(|m| Error::Internal(format!("an executor reported an output named {m}")))?;
        if self.adopted.iter().any(|a| a.rel == upload.rel) {
            return Err(Error::Internal(
                "two pending uploads for one output object".into(),
            ));
        }
        self.adopted.push(upload);
        Ok(())
    }

    /// Step 3: upload, commit, clean. `cancelled` is asked between objects and before the
    /// commit: an interrupted run commits nothing.
    pub async fn publish(
        mut self,
        files: ReleaseFiles<'_>,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<String>> {
        match self.publish_inner(&files, cancelled).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let withdrawn = self.withdrawn;
                self.abort().await;
                if !withdrawn {
                    return Err(e);
                }
                // Said whatever the failure: the previous release is gone.
                let note = "; the previous release was withdrawn (its sidecar removed, some of \
                            its objects may be replaced) and no new one committed";
                Err(match e {
                    Error::Storage { location, message } => Error::Storage {
                        location,
                        message: format!("{message}{note}"),
                    },
                    Error::Interrupted => Error::Storage {
                        location: self_shown(&files),
                        message: format!("interrupted{note}"),
                    },
                    e => Error::Storage {
                        location: String::from("the output"),
                        message: format!("{e}{note}"),
                    },
                })
            }
        }
    }

    async fn publish_inner(
        &mut self,
        files: &ReleaseFiles<'_>,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<String>> {
        let check = || match cancelled() {
            true => Err(Error::Interrupted),
            false => Ok(()),
        };
        let mut local: Vec<(PathBuf, String)> = Vec::new();
        if files.is_dir {
            collect_files(files.data, files.data, &mut local)?;
        } else {
            local.push((files.data.to_path_buf(), String::new()));
        }
        check()?;
        if self.previous.is_some() {
            // Withdraw first: readers then see no release rather than a mix of two.
            match self.out.store.delete(&self.sidecar.key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.sidecar.err(&self.sidecar.key, "withdrawing it", e)),
            }
            self.withdrawn = true;
        }
        let mut shown = Vec::new();
        let mut streamed = 0;
        // One file at a time (its parts in parallel): a failure leaves no other upload
        // running unseen, and each failed upload is aborted on the server.
        for (path, rel) in &local {
            check()?;
            let key = match rel.as_str() {
                "" => self.out.key.clone(),
                r => self.out.child(r),
            };
            // Listed before it can exist: a failure or a dropped publish deletes it.
            self.uploaded.push(key.clone());
            let was_streamed = self.place(path, rel, &key).await?;
            streamed += usize::from(was_streamed);
            shown.push(self.out.withheld_key(&key));
        }
        // Uploads other processes wrote: completed now, each checked against its size.
        while let Some(p) = self.adopted.first().cloned() {
            check()?;
            if local.iter().any(|(_, r)| *r == p.rel) {
                return Err(Error::Internal("a pending upload over a local file".into()));
            }
            let key = self.out.child(&p.rel);
            let store = self.out.multipart.clone().ok_or_else(|| {
                Error::Internal("pending uploads on a store without multipart".into())
            })?;
            self.uploaded.push(key.clone());
            let parts: Vec<PartId> = p
                .parts
                .iter()
                .map(|c| PartId {
                    content_id: c.clone(),
                })
                .collect();
            store
                .complete_multipart(&key, &p.id, parts)
                .await
                .map_err(|e| self.out.err(&key, "completing an executor's upload", e))?;
            self.adopted.remove(0);
            let size = self
                .out
                .store
                .head(&key)
                .await
                .map_err(|e| self.out.err(&key, "checking an executor's upload", e))?
                .size;
            if size != p.bytes {
                return Err(Error::Storage {
                    location: self.out.withheld_key(&key),
                    message: format!(
                        "the executor wrote {} bytes and the store holds {size}; nothing was \
                         committed",
                        p.bytes
                    ),
                });
            }
            shown.push(self.out.withheld_key(&key));
            local.push((PathBuf::new(), p.rel));
        }
        // Streams publish did not take (a file the run wrote and then left out).
        self.streams.abort_all().await;
        // Scratch objects go before the commit: a release never stands beside them.
        while let Some(k) = self.scratch.last().cloned() {
            match self.out.store.delete(&k).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.out.err(&k, "deleting a scratch object", e)),
            }
            self.scratch.pop();
        }
        tracing::info!(
            objects = local.len(),
            streamed,
            "publish: data objects in place (streamed while written, or uploaded now)"
        );
        check()?;
        // The commit: the sidecar, created only if none exists (the lock makes a race a bug;
        // this catches it rather than overwrite another run's commit).
        let body = std::fs::read(files.sidecar).map_err(|e| Error::io(files.sidecar, e))?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .out
            .store
            .put_opts(&self.sidecar.key, PutPayload::from(body.clone()), opts)
            .await
        {
            Ok(_) => {}
            // A retry of our own PUT that had landed: committed.
            Err(object_store::Error::AlreadyExists { .. }) if holds(&self.sidecar, &body).await => {
            }
            Err(e) => {
                return Err(self
                    .sidecar
                    .err(&self.sidecar.key, "committing the release", e));
            }
        }
        self.uploaded.clear();
        self.done = true;
        // After the commit, cleanup failures are warnings: the release stands.
        if let Some(prev) = self.previous.take() {
            let new: std::collections::HashSet<&str> =
                local.iter().map(|(_, r)| r.as_str()).collect();
            for r in prev
                .iter()
                .filter(|r| !r.is_empty() && !new.contains(r.as_str()))
            {
                let k = self.out.child(r);
                self.out.delete_quietly(&k).await;
            }
        }
        self.release_lock().await;
        Ok(shown)
    }

    /// The run's writers stream these objects as they write them (see [`Streams::tee`]).
    pub fn streams(&self) -> Streams {
        self.streams.clone()
    }

    /// Put one data object: complete its streamed upload when the stream holds exactly the
    /// local file, else upload the file. Returns whether it had been streamed.
    async fn place(&self, path: &Path, rel: &str, key: &ObjPath) -> Result<bool> {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        let clock = std::time::Instant::now();
        let streamed = self.streams.take(rel).await;
        tracing::debug!(
            seconds = clock.elapsed().as_secs_f64(),
            "publish: waited for the streamed parts"
        );
        match streamed {
            Some(Streamed::Parts { bytes, control }) if bytes == len => {
                let clock = std::time::Instant::now();
                control
                    .complete()
                    .await
                    .map_err(|e| self.out.err(key, "completing the multipart upload", e))?;
                tracing::debug!(
                    seconds = clock.elapsed().as_secs_f64(),
                    bytes,
                    "publish: streamed upload completed"
                );
                return Ok(true);
            }
            Some(Streamed::Parts { control, .. }) => control.abort().await,
            Some(Streamed::Small) | None => {}
        }
        self.out.upload(path, key).await?;
        Ok(false)
    }

    /// Remove the lock if it is still this run's (a `gc` may have taken it, and another run
    /// may hold it now).
    async fn release_lock(&self) {
        let ours = match self.lock.read_small(1 << 20).await {
            Ok((b, _)) => serde_json::from_slice::<serde_json::Value>(&b)
                .ok()
                .and_then(|v| v.get("runId").and_then(|r| r.as_str()).map(str::to_string))
                .is_some_and(|id| id == self.run_id),
            Err(_) => false,
        };
        if ours {
            self.out.delete_quietly(&self.lock.key).await;
        }
    }

    /// Delete what this run finished uploading, and its lock.
    pub async fn abort(mut self) {
        self.streams.abort_all().await;
        for k in std::mem::take(&mut self.scratch) {
            self.out.delete_quietly(&k).await;
        }
        if let Some(store) = self.out.multipart.clone() {
            for p in std::mem::take(&mut self.adopted) {
                let key = self.out.child(&p.rel);
                let _ = store.abort_multipart(&key, &p.id).await;
            }
        }
        for k in std::mem::take(&mut self.uploaded) {
            self.out.delete_quietly(&k).await;
        }
        self.release_lock().await;
        self.done = true;
    }
}

/// How a release's output is named in a message when nothing more specific is at hand.
fn self_shown(files: &ReleaseFiles<'_>) -> String {
    match files.is_dir {
        true => "the output directory".into(),
        false => "the output".into(),
    }
}

impl Drop for RemoteRelease {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A dropped future before the commit (a cancelled run): clean up on the runtime if
        // there is one. After the commit `done` is set, so a committed release is never
        // touched here.
        let (store, mut keys) = (self.out.store.clone(), std::mem::take(&mut self.uploaded));
        keys.extend(std::mem::take(&mut self.scratch));
        let (lock, run_id) = (self.lock.clone(), self.run_id.clone());
        let pending: Vec<(ObjPath, String)> = std::mem::take(&mut self.adopted)
            .into_iter()
            .map(|p| (self.out.child(&p.rel), p.id))
            .collect();
        let multipart = self.out.multipart.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                if let Some(m) = multipart {
                    for (k, id) in pending {
                        let _ = m.abort_multipart(&k, &id).await;
                    }
                }
                for k in keys {
                    let _ = store.delete(&k).await;
                }
                let ours = lock.read_small(1 << 20).await.ok().is_some_and(|(b, _)| {
                    serde_json::from_slice::<serde_json::Value>(&b)
                        .ok()
                        .and_then(|v| v.get("runId").and_then(|r| r.as_str()).map(str::to_string))
                        .is_some_and(|id| id == run_id)
                });
                if ours {
                    let _ = store.delete(&lock.key).await;
                }
            });
        }
    }
}

/// Every file under `dir`, with its path relative to `root` (`/` separators).
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&p, e))?;
        if kind.is_dir() {
            collect_files(root, &p, out)?;
        } else if kind.is_file() {
            let rel = p
                .strip_prefix(root)
                .map_err(|_| Error::Internal("a release file outside its directory".into()))?;
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((p, rel));
        }
    }
    out.sort();
    Ok(())
}

/// The relative paths a sidecar lists: each output's `cl:relativePath`, or `""` for a
/// single-object release. Nodes sit under `@included` (v2 records) or `@graph` (v1); an
/// output is a node with `wasGeneratedBy`.
async fn listed_in(sidecar: &Remote) -> Result<Vec<String>> {
    let (bytes, _) = sidecar.read_small(64 << 20).await?;
    let not_a_record = || Error::Storage {
        location: sidecar.shown(),
        message: "not a cloakline provenance record; move it away or remove it".into(),
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_a_record())?;
    let nodes = ["@included", "@graph"]
        .iter()
        .find_map(|k| doc.get(*k).and_then(|n| n.as_array()))
        .ok_or_else(not_a_record)?;
    let mut v: Vec<String> = nodes
        .iter()
        .filter(|n| n.get("wasGeneratedBy").is_some())
        .filter_map(|n| n.get("cl:relativePath").and_then(|r| r.as_str()))
        .map(str::to_string)
        .collect();
    if v.is_empty() {
        v.push(String::new());
    }
    Ok(v)
}

/// `cloakline gc OUT`: the leftovers of a dead run. Only where a run's lock exists and is
/// older than `min_age`: then the objects under the output that the current sidecar does
/// not list (for a single-object output without a sidecar, the object itself), and the lock.
/// Returns what it removed (or would remove, with `dry_run`).
pub async fn gc(out: &Remote, min_age: Duration, dry_run: bool) -> Result<Vec<String>> {
    out.writable()?;
    let sidecar = out.with_suffix(SIDECAR_SUFFIX);
    let lock = sidecar.with_suffix(LOCK_SUFFIX);
    let Some(lock_meta) = lock.head().await? else {
        return Err(Error::Usage(format!(
            "{}: no lock of a cloakline run ({} does not exist), so nothing here is a dead \
             run's; gc removes nothing without one",
            out.shown(),
            lock.shown()
        )));
    };
    let age = chrono::Utc::now() - lock_meta.last_modified;
    if age.to_std().unwrap_or_default() < min_age {
        return Err(Error::Usage(format!(
            "{} is younger than --older-than ({} s): its run may still be writing; wait, or \
             pass a shorter --older-than once you know it is dead",
            lock.shown(),
            min_age.as_secs()
        )));
    }
    let listed: std::collections::HashSet<String> = match sidecar.head().await? {
        Some(_) => listed_in(&sidecar).await?.into_iter().collect(),
        None => Default::default(),
    };
    let mut removed = Vec::new();
    for m in out.list().await? {
        let Some(rel) = out.relative(&m.location) else {
            continue;
        };
        if !listed.contains(&rel) {
            removed.push((out.withheld_key(&m.location), m.location));
        }
    }
    if !listed.contains("")
        && let Some(m) = out.head().await?
    {
        removed.push((out.shown(), m.location));
    }
    removed.push((lock.shown(), lock.key.clone()));
    if !dry_run {
        for (_, k) in &removed {
            match out.store.delete(k).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(out.err(k, "deleting it", e)),
            }
        }
    }
    Ok(removed.into_iter().map(|(s, _)| s).collect())
}

/// A [`Location`](super::Location) made readable as a local path: the path itself, or a URL
/// fetched into a scratch directory (removed on drop). [`Local::show`] turns the scratch
/// paths back into the URL in anything shown to people or recorded.
pub struct Local {
    pub path: PathBuf,
    pub fetched: Option<Fetched>,
    /// A single object still arriving ([`Local::arriving`]); `fetched` is then `None`.
    pub arriving: Option<ArrivingObject>,
    /// (scratch path as text, the URL as shown)
    relocate: Option<(String, String)>,
    _scratch: Option<super::ScratchDir>,
}

impl Local {
    /// `location` as a local path; a URL is fetched first (only the objects `keep` accepts,
    /// when it names a prefix).
    pub async fn of(
        location: &super::Location,
        options: &StorageOptions,
        keep: impl Fn(&Path) -> bool,
    ) -> Result<Local> {
        match location {
            super::Location::Local(p) => Ok(Local {
                path: p.clone(),
                fetched: None,
                arriving: None,
                relocate: None,
                _scratch: None,
            }),
            super::Location::Url(u) => {
                let remote = Remote::open(u, options)?;
                let scratch = super::ScratchDir::create()?;
                let fetched = remote.fetch(scratch.path(), keep).await?;
                Ok(Local {
                    path: fetched.local.clone(),
                    relocate: Some((fetched.local.display().to_string(), remote.shown())),
                    fetched: Some(fetched),
                    arriving: None,
                    _scratch: Some(scratch),
                })
            }
        }
    }

    /// [`Local::of`], but a single object is returned as soon as its fetch has started: its
    /// local copy can be read while it arrives (reads wait for their bytes). A prefix is
    /// fetched whole first, as by [`Local::of`].
    pub async fn arriving(
        location: &super::Location,
        options: &StorageOptions,
        keep: impl Fn(&Path) -> bool,
    ) -> Result<Local> {
        let super::Location::Url(u) = location else {
            return Local::of(location, options, keep).await;
        };
        let remote = Remote::open(u, options)?;
        let scratch = super::ScratchDir::create()?;
        match remote.fetch_arriving(scratch.path()).await? {
            Some(object) => Ok(Local {
                path: object.local.clone(),
                relocate: Some((object.local.display().to_string(), remote.shown())),
                fetched: None,
                arriving: Some(object),
                _scratch: Some(scratch),
            }),
            None => {
                let fetched = remote.fetch(scratch.path(), keep).await?;
                Ok(Local {
                    path: fetched.local.clone(),
                    relocate: Some((fetched.local.display().to_string(), remote.shown())),
                    fetched: Some(fetched),
                    arriving: None,
                    _scratch: Some(scratch),
                })
            }
        }
    }

    /// Whether the location was a URL.
    pub fn is_remote(&self) -> bool {
        self.relocate.is_some()
    }

    /// `text` with the scratch path replaced by the URL it stands for.
    pub fn show(&self, text: &str) -> String {
        match &self.relocate {
            Some((from, to)) => relocate(text, from, to),
            None => text.to_string(),
        }
    }
}

/// `text` with the local path `from` replaced by the URL `to` (and the separators after it
/// by `/`).
pub fn relocate(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        out.push_str(&rest[..i]);
        out.push_str(to);
        rest = &rest[i + from.len()..];
        // The path's tail up to whitespace or a quote: `/` separators on every platform.
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == ')')
            .unwrap_or(rest.len());
        out.push_str(&rest[..end].replace(std::path::MAIN_SEPARATOR, "/"));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

impl Error {
    /// The error with scratch paths shown as the URLs they stand for.
    pub fn relocated(self, from: &str, to: &str) -> Error {
        let r = |s: String| relocate(&s, from, to);
        match self {
            Error::Data { path, message } => Error::Data {
                path: r(path),
                message: r(message),
            },
            Error::Io { path, source } => Error::Io {
                path: r(path),
                source,
            },
            Error::Plan { input, problems } => Error::Plan {
                input: r(input),
                problems,
            },
            Error::Privacy {
                input,
                message,
                assessment,
            } => Error::Privacy {
                input: r(input),
                message: r(message),
                assessment,
            },
            Error::Usage(m) => Error::Usage(r(m)),
            Error::Verification(m) => Error::Verification(r(m)),
            Error::Transform { field, message } => Error::Transform {
                field,
                message: r(message),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remote over `store` at `key`, as `s3://raw/<key>`.
    fn test_remote(store: Arc<dyn ObjectStore>, key: &ObjPath) -> Remote {
        Remote {
            store,
            multipart: None,
            kind: Kind::S3,
            key: key.clone(),
            base: "s3://raw".into(),
            prefix: false,
            secrets: Default::default(),
        }
    }

    /// An in-memory store whose object is replaced after its first GET: what a writer
    /// racing a reader looks like between two ranged reads.
    #[derive(Debug)]
    struct Racing {
        inner: object_store::memory::InMemory,
        gets: std::sync::atomic::AtomicUsize,
        honour_if_match: bool,
    }

    impl fmt::Display for Racing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Racing")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Racing {
        async fn put_opts(
            &self,
            l: &ObjPath,
            p: PutPayload,
            o: PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &ObjPath,
            o: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(
            &self,
            l: &ObjPath,
            mut o: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            if self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                self.inner.put(l, PutPayload::from(vec![b'y'; 10])).await?;
            }
            if !self.honour_if_match {
                o.if_match = None;
            }
            self.inner.get_opts(l, o).await
        }
        fn delete_stream(
            &self,
            l: futures::stream::BoxStream<'static, object_store::Result<ObjPath>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjPath>> {
            self.inner.delete_stream(l)
        }
        fn list(
            &self,
            p: Option<&ObjPath>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(p)
        }
        async fn list_with_delimiter(
            &self,
            p: Option<&ObjPath>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(p).await
        }
        async fn copy_opts(
            &self,
            f: &ObjPath,
            t: &ObjPath,
            o: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(f, t, o).await
        }
    }

    #[test]
    fn an_object_replaced_between_ranged_reads_is_an_error_not_a_mix() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (honour_if_match, ahead) in [(true, 1), (false, 1), (true, 3), (false, 3)] {
            let store = Racing {
                inner: Default::default(),
                gets: Default::default(),
                honour_if_match,
            };
            let key = ObjPath::from("raw/secret-name.csv");
            rt.block_on(store.inner.put(&key, PutPayload::from(vec![b'x'; 10])))
                .unwrap();
            let remote = test_remote(Arc::new(store), &key);
            let dir = tempfile::tempdir().unwrap();
            let meta = rt.block_on(remote.store.head(&key)).unwrap();
            // Three GETs of 4 bytes: the object changes after the first.
            let e = rt
                .block_on(remote.download_ranged(
                    meta.clone(),
                    dir.path().join("f"),
                    4,
                    ahead,
                    None,
                ))
                .expect_err("a mixed read passed");
            assert!(e.to_string().contains("changed while being read"), "{e}");
            // Whole ranges in order when nothing changes: same bytes, same hash.
            let quiet = Remote {
                store: Arc::new(object_store::memory::InMemory::new()),
                ..remote
            };
            rt.block_on(
                quiet
                    .store
                    .put(&key, PutPayload::from(b"0123456789".to_vec())),
            )
            .unwrap();
            let meta = rt.block_on(quiet.store.head(&key)).unwrap();
            let got = rt
                .block_on(quiet.download_ranged(meta.clone(), dir.path().join("g"), 4, 1, None))
                .unwrap();
            assert_eq!(std::fs::read(dir.path().join("g")).unwrap(), b"0123456789");
            assert_eq!(got.sha256, hex::encode(Sha256::digest(b"0123456789")));
            // Ranges requested ahead arrive in order: the same bytes and hash.
            let got = rt
                .block_on(quiet.download_ranged(meta, dir.path().join("h"), 3, 3, None))
                .unwrap();
            assert_eq!(std::fs::read(dir.path().join("h")).unwrap(), b"0123456789");
            assert_eq!(got.sha256, hex::encode(Sha256::digest(b"0123456789")));
        }
    }

    /// A Parquet object fetched while it arrives comes end first, yet lands byte for byte
    /// and hashes in order; its readers learn the tail, then the front, then the digest.
    #[test]
    fn an_arriving_parquet_object_comes_tail_first_and_lands_whole() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body: Vec<u8> = (0..(3 * TAIL + TAIL / 2))
            .map(|i| (i % 251) as u8)
            .collect();
        let key = ObjPath::from("w.parquet");
        let store = Arc::new(object_store::memory::InMemory::new());
        rt.block_on(store.put(&key, PutPayload::from(body.clone())))
            .unwrap();
        let remote = test_remote(store, &key);
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("w.parquet");
        std::fs::write(&local, b"").unwrap();
        let meta = rt.block_on(remote.store.head(&key)).unwrap();
        let reg = Arrival::register(&local, meta.size);
        let a = Arc::clone(reg.arrival());
        let got = rt
            .block_on(remote.download_ranged(meta, local.clone(), TAIL, 2, Some(&a)))
            .unwrap();
        assert_eq!(std::fs::read(&local).unwrap(), body);
        let sha = hex::encode(Sha256::digest(&body));
        assert_eq!(got.sha256, sha);
        assert_eq!(a.wait_all().unwrap(), sha);
        assert!(a.is_complete());
        // Not a Parquet name, or no arrival: in order, no tail.
        let plain = dir.path().join("plain");
        let meta = rt.block_on(remote.store.head(&key)).unwrap();
        let got = rt
            .block_on(remote.download_ranged(meta, plain.clone(), TAIL, 2, None))
            .unwrap();
        assert_eq!(std::fs::read(&plain).unwrap(), body);
        assert_eq!(got.sha256, sha);
    }

    #[test]
    fn errors_drop_bodies_queries_and_secrets() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Error performing GET http://h/b/k?X-Amz-Signature=abc in 1s, body: <Error><Key>AKIASECRETVALUE</Key></Error>".into(),
        };
        let e2 = object_store::Error::Generic {
            store: "MicrosoftAzure",
            source: "Error performing GET http://h/acct/lake?restype=container in 6ms - Server returned non-2xx status code: 500 Internal Server Error: <?xml version=\"1.0\"?><Error><Message>AKIASECRETVALUE</Message></Error>".into(),
        };
        let d2 = describe(&e2, &[]);
        assert!(d2.contains("500 Internal Server Error"), "{d2}");
        assert!(
            !d2.contains("AKIA") && !d2.contains("restype") && !d2.contains('<'),
            "{d2}"
        );
        let e3 = object_store::Error::Generic {
            store: "MicrosoftAzure",
            source: "Server returned non-2xx status code: 404 Not Found: <Error>ContainerNotFound</Error>".into(),
        };
        assert!(describe(&e3, &[]).starts_with("not found"));
        // A request URL's key may hold a partition value: it never shows.
        let e4 = object_store::Error::Generic {
            store: "S3",
            source: "Error performing GET https://h/t/ssn=123-45-6789/part-0.parquet in 1s - 500"
                .into(),
        };
        let d4 = describe(&e4, &[]);
        assert!(!d4.contains("123-45") && !d4.contains("ssn="), "{d4}");
        let d = describe(&e, &["hunter2secret".to_string()]);
        assert!(!d.contains("Signature") && !d.contains("AKIA"), "{d}");
        let e = object_store::Error::Generic {
            store: "S3",
            source: "bad credential hunter2secret".into(),
        };
        assert!(!describe(&e, &["hunter2secret".to_string()]).contains("hunter2"));
    }

    #[test]
    fn urls_with_credentials_or_queries_are_refused_without_echo() {
        let o = StorageOptions::new();
        for u in [
            "s3://AKIA:topsecret@bucket/k.parquet",
            "s3://bucket/k.parquet?X-Amz-Signature=topsecret",
        ] {
            let e = Remote::open(u, &o).unwrap_err().to_string();
            assert!(!e.contains("topsecret"), "{e}");
        }
        let e = Remote::open("ftp://h/x", &o).unwrap_err().to_string();
        assert!(e.contains("unknown storage scheme"), "{e}");
    }

    #[test]
    fn unknown_options_name_the_key_not_the_value() {
        let o = StorageOptions::new().with("no_such_key", "topsecret");
        let e = Remote::open("s3://bucket/k", &o).unwrap_err().to_string();
        assert!(e.contains("no_such_key") && !e.contains("topsecret"), "{e}");
        assert!(StorageOptions::parse_pair("novalue").is_err());
        assert_eq!(
            StorageOptions::parse_pair("endpoint=http://x=y").unwrap(),
            ("endpoint".to_string(), "http://x=y".to_string())
        );
    }

    #[test]
    fn scratch_paths_are_shown_as_their_urls() {
        let t = relocate(
            "reading /tmp/s/in/dataset/y=1/a.csv: bad row; see /tmp/s/in/dataset",
            "/tmp/s/in/dataset",
            "s3://raw/c",
        );
        assert_eq!(t, "reading s3://raw/c/y=1/a.csv: bad row; see s3://raw/c");
    }

    #[test]
    fn abfss_urls_keep_their_container() {
        let o = StorageOptions::new().with("use_emulator", "true");
        let r = Remote::open(
            "abfss://lake@devstoreaccount1.dfs.core.windows.net/raw/a.csv",
            &o,
        )
        .unwrap();
        assert_eq!(
            r.shown(),
            "abfss://lake@devstoreaccount1.dfs.core.windows.net/raw/a.csv"
        );
        // A password in the user part is still refused.
        assert!(Remote::open("abfss://lake:pw@acct.dfs.core.windows.net/a.csv", &o).is_err());
    }

    #[test]
    fn segments_that_escape_a_directory_are_refused() {
        for s in ["..", ".", "", "a\\b", "a\u{1b}b"] {
            assert!(safe_segment(s).is_none(), "{s:?}");
        }
        assert_eq!(safe_segment("year=2025"), Some("year=2025"));
    }

    #[test]
    fn shown_locations_keep_the_key_and_drop_nothing_else() {
        let o = StorageOptions::new()
            .with("endpoint", "http://127.0.0.1:1")
            .with("allow_http", "true")
            .with("region", "us-east-1");
        let r = Remote::open("s3://share/customers/", &o).unwrap();
        assert_eq!(r.shown(), "s3://share/customers");
        assert_eq!(
            r.shown_at("a/b.parquet"),
            "s3://share/customers/a/b.parquet"
        );
        assert_eq!(
            r.with_suffix(SIDECAR_SUFFIX).shown(),
            "s3://share/customers.provenance.json"
        );
        assert!(r.writable().is_ok());
        let h = Remote::open("https://example.com/d/a.csv", &o.clone());
        assert!(h.is_err() || h.unwrap().writable().is_err());
    }
}
