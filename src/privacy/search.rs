//! Optimal generalization: search the lattice of per-attribute generalization levels for the
//! node that meets every model within the suppression limit with the least loss.
//!
//! Two properties make the search exact and fast:
//! - **Monotone models** (k-anonymity and distinct l-diversity always; every built-in model
//!   when no suppression is allowed; see [`super::models::Monotonicity`]): if a node meets
//!   them, so does every generalization of it; if it fails, so does every specialization. As in ARX's Flash, the search checks nodes by binary
//!   search along paths from the bottom of the lattice and infers the rest.
//! - **Monotone lower bounds** of every metric: a node whose bound is no better than the best
//!   solution so far is skipped, and so are all its generalizations.
//!
//! [`brute_force`] evaluates every node; the tests use it to check optimality.

use super::models::{
    Models, NodeEval, Scratch, evaluate, generalization_height, mean_normalized_level,
};
use super::table::BaseTable;
use crate::error::Problem;
use crate::policy::hierarchy::QiHierarchy;
use crate::policy::{LossMetric, SearchBudget};
use std::time::{Duration, Instant};

/// Largest lattice searched.
pub const MAX_NODES: usize = 4_000_000;

/// The lattice of generalization levels, each quasi-identifier within its bounds.
#[derive(Debug, Clone)]
pub struct Lattice {
    /// Levels per quasi-identifier within its bounds (`max - min + 1`).
    pub heights: Vec<usize>,
    /// Lowest level per quasi-identifier (node coordinates count from it).
    pub lows: Vec<usize>,
    strides: Vec<usize>,
    pub size: usize,
}

impl Lattice {
    /// Every level of every hierarchy.
    pub fn new(qis: &[QiHierarchy]) -> Result<Lattice, Problem> {
        let lows = vec![0; qis.len()];
        let highs: Vec<usize> = qis.iter().map(QiHierarchy::max_level).collect();
        Self::bounded(&lows, &highs)
    }

    /// The levels the models allow (`min_level`..=`max_level` per quasi-identifier).
    pub fn within(qis: &[QiHierarchy], models: &Models) -> Result<Lattice, Problem> {
        Self::bounded(&models.min_levels(qis), &models.max_levels(qis))
    }

    fn bounded(lows: &[usize], highs: &[usize]) -> Result<Lattice, Problem> {
        let heights: Vec<usize> = lows.iter().zip(highs).map(|(l, h)| h - l + 1).collect();
        let mut strides = Vec::with_capacity(heights.len());
        let mut size: usize = 1;
        for &h in &heights {
            strides.push(size);
            size = size
                .checked_mul(h)
                .filter(|&s| s <= MAX_NODES)
                .ok_or_else(|| {
                    Problem(format!(
                        "the generalization lattice has more than {MAX_NODES} nodes ({}); use \
                         fewer quasi-identifiers or fewer levels",
                        heights
                            .iter()
                            .map(|h| h.to_string())
                            .collect::<Vec<_>>()
                            .join(" x ")
                    ))
                })?;
        }
        Ok(Lattice {
            heights,
            lows: lows.to_vec(),
            strides,
            size,
        })
    }

    /// The levels of `node`.
    pub fn levels(&self, mut node: usize) -> Vec<usize> {
        self.heights
            .iter()
            .zip(&self.lows)
            .map(|(&h, &low)| {
                let l = node % h;
                node /= h;
                low + l
            })
            .collect()
    }

    /// The node of `levels` (each within its bounds).
    pub fn index(&self, levels: &[usize]) -> usize {
        levels
            .iter()
            .zip(&self.lows)
            .zip(&self.strides)
            .map(|((l, low), s)| (l - low) * s)
            .sum()
    }

    fn successors(&self, node: usize, levels: &[usize], out: &mut Vec<usize>) {
        out.clear();
        for (i, (&l, &h)) in levels.iter().zip(&self.heights).enumerate() {
            if l + 1 < self.lows[i] + h {
                out.push(node + self.strides[i]);
            }
        }
    }

    fn predecessors(&self, node: usize, levels: &[usize], out: &mut Vec<usize>) {
        out.clear();
        for (i, &l) in levels.iter().enumerate() {
            if l > self.lows[i] {
                out.push(node - self.strides[i]);
            }
        }
    }
}

