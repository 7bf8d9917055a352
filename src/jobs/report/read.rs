//! Reading the record: loading it from disk and the report's view of its typed nodes (run,
//! policy, fields and their lawful bases).

use serde_json::{Map, Value};

use crate::policy::rules::Transfer;
use crate::provenance::record::{
    BasisRecord, DatasetNode, InputFieldNode, OutputFieldNode, PolicyNode, PrivacyNode, Record,
    RunNode,
};

use super::format::{category_term, clip, group_u, human, jurisdiction_code, num};

pub(super) struct Doc<'a> {
    pub(super) record: &'a Record,
    pub(super) run: Option<&'a RunNode>,
    pub(super) policy: Option<&'a PolicyNode>,
    pub(super) privacy: Option<&'a PrivacyNode>,
    pub(super) datasets: Vec<&'a DatasetNode>,
    pub(super) fields: Vec<Field<'a>>,
    pub(super) dropped: Vec<&'a InputFieldNode>,
    pub(super) jurisdictions: Vec<String>,
}

pub(super) struct Basis {
    jurisdiction: String,
    pub(super) law: String,
    basis: String,
    pub(super) article: Option<String>,
}

impl Basis {
    fn of(b: &BasisRecord) -> Self {
        Basis {
            jurisdiction: non_empty(&b.jurisdiction).unwrap_or_default(),
            law: non_empty(&b.law).unwrap_or_default(),
            basis: non_empty(&b.basis).unwrap_or_default(),
            article: non_empty(&b.article),
        }
    }
    pub(super) fn is_cn(&self) -> bool {
        self.jurisdiction == "CN" || self.law == "PIPL"
    }
    fn is_eu(&self) -> bool {
        self.jurisdiction == "EU" || self.law == "GDPR"
    }
    /// PIPL first, then GDPR, then anything else, each group in document order.
    fn rank(&self) -> u8 {
        if self.is_cn() {
            0
        } else if self.is_eu() {
            1
        } else {
            2
        }
    }
    pub(super) fn text(&self) -> String {
        let head = match &self.article {
            Some(a) => a.clone(),
            None if !self.law.is_empty() => self.law.clone(),
            None => self.jurisdiction.clone(),
        };
        let basis = human(&self.basis);
        match (head.is_empty(), basis.is_empty()) {
            (true, true) => "—".into(),
            (true, false) => basis,
            (false, true) => head,
            (false, false) => format!("{head} {basis}"),
        }
    }
}

pub(super) struct Field<'a> {
    pub(super) node: &'a OutputFieldNode,
    pub(super) output: String,
    pub(super) source: String,
    pub(super) action: String,
    pub(super) status: Option<String>,
    pub(super) bases: Vec<Basis>,
    pub(super) category: Option<String>,
    pub(super) term: Option<String>,
    pub(super) sensitive: bool,
    pub(super) special: Option<String>,
    pub(super) art9_article: Option<String>,
    pub(super) art9_condition: Option<String>,
    pub(super) separate_consent: bool,
    pub(super) consent_ref: Option<String>,
    pub(super) cn: bool,
    pub(super) eu: bool,
}

impl<'a> Field<'a> {
    fn read(node: &'a OutputFieldNode, doc_cn: bool, doc_eu: bool) -> Self {
        let mut bases: Vec<Basis> = node.lawful_basis.iter().map(Basis::of).collect();
        bases.sort_by_key(Basis::rank);
        let category = some(&node.category);
        let term = category
            .as_deref()
            .and_then(category_term)
            .or_else(|| node.process.personal_data.iter().find_map(|t| non_empty(t)));
        let art9 = node.art9_condition.as_ref();
        // A field without a recorded basis falls under the record's jurisdictions.
        let (cn, eu) = if bases.is_empty() {
            (doc_cn, doc_eu)
        } else {
            (
                bases.iter().any(Basis::is_cn),
                bases.iter().any(Basis::is_eu),
            )
        };
        Field {
            node,
            output: non_empty(&node.column).unwrap_or_else(|| "—".into()),
            source: non_empty(&node.source_column).unwrap_or_else(|| "—".into()),
            action: non_empty(&node.action).unwrap_or_default(),
            status: non_empty(&node.status),
            bases,
            category,
            term,
            sensitive: node.sensitive,
            special: some(&node.special_category).map(|s| human(&s)),
            art9_article: art9.and_then(|a| non_empty(&a.article)),
            art9_condition: art9.and_then(|a| non_empty(&a.condition)),
            separate_consent: node.separate_consent,
            consent_ref: some(&node.consent_ref),
            cn,
            eu,
        }
    }

