//! Privacy models and information-loss metrics, evaluated on one generalization (a lattice
//! node) of a [`BaseTable`].
//!
//! A record is *suppressed* when its equivalence class violates any model; a node satisfies
//! the models when the suppressed records fit within the suppression limit.

mod checks;
mod classes;
pub mod criteria;
mod loss;
mod risk;

pub use checks::{NodeEval, SensitiveStats, StatsNeeds, evaluate, sensitive_stats};
pub use classes::{Classes, Scratch, classes};
pub use criteria::{Criterion, Monotonicity};
pub use loss::{LossFigures, generalization_height, mean_normalized_level};
pub use risk::{Assessment, Risks, SIZE_BUCKETS, SensitiveAchieved, SizeBucket, assess};

use std::sync::Arc;

use super::table::BaseTable;
use crate::error::Problem;
use crate::policy::hierarchy::QiHierarchy;
use crate::policy::{LVariant, LossMetric, PrivacySpec, TDistance};
use criteria::{Attribute, DistinctL, EntropyL, KAnonymity, RecursiveCL};

/// The models bound to a table's columns.
#[derive(Debug, Clone)]
pub struct Models {
    /// 1 when the policy sets no k (for risks and the average class size metric).
    pub k: u64,
    /// The t-closeness rules as bound, distance resolved: (sensitive column index, t,
    /// distance), for the provenance record.
    pub t: Vec<(usize, f64, TDistance)>,
    /// Largest number of records that may be suppressed.
    pub max_suppressed: u64,
    /// With a subject column: the largest number of subjects whose records may be
    /// suppressed (`max_suppression` of the distinct subjects).
    pub max_suppressed_subjects: u64,
    pub max_suppression: f64,
    pub metric: LossMetric,
    pub sampling_fraction: f64,
    /// What each node is checked against, in policy order (k, l rules, t rules).
    criteria: Vec<Arc<dyn Criterion>>,
    /// Per sensitive attribute, the statistics the criteria read (`None`: not named).
    needs: Vec<Option<StatsNeeds>>,
    /// The subject column (`privacy.subject`), grouped as a hidden sensitive column: classes
    /// count its distinct values.
    pub subject: Option<Attribute>,
    /// Per quasi-identifier, the levels the search may choose: (min, max; `None` the top).
    /// Empty: every level.
    pub bounds: Vec<(usize, Option<usize>)>,
    /// Per quasi-identifier, the weight of its loss in `precision` and `height` (empty: 1).
    pub weights: Vec<f64>,
}

