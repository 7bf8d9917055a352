//! PIPL (CN): the Art. 13 bases, separate consent (Art. 23, 29, 39), transfers abroad
//! (Art. 38) and the Art. 55 impact assessment. DPV has no PIPL extension, so the legal terms
//! are project IRIs under `cl:`.

use super::{Jurisdiction, Outcome, Processing, Regime, Rule};
use crate::error::Problem;
use crate::policy::basis::{Basis, BasisRef};
use crate::policy::rules::{Mechanism, RuleWarning, Transfer};
use crate::policy::{Field, FieldRule};

pub static PIPL: Regime = Regime {
    jurisdiction: Jurisdiction::CN,
    code: "CN",
    law: "PIPL",
    dpv_location: "loc:CN",
    bases: BASES,
    rules: &[
        BASIS,
        PROVISION_CONSENT,
        SENSITIVE_CONSENT,
        TRANSFER,
        TRANSFER_CONSENT,
        ASSESSMENT,
    ],
    missing_basis,
    check_field,
    check_transfer,
    warnings,
};

pub const BASIS: Rule = Rule {
    id: "PIPL-13",
    article: "PIPL Art. 13",
    summary: "every output field has one of the bases 13(1)(1)–(7)",
    outcome: Outcome::Error,
};
pub const PROVISION_CONSENT: Rule = Rule {
    id: "PIPL-23",
    article: "PIPL Art. 23",
    summary: "data provided to another handler on consent needs separate consent",
    outcome: Outcome::Warning,
};
pub const SENSITIVE_CONSENT: Rule = Rule {
    id: "PIPL-28/29",
    article: "PIPL Art. 28–29",
    summary: "sensitive personal information relying on consent needs separate consent",
    outcome: Outcome::Error,
};
pub const TRANSFER: Rule = Rule {
    id: "PIPL-38",
    article: "PIPL Art. 38(1)",
    summary: "a transfer outside mainland China needs an Art. 38(1) mechanism",
    outcome: Outcome::Error,
};
pub const TRANSFER_CONSENT: Rule = Rule {
    id: "PIPL-39",
    article: "PIPL Art. 39",
    summary: "data transferred abroad on consent needs separate consent",
    outcome: Outcome::Warning,
};
pub const ASSESSMENT: Rule = Rule {
    id: "PIPL-55",
    article: "PIPL Art. 55",
    summary: "an impact assessment is required before the listed processing",
    outcome: Outcome::Warning,
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
        r("PIPL Art. 13(1)(1)", "dpv:Consent", "cl:PIPL-A13-1-1"),
    ),
    (
        Basis::Contract,
        r("PIPL Art. 13(1)(2)", "dpv:Contract", "cl:PIPL-A13-1-2"),
    ),
    (
        Basis::LegalObligation,
        r(
            "PIPL Art. 13(1)(3)",
            "dpv:LegalObligation",
            "cl:PIPL-A13-1-3",
        ),
    ),
    (
        Basis::VitalInterests,
        r("PIPL Art. 13(1)(4)", "dpv:VitalInterest", "cl:PIPL-A13-1-4"),
    ),
    (
        Basis::NewsReporting,
        r(
            "PIPL Art. 13(1)(5)",
            "dpv:PublicInterest",
            "cl:PIPL-A13-1-5",
        ),
    ),
    (
        Basis::PubliclyDisclosed,
        r("PIPL Art. 13(1)(6)", "dpv:LegalBasis", "cl:PIPL-A13-1-6"),
    ),
    (
        Basis::OtherLaw,
        r("PIPL Art. 13(1)(7)", "dpv:LegalBasis", "cl:PIPL-A13-1-7"),
    ),
];

/// Whether data sent to `country` (an upper-case ISO code) leaves mainland China.
pub fn leaves(country: &str) -> bool {
    country != "CN"
}

