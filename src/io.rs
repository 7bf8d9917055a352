//! Reading and writing record batches: Parquet, CSV and NDJSON in; Parquet or CSV out.
//!
//! Readers stream batch by batch. Writers write to a temporary file beside the destination,
//! which [`AtomicFile::commit`] renames into place; dropping it uncommitted deletes it, so a
//! failed run leaves no partial output.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};

/// Data file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
    Ndjson,
}

impl Format {
    /// Guess from a file extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" | "tsv" => Some(Format::Csv),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// The data files under `dir`, recursively and sorted, skipping hidden entries; only those of
/// `format` when given. A directory without data files is an error.
///
/// Symbolic links to directories are not followed: a link such as `current -> .` would read
/// every file again and again (inflating k-anonymity classes), and a link can reach outside the
/// input. Links to files are read like files, but a file reached twice (through a link or a
/// hard link) is refused: its records would count twice.
pub fn data_files(dir: &Path, format: Option<Format>) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let p = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&p, e))?;
            if kind.is_dir() {
                walk(&p, out)?;
            } else if kind.is_symlink() && p.is_dir() {
                continue;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.retain(|p| match format {
        Some(f) => Format::from_path(p) == Some(f),
        None => Format::from_path(p).is_some(),
    });
    files.sort();
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "{} contains no {} files",
            dir.display(),
            match format {
                Some(f) => format!(".{}", f.extension()),
                None => ".parquet, .csv or .ndjson".into(),
            }
        )));
    }
    let mut seen: std::collections::HashMap<PathBuf, &PathBuf> = Default::default();
    for f in &files {
        let key = match inode(f) {
            Some((dev, ino)) => PathBuf::from(format!("{dev}:{ino}")),
            None => identity(f),
        };
        if let Some(first) = seen.insert(key, f) {
            return Err(Error::Usage(format!(
                "{} and {} are the same file (a link); its records would be read twice. \
                 Remove the link from {}",
                first.display(),
                f.display(),
                dir.display()
            )));
        }
    }
    Ok(files)
}

/// The files of a table given as a file or a directory of files.
pub fn table_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        data_files(path, None)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Options for reading text formats.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub batch_size: usize,
    /// CSV delimiter; `,` (the default) means tab for a `.tsv` file.
    pub delimiter: u8,
    /// Rows read to infer CSV/NDJSON column types.
    pub infer_rows: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_size: 8192,
            delimiter: b',',
            infer_rows: 10_000,
        }
    }
}

/// Largest accepted batch size: readers allocate a batch up front, so a huge one aborts.
pub const MAX_BATCH_ROWS: usize = 1 << 20;

impl ReadOptions {
    /// Refuse a batch size the readers cannot allocate.
    pub fn check(&self) -> Result<()> {
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_ROWS {
            return Err(Error::Usage(format!(
                "--batch-size {} is out of range; use 1 to {MAX_BATCH_ROWS} rows (default 8192)",
                self.batch_size
            )));
        }
        Ok(())
    }

    /// The delimiter of the CSV file at `path`: tab for `.tsv` unless another was chosen.
    pub fn delimiter_for(&self, path: &Path) -> u8 {
        default_delimiter(path, self.delimiter)
    }
}

/// `delimiter`, except that the default `,` means tab for a `.tsv` path.
pub fn default_delimiter(path: &Path, delimiter: u8) -> u8 {
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    if tsv && delimiter == b',' {
        b'\t'
    } else {
        delimiter
    }
}

/// A batch stream that can be moved to a reader thread.
pub type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// An opened input: its schema, its batches and (when known) its row count.
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
    pub schema: SchemaRef,
    pub rows: Option<u64>,
    file: File,
    options: ReadOptions,
}

/// `f()`, with a panic of the Parquet reader (it asserts on some corrupt metadata) turned
/// into a data error naming the file.
pub(crate) fn unpanicked<T>(shown: &str, f: impl FnOnce() -> T) -> Result<T> {
    crate::error::catch_panic(f).map_err(|_| {
        Error::data(
            shown,
            "corrupt Parquet metadata (the reader rejected it); the file is damaged or not a Parquet file",
        )
    })
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}