impl Models {
    /// Bind `spec` to `table`; `t` distances not given in the policy are chosen from the data
    /// (ordered for numbers, equal otherwise).
    pub fn new(spec: &PrivacySpec, table: &BaseTable) -> Result<Models, Problem> {
        let sa = |name: &str| -> Result<Attribute, Problem> {
            let index = table
                .sensitive
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| {
                    Problem(format!(
                        "sensitive attribute `{name}` is not in the grouped data"
                    ))
                })?;
            let name = name.to_string();
            Ok(Attribute { index, name })
        };
        let mut m = Models {
            k: spec.k.unwrap_or(1),
            t: Vec::new(),
            max_suppressed: (spec.max_suppression * table.rows as f64 + 1e-9).floor() as u64,
            max_suppressed_subjects: 0,
            max_suppression: spec.max_suppression,
            metric: spec.metric,
            sampling_fraction: spec.sampling_fraction,
            criteria: Vec::new(),
            needs: vec![None; table.sensitive.len()],
            subject: None,
            bounds: spec
                .quasi_identifiers
                .iter()
                .map(|q| (q.min_level, q.max_level))
                .collect(),
            weights: spec.quasi_identifiers.iter().map(|q| q.weight).collect(),
        };
        if let Some(name) = &spec.subject {
            let a = sa(name)?;
            let subjects = table.sensitive[a.index].values.len() as f64;
            m.max_suppressed_subjects = (spec.max_suppression * subjects + 1e-9).floor() as u64;
            m.subject = Some(a);
        }
        if let Some(k) = spec.k {
            m.add(KAnonymity {
                k,
                subject: m.subject.clone(),
            });
        }
        for r in &spec.l_diversity {
            let (on, l) = (sa(&r.attribute)?, r.l);
            match r.variant {
                LVariant::Distinct => m.add(DistinctL { on, l }),
                LVariant::Entropy => m.add(EntropyL { on, l }),
                LVariant::Recursive => m.add(RecursiveCL::new(on, r.c.unwrap_or(1.0), l)),
            }
        }
        for r in &spec.t_closeness {
            let on = sa(&r.attribute)?;
            let d = r.distance.unwrap_or(if table.sensitive[on.index].numeric {
                TDistance::Ordered
            } else {
                TDistance::Equal
            });
            m.t.push((on.index, r.t, d));
            m.add(criteria::TCloseness::new(on, r.t, d));
        }
        Ok(m)
    }

    /// Check every node against `c` too. Its attribute, if any, must be a column of the table
    /// the models were built for.
    pub fn add(&mut self, mut c: impl Criterion + 'static) {
        if let Some(s) = c.attribute() {
            c.request(self.needs[s].get_or_insert_with(StatsNeeds::default));
        }
        self.criteria.push(Arc::new(c));
    }

    /// The lowest level of each quasi-identifier the release may use (`min_level`, within
    /// the hierarchy): the node `fail` and `suppress` release.
    pub fn min_levels(&self, qis: &[QiHierarchy]) -> Vec<usize> {
        qis.iter()
            .enumerate()
            .map(|(i, q)| self.bounds.get(i).map_or(0, |b| b.0).min(q.max_level()))
            .collect()
    }

    /// The highest level of each quasi-identifier the search may choose.
    pub fn max_levels(&self, qis: &[QiHierarchy]) -> Vec<usize> {
        qis.iter()
            .enumerate()
            .map(|(i, q)| {
                let top = q.max_level();
                let max = self.bounds.get(i).and_then(|b| b.1).unwrap_or(top).min(top);
                max.max(self.bounds.get(i).map_or(0, |b| b.0).min(top))
            })
            .collect()
    }

    /// What class sizes and k count: `records`, or `subjects (<column>)`.
    pub fn counted(&self) -> String {
        match &self.subject {
            Some(s) => format!("subjects ({})", s.name),
            None => "records".into(),
        }
    }

    /// The criteria, in the order they were added.
    pub fn criteria(&self) -> &[Arc<dyn Criterion>] {
        &self.criteria
    }

    /// Per sensitive attribute, the statistics the criteria read (`None`: no criterion names
    /// the attribute).
    pub fn needs(&self) -> &[Option<StatsNeeds>] {
        &self.needs
    }

    /// Whether every criterion is monotone under generalization with this suppression limit,
    /// so that a node's result implies its neighbours'.
    pub fn all_monotone(&self) -> bool {
        self.criteria.iter().all(|c| match c.monotonicity() {
            Monotonicity::Always => true,
            Monotonicity::WithoutSuppression => {
                self.max_suppressed == 0
                    || (self.subject.is_some() && self.max_suppressed_subjects == 0)
            }
            Monotonicity::Never => false,
        })
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
            subject: None,
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
    fn with_a_subject_k_and_sizes_count_distinct_subjects() {
        // (30,A): one person with three rows; (40,B): three people; (50,B): p2 and p5.
        let rows = [
            ("30", "A", "flu", "p1"),
            ("30", "A", "flu", "p1"),
            ("30", "A", "hiv", "p1"),
            ("40", "B", "flu", "p2"),
            ("40", "B", "hiv", "p3"),
            ("40", "B", "flu", "p4"),
            ("50", "B", "flu", "p2"),
            ("50", "B", "flu", "p5"),
        ];
        let col = |i: usize| -> ArrayRef {
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|r| [r.0, r.1, r.2, r.3][i])
                    .collect::<Vec<_>>(),
            ))
        };
        let batch = RecordBatch::try_from_iter(vec![
            ("a", col(0)),
            ("b", col(1)),
            ("s", col(2)),
            ("who", col(3)),
        ])
        .unwrap();
        let mut b =
            BaseTableBuilder::new(vec!["a".into(), "b".into()], vec!["s".into(), "who".into()]);
        b.push_batch(&batch).unwrap();
        let t = b.finish();
        let qis: Vec<QiHierarchy> = (0..2)
            .map(|i| {
                QiHierarchy::build(
                    &t.qi_names[i],
                    &t.qi_values[i],
                    vec![vec![Some("*".into()); t.qi_values[i].len()]],
                )
                .unwrap()
            })
            .collect();
        let mut s = spec(Some(2), vec![], vec![], 0.5);
        let records = Models::new(&s, &t).unwrap();
        s.subject = Some("who".into());
        let m = Models::new(&s, &t).unwrap();
        assert_eq!(m.counted(), "subjects (who)");
        let e = evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default());
        // Counting records every class has at least 2; counting people (30,A) has 1.
        assert_eq!(
            evaluate(&t, &qis, &records, &[0, 0], &mut Scratch::default()).suppressed,
            0
        );
        assert_eq!(e.suppressed, 3);
        assert!(e.ok_monotone && e.ok);
        let a = assess(&t, &qis, &m, &e, false);
        assert_eq!((a.smallest_class, a.largest_class), (1, 3));
        assert_eq!((a.records_below_k, a.classes_below_k), (3, 1));
        assert_eq!(a.counted, "subjects (who)");
        // The subject is not reported as a sensitive attribute.
        assert!(a.sensitive.is_empty());
        // The suppression limit counts people: 3 of 8 records exceed 20%, but they are one of
        // five subjects, within it.
        s.max_suppression = 0.2;
        let m = Models::new(&s, &t).unwrap();
        assert_eq!((m.max_suppressed, m.max_suppressed_subjects), (1, 1));
        let e = evaluate(&t, &qis, &m, &[0, 0], &mut Scratch::default());
        assert!(e.ok && e.suppressed == 3);
        // One class at the top: p2 counts once although in two former classes.
        let top = evaluate(&t, &qis, &m, &[1, 1], &mut Scratch::default());
        let a = assess(&t, &qis, &m, &top, true);
        assert_eq!((a.smallest_class, top.suppressed), (5, 0));
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
