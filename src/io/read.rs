//! Readers: Parquet, CSV and NDJSON (plain, gzip or zstd) into record batches, with
//! data-free error messages.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};

use super::*;

/// An opened input: its schema, its batches and (when known) its row count.
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
    pub schema: SchemaRef,
    pub rows: Option<u64>,
    file: Source,
    compression: Compression,
    options: ReadOptions,
    /// Hive partition columns appended to every batch ([`Input::with_partitions`]).
    partitions: super::partition::PartitionValues,
}

/// `file` read through the decoder its compression needs (streaming, nothing spooled).
pub(crate) fn decoded<'a>(
    file: impl Read + Send + 'a,
    compression: Compression,
    path: &Path,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| Error::io(path, e))?)
        }
    })
}

/// What to do about a value that does not fit its inferred type, for the error message.
fn drift_hint(options: &ReadOptions) -> String {
    if options.all_strings {
        return "fix it, or correct the column's `type:` in the policy".into();
    }
    let window = match options.infer_rows {
        0 => "the whole file".to_string(),
        n => format!("the first {n} rows"),
    };
    format!(
        "unless the policy declares it, the type was inferred from {window}: pass \
         --infer-rows 0 (infer from the whole file) or --all-strings (read every column as \
         text), or declare the column's `type:` in the policy"
    )
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

/// An opened data file: a local file, or the scratch copy of an object still being fetched,
/// whose reads wait for the bytes they need ([`super::arrival`]).
pub struct Source {
    file: File,
    arriving: Option<Arc<super::arrival::Arrival>>,
}

impl Source {
    pub fn try_clone(&self) -> std::io::Result<Source> {
        Ok(Source {
            file: self.file.try_clone()?,
            arriving: self.arriving.clone(),
        })
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(a) = &self.arriving else {
            return self.file.read(buf);
        };
        let pos = self.file.stream_position()?;
        let n = a.readable(pos, buf.len())?;
        self.file.read(&mut buf[..n])
    }
}

impl Seek for Source {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.file.seek(to)
    }
}

impl parquet::file::reader::Length for Source {
    fn len(&self) -> u64 {
        match &self.arriving {
            Some(a) => a.size(),
            None => self.file.metadata().map(|m| m.len()).unwrap_or(0),
        }
    }
}

impl parquet::file::reader::ChunkReader for Source {
    type T = BufReader<Source>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let mut s = self.try_clone()?;
        s.seek(SeekFrom::Start(start))?;
        Ok(BufReader::new(s))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use parquet::file::reader::Length;
        // A length from a hostile footer is refused before anything is allocated for it.
        if start
            .checked_add(length as u64)
            .is_none_or(|end| end > self.len())
        {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "asked for {length} bytes at {start}, past the end of the file"
            )));
        }
        if let Some(a) = &self.arriving {
            a.wait_range(start, length as u64)?;
        }
        let mut s = self.try_clone()?;
        s.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0u8; length];
        s.file.read_exact(&mut buf)?;
        Ok(buf.into())
    }
}