impl Input {
    /// Open `path` and learn its schema without reading the data (text formats read a sample
    /// to infer types). `override_schema` adjusts the inferred text schema (policy `type:`).
    pub fn open(
        path: &Path,
        format: Format,
        options: &ReadOptions,
        override_schema: &dyn Fn(&Schema) -> SchemaRef,
    ) -> Result<Input> {
        options.check()?;
        let options = &ReadOptions {
            delimiter: options.delimiter_for(path),
            ..options.clone()
        };
        let mut file = open_file(path)?;
        let shown = path.display().to_string();
        let (schema, rows) = match format {
            Format::Parquet => {
                let f = file.try_clone().map_err(|e| Error::io(path, e))?;
                let b = unpanicked(&shown, || ParquetRecordBatchReaderBuilder::try_new(f))?
                    .map_err(|e| {
                        Error::data(&shown, format!("not a readable Parquet file: {e}"))
                    })?;
                let rows = b.metadata().file_metadata().num_rows() as u64;
                (Arc::clone(b.schema()), Some(rows))
            }
            Format::Csv => {
                let fmt = csv_format(options);
                let (schema, _) = fmt
                    .infer_schema(BufReader::new(&mut file), Some(options.infer_rows))
                    .map_err(|e| {
                        Error::data(
                            &shown,
                            format!(
                                "cannot read the CSV header and types: {}",
                                csv_message(&e, &Schema::empty())
                            ),
                        )
                    })?;
                if schema.fields().is_empty() {
                    return Err(Error::data(&shown, "the CSV file has no header row"));
                }
                (override_schema(&nulls_as_strings(&schema)), None)
            }
            Format::Ndjson => {
                let (schema, _) = arrow::json::reader::infer_json_schema(
                    BufReader::new(&mut file),
                    Some(options.infer_rows),
                )
                .map_err(|e| {
                    Error::data(
                        &shown,
                        format!("cannot infer NDJSON types: {}", json_message(&e, None)),
                    )
                })?;
                (override_schema(&schema), None)
            }
        };
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(path, e))?;
        Ok(Input {
            path: path.to_path_buf(),
            format,
            schema,
            rows,
            file,
            options: options.clone(),
        })
    }

    /// Stream the batches.
    pub fn batches(self) -> Result<BatchIter> {
        let shown = self.path.display().to_string();
        let opts = self.options;
        match self.format {
            Format::Parquet => {
                let file = self.file;
                let mut reader = unpanicked(&shown, || {
                    ParquetRecordBatchReaderBuilder::try_new(file)
                        .and_then(|b| b.with_batch_size(opts.batch_size).build())
                })?
                .map_err(|e| Error::data(&shown, format!("not a readable Parquet file: {e}")))?;
                Ok(Box::new(std::iter::from_fn(move || {
                    unpanicked(&shown, || reader.next())
                        .map(|n| {
                            n.map(|r| {
                                r.map_err(|e| {
                                    Error::data(
                                        &shown,
                                        format!("corrupt or unreadable Parquet data: {e}"),
                                    )
                                })
                            })
                        })
                        .unwrap_or_else(|e| Some(Err(e)))
                })))
            }
            Format::Csv => {
                let schema = self.schema.clone();
                let reader = arrow::csv::ReaderBuilder::new(self.schema)
                    .with_format(csv_format(&opts))
                    .with_batch_size(opts.batch_size)
                    .build(BufReader::with_capacity(1 << 20, self.file))
                    .map_err(|e| Error::data(&shown, csv_message(&e, &schema)))?;
                Ok(Box::new(reader.map(move |r| {
                    r.map_err(|e| {
                        Error::data(
                            &shown,
                            format!("bad CSV data: {}", csv_message(&e, &schema)),
                        )
                    })
                })))
            }
            Format::Ndjson => {
                // Strict: a key missing from the inferred columns is an error, not dropped.
                let reader = arrow::json::ReaderBuilder::new(self.schema)
                    .with_batch_size(opts.batch_size)
                    .with_strict_mode(true)
                    .build(BufReader::with_capacity(1 << 20, self.file))
                    .map_err(|e| Error::data(&shown, json_message(&e, None)))?;
                let mut done = 0u64;
                Ok(Box::new(reader.map(move |r| match r {
                    Ok(b) => {
                        done += b.num_rows() as u64;
                        Ok(b)
                    }
                    Err(e) => {
                        let at = (done + 1, done + opts.batch_size as u64, opts.infer_rows);
                        Err(Error::data(
                            &shown,
                            format!("bad NDJSON data: {}", json_message(&e, Some(at))),
                        ))
                    }
                })))
            }
        }
    }
}

