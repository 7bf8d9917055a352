//! GDPR (EU): the six Art. 6(1) bases, the Art. 9(2) conditions for special categories,
//! Chapter V transfers and the Art. 35 impact assessment.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Jurisdiction, Outcome, Processing, Regime, Rule};
use crate::error::Problem;
use crate::policy::FieldRule;
use crate::policy::basis::{Basis, BasisRef};
use crate::policy::rules::{Mechanism, RuleWarning, Transfer};

pub static GDPR: Regime = Regime {
    jurisdiction: Jurisdiction::EU,
    code: "EU",
    law: "GDPR",
    dpv_location: "loc:EU",
    bases: BASES,
    rules: &[BASIS, SPECIAL_CATEGORY, ASSESSMENT, TRANSFER],
    missing_basis,
    check_field,
    check_transfer,
    warnings,
};

pub const BASIS: Rule = Rule {
    id: "GDPR-6",
    article: "GDPR Art. 6(1)",
    summary: "every output field has one of the six bases (a)–(f)",
    outcome: Outcome::Error,
};
pub const SPECIAL_CATEGORY: Rule = Rule {
    id: "GDPR-9",
    article: "GDPR Art. 9(1)–(2)",
    summary: "a special category needs an Art. 9(2) condition, and a condition a category",
    outcome: Outcome::Error,
};
pub const ASSESSMENT: Rule = Rule {
    id: "GDPR-35",
    article: "GDPR Art. 35",
    summary: "special-category data: check whether a DPIA is required",
    outcome: Outcome::Warning,
};
pub const TRANSFER: Rule = Rule {
    id: "GDPR-44",
    article: "GDPR Art. 44–49",
    summary: "a transfer outside the EEA needs a Chapter V ground",
    outcome: Outcome::Error,
};

const fn r(article: &'static str, dpv: &'static str, legal_term: &'static str) -> BasisRef {
    BasisRef {
        article,
        dpv,
        legal_term,
    }
}

const BASES: &[(Basis, BasisRef)] = &[
    (
        Basis::Consent,
        r("GDPR Art. 6(1)(a)", "dpv:Consent", "eu-gdpr:A6-1-a"),
    ),
    (
        Basis::Contract,
        r("GDPR Art. 6(1)(b)", "dpv:Contract", "eu-gdpr:A6-1-b"),
    ),
    (
        Basis::LegalObligation,
        r("GDPR Art. 6(1)(c)", "dpv:LegalObligation", "eu-gdpr:A6-1-c"),
    ),
    (
        Basis::VitalInterests,
        r("GDPR Art. 6(1)(d)", "dpv:VitalInterest", "eu-gdpr:A6-1-d"),
    ),
    (
        Basis::PublicTask,
        r("GDPR Art. 6(1)(e)", "dpv:PublicInterest", "eu-gdpr:A6-1-e"),
    ),
    (
        Basis::LegitimateInterests,
        r(
            "GDPR Art. 6(1)(f)",
            "dpv:LegitimateInterest",
            "eu-gdpr:A6-1-f",
        ),
    ),
];

/// EEA member states (GDPR applies; no transfer rules between them).
const EEA: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// Whether data sent to `country` (an upper-case ISO code) leaves the EEA.
pub fn leaves(country: &str) -> bool {
    !EEA.contains(&country)
}

fn missing_basis(b: Basis) -> String {
    format!(
        "GDPR Art. 6(1) has no `{}` basis (it is a PIPL Art. 13 item); use one of consent, contract, \
         legal_obligation, vital_interests, public_task, legitimate_interests",
        b.keyword()
    )
}

/// GDPR-9: special-category data needs an Art. 9(2) condition besides the Art. 6 basis.
fn check_field(r: &FieldRule, _basis: Basis) -> Result<(), Problem> {
    if r.special_category.is_some() && r.art9_condition.is_none() {
        return Err(Problem::breach(
            "GDPR-9",
            "special-category data needs a GDPR Art. 9(2) condition besides the Art. 6 basis; \
             set `art9_condition` (e.g. explicit_consent, research)",
        ));
    }
    Ok(())
}

