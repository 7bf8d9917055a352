//! Privacy models and information-loss metrics, evaluated on one generalization (a lattice
//! node) of a [`BaseTable`].
//!
//! A record is *suppressed* when its equivalence class violates any model; a node satisfies
//! the models when the suppressed records fit within the suppression limit.

use std::collections::HashMap;

use serde::Serialize;

use super::hierarchy::QiHierarchy;
use super::table::BaseTable;
use crate::policy::{LDiversity, LVariant, LossMetric, PrivacySpec, TDistance};

/// The models bound to a table's columns.
#[derive(Debug, Clone)]
pub struct Models {
    /// 1 when the policy sets no k.
    pub k: u64,
    /// (sensitive column index, rule).
    pub l: Vec<(usize, LDiversity)>,
    /// (sensitive column index, t, distance).
    pub t: Vec<(usize, f64, TDistance)>,
    /// Largest number of records that may be suppressed.
    pub max_suppressed: u64,
    pub max_suppression: f64,
    pub metric: LossMetric,
    pub sampling_fraction: f64,
}

impl Models {
    /// Bind `spec` to `table`; `t` distances not given in the policy are chosen from the data
    /// (ordered for numbers, equal otherwise).
    pub fn new(spec: &PrivacySpec, table: &BaseTable) -> Result<Models, String> {
        let sa = |name: &str| {
            table
                .sensitive
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| format!("sensitive attribute `{name}` is not in the grouped data"))
        };
        let mut l = Vec::new();
        for r in &spec.l_diversity {
            l.push((sa(&r.attribute)?, r.clone()));
        }
        let mut t = Vec::new();
        for r in &spec.t_closeness {
            let i = sa(&r.attribute)?;
            let d = r.distance.unwrap_or(if table.sensitive[i].numeric {
                TDistance::Ordered
            } else {
                TDistance::Equal
            });
            t.push((i, r.t, d));
        }
        Ok(Models {
            k: spec.k.unwrap_or(1),
            l,
            t,
            max_suppressed: (spec.max_suppression * table.rows as f64 + 1e-9).floor() as u64,
            max_suppression: spec.max_suppression,
            metric: spec.metric,
            sampling_fraction: spec.sampling_fraction,
        })
    }

    /// Whether every model is monotone under generalization with this suppression limit, so
    /// that a node's result implies its neighbours'. k-anonymity and distinct l-diversity
    /// always are; entropy and recursive l-diversity and t-closeness only without suppression.
    pub fn all_monotone(&self) -> bool {
        self.max_suppressed == 0
            || (self.t.is_empty() && self.l.iter().all(|(_, r)| r.variant == LVariant::Distinct))
    }
}

/// Equivalence classes of one node: the class of every tuple and the size of every class.
#[derive(Debug, Clone)]
pub struct Classes {
    pub class_of: Vec<u32>,
    pub sizes: Vec<u64>,
}

/// Reused buffers for class computation. A scratch belongs to one table and hierarchy set.
#[derive(Default)]
pub struct Scratch {
    /// `codes[attribute][level][tuple]`: generalized codes, column-major for fast key building.
    codes: Vec<Vec<Vec<u32>>>,
    keys: Vec<u64>,
    dense: Vec<u32>,
    table: KeyTable,
    wide: HashMap<Box<[u32]>, u32>,
}

/// An open-addressing u64 -> u32 table, cleared in O(1) with generation stamps. One slot is
/// one 16-byte record, so a probe touches one cache line.
#[derive(Default)]
struct KeyTable {
    slots: Vec<Slot>,
    generation: u32,
    shift: u32,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    value: u32,
    stamp: u32,
}

impl KeyTable {
    fn reset(&mut self, n: usize) {
        let cap = (n + n / 2).next_power_of_two().max(16);
        if cap != self.slots.len() {
            self.slots = vec![Slot::default(); cap];
            self.generation = 0;
            self.shift = 64 - cap.trailing_zeros();
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.iter_mut().for_each(|s| s.stamp = 0);
            self.generation = 1;
        }
    }

