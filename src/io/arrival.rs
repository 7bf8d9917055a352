//! A scratch copy read while it is still being fetched. The fetch writes the object's bytes
//! in order (a Parquet object's footer first, so its schema is known at once) and reports how
//! far it got; every reader of the scratch path ([`super::read::open_file`]) waits for the
//! bytes it asks for instead of seeing a short file. A failed or abandoned fetch wakes every
//! reader with an error: a reader never mistakes a partial copy for the whole object.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak};

/// How far the fetch of one object has got.
pub struct Arrival {
    size: u64,
    /// Set once every byte is on disk: readers then skip the lock.
    complete: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Bytes `0..front` are on disk.
    front: u64,
    /// Bytes `tail..size` are on disk (`size` when no tail was fetched ahead).
    tail: u64,
    /// The SHA-256 of the whole object, once the fetch is done.
    sha256: Option<String>,
    failed: bool,
}

/// Scratch paths being fetched, so that opening one for reading finds its [`Arrival`].
static ARRIVING: LazyLock<Mutex<HashMap<PathBuf, Weak<Arrival>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn registry() -> MutexGuard<'static, HashMap<PathBuf, Weak<Arrival>>> {
    ARRIVING.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fetch in progress behind `path`, if any.
pub(crate) fn arriving(path: &Path) -> Option<Arc<Arrival>> {
    registry().get(path).and_then(Weak::upgrade)
}

/// Keeps a path registered as arriving, for as long as the copy may be read: a failed fetch
/// stays registered, so a reader opening the copy later gets the error, not a short file.
/// Unregisters on drop (and fails the readers still waiting).
pub struct Registered {
    path: PathBuf,
    arrival: Arc<Arrival>,
}

impl Registered {
    pub fn arrival(&self) -> &Arc<Arrival> {
        &self.arrival
    }
}

/// Held by the task that fetches: its drop (the fetch returned, failed, panicked or was
/// aborted) before [`Arrival::finish`] fails the readers.
pub struct Feeding(pub Arc<Arrival>);

impl Drop for Feeding {
    fn drop(&mut self) {
        self.0.fail();
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.arrival.fail();
        let mut map = registry();
        if map
            .get(&self.path)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.arrival)))
        {
            map.remove(&self.path);
        }
    }
}

fn gone() -> std::io::Error {
    std::io::Error::other("the fetch of this object failed or stopped before it was complete")
}

impl Arrival {
    /// Register `path` (already created) as arriving with `size` bytes.
    pub fn register(path: &Path, size: u64) -> Registered {
        let arrival = Arc::new(Arrival {
            size,
            complete: AtomicBool::new(size == 0),
            state: Mutex::new(State {
                front: 0,
                tail: size,
                sha256: None,
                failed: false,
            }),
            changed: Condvar::new(),
        });
        registry().insert(path.to_path_buf(), Arc::downgrade(&arrival));
        Registered {
            path: path.to_path_buf(),
            arrival,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state());
        self.changed.notify_all();
    }

    /// The object's size (the scratch file may be shorter until the fetch is done).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes `0..front` are on disk.
    pub fn advance(&self, front: u64) {
        self.update(|s| s.front = s.front.max(front.min(self.size)));
    }

    /// Bytes `start..size` are on disk.
    pub fn tail_from(&self, start: u64) {
        self.update(|s| s.tail = s.tail.min(start));
    }

    /// Every byte is on disk and hashes to `sha256`.
    pub fn finish(&self, sha256: String) {
        self.update(|s| {
            s.front = self.size;
            s.sha256 = Some(sha256);
        });
        self.complete.store(true, Ordering::Release);
    }

    /// The fetch failed or was abandoned: readers get an error.
    pub fn fail(&self) {
        self.update(|s| {
            if s.sha256.is_none() {
                s.failed = true;
            }
        });
    }

    /// Whether the fetch failed or was abandoned before it was complete.
    pub fn has_failed(&self) -> bool {
        self.state().failed
    }

