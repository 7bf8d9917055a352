//! The provenance record as types: `apply` and `sql` build a [`Record`], `verify`, `report`
//! and OpenLineage read one back. The JSON-LD layout is documented in `docs/FORMATS.md`.
//!
//! Member names are those of the document (`cl:…` terms, PROV/DPV short names from the
//! context); members inside cloakline objects are camelCase. Unknown members are refused, so
//! nothing in a record escapes `verify`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

mod assessment;
mod upgrade;

pub use upgrade::camel;

pub use assessment::{
    Assessment, LossFigures, QiTransformation, Risks, SensitiveAchieved, SizeBucket,
};

use crate::error::Problem;
use crate::policy::rules::Transfer;

/// The current document format.
pub const FORMAT: &str = "cloakline-provenance/v2";
/// The previous format, still read (and verified) for records written before v2.
pub const FORMAT_V1: &str = "cloakline-provenance/v1";

/// What kind of run wrote the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RunKind {
    /// `cloakline apply`: every output field is described.
    Apply,
    /// `cloakline sql --output`: a query result; fields are described when read through the
    /// policy view.
    Sql,
}

/// Whether the run wrote one file or a directory of files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutputKind {
    File,
    Directory,
}

/// A whole provenance document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Record {
    #[serde(rename = "@context")]
    pub context: Value,
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    #[serde(rename = "cl:format")]
    pub format: String,
    #[serde(rename = "cl:runKind")]
    pub run_kind: RunKind,
    /// Always written; absent only from v1 records made before it existed.
    #[serde(
        rename = "cl:outputKind",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub output_kind: Option<OutputKind>,
    #[serde(rename = "generatedAtTime")]
    pub generated_at: String,
    #[serde(rename = "wasGeneratedBy")]
    pub generated_by: String,
    #[serde(rename = "cl:summary")]
    pub summary: Summary,
    /// Present (`true`) when the run's keyring held public demo keys.
    #[serde(rename = "cl:demoKeys", default, skip_serializing_if = "is_false")]
    pub demo_keys: bool,
    /// What protected the run's keys at rest: `plain` (a file of hex secrets), `passphrase`
    /// or `pkcs11` (wrapped keyrings, docs/KEYS.md). Absent in records of older versions.
    #[serde(
        rename = "cl:keyProtection",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub key_protection: Option<String>,
    /// Present when a cluster's executors wrote the files (`apply --cluster`).
    #[serde(
        rename = "cl:cluster",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster: Option<ClusterFacts>,
    #[serde(
        rename = "cl:signature",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub signature: Option<Signature>,
    /// Every other node. `@included` (not `@graph`) keeps them in the default graph, so
    /// `rdflib.Graph().parse(format="json-ld")` sees every triple.
    #[serde(rename = "@included")]
    pub nodes: Vec<Node>,
}

/// `cl:cluster`: where a cluster run's files were written. Only the sidecar holds it (the
/// files' footer copies are written before the run knows which executors took part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterFacts {
    /// The scheduler, as given (`df://host:port`).
    pub scheduler: String,
    /// Executors that wrote files, and the files (one task each).
    pub executors: u64,
    pub tasks: u64,
}

/// `cl:summary`: the figures a person looks at first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Summary {
    /// `name vN` of the policy, when one applied.
    pub policy: Option<String>,
    pub controller: Option<String>,
    pub purpose: Option<String>,
    pub jurisdictions: Vec<String>,
    /// Unknown for `sql` runs, which do not count the rows they scan.
    pub rows_in: Option<u64>,
    pub rows_out: u64,
    pub fields_out: u64,
    pub fields_dropped: u64,
    pub privacy: Option<PrivacySummary>,
}

/// `cl:summary.privacy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct PrivacySummary {
    pub smallest_class: u64,
    pub suppressed_records: u64,
    pub satisfied: bool,
    pub levels: Vec<usize>,
}

/// `cl:signature` (see `provenance::sign`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Signature {
    pub algorithm: String,
    /// HMAC signatures only (Ed25519 signs with the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf_info: Option<String>,
    pub canonicalization: String,
    pub key_id: String,
    pub key_fingerprint: String,
    pub value: String,
}

