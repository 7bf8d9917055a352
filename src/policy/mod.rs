//! The declarative policy: what happens to every field, and on what lawful basis.
//!
//! A policy is YAML (see `docs/POLICY.md`). Loading it checks the syntax, the parameters of
//! each action, and the lawful-basis rules of every jurisdiction it names; every error names the
//! file, the field, and the line and column.
//!
//! ```
//! let yaml = r#"
//! policy: demo
//! version: 1
//! controller: Example Co.
//! jurisdictions: [EU]
//! purpose: testing
//! unlisted: drop
//! fields:
//!   email: { action: tokenize, key: k1, basis: consent, category: email }
//! "#;
//! let policy = cloakline::policy::Policy::from_yaml_str(yaml, "demo.yaml").unwrap();
//! assert_eq!(policy.fields["email"].output_name, "email");
//! ```

pub mod basis;
pub mod privacy;
pub mod rules;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

pub use basis::{Art9Condition, Basis, BasisRef, Jurisdiction, SpecialCategory};
pub use privacy::{
    HierarchySource, LDiversity, LVariant, LossMetric, OnViolation, PrivacySpec, QuasiIdentifier,
    SearchBudget, TCloseness, TDistance,
};

use crate::error::{Error, Result};
pub use crate::kernels::scrub::ScrubMode;
use crate::scan::recognizers::RecognizerSet;

// ---------------------------------------------------------------------------------------------
// The file as written (serde model; also the source of `cloakline schema`).
// ---------------------------------------------------------------------------------------------

/// A cloakline policy file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cloakline policy")]
pub struct PolicyFile {
    /// Policy name, recorded in provenance.
    pub policy: String,
    /// Policy version (integer), recorded in provenance.
    pub version: u64,
    /// The controller (GDPR) / personal information handler (PIPL) responsible for the data.
    pub controller: String,
    /// Legal regimes the data is handled under: `EU` (GDPR), `CN` (PIPL), or both.
    #[schemars(with = "Vec<Jurisdiction>")]
    pub jurisdictions: Spanned<Vec<Jurisdiction>>,
    /// Why the data is shared.
    pub purpose: String,
    /// Who receives the output (recorded in provenance).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Categories of data subjects, e.g. `customers`.
    #[serde(default)]
    pub data_subjects: Vec<String>,
    /// Transfers to recipients in other countries, with their safeguard (docs/RULES.md).
    #[serde(default)]
    #[schemars(with = "Vec<rules::Transfer>")]
    pub transfers: Vec<Spanned<rules::Transfer>>,
    /// How long recipients may keep the data, as an ISO-8601 duration (e.g. `P12M`).
    #[serde(default)]
    pub retention: Option<String>,
    /// What to do with input columns the policy does not list: `error` (default) or `drop`.
    /// They are never copied.
    #[serde(default)]
    pub unlisted: Unlisted,
    /// One rule per input column.
    #[schemars(with = "BTreeMap<String, FieldRule>")]
    pub fields: BTreeMap<String, Spanned<FieldRule>>,
    /// Extra recognizers for `scrub` and `cloakline scan`, beside the built-in ones.
    #[serde(default)]
    #[schemars(with = "Vec<CustomRecognizer>")]
    pub recognizers: Vec<Spanned<CustomRecognizer>>,
    /// Dataset-level privacy models (k-anonymity, l-diversity, t-closeness), see docs/PRIVACY.md.
    #[schemars(with = "Option<privacy::PrivacyBlock>")]
    pub privacy: Option<Spanned<privacy::PrivacyBlock>>,
}

/// Handling of columns the policy does not mention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unlisted {
    /// Refuse to run (the default): every column must be reviewed.
    #[default]
    Error,
    /// Leave unlisted columns out of the output.
    Drop,
}

