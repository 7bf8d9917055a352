//! The provenance record of a run: JSON-LD that RDF tools read as W3C PROV plus DPV.
//!
//! It records what was done, not what was intended: the policy and its hash, every input and
//! output with row counts and SHA-256, and for each output field its source, action,
//! non-secret parameters, key id and fingerprint, lawful basis per jurisdiction, and the
//! resulting status. No status ever says "anonymised": a column transform alone never proves
//! anonymity. The format is documented in `docs/FORMATS.md`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use record::{
    AgentNode, Association, BasisRecord, ConditionRecord, Counts, DatasetNode, InputFieldNode,
    Node, OutputFieldNode, OutputKind, PolicyNode, PrivacySummary, ProcessRecord, QiLevel, RunKind,
    RunNode, SchemaField, Summary, WarningRecord,
};
pub use record::{FORMAT, FORMAT_V1, Record};
use std::path::{Path, PathBuf};

use crate::engine::ColumnCounts;
use crate::error::{Error, Result};
use crate::io::AtomicFile;
use crate::plan::Plan;
use crate::policy::{Action, Field, Policy};

pub mod audit;
pub mod openlineage;
pub mod read;
pub mod record;
pub mod sign;

/// Parquet footer key holding the embedded document.
pub const PARQUET_KEY: &str = "cloakline.provenance";
/// Top-level member saying whether the run wrote one file or a directory (`file` or
/// `directory`); `verify` reads it from the footer copy to pick its comparison.
pub const OUTPUT_KIND: &str = "cl:outputKind";
/// Top-level member present (`true`) when the run's keyring held public demo keys.
pub const DEMO_KEYS: &str = "cl:demoKeys";
/// Namespace of cloakline's own terms.
pub const CL_NS: &str = "urn:cloakline:v1:";

/// The path of the provenance sidecar for an output path (the raw name, so a non-UTF-8 name
/// keeps its bytes).
pub fn sidecar_path(output: &Path) -> PathBuf {
    // Components drop a trailing separator: `out/` → `out.provenance.json`.
    let mut s = output.components().collect::<PathBuf>().into_os_string();
    if s.is_empty() {
        s = output.as_os_str().to_owned();
    }
    s.push(".provenance.json");
    PathBuf::from(s)
}

/// Write a JSON document into a staged file.
pub(crate) fn write_json(
    af: &AtomicFile,
    path: &Path,
    doc: &serde_json::Value,
    newline: bool,
) -> Result<()> {
    let mut text = serde_json::to_string_pretty(doc).map_err(|e| Error::data(path.display(), e))?;
    if newline {
        text.push('\n');
    }
    let mut f = af.file()?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// Write the provenance document for `output` under a temporary name; the caller commits it
/// after the data, so neither appears without the other.
pub fn stage_sidecar(output: &Path, doc: &serde_json::Value) -> Result<(PathBuf, AtomicFile)> {
    let sidecar = sidecar_path(output);
    let side = AtomicFile::create(&sidecar)?;
    write_json(&side, &sidecar, doc, true)?;
    Ok((sidecar, side))
}

pub use crate::policy::status_of;

fn status_note(action: &Action) -> &'static str {
    action.descriptor().status_note
}

fn technical_measures(action: &Action) -> &'static [&'static str] {
    action.descriptor().dpv_measures
}

/// Non-secret parameters of an action, as recorded (member names in camelCase).
pub fn action_params(action: &Action) -> Map<String, Value> {
    match params_of(action) {
        Value::Object(m) => m.into_iter().map(|(k, v)| (record::camel(&k), v)).collect(),
        _ => Map::new(),
    }
}

