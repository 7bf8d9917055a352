//! Model checks of one node: k-anonymity, the l-diversity variants and t-closeness,
//! from per-class sensitive-attribute statistics.

use crate::policy::hierarchy::QiHierarchy;
use crate::policy::{LVariant, TDistance};
use crate::privacy::table::BaseTable;

use super::Models;
use super::classes::{Classes, Scratch, classes};
use super::loss::loss;

/// Per-class statistics of one sensitive attribute.
#[derive(Debug, Clone, Default)]
pub struct SensitiveStats {
    pub distinct: Vec<u32>,
    /// exp(entropy): the entropy l of each class.
    pub entropy_l: Vec<f64>,
    /// Largest recursive-(c,l) l that holds with each rule's c; filled per l-rule.
    pub recursive_ok: Vec<Vec<bool>>,
    /// Distance to the whole-table distribution, per t-rule on this attribute.
    pub distance: Vec<Vec<f64>>,
}

/// Compute class statistics for sensitive attribute `s`: distinct values, entropy, the
/// recursive (c,l) checks in `recursive` and the distances in `distances`.
pub fn sensitive_stats(
    table: &BaseTable,
    classes: &Classes,
    s: usize,
    recursive: &[(f64, f64)],
    distances: &[TDistance],
) -> SensitiveStats {
    let col = &table.sensitive[s];
    let nc = classes.sizes.len();
    let (start, buf) = entries_by_class(table, classes, s);
    let d = col.values.len();
    let (q, q_by_rank) = global_distribution(table, s);
    let mut scratch = vec![0u64; d];
    let mut touched: Vec<u32> = Vec::new();
    let mut p_by_rank = vec![0.0; d];
    let mut out = SensitiveStats {
        distinct: Vec::with_capacity(nc),
        entropy_l: Vec::with_capacity(nc),
        recursive_ok: vec![Vec::with_capacity(nc); recursive.len()],
        distance: vec![Vec::with_capacity(nc); distances.len()],
    };
    let mut counts: Vec<u64> = Vec::new();
    for c in 0..nc {
        touched.clear();
        for &(code, n) in &buf[start[c]..start[c + 1]] {
            if scratch[code as usize] == 0 {
                touched.push(code);
            }
            scratch[code as usize] += n;
        }
        let size = classes.sizes[c] as f64;
        counts.clear();
        counts.extend(touched.iter().map(|&x| scratch[x as usize]));
        out.distinct
            .push(counts.iter().filter(|&&x| x > 0).count() as u32);
        let h: f64 = counts
            .iter()
            .filter(|&&x| x > 0)
            .map(|&x| {
                let p = x as f64 / size;
                -p * p.ln()
            })
            .sum();
        out.entropy_l.push(h.exp());
        if !recursive.is_empty() {
            counts.sort_unstable_by(|a, b| b.cmp(a));
            for (j, &(cc, l)) in recursive.iter().enumerate() {
                let l = l as usize;
                let tail: u64 = counts.iter().skip(l.saturating_sub(1)).sum();
                let ok = counts.len() >= l && (counts[0] as f64) < cc * tail as f64;
                out.recursive_ok[j].push(ok);
            }
        }
        for (j, dist) in distances.iter().enumerate() {
            let v = match dist {
                TDistance::Equal => {
                    let mut inside = 0.0;
                    let mut q_in = 0.0;
                    for &code in &touched {
                        let p = scratch[code as usize] as f64 / size;
                        inside += (p - q[code as usize]).abs();
                        q_in += q[code as usize];
                    }
                    0.5 * (inside + (1.0 - q_in).max(0.0))
                }
                TDistance::Ordered => {
                    if d <= 1 {
                        0.0
                    } else {
                        for &code in &touched {
                            p_by_rank[col.rank[code as usize] as usize] =
                                scratch[code as usize] as f64 / size;
                        }
                        let mut cum = 0.0;
                        let mut sum = 0.0;
                        for r in 0..d - 1 {
                            cum += p_by_rank[r] - q_by_rank[r];
                            sum += cum.abs();
                        }
                        for &code in &touched {
                            p_by_rank[col.rank[code as usize] as usize] = 0.0;
                        }
                        sum / (d - 1) as f64
                    }
                }
            };
            out.distance[j].push(v);
        }
        for &code in &touched {
            scratch[code as usize] = 0;
        }
    }
    out
}

/// Counting sort of attribute `s`'s tuple entries by class: class `c`'s entries are
/// `buf[start[c]..start[c + 1]]`.
fn entries_by_class(
    table: &BaseTable,
    classes: &Classes,
    s: usize,
) -> (Vec<usize>, Vec<(u32, u64)>) {
    let col = &table.sensitive[s];
    let nc = classes.sizes.len();
    let nt = table.num_tuples();
    let mut start = vec![0usize; nc + 1];
    for t in 0..nt {
        start[classes.class_of[t] as usize + 1] += col.offsets[t + 1] - col.offsets[t];
    }
    for c in 0..nc {
        start[c + 1] += start[c];
    }
    let mut pos = start.clone();
    let mut buf = vec![(0u32, 0u64); col.entries.len()];
    for t in 0..nt {
        let c = classes.class_of[t] as usize;
        for &e in &col.entries[col.offsets[t]..col.offsets[t + 1]] {
            buf[pos[c]] = e;
            pos[c] += 1;
        }
    }
    (start, buf)
}