    pub(super) fn consent_bases(&self) -> Vec<&Basis> {
        self.bases.iter().filter(|b| b.basis == "consent").collect()
    }

    pub(super) fn cn_consent(&self) -> bool {
        self.bases.iter().any(|b| b.is_cn() && b.basis == "consent")
    }

    pub(super) fn status_text(&self) -> String {
        self.status
            .clone()
            .unwrap_or_else(|| "status not recorded".into())
    }

    pub(super) fn bases_text(&self) -> String {
        if self.bases.is_empty() {
            return "—".into();
        }
        let parts: Vec<String> = self.bases.iter().map(Basis::text).collect();
        parts.join("; ")
    }

    /// The "sensitive / special category" cell, or None for ordinary data.
    pub(super) fn sensitivity(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(sc) = &self.special {
            match (&self.art9_article, self.eu) {
                (Some(a), _) => parts.push(format!("special category: {sc} — {a}")),
                (None, true) => parts.push(format!(
                    "special category: {sc} — no GDPR Art. 9(2) condition recorded"
                )),
                (None, false) => parts.push(format!("special category: {sc}")),
            }
        }
        if self.sensitive || (self.special.is_some() && self.cn) {
            let head = if self.cn {
                "sensitive (PIPL Art. 28)"
            } else if self.special.is_none() {
                "sensitive"
            } else {
                ""
            };
            if !head.is_empty() {
                let tail = if self.separate_consent {
                    " — separate consent"
                } else if self.cn_consent() {
                    " — no separate consent recorded"
                } else {
                    ""
                };
                parts.push(format!("{head}{tail}"));
            }
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    pub(super) fn action_text(&self) -> String {
        let mut details = param_details(&self.action, &self.node.params);
        if let Some(q) = &self.node.quasi_identifier {
            details.push(format!(
                "quasi-identifier, level {} of {}",
                group_u(q.level as u64),
                group_u(q.max_level as u64)
            ));
        }
        let action = if self.action.is_empty() {
            "—"
        } else {
            self.action.as_str()
        };
        if details.is_empty() {
            action.to_string()
        } else {
            format!("{action} ({})", details.join("; "))
        }
    }

    /// Key id and fingerprint only: nothing else about keys is ever shown.
    pub(super) fn key_text(&self) -> Option<String> {
        let id = some(&self.node.key_id);
        let fp = some(&self.node.key_fingerprint).map(|f| clip(&f, 32));
        match (id, fp) {
            (Some(i), Some(f)) => Some(format!("{i} (fingerprint {f})")),
            (Some(i), None) => Some(i),
            (None, Some(f)) => Some(format!("fingerprint {f}")),
            (None, None) => None,
        }
    }

    pub(super) fn name(&self) -> String {
        if self.source == self.output || self.source == "—" {
            self.output.clone()
        } else {
            format!("{} → {}", self.source, self.output)
        }
    }
}

/// The parameters worth showing for an action; params are the record's camelCase map.
fn param_details(action: &str, p: &Map<String, Value>) -> Vec<String> {
    let param = |k: &str| p.get(k).and_then(scalar);
    let mut details = Vec::new();
    match action {
        "generalize" => match param("kind").as_deref() {
            Some("date") => {
                if let Some(to) = param("to") {
                    details.push(format!("date to {to}"));
                }
            }
            Some("prefix") => {
                if let Some(n) = param("keepPrefix") {
                    details.push(format!("keep first {n} characters"));
                }
            }
            Some("number") => {
                if let Some(w) = param("binWidth") {
                    details.push(format!("bins of {w}"));
                }
            }
            _ => {}
        },
        "mask" => {
            let shown: Vec<String> = [("first", param("keepFirst")), ("last", param("keepLast"))]
                .into_iter()
                .filter_map(|(end, n)| n.filter(|n| n != "0").map(|n| format!("{end} {n}")))
                .collect();
            if !shown.is_empty() {
                details.push(format!("show {}", shown.join(", ")));
            }
        }
        "tokenize" | "encrypt" | "encrypt_deterministic" | "fpe" => {
            if let Some(a) = param("algorithm") {
                details.push(a);
            }
        }
        "scrub" => {
            let n = strings(p.get("recognizers")).len();
            if n > 0 {
                details.push(format!("{n} recognizers"));
            }
        }
        _ => {}
    }
    details
}

impl<'a> Doc<'a> {
    pub(super) fn read(record: &'a Record) -> Self {
        let run = record.run();
        let from_run: Vec<&String> = run
            .map(|r| r.jurisdictions.iter().collect())
            .unwrap_or_default();
        let js = if from_run.iter().any(|j| non_empty(j).is_some()) {
            from_run
        } else {
            record.summary.jurisdictions.iter().collect()
        };
        let mut jurisdictions: Vec<String> = Vec::new();
        for j in js.into_iter().filter_map(|j| non_empty(j)) {
            let code = jurisdiction_code(&j);
            if !jurisdictions.contains(&code) {
                jurisdictions.push(code);
            }
        }
        let doc_cn = jurisdictions.iter().any(|j| j == "CN");
        let doc_eu = jurisdictions.iter().any(|j| j == "EU");
        Doc {
            record,
            run,
            policy: record.policy(),
            privacy: record.privacy(),
            datasets: record.datasets().collect(),
            fields: record
                .output_fields()
                .map(|n| Field::read(n, doc_cn, doc_eu))
                .collect(),
            dropped: record.dropped_fields().collect(),
            jurisdictions,
        }
    }

    pub(super) fn applies(&self, code: &str) -> bool {
        self.jurisdictions.iter().any(|j| j == code)
            || self.fields.iter().any(|f| {
                f.bases
                    .iter()
                    .any(|b| if code == "CN" { b.is_cn() } else { b.is_eu() })
            })
    }

    pub(super) fn controller(&self) -> Option<String> {
        self.record
            .controller()
            .and_then(|c| non_empty(&c.label))
            .or_else(|| some(&self.record.summary.controller))
    }

    pub(super) fn purpose(&self) -> Option<String> {
        self.run
            .and_then(|r| some(&r.purpose))
            .or_else(|| some(&self.record.summary.purpose))
    }

    pub(super) fn recipients(&self) -> Vec<String> {
        texts(self.run.map(|r| &r.recipients[..]))
    }

    pub(super) fn data_subjects(&self) -> Vec<String> {
        texts(self.run.map(|r| &r.data_subjects[..]))
    }

    pub(super) fn transfers(&self) -> &'a [Transfer] {
        self.run.map(|r| &r.transfers[..]).unwrap_or_default()
    }

    pub(super) fn policy_label(&self) -> Option<String> {
        let from_node = self.policy.map(|p| match non_empty(&p.name) {
            Some(n) => format!("{n} v{}", p.version),
            None => format!("v{}", p.version),
        });
        from_node.or_else(|| some(&self.record.summary.policy))
    }
}

// ---------------------------------------------------------------------------------------------
// Small value helpers

/// The text trimmed, or None when there is none.
pub(super) fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// An optional member as text (None when absent or blank).
pub(super) fn some(s: &Option<String>) -> Option<String> {
    s.as_deref().and_then(non_empty)
}

/// The non-blank entries of a list, trimmed.
pub(super) fn texts(v: Option<&[String]>) -> Vec<String> {
    v.unwrap_or_default()
        .iter()
        .filter_map(|s| non_empty(s))
        .collect()
}

/// A scalar as text: strings as they are, numbers formatted, booleans as yes/no.
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => non_empty(s),
        Value::Number(_) => num(v),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        _ => None,
    }
}

