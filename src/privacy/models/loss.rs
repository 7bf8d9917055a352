//! Information-loss metrics of one node (height, precision, discernibility, average
//! class size) and the figures reported for them.

use crate::policy::LossMetric;
use crate::policy::hierarchy::QiHierarchy;
use crate::privacy::table::BaseTable;

use super::Models;
use super::classes::Classes;
pub use crate::provenance::record::LossFigures;

/// Weight of quasi-identifier `i` (1 when `weights` does not give one).
fn weight(weights: &[f64], i: usize) -> f64 {
    weights.get(i).copied().unwrap_or(1.0)
}

/// Weighted mean normalized level over the quasi-identifiers (0 = original, 1 = fully
/// generalized): Σ wᵢ·lᵢ/maxᵢ / Σ wᵢ; `weights` empty means 1 each.
pub fn mean_normalized_level(qis: &[QiHierarchy], weights: &[f64], levels: &[usize]) -> f64 {
    let mut sum = 0.0;
    let mut total = 0.0;
    for (i, (q, &l)) in qis.iter().zip(levels).enumerate() {
        let w = weight(weights, i);
        total += w;
        if q.max_level() > 0 {
            sum += w * l as f64 / q.max_level() as f64;
        }
    }
    if total > 0.0 { sum / total } else { 0.0 }
}

/// Weighted normalized generalization height: Σ wᵢ·lᵢ / Σ wᵢ·maxᵢ.
pub fn generalization_height(qis: &[QiHierarchy], weights: &[f64], levels: &[usize]) -> f64 {
    let mut sum = 0.0;
    let mut max = 0.0;
    for (i, (q, &l)) in qis.iter().zip(levels).enumerate() {
        let w = weight(weights, i);
        sum += w * l as f64;
        max += w * q.max_level() as f64;
    }
    if max > 0.0 { sum / max } else { 0.0 }
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
            let h = generalization_height(qis, &models.weights, levels);
            (h, h)
        }
        LossMetric::Precision => {
            let h = mean_normalized_level(qis, &models.weights, levels);
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
