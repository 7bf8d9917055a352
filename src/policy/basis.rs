//! The lawful-basis vocabulary every policy shares: the basis keywords, how a basis is
//! recorded, special categories and personal-data categories. Which law allows which basis,
//! under which article, is in `policy/jurisdiction/` (one module per law).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::jurisdiction::Jurisdiction;
pub use super::jurisdiction::eu::Art9Condition;

/// A lawful basis for handling a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Basis {
    /// GDPR Art. 6(1)(a); PIPL Art. 13(1)(1).
    Consent,
    /// GDPR Art. 6(1)(b); PIPL Art. 13(1)(2) (includes HR management).
    Contract,
    /// GDPR Art. 6(1)(c); PIPL Art. 13(1)(3) (statutory duties or obligations).
    LegalObligation,
    /// GDPR Art. 6(1)(d); PIPL Art. 13(1)(4) (emergencies, protection of life, health, property).
    VitalInterests,
    /// GDPR Art. 6(1)(e) only.
    PublicTask,
    /// GDPR Art. 6(1)(f) only: PIPL has no legitimate-interest basis.
    LegitimateInterests,
    /// PIPL Art. 13(1)(5) only: news reporting and media supervision in the public interest.
    NewsReporting,
    /// PIPL Art. 13(1)(6) only: information the individual disclosed or otherwise lawfully disclosed.
    PubliclyDisclosed,
    /// PIPL Art. 13(1)(7) only: other circumstances provided by laws and administrative regulations.
    OtherLaw,
}

/// Every basis, for error messages.
pub const ALL_BASES: &[Basis] = &[
    Basis::Consent,
    Basis::Contract,
    Basis::LegalObligation,
    Basis::VitalInterests,
    Basis::PublicTask,
    Basis::LegitimateInterests,
    Basis::NewsReporting,
    Basis::PubliclyDisclosed,
    Basis::OtherLaw,
];

/// How a basis is recorded for one regime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BasisRef {
    /// e.g. "GDPR Art. 6(1)(a)".
    pub article: &'static str,
    /// e.g. "dpv:Consent".
    pub dpv: &'static str,
    /// e.g. "eu-gdpr:A6-1-a" or "cl:PIPL-A13-1-1".
    pub legal_term: &'static str,
}

impl Basis {
    /// The policy keyword, e.g. `legitimate_interests`.
    pub fn keyword(self) -> &'static str {
        match self {
            Basis::Consent => "consent",
            Basis::Contract => "contract",
            Basis::LegalObligation => "legal_obligation",
            Basis::VitalInterests => "vital_interests",
            Basis::PublicTask => "public_task",
            Basis::LegitimateInterests => "legitimate_interests",
            Basis::NewsReporting => "news_reporting",
            Basis::PubliclyDisclosed => "publicly_disclosed",
            Basis::OtherLaw => "other_law",
        }
    }

    /// Parse a policy keyword.
    pub fn parse(s: &str) -> Option<Basis> {
        ALL_BASES.iter().copied().find(|b| b.keyword() == s)
    }

    /// The article and vocabulary terms of this basis in `j`, or `None` where `j` has no such basis.
    pub fn reference(self, j: Jurisdiction) -> Option<BasisRef> {
        j.regime().basis(self).cloned()
    }

    /// Why `self` is not available in `j`, naming the article.
    pub fn unavailable_reason(self, j: Jurisdiction) -> String {
        (j.regime().missing_basis)(self)
    }
}

/// GDPR Art. 9(1) special categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpecialCategory {
    RacialOrEthnicOrigin,
    PoliticalOpinions,
    ReligiousOrPhilosophicalBeliefs,
    TradeUnionMembership,
    Genetic,
    Biometric,
    Health,
    SexLifeOrOrientation,
}

/// Map a policy `category` to a DPV personal-data term. `pd:`-prefixed terms pass through.
pub fn category_term(category: &str) -> Option<String> {
    if let Some(rest) = category.strip_prefix("pd:") {
        let ok = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric());
        return ok.then(|| category.to_string());
    }
    let term = match category {
        "email" => "EmailAddress",
        "telephone" | "phone" => "TelephoneNumber",
        "name" => "Name",
        "birth_date" => "BirthDate",
        "age" => "Age",
        "gender" | "sex" => "Gender",
        "official_id" | "national_id" => "OfficialID",
        "passport" => "Passport",
        "identifier" => "Identifier",
        "location" => "Location",
        "address" => "Address",
        "income" => "Income",
        "health" => "HealthRecord",
        "religion" => "Religion",
        "biometric" => "Biometric",
        "financial_account" => "FinancialAccount",
        "purchase" | "transaction" => "Transaction",
        "ip_address" => "IPAddress",
        _ => return None,
    };
    Some(format!("pd:{term}"))
}

/// Known category keywords, for error messages.
pub const CATEGORY_KEYWORDS: &str = "email, telephone, name, birth_date, age, gender, official_id, passport, \
     identifier, location, address, income, health, religion, biometric, financial_account, transaction, \
     ip_address (or any DPV term written as pd:Term)";
