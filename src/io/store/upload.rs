//! Uploading an output while it is written. The writer's bytes go to the local file and,
//! through an [`UploadTee`], to a task that sends them on as multipart parts; the upload is
//! completed (made visible) only when the release is published, after the previous release
//! is withdrawn, so the commit protocol is unchanged. Any failure on the way only turns the
//! object back into an ordinary upload of the local file at publish time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use object_store::path::Path as ObjPath;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use sha2::Digest;
use tokio::sync::{mpsc, oneshot};

use super::{PART, Remote};

/// Bytes the tee gathers before handing them to the upload task.
const CHUNK: usize = 1 << 20;
/// Chunks queued between the writer and the upload task: past this the writer waits, so
/// memory stays bounded when the store is slower than the run.
const QUEUE: usize = 8;
/// Parts in flight per object.
const IN_FLIGHT: usize = 4;

enum Msg {
    Data(Vec<u8>),
    /// The writer's own count and hash of what it wrote: the task checks its copy against it.
    End {
        sha256: String,
        bytes: u64,
    },
}

/// Objects of one release whose bytes may be in memory at once (queued, or in parts not yet
/// uploaded); the writer waits for a slot before it opens the next file. Memory stays
/// bounded however many files a run writes: about `ACTIVE × (QUEUE × CHUNK + (IN_FLIGHT + 1)
/// × PART)`.
const ACTIVE: usize = 2;

/// A counting semaphore the writer's (blocking) thread waits on and upload tasks release.
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: std::sync::Condvar,
}

/// A taken slot, given back when dropped.
struct Slot(Arc<Slots>);

impl Slots {
    /// Wait for a free slot, or give up when `cancelled` says so.
    fn take(self: &Arc<Self>, cancelled: &(dyn Fn() -> bool + Send + Sync)) -> Option<Slot> {
        let mut busy = self.busy.lock().ok()?;
        while *busy >= ACTIVE {
            if cancelled() {
                return None;
            }
            busy = self
                .freed
                .wait_timeout(busy, std::time::Duration::from_millis(50))
                .ok()?
                .0;
        }
        *busy += 1;
        Some(Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.0.busy.lock() {
            *busy = busy.saturating_sub(1);
        }
        self.0.freed.notify_all();
    }
}

/// Asked while the writer waits on the store: a cancelled run must not wait out retries.
pub type Cancelled = Arc<dyn Fn() -> bool + Send + Sync>;

/// The writer's end: a copy of every byte written to the local file. Never blocks the run on
/// a failed upload (the task is gone, the tee goes quiet), nor a cancelled one.
pub struct UploadTee {
    tx: Option<mpsc::Sender<Msg>>,
    buf: Vec<u8>,
    cancelled: Cancelled,
}

impl UploadTee {
    /// Called by the writer with what it wrote. Must run on a blocking thread, not in an
    /// async task: a full queue waits for the upload.
    pub fn write(&mut self, mut data: &[u8]) {
        // Messages of at most CHUNK bytes, however large one write is (a text output hands
        // over whole encoded blocks), so the queue's bound is a bound in bytes.
        while self.tx.is_some() && !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() >= CHUNK {
                let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
                self.send(Msg::Data(chunk));
            }
        }
    }

