//! Turns a cloakline provenance record (JSON-LD) into an OpenLineage `RunEvent`.
//!
//! Targets the schemas vendored in `tests/openlineage/spec/` (core 2-0-2, facets 1-2-0). Never panics:
//! missing or malformed input yields a best-effort event from [`run_event`] and a
//! list of problems from [`try_run_event`].

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::kernels::descriptor::transform;

pub const PRODUCER: &str = "https://github.com/cloakline/cloakline/tree/v0.1.0";
pub const FACET_SCHEMA_URL: &str = "https://raw.githubusercontent.com/cloakline/cloakline/v0.1.0/docs/openlineage/CloaklineLawfulBasisDatasetFacet.json";

/// `$id` of the vendored `spec/OpenLineage.json` + the RunEvent pointer.
pub const RUN_EVENT_SCHEMA_URL: &str =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// `$id` of the vendored `spec/facets/SchemaDatasetFacet.json` + pointer.
pub const SCHEMA_FACET_SCHEMA_URL: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
/// `$id` of the vendored `spec/facets/ColumnLineageDatasetFacet.json` + pointer.
pub const COLUMN_LINEAGE_FACET_SCHEMA_URL: &str = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
/// [`FACET_SCHEMA_URL`] + pointer (spelled out: consts cannot be concatenated).
pub const LAWFUL_BASIS_FACET_SCHEMA_URL: &str = "https://raw.githubusercontent.com/cloakline/cloakline/v0.1.0/docs/openlineage/CloaklineLawfulBasisDatasetFacet.json#/$defs/CloaklineLawfulBasisDatasetFacet";
/// Custom facets need a `{prefix}_{name}` key (spec/OpenLineage.md, "Custom Facet Naming").
pub const LAWFUL_BASIS_FACET_KEY: &str = "cloakline_lawfulBasis";

const RUN_ID_PREFIX: &str = "urn:cloakline:run:";

/// Builds a `COMPLETE` RunEvent. `namespace` is used for the job and every dataset.
pub fn run_event(doc: &Value, namespace: &str, job_name: &str) -> Value {
    build(doc, namespace, job_name).0
}

/// Like [`run_event`], but returns the problems found instead of an event that
/// would be invalid or would guess (no run UUID, unknown action, ...).
pub fn try_run_event(doc: &Value, namespace: &str, job_name: &str) -> Result<Value, Vec<String>> {
    let (event, problems) = build(doc, namespace, job_name);
    if problems.is_empty() {
        Ok(event)
    } else {
        Err(problems)
    }
}

fn build(doc: &Value, namespace: &str, job_name: &str) -> (Value, Vec<String>) {
    let mut problems = Vec::new();
    let nodes: &[Value] = doc
        .get("@graph")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if nodes.is_empty() {
        problems.push("no @graph nodes".to_string());
    }
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    for n in nodes {
        if let Some(id) = str_at(n, "@id") {
            by_id.entry(id).or_insert(n);
        }
    }
    let (run_iri, run_id, event_time) = run_facts(doc, nodes, &mut problems);

    let datasets: Vec<&Value> = nodes.iter().filter(|n| has_type(n, "cl:Dataset")).collect();
    let (outputs, inputs): (Vec<&Value>, Vec<&Value>) = datasets
        .iter()
        .partition(|d| str_at(d, "wasGeneratedBy").is_some_and(|g| run_iri.is_none_or(|r| r == g)));
    if outputs.is_empty() {
        problems.push("no output dataset (cl:Dataset with wasGeneratedBy the run)".into());
    }
    for d in &datasets {
        if str_at(d, "cl:path").is_none() {
            problems.push(format!("dataset {:?} has no cl:path", str_at(d, "@id")));
        }
    }

    // Input-field IRI -> name of the input dataset listing it.
    let mut field_owner: HashMap<&str, &str> = HashMap::new();
    for d in &inputs {
        for m in id_list(d.get("hadMember")) {
            field_owner.entry(m).or_insert(dataset_name(d));
        }
    }
    let graph = Graph {
        nodes,
        by_id,
        field_owner,
        inputs,
        namespace,
    };
    let input_values: Vec<Value> = graph
        .inputs
        .iter()
        .map(|d| dataset(namespace, d, Map::new()))
        .collect();
    let output_values: Vec<Value> = outputs
        .iter()
        .map(|out| graph.output_dataset(out, outputs.len(), &mut problems))
        .collect();

    let event = json!({
        "eventType": "COMPLETE",
        "eventTime": event_time,
        "run": { "runId": run_id },
        "job": { "namespace": namespace, "name": job_name },
        "inputs": input_values,
        "outputs": output_values,
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA_URL,
    });
    (event, problems)
}