    #[inline]
    fn get_or_insert(&mut self, key: u64, next: u32) -> u32 {
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let s = &mut self.slots[i];
            if s.stamp != self.generation {
                *s = Slot {
                    key,
                    value: next,
                    stamp: self.generation,
                };
                return next;
            }
            if s.key == key {
                return s.value;
            }
            i = (i + 1) & mask;
        }
    }
}

fn ensure_codes(scratch: &mut Scratch, table: &BaseTable, qis: &[QiHierarchy]) {
    if scratch.codes.len() == qis.len() {
        return;
    }
    let m = qis.len();
    let n = table.num_tuples();
    scratch.codes = qis
        .iter()
        .enumerate()
        .map(|(i, q)| {
            q.map
                .iter()
                .map(|level| {
                    (0..n)
                        .map(|t| level[table.tuples[t * m + i] as usize])
                        .collect()
                })
                .collect()
        })
        .collect();
}

/// Group the tuples of `table` by their generalized values at `levels`.
pub fn classes(
    table: &BaseTable,
    qis: &[QiHierarchy],
    levels: &[usize],
    scratch: &mut Scratch,
) -> Classes {
    ensure_codes(scratch, table, qis);
    let m = qis.len();
    let n = table.num_tuples();
    let mut class_of = Vec::with_capacity(n);
    let mut sizes: Vec<u64> = Vec::new();
    // Mixed-radix key over the generalized domains, when it fits in 64 bits.
    let mut strides = Vec::with_capacity(m);
    let mut product: Option<u64> = Some(1);
    for (q, &l) in qis.iter().zip(levels) {
        strides.push(product.unwrap_or(0));
        product = product.and_then(|p| p.checked_mul(q.labels[l].len().max(1) as u64));
    }
    if let Some(p) = product {
        let keys = &mut scratch.keys;
        keys.clear();
        keys.resize(n, 0);
        for i in 0..m {
            let col = &scratch.codes[i][levels[i]];
            let stride = strides[i];
            for (k, &c) in keys.iter_mut().zip(col) {
                *k += c as u64 * stride;
            }
        }
        if p <= (4 * n as u64).max(1 << 16) {
            let dense = &mut scratch.dense;
            dense.clear();
            dense.resize(p as usize, u32::MAX);
            for (t, &key) in keys.iter().enumerate() {
                let slot = &mut dense[key as usize];
                if *slot == u32::MAX {
                    *slot = sizes.len() as u32;
                    sizes.push(0);
                }
                sizes[*slot as usize] += table.counts[t];
                class_of.push(*slot);
            }
        } else {
            let kt = &mut scratch.table;
            kt.reset(n);
            for (t, &key) in keys.iter().enumerate() {
                let next = sizes.len() as u32;
                let c = kt.get_or_insert(key, next);
                if c == next {
                    sizes.push(0);
                }
                sizes[c as usize] += table.counts[t];
                class_of.push(c);
            }
        }
    } else {
        let wide = &mut scratch.wide;
        wide.clear();
        let mut key = vec![0u32; m];
        for t in 0..n {
            for (i, k) in key.iter_mut().enumerate() {
                *k = scratch.codes[i][levels[i]][t];
            }
            let next = sizes.len() as u32;
            let c = *wide.entry(key.clone().into_boxed_slice()).or_insert(next);
            if c == next {
                sizes.push(0);
            }
            sizes[c as usize] += table.counts[t];
            class_of.push(c);
        }
    }
    Classes { class_of, sizes }
}

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
    let nt = table.num_tuples();
    // Counting sort of the tuple entries by class.
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
    let d = col.values.len();
    let total: u64 = col.totals.iter().sum();
    let q: Vec<f64> = col
        .totals
        .iter()
        .map(|&x| x as f64 / total.max(1) as f64)
        .collect();
    // Global distribution by rank, for the ordered distance.
    let mut q_by_rank = vec![0.0; d];
    for (code, &r) in col.rank.iter().enumerate() {
        q_by_rank[r as usize] = q[code];
    }
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
fn loss(
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

/// One bucket of the class-size distribution.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SizeBucket {
    /// Label such as `3-4` or `1000+`.
    pub size: String,
    pub classes: u64,
    pub records: u64,
}

