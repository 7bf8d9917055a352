//! Deciding and applying the release: the chosen generalization levels become column kernels,
//! and the violating classes a row filter, both run by the streaming engine.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{DataType, Field as ArrowField, Schema};
use serde_json::{Value, json};

use crate::provenance::record::{
    LRecord, ModelsRecord, PrivacyNode, QiEvidence, SearchRecord, TRecord,
};

use super::collect::Prepared;
use super::models::{Assessment, NodeEval, Scratch, assess, evaluate};
use super::search::{SearchError, search_with};
use crate::error::{Error, Result};
use crate::kernels::custom::{CustomKernel, CustomTransform, Param, ParamType, Params};
use crate::kernels::descriptor::Transform;
use crate::plan::{Kernel, LevelLookup, Plan, RowFilter, meta};
use crate::policy::hierarchy::{QiHierarchy, TOP};
use crate::policy::{
    Action, CustomAction, HierarchySource, OnViolation, PrivacySpec, QuasiIdentifier, TDistance,
};
use crate::provenance::record::QiTransformation;

/// What the privacy block decided for a run.
#[derive(Debug)]
pub struct Decision {
    pub eval: NodeEval,
    /// Whether violating classes are suppressed (dropped).
    pub suppress: bool,
    pub assessment: Assessment,
    /// The data as the field rules alone would release it (level 0, nothing suppressed).
    pub before: Assessment,
    /// Lattice size, nodes evaluated, seconds — when a search ran.
    pub search: Option<(usize, usize, f64)>,
}

fn describe_violation(a: &Assessment, spec: &PrivacySpec) -> String {
    let mut parts = Vec::new();
    if let Some(k) = spec.k {
        parts.push(format!(
            "k = {k}: smallest class has {} record{}, {} records in {} classes are below k",
            a.smallest_class,
            if a.smallest_class == 1 { "" } else { "s" },
            a.records_below_k,
            a.classes_below_k
        ));
    }
    for s in &a.sensitive {
        for l in spec
            .l_diversity
            .iter()
            .filter(|l| l.attribute == s.attribute)
        {
            parts.push(format!(
                "l-diversity on `{}` ({}, l = {}): smallest distinct l is {}, smallest entropy l {:.3}",
                s.attribute,
                match l.variant {
                    crate::policy::LVariant::Distinct => "distinct",
                    crate::policy::LVariant::Entropy => "entropy",
                    crate::policy::LVariant::Recursive => "recursive",
                },
                l.l,
                s.distinct_l,
                s.entropy_l
            ));
        }
        for (d, t) in &s.t {
            parts.push(format!(
                "t-closeness on `{}` ({}): largest distance {t:.4}",
                s.attribute,
                match d {
                    TDistance::Equal => "equal",
                    TDistance::Ordered => "ordered",
                }
            ));
        }
    }
    parts.join("; ")
}

