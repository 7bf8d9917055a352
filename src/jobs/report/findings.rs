//! The findings the report derives from the record: the points a reviewer must look at
//! (sensitive data, identifiers, consent, recipients, transfers, the privacy model).
//!
//! The lawful-basis rules belong to `policy::jurisdiction`: a finding that falls under one
//! carries its id (`[PIPL-28/29] …`), and a rule outcome the record carries as a policy warning
//! is printed from the record rather than decided again here.

use std::fmt::Write as _;

use crate::policy::jurisdiction::{Rule, cn, eu};
use crate::provenance::record::Record;

use super::format::{group_u, human};
use super::read::{Basis, Doc, Field, non_empty, some};

/// How a finding should be handled by the reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    /// Needs a reviewer's judgement (sensitive data, recipients, transfers).
    Review,
    /// Something is likely missing or left identifying.
    Warning,
    /// For awareness.
    Info,
}

impl Level {
    /// The fixed label used in both formats.
    pub fn label(self) -> &'static str {
        match self {
            Level::Review => "Review",
            Level::Warning => "Warning",
            Level::Info => "Info",
        }
    }
}

/// One point a reviewer must look at; `field` is the output column it concerns, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub field: Option<String>,
    pub text: String,
}

/// The points a reviewer must look at, fields first in document order, then recipients,
/// transfers and the privacy model.
pub fn findings(record: &Record) -> Vec<Finding> {
    Doc::read(record).findings()
}

/// Categories that single a person out on their own.
pub(super) const DIRECT_IDENTIFIERS: &[&str] = &[
    "pd:EmailAddress",
    "pd:TelephoneNumber",
    "pd:Name",
    "pd:OfficialID",
    "pd:Identifier",
    "pd:Passport",
    "pd:IPAddress",
    "pd:Address",
    "pd:FinancialAccount",
];

/// Categories that identify in combination (the classic quasi-identifiers).
const QUASI_IDENTIFIERS: &[&str] = &[
    "pd:BirthDate",
    "pd:Age",
    "pd:Location",
    "pd:Gender",
    "pd:PostalCode",
    "pd:Country",
    "pd:Nationality",
];

