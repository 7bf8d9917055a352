//! Loading a policy: YAML parsing with positions, and the checks that turn a [`PolicyFile`]
//! into a [`Policy`]. Loading collects every problem it finds, in file order, not only the
//! first: a drafted policy of many columns is fixed in one pass, not one run per mistake.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::{MessageFormatter as _, Spanned};
use sha2::{Digest, Sha256};

use super::action::validate_action;
use super::basis::{self, Basis, Jurisdiction};
use super::jurisdiction::{REGIMES, eu};
use super::model::{Action, ActionKind, BasisSpec, Field, FieldRule, Policy, PolicyFile};
use super::{MAX_POLICY_BYTES, PolicyProblem, consent, parse_type_name, privacy, rules};
use crate::error::{Error, Problem, Result};
use crate::recognizers::RecognizerSet;

impl Policy {
    /// Load and validate a policy file. The error lists every problem found, in file order.
    pub fn load(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        Self::load_collecting(path).map_err(|ps| problems_error(&source, ps))
    }

    /// Load and validate a policy file; on failure, every problem found, in file order, each
    /// with its line, column and field (what `validate --json` lists).
    pub fn load_collecting(path: &Path) -> std::result::Result<Self, Vec<PolicyProblem>> {
        let text = crate::io::read_regular_text(path, MAX_POLICY_BYTES, "a policy YAML file")
            .map_err(|e| vec![PolicyProblem::new(e)])?;
        Self::from_yaml_str_collecting(&text, &path.display().to_string())
    }

    /// Parse and validate policy text; `source` names it in errors.
    pub fn from_yaml_str(text: &str, source: &str) -> Result<Self> {
        Self::from_yaml_str_collecting(text, source).map_err(|ps| problems_error(source, ps))
    }

    /// Parse and validate policy text; on failure, every problem found, in file order.
    pub fn from_yaml_str_collecting(
        text: &str,
        source: &str,
    ) -> std::result::Result<Self, Vec<PolicyProblem>> {
        let mut found = parse(text, source);
        let policy = match found.file.take() {
            Some(file) => validate(
                file,
                source,
                hex::encode(Sha256::digest(text.as_bytes())),
                &mut found,
            ),
            None => None,
        };
        let mut problems = found.problems;
        match policy {
            Some(p) if problems.is_empty() => Ok(Policy {
                text: Arc::from(text),
                ..p
            }),
            _ => {
                if problems.is_empty() {
                    problems.push(PolicyProblem::new(
                        "internal: the policy was refused without a reason (a bug in cloakline)",
                    ));
                }
                // Stable: the problems of one field keep the order they were found in.
                problems.sort_by_key(|p| (p.line.unwrap_or(u64::MAX), p.column.unwrap_or(0)));
                Err(problems)
            }
        }
    }

    /// The policy's fields that reach the output, in no particular order.
    pub fn output_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.values().filter(|f| f.action != Action::Drop)
    }
}