/// The run's IRI, UUID and end time. The record names its run; else the only/first activity.
fn run_facts<'a>(
    doc: &'a Value,
    nodes: &'a [Value],
    problems: &mut Vec<String>,
) -> (Option<&'a str>, String, &'a str) {
    let activities: Vec<&Value> = nodes
        .iter()
        .filter(|n| has_type(n, "prov:Activity"))
        .collect();
    let run = str_at(doc, "wasGeneratedBy")
        .and_then(|id| {
            activities
                .iter()
                .copied()
                .find(|a| str_at(a, "@id") == Some(id))
        })
        .or_else(|| activities.first().copied());
    let run_iri = run.and_then(|r| str_at(r, "@id"));
    let run_id = match run_iri.and_then(uuid_from_run_iri) {
        Some(u) => u,
        None => {
            problems.push(format!(
                "no run UUID: run activity @id is {run_iri:?}, expected {RUN_ID_PREFIX}<uuid>"
            ));
            String::new()
        }
    };
    let event_time = match run
        .and_then(|r| str_at(r, "endedAtTime"))
        .or_else(|| str_at(doc, "generatedAtTime"))
    {
        Some(t) => t,
        None => {
            problems.push("no endedAtTime on the run (nor generatedAtTime on the record)".into());
            ""
        }
    };
    (run_iri, run_id, event_time)
}

/// The record's nodes, indexed for building the event.
struct Graph<'a> {
    nodes: &'a [Value],
    by_id: HashMap<&'a str, &'a Value>,
    /// Input-field IRI -> name of the input dataset listing it.
    field_owner: HashMap<&'a str, &'a str>,
    inputs: Vec<&'a Value>,
    namespace: &'a str,
}

impl<'a> Graph<'a> {
    /// One output dataset with its column-lineage and lawful-basis facets.
    fn output_dataset(&self, out: &'a Value, outputs: usize, problems: &mut Vec<String>) -> Value {
        let fields: Vec<&Value> = if out.get("hadMember").is_some() {
            id_list(out.get("hadMember"))
                .iter()
                .filter_map(|id| self.by_id.get(id).copied())
                .filter(|n| n.get("cl:column").is_some())
                .collect()
        } else if outputs == 1 {
            self.nodes
                .iter()
                .filter(|n| n.get("cl:sourceColumn").is_some())
                .collect()
        } else {
            Vec::new()
        };
        let fallback_input = id_list(out.get("wasDerivedFrom"))
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .find(|n| has_type(n, "cl:Dataset"))
            .map(|n| dataset_name(n))
            .or_else(|| match self.inputs.as_slice() {
                [only] => Some(dataset_name(only)),
                _ => None,
            });
        let mut lineage = Map::new();
        let mut lawful = Map::new();
        for f in fields {
            let Some(column) = str_at(f, "cl:column") else {
                problems.push(format!(
                    "output field {:?} has no cl:column",
                    str_at(f, "@id")
                ));
                continue;
            };
            let (inputs, basis) = self.field_entries(f, column, fallback_input, problems);
            lineage.insert(column.to_string(), json!({ "inputFields": inputs }));
            lawful.insert(column.to_string(), basis);
        }
        let mut facets = Map::new();
        facets.insert(
            "columnLineage".into(),
            facet(
                COLUMN_LINEAGE_FACET_SCHEMA_URL,
                "fields",
                Value::Object(lineage),
            ),
        );
        facets.insert(
            LAWFUL_BASIS_FACET_KEY.into(),
            facet(
                LAWFUL_BASIS_FACET_SCHEMA_URL,
                "fields",
                Value::Object(lawful),
            ),
        );
        dataset(self.namespace, out, facets)
    }

