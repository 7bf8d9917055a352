//! Reading the record: loading it from disk, the typed view of its nodes (run, policy, fields
//! and their lawful bases) and the accessors that read JSON-LD members as text.

use serde_json::Value;

use super::format::{category_term, clip, human, jurisdiction_code, num};

pub(super) struct Doc<'a> {
    pub(super) root: &'a Value,
    pub(super) controller: Option<&'a Value>,
    pub(super) run: Option<&'a Value>,
    pub(super) policy: Option<&'a Value>,
    pub(super) privacy: Option<&'a Value>,
    pub(super) datasets: Vec<&'a Value>,
    pub(super) fields: Vec<Field<'a>>,
    pub(super) dropped: Vec<&'a Value>,
    pub(super) jurisdictions: Vec<String>,
}

pub(super) struct Basis {
    jurisdiction: String,
    pub(super) law: String,
    basis: String,
    pub(super) article: Option<String>,
}

impl Basis {
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
    pub(super) node: &'a Value,
    pub(super) output: String,
    source: String,
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
    fn read(node: &'a Value, doc_cn: bool, doc_eu: bool) -> Self {
        let mut bases: Vec<Basis> = match node.get("cl:lawfulBasis") {
            Some(Value::Array(a)) => a.iter().filter_map(read_basis).collect(),
            Some(v @ Value::Object(_)) => read_basis(v).into_iter().collect(),
            _ => Vec::new(),
        };
        bases.sort_by_key(Basis::rank);
        let category = get_text(node, "cl:category");
        let term = category.as_deref().and_then(category_term).or_else(|| {
            strings(
                node.get("hasProcess")
                    .and_then(|p| p.get("hasPersonalData")),
            )
            .into_iter()
            .next()
        });
        let art9 = node.get("cl:art9Condition");
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
            output: get_text(node, "cl:column").unwrap_or_else(|| "—".into()),
            source: get_text(node, "cl:sourceColumn").unwrap_or_else(|| "—".into()),
            action: get_text(node, "cl:action").unwrap_or_default(),
            status: get_text(node, "cl:status"),
            bases,
            category,
            term,
            sensitive: node.get("cl:sensitive").and_then(Value::as_bool) == Some(true),
            special: get_text(node, "cl:specialCategory").map(|s| human(&s)),
            art9_article: art9.and_then(|a| get_text(a, "article")),
            art9_condition: art9.and_then(|a| match a {
                Value::String(s) => non_empty(s),
                _ => get_text(a, "condition"),
            }),
            separate_consent: node.get("cl:separateConsent").and_then(Value::as_bool) == Some(true),
            consent_ref: get_text(node, "cl:consentRef"),
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
        let p = self.node.get("cl:params");
        let param = |k: &str| p.and_then(|p| p.get(k)).and_then(scalar);
        let mut details = Vec::new();
        match self.action.as_str() {
            "generalize" => match param("kind").as_deref() {
                Some("date") => {
                    if let Some(to) = param("to") {
                        details.push(format!("date to {to}"));
                    }
                }
                Some("prefix") => {
                    if let Some(n) = param("keep_prefix") {
                        details.push(format!("keep first {n} characters"));
                    }
                }
                Some("number") => {
                    if let Some(w) = param("bin_width") {
                        details.push(format!("bins of {w}"));
                    }
                }
                _ => {}
            },
            "mask" => {
                let shown: Vec<String> =
                    [("first", param("keepFirst")), ("last", param("keepLast"))]
                        .into_iter()
                        .filter_map(|(end, n)| n.filter(|n| n != "0").map(|n| format!("{end} {n}")))
                        .collect();
                if !shown.is_empty() {
                    details.push(format!("show {}", shown.join(", ")));
                }
            }
            "tokenize" | "encrypt" => {
                if let Some(a) = param("algorithm") {
                    details.push(a);
                }
            }
            "scrub" => {
                let n = strings(p.and_then(|p| p.get("recognizers"))).len();
                if n > 0 {
                    details.push(format!("{n} recognizers"));
                }
            }
            _ => {}
        }
        if let Some(q) = self.node.get("cl:quasiIdentifier") {
            match (get_text(q, "level"), get_text(q, "maxLevel")) {
                (Some(l), Some(m)) => details.push(format!("quasi-identifier, level {l} of {m}")),
                (Some(l), None) => details.push(format!("quasi-identifier, level {l}")),
                _ => details.push("quasi-identifier".into()),
            }
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
        let id = get_text(self.node, "cl:keyId");
        let fp = get_text(self.node, "cl:keyFingerprint").map(|f| clip(&f, 32));
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

fn read_basis(v: &Value) -> Option<Basis> {
    if !v.is_object() {
        return None;
    }
    Some(Basis {
        jurisdiction: get_text(v, "jurisdiction").unwrap_or_default(),
        law: get_text(v, "law").unwrap_or_default(),
        basis: get_text(v, "basis").unwrap_or_default(),
        article: get_text(v, "article"),
    })
}

impl<'a> Doc<'a> {
    pub(super) fn read(root: &'a Value) -> Self {
        let nodes: Vec<&Value> = match root {
            Value::Array(a) => a.iter().collect(),
            _ => match root.get("@graph") {
                Some(Value::Array(a)) => a.iter().collect(),
                _ => Vec::new(),
            },
        };
        let mut d = Doc {
            root,
            controller: None,
            run: None,
            policy: None,
            privacy: None,
            datasets: Vec::new(),
            fields: Vec::new(),
            dropped: Vec::new(),
            jurisdictions: Vec::new(),
        };
        let mut field_nodes = Vec::new();
        for n in nodes.into_iter().filter(|n| n.is_object()) {
            if has_type(n, "dpv:DataController") {
                d.controller = d.controller.or(Some(n));
            } else if has_type(n, "prov:Activity") {
                d.run = d.run.or(Some(n));
            } else if has_type(n, "cl:Policy") {
                d.policy = d.policy.or(Some(n));
            } else if has_type(n, "cl:PrivacyModelEvidence") {
                d.privacy = d.privacy.or(Some(n));
            } else if has_type(n, "cl:Dataset") {
                d.datasets.push(n);
            } else if get_text(n, "cl:action").as_deref() == Some("drop") {
                d.dropped.push(n);
            } else if n.get("cl:sourceColumn").is_some() {
                field_nodes.push(n);
            }
        }
        let mut js: Vec<String> = strings(d.run.and_then(|r| r.get("hasJurisdiction")))
            .iter()
            .map(|j| jurisdiction_code(j))
            .collect();
        if js.is_empty() {
            js = strings(d.summary("jurisdictions"))
                .iter()
                .map(|j| jurisdiction_code(j))
                .collect();
        }
        let mut seen = Vec::new();
        for j in js {
            if !seen.contains(&j) {
                seen.push(j);
            }
        }
        d.jurisdictions = seen;
        let doc_cn = d.jurisdictions.iter().any(|j| j == "CN");
        let doc_eu = d.jurisdictions.iter().any(|j| j == "EU");
        d.fields = field_nodes
            .into_iter()
            .map(|n| Field::read(n, doc_cn, doc_eu))
            .collect();
        d
    }

    pub(super) fn summary(&self, key: &str) -> Option<&'a Value> {
        self.root.get("cl:summary").and_then(|s| s.get(key))
    }

    pub(super) fn run_text(&self, key: &str) -> Option<String> {
        self.run.and_then(|r| get_text(r, key))
    }

    pub(super) fn applies(&self, code: &str) -> bool {
        self.jurisdictions.iter().any(|j| j == code)
            || self.fields.iter().any(|f| {
                f.bases
                    .iter()
                    .any(|b| if code == "CN" { b.is_cn() } else { b.is_eu() })
            })
    }

    pub(super) fn recipients(&self) -> Vec<String> {
        strings(self.run.and_then(|r| r.get("cl:recipients")))
    }

    pub(super) fn transfers(&self) -> Vec<&'a Value> {
        match self.run.and_then(|r| r.get("cl:transfers")) {
            Some(Value::Array(a)) => a.iter().filter(|t| t.is_object()).collect(),
            Some(t @ Value::Object(_)) => vec![t],
            _ => Vec::new(),
        }
    }

    pub(super) fn policy_label(&self) -> Option<String> {
        let p = self.policy?;
        let name = get_text(p, "cl:policyName");
        let version = get_text(p, "cl:policyVersion");
        match (name, version) {
            (Some(n), Some(v)) => Some(format!("{n} v{v}")),
            (Some(n), None) => Some(n),
            (None, Some(v)) => Some(format!("v{v}")),
            (None, None) => None,
        }
        .or_else(|| self.summary("policy").and_then(scalar))
    }
}

// ---------------------------------------------------------------------------------------------
// Small value helpers

fn types(n: &Value) -> Vec<&str> {
    match n.get("@type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn has_type(n: &Value, ty: &str) -> bool {
    types(n).contains(&ty)
}

pub(super) fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
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

pub(super) fn get_text(n: &Value, key: &str) -> Option<String> {
    n.get(key).and_then(scalar)
}

/// A string, or the scalars of an array, as text.
pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

pub(super) fn objects(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().filter(|x| x.is_object()).collect(),
        _ => Vec::new(),
    }
}

/// The provenance record for `path`: a `.json` document, an output's sidecar, or the copy in
/// a Parquet output's footer.
pub fn load_record(path: &std::path::Path) -> crate::Result<Value> {
    let parse = |text: &str, from: &std::path::Path| {
        serde_json::from_str::<Value>(text)
            .map_err(|e| crate::Error::data(from.display(), format!("not a JSON record: {e}")))
    };
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("jsonld"));
    if is_json {
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
        return parse(&text, path);
    }
    let side = crate::provenance::sidecar_path(path);
    if side.exists() {
        let text = std::fs::read_to_string(&side).map_err(|e| crate::Error::io(&side, e))?;
        return parse(&text, &side);
    }
    match crate::provenance::read::embedded(path) {
        Ok(Some(doc)) => Ok(doc),
        Ok(None) => Err(crate::Error::data(
            path.display(),
            format!(
                "no sidecar {} and no `{}` in the Parquet footer",
                side.display(),
                crate::provenance::PARQUET_KEY
            ),
        )),
        Err(e) => Err(crate::Error::data(
            path.display(),
            format!(
                "no sidecar {} and cannot read a Parquet footer: {e}",
                side.display()
            ),
        )),
    }
}