/// One node of `@included`, told apart by its `@type`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Node {
    Agent(AgentNode),
    Policy(PolicyNode),
    Run(Box<RunNode>),
    Dataset(DatasetNode),
    InputField(InputFieldNode),
    OutputField(Box<OutputFieldNode>),
    Privacy(Box<PrivacyNode>),
}

/// `@type` of each node kind; the first one that a node carries decides.
const DISPATCH: &[&str] = &[
    "cl:Dataset",
    "cl:Policy",
    "cl:PrivacyModelEvidence",
    "cl:OutputField",
    "cl:InputField",
    "prov:Activity",
    "prov:Agent",
];

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let types = types_of(&v);
        let kind = DISPATCH.iter().find(|t| types.iter().any(|x| x == *t));
        let Some(kind) = kind else {
            return Err(D::Error::custom(format!(
                "a node whose @type is none of {DISPATCH:?}"
            )));
        };
        let r = match *kind {
            "cl:Dataset" => serde_json::from_value(v).map(Node::Dataset),
            "cl:Policy" => serde_json::from_value(v).map(Node::Policy),
            "cl:PrivacyModelEvidence" => {
                serde_json::from_value(v).map(|n| Node::Privacy(Box::new(n)))
            }
            "cl:OutputField" => serde_json::from_value(v).map(|n| Node::OutputField(Box::new(n))),
            "cl:InputField" => serde_json::from_value(v).map(Node::InputField),
            "prov:Activity" => serde_json::from_value(v).map(|n| Node::Run(Box::new(n))),
            _ => serde_json::from_value(v).map(Node::Agent),
        };
        // The node's kind, not its @id: a hostile record's ids are text of its author's choosing.
        r.map_err(|e| {
            D::Error::custom(format!(
                "a {kind} node: {}",
                withhold_values(&e.to_string())
            ))
        })
    }
}

/// The `@type` list of a JSON node (a string or an array of strings).
pub fn types_of(v: &Value) -> Vec<String> {
    match v.get("@type") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The controller (an organisation) or the software.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentNode {
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    pub label: String,
    #[serde(
        rename = "actedOnBehalfOf",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub acted_on_behalf_of: Option<String>,
}

/// The policy, a `prov:Plan`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyNode {
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    pub label: String,
    #[serde(rename = "cl:policyName")]
    pub name: String,
    #[serde(rename = "cl:policyVersion")]
    pub version: u64,
    /// SHA-256 of the policy file's bytes.
    #[serde(rename = "cl:sha256")]
    pub sha256: String,
    #[serde(rename = "cl:path")]
    pub path: String,
    /// The SQL view the policy was registered as (`sql` runs).
    #[serde(rename = "cl:view", default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
}

/// `qualifiedAssociation` of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Association {
    #[serde(rename = "@type")]
    pub types: String,
    pub agent: String,
    #[serde(rename = "hadPlan", default, skip_serializing_if = "Option::is_none")]
    pub had_plan: Option<String>,
}

/// A policy warning as recorded (rule id from `docs/RULES.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WarningRecord {
    pub rule: String,
    pub article: String,
    pub field: Option<String>,
    pub message: String,
}

/// A key a SQL query used, by id and fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyUse {
    pub key_id: String,
    pub key_fingerprint: Option<String>,
}