/// A string, or the scalars of an array, as text (action parameters are free-form JSON).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The serde name of a unit enum variant (`equal`, `standard_contract`).
pub(super) fn enum_text<T: serde::Serialize>(v: &T) -> Option<String> {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => non_empty(&s),
        _ => None,
    }
}

/// The provenance record for `path`: a `.json` document, an output's sidecar, or the copy in
/// a Parquet output's footer. Read strictly (no repeated member names) and typed; a
/// `cloakline-provenance/v1` record is upgraded.
pub fn load_record(path: &std::path::Path) -> crate::Result<Record> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("jsonld"));
    if is_json {
        return read_file(path);
    }
    let side = crate::provenance::sidecar_path(path);
    if side.exists() {
        return read_file(&side);
    }
    match crate::provenance::read::embedded(path) {
        Ok(Some(doc)) => typed(&doc, path),
        Ok(None) => Err(crate::Error::data(
            path.display(),
            format!(
                "no sidecar {} and no `{}` in the Parquet footer; give the record's .json \
                 path instead",
                side.display(),
                crate::provenance::PARQUET_KEY
            ),
        )),
        Err(e) => Err(crate::Error::data(
            path.display(),
            format!(
                "no sidecar {} and cannot read a Parquet footer: {e}; give the record's .json \
                 path instead",
                side.display()
            ),
        )),
    }
}

