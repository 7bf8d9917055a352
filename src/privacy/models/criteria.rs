//! Privacy criteria: one [`Criterion`] per model a policy names (k-anonymity, distinct,
//! entropy and recursive (c,l) l-diversity, t-closeness), checked class by class on one node.
//!
//! A new model is one implementation plus one [`super::Models::add`] line in
//! [`super::Models::new`]; a statistic no criterion computes yet is a flag in [`StatsNeeds`]
//! and a few lines in [`super::sensitive_stats`].

use std::fmt;

use crate::policy::TDistance;

use super::checks::{SensitiveStats, StatsNeeds};
use super::risk::SensitiveAchieved;

/// How a criterion's verdict behaves when a node is generalized (classes merge). The search
/// prunes the lattice with the criteria that are monotone under the current suppression limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monotonicity {
    /// A node that meets it implies every generalization does, even with suppression.
    Always,
    /// Only when nothing may be suppressed: a generalization can merge a small suppressed
    /// class into a large one that then fails.
    WithoutSuppression,
    /// Not monotone: checked on every candidate node, never used for pruning.
    Never,
}

/// One privacy model bound to a table's columns.
pub trait Criterion: Send + Sync {
    /// For messages, e.g. entropy l-diversity of `dx` (l = 1.8).
    fn name(&self) -> String;

    fn monotonicity(&self) -> Monotonicity;

    /// The sensitive attribute (index into `BaseTable::sensitive`) whose statistics
    /// [`Criterion::mark`] reads; `None` for criteria on class sizes alone.
    fn attribute(&self) -> Option<usize> {
        None
    }

    /// Ask for the per-class statistics [`Criterion::mark`] reads, remembering their slots.
    /// Called once, when the criterion is added to its models.
    fn request(&mut self, _needs: &mut StatsNeeds) {}

    /// Set `violating[c]` for every class `c` that fails; never clear a flag. `sizes` and the
    /// statistics of [`Criterion::attribute`] (empty without one) are indexed by class.
    fn mark(&self, sizes: &[u64], stats: &SensitiveStats, violating: &mut [bool]);

    /// Add what the released classes achieve to the report on this criterion's attribute
    /// (distinct and entropy l are always reported).
    fn achieved(&self, _stats: &SensitiveStats, _released: &[bool], _out: &mut SensitiveAchieved) {}
}

impl fmt::Debug for dyn Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A sensitive attribute as a criterion names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Index into `BaseTable::sensitive`.
    pub index: usize,
    pub name: String,
}

/// Every class has at least `k` records, or `k` distinct subjects when `subject` is set.
#[derive(Debug, Clone)]
pub struct KAnonymity {
    pub k: u64,
    /// The subject column (`privacy.subject`), whose distinct values are counted.
    pub subject: Option<Attribute>,
}

impl Criterion for KAnonymity {
    fn name(&self) -> String {
        match &self.subject {
            Some(s) => format!("k-anonymity over subjects `{}` (k = {})", s.name, self.k),
            None => format!("k-anonymity (k = {})", self.k),
        }
    }

    /// Merging classes never lowers a class's record count nor its distinct subjects.
    fn monotonicity(&self) -> Monotonicity {
        Monotonicity::Always
    }

    fn attribute(&self) -> Option<usize> {
        self.subject.as_ref().map(|s| s.index)
    }

    fn request(&mut self, needs: &mut StatsNeeds) {
        needs.distinct |= self.subject.is_some();
    }

    fn mark(&self, sizes: &[u64], stats: &SensitiveStats, violating: &mut [bool]) {
        if self.subject.is_some() {
            for (v, &d) in violating.iter_mut().zip(&stats.distinct) {
                *v |= u64::from(d) < self.k;
            }
            return;
        }
        for (v, &s) in violating.iter_mut().zip(sizes) {
            if s < self.k {
                *v = true;
            }
        }
    }
}

/// Every class has at least `l` distinct sensitive values.
#[derive(Debug, Clone)]
pub struct DistinctL {
    pub on: Attribute,
    pub l: f64,
}

impl Criterion for DistinctL {
    fn name(&self) -> String {
        format!(
            "distinct l-diversity of `{}` (l = {})",
            self.on.name, self.l
        )
    }

    fn monotonicity(&self) -> Monotonicity {
        Monotonicity::Always
    }

    fn attribute(&self) -> Option<usize> {
        Some(self.on.index)
    }

    fn request(&mut self, needs: &mut StatsNeeds) {
        needs.distinct = true;
    }