/// Open a data file. Only a regular file: a FIFO or device would block the open, and its
/// bytes could not be read again to hash them for the record (stdin is `--input -`).
pub(super) fn open_file(path: &Path) -> Result<Source> {
    match super::open_regular(path) {
        Ok((file, _)) => Ok(Source {
            file,
            arriving: super::arrival::arriving(path),
        }),
        Err(super::SmallFile::Io(e)) => Err(Error::io(path, e)),
        Err(_) => Err(Error::data(
            path.display(),
            "not a regular file (a directory, FIFO or device); give a data file, or `-` for \
             standard input",
        )),
    }
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
            delimiter_given: true,
            ..options.clone()
        };
        let compression = Compression::from_path(path);
        let mut file = open_file(path)?;
        let shown = path.display().to_string();
        let (schema, rows) = match format {
            Format::Parquet if compression != Compression::None => {
                return Err(Error::Usage(format!(
                    "{shown}: a gzip/zstd-compressed Parquet file is not read (Parquet \
                     compresses its pages itself); decompress it first"
                )));
            }
            Format::Parquet => {
                let f = file.try_clone().map_err(|e| Error::io(path, e))?;
                let b = unpanicked(&shown, || ParquetRecordBatchReaderBuilder::try_new(f))?
                    .map_err(|e| {
                        Error::data(&shown, format!("not a readable Parquet file: {e}"))
                    })?;
                // A negative count in a hostile footer is no count at all.
                let rows =
                    u64::try_from(b.metadata().file_metadata().num_rows()).map_err(|_| {
                        Error::data(
                            &shown,
                            "its footer records a negative row count; the file is corrupt",
                        )
                    })?;
                (Arc::clone(b.schema()), Some(rows))
            }
            Format::Csv => {
                let fmt = csv_format(options);
                // All strings: the header alone names the columns.
                let limit = match options.all_strings {
                    true => Some(0),
                    false => options.infer_limit(),
                };
                let reader = decoded(&mut file, compression, path)?;
                let (schema, _) = fmt
                    .infer_schema(BufReader::new(reader), limit)
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
                let schema = match options.all_strings {
                    true => scalars_as_strings(&schema),
                    false => nulls_as_strings(&schema),
                };
                (override_schema(&schema), None)
            }
            Format::Ndjson => {
                let reader = decoded(&mut file, compression, path)?;
                let (schema, _) = arrow::json::reader::infer_json_schema(
                    BufReader::new(reader),
                    options.infer_limit(),
                )
                .map_err(|e| {
                    Error::data(
                        &shown,
                        format!("cannot infer NDJSON types: {}", json_message(&e, None)),
                    )
                })?;
                let schema = match options.all_strings {
                    true => scalars_as_strings(&schema),
                    false => schema,
                };
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
            compression,
            options: options.clone(),
            partitions: Vec::new(),
        })
    }

    /// Append the partition columns `parts` (from the file's `key=value` directories) to the
    /// schema and to every batch.
    pub fn with_partitions(mut self, parts: super::partition::PartitionValues) -> Result<Self> {
        self.schema = super::partition::schema_with(&self.schema, &parts, &self.path)?;
        self.partitions = parts;
        Ok(self)
    }

    /// Stream the batches (with the partition columns, if any).
    pub fn batches(mut self) -> Result<BatchIter> {
        let parts = std::mem::take(&mut self.partitions);
        if parts.is_empty() {
            return self.file_batches();
        }
        let schema = self.schema.clone();
        let n = parts.len();
        // The file's own columns: the schema without the partition columns.
        let own: Vec<_> = schema.fields()[..schema.fields().len() - n].to_vec();
        self.schema = Arc::new(Schema::new_with_metadata(own, schema.metadata().clone()));
        let inner = self.file_batches()?;
        Ok(Box::new(inner.map(move |b| {
            b.and_then(|b| super::partition::append(b, &schema, &parts))
        })))
    }

    fn file_batches(self) -> Result<BatchIter> {
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
                let source = decoded(self.file, self.compression, &self.path)?;
                let reader = arrow::csv::ReaderBuilder::new(self.schema)
                    .with_format(csv_format(&opts))
                    .with_batch_size(opts.batch_size)
                    .build(BufReader::with_capacity(1 << 20, source))
                    .map_err(|e| Error::data(&shown, csv_message(&e, &schema)))?;
                let hint = drift_hint(&opts);
                Ok(Box::new(reader.map(move |r| {
                    r.map_err(|e| {
                        let mut m = format!("bad CSV data: {}", csv_message(&e, &schema));
                        if matches!(e, arrow::error::ArrowError::ParseError(_)) {
                            m = format!("{m}; {hint}");
                        }
                        Error::data(&shown, m)
                    })
                })))
            }
            Format::Ndjson => {
                let source = decoded(self.file, self.compression, &self.path)?;
                // Strict: a key missing from the inferred columns is an error, not dropped.
                // All strings: numbers and booleans are read into their text columns.
                let reader = arrow::json::ReaderBuilder::new(self.schema)
                    .with_batch_size(opts.batch_size)
                    .with_strict_mode(true)
                    .with_coerce_primitive(opts.all_strings)
                    .build(BufReader::with_capacity(1 << 20, source))
                    .map_err(|e| Error::data(&shown, json_message(&e, None)))?;
                let hint = drift_hint(&opts);
                let mut done = 0u64;
                Ok(Box::new(reader.map(move |r| match r {
                    Ok(b) => {
                        done += b.num_rows() as u64;
                        Ok(b)
                    }
                    Err(e) => {
                        let at = (done + 1, done + opts.batch_size as u64, opts.infer_rows);
                        let mut m = json_message(&e, Some(at));
                        if m.contains("is not a valid") {
                            m = format!("{m}; {hint}");
                        }
                        Err(Error::data(&shown, format!("bad NDJSON data: {m}")))
                    }
                })))
            }
        }
    }
}

/// A CSV reading error without data: Arrow's parse errors quote the value and the whole row,
/// so only the line, the column and the expected type are kept.
pub(super) fn csv_message(e: &arrow::error::ArrowError, schema: &Schema) -> String {
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
            out.push_str(" (the value is not shown)");
            out
        }
        _ => "the data could not be decoded (details withheld: they may quote a value)".into(),
    }
}

/// An NDJSON reading error without data. `at` is the first and last record of the failing
/// batch and the number of records the columns were inferred from.
pub(super) fn json_message(e: &arrow::error::ArrowError, at: Option<(u64, u64, usize)>) -> String {
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
        let seen = match at.map(|(_, _, n)| n).unwrap_or(10_000) {
            0 => "the file".to_string(),
            n => format!("the first {n} records"),
        };
        format!(
            "key `{}` is not among the columns inferred from {seen}; put a record that has \
             every key first, or pass --infer-rows 0 (infer from the whole file)",
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
pub(super) fn nulls_as_strings(schema: &Schema) -> Schema {
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

/// Every scalar column as `Utf8` (nested NDJSON fields keep their structure).
pub(super) fn scalars_as_strings(schema: &Schema) -> Schema {
    use arrow::datatypes::DataType as D;
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            D::Struct(_) | D::List(_) | D::LargeList(_) | D::FixedSizeList(..) | D::Map(..) => {
                f.as_ref().clone()
            }
            _ => f.as_ref().clone().with_data_type(D::Utf8),
        })
        .collect();
    Schema::new(fields)
}

pub(super) fn csv_format(options: &ReadOptions) -> arrow::csv::reader::Format {
    arrow::csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(options.delimiter)
}
