//! The policy's `privacy:` block: dataset-level models (k-anonymity, l-diversity, t-closeness),
//! quasi-identifier hierarchies, and what to do when the data falls short.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::action::validate_action;
use super::{Action, ActionKind, DateLevel, Field, FieldRule, GeneralizeSpec};
use crate::error::Problem;
use crate::policy::hierarchy::ArxHierarchy;

/// Dataset-level privacy requirements.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyBlock {
    /// Quasi-identifiers: input column name → its generalization hierarchy.
    #[schemars(with = "BTreeMap<String, QiSpec>")]
    pub quasi_identifiers: BTreeMap<String, Spanned<QiSpec>>,
    /// k-anonymity: every combination of quasi-identifier values is shared by at least k records.
    #[schemars(with = "Option<u64>")]
    pub k: Option<Spanned<u64>>,
    /// l-diversity requirements, one per sensitive attribute.
    #[serde(default)]
    #[schemars(with = "Vec<LDiversityRule>")]
    pub l_diversity: Vec<Spanned<LDiversityRule>>,
    /// t-closeness requirements, one per sensitive attribute.
    #[serde(default)]
    #[schemars(with = "Vec<TClosenessRule>")]
    pub t_closeness: Vec<Spanned<TClosenessRule>>,
    /// `fail` (default), `suppress` or `generalize`.
    #[serde(default)]
    pub on_violation: OnViolation,
    /// Largest fraction of records that may be suppressed (dropped), 0 to <1. Default 0.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub max_suppression: Option<Spanned<f64>>,
    /// Information-loss metric the search minimizes: `precision` (default), `height`,
    /// `discernibility` or `avg_class_size`.
    #[serde(default)]
    pub metric: LossMetric,
    /// Fraction of the population the data covers (0 < f <= 1), for journalist and marketer
    /// risk. Default 1: the data is the whole population.
    #[schemars(with = "Option<f64>")]
    pub sampling_fraction: Option<Spanned<f64>>,
    /// Limits of the `on_violation: generalize` search: `seconds` (default 300) and `nodes`
    /// (lattice nodes evaluated, default unlimited). A search that reaches either fails
    /// (exit 3) and writes nothing.
    #[schemars(with = "Option<SearchBudgetSpec>")]
    pub search_budget: Option<Spanned<SearchBudgetSpec>>,
    /// The column identifying the person (data subject) a record is about, e.g. `customer_id`.
    /// With it, classes count distinct subjects, not records: k-anonymity needs k people in
    /// every class. Compared on input values while grouping, never printed.
    #[schemars(with = "Option<String>")]
    pub subject: Option<Spanned<String>>,
}

/// Limits of the lattice search, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBudgetSpec {
    /// Wall-clock seconds (default 300).
    pub seconds: Option<f64>,
    /// Lattice nodes evaluated (default: no limit).
    pub nodes: Option<u64>,
}

/// Limits of the lattice search; `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchBudget {
    pub seconds: Option<f64>,
    pub nodes: Option<u64>,
}

/// Default time budget of the search, in seconds.
pub const DEFAULT_SEARCH_SECONDS: f64 = 300.0;

impl Default for SearchBudget {
    fn default() -> Self {
        SearchBudget {
            seconds: Some(DEFAULT_SEARCH_SECONDS),
            nodes: None,
        }
    }
}

/// A quasi-identifier's hierarchy: an ARX hierarchy file, or generalization levels.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QiSpec {
    /// ARX hierarchy CSV (one row per value, one column per level, last level `*`), relative
    /// to the policy file.
    pub hierarchy: Option<String>,
    /// Field delimiter of the hierarchy file (default `;`, as ARX writes).
    pub delimiter: Option<char>,
    /// Generalization levels above the field's own rule, finest first; each takes the
    /// parameters of `generalize` (`to`, `bin_width`, `breaks`, `top`, `bottom`, `keep_prefix`).
    /// A final level `*` (everything in one group) is always added.
    #[serde(default)]
    pub levels: Vec<LevelSpec>,
    /// Lowest level the search may choose (default 0, the field rule's output).
    pub min_level: Option<usize>,
    /// Highest level the search may choose (default the top, `*`).
    pub max_level: Option<usize>,
    /// Weight of this quasi-identifier's loss in the `precision` and `height` metrics
    /// (default 1; 0: its generalization costs nothing).
    pub weight: Option<f64>,
}