/// Re-identification risk estimates.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Risks {
    /// Prosecutor model (the attacker knows the person is in the data): highest and average
    /// probability of a correct re-identification, and the share of records whose risk
    /// exceeds 1/k (the threshold the policy sets; 1/2 without k).
    pub prosecutor_highest: f64,
    pub prosecutor_average: f64,
    pub records_at_risk: f64,
    /// Journalist model (the attacker does not know who is in the data): highest risk, with
    /// population classes estimated as class size / sampling fraction.
    pub journalist_highest: f64,
    /// Marketer model: expected share of records re-identified when every record is linked.
    pub marketer: f64,
    pub sampling_fraction: f64,
}

/// l, t and related figures achieved for one sensitive attribute.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SensitiveAchieved {
    pub attribute: String,
    /// Smallest number of distinct values in a released class.
    pub distinct_l: u32,
    /// Smallest exp(entropy) in a released class.
    pub entropy_l: f64,
    /// Largest distance (t) of a released class, per t-closeness rule: (distance kind, t).
    pub t: Vec<(TDistance, f64)>,
}

/// Everything measured about one node, for reports and provenance.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub levels: Vec<usize>,
    /// Level labels per quasi-identifier: (name, level, levels available).
    pub quasi_identifiers: Vec<(String, usize, usize)>,
    pub records: u64,
    pub records_released: u64,
    pub suppressed: u64,
    pub suppressed_fraction: f64,
    pub classes: u64,
    pub classes_released: u64,
    /// Smallest class size among released records (k achieved); 0 when nothing is released.
    pub smallest_class: u64,
    pub largest_class: u64,
    pub average_class_size: f64,
    /// Records in classes smaller than k (before suppression).
    pub records_below_k: u64,
    pub classes_below_k: u64,
    pub size_distribution: Vec<SizeBucket>,
    pub sensitive: Vec<SensitiveAchieved>,
    pub risks: Risks,
    pub loss: LossFigures,
    /// Whether the models hold within the suppression limit.
    pub satisfied: bool,
}

/// The standard loss metrics of one node.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LossFigures {
    /// The metric the search minimized and its value.
    pub metric: String,
    pub value: f64,
    pub generalization_height: f64,
    pub precision: f64,
    pub discernibility: f64,
    /// Discernibility / records², in (0, 1].
    pub discernibility_normalized: f64,
    pub avg_class_size: f64,
    pub suppressed_fraction: f64,
}