/// Apply `on_violation` to the prepared input.
pub fn decide(prep: &Prepared, spec: &PrivacySpec, input: &str) -> Result<Decision> {
    let (table, qis, models) = (&prep.table, prep.qis.as_slice(), &prep.models);
    let mut scratch = Scratch::default();
    // The lowest levels allowed (`min_level`, 0 by default): what `fail` and `suppress` release.
    let base = models.min_levels(qis);
    let eval0 = evaluate(table, qis, models, &base, &mut scratch);
    let mut before = assess(table, qis, models, &eval0, false);
    before.transformations = transformations(prep, spec, &base);
    let fail = |message: String| Error::Privacy {
        input: input.to_string(),
        message,
        assessment: Some(crate::error::Details::new(before.clone())),
    };
    let violations = eval0.suppressed;
    let limit = format!("{:.2}%", spec.max_suppression * 100.0);
    let (eval, search_stats) = match spec.on_violation {
        OnViolation::Fail if violations > 0 => {
            return Err(fail(format!(
                "the data does not meet the privacy models ({}); {violations} of {} records are in \
                 violating classes. Nothing was written; use `on_violation: suppress` or \
                 `generalize`, or generalize the quasi-identifiers further",
                describe_violation(&before, spec),
                table.rows
            )));
        }
        OnViolation::Suppress if !eval0.ok => {
            return Err(fail(format!(
                "suppressing the {violations} records of violating classes ({:.2}%) would exceed \
                 max_suppression {limit} ({}). Nothing was written; raise max_suppression or use \
                 `on_violation: generalize`",
                violations as f64 * 100.0 / table.rows.max(1) as f64,
                describe_violation(&before, spec)
            )));
        }
        OnViolation::Fail | OnViolation::Suppress => (eval0, None),
        OnViolation::Generalize => {
            let clock = Instant::now();
            // Long searches say how far they are, on stderr (never for short ones).
            let mut report = |p: &super::search::Progress| {
                eprintln!(
                    "cloakline: privacy search: {} of {} lattice nodes evaluated, {:.0} s",
                    p.evaluated, p.lattice_size, p.seconds
                )
            };
            let r =
                search_with(table, qis, models, spec.search_budget, &mut report).map_err(|e| {
                    match e {
                        SearchError::Lattice(m) => Error::plan(input, m),
                        e @ SearchError::Budget { .. } => fail(format!("{e}. Nothing was written")),
                    }
                })?;
            let secs = clock.elapsed().as_secs_f64();
            match r.best {
                Some(best) => (best, Some((r.lattice_size, r.evaluated, secs))),
                None => {
                    return Err(fail(format!(
                        "no generalization in the lattice of {} nodes meets the privacy models \
                         within max_suppression {limit}, not even the most general; lower k, l or \
                         raise t or max_suppression. Nothing was written",
                        r.lattice_size
                    )));
                }
            }
        }
    };
    let mut assessment = assess(table, qis, models, &eval, true);
    assessment.transformations = transformations(prep, spec, &eval.levels);
    Ok(Decision {
        suppress: eval.suppressed > 0,
        eval,
        assessment,
        before,
        search: search_stats,
    })
}

/// One quasi-identifier's release at its chosen level, shared by every file's plan.
#[derive(Clone, Debug)]
struct QiRelease {
    name: String,
    level: usize,
    max_level: usize,
    labels: Arc<HashMap<String, Option<Arc<str>>>>,
    null_label: Option<Option<Arc<str>>>,
    /// Codes of the level's labels, for the row filter.
    codes: HashMap<String, u32>,
    null_code: u32,
}

/// A decision as the release needs it, without the grouped table: per quasi-identifier its
/// level, the labels of the values seen and the label codes, and the suppressed classes.
/// A cluster's executors enforce from it. It holds quasi-identifier values (as the field
/// rules release them): it is data, and travels as data does, never in a plan.
#[derive(Clone, Debug)]
pub struct ReleaseTable {
    qis: Vec<QiRelease>,
    suppressed: Option<Arc<HashSet<Box<[u32]>>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct QiReleaseWire {
    name: String,
    level: usize,
    max_level: usize,
    labels: Vec<(String, Option<String>)>,
    null_label: Option<Option<String>>,
    codes: Vec<(String, u32)>,
    null_code: u32,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ReleaseTableWire {
    qis: Vec<QiReleaseWire>,
    suppressed: Option<Vec<Vec<u32>>>,
}

impl ReleaseTable {
    /// The table of `decision` over `prep`.
    pub fn of(prep: &Prepared, decision: &Decision) -> ReleaseTable {
        let levels = &decision.eval.levels;
        let qis = prep
            .qis
            .iter()
            .enumerate()
            .map(|(qi_index, q)| qi_release(prep, qi_index, q, levels[qi_index]))
            .collect();
        let suppressed = decision
            .suppress
            .then(|| Arc::new(suppressed_keys(prep, decision)));
        ReleaseTable { qis, suppressed }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = ReleaseTableWire {
            qis: self
                .qis
                .iter()
                .map(|q| QiReleaseWire {
                    name: q.name.clone(),
                    level: q.level,
                    max_level: q.max_level,
                    labels: q
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_deref().map(str::to_string)))
                        .collect(),
                    null_label: q
                        .null_label
                        .as_ref()
                        .map(|l| l.as_deref().map(str::to_string)),
                    codes: q.codes.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    null_code: q.null_code,
                })
                .collect(),
            suppressed: self
                .suppressed
                .as_ref()
                .map(|s| s.iter().map(|k| k.to_vec()).collect()),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// A table another process sent; `None` when it is not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<ReleaseTable> {
        let wire: ReleaseTableWire = serde_json::from_slice(bytes).ok()?;
        let label = |l: Option<String>| l.map(|s| Arc::<str>::from(s.as_str()));
        let qis = wire
            .qis
            .into_iter()
            .map(|q| QiRelease {
                name: q.name,
                level: q.level,
                max_level: q.max_level,
                labels: Arc::new(q.labels.into_iter().map(|(k, v)| (k, label(v))).collect()),
                null_label: q.null_label.map(label),
                codes: q.codes.into_iter().collect(),
                null_code: q.null_code,
            })
            .collect();
        let suppressed = wire
            .suppressed
            .map(|s| Arc::new(s.into_iter().map(Vec::into_boxed_slice).collect()));
        Some(ReleaseTable { qis, suppressed })
    }
}

/// Rewrite each plan (one per file of the table) so it releases the decision: quasi-identifiers
/// at their chosen levels (as text), and the violating classes filtered out.
pub fn enforce<'a>(
    plans: impl IntoIterator<Item = &'a mut Plan>,
    prep: &Prepared,
    decision: &Decision,
    spec: &PrivacySpec,
) -> Result<()> {
    enforce_table(plans, &ReleaseTable::of(prep, decision), spec)
}

