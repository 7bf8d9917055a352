//! Consent enforcement (docs/CONSENT.md): the ledger's state as of the run, and the gate the
//! engine runs on every batch before any kernel, which drops rows or nulls consent-based
//! fields of subjects whose consent is withdrawn or missing.
//!
//! The ledger is read once into a hash map (subject id → the latest event of each consent
//! type for the policy's purpose); the gate looks each row's subject up in it. A ledger whose
//! map would exceed the memory budget is reduced on disk instead ([`spill`]), by the same rule.

mod spill;

use std::collections::BTreeSet;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::Kernel;
use crate::error::{Error, Result};
use crate::io::{Format, Input, Location, ReadOptions};
use crate::keys::Keyring;
use crate::policy::consent::{ConsentSpec, OnMissing, OnWithdrawn, SubjectIds};
use crate::policy::{Policy, Unlisted};

/// The ledger's state for one purpose, as of one instant.
pub struct Ledger {
    /// The location as given (no credentials, no query string).
    pub shown: String,
    /// SHA-256 of the ledger file, or of the manifest of a directory's files (docs/CONSENT.md).
    pub sha256: String,
    pub files: usize,
    /// Events read, all purposes.
    pub events: u64,
    /// Events for the purpose at or before `as_of`.
    pub purpose_events: u64,
    /// Events for the purpose after `as_of` (ignored).
    pub later_events: u64,
    /// Identical events repeated (same subject, purpose, type, time and event): counted once.
    pub duplicates: u64,
    pub purpose: String,
    pub as_of: DateTime<Utc>,
    /// Subjects with at least one event for the purpose as of `as_of`.
    pub subjects: u64,
    /// Bytes of the state on disk when it exceeded the memory budget (`None`: in memory).
    pub spilled: Option<u64>,
    state: State,
    ids: IdHasher,
}

/// Where the subjects' standings are.
enum State {
    /// By the key's top bits ([`part`]), one table a partition of the build.
    Memory(Vec<Table>),
    /// Sorted on disk, larger than the memory budget.
    Disk(spill::DiskState),
}

/// Memory the ledger's map may take before it is reduced on disk instead (`--ledger-memory`).
pub const DEFAULT_LEDGER_MEMORY: u64 = 1 << 30;

/// How a job reads and judges the consent ledger; every part is optional.
#[derive(Clone, Debug, Default)]
pub struct ConsentOptions {
    /// Read the ledger here instead of the policy's `consent.ledger` (e.g. a dated snapshot).
    pub ledger: Option<Location>,
    /// Judge consent as of this instant instead of the run's start.
    pub as_of: Option<DateTime<Utc>>,
    /// Bytes the ledger's map may take before it is reduced on disk instead (default
    /// [`DEFAULT_LEDGER_MEMORY`]).
    pub memory: Option<u64>,
}

impl ConsentOptions {
    /// Whether anything was given (a policy without a `consent:` block takes none).
    pub fn is_set(&self) -> bool {
        self.ledger.is_some() || self.as_of.is_some() || self.memory.is_some()
    }

    pub fn budget(&self) -> u64 {
        self.memory.unwrap_or(DEFAULT_LEDGER_MEMORY)
    }

    /// The ledger `policy`'s `consent:` block names (or `--consent-ledger`), read as of
    /// `--as-of` or else `now`; `None` for a policy without the block. The one way every
    /// door (apply, check, sql; CLI and Python) reads it.
    pub async fn load(
        &self,
        policy: &Policy,
        now: DateTime<Utc>,
        threads: Option<usize>,
        storage: &crate::io::store::StorageOptions,
    ) -> Result<Option<Ledger>> {
        let Some(spec) = &policy.consent else {
            return Ok(None);
        };
        let (loc, shown) = ledger_location(spec, &policy.source, self.ledger.as_ref())?;
        let as_of = self.as_of.unwrap_or(now);
        tracing::info!(ledger = %shown, "consent: reading the ledger");
        let threads = threads.unwrap_or_else(all_cores);
        let ledger =
            Ledger::load_on(&loc, &shown, spec, as_of, self.budget(), threads, storage).await?;
        tracing::info!(
            events = ledger.events,
            subjects = ledger.subjects,
            "consent: ledger read"
        );
        Ok(Some(ledger))
    }

    /// A ledger or an as-of time for a policy without a `consent:` block (or for no policy)
    /// would be ignored silently: refuse it. (The memory budget may be set for every run.)
    pub fn check_for(&self, policy: Option<&Policy>) -> Result<()> {
        if policy.is_some_and(|p| p.consent.is_some())
            || !(self.ledger.is_some() || self.as_of.is_some())
        {
            return Ok(());
        }
        Err(Error::Usage(match policy {
            Some(p) => format!(
                "a consent ledger or as-of time (--consent-ledger, --as-of) applies to a policy \
                 with a `consent:` block, and {} has none (docs/CONSENT.md)",
                p.source
            ),
            None => "a consent ledger or as-of time (--consent-ledger, --as-of) applies to a \
                     policy view (--policy) whose policy has a `consent:` block"
                .into(),
        }))
    }
}

/// A size such as `512MiB`, `2GiB`, `64M` or `1000000` (bytes); `K`, `M`, `G` and `T` are
/// powers of 1024, with or without `iB`/`B`.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => Some(0),
        "K" | "KB" | "KIB" => Some(10),
        "M" | "MB" | "MIB" => Some(20),
        "G" | "GB" | "GIB" => Some(30),
        "T" | "TB" | "TIB" => Some(40),
        _ => None,
    };
    match (n.parse::<u64>().ok(), shift) {
        (Some(n), Some(shift)) => n
            .checked_mul(1u64 << shift)
            .ok_or_else(|| Error::Usage(format!("size {s}: too large"))),
        _ => Err(Error::Usage(format!(
            "size {s}: give a number of bytes with an optional unit (512MiB, 2GiB, 64M)"
        ))),
    }
}

// Summarised: the map is large, and a dump of it helps no one.
impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("shown", &self.shown)
            .field("sha256", &self.sha256)
            .field("purpose", &self.purpose)
            .field("as_of", &self.as_of)
            .field("events", &self.events)
            .field("subjects", &self.subjects)
            .field("spilled", &self.spilled)
            .finish_non_exhaustive()
    }
}

/// Partitions of the subject map.
const PARTS: usize = 64;
/// Events buffered before they are applied: bounded memory for any ledger.
const BUFFERED: usize = if cfg!(test) { 7 } else { 1 << 21 };

fn part(key: u128) -> usize {
    (key >> (128 - 6)) as usize % PARTS
}

/// One event for the purpose, waiting to be applied to its partition.
#[derive(Clone, Copy)]
struct Ev {
    key: u128,
    at: i64,
    row: u64,
    file: u32,
    slot: u8,
    given: bool,
}

/// The subject map under construction. Events are appended to their partition (sequential
/// writes) and applied one partition at a time, so each probe hits a map that fits in cache;
/// partitions are applied on every core. The outcome does not depend on event order.
struct Build {
    maps: Vec<IdMap<[Slot; 2]>>,
    parts: Vec<Vec<Ev>>,
    buffered: usize,
    /// Events buffered before a flush: [`BUFFERED`], or less under a small budget.
    flush_at: usize,
    budget: u64,
    /// Threads a flush applies the partitions on.
    threads: usize,
    duplicates: u64,
    /// Undecided conflicts (subject, type) → (file index, row) of the second event.
    conflicts: HashMap<(u128, u8), (u32, u64)>,
}

