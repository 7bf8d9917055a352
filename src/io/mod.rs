//! Reading and writing record batches: Parquet, CSV and NDJSON in and out. CSV and NDJSON
//! files may be gzip- or zstd-compressed (`.csv.gz`, `.ndjson.zst`…), decoded and encoded as
//! they stream.
//!
//! Readers stream batch by batch. Writers write to a temporary file beside the destination,
//! which [`AtomicFile::commit`] renames into place; dropping it uncommitted deletes it, so a
//! failed run leaves no partial output.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;

use crate::error::{Error, Problem, Result};

pub mod arrival;
mod commit;
mod files;
mod location;
pub mod partition;
mod read;
pub mod store;
mod write;

pub use commit::*;
pub use files::*;
pub use location::Location;

/// A URL as shown in messages and records: without user info or query string.
pub fn location_redacted(url: &str) -> String {
    location::redact_url(url)
}
pub(crate) use location::redact_url;
pub use read::*;
pub use write::*;

/// Data file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    Parquet,
    Csv,
    Ndjson,
}

impl std::str::FromStr for Format {
    type Err = Problem;
    /// `parquet`, `csv` or `ndjson` (any case).
    fn from_str(s: &str) -> std::result::Result<Self, Problem> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" => Ok(Format::Parquet),
            "csv" => Ok(Format::Csv),
            "ndjson" => Ok(Format::Ndjson),
            _ => Err(Problem(format!(
                "unknown format {s:?}; use parquet, csv or ndjson"
            ))),
        }
    }
}

impl Format {
    /// Guess from a file extension, looking under a compression suffix (`a.csv.gz` is CSV).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = data_extension(path)?;
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

/// Stream compression of a CSV or NDJSON file, from its last extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    None,
    /// `.gz` / `.gzip` (several concatenated members are read as one stream).
    Gzip,
    /// `.zst` / `.zstd`.
    Zstd,
}

impl Compression {
    pub fn from_path(path: &Path) -> Compression {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("gz" | "gzip") => Compression::Gzip,
            Some("zst" | "zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// The extension naming a file's data format, lowercase: under a compression suffix when
/// there is one (`a.tsv.gz` → `tsv`).
pub fn data_extension(path: &Path) -> Option<String> {
    let inner = match Compression::from_path(path) {
        Compression::None => path.to_path_buf(),
        _ => Path::new(path.file_stem()?).to_path_buf(),
    };
    Some(inner.extension()?.to_str()?.to_ascii_lowercase())
}

/// The output file of a directory run for the input file `rel`: its data extension replaced
/// by `format`'s, a compression suffix dropped (`a.csv.gz` → `a.parquet`, not
/// `a.csv.parquet`); outputs of a directory run are not compressed.
pub fn output_file_name(rel: &Path, format: Format) -> PathBuf {
    let base = match Compression::from_path(rel) {
        Compression::None => rel.to_path_buf(),
        _ => rel.with_extension(""),
    };
    base.with_extension(format.extension())
}

/// Refuse an output this build cannot write at `path` in `format`: Parquet compresses its
/// pages itself, so a `.gz`/`.zst` Parquet file would be neither Parquet nor useful.
pub fn check_output(path: &Path, format: Format) -> Result<()> {
    if format == Format::Parquet && Compression::from_path(path) != Compression::None {
        return Err(Error::Usage(format!(
            "{}: Parquet output cannot be gzip/zstd-compressed as a whole (Parquet compresses \
             its pages itself, with zstd); drop the .gz/.zst suffix, or write CSV or NDJSON",
            path.display()
        )));
    }
    Ok(())
}

/// Options for reading text formats.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ReadOptions {
    pub batch_size: usize,
    /// CSV delimiter; `,` (the default) means tab for a `.tsv` file unless
    /// `delimiter_given`.
    pub delimiter: u8,
    /// The delimiter was chosen explicitly (`--delimiter`): a `.tsv` file is read with it too.
    pub delimiter_given: bool,
    /// Rows read to infer CSV/NDJSON column types; 0 reads the whole file first.
    pub infer_rows: usize,
    /// Read every CSV column, and every scalar NDJSON field, as a string (`Utf8`); the
    /// policy's `type:` overrides still apply.
    pub all_strings: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_size: 8192,
            delimiter: b',',
            delimiter_given: false,
            infer_rows: 10_000,
            all_strings: false,
        }
    }
}