    /// Whether every byte is on disk.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Wait until `n` bytes from `pos` can be read; returns how many (0 at the end).
    pub(crate) fn readable(&self, pos: u64, n: usize) -> std::io::Result<usize> {
        let want = (n as u64).min(self.size.saturating_sub(pos));
        if want == 0 || self.complete.load(Ordering::Acquire) {
            return Ok(want as usize);
        }
        let mut s = self.state();
        loop {
            let run = if s.front >= s.tail {
                self.size - pos
            } else if pos < s.front {
                s.front - pos
            } else if pos >= s.tail {
                self.size - pos
            } else {
                0
            };
            if run > 0 {
                return Ok(want.min(run) as usize);
            }
            if s.failed {
                return Err(gone());
            }
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Wait until bytes `start..start + len` are on disk.
    pub(crate) fn wait_range(&self, start: u64, len: u64) -> std::io::Result<()> {
        let end = start.saturating_add(len).min(self.size);
        let mut pos = start;
        while pos < end {
            let got = self.readable(pos, (end - pos).min(usize::MAX as u64) as usize)?;
            if got == 0 {
                break;
            }
            pos += got as u64;
        }
        Ok(())
    }

    /// Wait for the whole object; its SHA-256 as the fetch computed it.
    pub fn wait_all(&self) -> std::io::Result<String> {
        let mut s = self.state();
        loop {
            if let Some(sha) = &s.sha256 {
                return Ok(sha.clone());
            }
            if s.failed {
                return Err(gone());
            }
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_waits_for_the_bytes_it_asks_for_and_never_sees_past_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"").unwrap();
        let reg = Arrival::register(&p, 100);
        let a = Arc::clone(reg.arrival());
        assert!(Arc::ptr_eq(&arriving(&p).unwrap(), &a));
        // The tail is there first: reads in it return at once, reads before it wait.
        a.tail_from(90);
        assert_eq!(a.readable(95, 50).unwrap(), 5);
        let b = Arc::clone(&a);
        let waiter = std::thread::spawn(move || b.readable(10, 50));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished());
        a.advance(30);
        assert_eq!(waiter.join().unwrap().unwrap(), 20);
        // Once the front meets the tail, everything is readable.
        a.advance(90);
        assert_eq!(a.readable(10, 1000).unwrap(), 90);
        assert_eq!(a.readable(100, 10).unwrap(), 0);
        a.finish("ab".into());
        assert_eq!(a.wait_all().unwrap(), "ab");
        drop(reg);
        assert!(arriving(&p).is_none());
        // Finished before the drop: readers still read.
        assert_eq!(a.readable(0, 10).unwrap(), 10);
    }

    /// A Parquet file of several row groups, written the way a fetch writes it (its last
    /// bytes first, then the rest in pieces), reads the same batches and hash as when whole.
    #[test]
    fn parquet_and_its_hash_read_while_arriving_match_the_whole_file() {
        use crate::io::{Format, Input, ReadOptions};
        use arrow::array::{Int64Array, StringArray};
        use std::io::{Seek, SeekFrom, Write};
        let ids = Int64Array::from_iter_values(0..20_000);
        let names = StringArray::from_iter_values((0..20_000).map(|i| format!("näme {i}")));
        let batch = arrow::record_batch::RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as arrow::array::ArrayRef),
            ("name", Arc::new(names) as arrow::array::ArrayRef),
        ])
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(3_000))
            .build();
        let mut bytes = Vec::new();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.parquet");
        std::fs::write(&whole, &bytes).unwrap();
        let read = |p: &Path| {
            let keep = |s: &arrow::datatypes::Schema| Arc::new(s.clone());
            let input = Input::open(p, Format::Parquet, &ReadOptions::default(), &keep).unwrap();
            let batches: Vec<_> = input.batches().unwrap().map(|b| b.unwrap()).collect();
            arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
        };
        let p = dir.path().join("arriving.parquet");
        let mut f = std::fs::File::create(&p).unwrap();
        let reg = Arrival::register(&p, bytes.len() as u64);
        let a = Arc::clone(reg.arrival());
        let tail = bytes.len() - 4096;
        let writer = {
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                f.seek(SeekFrom::Start(tail as u64)).unwrap();
                f.write_all(&bytes[tail..]).unwrap();
                a.tail_from(tail as u64);
                f.seek(SeekFrom::Start(0)).unwrap();
                for (i, piece) in bytes[..tail].chunks(7_001).enumerate() {
                    f.write_all(piece).unwrap();
                    a.advance((i * 7_001 + piece.len()) as u64);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                use sha2::Digest;
                a.finish(hex::encode(sha2::Sha256::digest(&bytes)));
                reg
            })
        };
        let got = read(&p);
        let hashed = crate::io::sha256_file(&p).unwrap();
        assert_eq!(got, read(&whole));
        let _reg = writer.join().unwrap();
        assert_eq!(hashed, crate::io::sha256_file(&whole).unwrap());
    }

    #[test]
    fn an_abandoned_fetch_wakes_its_readers_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("y");
        let reg = Arrival::register(&p, 10);
        let a = Arc::clone(reg.arrival());
        a.advance(4);
        let b = Arc::clone(&a);
        let waiter = std::thread::spawn(move || b.wait_range(0, 10));
        let c = Arc::clone(&a);
        let whole = std::thread::spawn(move || c.wait_all());
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(Feeding(Arc::clone(&a)));
        assert!(waiter.join().unwrap().is_err());
        assert!(whole.join().unwrap().is_err());
        // What had arrived stays readable; the rest is an error, not a short read, also for
        // a reader that opens the copy only now.
        assert_eq!(a.readable(0, 10).unwrap(), 4);
        assert!(a.readable(4, 1).is_err());
        let late = arriving(&p).expect("a failed fetch stays registered");
        assert!(late.readable(4, 1).is_err());
        drop(reg);
        assert!(arriving(&p).is_none());
    }
}