/// GDPR-44: leaving the EEA needs an Art. 45-49 ground.
fn check_transfer(t: &Transfer, country: &str) -> Result<(), Problem> {
    let ok = matches!(
        t.mechanism,
        Some(
            Mechanism::Adequacy
                | Mechanism::StandardContract
                | Mechanism::BindingCorporateRules
                | Mechanism::Certification
                | Mechanism::Derogation
        )
    );
    if leaves(country) && !ok {
        return Err(Problem::breach(
            "GDPR-44",
            format!(
                "transfer to `{}` in {country} leaves the EEA: GDPR Art. 44 needs a Chapter V \
                 ground: `mechanism: adequacy` (Art. 45), `standard_contract` or \
                 `binding_corporate_rules` (Art. 46-47), `certification` (Art. 46(2)(f)) or \
                 `derogation` (Art. 49)",
                t.recipient
            ),
        ));
    }
    Ok(())
}

/// GDPR-35: special-category data may need a DPIA.
fn warnings(p: &Processing<'_>, w: &mut Vec<RuleWarning>) {
    for f in p.fields {
        if f.special_category.is_some() {
            w.push(
                ASSESSMENT.warn(
                    Some(f.input_name.clone()),
                    "special-category data: check whether a data protection impact \
                 assessment is required (Art. 35(3)(b) for large scale)"
                        .into(),
                ),
            );
        }
    }
}

/// GDPR Art. 9(2) conditions for special categories of personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Art9Condition {
    /// (a) explicit consent.
    ExplicitConsent,
    /// (b) employment, social security and social protection law.
    Employment,
    /// (c) vital interests where consent cannot be given.
    VitalInterests,
    /// (d) not-for-profit bodies.
    NotForProfit,
    /// (e) made manifestly public by the data subject.
    MadePublic,
    /// (f) legal claims or courts.
    LegalClaims,
    /// (g) substantial public interest.
    SubstantialPublicInterest,
    /// (h) health or social care.
    HealthCare,
    /// (i) public health.
    PublicHealth,
    /// (j) archiving, research or statistics.
    Research,
}

impl Art9Condition {
    /// Article and GDPR-extension term.
    pub fn reference(self) -> (&'static str, &'static str) {
        use Art9Condition::*;
        match self {
            ExplicitConsent => ("GDPR Art. 9(2)(a)", "eu-gdpr:A9-2-a"),
            Employment => ("GDPR Art. 9(2)(b)", "eu-gdpr:A9-2-b"),
            VitalInterests => ("GDPR Art. 9(2)(c)", "eu-gdpr:A9-2-c"),
            NotForProfit => ("GDPR Art. 9(2)(d)", "eu-gdpr:A9-2-d"),
            MadePublic => ("GDPR Art. 9(2)(e)", "eu-gdpr:A9-2-e"),
            LegalClaims => ("GDPR Art. 9(2)(f)", "eu-gdpr:A9-2-f"),
            SubstantialPublicInterest => ("GDPR Art. 9(2)(g)", "eu-gdpr:A9-2-g"),
            HealthCare => ("GDPR Art. 9(2)(h)", "eu-gdpr:A9-2-h"),
            PublicHealth => ("GDPR Art. 9(2)(i)", "eu-gdpr:A9-2-i"),
            Research => ("GDPR Art. 9(2)(j)", "eu-gdpr:A9-2-j"),
        }
    }
}

/// The other half of GDPR-9, checked whatever the jurisdictions: `art9_condition` belongs to
/// the field vocabulary every policy shares, and alone it means a category was left out.
pub(crate) fn check_condition_has_category(r: &FieldRule) -> Result<(), Problem> {
    if r.art9_condition.is_some() && r.special_category.is_none() {
        return Err(Problem::breach(
            "GDPR-9",
            "`art9_condition` is set but `special_category` is not; name the Art. 9(1) category",
        ));
    }
    Ok(())
}