fn params_of(action: &Action) -> Value {
    match action {
        Action::Custom(c) => Value::Object(crate::kernels::custom::recorded_params(
            c.transform,
            &c.params,
        )),
        Action::Keep | Action::Drop => json!({}),
        Action::Redact { replacement } => json!({ "replacement": replacement }),
        Action::Mask(m) => {
            json!({ "keepFirst": m.keep_first, "keepLast": m.keep_last, "maskChar": m.mask_char.to_string(), "unit": "grapheme" })
        }
        Action::Tokenize(t) => json!({
            "algorithm": "HMAC-SHA256", "kdf": "HKDF-SHA256", "kdf_info": format!("cloakline/v1/tokenize/{}", t.domain),
            "domain": t.domain, "length": t.length, "prefix": t.prefix, "output": "hex", "deterministic": true
        }),
        Action::Encrypt(e) => json!({
            "algorithm": "AES-256-GCM", "kdf": "HKDF-SHA256", "kdf_info": format!("cloakline/v1/encrypt/{}", e.domain),
            "domain": e.domain, "nonce": "random 96-bit", "envelope": "cloakline envelope v1, base64url", "deterministic": false
        }),
        Action::EncryptDeterministic(e) => json!({
            "algorithm": "AES-SIV-CMAC-512 (RFC 5297)", "kdf": "HKDF-SHA256", "kdf_info": format!("cloakline/v1/encrypt_deterministic/{}", e.domain),
            "domain": e.domain, "associatedData": "the domain", "envelope": "cloakline envelope v2, base64url", "deterministic": true
        }),
        Action::Fpe(f) => json!({
            "algorithm": "FF1-AES-256 (NIST SP 800-38G)", "kdf": "HKDF-SHA256", "kdf_info": format!("cloakline/v1/fpe/{}", f.domain),
            "domain": f.domain, "tweak": "the domain", "alphabet": f.alphabet, "radix": f.characters.chars().count(),
            "separators": f.separators, "keepFirst": f.keep_first, "keepLast": f.keep_last, "luhn": f.luhn,
            "onInvalid": f.on_invalid, "minimumDomain": crate::kernels::fpe::MIN_DOMAIN, "deterministic": true
        }),
        Action::ShiftDate(s) => json!({
            "algorithm": "HMAC-SHA256 draw per keyed_by value", "kdf": "HKDF-SHA256",
            "kdf_info": format!("cloakline/v1/shift_date/{}", s.domain), "domain": s.domain,
            "keyedBy": s.keyed_by, "maxDays": s.max_days, "unit": "day", "zeroShift": false,
            "deterministic": true
        }),
        Action::Noise(n) => json!({
            "algorithm": "HMAC-SHA256 draw per keyed_by value", "kdf": "HKDF-SHA256",
            "kdf_info": format!("cloakline/v1/noise/{}", n.domain), "domain": n.domain,
            "keyedBy": n.keyed_by, "distribution": n.distribution, "scale": n.scale,
            "integersRounded": true, "deterministic": true
        }),
        Action::Generalize(g) => serde_json::to_value(g).unwrap_or(Value::Null),
        Action::Scrub(s) => {
            let names: Vec<String> = match &s.recognizers {
                Some(n) => n.clone(),
                None => s
                    .set
                    .recognizers()
                    .iter()
                    .filter(|r| !r.needs_context)
                    .map(|r| r.name.clone())
                    .collect(),
            };
            let mut v = serde_json::to_value(&s.mode).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("recognizers".into(), json!(names));
                if matches!(s.mode, crate::policy::ScrubMode::Token { .. }) {
                    m.insert("algorithm".into(), json!("HMAC-SHA256"));
                    m.insert("kdf".into(), json!("HKDF-SHA256"));
                    m.insert("note".into(), json!("token domain per recognizer defaults to its name; tokens equal `tokenize` output for the same key, domain, length and prefix"));
                }
            }
            v
        }
    }
}

/// One input or output file.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct DatasetRecord {
    pub path: String,
    /// A file of a directory release: its path relative to the release directory.
    pub relative_path: Option<String>,
    pub format: String,
    pub rows: u64,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub schema: Vec<(String, String)>,
    /// An object-store input's ETag and version id, as the store gave them.
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

