//! The privacy assessment as recorded: class sizes, risks, achieved l and t, loss. Computed by
//! `privacy::models`, written into provenance and `check --json`, read back by `report`.

use serde::{Deserialize, Serialize};

use crate::policy::TDistance;

/// Everything measured about one node, for reports and provenance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assessment {
    pub levels: Vec<usize>,
    /// Level labels per quasi-identifier: (name, level, levels available).
    pub quasi_identifiers: Vec<(String, usize, usize)>,
    pub records: u64,
    pub records_released: u64,
    pub suppressed: u64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub suppressed_fraction: f64,
    pub classes: u64,
    pub classes_released: u64,
    /// Smallest class size among released records (k achieved); 0 when nothing is released.
    pub smallest_class: u64,
    pub largest_class: u64,
    #[serde(deserialize_with = "super::lenient_f64")]
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
    /// What the quasi-identifiers' columns hold at the chosen levels: the effective
    /// transformation per quasi-identifier (empty in records written before it existed).
    #[serde(default)]
    pub transformations: Vec<QiTransformation>,
    /// What class sizes and k count: `records`, or `subjects (<column>)` with
    /// `privacy.subject` (absent in older records: records).
    #[serde(default = "records_counted")]
    pub counted: String,
}

fn records_counted() -> String {
    "records".into()
}

/// One quasi-identifier's release: the transformation its column really went through at the
/// chosen level, next to what the policy's field rule declares.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QiTransformation {
    /// Input column.
    pub field: String,
    /// Output column.
    pub column: String,
    pub level: usize,
    pub max_level: usize,
    /// `generalize` (a `levels:` entry), `hierarchy` (an ARX file's level or the top `*`), or
    /// the field rule's action at level 0.
    pub action: String,
    /// The effective parameters at `level` (camelCase, as `cl:params`).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The field rule's own parameters (level 0).
    pub declared: serde_json::Map<String, serde_json::Value>,
}

/// One bucket of the class-size distribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SizeBucket {
    /// Label such as `3-4` or `1000+`.
    pub size: String,
    pub classes: u64,
    pub records: u64,
}

/// Re-identification risk estimates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Risks {
    /// Prosecutor model (the attacker knows the person is in the data): highest and average
    /// probability of a correct re-identification, and the share of records whose risk
    /// exceeds 1/k (the threshold the policy sets; 1/2 without k).
    #[serde(deserialize_with = "super::lenient_f64")]
    pub prosecutor_highest: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub prosecutor_average: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub records_at_risk: f64,
    /// Journalist model (the attacker does not know who is in the data): highest risk, with
    /// population classes estimated as class size / sampling fraction.
    #[serde(deserialize_with = "super::lenient_f64")]
    pub journalist_highest: f64,
    /// Marketer model: expected share of records re-identified when every record is linked.
    #[serde(deserialize_with = "super::lenient_f64")]
    pub marketer: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub sampling_fraction: f64,
}

/// l, t and related figures achieved for one sensitive attribute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SensitiveAchieved {
    pub attribute: String,
    /// Smallest number of distinct values in a released class.
    pub distinct_l: u32,
    /// Smallest exp(entropy) in a released class.
    #[serde(deserialize_with = "super::lenient_f64")]
    pub entropy_l: f64,
    /// Largest distance (t) of a released class, per t-closeness rule: (distance kind, t).
    pub t: Vec<(TDistance, f64)>,
}

/// The standard loss metrics of one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LossFigures {
    /// The metric the search minimized and its value.
    pub metric: String,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub value: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub generalization_height: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub precision: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub discernibility: f64,
    /// Discernibility / records², in (0, 1].
    #[serde(deserialize_with = "super::lenient_f64")]
    pub discernibility_normalized: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub avg_class_size: f64,
    #[serde(deserialize_with = "super::lenient_f64")]
    pub suppressed_fraction: f64,
}

impl crate::Error {
    /// The assessment of the data that did not meet the privacy models (as `check` reports
    /// it), when this is [`crate::Error::Privacy`] raised by `apply`.
    pub fn privacy_assessment(&self) -> Option<&Assessment> {
        match self {
            crate::Error::Privacy {
                assessment: Some(d),
                ..
            } => d.get::<Assessment>(),
            _ => None,
        }
    }
}