    /// A field's input fields (with the transformation) and its lawful-basis entry.
    fn field_entries(
        &self,
        f: &Value,
        column: &str,
        fallback_input: Option<&str>,
        problems: &mut Vec<String>,
    ) -> (Vec<Value>, Value) {
        let derived = id_list(f.get("wasDerivedFrom"));
        let input_name = derived
            .iter()
            .find_map(|id| self.field_owner.get(id).copied())
            .or(fallback_input);
        let source = str_at(f, "cl:sourceColumn").or_else(|| {
            derived
                .iter()
                .find_map(|id| self.by_id.get(id).and_then(|n| str_at(n, "cl:column")))
        });
        let action = str_at(f, "cl:action");
        let status = str_at(f, "cl:status");
        if action.is_none() {
            problems.push(format!("field {column}: no cl:action"));
        } else if let Some(a) = action.filter(|a| transform(a).is_none_or(|t| t.name == "drop")) {
            problems.push(format!(
                "field {column}: unknown action {a:?}, masking left unset"
            ));
        }
        let mut input_fields = Vec::new();
        match (input_name, source) {
            (Some(name), Some(src)) => input_fields.push(json!({
                "namespace": self.namespace,
                "name": name,
                "field": src,
                "transformations": [transformation(action, status, qi_generalized(f))],
            })),
            _ => problems.push(format!(
                "field {column}: input dataset or source column unknown"
            )),
        }
        let basis = lawful_entry(f, column, action, status, problems);
        (input_fields, basis)
    }
}

/// Dataset entry; the schema facet (when `cl:schema` exists) goes first.
fn dataset(namespace: &str, d: &Value, extra: Map<String, Value>) -> Value {
    let mut facets = Map::new();
    if let Some(cols) = d.get("cl:schema").and_then(Value::as_array) {
        let fields: Vec<Value> = cols
            .iter()
            .filter_map(|c| {
                let mut f = Map::new();
                f.insert("name".into(), str_at(c, "name")?.into());
                if let Some(t) = str_at(c, "type") {
                    f.insert("type".into(), t.into());
                }
                Some(Value::Object(f))
            })
            .collect();
        facets.insert(
            "schema".into(),
            facet(SCHEMA_FACET_SCHEMA_URL, "fields", Value::Array(fields)),
        );
    }
    facets.extend(extra);
    let mut out = Map::new();
    out.insert("namespace".into(), namespace.into());
    out.insert("name".into(), dataset_name(d).into());
    if !facets.is_empty() {
        out.insert("facets".into(), Value::Object(facets));
    }
    Value::Object(out)
}

fn facet(schema_url: &str, key: &str, value: Value) -> Value {
    let mut f = Map::new();
    f.insert("_producer".into(), PRODUCER.into());
    f.insert("_schemaURL".into(), schema_url.into());
    f.insert(key.into(), value);
    Value::Object(f)
}

fn transformation(action: Option<&str>, status: Option<&str>, qi_generalized: bool) -> Value {
    let name = action.unwrap_or("unknown");
    let mut description = match status {
        Some(s) => format!("{name}: {s}"),
        None => name.to_string(),
    };
    // None = we do not know whether values are obfuscated, so do not claim either way.
    let (subtype, masking) = match action {
        Some("keep") if qi_generalized => {
            // The privacy model coarsened this kept column after the field rule ran.
            description.push_str(" (generalized by the privacy model)");
            ("TRANSFORMATION", Some(true))
        }
        Some(a) => match transform(a).filter(|t| t.name != "drop") {
            Some(t) => (t.lineage_subtype, Some(t.obfuscating)),
            None => ("TRANSFORMATION", None),
        },
        None => ("TRANSFORMATION", None),
    };
    let mut t = Map::new();
    t.insert("type".into(), "DIRECT".into());
    t.insert("subtype".into(), subtype.into());
    t.insert("description".into(), description.into());
    if let Some(m) = masking {
        t.insert("masking".into(), m.into());
    }
    Value::Object(t)
}