fn missing_basis(b: Basis) -> String {
    match b {
        Basis::LegitimateInterests => "PIPL Art. 13 has no legitimate-interest basis; \
             use consent (13(1)(1)), contract (13(1)(2)) or another Art. 13 basis"
            .into(),
        Basis::PublicTask => "PIPL Art. 13 has no public-task basis; statutory duties are \
             `legal_obligation` (13(1)(3))"
            .into(),
        b => format!("PIPL Art. 13 has no `{}` basis", b.keyword()),
    }
}

/// PIPL-28/29: sensitive personal information (any special category included) relying on
/// consent needs separate consent.
fn check_field(r: &FieldRule, basis: Basis) -> Result<(), Problem> {
    let sensitive = r.sensitive || r.special_category.is_some();
    if sensitive && basis == Basis::Consent && !r.separate_consent {
        return Err(Problem::breach(
            "PIPL-28/29",
            "sensitive personal information relying on consent needs separate consent \
                 (PIPL Art. 29); set `separate_consent: true` once it is obtained, and `consent_ref`",
        ));
    }
    Ok(())
}

/// PIPL-38: leaving mainland China needs one of the Art. 38(1) mechanisms.
fn check_transfer(t: &Transfer, country: &str) -> Result<(), Problem> {
    let ok = matches!(
        t.mechanism,
        Some(
            Mechanism::SecurityAssessment | Mechanism::Certification | Mechanism::StandardContract
        )
    );
    if leaves(country) && !ok {
        return Err(Problem::breach(
            "PIPL-38",
            format!(
                "transfer to `{}` in {country} leaves China: PIPL Art. 38(1) needs \
                     `mechanism: security_assessment`, `certification` or `standard_contract`",
                t.recipient
            ),
        ));
    }
    Ok(())
}

/// The Art. 55 triggers the processing meets, as (what, paragraph).
pub fn assessment_triggers(
    recipients: &[String],
    transfers: &[Transfer],
    fields: &[&Field],
) -> Vec<(&'static str, &'static str)> {
    let mut triggers = Vec::new();
    if fields.iter().any(|f| f.sensitive) {
        triggers.push(("sensitive personal information", "Art. 55(1)"));
    }
    if !recipients.is_empty() || !transfers.is_empty() {
        triggers.push(("provision to another handler", "Art. 55(3)"));
    }
    if transfers
        .iter()
        .any(|t| !t.country.trim().eq_ignore_ascii_case("CN"))
    {
        triggers.push(("cross-border transfer", "Art. 55(4)"));
    }
    triggers
}

/// PIPL-23 and PIPL-39 per field relying on consent without separate consent, then PIPL-55.
fn warnings(p: &Processing<'_>, w: &mut Vec<RuleWarning>) {
    let consent = |f: &Field| f.bases.get(&Jurisdiction::CN) == Some(&Basis::Consent);
    let provides = !p.recipients.is_empty() || !p.transfers.is_empty();
    let abroad = p
        .transfers
        .iter()
        .any(|t| !t.country.trim().eq_ignore_ascii_case("CN"));
    for f in p.fields {
        if !consent(f) || f.separate_consent {
            continue;
        }
        let field = Some(f.input_name.clone());
        if provides {
            w.push(
                PROVISION_CONSENT.warn(
                    field.clone(),
                    "provided to another handler on consent: PIPL Art. 23 needs separate \
                 consent naming the recipient, its purpose and processing; set \
                 `separate_consent: true` once obtained"
                        .into(),
                ),
            );
        }
        if abroad {
            w.push(
                TRANSFER_CONSENT.warn(
                    field,
                    "transferred abroad on consent: PIPL Art. 39 needs separate consent \
                 after informing the data subject of the foreign recipient"
                        .into(),
                ),
            );
        }
    }
    let triggers = assessment_triggers(p.recipients, p.transfers, p.fields);
    if !triggers.is_empty() {
        let list: Vec<String> = triggers.iter().map(|(w, a)| format!("{w} ({a})")).collect();
        w.push(ASSESSMENT.warn(
            None,
            format!(
                "a personal information protection impact assessment is required before \
                 processing: {}",
                list.join(", ")
            ),
        ));
    }
}
