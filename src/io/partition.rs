//! Hive-style partition directories (`currency=CNY/part-0.parquet`). Their keys are columns
//! like any other: read as Utf8 columns appended to every batch of the files below them, so
//! the policy must cover them (`unlisted: error` applies), the privacy models see them, and
//! the provenance records what was done to them.

use std::path::{Component, Path};
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

/// Hive's name for a null partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The partition columns of one file: `(key, value)` in directory order; a null value was
/// written as [`NULL_PARTITION`].
pub type PartitionValues = Vec<(String, Option<String>)>;

/// The `key=value` directories between `root` and `file`, in order, values percent-decoded.
/// The file name itself is never a partition.
pub fn partition_values(root: &Path, file: &Path) -> Result<PartitionValues> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let mut dirs: Vec<Component> = rel.components().collect();
    dirs.pop();
    let mut out = Vec::new();
    for c in dirs {
        let Component::Normal(name) = c else { continue };
        let Some((key, value)) = name.to_str().and_then(split_partition) else {
            continue;
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                Error::Usage(format!(
                    "{}: the partition directory `{}=…` has a malformed %-escape or is not UTF-8 once decoded",
                    withheld(root, file),
                    key
                ))
            })
        };
        let key = decode(key)?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(Error::Usage(format!(
                "{}: partition key {key} appears twice in the path; a layout names each key once",
                withheld(root, file)
            )));
        }
        let value = match value {
            NULL_PARTITION => None,
            v => Some(decode(v)?),
        };
        out.push((key, value));
    }
    Ok(out)
}

/// `key` and `value` of a directory name that is a partition (`key=value`, key not empty).
pub fn split_partition(name: &str) -> Option<(&str, &str)> {
    name.split_once('=').filter(|(k, _)| !k.is_empty())
}

/// `file` (below `root`) as provenance and logs may show it: each partition directory's value
/// withheld (`city=(withheld)`), since a partition value is a data value.
pub fn withheld(root: &Path, file: &Path) -> String {
    let Ok(rel) = file.strip_prefix(root) else {
        return file.display().to_string();
    };
    let comps: Vec<Component> = rel.components().collect();
    let mut out = root.to_path_buf();
    for (i, c) in comps.iter().enumerate() {
        let name = c.as_os_str();
        match name.to_str().and_then(split_partition) {
            Some((key, _)) if i + 1 < comps.len() => out.push(format!("{key}=(withheld)")),
            _ => out.push(name),
        }
    }
    out.display().to_string()
}

/// Every file of one input must have the same partition keys in the same order.
pub fn check_layout(root: &Path, files: &[(&Path, &PartitionValues)]) -> Result<()> {
    let Some((first, want)) = files.first() else {
        return Ok(());
    };
    let keys = |p: &PartitionValues| p.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    for (f, p) in &files[1..] {
        if keys(p) != keys(want) {
            return Err(Error::Usage(format!(
                "{}: the files below it are partitioned differently ({} has partition keys [{}], {} has [{}]); one input has one layout",
                root.display(),
                withheld(root, first),
                keys(want).join(", "),
                withheld(root, f),
                keys(p).join(", ")
            )));
        }
    }
    Ok(())
}

/// `schema` with one nullable Utf8 column per partition key appended. A key that is also a
/// column of the file is an error: which value would be the truth?
pub fn schema_with(schema: &Schema, parts: &PartitionValues, file: &Path) -> Result<SchemaRef> {
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    for (k, _) in parts {
        if schema.field_with_name(k).is_ok() {
            return Err(Error::Usage(format!(
                "{}: {k} is both a column of the file and a partition directory ({k}=…); rename one",
                file.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )));
        }
        fields.push(Arc::new(Field::new(k, DataType::Utf8, true)));
    }
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// `batch` with the partition columns appended (constant over its rows).
pub fn append(
    batch: RecordBatch,
    schema: &SchemaRef,
    parts: &PartitionValues,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (_, v) in parts {
        let array: StringArray = std::iter::repeat_n(v.as_deref(), n).collect();
        columns.push(Arc::new(array));
    }
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Internal(format!("appending partition columns: {e}")))
}

