//! The consent ledger's effect and the release record (ISO/IEC 27559: context, data,
//! identifiability, governance), and what the output is under PIPL Art. 73: de-identified
//! (去标识化), or anonymised (匿名化) only as the controller's claim with its evidence.

use crate::provenance::record::{ConsentRecord, ReleaseRecord};

use super::findings::{Finding, Level};
use super::format::group_u;
use super::layout::{Block, Piece, Section, Table, opt, t};
use super::read::{Doc, non_empty};

impl<'a> Doc<'a> {
    pub(super) fn consent(&self) -> Option<&'a ConsentRecord> {
        self.run.and_then(|r| r.consent.as_ref())
    }

    pub(super) fn release(&self) -> Option<&'a ReleaseRecord> {
        self.run.and_then(|r| r.release.as_ref())
    }

    /// Why the output cannot be called anonymised, even as a claim; empty when the claim
    /// has its evidence (privacy models met, highest prosecutor risk within the threshold, no
    /// keyed field, no direct identifier kept).
    pub(super) fn claim_gaps(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        let Some(r) = self.release() else {
            gaps.push("there is no release record".into());
            return gaps;
        };
        if r.claim != "anonymised" {
            gaps.push("the release record does not claim it".into());
        }
        match self.privacy {
            None => gaps.push("no privacy model was assessed".into()),
            Some(p) => {
                if !p.achieved.satisfied {
                    gaps.push("the privacy models were not met".into());
                }
                let risk = p.achieved.risks.prosecutor_highest;
                if !(risk.is_finite() && risk <= r.risk_threshold) {
                    gaps.push(format!(
                        "the highest re-identification risk ({}) exceeds the threshold ({})",
                        super::format::float(risk),
                        super::format::float(r.risk_threshold)
                    ));
                }
            }
        }
        let keyed: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| f.node.key_id.is_some())
            .map(|f| f.output.as_str())
            .collect();
        if !keyed.is_empty() {
            gaps.push(format!(
                "{} {} keyed (a key re-links or restores {})",
                keyed.join(", "),
                if keyed.len() == 1 { "is" } else { "are" },
                if keyed.len() == 1 { "it" } else { "them" }
            ));
        }
        let direct: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| {
                f.action == "keep"
                    && f.term
                        .as_deref()
                        .is_some_and(|t| super::findings::DIRECT_IDENTIFIERS.contains(&t))
            })
            .map(|f| f.output.as_str())
            .collect();
        if !direct.is_empty() {
            gaps.push(format!(
                "direct identifiers are kept unchanged ({})",
                direct.join(", ")
            ));
        }
        gaps
    }

    pub(super) fn release_findings(&self, out: &mut Vec<Finding>) {
        // CONSENT, for records made before the rule existed (a recorded warning is listed
        // among the policy's warnings already).
        let rule = &crate::policy::jurisdiction::CONSENT;
        if self.consent().is_none()
            && self.record.run_kind == crate::provenance::record::RunKind::Apply
        {
            for f in &self.fields {
                if !f.consent_bases().is_empty() && !self.recorded(rule, f) {
                    out.push(Finding {
                        level: Level::Warning,
                        field: Some(f.output.clone()),
                        text: format!(
                            "[{}] relies on consent, but no consent ledger was enforced: consent \
                             asserted, not enforced (withdrawn or missing consent was not removed)",
                            rule.id
                        ),
                    });
                }
            }
        }
        if let Some(c) = self.consent() {
            // Counts come from a record, which may be hostile: no overflow.
            let removed = c
                .rows_removed_withdrawn
                .saturating_add(c.rows_removed_missing);
            let nulled = c.fields_nulled.values().copied().max().unwrap_or(0);
            out.push(Finding {
                level: Level::Info,
                field: None,
                text: format!(
                    "consent ledger enforced for purpose {} as of {}: {} of {} rows removed \
                     ({} withdrawn, {} missing), {} released with consent-based fields nulled",
                    c.purpose,
                    c.as_of,
                    group_u(removed),
                    group_u(c.rows_in),
                    group_u(c.rows_removed_withdrawn),
                    group_u(c.rows_removed_missing),
                    group_u(nulled)
                ),
            });
        }
        let Some(r) = self.release() else {
            // Only `apply` records a release; a record without a run says nothing of one.
            if self.run.is_none()
                || self.record.run_kind != crate::provenance::record::RunKind::Apply
            {
                return;
            }
            out.push(Finding {
                level: Level::Warning,
                field: None,
                text: "no release record: the recipient, release model, threat model, risk \
                       threshold, approver and re-evaluation date are not documented \
                       (ISO/IEC 27559); add a `release:` block to the policy"
                    .into(),
            });
            return;
        };
        if r.model == "public" {
            out.push(Finding {
                level: Level::Review,
                field: None,
                text: "public release: anyone may obtain the output, so no contract limits \
                       linking it with other data; only data the privacy models protect \
                       should be released this way"
                    .into(),
            });
        }
        if let Some(ended) = self.run.and_then(|r| non_empty(&r.ended))
            && ended
                .get(..10)
                .is_some_and(|d| d > r.re_evaluate_by.as_str())
        {
            out.push(Finding {
                level: Level::Warning,
                field: None,
                text: format!(
                    "the release record was due for re-evaluation by {}, before this run",
                    r.re_evaluate_by
                ),
            });
        }
        if let Some(p) = self.privacy {
            let risk = p.achieved.risks.prosecutor_highest;
            if risk.is_finite() && risk > r.risk_threshold {
                out.push(Finding {
                    level: Level::Warning,
                    field: None,
                    text: format!(
                        "the highest re-identification risk ({}) exceeds the release record's \
                         threshold ({})",
                        super::format::float(risk),
                        super::format::float(r.risk_threshold)
                    ),
                });
            }
        }
        if r.claim == "anonymised" {
            let gaps = self.claim_gaps();
            if !gaps.is_empty() {
                out.push(Finding {
                    level: Level::Warning,
                    field: None,
                    text: format!(
                        "the release record claims the output is anonymised, but {}; this \
                         report treats it as de-identified personal information",
                        gaps.join("; ")
                    ),
                });
            }
        }
    }
}

