//! Registering files as DataFusion tables: the formats, delimiters and `type:` overrides
//! that `apply` reads with, so a query sees the same values.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, JsonReadOptions, ParquetReadOptions, SessionContext, lit,
};

use crate::error::{Error, Problem, Result};
use crate::io::partition::{PartitionValues, check_layout, partition_values};
use crate::io::{Format, Input, ReadOptions, table_files};
use crate::plan::apply_type_overrides;
use crate::policy::Policy;

/// A table to register: name and file.
#[derive(Clone, Debug)]
pub struct TableArg {
    pub name: String,
    pub path: PathBuf,
}

impl std::str::FromStr for TableArg {
    type Err = Problem;
    fn from_str(s: &str) -> std::result::Result<Self, Problem> {
        let (name, path) = s
            .split_once('=')
            .ok_or_else(|| Problem(format!("--table takes NAME=PATH, got {s:?}")))?;
        let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Problem(format!(
                "table name {name:?} must use letters, digits and _"
            )));
        }
        Ok(TableArg {
            name: name.to_string(),
            path: PathBuf::from(path),
        })
    }
}

pub(crate) fn df_err(e: datafusion::error::DataFusionError) -> Error {
    Error::Usage(format!("SQL: {e}"))
}

/// A Parquet file DataFusion could not decode: a data error naming `which` files or tables
/// (DataFusion's message does not say), not a mistake in the SQL.
pub(crate) fn undecodable(
    e: &datafusion::error::DataFusionError,
    which: impl std::fmt::Display,
) -> Option<Error> {
    use datafusion::error::DataFusionError as D;
    let root = e.find_root();
    let decoding = match root {
        D::ParquetError(_) => true,
        D::ArrowError(a, _) => matches!(**a, arrow::error::ArrowError::ParquetError(_)),
        _ => false,
    };
    decoding.then(|| {
        Error::data(
            which,
            format!(
                "corrupt or unreadable Parquet data: {}; the file is damaged or not a Parquet \
                 file",
                crate::sql::withhold_quoted(&root.to_string())
            ),
        )
    })
}