/// The action applied to a field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Copy unchanged (still personal data if it was).
    #[default]
    Keep,
    /// Leave out of the output.
    Drop,
    /// Replace every value with null, or with `replacement`.
    Redact,
    /// Replace characters with `mask_char`, keeping `keep_first` / `keep_last` characters.
    Mask,
    /// Deterministic keyed pseudonym (HMAC-SHA256), see docs/FORMATS.md.
    Tokenize,
    /// AES-256-GCM envelope, reversible with the key, see docs/FORMATS.md.
    Encrypt,
    /// Coarsen: dates to a period (`to`), numbers to bins (`bin_width`/`breaks`, `top`/`bottom`),
    /// strings to a prefix (`keep_prefix`).
    Generalize,
    /// Free text: replace every recognized entity (email, phone, ID number, ...) with a
    /// placeholder, a token or a mask (`replace_with`).
    Scrub,
}

impl ActionKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ActionKind::Keep => "keep",
            ActionKind::Drop => "drop",
            ActionKind::Redact => "redact",
            ActionKind::Mask => "mask",
            ActionKind::Tokenize => "tokenize",
            ActionKind::Encrypt => "encrypt",
            ActionKind::Generalize => "generalize",
            ActionKind::Scrub => "scrub",
        }
    }
}

/// The lawful basis of a field: one keyword for all jurisdictions, or one per jurisdiction.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BasisSpec {
    /// The same basis in every jurisdiction of the policy.
    All(String),
    /// A basis per jurisdiction, e.g. `{ EU: legitimate_interests, CN: contract }`.
    PerJurisdiction(BTreeMap<String, String>),
}

/// A constant: string, number or boolean.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Constant {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Constant {
    fn as_text(&self) -> String {
        match self {
            Constant::Bool(b) => b.to_string(),
            Constant::Int(i) => i.to_string(),
            Constant::Float(f) => f.to_string(),
            Constant::Text(s) => s.clone(),
        }
    }
}

/// Period for date and timestamp generalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateLevel {
    Month,
    Quarter,
    Year,
    Decade,
}

/// How a generalized value is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LabelStyle {
    /// A readable text label: `30-39`, `[0.5, 1)`, `1987-Q3`, `1980-1989`, `>=100000`.
    #[default]
    Range,
    /// The bin's lower bound, in the column's own type (dates truncated to the period start).
    Lower,
}

/// The rule for one column. Parameters not used by the action are rejected.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// What to do with the column.
    pub action: ActionKind,
    /// Lawful basis (required for every field that reaches the output).
    pub basis: Option<BasisSpec>,
    /// Personal-data category: a keyword such as `email` or a DPV term `pd:Term`.
    pub category: Option<String>,
    /// PIPL Art. 28 sensitive personal information.
    #[serde(default)]
    pub sensitive: bool,
    /// GDPR Art. 9(1) special category (implies PIPL sensitive).
    pub special_category: Option<SpecialCategory>,
    /// GDPR Art. 9(2) condition covering a special category.
    pub art9_condition: Option<Art9Condition>,
    /// Separate consent obtained (PIPL Art. 29, needed for sensitive data relying on consent).
    #[serde(default)]
    pub separate_consent: bool,
    /// Where the consent is recorded (a URL or reference), recorded in provenance.
    pub consent_ref: Option<String>,
    /// Output column name (default: the input name).
    pub rename: Option<String>,
    /// Input type for text formats (CSV, NDJSON): `string`, `int64`, `float64`, `bool`,
    /// `date`, `timestamp`, or `decimal(P,S)`. Overrides type inference.
    #[serde(rename = "type")]
    pub input_type: Option<String>,
    /// Free-text note for reviewers, recorded in provenance.
    pub note: Option<String>,

    /// tokenize, encrypt: key id in the keyring.
    pub key: Option<String>,
    /// tokenize, encrypt: key-derivation domain (default: the field name). Same key + domain
    /// gives the same tokens across datasets.
    pub domain: Option<String>,
    /// tokenize: hex characters kept (1-64, default 32).
    pub length: Option<usize>,
    /// tokenize: text put before every token.
    pub prefix: Option<String>,
    /// mask: characters kept at the start (default 0).
    pub keep_first: Option<usize>,
    /// mask: characters kept at the end (default 0).
    pub keep_last: Option<usize>,
    /// mask: the masking character (default `*`).
    pub mask_char: Option<char>,
    /// redact: constant written instead of null.
    pub replacement: Option<Constant>,
    /// generalize dates/timestamps: `month`, `quarter`, `year` or `decade`.
    pub to: Option<DateLevel>,
    /// generalize numbers: fixed bin width.
    pub bin_width: Option<f64>,
    /// generalize numbers: ascending break points; bins are [b_i, b_i+1).
    pub breaks: Option<Vec<f64>>,
    /// generalize numbers: values at or above `top` fall in one top bin (top coding).
    pub top: Option<f64>,
    /// generalize numbers: values below `bottom` fall in one bottom bin (bottom coding).
    pub bottom: Option<f64>,
    /// generalize strings: characters kept from the start (e.g. ZIP3).
    pub keep_prefix: Option<usize>,
    /// generalize: `range` (text label, default) or `lower` (bin lower bound in the column's type).
    pub label: Option<LabelStyle>,
    /// scrub: `placeholder` (default, `<EMAIL>`), `token` (needs `key`) or `mask`.
    pub replace_with: Option<ReplaceWith>,
    /// scrub: recognizer names to run (default: all that need no column context).
    pub recognizers: Option<Vec<String>>,
    /// scrub with tokens: token domain per recognizer (default: the recognizer's name).
    pub domains: Option<BTreeMap<String, String>>,
}

