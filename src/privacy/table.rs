//! The grouped input: distinct quasi-identifier tuples (dictionary codes) with their record
//! counts and, per sensitive attribute, the distribution of values within each tuple.
//!
//! Every privacy computation runs on this table, whose size is the number of distinct
//! quasi-identifier combinations, not the number of records.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;

use crate::error::Problem;

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
    qi_dicts: Vec<Dict>,
    qi_values: Vec<Vec<Option<String>>>,
    sa_dicts: Vec<Dict>,
    sa_values: Vec<Vec<Option<String>>>,
    tuple_index: HashMap<Box<[u32]>, u32, foldhash::fast::RandomState>,
    /// With dictionaries known up front: mixed-radix strides packing a tuple into a u64.
    packed: Option<(Vec<u64>, HashMap<u64, u32, foldhash::fast::RandomState>)>,
    tuples: Vec<u32>,
    counts: Vec<u64>,
    /// Per sensitive attribute: (tuple, code, count).
    sa_rows: Vec<Vec<(u32, u32, u64)>>,
    rows: u64,
}

/// Values and their codes, for coding a column outside the builder (e.g. inside a scan).
#[derive(Default, Clone, Debug)]
pub struct ValueDict {
    dict: Dict,
    pub values: Vec<Option<String>>,
}

impl ValueDict {
    pub fn code(&mut self, v: Option<&str>) -> u32 {
        code_of(&mut self.dict, &mut self.values, v)
    }

    /// The code of a value already in the dictionary.
    pub fn get(&self, v: Option<&str>) -> Option<u32> {
        match v {
            Some(s) => self.dict.map.get(s).copied(),
            None => self.dict.null,
        }
    }
}

/// Value -> code, with nulls apart so that lookups never allocate.
#[derive(Default, Clone, Debug)]
struct Dict {
    map: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    null: Option<u32>,
}

fn code_of(dict: &mut Dict, values: &mut Vec<Option<String>>, v: Option<&str>) -> u32 {
    let found = match v {
        Some(s) => dict.map.get(s).copied(),
        None => dict.null,
    };
    if let Some(c) = found {
        return c;
    }
    let c = values.len() as u32;
    values.push(v.map(str::to_string));
    match v {
        Some(s) => {
            dict.map.insert(s.into(), c);
        }
        None => dict.null = Some(c),
    }
    c
}

impl BaseTableBuilder {
    pub fn new(qi_names: Vec<String>, sa_names: Vec<String>) -> Self {
        let m = qi_names.len();
        let r = sa_names.len();
        BaseTableBuilder {
            qi_names,
            sa_names,
            qi_dicts: vec![Dict::default(); m],
            qi_values: vec![Vec::new(); m],
            sa_dicts: vec![Dict::default(); r],
            sa_values: vec![Vec::new(); r],
            tuple_index: HashMap::default(),
            packed: None,
            tuples: Vec::new(),
            counts: Vec::new(),
            sa_rows: vec![Vec::new(); r],
            rows: 0,
        }
    }

    /// The tuple id of one combination of quasi-identifier values (registered with count 0
    /// when new).
    pub fn tuple_id(&mut self, values: &[Option<&str>], key: &mut [u32]) -> u32 {
        for (i, k) in key.iter_mut().enumerate() {
            *k = code_of(&mut self.qi_dicts[i], &mut self.qi_values[i], values[i]);
        }
        match self.tuple_index.get(&*key) {
            Some(&t) => t,
            None => {
                let t = self.counts.len() as u32;
                self.tuple_index.insert(key.to_vec().into_boxed_slice(), t);
                self.tuples.extend_from_slice(key);
                self.counts.push(0);
                t
            }
        }
    }

    /// A builder whose values were coded elsewhere ([`ValueDict`]); rows come through
    /// [`BaseTableBuilder::add_codes`].
    pub fn from_dicts(
        qi_names: Vec<String>,
        sa_names: Vec<String>,
        qi: Vec<ValueDict>,
        sa: Vec<ValueDict>,
    ) -> Self {
        let mut b = Self::new(qi_names, sa_names);
        b.qi_values = qi.iter().map(|d| d.values.clone()).collect();
        b.qi_dicts = qi.into_iter().map(|d| d.dict).collect();
        b.sa_values = sa.iter().map(|d| d.values.clone()).collect();
        b.sa_dicts = sa.into_iter().map(|d| d.dict).collect();
        let mut strides = Vec::new();
        let mut product: Option<u64> = Some(1);
        for v in &b.qi_values {
            strides.push(product.unwrap_or(0));
            product = product.and_then(|p| p.checked_mul(v.len().max(1) as u64));
        }
        if product.is_some() {
            b.packed = Some((strides, HashMap::default()));
        }
        b
    }