/// Allow-list copy: key ids are fine, fingerprints/params/terms are not exported.
fn lawful_entry(
    f: &Value,
    column: &str,
    action: Option<&str>,
    status: Option<&str>,
    problems: &mut Vec<String>,
) -> Value {
    let mut e = Map::new();
    if let Some(a) = action {
        e.insert("action".into(), a.into());
    }
    if let Some(s) = status {
        e.insert("status".into(), s.into());
    }
    e.insert(
        "category".into(),
        str_at(f, "cl:category").map_or(Value::Null, Value::from),
    );
    if let Some(s) = f.get("cl:sensitive").and_then(Value::as_bool) {
        e.insert("sensitive".into(), s.into());
    }
    if let Some(k) = str_at(f, "cl:keyId") {
        e.insert("keyId".into(), k.into());
    }
    let bases: Vec<Value> = f
        .get("cl:lawfulBasis")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            // An entry without who/which law/which basis says nothing; report, don't emit.
            if ["jurisdiction", "law", "basis"]
                .iter()
                .any(|k| str_at(b, k).is_none())
            {
                problems.push(format!("field {column}: lawfulBasis[{i}] incomplete"));
                return None;
            }
            let mut m = Map::new();
            for k in ["jurisdiction", "law", "basis", "article", "dpv"] {
                if let Some(v) = str_at(b, k) {
                    m.insert(k.into(), v.into());
                }
            }
            Some(Value::Object(m))
        })
        .collect();
    e.insert("lawfulBasis".into(), Value::Array(bases));
    Value::Object(e)
}

fn qi_generalized(f: &Value) -> bool {
    f.get("cl:quasiIdentifier")
        .and_then(|q| q.get("level"))
        .and_then(Value::as_f64)
        .is_some_and(|l| l > 0.0)
}

