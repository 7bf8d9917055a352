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
pub fn data_files(dir: &Path, format: Option<Format>) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out)?;
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
        let mut file = open_file(path)?;
        let shown = path.display().to_string();
        let (schema, rows) = match format {
            Format::Parquet => {
                let b = ParquetRecordBatchReaderBuilder::try_new(
                    file.try_clone().map_err(|e| Error::io(path, e))?,
                )
                .map_err(|e| Error::data(&shown, format!("not a readable Parquet file: {e}")))?;
                let rows = b.metadata().file_metadata().num_rows() as u64;
                (Arc::clone(b.schema()), Some(rows))
            }
            Format::Csv => {
                let fmt = csv_format(options);
                let (schema, _) = fmt
                    .infer_schema(BufReader::new(&mut file), Some(options.infer_rows))
                    .map_err(|e| {
                        Error::data(&shown, format!("cannot read the CSV header and types: {e}"))
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
                .map_err(|e| Error::data(&shown, format!("cannot infer NDJSON types: {e}")))?;
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
                let reader = ParquetRecordBatchReaderBuilder::try_new(self.file)
                    .and_then(|b| b.with_batch_size(opts.batch_size).build())
                    .map_err(|e| {
                        Error::data(&shown, format!("not a readable Parquet file: {e}"))
                    })?;
                Ok(Box::new(reader.map(move |r| {
                    r.map_err(|e| {
                        Error::data(&shown, format!("corrupt or unreadable Parquet data: {e}"))
                    })
                })))
            }
            Format::Csv => {
                let reader = arrow::csv::ReaderBuilder::new(self.schema)
                    .with_format(csv_format(&opts))
                    .with_batch_size(opts.batch_size)
                    .build(BufReader::with_capacity(1 << 20, self.file))
                    .map_err(|e| Error::data(&shown, e))?;
                Ok(Box::new(reader.map(move |r| {
                    r.map_err(|e| Error::data(&shown, format!("bad CSV data: {e}")))
                })))
            }
            Format::Ndjson => {
                let reader = arrow::json::ReaderBuilder::new(self.schema)
                    .with_batch_size(opts.batch_size)
                    .build(BufReader::with_capacity(1 << 20, self.file))
                    .map_err(|e| Error::data(&shown, e))?;
                Ok(Box::new(reader.map(move |r| {
                    r.map_err(|e| Error::data(&shown, format!("bad NDJSON data: {e}")))
                })))
            }
        }
    }
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

/// A file written under a temporary name and renamed into place on [`commit`](Self::commit).
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl AtomicFile {
    /// Create a temporary file beside `dest`.
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::io(
                &dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "output directory does not exist",
                ),
            ));
        }
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("output");
        let tmp = dir.join(format!(
            ".{name}.cloakline-tmp-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
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

    /// Flush to disk and rename into place.
    pub fn commit(mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
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
                ArrowWriter::try_new(HashingWriter::new(file), schema.clone(), Some(props))?;
            let (file_writer, factory) = writer.into_serialized_writer()?;
            Ok((
                Encoder {
                    kind: EncoderKind::Parquet(Arc::new(factory)),
                    schema,
                },
                Sink {
                    kind: SinkKind::Parquet(file_writer),
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
                .map_err(|e| Error::io("<csv output>", e))?;
            Ok((
                Encoder {
                    kind: EncoderKind::Csv(options.delimiter),
                    schema,
                },
                Sink {
                    kind: SinkKind::Csv(out),
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
                                Error::Usage(
                                    "internal: more Parquet leaves than column writers".into(),
                                )
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
                let mut rg = w.next_row_group()?;
                for c in chunks {
                    c.append_to_row_group(&mut rg)?;
                }
                rg.close()?;
            }
            (SinkKind::Csv(w), Encoded::Csv(bytes)) => {
                std::io::Write::write_all(w, &bytes).map_err(|e| Error::io("<csv output>", e))?;
            }
            _ => {
                return Err(Error::Usage(
                    "internal: encoded group does not match the output format".into(),
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
                w.into_inner()?
            }
            SinkKind::Csv(w) => w
                .into_inner()
                .map_err(|e| Error::io("<csv output>", e.into_error()))?,
        };
        hashing.finish().map_err(|e| Error::io("<output>", e))
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
