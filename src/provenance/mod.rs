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
use std::path::{Path, PathBuf};

use crate::engine::ColumnCounts;
use crate::error::{Error, Result};
use crate::io::AtomicFile;
use crate::plan::Plan;
use crate::policy::{Action, Field, Policy};

pub mod openlineage;
pub mod read;
pub mod sign;

/// Identifies this document format.
pub const FORMAT: &str = "cloakline-provenance/v1";
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

/// Non-secret parameters of an action, as recorded.
pub fn action_params(action: &Action) -> Value {
    match action {
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
#[derive(Clone, Debug, Serialize)]
pub struct DatasetRecord {
    pub path: String,
    pub format: String,
    pub rows: u64,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub schema: Vec<(String, String)>,
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
    /// Privacy-model evidence (`privacy::evidence`), when the policy has a privacy block.
    pub privacy: Option<Value>,
    /// The input was a directory (one output file per input file).
    pub directory: bool,
    /// The keyring held public demo keys ([`crate::keys::Keyring::is_demo`]).
    pub demo_keys: bool,
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
        let run = format!("urn:cloakline:run:{}", self.run_id);
        let controller = format!(
            "urn:cloakline:controller:{}",
            pct(&slug(&self.policy.controller))
        );
        let software = format!(
            "urn:cloakline:software:cloakline:{}",
            env!("CARGO_PKG_VERSION")
        );
        let plan = format!(
            "urn:cloakline:policy:{}:v{}:sha256:{}",
            pct(&self.policy.name),
            self.policy.version,
            self.policy.sha256
        );
        let input_id = |i: usize| format!("{run}:input:{i}");
        let output_id = |i: usize| format!("{run}:output:{i}");
        let in_field = |name: &str| format!("{run}:input-field:{}", pct(name));
        let out_field = |name: &str| format!("{run}:output-field:{}", pct(name));

        let mut graph = self.run_nodes(&run, &controller, &software, &plan, &input_id);
        let input_fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| in_field(&f.rule.input_name))
            .chain(self.dropped.iter().map(|d| in_field(&d.0)))
            .collect();
        for (i, d) in self.inputs.iter().enumerate() {
            graph.push(dataset_node(&input_id(i), d, true, None, &input_fields));
        }
        let output_fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| out_field(&f.rule.output_name))
            .collect();
        for (i, d) in self.outputs.iter().enumerate() {
            let mut node = dataset_node(
                &output_id(i),
                d,
                with_output_checksums,
                Some(&run),
                &output_fields,
            );
            if let Value::Object(m) = &mut node {
                m.insert(
                    "wasDerivedFrom".into(),
                    json!((0..self.inputs.len()).map(input_id).collect::<Vec<_>>()),
                );
                m.insert("wasAttributedTo".into(), json!(controller));
            }
            graph.push(node);
        }
        for f in &self.fields {
            graph.push(
                json!({"@id": in_field(&f.rule.input_name), "@type": "prov:Entity",
                              "cl:column": f.rule.input_name, "cl:dataType": f.input_type}),
            );
            graph.push(self.field_node(
                f,
                &run,
                &controller,
                &out_field(&f.rule.output_name),
                &in_field(&f.rule.input_name),
            ));
        }
        for (name, dtype, reason) in &self.dropped {
            graph.push(json!({"@id": in_field(name), "@type": "prov:Entity", "cl:column": name,
                              "cl:dataType": dtype, "cl:action": "drop", "cl:status": "removed",
                              "cl:droppedBecause": if *reason == "policy" { "the policy drops it" } else { "not listed in the policy (unlisted: drop)" }}));
        }
        if let Some(node) = self.privacy_node(&run, &output_id) {
            graph.push(node);
        }
        let privacy_summary = self.privacy.as_ref().map(|p| {
            let a = &p["cl:achieved"];
            json!({"smallestClass": a["smallest_class"], "suppressedRecords": a["suppressed"],
                   "satisfied": a["satisfied"], "levels": a["levels"]})
        });
        let mut doc = json!({
            "@context": context(),
            "@id": format!("{run}:record"),
            "@type": ["prov:Entity", "cl:ProvenanceRecord"],
            "cl:format": FORMAT,
            "cl:outputKind": if self.directory { "directory" } else { "file" },
            "generatedAtTime": ts(&self.ended),
            "wasGeneratedBy": run,
            "cl:summary": {
                "policy": format!("{} v{}", self.policy.name, self.policy.version),
                "controller": self.policy.controller,
                "purpose": self.policy.purpose,
                "jurisdictions": self.policy.jurisdictions,
                "rowsIn": self.inputs.iter().map(|d| d.rows).sum::<u64>(),
                "rowsOut": self.outputs.iter().map(|d| d.rows).sum::<u64>(),
                "fieldsOut": self.fields.len(),
                "fieldsDropped": self.dropped.len(),
                "privacy": privacy_summary,
            },
            "@graph": graph,
        });
        if self.demo_keys
            && let Value::Object(m) = &mut doc
        {
            m.insert(DEMO_KEYS.into(), json!(true));
        }
        doc
    }

    /// The controller, the software, the policy (plan) and the run activity.
    fn run_nodes(
        &self,
        run: &str,
        controller: &str,
        software: &str,
        plan: &str,
        input_id: &dyn Fn(usize) -> String,
    ) -> Vec<Value> {
        vec![
            json!({"@id": controller, "@type": ["prov:Agent", "prov:Organization", "dpv:DataController"], "label": self.policy.controller}),
            json!({"@id": software, "@type": ["prov:Agent", "prov:SoftwareAgent"],
                   "label": format!("cloakline {}", env!("CARGO_PKG_VERSION")), "actedOnBehalfOf": controller}),
            json!({"@id": plan, "@type": ["prov:Entity", "prov:Plan", "cl:Policy"],
                   "label": format!("policy {} v{} (sha256:{})", self.policy.name, self.policy.version, &self.policy.sha256[..12.min(self.policy.sha256.len())]),
                   "cl:policyName": self.policy.name, "cl:policyVersion": self.policy.version,
                   "cl:sha256": self.policy.sha256, "cl:path": self.policy.path}),
            json!({"@id": run, "@type": "prov:Activity",
                   "startedAtTime": ts(&self.started), "endedAtTime": ts(&self.ended),
                   "used": (0..self.inputs.len()).map(input_id).chain([plan.to_string()]).collect::<Vec<_>>(),
                   "wasAssociatedWith": software,
                   "qualifiedAssociation": {"@type": "prov:Association", "agent": software, "hadPlan": plan},
                   "cl:purpose": self.policy.purpose,
                   "hasJurisdiction": self.policy.jurisdictions.iter().map(|j| format!("loc:{j}")).collect::<Vec<_>>(),
                   "cl:recipients": self.policy.recipients,
                   "cl:dataSubjects": self.policy.data_subjects,
                   "cl:retention": self.policy.retention,
                   "cl:transfers": self.policy.transfers,
                   "cl:policyWarnings": self.policy.warnings}),
        ]
    }

    /// The privacy-model evidence, about every output.
    fn privacy_node(&self, run: &str, output_id: &dyn Fn(usize) -> String) -> Option<Value> {
        let Some(Value::Object(p)) = &self.privacy else {
            return None;
        };
        let mut node = p.clone();
        node.insert("@id".into(), json!(format!("{run}:privacy")));
        node.insert(
            "@type".into(),
            json!(["prov:Entity", "cl:PrivacyModelEvidence"]),
        );
        node.insert("wasGeneratedBy".into(), json!(run));
        node.insert(
            "cl:about".into(),
            json!((0..self.outputs.len()).map(output_id).collect::<Vec<_>>()),
        );
        Some(Value::Object(node))
    }

    fn field_node(
        &self,
        f: &FieldRecord,
        run: &str,
        controller: &str,
        id: &str,
        source: &str,
    ) -> Value {
        let r = &f.rule;
        let mut types = vec!["prov:Entity"];
        match (&r.action, r.category.is_some()) {
            (Action::Tokenize(_), _) => types.push("dpv:PseudonymisedData"),
            (Action::Redact { .. }, _) => {}
            (_, true) => types.push("dpv:PersonalData"),
            _ => {}
        }
        let mut legal_terms = Vec::new();
        let mut bases = Vec::new();
        for (j, b) in &r.bases {
            if let Some(reference) = b.reference(*j) {
                legal_terms.push(reference.dpv);
                legal_terms.push(reference.legal_term);
                bases.push(json!({"jurisdiction": j.to_string(), "law": j.law(), "basis": b.keyword(),
                                  "article": reference.article, "dpv": reference.dpv, "term": reference.legal_term}));
            }
        }
        legal_terms.sort();
        legal_terms.dedup();
        // A quasi-identifier the privacy block generalized is recorded as generalized.
        let qi_generalized = matches!(f.quasi_identifier, Some((l, _, _)) if l > 0);
        let effective = if qi_generalized && !matches!(r.action, Action::Generalize(_)) {
            Action::Generalize(crate::policy::GeneralizeSpec::Prefix { keep_prefix: 0 })
        } else {
            r.action.clone()
        };
        let status = status_of(&effective, r.category.is_some());
        let mut m = Map::new();
        m.insert("@id".into(), json!(id));
        m.insert("@type".into(), json!(types));
        m.insert("cl:column".into(), json!(r.output_name));
        m.insert("cl:sourceColumn".into(), json!(r.input_name));
        m.insert("cl:dataType".into(), json!(f.output_type));
        m.insert("wasDerivedFrom".into(), json!([source]));
        m.insert("wasGeneratedBy".into(), json!(run));
        m.insert("cl:action".into(), json!(effective.kind().keyword()));
        m.insert("cl:params".into(), action_params(&r.action));
        if let Some((level, max, source)) = &f.quasi_identifier {
            m.insert(
                "cl:quasiIdentifier".into(),
                json!({"hierarchy": source, "level": level, "maxLevel": max,
                       "note": "generalized to this hierarchy level by the privacy block; level 0 is the field rule's output"}),
            );
        }
        if let Some(k) = r.action.key_id() {
            m.insert("cl:keyId".into(), json!(k));
            m.insert("cl:keyFingerprint".into(), json!(f.key_fingerprint));
        }
        m.insert("cl:status".into(), json!(status));
        m.insert("cl:statusNote".into(), json!(status_note(&effective)));
        m.insert("cl:lawfulBasis".into(), json!(bases));
        m.insert("cl:category".into(), json!(r.category));
        m.insert("cl:sensitive".into(), json!(r.sensitive));
        if let Some(sc) = r.special_category {
            m.insert("cl:specialCategory".into(), json!(sc));
        }
        if let Some(c) = r.art9_condition {
            let (article, term) = c.reference();
            m.insert(
                "cl:art9Condition".into(),
                json!({"condition": c, "article": article, "term": term}),
            );
            legal_terms.push(term);
        }
        if r.separate_consent {
            m.insert("cl:separateConsent".into(), json!(true));
        }
        if let Some(c) = &r.consent_ref {
            m.insert("cl:consentRef".into(), json!(c));
        }
        if let Some(n) = &r.note {
            m.insert("cl:note".into(), json!(n));
        }
        m.insert(
            "cl:counts".into(),
            json!({"valuesTransformed": f.counts.transformed, "nulls": f.counts.nulls}),
        );
        if matches!(r.action, Action::Scrub(_)) {
            let by: Map<String, Value> = f
                .entities
                .iter()
                .map(|(n, c)| (n.clone(), json!(c)))
                .collect();
            m.insert("cl:entitiesReplaced".into(), Value::Object(by));
        }
        // On the field itself too, so RDF consumers find it without walking the process.
        m.insert("hasLegalBasis".into(), json!(legal_terms));
        m.insert(
            "hasProcess".into(),
            json!({
                "@type": "dpv:Process",
                "cl:purpose": self.policy.purpose,
                "hasLegalBasis": legal_terms,
                "hasPersonalData": r.category_term.iter().collect::<Vec<_>>(),
                "hasTechnicalMeasure": technical_measures(&effective),
                "hasDataController": controller,
                "hasJurisdiction": r.bases.keys().map(|j| j.dpv_location()).collect::<Vec<_>>(),
            }),
        );
        Value::Object(m)
    }
}

fn dataset_node(
    id: &str,
    d: &DatasetRecord,
    checksums: bool,
    generated_by: Option<&str>,
    members: &[String],
) -> Value {
    let mut m = Map::new();
    m.insert("@id".into(), json!(id));
    m.insert("@type".into(), json!(["prov:Entity", "cl:Dataset"]));
    m.insert("cl:path".into(), json!(d.path));
    m.insert("cl:format".into(), json!(d.format));
    m.insert("cl:rows".into(), json!(d.rows));
    if checksums {
        m.insert("cl:sha256".into(), json!(d.sha256));
        m.insert("cl:bytes".into(), json!(d.bytes));
    }
    m.insert(
        "cl:schema".into(),
        json!(
            d.schema
                .iter()
                .map(|(n, t)| json!({"name": n, "type": t}))
                .collect::<Vec<_>>()
        ),
    );
    if let Some(run) = generated_by {
        m.insert("wasGeneratedBy".into(), json!(run));
    }
    m.insert("hadMember".into(), json!(members));
    Value::Object(m)
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
