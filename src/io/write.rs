//! Writers: Parquet row groups encoded in parallel, CSV and NDJSON blocks (optionally
//! gzip/zstd-compressed as they stream), and the hashing sink.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};

use super::*;

/// Output writer options.
#[derive(Clone, Debug)]
#[non_exhaustive]
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

impl WriteOptions {
    /// Set the output format.
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Set the CSV delimiter.
    #[must_use]
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Set the Parquet zstd compression level.
    #[must_use]
    pub fn with_zstd_level(mut self, zstd_level: i32) -> Self {
        self.zstd_level = zstd_level;
        self
    }

    /// Set the columns written without dictionary encoding or statistics.
    #[must_use]
    pub fn with_no_dictionary(mut self, no_dictionary: Vec<String>) -> Self {
        self.no_dictionary = no_dictionary;
        self
    }
}

/// One encoded row group (Parquet column chunks) or block of CSV or NDJSON lines.
#[non_exhaustive]
pub enum Encoded {
    Parquet(Vec<ArrowColumnChunk>),
    Csv(Vec<u8>),
    Ndjson(Vec<u8>),
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
    Ndjson,
}

/// Appends encoded groups to the output file, in order.
pub struct Sink {
    kind: SinkKind,
    /// Named in write errors (a full disk says which output).
    path: PathBuf,
}

enum SinkKind {
    Parquet(SerializedFileWriter<HashingWriter>),
    /// CSV or NDJSON lines, through the compressor when the output path asks for one.
    Text(std::io::BufWriter<Compressor>),
}

/// The stream compressor of a text output; the hash is of the compressed bytes (the file as
/// written, which `verify` hashes).
enum Compressor {
    Plain(HashingWriter),
    Gzip(flate2::write::GzEncoder<HashingWriter>),
    Zstd(zstd::stream::write::Encoder<'static, HashingWriter>),
}

impl Compressor {
    fn new(out: HashingWriter, compression: super::Compression) -> std::io::Result<Self> {
        Ok(match compression {
            super::Compression::None => Compressor::Plain(out),
            super::Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            )),
            // Level 3, zstd's default: fast, and text compresses well anyway.
            super::Compression::Zstd => {
                Compressor::Zstd(zstd::stream::write::Encoder::new(out, 3)?)
            }
        })
    }

    /// Write the compressed stream's trailer and hand back the file writer.
    fn finish(self) -> std::io::Result<HashingWriter> {
        match self {
            Compressor::Plain(w) => Ok(w),
            Compressor::Gzip(w) => w.finish(),
            Compressor::Zstd(w) => w.finish(),
        }
    }
}

impl std::io::Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Gzip(w) => w.write(buf),
            Compressor::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Gzip(w) => w.flush(),
            Compressor::Zstd(w) => w.flush(),
        }
    }
}

/// Writes to a file while computing its SHA-256, so the output need not be read back.
/// Write buffer per output file: large writes (row groups) pass through it; a partitioned
/// output holds one per open partition, so it stays small.
const WRITE_BUFFER: usize = 128 << 10;

pub struct HashingWriter {
    file: std::io::BufWriter<File>,
    hasher: sha2::Sha256,
    bytes: u64,
    /// A copy of the bytes for an object store (uploaded while the run writes).
    tee: Option<super::store::UploadTee>,
}

impl HashingWriter {
    fn new(file: File, tee: Option<super::store::UploadTee>) -> Self {
        HashingWriter {
            file: std::io::BufWriter::with_capacity(WRITE_BUFFER, file),
            hasher: sha2::Sha256::default(),
            bytes: 0,
            tee,
        }
    }

    fn finish(mut self) -> std::io::Result<(String, u64)> {
        use sha2::Digest;
        std::io::Write::flush(&mut self.file)?;
        let sha = hex::encode(self.hasher.finalize());
        if let Some(tee) = self.tee.take() {
            tee.finish(&sha, self.bytes);
        }
        Ok((sha, self.bytes))
    }
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if let Some(tee) = &mut self.tee {
            tee.write(&buf[..n]);
        }
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
pub(super) fn write_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(b) => match b.downcast::<std::io::Error>() {
            Ok(io) => Error::io(path, *io),
            Err(b) => Error::io(path, std::io::Error::other(b.to_string())),
        },
        other => Error::io(path, std::io::Error::other(other.to_string())),
    }
}

