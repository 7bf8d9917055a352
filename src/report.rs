//! A compliance report of a cloakline provenance record, as Markdown and as one self-contained
//! HTML file.
//!
//! Both renderers read the record into one layout (sections of headings, paragraphs, tables
//! and charts) and only differ in how they print it, so the two formats always say the same.
//! The report restates the record; it checks no hash and no signature. The record's own
//! explanatory notes (`cl:statusNote`, `cl:note`) are not copied: the report uses fixed
//! wording of its own, which never calls the data anonymous.

use std::fmt::Write as _;

use serde_json::Value;

/// How a finding should be handled by the reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Needs a reviewer's judgement (sensitive data, recipients, transfers).
    Review,
    /// Something is likely missing or left identifying.
    Warning,
    /// For awareness.
    Info,
}

impl Level {
    /// The fixed label used in both formats.
    pub fn label(self) -> &'static str {
        match self {
            Level::Review => "Review",
            Level::Warning => "Warning",
            Level::Info => "Info",
        }
    }
}

/// One point a reviewer must look at; `field` is the output column it concerns, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub field: Option<String>,
    pub text: String,
}

/// The report as GitHub-flavoured Markdown.
pub fn render_markdown(doc: &Value) -> String {
    markdown(&build(&Doc::read(doc)))
}

/// The report as one HTML file: inline CSS and SVG only, no script, no external resource.
pub fn render_html(doc: &Value) -> String {
    html(&build(&Doc::read(doc)))
}

/// The points a reviewer must look at, fields first in document order, then recipients,
/// transfers and the privacy model.
pub fn findings(doc: &Value) -> Vec<Finding> {
    Doc::read(doc).findings()
}

// ---------------------------------------------------------------------------------------------
// Reading the record

/// Categories that single a person out on their own.
const DIRECT_IDENTIFIERS: &[&str] = &[
    "pd:EmailAddress",
    "pd:TelephoneNumber",
    "pd:Name",
    "pd:OfficialID",
    "pd:Identifier",
    "pd:Passport",
    "pd:IPAddress",
    "pd:Address",
    "pd:FinancialAccount",
];

/// Categories that identify in combination (the classic quasi-identifiers).
const QUASI_IDENTIFIERS: &[&str] = &[
    "pd:BirthDate",
    "pd:Age",
    "pd:Location",
    "pd:Gender",
    "pd:PostalCode",
    "pd:Country",
    "pd:Nationality",
];

struct Doc<'a> {
    root: &'a Value,
    controller: Option<&'a Value>,
    run: Option<&'a Value>,
    policy: Option<&'a Value>,
    privacy: Option<&'a Value>,
    datasets: Vec<&'a Value>,
    fields: Vec<Field<'a>>,
    dropped: Vec<&'a Value>,
    jurisdictions: Vec<String>,
}

struct Basis {
    jurisdiction: String,
    law: String,
    basis: String,
    article: Option<String>,
}

