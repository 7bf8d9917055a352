//! Policy-wide lawful-basis rules beyond the per-field checks: provision to other handlers,
//! cross-border transfers and impact-assessment triggers. Each law's rules are in its module
//! under `policy/jurisdiction/`; this runs those of the policy's jurisdictions. The table is in
//! `docs/RULES.md`; errors stop loading, warnings are kept on the policy and shown by
//! `validate`, recorded in provenance and listed in reports.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Field;
use super::jurisdiction::{Jurisdiction, Processing, REGIMES, Regime};
use crate::error::Problem;

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

/// A rule outcome that does not stop the policy but that a reviewer must see.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleWarning {
    /// Rule id from docs/RULES.md, e.g. `PIPL-23`.
    pub rule: &'static str,
    pub article: &'static str,
    pub field: Option<String>,
    pub message: String,
}

/// Check transfers (errors) and collect warnings, law by law in registry order.
pub(super) fn check(
    jurisdictions: &[Jurisdiction],
    recipients: &[String],
    transfers: &[Transfer],
    fields: &[&Field],
) -> Result<Vec<RuleWarning>, (usize, Problem)> {
    let regimes: Vec<&Regime> = REGIMES
        .iter()
        .copied()
        .filter(|r| jurisdictions.contains(&r.jurisdiction))
        .collect();
    for (i, t) in transfers.iter().enumerate() {
        check_transfer(t, &regimes).map_err(|m| (i, m))?;
    }
    let processing = Processing {
        recipients,
        transfers,
        fields,
    };
    let mut w = Vec::new();
    for r in &regimes {
        (r.warnings)(&processing, &mut w);
    }
    Ok(w)
}

/// A transfer needs a valid country code and, where it leaves a law's territory, a mechanism
/// that law accepts.
fn check_transfer(t: &Transfer, regimes: &[&Regime]) -> Result<(), Problem> {
    let country = t.country.trim().to_ascii_uppercase();
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Problem(format!(
            "transfer to `{}`: country `{}` is not an ISO 3166-1 alpha-2 code (e.g. US, DE)",
            t.recipient, t.country
        )));
    }
    for r in regimes {
        (r.check_transfer)(t, &country)?;
    }
    Ok(())
}