/// The problems of policy `source` as one error: a single one as it was found (a rule breach
/// keeps its rule id), several listed one a line (with a rule id only when they all break the
/// same rule). Exit code 2, like every policy error.
pub fn problems_error(source: &str, mut problems: Vec<PolicyProblem>) -> Error {
    let path = source.to_string();
    if problems.len() == 1 {
        let p = problems.remove(0);
        let message = p.detail.unwrap_or(p.message);
        return match p.rule {
            Some(rule) => Error::Rule {
                path,
                rule,
                message,
            },
            None => Error::Policy { path, message },
        };
    }
    let message = format!(
        "{} problems, in file order:\n  {}",
        problems.len(),
        problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    let first = problems.first().and_then(|p| p.rule);
    match first.filter(|r| problems.iter().all(|p| p.rule == Some(*r))) {
        Some(rule) => Error::Rule {
            path,
            rule,
            message,
        },
        None => Error::Policy { path, message },
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

// ---------------------------------------------------------------------------------------------
// Reading the YAML, past the entries serde cannot read.
// ---------------------------------------------------------------------------------------------

/// What loading found so far.
struct Found {
    /// The file, once it reads (with the unreadable entries set aside).
    file: Option<PolicyFile>,
    problems: Vec<PolicyProblem>,
    /// Fields whose rule could not be read: a stand-in took its place, not checked further.
    unreadable: BTreeSet<String>,
    /// `jurisdictions` could not be read: lawful bases are not checked.
    no_jurisdictions: bool,
    /// Line and column of each top-level key, for problems of the header.
    keys: BTreeMap<String, (u64, u64)>,
}

impl Found {
    /// `p`, placed at `pos` (or where its message says) and about `field`.
    fn push(&mut self, p: Problem, pos: Option<(u64, u64)>, field: Option<&str>) {
        let pos = pos.or_else(|| position_in(&p.message));
        self.problems.push(PolicyProblem {
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            field: field.map(str::to_string),
            message: p.message,
            rule: p.rule,
            detail: None,
        });
    }

    /// A problem of field `name`, whose rule is at `pos`: "field `name` (line L column C): …".
    fn push_field(&mut self, name: &str, pos: (u64, u64), p: Problem) {
        let p = p.context(format_args!(
            "field `{name}` (line {} column {})",
            pos.0, pos.1
        ));
        self.push(p, Some(pos), Some(name));
    }

    /// A problem of top-level entry `key`, placed at the key when the message does not say.
    fn push_at_key(&mut self, key: &str, p: Problem) {
        match self.keys.get(key).copied() {
            Some((l, c)) if position_in(&p.message).is_none() => self.push(
                p.context(format_args!("line {l} column {c}")),
                Some((l, c)),
                None,
            ),
            _ => self.push(p, None, None),
        }
    }
}

/// The first "line L column C" of a message, if it has one.
fn position_in(message: &str) -> Option<(u64, u64)> {
    let mut rest = message;
    while let Some(i) = rest.find("line ") {
        rest = &rest[i + "line ".len()..];
        let line = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        if let Some(tail) = rest[line.len()..].strip_prefix(" column ") {
            let column = tail.split(|c: char| !c.is_ascii_digit()).next()?;
            if let (Ok(l), Ok(c)) = (line.parse(), column.parse()) {
                return Some((l, c));
            }
        }
    }
    None
}

/// Each attempt parses the text again: past this many entries set aside, loading stops and
/// says so (a policy with more unreadable rules is better fixed in several passes than read
/// quadratically).
const MAX_SET_ASIDE: usize = 100;

/// Parse the YAML. serde stops at its first error, so each entry it cannot read (a field
/// rule, a top-level entry) is recorded as a problem and set aside — a field becomes a
/// stand-in `{ action: drop }`, lines kept so later positions hold — and the text is read
/// again, until it reads or nothing more can be set aside (invalid YAML, a flow mapping).
fn parse(text: &str, source: &str) -> Found {
    let mut found = Found {
        file: None,
        problems: Vec::new(),
        unreadable: BTreeSet::new(),
        no_jurisdictions: false,
        keys: BTreeMap::new(),
    };
    // Setting aside keeps every key on its line, so the outline of the text holds throughout.
    let outline = outline(text);
    if let Some(o) = &outline {
        found.keys = o
            .top
            .iter()
            .map(|e| (e.key.clone(), (e.line, e.column)))
            .collect();
    }
    let mut doc = Doc {
        text: text.to_string(),
        appended: 0,
    };
    for _ in 0..MAX_SET_ASIDE {
        let e = match serde_saphyr::from_str::<PolicyFile>(&doc.text) {
            Ok(file) => {
                found.file = Some(file);
                return found;
            }
            Err(e) => e,
        };
        let aside = outline.as_ref().and_then(|o| set_aside(&doc, &e, o));
        let field = aside.as_ref().and_then(|a| a.field.clone());
        // A missing top-level entry has no place in the file (serde gives the end of it).
        let placed = !aside.as_ref().is_some_and(|a| a.missing);
        found
            .problems
            .push(yaml_problem(&e, source, field.as_deref(), placed));
        match aside {
            Some(a) if a.doc.text != doc.text => {
                found.unreadable.extend(a.field);
                found.no_jurisdictions |= a.jurisdictions;
                doc = a.doc;
            }
            _ => return found,
        }
    }
    found.problems.push(PolicyProblem::new(format!(
        "stopped after {MAX_SET_ASIDE} entries that do not read; fix them and run again"
    )));
    found
}

/// A serde error as a problem: its core message (no snippet), placed (unless not `placed`),
/// naming the field.
fn yaml_problem(
    e: &serde_saphyr::Error,
    source: &str,
    field: Option<&str>,
    placed: bool,
) -> PolicyProblem {
    let core: String = serde_saphyr::UserMessageFormatter
        .format_message(e.without_snippet())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let pos = e
        .location()
        .filter(|l| placed && l.line() > 0)
        .map(|l| (l.line(), l.column()));
    let message = match (field, pos) {
        (Some(f), Some((l, c))) => format!("field `{f}` (line {l} column {c}): {core}"),
        (None, Some((l, c))) => format!("line {l} column {c}: {core}"),
        _ => core,
    };
    PolicyProblem {
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        field: field.map(str::to_string),
        message,
        rule: None,
        detail: Some(yaml_error_message(e, source)),
    }
}

/// The entries of a mapping, in order, with the places of their keys.
struct Entries(Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    m.next_value::<IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(Entries(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// Only the `fields` mapping of a policy, whatever the rest holds.
#[derive(Deserialize)]
struct FieldsOnly {
    fields: Option<Entries>,
}

/// A mapping entry: its key and the key's place.
struct Entry {
    key: String,
    line: u64,
    column: u64,
    /// The line of the next entry (its lines end there); `None`: the end of the document.
    end_line: Option<u64>,
    /// The key starts its line (block style), so its lines can be replaced.
    block: bool,
}

/// The top-level entries and the field entries of a document that is valid YAML, in order.
struct Outline {
    top: Vec<Entry>,
    fields: Vec<Entry>,
}

fn outline(doc: &str) -> Option<Outline> {
    let top = entries(doc, serde_saphyr::from_str::<Entries>(doc).ok()?.0, None);
    let fields = match top.iter().position(|e| e.key == "fields") {
        Some(i) => {
            let end = top.get(i + 1).map(|e| e.line);
            let f = serde_saphyr::from_str::<FieldsOnly>(doc).ok()?;
            f.fields.map(|f| entries(doc, f.0, end)).unwrap_or_default()
        }
        None => Vec::new(),
    };
    Some(Outline { top, fields })
}

fn entries(doc: &str, keys: Vec<Spanned<String>>, end_line: Option<u64>) -> Vec<Entry> {
    let mut v: Vec<Entry> = keys
        .into_iter()
        .map(|k| {
            let (line, column) = (k.referenced.line(), k.referenced.column());
            // Only spaces (and an opening quote) before the key on its line.
            let before: String = doc
                .lines()
                .nth(usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX))
                .unwrap_or_default()
                .chars()
                .take(usize::try_from(column.saturating_sub(1)).unwrap_or(0))
                .collect();
            let block = line > 0 && matches!(before.trim_start_matches(' '), "" | "\"" | "'");
            Entry {
                key: k.value,
                line,
                column,
                end_line,
                block,
            }
        })
        .collect();
    v.sort_by_key(|e| (e.line, e.column));
    for i in 1..v.len() {
        if v[i].line == v[i - 1].line {
            v[i].block = false;
            v[i - 1].block = false;
        }
        v[i - 1].end_line = Some(v[i].line);
    }
    v
}

/// The text being read: the policy with entries set aside, and stand-ins for missing
/// top-level entries appended.
#[derive(Clone)]
struct Doc {
    text: String,
    /// Bytes appended at the end (not part of any entry of the outline).
    appended: usize,
}

impl Doc {
    /// Byte range of lines `line..end_line` (1-based; `None`: to the end of the policy).
    fn lines(&self, line: u64, end_line: Option<u64>) -> Option<(usize, usize)> {
        let end_of_policy = self.text.len() - self.appended;
        let start_of = |l: u64| -> Option<usize> {
            if l <= 1 {
                return Some(0);
            }
            let n = usize::try_from(l - 1).ok()?;
            self.text
                .match_indices('\n')
                .nth(n - 1)
                .map(|(i, _)| (i + 1).min(end_of_policy))
        };
        let start = start_of(line)?;
        let end = match end_line {
            Some(l) => start_of(l)?,
            None => end_of_policy,
        };
        (start <= end).then_some((start, end))
    }

    /// Lines `start..end` (bytes) replaced by `line` and as many line breaks as they held, so
    /// that every later line keeps its number.
    fn replace(&self, (start, end): (usize, usize), line: &str) -> Doc {
        let t = &self.text;
        let breaks = t[start..end].matches('\n').count();
        let mut text = String::with_capacity(t.len());
        text.push_str(&t[..start]);
        text.push_str(line);
        text.extend(std::iter::repeat_n('\n', breaks));
        text.push_str(&t[end..]);
        Doc {
            text,
            appended: self.appended,
        }
    }
}

/// A document with one unreadable entry set aside.
struct SetAside {
    doc: Doc,
    /// The field set aside, if it was one.
    field: Option<String>,
    /// `jurisdictions` was replaced by a stand-in.
    jurisdictions: bool,
    /// A missing top-level entry was added.
    missing: bool,
}

/// A value that reads for each required top-level entry (problems about it are already
/// recorded; checks that depend on it are skipped).
fn header_stand_in(key: &str) -> Option<&'static str> {
    Some(match key {
        "policy" | "controller" | "purpose" => "\"-\"",
        "version" => "1",
        "jurisdictions" => "[EU]",
        "fields" => "{}",
        _ => return None,
    })
}

/// Set aside the entry that error `e` is in: a field becomes `{ action: drop }`, a required
/// top-level entry a stand-in, any other entry nothing. `None`: it cannot be placed.
fn set_aside(doc: &Doc, e: &serde_saphyr::Error, o: &Outline) -> Option<SetAside> {
    // A required top-level entry is missing: a stand-in at the end.
    if let serde_saphyr::Error::SerdeMissingField { field, .. } = e.without_snippet()
        && let Some(value) = header_stand_in(field)
        && !o.top.iter().any(|t| t.key == *field)
    {
        let mut d = doc.clone();
        let before = d.text.len();
        if !d.text.is_empty() && !d.text.ends_with('\n') {
            d.text.push('\n');
        }
        d.text.push_str(&format!("{field}: {value}\n"));
        d.appended += d.text.len() - before;
        return Some(SetAside {
            doc: d,
            field: None,
            jurisdictions: *field == "jurisdictions",
            missing: true,
        });
    }
    let loc = e.location()?;
    let pos = (loc.line(), loc.column());
    let top = o.top.iter().rev().find(|t| (t.line, t.column) <= pos)?;
    if !top.block {
        return None;
    }
    if top.key == "fields" {
        let f = o.fields.iter().rev().find(|f| (f.line, f.column) <= pos)?;
        if !f.block {
            return None;
        }
        let range = doc.lines(f.line, f.end_line)?;
        let indent: String = doc.text[range.0..]
            .chars()
            .take_while(|c| *c == ' ')
            .collect();
        let key = serde_json::to_string(&f.key).ok()?;
        return Some(SetAside {
            doc: doc.replace(range, &format!("{indent}{key}: {{ action: drop }}")),
            field: Some(f.key.clone()),
            jurisdictions: false,
            missing: false,
        });
    }
    let line = header_stand_in(&top.key)
        .map(|v| format!("{}: {v}", top.key))
        .unwrap_or_default();
    Some(SetAside {
        doc: doc.replace(doc.lines(top.line, top.end_line)?, &line),
        field: None,
        jurisdictions: top.key == "jurisdictions",
        missing: false,
    })
}

// ---------------------------------------------------------------------------------------------
// Checking what was read.
// ---------------------------------------------------------------------------------------------

/// Check every part of the file, recording each problem in `found`; the policy (meaningful
/// only when no problem was found), or `None` when the checks could not run.
fn validate(file: PolicyFile, source: &str, sha256: String, found: &mut Found) -> Option<Policy> {
    let jurisdictions = check_header(&file, found);
    let set = recognizer_set(&file, found)?;
    let fields = validate_fields(&file, &jurisdictions, &set, found);
    let output_fields: Vec<&Field> = fields
        .values()
        .filter(|f| f.action != Action::Drop)
        .collect();
    let transfers: Vec<rules::Transfer> = file.transfers.iter().map(|t| t.value.clone()).collect();
    // One transfer at a time, so that each bad one is reported.
    let mut transfers_ok = true;
    for (t, spanned) in transfers.iter().zip(&file.transfers) {
        if let Err((_, m)) = rules::check(
            &jurisdictions,
            &file.recipients,
            std::slice::from_ref(t),
            &[],
        ) {
            let loc = spanned.referenced;
            let at = format!("transfers (line {} column {})", loc.line(), loc.column());
            found.push(m.context(at), Some((loc.line(), loc.column())), None);
            transfers_ok = false;
        }
    }
    let warnings = if transfers_ok {
        rules::check(&jurisdictions, &file.recipients, &transfers, &output_fields)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let privacy = match &file.privacy {
        None => None,
        Some(b) => match privacy::validate_privacy(&b.value, &b.referenced, &fields, source) {
            Ok(s) => Some(s),
            Err(problems) => {
                for p in problems {
                    let pos = position_in(&p.message)
                        .unwrap_or((b.referenced.line(), b.referenced.column()));
                    found.push(p, Some(pos), None);
                }
                None
            }
        },
    };
    let consent = match &file.consent {
        None => None,
        Some(b) => match consent::validate_consent(&b.value, &fields) {
            Ok(s) => Some(s),
            Err(problems) => {
                push_block(found, "consent", &b.referenced, problems);
                None
            }
        },
    };
    let release = match &file.release {
        None => None,
        Some(b) => match consent::validate_release(&b.value) {
            Ok(s) => Some(s),
            Err(problems) => {
                push_block(found, "release", &b.referenced, problems);
                None
            }
        },
    };
    let mut warnings = warnings;
    if file.consent.is_none() {
        warnings.extend(consent_not_enforced(&output_fields));
    }
    Some(Policy {
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
        text: Arc::from(""),
        privacy,
        consent,
        release,
        recognizers: set,
        warnings,
    })
}

/// Problems of a top-level block, placed at the block.
fn push_block(
    found: &mut Found,
    name: &str,
    loc: &serde_saphyr::Location,
    problems: Vec<crate::error::Problem>,
) {
    for p in problems {
        let p = p.context(format_args!(
            "{name} (line {} column {})",
            loc.line(),
            loc.column()
        ));
        found.push(p, Some((loc.line(), loc.column())), None);
    }
}

/// The CONSENT rule: fields on consent with nothing that enforces withdrawals.
fn consent_not_enforced(fields: &[&Field]) -> Vec<rules::RuleWarning> {
    fields
        .iter()
        .filter(|f| consent::relies_on_consent(f))
        .map(|f| {
            super::jurisdiction::CONSENT.warn(
                Some(f.input_name.clone()),
                "relies on consent, but the policy has no `consent:` ledger: consent asserted, not enforced (withdrawn or missing consent is not removed; docs/CONSENT.md)"
                    .into(),
            )
        })
        .collect()
}

/// The policy-wide entries: jurisdictions (sorted, without repeats; none when they could not
/// be read), name, and no TODO left.
fn check_header(file: &PolicyFile, found: &mut Found) -> Vec<Jurisdiction> {
    if found.no_jurisdictions {
        return Vec::new();
    }
    let jur_loc = file.jurisdictions.referenced;
    let mut jurisdictions = file.jurisdictions.value.clone();
    jurisdictions.sort();
    jurisdictions.dedup();
    if jurisdictions.is_empty() {
        let pos = (jur_loc.line(), jur_loc.column());
        found.push(
            Problem(format!(
                "line {} column {}: `jurisdictions` is empty; name EU (GDPR), CN (PIPL) or both",
                pos.0, pos.1
            )),
            Some(pos),
            None,
        );
    }
    if file.policy.trim().is_empty() {
        found.push_at_key(
            "policy",
            Problem::new("`policy` (the policy's name) is empty"),
        );
    }
    for (key, v) in [("controller", &file.controller), ("purpose", &file.purpose)] {
        if v.trim() == "TODO" {
            found.push_at_key(
                key,
                Problem::breach(
                    "DRAFT",
                    format!("`{key}` is TODO: a person must fill it in before the policy is used"),
                ),
            );
        }
    }
    jurisdictions
}

/// The built-in recognizers plus the policy's own (each bad one recorded and left out).
fn recognizer_set(file: &PolicyFile, found: &mut Found) -> Option<Arc<RecognizerSet>> {
    let mut set = match RecognizerSet::builtin() {
        Ok(s) => s,
        Err(e) => {
            found.push(
                Problem(format!("internal: built-in recognizers: {e}")),
                None,
                None,
            );
            return None;
        }
    };
    for r in &file.recognizers {
        let loc = r.referenced;
        let c = &r.value;
        if let Err(m) = set.add_custom(&c.name, &c.pattern, c.validator.as_deref(), &c.category) {
            found.push(
                Problem(format!(
                    "recognizer `{}` (line {} column {}): {m}",
                    c.name,
                    loc.line(),
                    loc.column()
                )),
                Some((loc.line(), loc.column())),
                None,
            );
        }
    }
    Some(Arc::new(set))
}

/// Every field rule, and no two fields writing the same output column. A field with problems
/// is still in the map (its action, or `keep` in its place), so that the privacy block's
/// checks do not report it again as missing.
fn validate_fields(
    file: &PolicyFile,
    jurisdictions: &[Jurisdiction],
    set: &Arc<RecognizerSet>,
    found: &mut Found,
) -> BTreeMap<String, Field> {
    let mut fields = BTreeMap::new();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    // File order, so that "both write" names the later field.
    let mut rules: Vec<(&String, &Spanned<FieldRule>)> = file.fields.iter().collect();
    rules.sort_by_key(|(_, s)| (s.referenced.line(), s.referenced.column()));
    for (name, spanned) in rules {
        let loc = spanned.referenced;
        let pos = (loc.line(), loc.column());
        if found.unreadable.contains(name) {
            fields.insert(name.clone(), stand_in(name, pos));
            continue;
        }
        if name.trim().is_empty() {
            found.push(
                Problem(format!(
                    "line {} column {}: a field has an empty name; write the input column's \
                     name before the colon",
                    pos.0, pos.1
                )),
                Some(pos),
                None,
            );
            continue;
        }
        let (field, problems) = validate_field(name, &spanned.value, jurisdictions, set, pos);
        let clean = problems.is_empty();
        for p in problems {
            found.push_field(name, pos, p);
        }
        if clean
            && field.action != Action::Drop
            && let Some(other) = outputs.insert(field.output_name.clone(), name.clone())
        {
            found.push_field(
                name,
                pos,
                Problem(format!(
                    "fields `{other}` and `{name}` both write output column `{}`; rename one",
                    field.output_name
                )),
            );
        }
        fields.insert(name.clone(), field);
    }
    fields
}

/// A field whose rule could not be checked, standing in for it in later checks.
fn stand_in(name: &str, pos: (u64, u64)) -> Field {
    Field {
        input_name: name.to_string(),
        output_name: name.to_string(),
        action: Action::Keep,
        bases: BTreeMap::new(),
        category: None,
        category_term: None,
        sensitive: false,
        special_category: None,
        art9_condition: None,
        separate_consent: false,
        consent_ref: None,
        input_type: None,
        note: None,
        line: pos.0,
        column: pos.1,
    }
}

/// Check one rule: parameters fit the action, lawful bases fit every jurisdiction (none
/// checked when the policy has no readable jurisdiction: that is reported once). Every
/// problem of the rule, and the field (with `keep` for an action that does not check).
fn validate_field(
    name: &str,
    r: &FieldRule,
    jurisdictions: &[Jurisdiction],
    set: &Arc<RecognizerSet>,
    pos: (u64, u64),
) -> (Field, Vec<Problem>) {
    let mut problems = Vec::new();
    let action = validate_action(name, r, Some(set)).unwrap_or_else(|p| {
        problems.push(p);
        Action::Keep
    });
    let reaches_output = r.action != ActionKind::Drop;
    let bases = if reaches_output && !jurisdictions.is_empty() {
        lawful_bases(r, jurisdictions).unwrap_or_else(|p| {
            problems.push(p);
            BTreeMap::new()
        })
    } else {
        BTreeMap::new()
    };
    let pipl_sensitive = r.sensitive || r.special_category.is_some();
    // With no bases (not checked, or wrong), only the checks that need none run.
    if let Err(p) = check_sensitive(r, &bases, reaches_output) {
        problems.push(p);
    }
    let category_term = category_term(r).unwrap_or_else(|p| {
        problems.push(p);
        None
    });
    let mut output_name = r.rename.clone().unwrap_or_else(|| name.to_string());
    if output_name.trim().is_empty() {
        problems.push(Problem::new(
            "`rename` is empty; give the output column a name, or leave `rename` out to keep \
             the input name",
        ));
        output_name = name.to_string();
    }
    if let Some(t) = &r.input_type
        && let Err(p) = parse_type_name(t)
    {
        problems.push(p);
    }
    let field = Field {
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
        line: pos.0,
        column: pos.1,
    };
    (field, problems)
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