/// How `scrub` replaces an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceWith {
    Placeholder,
    Token,
    Mask,
}

/// A recognizer defined in the policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRecognizer {
    /// Stable name (also the placeholder: `<NAME>`, and the default token domain).
    pub name: String,
    /// Regular expression (Rust `regex` syntax); use `\\b` for word boundaries.
    pub pattern: String,
    /// A built-in validator to confirm matches: luhn, payment_card, iban, cn_resident_id,
    /// us_ssn, ipv4, ipv6, email, e164, cn_mobile, phone, date_of_birth, ...
    pub validator: Option<String>,
    /// DPV personal-data term, e.g. `pd:Identifier`.
    pub category: String,
}

// ---------------------------------------------------------------------------------------------
// The validated model.
// ---------------------------------------------------------------------------------------------

/// A loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub version: u64,
    pub controller: String,
    pub jurisdictions: Vec<Jurisdiction>,
    pub purpose: String,
    pub recipients: Vec<String>,
    pub data_subjects: Vec<String>,
    pub transfers: Vec<rules::Transfer>,
    pub retention: Option<String>,
    pub unlisted: Unlisted,
    /// Rules by input column name.
    pub fields: BTreeMap<String, Field>,
    /// Where the policy was loaded from.
    pub source: String,
    /// SHA-256 of the policy file's bytes, lowercase hex.
    pub sha256: String,
    /// Dataset-level privacy requirements, if the policy sets any.
    pub privacy: Option<PrivacySpec>,
    /// Built-in plus the policy's own recognizers.
    pub recognizers: Arc<RecognizerSet>,
    /// Rule outcomes a reviewer must see (docs/RULES.md); errors stop loading instead.
    pub warnings: Vec<rules::RuleWarning>,
}

/// A validated field rule.
#[derive(Debug, Clone)]
pub struct Field {
    pub input_name: String,
    pub output_name: String,
    pub action: Action,
    /// Basis per jurisdiction (empty for dropped fields).
    pub bases: BTreeMap<Jurisdiction, Basis>,
    pub category: Option<String>,
    /// DPV term for `category`.
    pub category_term: Option<String>,
    pub sensitive: bool,
    pub special_category: Option<SpecialCategory>,
    pub art9_condition: Option<Art9Condition>,
    pub separate_consent: bool,
    pub consent_ref: Option<String>,
    pub input_type: Option<String>,
    pub note: Option<String>,
    /// YAML position of the rule, for later (plan-time) errors.
    pub line: u64,
    pub column: u64,
}

