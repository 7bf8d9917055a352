//! Re-identification risks (prosecutor, journalist, marketer) and the full assessment of a
//! node that reports them with class sizes, achieved l/t and loss figures.

use crate::policy::LossMetric;
use crate::policy::hierarchy::QiHierarchy;
use crate::privacy::table::BaseTable;

use super::Models;
use super::checks::{NodeEval, StatsNeeds, sensitive_stats};
use super::loss::{generalization_height, mean_normalized_level};
pub use crate::provenance::record::{
    Assessment, LossFigures, Risks, SensitiveAchieved, SizeBucket,
};

/// Size distribution buckets of equivalence classes.
pub const SIZE_BUCKETS: &[(u64, u64)] = &[
    (1, 1),
    (2, 2),
    (3, 4),
    (5, 9),
    (10, 19),
    (20, 49),
    (50, 99),
    (100, 999),
    (1000, u64::MAX),
];

/// Describe `eval`, treating its violating classes as suppressed when `suppress` is set.
pub fn assess(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
    eval: &NodeEval,
    suppress: bool,
) -> Assessment {
    let records = &eval.classes.sizes;
    // With a subject column, a class's size is its number of distinct subjects: k, the size
    // figures and the risks are about people, not rows.
    let subjects: Option<Vec<u64>> = models.subject.as_ref().map(|a| {
        let own;
        let st = match &eval.sensitive[a.index] {
            Some(st) if st.distinct.len() == records.len() => st,
            _ => {
                let needs = StatsNeeds {
                    distinct: true,
                    ..StatsNeeds::default()
                };
                own = sensitive_stats(table, &eval.classes, a.index, &needs);
                &own
            }
        };
        st.distinct.iter().map(|&d| u64::from(d)).collect()
    });
    let sizes = subjects.as_ref().unwrap_or(records);
    let released = |c: usize| !(suppress && eval.violating[c]);
    let n = table.rows;
    let suppressed = if suppress { eval.suppressed } else { 0 };
    let kept_sizes: Vec<u64> = (0..sizes.len())
        .filter(|&c| released(c))
        .map(|c| sizes[c])
        .collect();
    let released_n: u64 = (0..records.len())
        .filter(|&c| released(c))
        .map(|c| records[c])
        .sum();
    let counted_n: u64 = kept_sizes.iter().sum();
    let smallest = kept_sizes.iter().copied().min().unwrap_or(0);
    let largest = kept_sizes.iter().copied().max().unwrap_or(0);
    let buckets = size_distribution(&kept_sizes);
    let below: Vec<u64> = (0..sizes.len())
        .filter(|&c| sizes[c] < models.k)
        .map(|c| records[c])
        .collect();
    let nk = kept_sizes.len() as f64;
    let risks = risks(models, &kept_sizes, counted_n, smallest);
    let sens = sensitive_achieved(table, models, eval, &released);
    let nf = n.max(1) as f64;
    let s = suppressed as f64;
    let loss = loss_figures(qis, models, eval, &released, released_n, nk, (nf, s));
    Assessment {
        levels: eval.levels.clone(),
        quasi_identifiers: qis
            .iter()
            .zip(&eval.levels)
            .map(|(q, &l)| (q.name.clone(), l, q.height()))
            .collect(),
        records: n,
        records_released: released_n,
        suppressed,
        suppressed_fraction: s / nf,
        classes: sizes.len() as u64,
        classes_released: kept_sizes.len() as u64,
        smallest_class: smallest,
        largest_class: largest,
        average_class_size: if nk == 0.0 {
            0.0
        } else {
            counted_n as f64 / nk
        },
        records_below_k: below.iter().sum(),
        classes_below_k: below.len() as u64,
        size_distribution: buckets,
        sensitive: sens,
        risks,
        loss,
        satisfied: eval.ok,
        transformations: Vec::new(),
        counted: models.counted(),
    }
}

/// Released classes and records per [`SIZE_BUCKETS`] bucket.
fn size_distribution(kept_sizes: &[u64]) -> Vec<SizeBucket> {
    let mut buckets: Vec<SizeBucket> = SIZE_BUCKETS
        .iter()
        .map(|&(lo, hi)| SizeBucket {
            size: if hi == u64::MAX {
                format!("{lo}+")
            } else if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            },
            classes: 0,
            records: 0,
        })
        .collect();
    for &s in kept_sizes {
        if let Some(i) = SIZE_BUCKETS.iter().position(|&(lo, hi)| s >= lo && s <= hi) {
            buckets[i].classes += 1;
            buckets[i].records += s;
        }
    }
    buckets
}