/// Describe `eval`, treating its violating classes as suppressed when `suppress` is set.
pub fn assess(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
    eval: &NodeEval,
    suppress: bool,
) -> Assessment {
    let sizes = &eval.classes.sizes;
    let released = |c: usize| !(suppress && eval.violating[c]);
    let n = table.rows;
    let suppressed = if suppress { eval.suppressed } else { 0 };
    let kept_sizes: Vec<u64> = (0..sizes.len())
        .filter(|&c| released(c))
        .map(|c| sizes[c])
        .collect();
    let released_n: u64 = kept_sizes.iter().sum();
    let smallest = kept_sizes.iter().copied().min().unwrap_or(0);
    let largest = kept_sizes.iter().copied().max().unwrap_or(0);
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
    for &s in &kept_sizes {
        if let Some(i) = SIZE_BUCKETS.iter().position(|&(lo, hi)| s >= lo && s <= hi) {
            buckets[i].classes += 1;
            buckets[i].records += s;
        }
    }
    let below: Vec<u64> = sizes.iter().copied().filter(|&s| s < models.k).collect();
    let k_threshold = if models.k > 1 { models.k } else { 2 };
    let f = models.sampling_fraction;
    let nk = kept_sizes.len() as f64;
    let rn = released_n.max(1) as f64;
    let risks = if released_n == 0 {
        Risks {
            prosecutor_highest: 0.0,
            prosecutor_average: 0.0,
            records_at_risk: 0.0,
            journalist_highest: 0.0,
            marketer: 0.0,
            sampling_fraction: f,
        }
    } else {
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
    };
    let mut sens = Vec::new();
    for (s, st) in eval.sensitive.iter().enumerate() {
        let Some(st) = st else { continue };
        let kept = |v: &[f64]| {
            (0..sizes.len())
                .filter(|&c| released(c))
                .map(|c| v[c])
                .collect::<Vec<f64>>()
        };
        let distinct = (0..sizes.len())
            .filter(|&c| released(c))
            .map(|c| st.distinct[c])
            .min()
            .unwrap_or(0);
        let entropy = kept(&st.entropy_l)
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        let t_rules: Vec<TDistance> = models
            .t
            .iter()
            .filter(|(i, _, _)| *i == s)
            .map(|&(_, _, d)| d)
            .collect();
        let t = t_rules
            .iter()
            .enumerate()
            .map(|(j, d)| (*d, kept(&st.distance[j]).into_iter().fold(0.0, f64::max)))
            .collect();
        sens.push(SensitiveAchieved {
            attribute: table.sensitive[s].name.clone(),
            distinct_l: distinct,
            entropy_l: if entropy.is_finite() { entropy } else { 0.0 },
            t,
        });
    }
    let nf = n.max(1) as f64;
    let s = suppressed as f64;
    let h = mean_normalized_level(qis, &eval.levels);
    let mut dm = 0.0;
    for (c, &size) in sizes.iter().enumerate() {
        let sz = size as f64;
        dm += if released(c) { sz * sz } else { sz * nf };
    }
    let k = models.k as f64;
    let loss = LossFigures {
        metric: models.metric.keyword().into(),
        value: match models.metric {
            LossMetric::Height => generalization_height(qis, &eval.levels),
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
        generalization_height: generalization_height(qis, &eval.levels),
        precision: ((nf - s) * h + s) / nf,
        discernibility: dm,
        discernibility_normalized: dm / (nf * nf),
        avg_class_size: if nk == 0.0 {
            0.0
        } else {
            released_n as f64 / nk / k
        },
        suppressed_fraction: s / nf,
    };
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
            released_n as f64 / nk
        },
        records_below_k: below.iter().sum(),
        classes_below_k: below.len() as u64,
        size_distribution: buckets,
        sensitive: sens,
        risks,
        loss,
        satisfied: eval.ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LDiversity, PrivacySpec, TCloseness};
    use crate::privacy::table::BaseTableBuilder;
    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;

    /// Records as (qi1, qi2, sensitive) rows, one record each.
    pub(crate) fn table(rows: &[(&str, &str, &str)]) -> (BaseTable, Vec<QiHierarchy>) {
        let col = |i: usize| -> ArrayRef {
            Arc::new(StringArray::from(
                rows.iter().map(|r| [r.0, r.1, r.2][i]).collect::<Vec<_>>(),
            ))
        };
        let batch =
            RecordBatch::try_from_iter(vec![("a", col(0)), ("b", col(1)), ("s", col(2))]).unwrap();
        let mut b = BaseTableBuilder::new(vec!["a".into(), "b".into()], vec!["s".into()]);
        b.push_batch(&batch).unwrap();
        let t = b.finish();
        let qis = (0..2)
            .map(|i| QiHierarchy::build(&t.qi_names[i], &t.qi_values[i], vec![]).unwrap())
            .collect();
        (t, qis)
    }

    fn spec(k: Option<u64>, l: Vec<LDiversity>, t: Vec<TCloseness>, supp: f64) -> PrivacySpec {
        PrivacySpec {
            quasi_identifiers: vec![],
            k,
            l_diversity: l,
            t_closeness: t,
            on_violation: Default::default(),
            max_suppression: supp,
            metric: LossMetric::Discernibility,
            sampling_fraction: 1.0,
            search_budget: Default::default(),
        }
    }

    fn l(variant: LVariant, l: f64, c: Option<f64>) -> LDiversity {
        LDiversity {
            attribute: "s".into(),
            variant,
            l,
            c,
        }
    }

    #[test]
    fn k_anonymity_classes_risks_and_metrics_by_hand() {
        // Classes: (30,A) x3, (30,B) x2, (40,A) x1  -> sizes 3, 2, 1.
        let (t, qis) = table(&[
            ("30", "A", "flu"),
            ("30", "A", "flu"),
            ("30", "A", "hiv"),
            ("30", "B", "flu"),
            ("30", "B", "cold"),
            ("40", "A", "hiv"),
        ]);
        let m = Models::new(&spec(Some(2), vec![], vec![], 0.2), &t).unwrap();
        assert_eq!(m.max_suppressed, 1); // floor(0.2 * 6)
        let e = evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default());
        let mut sizes = e.classes.sizes.clone();
        sizes.sort();
        assert_eq!(sizes, [1, 2, 3]);
        assert_eq!(e.suppressed, 1);
        assert!(e.ok && e.ok_monotone);
        // DM* = 3^2 + 2^2 + 1 * 6 (the suppressed record costs |D|).
        assert_eq!(e.loss, 19.0);
        assert_eq!(e.lower_bound, 14.0);
        let a = assess(&t, &qis, &m, &e, true);
        assert_eq!(
            (a.records_released, a.smallest_class, a.classes_released),
            (5, 2, 2)
        );
        assert_eq!((a.records_below_k, a.classes_below_k), (1, 1));
        assert!((a.risks.prosecutor_highest - 0.5).abs() < 1e-12);
        assert!((a.risks.prosecutor_average - 2.0 / 5.0).abs() < 1e-12);
        assert_eq!(a.risks.records_at_risk, 0.0);
        assert!((a.loss.avg_class_size - 5.0 / 2.0 / 2.0).abs() < 1e-12);
        assert!((a.loss.suppressed_fraction - 1.0 / 6.0).abs() < 1e-12);
        // Precision at level 0 is all suppression: 1 of 6 records fully generalized.
        assert!((a.loss.precision - 1.0 / 6.0).abs() < 1e-12);
        // Without suppression the same data is not 2-anonymous.
        let strict = Models::new(&spec(Some(2), vec![], vec![], 0.0), &t).unwrap();
        let e = evaluate(&t, &qis, &strict, &[0, 0], &mut Scratch::default());
        assert!(!e.ok);
        let a = assess(&t, &qis, &strict, &e, false);
        assert_eq!(a.smallest_class, 1);
        assert!((a.risks.prosecutor_highest - 1.0).abs() < 1e-12);
        assert!((a.risks.records_at_risk - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(a.size_distribution[0].classes, 1);
        assert_eq!(a.size_distribution[3 - 1].records, 3);
        // Journalist risk with a 10% sample: population classes ~10x larger.
        let mut s = spec(Some(2), vec![], vec![], 0.0);
        s.sampling_fraction = 0.1;
        let m = Models::new(&s, &t).unwrap();
        let e = evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default());
        let a = assess(&t, &qis, &m, &e, false);
        assert!((a.risks.journalist_highest - 0.1).abs() < 1e-12);
        assert!((a.risks.marketer - 0.1 * 3.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn l_diversity_variants_by_hand() {
        // One class of 4: flu x2, hiv, cold -> distinct 3, entropy exp(H) with
        // H = -(.5 ln .5 + 2 * .25 ln .25) = 1.0397..., exp = 2.828...
        let rows = [
            ("30", "A", "flu"),
            ("30", "A", "flu"),
            ("30", "A", "hiv"),
            ("30", "A", "cold"),
        ];
        let (t, qis) = table(&rows);
        let eval = |l: LDiversity| {
            let m = Models::new(&spec(None, vec![l], vec![], 0.0), &t).unwrap();
            evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default())
        };
        assert!(eval(l(LVariant::Distinct, 3.0, None)).ok);
        assert!(!eval(l(LVariant::Distinct, 4.0, None)).ok);
        let e = eval(l(LVariant::Entropy, 2.8, None));
        assert!(e.ok);
        let h = e.sensitive[0].as_ref().unwrap().entropy_l[0];
        assert!((h - 8f64.sqrt()).abs() < 1e-9, "{h}");
        assert!(!eval(l(LVariant::Entropy, 2.9, None)).ok);
        // Recursive (c,2): r1 = 2 < c * (r2 + r3) = c * 2 holds for c > 1.
        assert!(eval(l(LVariant::Recursive, 2.0, Some(1.5))).ok);
        assert!(!eval(l(LVariant::Recursive, 2.0, Some(1.0))).ok);
        // (c,3): r1 = 2 < c * r3 = c holds for c > 2.
        assert!(eval(l(LVariant::Recursive, 3.0, Some(2.5))).ok);
        assert!(!eval(l(LVariant::Recursive, 3.0, Some(2.0))).ok);
        assert!(!eval(l(LVariant::Recursive, 4.0, Some(100.0))).ok);
    }

    #[test]
    fn t_closeness_distances_by_hand() {
        // Li et al.'s example: salaries 3k..11k once each; the class {3k, 4k, 5k} has ordered
        // EMD 0.375 and equal distance 2/3.
        let rows: Vec<(String, String, String)> = (3..=11)
            .map(|s| {
                let class = if s <= 5 { "low" } else { "rest" };
                (class.to_string(), "x".to_string(), (s * 1000).to_string())
            })
            .collect();
        let rows: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        let (t, qis) = table(&rows);
        assert!(t.sensitive[0].numeric);
        let tc = |distance| TCloseness {
            attribute: "s".into(),
            t: 0.4,
            distance,
        };
        let m = Models::new(
            &spec(
                None,
                vec![],
                vec![tc(Some(TDistance::Ordered)), tc(Some(TDistance::Equal))],
                0.0,
            ),
            &t,
        )
        .unwrap();
        let e = evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default());
        let st = e.sensitive[0].as_ref().unwrap();
        let low = (0..2).find(|&c| e.classes.sizes[c] == 3).unwrap();
        assert!(
            (st.distance[0][low] - 0.375).abs() < 1e-12,
            "{:?}",
            st.distance
        );
        assert!((st.distance[1][low] - 2.0 / 3.0).abs() < 1e-12);
        // Ordered passes t = 0.4 for the low class; equal distance 2/3 fails it.
        assert!(!e.ok);
        // Default distance for numbers is ordered.
        let m = Models::new(&spec(None, vec![], vec![tc(None)], 0.0), &t).unwrap();
        assert_eq!(m.t[0].2, TDistance::Ordered);
        // At the top level (one class) the distance is 0.
        let top: Vec<QiHierarchy> = (0..2)
            .map(|i| {
                QiHierarchy::build(
                    &t.qi_names[i],
                    &t.qi_values[i],
                    vec![vec![Some("*".into()); t.qi_values[i].len()]],
                )
                .unwrap()
            })
            .collect();
        let e = evaluate(&t, &top, &m, &[1, 1], &mut Scratch::default());
        assert!(e.ok);
        assert_eq!(e.sensitive[0].as_ref().unwrap().distance[0][0], 0.0);
    }
}