/// A CSV reading error without data: Arrow's parse errors quote the value and the whole row,
/// so only the line, the column and the expected type are kept.
fn csv_message(e: &arrow::error::ArrowError, schema: &Schema) -> String {
    use arrow::error::ArrowError as A;
    match e {
        // Positions and counts only (arrow-csv and the csv crate).
        A::CsvError(m) => m.clone(),
        A::IoError(..) | A::ExternalError(_) => e.to_string(),
        A::ParseError(m) => {
            // The templates of arrow-csv's parse errors; anything else keeps no position.
            let at = regex::Regex::new(
                r"^Error parsing column (\d+) at line (\d+): |' as type '[^']*' for column (\d+) at line (\d+)\. Row data: '",
            )
            .ok()
            .and_then(|re| re.captures(m));
            let num = |i: usize, j: usize| {
                at.as_ref()
                    .and_then(|c| c.get(i).or_else(|| c.get(j)))
                    .and_then(|d| d.as_str().parse::<usize>().ok())
            };
            let (col, line) = (num(1, 3), num(2, 4));
            let mut out = String::new();
            // Arrow counts lines from 0 at the header; people count from 1.
            if let Some(l) = line {
                out.push_str(&format!("line {}, ", l + 1));
            }
            match col.and_then(|c| schema.fields().get(c).map(|f| (c, f))) {
                Some((c, f)) => out.push_str(&format!(
                    "column {} `{}`: a value is not a valid {}",
                    c + 1,
                    f.name().escape_debug(),
                    f.data_type()
                )),
                None => out.push_str("a value does not fit its column's type"),
            }
            out.push_str(
                " (the value is not shown); fix it, or declare the column's `type:` in the policy",
            );
            out
        }
        _ => "the data could not be decoded (details withheld: they may quote a value)".into(),
    }
}

/// An NDJSON reading error without data. `at` is the first and last record of the failing
/// batch and the number of records the columns were inferred from.
fn json_message(e: &arrow::error::ArrowError, at: Option<(u64, u64, usize)>) -> String {
    let arrow::error::ArrowError::JsonError(m) = e else {
        return match e {
            arrow::error::ArrowError::IoError(..) => e.to_string(),
            _ => "the data could not be decoded (details withheld: they may quote a value)".into(),
        };
    };
    let mut rest = m.as_str();
    let mut fields = Vec::new();
    while let Some(r) = rest.strip_prefix("whilst decoding field '") {
        let Some(end) = r.find("': ") else { break };
        fields.push(r[..end].escape_debug().to_string());
        rest = &r[end + 3..];
    }
    let place = match at {
        Some((a, b, _)) => format!("in records {a}-{b}: "),
        None => String::new(),
    };
    let field = match fields.is_empty() {
        true => String::new(),
        false => format!("field `{}`: ", fields.join(".")),
    };
    let what = if let Some(key) = rest
        .strip_prefix("column '")
        .and_then(|r| r.strip_suffix("' missing from schema"))
    {
        let seen = at.map(|(_, _, n)| n).unwrap_or(10_000);
        format!(
            "key `{}` is not among the columns inferred from the first {seen} records; \
             put a record that has every key first",
            key.escape_debug()
        )
    } else if let Some(r) = rest.strip_prefix("expected ") {
        let ty = r.split(" got ").next().unwrap_or("");
        format!("a value is not a valid {ty} (the value is not shown)")
    } else if rest.starts_with("failed to parse ") {
        let ty = rest.rsplit(" as ").next().unwrap_or("");
        format!("a value is not a valid {ty} (the value is not shown)")
    } else if let Some(ctx) = rest
        .strip_prefix("Encountered unexpected '")
        .and_then(|r| r.split_once("' whilst "))
    {
        format!("malformed JSON: an unexpected character whilst {}", ctx.1)
    } else if rest.starts_with("Truncated record")
        || rest.starts_with("Incompatible type found during schema inference")
        || rest.starts_with("Not valid JSON: ")
    {
        rest.to_string()
    } else {
        "the data could not be decoded (details withheld: they may quote a value)".into()
    };
    format!("{place}{field}{what}")
}

