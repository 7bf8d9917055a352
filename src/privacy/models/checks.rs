//! Checks of one node: per-class sensitive-attribute statistics, then every criterion of the
//! models over the classes.

use crate::policy::TDistance;
use crate::policy::hierarchy::QiHierarchy;
use crate::privacy::table::BaseTable;

use super::Models;
use super::classes::{Classes, Scratch, classes};
use super::criteria::Monotonicity;
use super::loss::loss;

/// Per-class statistics of one sensitive attribute; a field is empty unless requested in
/// [`StatsNeeds`].
#[derive(Debug, Clone, Default)]
pub struct SensitiveStats {
    pub distinct: Vec<u32>,
    /// exp(entropy): the entropy l of each class.
    pub entropy_l: Vec<f64>,
    /// Whether recursive (c,l) holds, per slot of [`StatsNeeds::recursive`].
    pub recursive_ok: Vec<Vec<bool>>,
    /// Distance to the whole-table distribution, per slot of [`StatsNeeds::distances`].
    pub distance: Vec<Vec<f64>>,
}

/// Which statistics of one sensitive attribute the criteria read, so that only those are
/// computed on each node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsNeeds {
    pub distinct: bool,
    pub entropy: bool,
    /// (c, l) per recursive-(c,l) slot.
    pub recursive: Vec<(f64, f64)>,
    pub distances: Vec<TDistance>,
}

impl StatsNeeds {
    /// The slot of the recursive (c,l) check, shared by criteria asking for the same one.
    pub fn recursive_slot(&mut self, c: f64, l: f64) -> usize {
        slot(&mut self.recursive, (c, l))
    }

    /// The slot of distance `d`, shared by criteria asking for the same one.
    pub fn distance_slot(&mut self, d: TDistance) -> usize {
        slot(&mut self.distances, d)
    }
}

fn slot<T: PartialEq>(list: &mut Vec<T>, x: T) -> usize {
    list.iter().position(|y| *y == x).unwrap_or_else(|| {
        list.push(x);
        list.len() - 1
    })
}