/// [`open_writer`] for the output at `path` (named in write errors). A CSV or NDJSON
/// output whose path ends in `.gz`/`.zst` is written compressed.
pub fn open_writer_at(
    file: File,
    path: &Path,
    schema: SchemaRef,
    options: &WriteOptions,
) -> Result<(Encoder, Sink)> {
    open_writer_teed(file, path, schema, options, None)
}

/// [`open_writer_at`], also sending every byte written to `tee` (an object-store upload
/// that runs while the file is written).
pub fn open_writer_teed(
    file: File,
    path: &Path,
    schema: SchemaRef,
    options: &WriteOptions,
    tee: Option<super::store::UploadTee>,
) -> Result<(Encoder, Sink)> {
    check_output(path, options.format)?;
    let compression = super::Compression::from_path(path);
    let path = path.to_path_buf();
    let text_out = |file: File, tee: Option<super::store::UploadTee>| {
        Compressor::new(HashingWriter::new(file, tee), compression)
            .map(|c| std::io::BufWriter::with_capacity(WRITE_BUFFER, c))
            .map_err(|e| Error::io(&path, e))
    };
    match options.format {
        Format::Parquet => {
            let props = parquet_properties(options)?;
            let writer =
                ArrowWriter::try_new(HashingWriter::new(file, tee), schema.clone(), Some(props))
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
            let mut out = text_out(file, tee)?;
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
                    kind: SinkKind::Text(out),
                    path,
                },
            ))
        }
        Format::Ndjson => {
            let out = text_out(file, tee)?;
            Ok((
                Encoder {
                    kind: EncoderKind::Ndjson,
                    schema,
                },
                Sink {
                    kind: SinkKind::Text(out),
                    path,
                },
            ))
        }
    }
}

/// The Parquet writer settings of every output file.
fn parquet_properties(options: &WriteOptions) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(options.zstd_level)?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_created_by(format!("cloakline {}", env!("CARGO_PKG_VERSION")));
    for c in &options.no_dictionary {
        // Random-looking values: a dictionary never pays, and min/max statistics
        // neither prune anything nor should reveal anything.
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(c.as_str()), false)
            .set_column_statistics_enabled(ColumnPath::from(c.as_str()), EnabledStatistics::None);
    }
    // A small dictionary page limit makes high-cardinality columns fall back to plain
    // encoding early, while low-cardinality ones (labels, cities) still fit.
    Ok(props.set_dictionary_page_size_limit(128 * 1024).build())
}

impl Encoder {
    /// An encoder whose groups any [`Sink`] of this schema and these options accepts (a
    /// partitioned output encodes on the workers before knowing which file a piece goes to).
    pub fn new(schema: SchemaRef, options: &WriteOptions) -> Result<Encoder> {
        let kind = match options.format {
            Format::Parquet => {
                let writer = ArrowWriter::try_new(
                    Vec::new(),
                    schema.clone(),
                    Some(parquet_properties(options)?),
                )?;
                let (_, factory) = writer.into_serialized_writer()?;
                EncoderKind::Parquet(Arc::new(factory))
            }
            Format::Csv => EncoderKind::Csv(options.delimiter),
            Format::Ndjson => EncoderKind::Ndjson,
        };
        Ok(Encoder { kind, schema })
    }

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
            EncoderKind::Ndjson => {
                // Nulls written as `null`: a key left out would vanish from the columns a
                // reader infers when a column is null throughout.
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(Vec::new());
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
                Ok(Encoded::Ndjson(w.into_inner()))
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
            (SinkKind::Text(w), Encoded::Csv(bytes) | Encoded::Ndjson(bytes)) => {
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
            SinkKind::Text(w) => w
                .into_inner()
                .map_err(|e| Error::io(&self.path, e.into_error()))?
                .finish()
                .map_err(|e| Error::io(&self.path, e))?,
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