/// Largest accepted batch size: readers allocate a batch up front, so a huge one aborts.
pub const MAX_BATCH_ROWS: usize = 1 << 20;

impl ReadOptions {
    /// Set the rows per batch (checked by [`ReadOptions::check`]).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Set the CSV delimiter; `,` means tab for a `.tsv` file.
    #[must_use]
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Set the CSV delimiter as chosen explicitly: used for `.tsv` files too.
    #[must_use]
    pub fn with_explicit_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self.delimiter_given = true;
        self
    }

    /// Set the rows read to infer CSV/NDJSON column types (0: the whole file).
    #[must_use]
    pub fn with_infer_rows(mut self, infer_rows: usize) -> Self {
        self.infer_rows = infer_rows;
        self
    }

    /// Read every CSV/NDJSON column as a string.
    #[must_use]
    pub fn with_all_strings(mut self, yes: bool) -> Self {
        self.all_strings = yes;
        self
    }

    /// The inference window as Arrow takes it (`None`: the whole file).
    pub(crate) fn infer_limit(&self) -> Option<usize> {
        (self.infer_rows > 0).then_some(self.infer_rows)
    }

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

    /// The delimiter of the CSV file at `path`: tab for `.tsv` (also `.tsv.gz`) unless
    /// another was chosen.
    pub fn delimiter_for(&self, path: &Path) -> u8 {
        if self.delimiter_given {
            self.delimiter
        } else {
            default_delimiter(path, self.delimiter)
        }
    }
}

/// `delimiter`, except that the default `,` means tab for a `.tsv` path (also `.tsv.gz`).
pub fn default_delimiter(path: &Path, delimiter: u8) -> u8 {
    let tsv = data_extension(path).is_some_and(|e| e == "tsv");
    if tsv && delimiter == b',' {
        b'\t'
    } else {
        delimiter
    }
}

/// A batch stream that can be moved to a reader thread.
pub type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// Rows per Parquet row group (and per unit of parallel work).
pub const ROW_GROUP_ROWS: usize = 65_536;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Schema;
    use std::fs::File;
    use std::sync::Arc;

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
        assert_eq!(o.delimiter_for(Path::new("a.tsv.gz")), b'\t');
        assert_eq!(default_delimiter(Path::new("d/a.TSV.zst"), b','), b'\t');
        o.delimiter = b';';
        assert_eq!(o.delimiter_for(Path::new("a.tsv")), b';');
        // Chosen explicitly, even `,` is used for a .tsv file.
        let o = ReadOptions::default().with_explicit_delimiter(b',');
        assert_eq!(o.delimiter_for(Path::new("a.tsv")), b',');
    }

    #[test]
    fn formats_are_found_under_compression_suffixes() {
        for (p, f, c) in [
            ("a.csv.gz", Some(Format::Csv), Compression::Gzip),
            ("a.TSV.ZST", Some(Format::Csv), Compression::Zstd),
            ("a.jsonl.gzip", Some(Format::Ndjson), Compression::Gzip),
            ("a.ndjson.zstd", Some(Format::Ndjson), Compression::Zstd),
            ("a.parquet", Some(Format::Parquet), Compression::None),
            ("a.gz", None, Compression::Gzip),
            ("a.txt.gz", None, Compression::Gzip),
        ] {
            assert_eq!(Format::from_path(Path::new(p)), f, "{p}");
            assert_eq!(Compression::from_path(Path::new(p)), c, "{p}");
        }
        assert_eq!(
            output_file_name(Path::new("d/a.csv.gz"), Format::Parquet),
            Path::new("d/a.parquet")
        );
        assert_eq!(
            output_file_name(Path::new("a.ndjson"), Format::Csv),
            Path::new("a.csv")
        );
        assert!(check_output(Path::new("o.parquet.gz"), Format::Parquet).is_err());
        assert!(check_output(Path::new("o.csv.gz"), Format::Csv).is_ok());
    }
}