/// The section: consent enforcement, the release record, and the output's standing.
pub(super) fn release_section(d: &Doc) -> Section {
    let mut blocks = Vec::new();
    blocks.push(Block::H3("Consent enforcement".into()));
    match d.consent() {
        Some(c) => {
            let mut kv = Table::kv();
            let mut ledger = t(c.ledger.clone());
            ledger.push(Piece::Text(", SHA-256 ".into()));
            ledger.push(Piece::Hash(c.ledger_sha256.clone()));
            kv.pair("Ledger", ledger);
            kv.pair("Purpose", t(c.purpose.clone()));
            kv.pair("As of", t(c.as_of.clone()));
            kv.pair(
                "Subject column",
                t(format!("{} ({} ids)", c.subject, c.subject_ids)),
            );
            kv.pair("Fields on consent", t(c.consent_fields.join(", ")));
            if !c.separate_consent_fields.is_empty() {
                kv.pair(
                    "Needing separate consent",
                    t(c.separate_consent_fields.join(", ")),
                );
            }
            kv.pair("Rows in", t(group_u(c.rows_in)));
            kv.pair(
                "Removed, consent withdrawn",
                t(group_u(c.rows_removed_withdrawn)),
            );
            kv.pair(
                "Removed, no consent recorded",
                t(format!(
                    "{} (on_missing: {})",
                    group_u(c.rows_removed_missing),
                    c.on_missing
                )),
            );
            kv.pair("Released", t(group_u(c.rows_released)));
            for (f, n) in &c.fields_nulled {
                kv.pair(&format!("Released with {f} nulled"), t(group_u(*n)));
            }
            kv.pair(
                "Ledger events",
                t(format!(
                    "{} read, {} for the purpose, {} after the as-of time (ignored), {} \
                     repeated",
                    group_u(c.ledger_events),
                    group_u(c.purpose_events),
                    group_u(c.later_events),
                    group_u(c.duplicate_events)
                )),
            );
            blocks.push(Block::Table(kv));
        }
        None => {
            let on_consent = d
                .fields
                .iter()
                .filter(|f| !f.consent_bases().is_empty())
                .count();
            blocks.push(Block::Para(t(if on_consent > 0 {
                format!(
                    "No consent ledger was enforced: {on_consent} output {} on consent, which \
                     the run asserted but did not check (withdrawn or missing consent was not \
                     removed).",
                    if on_consent == 1 {
                        "field relies"
                    } else {
                        "fields rely"
                    }
                )
            } else {
                "No field relies on consent.".into()
            })));
        }
    }

    blocks.push(Block::H3("Release record (ISO/IEC 27559)".into()));
    match d.release() {
        None => blocks.push(Block::Para(t(
            "None: the policy has no `release:` block, so who receives the output, under which \
             model, against which threat and risk threshold, and who approved it are not \
             recorded.",
        ))),
        Some(r) => {
            let mut kv = Table::kv();
            // Context: who receives it, how, and against whom it must hold.
            kv.pair("Context: recipient", t(r.recipient.clone()));
            kv.pair("Context: release model", t(r.model.replace('_', " ")));
            kv.pair("Context: controls", opt(r.context.clone()));
            kv.pair("Context: threat model", t(r.threat_model.clone()));
            // Data: what the output holds.
            let keyed = d.fields.iter().filter(|f| f.node.key_id.is_some()).count();
            kv.pair(
                "Data",
                t(format!(
                    "{} output fields ({} keyed), {} dropped; see Fields",
                    d.fields.len(),
                    keyed,
                    d.dropped.len()
                )),
            );
            // Identifiability: the threshold against what was measured.
            let measured = match d.privacy {
                Some(p) => format!(
                    "highest prosecutor risk {} (smallest class {}), models {}",
                    super::format::float(p.achieved.risks.prosecutor_highest),
                    p.achieved.smallest_class,
                    if p.achieved.satisfied {
                        "met"
                    } else {
                        "not met"
                    }
                ),
                None => "not measured (no privacy block)".into(),
            };
            kv.pair(
                "Identifiability",
                t(format!(
                    "threshold {}; {measured}",
                    super::format::float(r.risk_threshold)
                )),
            );
            // Governance: who answers for it, and until when.
            kv.pair("Governance: approver", t(r.approver.clone()));
            kv.pair("Governance: approved on", opt(r.approved_on.clone()));
            kv.pair("Governance: re-evaluate by", t(r.re_evaluate_by.clone()));
            kv.pair("Governance: measures", opt(r.governance.clone()));
            blocks.push(Block::Table(kv));
        }
    }

    blocks.push(Block::H3("Standing of the output".into()));
    let gaps = d.claim_gaps();
    let claimed = d.release().is_some_and(|r| r.claim == "anonymised");
    let text = if claimed && gaps.is_empty() {
        let r = d.release().map(|r| r.approver.clone()).unwrap_or_default();
        format!(
            "The controller claims this output is anonymised (PIPL Art. 73(4) 匿名化; GDPR \
             Recital 26), approved by {r}. This is the controller's claim, not cloakline's \
             finding; its evidence: the privacy models were met, the highest \
             re-identification risk is within the release record's threshold, no field is \
             keyed and no direct identifier is kept."
        )
    } else {
        let why = if claimed {
            format!(
                " The release record's claim of anonymisation is not supported: {}.",
                gaps.join("; ")
            )
        } else {
            String::new()
        };
        format!(
            "De-identified personal information (PIPL Art. 73(3) 去标识化): it remains \
             personal information (personal data under GDPR), and both laws apply to it in \
             full.{why}"
        )
    };
    blocks.push(Block::Para(t(text)));
    Section {
        id: "release",
        title: "Consent and release",
        blocks,
    }
}
