//! The grouped input: distinct quasi-identifier tuples (dictionary codes) with their record
//! counts and, per sensitive attribute, the distribution of values within each tuple.
//!
//! Every privacy computation runs on this table, whose size is the number of distinct
//! quasi-identifier combinations, not the number of records.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;

use crate::kernels::canonical_strings;

/// One sensitive attribute over the table's tuples.
#[derive(Debug, Clone)]
pub struct SensitiveColumn {
    pub name: String,
    /// Code → value (`None` is null).
    pub values: Vec<Option<String>>,
    /// Tuple `t` holds `entries[offsets[t]..offsets[t + 1]]` as (code, count).
    pub offsets: Vec<usize>,
    pub entries: Vec<(u32, u64)>,
    /// Records per code in the whole table.
    pub totals: Vec<u64>,
    /// Rank of each code in value order (numeric when every value is a number), for the
    /// ordered distance of t-closeness.
    pub rank: Vec<u32>,
    /// Whether the values are all numbers.
    pub numeric: bool,
}

/// Distinct quasi-identifier tuples with counts.
#[derive(Debug, Clone)]
pub struct BaseTable {
    /// Records in the table.
    pub rows: u64,
    pub qi_names: Vec<String>,
    /// Per quasi-identifier: code → level-0 value (`None` is null).
    pub qi_values: Vec<Vec<Option<String>>>,
    /// Tuple-major codes, `qi_names.len()` per tuple.
    pub tuples: Vec<u32>,
    /// Records per tuple.
    pub counts: Vec<u64>,
    pub sensitive: Vec<SensitiveColumn>,
}

impl BaseTable {
    pub fn num_tuples(&self) -> usize {
        self.counts.len()
    }
    pub fn tuple(&self, t: usize) -> &[u32] {
        let m = self.qi_names.len();
        &self.tuples[t * m..(t + 1) * m]
    }
}

/// Builds a [`BaseTable`] from batches of `(qi..., sensitive..., count)` rows, e.g. the result
/// of a GROUP BY. Rows may repeat a combination; counts add up.
pub struct BaseTableBuilder {
    qi_names: Vec<String>,
    sa_names: Vec<String>,
    qi_dicts: Vec<HashMap<Option<String>, u32>>,
    qi_values: Vec<Vec<Option<String>>>,
    sa_dicts: Vec<HashMap<Option<String>, u32>>,
    sa_values: Vec<Vec<Option<String>>>,
    tuple_index: HashMap<Box<[u32]>, u32>,
    tuples: Vec<u32>,
    counts: Vec<u64>,
    /// Per sensitive attribute: (tuple, code, count).
    sa_rows: Vec<Vec<(u32, u32, u64)>>,
    rows: u64,
}

fn code_of(
    dict: &mut HashMap<Option<String>, u32>,
    values: &mut Vec<Option<String>>,
    v: Option<&str>,
) -> u32 {
    // Look up without allocating; insert on a miss.
    if let Some(&c) = dict.get(&v.map(str::to_string)) {
        return c;
    }
    let c = values.len() as u32;
    values.push(v.map(str::to_string));
    dict.insert(v.map(str::to_string), c);
    c
}

impl BaseTableBuilder {
    pub fn new(qi_names: Vec<String>, sa_names: Vec<String>) -> Self {
        let m = qi_names.len();
        let r = sa_names.len();
        BaseTableBuilder {
            qi_names,
            sa_names,
            qi_dicts: vec![HashMap::new(); m],
            qi_values: vec![Vec::new(); m],
            sa_dicts: vec![HashMap::new(); r],
            sa_values: vec![Vec::new(); r],
            tuple_index: HashMap::new(),
            tuples: Vec::new(),
            counts: Vec::new(),
            sa_rows: vec![Vec::new(); r],
            rows: 0,
        }
    }