/// Register a file, or a directory of files of one format, as table `t.name`: Parquet, CSV
/// (types inferred as `apply` infers them, with the policy's `type:` overrides) or NDJSON.
pub async fn register_file(
    ctx: &SessionContext,
    t: &TableArg,
    policy: Option<&Policy>,
    read: &ReadOptions,
) -> Result<()> {
    if !t.path.exists() {
        return Err(Error::io(
            &t.path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    let root = t.path.is_dir().then_some(t.path.as_path());
    register_files_under(ctx, &t.name, root, &table_files(&t.path)?, policy, read).await
}

/// Register the object or prefix at `url` as table `name`, read in place through the
/// session's object stores (a cluster's executors read it where it is). The format comes from
/// the name (a prefix: add the `/`); types are DataFusion's, as the files declare them
/// (Parquet) or as it infers them (CSV, NDJSON).
pub async fn register_url(
    ctx: &SessionContext,
    name: &str,
    url: &str,
    format: Format,
    extension: &str,
    read: &ReadOptions,
    partitions: &[String],
) -> Result<()> {
    use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
    use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};
    // `extension` is what every object's name ends with (`csv.gz`, `parquet`, …).
    let file_extension = format!(".{extension}");
    let compression = if extension.ends_with(".gz") {
        FileCompressionType::GZIP
    } else if extension.ends_with(".zst") {
        FileCompressionType::ZSTD
    } else {
        FileCompressionType::UNCOMPRESSED
    };
    // Hive partition keys as text columns, as a local directory's are.
    let cols: Vec<(String, arrow::datatypes::DataType)> = partitions
        .iter()
        .map(|k| (k.clone(), arrow::datatypes::DataType::Utf8))
        .collect();
    let r = match format {
        Format::Parquet => {
            ctx.register_parquet(
                name,
                url,
                ParquetReadOptions::default()
                    .file_extension(&file_extension)
                    .table_partition_cols(cols),
            )
            .await
        }
        Format::Csv => {
            // As for local files: `--delimiter` wins, else tab for `.tsv`.
            let delimiter = if !read.delimiter_given && extension.starts_with("tsv") {
                b'\t'
            } else {
                read.delimiter
            };
            ctx.register_csv(
                name,
                url,
                CsvReadOptions::new()
                    .file_extension(&file_extension)
                    .delimiter(delimiter)
                    .schema_infer_max_records(infer_records(read))
                    .table_partition_cols(cols)
                    .file_compression_type(compression),
            )
            .await
        }
        Format::Ndjson => {
            ctx.register_json(
                name,
                url,
                JsonReadOptions::default()
                    .file_extension(&file_extension)
                    .schema_infer_max_records(infer_records(read))
                    .table_partition_cols(cols)
                    .file_compression_type(compression),
            )
            .await
        }
    };
    r.map_err(|e| Error::Storage {
        location: crate::io::redact_url(url),
        message: format!("registering it as table {name}: {}", e.message()),
    })
}

/// Rows DataFusion reads to infer a text table's types (`--infer-rows 0`: all of them).
fn infer_records(read: &ReadOptions) -> usize {
    match read.infer_rows {
        0 => usize::MAX,
        n => n,
    }
}

/// Register `files` as one table `name`. They must share a format, an extension and a schema.
pub async fn register_files(
    ctx: &SessionContext,
    name: &str,
    files: &[PathBuf],
    policy: Option<&Policy>,
    read: &ReadOptions,
) -> Result<()> {
    register_files_under(ctx, name, None, files, policy, read).await
}

/// [`register_files`] for the files of directory `root` (when given): their Hive partition
/// directories (`key=value/`) become Utf8 columns, as `apply` reads them.
pub async fn register_files_under(
    ctx: &SessionContext,
    name: &str,
    root: Option<&Path>,
    files: &[PathBuf],
    policy: Option<&Policy>,
    read: &ReadOptions,
) -> Result<()> {
    let Some(first) = files.first() else {
        return Err(Error::Usage(format!("table {name} has no files")));
    };
    let fmt = Format::from_path(first).ok_or_else(|| {
        Error::Usage(format!(
            "cannot tell the format of {}; use .parquet, .csv/.tsv or .ndjson/.jsonl",
            first.display()
        ))
    })?;
    let ext_of = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_default()
    };
    let ext = ext_of(first);
    let overrides = |s: &Schema| match policy {
        Some(p) => apply_type_overrides(p, s),
        None => Arc::new(s.clone()),
    };
    let schema = Input::open(first, fmt, read, &overrides)?.schema;
    let mut paths = Vec::with_capacity(files.len());
    for f in files {
        if ext_of(f) != ext {
            return Err(Error::Usage(format!(
                "{} and {} are both read as table {name}, but their extensions differ; \
                 give the files of one table one format and extension",
                first.display(),
                f.display()
            )));
        }
        if f != first && Input::open(f, fmt, read, &overrides)?.schema.fields() != schema.fields() {
            return Err(Error::data(
                f.display(),
                format!(
                    "its schema differs from {}; the files of one table must share a schema",
                    first.display()
                ),
            ));
        }
        let p = f
            .to_str()
            .ok_or_else(|| Error::Usage(format!("{} is not UTF-8", f.display())))?;
        paths.push(p.to_string());
    }
    let parts = match root {
        Some(root) => files
            .iter()
            .map(|f| partition_values(root, f))
            .collect::<Result<Vec<_>>>()?,
        None => vec![Vec::new(); files.len()],
    };
    if let Some(root) = root {
        let pairs: Vec<_> = files.iter().map(PathBuf::as_path).zip(&parts).collect();
        check_layout(root, &pairs)?;
    }
    // One scan per partition directory, its values added as literal columns, all unioned.
    let mut groups: std::collections::BTreeMap<&PartitionValues, Vec<String>> = Default::default();
    for (p, part) in paths.into_iter().zip(&parts) {
        groups.entry(part).or_default().push(p);
    }
    let mut table: Option<DataFrame> = None;
    for (part, paths) in groups {
        crate::io::partition::schema_with(&schema, part, first)?;
        let compressed = crate::io::Compression::from_path(first) != crate::io::Compression::None;
        let mut df = match compressed {
            true => read_decoded(ctx, &paths, fmt, &schema, read)?,
            false => read_files(ctx, paths, fmt, &ext, &schema, read, first).await?,
        };
        for (key, value) in part {
            df = df
                .with_column(key, lit(ScalarValue::Utf8(value.clone())))
                .map_err(df_err)?;
        }
        table = Some(match table {
            None => df,
            Some(t) => t.union(df).map_err(df_err)?,
        });
    }
    let Some(df) = table else {
        return Err(Error::Usage(format!("table {name} has no files")));
    };
    ctx.register_table(name, df.into_view()).map_err(df_err)?;
    Ok(())
}

/// Gzip/zstd CSV or NDJSON files as one table. DataFusion is built without its compression
/// feature; each file is a partition read by cloakline's own reader (decompressing as it
/// streams, with the same types `apply` reads), on a blocking thread.
fn read_decoded(
    ctx: &SessionContext,
    paths: &[String],
    fmt: Format,
    schema: &Schema,
    read: &ReadOptions,
) -> Result<DataFrame> {
    let schema = Arc::new(schema.clone());
    let parts: Vec<Arc<dyn datafusion::physical_plan::streaming::PartitionStream>> = paths
        .iter()
        .map(|p| {
            Arc::new(DecodedFile {
                path: PathBuf::from(p),
                format: fmt,
                read: read.clone(),
                schema: Arc::clone(&schema),
            }) as _
        })
        .collect();
    let table =
        datafusion::catalog::streaming::StreamingTable::try_new(schema, parts).map_err(df_err)?;
    ctx.read_table(Arc::new(table)).map_err(df_err)
}

/// One compressed file, streamed through [`Input`].
#[derive(Debug)]
struct DecodedFile {
    path: PathBuf,
    format: Format,
    read: ReadOptions,
    schema: arrow::datatypes::SchemaRef,
}

impl datafusion::physical_plan::streaming::PartitionStream for DecodedFile {
    fn schema(&self) -> &arrow::datatypes::SchemaRef {
        &self.schema
    }

    fn execute(
        &self,
        _ctx: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::execution::SendableRecordBatchStream {
        use datafusion::error::DataFusionError;
        type Item = datafusion::error::Result<arrow::record_batch::RecordBatch>;
        let (tx, rx) = tokio::sync::mpsc::channel::<Item>(2);
        let (path, format, read, schema) = (
            self.path.clone(),
            self.format,
            self.read.clone(),
            Arc::clone(&self.schema),
        );
        // Our messages never quote data; DataFusion passes them on as they are.
        let fail = |e: Error| DataFusionError::Execution(e.to_string());
        tokio::task::spawn_blocking(move || {
            let target = Arc::clone(&schema);
            let batches = Input::open(&path, format, &read, &move |_| Arc::clone(&target))
                .and_then(|i| i.batches());
            let batches = match batches {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.blocking_send(Err(fail(e)));
                    return;
                }
            };
            for b in batches {
                // The receiver is gone (the query ended or was cancelled): stop reading.
                if tx.blocking_send(b.map_err(fail)).is_err() {
                    return;
                }
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                stream,
            ),
        )
    }
}

/// One DataFusion scan of `paths`, all of format `fmt` with `schema`.
async fn read_files(
    ctx: &SessionContext,
    paths: Vec<String>,
    fmt: Format,
    ext: &str,
    schema: &Schema,
    read: &ReadOptions,
    first: &Path,
) -> Result<DataFrame> {
    match fmt {
        Format::Parquet => {
            let which = match paths.len() {
                1 => first.display().to_string(),
                n => format!(
                    "{} (or one of the {} other files of its table)",
                    first.display(),
                    n - 1
                ),
            };
            return ctx
                .read_parquet(paths, ParquetReadOptions::default().file_extension(ext))
                .await
                .map_err(|e| undecodable(&e, which).unwrap_or_else(|| df_err(e)));
        }
        Format::Csv => {
            let opts = CsvReadOptions::new()
                .has_header(true)
                .delimiter(read.delimiter_for(first))
                .file_extension(ext)
                .schema(schema);
            ctx.read_csv(paths, opts).await
        }
        Format::Ndjson => {
            // The schema `apply` reads (with the policy's `type:` overrides), not DataFusion's
            // own inference, so a `type: date` field is a date in the grouping pass too.
            let opts = JsonReadOptions::default()
                .file_extension(ext)
                .schema(schema);
            ctx.read_json(paths, opts).await
        }
    }
    .map_err(df_err)
}