    /// The file is complete: its SHA-256 (hex) and size as the writer counted them.
    pub fn finish(mut self, sha256: &str, bytes: u64) {
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.send(Msg::Data(chunk));
        }
        self.send(Msg::End {
            sha256: sha256.to_string(),
            bytes,
        });
    }

    fn send(&mut self, mut msg: Msg) {
        use mpsc::error::TrySendError;
        let Some(tx) = &self.tx else { return };
        loop {
            match tx.try_send(msg) {
                Ok(()) => return,
                // The task stopped (a failed part): publish uploads the file instead.
                Err(TrySendError::Closed(_)) => break,
                Err(TrySendError::Full(m)) => {
                    if (self.cancelled)() {
                        break;
                    }
                    msg = m;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
        }
        self.tx = None;
    }
}

/// What the upload task made of one object.
enum Outcome {
    /// Every part is uploaded; the upload waits to be completed or aborted.
    Parts { bytes: u64, control: Control },
    /// Smaller than one part: no multipart upload was started (and no copy kept: publish
    /// puts the local file, so many small files cost no memory).
    Small,
}

type Reply = oneshot::Sender<std::result::Result<(), object_store::Error>>;

enum Command {
    Complete(Reply),
    Abort(Reply),
}

struct Control(oneshot::Sender<Command>);

/// An object streamed while written, ready to be committed at publish time.
pub(super) enum Streamed {
    Parts { bytes: u64, control: ControlHandle },
    Small,
}

/// Completes or aborts a streamed multipart upload; dropped unused, the upload is aborted.
pub(super) struct ControlHandle(Control);

impl ControlHandle {
    async fn command(self, make: impl FnOnce(Reply) -> Command) -> Result<(), object_store::Error> {
        let (reply, answer) = oneshot::channel();
        if (self.0).0.send(make(reply)).is_err() {
            return Err(gone());
        }
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Make the object visible.
    pub(super) async fn complete(self) -> Result<(), object_store::Error> {
        self.command(Command::Complete).await
    }

    /// Discard the parts on the server.
    pub(super) async fn abort(self) {
        let _ = self.command(Command::Abort).await;
    }
}

fn gone() -> object_store::Error {
    object_store::Error::Generic {
        store: "cloakline",
        source: "the upload task ended".into(),
    }
}

/// The objects of one release being streamed, by relative path (`""` for a single-object
/// release).
#[derive(Clone)]
pub struct Streams {
    out: Remote,
    runtime: tokio::runtime::Handle,
    pending: Arc<Mutex<HashMap<String, oneshot::Receiver<Option<Outcome>>>>>,
    slots: Arc<Slots>,
}

impl Streams {
    pub(super) fn new(out: Remote, runtime: tokio::runtime::Handle) -> Streams {
        Streams {
            out,
            runtime,
            pending: Arc::default(),
            slots: Arc::default(),
        }
    }

    /// A tee for the object at `rel`. Waits (on the writer's thread) while other objects of
    /// the run still hold their bytes in memory. None when cancelled meanwhile, or when `rel`
    /// was streamed already: two writers of one object mean the first copy is stale, so it is
    /// dropped (aborted) and publish uploads the local file.
    pub fn tee(&self, rel: &str, cancelled: Cancelled) -> Option<UploadTee> {
        {
            let mut pending = self.pending.lock().ok()?;
            if pending.remove(rel).is_some() {
                // Keep a marker: no later tee for it either.
                let (_, closed) = oneshot::channel();
                pending.insert(rel.to_string(), closed);
                return None;
            }
        }
        let slot = self.slots.take(cancelled.as_ref())?;
        let mut pending = self.pending.lock().ok()?;
        let key = match rel {
            "" => self.out.key.clone(),
            r => self.out.child(r),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let (done, outcome) = oneshot::channel();
        pending.insert(rel.to_string(), outcome);
        let out = self.out.clone();
        self.runtime.spawn(async move {
            let result = pump(&out, &key, rx).await;
            drop(slot);
            if let Err(e) = &result {
                tracing::info!(output = %out.withheld_key(&key), reason = %e,
                    "publish: streaming the object stopped; it is uploaded from the local file");
            }
            let _ = done.send(result.ok());
        });
        Some(UploadTee {
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
            cancelled,
        })
    }

    /// What streaming `rel` came to, once its writer has finished (None: not streamed, or it
    /// failed).
    pub(super) async fn take(&self, rel: &str) -> Option<Streamed> {
        let rx = self.pending.lock().ok()?.remove(rel)?;
        match rx.await.ok().flatten()? {
            Outcome::Parts { bytes, control } => Some(Streamed::Parts {
                bytes,
                control: ControlHandle(control),
            }),
            Outcome::Small => Some(Streamed::Small),
        }
    }

    /// Abort every streamed upload not taken (a failed run, or objects publish did not
    /// need). Waits for each writer to have finished or been dropped.
    pub(super) async fn abort_all(&self) {
        let rels: Vec<String> = match self.pending.lock() {
            Ok(p) => p.keys().cloned().collect(),
            Err(_) => return,
        };
        for rel in rels {
            if let Some(Streamed::Parts { control, .. }) = self.take(&rel).await {
                control.abort().await;
            }
        }
    }
}

/// Receive the writer's bytes and upload them in parts, up to [`IN_FLIGHT`] at once. Returns
/// once every part is uploaded; the upload then waits for its [`Command`] in a task of its own.
async fn pump(
    out: &Remote,
    key: &ObjPath,
    mut rx: mpsc::Receiver<Msg>,
) -> std::result::Result<Outcome, String> {
    let mut hasher = sha2::Sha256::default();
    let mut count: u64 = 0;
    let mut part = BytesMut::with_capacity(PART);
    let mut upload: Option<Box<dyn MultipartUpload>> = None;
    let mut flying = tokio::task::JoinSet::new();
    let result = async {
        loop {
            match rx.recv().await {
                Some(Msg::Data(d)) => {
                    hasher.update(&d);
                    count += d.len() as u64;
                    part.extend_from_slice(&d);
                    while part.len() >= PART {
                        let body = part.split_to(PART).freeze();
                        send_part(out, key, &mut upload, &mut flying, body).await?;
                    }
                }
                Some(Msg::End { sha256, bytes }) => {
                    if bytes != count || sha256 != hex::encode(hasher.clone().finalize()) {
                        return Err("the streamed copy differs from the file written".to_string());
                    }
                    if upload.is_none() {
                        return Ok(None);
                    }
                    if !part.is_empty() {
                        let body = std::mem::take(&mut part).freeze();
                        send_part(out, key, &mut upload, &mut flying, body).await?;
                    }
                    while let Some(r) = flying.join_next().await {
                        part_result(r, &out.secrets)?;
                    }
                    return Ok(Some(bytes));
                }
                None => return Err("the writer stopped before the end of the file".to_string()),
            }
        }
    }
    .await;
    drop(rx);
    match (result, upload) {
        (Ok(None), _) => Ok(Outcome::Small),
        (Ok(Some(bytes)), Some(upload)) => {
            let (control, commands) = oneshot::channel();
            tokio::spawn(hold(upload, commands));
            Ok(Outcome::Parts {
                bytes,
                control: Control(control),
            })
        }
        (Ok(Some(_)), None) => Err("no upload was started".to_string()),
        (Err(e), upload) => {
            flying.abort_all();
            while flying.join_next().await.is_some() {}
            if let Some(mut u) = upload {
                let _ = u.abort().await;
            }
            Err(e)
        }
    }
}

/// Keep a finished upload until it is completed or aborted; a dropped control aborts it.
async fn hold(mut upload: Box<dyn MultipartUpload>, commands: oneshot::Receiver<Command>) {
    match commands.await {
        Ok(Command::Complete(reply)) => {
            let done = upload.complete().await.map(|_| ());
            if done.is_err() {
                // Not left on the server as an incomplete upload.
                let _ = upload.abort().await;
            }
            let _ = reply.send(done);
        }
        Ok(Command::Abort(reply)) => {
            let _ = reply.send(upload.abort().await);
        }
        Err(_) => {
            let _ = upload.abort().await;
        }
    }
}

async fn send_part(
    out: &Remote,
    key: &ObjPath,
    upload: &mut Option<Box<dyn MultipartUpload>>,
    flying: &mut tokio::task::JoinSet<std::result::Result<(), object_store::Error>>,
    body: bytes::Bytes,
) -> std::result::Result<(), String> {
    if upload.is_none() {
        let u = out
            .store
            .put_multipart(key)
            .await
            .map_err(|e| super::describe(&e, &out.secrets))?;
        *upload = Some(u);
    }
    while flying.len() >= IN_FLIGHT {
        if let Some(r) = flying.join_next().await {
            part_result(r, &out.secrets)?;
        }
    }
    if let Some(u) = upload.as_mut() {
        flying.spawn(u.put_part(PutPayload::from(body)));
    }
    Ok(())
}

fn part_result(
    r: std::result::Result<std::result::Result<(), object_store::Error>, tokio::task::JoinError>,
    secrets: &[String],
) -> std::result::Result<(), String> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "uploading a part: {}",
            super::describe(&e, secrets)
        )),
        Err(_) => Err("a part upload was cancelled".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    fn remote(store: Arc<InMemory>) -> Remote {
        Remote {
            multipart: Some(store.clone()),
            store,
            kind: super::super::Kind::S3,
            key: ObjPath::from("share/out.parquet"),
            base: "s3://bucket".into(),
            prefix: false,
            secrets: Arc::default(),
        }
    }

    fn sha(b: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(b))
    }

    /// Write `data` through a tee on a blocking thread, as the apply job does.
    async fn write_through(streams: &Streams, rel: &str, data: Vec<u8>, end: bool) {
        let mut tee = streams.tee(rel, never()).expect("a tee");
        tokio::task::spawn_blocking(move || {
            // Pieces larger than a chunk, as a text output's blocks are.
            for piece in data.chunks(3_000_001) {
                tee.write(piece);
            }
            if end {
                tee.finish(&sha(&data), data.len() as u64);
            }
        })
        .await
        .unwrap();
    }

    fn never() -> Cancelled {
        Arc::new(|| false)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_object_is_invisible_until_completed_then_whole() {
        let store = Arc::new(InMemory::new());
        let streams = Streams::new(remote(store.clone()), tokio::runtime::Handle::current());
        let body = data(3 * PART + 12345);
        write_through(&streams, "", body.clone(), true).await;
        let Some(Streamed::Parts { bytes, control }) = streams.take("").await else {
            panic!("expected a multipart upload");
        };
        assert_eq!(bytes, body.len() as u64);
        let key = ObjPath::from("share/out.parquet");
        assert!(store.head(&key).await.is_err(), "visible before the commit");
        control.complete().await.unwrap();
        let got = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.as_ref(), body.as_slice());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_object_starts_no_upload() {
        let store = Arc::new(InMemory::new());
        let streams = Streams::new(remote(store.clone()), tokio::runtime::Handle::current());
        write_through(&streams, "", data(1000), true).await;
        assert!(matches!(streams.take("").await, Some(Streamed::Small)));
        assert!(store.list(None).next().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_stops_early_leaves_nothing_to_commit() {
        let store = Arc::new(InMemory::new());
        let streams = Streams::new(remote(store.clone()), tokio::runtime::Handle::current());
        write_through(&streams, "a/part-0.parquet", data(2 * PART + 1), false).await;
        assert!(streams.take("a/part-0.parquet").await.is_none());
        assert!(store.list(None).next().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_that_differs_from_the_file_is_not_committed() {
        let store = Arc::new(InMemory::new());
        let streams = Streams::new(remote(store.clone()), tokio::runtime::Handle::current());
        let mut tee = streams.tee("", never()).unwrap();
        let body = data(PART + 10);
        tokio::task::spawn_blocking(move || {
            tee.write(&body);
            tee.finish(&sha(b"something else"), body.len() as u64);
        })
        .await
        .unwrap();
        assert!(streams.take("").await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborting_discards_finished_uploads_and_a_second_tee_is_refused() {
        let store = Arc::new(InMemory::new());
        let streams = Streams::new(remote(store.clone()), tokio::runtime::Handle::current());
        write_through(&streams, "x", data(PART * 2), true).await;
        assert!(streams.tee("y", never()).is_some());
        assert!(streams.tee("y", never()).is_none(), "one stream per object");
        // "y" was never written: its writer is gone, so abort_all does not wait forever.
        streams.abort_all().await;
        assert!(streams.take("x").await.is_none());
        assert!(store.list(None).next().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_writer_of_one_object_makes_the_first_copy_stale() {
        let store = Arc::new(InMemory::new());
        let streams = Streams::new(remote(store.clone()), tokio::runtime::Handle::current());
        write_through(&streams, "", data(2 * PART), true).await;
        assert!(streams.tee("", never()).is_none());
        assert!(streams.take("").await.is_none(), "a stale copy was kept");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(store.list(None).next().await.is_none());
    }

    #[test]
    fn a_cancelled_writer_stops_waiting_for_a_slot() {
        let slots = Arc::new(Slots::default());
        let held: Vec<Slot> = (0..ACTIVE)
            .map(|_| slots.take(&|| false).unwrap())
            .collect();
        assert!(slots.take(&|| true).is_none());
        drop(held);
        assert!(slots.take(&|| false).is_some());
    }

    use futures::StreamExt;
}
