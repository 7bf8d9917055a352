//! Legal regimes, one module per law: the bases it allows (article, DPV term, legal term), its
//! rules with the ids of `docs/RULES.md`, and the checks that enforce them at load time.
//!
//! Adding a regime: a file like `eu.rs` holding one [`Regime`], a line in [`REGIMES`], an arm
//! in `Jurisdiction::regime` and a variant of [`Jurisdiction`]. The loader, provenance and the
//! report reach the law only through the regime, so nothing else has to change.

pub mod cn;
pub mod eu;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::basis::{Basis, BasisRef};
use super::rules::{RuleWarning, Transfer};
use super::{Field, FieldRule};
use crate::error::Problem;

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

/// The registry. Its order is the order the checks run and warnings are listed (PIPL first,
/// as the rules did before the split), which decides the error a policy gets when two fail.
pub static REGIMES: &[&Regime] = &[&cn::PIPL, &eu::GDPR];

/// Rules no single law owns.
pub static COMMON_RULES: &[Rule] = &[DRAFT, CONSENT];

/// Fields on consent with no ledger enforcing withdrawals (docs/CONSENT.md).
pub const CONSENT: Rule = Rule {
    id: "CONSENT",
    article: "GDPR Art. 7(3); PIPL Art. 15",
    summary: "a field relies on consent but no `consent:` ledger enforces it",
    outcome: Outcome::Warning,
};

/// `cloakline scan --draft-policy` leaves `TODO` for a person to fill in.
pub const DRAFT: Rule = Rule {
    id: "DRAFT",
    article: "—",
    summary: "`basis`, `controller` or `purpose` is still TODO",
    outcome: Outcome::Error,
};

/// What breaking a rule does to the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Loading stops.
    Error,
    /// Loading goes on; the warning is shown, recorded and reported.
    Warning,
}

/// One row of the rule table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// e.g. `PIPL-23`.
    pub id: &'static str,
    /// e.g. `PIPL Art. 23`; warnings carry it as their article.
    pub article: &'static str,
    pub summary: &'static str,
    pub outcome: Outcome,
}

impl Rule {
    /// A warning under this rule.
    pub(crate) fn warn(&self, field: Option<String>, message: String) -> RuleWarning {
        RuleWarning {
            rule: self.id,
            article: self.article,
            field,
            message,
        }
    }
}

/// What a regime's warnings look at: the output fields and who receives them.
pub(crate) struct Processing<'a> {
    pub recipients: &'a [String],
    pub transfers: &'a [Transfer],
    pub fields: &'a [&'a Field],
}

/// One law: its names, bases, rules and their checks.
pub struct Regime {
    pub jurisdiction: Jurisdiction,
    /// The policy's and provenance's code, e.g. `EU`.
    pub code: &'static str,
    /// Short name of the law, e.g. `GDPR`.
    pub law: &'static str,
    /// DPV location term, e.g. `loc:EU`.
    pub dpv_location: &'static str,
    /// The bases the law allows, with how each is recorded.
    pub bases: &'static [(Basis, BasisRef)],
    pub rules: &'static [Rule],
    /// Why a basis the law lacks is refused, naming the article.
    pub(crate) missing_basis: fn(Basis) -> String,
    /// Field rules beyond the basis, for a field that reaches the output on `basis`.
    pub(crate) check_field: fn(&FieldRule, Basis) -> Result<(), Problem>,
    /// A transfer to `country` (an upper-case ISO code) that leaves the law's territory.
    pub(crate) check_transfer: fn(&Transfer, &str) -> Result<(), Problem>,
    pub(crate) warnings: fn(&Processing<'_>, &mut Vec<RuleWarning>),
}

impl Regime {
    /// How `basis` is recorded under this law, if the law has it.
    pub fn basis(&self, basis: Basis) -> Option<&'static BasisRef> {
        self.bases.iter().find(|(b, _)| *b == basis).map(|(_, r)| r)
    }

    /// The rule with this id, if the law has it.
    pub fn rule(&self, id: &str) -> Option<&'static Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

impl Jurisdiction {
    /// The module of this law.
    pub fn regime(self) -> &'static Regime {
        // An exhaustive match: a new variant does not compile until it has its module (and
        // `every_jurisdiction_has_one_regime` checks that REGIMES lists the same ones).
        match self {
            Jurisdiction::EU => &eu::GDPR,
            Jurisdiction::CN => &cn::PIPL,
        }
    }
    /// The law's short name.
    pub fn law(self) -> &'static str {
        self.regime().law
    }
    /// DPV location term.
    pub fn dpv_location(self) -> &'static str {
        self.regime().dpv_location
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.regime().code)
    }
}

/// Every rule of every regime, then the common ones.
pub fn all_rules() -> impl Iterator<Item = &'static Rule> {
    REGIMES
        .iter()
        .flat_map(|r| r.rules.iter())
        .chain(COMMON_RULES.iter())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// id → (law, outcome) from the table in docs/RULES.md.
    fn doc_table() -> BTreeMap<String, (String, String)> {
        let doc = include_str!("../../../docs/RULES.md");
        let mut rows = BTreeMap::new();
        for line in doc.lines().filter(|l| l.starts_with('|')) {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.len() != 4 || cells[0] == "id" || cells[0].starts_with("---") {
                continue;
            }
            let row = (cells[1].to_string(), cells[3].to_string());
            assert!(
                rows.insert(cells[0].to_string(), row).is_none(),
                "{} twice in RULES.md",
                cells[0]
            );
        }
        rows
    }

    #[test]
    fn rule_ids_in_code_are_the_table_in_rules_md() {
        let mut code = BTreeMap::new();
        for r in all_rules() {
            let outcome = match r.outcome {
                Outcome::Error => "error",
                Outcome::Warning => "warning",
            };
            let row = (r.article.to_string(), outcome.to_string());
            assert!(
                code.insert(r.id.to_string(), row).is_none(),
                "{} twice",
                r.id
            );
        }
        assert_eq!(code, doc_table());
    }

    #[test]
    fn rule_ids_name_their_law() {
        for reg in REGIMES {
            for r in reg.rules {
                assert!(r.id.starts_with(&format!("{}-", reg.law)), "{}", r.id);
                assert!(
                    r.article.starts_with(&format!("{} Art. ", reg.law)),
                    "{}",
                    r.id
                );
            }
        }
    }

    #[test]
    fn every_jurisdiction_has_one_regime() {
        // The variants as the policy file spells them, from the schema.
        let schema = serde_json::to_value(schemars::schema_for!(Jurisdiction)).unwrap();
        // Documented variants are `oneOf` constants, bare ones an `enum` list.
        let names: Vec<serde_json::Value> = match schema["oneOf"].as_array() {
            Some(one_of) => one_of.iter().map(|v| v["const"].clone()).collect(),
            None => schema["enum"].as_array().cloned().unwrap_or_default(),
        };
        assert_eq!(names.len(), REGIMES.len(), "{schema}");
        for name in &names {
            let j: Jurisdiction = serde_json::from_value(name.clone()).unwrap();
            let regime = j.regime();
            assert_eq!(name.as_str(), Some(regime.code));
            assert_eq!(j.to_string(), regime.code);
            assert_eq!(REGIMES.iter().filter(|r| r.jurisdiction == j).count(), 1);
        }
    }

    #[test]
    fn every_basis_is_allowed_somewhere() {
        for b in super::super::basis::ALL_BASES {
            assert!(REGIMES.iter().any(|r| r.basis(*b).is_some()), "{b:?}");
        }
    }
}