/// Columns with no values to infer from (empty file, all empty) are read as strings.
fn nulls_as_strings(schema: &Schema) -> Schema {
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            arrow::datatypes::DataType::Null => f
                .as_ref()
                .clone()
                .with_data_type(arrow::datatypes::DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new(fields)
}

fn csv_format(options: &ReadOptions) -> arrow::csv::reader::Format {
    arrow::csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(options.delimiter)
}

/// The directory `dest` goes into (`.` for a bare name).
fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hidden sibling of `dest`: `.NAME.cloakline-KIND-PID-RANDOM` (`.NAME.cloakline-lock` when
/// `unique` is false). Built from the raw name, so a non-UTF-8 name stays as it is.
fn sibling(dest: &Path, kind: &str, unique: bool) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(dest.file_name().unwrap_or(std::ffi::OsStr::new("output")));
    name.push(".cloakline-");
    name.push(kind);
    if unique {
        name.push(format!(
            "-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
    }
    parent_dir(dest).join(name)
}

/// A temporary name beside `dest` for this process.
pub(crate) fn temp_sibling(dest: &Path) -> PathBuf {
    sibling(dest, "tmp", true)
}

/// Directories created for an output; removed again (when still empty) unless kept.
pub struct CreatedDirs {
    dirs: Vec<PathBuf>,
}

impl CreatedDirs {
    /// Create the missing parent directories of `dest`.
    pub fn for_output(dest: &Path) -> Result<CreatedDirs> {
        let dir = parent_dir(dest);
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        let mut created = CreatedDirs { dirs: Vec::new() };
        for d in missing {
            std::fs::create_dir(&d).map_err(|e| Error::io(&d, e))?;
            created.dirs.push(d);
        }
        Ok(created)
    }

    /// The run succeeded: keep them.
    pub fn keep(mut self) {
        self.dirs.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A file written under a temporary name and renamed into place on [`commit`](Self::commit).
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl AtomicFile {
    /// Create a temporary file beside `dest`, creating missing parent directories.
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(dest);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let tmp = temp_sibling(dest);
        let file = File::create_new(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
            committed: false,
        })
    }

    /// The open temporary file.
    pub fn file(&self) -> Result<File> {
        match &self.file {
            Some(f) => f.try_clone().map_err(|e| Error::io(&self.tmp, e)),
            None => Err(Error::io(
                &self.tmp,
                std::io::Error::other("already closed"),
            )),
        }
    }

    /// Path of the temporary file (to hash it before commit).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flush to disk; [`commit_all`] renames it into place with the run's other outputs.
    pub fn stage(mut self) -> Result<Staged> {
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        }
        self.committed = true;
        Ok(Staged::new(self.tmp.clone(), self.dest.clone()))
    }

    /// Flush to disk and rename into place.
    pub fn commit(self) -> Result<()> {
        commit_all(vec![self.stage()?])
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A finished temporary file or directory waiting to be renamed onto its destination.
/// Dropping it uncommitted deletes it.
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    placed: bool,
}

impl Staged {
    pub fn new(tmp: PathBuf, dest: PathBuf) -> Staged {
        Staged {
            tmp,
            dest,
            placed: false,
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.placed {
            remove_entry(&self.tmp);
        }
    }
}

/// Remove a file, a link or a directory tree (a link is removed, not followed).
fn remove_entry(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// What stood at a destination before the commit.
struct Previous {
    backup: PathBuf,
    /// Renamed away (directories) rather than hard-linked (files, which stay in place).
    moved: bool,
}

/// Keep the current `dest` (if any) under a backup name until the commit is over.
fn keep_aside(dest: &Path) -> Result<Option<Previous>> {
    let meta = match std::fs::symlink_metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(dest, e)),
    };
    let backup = sibling(dest, "old", true);
    if !meta.is_dir() && std::fs::hard_link(dest, &backup).is_ok() {
        return Ok(Some(Previous {
            backup,
            moved: false,
        }));
    }
    std::fs::rename(dest, &backup).map_err(|e| Error::io(dest, e))?;
    Ok(Some(Previous {
        backup,
        moved: true,
    }))
}

/// Put `dest` back as it was: the staged item returns to its temporary name (deleted on drop)
/// and the previous file or directory to `dest`.
fn restore(s: &Staged, prev: Option<&Previous>, placed: bool) {
    match prev {
        Some(p) if !p.moved => {
            // A file that never left: renaming the backup over `dest` restores it atomically.
            if placed {
                let _ = std::fs::rename(&p.backup, &s.dest);
            } else {
                let _ = std::fs::remove_file(&p.backup);
            }
        }
        _ => {
            if placed {
                let _ = std::fs::rename(&s.dest, &s.tmp);
            }
            if let Some(p) = prev {
                let _ = std::fs::rename(&p.backup, &s.dest);
            }
        }
    }
}

/// Rename every staged output into place, all or none: what stood at each destination is kept
/// aside first and put back if a later rename fails, so a run never leaves data without its
/// sidecar, nor a sidecar describing other data.
pub fn commit_all(mut staged: Vec<Staged>) -> Result<()> {
    let mut prev: Vec<Option<Previous>> = Vec::new();
    for s in &staged {
        match keep_aside(&s.dest) {
            Ok(p) => prev.push(p),
            Err(e) => {
                for (s, p) in staged.iter().zip(&prev) {
                    restore(s, p.as_ref(), false);
                }
                return Err(e);
            }
        }
    }
    for (i, item) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(&item.tmp, &item.dest) {
            for (k, (s, p)) in staged.iter().zip(&prev).enumerate() {
                restore(s, p.as_ref(), k < i);
            }
            return Err(Error::io(&item.dest, e));
        }
    }
    for (s, p) in staged.iter_mut().zip(prev) {
        s.placed = true;
        if let Some(p) = p {
            remove_entry(&p.backup);
        }
        // Make the renames durable (best effort: not every platform can sync a directory).
        if let Ok(d) = File::open(parent_dir(&s.dest)) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// An exclusive lock beside an output, held for a run: a second run on the same output fails
/// at once instead of pairing its data with the other run's sidecar. The lock file is removed
/// when the lock is released.
pub struct OutputLock {
    path: PathBuf,
    _file: Option<File>,
}

impl OutputLock {
    pub fn acquire(dest: &Path) -> Result<OutputLock> {
        let path = sibling(dest, "lock", false);
        for _ in 0..16 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::io(
                        dest,
                        std::io::Error::new(
                            std::io::ErrorKind::WouldBlock,
                            format!(
                                "another cloakline run is writing this output (it holds {}); \
                                 wait for it to finish or choose another output",
                                path.display()
                            ),
                        ),
                    ));
                }
                // No locking on this file system: run unlocked rather than not at all.
                Err(std::fs::TryLockError::Error(e))
                    if e.kind() == std::io::ErrorKind::Unsupported =>
                {
                    return Ok(OutputLock { path, _file: None });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            // The previous holder removes the file as it finishes; a lock on a removed file
            // guards nothing, so lock the file now at the path instead.
            if same_inode(&file, &path) {
                return Ok(OutputLock {
                    path,
                    _file: Some(file),
                });
            }
        }
        Err(Error::io(
            &path,
            std::io::Error::other("the lock file keeps being replaced; retry"),
        ))
    }
}

#[cfg(unix)]
fn same_inode(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held, so nobody locks a file that is about to vanish.
        if self._file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Clean up after runs that were killed (kill -9, power loss, an allocation abort) while
/// writing `dest`: their temporary files and directories are removed, and a previous output
/// they had set aside mid-commit is put back when `dest` is missing. Only entries of processes
/// that no longer exist are touched; without `/proc` nothing is. Call it holding the
/// [`OutputLock`] of `dest`.
pub fn remove_stale_temps(dest: &Path) -> Result<()> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return Ok(());
    }
    let dir = parent_dir(dest);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(dest.file_name().unwrap_or(std::ffi::OsStr::new("output")));
    prefix.push(".cloakline-");
    let prefix = prefix.as_encoded_bytes().to_vec();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.as_encoded_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let (old, rest) = match (rest.strip_prefix(b"tmp-"), rest.strip_prefix(b"old-")) {
            (Some(r), _) => (false, r),
            (_, Some(r)) => (true, r),
            _ => continue,
        };
        let Some((pid, tail)) = std::str::from_utf8(rest)
            .ok()
            .and_then(|r| r.split_once('-'))
        else {
            continue;
        };
        let well_formed = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && tail.len() == 8
            && tail.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed || proc.join(pid).exists() {
            continue;
        }
        let path = entry.path();
        if old && std::fs::symlink_metadata(dest).is_err() {
            std::fs::rename(&path, dest).map_err(|e| Error::io(dest, e))?;
        } else {
            remove_entry(&path);
        }
    }
    Ok(())
}