impl Build {
    fn new(budget: u64, threads: usize) -> Self {
        let per_event = std::mem::size_of::<Ev>() as u64;
        Build {
            maps: (0..PARTS).map(|_| IdMap::default()).collect(),
            parts: (0..PARTS).map(|_| Vec::new()).collect(),
            buffered: 0,
            flush_at: usize::try_from(budget / per_event / 2)
                .unwrap_or(usize::MAX)
                .clamp(1, BUFFERED),
            budget,
            threads: threads.clamp(1, PARTS),
            duplicates: 0,
            conflicts: HashMap::new(),
        }
    }

    /// Buffer one event; `Break` once the map outgrows the budget.
    fn push(&mut self, ev: Ev) -> Result<ControlFlow<()>> {
        self.parts[part(ev.key)].push(ev);
        self.buffered += 1;
        if self.buffered >= self.flush_at {
            self.flush()?;
            if self.bytes() > self.budget {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Memory held: the maps' tables (entry and control byte per bucket), the buffers and
    /// the open conflicts.
    fn bytes(&self) -> u64 {
        let entry = std::mem::size_of::<(u128, [Slot; 2])>() as u64 + 1;
        // `capacity` counts items; a table has 8 buckets per 7 of them.
        let maps: u64 = self
            .maps
            .iter()
            .map(|m| m.capacity() as u64 * 8 / 7 * entry)
            .sum();
        let bufs: u64 = self
            .parts
            .iter()
            .map(|p| (p.capacity() * std::mem::size_of::<Ev>()) as u64)
            .sum();
        maps + bufs + self.conflicts.len() as u64 * 64
    }

    fn flush(&mut self) -> Result<()> {
        let per = PARTS.div_ceil(self.threads);
        type Applied = (u64, Vec<ConflictChange>);
        let results: Vec<Option<Applied>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .maps
                .chunks_mut(per)
                .zip(self.parts.chunks_mut(per))
                .map(|(maps, parts)| {
                    scope.spawn(move || {
                        let mut dup = 0;
                        let mut changes = Vec::new();
                        for (map, evs) in maps.iter_mut().zip(parts.iter_mut()) {
                            map.reserve(evs.len());
                            for ev in evs.drain(..) {
                                apply(map, ev, &mut dup, &mut changes);
                            }
                            evs.shrink_to(evs.len().max(1024));
                        }
                        (dup, changes)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().ok()).collect()
        });
        for r in results {
            // A lost partition would release people the ledger withholds: stop instead.
            let (dup, changes) = r.ok_or_else(|| {
                Error::Internal("building the consent ledger's map failed".into())
            })?;
            self.duplicates += dup;
            for (k, v) in changes {
                match v {
                    Some(at) => {
                        self.conflicts.entry(k).or_insert(at);
                    }
                    None => {
                        self.conflicts.remove(&k);
                    }
                }
            }
        }
        self.buffered = 0;
        Ok(())
    }
}

/// A conflict raised (`Some`: where) or settled (`None`) for a (subject, type).
type ConflictChange = ((u128, u8), Option<(u32, u64)>);

/// Apply one event: a later one replaces (and settles a conflict), an equal one is a
/// duplicate or a conflict, an earlier one is ignored. Conflict changes go to `changes`
/// (`Some`: raised at that place, `None`: settled), in order.
fn apply(
    map: &mut IdMap<[Slot; 2]>,
    ev: Ev,
    duplicates: &mut u64,
    changes: &mut Vec<ConflictChange>,
) {
    let slots = map.entry(ev.key).or_default();
    let cur = &mut slots[usize::from(ev.slot)];
    match cur.given {
        Some(_) if ev.at < cur.at => {}
        Some(g) if ev.at == cur.at => {
            if g == ev.given {
                *duplicates += 1;
            } else if !cur.conflict {
                // Which came first is unknowable; it matters only if no later event decides.
                cur.conflict = true;
                changes.push(((ev.key, ev.slot), Some((ev.file, ev.row))));
            }
        }
        _ => {
            if cur.conflict {
                changes.push(((ev.key, ev.slot), None));
            }
            *cur = Slot {
                at: ev.at,
                given: Some(ev.given),
                conflict: false,
            };
        }
    }
}

/// Subject ids as 128-bit keys: two SipHash-1-3 digests under random per-run keys. A
/// million-subject map then holds no strings (one cache miss per probe, no allocation per
/// id); two ids collide with probability about n²/2¹²⁹, under 2⁻⁶⁸ for 10⁹ ids, and keys an
/// attacker cannot see cannot be aimed.
#[derive(Default)]
struct IdHasher(RandomState, RandomState);

impl IdHasher {
    fn key(&self, id: &str) -> u128 {
        (u128::from(self.0.hash_one(id)) << 64) | u128::from(self.1.hash_one(id))
    }
}

/// A map keyed by [`IdHasher`] keys, which are already uniform: hashed by taking 64 bits.
type IdMap<V> = HashMap<u128, V, BuildHasherDefault<KeyBits>>;

#[derive(Default)]
struct KeyBits(u64);

impl Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed; fold anything else in rather than ignore it.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// (general, separate) standings in one byte: 0 no event, 1 given, 2 withdrawn. A subject has
/// an event of some type, so its code is never 0.
fn code(s: &[Slot; 2]) -> u8 {
    let one = |s: &Slot| match s.given {
        None => 0u8,
        Some(true) => 1,
        Some(false) => 2,
    };
    one(&s[GENERAL]) | (one(&s[SEPARATE]) << 2)
}

fn decode(c: u8) -> [Option<bool>; 2] {
    let one = |v: u8| match v & 3 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    [one(c), one(c >> 2)]
}

/// The built map, read-only: open addressing with linear probing over 16-byte slots, each
/// the key with its low 4 bits replaced by the standings' [`code`] (never 0, so 0 is an
/// empty slot). A probe is one cache miss where the map's are two, in a third of its memory;
/// 124 key bits still make a collision about n²/2¹²⁵ likely.
struct Table {
    slots: Vec<u128>,
    mask: usize,
}

impl Table {
    /// One table per map, on every core; each map is freed as its table is made.
    fn from_maps(maps: Vec<IdMap<[Slot; 2]>>, threads: usize) -> Result<Vec<Table>> {
        let n = maps.len();
        let threads = threads.clamp(1, PARTS);
        let mut maps: Vec<Option<IdMap<[Slot; 2]>>> = maps.into_iter().map(Some).collect();
        let per = maps.len().div_ceil(threads).max(1);
        let tables: Vec<Table> = std::thread::scope(|scope| {
            let handles: Vec<_> = maps
                .chunks_mut(per)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter_mut()
                            .map(|m| Table::from_map(m.take().unwrap_or_default()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        // A lost partition would release people the ledger withholds: stop instead.
        if tables.len() != n {
            return Err(Error::Internal(
                "building the consent ledger's table failed".into(),
            ));
        }
        Ok(tables)
    }

    fn from_map(map: IdMap<[Slot; 2]>) -> Table {
        // At most half full: short probe runs, mostly within one cache line.
        let cap = (map.len() * 2).max(4).next_power_of_two();
        let mask = cap - 1;
        let mut slots = vec![0u128; cap];
        for (key, s) in map {
            let mut i = key as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = (key & !0xF) | u128::from(code(&s));
        }
        Table { slots, mask }
    }

    fn get(&self, key: u128) -> Option<u8> {
        let mut i = key as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if (s ^ key) >> 4 == 0 {
                return Some((s & 0xF) as u8);
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// The latest event of one consent type.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// Microseconds since the epoch (UTC); meaningful when `given` is set.
    at: i64,
    /// `None`: no event; `Some(true)`: given; `Some(false)`: withdrawn.
    given: Option<bool>,
    /// Both `given` and `withdrawn` at `at`: an error unless a later event decides.
    conflict: bool,
}

/// A subject's standing for one consent type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Given,
    Withdrawn,
    Missing,
}

const GENERAL: usize = 0;
const SEPARATE: usize = 1;

impl Ledger {
    /// The standing of `subject` for (general, separate) consent.
    pub fn standing(&self, subject: &str) -> Result<(Standing, Standing)> {
        let of = |s: Option<bool>| match s {
            None => Standing::Missing,
            Some(true) => Standing::Given,
            Some(false) => Standing::Withdrawn,
        };
        let key = self.ids.key(subject);
        let slots = match &self.state {
            State::Memory(tables) => tables[part(key)].get(key).map(decode),
            State::Disk(d) => d.get(key)?,
        };
        Ok(match slots {
            None => (Standing::Missing, Standing::Missing),
            Some([g, s]) => (of(g), of(s)),
        })
    }

    /// As-of time as recorded (RFC 3339, UTC).
    pub fn as_of_text(&self) -> String {
        self.as_of.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Read the ledger at `loc` (a URL is fetched first) for `spec`'s purpose as of `as_of`,
    /// in memory up to `budget` bytes and on disk beyond, on every core.
    pub async fn load(
        loc: &Location,
        shown: &str,
        spec: &ConsentSpec,
        as_of: DateTime<Utc>,
        budget: u64,
        storage: &crate::io::store::StorageOptions,
    ) -> Result<Ledger> {
        Self::load_on(loc, shown, spec, as_of, budget, all_cores(), storage).await
    }

    /// [`Ledger::load`] on at most `threads` threads (a run's `--threads`).
    pub async fn load_on(
        loc: &Location,
        shown: &str,
        spec: &ConsentSpec,
        as_of: DateTime<Utc>,
        budget: u64,
        threads: usize,
        storage: &crate::io::store::StorageOptions,
    ) -> Result<Ledger> {
        match loc {
            Location::Local(p) => {
                let files = ledger_files(p, spec.format, shown)?;
                // Read once or twice (on disk) and hashed meanwhile: all of it must be the
                // same bytes, or the record's digest would not describe what was enforced.
                let stamp = || -> Vec<Option<(u64, std::time::SystemTime)>> {
                    files
                        .iter()
                        .map(|(_, f)| {
                            std::fs::metadata(f)
                                .and_then(|m| Ok((m.len(), m.modified()?)))
                                .ok()
                        })
                        .collect()
                };
                let before = stamp();
                // Hashed while it is read: the file is in the page cache once.
                std::thread::scope(|scope| {
                    let hashing = scope.spawn(|| {
                        files
                            .iter()
                            .map(|(rel, f)| Ok((rel.clone(), crate::io::sha256_file(f)?.0)))
                            .collect::<Result<Vec<_>>>()
                    });
                    let read = read_ledger_on(shown, &files, spec, as_of, budget, threads);
                    let digests = hashing.join().unwrap_or_else(|_| {
                        Err(Error::Internal(
                            "hashing the consent ledger panicked".into(),
                        ))
                    });
                    let mut ledger = read?;
                    ledger.sha256 = ledger_digest(&digests?);
                    if stamp() != before {
                        return Err(Error::Consent {
                            ledger: shown.to_string(),
                            message: "the ledger changed while it was read; nothing was \
                                      written. Run again once it is no longer being written \
                                      (or give a snapshot with --consent-ledger)"
                                .into(),
                        });
                    }
                    Ok(ledger)
                })
            }
            Location::Url(u) => {
                let remote = crate::io::store::Remote::open(u, storage)?;
                let scratch = crate::io::ScratchDir::create()?;
                let want = spec.format;
                let fetched = remote
                    .fetch(scratch.path(), |p| {
                        want.or_else(|| Format::from_path(p)).is_some()
                            && Format::from_path(p).is_some()
                    })
                    .await?;
                let mut hashed: Vec<(String, PathBuf, String)> = fetched
                    .objects
                    .iter()
                    .map(|o| {
                        let rel = o
                            .local
                            .strip_prefix(&fetched.local)
                            .map(slash)
                            .unwrap_or_default();
                        (rel, o.local.clone(), o.sha256.clone())
                    })
                    .collect();
                hashed.sort();
                let files: Vec<(String, PathBuf)> = hashed
                    .iter()
                    .map(|(r, p, _)| (r.clone(), p.clone()))
                    .collect();
                let ledger = read_ledger_on(shown, &files, spec, as_of, budget, threads);
                drop(scratch);
                let mut ledger = ledger?;
                ledger.sha256 = ledger_digest(
                    &hashed
                        .into_iter()
                        .map(|(r, _, s)| (r, s))
                        .collect::<Vec<_>>(),
                );
                Ok(ledger)
            }
        }
    }
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Where the ledger of `spec` is (`given` overrides it; a relative path is relative to the
/// policy file at `policy_source`, like hierarchy files), and how records and messages show
/// it (a URL without credentials or query).
pub fn ledger_location(
    spec: &ConsentSpec,
    policy_source: &str,
    given: Option<&Location>,
) -> Result<(Location, String)> {
    let policy = Path::new(policy_source);
    let remote_policy = Location::parse(policy_source) != Location::Local(policy.into());
    let loc = match given {
        Some(l) => l.clone(),
        None => match Location::parse(&spec.ledger) {
            // A policy read from a store reaches no local file through its ledger.
            Location::Local(_) if remote_policy => {
                return Err(Error::Usage(format!(
                    "consent.ledger `{}` is a local path, but the policy was read from a store; \
                     give the ledger as a URL or pass --consent-ledger",
                    spec.ledger
                )));
            }
            Location::Local(p) if p.is_relative() => {
                Location::Local(policy.parent().unwrap_or(Path::new("")).join(p))
            }
            l => l,
        },
    };
    let shown = match &loc {
        Location::Local(p) => p.display().to_string(),
        Location::Url(u) => crate::io::location_redacted(u),
    };
    Ok((loc, shown))
}

/// The ledger's data files with their paths relative to it (`""` for a single file).
fn ledger_files(p: &Path, format: Option<Format>, shown: &str) -> Result<Vec<(String, PathBuf)>> {
    let meta = std::fs::metadata(p).map_err(|e| Error::Consent {
        ledger: shown.to_string(),
        message: format!(
            "cannot read the consent ledger ({e}); check `consent.ledger` in the policy or \
             --consent-ledger"
        ),
    })?;
    if meta.is_file() {
        return Ok(vec![(String::new(), p.to_path_buf())]);
    }
    let files = crate::io::data_files(p, format)?;
    if files.is_empty() {
        return Err(Error::Consent {
            ledger: shown.to_string(),
            message: "the ledger directory holds no Parquet, CSV or NDJSON file".into(),
        });
    }
    let mut v: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|f| (slash(f.strip_prefix(p).unwrap_or(&f)), f))
        .collect();
    v.sort();
    Ok(v)
}

/// The ledger's digest: a single file's SHA-256, or the SHA-256 of a directory's manifest
/// (one `relative/path<TAB>sha256<LF>` line per file, sorted by path).
pub fn ledger_digest(files: &[(String, String)]) -> String {
    if let [(rel, sha)] = files
        && rel.is_empty()
    {
        return sha.clone();
    }
    let mut h = Sha256::new();
    for (rel, sha) in files {
        h.update(rel.as_bytes());
        h.update(b"\t");
        h.update(sha.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The digest of the ledger at a local path, as [`Ledger`] records it (for `verify`).
pub fn local_ledger_digest(p: &Path, format: Option<Format>, shown: &str) -> Result<String> {
    let mut v = Vec::new();
    for (rel, f) in ledger_files(p, format, shown)? {
        v.push((rel, crate::io::sha256_file(&f)?.0));
    }
    Ok(ledger_digest(&v))
}

/// A ledger problem at a row (1-based, counting data rows) of one of its files.
fn at_row(shown: &str, rel: &str, row: u64, what: String) -> Error {
    let file = if rel.is_empty() {
        String::new()
    } else {
        format!("file {rel}, ")
    };
    Error::Consent {
        ledger: shown.to_string(),
        message: format!("{file}row {row}: {what}"),
    }
}

/// Every core of the machine (the default when no `--threads` limit is given).
fn all_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
fn read_ledger(
    shown: &str,
    files: &[(String, PathBuf)],
    spec: &ConsentSpec,
    as_of: DateTime<Utc>,
    budget: u64,
) -> Result<Ledger> {
    read_ledger_on(shown, files, spec, as_of, budget, all_cores())
}

/// The ledger's state from its files (its digest is the caller's: computed meanwhile, or
/// while the store streamed it). The map is built in memory; if it outgrows `budget` bytes
/// the files are read again and reduced on disk ([`spill`]), by the same rule. Work is
/// spread over at most `threads` threads.
fn read_ledger_on(
    shown: &str,
    files: &[(String, PathBuf)],
    spec: &ConsentSpec,
    as_of: DateTime<Utc>,
    budget: u64,
    threads: usize,
) -> Result<Ledger> {
    let ids = IdHasher::default();
    let mut build = Build::new(budget, threads);
    let mut scanned = scan(shown, files, spec, as_of, &ids, &mut |ev| build.push(ev))?;
    let over = scanned.stopped || {
        build.flush()?;
        build.bytes() > budget
    };
    let (state, subjects, duplicates, conflict, spilled) = if !over {
        let subjects = build.maps.iter().map(|m| m.len() as u64).sum();
        let conflict = build.conflicts.values().min().copied();
        (
            State::Memory(Table::from_maps(build.maps, threads)?),
            subjects,
            build.duplicates,
            conflict,
            None,
        )
    } else {
        drop(build);
        tracing::info!(
            budget_bytes = budget,
            "consent: the ledger's map exceeds the memory budget (--ledger-memory); reducing it on disk"
        );
        let mut spill = spill::Spill::create()?;
        scanned = scan(shown, files, spec, as_of, &ids, &mut |ev| spill.push(ev))?;
        let r = spill.finish(budget, threads)?;
        let state = r
            .state
            .ok_or_else(|| Error::Internal("the spilled consent ledger has no state".into()))?;
        tracing::info!(
            subjects = r.subjects,
            state_bytes = r.bytes,
            lookup_bytes = state.lookup_bytes(),
            records_in_memory = state.held(),
            "consent: ledger reduced on disk"
        );
        (
            State::Disk(state),
            r.subjects,
            r.duplicates,
            r.conflict,
            Some(r.bytes),
        )
    };
    if let Some((file, row)) = conflict {
        let rel = files.get(file as usize).map(|f| f.0.as_str()).unwrap_or("");
        return Err(at_row(
            shown,
            rel,
            row,
            "this subject's latest events for the purpose are both `given` and `withdrawn` at \
             the same timestamp; the ledger must order them (give one a later timestamp, or \
             remove the wrong one)"
                .into(),
        ));
    }
    if !scanned.any_for_purpose {
        // The ledger's own purpose values are not shown: they are the file's values (and a
        // wrong column or a file that is not a ledger has data there). How to list them is.
        let others = match scanned.other_purposes.len() {
            0 => "no event names any purpose (the ledger is empty)".to_string(),
            n if n >= 50 => "its events name 50 or more other values".to_string(),
            n => format!("its events name {n} other values"),
        };
        return Err(Error::Consent {
            ledger: shown.to_string(),
            message: format!(
                "purpose `{}` is unknown to the ledger: no event names it, and {others} (not \
                 shown: they are the file's values). The policy's `consent.purpose` must be a \
                 purpose id the ledger uses; list them with `cloakline sql \"SELECT DISTINCT {} \
                 FROM l\" --table l=LEDGER`",
                spec.purpose, spec.columns.purpose
            ),
        });
    }
    Ok(Ledger {
        shown: shown.to_string(),
        sha256: String::new(),
        files: files.len(),
        events: scanned.events,
        purpose_events: scanned.purpose_events,
        later_events: scanned.later_events,
        duplicates,
        purpose: spec.purpose.clone(),
        as_of,
        subjects,
        spilled,
        state,
        ids,
    })
}

/// What one pass over the ledger's files saw.
struct Scanned {
    events: u64,
    purpose_events: u64,
    later_events: u64,
    any_for_purpose: bool,
    /// Keyed hashes of other purposes seen (at most 50): counted, never shown.
    other_purposes: BTreeSet<u128>,
    /// The sink stopped the pass early.
    stopped: bool,
}

/// Read every event of the ledger's files, in order, validating each; the purpose's events
/// as of `as_of` go to `sink` until it breaks.
fn scan(
    shown: &str,
    files: &[(String, PathBuf)],
    spec: &ConsentSpec,
    as_of: DateTime<Utc>,
    ids: &IdHasher,
    sink: &mut dyn FnMut(Ev) -> Result<ControlFlow<()>>,
) -> Result<Scanned> {
    let cols = &spec.columns;
    let as_of_us = as_of.timestamp_micros();
    // Text formats are read as text: an id like `007` stays `007`.
    let read = ReadOptions {
        all_strings: true,
        ..ReadOptions::default()
    };
    let mut other_purposes = BTreeSet::new();
    let (mut events, mut purpose_events, mut later_events) = (0u64, 0u64, 0u64);
    let mut any_for_purpose = false;
    let mut stopped = false;
    for (file, (rel, path)) in files.iter().enumerate() {
        let file = u32::try_from(file).unwrap_or(u32::MAX);
        let format = spec
            .format
            .or_else(|| Format::from_path(path))
            .ok_or_else(|| Error::Consent {
                ledger: shown.to_string(),
                message: format!(
                    "cannot tell the format of {} from its extension; set `consent.format`",
                    if rel.is_empty() { "the ledger" } else { rel }
                ),
            })?;
        let input = Input::open(path, format, &read, &|s| Arc::new(s.clone()))
            .map_err(|e| relocated(e, path, shown, rel))?;
        let schema = input.schema.clone();
        // The file's own names are not shown: a file without a header (or not a ledger) has
        // data values there. Which of the expected names it has is safe to say.
        let expected = [&cols.subject, &cols.purpose, &cols.event, &cols.timestamp];
        let index = |name: &str, required: bool| -> Result<Option<usize>> {
            match schema.index_of(name) {
                Ok(i) => Ok(Some(i)),
                Err(_) if !required => Ok(None),
                Err(_) => {
                    let present: Vec<String> = expected
                        .iter()
                        .filter(|n| schema.index_of(n).is_ok())
                        .map(|n| format!("`{n}`"))
                        .collect();
                    Err(Error::Consent {
                        ledger: shown.to_string(),
                        message: format!(
                            "{}has no column `{name}` ({} of its {} columns {}; their names are \
                             not shown, since a file without a header has data there). Name \
                             the ledger's columns under `consent.columns` (docs/CONSENT.md)",
                            if rel.is_empty() {
                                String::new()
                            } else {
                                format!("file {rel} ")
                            },
                            present.len(),
                            schema.fields().len(),
                            if present.is_empty() {
                                "are expected ones".to_string()
                            } else {
                                format!("are expected ones: {}", present.join(", "))
                            },
                        ),
                    })
                }
            }
        };
        let c_subject = index(&cols.subject, true)?.unwrap_or_default();
        let c_purpose = index(&cols.purpose, true)?.unwrap_or_default();
        let c_event = index(&cols.event, true)?.unwrap_or_default();
        let c_time = index(&cols.timestamp, true)?.unwrap_or_default();
        let c_type = index(&cols.consent_type, false)?;
        let mut row = 0u64;
        let batches = input
            .batches()
            .map_err(|e| relocated(e, path, shown, rel))?;
        // Decoding on one core, the map on the other.
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(4);
            scope.spawn(move || {
                for b in batches {
                    let failed = b.is_err();
                    if tx.send(b).is_err() || failed {
                        return;
                    }
                }
            });
            for batch in rx {
                let batch = batch.map_err(|e| relocated(e, path, shown, rel))?;
                let n = batch.num_rows();
                let subject = text(batch.column(c_subject), shown, &cols.subject)?;
                let purpose = text(batch.column(c_purpose), shown, &cols.purpose)?;
                let event = text(batch.column(c_event), shown, &cols.event)?;
                let kind = c_type
                    .map(|c| text(batch.column(c), shown, &cols.consent_type))
                    .transpose()?;
                let times = micros(batch.column(c_time)).map_err(|r| {
                    at_row(
                        shown,
                        rel,
                        row + r as u64 + 1,
                        timestamp_problem(&cols.timestamp),
                    )
                })?;
                let (subject, purpose, event) = (
                    subject.as_string::<i32>(),
                    purpose.as_string::<i32>(),
                    event.as_string::<i32>(),
                );
                let kind = kind.as_ref().map(|k| k.as_string::<i32>());
                #[allow(clippy::needless_range_loop)] // r indexes four arrays
                for r in 0..n {
                    row += 1;
                    events += 1;
                    if purpose.is_null(r) {
                        return Err(at_row(
                            shown,
                            rel,
                            row,
                            format!("`{}` is empty", cols.purpose),
                        ));
                    }
                    let p = purpose.value(r);
                    if p != spec.purpose {
                        if other_purposes.len() < 50 {
                            other_purposes.insert(ids.key(p));
                        }
                        continue;
                    }
                    any_for_purpose = true;
                    let Some(at) = times[r] else {
                        return Err(at_row(
                            shown,
                            rel,
                            row,
                            format!("`{}` is empty", cols.timestamp),
                        ));
                    };
                    if at > as_of_us {
                        later_events += 1;
                        continue;
                    }
                    if subject.is_null(r) || subject.value(r).is_empty() {
                        return Err(at_row(
                            shown,
                            rel,
                            row,
                            format!("`{}` is empty", cols.subject),
                        ));
                    }
                    let given = match (if event.is_null(r) { "" } else { event.value(r) }).trim() {
                        e if e.eq_ignore_ascii_case("given") => true,
                        e if e.eq_ignore_ascii_case("withdrawn") => false,
                        _ => {
                            return Err(at_row(
                                shown,
                                rel,
                                row,
                                format!("`{}` is neither `given` nor `withdrawn`", cols.event),
                            ));
                        }
                    };
                    let slot = match kind {
                        None => GENERAL,
                        Some(k) => match (!k.is_null(r)).then(|| k.value(r).trim()) {
                            None | Some("") => GENERAL,
                            Some(t) if t.eq_ignore_ascii_case("consent") => GENERAL,
                            Some(t) if t.eq_ignore_ascii_case("separate_consent") => SEPARATE,
                            Some(_) => {
                                return Err(at_row(
                                    shown,
                                    rel,
                                    row,
                                    format!(
                                        "`{}` is neither `consent` nor `separate_consent`",
                                        cols.consent_type
                                    ),
                                ));
                            }
                        },
                    };
                    purpose_events += 1;
                    let ev = Ev {
                        key: ids.key(subject.value(r)),
                        at,
                        row,
                        file,
                        slot: slot as u8,
                        given,
                    };
                    if sink(ev)?.is_break() {
                        stopped = true;
                        return Ok(());
                    }
                }
            }
            Ok(())
        })?;
        if stopped {
            break;
        }
    }
    Ok(Scanned {
        events,
        purpose_events,
        later_events,
        any_for_purpose,
        other_purposes,
        stopped,
    })
}

fn timestamp_problem(col: &str) -> String {
    format!(
        "`{col}` is not a time cloakline can read (a timestamp, a date, or RFC 3339 text such as \
         2026-05-01T12:00:00Z)"
    )
}

/// A reader's error, naming the ledger as given rather than a scratch copy.
fn relocated(e: Error, path: &Path, shown: &str, rel: &str) -> Error {
    let place = if rel.is_empty() {
        shown.to_string()
    } else {
        format!("{shown} (file {rel})")
    };
    let m = e.to_string().replace(&path.display().to_string(), &place);
    Error::Consent {
        ledger: shown.to_string(),
        message: m,
    }
}

/// A column as `Utf8` (ids of any type compare as their text: integers in decimal).
fn text(a: &ArrayRef, shown: &str, col: &str) -> Result<ArrayRef> {
    crate::kernels::utf8(a).map_err(|_| Error::Consent {
        ledger: shown.to_string(),
        message: format!(
            "column `{col}` has type {}, which cloakline cannot compare as text",
            a.data_type()
        ),
    })
}

/// Microseconds since the epoch (UTC) of each row; `Err(row)` for the first unreadable one.
/// Timestamps without a time zone are taken as UTC.
fn micros(a: &ArrayRef) -> std::result::Result<Vec<Option<i64>>, usize> {
    let a = match a.data_type() {
        DataType::Dictionary(_, _) => {
            arrow::compute::cast(a, &DataType::Utf8).map_err(|_| 0usize)?
        }
        _ => Arc::clone(a),
    };
    let scale = |v: i64, unit: &TimeUnit| -> Option<i64> {
        match unit {
            TimeUnit::Second => v.checked_mul(1_000_000),
            TimeUnit::Millisecond => v.checked_mul(1_000),
            TimeUnit::Microsecond => Some(v),
            TimeUnit::Nanosecond => Some(v.div_euclid(1_000)),
        }
    };
    let mut out = Vec::with_capacity(a.len());
    match a.data_type() {
        DataType::Timestamp(unit, _) => {
            let v = arrow::compute::cast(&a, &DataType::Int64).map_err(|_| 0usize)?;
            let v = v.as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..v.len() {
                if v.is_null(i) {
                    out.push(None);
                } else {
                    out.push(Some(scale(v.value(i), unit).ok_or(i)?));
                }
            }
        }
        DataType::Date32 => {
            let v = a.as_primitive::<arrow::datatypes::Date32Type>();
            for i in 0..v.len() {
                out.push(match v.is_null(i) {
                    true => None,
                    false => Some(i64::from(v.value(i)).checked_mul(86_400_000_000).ok_or(i)?),
                });
            }
        }
        DataType::Date64 => {
            let v = a.as_primitive::<arrow::datatypes::Date64Type>();
            for i in 0..v.len() {
                out.push(match v.is_null(i) {
                    true => None,
                    false => Some(v.value(i).checked_mul(1_000).ok_or(i)?),
                });
            }
        }
        _ => {
            let s = crate::kernels::utf8(&a).map_err(|_| 0usize)?;
            let s = s.as_string::<i32>();
            for i in 0..s.len() {
                if s.is_null(i) || s.value(i).trim().is_empty() {
                    out.push(None);
                } else {
                    out.push(Some(parse_time(s.value(i).trim()).ok_or(i)?));
                }
            }
        }
    }
    Ok(out)
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (UTC) or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

/// Parse `--as-of` (RFC 3339, or a date meaning its midnight UTC).
pub fn parse_as_of(s: &str) -> Result<DateTime<Utc>> {
    parse_time(s.trim())
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--as-of {s}: not a time; give RFC 3339 (2026-05-01T12:00:00Z) or a date \
                 (2026-05-01, meaning its midnight UTC)"
            ))
        })
}

// ---------------------------------------------------------------------------------------------
// The gate.
// ---------------------------------------------------------------------------------------------

/// What the gate does to a plan column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withhold {
    /// Not consent-based.
    Never,
    /// Needs the purpose's consent.
    General,
    /// Needs the purpose's consent and separate consent.
    Separate,
}

/// Consent enforcement over one input schema: built from the policy's `consent:` block and
/// the ledger. The engine runs it on each batch before the kernels; a policy view runs it as
/// a filter and `CASE` expressions.
#[derive(Debug)]
pub struct ConsentGate {
    /// Input column of the subject.
    pub(crate) subject: usize,
    /// `subject_ids: tokenized`: the subject field's tokenizer.
    tokenizer: Option<Kernel>,
    pub ledger: Arc<Ledger>,
    /// Per plan column (empty for a gate built for a schema alone).
    pub(crate) withhold: Vec<Withhold>,
    consent_fields: Vec<String>,
    separate_fields: Vec<String>,
    drop_rows: bool,
    fail_missing: bool,
    /// Every consent-based column needs separate consent: missing it removes them all.
    separate_only: bool,
    /// Some consent-based column needs separate consent.
    has_separate: bool,
    /// What a policy view's function judged (the engine sums its own counts).
    pub tally: ConsentTally,
}

/// What a gate did where no caller sums it (a policy view's function, on DataFusion's
/// threads): counts added once per call.
#[derive(Debug, Default)]
pub struct ConsentTally {
    rows_in: AtomicU64,
    removed_withdrawn: AtomicU64,
    removed_missing: AtomicU64,
    general_withheld: AtomicU64,
    separate_withheld: AtomicU64,
    matched: AtomicU64,
}

impl ConsentTally {
    pub fn add(&self, c: &ConsentCounts) {
        let add = |a: &AtomicU64, n: u64| a.fetch_add(n, Ordering::Relaxed);
        add(&self.rows_in, c.rows_in);
        add(&self.removed_withdrawn, c.removed_withdrawn);
        add(&self.removed_missing, c.removed_missing);
        add(&self.general_withheld, c.general_withheld);
        add(&self.separate_withheld, c.separate_withheld);
        add(&self.matched, c.matched);
    }

    pub fn counts(&self) -> ConsentCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConsentCounts {
            rows_in: get(&self.rows_in),
            removed_withdrawn: get(&self.removed_withdrawn),
            removed_missing: get(&self.removed_missing),
            general_withheld: get(&self.general_withheld),
            separate_withheld: get(&self.separate_withheld),
            matched: get(&self.matched),
        }
    }
}

/// What the gate did, summed over batches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentCounts {
    pub rows_in: u64,
    pub removed_withdrawn: u64,
    pub removed_missing: u64,
    /// Rows kept with their general consent-based fields null (`on_withdrawn: null_fields`).
    pub general_withheld: u64,
    /// Rows kept with their separate-consent fields null.
    pub separate_withheld: u64,
    /// Rows whose subject has an event for the purpose.
    pub matched: u64,
}

impl ConsentCounts {
    pub fn add(&mut self, o: &ConsentCounts) {
        self.rows_in += o.rows_in;
        self.removed_withdrawn += o.removed_withdrawn;
        self.removed_missing += o.removed_missing;
        self.general_withheld += o.general_withheld;
        self.separate_withheld += o.separate_withheld;
        self.matched += o.matched;
    }
}

/// The gate's verdict on one batch.
pub(crate) struct Verdict {
    /// Rows to keep; `None`: all.
    pub keep: Option<BooleanArray>,
    /// Over the kept rows: `true` where general consent-based fields are nulled.
    pub general_null: Option<BooleanArray>,
    /// Over the kept rows: `true` where separate-consent fields are nulled.
    pub separate_null: Option<BooleanArray>,
    pub counts: ConsentCounts,
}

/// One row's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    DropWithdrawn,
    DropMissing,
    Keep {
        general_null: bool,
        separate_null: bool,
    },
}

impl Fate {
    /// The code a policy view's filter reads: 0 drop, 1 all released, 2 every consent-based
    /// field null, 3 only separate-consent fields null.
    pub fn code(self) -> i8 {
        match self {
            Fate::DropWithdrawn | Fate::DropMissing => 0,
            Fate::Keep {
                general_null: false,
                separate_null: false,
            } => 1,
            Fate::Keep {
                general_null: true, ..
            } => 2,
            Fate::Keep { .. } => 3,
        }
    }
}

impl ConsentGate {
    /// The gate for `plan` (built from `policy`), or a plan error when the subject column is
    /// absent from the input.
    pub fn new(
        policy: &Policy,
        plan: &super::Plan,
        ledger: Arc<Ledger>,
        keyring: &Keyring,
        input: &str,
    ) -> Result<ConsentGate> {
        let mut gate = Self::for_schema(policy, &plan.input_schema, ledger, keyring, input)?;
        gate.withhold = plan
            .columns
            .iter()
            .map(|c| gate.withhold_of(&c.rule.input_name))
            .collect();
        Ok(gate)
    }

    /// The gate over an input of `schema` (a policy view's table).
    pub fn for_schema(
        policy: &Policy,
        schema: &arrow::datatypes::Schema,
        ledger: Arc<Ledger>,
        keyring: &Keyring,
        input: &str,
    ) -> Result<ConsentGate> {
        let spec = policy
            .consent
            .as_ref()
            .ok_or_else(|| Error::Internal("a consent gate without a consent block".into()))?;
        let subject = schema.index_of(&spec.subject).map_err(|_| {
            Error::plan(
                input,
                format!(
                    "the consent block's subject column `{}` is not in the input; the ledger \
                     cannot be matched without it",
                    spec.subject
                ),
            )
        })?;
        let tokenizer = match spec.subject_ids {
            SubjectIds::Raw => None,
            SubjectIds::Tokenized => {
                let rule = policy.fields.get(&spec.subject).ok_or_else(|| {
                    Error::Internal("the consent subject has no field rule".into())
                })?;
                let t = schema.field(subject).data_type();
                let (k, _) = Kernel::build(&rule.action, t, keyring).map_err(|e| match e {
                    super::KernelBuildError::Key(e) => e,
                    super::KernelBuildError::Kernel(e) => Error::plan(input, e.to_string()),
                })?;
                Some(k)
            }
        };
        let has_general = spec
            .consent_fields
            .iter()
            .any(|f| !spec.separate_fields.contains(f));
        // Unlisted columns are either refused or dropped by the plan, never copied: nothing to
        // withhold there.
        debug_assert!(matches!(policy.unlisted, Unlisted::Error | Unlisted::Drop));
        Ok(ConsentGate {
            subject,
            tokenizer,
            ledger,
            withhold: Vec::new(),
            consent_fields: spec.consent_fields.clone(),
            separate_fields: spec.separate_fields.clone(),
            drop_rows: spec.on_withdrawn == OnWithdrawn::DropRow,
            fail_missing: spec.on_missing == OnMissing::Fail,
            separate_only: !has_general,
            has_separate: !spec.separate_fields.is_empty(),
            tally: ConsentTally::default(),
        })
    }

    /// How the field with this input name is gated.
    pub fn withhold_of(&self, input_name: &str) -> Withhold {
        if self.separate_fields.iter().any(|f| f == input_name) {
            Withhold::Separate
        } else if self.consent_fields.iter().any(|f| f == input_name) {
            Withhold::General
        } else {
            Withhold::Never
        }
    }

    /// Input column index of the subject.
    pub fn subject_column(&self) -> usize {
        self.subject
    }

    /// Judge every row of the subject column `raw`, in order; returns the rows matched.
    pub fn judge(&self, raw: &ArrayRef, mut each: impl FnMut(Fate)) -> Result<u64> {
        let ids = match &self.tokenizer {
            None => Arc::clone(raw),
            Some(k) => k.apply(raw).map_err(|e| Error::Consent {
                ledger: self.ledger.shown.clone(),
                message: format!("tokenizing the subject column to match the ledger: {e}"),
            })?,
        };
        let ids = crate::kernels::utf8(&ids).map_err(|_| Error::Consent {
            ledger: self.ledger.shown.clone(),
            message: format!(
                "the subject column has type {}, which cannot be matched as text",
                raw.data_type()
            ),
        })?;
        let ids = ids.as_string::<i32>();
        let mut matched = 0u64;
        let mut missing_fail = 0u64;
        for r in 0..ids.len() {
            let (g, s) = if ids.is_null(r) {
                (Standing::Missing, Standing::Missing)
            } else {
                self.ledger.standing(ids.value(r))?
            };
            if g != Standing::Missing {
                matched += 1;
            }
            let general_ok = g == Standing::Given;
            let separate_ok = general_ok && (!self.has_separate || s == Standing::Given);
            let all_removed = !general_ok || (self.separate_only && !separate_ok);
            // The reason a row loses its fields: the general standing, else the separate one.
            let reason = if general_ok { s } else { g };
            if all_removed && self.fail_missing && reason == Standing::Missing {
                missing_fail += 1;
            }
            each(if all_removed && self.drop_rows {
                match reason {
                    Standing::Missing => Fate::DropMissing,
                    _ => Fate::DropWithdrawn,
                }
            } else {
                Fate::Keep {
                    general_null: !general_ok,
                    separate_null: self.has_separate && !separate_ok,
                }
            });
        }
        if missing_fail > 0 {
            return Err(Error::Consent {
                ledger: self.ledger.shown.clone(),
                message: format!(
                    "{missing_fail} rows belong to subjects with no consent event for purpose \
                     `{}` as of {} (`on_missing: fail`); nothing was written. Record their \
                     consent in the ledger, or set `on_missing: drop`",
                    self.ledger.purpose,
                    self.ledger.as_of_text()
                ),
            });
        }
        Ok(matched)
    }

    /// Fold one row's fate into `c` (rows in, removals, withheld fields).
    pub fn count(&self, c: &mut ConsentCounts, fate: Fate) {
        c.rows_in += 1;
        match fate {
            Fate::DropWithdrawn => c.removed_withdrawn += 1,
            Fate::DropMissing => c.removed_missing += 1,
            Fate::Keep {
                general_null,
                separate_null,
            } => {
                c.general_withheld += u64::from(general_null);
                if self.has_separate {
                    c.separate_withheld += u64::from(general_null || separate_null);
                }
            }
        }
    }

    /// Decide every row of `batch` (the plan's input).
    pub(crate) fn decide(&self, batch: &RecordBatch) -> Result<Verdict> {
        let n = batch.num_rows();
        let mut c = ConsentCounts::default();
        let mut keep = BooleanBufferBuilder::new(n);
        let mut g_null = BooleanBufferBuilder::new(n);
        let mut s_null = BooleanBufferBuilder::new(n);
        c.matched = self.judge(batch.column(self.subject), |fate| {
            self.count(&mut c, fate);
            match fate {
                Fate::DropWithdrawn | Fate::DropMissing => keep.append(false),
                Fate::Keep {
                    general_null,
                    separate_null,
                } => {
                    keep.append(true);
                    g_null.append(general_null);
                    s_null.append(general_null || separate_null);
                }
            }
        })?;
        let keep = BooleanArray::new(keep.finish(), None);
        let all_kept = keep.true_count() == n;
        let g_null = BooleanArray::new(g_null.finish(), None);
        let s_null = BooleanArray::new(s_null.finish(), None);
        Ok(Verdict {
            keep: (!all_kept).then_some(keep),
            general_null: (g_null.true_count() > 0).then_some(g_null),
            separate_null: (s_null.true_count() > 0).then_some(s_null),
            counts: c,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_accepted_spelling_and_none_else() {
        let jan = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Some(jan));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Some(jan));
        assert_eq!(parse_time("2026-01-01 00:00:00"), Some(jan));
        assert_eq!(parse_time("2026-01-01T00:00:00.000001"), Some(jan + 1));
        assert_eq!(parse_time("2026-01-01"), Some(jan));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "01/02/2026",
            "2026-01-01T25:00:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert!(parse_as_of("soon").is_err());
        assert_eq!(parse_as_of("2026-01-01").unwrap().timestamp_micros(), jan);
    }

    #[test]
    fn a_single_file_digest_is_its_sha256_and_a_directory_hashes_its_manifest() {
        let one = vec![(String::new(), "ab".repeat(32))];
        assert_eq!(ledger_digest(&one), "ab".repeat(32));
        let two = vec![
            ("a/x.csv".to_string(), "00".repeat(32)),
            ("b.csv".to_string(), "11".repeat(32)),
        ];
        let manifest = format!("a/x.csv\t{}\nb.csv\t{}\n", "00".repeat(32), "11".repeat(32));
        assert_eq!(
            ledger_digest(&two),
            hex::encode(Sha256::digest(manifest.as_bytes()))
        );
        // One file of a directory is not the bare file: its path is part of the digest.
        let nested = vec![("x.csv".to_string(), "ab".repeat(32))];
        assert_ne!(ledger_digest(&nested), "ab".repeat(32));
    }

    /// Events straddle several flushes (7 events each under test): the outcome is the
    /// one-pass rule's, and a conflict settled in a later flush is gone.
    #[test]
    fn the_partitioned_build_agrees_across_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("subject_id,purpose,event,timestamp\n");
        for i in 0..40 {
            csv.push_str(&format!("s{i},p,given,2026-01-01\n"));
        }
        // s1: conflict at Jan 1, settled by a withdrawal in February, many rows later.
        csv.push_str("s1,p,withdrawn,2026-01-01\n");
        for i in 0..20 {
            csv.push_str(&format!("s{i},p,given,2026-01-01\n"));
        }
        csv.push_str("s1,p,withdrawn,2026-02-01\ns2,p,withdrawn,2026-03-01\n");
        let path = dir.path().join("l.csv");
        std::fs::write(&path, &csv).unwrap();
        let policy = crate::policy::Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\n\
             consent: { ledger: l.csv, subject: id, purpose: p }\nfields:\n  \
             id: { action: keep, basis: contract }\n  v: { action: keep, basis: consent }\n",
            "p.yaml",
        )
        .unwrap();
        let spec = policy.consent.as_ref().unwrap();
        let files = vec![(String::new(), path.clone())];
        let at = |d: &str| parse_as_of(d).unwrap();
        let l = read_ledger("l.csv", &files, spec, at("2026-06-01"), 1 << 30).unwrap();
        assert_eq!(l.subjects, 40);
        assert_eq!(l.duplicates, 20);
        assert_eq!(l.standing("s1").unwrap().0, Standing::Withdrawn);
        assert_eq!(l.standing("s2").unwrap().0, Standing::Withdrawn);
        assert_eq!(l.standing("s3").unwrap().0, Standing::Given);
        assert_eq!(l.standing("s40").unwrap().0, Standing::Missing);
        // Before the settling event, s1's conflict decides: an error at its row (41).
        let e = read_ledger("l.csv", &files, spec, at("2026-01-15"), 1 << 30)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 41:"), "{e}");
    }

    fn policy_p() -> crate::policy::Policy {
        crate::policy::Policy::from_yaml_str(
            "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\n\
             consent: { ledger: l.csv, subject: id, purpose: p }\nfields:\n  \
             id: { action: keep, basis: contract }\n  v: { action: keep, basis: consent }\n",
            "p.yaml",
        )
        .unwrap()
    }

    /// Enough subjects for several blocks in every partition on disk (128 records a block,
    /// 256 partitions), with withdrawals, separate consent, duplicates and later events: every
    /// subject's standing and every count is the map's.
    #[test]
    fn a_ledger_reduced_on_disk_spans_blocks_and_agrees_with_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let n = 100_000;
        let mut csv = String::from("subject_id,purpose,event,timestamp,consent_type\n");
        for i in 0..n {
            csv.push_str(&format!("s{i},p,given,2026-01-01,consent\n"));
            if i % 3 == 0 {
                let ev = if i % 2 == 0 { "withdrawn" } else { "given" };
                csv.push_str(&format!("s{i},p,{ev},2026-02-01,consent\n"));
            }
            if i % 5 == 0 {
                csv.push_str(&format!("s{i},p,given,2026-01-01,separate_consent\n"));
            }
            if i % 11 == 0 {
                csv.push_str(&format!("s{i},p,given,2026-01-01,consent\n"));
            }
            if i % 13 == 0 {
                csv.push_str(&format!("s{i},p,withdrawn,2027-01-01,consent\n"));
            }
        }
        let path = dir.path().join("l.csv");
        std::fs::write(&path, &csv).unwrap();
        let policy = policy_p();
        let spec = policy.consent.as_ref().unwrap();
        let files = vec![(String::new(), path)];
        let at = parse_as_of("2026-06-01").unwrap();
        let mem = read_ledger("l.csv", &files, spec, at, 1 << 30).unwrap();
        let disk = read_ledger("l.csv", &files, spec, at, 0).unwrap();
        // 2 MiB: too small for the map (~11 MB), enough for the sorted records (1.7 MB).
        let held = read_ledger("l.csv", &files, spec, at, 2 << 20).unwrap();
        // One thread (`--threads 1`), in memory and on disk: the same outcome.
        let one = read_ledger_on("l.csv", &files, spec, at, 1 << 30, 1).unwrap();
        let one_disk = read_ledger_on("l.csv", &files, spec, at, 0, 1).unwrap();
        assert!(mem.spilled.is_none());
        assert_eq!(disk.spilled, Some(n * 17));
        assert_eq!(held.spilled, Some(n * 17));
        let State::Disk(d) = &disk.state else {
            panic!("not on disk")
        };
        assert!(!d.held());
        assert!(d.blocks().iter().all(|b| *b >= 2), "{:?}", d.blocks());
        let State::Disk(h) = &held.state else {
            panic!("not on disk")
        };
        assert!(h.held());
        let counts = |l: &Ledger| {
            (
                l.subjects,
                l.duplicates,
                l.events,
                l.purpose_events,
                l.later_events,
            )
        };
        assert_eq!(counts(&mem), counts(&disk));
        assert_eq!(counts(&mem), counts(&held));
        assert_eq!(counts(&mem), counts(&one));
        assert_eq!(counts(&mem), counts(&one_disk));
        assert_eq!(mem.subjects, n);
        assert!(mem.duplicates > 0 && mem.later_events > 0);
        let mut withdrawn = 0;
        for i in 0..n + 1000 {
            let id = format!("s{i}");
            let (m, d) = (mem.standing(&id).unwrap(), disk.standing(&id).unwrap());
            assert_eq!(m, d, "{id}");
            assert_eq!(m, held.standing(&id).unwrap(), "{id}");
            assert_eq!(m, one.standing(&id).unwrap(), "{id}");
            assert_eq!(m, one_disk.standing(&id).unwrap(), "{id}");
            withdrawn += usize::from(m.0 == Standing::Withdrawn);
        }
        // Every sixth subject withdrew in February.
        assert_eq!(withdrawn, (0..n).filter(|i| i % 6 == 0).count());
    }

    /// A directory ledger with a conflict in each file: both paths name the same file and row
    /// (the first in reading order).
    #[test]
    fn conflicts_across_files_are_named_alike_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let head = "subject_id,purpose,event,timestamp\n";
        let a = format!(
            "{head}s0,p,given,2026-01-01\ns1,p,given,2026-01-01\ns1,p,withdrawn,2026-01-01\n"
        );
        let b = format!("{head}s2,p,withdrawn,2026-01-01\ns2,p,given,2026-01-01\n");
        std::fs::write(dir.path().join("a.csv"), a).unwrap();
        std::fs::write(dir.path().join("b.csv"), b).unwrap();
        let files = vec![
            ("a.csv".to_string(), dir.path().join("a.csv")),
            ("b.csv".to_string(), dir.path().join("b.csv")),
        ];
        let policy = policy_p();
        let spec = policy.consent.as_ref().unwrap();
        let at = parse_as_of("2026-06-01").unwrap();
        let e = |budget| {
            read_ledger("l", &files, spec, at, budget)
                .unwrap_err()
                .to_string()
        };
        let (mem, disk) = (e(1 << 30), e(0));
        assert_eq!(mem, disk);
        assert!(mem.contains("file a.csv, row 3:"), "{mem}");
    }

    #[test]
    fn sizes_in_bytes_and_binary_units() {
        assert_eq!(parse_size("1").unwrap(), 1);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size(" 2 GiB ").unwrap(), 2 << 30);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1tb").unwrap(), 1 << 40);
        for bad in ["", "lots", "1.5GiB", "-1", "1PiB", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("20000000T").is_err());
    }

    #[test]
    fn fate_codes_are_what_policy_views_filter_on() {
        assert_eq!(Fate::DropWithdrawn.code(), 0);
        assert_eq!(Fate::DropMissing.code(), 0);
        let keep = |g, s| Fate::Keep {
            general_null: g,
            separate_null: s,
        };
        assert_eq!(keep(false, false).code(), 1);
        assert_eq!(keep(true, true).code(), 2);
        assert_eq!(keep(true, false).code(), 2);
        assert_eq!(keep(false, true).code(), 3);
    }

    #[test]
    fn microseconds_of_every_time_type() {
        use arrow::array::{Date32Array, StringArray, TimestampMillisecondArray};
        let ms: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(vec![Some(1_000), None]).with_timezone("+08:00"),
        );
        assert_eq!(micros(&ms).unwrap(), [Some(1_000_000), None]);
        let d: ArrayRef = Arc::new(Date32Array::from(vec![1]));
        assert_eq!(micros(&d).unwrap(), [Some(86_400_000_000)]);
        // Dates whose microseconds overflow are unreadable times, not wrapped ones.
        let far: ArrayRef = Arc::new(Date32Array::from(vec![Some(1), None, Some(i32::MAX)]));
        assert_eq!(micros(&far), Err(2));
        let far: ArrayRef = Arc::new(arrow::array::Date64Array::from(vec![i64::MIN]));
        assert_eq!(micros(&far), Err(0));
        let s: ArrayRef = Arc::new(StringArray::from(vec![
            Some("1970-01-01T00:00:01Z"),
            Some(" "),
        ]));
        assert_eq!(micros(&s).unwrap(), [Some(1_000_000), None]);
        let bad: ArrayRef = Arc::new(StringArray::from(vec!["1970-01-01", "never"]));
        assert_eq!(micros(&bad), Err(1));
    }
}