    /// Count `n` records of a tuple the builder has not seen: the caller guarantees that
    /// `qi` is new (e.g. the rows of a GROUP BY over exactly the quasi-identifiers), which
    /// spares the lookup. Only for tables without sensitive attributes.
    pub fn add_distinct(&mut self, qi: &[u32], n: u64) -> Result<(), Problem> {
        if !self.sa_names.is_empty() {
            return Err("add_distinct needs a table without sensitive attributes".into());
        }
        for (i, &c) in qi.iter().enumerate() {
            if c as usize >= self.qi_values[i].len() {
                return Err(Problem(format!(
                    "unknown code {c} of `{}`",
                    self.qi_names[i]
                )));
            }
        }
        self.tuples.extend_from_slice(qi);
        self.counts.push(n);
        self.rows += n;
        Ok(())
    }

    /// Count `n` records with quasi-identifier codes `qi` and sensitive codes `sa`.
    pub fn add_codes(&mut self, qi: &[u32], sa: &[u32], n: u64) -> Result<(), Problem> {
        for (i, &c) in qi.iter().enumerate() {
            if c as usize >= self.qi_values[i].len() {
                return Err(Problem(format!(
                    "unknown code {c} of `{}`",
                    self.qi_names[i]
                )));
            }
        }
        let next = self.counts.len() as u32;
        let t = match &mut self.packed {
            Some((strides, index)) => {
                let key: u64 = qi
                    .iter()
                    .zip(strides.iter())
                    .map(|(&c, &s)| c as u64 * s)
                    .sum();
                *index.entry(key).or_insert(next)
            }
            None => match self.tuple_index.get(qi) {
                Some(&t) => t,
                None => {
                    self.tuple_index
                        .insert(qi.to_vec().into_boxed_slice(), next);
                    next
                }
            },
        };
        if t == next {
            self.tuples.extend_from_slice(qi);
            self.counts.push(0);
        }
        self.add(t, sa, n)
    }

    /// The code of a value of sensitive attribute `s`.
    pub fn sensitive_code(&mut self, s: usize, value: Option<&str>) -> u32 {
        code_of(&mut self.sa_dicts[s], &mut self.sa_values[s], value)
    }

    /// Count `n` records of tuple `t` with sensitive codes `sa`.
    pub fn add(&mut self, t: u32, sa: &[u32], n: u64) -> Result<(), Problem> {
        let count = self
            .counts
            .get_mut(t as usize)
            .ok_or_else(|| Problem(format!("unknown tuple id {t}")))?;
        *count += n;
        self.rows += n;
        for (s, &c) in sa.iter().enumerate() {
            if c as usize >= self.sa_values[s].len() {
                return Err(Problem(format!(
                    "unknown code {c} of `{}`",
                    self.sa_names[s]
                )));
            }
            self.sa_rows[s].push((t, c, n));
        }
        Ok(())
    }

    /// Add one batch: quasi-identifier columns, then sensitive columns, then an Int64 count
    /// column (or no count column: every row counts once).
    pub fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), Problem> {
        let m = self.qi_names.len();
        let r = self.sa_names.len();
        let cols = batch.num_columns();
        if cols != m + r && cols != m + r + 1 {
            return Err(Problem(format!(
                "grouped batch has {cols} columns, expected {} or {}",
                m + r,
                m + r + 1
            )));
        }
        let strings: Vec<ArrayRef> = (0..m + r)
            .map(|i| utf8(batch.column(i)))
            .collect::<Result<_, _>>()?;
        let strs: Vec<_> = strings.iter().map(|a| a.as_string::<i32>()).collect();
        let count_col = if cols == m + r + 1 {
            let c = batch.column(m + r);
            let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Int64)
                .map_err(|e| Problem(e.to_string()))?;
            Some(c)
        } else {
            None
        };
        let counts = count_col.as_ref().map(|c| c.as_primitive::<Int64Type>());
        let mut key = vec![0u32; m];
        let mut vals: Vec<Option<&str>> = vec![None; m];
        let mut sa = vec![0u32; r];
        for row in 0..batch.num_rows() {
            for (i, v) in vals.iter_mut().enumerate() {
                *v = value(strs[i], row);
            }
            let t = self.tuple_id(&vals, &mut key);
            for (s, c) in sa.iter_mut().enumerate() {
                *c = self.sensitive_code(s, value(strs[m + s], row));
            }
            let n = match counts {
                Some(c) => c.value(row).max(0) as u64,
                None => 1,
            };
            self.add(t, &sa, n)?;
        }
        Ok(())
    }

    /// Number of quasi-identifiers and sensitive attributes.
    pub fn arity(&self) -> (usize, usize) {
        (self.qi_names.len(), self.sa_names.len())
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

/// The value at `row`, `None` when null.
pub fn value(a: &arrow::array::StringArray, row: usize) -> Option<&str> {
    (!a.is_null(row)).then(|| a.value(row))
}

pub use crate::kernels::utf8;

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