/// Write a small file atomically through a closure.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let af = AtomicFile::create(path)?;
    let mut f = af.file()?;
    write(&mut f).map_err(|e| Error::io(path, e))?;
    drop(f);
    af.commit()
}

/// Output writer options.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub format: Format,
    pub delimiter: u8,
    pub zstd_level: i32,
    /// Columns written without dictionary encoding or statistics (tokens and envelopes:
    /// high-cardinality and random-looking, so both only cost time).
    pub no_dictionary: Vec<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            format: Format::Parquet,
            delimiter: b',',
            zstd_level: 1,
            no_dictionary: Vec::new(),
        }
    }
}

/// One encoded row group (Parquet column chunks) or block of CSV lines.
pub enum Encoded {
    Parquet(Vec<ArrowColumnChunk>),
    Csv(Vec<u8>),
}

/// Encodes groups of batches; shared by the worker threads, so encoding (and compression)
/// runs in parallel. Groups are independent: each becomes one Parquet row group.
pub struct Encoder {
    kind: EncoderKind,
    schema: SchemaRef,
}

enum EncoderKind {
    Parquet(Arc<ArrowRowGroupWriterFactory>),
    Csv(u8),
}

/// Appends encoded groups to the output file, in order.
pub struct Sink {
    kind: SinkKind,
    /// Named in write errors (a full disk says which output).
    path: PathBuf,
}

enum SinkKind {
    Parquet(SerializedFileWriter<HashingWriter>),
    Csv(std::io::BufWriter<HashingWriter>),
}

/// Writes to a file while computing its SHA-256, so the output need not be read back.
pub struct HashingWriter {
    file: std::io::BufWriter<File>,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl HashingWriter {
    fn new(file: File) -> Self {
        HashingWriter {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: sha2::Sha256::default(),
            bytes: 0,
        }
    }

    fn finish(mut self) -> std::io::Result<(String, u64)> {
        use sha2::Digest;
        std::io::Write::flush(&mut self.file)?;
        Ok((hex::encode(self.hasher.finalize()), self.bytes))
    }
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Open an output file for writing: the encoder for the workers and the sink for the writer.
pub fn open_writer(
    file: File,
    schema: SchemaRef,
    options: &WriteOptions,
) -> Result<(Encoder, Sink)> {
    open_writer_at(file, Path::new("<output>"), schema, options)
}

/// A write error naming the output (Parquet wraps I/O errors such as a full disk).
fn write_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(b) => match b.downcast::<std::io::Error>() {
            Ok(io) => Error::io(path, *io),
            Err(b) => Error::io(path, std::io::Error::other(b.to_string())),
        },
        other => Error::io(path, std::io::Error::other(other.to_string())),
    }
}

