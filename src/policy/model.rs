//! The policy's types: the file as written (serde model, also the source of `cloakline
//! schema`) and the validated model. Re-exported from `policy`.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::basis::{Art9Condition, Basis, Jurisdiction, SpecialCategory};
use super::consent;
use super::privacy::{self, PrivacySpec};
use super::rules;
use crate::kernels::generalize::{DateLevel, GeneralizeSpec, LabelStyle};
use crate::kernels::scrub::ScrubMode;
use crate::recognizers::RecognizerSet;

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
    /// A consent ledger the run enforces for fields on consent (docs/CONSENT.md).
    #[schemars(with = "Option<consent::ConsentBlock>")]
    pub consent: Option<Spanned<consent::ConsentBlock>>,
    /// The release record: recipient, release model, threat model, risk threshold, approver,
    /// re-evaluation date (docs/CONSENT.md).
    #[schemars(with = "Option<consent::ReleaseBlock>")]
    pub release: Option<Spanned<consent::ReleaseBlock>>,
}

/// Handling of columns the policy does not mention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unlisted {
    /// Refuse to run (the default): every column must be reviewed.
    #[default]
    Error,
    /// Leave unlisted columns out of the output.
    Drop,
}

/// The action applied to a field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// AES-SIV envelope (RFC 5297): deterministic, so joinable, and reversible with the key.
    EncryptDeterministic,
    /// Format-preserving encryption (NIST FF1) over an alphabet: same length and separators,
    /// reversible with the key.
    Fpe,
    /// Move each subject's dates by one keyed offset within ±`max_days` (`keyed_by`: the
    /// subject's id column): intervals within a subject survive.
    ShiftDate,
    /// Add keyed Laplace or Gaussian noise of `scale` (`keyed_by`: the column whose value
    /// keys each row's draw).
    Noise,
    /// Coarsen: dates to a period (`to`), numbers to bins (`bin_width`/`breaks`, `top`/`bottom`),
    /// strings to a prefix (`keep_prefix`).
    Generalize,
    /// Free text: replace every recognized entity (email, phone, ID number, ...) with a
    /// placeholder, a token or a mask (`replace_with`).
    Scrub,
    /// A transform registered with [`crate::kernels::custom::register`]; its parameters go
    /// under `params:`.
    #[schemars(skip)]
    Custom(&'static str),
}

/// The built-in actions, in documentation order.
const BUILT_IN: [ActionKind; 12] = [
    ActionKind::Keep,
    ActionKind::Drop,
    ActionKind::Redact,
    ActionKind::Mask,
    ActionKind::Tokenize,
    ActionKind::Encrypt,
    ActionKind::EncryptDeterministic,
    ActionKind::Fpe,
    ActionKind::ShiftDate,
    ActionKind::Noise,
    ActionKind::Generalize,
    ActionKind::Scrub,
];

impl ActionKind {
    /// The action a policy keyword names, built in or registered.
    pub fn from_keyword(word: &str) -> Option<ActionKind> {
        BUILT_IN
            .into_iter()
            .find(|a| a.keyword() == word)
            .or_else(|| {
                crate::kernels::custom::custom(word)
                    .map(|t| ActionKind::Custom(t.descriptor().name))
            })
    }

    pub fn keyword(self) -> &'static str {
        match self {
            ActionKind::Custom(name) => name,
            ActionKind::Keep => "keep",
            ActionKind::Drop => "drop",
            ActionKind::Redact => "redact",
            ActionKind::Mask => "mask",
            ActionKind::Tokenize => "tokenize",
            ActionKind::Encrypt => "encrypt",
            ActionKind::EncryptDeterministic => "encrypt_deterministic",
            ActionKind::Fpe => "fpe",
            ActionKind::ShiftDate => "shift_date",
            ActionKind::Noise => "noise",
            ActionKind::Generalize => "generalize",
            ActionKind::Scrub => "scrub",
        }
    }
}