/// Everything a run did, gathered for the record.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub run_id: String,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub policy: PolicySummary,
    pub inputs: Vec<DatasetRecord>,
    pub outputs: Vec<DatasetRecord>,
    pub fields: Vec<FieldRecord>,
    pub dropped: Vec<(String, String, &'static str)>,
    /// Privacy-model evidence (`privacy::evidence`), when the policy has a privacy block;
    /// its ids are filled in when the record is made.
    pub privacy: Option<record::PrivacyNode>,
    /// The input was a directory (one output file per input file).
    pub directory: bool,
    /// The keyring held public demo keys ([`crate::keys::Keyring::is_demo`]).
    pub demo_keys: bool,
    /// What protected the keys at rest: `plain`, `passphrase` or `pkcs11`.
    pub key_protection: Option<String>,
    /// A cluster run: the scheduler and how many executors wrote files.
    pub cluster: Option<record::ClusterFacts>,
    /// What the consent ledger removed, when the policy has one.
    pub consent: Option<record::ConsentRecord>,
}

/// The policy facts the record needs.
#[derive(Clone, Debug)]
pub struct PolicySummary {
    pub name: String,
    pub version: u64,
    pub sha256: String,
    pub path: String,
    pub controller: String,
    pub purpose: String,
    pub jurisdictions: Vec<String>,
    pub recipients: Vec<String>,
    pub data_subjects: Vec<String>,
    pub retention: Option<String>,
    pub transfers: Vec<crate::policy::rules::Transfer>,
    pub warnings: Vec<crate::policy::rules::RuleWarning>,
    pub release: Option<record::ReleaseRecord>,
}

impl PolicySummary {
    pub fn of(p: &Policy) -> Self {
        PolicySummary {
            name: p.name.clone(),
            version: p.version,
            sha256: p.sha256.clone(),
            path: p.source.clone(),
            controller: p.controller.clone(),
            purpose: p.purpose.clone(),
            jurisdictions: p.jurisdictions.iter().map(|j| j.to_string()).collect(),
            recipients: p.recipients.clone(),
            data_subjects: p.data_subjects.clone(),
            retention: p.retention.clone(),
            transfers: p.transfers.clone(),
            warnings: p.warnings.clone(),
            release: p.release.as_ref().map(record::ReleaseRecord::of),
        }
    }
}

/// One output field.
#[derive(Clone, Debug)]
pub struct FieldRecord {
    pub rule: Field,
    pub output_type: String,
    pub input_type: String,
    pub key_fingerprint: Option<String>,
    /// The exact key version used (`k1@v2`), when the plan resolved it.
    pub key_ref: Option<String>,
    pub counts: ColumnCounts,
    /// For a quasi-identifier: (chosen level, highest level, hierarchy source).
    pub quasi_identifier: Option<(usize, usize, String)>,
    /// For `scrub`: entities replaced per recognizer.
    pub entities: Vec<(String, u64)>,
}

impl FieldRecord {
    /// Field records of a plan with their counts.
    pub fn from_plan(plan: &Plan, counts: &[ColumnCounts]) -> Vec<FieldRecord> {
        plan.columns
            .iter()
            .enumerate()
            .map(|(i, c)| FieldRecord {
                rule: c.rule.clone(),
                output_type: c.output_field.data_type().to_string(),
                input_type: c.input_type.to_string(),
                key_fingerprint: c.key_fingerprint.clone(),
                key_ref: c
                    .output_field
                    .metadata()
                    .get(crate::plan::meta::KEY_ID)
                    .cloned(),
                counts: counts.get(i).cloned().unwrap_or_default(),
                quasi_identifier: quasi_identifier(c.output_field.metadata()),
                entities: match &c.kernel {
                    crate::plan::Kernel::Scrub(k) => k.entity_counts(),
                    _ => Vec::new(),
                },
            })
            .collect()
    }
}