/// The run, a `prov:Activity`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RunNode {
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    #[serde(rename = "startedAtTime")]
    pub started: String,
    #[serde(rename = "endedAtTime")]
    pub ended: String,
    pub used: Vec<String>,
    #[serde(rename = "wasAssociatedWith")]
    pub associated_with: String,
    #[serde(rename = "qualifiedAssociation")]
    pub association: Association,
    #[serde(rename = "cl:purpose", default)]
    pub purpose: Option<String>,
    #[serde(rename = "hasJurisdiction", default)]
    pub jurisdictions: Vec<String>,
    #[serde(rename = "cl:recipients", default)]
    pub recipients: Vec<String>,
    #[serde(rename = "cl:dataSubjects", default)]
    pub data_subjects: Vec<String>,
    #[serde(rename = "cl:retention", default)]
    pub retention: Option<String>,
    #[serde(rename = "cl:transfers", default)]
    pub transfers: Vec<Transfer>,
    #[serde(rename = "cl:policyWarnings", default)]
    pub warnings: Vec<WarningRecord>,
    /// `sql` runs: the query text as given.
    #[serde(rename = "cl:query", default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `sql` runs: cloakline functions the plan called (`policy view` when it read the view).
    #[serde(
        rename = "cl:functionsUsed",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub functions_used: Option<Vec<String>>,
    /// `sql` runs: registered tables read directly, not through the policy view.
    #[serde(
        rename = "cl:rawTablesRead",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub raw_tables_read: Option<Vec<String>>,
    /// `sql` runs: keys the query used.
    #[serde(rename = "cl:keys", default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyUse>>,
    /// `sql` runs: what is known of the lawful basis of the output.
    #[serde(
        rename = "cl:basisNote",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub basis_note: Option<String>,
    /// What the consent ledger removed (docs/CONSENT.md), when the policy has one.
    #[serde(
        rename = "cl:consent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consent: Option<ConsentRecord>,
    /// The policy's release record (docs/CONSENT.md), when it has one.
    #[serde(
        rename = "cl:release",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub release: Option<ReleaseRecord>,
}

/// `cl:consent` of a run: the ledger, the as-of time, the purpose and what was removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ConsentRecord {
    /// The ledger's location as given (no credentials).
    pub ledger: String,
    /// SHA-256 of the ledger file, or of its files' manifest for a directory.
    pub ledger_sha256: String,
    pub ledger_files: u64,
    /// Events in the ledger (all purposes).
    pub ledger_events: u64,
    /// Events for the purpose at or before `asOf`, and after it (ignored).
    pub purpose_events: u64,
    pub later_events: u64,
    /// Repeated identical events, counted once.
    pub duplicate_events: u64,
    /// Subjects with an event for the purpose as of `asOf`.
    pub ledger_subjects: u64,
    /// RFC 3339, UTC.
    pub as_of: String,
    pub purpose: String,
    /// The input column matched against the ledger.
    pub subject: String,
    /// `raw` or `tokenized`.
    pub subject_ids: String,
    /// `drop` or `fail`.
    pub on_missing: String,
    /// `drop_row` or `null_fields`.
    pub on_withdrawn: String,
    /// Output fields relying on consent (input names), and those needing separate consent.
    pub consent_fields: Vec<String>,
    pub separate_consent_fields: Vec<String>,
    pub rows_in: u64,
    /// Rows passed on to the kernels (rows in minus both removals).
    pub rows_released: u64,
    pub rows_removed_withdrawn: u64,
    pub rows_removed_missing: u64,
    /// Per consent-based field (input name): rows released with it nulled.
    pub fields_nulled: std::collections::BTreeMap<String, u64>,
}

/// `cl:release`: the release record a DPO signs (ISO/IEC 27559 context and governance).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ReleaseRecord {
    pub recipient: String,
    /// `public`, `data_sharing_agreement` or `enclave`.
    pub model: String,
    pub threat_model: String,
    pub risk_threshold: f64,
    pub approver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_on: Option<String>,
    pub re_evaluate_by: String,
    /// `de_identified` or `anonymised` (the controller's claim).
    pub claim: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<String>,
}

impl ReleaseRecord {
    pub fn of(r: &crate::policy::consent::ReleaseSpec) -> Self {
        ReleaseRecord {
            recipient: r.recipient.clone(),
            model: r.model.keyword().into(),
            threat_model: r.threat_model.clone(),
            risk_threshold: r.risk_threshold,
            approver: r.approver.clone(),
            approved_on: r.approved_on.clone(),
            re_evaluate_by: r.re_evaluate_by.clone(),
            claim: r.claim.keyword().into(),
            context: r.context.clone(),
            governance: r.governance.clone(),
        }
    }
}

/// One column of a dataset's schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SchemaField {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

impl SchemaField {
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        SchemaField {
            name: name.into(),
            data_type: data_type.into(),
        }
    }
}