fn dataset_name(d: &Value) -> &str {
    str_at(d, "cl:path")
        .or_else(|| str_at(d, "@id"))
        .unwrap_or("")
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn has_type(n: &Value, t: &str) -> bool {
    match n.get("@type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(t)),
        _ => false,
    }
}

/// JSON-LD references: a string, `{"@id": ..}`, or an array of those.
fn id_list(v: Option<&Value>) -> Vec<&str> {
    fn one(v: &Value) -> Option<&str> {
        v.as_str().or_else(|| str_at(v, "@id"))
    }
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(x) => one(x).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Canonical lowercase UUID from `urn:cloakline:run:<uuid>`; anything else is rejected.
fn uuid_from_run_iri(iri: &str) -> Option<String> {
    let u = iri.strip_prefix(RUN_ID_PREFIX)?;
    let ok = u.len() == 36
        && u.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| u.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "urn:cloakline:run:3DBC55BA-0c47-4da4-9ddb-f1042c621dcd";

    fn doc() -> Value {
        json!({
            "@id": format!("{RUN}:record"),
            "wasGeneratedBy": RUN,
            "generatedAtTime": "2026-11-23T06:38:15.999Z",
            "@graph": [
                { "@id": "urn:cloakline:other", "@type": ["prov:Agent"] },
                { "@id": RUN, "@type": "prov:Activity",
                  "startedAtTime": "2026-11-23T06:38:15.750Z",
                  "endedAtTime": "2026-11-23T06:38:15.758Z" },
                { "@id": format!("{RUN}:input:0"), "@type": ["prov:Entity", "cl:Dataset"],
                  "cl:path": "in/customers.csv", "cl:format": "csv", "cl:rows": 2,
                  "cl:sha256": "00", "cl:schema": [
                      {"name": "id", "type": "Int64"}, {"name": "city", "type": "Utf8"},
                      {"name": "age", "type": "Int64"}, {"name": "x", "type": "Utf8"}],
                  "hadMember": [format!("{RUN}:input-field:id"), format!("{RUN}:input-field:city"),
                                format!("{RUN}:input-field:age"), format!("{RUN}:input-field:x")] },
                { "@id": format!("{RUN}:output:0"), "@type": ["prov:Entity", "cl:Dataset"],
                  "cl:path": "/out/customers.parquet", "cl:format": "parquet", "cl:rows": 2,
                  "cl:schema": [{"name": "id", "type": "Utf8"}, {"name": "city", "type": "Utf8"},
                                {"name": "age_band", "type": "Utf8"}, {"name": "x", "type": "Utf8"}],
                  "wasGeneratedBy": RUN,
                  "hadMember": [format!("{RUN}:output-field:id"), format!("{RUN}:output-field:city"),
                                format!("{RUN}:output-field:age_band"), format!("{RUN}:output-field:x")],
                  "wasDerivedFrom": [format!("{RUN}:input:0")] },
                { "@id": format!("{RUN}:input-field:id"), "@type": "prov:Entity", "cl:column": "id" },
                { "@id": format!("{RUN}:output-field:id"), "@type": ["prov:Entity"],
                  "cl:column": "id", "cl:sourceColumn": "id",
                  "wasDerivedFrom": [format!("{RUN}:input-field:id")], "wasGeneratedBy": RUN,
                  "cl:action": "tokenize",
                  "cl:params": {"algorithm": "HMAC-SHA256", "kdf_info": "cloakline/v1/tokenize/id"},
                  "cl:keyId": "k1", "cl:keyFingerprint": "beaf4c510f29e410",
                  "cl:secret": "decoy-must-not-leak",
                  "cl:status": "pseudonymised personal data",
                  "cl:lawfulBasis": [{"jurisdiction": "EU", "law": "GDPR", "basis": "contract",
                      "article": "GDPR Art. 6(1)(b)", "dpv": "dpv:Contract", "term": "eu-gdpr:A6-1-b"}],
                  "cl:category": "identifier", "cl:sensitive": false },
                { "@id": format!("{RUN}:input-field:city"), "@type": "prov:Entity", "cl:column": "city" },
                { "@id": format!("{RUN}:output-field:city"), "@type": ["prov:Entity"],
                  "cl:column": "city", "cl:sourceColumn": "city",
                  "wasDerivedFrom": [format!("{RUN}:input-field:city")], "wasGeneratedBy": RUN,
                  "cl:action": "keep", "cl:status": "unchanged personal data",
                  "cl:quasiIdentifier": {"level": 0, "maxLevel": 2},
                  "cl:lawfulBasis": [], "cl:category": null, "cl:sensitive": false },
                { "@id": format!("{RUN}:input-field:age"), "@type": "prov:Entity", "cl:column": "age" },
                { "@id": format!("{RUN}:output-field:age_band"), "@type": ["prov:Entity"],
                  "cl:column": "age_band", "cl:sourceColumn": "age",
                  "wasDerivedFrom": [format!("{RUN}:input-field:age")], "wasGeneratedBy": RUN,
                  "cl:action": "keep", "cl:status": "unchanged personal data",
                  "cl:quasiIdentifier": {"level": 2, "maxLevel": 2},
                  "cl:lawfulBasis": [], "cl:category": "age", "cl:sensitive": false },
                { "@id": format!("{RUN}:input-field:x"), "@type": "prov:Entity", "cl:column": "x" },
                { "@id": format!("{RUN}:output-field:x"), "@type": ["prov:Entity"],
                  "cl:column": "x", "cl:sourceColumn": "x",
                  "wasDerivedFrom": [format!("{RUN}:input-field:x")], "wasGeneratedBy": RUN,
                  "cl:action": "scrub", "cl:status": "scrubbed free text",
                  "cl:lawfulBasis": [{"jurisdiction": "CN", "law": "PIPL", "basis": "consent"}],
                  "cl:sensitive": true }
            ]
        })
    }

    fn first_transformation(event: &Value, column: &str) -> Value {
        event["outputs"][0]["facets"]["columnLineage"]["fields"][column]["inputFields"][0]
            ["transformations"][0]
            .clone()
    }

    #[test]
    fn builds_valid_core_fields() {
        let e = try_run_event(&doc(), "file", "cloakline.customers").expect("no problems");
        assert_eq!(e["eventType"], "COMPLETE");
        assert_eq!(e["eventTime"], "2026-11-23T06:38:15.758Z");
        assert_eq!(e["run"]["runId"], "3dbc55ba-0c47-4da4-9ddb-f1042c621dcd");
        assert_eq!(
            e["job"],
            json!({"namespace": "file", "name": "cloakline.customers"})
        );
        assert_eq!(e["inputs"][0]["name"], "in/customers.csv");
        assert_eq!(e["inputs"][0]["namespace"], "file");
        assert_eq!(e["outputs"][0]["name"], "/out/customers.parquet");
        assert_eq!(e["producer"], PRODUCER);
        assert_eq!(e["schemaURL"], RUN_EVENT_SCHEMA_URL);
        assert_eq!(
            e["outputs"][0]["facets"]["schema"]["fields"][2],
            json!({"name": "age_band", "type": "Utf8"})
        );
    }

    #[test]
    fn column_lineage_identity_and_masking() {
        let e = run_event(&doc(), "file", "job");
        let input = &e["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0];
        assert_eq!(input["namespace"], "file");
        assert_eq!(input["name"], "in/customers.csv");
        assert_eq!(input["field"], "id");
        assert_eq!(
            first_transformation(&e, "id"),
            json!({"type": "DIRECT", "subtype": "TRANSFORMATION",
                   "description": "tokenize: pseudonymised personal data", "masking": true})
        );
        assert_eq!(
            first_transformation(&e, "city"),
            json!({"type": "DIRECT", "subtype": "IDENTITY",
                   "description": "keep: unchanged personal data", "masking": false})
        );
        let qi = first_transformation(&e, "age_band");
        assert_eq!(qi["subtype"], "TRANSFORMATION");
        assert_eq!(qi["masking"], true);
        assert_eq!(
            e["outputs"][0]["facets"]["columnLineage"]["fields"]["age_band"]["inputFields"][0]["field"],
            "age"
        );
        assert_eq!(first_transformation(&e, "x")["masking"], true);
    }

    #[test]
    fn lawful_basis_facet() {
        let e = run_event(&doc(), "file", "job");
        let f = &e["outputs"][0]["facets"][LAWFUL_BASIS_FACET_KEY]["fields"];
        assert_eq!(
            f["id"],
            json!({"action": "tokenize", "status": "pseudonymised personal data",
                   "category": "identifier", "sensitive": false, "keyId": "k1",
                   "lawfulBasis": [{"jurisdiction": "EU", "law": "GDPR", "basis": "contract",
                                    "article": "GDPR Art. 6(1)(b)", "dpv": "dpv:Contract"}]})
        );
        assert_eq!(f["city"]["category"], Value::Null);
        assert!(f["city"].get("keyId").is_none());
        assert_eq!(
            f["x"]["lawfulBasis"][0],
            json!({"jurisdiction": "CN", "law": "PIPL", "basis": "consent"})
        );
    }

    fn all_facets(e: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let mut push = |holder: &Value| {
            for k in ["facets", "inputFacets", "outputFacets"] {
                if let Some(m) = holder.get(k).and_then(Value::as_object) {
                    out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        };
        push(&e["run"]);
        push(&e["job"]);
        for side in ["inputs", "outputs"] {
            for d in e[side].as_array().expect("array") {
                push(d);
            }
        }
        out
    }

    #[test]
    fn every_facet_has_producer_and_schema_url() {
        let e = run_event(&doc(), "file", "job");
        let facets = all_facets(&e);
        assert_eq!(
            facets.len(),
            4,
            "input schema + output schema/columnLineage/lawfulBasis"
        );
        for (name, f) in facets {
            assert_eq!(f["_producer"], PRODUCER, "{name}");
            let url = f["_schemaURL"].as_str().expect("_schemaURL");
            let expected = match name.as_str() {
                "schema" => SCHEMA_FACET_SCHEMA_URL,
                "columnLineage" => COLUMN_LINEAGE_FACET_SCHEMA_URL,
                LAWFUL_BASIS_FACET_KEY => LAWFUL_BASIS_FACET_SCHEMA_URL,
                other => panic!("unexpected facet {other}"),
            };
            assert_eq!(url, expected);
        }
    }

    #[test]
    fn no_key_material_or_params_leak() {
        fn walk(v: &Value, path: &str) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        let lk = k.to_ascii_lowercase();
                        assert!(
                            ![
                                "secret",
                                "fingerprint",
                                "params",
                                "kdf",
                                "password",
                                "token_map"
                            ]
                            .iter()
                            .any(|bad| lk.contains(bad)),
                            "key {path}.{k}"
                        );
                        walk(x, &format!("{path}.{k}"));
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, path)),
                Value::String(s) => {
                    assert!(
                        !s.contains("decoy") && !s.contains("beaf4c51") && !s.contains("kdf"),
                        "{path}: {s}"
                    )
                }
                _ => {}
            }
        }
        walk(&run_event(&doc(), "file", "job"), "$");
    }

    #[test]
    fn odd_input_never_panics_and_is_reported() {
        let odd = [
            Value::Null,
            json!([]),
            json!("x"),
            json!({"@graph": 5}),
            json!({"@graph": [null, 1, "s", [], {"@type": 7, "@id": []}]}),
            json!({"@graph": [{"@id": "urn:cloakline:run:not-a-uuid", "@type": "prov:Activity"}]}),
            json!({"@graph": [{"@id": "urn:cloakline:run:3dbc55ba-0c47-4da4-9ddb-f1042c621dcé", "@type": "prov:Activity"}]}),
            json!({"@graph": [
                {"@id": "urn:cloakline:run:3dbc55ba-0c47-4da4-9ddb-f1042c621dcd", "@type": "prov:Activity", "endedAtTime": 1},
                {"@type": "cl:Dataset", "wasGeneratedBy": "urn:cloakline:run:3dbc55ba-0c47-4da4-9ddb-f1042c621dcd",
                 "hadMember": {"@id": "f"}, "cl:schema": [1, {"name": 2}, {"name": "a", "type": []}]},
                {"@id": "in", "@type": ["cl:Dataset"], "cl:path": "i", "hadMember": "fi"},
                {"@id": "fi", "cl:column": "a"},
                {"@id": "f", "cl:column": "a", "cl:action": "hash", "cl:lawfulBasis": [1, {"law": 2}],
                 "wasDerivedFrom": "fi",
                 "cl:quasiIdentifier": {"level": "high"}}
            ]}),
        ];
        for d in &odd {
            let e = run_event(d, "", "");
            assert_eq!(e["eventType"], "COMPLETE");
            assert!(try_run_event(d, "ns", "job").is_err(), "{d}");
        }
        let e = run_event(&odd[7], "ns", "job");
        let t = first_transformation(&e, "a");
        assert_eq!(t["subtype"], "TRANSFORMATION");
        assert_eq!(t["description"], "hash");
        assert!(
            t.get("masking").is_none(),
            "unknown action must not claim masking either way"
        );
        assert_eq!(
            e["outputs"][0]["facets"][LAWFUL_BASIS_FACET_KEY]["fields"]["a"]["lawfulBasis"],
            json!([])
        );
        assert_eq!(
            e["outputs"][0]["facets"]["schema"]["fields"],
            json!([{"name": "a"}])
        );
    }

    #[test]
    fn uuid_parsing() {
        assert_eq!(
            uuid_from_run_iri("urn:cloakline:run:3DBC55BA-0c47-4da4-9ddb-f1042c621dcd").as_deref(),
            Some("3dbc55ba-0c47-4da4-9ddb-f1042c621dcd")
        );
        for bad in [
            "urn:cloakline:run:3dbc55ba-0c47-4da4-9ddb-f1042c621dcd:record",
            "urn:cloakline:run:3dbc55ba0c474da49ddbf1042c621dcd",
            "urn:cloakline:run:3dbc55ba-0c47-4da4-9ddb-f1042c621dcg",
            "3dbc55ba-0c47-4da4-9ddb-f1042c621dcd",
            "urn:cloakline:run:",
        ] {
            assert_eq!(uuid_from_run_iri(bad), None, "{bad}");
        }
    }

    /// The consts must match the vendored files, or the validator and the event disagree.
    #[test]
    fn schema_urls_match_vendored_files() {
        let id = |text: &str| -> String {
            let v: Value = serde_json::from_str(text).expect("json");
            v["$id"].as_str().expect("$id").to_string()
        };
        let core = include_str!("../../tests/openlineage/spec/OpenLineage.json");
        let cl = include_str!("../../tests/openlineage/spec/facets/ColumnLineageDatasetFacet.json");
        let schema = include_str!("../../tests/openlineage/spec/facets/SchemaDatasetFacet.json");
        let custom = include_str!("../../docs/openlineage/CloaklineLawfulBasisDatasetFacet.json");
        assert_eq!(
            format!("{}#/$defs/RunEvent", id(core)),
            RUN_EVENT_SCHEMA_URL
        );
        assert_eq!(
            format!("{}#/$defs/ColumnLineageDatasetFacet", id(cl)),
            COLUMN_LINEAGE_FACET_SCHEMA_URL
        );
        assert_eq!(
            format!("{}#/$defs/SchemaDatasetFacet", id(schema)),
            SCHEMA_FACET_SCHEMA_URL
        );
        assert_eq!(id(custom), FACET_SCHEMA_URL);
        assert_eq!(
            format!("{FACET_SCHEMA_URL}#/$defs/CloaklineLawfulBasisDatasetFacet"),
            LAWFUL_BASIS_FACET_SCHEMA_URL
        );
        // The transformation fields we emit exist in the vendored InputField shape.
        let v: Value = serde_json::from_str(cl).expect("json");
        let props =
            &v["$defs"]["InputField"]["properties"]["transformations"]["items"]["properties"];
        for k in ["type", "subtype", "description", "masking"] {
            assert!(props.get(k).is_some(), "{k}");
        }
    }
}
