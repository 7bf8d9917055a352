//! Composite column kernels a privacy decision puts into a plan: a quasi-identifier at its
//! chosen level, and the filter that drops suppressed classes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringBuilder};

use super::Kernel;
use crate::error::Problem;
use crate::kernels::{KernelError, KernelResult, utf8};

/// A quasi-identifier column at its chosen level: field-rule kernel, then a label lookup.
#[derive(Debug)]
pub struct LevelLookup {
    pub(crate) base: Kernel,
    pub(crate) labels: Arc<HashMap<String, Option<Arc<str>>>>,
    /// The label of null; `None` when no null was seen while grouping.
    pub(crate) null_label: Option<Option<Arc<str>>>,
}

impl LevelLookup {
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        let base = self.base.apply(array)?;
        let s = utf8(&base).map_err(|p| KernelError::Parameter(p.message))?;
        let s = s.as_string::<i32>();
        let mut b = StringBuilder::with_capacity(s.len(), s.len() * 8);
        for i in 0..s.len() {
            let label = if s.is_null(i) {
                self.null_label.as_ref().ok_or_else(|| {
                    KernelError::Parameter(
                        "a null was not seen when the input was grouped; did the input change \
                         during the run?"
                            .into(),
                    )
                })?
            } else {
                // The value itself stays out of the message: errors never carry data.
                self.labels.get(s.value(i)).ok_or_else(|| {
                    KernelError::Parameter(
                        "a value was not seen when the input was grouped; did the input change \
                         during the run?"
                            .into(),
                    )
                })?
            };
            match label {
                Some(l) => {
                    crate::kernels::room_for(b.values_slice().len(), l.len())?;
                    b.append_value(l)
                }
                None => b.append_null(),
            }
        }
        Ok(Arc::new(b.finish()))
    }
}

/// Drops the rows of suppressed classes, keyed by the released quasi-identifier labels.
#[derive(Debug)]
pub struct RowFilter {
    /// Output column indices of the quasi-identifiers.
    pub(crate) columns: Vec<usize>,
    pub(crate) codes: Arc<Vec<HashMap<String, u32>>>,
    pub(crate) null_codes: Vec<u32>,
    pub(crate) suppressed: Arc<HashSet<Box<[u32]>>>,
}

impl RowFilter {
    /// The rows to keep.
    pub fn keep(&self, batch: &RecordBatch) -> std::result::Result<BooleanArray, Problem> {
        let cols: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&c| utf8(batch.column(c)))
            .collect::<std::result::Result<_, _>>()?;
        let strs: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        let mut key = vec![0u32; cols.len()];
        let keep: Vec<bool> = (0..batch.num_rows())
            .map(|r| {
                for (i, s) in strs.iter().enumerate() {
                    key[i] = if s.is_null(r) {
                        self.null_codes[i]
                    } else {
                        self.codes[i].get(s.value(r)).copied().unwrap_or(u32::MAX)
                    };
                }
                !self.suppressed.contains(key.as_slice())
            })
            .collect();
        Ok(BooleanArray::from(keep))
    }
}
