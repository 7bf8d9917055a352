//! `--partition-by`: the output written as Hive directories (`region=EU/part-00000.parquet`)
//! named by *transformed* values of output columns, never by the raw input.
//!
//! Each engine group is split by the partition columns' values; each piece is encoded as its
//! own row group of its directory's file, so memory stays one group whatever the number of
//! partitions. The columns leave the files, as in any Hive layout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, UInt32Array};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};
use crate::io::partition::directory_name;
use crate::plan::Plan;

/// Most distinct partitions one input file may open: each is an open file with its own
/// write buffer, and the usual limit of open files is 1,024.
pub(super) const MAX_PARTITIONS: usize = 256;

/// A directory name longer than this fails on common file systems and object-store UIs.
const MAX_NAME: usize = 255;

pub(super) struct Split {
    /// Output column index and name of each partition column, in `--partition-by` order.
    cols: Vec<(usize, String)>,
    keep: Vec<usize>,
    file_schema: SchemaRef,
}

/// One piece of a group: its directory (relative), its rows, its batches (file schema).
pub(super) struct Piece {
    pub dir: PathBuf,
    pub rows: usize,
    pub batches: Vec<RecordBatch>,
}

impl Split {
    /// Partition `plan`'s output by the output columns `by`. A column must exist after the
    /// policy and have a deterministic value (an encrypted column differs on every row).
    pub(super) fn new(plan: &Plan, by: &[String]) -> Result<Split> {
        let mut cols = Vec::new();
        for name in by {
            let Some(index) = plan
                .output_schema
                .fields()
                .iter()
                .position(|f| f.name() == name)
            else {
                let dropped = plan.dropped.iter().any(|d| &d.name == name);
                return Err(Error::Usage(format!(
                    "--partition-by {name}: {}; partition by a column of the output (after \
                     renames), e.g. a generalized one",
                    match dropped {
                        true => "the policy drops it",
                        false => "no output column has that name",
                    }
                )));
            };
            if !plan.columns[index].kernel.descriptor().deterministic {
                return Err(Error::Usage(format!(
                    "--partition-by {name}: its action gives a different value on every row \
                     (encryption), so it cannot name directories; partition by a tokenized, \
                     generalized or kept column"
                )));
            }
            if cols.iter().any(|(i, _)| *i == index) {
                return Err(Error::Usage(format!("--partition-by names {name} twice")));
            }
            cols.push((index, name.clone()));
        }
        if cols.len() == plan.output_schema.fields().len() {
            return Err(Error::Usage(
                "--partition-by names every output column; the files would have none left".into(),
            ));
        }
        let keep: Vec<usize> = (0..plan.output_schema.fields().len())
            .filter(|i| !cols.iter().any(|(c, _)| c == i))
            .collect();
        let fields: Vec<_> = keep
            .iter()
            .map(|&i| plan.output_schema.fields()[i].clone())
            .collect();
        let file_schema = Arc::new(Schema::new_with_metadata(
            fields,
            plan.output_schema.metadata().clone(),
        ));
        Ok(Split {
            cols,
            keep,
            file_schema,
        })
    }

    pub(super) fn file_schema(&self) -> SchemaRef {
        self.file_schema.clone()
    }

