//! The ledger's state when it does not fit the memory budget (`--ledger-memory`): events are
//! hash-partitioned to scratch files by their key's top bits, each partition is then reduced
//! by the same rule as in memory ([`super::apply`], in read order) and written sorted, and
//! the gate looks subjects up with one positioned read of a small block.
//!
//! Memory is then the maps of the partitions reduced at once (one, or one per core when the
//! budget allows) while building, and a sparse index (16 bytes per [`BLOCK`] subjects) while
//! looking up.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::{ConflictChange, Ev, IdMap, Slot, apply, code, decode};
use crate::error::{Error, Result};
use crate::io::ScratchDir;

/// Partitions on disk: by the key's top 8 bits.
pub(super) const PARTS: usize = 256;
/// Records per block of the sorted state: one positioned read per lookup.
const BLOCK: usize = 128;
/// A state record: the key (16 bytes, little-endian) and the standings' code.
const REC: usize = 17;
/// A spilled event: key, time, row, file, slot, given.
const EV: usize = 16 + 8 + 8 + 4 + 1 + 1;
/// Peak bytes per subject while a partition is reduced: the map (an entry and a control byte
/// per bucket, at worst half full after growing) and the sorted records.
pub(super) const PER_SUBJECT: u64 = 2 * 49 + 32;

fn part(key: u128) -> usize {
    (key >> 120) as usize
}

/// Events on their way to the partition files.
pub(super) struct Spill {
    // Fields drop in order: the writers close before their directory is removed.
    out: Vec<BufWriter<File>>,
    paths: Vec<PathBuf>,
    dir: ScratchDir,
}

impl Spill {
    pub(super) fn create() -> Result<Spill> {
        let dir = ScratchDir::create()?;
        let mut out = Vec::with_capacity(PARTS);
        let mut paths = Vec::with_capacity(PARTS);
        for p in 0..PARTS {
            let path = dir.path().join(format!("events-{p:03}"));
            let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
            out.push(BufWriter::with_capacity(32 << 10, f));
            paths.push(path);
        }
        Ok(Spill { dir, out, paths })
    }

    pub(super) fn push(&mut self, ev: Ev) -> Result<ControlFlow<()>> {
        let mut b = [0u8; EV];
        b[..16].copy_from_slice(&ev.key.to_le_bytes());
        b[16..24].copy_from_slice(&ev.at.to_le_bytes());
        b[24..32].copy_from_slice(&ev.row.to_le_bytes());
        b[32..36].copy_from_slice(&ev.file.to_le_bytes());
        b[36] = ev.slot;
        b[37] = u8::from(ev.given);
        let p = part(ev.key);
        self.out[p]
            .write_all(&b)
            .map_err(|e| Error::io(&self.paths[p], e))?;
        Ok(ControlFlow::Continue(()))
    }

    /// Reduce every partition to its sorted state: as many at once as the budget allows
    /// (up to one per core).
    pub(super) fn finish(mut self, budget: u64, threads: usize) -> Result<Reduced> {
        for (w, p) in self.out.drain(..).zip(&self.paths) {
            w.into_inner().map_err(|e| Error::io(p, e.into_error()))?;
        }
        let state_path = self.dir.path().join("state");
        // Read back by positioned reads: open for both.
        let state_file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&state_path)
            .map_err(|e| Error::io(&state_path, e))?;
        let mut state = BufWriter::new(state_file);
        let cores = threads.clamp(1, PARTS);
        // A partition's reduction holds at most one map entry and one record per event.
        let largest = self
            .paths
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .map(|m| m.len())
                    .map_err(|e| Error::io(p, e))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .max()
            .unwrap_or(0);
        let peak = largest / EV as u64 * PER_SUBJECT;
        let threads = usize::try_from(budget / peak.max(1))
            .unwrap_or(usize::MAX)
            .clamp(1, cores);
        let mut parts = Vec::with_capacity(PARTS);
        let mut reduced = Reduced::default();
        let mut written = 0u64;
        for chunk in self.paths.chunks(threads) {
            let done: Vec<Option<Result<Part>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|p| scope.spawn(move || reduce(p)))
                    .collect();
                handles.into_iter().map(|h| h.join().ok()).collect()
            });
            for d in done {
                // A lost partition would release people the ledger withholds: stop instead.
                let part = d.ok_or_else(|| {
                    Error::Internal("reducing a spilled consent ledger partition failed".into())
                })??;
                let mut index = Vec::with_capacity(part.records.len().div_ceil(BLOCK));
                for (i, (key, code)) in part.records.iter().enumerate() {
                    if i % BLOCK == 0 {
                        index.push(*key);
                    }
                    let mut rec = [0u8; REC];
                    rec[..16].copy_from_slice(&key.to_le_bytes());
                    rec[16] = *code;
                    state
                        .write_all(&rec)
                        .map_err(|e| Error::io(&state_path, e))?;
                }
                parts.push(DiskPart {
                    start: written,
                    len: part.records.len() as u64,
                    index,
                });
                written += part.records.len() as u64;
                reduced.duplicates += part.duplicates;
                reduced.conflict = match (reduced.conflict, part.conflict) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let file = state
            .into_inner()
            .map_err(|e| Error::io(&state_path, e.into_error()))?;
        reduced.subjects = written;
        reduced.bytes = written * REC as u64;
        let index: u64 = parts.iter().map(|p| p.index.len() as u64 * 16).sum();
        // The sorted records take 17 bytes a subject against the map's ~110: when they fit the
        // budget they are read back and searched in memory, without a system call per row.
        let held = match reduced.bytes + index <= budget {
            true => {
                let mut v = Vec::new();
                let mut f = &file;
                f.seek(std::io::SeekFrom::Start(0))
                    .and_then(|_| f.read_to_end(&mut v))
                    .map_err(|e| Error::io(&state_path, e))?;
                if v.len() as u64 != reduced.bytes {
                    return Err(Error::Internal(format!(
                        "the consent ledger's scratch file {} is truncated",
                        state_path.display()
                    )));
                }
                Some(v)
            }
            false => None,
        };
        reduced.state = Some(DiskState {
            file,
            path: state_path,
            parts,
            held,
            _dir: self.dir,
        });
        Ok(reduced)
    }
}