/// An input or output file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DatasetNode {
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    #[serde(rename = "cl:path")]
    pub path: String,
    /// A file of a directory release: its path relative to the release directory, with `/`
    /// separators (what `verify DIR` matches files by).
    #[serde(
        rename = "cl:relativePath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub relative_path: Option<String>,
    /// `sql` runs: the table name the file was registered under.
    #[serde(rename = "cl:table", default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(rename = "cl:format")]
    pub format: String,
    #[serde(rename = "cl:rows", default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Absent from the copy embedded in the output file itself.
    #[serde(rename = "cl:sha256", default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(rename = "cl:bytes", default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// An object-store input: the ETag the store gave for the version read.
    #[serde(rename = "cl:etag", default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    /// An object-store input: its version id, on a versioned bucket.
    #[serde(
        rename = "cl:versionId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub version_id: Option<String>,
    #[serde(rename = "cl:schema", default)]
    pub schema: Vec<SchemaField>,
    #[serde(
        rename = "wasGeneratedBy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generated_by: Option<String>,
    #[serde(
        rename = "wasDerivedFrom",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub derived_from: Option<Vec<String>>,
    #[serde(
        rename = "wasAttributedTo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attributed_to: Option<String>,
    #[serde(rename = "hadMember", default)]
    pub members: Vec<String>,
}

impl DatasetNode {
    /// An output (generated by the run) rather than an input.
    pub fn is_output(&self) -> bool {
        self.generated_by.is_some()
    }
}

/// A column of an input; dropped columns carry the action and the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InputFieldNode {
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    #[serde(rename = "cl:column")]
    pub column: String,
    #[serde(rename = "cl:dataType")]
    pub data_type: String,
    #[serde(rename = "cl:action", default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(rename = "cl:status", default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(
        rename = "cl:droppedBecause",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dropped_because: Option<String>,
}

/// One lawful basis of a field, in one jurisdiction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BasisRecord {
    pub jurisdiction: String,
    pub law: String,
    pub basis: String,
    pub article: String,
    pub dpv: String,
    pub term: String,
}

/// The GDPR Art. 9(2) condition of a special-category field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConditionRecord {
    pub condition: String,
    pub article: String,
    pub term: String,
}

/// A quasi-identifier's generalization by the privacy block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct QiLevel {
    pub hierarchy: String,
    pub level: usize,
    pub max_level: usize,
    pub note: String,
}

/// Values that went through the action, and nulls (which stay null).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Counts {
    pub values_transformed: u64,
    pub nulls: u64,
}

/// The DPV process a field takes part in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProcessRecord {
    #[serde(rename = "@type")]
    pub types: String,
    #[serde(rename = "cl:purpose")]
    pub purpose: Option<String>,
    #[serde(rename = "hasLegalBasis")]
    pub legal_basis: Vec<String>,
    #[serde(rename = "hasPersonalData")]
    pub personal_data: Vec<String>,
    #[serde(rename = "hasTechnicalMeasure")]
    pub technical_measures: Vec<String>,
    #[serde(rename = "hasDataController")]
    pub controller: Option<String>,
    #[serde(rename = "hasJurisdiction")]
    pub jurisdictions: Vec<String>,
}