/// [`enforce`] from a [`ReleaseTable`] (a cluster executor's side).
pub fn enforce_table<'a>(
    plans: impl IntoIterator<Item = &'a mut Plan>,
    table: &ReleaseTable,
    spec: &PrivacySpec,
) -> Result<()> {
    let releases = &table.qis;
    if releases.len() != spec.quasi_identifiers.len()
        || releases
            .iter()
            .zip(&spec.quasi_identifiers)
            .any(|(r, q)| r.name != q.field)
    {
        return Err(Error::plan(
            "privacy",
            "the release table does not fit the policy's quasi-identifiers",
        ));
    }
    let suppressed = table.suppressed.clone();
    let codes: Arc<Vec<HashMap<String, u32>>> =
        Arc::new(releases.iter().map(|r| r.codes.clone()).collect());
    let null_codes: Vec<u32> = releases.iter().map(|r| r.null_code).collect();

    for plan in plans {
        let mut filter_cols = Vec::with_capacity(releases.len());
        for (qspec, release) in spec.quasi_identifiers.iter().zip(releases) {
            filter_cols.push(release_column(plan, qspec, release)?);
        }
        plan.output_schema = Arc::new(Schema::new(
            plan.columns
                .iter()
                .map(|c| Arc::clone(&c.output_field))
                .collect::<Vec<_>>(),
        ));
        plan.row_filter = suppressed.as_ref().map(|s| {
            Arc::new(RowFilter {
                columns: filter_cols,
                codes: Arc::clone(&codes),
                null_codes: null_codes.clone(),
                suppressed: Arc::clone(s),
            })
        });
    }
    Ok(())
}

/// Quasi-identifier `qi_index`'s labels and label codes at `level`.
fn qi_release(prep: &Prepared, qi_index: usize, q: &QiHierarchy, level: usize) -> QiRelease {
    let mut labels = HashMap::new();
    let mut null_label = None;
    for (code, v) in prep.table.qi_values[qi_index].iter().enumerate() {
        let g = q.map[level][code] as usize;
        let l = q.labels[level][g].clone();
        match v {
            Some(v) => {
                labels.insert(v.clone(), l);
            }
            None => null_label = Some(l),
        }
    }
    let mut codes = HashMap::new();
    let mut null_code = u32::MAX;
    for (i, l) in q.labels[level].iter().enumerate() {
        match l {
            Some(l) => {
                codes.insert(l.to_string(), i as u32);
            }
            None => null_code = i as u32,
        }
    }
    QiRelease {
        name: q.name.clone(),
        level,
        max_level: q.max_level(),
        labels: Arc::new(labels),
        null_label,
        codes,
        null_code,
    }
}