impl Doc<'_> {
    pub(super) fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let has_privacy = self.privacy.is_some();
        let recorded = |rule: &Rule, f: &Field| self.recorded(rule, f);
        for f in &self.fields {
            field_findings(f, has_privacy, &recorded, &mut out);
        }
        self.recipient_findings(&mut out);
        self.transfer_findings(&mut out);
        self.policy_warning_findings(&mut out);
        self.demo_key_finding(&mut out);
        self.key_protection_finding(&mut out);
        self.privacy_model_finding(&mut out);
        self.release_findings(&mut out);
        out
    }

    /// Whether the record carries a warning under `rule` for the field `f`.
    pub(super) fn recorded(&self, rule: &Rule, f: &Field) -> bool {
        let warnings = self.run.map(|r| &r.warnings[..]).unwrap_or_default();
        warnings.iter().any(|w| {
            w.rule.trim() == rule.id
                && some(&w.field).is_some_and(|n| n == f.source || n == f.output)
        })
    }

    fn recipient_findings(&self, out: &mut Vec<Finding>) {
        // Provision to other handlers. The GDPR part (informing, Art. 26/28 arrangements) is
        // no rule of the table, so it is said here; the PIPL part restates PIPL-23 by its id,
        // whose per-field outcomes are the recorded warnings.
        let pipl = self.applies("CN");
        let gdpr = self.applies("EU");
        let consent_fields = self
            .fields
            .iter()
            .filter(|f| f.cn_consent() || (!pipl && !f.consent_bases().is_empty()))
            .count();
        for r in self.recipients() {
            let mut text = format!("provision to another handler: {r}");
            if pipl {
                let _ = write!(
                    text,
                    "; {}",
                    tagged(
                        &cn::PROVISION_CONSENT,
                        "PIPL Art. 23 requires separate consent where the processing relies on consent"
                    )
                );
                if consent_fields > 0 {
                    let _ = write!(
                        text,
                        " ({consent_fields} {} on consent)",
                        if consent_fields == 1 {
                            "field here relies"
                        } else {
                            "fields here rely"
                        }
                    );
                }
            }
            if gdpr {
                text.push_str(
                    "; GDPR: name the recipient to data subjects (Art. 13(1)(e)) and document the \
                     arrangement with it (Art. 26 or 28)",
                );
            }
            out.push(Finding {
                level: Level::Review,
                field: None,
                text,
            });
        }
    }

    fn transfer_findings(&self, out: &mut Vec<Finding>) {
        // Cross-border transfers, with the transfer rules of each law whose territory it leaves.
        for t in self.transfers() {
            let recipient =
                non_empty(&t.recipient).unwrap_or_else(|| "an unnamed recipient".into());
            let country = non_empty(&t.country).unwrap_or_else(|| "an unstated country".into());
            let code = t.country.trim().to_ascii_uppercase();
            let mut ids = Vec::new();
            if self.applies("CN") && cn::leaves(&code) {
                ids.extend([cn::TRANSFER.id, cn::TRANSFER_CONSENT.id]);
            }
            if self.applies("EU") && eu::leaves(&code) {
                ids.push(eu::TRANSFER.id);
            }
            let mut text = format!(
                "cross-border transfer to {recipient} in {country} (PIPL Art. 38–39; GDPR Chapter V)"
            );
            if !ids.is_empty() {
                text = format!("[{}] {text}", ids.join(", "));
            }
            out.push(Finding {
                level: Level::Review,
                field: None,
                text,
            });
        }
    }

    /// The policy's rule warnings, then the transfer mechanisms they rely on.
    fn policy_warning_findings(&self, out: &mut Vec<Finding>) {
        // Rule warnings the policy carried (docs/RULES.md), with their safeguard if any.
        for w in self.run.map(|r| &r.warnings[..]).unwrap_or_default() {
            let rule = non_empty(&w.rule).unwrap_or_default();
            let msg = non_empty(&w.message).unwrap_or_default();
            out.push(Finding {
                level: Level::Review,
                field: some(&w.field),
                text: format!("[{rule}] {msg}"),
            });
        }
        for t in self.transfers() {
            if let Some(m) = t.mechanism {
                out.push(Finding {
                    level: Level::Info,
                    field: None,
                    text: format!(
                        "transfer to {} relies on `{}`",
                        non_empty(&t.recipient).unwrap_or_default(),
                        m.keyword()
                    ),
                });
            }
        }
    }

    // From here on, points no rule of the table covers: the report decides them itself.

    fn demo_key_finding(&self, out: &mut Vec<Finding>) {
        // Public demo keys: tokens, envelopes and a signature made with them protect nothing.
        if self.record.demo_keys {
            out.push(Finding {
                level: Level::Warning,
                field: None,
                text: "the run used the public demo keyring (DEMO KEYS ONLY): anyone can \
                       recompute its tokens from guessed values, decrypt its encrypted fields \
                       and forge its signature; re-run with your own keys \
                       (`cloakline keys generate`)"
                    .into(),
            });
        }
    }

    fn key_protection_finding(&self, out: &mut Vec<Finding>) {
        // Plain key material in a file: whoever copies the file can re-identify everything.
        if !self.record.demo_keys && self.record.key_protection.as_deref() == Some("plain") {
            out.push(Finding {
                level: Level::Warning,
                field: None,
                text: "the run's keys were read from a plain keyring file (hex secrets): anyone who copies it can recompute the tokens and decrypt the encrypted fields; wrap it under a passphrase or an HSM key (`cloakline keys wrap`, docs/KEYS.md)"
                    .into(),
            });
        }
    }

    fn privacy_model_finding(&self, out: &mut Vec<Finding>) {
        // The privacy model itself.
        if let Some(p) = self.privacy
            && !p.achieved.satisfied
        {
            let k = group_u(p.achieved.smallest_class);
            out.push(Finding {
                level: Level::Warning,
                field: None,
                text: format!(
                    "the privacy model is not satisfied by the released data (smallest class {k})"
                ),
            });
        }
    }
}

/// `text` under `rule`'s id, as recorded warnings are shown.
fn tagged(rule: &Rule, text: &str) -> String {
    format!("[{}] {text}", rule.id)
}

/// A finding about the output field `f`.
fn push(out: &mut Vec<Finding>, f: &Field, level: Level, text: String) {
    out.push(Finding {
        level,
        field: Some(f.output.clone()),
        text,
    });
}

/// The findings about one output field, in a fixed order; `recorded` says whether the record
/// carries a warning under a rule for a field.
fn field_findings(
    f: &Field,
    has_privacy: bool,
    recorded: &dyn Fn(&Rule, &Field) -> bool,
    out: &mut Vec<Finding>,
) {
    let status = f.status_text();
    sensitive_findings(f, &status, recorded, out);

    // No rule covers the rest: identifiers, consent references, quasi-identifiers, scrubbing.
    // Direct identifiers copied unchanged.
    if f.action == "keep"
        && let Some(t) = f.term.as_deref().filter(|t| DIRECT_IDENTIFIERS.contains(t))
    {
        push(
            out,
            f,
            Level::Warning,
            format!("directly identifying: {t} kept as is; output is {status}"),
        );
    }

    consent_findings(f, out);
    quasi_identifier_findings(f, has_privacy, out);
    scrub_findings(f, out);
}