fn quasi_identifier(
    md: &std::collections::HashMap<String, String>,
) -> Option<(usize, usize, String)> {
    let (l, m) = md.get(crate::plan::meta::QI_LEVEL)?.split_once('/')?;
    let source = md
        .get(crate::plan::meta::HIERARCHY)
        .cloned()
        .unwrap_or_default();
    Some((l.parse().ok()?, m.parse().ok()?, source))
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The inline JSON-LD context, so no network fetch is needed to read the document as RDF.
pub fn context() -> Value {
    json!({
        // Keys not defined below (inside cl:params, cl:counts, ...) are cloakline terms.
        "@vocab": CL_NS,
        "prov": "http://www.w3.org/ns/prov#",
        "dpv": "https://w3id.org/dpv#",
        "pd": "https://w3id.org/dpv/pd#",
        "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
        "loc": "https://w3id.org/dpv/loc#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
        "cl": CL_NS,
        "label": "rdfs:label",
        "wasGeneratedBy": {"@id": "prov:wasGeneratedBy", "@type": "@id"},
        "wasDerivedFrom": {"@id": "prov:wasDerivedFrom", "@type": "@id", "@container": "@set"},
        "wasAttributedTo": {"@id": "prov:wasAttributedTo", "@type": "@id"},
        "wasAssociatedWith": {"@id": "prov:wasAssociatedWith", "@type": "@id"},
        "actedOnBehalfOf": {"@id": "prov:actedOnBehalfOf", "@type": "@id"},
        "used": {"@id": "prov:used", "@type": "@id", "@container": "@set"},
        "hadMember": {"@id": "prov:hadMember", "@type": "@id", "@container": "@set"},
        "qualifiedAssociation": {"@id": "prov:qualifiedAssociation"},
        "agent": {"@id": "prov:agent", "@type": "@id"},
        "hadPlan": {"@id": "prov:hadPlan", "@type": "@id"},
        "startedAtTime": {"@id": "prov:startedAtTime", "@type": "xsd:dateTime"},
        "endedAtTime": {"@id": "prov:endedAtTime", "@type": "xsd:dateTime"},
        "generatedAtTime": {"@id": "prov:generatedAtTime", "@type": "xsd:dateTime"},
        "hasLegalBasis": {"@id": "dpv:hasLegalBasis", "@type": "@id", "@container": "@set"},
        "hasPersonalData": {"@id": "dpv:hasPersonalData", "@type": "@id", "@container": "@set"},
        "hasTechnicalMeasure": {"@id": "dpv:hasTechnicalMeasure", "@type": "@id", "@container": "@set"},
        "hasJurisdiction": {"@id": "dpv:hasJurisdiction", "@type": "@id", "@container": "@set"},
        "hasDataController": {"@id": "dpv:hasDataController", "@type": "@id"},
        "hasProcess": {"@id": "dpv:hasProcess"}
    })
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn pct(s: &str) -> String {
    // Percent-encode what may not appear in an IRI fragment.
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RunRecord {
    /// The JSON-LD document. `with_output_checksums: false` gives the copy embedded in the
    /// output file itself, which cannot contain its own checksum.
    pub fn to_jsonld(&self, with_output_checksums: bool) -> Value {
        self.to_record(with_output_checksums).to_json()
    }

    /// The typed record (see [`to_jsonld`](Self::to_jsonld)).
    pub fn to_record(&self, with_output_checksums: bool) -> Record {
        let ids = Ids::new(&self.run_id, &self.policy);
        let mut nodes = ids.agents(&self.policy.controller);
        nodes.push(Node::Policy(ids.policy_node(&self.policy, None)));
        nodes.push(Node::Run(Box::new(self.run_node(&ids))));
        let input_fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| ids.in_field(&f.rule.input_name))
            .chain(self.dropped.iter().map(|d| ids.in_field(&d.0)))
            .collect();
        for (i, d) in self.inputs.iter().enumerate() {
            nodes.push(Node::Dataset(d.node(
                ids.input(i),
                true,
                input_fields.clone(),
            )));
        }
        let output_fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| ids.out_field(&f.rule.output_name))
            .collect();
        for (i, d) in self.outputs.iter().enumerate() {
            let mut node = d.node(ids.output(i), with_output_checksums, output_fields.clone());
            node.generated_by = Some(ids.run.clone());
            node.derived_from = Some((0..self.inputs.len()).map(|i| ids.input(i)).collect());
            node.attributed_to = Some(ids.controller.clone());
            nodes.push(Node::Dataset(node));
        }
        for f in &self.fields {
            nodes.push(Node::InputField(
                ids.input_field(&f.rule.input_name, &f.input_type),
            ));
            let node = field_node(&ids, FieldFacts::of(f), &self.policy.purpose);
            nodes.push(Node::OutputField(Box::new(node)));
        }
        for (name, dtype, reason) in &self.dropped {
            let mut node = ids.input_field(name, dtype);
            node.action = Some("drop".into());
            node.status = Some("removed".into());
            node.dropped_because = Some(
                if *reason == "policy" {
                    "the policy drops it"
                } else {
                    "not listed in the policy (unlisted: drop)"
                }
                .into(),
            );
            nodes.push(Node::InputField(node));
        }
        let privacy = self.privacy.as_ref().map(|p| {
            let mut p = p.clone();
            p.id = format!("{}:privacy", ids.run);
            p.types = vec!["prov:Entity".into(), "cl:PrivacyModelEvidence".into()];
            p.generated_by = ids.run.clone();
            p.about = (0..self.outputs.len()).map(|i| ids.output(i)).collect();
            p
        });
        let summary = Summary {
            policy: Some(format!("{} v{}", self.policy.name, self.policy.version)),
            controller: Some(self.policy.controller.clone()),
            purpose: Some(self.policy.purpose.clone()),
            jurisdictions: self.policy.jurisdictions.clone(),
            rows_in: Some(self.inputs.iter().map(|d| d.rows).sum()),
            rows_out: self.outputs.iter().map(|d| d.rows).sum(),
            fields_out: self.fields.len() as u64,
            fields_dropped: self.dropped.len() as u64,
            privacy: privacy.as_ref().map(|p| PrivacySummary {
                smallest_class: p.achieved.smallest_class,
                suppressed_records: p.achieved.suppressed,
                satisfied: p.achieved.satisfied,
                levels: p.achieved.levels.clone(),
            }),
        };
        if let Some(p) = privacy {
            nodes.push(Node::Privacy(Box::new(p)));
        }
        let mut record = Record::new(RunKind::Apply, &ids, summary, nodes);
        record.generated_at = ts(&self.ended);
        record.demo_keys = self.demo_keys;
        record.key_protection = self.key_protection.clone();
        record.cluster = self.cluster.clone();
        if self.directory {
            record.output_kind = Some(OutputKind::Directory);
        }
        record
    }

    /// The run activity.
    fn run_node(&self, ids: &Ids) -> RunNode {
        let p = &self.policy;
        let mut node = ids.run_node(&self.started, &self.ended);
        node.used = (0..self.inputs.len())
            .map(|i| ids.input(i))
            .chain([ids.plan.clone()])
            .collect();
        node.association.had_plan = Some(ids.plan.clone());
        node.purpose = Some(p.purpose.clone());
        node.jurisdictions = p.jurisdictions.iter().map(|j| format!("loc:{j}")).collect();
        node.recipients = p.recipients.clone();
        node.data_subjects = p.data_subjects.clone();
        node.retention = p.retention.clone();
        node.transfers = p.transfers.clone();
        node.warnings = p
            .warnings
            .iter()
            .map(|w| WarningRecord {
                rule: w.rule.into(),
                article: w.article.into(),
                field: w.field.clone(),
                message: w.message.clone(),
            })
            .collect();
        node.consent = self.consent.clone();
        node.release = p.release.clone();
        node
    }
}

impl Record {
    /// A record of a run that wrote one output file, generated now.
    pub(crate) fn new(kind: RunKind, ids: &Ids, summary: Summary, nodes: Vec<Node>) -> Record {
        Record {
            context: context(),
            id: format!("{}:record", ids.run),
            types: strings(&["prov:Entity", "cl:ProvenanceRecord"]),
            format: FORMAT.into(),
            run_kind: kind,
            output_kind: Some(OutputKind::File),
            generated_at: ts(&Utc::now()),
            generated_by: ids.run.clone(),
            summary,
            demo_keys: false,
            key_protection: None,
            cluster: None,
            signature: None,
            nodes,
        }
    }
}

/// The IRIs of one run's nodes.
pub(crate) struct Ids {
    pub run: String,
    pub controller: String,
    pub software: String,
    pub plan: String,
}

impl Ids {
    pub(crate) fn new(run_id: &str, policy: &PolicySummary) -> Ids {
        Ids::with_run(format!("urn:cloakline:run:{run_id}"), policy)
    }

    /// Ids of a run without a policy: only the run and the software are named.
    pub(crate) fn bare(run_id: &str) -> Ids {
        Ids {
            run: format!("urn:cloakline:run:{run_id}"),
            controller: String::new(),
            software: format!(
                "urn:cloakline:software:cloakline:{}",
                env!("CARGO_PKG_VERSION")
            ),
            plan: String::new(),
        }
    }

    pub(crate) fn with_run(run: String, policy: &PolicySummary) -> Ids {
        Ids {
            run,
            controller: format!(
                "urn:cloakline:controller:{}",
                pct(&slug(&policy.controller))
            ),
            software: format!(
                "urn:cloakline:software:cloakline:{}",
                env!("CARGO_PKG_VERSION")
            ),
            plan: format!(
                "urn:cloakline:policy:{}:v{}:sha256:{}",
                pct(&policy.name),
                policy.version,
                policy.sha256
            ),
        }
    }

    pub(crate) fn input(&self, i: usize) -> String {
        format!("{}:input:{i}", self.run)
    }

    pub(crate) fn output(&self, i: usize) -> String {
        format!("{}:output:{i}", self.run)
    }

    pub(crate) fn in_field(&self, name: &str) -> String {
        format!("{}:input-field:{}", self.run, pct(name))
    }

    pub(crate) fn out_field(&self, name: &str) -> String {
        format!("{}:output-field:{}", self.run, pct(name))
    }

    /// The controller and the software acting for it.
    pub(crate) fn agents(&self, controller: &str) -> Vec<Node> {
        vec![
            Node::Agent(AgentNode {
                id: self.controller.clone(),
                types: strings(&["prov:Agent", "prov:Organization", "dpv:DataController"]),
                label: controller.to_string(),
                acted_on_behalf_of: None,
            }),
            self.software_node(Some(self.controller.clone())),
        ]
    }

    pub(crate) fn software_node(&self, controller: Option<String>) -> Node {
        Node::Agent(AgentNode {
            id: self.software.clone(),
            types: strings(&["prov:Agent", "prov:SoftwareAgent"]),
            label: format!("cloakline {}", env!("CARGO_PKG_VERSION")),
            acted_on_behalf_of: controller,
        })
    }

    pub(crate) fn policy_node(&self, p: &PolicySummary, view: Option<String>) -> PolicyNode {
        PolicyNode {
            id: self.plan.clone(),
            types: strings(&["prov:Entity", "prov:Plan", "cl:Policy"]),
            label: format!(
                "policy {} v{} (sha256:{})",
                p.name,
                p.version,
                &p.sha256[..12.min(p.sha256.len())]
            ),
            name: p.name.clone(),
            version: p.version,
            sha256: p.sha256.clone(),
            path: p.path.clone(),
            view,
        }
    }

    /// The run activity with what every run has.
    pub(crate) fn run_node(&self, started: &DateTime<Utc>, ended: &DateTime<Utc>) -> RunNode {
        RunNode {
            id: self.run.clone(),
            types: strings(&["prov:Activity", "cl:Run"]),
            started: ts(started),
            ended: ts(ended),
            used: Vec::new(),
            associated_with: self.software.clone(),
            association: Association {
                types: "prov:Association".into(),
                agent: self.software.clone(),
                had_plan: None,
            },
            purpose: None,
            jurisdictions: Vec::new(),
            recipients: Vec::new(),
            data_subjects: Vec::new(),
            retention: None,
            transfers: Vec::new(),
            warnings: Vec::new(),
            query: None,
            functions_used: None,
            raw_tables_read: None,
            keys: None,
            basis_note: None,
            consent: None,
            release: None,
        }
    }

    pub(crate) fn input_field(&self, name: &str, data_type: &str) -> InputFieldNode {
        InputFieldNode {
            id: self.in_field(name),
            types: strings(&["prov:Entity", "cl:InputField"]),
            column: name.to_string(),
            data_type: data_type.to_string(),
            action: None,
            status: None,
            dropped_because: None,
        }
    }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|t| t.to_string()).collect()
}