/// The level codes of every violating class, the keys the row filter drops.
fn suppressed_keys(prep: &Prepared, decision: &Decision) -> HashSet<Box<[u32]>> {
    let levels = &decision.eval.levels;
    let mut suppressed = HashSet::new();
    let cl = &decision.eval.classes;
    let m = prep.qis.len();
    for t in 0..prep.table.num_tuples() {
        let class = cl.class_of[t] as usize;
        if decision.eval.violating[class] {
            // The class's codes at the chosen levels; a null label's code is its index
            // too, so `RowFilter::keep` computes the same key.
            let codes = prep.table.tuple(t);
            let key: Vec<u32> = (0..m)
                .map(|i| prep.qis[i].map[levels[i]][codes[i] as usize])
                .collect();
            suppressed.insert(key.into_boxed_slice());
        }
    }
    suppressed
}

/// Make `plan` release quasi-identifier `q` at `level` (as text, with its level metadata);
/// returns the column's position.
fn release_column(plan: &mut Plan, qspec: &QuasiIdentifier, release: &QiRelease) -> Result<usize> {
    let (level, max_level) = (release.level, release.max_level);
    let hierarchy = &qspec.hierarchy;
    let Some(pos) = plan
        .columns
        .iter()
        .position(|c| c.rule.input_name == release.name)
    else {
        return Err(Error::plan(
            "privacy",
            format!("quasi-identifier `{}` is not in the output", release.name),
        ));
    };
    let col = &mut plan.columns[pos];
    let base = std::mem::replace(&mut col.kernel, Kernel::Keep);
    col.kernel = Kernel::Level(Box::new(LevelLookup {
        base,
        labels: Arc::clone(&release.labels),
        null_label: release.null_label.clone(),
    }));
    let mut md = col.output_field.metadata().clone();
    md.insert(meta::QI_LEVEL.into(), format!("{level}/{max_level}"));
    if level > 0 {
        md.insert(meta::ACTION.into(), "generalize".into());
        md.insert(meta::STATUS.into(), "generalized personal data".into());
        // The record (`cl:params`) and summaries describe what the column now holds.
        col.rule.action = effective_action(qspec, &col.rule.action, level, max_level);
    }
    md.insert(
        meta::HIERARCHY.into(),
        match hierarchy {
            HierarchySource::File(h) => h.path.clone(),
            HierarchySource::Levels(_) => "policy levels".into(),
        },
    );
    col.output_field =
        Arc::new(ArrowField::new(col.output_field.name(), DataType::Utf8, true).with_metadata(md));
    Ok(pos)
}

/// The transformation a quasi-identifier's column really goes through at `level`: the field
/// rule at level 0, the `levels:` entry at its level, or a [`HierarchyLevel`] (an ARX file's
/// level, or the top `*`).
pub fn effective_action(
    q: &QuasiIdentifier,
    declared: &Action,
    level: usize,
    max_level: usize,
) -> Action {
    if level == 0 {
        return declared.clone();
    }
    let source = match &q.hierarchy {
        HierarchySource::Levels(specs) if level <= specs.len() => {
            return Action::Generalize(specs[level - 1].clone());
        }
        HierarchySource::Levels(_) => "policy levels".to_string(),
        HierarchySource::File(h) => h.path.clone(),
    };
    let mut params = Params::new();
    params.insert("hierarchy".into(), json!(source));
    params.insert("level".into(), json!(level));
    if level == max_level {
        params.insert("label".into(), json!(TOP));
    }
    Action::Custom(CustomAction {
        transform: &HierarchyLevel,
        params,
    })
}

/// Per quasi-identifier, the effective transformation at `levels` next to the declared one.
pub fn transformations(
    prep: &Prepared,
    spec: &PrivacySpec,
    levels: &[usize],
) -> Vec<QiTransformation> {
    prep.qis
        .iter()
        .zip(&spec.quasi_identifiers)
        .zip(&prep.rules)
        .zip(levels)
        .map(|(((q, qspec), rule), &level)| {
            let effective = effective_action(qspec, &rule.action, level, q.max_level());
            QiTransformation {
                field: qspec.field.clone(),
                column: rule.output_name.clone(),
                level,
                max_level: q.max_level(),
                action: match &effective {
                    Action::Custom(_) => "hierarchy".into(),
                    a => a.kind().keyword().into(),
                },
                params: crate::provenance::action_params(&effective),
                declared: crate::provenance::action_params(&rule.action),
            }
        })
        .collect()
}