/// What the search found and how much work it took.
#[derive(Debug)]
pub struct SearchResult {
    /// The optimal node, if any node meets the models.
    pub best: Option<NodeEval>,
    pub lattice_size: usize,
    /// Nodes whose classes were computed.
    pub evaluated: usize,
}

/// How far a search has got; passed to the progress callback.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub evaluated: usize,
    pub lattice_size: usize,
    pub seconds: f64,
}

/// Why a search did not finish.
#[derive(Debug)]
#[non_exhaustive]
pub enum SearchError {
    /// The lattice is too large to search at all.
    Lattice(Problem),
    /// The budget ran out first; the best node so far is not known to be optimal.
    Budget {
        progress: Progress,
        /// Which limit: e.g. `300 s` or `1000 nodes`.
        limit: String,
    },
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchError::Lattice(m) => f.write_str(&m.message),
            SearchError::Budget { progress: p, limit } => write!(
                f,
                "the search for the least-loss generalization reached its budget ({limit}) after \
                 {:.1} s and {} of {} lattice nodes evaluated, before it could prove a release \
                 optimal. Use fewer quasi-identifiers or coarser hierarchies (fewer levels), or \
                 raise `search_budget` (`seconds`, `nodes`) in the privacy block",
                p.seconds, p.evaluated, p.lattice_size
            ),
        }
    }
}

/// Progress is reported only for long searches, every this often.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The budget's clock and counters.
struct Meter<'p> {
    clock: Instant,
    budget: SearchBudget,
    next_report: Duration,
    progress: &'p mut dyn FnMut(&Progress),
}

const UNKNOWN: u8 = 0;
const MEETS: u8 = 1;
const FAILS: u8 = 2;

struct Search<'a> {
    table: &'a BaseTable,
    qis: &'a [QiHierarchy],
    models: &'a Models,
    lattice: Lattice,
    /// Monotone part (`NodeEval::ok_monotone`) known to hold / fail.
    state: Vec<u8>,
    /// Best known lower bound of each node's loss (inherited from evaluated ancestors).
    bound: Vec<f64>,
    evaluated_full: Vec<bool>,
    evaluations: usize,
    scratch: Scratch,
    best: Option<NodeEval>,
    buf: Vec<usize>,
    meter: Meter<'a>,
}