/// A validated action with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Keep,
    Drop,
    Redact { replacement: Option<String> },
    Mask(MaskSpec),
    Tokenize(TokenizeSpec),
    Encrypt(EncryptSpec),
    Generalize(GeneralizeSpec),
    Scrub(ScrubSpec),
}

/// `scrub` parameters, with the policy's recognizers.
#[derive(Debug, Clone)]
pub struct ScrubSpec {
    pub mode: ScrubMode,
    /// Recognizers to run; `None`: every one that needs no column context.
    pub recognizers: Option<Vec<String>>,
    pub set: Arc<RecognizerSet>,
}

impl PartialEq for ScrubSpec {
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode
            && self.recognizers == other.recognizers
            && Arc::ptr_eq(&self.set, &other.set)
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Keep => ActionKind::Keep,
            Action::Drop => ActionKind::Drop,
            Action::Redact { .. } => ActionKind::Redact,
            Action::Mask(_) => ActionKind::Mask,
            Action::Tokenize(_) => ActionKind::Tokenize,
            Action::Encrypt(_) => ActionKind::Encrypt,
            Action::Generalize(_) => ActionKind::Generalize,
            Action::Scrub(_) => ActionKind::Scrub,
        }
    }
    /// The key id the action uses, if any.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Action::Tokenize(t) => Some(&t.key),
            Action::Encrypt(e) => Some(&e.key),
            Action::Scrub(ScrubSpec {
                mode: ScrubMode::Token { key, .. },
                ..
            }) => Some(key),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskSpec {
    pub keep_first: usize,
    pub keep_last: usize,
    pub mask_char: char,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenizeSpec {
    pub key: String,
    pub domain: String,
    pub length: usize,
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptSpec {
    pub key: String,
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeneralizeSpec {
    Date { to: DateLevel, label: LabelStyle },
    Number(NumberBins),
    Prefix { keep_prefix: usize },
}

/// Numeric generalization: optional bins plus optional top/bottom coding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberBins {
    pub bin_width: Option<f64>,
    pub breaks: Option<Vec<f64>>,
    pub top: Option<f64>,
    pub bottom: Option<f64>,
    pub label: LabelStyle,
}

impl Policy {
    /// Load and validate a policy file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::Policy {
            path: path.display().to_string(),
            message: format!("cannot read it: {e}"),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Policy {
            path: path.display().to_string(),
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// Parse and validate policy text; `source` names it in errors.
    pub fn from_yaml_str(text: &str, source: &str) -> Result<Self> {
        let err = |message: String| Error::Policy {
            path: source.to_string(),
            message,
        };
        let file: PolicyFile =
            serde_saphyr::from_str(text).map_err(|e| err(yaml_error_message(&e, source)))?;
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        validate(file, source, sha256)
    }

    /// The policy's fields that reach the output, in no particular order.
    pub fn output_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.values().filter(|f| f.action != Action::Drop)
    }
}

fn yaml_error_message(e: &serde_saphyr::Error, source: &str) -> String {
    // serde-saphyr's Display carries "line X column Y" and a snippet in most cases; make sure
    // of the position, and name the file in the snippet.
    // The user formatter: the default one gives hints for Rust programmers ("set
    // DuplicateKeyPolicy in Options", "use Option<String>").
    let full = e.render_with_formatter(&serde_saphyr::UserMessageFormatter);
    let msg = full
        .strip_prefix("error: ")
        .unwrap_or(&full)
        .replace("<input>", source);
    match e.location() {
        Some(loc) if !msg.contains(&format!("line {}", loc.line())) => {
            format!("line {} column {}: {msg}", loc.line(), loc.column())
        }
        _ => msg,
    }
}

fn validate(file: PolicyFile, source: &str, sha256: String) -> Result<Policy> {
    let perr = |message: String| Error::Policy {
        path: source.to_string(),
        message,
    };
    let jur_loc = file.jurisdictions.referenced;
    let mut jurisdictions = file.jurisdictions.value.clone();
    jurisdictions.sort();
    jurisdictions.dedup();
    if jurisdictions.is_empty() {
        return Err(perr(format!(
            "line {} column {}: `jurisdictions` is empty; name EU (GDPR), CN (PIPL) or both",
            jur_loc.line(),
            jur_loc.column()
        )));
    }
    if file.policy.trim().is_empty() {
        return Err(perr("`policy` (the policy's name) is empty".into()));
    }
    for (key, v) in [("controller", &file.controller), ("purpose", &file.purpose)] {
        if v.trim() == "TODO" {
            return Err(perr(format!(
                "`{key}` is TODO: a person must fill it in before the policy is used"
            )));
        }
    }
    let mut set = RecognizerSet::builtin()
        .map_err(|e| perr(format!("internal: built-in recognizers: {e}")))?;
    for r in &file.recognizers {
        let loc = r.referenced;
        let c = &r.value;
        set.add_custom(&c.name, &c.pattern, c.validator.as_deref(), &c.category)
            .map_err(|m| {
                perr(format!(
                    "recognizer `{}` (line {} column {}): {m}",
                    c.name,
                    loc.line(),
                    loc.column()
                ))
            })?;
    }
    let set = Arc::new(set);
    let mut fields = BTreeMap::new();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    for (name, spanned) in &file.fields {
        let loc = spanned.referenced;
        if name.trim().is_empty() {
            return Err(perr(format!(
                "line {} column {}: a field has an empty name; write the input column's name \
                 before the colon",
                loc.line(),
                loc.column()
            )));
        }
        let at = |m: String| {
            perr(format!(
                "field `{name}` (line {} column {}): {m}",
                loc.line(),
                loc.column()
            ))
        };
        let field = validate_field(
            name,
            &spanned.value,
            &jurisdictions,
            &set,
            loc.line(),
            loc.column(),
        )
        .map_err(at)?;
        if field.action != Action::Drop
            && let Some(other) = outputs.insert(field.output_name.clone(), name.clone())
        {
            return Err(perr(format!(
                "fields `{other}` and `{name}` both write output column `{}`; rename one",
                field.output_name
            )));
        }
        fields.insert(name.clone(), field);
    }
    let output_fields: Vec<&Field> = fields
        .values()
        .filter(|f| f.action != Action::Drop)
        .collect();
    let transfers: Vec<rules::Transfer> = file.transfers.iter().map(|t| t.value.clone()).collect();
    let warnings = rules::check(&jurisdictions, &file.recipients, &transfers, &output_fields)
        .map_err(|(i, m)| {
            let loc = file.transfers[i].referenced;
            perr(format!(
                "transfers (line {} column {}): {m}",
                loc.line(),
                loc.column()
            ))
        })?;
    let privacy = match &file.privacy {
        None => None,
        Some(b) => Some(
            privacy::validate_privacy(&b.value, &b.referenced, &fields, source).map_err(perr)?,
        ),
    };
    Ok(Policy {
        name: file.policy,
        version: file.version,
        controller: file.controller,
        jurisdictions,
        purpose: file.purpose,
        recipients: file.recipients,
        data_subjects: file.data_subjects,
        transfers,
        retention: file.retention,
        unlisted: file.unlisted,
        fields,
        source: source.to_string(),
        sha256,
        privacy,
        recognizers: set,
        warnings,
    })
}

/// Check one rule: parameters fit the action, lawful bases fit every jurisdiction.
fn validate_field(
    name: &str,
    r: &FieldRule,
    jurisdictions: &[Jurisdiction],
    set: &Arc<RecognizerSet>,
    line: u64,
    column: u64,
) -> std::result::Result<Field, String> {
    let action = validate_action(name, r, Some(set))?;
    let reaches_output = action != Action::Drop;

    let mut bases = BTreeMap::new();
    if reaches_output {
        let spec = r.basis.as_ref().ok_or_else(|| {
            format!(
                "`basis` is missing: every field that reaches the output needs a lawful basis in {} \
                 (or use `action: drop`)",
                jurisdictions.iter().map(|j| j.law()).collect::<Vec<_>>().join(" and ")
            )
        })?;
        for &j in jurisdictions {
            let word = match spec {
                BasisSpec::All(w) => w.clone(),
                BasisSpec::PerJurisdiction(m) => {
                    m.get(&j.to_string()).cloned().ok_or_else(|| {
                        format!(
                            "`basis` names no basis for {j} ({}); add `{j}: <basis>`",
                            j.law()
                        )
                    })?
                }
            };
            if word.trim() == "TODO" {
                return Err(format!(
                    "`basis` is TODO for {j} ({}): a person must choose the lawful basis; \
                     nothing is shared on a guessed one",
                    j.law()
                ));
            }
            let basis = Basis::parse(&word).ok_or_else(|| {
                format!(
                    "unknown basis `{word}`; use one of {}",
                    basis::ALL_BASES
                        .iter()
                        .map(|b| b.keyword())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            if basis.reference(j).is_none() {
                return Err(basis.unavailable_reason(j));
            }
            bases.insert(j, basis);
        }
        if let BasisSpec::PerJurisdiction(m) = spec {
            for k in m.keys() {
                if !jurisdictions.iter().any(|j| j.to_string() == *k) {
                    return Err(format!(
                        "`basis` names jurisdiction `{k}`, which the policy's `jurisdictions` does not list"
                    ));
                }
            }
        }
    }

    let pipl_sensitive = r.sensitive || r.special_category.is_some();
    if reaches_output
        && jurisdictions.contains(&Jurisdiction::CN)
        && pipl_sensitive
        && bases.get(&Jurisdiction::CN) == Some(&Basis::Consent)
        && !r.separate_consent
    {
        return Err("sensitive personal information relying on consent needs separate consent \
                 (PIPL Art. 29); set `separate_consent: true` once it is obtained, and `consent_ref`"
                .into());
    }
    if reaches_output
        && jurisdictions.contains(&Jurisdiction::EU)
        && r.special_category.is_some()
        && r.art9_condition.is_none()
    {
        return Err(
            "special-category data needs a GDPR Art. 9(2) condition besides the Art. 6 basis; \
             set `art9_condition` (e.g. explicit_consent, research)"
                .into(),
        );
    }
    if r.art9_condition.is_some() && r.special_category.is_none() {
        return Err(
            "`art9_condition` is set but `special_category` is not; name the Art. 9(1) category"
                .into(),
        );
    }

    let category_term = match &r.category {
        None => None,
        Some(c) => Some(basis::category_term(c).ok_or_else(|| {
            format!(
                "unknown category `{c}`; use one of {}",
                basis::CATEGORY_KEYWORDS
            )
        })?),
    };
    let output_name = r.rename.clone().unwrap_or_else(|| name.to_string());
    if output_name.trim().is_empty() {
        return Err(
            "`rename` is empty; give the output column a name, or leave `rename` out to keep \
             the input name"
                .into(),
        );
    }
    if let Some(t) = &r.input_type {
        crate::plan::parse_type_name(t)?;
    }
    Ok(Field {
        input_name: name.to_string(),
        output_name,
        action,
        bases,
        category: r.category.clone(),
        category_term,
        sensitive: pipl_sensitive,
        special_category: r.special_category,
        art9_condition: r.art9_condition,
        separate_consent: r.separate_consent,
        consent_ref: r.consent_ref.clone(),
        input_type: r.input_type.clone(),
        note: r.note.clone(),
        line,
        column,
    })
}

fn validate_action(
    name: &str,
    r: &FieldRule,
    set: Option<&Arc<RecognizerSet>>,
) -> std::result::Result<Action, String> {
    let kind = r.action;
    // Parameters present, by name, so that a stray one is named in the error.
    let present: Vec<(&str, bool)> = vec![
        ("key", r.key.is_some()),
        ("domain", r.domain.is_some()),
        ("length", r.length.is_some()),
        ("prefix", r.prefix.is_some()),
        ("keep_first", r.keep_first.is_some()),
        ("keep_last", r.keep_last.is_some()),
        ("mask_char", r.mask_char.is_some()),
        ("replacement", r.replacement.is_some()),
        ("to", r.to.is_some()),
        ("bin_width", r.bin_width.is_some()),
        ("breaks", r.breaks.is_some()),
        ("top", r.top.is_some()),
        ("bottom", r.bottom.is_some()),
        ("keep_prefix", r.keep_prefix.is_some()),
        ("label", r.label.is_some()),
        ("replace_with", r.replace_with.is_some()),
        ("recognizers", r.recognizers.is_some()),
        ("domains", r.domains.is_some()),
    ];
    let allowed: &[&str] = match kind {
        ActionKind::Keep | ActionKind::Drop => &[],
        ActionKind::Redact => &["replacement"],
        ActionKind::Mask => &["keep_first", "keep_last", "mask_char"],
        ActionKind::Tokenize => &["key", "domain", "length", "prefix"],
        ActionKind::Encrypt => &["key", "domain"],
        ActionKind::Scrub => match r.replace_with.unwrap_or(ReplaceWith::Placeholder) {
            ReplaceWith::Placeholder => &["replace_with", "recognizers"],
            ReplaceWith::Token => &[
                "replace_with",
                "recognizers",
                "key",
                "domains",
                "length",
                "prefix",
            ],
            ReplaceWith::Mask => &[
                "replace_with",
                "recognizers",
                "mask_char",
                "keep_first",
                "keep_last",
            ],
        },
        ActionKind::Generalize => &[
            "to",
            "bin_width",
            "breaks",
            "top",
            "bottom",
            "keep_prefix",
            "label",
        ],
    };
    for (p, given) in &present {
        if *given && !allowed.contains(p) {
            return Err(format!(
                "`{p}` is not a parameter of `{}`{}",
                kind.keyword(),
                if allowed.is_empty() {
                    " (it takes none)".to_string()
                } else {
                    format!(" (it takes: {})", allowed.join(", "))
                }
            ));
        }
    }
    let domain = || r.domain.clone().unwrap_or_else(|| name.to_string());
    let key = || {
        r.key.clone().ok_or_else(|| {
            format!(
                "`{}` needs `key`: the id of a key in the keyring",
                kind.keyword()
            )
        })
    };
    Ok(match kind {
        ActionKind::Scrub => {
            let set = set.ok_or("`scrub` is not available here")?;
            if let Some(names) = &r.recognizers {
                if names.is_empty() {
                    return Err(
                        "`recognizers` is empty; list recognizer names or leave it out".into(),
                    );
                }
                set.subset(names)?;
            }
            let mode = match r.replace_with.unwrap_or(ReplaceWith::Placeholder) {
                ReplaceWith::Placeholder => ScrubMode::Placeholder,
                ReplaceWith::Token => {
                    let length = r.length.unwrap_or(32);
                    if !(1..=64).contains(&length) {
                        return Err(format!(
                            "`length` is {length}; it must be 1 to 64 hex characters"
                        ));
                    }
                    ScrubMode::Token {
                        key: key()?,
                        domains: r.domains.clone().unwrap_or_default(),
                        length,
                        prefix: r.prefix.clone().unwrap_or_default(),
                    }
                }
                ReplaceWith::Mask => {
                    let (keep_first, keep_last) = mask_keeps(r)?;
                    ScrubMode::Mask {
                        mask_char: r.mask_char.unwrap_or('*'),
                        keep_first,
                        keep_last,
                    }
                }
            };
            Action::Scrub(ScrubSpec {
                mode,
                recognizers: r.recognizers.clone(),
                set: Arc::clone(set),
            })
        }
        ActionKind::Keep => Action::Keep,
        ActionKind::Drop => Action::Drop,
        ActionKind::Redact => Action::Redact {
            replacement: r.replacement.as_ref().map(Constant::as_text),
        },
        ActionKind::Mask => {
            let mask_char = r.mask_char.unwrap_or('*');
            if mask_char.is_control() {
                return Err("`mask_char` must be a printable character".into());
            }
            let (keep_first, keep_last) = mask_keeps(r)?;
            Action::Mask(MaskSpec {
                keep_first,
                keep_last,
                mask_char,
            })
        }
        ActionKind::Tokenize => {
            let length = r.length.unwrap_or(32);
            if !(1..=64).contains(&length) {
                return Err(format!(
                    "`length` is {length}; it must be 1 to 64 hex characters"
                ));
            }
            Action::Tokenize(TokenizeSpec {
                key: key()?,
                domain: domain(),
                length,
                prefix: r.prefix.clone().unwrap_or_default(),
            })
        }
        ActionKind::Encrypt => Action::Encrypt(EncryptSpec {
            key: key()?,
            domain: domain(),
        }),
        ActionKind::Generalize => {
            let date = r.to.is_some();
            let number = r.bin_width.is_some()
                || r.breaks.is_some()
                || r.top.is_some()
                || r.bottom.is_some();
            let prefix = r.keep_prefix.is_some();
            let label = r.label.unwrap_or_default();
            match (date, number, prefix) {
                (true, false, false) => Action::Generalize(GeneralizeSpec::Date {
                    to: r.to.unwrap_or(DateLevel::Year),
                    label,
                }),
                (false, true, false) => {
                    if r.bin_width.is_some() && r.breaks.is_some() {
                        return Err("use either `bin_width` or `breaks`, not both".into());
                    }
                    let bins = NumberBins {
                        bin_width: r.bin_width,
                        breaks: r.breaks.clone(),
                        top: r.top,
                        bottom: r.bottom,
                        label,
                    };
                    crate::kernels::generalize::check_number_bins(&bins)?;
                    Action::Generalize(GeneralizeSpec::Number(bins))
                }
                (false, false, true) => {
                    if r.label.is_some() {
                        return Err("`label` does not apply to `keep_prefix`".into());
                    }
                    Action::Generalize(GeneralizeSpec::Prefix {
                        keep_prefix: r.keep_prefix.unwrap_or(0),
                    })
                }
                (false, false, false) => {
                    return Err(
                        "`generalize` needs `to` (dates), `bin_width`/`breaks`/`top`/`bottom` \
                         (numbers) or `keep_prefix` (strings)"
                            .into(),
                    );
                }
                _ => {
                    return Err("`generalize` mixes parameters of different kinds: use `to` for dates, \
                         `bin_width`/`breaks`/`top`/`bottom` for numbers, or `keep_prefix` for strings"
                        .into());
                }
            }
        }
    })
}

/// Largest `keep_first` / `keep_last`: more is never meaningful, and huge values once
/// wrapped around in `keep_first + keep_last` and revealed values.
pub const MAX_MASK_KEEP: usize = 1000;

/// `keep_first` and `keep_last` of `mask` (or `scrub` with masks), bounded.
fn mask_keeps(r: &FieldRule) -> std::result::Result<(usize, usize), String> {
    let mut out = [0usize; 2];
    for (o, (name, v)) in out
        .iter_mut()
        .zip([("keep_first", r.keep_first), ("keep_last", r.keep_last)])
    {
        let v = v.unwrap_or(0);
        if v > MAX_MASK_KEEP {
            return Err(format!(
                "`{name}` is {v}; it must be at most {MAX_MASK_KEEP} characters"
            ));
        }
        *o = v;
    }
    Ok((out[0], out[1]))
}

/// The JSON Schema of the policy file format, for editors (`cloakline schema`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(PolicyFile);
    serde_json::to_value(&schema).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests;
