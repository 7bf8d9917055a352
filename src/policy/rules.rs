//! Policy-wide lawful-basis rules beyond the per-field checks: provision to other handlers,
//! cross-border transfers and impact-assessment triggers. The table is in `docs/RULES.md`;
//! errors stop loading, warnings are kept on the policy and shown by `validate`, recorded in
//! provenance and listed in reports.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Basis, Field, Jurisdiction};

/// A transfer of the output to a recipient in another country.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Who receives the data (as in `recipients`).
    pub recipient: String,
    /// ISO 3166-1 alpha-2 country code of the recipient, e.g. `US`, `DE`, `CN`.
    pub country: String,
    /// The safeguard relied on: `adequacy`, `standard_contract`, `binding_corporate_rules`,
    /// `certification`, `security_assessment`, `derogation`.
    pub mechanism: Option<Mechanism>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mechanism {
    /// GDPR Art. 45 adequacy decision.
    Adequacy,
    /// GDPR Art. 46(2)(c) standard contractual clauses / PIPL Art. 38(1)(3) standard contract.
    StandardContract,
    /// GDPR Art. 47.
    BindingCorporateRules,
    /// GDPR Art. 42 / PIPL Art. 38(1)(2) personal-information-protection certification.
    Certification,
    /// PIPL Art. 38(1)(1) / Art. 40 CAC security assessment.
    SecurityAssessment,
    /// GDPR Art. 49 derogation for specific situations.
    Derogation,
}

impl Mechanism {
    pub fn keyword(self) -> &'static str {
        match self {
            Mechanism::Adequacy => "adequacy",
            Mechanism::StandardContract => "standard_contract",
            Mechanism::BindingCorporateRules => "binding_corporate_rules",
            Mechanism::Certification => "certification",
            Mechanism::SecurityAssessment => "security_assessment",
            Mechanism::Derogation => "derogation",
        }
    }
}

/// EEA member states (GDPR applies; no transfer rules between them).
const EEA: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// A rule outcome that does not stop the policy but that a reviewer must see.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleWarning {
    /// Rule id from docs/RULES.md, e.g. `PIPL-23`.
    pub rule: &'static str,
    pub article: &'static str,
    pub field: Option<String>,
    pub message: String,
}

/// Check transfers (errors) and collect warnings.
pub(super) fn check(
    jurisdictions: &[Jurisdiction],
    recipients: &[String],
    transfers: &[Transfer],
    fields: &[&Field],
) -> Result<Vec<RuleWarning>, (usize, String)> {
    let cn = jurisdictions.contains(&Jurisdiction::CN);
    let eu = jurisdictions.contains(&Jurisdiction::EU);
    for (i, t) in transfers.iter().enumerate() {
        check_transfer(t, cn, eu).map_err(|m| (i, m))?;
    }
    let mut w = Vec::new();
    if cn {
        pipl_warnings(recipients, transfers, fields, &mut w);
    }
    if eu {
        gdpr_warnings(fields, &mut w);
    }
    Ok(w)
}

/// A transfer needs a valid country code and, where it leaves a jurisdiction, a mechanism
/// that law accepts.
fn check_transfer(t: &Transfer, cn: bool, eu: bool) -> Result<(), String> {
    let country = t.country.trim().to_ascii_uppercase();
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "transfer to `{}`: country `{}` is not an ISO 3166-1 alpha-2 code (e.g. US, DE)",
            t.recipient, t.country
        ));
    }
    // PIPL-38: leaving mainland China needs one of the Art. 38(1) mechanisms.
    if cn && country != "CN" {
        let ok = matches!(
            t.mechanism,
            Some(
                Mechanism::SecurityAssessment
                    | Mechanism::Certification
                    | Mechanism::StandardContract
            )
        );
        if !ok {
            return Err(format!(
                "transfer to `{}` in {country} leaves China: PIPL Art. 38(1) needs \
                     `mechanism: security_assessment`, `certification` or `standard_contract`",
                t.recipient
            ));
        }
    }
    // GDPR-44: leaving the EEA needs an Art. 45-49 ground.
    if eu && !EEA.contains(&country.as_str()) {
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
        if !ok {
            return Err(format!(
                "transfer to `{}` in {country} leaves the EEA: GDPR Art. 44 needs a Chapter V \
                     ground: `mechanism: adequacy` (Art. 45), `standard_contract` or \
                     `binding_corporate_rules` (Art. 46-47), `certification` (Art. 46(2)(f)) or \
                     `derogation` (Art. 49)",
                t.recipient
            ));
        }
    }
    Ok(())
}

/// PIPL: separate consent for provision (Art. 23) and transfer abroad (Art. 39), and the
/// impact-assessment triggers of Art. 55.
fn pipl_warnings(
    recipients: &[String],
    transfers: &[Transfer],
    fields: &[&Field],
    w: &mut Vec<RuleWarning>,
) {
    let consent_cn = |f: &Field| f.bases.get(&Jurisdiction::CN) == Some(&Basis::Consent);
    let provides = !recipients.is_empty() || !transfers.is_empty();
    let abroad_cn = transfers
        .iter()
        .any(|t| !t.country.trim().eq_ignore_ascii_case("CN"));
    for f in fields {
        if provides && consent_cn(f) && !f.separate_consent {
            w.push(RuleWarning {
                rule: "PIPL-23",
                article: "PIPL Art. 23",
                field: Some(f.input_name.clone()),
                message: "provided to another handler on consent: PIPL Art. 23 needs separate \
                          consent naming the recipient, its purpose and processing; set \
                          `separate_consent: true` once obtained"
                    .into(),
            });
        }
        if abroad_cn && consent_cn(f) && !f.separate_consent {
            w.push(RuleWarning {
                rule: "PIPL-39",
                article: "PIPL Art. 39",
                field: Some(f.input_name.clone()),
                message: "transferred abroad on consent: PIPL Art. 39 needs separate consent \
                          after informing the data subject of the foreign recipient"
                    .into(),
            });
        }
    }
    let mut triggers = Vec::new();
    if fields.iter().any(|f| f.sensitive) {
        triggers.push("sensitive personal information (Art. 55(1))");
    }
    if provides {
        triggers.push("provision to another handler (Art. 55(3))");
    }
    if abroad_cn {
        triggers.push("cross-border transfer (Art. 55(4))");
    }
    if !triggers.is_empty() {
        w.push(RuleWarning {
            rule: "PIPL-55",
            article: "PIPL Art. 55",
            field: None,
            message: format!(
                "a personal information protection impact assessment is required before \
                 processing: {}",
                triggers.join(", ")
            ),
        });
    }
}

/// GDPR: special-category data may need a DPIA (Art. 35).
fn gdpr_warnings(fields: &[&Field], w: &mut Vec<RuleWarning>) {
    for f in fields {
        if f.special_category.is_some() {
            w.push(RuleWarning {
                rule: "GDPR-35",
                article: "GDPR Art. 35",
                field: Some(f.input_name.clone()),
                message: "special-category data: check whether a data protection impact \
                          assessment is required (Art. 35(3)(b) for large scale)"
                    .into(),
            });
        }
    }
}