    fn mark(&self, _: &[u64], stats: &SensitiveStats, violating: &mut [bool]) {
        for (v, &d) in violating.iter_mut().zip(&stats.distinct) {
            if (d as f64) < self.l {
                *v = true;
            }
        }
    }
}

/// Every class has exp(entropy) of its sensitive values at least `l`.
#[derive(Debug, Clone)]
pub struct EntropyL {
    pub on: Attribute,
    pub l: f64,
}

impl Criterion for EntropyL {
    fn name(&self) -> String {
        format!("entropy l-diversity of `{}` (l = {})", self.on.name, self.l)
    }

    fn monotonicity(&self) -> Monotonicity {
        Monotonicity::WithoutSuppression
    }

    fn attribute(&self) -> Option<usize> {
        Some(self.on.index)
    }

    fn request(&mut self, needs: &mut StatsNeeds) {
        needs.entropy = true;
    }

    fn mark(&self, _: &[u64], stats: &SensitiveStats, violating: &mut [bool]) {
        // The tolerance lets l = exp(H) of an exactly balanced class pass.
        let min = self.l - 1e-12;
        for (v, &e) in violating.iter_mut().zip(&stats.entropy_l) {
            if e < min {
                *v = true;
            }
        }
    }
}

/// Recursive (c,l)-diversity: in every class, r1 < c (rl + … + rm) over the value counts in
/// descending order.
#[derive(Debug, Clone)]
pub struct RecursiveCL {
    pub on: Attribute,
    pub c: f64,
    pub l: f64,
    /// Index into [`SensitiveStats::recursive_ok`], set by [`Criterion::request`].
    slot: usize,
}

impl RecursiveCL {
    pub fn new(on: Attribute, c: f64, l: f64) -> RecursiveCL {
        RecursiveCL { on, c, l, slot: 0 }
    }
}

impl Criterion for RecursiveCL {
    fn name(&self) -> String {
        let (c, l) = (self.c, self.l);
        format!(
            "recursive (c,l)-diversity of `{}` (c = {c}, l = {l})",
            self.on.name
        )
    }

    fn monotonicity(&self) -> Monotonicity {
        Monotonicity::WithoutSuppression
    }

    fn attribute(&self) -> Option<usize> {
        Some(self.on.index)
    }

    fn request(&mut self, needs: &mut StatsNeeds) {
        self.slot = needs.recursive_slot(self.c, self.l);
    }

    fn mark(&self, _: &[u64], stats: &SensitiveStats, violating: &mut [bool]) {
        for (v, &ok) in violating.iter_mut().zip(&stats.recursive_ok[self.slot]) {
            if !ok {
                *v = true;
            }
        }
    }
}

/// Every class's distribution of the sensitive values is within `t` of the whole table's,
/// by the equal (variational) or the ordered (earth mover's) distance.
#[derive(Debug, Clone)]
pub struct TCloseness {
    pub on: Attribute,
    pub t: f64,
    pub distance: TDistance,
    /// Index into [`SensitiveStats::distance`], set by [`Criterion::request`].
    slot: usize,
}

impl TCloseness {
    pub fn new(on: Attribute, t: f64, distance: TDistance) -> TCloseness {
        TCloseness {
            on,
            t,
            distance,
            slot: 0,
        }
    }
}

impl Criterion for TCloseness {
    fn name(&self) -> String {
        let d = match self.distance {
            TDistance::Equal => "equal",
            TDistance::Ordered => "ordered",
        };
        format!(
            "t-closeness of `{}` ({d} distance, t = {})",
            self.on.name, self.t
        )
    }

    fn monotonicity(&self) -> Monotonicity {
        Monotonicity::WithoutSuppression
    }

    fn attribute(&self) -> Option<usize> {
        Some(self.on.index)
    }

    fn request(&mut self, needs: &mut StatsNeeds) {
        self.slot = needs.distance_slot(self.distance);
    }

    fn mark(&self, _: &[u64], stats: &SensitiveStats, violating: &mut [bool]) {
        // The tolerance keeps a distance equal to t (up to rounding) within it.
        let max = self.t + 1e-12;
        for (v, &d) in violating.iter_mut().zip(&stats.distance[self.slot]) {
            if d > max {
                *v = true;
            }
        }
    }