/// Prosecutor, journalist and marketer risks of the released classes.
fn risks(models: &Models, kept_sizes: &[u64], released_n: u64, smallest: u64) -> Risks {
    let k_threshold = if models.k > 1 { models.k } else { 2 };
    let f = models.sampling_fraction;
    let nk = kept_sizes.len() as f64;
    let rn = released_n.max(1) as f64;
    if released_n == 0 {
        return Risks {
            prosecutor_highest: 0.0,
            prosecutor_average: 0.0,
            records_at_risk: 0.0,
            journalist_highest: 0.0,
            marketer: 0.0,
            sampling_fraction: f,
        };
    }
    let at_risk: u64 = kept_sizes.iter().filter(|&&s| s < k_threshold).sum();
    Risks {
        prosecutor_highest: 1.0 / smallest as f64,
        prosecutor_average: nk / rn,
        records_at_risk: at_risk as f64 / rn,
        // Population class size estimated as size / f (never below the sample's).
        journalist_highest: (f / smallest as f64).min(1.0),
        marketer: (nk * f / rn).min(1.0),
        sampling_fraction: f,
    }
}

/// Achieved l and t over the released classes, per sensitive attribute a criterion names.
fn sensitive_achieved(
    table: &BaseTable,
    models: &Models,
    eval: &NodeEval,
    released: &impl Fn(usize) -> bool,
) -> Vec<SensitiveAchieved> {
    let cl = &eval.classes;
    let released: Vec<bool> = (0..cl.sizes.len()).map(released).collect();
    let report_needs = StatsNeeds {
        distinct: true,
        entropy: true,
        ..StatsNeeds::default()
    };
    let mut sens = Vec::new();
    let subject = models.subject.as_ref().map(|a| a.index);
    for (s, st) in eval.sensitive.iter().enumerate() {
        let Some(st) = st else { continue };
        if Some(s) == subject {
            continue;
        }
        // Distinct and entropy l are reported for every named attribute, even when no
        // criterion had them computed during the search.
        let own;
        let base = match &models.needs()[s] {
            Some(n) if n.distinct && n.entropy => st,
            _ => {
                own = sensitive_stats(table, cl, s, &report_needs);
                &own
            }
        };
        let kept = |c: &usize| released[*c];
        let distinct = (0..cl.sizes.len())
            .filter(kept)
            .map(|c| base.distinct[c])
            .min()
            .unwrap_or(0);
        let entropy = (0..cl.sizes.len())
            .filter(kept)
            .map(|c| base.entropy_l[c])
            .fold(f64::INFINITY, f64::min);
        let mut a = SensitiveAchieved {
            attribute: table.sensitive[s].name.clone(),
            distinct_l: distinct,
            entropy_l: if entropy.is_finite() { entropy } else { 0.0 },
            t: Vec::new(),
        };
        for c in models
            .criteria()
            .iter()
            .filter(|c| c.attribute() == Some(s))
        {
            c.achieved(st, &released, &mut a);
        }
        sens.push(a);
    }
    sens
}

/// Every loss figure; `nk` released classes, `nf` records (at least 1), `s` suppressed.
fn loss_figures(
    qis: &[QiHierarchy],
    models: &Models,
    eval: &NodeEval,
    released: &impl Fn(usize) -> bool,
    released_n: u64,
    nk: f64,
    (nf, s): (f64, f64),
) -> LossFigures {
    let h = mean_normalized_level(qis, &models.weights, &eval.levels);
    let mut dm = 0.0;
    for (c, &size) in eval.classes.sizes.iter().enumerate() {
        let sz = size as f64;
        dm += if released(c) { sz * sz } else { sz * nf };
    }
    let k = models.k as f64;
    LossFigures {
        metric: models.metric.keyword().into(),
        value: match models.metric {
            LossMetric::Height => generalization_height(qis, &models.weights, &eval.levels),
            LossMetric::Precision => ((nf - s) * h + s) / nf,
            LossMetric::Discernibility => dm,
            LossMetric::AvgClassSize => {
                if nk == 0.0 {
                    f64::INFINITY
                } else {
                    released_n as f64 / nk / k
                }
            }
        },
        generalization_height: generalization_height(qis, &models.weights, &eval.levels),
        precision: ((nf - s) * h + s) / nf,
        discernibility: dm,
        discernibility_normalized: dm / (nf * nf),
        avg_class_size: if nk == 0.0 {
            0.0
        } else {
            released_n as f64 / nk / k
        },
        suppressed_fraction: s / nf,
    }
}