/// One partition, reduced.
struct Part {
    records: Vec<(u128, u8)>,
    duplicates: u64,
    conflict: Option<(u32, u64)>,
}

/// Apply a partition's events in the order they were read (the rule's outcome is the
/// in-memory build's), then sort its subjects; the partition file is removed.
fn reduce(path: &Path) -> Result<Part> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if len % EV as u64 != 0 {
        // Written by this run a moment ago: a short file means the disk lost it.
        return Err(Error::Internal(format!(
            "the consent ledger's scratch file {} is truncated",
            path.display()
        )));
    }
    let mut r = BufReader::with_capacity(256 << 10, f);
    // Not reserved from the event count: the map grows with subjects, which may be far fewer.
    let mut map: IdMap<[Slot; 2]> = IdMap::default();
    let mut duplicates = 0;
    let mut changes: Vec<ConflictChange> = Vec::new();
    let mut conflicts: HashMap<(u128, u8), (u32, u64)> = HashMap::new();
    let mut b = [0u8; EV];
    let le8 = |s: &[u8]| -> [u8; 8] { s.try_into().unwrap_or_default() };
    for _ in 0..len / EV as u64 {
        r.read_exact(&mut b).map_err(|e| Error::io(path, e))?;
        let ev = Ev {
            key: u128::from_le_bytes(b[..16].try_into().unwrap_or_default()),
            at: i64::from_le_bytes(le8(&b[16..24])),
            row: u64::from_le_bytes(le8(&b[24..32])),
            file: u32::from_le_bytes(b[32..36].try_into().unwrap_or_default()),
            slot: b[36],
            given: b[37] != 0,
        };
        apply(&mut map, ev, &mut duplicates, &mut changes);
        for (k, v) in changes.drain(..) {
            match v {
                Some(at) => {
                    conflicts.entry(k).or_insert(at);
                }
                None => {
                    conflicts.remove(&k);
                }
            }
        }
    }
    drop(r);
    let _ = std::fs::remove_file(path);
    let mut records: Vec<(u128, u8)> = Vec::with_capacity(map.len());
    records.extend(map.drain().map(|(k, s)| (k, code(&s))));
    drop(map);
    records.sort_unstable_by_key(|r| r.0);
    Ok(Part {
        records,
        duplicates,
        conflict: conflicts.values().min().copied(),
    })
}

/// What reducing the spilled events found.
#[derive(Default)]
pub(super) struct Reduced {
    pub state: Option<DiskState>,
    pub subjects: u64,
    pub duplicates: u64,
    pub conflict: Option<(u32, u64)>,
    /// Size of the sorted state on disk.
    pub bytes: u64,
}

/// The sorted state: partitions one after another, each sorted by key.
pub(super) struct DiskState {
    file: File,
    path: PathBuf,
    parts: Vec<DiskPart>,
    /// The whole file, when it fits the budget.
    held: Option<Vec<u8>>,
    /// Removed (with the state) when the ledger is dropped.
    _dir: ScratchDir,
}

struct DiskPart {
    /// First record.
    start: u64,
    len: u64,
    /// The first key of each block.
    index: Vec<u128>,
}

impl DiskState {
    /// The standings' code of `key` (see [`code`]); `None` without an event.
    pub(super) fn get(&self, key: u128) -> Result<Option<[Option<bool>; 2]>> {
        let p = &self.parts[part(key)];
        let b = p.index.partition_point(|k| *k <= key);
        if b == 0 {
            return Ok(None);
        }
        let first = (b - 1) * BLOCK;
        let n = (p.len as usize - first).min(BLOCK);
        let offset = (p.start + first as u64) * REC as u64;
        let mut block = [0u8; BLOCK * REC];
        let buf: &[u8] = match &self.held {
            Some(all) => usize::try_from(offset)
                .ok()
                .and_then(|o| all.get(o..o + n * REC))
                .ok_or_else(|| Error::Internal("a consent ledger block out of range".into()))?,
            None => {
                let buf = &mut block[..n * REC];
                read_at(&self.file, buf, offset).map_err(|e| Error::io(&self.path, e))?;
                buf
            }
        };
        let key_at = |i: usize| {
            u128::from_le_bytes(buf[i * REC..i * REC + 16].try_into().unwrap_or_default())
        };
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match key_at(mid).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Ok(Some(decode(buf[mid * REC + 16])));
                }
            }
        }
        Ok(None)
    }

    /// Blocks of each partition.
    #[cfg(test)]
    pub(super) fn blocks(&self) -> Vec<usize> {
        self.parts.iter().map(|p| p.index.len()).collect()
    }

    /// Memory the lookups hold (the sparse index, and the records when held).
    pub(super) fn lookup_bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.index.len() as u64 * 16)
            .sum::<u64>()
            + self.held.as_ref().map_or(0, |v| v.len() as u64)
    }

    /// Whether lookups search the records in memory rather than read them.
    pub(super) fn held(&self) -> bool {
        self.held.is_some()
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(f, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