/// One generalization level of a quasi-identifier.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelSpec {
    pub to: Option<DateLevel>,
    pub bin_width: Option<f64>,
    pub breaks: Option<Vec<f64>>,
    pub top: Option<f64>,
    pub bottom: Option<f64>,
    pub keep_prefix: Option<usize>,
}

/// An l-diversity requirement.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LDiversityRule {
    /// The sensitive attribute (input column name).
    pub attribute: String,
    /// `distinct` (default), `entropy` or `recursive`.
    #[serde(default)]
    pub variant: LVariant,
    /// l: at least 2 (entropy: any number above 1).
    pub l: f64,
    /// c, for recursive (c,l)-diversity.
    pub c: Option<f64>,
}

/// A t-closeness requirement.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TClosenessRule {
    /// The sensitive attribute (input column name).
    pub attribute: String,
    /// Largest distance allowed between a class's distribution and the whole table's, in (0, 1].
    pub t: f64,
    /// `equal` (categorical) or `ordered` (EMD over the sorted values). Default: `ordered`
    /// for numeric and date columns, `equal` otherwise.
    pub distance: Option<TDistance>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LVariant {
    #[default]
    Distinct,
    Entropy,
    Recursive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TDistance {
    Equal,
    Ordered,
}

/// What to do when the data does not meet the models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnViolation {
    /// Exit non-zero and write nothing.
    #[default]
    Fail,
    /// Drop the records of violating classes, up to `max_suppression`.
    Suppress,
    /// Search for the least-loss generalization, with suppression up to `max_suppression`.
    Generalize,
}

/// Information-loss metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LossMetric {
    /// Sweeney's precision loss: the mean normalized generalization level over all cells,
    /// suppressed records counting as fully generalized.
    #[default]
    Precision,
    /// Normalized generalization height: sum of levels / sum of maximum levels.
    Height,
    /// Discernibility (DM*): sum of squared class sizes, each suppressed record costing the
    /// row count.
    Discernibility,
    /// Average equivalence-class size relative to k, C_avg = (records / classes) / k.
    AvgClassSize,
}