impl Basis {
    fn is_cn(&self) -> bool {
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
    fn text(&self) -> String {
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

struct Field<'a> {
    node: &'a Value,
    output: String,
    source: String,
    action: String,
    status: Option<String>,
    bases: Vec<Basis>,
    category: Option<String>,
    term: Option<String>,
    sensitive: bool,
    special: Option<String>,
    art9_article: Option<String>,
    art9_condition: Option<String>,
    separate_consent: bool,
    consent_ref: Option<String>,
    cn: bool,
    eu: bool,
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

    fn consent_bases(&self) -> Vec<&Basis> {
        self.bases.iter().filter(|b| b.basis == "consent").collect()
    }

    fn cn_consent(&self) -> bool {
        self.bases.iter().any(|b| b.is_cn() && b.basis == "consent")
    }

    fn status_text(&self) -> String {
        self.status
            .clone()
            .unwrap_or_else(|| "status not recorded".into())
    }

    fn bases_text(&self) -> String {
        if self.bases.is_empty() {
            return "—".into();
        }
        let parts: Vec<String> = self.bases.iter().map(Basis::text).collect();
        parts.join("; ")
    }

    /// The "sensitive / special category" cell, or None for ordinary data.
    fn sensitivity(&self) -> Option<String> {
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

    fn action_text(&self) -> String {
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
    fn key_text(&self) -> Option<String> {
        let id = get_text(self.node, "cl:keyId");
        let fp = get_text(self.node, "cl:keyFingerprint").map(|f| clip(&f, 32));
        match (id, fp) {
            (Some(i), Some(f)) => Some(format!("{i} (fingerprint {f})")),
            (Some(i), None) => Some(i),
            (None, Some(f)) => Some(format!("fingerprint {f}")),
            (None, None) => None,
        }
    }

    fn name(&self) -> String {
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
    fn read(root: &'a Value) -> Self {
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

    fn summary(&self, key: &str) -> Option<&'a Value> {
        self.root.get("cl:summary").and_then(|s| s.get(key))
    }

    fn run_text(&self, key: &str) -> Option<String> {
        self.run.and_then(|r| get_text(r, key))
    }

    fn applies(&self, code: &str) -> bool {
        self.jurisdictions.iter().any(|j| j == code)
            || self.fields.iter().any(|f| {
                f.bases
                    .iter()
                    .any(|b| if code == "CN" { b.is_cn() } else { b.is_eu() })
            })
    }

    fn recipients(&self) -> Vec<String> {
        strings(self.run.and_then(|r| r.get("cl:recipients")))
    }

    fn transfers(&self) -> Vec<&'a Value> {
        match self.run.and_then(|r| r.get("cl:transfers")) {
            Some(Value::Array(a)) => a.iter().filter(|t| t.is_object()).collect(),
            Some(t @ Value::Object(_)) => vec![t],
            _ => Vec::new(),
        }
    }

    fn policy_label(&self) -> Option<String> {
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

    fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let has_privacy = self.privacy.is_some();
        for f in &self.fields {
            let field = Some(f.output.clone());
            let push = |out: &mut Vec<Finding>, level, text: String| {
                out.push(Finding {
                    level,
                    field: field.clone(),
                    text,
                });
            };
            let status = f.status_text();

            // Sensitive or special-category data.
            if f.sensitive || f.special.is_some() {
                let mut parts = Vec::new();
                if let Some(sc) = &f.special {
                    let cover = match (&f.art9_article, &f.art9_condition) {
                        (Some(a), Some(c)) => format!("condition {a} ({})", human(c)),
                        (Some(a), None) => format!("condition {a}"),
                        (None, _) if f.eu => "no GDPR Art. 9(2) condition recorded".into(),
                        (None, _) => String::new(),
                    };
                    if cover.is_empty() {
                        parts.push(format!("special category of personal data ({sc})"));
                    } else {
                        parts.push(format!(
                            "special category of personal data ({sc}, GDPR Art. 9(1)), {cover}"
                        ));
                    }
                }
                if f.cn {
                    let mut s = "sensitive personal information (PIPL Art. 28: specific purpose, \
                                 sufficient necessity, strict protection)"
                        .to_string();
                    if f.separate_consent {
                        s.push_str(", separate consent recorded (PIPL Art. 29)");
                    } else if f.cn_consent() {
                        s.push_str(", relies on consent without separate consent (PIPL Art. 29)");
                    } else {
                        let cn: Vec<String> = f
                            .bases
                            .iter()
                            .filter(|b| b.is_cn())
                            .map(Basis::text)
                            .collect();
                        if !cn.is_empty() {
                            let _ = write!(s, ", basis {}", cn.join("; "));
                        }
                    }
                    parts.push(s);
                } else if f.special.is_none() {
                    parts.push("marked sensitive".into());
                }
                parts.push(format!("output is {status}"));
                push(&mut out, Level::Review, parts.join("; "));
                if f.special.is_some() && f.eu && f.art9_article.is_none() {
                    push(
                        &mut out,
                        Level::Warning,
                        "special category without a GDPR Art. 9(2) condition in the record".into(),
                    );
                }
                if f.cn && f.cn_consent() && !f.separate_consent {
                    push(
                        &mut out,
                        Level::Warning,
                        "sensitive personal information relies on consent, but no separate \
                         consent is recorded (PIPL Art. 29)"
                            .into(),
                    );
                }
            }

            // Direct identifiers copied unchanged.
            if f.action == "keep"
                && let Some(t) = f.term.as_deref().filter(|t| DIRECT_IDENTIFIERS.contains(t))
            {
                push(
                    &mut out,
                    Level::Warning,
                    format!("directly identifying: {t} kept as is; output is {status}"),
                );
            }

            // Consent.
            let consent = f.consent_bases();
            if !consent.is_empty() {
                let arts: Vec<String> = consent
                    .iter()
                    .map(|b| b.article.clone().unwrap_or_else(|| b.law.clone()))
                    .filter(|a| !a.is_empty())
                    .collect();
                let arts = if arts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", arts.join("; "))
                };
                match &f.consent_ref {
                    Some(r) => push(
                        &mut out,
                        Level::Info,
                        format!("relies on consent{arts}; consent reference: {r}"),
                    ),
                    None => push(
                        &mut out,
                        Level::Warning,
                        format!("relies on consent{arts}, but no consent reference is recorded"),
                    ),
                }
            }

            // Quasi-identifiers released without any dataset-level assessment.
            if !has_privacy
                && f.node.get("cl:quasiIdentifier").is_none()
                && (f.action == "keep" || f.action == "generalize")
                && let Some(t) = f.term.as_deref().filter(|t| QUASI_IDENTIFIERS.contains(t))
            {
                let how = if f.action == "keep" {
                    "kept as is"
                } else {
                    "generalized"
                };
                push(
                    &mut out,
                    Level::Info,
                    format!(
                        "quasi-identifier ({t}) {how} without a privacy model: combined with \
                             other fields it may still single people out"
                    ),
                );
            }

            // Scrubbed free text.
            if f.action == "scrub" {
                let mut total: u64 = 0;
                let mut by = Vec::new();
                if let Some(Value::Object(m)) = f.node.get("cl:entitiesReplaced") {
                    for (k, v) in m {
                        let n = v.as_u64().unwrap_or(0);
                        total = total.saturating_add(n);
                        by.push(format!("{k}: {}", group_u(n)));
                    }
                }
                let detail = if by.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by.join(", "))
                };
                push(
                    &mut out,
                    Level::Info,
                    format!(
                        "scrubbed free text: {} entities replaced{detail}; names and other details \
                         the recognizers do not cover may remain",
                        group_u(total)
                    ),
                );
            }
        }

        // Provision to other handlers.
        let cn = self.applies("CN");
        let eu = self.applies("EU");
        let consent_fields = self
            .fields
            .iter()
            .filter(|f| f.cn_consent() || (!cn && !f.consent_bases().is_empty()))
            .count();
        for r in self.recipients() {
            let mut text = format!("provision to another handler: {r}");
            if cn {
                text.push_str(
                    "; PIPL Art. 23 requires separate consent where the processing relies on consent",
                );
                if consent_fields > 0 {
                    let _ = write!(
                        text,
                        " ({consent_fields} field{} here rely on consent)",
                        if consent_fields == 1 { "" } else { "s" }
                    );
                }
            }
            if eu {
                text.push_str(
                    "; GDPR: name the recipient to data subjects (Art. 13(1)(e)) and document the \
                     arrangement with it (Art. 26 or 28)",
                );
            }
            out.push(Finding {
                level: Level::Review,
                field: None,
                text,
            });
        }

        // Cross-border transfers.
        for t in self.transfers() {
            let recipient =
                get_text(t, "recipient").unwrap_or_else(|| "an unnamed recipient".into());
            let country = get_text(t, "country").unwrap_or_else(|| "an unstated country".into());
            let mut text = format!(
                "cross-border transfer to {recipient} in {country} (PIPL Art. 38–39; GDPR Chapter V)"
            );
            if t.get("thirdParty").and_then(Value::as_bool) == Some(true) {
                text.push_str("; the recipient is a third party");
            }
            out.push(Finding {
                level: Level::Review,
                field: None,
                text,
            });
        }

        // Rule warnings the policy carried (docs/RULES.md), with their safeguard if any.
        if let Some(ws) = self
            .run
            .and_then(|r| r.get("cl:policyWarnings"))
            .and_then(Value::as_array)
        {
            for w in ws {
                let rule = get_text(w, "rule").unwrap_or_default();
                let msg = get_text(w, "message").unwrap_or_default();
                out.push(Finding {
                    level: Level::Review,
                    field: get_text(w, "field"),
                    text: format!("[{rule}] {msg}"),
                });
            }
        }
        for t in self.transfers() {
            if let Some(m) = get_text(t, "mechanism") {
                out.push(Finding {
                    level: Level::Info,
                    field: None,
                    text: format!(
                        "transfer to {} relies on `{m}`",
                        get_text(t, "recipient").unwrap_or_default()
                    ),
                });
            }
        }

        // Public demo keys: tokens, envelopes and a signature made with them protect nothing.
        if self.root.get(crate::provenance::DEMO_KEYS) == Some(&Value::Bool(true)) {
            out.push(Finding {
                level: Level::Warning,
                field: None,
                text: "the run used the public demo keyring (DEMO KEYS ONLY): anyone can \
                       recompute its tokens from guessed values, decrypt its encrypted fields \
                       and forge its signature; re-run with your own keys \
                       (`cloakline keys generate`)"
                    .into(),
            });
        }

        // The privacy model itself.
        if let Some(p) = self.privacy {
            let achieved = p.get("cl:achieved");
            if achieved
                .and_then(|a| a.get("satisfied"))
                .and_then(Value::as_bool)
                == Some(false)
            {
                let k = achieved
                    .and_then(|a| get_text(a, "smallest_class"))
                    .unwrap_or_else(|| "—".into());
                out.push(Finding {
                    level: Level::Warning,
                    field: None,
                    text: format!(
                        "the privacy model is not satisfied by the released data (smallest class {k})"
                    ),
                });
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Layout shared by both formats

enum Piece {
    Text(String),
    /// A digest: in full in Markdown, shortened with the full value as a tooltip in HTML.
    Hash(String),
    Level(Level),
}

type Cell = Vec<Piece>;

fn t(s: impl Into<String>) -> Cell {
    vec![Piece::Text(s.into())]
}

fn opt(s: Option<String>) -> Cell {
    t(s.unwrap_or_else(|| "—".into()))
}

struct Table {
    head: Vec<&'static str>,
    /// Right-aligned (numeric) columns.
    num: Vec<usize>,
    rows: Vec<Vec<Cell>>,
    /// Key/value table: the first column is a row header.
    kv: bool,
}

impl Table {
    fn new(head: Vec<&'static str>) -> Self {
        Table {
            head,
            num: Vec::new(),
            rows: Vec::new(),
            kv: false,
        }
    }
    fn kv() -> Self {
        Table {
            kv: true,
            ..Table::new(vec!["Item", "Value"])
        }
    }
    fn pair(&mut self, k: &str, v: Cell) {
        self.rows.push(vec![t(k), v]);
    }
}

struct Bucket {
    label: String,
    classes: u64,
    records: u64,
}

struct Chart {
    title: String,
    buckets: Vec<Bucket>,
}

enum Block {
    H3(String),
    Para(Cell),
    List(Vec<Cell>),
    Table(Table),
    Chart(Chart),
}

struct Section {
    id: &'static str,
    title: &'static str,
    blocks: Vec<Block>,
}

struct Report {
    heading: String,
    subtitle: Cell,
    sections: Vec<Section>,
    footer: String,
}

fn build(d: &Doc) -> Report {
    let findings = d.findings();
    let policy = d.policy_label();
    let heading = match &policy {
        Some(p) => format!("Compliance report: {p}"),
        None => "Compliance report".into(),
    };
    let mut subtitle = t("Restated from the cloakline provenance record");
    if let Some(id) = get_text(d.root, "@id") {
        subtitle.push(Piece::Text(format!(" {id}")));
    }
    if let Some(at) = get_text(d.root, "generatedAtTime") {
        subtitle.push(Piece::Text(format!(", generated {at}")));
    }
    subtitle.push(Piece::Text(".".into()));
    Report {
        heading,
        subtitle,
        sections: vec![
            summary_section(d, policy, &findings),
            fields_section(d),
            privacy_section(d),
            findings_section(findings),
        ],
        footer: "This report restates the provenance record. It does not check the output's \
                 SHA-256, the policy file or the signature: cloakline verify does. Statuses are \
                 the record's own: pseudonymised, encrypted, masked or generalized data is still \
                 personal data."
            .into(),
    }
}

fn summary_section(d: &Doc, policy: Option<String>, findings: &[Finding]) -> Section {
    let mut kv = Table::kv();
    let controller = d
        .controller
        .and_then(|c| get_text(c, "label"))
        .or_else(|| d.summary("controller").and_then(scalar));
    kv.pair("Controller", opt(controller));
    let purpose = d
        .run_text("cl:purpose")
        .or_else(|| d.summary("purpose").and_then(scalar));
    kv.pair("Purpose", opt(purpose));
    let js: Vec<String> = d
        .jurisdictions
        .iter()
        .map(|j| match law_of(j) {
            Some(l) => format!("{j} ({l})"),
            None => j.clone(),
        })
        .collect();
    kv.pair("Jurisdictions", opt(join_or_none(&js)));

    let mut pol = opt(policy);
    if let Some(p) = d.policy {
        if let Some(h) = get_text(p, "cl:sha256") {
            pol.push(Piece::Text(", SHA-256 ".into()));
            pol.push(Piece::Hash(h));
        }
        if let Some(path) = get_text(p, "cl:path") {
            pol.push(Piece::Text(format!(", file {path}")));
        }
    }
    kv.pair("Policy", pol);
    kv.pair("Started", opt(d.run_text("startedAtTime")));
    kv.pair("Ended", opt(d.run_text("endedAtTime")));
    kv.pair(
        "Fields",
        t(format!(
            "{} output, {} dropped",
            d.fields.len(),
            d.dropped.len()
        )),
    );
    kv.pair(
        "Recipients",
        opt((!d.recipients().is_empty()).then(|| d.recipients().join("; "))),
    );
    kv.pair(
        "Data subjects",
        opt(join_or_none(&strings(
            d.run.and_then(|r| r.get("cl:dataSubjects")),
        ))),
    );
    kv.pair(
        "Retention",
        opt(d.run_text("cl:retention").map(|r| retention(&r))),
    );
    let transfers: Vec<String> = d
        .transfers()
        .iter()
        .map(|t| {
            format!(
                "{} ({})",
                get_text(t, "recipient").unwrap_or_else(|| "—".into()),
                get_text(t, "country").unwrap_or_else(|| "—".into())
            )
        })
        .collect();
    if !transfers.is_empty() {
        kv.pair("Cross-border transfers", t(transfers.join("; ")));
    }
    kv.pair("Signature", t(signature(d.root)));
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    kv.pair(
        "Findings",
        t(format!(
            "{} review, {} warning, {} info (see Findings)",
            count(Level::Review),
            count(Level::Warning),
            count(Level::Info)
        )),
    );

    let mut blocks = vec![Block::Table(kv)];
    blocks.push(Block::H3("Datasets".into()));
    if d.datasets.is_empty() {
        blocks.push(Block::Para(t("No datasets recorded.")));
    } else {
        let mut ds = Table::new(vec!["Role", "Path", "Format", "Rows", "Bytes", "SHA-256"]);
        ds.num = vec![3, 4];
        for n in &d.datasets {
            let role = if n.get("wasGeneratedBy").is_some() {
                "output"
            } else {
                "input"
            };
            ds.rows.push(vec![
                t(role),
                opt(get_text(n, "cl:path")),
                opt(get_text(n, "cl:format")),
                opt(n.get("cl:rows").and_then(num)),
                opt(n.get("cl:bytes").and_then(bytes)),
                match get_text(n, "cl:sha256") {
                    Some(h) => vec![Piece::Hash(h)],
                    None => t("—"),
                },
            ]);
        }
        blocks.push(Block::Table(ds));
    }
    Section {
        id: "summary",
        title: "Summary",
        blocks,
    }
}

fn signature(root: &Value) -> String {
    match root.get("cl:signature") {
        Some(s @ Value::Object(_)) => {
            let mut out = format!(
                "signed: {}",
                get_text(s, "algorithm").unwrap_or_else(|| "unknown algorithm".into())
            );
            if let Some(k) = get_text(s, "keyId") {
                let _ = write!(out, " with key {k}");
            }
            if let Some(f) = get_text(s, "keyFingerprint") {
                let _ = write!(out, " (fingerprint {})", clip(&f, 32));
            }
            out.push_str("; not checked by this report");
            out
        }
        _ => "not signed".into(),
    }
}

fn fields_section(d: &Doc) -> Section {
    let mut blocks = Vec::new();
    if d.fields.is_empty() {
        blocks.push(Block::Para(t("No output fields recorded.")));
    } else {
        let mut tb = Table::new(vec![
            "Source → output",
            "Action",
            "Lawful basis",
            "Category",
            "Sensitive / special category",
            "Status",
            "Key",
        ]);
        for f in &d.fields {
            tb.rows.push(vec![
                t(f.name()),
                t(f.action_text()),
                t(f.bases_text()),
                opt(f.category.clone().or_else(|| f.term.clone())),
                opt(f.sensitivity()),
                opt(f.status.clone()),
                opt(f.key_text()),
            ]);
        }
        blocks.push(Block::Table(tb));
    }
    blocks.push(Block::H3("Dropped fields".into()));
    if d.dropped.is_empty() {
        blocks.push(Block::Para(t("None.")));
    } else {
        let mut tb = Table::new(vec!["Field", "Type", "Why"]);
        for n in &d.dropped {
            tb.rows.push(vec![
                opt(get_text(n, "cl:column").or_else(|| get_text(n, "cl:sourceColumn"))),
                opt(get_text(n, "cl:dataType")),
                opt(get_text(n, "cl:droppedBecause")),
            ]);
        }
        blocks.push(Block::Table(tb));
    }
    Section {
        id: "fields",
        title: "Fields",
        blocks,
    }
}

fn privacy_section(d: &Doc) -> Section {
    let mut blocks = Vec::new();
    let Some(p) = d.privacy else {
        blocks.push(Block::Para(t(
            "No privacy model was applied: the record holds no dataset-level evidence of \
             re-identification risk.",
        )));
        return Section {
            id: "privacy",
            title: "Privacy model",
            blocks,
        };
    };
    blocks.push(Block::Para(t(
        "Dataset-level evidence of re-identification risk for the quasi-identifiers listed. \
         Linkage through other attributes or outside data is not measured.",
    )));
    let achieved = p.get("cl:achieved");
    let before = p.get("cl:beforeEnforcement");
    let models = p.get("cl:models");

    // Models and settings.
    let mut items = Vec::new();
    if let Some(k) = models.and_then(|m| get_text(m, "k")) {
        items.push(t(format!("k-anonymity with k = {k}")));
    }
    for l in objects(models.and_then(|m| m.get("lDiversity"))) {
        let mut s = format!(
            "{} l-diversity of {}: l = {}",
            get_text(l, "variant").unwrap_or_else(|| "distinct".into()),
            get_text(l, "attribute").unwrap_or_else(|| "—".into()),
            get_text(l, "l").unwrap_or_else(|| "—".into())
        );
        if let Some(c) = get_text(l, "c") {
            let _ = write!(s, ", c = {c}");
        }
        items.push(t(s));
    }
    for tc in objects(models.and_then(|m| m.get("tCloseness"))) {
        let mut s = format!(
            "t-closeness of {}: t = {}",
            get_text(tc, "attribute").unwrap_or_else(|| "—".into()),
            get_text(tc, "t").unwrap_or_else(|| "—".into())
        );
        if let Some(dist) = get_text(tc, "distance") {
            let _ = write!(s, " ({} distance)", human(&dist));
        }
        items.push(t(s));
    }
    blocks.push(Block::H3("Models".into()));
    if items.is_empty() {
        blocks.push(Block::Para(t("No model parameters recorded.")));
    } else {
        blocks.push(Block::List(items));
    }
    let mut kv = Table::kv();
    let satisfied = achieved
        .and_then(|a| a.get("satisfied"))
        .and_then(Value::as_bool);
    kv.pair(
        "Models satisfied",
        t(match satisfied {
            Some(true) => "yes",
            Some(false) => "no",
            None => "—",
        }),
    );
    kv.pair(
        "k achieved (smallest class)",
        opt(achieved.and_then(|a| a.get("smallest_class")).and_then(num)),
    );
    let suppressed = achieved
        .and_then(|a| a.get("suppressed"))
        .or_else(|| p.get("cl:suppressedRecords"))
        .and_then(num);
    let fraction = achieved
        .and_then(|a| a.get("suppressed_fraction"))
        .and_then(Value::as_f64)
        .map(pct);
    kv.pair(
        "Suppressed records",
        opt(match (suppressed, fraction) {
            (Some(s), Some(f)) => Some(format!("{s} ({f})")),
            (s, f) => s.or(f),
        }),
    );
    kv.pair(
        "Records released",
        opt(achieved.and_then(|a| {
            let r = a.get("records_released").and_then(num)?;
            Some(match a.get("records").and_then(num) {
                Some(all) => format!("{r} of {all}"),
                None => r,
            })
        })),
    );
    kv.pair(
        "On violation",
        opt(get_text(p, "cl:onViolation").map(|s| human(&s))),
    );
    kv.pair(
        "Maximum suppression",
        opt(p.get("cl:maxSuppression").and_then(Value::as_f64).map(pct)),
    );
    kv.pair("Loss metric", opt(get_text(p, "cl:metric")));
    if let Some(s) = p.get("cl:search").filter(|s| s.is_object()) {
        let mut text = format!(
            "{} of {} lattice nodes evaluated",
            s.get("nodesEvaluated")
                .and_then(num)
                .unwrap_or_else(|| "—".into()),
            s.get("latticeNodes")
                .and_then(num)
                .unwrap_or_else(|| "—".into())
        );
        if let Some(sec) = s.get("seconds").and_then(Value::as_f64) {
            let _ = write!(text, " in {sec:.3} s");
        }
        kv.pair("Search", t(text));
    }
    blocks.push(Block::Table(kv));

    // Quasi-identifiers.
    blocks.push(Block::H3("Quasi-identifiers".into()));
    let qis = objects(p.get("cl:quasiIdentifiers"));
    if qis.is_empty() {
        blocks.push(Block::Para(t("None recorded.")));
    } else {
        let mut tb = Table::new(vec!["Field", "Hierarchy", "Chosen level", "Max level"]);
        tb.num = vec![2, 3];
        for q in qis {
            let hierarchy = match q.get("source") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => get_text(q, "hierarchy")
                    .map(|h| human(&h))
                    .unwrap_or_else(|| "—".into()),
            };
            tb.rows.push(vec![
                opt(get_text(q, "field")),
                t(hierarchy),
                opt(get_text(q, "chosenLevel")),
                opt(get_text(q, "levels")),
            ]);
        }
        blocks.push(Block::Table(tb));
    }

    // Sensitive attributes: l and t achieved.
    blocks.push(Block::H3("Sensitive attributes".into()));
    let sens = objects(achieved.and_then(|a| a.get("sensitive")));
    if sens.is_empty() {
        let declared = strings(p.get("cl:sensitiveAttributes"));
        blocks.push(Block::Para(t(match join_or_none(&declared) {
            Some(s) => format!("Declared: {s}; no l or t achieved is recorded."),
            None => "None declared: l-diversity and t-closeness were not assessed.".into(),
        })));
    } else {
        let mut tb = Table::new(vec!["Attribute", "Distinct l", "Entropy l", "t achieved"]);
        tb.num = vec![1, 2];
        for s in sens {
            let ts: Vec<String> = match s.get("t") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| match x {
                        Value::Array(pair) => {
                            let kind = pair.first().and_then(scalar).map(|k| human(&k));
                            let v = pair.get(1).and_then(num);
                            match (kind, v) {
                                (Some(k), Some(v)) => Some(format!("{v} ({k})")),
                                (None, Some(v)) => Some(v),
                                _ => None,
                            }
                        }
                        other => num(other),
                    })
                    .collect(),
                Some(v) => num(v).into_iter().collect(),
                None => Vec::new(),
            };
            tb.rows.push(vec![
                opt(get_text(s, "attribute")),
                opt(s.get("distinct_l").and_then(num)),
                opt(s.get("entropy_l").and_then(num)),
                opt(join_or_none(&ts)),
            ]);
        }
        blocks.push(Block::Table(tb));
    }

    // Before / after.
    if achieved.is_some() || before.is_some() {
        blocks.push(Block::H3("Risk and loss".into()));
        let mut tb = Table::new(vec!["Measure", "Before enforcement", "Released"]);
        tb.num = vec![1, 2];
        let mut row = |label: String, f: &dyn Fn(&Value) -> Option<String>| {
            tb.rows.push(vec![
                t(label),
                opt(before.and_then(f)),
                opt(achieved.and_then(f)),
            ]);
        };
        let plain = |k: &'static str| move |v: &Value| v.get(k).and_then(num);
        row("Records released".into(), &plain("records_released"));
        row("Suppressed records".into(), &plain("suppressed"));
        row(
            "Equivalence classes released".into(),
            &plain("classes_released"),
        );
        row(
            "Smallest class (k achieved)".into(),
            &plain("smallest_class"),
        );
        row("Largest class".into(), &plain("largest_class"));
        row("Average class size".into(), &plain("average_class_size"));
        row(
            "Records in classes below k".into(),
            &plain("records_below_k"),
        );
        // Risk and loss keys in document order, so new figures show up without code changes.
        let keys = |k: &str| -> Vec<String> {
            let mut ks: Vec<String> = Vec::new();
            for src in [achieved, before].into_iter().flatten() {
                if let Some(Value::Object(m)) = src.get(k) {
                    for key in m.keys() {
                        if !ks.contains(key) {
                            ks.push(key.clone());
                        }
                    }
                }
            }
            ks
        };
        for key in keys("risks") {
            let label = risk_label(&key);
            let as_pct = key != "sampling_fraction";
            let k2 = key.clone();
            row(label, &move |v: &Value| {
                let x = v.get("risks")?.get(&k2)?;
                if as_pct { x.as_f64().map(pct) } else { num(x) }
            });
        }
        let metric = achieved
            .or(before)
            .and_then(|a| a.get("loss"))
            .and_then(|l| get_text(l, "metric"));
        let loss_keys = keys("loss");
        for key in &loss_keys {
            let k2 = key.clone();
            // "value" repeats the minimized metric when that has its own entry.
            let repeated = key == "value"
                && metric
                    .as_ref()
                    .is_some_and(|m| loss_keys.iter().any(|k| k == m));
            if key == "metric" || repeated {
                continue;
            }
            let label = if key == "value" {
                format!(
                    "Loss: {} (minimized)",
                    human(metric.as_deref().unwrap_or("metric"))
                )
            } else if metric.as_deref() == Some(key.as_str()) {
                format!("Loss: {} (minimized)", human(key))
            } else {
                format!("Loss: {}", human(key))
            };
            row(label, &move |v: &Value| {
                v.get("loss")?.get(&k2).and_then(num)
            });
        }
        row("Models satisfied".into(), &|v: &Value| {
            v.get("satisfied")
                .and_then(Value::as_bool)
                .map(|b| if b { "yes" } else { "no" }.to_string())
        });
        blocks.push(Block::Table(tb));
    }

    // Class-size distribution.
    for (src, title) in [
        (achieved, "Equivalence-class sizes, released data"),
        (before, "Equivalence-class sizes before enforcement"),
    ] {
        let buckets: Vec<Bucket> = objects(src.and_then(|a| a.get("size_distribution")))
            .into_iter()
            .map(|b| Bucket {
                label: get_text(b, "size").unwrap_or_else(|| "—".into()),
                classes: b.get("classes").and_then(Value::as_u64).unwrap_or(0),
                records: b.get("records").and_then(Value::as_u64).unwrap_or(0),
            })
            .collect();
        if !buckets.is_empty() {
            blocks.push(Block::Chart(Chart {
                title: title.into(),
                buckets,
            }));
        }
    }
    Section {
        id: "privacy",
        title: "Privacy model",
        blocks,
    }
}

fn risk_label(key: &str) -> String {
    match key {
        "prosecutor_highest" => "Prosecutor risk, highest".into(),
        "prosecutor_average" => "Prosecutor risk, average".into(),
        "records_at_risk" => "Records at risk (prosecutor)".into(),
        "journalist_highest" => "Journalist risk, highest".into(),
        "marketer" => "Marketer risk".into(),
        "sampling_fraction" => "Sampling fraction".into(),
        other => format!("Risk: {}", human(other)),
    }
}

fn findings_section(mut findings: Vec<Finding>) -> Section {
    let mut blocks = vec![Block::Para(t(
        "Points a reviewer must look at. Review: needs a reviewer's judgement. Warning: \
         something is likely missing or left identifying. Info: for awareness.",
    ))];
    // Stable: within a level, document order is kept.
    findings.sort_by_key(|f| f.level);
    if findings.is_empty() {
        blocks.push(Block::Para(t("No findings.")));
    } else {
        let mut tb = Table::new(vec!["Level", "Field", "Finding"]);
        for f in findings {
            tb.rows
                .push(vec![vec![Piece::Level(f.level)], opt(f.field), t(f.text)]);
        }
        blocks.push(Block::Table(tb));
    }
    Section {
        id: "findings",
        title: "Findings",
        blocks,
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md_text(&r.heading));
    let _ = writeln!(out, "{}\n", md_cell(&r.subtitle));
    for s in &r.sections {
        let _ = writeln!(out, "## {}\n", s.title);
        for b in &s.blocks {
            match b {
                Block::H3(h) => {
                    let _ = writeln!(out, "### {}\n", md_text(h));
                }
                Block::Para(c) => {
                    let _ = writeln!(out, "{}\n", md_cell(c));
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(out, "- {}", md_cell(i));
                    }
                    out.push('\n');
                }
                Block::Table(tb) => md_table(tb, &mut out),
                Block::Chart(c) => md_chart(c, &mut out),
            }
        }
    }
    let _ = writeln!(out, "---\n\n{}", md_text(&r.footer));
    out
}

fn md_table(tb: &Table, out: &mut String) {
    out.push('|');
    for h in &tb.head {
        let _ = write!(out, " {} |", md_text(h));
    }
    out.push_str("\n|");
    for i in 0..tb.head.len() {
        out.push_str(if tb.num.contains(&i) {
            " ---: |"
        } else {
            " --- |"
        });
    }
    out.push('\n');
    for row in &tb.rows {
        out.push('|');
        for (i, c) in row.iter().enumerate() {
            let text = md_cell(c);
            if tb.kv && i == 0 {
                let _ = write!(out, " **{text}** |");
            } else {
                let _ = write!(out, " {text} |");
            }
        }
        out.push('\n');
    }
    out.push('\n');
}

fn md_chart(c: &Chart, out: &mut String) {
    let total = c
        .buckets
        .iter()
        .fold(0u64, |a, b| a.saturating_add(b.records));
    let max = c.buckets.iter().map(|b| b.records).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "**{}** (records per class-size bucket)\n",
        md_text(&c.title)
    );
    out.push_str(
        "| Class size | Classes | Records | Share | Bar |\n| --- | ---: | ---: | ---: | --- |\n",
    );
    for b in &c.buckets {
        let share = if total == 0 {
            "—".to_string()
        } else {
            pct(b.records as f64 / total as f64)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            md_text(&b.label),
            group_u(b.classes),
            group_u(b.records),
            share,
            "█".repeat(bar_units(b.records, max, 20) as usize)
        );
    }
    out.push('\n');
}