    /// Add one batch: quasi-identifier columns, then sensitive columns, then an Int64 count
    /// column (or no count column: every row counts once).
    pub fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let m = self.qi_names.len();
        let r = self.sa_names.len();
        let cols = batch.num_columns();
        if cols != m + r && cols != m + r + 1 {
            return Err(format!(
                "grouped batch has {cols} columns, expected {} or {}",
                m + r,
                m + r + 1
            ));
        }
        let strings: Vec<ArrayRef> = (0..m + r)
            .map(|i| utf8(batch.column(i)))
            .collect::<Result<_, _>>()?;
        let strs: Vec<_> = strings.iter().map(|a| a.as_string::<i32>()).collect();
        let count_col = if cols == m + r + 1 {
            let c = batch.column(m + r);
            let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Int64)
                .map_err(|e| e.to_string())?;
            Some(c)
        } else {
            None
        };
        let counts = count_col.as_ref().map(|c| c.as_primitive::<Int64Type>());
        let mut key = vec![0u32; m];
        for row in 0..batch.num_rows() {
            for (i, k) in key.iter_mut().enumerate() {
                let a = strs[i];
                let v = (!a.is_null(row)).then(|| a.value(row));
                *k = code_of(&mut self.qi_dicts[i], &mut self.qi_values[i], v);
            }
            let n = match counts {
                Some(c) => c.value(row).max(0) as u64,
                None => 1,
            };
            let t = match self.tuple_index.get(key.as_slice()) {
                Some(&t) => t,
                None => {
                    let t = self.counts.len() as u32;
                    self.tuple_index.insert(key.clone().into_boxed_slice(), t);
                    self.tuples.extend_from_slice(&key);
                    self.counts.push(0);
                    t
                }
            };
            self.counts[t as usize] += n;
            self.rows += n;
            for s in 0..r {
                let a = strs[m + s];
                let v = (!a.is_null(row)).then(|| a.value(row));
                let c = code_of(&mut self.sa_dicts[s], &mut self.sa_values[s], v);
                self.sa_rows[s].push((t, c, n));
            }
        }
        Ok(())
    }

    pub fn finish(self) -> BaseTable {
        let n_tuples = self.counts.len();
        let mut sensitive = Vec::new();
        for ((name, values), mut rows) in self
            .sa_names
            .into_iter()
            .zip(self.sa_values)
            .zip(self.sa_rows)
        {
            rows.sort_unstable_by_key(|&(t, c, _)| (t, c));
            let mut offsets = Vec::with_capacity(n_tuples + 1);
            let mut entries: Vec<(u32, u64)> = Vec::with_capacity(rows.len());
            let mut totals = vec![0u64; values.len()];
            let mut i = 0;
            for t in 0..n_tuples as u32 {
                offsets.push(entries.len());
                while i < rows.len() && rows[i].0 == t {
                    let (_, c, n) = rows[i];
                    totals[c as usize] += n;
                    let in_tuple = entries.len() > offsets[t as usize];
                    match entries.last_mut() {
                        Some(last) if in_tuple && last.0 == c => last.1 += n,
                        _ => entries.push((c, n)),
                    }
                    i += 1;
                }
            }
            offsets.push(entries.len());
            let (rank, numeric) = rank_values(&values);
            sensitive.push(SensitiveColumn {
                name,
                values,
                offsets,
                entries,
                totals,
                rank,
                numeric,
            });
        }
        BaseTable {
            rows: self.rows,
            qi_names: self.qi_names,
            qi_values: self.qi_values,
            tuples: self.tuples,
            counts: self.counts,
            sensitive,
        }
    }
}

/// The canonical strings of `array` as a `Utf8` array.
pub fn utf8(array: &ArrayRef) -> Result<ArrayRef, String> {
    let s = canonical_strings(array).map_err(|e| e.to_string())?;
    if s.data_type() == &arrow::datatypes::DataType::Utf8 {
        Ok(s)
    } else {
        arrow::compute::cast(&s, &arrow::datatypes::DataType::Utf8).map_err(|e| e.to_string())
    }
}

/// Rank codes by value: numerically when all non-null values parse as numbers, else by text;
/// null first.
fn rank_values(values: &[Option<String>]) -> (Vec<u32>, bool) {
    let nums: Vec<Option<f64>> = values
        .iter()
        .map(|v| v.as_deref().and_then(|s| s.trim().parse::<f64>().ok()))
        .collect();
    let numeric = values
        .iter()
        .zip(&nums)
        .all(|(v, n)| v.is_none() || n.is_some_and(f64::is_finite));
    let mut order: Vec<usize> = (0..values.len()).collect();
    if numeric {
        order.sort_by(|&a, &b| {
            nums[a]
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&nums[b].unwrap_or(f64::NEG_INFINITY))
        });
    } else {
        order.sort_by(|&a, &b| values[a].cmp(&values[b]));
    }
    let mut rank = vec![0u32; values.len()];
    for (r, &c) in order.iter().enumerate() {
        rank[c] = r as u32;
    }
    (rank, numeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn groups_and_distributions() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "age",
                Arc::new(Int64Array::from(vec![Some(30), Some(30), None, Some(30)])) as ArrayRef,
            ),
            (
                "zip",
                Arc::new(StringArray::from(vec!["100", "100", "200", "100"])),
            ),
            (
                "dx",
                Arc::new(StringArray::from(vec![
                    Some("flu"),
                    Some("hiv"),
                    None,
                    Some("flu"),
                ])),
            ),
            ("n", Arc::new(Int64Array::from(vec![2, 1, 1, 3]))),
        ])
        .unwrap();
        let mut b = BaseTableBuilder::new(vec!["age".into(), "zip".into()], vec!["dx".into()]);
        b.push_batch(&batch).unwrap();
        let t = b.finish();
        assert_eq!(t.rows, 7);
        assert_eq!(t.num_tuples(), 2);
        assert_eq!(t.counts, [6, 1]);
        assert_eq!(t.qi_values[0], [Some("30".to_string()), None]);
        let dx = &t.sensitive[0];
        assert_eq!(&dx.entries[dx.offsets[0]..dx.offsets[1]], &[(0, 5), (1, 1)]);
        assert_eq!(dx.totals, [5, 1, 1]);
        assert!(!dx.numeric);
        assert_eq!(dx.rank, [1, 2, 0]);
    }

    #[test]
    fn numeric_ranks() {
        let v: Vec<Option<String>> = ["10", "9", "100"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        assert_eq!(rank_values(&v), (vec![1, 0, 2], true));
    }
}