impl DatasetRecord {
    pub(crate) fn node(&self, id: String, checksums: bool, members: Vec<String>) -> DatasetNode {
        DatasetNode {
            id,
            types: strings(&["prov:Entity", "cl:Dataset"]),
            path: self.path.clone(),
            relative_path: self.relative_path.clone(),
            table: None,
            format: self.format.clone(),
            rows: Some(self.rows),
            sha256: self.sha256.clone().filter(|_| checksums),
            bytes: self.bytes.filter(|_| checksums),
            e_tag: self.e_tag.clone().filter(|_| checksums),
            version_id: self.version.clone().filter(|_| checksums),
            schema: self
                .schema
                .iter()
                .map(|(n, t)| SchemaField::new(n, t))
                .collect(),
            generated_by: None,
            derived_from: None,
            attributed_to: None,
            members,
        }
    }
}

/// What a field node says besides the rule: its types, key, counts and what the run did.
pub(crate) struct FieldFacts<'a> {
    pub rule: &'a Field,
    pub output_type: String,
    pub key_fingerprint: Option<String>,
    /// The exact key version used (`k1@v2`); `None`: the policy's key id as written.
    pub key_ref: Option<String>,
    pub counts: Option<Counts>,
    pub quasi_identifier: Option<(usize, usize, String)>,
    pub entities: Option<&'a [(String, u64)]>,
}