impl Search<'_> {
    fn progress(&self) -> Progress {
        Progress {
            evaluated: self.evaluations,
            lattice_size: self.lattice.size,
            seconds: self.meter.clock.elapsed().as_secs_f64(),
        }
    }

    /// Stop when the budget is spent; report progress now and then on long searches.
    fn charge(&mut self) -> Result<(), SearchError> {
        let elapsed = self.meter.clock.elapsed();
        let b = self.meter.budget;
        let over = if b.nodes.is_some_and(|n| self.evaluations as u64 >= n) {
            b.nodes.map(|n| format!("{n} nodes"))
        } else if b.seconds.is_some_and(|s| elapsed.as_secs_f64() >= s) {
            b.seconds.map(|s| format!("{s} s"))
        } else {
            None
        };
        if let Some(limit) = over {
            return Err(SearchError::Budget {
                progress: self.progress(),
                limit,
            });
        }
        if elapsed >= self.meter.next_report {
            self.meter.next_report = elapsed + PROGRESS_EVERY;
            let p = self.progress();
            (self.meter.progress)(&p);
        }
        Ok(())
    }

    fn eval(&mut self, node: usize) -> Result<NodeEval, SearchError> {
        self.charge()?;
        let levels = self.lattice.levels(node);
        self.evaluations += 1;
        let e = evaluate(
            self.table,
            self.qis,
            self.models,
            &levels,
            &mut self.scratch,
        );
        self.evaluated_full[node] = true;
        if e.lower_bound > self.bound[node] {
            self.bound[node] = e.lower_bound;
        }
        if e.ok_monotone {
            self.mark(node, MEETS);
        } else {
            self.mark(node, FAILS);
        }
        Ok(e)
    }

    /// Mark `node` and, by monotonicity, all its generalizations (MEETS) or specializations
    /// (FAILS).
    fn mark(&mut self, node: usize, value: u8) {
        let mut stack = vec![node];
        let mut next = Vec::new();
        while let Some(n) = stack.pop() {
            if self.state[n] == value {
                continue;
            }
            self.state[n] = value;
            let levels = self.lattice.levels(n);
            if value == MEETS {
                self.lattice.successors(n, &levels, &mut next);
            } else {
                self.lattice.predecessors(n, &levels, &mut next);
            }
            stack.extend(next.iter().copied().filter(|&m| self.state[m] != value));
        }
    }

    fn consider(&mut self, e: NodeEval) {
        if !e.ok {
            return;
        }
        let better = match &self.best {
            None => true,
            Some(b) => e.loss < b.loss,
        };
        if better {
            self.best = Some(e);
        }
    }

    /// Phase 1: classify the monotone part over the lattice with binary searches on paths.
    fn classify(&mut self, order: &[usize]) -> Result<(), SearchError> {
        for &start in order {
            self.probe(start, false)?;
        }
        Ok(())
    }

    fn limit(&self) -> f64 {
        self.best.as_ref().map_or(f64::INFINITY, |b| b.loss)
    }

    /// Classify `start` by a binary search on a path upwards through unknown nodes (with
    /// `bounded`, only through nodes whose bound is below the best loss so far).
    fn probe(&mut self, start: usize, bounded: bool) -> Result<(), SearchError> {
        if self.state[start] != UNKNOWN {
            return Ok(());
        }
        {
            let mut path = vec![start];
            let mut cur = start;
            loop {
                let levels = self.lattice.levels(cur);
                let mut succ = std::mem::take(&mut self.buf);
                self.lattice.successors(cur, &levels, &mut succ);
                let limit = self.limit();
                let next = succ
                    .iter()
                    .copied()
                    .find(|&s| self.state[s] == UNKNOWN && (!bounded || self.bound[s] < limit));
                self.buf = succ;
                match next {
                    Some(s) => {
                        path.push(s);
                        cur = s;
                    }
                    None => break,
                }
            }
            let (mut lo, mut hi) = (0usize, path.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                let node = path[mid];
                let meets = match self.state[node] {
                    MEETS => true,
                    FAILS => false,
                    _ => {
                        let e = self.eval(node)?;
                        let m = e.ok_monotone;
                        self.consider(e);
                        m
                    }
                };
                if meets {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
        Ok(())
    }

    fn run(mut self) -> Result<SearchResult, SearchError> {
        let size = self.lattice.size;
        let levels_of: Vec<Vec<usize>> = (0..size).map(|n| self.lattice.levels(n)).collect();
        let sum = |n: usize| levels_of[n].iter().sum::<usize>();
        // Bottom-up order (by total level), so ancestors come first.
        let mut topo: Vec<usize> = (0..size).collect();
        topo.sort_by_key(|&n| (sum(n), n));
        let data_independent = matches!(
            self.models.metric,
            LossMetric::Height | LossMetric::Precision
        );
        if !data_independent {
            self.classify(&topo)?;
        }

        // Phase 2: candidates that meet the monotone part, cheapest bound first when the
        // bound is data-independent, else bottom-up with inherited bounds.
        let apriori = |n: usize| match self.models.metric {
            LossMetric::Height => {
                generalization_height(self.qis, &self.models.weights, &levels_of[n])
            }
            LossMetric::Precision => {
                mean_normalized_level(self.qis, &self.models.weights, &levels_of[n])
            }
            LossMetric::Discernibility | LossMetric::AvgClassSize => 0.0,
        };
        for n in 0..size {
            let a = apriori(n);
            if a > self.bound[n] {
                self.bound[n] = a;
            }
        }
        let mut order = topo.clone();
        if data_independent {
            order.sort_by(|&a, &b| self.bound[a].total_cmp(&self.bound[b]).then(a.cmp(&b)));
        }
        let mut preds = Vec::new();
        for &n in &order {
            // Inherit bounds from direct specializations (already visited in topo order).
            if !data_independent {
                self.lattice.predecessors(n, &levels_of[n], &mut preds);
                for &p in &preds {
                    if self.bound[p] > self.bound[n] {
                        self.bound[n] = self.bound[p];
                    }
                }
            }
            if let Some(b) = &self.best
                && self.bound[n] >= b.loss
            {
                if data_independent {
                    break;
                }
                continue;
            }
            if data_independent {
                // Classify only the part of the lattice that could still beat the best.
                self.probe(n, true)?;
            }
            if self.state[n] == FAILS || self.evaluated_full[n] {
                continue;
            }
            let e = self.eval(n)?;
            self.consider(e);
        }
        Ok(SearchResult {
            best: self.best,
            lattice_size: size,
            evaluated: self.evaluations,
        })
    }
}

/// Find the node with the least loss that meets the models within the suppression limit,
/// with no budget (tests, benchmarks; see [`search_with`]).
pub fn search(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
) -> Result<SearchResult, SearchError> {
    let unlimited = SearchBudget {
        seconds: None,
        nodes: None,
    };
    search_with(table, qis, models, unlimited, &mut |_| {})
}

/// [`search`] within `budget`; `progress` is called every [`PROGRESS_EVERY`] once a search
/// has run that long (never for short searches).
pub fn search_with(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
    budget: SearchBudget,
    progress: &mut dyn FnMut(&Progress),
) -> Result<SearchResult, SearchError> {
    let lattice = Lattice::within(qis, models).map_err(SearchError::Lattice)?;
    let size = lattice.size;
    let s = Search {
        table,
        qis,
        models,
        lattice,
        state: vec![UNKNOWN; size],
        bound: vec![f64::NEG_INFINITY; size],
        evaluated_full: vec![false; size],
        evaluations: 0,
        scratch: Scratch::default(),
        best: None,
        buf: Vec::new(),
        meter: Meter {
            clock: Instant::now(),
            budget,
            next_report: PROGRESS_EVERY,
            progress,
        },
    };
    s.run()
}

/// Evaluate every node; the optimum by exhaustive scan (for tests and small lattices).
pub fn brute_force(
    table: &BaseTable,
    qis: &[QiHierarchy],
    models: &Models,
) -> Result<SearchResult, SearchError> {
    let lattice = Lattice::within(qis, models).map_err(SearchError::Lattice)?;
    let mut scratch = Scratch::default();
    let mut best: Option<NodeEval> = None;
    for n in 0..lattice.size {
        let e = evaluate(table, qis, models, &lattice.levels(n), &mut scratch);
        if e.ok && best.as_ref().is_none_or(|b| e.loss < b.loss) {
            best = Some(e);
        }
    }
    Ok(SearchResult {
        best,
        lattice_size: lattice.size,
        evaluated: lattice.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LDiversity, LVariant, PrivacySpec, TCloseness, TDistance};
    use crate::privacy::models::Models;
    use crate::privacy::table::BaseTableBuilder;
    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;

    /// A random table with 3 quasi-identifiers of nested hierarchies and one sensitive value.
    fn random_table(seed: u64, n: usize) -> (BaseTable, Vec<QiHierarchy>) {
        let mut x = seed;
        let mut next = move |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let mut cols: Vec<Vec<String>> = vec![Vec::new(); 4];
        for _ in 0..n {
            cols[0].push((20 + next(40)).to_string());
            cols[1].push(format!("{:03}", next(30)));
            cols[2].push(["F", "M"][next(2) as usize].to_string());
            cols[3].push(["flu", "hiv", "cold", "none"][next(4) as usize].to_string());
        }
        let arrays: Vec<(&str, ArrayRef)> = ["age", "zip", "sex", "dx"]
            .iter()
            .zip(&cols)
            .map(|(n, c)| (*n, Arc::new(StringArray::from(c.clone())) as ArrayRef))
            .collect();
        let batch = RecordBatch::try_from_iter(arrays).unwrap();
        let mut b = BaseTableBuilder::new(
            vec!["age".into(), "zip".into(), "sex".into()],
            vec!["dx".into()],
        );
        b.push_batch(&batch).unwrap();
        let t = b.finish();
        let lv = |v: &Option<String>, f: &dyn Fn(&str) -> String| v.as_deref().map(f);
        let age = &t.qi_values[0];
        let zip = &t.qi_values[1];
        let sex = &t.qi_values[2];
        let qis = vec![
            QiHierarchy::build(
                "age",
                age,
                vec![
                    age.iter()
                        .map(|v| lv(v, &|s| format!("{}x", &s[..1])))
                        .collect(),
                    age.iter()
                        .map(|v| {
                            lv(v, &|s| {
                                if s < "40" {
                                    "<40".into()
                                } else {
                                    ">=40".into()
                                }
                            })
                        })
                        .collect(),
                    vec![Some("*".into()); age.len()],
                ],
            )
            .unwrap(),
            QiHierarchy::build(
                "zip",
                zip,
                vec![
                    zip.iter().map(|v| lv(v, &|s| s[..2].to_string())).collect(),
                    zip.iter().map(|v| lv(v, &|s| s[..1].to_string())).collect(),
                    vec![Some("*".into()); zip.len()],
                ],
            )
            .unwrap(),
            QiHierarchy::build("sex", sex, vec![vec![Some("*".into()); sex.len()]]).unwrap(),
        ];
        (t, qis)
    }

    fn spec(
        k: u64,
        l: Option<(LVariant, f64, Option<f64>)>,
        t: Option<f64>,
        supp: f64,
        metric: LossMetric,
    ) -> PrivacySpec {
        PrivacySpec {
            quasi_identifiers: vec![],
            k: Some(k),
            l_diversity: l
                .map(|(variant, l, c)| LDiversity {
                    attribute: "dx".into(),
                    variant,
                    l,
                    c,
                })
                .into_iter()
                .collect(),
            t_closeness: t
                .map(|t| TCloseness {
                    attribute: "dx".into(),
                    t,
                    distance: Some(TDistance::Equal),
                })
                .into_iter()
                .collect(),
            on_violation: Default::default(),
            max_suppression: supp,
            metric,
            sampling_fraction: 1.0,
            search_budget: Default::default(),
            subject: None,
        }
    }

    #[test]
    fn search_matches_brute_force_for_every_metric_and_model() {
        let metrics = [
            LossMetric::Precision,
            LossMetric::Height,
            LossMetric::Discernibility,
            LossMetric::AvgClassSize,
        ];
        let models = [
            (3, None, None),
            (5, None, None),
            (2, Some((LVariant::Distinct, 2.0, None)), None),
            (2, Some((LVariant::Entropy, 1.8, None)), None),
            (2, Some((LVariant::Recursive, 2.0, Some(3.0))), None),
            (2, None, Some(0.3)),
        ];
        let mut compared = 0;
        for seed in [1, 7] {
            let (t, qis) = random_table(seed, 400);
            for &(k, l, tc) in &models {
                for supp in [0.0, 0.05, 0.2] {
                    for metric in metrics {
                        let m = Models::new(&spec(k, l, tc, supp, metric), &t).unwrap();
                        let fast = search(&t, &qis, &m).unwrap();
                        let slow = brute_force(&t, &qis, &m).unwrap();
                        assert_eq!(slow.lattice_size, 4 * 4 * 2);
                        match (&fast.best, &slow.best) {
                            (Some(a), Some(b)) => {
                                assert_eq!(
                                    a.loss, b.loss,
                                    "seed {seed} k {k} l {l:?} t {tc:?} supp {supp} {metric:?}: \
                                     search {:?} vs brute force {:?}",
                                    a.levels, b.levels
                                );
                                assert!(a.ok);
                                compared += 1;
                            }
                            (None, None) => {}
                            (a, b) => panic!(
                                "search found {:?}, brute force {:?}",
                                a.as_ref().map(|e| &e.levels),
                                b.as_ref().map(|e| &e.levels)
                            ),
                        }
                        assert!(fast.evaluated <= slow.evaluated);
                    }
                }
            }
        }
        assert!(compared > 100, "{compared}");
    }

    #[test]
    fn level_bounds_and_weights_are_searched_exactly() {
        // Seeded: bounds and weights drawn at random, the search compared with an
        // independent scan of the full lattice restricted to the bounds.
        let mut x = 0x5eed_u64;
        let mut next = move |m: usize| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % m as u64) as usize
        };
        let metrics = [
            LossMetric::Precision,
            LossMetric::Height,
            LossMetric::Discernibility,
            LossMetric::AvgClassSize,
        ];
        let (mut compared, mut weights_mattered) = (0, 0);
        for seed in [3, 4, 5] {
            let (t, qis) = random_table(seed, 300);
            let full = Lattice::new(&qis).unwrap();
            for _ in 0..8 {
                let bounds: Vec<(usize, Option<usize>)> = qis
                    .iter()
                    .map(|q| {
                        let (a, b) = (next(q.max_level() + 1), next(q.max_level() + 1));
                        (a.min(b), Some(a.max(b)))
                    })
                    .collect();
                let weights: Vec<f64> = (0..qis.len()).map(|_| next(4) as f64 / 2.0).collect();
                for metric in metrics {
                    for (k, supp) in [(3, 0.0), (5, 0.05)] {
                        let mut m = Models::new(&spec(k, None, None, supp, metric), &t).unwrap();
                        let unweighted = search(&t, &qis, &m).unwrap();
                        m.bounds = bounds.clone();
                        m.weights = weights.clone();
                        let fast = search(&t, &qis, &m).unwrap();
                        let inside = |l: &[usize]| {
                            l.iter()
                                .zip(&bounds)
                                .all(|(&l, &(lo, hi))| l >= lo && Some(l) <= hi)
                        };
                        let mut scratch = Scratch::default();
                        let mut best: Option<NodeEval> = None;
                        for n in 0..full.size {
                            let levels = full.levels(n);
                            if !inside(&levels) {
                                continue;
                            }
                            let e = evaluate(&t, &qis, &m, &levels, &mut scratch);
                            if e.ok && best.as_ref().is_none_or(|b| e.loss < b.loss) {
                                best = Some(e);
                            }
                        }
                        let loss = |e: &Option<NodeEval>| e.as_ref().map(|b| b.loss);
                        assert_eq!(
                            loss(&fast.best),
                            loss(&best),
                            "seed {seed} {metric:?} k {k} bounds {bounds:?} weights {weights:?}"
                        );
                        if let Some(b) = &fast.best {
                            assert!(inside(&b.levels), "{:?} {bounds:?}", b.levels);
                            compared += 1;
                            let other = unweighted.best.as_ref().map(|u| &u.levels);
                            weights_mattered += usize::from(other != Some(&b.levels));
                        }
                    }
                }
            }
        }
        assert!(compared > 50, "{compared}");
        assert!(weights_mattered > 10, "{weights_mattered}");
    }

    #[test]
    fn weights_scale_each_attributes_loss() {
        let (_, qis) = random_table(1, 50);
        // Levels 3/3, 0/3, 1/1 (age, zip, sex).
        let levels = [3, 0, 1];
        assert!((mean_normalized_level(&qis, &[], &levels) - 2.0 / 3.0).abs() < 1e-12);
        assert!((mean_normalized_level(&qis, &[0.0, 1.0, 1.0], &levels) - 0.5).abs() < 1e-12);
        assert!((generalization_height(&qis, &[], &levels) - 4.0 / 7.0).abs() < 1e-12);
        assert!((generalization_height(&qis, &[2.0, 1.0, 0.0], &levels) - 6.0 / 9.0).abs() < 1e-12);
        assert_eq!(mean_normalized_level(&qis, &[0.0; 3], &levels), 0.0);
    }

    #[test]
    fn subject_counts_are_searched_exactly() {
        // The random table again, with a subject column: 80 people over 400 records.
        let (t0, qis) = random_table(6, 400);
        let mut x = 6u64;
        let mut b = BaseTableBuilder::new(t0.qi_names.clone(), vec!["dx".into(), "who".into()]);
        let mut key = vec![0u32; 3];
        for tuple in 0..t0.num_tuples() {
            let codes = t0.tuple(tuple);
            let values: Vec<Option<&str>> = (0..3)
                .map(|i| t0.qi_values[i][codes[i] as usize].as_deref())
                .collect();
            for _ in 0..t0.counts[tuple] {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = b.tuple_id(&values, &mut key);
                let dx = b.sensitive_code(0, Some("flu"));
                let who = b.sensitive_code(1, Some(&format!("p{}", (x >> 33) % 80)));
                b.add(id, &[dx, who], 1).unwrap();
            }
        }
        let t = b.finish();
        let mut compared = 0;
        for (k, supp) in [(3, 0.0), (4, 0.05), (6, 0.2)] {
            for metric in [LossMetric::Precision, LossMetric::Discernibility] {
                let mut s = spec(k, None, None, supp, metric);
                s.subject = Some("who".into());
                let m = Models::new(&s, &t).unwrap();
                let fast = search(&t, &qis, &m).unwrap();
                let slow = brute_force(&t, &qis, &m).unwrap();
                let loss = |r: &SearchResult| r.best.as_ref().map(|b| b.loss);
                assert_eq!(loss(&fast), loss(&slow), "k {k} supp {supp} {metric:?}");
                compared += usize::from(slow.best.is_some());
            }
        }
        assert!(compared >= 4, "{compared}");
    }

    /// A test-only, non-monotone model: no class larger than `max` records.
    struct SizeCap {
        max: u64,
    }

    impl crate::privacy::models::Criterion for SizeCap {
        fn name(&self) -> String {
            format!("classes of at most {} records", self.max)
        }
        fn monotonicity(&self) -> crate::privacy::models::Monotonicity {
            crate::privacy::models::Monotonicity::Never
        }
        fn mark(
            &self,
            sizes: &[u64],
            _: &crate::privacy::models::SensitiveStats,
            violating: &mut [bool],
        ) {
            for (v, &s) in violating.iter_mut().zip(sizes) {
                *v |= s > self.max;
            }
        }
    }

    #[test]
    fn a_plugged_in_criterion_is_searched_exactly() {
        let mut compared = 0;
        for seed in [2, 9] {
            let (t, qis) = random_table(seed, 400);
            for (tc, supp, max) in [(None, 0.0, 60), (None, 0.1, 40), (Some(0.3), 0.05, 80)] {
                for metric in [LossMetric::Precision, LossMetric::Discernibility] {
                    let mut m = Models::new(&spec(2, None, tc, supp, metric), &t).unwrap();
                    m.add(SizeCap { max });
                    let fast = search(&t, &qis, &m).unwrap();
                    let slow = brute_force(&t, &qis, &m).unwrap();
                    let loss = |r: &SearchResult| r.best.as_ref().map(|b| b.loss);
                    assert_eq!(loss(&fast), loss(&slow), "seed {seed} max {max} {metric:?}");
                    compared += usize::from(slow.best.is_some());
                }
            }
        }
        assert!(compared > 4, "{compared}");
    }

    #[test]
    fn a_search_stops_at_its_budget_with_what_to_do() {
        let (t, qis) = random_table(5, 400);
        let m = Models::new(&spec(5, None, None, 0.0, LossMetric::Discernibility), &t).unwrap();
        let full = search(&t, &qis, &m).unwrap();
        assert!(full.evaluated > 2, "{}", full.evaluated);
        let mut calls = 0;
        for budget in [
            SearchBudget {
                seconds: None,
                nodes: Some(2),
            },
            SearchBudget {
                seconds: Some(1e-12),
                nodes: None,
            },
        ] {
            let e = search_with(&t, &qis, &m, budget, &mut |_| calls += 1).unwrap_err();
            let SearchError::Budget { progress, .. } = &e else {
                panic!("{e}")
            };
            assert!(progress.evaluated <= 2 && progress.lattice_size == 32);
            let msg = e.to_string();
            for want in ["budget", "fewer quasi-identifiers", "search_budget"] {
                assert!(msg.contains(want), "{msg}");
            }
        }
        // A budget the search fits in changes nothing; short searches report no progress.
        let ok = search_with(
            &t,
            &qis,
            &m,
            SearchBudget {
                seconds: Some(60.0),
                nodes: Some(full.evaluated as u64),
            },
            &mut |_| calls += 1,
        )
        .unwrap();
        assert_eq!(ok.best.map(|b| b.levels), full.best.map(|b| b.levels));
        assert_eq!(calls, 0);
    }

    #[test]
    fn oversized_lattices_are_refused_with_the_sizes() {
        let wide = QiHierarchy::build(
            "q",
            &[Some("a".into())],
            (0..9).map(|_| vec![Some("x".to_string())]).collect(),
        )
        .unwrap();
        let qis = vec![wide; 7]; // 10^7 nodes
        let e = Lattice::new(&qis).unwrap_err().message;
        assert!(
            e.contains("10 x 10 x 10") && e.contains("fewer quasi-identifiers"),
            "{e}"
        );
    }

    #[test]
    fn lattice_indexing_round_trips() {
        let (_, qis) = random_table(3, 50);
        let l = Lattice::new(&qis).unwrap();
        assert_eq!(l.size, 32);
        for n in 0..l.size {
            assert_eq!(l.index(&l.levels(n)), n);
        }
    }
}