/// An output field: where it came from, what was done, with which key, on which basis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OutputFieldNode {
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    #[serde(rename = "cl:column")]
    pub column: String,
    #[serde(rename = "cl:sourceColumn")]
    pub source_column: String,
    #[serde(rename = "cl:dataType")]
    pub data_type: String,
    #[serde(rename = "wasDerivedFrom")]
    pub derived_from: Vec<String>,
    #[serde(rename = "wasGeneratedBy")]
    pub generated_by: String,
    #[serde(rename = "cl:action")]
    pub action: String,
    /// Non-secret parameters of the action, camelCase (see `docs/FORMATS.md`).
    #[serde(rename = "cl:params")]
    pub params: Map<String, Value>,
    #[serde(
        rename = "cl:quasiIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub quasi_identifier: Option<QiLevel>,
    #[serde(rename = "cl:keyId", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(
        rename = "cl:keyFingerprint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub key_fingerprint: Option<String>,
    #[serde(rename = "cl:status")]
    pub status: String,
    #[serde(rename = "cl:statusNote")]
    pub status_note: String,
    #[serde(rename = "cl:lawfulBasis")]
    pub lawful_basis: Vec<BasisRecord>,
    #[serde(rename = "cl:category")]
    pub category: Option<String>,
    #[serde(rename = "cl:sensitive")]
    pub sensitive: bool,
    #[serde(
        rename = "cl:specialCategory",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub special_category: Option<String>,
    #[serde(
        rename = "cl:art9Condition",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub art9_condition: Option<ConditionRecord>,
    #[serde(
        rename = "cl:separateConsent",
        default,
        skip_serializing_if = "is_false"
    )]
    pub separate_consent: bool,
    #[serde(
        rename = "cl:consentRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consent_ref: Option<String>,
    #[serde(rename = "cl:note", default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Absent for the fields of a SQL policy view (the query decides what reaches the output).
    #[serde(rename = "cl:counts", default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// `scrub`: entities replaced per recognizer name.
    #[serde(
        rename = "cl:entitiesReplaced",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entities_replaced: Option<std::collections::BTreeMap<String, u64>>,
    #[serde(rename = "hasLegalBasis")]
    pub legal_basis: Vec<String>,
    #[serde(rename = "hasProcess")]
    pub process: ProcessRecord,
}

/// A quasi-identifier in the privacy evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct QiEvidence {
    pub field: String,
    /// `arx-file` or `policy-levels`.
    pub hierarchy: String,
    /// The hierarchy file's path, or the policy's level list.
    pub source: Value,
    pub levels: usize,
    pub chosen_level: usize,
}

/// An l-diversity requirement as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LRecord {
    pub attribute: String,
    pub variant: String,
    pub l: f64,
    pub c: Option<f64>,
}

/// A t-closeness requirement as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TRecord {
    pub attribute: String,
    pub t: f64,
    pub distance: String,
}

/// The privacy models required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelsRecord {
    pub k: Option<u64>,
    pub l_diversity: Vec<LRecord>,
    pub t_closeness: Vec<TRecord>,
}

/// How the optimal generalization was searched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SearchRecord {
    pub lattice_nodes: u64,
    pub nodes_evaluated: u64,
    pub seconds: f64,
}

/// Dataset-level privacy-model evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrivacyNode {
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@type")]
    pub types: Vec<String>,
    #[serde(rename = "wasGeneratedBy")]
    pub generated_by: String,
    /// The output datasets the evidence is about.
    #[serde(rename = "cl:about")]
    pub about: Vec<String>,
    #[serde(rename = "cl:note")]
    pub note: String,
    #[serde(rename = "cl:quasiIdentifiers")]
    pub quasi_identifiers: Vec<QiEvidence>,
    #[serde(rename = "cl:sensitiveAttributes")]
    pub sensitive_attributes: Vec<String>,
    #[serde(rename = "cl:models")]
    pub models: ModelsRecord,
    #[serde(rename = "cl:onViolation")]
    pub on_violation: String,
    #[serde(rename = "cl:maxSuppression")]
    pub max_suppression: f64,
    #[serde(rename = "cl:metric")]
    pub metric: String,
    #[serde(rename = "cl:search")]
    pub search: Option<SearchRecord>,
    #[serde(rename = "cl:suppressedRecords")]
    pub suppressed_records: u64,
    #[serde(rename = "cl:achieved")]
    pub achieved: Assessment,
    #[serde(rename = "cl:beforeEnforcement")]
    pub before: Assessment,
}