impl<'de> Deserialize<'de> for ActionKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        ActionKind::from_keyword(&word).ok_or_else(|| {
            let mut known: Vec<&str> = BUILT_IN.iter().map(|a| a.keyword()).collect();
            let custom = crate::kernels::custom::customs();
            known.extend(custom.iter().map(|t| t.descriptor().name));
            serde::de::Error::custom(format!(
                "unknown action `{word}`, expected one of {}",
                known.join(", ")
            ))
        })
    }
}

impl Serialize for ActionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.keyword())
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
#[non_exhaustive]
pub enum Constant {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Constant {
    pub(super) fn as_text(&self) -> String {
        match self {
            Constant::Bool(b) => b.to_string(),
            Constant::Int(i) => i.to_string(),
            Constant::Float(f) => f.to_string(),
            Constant::Text(s) => s.clone(),
        }
    }
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

    /// tokenize, encrypt, encrypt_deterministic, fpe: key id in the keyring.
    pub key: Option<String>,
    /// tokenize, encrypt, encrypt_deterministic, fpe: key-derivation domain (default: the
    /// field name). Same key + domain gives the same tokens across datasets.
    pub domain: Option<String>,
    /// fpe: the alphabet enciphered over: `digits`, `hex`, `lower`, `upper`,
    /// `lower_alphanumeric`, `upper_alphanumeric` or `alphanumeric` (default `digits`).
    pub alphabet: Option<String>,
    /// fpe: a custom alphabet instead, its characters in order (2 to 65,536, each once).
    pub characters: Option<String>,
    /// fpe: characters kept in place and not enciphered, e.g. `" -"` for card numbers.
    pub separators: Option<String>,
    /// fpe: keep the number valid under the Luhn check (card numbers; needs `digits`).
    pub luhn: Option<bool>,
    /// fpe: a value outside the alphabet or too short for FF1: `error` (default) or `null`.
    pub on_invalid: Option<crate::kernels::fpe::OnInvalid>,
    /// shift_date, noise: the input column whose value keys the shift or the noise (a
    /// subject or record id); rows where it is null give null.
    pub keyed_by: Option<String>,
    /// shift_date: the largest shift in days, 1 to 36500 (every date moves by 1 to this many
    /// days, earlier or later).
    pub max_days: Option<u32>,
    /// noise: `laplace` (default) or `gaussian`.
    pub distribution: Option<crate::kernels::subject::Distribution>,
    /// noise: the distribution's scale (Laplace b, Gaussian σ), in the column's unit.
    pub scale: Option<f64>,
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
    /// A registered transform's parameters (see `cloakline schema` for each one's list).
    pub params: Option<BTreeMap<String, serde_json::Value>>,
}

/// How `scrub` replaces an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// The policy text as loaded (key ids, never keys): a cluster's executors rebuild the
    /// kernels of a policy view from it.
    pub text: Arc<str>,
    /// Dataset-level privacy requirements, if the policy sets any.
    pub privacy: Option<PrivacySpec>,
    /// The consent ledger the run enforces, if the policy has one.
    pub consent: Option<consent::ConsentSpec>,
    /// The release record, if the policy has one.
    pub release: Option<consent::ReleaseSpec>,
    /// Built-in plus the policy's own recognizers.
    pub recognizers: Arc<RecognizerSet>,
    /// Rule outcomes a reviewer must see (docs/RULES.md); errors stop loading instead.
    pub warnings: Vec<rules::RuleWarning>,
}

/// One problem found while loading a policy, placed for people and machines (`validate
/// --json`). Loading reports every problem it finds, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PolicyProblem {
    /// YAML line and column of what is wrong, when known.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// The policy field (input column) it concerns, if any.
    pub field: Option<String>,
    /// What is wrong and what to do, with its place ("field `a` (line 7 column 6): ...").
    pub message: String,
    /// The lawful-basis rule it breaks (an id from docs/RULES.md), when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// The message with a snippet of the file, for a YAML error shown on its own.
    #[serde(skip)]
    pub(crate) detail: Option<String>,
}

