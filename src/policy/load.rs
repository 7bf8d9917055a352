//! Loading a policy: YAML parsing with positions, and the checks that turn a [`PolicyFile`]
//! into a [`Policy`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::action::validate_action;
use super::basis::{self, Basis, Jurisdiction};
use super::jurisdiction::{REGIMES, eu};
use super::model::{Action, BasisSpec, Field, FieldRule, Policy, PolicyFile};
use super::{parse_type_name, privacy, rules};
use crate::error::{Error, Problem, Result};
use crate::recognizers::RecognizerSet;

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
        let file: PolicyFile = serde_saphyr::from_str(text)
            .map_err(|e| policy_error(source, yaml_error_message(&e, source)))?;
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        validate(file, source, sha256)
    }

    /// The policy's fields that reach the output, in no particular order.
    pub fn output_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.values().filter(|f| f.action != Action::Drop)
    }
}

fn policy_error(source: &str, message: impl std::fmt::Display) -> Error {
    Error::Policy {
        path: source.to_string(),
        message: message.to_string(),
    }
}

/// A problem with the policy: a breach of a lawful-basis rule keeps its rule id.
fn problem_error(source: &str, p: Problem) -> Error {
    match p.rule {
        Some(rule) => Error::Rule {
            path: source.to_string(),
            rule,
            message: p.message,
        },
        None => policy_error(source, p.message),
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
    let perr = |p: Problem| problem_error(source, p);
    let jurisdictions = check_header(&file).map_err(perr)?;
    let set = recognizer_set(&file).map_err(perr)?;
    let fields = validate_fields(&file, &jurisdictions, &set).map_err(perr)?;
    let output_fields: Vec<&Field> = fields
        .values()
        .filter(|f| f.action != Action::Drop)
        .collect();
    let transfers: Vec<rules::Transfer> = file.transfers.iter().map(|t| t.value.clone()).collect();
    let warnings = rules::check(&jurisdictions, &file.recipients, &transfers, &output_fields)
        .map_err(|(i, m)| {
            let loc = file.transfers[i].referenced;
            let at = format!("transfers (line {} column {})", loc.line(), loc.column());
            problem_error(source, m.context(at))
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

/// The policy-wide entries: jurisdictions (sorted, without repeats), name, and no TODO left.
fn check_header(file: &PolicyFile) -> std::result::Result<Vec<Jurisdiction>, Problem> {
    let jur_loc = file.jurisdictions.referenced;
    let mut jurisdictions = file.jurisdictions.value.clone();
    jurisdictions.sort();
    jurisdictions.dedup();
    if jurisdictions.is_empty() {
        return Err(Problem(format!(
            "line {} column {}: `jurisdictions` is empty; name EU (GDPR), CN (PIPL) or both",
            jur_loc.line(),
            jur_loc.column()
        )));
    }
    if file.policy.trim().is_empty() {
        return Err(Problem::new("`policy` (the policy's name) is empty"));
    }
    for (key, v) in [("controller", &file.controller), ("purpose", &file.purpose)] {
        if v.trim() == "TODO" {
            return Err(Problem::breach(
                "DRAFT",
                format!("`{key}` is TODO: a person must fill it in before the policy is used"),
            ));
        }
    }
    Ok(jurisdictions)
}

/// The built-in recognizers plus the policy's own.
fn recognizer_set(file: &PolicyFile) -> std::result::Result<Arc<RecognizerSet>, Problem> {
    let mut set =
        RecognizerSet::builtin().map_err(|e| format!("internal: built-in recognizers: {e}"))?;
    for r in &file.recognizers {
        let loc = r.referenced;
        let c = &r.value;
        set.add_custom(&c.name, &c.pattern, c.validator.as_deref(), &c.category)
            .map_err(|m| {
                Problem(format!(
                    "recognizer `{}` (line {} column {}): {m}",
                    c.name,
                    loc.line(),
                    loc.column()
                ))
            })?;
    }
    Ok(Arc::new(set))
}

/// Every field rule, and no two fields writing the same output column.
fn validate_fields(
    file: &PolicyFile,
    jurisdictions: &[Jurisdiction],
    set: &Arc<RecognizerSet>,
) -> std::result::Result<BTreeMap<String, Field>, Problem> {
    let mut fields = BTreeMap::new();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    for (name, spanned) in &file.fields {
        let loc = spanned.referenced;
        if name.trim().is_empty() {
            return Err(Problem(format!(
                "line {} column {}: a field has an empty name; write the input column's name \
                 before the colon",
                loc.line(),
                loc.column()
            )));
        }
        let field = validate_field(
            name,
            &spanned.value,
            jurisdictions,
            set,
            loc.line(),
            loc.column(),
        )
        .map_err(|m| {
            m.context(format_args!(
                "field `{name}` (line {} column {})",
                loc.line(),
                loc.column()
            ))
        })?;
        if field.action != Action::Drop
            && let Some(other) = outputs.insert(field.output_name.clone(), name.clone())
        {
            return Err(Problem(format!(
                "fields `{other}` and `{name}` both write output column `{}`; rename one",
                field.output_name
            )));
        }
        fields.insert(name.clone(), field);
    }
    Ok(fields)
}

/// Check one rule: parameters fit the action, lawful bases fit every jurisdiction.
fn validate_field(
    name: &str,
    r: &FieldRule,
    jurisdictions: &[Jurisdiction],
    set: &Arc<RecognizerSet>,
    line: u64,
    column: u64,
) -> std::result::Result<Field, Problem> {
    let action = validate_action(name, r, Some(set))?;
    let reaches_output = action != Action::Drop;
    let bases = if reaches_output {
        lawful_bases(r, jurisdictions)?
    } else {
        BTreeMap::new()
    };
    let pipl_sensitive = r.sensitive || r.special_category.is_some();
    check_sensitive(r, &bases, reaches_output)?;
    let category_term = category_term(r)?;
    let output_name = r.rename.clone().unwrap_or_else(|| name.to_string());
    if output_name.trim().is_empty() {
        return Err(Problem::new(
            "`rename` is empty; give the output column a name, or leave `rename` out to keep \
             the input name",
        ));
    }
    if let Some(t) = &r.input_type {
        parse_type_name(t)?;
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

/// The basis of a field that reaches the output, in every jurisdiction of the policy.
fn lawful_bases(
    r: &FieldRule,
    jurisdictions: &[Jurisdiction],
) -> std::result::Result<BTreeMap<Jurisdiction, Basis>, Problem> {
    let spec = r.basis.as_ref().ok_or_else(|| {
        Problem(format!(
            "`basis` is missing: every field that reaches the output needs a lawful basis in {} \
             (or use `action: drop`)",
            jurisdictions
                .iter()
                .map(|j| j.law())
                .collect::<Vec<_>>()
                .join(" and ")
        ))
    })?;
    let mut bases = BTreeMap::new();
    for &j in jurisdictions {
        bases.insert(j, basis_in(spec, j)?);
    }
    if let BasisSpec::PerJurisdiction(m) = spec {
        for k in m.keys() {
            if !jurisdictions.iter().any(|j| j.to_string() == *k) {
                return Err(Problem(format!(
                    "`basis` names jurisdiction `{k}`, which the policy's `jurisdictions` does not list"
                )));
            }
        }
    }
    Ok(bases)
}

/// The basis `spec` gives for `j`, which must exist and be available under its law.
/// The GDPR-6 and PIPL-13 rules (the basis table of `j`'s module), and DRAFT for a TODO basis.
fn basis_in(spec: &BasisSpec, j: Jurisdiction) -> std::result::Result<Basis, Problem> {
    let word = match spec {
        BasisSpec::All(w) => w.clone(),
        BasisSpec::PerJurisdiction(m) => m.get(&j.to_string()).cloned().ok_or_else(|| {
            Problem(format!(
                "`basis` names no basis for {j} ({}); add `{j}: <basis>`",
                j.law()
            ))
        })?,
    };
    if word.trim() == "TODO" {
        return Err(Problem::breach(
            "DRAFT",
            format!(
                "`basis` is TODO for {j} ({}): a person must choose the lawful basis; \
             nothing is shared on a guessed one",
                j.law()
            ),
        ));
    }
    let basis = Basis::parse(&word).ok_or_else(|| {
        Problem(format!(
            "unknown basis `{word}`; use one of {}",
            basis::ALL_BASES
                .iter()
                .map(|b| b.keyword())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if basis.reference(j).is_none() {
        let rule = match j {
            Jurisdiction::EU => "GDPR-6",
            Jurisdiction::CN => "PIPL-13",
        };
        return Err(Problem::breach(rule, basis.unavailable_reason(j)));
    }
    Ok(basis)
}

/// The field rules of each law the policy names (registry order), for a field that reaches
/// the output; then an Art. 9(2) condition without its category, in every policy.
fn check_sensitive(
    r: &FieldRule,
    bases: &BTreeMap<Jurisdiction, Basis>,
    reaches_output: bool,
) -> std::result::Result<(), Problem> {
    if reaches_output {
        for regime in REGIMES {
            if let Some(&b) = bases.get(&regime.jurisdiction) {
                (regime.check_field)(r, b)?;
            }
        }
    }
    eu::check_condition_has_category(r)
}

/// The DPV term of the rule's `category`, if it has one.
fn category_term(r: &FieldRule) -> std::result::Result<Option<String>, Problem> {
    match &r.category {
        None => Ok(None),
        Some(c) => Ok(Some(basis::category_term(c).ok_or_else(|| {
            Problem(format!(
                "unknown category `{c}`; use one of {}",
                basis::CATEGORY_KEYWORDS
            ))
        })?)),
    }
}