/// A directory name for `key` = `value`: characters other than `A-Z a-z 0-9 . _ -` and
/// non-ASCII letters are %-escaped (so `/`, `=`, `%` and control characters never reach a
/// path); null is [`NULL_PARTITION`].
pub fn directory_name(key: &str, value: Option<&str>) -> String {
    let v = match value {
        None => NULL_PARTITION.to_string(),
        // The text of the null marker itself must not read back as null (found by fuzzing).
        Some(NULL_PARTITION) => format!("%5F{}", &NULL_PARTITION[1..]),
        Some(v) => percent_encode(v),
    };
    let k = percent_encode(key);
    // `.` and `..` as a whole value would walk the tree.
    match v.as_str() {
        "." => format!("{k}=%2E"),
        ".." => format!("{k}=%2E%2E"),
        _ => format!("{k}={v}"),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '-')
            || (!c.is_ascii() && c.is_alphanumeric())
        {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            // from_str_radix alone would take a sign (`%+1`).
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(rel: &str) -> PartitionValues {
        partition_values(Path::new("/in"), &Path::new("/in").join(rel)).unwrap()
    }

    #[test]
    fn keys_come_from_directories_not_the_file_name() {
        assert_eq!(
            values("currency=CNY/year=2024/part=0.parquet"),
            vec![
                ("currency".to_string(), Some("CNY".to_string())),
                ("year".to_string(), Some("2024".to_string()))
            ]
        );
        assert!(values("sub/a.csv").is_empty());
        assert_eq!(
            values("x=__HIVE_DEFAULT_PARTITION__/a.csv"),
            vec![("x".into(), None)]
        );
        assert_eq!(values("x=/a.csv"), vec![("x".into(), Some(String::new()))]);
        assert!(values("=v/a.csv").is_empty());
    }

    #[test]
    fn escapes_round_trip_and_never_make_paths() {
        for v in [
            "a/b",
            "..",
            ".",
            "x=y",
            "100%",
            "北京",
            "tab\there",
            "",
            NULL_PARTITION,
        ] {
            let name = directory_name("k", Some(v));
            assert!(!name.contains('/') && !name.contains('\t'), "{name}");
            assert_ne!(name, "k=..");
            let parsed = values(&format!("{name}/f.csv"));
            assert_eq!(
                parsed,
                vec![("k".to_string(), Some(v.to_string()))],
                "{name}"
            );
        }
        assert_eq!(directory_name("k", None), "k=__HIVE_DEFAULT_PARTITION__");
        assert!(partition_values(Path::new("/in"), Path::new("/in/k=%ZZ/f.csv")).is_err());
        assert!(partition_values(Path::new("/in"), Path::new("/in/k=%+1/f.csv")).is_err());
    }

    #[test]
    fn withheld_paths_keep_keys_and_file_names_but_no_values() {
        let shown = withheld(
            Path::new("in"),
            Path::new("in/city=Paris/sub/zip=75001/p=1.csv"),
        );
        assert_eq!(shown, "in/city=(withheld)/sub/zip=(withheld)/p=1.csv");
        assert!(!shown.contains("Paris") && !shown.contains("75001"));
    }

    #[test]
    fn a_key_both_column_and_directory_is_refused() {
        let schema = Schema::new(vec![Field::new("k", DataType::Utf8, true)]);
        let parts = vec![("k".to_string(), Some("v".to_string()))];
        assert!(schema_with(&schema, &parts, Path::new("f.csv")).is_err());
    }

    #[test]
    fn mixed_layouts_are_refused() {
        let a = values("x=1/a.csv");
        let b = values("y=1/b.csv");
        let err = check_layout(
            Path::new("/in"),
            &[
                (Path::new("/in/x=1/a.csv"), &a),
                (Path::new("/in/y=1/b.csv"), &b),
            ],
        );
        assert!(err.is_err());
    }
}