impl<'a> FieldFacts<'a> {
    fn of(f: &'a FieldRecord) -> Self {
        FieldFacts {
            rule: &f.rule,
            output_type: f.output_type.clone(),
            key_fingerprint: f.key_fingerprint.clone(),
            key_ref: f.key_ref.clone(),
            counts: Some(Counts {
                values_transformed: f.counts.transformed,
                nulls: f.counts.nulls,
            }),
            quasi_identifier: f.quasi_identifier.clone(),
            entities: Some(&f.entities),
        }
    }
}

/// An output field's node.
pub(crate) fn field_node(ids: &Ids, f: FieldFacts<'_>, purpose: &str) -> OutputFieldNode {
    let r = f.rule;
    let mut types = strings(&["prov:Entity", "cl:OutputField"]);
    match (&r.action, r.category.is_some()) {
        (Action::Tokenize(_) | Action::EncryptDeterministic(_) | Action::Fpe(_), _) => {
            types.push("dpv:PseudonymisedData".into())
        }
        (Action::Redact { .. }, _) => {}
        (_, true) => types.push("dpv:PersonalData".into()),
        _ => {}
    }
    let lawful_basis = lawful_basis(r);
    let mut legal_terms: Vec<String> = lawful_basis
        .iter()
        .flat_map(|b| [b.dpv.clone(), b.term.clone()])
        .collect();
    // A quasi-identifier the privacy block generalized is recorded as generalized.
    let qi_generalized = matches!(f.quasi_identifier, Some((l, _, _)) if l > 0);
    let effective = if qi_generalized && !matches!(r.action, Action::Generalize(_)) {
        Action::Generalize(crate::policy::GeneralizeSpec::Prefix { keep_prefix: 0 })
    } else {
        r.action.clone()
    };
    let art9_condition = r.art9_condition.map(|c| {
        let (article, term) = c.reference();
        ConditionRecord {
            condition: enum_text(&c),
            article: article.into(),
            term: term.into(),
        }
    });
    legal_terms.sort();
    legal_terms.dedup();
    if let Some(c) = &art9_condition {
        legal_terms.push(c.term.clone());
    }
    // The exact version (`k2@v2`), so a reviewer sees which version protected the field.
    let key_id = r
        .action
        .key_id()
        .map(|k| f.key_ref.clone().unwrap_or_else(|| k.to_string()));
    OutputFieldNode {
        id: ids.out_field(&r.output_name),
        types,
        column: r.output_name.clone(),
        source_column: r.input_name.clone(),
        data_type: f.output_type,
        derived_from: vec![ids.in_field(&r.input_name)],
        generated_by: ids.run.clone(),
        action: effective.kind().keyword().into(),
        params: action_params(&r.action),
        quasi_identifier: f
            .quasi_identifier
            .map(|(level, max_level, hierarchy)| QiLevel {
                hierarchy,
                level,
                max_level,
                note: "generalized to this hierarchy level by the privacy block; level 0 is the \
                   field rule's output"
                    .into(),
            }),
        key_fingerprint: key_id.as_ref().and(f.key_fingerprint),
        key_id,
        status: status_of(&effective, r.category.is_some()).into(),
        status_note: status_note(&effective).into(),
        lawful_basis,
        category: r.category.clone(),
        sensitive: r.sensitive,
        special_category: r.special_category.map(|c| enum_text(&c)),
        art9_condition,
        separate_consent: r.separate_consent,
        consent_ref: r.consent_ref.clone(),
        note: r.note.clone(),
        counts: f.counts,
        entities_replaced: match (&r.action, f.entities) {
            (Action::Scrub(_), Some(e)) => Some(e.iter().cloned().collect()),
            _ => None,
        },
        legal_basis: legal_terms.clone(),
        process: ProcessRecord {
            types: "dpv:Process".into(),
            purpose: Some(purpose.to_string()),
            legal_basis: legal_terms,
            personal_data: r.category_term.iter().cloned().collect(),
            technical_measures: strings(technical_measures(&effective)),
            controller: Some(ids.controller.clone()),
            jurisdictions: r
                .bases
                .keys()
                .map(|j| j.dpv_location().to_string())
                .collect(),
        },
    }
}