/// A serde message without the value it quotes (`invalid type: string "…", expected u64`):
/// a record is hostile input, and what it holds may be a data value. Member names stay.
pub(crate) fn withhold_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    for head in ["invalid type: ", "invalid value: ", "unknown variant "] {
        while let Some(i) = rest.find(head) {
            out.push_str(&rest[..i + head.len()]);
            let after = &rest[i + head.len()..];
            // The value runs to ", expected" (serde's wording), or to the end.
            match after.find(", expected") {
                Some(j) => {
                    out.push_str("(value withheld)");
                    rest = &after[j..];
                }
                None => {
                    out.push_str("(value withheld)");
                    rest = "";
                }
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Non-finite figures are written as JSON `null` (JSON has no infinity); read them back as NaN.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Record {
    /// Read a record from parsed JSON (strictly parsed: see [`super::read::parse_strict`]).
    /// A `cloakline-provenance/v1` document is upgraded to the v2 layout first.
    pub fn from_json(doc: &Value) -> std::result::Result<Record, Problem> {
        let format = doc.get("cl:format").and_then(Value::as_str).unwrap_or("");
        let v2 = match format {
            FORMAT => doc.clone(),
            FORMAT_V1 => upgrade::v1_to_v2(doc)?,
            "" => return Err("no cl:format member: not a cloakline provenance record".into()),
            other => {
                return Err(Problem(format!(
                    "cl:format is {other:?}; this cloakline reads {FORMAT} and {FORMAT_V1}"
                )));
            }
        };
        serde_json::from_value(v2).map_err(|e| Problem(withhold_values(&e.to_string())))
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Value {
        // Every member is a string, number, bool, list or map with string keys.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Nodes of one kind.
    pub fn datasets(&self) -> impl Iterator<Item = &DatasetNode> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Dataset(d) => Some(d),
            _ => None,
        })
    }

    pub fn inputs(&self) -> impl Iterator<Item = &DatasetNode> {
        self.datasets().filter(|d| !d.is_output())
    }

    pub fn outputs(&self) -> impl Iterator<Item = &DatasetNode> {
        self.datasets().filter(|d| d.is_output())
    }

    pub fn output_fields(&self) -> impl Iterator<Item = &OutputFieldNode> {
        self.nodes.iter().filter_map(|n| match n {
            Node::OutputField(f) => Some(&**f),
            _ => None,
        })
    }

    pub fn input_fields(&self) -> impl Iterator<Item = &InputFieldNode> {
        self.nodes.iter().filter_map(|n| match n {
            Node::InputField(f) => Some(f),
            _ => None,
        })
    }

    /// Input columns the run dropped.
    pub fn dropped_fields(&self) -> impl Iterator<Item = &InputFieldNode> {
        self.input_fields().filter(|f| f.action.is_some())
    }

    pub fn policy(&self) -> Option<&PolicyNode> {
        self.nodes.iter().find_map(|n| match n {
            Node::Policy(p) => Some(p),
            _ => None,
        })
    }

    pub fn run(&self) -> Option<&RunNode> {
        self.nodes.iter().find_map(|n| match n {
            Node::Run(r) => Some(&**r),
            _ => None,
        })
    }

    pub fn privacy(&self) -> Option<&PrivacyNode> {
        self.nodes.iter().find_map(|n| match n {
            Node::Privacy(p) => Some(&**p),
            _ => None,
        })
    }

    /// The controller agent (an organisation).
    pub fn controller(&self) -> Option<&AgentNode> {
        self.nodes.iter().find_map(|n| match n {
            Node::Agent(a) if a.types.iter().any(|t| t == "dpv:DataController") => Some(a),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_about_a_record_withhold_its_values() {
        let doc = serde_json::json!({"cl:format": FORMAT, "@context": {}, "@id": "r",
            "@type": ["prov:Entity"], "cl:runKind": "apply", "generatedAtTime": "t",
            "wasGeneratedBy": "alice@example.com", "cl:summary": "alice@example.com",
            "@included": []});
        let e = Record::from_json(&doc).unwrap_err().to_string();
        assert!(!e.contains("alice"), "{e}");
        assert!(e.contains("value withheld"), "{e}");
        let mut doc2 = doc.clone();
        doc2["cl:summary"] = serde_json::json!(null);
        doc2["cl:runKind"] = serde_json::json!("alice@example.com");
        let e = Record::from_json(&doc2).unwrap_err().to_string();
        assert!(!e.contains("alice"), "{e}");
        let mut doc3 = doc.clone();
        doc3["@included"] = serde_json::json!([{"@id": "bob@example.com", "@type": ["cl:Dataset"],
            "cl:path": 5, "cl:format": "csv"}]);
        let e = Record::from_json(&doc3).unwrap_err().to_string();
        assert!(!e.contains("bob"), "{e}");
    }
}