impl LossMetric {
    pub fn keyword(self) -> &'static str {
        match self {
            LossMetric::Precision => "precision",
            LossMetric::Height => "height",
            LossMetric::Discernibility => "discernibility",
            LossMetric::AvgClassSize => "avg_class_size",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validated model.
// ---------------------------------------------------------------------------------------------

/// A validated `privacy:` block.
#[derive(Debug, Clone)]
pub struct PrivacySpec {
    pub quasi_identifiers: Vec<QuasiIdentifier>,
    pub k: Option<u64>,
    pub l_diversity: Vec<LDiversity>,
    pub t_closeness: Vec<TCloseness>,
    pub on_violation: OnViolation,
    pub max_suppression: f64,
    pub metric: LossMetric,
    pub sampling_fraction: f64,
    pub search_budget: SearchBudget,
    /// Input column whose distinct values the classes count (`None`: records).
    pub subject: Option<String>,
}

#[derive(Debug, Clone)]
pub struct QuasiIdentifier {
    /// Input column name.
    pub field: String,
    pub hierarchy: HierarchySource,
    /// Levels the search may choose, within the hierarchy.
    pub min_level: usize,
    /// `None`: the hierarchy's top.
    pub max_level: Option<usize>,
    /// Weight of its loss (precision, height); 1 by default.
    pub weight: f64,
}

impl QuasiIdentifier {
    /// A quasi-identifier with the whole hierarchy open to the search and weight 1.
    pub fn new(field: impl Into<String>, hierarchy: HierarchySource) -> Self {
        QuasiIdentifier {
            field: field.into(),
            hierarchy,
            min_level: 0,
            max_level: None,
            weight: 1.0,
        }
    }

    /// The hierarchy's highest level (`*`).
    pub fn top_level(&self) -> usize {
        match &self.hierarchy {
            HierarchySource::File(h) => h.height.saturating_sub(1),
            HierarchySource::Levels(specs) => specs.len() + 1,
        }
    }
}

#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HierarchySource {
    /// An ARX hierarchy file; level 0 is the value itself.
    File(Arc<ArxHierarchy>),
    /// Level 0 is the field rule's output (`keep` or its `generalize`); then these levels,
    /// then `*`.
    Levels(Vec<GeneralizeSpec>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LDiversity {
    pub attribute: String,
    pub variant: LVariant,
    pub l: f64,
    pub c: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TCloseness {
    pub attribute: String,
    pub t: f64,
    /// `None`: chosen from the column type at plan time.
    pub distance: Option<TDistance>,
}

impl PrivacySpec {
    /// Sensitive attributes named by the models, in first-mention order, without repeats.
    pub fn sensitive_attributes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let names = self
            .l_diversity
            .iter()
            .map(|l| &l.attribute)
            .chain(self.t_closeness.iter().map(|t| &t.attribute));
        for a in names {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out
    }
}

/// Validate the block against the (already validated) field rules: every problem in the
/// block, each with its position (an author fixes them all in one pass).
pub(super) fn validate_privacy(
    block: &PrivacyBlock,
    block_loc: &serde_saphyr::Location,
    fields: &BTreeMap<String, Field>,
    source: &str,
) -> std::result::Result<PrivacySpec, Vec<Problem>> {
    let mut problems = Vec::new();
    // Each check's value, or None with its problem kept.
    macro_rules! keep {
        ($r:expr) => {
            match $r {
                Ok(v) => Some(v),
                Err(p) => {
                    problems.push(p);
                    None
                }
            }
        };
    }
    if block.quasi_identifiers.is_empty() {
        keep!(Err::<(), Problem>(at(
            block_loc,
            "`quasi_identifiers` is empty; name the columns an attacker could link (e.g. age, \
             zip, sex)"
                .into(),
        )));
    }
    let base_dir = Path::new(source)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut qis = Vec::new();
    for (name, spanned) in &block.quasi_identifiers {
        let loc = &spanned.referenced;
        let qi = quasi_identifier(name, &spanned.value, fields, &base_dir)
            .and_then(|h| level_range(name, &spanned.value, QuasiIdentifier::new(name, h)))
            .and_then(|qi| truthful_name(&qi, fields, block.on_violation).map(|()| qi))
            .map_err(|m| at(loc, m));
        if let Some(qi) = keep!(qi) {
            qis.push(qi);
        }
    }
    let subject = block.subject.as_ref().and_then(|s| {
        keep!(subject_column(block, fields, &s.value).map_err(|m| at(&s.referenced, m)))
            .map(|()| s.value.clone())
    });
    let k = match &block.k {
        Some(s) if s.value < 2 => keep!(Err(at(
            &s.referenced,
            Problem(format!(
                "k is {}; it must be at least 2 (k = 1 holds for any data)",
                s.value
            )),
        ))),
        Some(s) => Some(s.value),
        None => None,
    };
    let mut l_diversity = Vec::new();
    for s in &block.l_diversity {
        let r = &s.value;
        let rule = check_sensitive(block, fields, &r.attribute)
            .and_then(|()| l_diversity_rule(r))
            .map_err(|m| at(&s.referenced, m));
        l_diversity.extend(keep!(rule));
    }
    let mut t_closeness = Vec::new();
    for s in &block.t_closeness {
        let r = &s.value;
        let rule = check_sensitive(block, fields, &r.attribute)
            .and_then(|()| t_closeness_rule(r))
            .map_err(|m| at(&s.referenced, m));
        t_closeness.extend(keep!(rule));
    }
    if block.k.is_none() && block.l_diversity.is_empty() && block.t_closeness.is_empty() {
        keep!(Err::<(), Problem>(at(
            block_loc,
            "no model is set; give `k`, `l_diversity` or `t_closeness`".into(),
        )));
    }
    let fractions = keep!(fractions(block));
    let search_budget = keep!(search_budget(block));
    match (fractions, search_budget) {
        (Some((max_suppression, sampling_fraction)), Some(search_budget))
            if problems.is_empty() =>
        {
            Ok(PrivacySpec {
                quasi_identifiers: qis,
                k,
                l_diversity,
                t_closeness,
                on_violation: block.on_violation,
                max_suppression,
                metric: block.metric,
                sampling_fraction,
                search_budget,
                subject,
            })
        }
        _ => Err(problems),
    }
}

/// `min_level`, `max_level` and `weight` of a quasi-identifier, checked against its hierarchy.
fn level_range(
    name: &str,
    q: &QiSpec,
    mut qi: QuasiIdentifier,
) -> std::result::Result<QuasiIdentifier, Problem> {
    let top = qi.top_level();
    let min = q.min_level.unwrap_or(0);
    let max = q.max_level.unwrap_or(top);
    if max > top {
        return Err(Problem(format!(
            "quasi-identifier `{name}`: max_level is {max} but its hierarchy has levels 0 to \
             {top}"
        )));
    }
    if min > max {
        return Err(Problem(format!(
            "quasi-identifier `{name}`: min_level {min} is above max_level {max}"
        )));
    }
    if let Some(w) = q.weight
        && !(w.is_finite() && w >= 0.0)
    {
        return Err(Problem(format!(
            "quasi-identifier `{name}`: weight is {w}; it must be a number of at least 0"
        )));
    }
    qi.min_level = min;
    qi.max_level = q.max_level;
    qi.weight = q.weight.unwrap_or(1.0);
    Ok(qi)
}

/// Date units and counts an output name can claim (`birth_year`, `zip3`).
const UNIT_WORDS: &[&str] = &[
    "day", "days", "month", "months", "quarter", "quarters", "year", "years", "yr", "decade",
    "decades", "century",
];

/// The output-name rule: a quasi-identifier the policy renames may not carry a number or a
/// date unit in its new name when the privacy block may release it above level 0, because
/// that level's values would contradict the name (`zip3` holding 2-character prefixes,
/// `birth_year` holding decades). Names are never derived: the policy's name is the column's.
fn truthful_name(
    qi: &QuasiIdentifier,
    fields: &BTreeMap<String, Field>,
    on_violation: OnViolation,
) -> std::result::Result<(), Problem> {
    let Some(f) = fields.get(&qi.field) else {
        return Ok(());
    };
    let out = &f.output_name;
    let highest = qi.max_level.unwrap_or(qi.top_level());
    let may_rise = qi.min_level > 0 || (on_violation == OnViolation::Generalize && highest > 0);
    if out == &qi.field || !may_rise {
        return Ok(());
    }
    let lower = out.to_lowercase();
    let digit = lower.chars().any(|c| c.is_ascii_digit());
    let unit = lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| UNIT_WORDS.contains(w));
    let claim = match (digit, unit) {
        (true, _) => "a number".to_string(),
        (false, Some(u)) => format!("the unit `{u}`"),
        (false, None) => return Ok(()),
    };
    Err(Problem(format!(
        "quasi-identifier `{}` is renamed `{out}`, whose name states {claim}, but the privacy \
         block may release it at a level up to {highest} (coarser values, up to `*`), which \
         would contradict the name; rename it without the number or unit (e.g. after the \
         attribute), or set `max_level: 0` on it",
        qi.field
    )))
}

/// `subject` must name an input column with a rule in `fields`.
fn subject_column(
    block: &PrivacyBlock,
    fields: &BTreeMap<String, Field>,
    name: &str,
) -> std::result::Result<(), Problem> {
    if !fields.contains_key(name) {
        return Err(Problem(format!(
            "subject `{name}` has no rule in `fields`; name the input column that identifies \
             the person (it may be tokenized or dropped in the output)"
        )));
    }
    let sensitive = block
        .l_diversity
        .iter()
        .map(|l| &l.value.attribute)
        .chain(block.t_closeness.iter().map(|t| &t.value.attribute));
    if sensitive.into_iter().any(|a| a == name) {
        return Err(Problem(format!(
            "`{name}` is both the subject and a sensitive attribute; choose one"
        )));
    }
    if block.quasi_identifiers.contains_key(name) {
        return Err(Problem(format!(
            "`{name}` is both the subject and a quasi-identifier; a subject identifier is not \
             released to link on, so remove it from `quasi_identifiers`"
        )));
    }
    Ok(())
}

/// Prefix a message with the position of the block entry it is about.
fn at(loc: &serde_saphyr::Location, m: Problem) -> Problem {
    m.context(format_args!(
        "privacy (line {} column {})",
        loc.line(),
        loc.column()
    ))
}

/// A quasi-identifier's field rule must keep or generalize it; then its hierarchy.
fn quasi_identifier(
    name: &str,
    q: &QiSpec,
    fields: &BTreeMap<String, Field>,
    base_dir: &Path,
) -> std::result::Result<HierarchySource, Problem> {
    let field = fields.get(name).ok_or_else(|| {
        Problem(format!(
            "quasi-identifier `{name}` has no rule in `fields`; add one (`keep` or `generalize`)"
        ))
    })?;
    match field.action.kind() {
        ActionKind::Keep | ActionKind::Generalize => {}
        ActionKind::Drop => {
            return Err(Problem(format!(
                "quasi-identifier `{name}` is dropped by its field rule, so it cannot link \
                 records; remove it from `quasi_identifiers`"
            )));
        }
        other => {
            return Err(Problem(format!(
                "quasi-identifier `{name}` has action `{}`; use `keep` or `generalize` \
                 (the privacy block decides how far to generalize it)",
                other.keyword()
            )));
        }
    }
    match (&q.hierarchy, q.levels.is_empty()) {
        (Some(_), false) => Err(Problem(format!(
            "quasi-identifier `{name}`: use either `hierarchy` or `levels`, not both"
        ))),
        (Some(file), true) => file_hierarchy(name, q, file, field, base_dir),
        (None, _) => level_hierarchy(name, q),
    }
}

thread_local! {
    /// Hierarchies given in memory, by quasi-identifier: see [`with_hierarchies`].
    static GIVEN: std::cell::RefCell<Option<BTreeMap<String, ArxHierarchy>>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` (which loads policies **on this thread**) with ARX hierarchies taken from `given`
/// (by quasi-identifier) instead of files: a cluster executor rebuilds the client's policy
/// from its text without reading a file. A quasi-identifier `given` lacks is an error, never
/// a read from disk.
pub fn with_hierarchies<T>(given: BTreeMap<String, ArxHierarchy>, f: impl FnOnce() -> T) -> T {
    // Restores what was there before (nested calls), even when `f` unwinds.
    struct Reset(Option<BTreeMap<String, ArxHierarchy>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let before = self.0.take();
            GIVEN.with(|g| *g.borrow_mut() = before);
        }
    }
    let _reset = Reset(GIVEN.with(|g| g.borrow_mut().replace(given)));
    f()
}

/// The ARX hierarchies of a loaded policy, by quasi-identifier (what [`with_hierarchies`]
/// takes).
pub fn hierarchies_of(spec: &PrivacySpec) -> BTreeMap<String, ArxHierarchy> {
    spec.quasi_identifiers
        .iter()
        .filter_map(|q| match &q.hierarchy {
            HierarchySource::File(h) => Some((q.field.clone(), (**h).clone())),
            HierarchySource::Levels(_) => None,
        })
        .collect()
}

/// An ARX hierarchy file, confined to the policy's or the working directory.
fn file_hierarchy(
    name: &str,
    q: &QiSpec,
    file: &str,
    field: &Field,
    base_dir: &Path,
) -> std::result::Result<HierarchySource, Problem> {
    if field.action != Action::Keep {
        return Err(Problem(format!(
            "quasi-identifier `{name}` has an ARX hierarchy file, which maps the \
             original values; its field rule must be `keep`"
        )));
    }
    let given = GIVEN.with(|g| g.borrow().as_ref().map(|m| m.get(name).cloned().ok_or(())));
    match given {
        Some(Ok(h)) => return Ok(HierarchySource::File(Arc::new(h))),
        Some(Err(())) => {
            return Err(Problem(format!(
                "quasi-identifier `{name}`: its hierarchy was not sent with the policy"
            )));
        }
        None => {}
    }
    let path = confine(&resolve(base_dir, file), base_dir)?;
    let delim = q.delimiter.unwrap_or(';');
    if !delim.is_ascii() {
        return Err(Problem(format!(
            "`delimiter` {delim:?} must be one ASCII character"
        )));
    }
    let h = ArxHierarchy::load(&path, delim as u8)?;
    Ok(HierarchySource::File(Arc::new(h)))
}

/// Generalization levels, each checked as a `generalize` rule of its own.
fn level_hierarchy(name: &str, q: &QiSpec) -> std::result::Result<HierarchySource, Problem> {
    if q.delimiter.is_some() {
        return Err("`delimiter` applies to `hierarchy` files only".into());
    }
    let mut specs = Vec::new();
    for (i, l) in q.levels.iter().enumerate() {
        let rule = FieldRule {
            action: ActionKind::Generalize,
            to: l.to,
            bin_width: l.bin_width,
            breaks: l.breaks.clone(),
            top: l.top,
            bottom: l.bottom,
            keep_prefix: l.keep_prefix,
            ..FieldRule::default()
        };
        match validate_action(name, &rule, None) {
            Ok(Action::Generalize(g)) => specs.push(g),
            Ok(_) => {}
            Err(m) => {
                return Err(m.context(format_args!("quasi-identifier `{name}`, level {}", i + 1)));
            }
        }
    }
    Ok(HierarchySource::Levels(specs))
}

/// A sensitive attribute must reach the output and not be a quasi-identifier.
fn check_sensitive(
    block: &PrivacyBlock,
    fields: &BTreeMap<String, Field>,
    attr: &str,
) -> std::result::Result<(), Problem> {
    let f = fields.get(attr).ok_or_else(|| {
        Problem(format!(
            "sensitive attribute `{attr}` has no rule in `fields`"
        ))
    })?;
    if f.action == Action::Drop {
        return Err(Problem(format!(
            "sensitive attribute `{attr}` is dropped by its field rule; nothing can be \
             disclosed, so remove the model"
        )));
    }
    if block.quasi_identifiers.contains_key(attr) {
        return Err(Problem(format!(
            "`{attr}` is both a quasi-identifier and a sensitive attribute; choose one"
        )));
    }
    Ok(())
}

fn l_diversity_rule(r: &LDiversityRule) -> std::result::Result<LDiversity, Problem> {
    let min = if r.variant == LVariant::Entropy {
        1.0
    } else {
        2.0
    };
    let bad_l = !r.l.is_finite()
        || r.l < min
        || (r.variant == LVariant::Entropy && r.l <= 1.0)
        || (r.variant != LVariant::Entropy && r.l.fract() != 0.0);
    if bad_l {
        return Err(Problem(format!(
            "l-diversity on `{}`: l is {}; it must be {}",
            r.attribute,
            r.l,
            if r.variant == LVariant::Entropy {
                "a number above 1"
            } else {
                "a whole number of at least 2"
            }
        )));
    }
    match (r.variant, r.c) {
        (LVariant::Recursive, None) => {
            return Err(Problem(format!(
                "recursive (c,l)-diversity on `{}` needs `c`",
                r.attribute
            )));
        }
        (LVariant::Recursive, Some(c)) if !(c.is_finite() && c > 0.0) => {
            return Err(Problem(format!("`c` is {c}; it must be a positive number")));
        }
        (LVariant::Distinct | LVariant::Entropy, Some(_)) => {
            return Err("`c` applies to `variant: recursive` only".into());
        }
        _ => {}
    }
    Ok(LDiversity {
        attribute: r.attribute.clone(),
        variant: r.variant,
        l: r.l,
        c: r.c,
    })
}

fn t_closeness_rule(r: &TClosenessRule) -> std::result::Result<TCloseness, Problem> {
    if !(r.t > 0.0 && r.t <= 1.0) {
        return Err(Problem(format!(
            "t-closeness on `{}`: t is {}; it must be in (0, 1]",
            r.attribute, r.t
        )));
    }
    Ok(TCloseness {
        attribute: r.attribute.clone(),
        t: r.t,
        distance: r.distance,
    })
}

/// `max_suppression` (default 0) and `sampling_fraction` (default 1), each within its range.
fn fractions(block: &PrivacyBlock) -> std::result::Result<(f64, f64), Problem> {
    let max_suppression = match &block.max_suppression {
        None => 0.0,
        Some(s) if !(s.value >= 0.0 && s.value < 1.0) => {
            return Err(at(
                &s.referenced,
                Problem(format!(
                    "max_suppression is {}; it must be a fraction in [0, 1)",
                    s.value
                )),
            ));
        }
        Some(s) => s.value,
    };
    let sampling_fraction = match &block.sampling_fraction {
        None => 1.0,
        Some(s) if !(s.value > 0.0 && s.value <= 1.0) => {
            return Err(at(
                &s.referenced,
                Problem(format!(
                    "sampling_fraction is {}; it must be in (0, 1]",
                    s.value
                )),
            ));
        }
        Some(s) => s.value,
    };
    Ok((max_suppression, sampling_fraction))
}

fn search_budget(block: &PrivacyBlock) -> std::result::Result<SearchBudget, Problem> {
    let Some(s) = &block.search_budget else {
        return Ok(SearchBudget::default());
    };
    let b = &s.value;
    if let Some(secs) = b.seconds
        && !(secs.is_finite() && secs > 0.0)
    {
        return Err(at(
            &s.referenced,
            Problem(format!(
                "search_budget: `seconds` is {secs}; it must be a positive number"
            )),
        ));
    }
    if b.nodes == Some(0) {
        return Err(at(
            &s.referenced,
            "search_budget: `nodes` is 0; it must be at least 1".into(),
        ));
    }
    Ok(SearchBudget {
        seconds: Some(b.seconds.unwrap_or(DEFAULT_SEARCH_SECONDS)),
        nodes: b.nodes,
    })
}

/// A hierarchy file must lie (symbolic links resolved) inside the policy's directory or the
/// working directory: a policy cannot make cloakline read arbitrary files of the machine.
fn confine(path: &Path, policy_dir: &Path) -> std::result::Result<PathBuf, Problem> {
    let shown = path.display();
    let real = path
        .canonicalize()
        .map_err(|e| Problem(format!("hierarchy file {shown}: cannot read it: {e}")))?;
    let roots = [policy_dir.to_path_buf(), PathBuf::from(".")];
    let inside = roots
        .iter()
        .filter_map(|r| {
            if r.as_os_str().is_empty() {
                Path::new(".").canonicalize().ok()
            } else {
                r.canonicalize().ok()
            }
        })
        .any(|r| real.starts_with(&r));
    if !inside {
        return Err(Problem(format!(
            "hierarchy file {shown} lies outside the policy's directory and the working \
             directory; put it next to the policy (paths are relative to the policy file)"
        )));
    }
    // The path as written stays the file's name in messages and provenance.
    Ok(path.to_path_buf())
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() || base.as_os_str().is_empty() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