impl PolicyProblem {
    pub fn new(message: impl Into<String>) -> Self {
        PolicyProblem {
            line: None,
            column: None,
            field: None,
            message: message.into(),
            rule: None,
            detail: None,
        }
    }
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
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
#[non_exhaustive]
pub enum Action {
    Keep,
    Drop,
    Redact {
        replacement: Option<String>,
    },
    Mask(MaskSpec),
    Tokenize(TokenizeSpec),
    Encrypt(EncryptSpec),
    EncryptDeterministic(EncryptSpec),
    Fpe(crate::kernels::FpeSpec),
    ShiftDate(crate::kernels::subject::ShiftDateSpec),
    Noise(crate::kernels::subject::NoiseSpec),
    Generalize(GeneralizeSpec),
    Scrub(ScrubSpec),
    /// A registered transform with its (type-checked) parameters.
    Custom(CustomAction),
}

/// A use of a registered transform.
#[derive(Debug, Clone)]
pub struct CustomAction {
    pub transform: &'static dyn crate::kernels::custom::CustomTransform,
    pub params: crate::kernels::custom::Params,
}

impl PartialEq for CustomAction {
    fn eq(&self, other: &Self) -> bool {
        self.transform.descriptor().name == other.transform.descriptor().name
            && self.params == other.params
    }
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
    /// What this action is, for provenance, lineage, SQL and the writer (see
    /// [`crate::kernels::descriptor`]). Scrubbing with tokens is a pseudonymisation measure.
    pub fn descriptor(&self) -> &'static crate::kernels::descriptor::Transform {
        use crate::kernels::descriptor as d;
        match self {
            Action::Keep => &d::KEEP,
            Action::Drop => &d::DROP,
            Action::Redact { .. } => &d::REDACT,
            Action::Mask(_) => &d::MASK,
            Action::Tokenize(_) => &d::TOKENIZE,
            Action::Encrypt(_) => &d::ENCRYPT,
            Action::EncryptDeterministic(_) => &d::ENCRYPT_DETERMINISTIC,
            Action::Fpe(_) => &d::FPE,
            Action::ShiftDate(_) => &d::SHIFT_DATE,
            Action::Noise(_) => &d::NOISE,
            Action::Generalize(_) => &d::GENERALIZE,
            Action::Scrub(s) if matches!(s.mode, ScrubMode::Token { .. }) => &d::SCRUB_TOKENS,
            Action::Scrub(_) => &d::SCRUB,
            Action::Custom(c) => c.transform.descriptor(),
        }
    }

    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Keep => ActionKind::Keep,
            Action::Drop => ActionKind::Drop,
            Action::Redact { .. } => ActionKind::Redact,
            Action::Mask(_) => ActionKind::Mask,
            Action::Tokenize(_) => ActionKind::Tokenize,
            Action::Encrypt(_) => ActionKind::Encrypt,
            Action::EncryptDeterministic(_) => ActionKind::EncryptDeterministic,
            Action::Fpe(_) => ActionKind::Fpe,
            Action::ShiftDate(_) => ActionKind::ShiftDate,
            Action::Noise(_) => ActionKind::Noise,
            Action::Generalize(_) => ActionKind::Generalize,
            Action::Scrub(_) => ActionKind::Scrub,
            Action::Custom(c) => ActionKind::Custom(c.transform.descriptor().name),
        }
    }
    /// The input column that keys the action's draws (`shift_date`, `noise`).
    pub fn keyed_by(&self) -> Option<&str> {
        match self {
            Action::ShiftDate(s) => Some(&s.keyed_by),
            Action::Noise(n) => Some(&n.keyed_by),
            _ => None,
        }
    }

    /// The key id the action uses, if any.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Action::Tokenize(t) => Some(&t.key),
            Action::Encrypt(e) | Action::EncryptDeterministic(e) => Some(&e.key),
            Action::Fpe(f) => Some(&f.key),
            Action::ShiftDate(s) => Some(&s.key),
            Action::Noise(n) => Some(&n.key),
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