/// [`open_writer`] for the output at `path` (named in write errors).
pub fn open_writer_at(
    file: File,
    path: &Path,
    schema: SchemaRef,
    options: &WriteOptions,
) -> Result<(Encoder, Sink)> {
    let path = path.to_path_buf();
    match options.format {
        Format::Parquet => {
            let level = ZstdLevel::try_new(options.zstd_level)?;
            let mut props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(level))
                .set_created_by(format!("cloakline {}", env!("CARGO_PKG_VERSION")));
            for c in &options.no_dictionary {
                // Random-looking values: a dictionary never pays, and min/max statistics
                // neither prune anything nor should reveal anything.
                props = props
                    .set_column_dictionary_enabled(ColumnPath::from(c.as_str()), false)
                    .set_column_statistics_enabled(
                        ColumnPath::from(c.as_str()),
                        EnabledStatistics::None,
                    );
            }
            // A small dictionary page limit makes high-cardinality columns fall back to plain
            // encoding early, while low-cardinality ones (labels, cities) still fit.
            let props = props.set_dictionary_page_size_limit(128 * 1024).build();
            let writer =
                ArrowWriter::try_new(HashingWriter::new(file), schema.clone(), Some(props))
                    .map_err(|e| write_error(&path, e))?;
            let (file_writer, factory) = writer
                .into_serialized_writer()
                .map_err(|e| write_error(&path, e))?;
            Ok((
                Encoder {
                    kind: EncoderKind::Parquet(Arc::new(factory)),
                    schema,
                },
                Sink {
                    kind: SinkKind::Parquet(file_writer),
                    path,
                },
            ))
        }
        Format::Csv => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, HashingWriter::new(file));
            // The header line: an empty batch through a writer with headers on.
            let mut header = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_delimiter(options.delimiter)
                .build(Vec::new());
            header.write(&RecordBatch::new_empty(schema.clone()))?;
            std::io::Write::write_all(&mut out, &header.into_inner())
                .map_err(|e| Error::io(&path, e))?;
            Ok((
                Encoder {
                    kind: EncoderKind::Csv(options.delimiter),
                    schema,
                },
                Sink {
                    kind: SinkKind::Csv(out),
                    path,
                },
            ))
        }
        Format::Ndjson => Err(Error::Usage(
            "NDJSON output is not supported; write Parquet or CSV".into(),
        )),
    }
}

impl Encoder {
    /// Encode a group of batches (all with the output schema).
    pub fn encode(&self, batches: &[RecordBatch]) -> Result<Encoded> {
        match &self.kind {
            EncoderKind::Parquet(factory) => {
                let mut writers = factory.create_column_writers(0)?;
                for batch in batches {
                    let mut next = writers.iter_mut();
                    for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
                        for leaf in compute_leaves(field, column)? {
                            let w = next.next().ok_or_else(|| {
                                Error::Internal("more Parquet leaves than column writers".into())
                            })?;
                            w.write(&leaf)?;
                        }
                    }
                }
                let chunks = writers
                    .into_iter()
                    .map(|w| w.close())
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(Encoded::Parquet(chunks))
            }
            EncoderKind::Csv(delimiter) => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .with_delimiter(*delimiter)
                    .build(Vec::new());
                for b in batches {
                    w.write(b)?;
                }
                Ok(Encoded::Csv(w.into_inner()))
            }
        }
    }
}

impl Sink {
    /// Append one encoded group.
    pub fn append(&mut self, encoded: Encoded) -> Result<()> {
        match (&mut self.kind, encoded) {
            (SinkKind::Parquet(w), Encoded::Parquet(chunks)) => {
                let path = &self.path;
                let mut rg = w.next_row_group().map_err(|e| write_error(path, e))?;
                for c in chunks {
                    c.append_to_row_group(&mut rg)
                        .map_err(|e| write_error(path, e))?;
                }
                rg.close().map_err(|e| write_error(path, e))?;
            }
            (SinkKind::Csv(w), Encoded::Csv(bytes)) => {
                std::io::Write::write_all(w, &bytes).map_err(|e| Error::io(&self.path, e))?;
            }
            _ => {
                return Err(Error::Internal(
                    "encoded group does not match the output format".into(),
                ));
            }
        }
        Ok(())
    }