/// One entry per jurisdiction whose basis the field names.
fn lawful_basis(r: &Field) -> Vec<BasisRecord> {
    r.bases
        .iter()
        .filter_map(|(j, b)| {
            b.reference(*j).map(|reference| BasisRecord {
                jurisdiction: j.to_string(),
                law: j.law().into(),
                basis: b.keyword().into(),
                article: reference.article.into(),
                dpv: reference.dpv.into(),
                term: reference.legal_term.into(),
            })
        })
        .collect()
}

/// The serde name of a unit enum variant (`health`, `explicit_consent`).
fn enum_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A random run id (UUID v4 layout).
pub fn new_run_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        (b[8] & 0x3) | 0x8,
        &h[17..20],
        &h[20..32]
    )
}

/// `cl:consent`: the ledger read, how consent was judged, and what the gate did (`c`).
pub fn consent_record(
    ledger: &crate::plan::consent::Ledger,
    spec: &crate::policy::consent::ConsentSpec,
    c: &crate::plan::consent::ConsentCounts,
) -> record::ConsentRecord {
    let fields_nulled = spec
        .consent_fields
        .iter()
        .map(|f| {
            let n = if spec.separate_fields.contains(f) {
                c.separate_withheld
            } else {
                c.general_withheld
            };
            (f.clone(), n)
        })
        .collect();
    record::ConsentRecord {
        ledger: ledger.shown.clone(),
        ledger_sha256: ledger.sha256.clone(),
        ledger_files: ledger.files as u64,
        ledger_events: ledger.events,
        purpose_events: ledger.purpose_events,
        later_events: ledger.later_events,
        duplicate_events: ledger.duplicates,
        ledger_subjects: ledger.subjects,
        as_of: ledger.as_of_text(),
        purpose: spec.purpose.clone(),
        subject: spec.subject.clone(),
        subject_ids: keyword(&spec.subject_ids),
        on_missing: keyword(&spec.on_missing),
        on_withdrawn: keyword(&spec.on_withdrawn),
        consent_fields: spec.consent_fields.clone(),
        separate_consent_fields: spec.separate_fields.clone(),
        rows_in: c.rows_in,
        rows_released: c.rows_in - c.removed_withdrawn - c.removed_missing,
        rows_removed_withdrawn: c.removed_withdrawn,
        rows_removed_missing: c.removed_missing,
        fields_nulled,
    }
}

/// A policy keyword as the policy spells it.
fn keyword<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
