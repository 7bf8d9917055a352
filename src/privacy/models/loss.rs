//! Information-loss metrics of one node (height, precision, discernibility, average
//! class size) and the figures reported for them.

use crate::policy::LossMetric;
use crate::policy::hierarchy::QiHierarchy;
use crate::privacy::table::BaseTable;

use super::Models;
use super::classes::Classes;
pub use crate::provenance::record::LossFigures;

/// Mean normalized level over the quasi-identifiers (0 = original, 1 = fully generalized).
pub fn mean_normalized_level(qis: &[QiHierarchy], levels: &[usize]) -> f64 {
    let parts: Vec<f64> = qis
        .iter()
        .zip(levels)
        .map(|(q, &l)| {
            if q.max_level() == 0 {
                0.0
            } else {
                l as f64 / q.max_level() as f64
            }
        })
        .collect();
    parts.iter().sum::<f64>() / parts.len().max(1) as f64
}

/// Normalized generalization height: sum of levels over sum of maximum levels.
pub fn generalization_height(qis: &[QiHierarchy], levels: &[usize]) -> f64 {
    let max: usize = qis.iter().map(QiHierarchy::max_level).sum();
    if max == 0 {
        0.0
    } else {
        levels.iter().sum::<usize>() as f64 / max as f64
    }
}

/// The metric value and its monotone lower bound, with the node's suppression applied.
pub(super) fn loss(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
    levels: &[usize],
    cl: &Classes,
    violating: &[bool],
    suppressed: u64,
) -> (f64, f64) {
    let n = table.rows.max(1) as f64;
    let s = suppressed as f64;
    match models.metric {
        LossMetric::Height => {
            let h = generalization_height(qis, levels);
            (h, h)
        }
        LossMetric::Precision => {
            let h = mean_normalized_level(qis, levels);
            (((n - s) * h + s) / n, h)
        }
        LossMetric::Discernibility => {
            let mut dm = 0.0;
            let mut all = 0.0;
            for (size, v) in cl.sizes.iter().zip(violating) {
                let sz = *size as f64;
                all += sz * sz;
                dm += if *v { sz * n } else { sz * sz };
            }
            (dm, all)
        }
        LossMetric::AvgClassSize => {
            let kept = violating.iter().filter(|v| !**v).count() as f64;
            let k = models.k as f64;
            let value = if kept == 0.0 {
                f64::INFINITY
            } else {
                (n - s) / kept / k
            };
            let bound = n * (1.0 - models.max_suppression) / cl.sizes.len().max(1) as f64 / k;
            (value, bound)
        }
    }
}