/// Whole-table distribution of attribute `s`, by code and by rank (for the ordered distance).
fn global_distribution(table: &BaseTable, s: usize) -> (Vec<f64>, Vec<f64>) {
    let col = &table.sensitive[s];
    let d = col.values.len();
    let total: u64 = col.totals.iter().sum();
    let q: Vec<f64> = col
        .totals
        .iter()
        .map(|&x| x as f64 / total.max(1) as f64)
        .collect();
    let mut q_by_rank = vec![0.0; d];
    for (code, &r) in col.rank.iter().enumerate() {
        q_by_rank[r as usize] = q[code];
    }
    (q, q_by_rank)
}

/// The outcome of one node.
#[derive(Debug, Clone)]
pub struct NodeEval {
    pub levels: Vec<usize>,
    pub classes: Classes,
    /// Per class: whether it violates a model (its records are suppressed).
    pub violating: Vec<bool>,
    pub suppressed: u64,
    /// Records suppressed if only k-anonymity and distinct l-diversity counted.
    pub suppressed_monotone: u64,
    /// Models met within the suppression limit.
    pub ok: bool,
    /// The monotone part (k, distinct l) met within the limit; equals `ok` when all models
    /// are monotone.
    pub ok_monotone: bool,
    /// Loss under the chosen metric, suppression included.
    pub loss: f64,
    /// A lower bound of `loss` that never decreases under generalization.
    pub lower_bound: f64,
    /// Per sensitive attribute, the statistics computed (only attributes named by a model).
    pub sensitive: Vec<Option<SensitiveStats>>,
}

/// Evaluate every model and the metric at `levels`.
pub fn evaluate(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
    levels: &[usize],
    scratch: &mut Scratch,
) -> NodeEval {
    let cl = classes(table, qis, levels, scratch);
    let nc = cl.sizes.len();
    let mut violating: Vec<bool> = cl.sizes.iter().map(|&s| s < models.k).collect();
    let mut violating_mono = violating.clone();
    let mut sensitive: Vec<Option<SensitiveStats>> = vec![None; table.sensitive.len()];
    for s in 0..table.sensitive.len() {
        let recursive: Vec<(f64, f64)> = models
            .l
            .iter()
            .filter(|(i, r)| *i == s && r.variant == LVariant::Recursive)
            .map(|(_, r)| (r.c.unwrap_or(1.0), r.l))
            .collect();
        let dists: Vec<TDistance> = models
            .t
            .iter()
            .filter(|(i, _, _)| *i == s)
            .map(|&(_, _, d)| d)
            .collect();
        let named = models.l.iter().any(|(i, _)| *i == s) || !dists.is_empty();
        if !named {
            continue;
        }
        let st = sensitive_stats(table, &cl, s, &recursive, &dists);
        let mut rec_j = 0;
        for (i, r) in &models.l {
            if *i != s {
                continue;
            }
            for c in 0..nc {
                let bad = match r.variant {
                    LVariant::Distinct => (st.distinct[c] as f64) < r.l,
                    LVariant::Entropy => st.entropy_l[c] < r.l - 1e-12,
                    LVariant::Recursive => !st.recursive_ok[rec_j][c],
                };
                if bad {
                    violating[c] = true;
                    if r.variant == LVariant::Distinct {
                        violating_mono[c] = true;
                    }
                }
            }
            if r.variant == LVariant::Recursive {
                rec_j += 1;
            }
        }
        let mut t_j = 0;
        for &(i, t, _) in &models.t {
            if i != s {
                continue;
            }
            for (v, d) in violating.iter_mut().zip(&st.distance[t_j]) {
                if *d > t + 1e-12 {
                    *v = true;
                }
            }
            t_j += 1;
        }
        sensitive[s] = Some(st);
    }
    let sum_where = |flags: &[bool]| -> u64 {
        flags
            .iter()
            .zip(&cl.sizes)
            .filter(|(v, _)| **v)
            .map(|(_, s)| *s)
            .sum()
    };
    let suppressed = sum_where(&violating);
    let suppressed_monotone = sum_where(&violating_mono);
    let ok = suppressed <= models.max_suppressed;
    let ok_monotone = if models.all_monotone() {
        ok
    } else {
        suppressed_monotone <= models.max_suppressed
    };
    let (loss, lower_bound) = loss(table, qis, models, levels, &cl, &violating, suppressed);
    NodeEval {
        levels: levels.to_vec(),
        classes: cl,
        violating,
        suppressed,
        suppressed_monotone,
        ok,
        ok_monotone,
        loss,
        lower_bound,
        sensitive,
    }
}
