//! The output layout of a partitioned (`key=value/…`) directory input.
//!
//! A partition key is a column the policy transforms like any other. The output directory
//! names are written from the *transformed* values: a kept key keeps its directory, a
//! tokenized or generalized key renames it (`city=t_9f2c…`), a renamed field renames the key,
//! and a dropped key flattens that level. An encrypted key also flattens (its ciphertext
//! differs on every row) and stays a column of the files. Directory columns leave the files,
//! as in any Hive layout. Two input files that land on one output path after flattening are
//! told apart by a `-N` suffix (N = the input file's position).

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::Array;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};
use crate::io::partition::{PartitionValues, directory_name, partition_values, split_partition};
use crate::plan::Plan;
use crate::policy::Action;

/// One output column written as a directory level.
struct DirColumn {
    /// The partition key (input column) it comes from.
    key: String,
    /// Its index in the plan's output schema, and its output name.
    index: usize,
    name: String,
}

/// What one value column held over the whole file.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Nothing,
    One(Option<String>),
    Several,
}

pub(super) struct Layout {
    dirs: Vec<DirColumn>,
    /// Output columns kept in the file, by index.
    keep: Vec<usize>,
    file_schema: SchemaRef,
    seen: Mutex<Vec<Seen>>,
}

impl Layout {
    /// The layout of a file with partition keys `parts` planned by `plan`.
    pub(super) fn new(plan: &Plan, parts: &PartitionValues) -> Layout {
        let mut dirs = Vec::new();
        for (key, _) in parts {
            let Some(index) = plan
                .columns
                .iter()
                .position(|c| plan.input_schema.field(c.input_index).name() == key)
            else {
                continue; // dropped: the level flattens
            };
            if matches!(plan.columns[index].rule.action, Action::Encrypt(_)) {
                continue;
            }
            dirs.push(DirColumn {
                key: key.clone(),
                index,
                name: plan.output_schema.field(index).name().clone(),
            });
        }
        let keep: Vec<usize> = (0..plan.output_schema.fields().len())
            .filter(|i| !dirs.iter().any(|d| d.index == *i))
            .collect();
        let fields: Vec<_> = keep
            .iter()
            .map(|&i| plan.output_schema.fields()[i].clone())
            .collect();
        let file_schema = Arc::new(Schema::new_with_metadata(
            fields,
            plan.output_schema.metadata().clone(),
        ));
        let seen = Mutex::new(vec![Seen::Nothing; dirs.len()]);
        Layout {
            dirs,
            keep,
            file_schema,
            seen,
        }
    }

    /// The schema of the written file: the output schema without the directory columns.
    pub(super) fn file_schema(&self) -> SchemaRef {
        self.file_schema.clone()
    }

    /// Whether any column becomes a directory.
    pub(super) fn has_dirs(&self) -> bool {
        !self.dirs.is_empty()
    }

    /// Note the directory columns' values in `batch` and return the batch without them.
    pub(super) fn project(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.dirs.is_empty() {
            return Ok(batch.clone());
        }
        let options = FormatOptions::default();
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Error::Internal("layout lock poisoned".into()))?;
        for (d, s) in self.dirs.iter().zip(seen.iter_mut()) {
            let column = batch.column(d.index);
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
                .map_err(|e| Error::Internal(format!("formatting a partition value: {e}")))?;
            for row in 0..column.len() {
                if *s == Seen::Several {
                    break;
                }
                let v = column
                    .is_valid(row)
                    .then(|| formatter.value(row).to_string());
                *s = match std::mem::replace(s, Seen::Nothing) {
                    Seen::Nothing => Seen::One(v),
                    Seen::One(w) if w == v => Seen::One(w),
                    _ => Seen::Several,
                };
            }
        }
        batch
            .project(&self.keep)
            .map_err(|e| Error::Internal(format!("projecting partition columns: {e}")))
    }

    /// The output path of the file read from `rel` (relative to the input directory, with the
    /// output extension): each partition directory replaced by its transformed counterpart or
    /// removed. `taken` tells whether a path is already used; `n` is the file's position.
    pub(super) fn output_rel(
        &self,
        rel: &Path,
        n: usize,
        taken: impl Fn(&Path) -> bool,
    ) -> Result<PathBuf> {
        let seen = self
            .seen
            .lock()
            .map_err(|_| Error::Internal("layout lock poisoned".into()))?
            .clone();
        // The partition directories, decoded, in path order: walked in step with the path.
        let parts = partition_values(Path::new(""), rel)?;
        let mut parts = parts.iter();
        let mut out = PathBuf::new();
        let comps: Vec<Component> = rel.components().collect();
        let last = comps.len().saturating_sub(1);
        for (i, c) in comps.iter().enumerate() {
            let Component::Normal(name) = c else { continue };
            let is_partition = i < last && name.to_str().and_then(split_partition).is_some();
            let next = if is_partition { parts.next() } else { None };
            let Some((key, _)) = next else {
                out.push(name);
                continue;
            };
            let Some(pos) = self.dirs.iter().position(|d| &d.key == key) else {
                continue; // dropped or encrypted: flattened
            };
            match &seen[pos] {
                Seen::One(v) => out.push(directory_name(&self.dirs[pos].name, v.as_deref())),
                // A file left empty (e.g. every row suppressed) has no value to name its
                // directory by: it goes to the null partition, so the layout stays uniform and
                // no input value shows.
                Seen::Nothing => out.push(directory_name(&self.dirs[pos].name, None)),
                Seen::Several => {
                    return Err(Error::Usage(format!(
                        "partition key {key}: its transformed values differ between rows of one file, so they cannot name a directory; give it a deterministic action (keep, tokenize, generalize, mask, redact) or drop it"
                    )));
                }
            }
        }
        if taken(&out) {
            let stem = out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ext = out
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            // `x-2` may itself be an input's name: count on until a name is free.
            let mut k = n;
            loop {
                out.set_file_name(format!("{stem}-{k}{ext}"));
                if !taken(&out) {
                    break;
                }
                k += 1;
            }
        }
        Ok(out)
    }
}