    fn achieved(&self, stats: &SensitiveStats, released: &[bool], out: &mut SensitiveAchieved) {
        let largest = stats.distance[self.slot]
            .iter()
            .zip(released)
            .filter(|(_, r)| **r)
            .map(|(d, _)| *d)
            .fold(0.0, f64::max);
        out.t.push((self.distance, largest));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::table;
    use super::super::{Models, Scratch, assess, evaluate};
    use super::*;
    use crate::policy::{LossMetric, PrivacySpec, TCloseness as TRule};

    /// A test-only model: every class has at least `share` × its size distinct values. Not
    /// monotone: merging classes with the same values adds records but no values.
    struct DistinctShare {
        on: Attribute,
        share: f64,
    }

    impl Criterion for DistinctShare {
        fn name(&self) -> String {
            format!("distinct share of `{}` ({})", self.on.name, self.share)
        }
        fn monotonicity(&self) -> Monotonicity {
            Monotonicity::Never
        }
        fn attribute(&self) -> Option<usize> {
            Some(self.on.index)
        }
        fn request(&mut self, needs: &mut StatsNeeds) {
            needs.distinct = true;
        }
        fn mark(&self, sizes: &[u64], stats: &SensitiveStats, violating: &mut [bool]) {
            for ((v, &n), &d) in violating.iter_mut().zip(sizes).zip(&stats.distinct) {
                if (d as f64) < self.share * n as f64 {
                    *v = true;
                }
            }
        }
    }

    fn spec(k: Option<u64>, t: Vec<TRule>) -> PrivacySpec {
        PrivacySpec {
            quasi_identifiers: vec![],
            k,
            l_diversity: vec![],
            t_closeness: t,
            on_violation: Default::default(),
            max_suppression: 0.0,
            metric: LossMetric::Discernibility,
            sampling_fraction: 1.0,
            search_budget: Default::default(),
            subject: None,
        }
    }

    #[test]
    fn a_new_criterion_plugs_in_with_one_line() {
        // Classes: (30,A) flu flu hiv -> 2 values in 3; (40,A) flu hiv -> 2 in 2.
        let (t, qis) = table(&[
            ("30", "A", "flu"),
            ("30", "A", "flu"),
            ("30", "A", "hiv"),
            ("40", "A", "flu"),
            ("40", "A", "hiv"),
        ]);
        let mut m = Models::new(&spec(None, vec![]), &t).unwrap();
        let on = Attribute {
            index: 0,
            name: "s".into(),
        };
        m.add(DistinctShare { on, share: 0.8 });
        assert_eq!(
            format!("{:?}", m.criteria()),
            "[distinct share of `s` (0.8)]"
        );
        assert!(!m.all_monotone());
        let e = evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default());
        assert_eq!(e.suppressed, 3);
        assert!(!e.ok);
        // Never monotone: it takes no part in pruning.
        assert_eq!(e.suppressed_monotone, 0);
        assert!(e.ok_monotone);
        // Only the statistic it asked for was computed...
        let st = e.sensitive[0].as_ref().unwrap();
        assert_eq!((st.distinct.len(), st.entropy_l.len()), (2, 0));
        // ...yet the report still has distinct and entropy l.
        let a = assess(&t, &qis, &m, &e, false);
        assert_eq!(a.sensitive[0].distinct_l, 2);
        let h = -(2.0 / 3.0 * (2.0f64 / 3.0).ln() + 1.0 / 3.0 * (1.0f64 / 3.0).ln());
        assert!((a.sensitive[0].entropy_l - h.exp()).abs() < 1e-12);
        assert!(a.sensitive[0].t.is_empty());
    }

    #[test]
    fn only_the_statistics_the_criteria_read_are_computed() {
        let (t, qis) = table(&[("30", "A", "1"), ("30", "A", "2"), ("40", "A", "3")]);
        let k_only = Models::new(&spec(Some(2), vec![]), &t).unwrap();
        let e = evaluate(&t, &qis, &k_only, &[0, 0], &mut Scratch::default());
        assert!(e.sensitive[0].is_none());
        assert!(assess(&t, &qis, &k_only, &e, false).sensitive.is_empty());
        // Two t rules with the same distance share one slot; the report lists both.
        let rule = |t| TRule {
            attribute: "s".into(),
            t,
            distance: Some(TDistance::Equal),
        };
        let m = Models::new(&spec(None, vec![rule(0.5), rule(0.9)]), &t).unwrap();
        let needs = m.needs()[0].as_ref().unwrap();
        assert_eq!(needs.distances, [TDistance::Equal]);
        assert!(!needs.distinct && !needs.entropy);
        let e = evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default());
        assert_eq!(e.sensitive[0].as_ref().unwrap().distance.len(), 1);
        let a = assess(&t, &qis, &m, &e, false);
        let s = &a.sensitive[0];
        assert_eq!(s.t.len(), 2);
        assert_eq!(s.t[0], s.t[1]);
        assert_eq!((s.distinct_l, s.entropy_l), (1, 1.0));
    }
}