fn md_cell(c: &Cell) -> String {
    let mut s = String::new();
    for p in c {
        match p {
            Piece::Text(x) => s.push_str(&md_text(x)),
            Piece::Hash(h) if h.chars().all(|ch| ch.is_ascii_alphanumeric()) => {
                let _ = write!(s, "`{h}`");
            }
            Piece::Hash(h) => s.push_str(&md_text(h)),
            Piece::Level(l) => s.push_str(l.label()),
        }
    }
    s
}

/// Escapes what would change the table structure or the inline formatting.
pub(crate) fn md_text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' | '|' | '*' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            // GFM leaves intraword underscores alone (customer_id), so only escape the others.
            '_' => {
                let prev = i.checked_sub(1).and_then(|j| chars.get(j));
                let next = chars.get(i + 1);
                let inner = |x: Option<&char>| x.is_some_and(|x| x.is_alphanumeric());
                if !(inner(prev) && inner(next)) {
                    out.push('\\');
                }
                out.push('_');
            }
            '\r' => {}
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTML

const CSS: &str = "
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif;
  color: #111; background: #fff; margin: 2rem auto; max-width: 76rem; padding: 0 1rem; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid #333; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.sub { color: #444; margin-top: 0; overflow-wrap: anywhere; }
.tbl { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #888; padding: .3rem .5rem; text-align: left; vertical-align: top; overflow-wrap: break-word; }
thead th { border-bottom: 2px solid #333; overflow-wrap: normal; }
table.kv th { width: 15rem; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.lvl { display: inline-block; white-space: nowrap; padding: 0 .4rem; border: 1px solid; border-radius: 3px; font-weight: 600; font-size: .85em; }
.lvl-review { color: #7a4a00; }
.lvl-warning { color: #a00000; border-width: 2px; }
.lvl-info { color: #244a7a; }
figure { margin: .6rem 0 1.2rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.chart { max-width: 100%; height: auto; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #111; }
svg.chart .bar { fill: #4a6fa5; stroke: #1f3b63; stroke-width: 1; }
svg.chart .axis { stroke: #333; stroke-width: 1; }
footer { margin-top: 2rem; font-size: .85rem; color: #444; border-top: 1px solid #888; padding-top: .5rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  .tbl { overflow: visible; }
  tr, figure, li { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  h2, h3, figcaption { break-after: avoid; page-break-after: avoid; }
  svg.chart .bar { fill: #999; stroke: #000; }
}
@page { margin: 14mm; }
";

fn html(r: &Report) -> String {
    let mut out = String::new();
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Nothing may be fetched: the policy forbids every request, inline styles aside.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(&r.heading));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(
        out,
        "<header>\n<h1>{}</h1>\n<p class=\"sub\">{}</p>\n</header>",
        esc(&r.heading),
        html_cell(&r.subtitle)
    );
    for s in &r.sections {
        let _ = writeln!(out, "<section id=\"{}\">\n<h2>{}</h2>", s.id, esc(s.title));
        for b in &s.blocks {
            match b {
                Block::H3(h) => {
                    let _ = writeln!(out, "<h3>{}</h3>", esc(h));
                }
                Block::Para(c) => {
                    let _ = writeln!(out, "<p>{}</p>", html_cell(c));
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for i in items {
                        let _ = writeln!(out, "<li>{}</li>", html_cell(i));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(tb) => html_table(tb, &mut out),
                Block::Chart(c) => svg_chart(c, &mut out),
            }
        }
        out.push_str("</section>\n");
    }
    let _ = writeln!(
        out,
        "<footer>\n<p>{}</p>\n</footer>\n</body>\n</html>",
        esc(&r.footer)
    );
    out
}

fn html_table(tb: &Table, out: &mut String) {
    let class = if tb.kv { " class=\"kv\"" } else { "" };
    let _ = write!(out, "<div class=\"tbl\"><table{class}>");
    if !tb.kv {
        out.push_str("<thead><tr>");
        for (i, h) in tb.head.iter().enumerate() {
            let num = if tb.num.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(out, "<th scope=\"col\"{num}>{}</th>", esc(h));
        }
        out.push_str("</tr></thead>");
    }
    out.push_str("<tbody>\n");
    for row in &tb.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            if tb.kv && i == 0 {
                let _ = write!(out, "<th scope=\"row\">{}</th>", html_cell(c));
            } else if tb.num.contains(&i) {
                let _ = write!(out, "<td class=\"num\">{}</td>", html_cell(c));
            } else {
                let _ = write!(out, "<td>{}</td>", html_cell(c));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn html_cell(c: &Cell) -> String {
    let mut s = String::new();
    for p in c {
        match p {
            // Paths may break after a slash instead of widening the table.
            Piece::Text(x) => s.push_str(&esc(x).replace('/', "/<wbr>")),
            Piece::Hash(h) => {
                let short: String = h.chars().take(12).collect();
                let more = if h.chars().count() > 12 { "…" } else { "" };
                let _ = write!(s, "<code title=\"{}\">{}{more}</code>", esc(h), esc(&short));
            }
            Piece::Level(l) => {
                let _ = write!(
                    s,
                    "<span class=\"lvl lvl-{}\">{}</span>",
                    l.label().to_ascii_lowercase(),
                    l.label()
                );
            }
        }
    }
    s
}

fn svg_chart(c: &Chart, out: &mut String) {
    const ROW: u64 = 26;
    const TOP: u64 = 6;
    const BAR_X: u64 = 92;
    const BAR_MAX: u64 = 360;
    const WIDTH: u64 = 660;
    let n = c.buckets.len() as u64;
    let height = TOP.saturating_mul(2).saturating_add(ROW.saturating_mul(n));
    let max = c.buckets.iter().map(|b| b.records).max().unwrap_or(0);
    let _ = write!(
        out,
        "<figure>\n<figcaption>{title}</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" \
         role=\"img\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">\
         <title>{title}: records per class-size bucket</title>\n",
        title = esc(&c.title)
    );
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{BAR_X}\" y1=\"{TOP}\" x2=\"{BAR_X}\" y2=\"{}\"/>",
        height.saturating_sub(TOP)
    );
    for (i, b) in c.buckets.iter().enumerate() {
        let y = TOP.saturating_add(ROW.saturating_mul(i as u64));
        let w = bar_units(b.records, max, BAR_MAX);
        let label = esc(&b.label);
        let _ = writeln!(
            out,
            "<g><title>class size {label}: {} classes, {} records</title>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"bar\" x=\"{BAR_X}\" y=\"{}\" width=\"{w}\" height=\"16\"/>\
             <text x=\"{}\" y=\"{}\">{} records · {} classes</text></g>",
            group_u(b.classes),
            group_u(b.records),
            BAR_X - 8,
            y.saturating_add(17),
            y.saturating_add(5),
            BAR_X + w + 6,
            y.saturating_add(17),
            group_u(b.records),
            group_u(b.classes),
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

/// Bar length in units of `full`; anything non-zero gets at least one unit.
fn bar_units(v: u64, max: u64, full: u64) -> u64 {
    if max == 0 || v == 0 {
        return 0;
    }
    let w = (v as f64 / max as f64 * full as f64).round() as u64;
    w.clamp(1, full)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
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

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A scalar as text: strings as they are, numbers formatted, booleans as yes/no.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => non_empty(s),
        Value::Number(_) => num(v),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        _ => None,
    }
}

fn get_text(n: &Value, key: &str) -> Option<String> {
    n.get(key).and_then(scalar)
}

/// A string, or the scalars of an array, as text.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn objects(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().filter(|x| x.is_object()).collect(),
        _ => Vec::new(),
    }
}

fn join_or_none(v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| v.join(", "))
}

fn human(s: &str) -> String {
    s.replace('_', " ")
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}…")
    }
}

fn jurisdiction_code(j: &str) -> String {
    let tail = j.rsplit(['#', ':', '/']).next().unwrap_or(j);
    tail.to_string()
}

fn law_of(j: &str) -> Option<&'static str> {
    match j {
        "EU" => Some("GDPR"),
        "CN" => Some("PIPL"),
        _ => None,
    }
}

/// The DPV term of a policy category: the policy loader's own table.
fn category_term(category: &str) -> Option<String> {
    crate::policy::basis::category_term(category)
}

/// "P12M" → "P12M (12 months)"; anything it cannot read is shown as is.
fn retention(s: &str) -> String {
    let Some(rest) = s.strip_prefix('P') else {
        return s.to_string();
    };
    let mut parts = Vec::new();
    let mut digits = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'Y' => "year",
            'M' => "month",
            'W' => "week",
            'D' => "day",
            _ => return s.to_string(),
        };
        if digits.is_empty() {
            return s.to_string();
        }
        let plural = if digits == "1" { "" } else { "s" };
        parts.push(format!("{digits} {unit}{plural}"));
        digits.clear();
    }
    if parts.is_empty() || !digits.is_empty() {
        return s.to_string();
    }
    format!("{s} ({})", parts.join(" "))
}

fn group_u(n: u64) -> String {
    group_digits(&n.to_string())
}

fn group_digits(digits: &str) -> String {
    let (sign, d) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    let mut out = String::new();
    let len = d.chars().count();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (len - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn num(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(group_u(u))
            } else if let Some(i) = n.as_i64() {
                Some(group_digits(&i.to_string()))
            } else {
                n.as_f64().map(float)
            }
        }
        Value::String(s) => non_empty(s),
        _ => None,
    }
}

fn float(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return group_digits(&(f as i64).to_string());
    }
    if f.abs() < 0.001 {
        return format!("{f:.2e}");
    }
    let s = format!("{f:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s.split_once('.') {
        Some((int, frac)) => format!("{}.{frac}", group_digits(int)),
        None => group_digits(s),
    }
}

fn pct(f: f64) -> String {
    format!("{:.2}%", f * 100.0)
}

fn bytes(v: &Value) -> Option<String> {
    let n = v.as_u64()?;
    let exact = format!("{} B", group_u(n));
    let units = [("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)];
    let best = units.iter().rev().find(|(_, size)| n >= *size);
    Some(match best {
        Some((name, size)) => format!("{exact} ({:.1} {name})", n as f64 / *size as f64),
        None => exact,
    })
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
    let side = crate::apply::sidecar_path(path);
    if side.exists() {
        let text = std::fs::read_to_string(&side).map_err(|e| crate::Error::io(&side, e))?;
        return parse(&text, &side);
    }
    match crate::verify::embedded(path) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                       0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn basis(j: &str, law: &str, basis: &str, article: &str) -> Value {
        json!({"jurisdiction": j, "law": law, "basis": basis, "article": article,
               "dpv": "dpv:X", "term": "x"})
    }

    fn both(b: &str, eu: &str, cn: &str) -> Value {
        json!([basis("EU", "GDPR", b, eu), basis("CN", "PIPL", b, cn)])
    }

    /// Shaped like a real two-jurisdiction record, with the newer members.
    fn customers() -> Value {
        let consent = both("consent", "GDPR Art. 6(1)(a)", "PIPL Art. 13(1)(1)");
        let contract = both("contract", "GDPR Art. 6(1)(b)", "PIPL Art. 13(1)(2)");
        json!({
            "@id": "urn:cloakline:run:r1:record",
            "generatedAtTime": "2026-01-02T03:04:05Z",
            "cl:summary": {"policy": "shop v3", "jurisdictions": ["EU", "CN"], "privacy": null},
            "cl:signature": {"algorithm": "HMAC-SHA256", "kdf": "HKDF-SHA256",
                             "kdfInfo": "cloakline/v1/sign/provenance", "keyId": "sig1",
                             "keyFingerprint": "aabbccddeeff0011", "value": SIG},
            "@graph": [
                {"@id": "urn:c", "@type": ["prov:Agent", "dpv:DataController"], "label": "Example Retail Co."},
                {"@id": "urn:p", "@type": ["prov:Entity", "prov:Plan", "cl:Policy"],
                 "cl:policyName": "shop", "cl:policyVersion": 3, "cl:path": "policies/shop.yaml",
                 "cl:sha256": "c05d43266be8a2c3652914888f6ed709d17b33cf10affdc3571568c08121364d"},
                {"@id": "urn:r", "@type": "prov:Activity",
                 "startedAtTime": "2026-01-02T03:04:00Z", "endedAtTime": "2026-01-02T03:04:05Z",
                 "cl:purpose": "churn analysis", "hasJurisdiction": ["loc:EU", "loc:CN"],
                 "cl:recipients": ["Analytics Partner Ltd."], "cl:dataSubjects": ["customers"],
                 "cl:retention": "P1Y6M",
                 "cl:transfers": [{"recipient": "Analytics Partner Ltd.", "country": "US", "thirdParty": true}]},
                {"@id": "urn:in", "@type": ["prov:Entity", "cl:Dataset"], "cl:path": "in/customers.csv",
                 "cl:format": "csv", "cl:rows": 60, "cl:bytes": 9480,
                 "cl:sha256": "d8158c478ed5d5e579556b83ba906b197901d7810cecb1c09fda87b7d8bca5a2"},
                {"@id": "urn:out", "@type": ["prov:Entity", "cl:Dataset"], "cl:path": "out/customers.parquet",
                 "cl:format": "parquet", "cl:rows": 60, "cl:bytes": 33959, "wasGeneratedBy": "urn:r",
                 "cl:sha256": "57458ffb7ec771a4c467cb1f460b3e9a20053a364cd8625dca033c8e9ef083eb"},
                {"@id": "urn:if:email", "@type": "prov:Entity", "cl:column": "email", "cl:dataType": "Utf8"},
                {"@id": "urn:of:email", "@type": ["prov:Entity", "dpv:PseudonymisedData"],
                 "cl:column": "email", "cl:sourceColumn": "email", "cl:action": "tokenize",
                 "cl:params": {"algorithm": "HMAC-SHA256", "kdf_info": "cloakline/v1/tokenize/email"},
                 "cl:keyId": "k1", "cl:keyFingerprint": "beaf4c510f29e410",
                 "cl:status": "pseudonymised personal data",
                 "cl:statusNote": "Personal data; de-identified, not anonymised (PIPL Art. 73(3)).",
                 "cl:lawfulBasis": consent, "cl:category": "email", "cl:sensitive": false,
                 "cl:consentRef": "https://example.com/consent/notice-v5"},
                {"@id": "urn:of:phone", "@type": ["prov:Entity"], "cl:column": "phone",
                 "cl:sourceColumn": "phone", "cl:action": "keep", "cl:status": "unchanged personal data",
                 "cl:lawfulBasis": consent, "cl:category": "telephone", "cl:sensitive": false},
                {"@id": "urn:of:nid", "@type": ["prov:Entity"], "cl:column": "national_id",
                 "cl:sourceColumn": "national_id", "cl:action": "encrypt",
                 "cl:params": {"algorithm": "AES-256-GCM"}, "cl:keyId": "k2",
                 "cl:keyFingerprint": "44296cb7a8b4f861", "cl:status": "encrypted personal data",
                 "cl:lawfulBasis": consent, "cl:category": "official_id", "cl:sensitive": true,
                 "cl:separateConsent": true, "cl:consentRef": "consent-form-7"},
                {"@id": "urn:of:health", "@type": ["prov:Entity"], "cl:column": "diagnosis",
                 "cl:sourceColumn": "diagnosis", "cl:action": "generalize",
                 "cl:status": "generalized personal data", "cl:lawfulBasis": contract,
                 "cl:category": "health", "cl:sensitive": true, "cl:specialCategory": "health",
                 "cl:art9Condition": {"condition": "research", "article": "GDPR Art. 9(2)(j)", "term": "eu-gdpr:A9-2-j"}},
                {"@id": "urn:of:by", "@type": ["prov:Entity"], "cl:column": "birth_year",
                 "cl:sourceColumn": "birth_date", "cl:action": "generalize",
                 "cl:params": {"kind": "date", "to": "year"}, "cl:status": "generalized personal data",
                 "cl:lawfulBasis": contract, "cl:category": "birth_date", "cl:sensitive": false},
                {"@id": "urn:of:name", "@type": ["prov:Entity"], "cl:column": "姓名",
                 "cl:sourceColumn": "姓名", "cl:action": "keep", "cl:status": "unchanged personal data",
                 "cl:lawfulBasis": contract, "cl:category": "name", "cl:sensitive": false},
                {"@id": "urn:of:odd", "@type": ["prov:Entity"], "cl:column": "a<b>&\"c\"",
                 "cl:sourceColumn": "x|y", "cl:action": "keep", "cl:status": "unchanged",
                 "cl:lawfulBasis": contract, "cl:category": null, "cl:sensitive": false},
                {"@id": "urn:of:notes", "@type": ["prov:Entity"], "cl:column": "notes",
                 "cl:sourceColumn": "notes", "cl:action": "scrub",
                 "cl:params": {"mode": "redact", "recognizers": ["email", "cn_phone"]},
                 "cl:status": "scrubbed free text", "cl:lawfulBasis": contract, "cl:category": null,
                 "cl:sensitive": false, "cl:entitiesReplaced": {"email": 12, "cn_phone": 3}},
                {"@id": "urn:if:full", "@type": "prov:Entity", "cl:column": "full_name",
                 "cl:dataType": "Utf8", "cl:action": "drop", "cl:status": "removed",
                 "cl:droppedBecause": "the policy drops it"}
            ]
        })
    }

    /// Shaped like a record with privacy-model evidence.
    fn adult() -> Value {
        let assessment = |smallest: u64, satisfied: bool| {
            json!({
                "records": 100, "records_released": 95, "suppressed": 5, "suppressed_fraction": 0.05,
                "classes": 20, "classes_released": 12, "smallest_class": smallest, "largest_class": 30,
                "average_class_size": 7.9, "records_below_k": 5, "classes_below_k": 8,
                "size_distribution": [
                    {"size": "1", "classes": 0, "records": 0},
                    {"size": "5-9", "classes": 10, "records": 65},
                    {"size": "20-49", "classes": 1, "records": 30}
                ],
                "sensitive": [{"attribute": "salary", "distinct_l": 2, "entropy_l": 1.8,
                               "t": [["equal", 0.21]]}],
                "risks": {"prosecutor_highest": 0.2, "prosecutor_average": 0.05, "records_at_risk": 0.0,
                          "journalist_highest": 0.2, "marketer": 0.05, "sampling_fraction": 1.0},
                "loss": {"metric": "precision", "value": 0.38, "precision": 0.38, "discernibility": 1234.0},
                "satisfied": satisfied
            })
        };
        let li = json!([basis(
            "EU",
            "GDPR",
            "legitimate_interests",
            "GDPR Art. 6(1)(f)"
        )]);
        json!({
            "@graph": [
                {"@type": ["dpv:DataController"], "label": "Example Research Institute"},
                {"@type": "prov:Activity", "hasJurisdiction": ["loc:EU"], "cl:purpose": "research"},
                {"@type": ["prov:Entity"], "cl:column": "age", "cl:sourceColumn": "age",
                 "cl:action": "generalize", "cl:status": "generalized personal data",
                 "cl:quasiIdentifier": {"level": 4, "maxLevel": 4, "hierarchy": "h/age.csv"},
                 "cl:lawfulBasis": li, "cl:category": "age", "cl:sensitive": false},
                {"@type": ["prov:Entity", "cl:PrivacyModelEvidence"],
                 "cl:note": "It does not by itself make the data anonymous.",
                 "cl:quasiIdentifiers": [{"field": "age", "hierarchy": "arx-file",
                                          "source": "h/age.csv", "levels": 4, "chosenLevel": 4}],
                 "cl:sensitiveAttributes": ["salary"],
                 "cl:models": {"k": 5,
                               "lDiversity": [{"attribute": "salary", "variant": "distinct", "l": 2.0, "c": null}],
                               "tCloseness": [{"attribute": "salary", "t": 0.3, "distance": "equal"}]},
                 "cl:onViolation": "generalize", "cl:maxSuppression": 0.05, "cl:metric": "precision",
                 "cl:suppressedRecords": 5,
                 "cl:achieved": assessment(5, true),
                 "cl:beforeEnforcement": assessment(1, false)}
            ]
        })
    }

    fn longest_hex_run(s: &str) -> usize {
        let (mut best, mut cur) = (0, 0);
        for c in s.chars() {
            if c.is_ascii_hexdigit() {
                cur += 1;
                best = best.max(cur);
            } else {
                cur = 0;
            }
        }
        best
    }

    fn no_anonymity_claim(s: &str) {
        let l = s.to_lowercase();
        for w in ["anonymis", "anonymiz", "anonymous"] {
            assert!(!l.contains(w), "output contains {w}");
        }
    }

    #[test]
    fn markdown_has_bases_keys_and_sections() {
        let md = render_markdown(&customers());
        assert!(md.contains("PIPL Art. 13(1)(1) consent; GDPR Art. 6(1)(a) consent"));
        assert!(md.contains("PIPL Art. 13(1)(2) contract; GDPR Art. 6(1)(b) contract"));
        assert!(md.contains("k1 (fingerprint beaf4c510f29e410)"));
        assert!(md.contains("k2 (fingerprint 44296cb7a8b4f861)"));
        assert!(md.contains("birth_date → birth_year"));
        assert!(md.contains("sensitive (PIPL Art. 28) — separate consent"));
        assert!(md.contains("special category: health — GDPR Art. 9(2)(j)"));
        assert!(md.contains("EU (GDPR), CN (PIPL)"));
        assert!(md.contains("P1Y6M (1 year 6 months)"));
        assert!(md.contains("| full_name | Utf8 | the policy drops it |"));
        for h in ["## Summary", "## Fields", "## Privacy model", "## Findings"] {
            assert!(md.contains(h), "{h}");
        }
        assert!(md.contains("姓名"));
    }

    #[test]
    fn signature_is_summarised_never_shown() {
        let doc = customers();
        for out in [render_markdown(&doc), render_html(&doc)] {
            assert!(
                out.contains("signed: HMAC-SHA256 with key sig1 (fingerprint aabbccddeeff0011)")
            );
            assert!(!out.contains(SIG));
            assert!(
                longest_hex_run(&out) <= 64,
                "hex run {}",
                longest_hex_run(&out)
            );
            assert!(!out.contains("kdf_info") && !out.contains("cloakline/v1/"));
        }
        let unsigned = render_markdown(&adult());
        assert!(unsigned.contains("| **Signature** | not signed |"));
    }

    #[test]
    fn findings_cover_each_rule() {
        let f = findings(&customers());
        let has = |level: Level, field: Option<&str>, needle: &str| {
            f.iter()
                .any(|x| x.level == level && x.field.as_deref() == field && x.text.contains(needle))
        };
        assert!(has(Level::Review, Some("national_id"), "PIPL Art. 28"));
        assert!(has(Level::Review, Some("diagnosis"), "GDPR Art. 9(2)(j)"));
        assert!(has(
            Level::Warning,
            Some("phone"),
            "pd:TelephoneNumber kept as is"
        ));
        assert!(has(Level::Warning, Some("姓名"), "pd:Name kept as is"));
        assert!(has(
            Level::Info,
            Some("email"),
            "https://example.com/consent/notice-v5"
        ));
        assert!(has(Level::Warning, Some("phone"), "no consent reference"));
        assert!(has(
            Level::Info,
            Some("birth_year"),
            "quasi-identifier (pd:BirthDate) generalized"
        ));
        assert!(has(Level::Info, Some("notes"), "names"));
        assert!(has(Level::Review, None, "PIPL Art. 23"));
        assert!(has(
            Level::Review,
            None,
            "cross-border transfer to Analytics Partner Ltd. in US (PIPL Art. 38–39; GDPR Chapter V)"
        ));
        // Encrypted with separate consent recorded: no missing-consent warning.
        assert!(!has(
            Level::Warning,
            Some("national_id"),
            "separate consent"
        ));
        // With privacy evidence, quasi-identifiers are not flagged.
        assert!(
            !findings(&adult())
                .iter()
                .any(|x| x.text.contains("quasi-identifier"))
        );
    }

    #[test]
    fn html_escapes_and_is_self_contained() {
        let html = render_html(&customers());
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("a&lt;b&gt;&amp;&quot;c&quot;"));
        assert!(!html.contains("a<b>"));
        assert!(html.contains("姓名"));
        for id in ["summary", "fields", "privacy", "findings"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        for h in ["Summary", "Fields", "Privacy model", "Findings"] {
            assert!(html.contains(&format!("<h2>{h}</h2>")), "{h}");
        }
        let lower = html.to_lowercase();
        for bad in [
            "<script", "<link", "<img", "@import", "url(", "src=", "href=",
        ] {
            assert!(!lower.contains(bad), "{bad}");
        }
        assert!(lower.contains("break-inside: avoid"));
        // The policy digest is shortened with the full value as a tooltip.
        assert!(html.contains(
            "<code title=\"c05d43266be8a2c3652914888f6ed709d17b33cf10affdc3571568c08121364d\">c05d43266be8…</code>"
        ));
    }

    #[test]
    fn apostrophes_are_escaped_in_html() {
        assert_eq!(esc("a<b>&\"c\"'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;");
    }

    #[test]
    fn markdown_tables_keep_their_shape() {
        let md = render_markdown(&customers());
        assert!(md.contains("x\\|y → a\\<b\\>&\"c\""));
        let mut in_fields = false;
        for line in md.lines() {
            if line.starts_with("| Source → output") {
                in_fields = true;
            } else if in_fields && !line.starts_with('|') {
                break;
            }
            if in_fields {
                let unescaped = line
                    .char_indices()
                    .filter(|&(i, c)| c == '|' && (i == 0 || !line[..i].ends_with('\\')))
                    .count();
                assert_eq!(unescaped, 8, "{line}");
            }
        }
        assert!(in_fields);
    }

    #[test]
    fn privacy_evidence_and_chart() {
        let doc = adult();
        let html = render_html(&doc);
        assert!(html.contains("<svg") && html.contains("<rect"));
        assert!(html.contains("<title>class size 5-9: 10 classes, 65 records</title>"));
        assert_eq!(html.matches("<svg").count(), 2);
        let md = render_markdown(&doc);
        assert!(md.contains("| 5-9 | 10 | 65 | 68.42% | ████████████████████ |"));
        assert!(md.contains("k-anonymity with k = 5"));
        assert!(md.contains("distinct l-diversity of salary: l = 2"));
        assert!(md.contains("t-closeness of salary: t = 0.3 (equal distance)"));
        assert!(md.contains("| age | h/age.csv | 4 | 4 |"));
        assert!(md.contains("| salary | 2 | 1.8 | 0.21 (equal) |"));
        assert!(md.contains("| **k achieved (smallest class)** | 5 |"));
        assert!(md.contains("| **Suppressed records** | 5 (5.00%) |"));
        assert!(md.contains("| Prosecutor risk, highest | 20.00% | 20.00% |"));
        assert!(md.contains("| Loss: precision (minimized) | 0.38 | 0.38 |"));
        assert!(md.contains("generalize (quasi-identifier, level 4 of 4)"));
    }

    #[test]
    fn no_anonymity_wording() {
        for doc in [customers(), adult()] {
            no_anonymity_claim(&render_markdown(&doc));
            no_anonymity_claim(&render_html(&doc));
            for f in findings(&doc) {
                no_anonymity_claim(&f.text);
            }
        }
    }

    #[test]
    fn deterministic() {
        let doc = customers();
        assert_eq!(render_markdown(&doc), render_markdown(&doc));
        assert_eq!(render_html(&adult()), render_html(&adult()));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = json!({
            "cl:summary": 7,
            "cl:signature": "yes",
            "@graph": [
                null, 1, "x", [],
                {"@type": 5},
                {"@type": "prov:Activity", "hasJurisdiction": 3, "cl:recipients": {"a": 1},
                 "cl:transfers": [1, {"country": null}], "cl:retention": "P"},
                {"@type": ["cl:Policy"], "cl:sha256": "é€𝄞abc"},
                {"@type": ["cl:Dataset"], "cl:rows": -3, "cl:bytes": "many", "cl:sha256": [1]},
                {"cl:sourceColumn": 5, "cl:lawfulBasis": "consent", "cl:params": [1],
                 "cl:quasiIdentifier": 3, "cl:art9Condition": 1, "cl:specialCategory": "", "cl:action": "mask"},
                {"cl:sourceColumn": null, "cl:lawfulBasis": [null, {"basis": 1}], "cl:action": "scrub",
                 "cl:entitiesReplaced": {"x": "y"}, "cl:keyFingerprint": "ff".repeat(100)},
                {"@type": "cl:PrivacyModelEvidence", "cl:models": [], "cl:achieved": {
                    "size_distribution": [{"size": 1}, 2, {"classes": -1, "records": 1e300}],
                    "sensitive": [{"t": [[1], "x", 0.5]}], "risks": [], "loss": {"value": "x"},
                    "satisfied": false},
                 "cl:search": {"seconds": "slow"}, "cl:maxSuppression": 1e308}
            ]
        });
        let docs = [
            json!({}),
            json!([]),
            json!(null),
            json!(42),
            json!("x"),
            json!([{}]),
            odd,
        ];
        for d in &docs {
            let md = render_markdown(d);
            let html = render_html(d);
            assert!(md.contains("## Findings") && html.contains("<h2>Findings</h2>"));
            let _ = findings(d);
        }
        assert!(render_markdown(&json!({})).contains("not signed"));
        assert!(render_markdown(&json!(null)).contains("No findings."));
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(group_u(1234567), "1,234,567");
        assert_eq!(float(10000.0), "10,000");
        assert_eq!(float(0.38052), "0.3805");
        assert_eq!(retention("P12M"), "P12M (12 months)");
        assert_eq!(retention("PT5H"), "PT5H");
        assert_eq!(
            md_text("a|b\\c *d* _e_ f_g"),
            "a\\|b\\\\c \\*d\\* \\_e\\_ f_g"
        );
        assert_eq!(bar_units(5, 10, 20), 10);
        assert_eq!(bar_units(1, 1_000_000, 20), 1);
    }

    /// Renders real records (tests/fixtures, written by `apply`).
    #[test]
    fn fixture_records() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
        for name in ["customers", "adult"] {
            let path = dir.join(format!("{name}.provenance.json"));
            let text = std::fs::read_to_string(&path).expect("fixture present");
            let doc: Value = serde_json::from_str(&text).expect("sample is JSON");
            let md = render_markdown(&doc);
            let html = render_html(&doc);
            for out in [&md, &html] {
                no_anonymity_claim(out);
                assert!(longest_hex_run(out) <= 64);
                assert!(out.contains("Findings"));
            }
            if name == "customers" {
                assert!(md.contains("PIPL Art. 13(1)(1) consent; GDPR Art. 6(1)(a) consent"));
                assert!(md.contains("k1 (fingerprint beaf4c510f29e410)"));
            } else {
                assert!(html.contains("<svg") && html.contains("<rect"));
                assert!(md.contains("| **k achieved (smallest class)** | 5 |"));
            }
        }
    }
}