fn read_file(path: &std::path::Path) -> crate::Result<Record> {
    let text = crate::io::read_record_text(path)?;
    read_text(&text, path)
}

fn read_text(text: &str, path: &std::path::Path) -> crate::Result<Record> {
    let doc = crate::provenance::read::parse_strict(text).map_err(|e| {
        crate::Error::data(
            path.display(),
            format!("{e}; a provenance record is the JSON document cloakline wrote"),
        )
    })?;
    typed(&doc, path)
}

/// The largest record read from a store (a release of many thousand files stays far below).
const RECORD_LIMIT: u64 = crate::io::MAX_RECORD_BYTES;

/// [`load_record`] for a location. A URL names a record (`.json`), an output with a sidecar
/// `<URL>.provenance.json`, or one object of a release (the nearest enclosing prefix's
/// record covers it); the record is read whole, the data never.
pub async fn load_record_at(
    loc: &crate::io::Location,
    storage: &crate::io::store::StorageOptions,
) -> crate::Result<Record> {
    let url = match loc {
        crate::io::Location::Local(p) => return load_record(p),
        crate::io::Location::Url(u) => u,
    };
    let remote = crate::io::store::Remote::open(url, storage)?;
    let shown = remote.shown();
    let lower = shown.to_ascii_lowercase();
    let mut member = None;
    let record = match lower.ends_with(".json") || lower.ends_with(".jsonld") {
        true => remote,
        false => match remote.covering_record().await? {
            Some(c) => {
                member = c.enclosing.map(|(_, rel)| rel);
                c.sidecar
            }
            None => {
                return Err(crate::Error::Storage {
                    location: shown,
                    message: "no provenance record: neither its sidecar nor one of an \
                              enclosing prefix exists; give the record's .json URL"
                        .into(),
                });
            }
        },
    };
    let (bytes, _) = record.read_small(RECORD_LIMIT).await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        crate::Error::data(record.shown(), "not UTF-8 text; is it a provenance record?")
    })?;
    let found = read_text(&text, std::path::Path::new(&record.shown()))?;
    // An enclosing prefix's record speaks for the objects it lists, not for strays.
    if let Some(rel) = member
        && !found
            .outputs()
            .any(|o| o.relative_path.as_deref() == Some(rel.as_str()))
    {
        return Err(crate::Error::Storage {
            location: shown,
            message: format!(
                "the release record {} does not list this object; it is not part of that \
                 release",
                record.shown()
            ),
        });
    }
    Ok(found)
}

fn typed(doc: &Value, from: &std::path::Path) -> crate::Result<Record> {
    Record::from_json(doc).map_err(|e| {
        crate::Error::data(
            from.display(),
            format!(
                "not a cloakline provenance record this version reads: {e}; report on the \
                 record as cloakline wrote it (`cloakline verify` says whether it was changed)"
            ),
        )
    })
}
