//! Lawful bases under the GDPR and PIPL, with their articles and W3C DPV terms.
//!
//! The tables follow `LAWFUL_BASIS.md`: PIPL has no legitimate-interest basis, GDPR has no
//! "publicly disclosed" or "news reporting" basis of its own, and DPV has no PIPL extension, so
//! the PIPL items get project IRIs under `urn:cloakline:v1:`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A legal regime the dataset is handled under.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[non_exhaustive]
pub enum Jurisdiction {
    /// European Union: GDPR.
    EU,
    /// People's Republic of China: PIPL.
    CN,
}

impl Jurisdiction {
    /// The law's short name.
    pub fn law(self) -> &'static str {
        match self {
            Jurisdiction::EU => "GDPR",
            Jurisdiction::CN => "PIPL",
        }
    }
    /// DPV location term.
    pub fn dpv_location(self) -> &'static str {
        match self {
            Jurisdiction::EU => "loc:EU",
            Jurisdiction::CN => "loc:CN",
        }
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Jurisdiction::EU => "EU",
            Jurisdiction::CN => "CN",
        })
    }
}

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
        use Basis::*;
        use Jurisdiction::*;
        let r = |article, dpv, legal_term| {
            Some(BasisRef {
                article,
                dpv,
                legal_term,
            })
        };
        match (j, self) {
            (EU, Consent) => r("GDPR Art. 6(1)(a)", "dpv:Consent", "eu-gdpr:A6-1-a"),
            (EU, Contract) => r("GDPR Art. 6(1)(b)", "dpv:Contract", "eu-gdpr:A6-1-b"),
            (EU, LegalObligation) => {
                r("GDPR Art. 6(1)(c)", "dpv:LegalObligation", "eu-gdpr:A6-1-c")
            }
            (EU, VitalInterests) => r("GDPR Art. 6(1)(d)", "dpv:VitalInterest", "eu-gdpr:A6-1-d"),
            (EU, PublicTask) => r("GDPR Art. 6(1)(e)", "dpv:PublicInterest", "eu-gdpr:A6-1-e"),
            (EU, LegitimateInterests) => r(
                "GDPR Art. 6(1)(f)",
                "dpv:LegitimateInterest",
                "eu-gdpr:A6-1-f",
            ),
            (CN, Consent) => r("PIPL Art. 13(1)(1)", "dpv:Consent", "cl:PIPL-A13-1-1"),
            (CN, Contract) => r("PIPL Art. 13(1)(2)", "dpv:Contract", "cl:PIPL-A13-1-2"),
            (CN, LegalObligation) => r(
                "PIPL Art. 13(1)(3)",
                "dpv:LegalObligation",
                "cl:PIPL-A13-1-3",
            ),
            (CN, VitalInterests) => r("PIPL Art. 13(1)(4)", "dpv:VitalInterest", "cl:PIPL-A13-1-4"),
            (CN, NewsReporting) => r(
                "PIPL Art. 13(1)(5)",
                "dpv:PublicInterest",
                "cl:PIPL-A13-1-5",
            ),
            (CN, PubliclyDisclosed) => r("PIPL Art. 13(1)(6)", "dpv:LegalBasis", "cl:PIPL-A13-1-6"),
            (CN, OtherLaw) => r("PIPL Art. 13(1)(7)", "dpv:LegalBasis", "cl:PIPL-A13-1-7"),
            _ => None,
        }
    }

    /// Why `self` is not available in `j`, naming the article.
    pub fn unavailable_reason(self, j: Jurisdiction) -> String {
        match (j, self) {
            (Jurisdiction::CN, Basis::LegitimateInterests) => {
                "PIPL Art. 13 has no legitimate-interest basis; \
                 use consent (13(1)(1)), contract (13(1)(2)) or another Art. 13 basis"
                    .into()
            }
            (Jurisdiction::CN, Basis::PublicTask) => {
                "PIPL Art. 13 has no public-task basis; statutory duties are \
                 `legal_obligation` (13(1)(3))"
                    .into()
            }
            (Jurisdiction::EU, b) => format!(
                "GDPR Art. 6(1) has no `{}` basis (it is a PIPL Art. 13 item); use one of consent, contract, \
                 legal_obligation, vital_interests, public_task, legitimate_interests",
                b.keyword()
            ),
            (Jurisdiction::CN, b) => format!("PIPL Art. 13 has no `{}` basis", b.keyword()),
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