/// A quasi-identifier released at a hierarchy level no `generalize` rule describes (an ARX
/// file's level, or `*`). Only recorded: the privacy block's [`LevelLookup`] computes it.
#[derive(Debug)]
pub struct HierarchyLevel;

static HIERARCHY_LEVEL: Transform = crate::kernels::descriptor::GENERALIZE;
static HIERARCHY_LEVEL_PARAMS: [Param; 3] = [
    Param::new(
        "hierarchy",
        ParamType::String,
        "the ARX hierarchy file, or `policy levels`",
    ),
    Param::new("level", ParamType::Integer, "the hierarchy level released"),
    Param::new(
        "label",
        ParamType::String,
        "the single label of the top level",
    ),
];

impl CustomTransform for HierarchyLevel {
    fn descriptor(&self) -> &'static Transform {
        &HIERARCHY_LEVEL
    }
    fn parameters(&self) -> &'static [Param] {
        &HIERARCHY_LEVEL_PARAMS
    }
    fn output_type(&self, _: &DataType) -> std::result::Result<DataType, crate::error::Problem> {
        Ok(DataType::Utf8)
    }
    fn kernel(
        &self,
        _: &Params,
        _: &DataType,
    ) -> std::result::Result<Box<dyn CustomKernel>, crate::error::Problem> {
        Err("hierarchy levels are applied by the privacy block, not as a field rule".into())
    }
}

/// The provenance evidence of a decision (no data values beyond generalized level labels).
/// The record fills in the node's ids.
pub fn evidence(prep: &Prepared, spec: &PrivacySpec, decision: &Decision) -> PrivacyNode {
    let quasi_identifiers = prep
        .qis
        .iter()
        .zip(&spec.quasi_identifiers)
        .zip(&decision.eval.levels)
        .map(|((q, s), &l)| {
            let (kind, source) = match &s.hierarchy {
                HierarchySource::File(h) => ("arx-file", json!(h.path)),
                HierarchySource::Levels(specs) => ("policy-levels", json!(specs)),
            };
            QiEvidence {
                field: q.name.clone(),
                hierarchy: kind.into(),
                source,
                levels: q.max_level(),
                chosen_level: l,
            }
        })
        .collect();
    let text = |v: Value| v.as_str().unwrap_or_default().to_string();
    PrivacyNode {
        id: String::new(),
        types: Vec::new(),
        generated_by: String::new(),
        about: Vec::new(),
        note: "Dataset-level evidence about re-identification risk for the quasi-identifiers \
               listed. It does not by itself make the data anonymous: linkage through other \
               attributes or outside data is not measured."
            .into(),
        quasi_identifiers,
        sensitive_attributes: spec.sensitive_attributes(),
        models: ModelsRecord {
            k: spec.k,
            l_diversity: spec
                .l_diversity
                .iter()
                .map(|l| LRecord {
                    attribute: l.attribute.clone(),
                    variant: text(json!(l.variant)),
                    l: l.l,
                    c: l.c,
                })
                .collect(),
            t_closeness: prep
                .models
                .t
                .iter()
                .map(|(i, t, d)| TRecord {
                    attribute: prep.table.sensitive[*i].name.clone(),
                    t: *t,
                    distance: text(json!(d)),
                })
                .collect(),
        },
        on_violation: text(json!(spec.on_violation)),
        max_suppression: spec.max_suppression,
        metric: spec.metric.keyword().into(),
        search: decision
            .search
            .map(|(size, evaluated, seconds)| SearchRecord {
                lattice_nodes: size as u64,
                nodes_evaluated: evaluated as u64,
                seconds,
            }),
        suppressed_records: decision.assessment.suppressed,
        achieved: decision.assessment.clone(),
        before: decision.before.clone(),
    }
}