    /// Split `group` (batches of the plan's output schema) by partition, in order of first
    /// appearance; rows keep their order within a piece.
    pub(super) fn split(&self, group: &[RecordBatch]) -> Result<Vec<Piece>> {
        let options = FormatOptions::default();
        let mut pieces: Vec<Piece> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for batch in group {
            let formatters = self
                .cols
                .iter()
                .map(|(i, _)| {
                    let c = batch.column(*i);
                    ArrayFormatter::try_new(c.as_ref(), &options).map(|f| (c, f))
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Internal(format!("formatting a partition value: {e}")))?;
            // Rows of this batch, per piece.
            let mut rows: Vec<Vec<u32>> = Vec::new();
            let mut key = String::new();
            for row in 0..batch.num_rows() {
                key.clear();
                for (k, (c, f)) in formatters.iter().enumerate() {
                    let v = c.is_valid(row).then(|| f.value(row).to_string());
                    let name = directory_name(&self.cols[k].1, v.as_deref());
                    if name.len() > MAX_NAME {
                        return Err(Error::Usage(format!(
                            "--partition-by {}: a value is longer than {MAX_NAME} bytes once \
                             escaped and cannot name a directory; partition by a coarser \
                             (generalized) column",
                            self.cols[k].1
                        )));
                    }
                    if k > 0 {
                        key.push('/');
                    }
                    key.push_str(&name);
                }
                let p = match index.get(&key) {
                    Some(&p) => p,
                    None => {
                        if pieces.len() == MAX_PARTITIONS {
                            return Err(Error::Usage(format!(
                                "--partition-by: one input file holds more than \
                                 {MAX_PARTITIONS} distinct partitions; partition by a coarser \
                                 (generalized) column"
                            )));
                        }
                        index.insert(key.clone(), pieces.len());
                        pieces.push(Piece {
                            dir: key.split('/').collect(),
                            rows: 0,
                            batches: Vec::new(),
                        });
                        pieces.len() - 1
                    }
                };
                if rows.len() <= p {
                    rows.resize_with(p + 1, Vec::new);
                }
                rows[p].push(row as u32);
            }
            let projected = batch
                .project(&self.keep)
                .map_err(|e| Error::Internal(format!("projecting partition columns: {e}")))?;
            for (p, take) in rows.into_iter().enumerate() {
                if take.is_empty() {
                    continue;
                }
                let piece = if take.len() == batch.num_rows() {
                    projected.clone()
                } else {
                    let idx = UInt32Array::from(take);
                    arrow::compute::take_record_batch(&projected, &idx)
                        .map_err(|e| Error::Internal(format!("splitting a partition: {e}")))?
                };
                pieces[p].rows += piece.num_rows();
                pieces[p].batches.push(piece);
            }
        }
        Ok(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int8Type};

    fn split_of(cols: Vec<(usize, &str)>, schema: SchemaRef) -> Split {
        let keep = (0..schema.fields().len())
            .filter(|i| !cols.iter().any(|(c, _)| c == i))
            .collect::<Vec<_>>();
        let file_schema = Arc::new(schema.project(&keep).unwrap());
        Split {
            cols: cols.into_iter().map(|(i, n)| (i, n.to_string())).collect(),
            keep,
            file_schema,
        }
    }

    #[test]
    fn rows_go_to_their_partition_in_order_with_nulls_escapes_and_dictionaries() {
        let keys: DictionaryArray<Int8Type> =
            vec![Some("EU"), None, Some("a/b"), Some("EU"), Some("Zürich")]
                .into_iter()
                .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "region",
                DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("n", DataType::Int32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(keys),
                Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5])),
            ],
        )
        .unwrap();
        // A sliced batch: the split must read the slice's rows, not the buffer's.
        let sliced = batch.slice(1, 4);
        let s = split_of(vec![(0, "region")], schema);
        let pieces = s.split(&[batch, sliced]).unwrap();
        let dirs: Vec<String> = pieces.iter().map(|p| p.dir.display().to_string()).collect();
        assert_eq!(
            dirs,
            [
                "region=EU",
                "region=__HIVE_DEFAULT_PARTITION__",
                "region=a%2Fb",
                "region=Zürich"
            ]
        );
        let values = |p: &Piece| -> Vec<i32> {
            p.batches
                .iter()
                .flat_map(|b| {
                    let a = b.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
                    a.values().to_vec()
                })
                .collect()
        };
        assert_eq!(values(&pieces[0]), [1, 4, 4]);
        assert_eq!(values(&pieces[1]), [2, 2]);
        assert_eq!(values(&pieces[3]), [5, 5]);
        assert!(
            pieces
                .iter()
                .all(|p| p.batches.iter().all(|b| b.num_columns() == 1))
        );
    }

    #[test]
    fn too_many_partitions_and_overlong_values_are_refused_without_the_value() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
        ]));
        let ids: Vec<String> = (0..=MAX_PARTITIONS).map(|i| format!("secret{i}")).collect();
        let n = ids.len();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Int32Array::from(vec![0; n])),
            ],
        )
        .unwrap();
        let s = split_of(vec![(0, "id")], schema.clone());
        let e = s.split(&[batch]).err().unwrap().to_string();
        assert!(e.contains("more than 256"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let long = "x".repeat(300);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![long.as_str()])),
                Arc::new(Int32Array::from(vec![0])),
            ],
        )
        .unwrap();
        let e = s.split(&[batch]).err().unwrap().to_string();
        assert!(e.contains("longer than"), "{e}");
        assert!(!e.contains("xxxx"), "{e}");
    }
}