/// Compute the class statistics of sensitive attribute `s` that `needs` asks for.
pub fn sensitive_stats(
    table: &BaseTable,
    classes: &Classes,
    s: usize,
    needs: &StatsNeeds,
) -> SensitiveStats {
    let col = &table.sensitive[s];
    let nc = classes.sizes.len();
    let (start, buf) = entries_by_class(table, classes, s);
    let d = col.values.len();
    let (q, q_by_rank) = global_distribution(table, s);
    let mut scratch = vec![0u64; d];
    let mut touched: Vec<u32> = Vec::new();
    let mut p_by_rank = vec![0.0; d];
    let cap = |wanted: bool| if wanted { nc } else { 0 };
    let mut out = SensitiveStats {
        distinct: Vec::with_capacity(cap(needs.distinct)),
        entropy_l: Vec::with_capacity(cap(needs.entropy)),
        recursive_ok: vec![Vec::with_capacity(nc); needs.recursive.len()],
        distance: vec![Vec::with_capacity(nc); needs.distances.len()],
    };
    let counted = needs.distinct || needs.entropy || !needs.recursive.is_empty();
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
        if counted {
            counts.clear();
            counts.extend(touched.iter().map(|&x| scratch[x as usize]));
            count_stats(&mut counts, size, needs, &mut out);
        }
        for (j, dist) in needs.distances.iter().enumerate() {
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

/// The statistics of one class read from its value counts (`counts` is reordered).
#[inline]
fn count_stats(counts: &mut [u64], size: f64, needs: &StatsNeeds, out: &mut SensitiveStats) {
    if needs.distinct {
        out.distinct
            .push(counts.iter().filter(|&&x| x > 0).count() as u32);
    }
    if needs.entropy {
        let h: f64 = counts
            .iter()
            .filter(|&&x| x > 0)
            .map(|&x| {
                let p = x as f64 / size;
                -p * p.ln()
            })
            .sum();
        out.entropy_l.push(h.exp());
    }
    if !needs.recursive.is_empty() {
        counts.sort_unstable_by(|a, b| b.cmp(a));
        for (j, &(cc, l)) in needs.recursive.iter().enumerate() {
            let l = l as usize;
            let tail: u64 = counts.iter().skip(l.saturating_sub(1)).sum();
            let ok = counts.len() >= l && (counts[0] as f64) < cc * tail as f64;
            out.recursive_ok[j].push(ok);
        }
    }
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

/// Distinct values of sensitive column `s` (the subject) in the classes `flags` marks.
fn subjects_in(table: &BaseTable, classes: &Classes, s: usize, flags: &[bool]) -> u64 {
    let col = &table.sensitive[s];
    let mut seen = vec![false; col.values.len()];
    let mut n = 0;
    for t in 0..table.num_tuples() {
        if !flags[classes.class_of[t] as usize] {
            continue;
        }
        for &(code, _) in &col.entries[col.offsets[t]..col.offsets[t + 1]] {
            let slot = &mut seen[code as usize];
            if !*slot {
                *slot = true;
                n += 1;
            }
        }
    }
    n
}

/// The outcome of one node.
#[derive(Debug, Clone)]
pub struct NodeEval {
    pub levels: Vec<usize>,
    pub classes: Classes,
    /// Per class: whether it violates a model (its records are suppressed).
    pub violating: Vec<bool>,
    pub suppressed: u64,
    /// Records suppressed if only the criteria monotone even with suppression counted
    /// (k-anonymity, distinct l-diversity).
    pub suppressed_monotone: u64,
    /// Models met within the suppression limit.
    pub ok: bool,
    /// The part of the models the search may prune with met within the limit; equals `ok`
    /// when all models are monotone.
    pub ok_monotone: bool,
    /// Loss under the chosen metric, suppression included.
    pub loss: f64,
    /// A lower bound of `loss` that never decreases under generalization.
    pub lower_bound: f64,
    /// Per sensitive attribute, the statistics the criteria read (`None` for attributes no
    /// criterion names).
    pub sensitive: Vec<Option<SensitiveStats>>,
}

/// Evaluate every criterion and the metric at `levels`.
pub fn evaluate(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
    levels: &[usize],
    scratch: &mut Scratch,
) -> NodeEval {
    let cl = classes(table, qis, levels, scratch);
    let sensitive: Vec<Option<SensitiveStats>> = models
        .needs
        .iter()
        .enumerate()
        .map(|(s, needs)| needs.as_ref().map(|n| sensitive_stats(table, &cl, s, n)))
        .collect();
    let none = SensitiveStats::default();
    let stats = |a: Option<usize>| a.and_then(|s| sensitive[s].as_ref()).unwrap_or(&none);
    // The always-monotone criteria first: their flags alone decide the pruning verdict.
    let always = |m: Monotonicity| m == Monotonicity::Always;
    let mut violating_mono = vec![false; cl.sizes.len()];
    for c in models.criteria.iter().filter(|c| always(c.monotonicity())) {
        c.mark(&cl.sizes, stats(c.attribute()), &mut violating_mono);
    }
    let mut violating = violating_mono.clone();
    for c in models.criteria.iter().filter(|c| !always(c.monotonicity())) {
        c.mark(&cl.sizes, stats(c.attribute()), &mut violating);
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
    // The suppression limit counts people when classes do: the subjects with a suppressed
    // record (the set only shrinks under generalization, as the records do).
    let within = |flags: &[bool], records: u64| match &models.subject {
        None => records <= models.max_suppressed,
        Some(a) => {
            records == 0
                || subjects_in(table, &cl, a.index, flags) <= models.max_suppressed_subjects
        }
    };
    let ok = within(&violating, suppressed);
    let ok_monotone = if models.all_monotone() {
        ok
    } else {
        within(&violating_mono, suppressed_monotone)
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