fn sensitive_findings(
    f: &Field,
    status: &str,
    recorded: &dyn Fn(&Rule, &Field) -> bool,
    out: &mut Vec<Finding>,
) {
    // Sensitive or special-category data: first what the field is (no rule's outcome), then
    // the rules it breaks, by id, unless the record already carries them.
    if f.sensitive || f.special.is_some() {
        let mut parts = Vec::new();
        if let Some(sc) = &f.special {
            let cover = match (&f.art9_article, &f.art9_condition) {
                (Some(a), Some(c)) => format!("condition {a} ({})", human(c)),
                (Some(a), None) => format!("condition {a}"),
                (None, _) if f.eu => "no GDPR Art. 9(2) condition recorded".into(),
                (None, _) => String::new(),
            };
            if cover.is_empty() {
                parts.push(format!("special category of personal data ({sc})"));
            } else {
                parts.push(format!(
                    "special category of personal data ({sc}, GDPR Art. 9(1)), {cover}"
                ));
            }
        }
        if f.cn {
            let mut s = "sensitive personal information (PIPL Art. 28: specific purpose, \
                         sufficient necessity, strict protection)"
                .to_string();
            if f.separate_consent {
                s.push_str(", separate consent recorded (PIPL Art. 29)");
            } else if f.cn_consent() {
                s.push_str(", relies on consent without separate consent (PIPL Art. 29)");
            } else {
                let cn: Vec<String> = f
                    .bases
                    .iter()
                    .filter(|b| b.is_cn())
                    .map(Basis::text)
                    .collect();
                if !cn.is_empty() {
                    let _ = write!(s, ", basis {}", cn.join("; "));
                }
            }
            parts.push(s);
        } else if f.special.is_none() {
            parts.push("marked sensitive".into());
        }
        parts.push(format!("output is {status}"));
        push(out, f, Level::Review, parts.join("; "));
        let rule = &eu::SPECIAL_CATEGORY;
        if f.special.is_some() && f.eu && f.art9_article.is_none() && !recorded(rule, f) {
            let text = "special category without a GDPR Art. 9(2) condition in the record";
            push(out, f, Level::Warning, tagged(rule, text));
        }
        let rule = &cn::SENSITIVE_CONSENT;
        if f.cn && f.cn_consent() && !f.separate_consent && !recorded(rule, f) {
            let text = "sensitive personal information relies on consent, but no separate \
                        consent is recorded (PIPL Art. 29)";
            push(out, f, Level::Warning, tagged(rule, text));
        }
    }
}

fn consent_findings(f: &Field, out: &mut Vec<Finding>) {
    // Consent.
    let consent = f.consent_bases();
    if !consent.is_empty() {
        let arts: Vec<String> = consent
            .iter()
            .map(|b| b.article.clone().unwrap_or_else(|| b.law.clone()))
            .filter(|a| !a.is_empty())
            .collect();
        let arts = if arts.is_empty() {
            String::new()
        } else {
            format!(" ({})", arts.join("; "))
        };
        match &f.consent_ref {
            Some(r) => push(
                out,
                f,
                Level::Info,
                format!("relies on consent{arts}; consent reference: {r}"),
            ),
            None => push(
                out,
                f,
                Level::Warning,
                format!("relies on consent{arts}, but no consent reference is recorded"),
            ),
        }
    }
}

fn quasi_identifier_findings(f: &Field, has_privacy: bool, out: &mut Vec<Finding>) {
    // Quasi-identifiers released without any dataset-level assessment.
    if !has_privacy
        && f.node.quasi_identifier.is_none()
        && (f.action == "keep" || f.action == "generalize")
        && let Some(t) = f.term.as_deref().filter(|t| QUASI_IDENTIFIERS.contains(t))
    {
        let how = if f.action == "keep" {
            "kept as is"
        } else {
            "generalized"
        };
        push(
            out,
            f,
            Level::Info,
            format!(
                "quasi-identifier ({t}) {how} without a privacy model: combined with \
                     other fields it may still single people out"
            ),
        );
    }
}

fn scrub_findings(f: &Field, out: &mut Vec<Finding>) {
    // Scrubbed free text.
    if f.action == "scrub" {
        let mut total: u64 = 0;
        let mut by = Vec::new();
        for (k, &n) in f.node.entities_replaced.iter().flatten() {
            total = total.saturating_add(n);
            by.push(format!("{k}: {}", group_u(n)));
        }
        let detail = if by.is_empty() {
            String::new()
        } else {
            format!(" ({})", by.join(", "))
        };
        push(
            out,
            f,
            Level::Info,
            format!(
                "scrubbed free text: {} entities replaced{detail}; names and other details \
                 the recognizers do not cover may remain",
                group_u(total)
            ),
        );
    }
}