    /// Finish the file, embedding `footer` (key, value) metadata where the format allows.
    /// Returns the SHA-256 (hex) and size of everything written.
    pub fn finish(self, footer: Option<(String, String)>) -> Result<(String, u64)> {
        let hashing = match self.kind {
            SinkKind::Parquet(mut w) => {
                if let Some((k, v)) = footer {
                    w.append_key_value_metadata(KeyValue::new(k, v));
                }
                // Writes the footer and hands back the writer.
                w.into_inner().map_err(|e| write_error(&self.path, e))?
            }
            SinkKind::Csv(w) => w
                .into_inner()
                .map_err(|e| Error::io(&self.path, e.into_error()))?,
        };
        hashing.finish().map_err(|e| Error::io(&self.path, e))
    }
}

/// A sequential writer for simple paths (e.g. `decrypt`): buffers batches into row groups.
pub struct BatchWriter {
    encoder: Encoder,
    sink: Sink,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

impl BatchWriter {
    pub fn new(file: File, schema: SchemaRef, options: &WriteOptions) -> Result<BatchWriter> {
        let (encoder, sink) = open_writer(file, schema, options)?;
        Ok(BatchWriter {
            encoder,
            sink,
            pending: Vec::new(),
            pending_rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.pending_rows += batch.num_rows();
        self.pending.push(batch.clone());
        if self.pending_rows >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let e = self.encoder.encode(&self.pending)?;
            self.sink.append(e)?;
            self.pending.clear();
            self.pending_rows = 0;
        }
        Ok(())
    }

    pub fn finish(mut self, footer: Option<(String, String)>) -> Result<(String, u64)> {
        self.flush()?;
        self.sink.finish(footer)
    }
}

/// Rows per Parquet row group (and per unit of parallel work).
pub const ROW_GROUP_ROWS: usize = 65_536;

/// SHA-256 of a file, lowercase hex, and its size.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut f = open_file(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Where `path` is or would be: symlinks of existing paths resolved, and for a path that does
/// not exist yet, its nearest existing ancestor resolved and the rest appended.
fn identity(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for base in abs.ancestors().skip(1) {
        if let Ok(real) = base.canonicalize() {
            let mut out = real;
            for c in abs.strip_prefix(base).unwrap_or(&abs).components() {
                match c {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::Normal(n) => out.push(n),
                    _ => {}
                }
            }
            return out;
        }
    }
    abs
}

/// Device and inode of an existing path (following links), to catch hard links.
#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Refuse outputs that would replace or land inside an input, or each other. Each entry is a
/// role and a path, e.g. `("--output", p)`, `("the policy", q)`. Outputs need not exist yet.
pub fn refuse_collisions(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    let ins: Vec<(&str, &Path, PathBuf)> =
        inputs.iter().map(|&(r, p)| (r, p, identity(p))).collect();
    let outs: Vec<(&str, &Path, PathBuf)> =
        outputs.iter().map(|&(r, p)| (r, p, identity(p))).collect();
    let same = |a: &(&str, &Path, PathBuf), b: &(&str, &Path, PathBuf)| {
        a.2 == b.2 || matches!((inode(a.1), inode(b.1)), (Some(x), Some(y)) if x == y)
    };
    for (i, o) in outs.iter().enumerate() {
        for inp in &ins {
            if same(o, inp) {
                return Err(Error::Usage(format!(
                    "{} ({}) is the same file as {} ({}); writing it would destroy {}. \
                     Choose another path for {}",
                    o.0,
                    o.1.display(),
                    inp.0,
                    inp.1.display(),
                    inp.0,
                    o.0
                )));
            }
            if o.2.starts_with(&inp.2) {
                return Err(Error::Usage(format!(
                    "{} ({}) lies inside {} ({}); write it outside the input",
                    o.0,
                    o.1.display(),
                    inp.0,
                    inp.1.display()
                )));
            }
            if inp.2.starts_with(&o.2) {
                return Err(Error::Usage(format!(
                    "{} ({}) lies inside {} ({}); replacing {} would destroy it. \
                     Choose an output outside the input",
                    inp.0,
                    inp.1.display(),
                    o.0,
                    o.1.display(),
                    o.0
                )));
            }
        }
        for other in &outs[i + 1..] {
            if same(o, other) || o.2.starts_with(&other.2) || other.2.starts_with(&o.2) {
                return Err(Error::Usage(format!(
                    "{} ({}) and {} ({}) name the same file (or one lies inside the other); \
                     choose different paths",
                    o.0,
                    o.1.display(),
                    other.0,
                    other.1.display()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(r: Result<()>) -> String {
        match r {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn collisions_are_refused_through_links_and_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let policy = d.join("p.yaml");
        std::fs::write(&policy, "x").unwrap();
        let inputs = [("the policy", policy.as_path())];
        // The same path, and the same file through a symlinked directory.
        let m = usage(refuse_collisions(&inputs, &[("--output", &policy)]));
        assert!(m.contains("--output") && m.contains("the policy"), "{m}");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d, d.join("alias")).unwrap();
            usage(refuse_collisions(
                &inputs,
                &[("--output", &d.join("alias/p.yaml"))],
            ));
            std::os::unix::fs::symlink(&policy, d.join("link.yaml")).unwrap();
            usage(refuse_collisions(
                &inputs,
                &[("--output", &d.join("link.yaml"))],
            ));
            std::fs::hard_link(&policy, d.join("hard.yaml")).unwrap();
            usage(refuse_collisions(
                &inputs,
                &[("--output", &d.join("hard.yaml"))],
            ));
        }
        // A path through a directory that does not exist yet.
        usage(refuse_collisions(
            &inputs,
            &[("--output", &d.join("new/../p.yaml"))],
        ));
        // Containment both ways.
        let raw = d.join("project/raw");
        std::fs::create_dir_all(&raw).unwrap();
        let m = usage(refuse_collisions(
            &[("--input", &raw)],
            &[("--output", &d.join("project"))],
        ));
        assert!(m.contains("lies inside --output"), "{m}");
        usage(refuse_collisions(
            &[("--input", &raw)],
            &[("--output", &raw.join("o.csv"))],
        ));
        // Outputs among themselves.
        let o = d.join("o.parquet");
        let m = usage(refuse_collisions(
            &[],
            &[("--output", &o), ("--openlineage", &o)],
        ));
        assert!(m.contains("--openlineage"), "{m}");
        // Distinct paths pass, whether or not they exist.
        refuse_collisions(
            &inputs,
            &[
                ("--output", &o),
                ("the sidecar", &d.join("o.parquet.provenance.json")),
            ],
        )
        .unwrap();
    }

    #[test]
    fn a_failed_commit_puts_every_destination_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let a = d.join("a.parquet");
        std::fs::write(&a, "old data").unwrap();
        let side = d.join("a.parquet.provenance.json");
        std::fs::write(&side, "old sidecar").unwrap();
        let stage = |dest: &Path, text: &str| {
            let af = AtomicFile::create(dest).unwrap();
            std::io::Write::write_all(&mut af.file().unwrap(), text.as_bytes()).unwrap();
            af.stage().unwrap()
        };
        // The third destination's directory vanishes after staging: its rename fails late.
        let gone = d.join("gone");
        let lineage = stage(&gone.join("event.json"), "event");
        std::fs::remove_dir_all(&gone).unwrap();
        let staged = vec![stage(&a, "new data"), stage(&side, "new sidecar"), lineage];
        assert!(commit_all(staged).is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old data");
        assert_eq!(std::fs::read_to_string(&side).unwrap(), "old sidecar");
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.parquet", "a.parquet.provenance.json"]);
        // And a commit that works replaces both.
        commit_all(vec![stage(&a, "new data"), stage(&side, "new sidecar")]).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new data");
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 2);
    }

    #[test]
    fn the_output_lock_is_exclusive_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.parquet");
        let held = OutputLock::acquire(&out).unwrap();
        let second = OutputLock::acquire(&out);
        assert!(
            second
                .as_ref()
                .is_err_and(|e| e.to_string().contains("another cloakline run")),
            "{:?}",
            second.err()
        );
        drop(held);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        drop(OutputLock::acquire(&out).unwrap());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn write_errors_name_the_output() {
        use arrow::array::StringArray;
        use arrow::datatypes::{DataType, Field};
        for format in [Format::Csv, Format::Parquet] {
            let Ok(full) = File::options().write(true).open("/dev/full") else {
                return;
            };
            let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
            let opts = WriteOptions {
                format,
                ..Default::default()
            };
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(StringArray::from(vec!["x".repeat(3 << 20)]))],
            )
            .unwrap();
            let r = open_writer_at(full, Path::new("out/o.data"), schema, &opts).and_then(
                |(enc, mut sink)| {
                    sink.append(enc.encode(&[batch])?)?;
                    sink.finish(None)
                },
            );
            let msg = r.unwrap_err().to_string();
            assert!(msg.contains("out/o.data"), "{format:?}: {msg}");
        }
    }

    #[test]
    fn batch_sizes_are_bounded_and_tsv_means_tab() {
        let mut o = ReadOptions::default();
        o.check().unwrap();
        for n in [0, MAX_BATCH_ROWS + 1, usize::MAX] {
            o.batch_size = n;
            assert!(matches!(o.check(), Err(Error::Usage(_))));
        }
        assert_eq!(o.delimiter_for(Path::new("a.TSV")), b'\t');
        assert_eq!(o.delimiter_for(Path::new("a.csv")), b',');
        o.delimiter = b';';
        assert_eq!(o.delimiter_for(Path::new("a.tsv")), b';');
    }
}
