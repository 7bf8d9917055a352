//! Matching: `Match`, `RecognizerSet` and the helpers that run patterns over a text,
//! check boundaries and resolve overlapping candidates.

use regex::Regex;

use super::builtin::{Boundary, Pattern, Profile, Recognizer, Window, builtin_recognizers};
use super::validators::Validator;
use crate::error::Problem;

/// One entity found in a text. Offsets are byte offsets on char boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    /// Index into [`RecognizerSet::recognizers`].
    pub recognizer: usize,
    /// The match passed a real validator (not `Validator::None`).
    pub validated: bool,
}

/// An ordered set of recognizers; indices are stable once added.
#[derive(Debug, Clone)]
pub struct RecognizerSet {
    recs: Vec<Recognizer>,
}

/// The longest custom recognizer name.
pub const MAX_RECOGNIZER_NAME: usize = 64;

impl RecognizerSet {
    /// The built-in recognizers (see the module docs).
    pub fn builtin() -> Result<Self, regex::Error> {
        Ok(RecognizerSet {
            recs: builtin_recognizers()?,
        })
    }

    /// Adds a user recognizer. It always runs (no prefilter, no boundary
    /// checks: use `\b` in the pattern), is not context-only and has no keywords.
    pub fn add_custom(
        &mut self,
        name: &str,
        pattern: &str,
        validator: Option<&str>,
        category: &str,
    ) -> Result<(), Problem> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Problem::new(
                "custom recognizer: the name must not be empty",
            ));
        }
        // The name is the placeholder (`<NAME>`) written for every match: kept short.
        if name.chars().count() > MAX_RECOGNIZER_NAME {
            return Err(Problem(format!(
                "custom recognizer: the name is {} characters long; it must be at most \
                 {MAX_RECOGNIZER_NAME}",
                name.chars().count()
            )));
        }
        if self.index_of(name).is_some() {
            return Err(Problem(format!(
                "custom recognizer '{name}': a recognizer with this name already exists"
            )));
        }
        if category.trim().is_empty() {
            return Err(Problem(format!(
                "custom recognizer '{name}': the category must not be empty (use a DPV term such as pd:Identifier)"
            )));
        }
        let validator = match validator {
            None => Validator::None,
            Some(v) => Validator::from_name(v).ok_or_else(|| {
                let names: Vec<&str> = Validator::ALL.iter().map(Validator::name).collect();
                Problem(format!(
                    "custom recognizer '{name}': unknown validator '{v}'; valid validators are: {}",
                    names.join(", ")
                ))
            })?,
        };
        if pattern.is_empty() {
            return Err(Problem(format!(
                "custom recognizer '{name}': the pattern must not be empty"
            )));
        }
        let re = Regex::new(pattern)
            .map_err(|e| Problem(format!("custom recognizer '{name}': invalid regex: {e}")))?;
        if re.is_match("") {
            return Err(Problem(format!(
                "custom recognizer '{name}': the pattern matches the empty string"
            )));
        }
        self.recs.push(Recognizer {
            name: name.to_string(),
            category: category.trim().to_string(),
            sensitive_pipl: false,
            sensitive_gdpr: false,
            needs_context: false,
            column_keywords: Vec::new(),
            patterns: vec![Pattern {
                re,
                validator,
                boundary: Boundary::None,
                gate: Profile::NONE,
                window: Window::Full,
                retry: false,
                shrink: false,
                trim_punct: false,
            }],
            validator,
            base_confidence: 0.5,
        });
        Ok(())
    }

    pub fn recognizers(&self) -> &[Recognizer] {
        &self.recs
    }

    /// A set with only the named recognizers, in the order given. An unknown name is an
    /// error listing the known ones.
    pub fn subset(&self, names: &[String]) -> Result<RecognizerSet, Problem> {
        let mut recs = Vec::with_capacity(names.len());
        for n in names {
            match self.recs.iter().find(|r| &r.name == n) {
                Some(r) => recs.push(r.clone()),
                None => {
                    return Err(Problem(format!(
                        "unknown recognizer `{n}`; known: {}",
                        self.recs
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(RecognizerSet { recs })
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.recs.iter().position(|r| r.name == name)
    }

    /// All entities in `text`, non-overlapping, sorted by start. `out` is
    /// cleared first and reused (no allocation once it has grown).
    /// `column_context`: indices of recognizers whose keywords matched the
    /// column name; context-only recognizers run only when listed there.
    pub fn find(&self, text: &str, column_context: &[usize], out: &mut Vec<Match>) {
        self.find_inner(text, column_context, out, None);
    }

    /// As [`RecognizerSet::find`], and also records in `rejected` the recognizer of every
    /// candidate that matched a pattern but failed its validator (for scan statistics).
    pub fn find_with_rejects(
        &self,
        text: &str,
        column_context: &[usize],
        out: &mut Vec<Match>,
        rejected: &mut Vec<usize>,
    ) {
        rejected.clear();
        self.find_inner(text, column_context, out, Some(rejected));
    }

    fn find_inner(
        &self,
        text: &str,
        column_context: &[usize],
        out: &mut Vec<Match>,
        mut rejected: Option<&mut Vec<usize>>,
    ) {
        out.clear();
        if text.is_empty() {
            return;
        }
        let profile = Profile::scan(text.as_bytes());
        for (ri, rec) in self.recs.iter().enumerate() {
            if rec.needs_context && !column_context.contains(&ri) {
                continue;
            }
            for pat in &rec.patterns {
                if pat.gate.allows(&profile) {
                    run_pattern(text, &profile, ri, pat, out, rejected.as_deref_mut());
                }
            }
        }
        resolve_overlaps(out);
    }

    /// Which recognizers' keywords match this column name. English keywords
    /// match whole tokens (split on `_ - . space` and camelCase; keywords of 5+
    /// letters also inside a token, e.g. `useremail`, except for context-only
    /// recognizers, where a false signal would switch detection on: `template`
    /// must not mean `plate`); Chinese keywords match as substrings. A hit inside a longer hit of another recognizer is dropped
    /// (`id_card_no` is an ID, not a card).
    pub fn column_signal(&self, column_name: &str) -> Vec<usize> {
        struct Hit {
            rec: usize,
            cjk: bool,
            start: usize,
            end: usize,
        }
        let tokens = column_tokens(column_name);
        let lower = column_name.to_lowercase();
        let mut hits: Vec<Hit> = Vec::new();
        for (ri, rec) in self.recs.iter().enumerate() {
            for kw in &rec.column_keywords {
                if kw.is_ascii() {
                    let kt = column_tokens(kw);
                    if kt.is_empty() || kt.len() > tokens.len() {
                        continue;
                    }
                    for i in 0..=tokens.len() - kt.len() {
                        let exact = tokens[i..i + kt.len()] == kt[..];
                        let inside = !rec.needs_context
                            && kt.len() == 1
                            && kt[0].len() >= 5
                            && tokens[i].contains(&kt[0]);
                        if exact || inside {
                            hits.push(Hit {
                                rec: ri,
                                cjk: false,
                                start: i,
                                end: i + kt.len(),
                            });
                        }
                    }
                } else {
                    let kw = kw.to_lowercase();
                    for (pos, m) in lower.match_indices(kw.as_str()) {
                        hits.push(Hit {
                            rec: ri,
                            cjk: true,
                            start: pos,
                            end: pos + m.len(),
                        });
                    }
                }
            }
        }
        let mut out: Vec<usize> = hits
            .iter()
            .filter(|h| {
                !hits.iter().any(|o| {
                    o.rec != h.rec
                        && o.cjk == h.cjk
                        && o.start <= h.start
                        && h.end <= o.end
                        && o.end - o.start > h.end - h.start
                })
            })
            .map(|h| h.rec)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Confidence in [0, 1]: the recognizer's base, raised when the match was
    /// validated and again when the column name points at this recognizer.
    pub fn confidence(&self, m: &Match, column_context: &[usize]) -> f32 {
        let Some(rec) = self.recs.get(m.recognizer) else {
            return 0.0;
        };
        let mut c = rec.base_confidence;
        if m.validated {
            c += (1.0 - c) * 0.5;
        }
        if column_context.contains(&m.recognizer) {
            c += (1.0 - c) * 0.5;
        }
        c.clamp(0.0, 1.0)
    }
}

/// Lowercase ASCII tokens of a column name; non-ASCII chars act as separators.
fn column_tokens(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !cur.is_empty() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                tokens.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

fn next_char_end(text: &str, i: usize) -> usize {
    i + text
        .get(i..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// Next start worth searching after a rejected candidate at `s`: every start
/// inside the alphanumeric run beginning at `s` is preceded by a word char and
/// would fail the boundary check, so skip past the run's first non-word char.
fn after_word_run(text: &str, s: usize) -> usize {
    let rest = text.get(s..).unwrap_or("");
    match rest.char_indices().find(|&(_, c)| !is_word(c)) {
        Some((i, c)) => s + i + c.len_utf8(),
        None => text.len() + 1,
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn boundary_ok(text: &str, start: usize, end: usize, kind: Boundary) -> bool {
    if kind == Boundary::None {
        return true;
    }
    let (Some(before), Some(after)) = (text.get(..start), text.get(end..)) else {
        return false;
    };
    let mut back = before.chars().rev();
    if let Some(p) = back.next() {
        if is_word(p) || p == '+' {
            return false;
        }
        let joined = back.next().is_some_and(|c| c.is_ascii_digit());
        if matches!(p, '-' | '.') && joined {
            return false;
        }
        if kind == Boundary::Ipv6 && p == ':' {
            return false;
        }
    }
    let mut fwd = after.chars();
    if let Some(n) = fwd.next() {
        if is_word(n) {
            return false;
        }
        let joined = fwd.next().is_some_and(|c| c.is_ascii_digit());
        if matches!(n, '-' | '.') && joined {
            return false;
        }
        if kind == Boundary::Ipv6 && n == ':' {
            return false;
        }
    }
    true
}

/// Largest end `<= end` such that `[start, end)` is an acceptable entity.
fn accept(text: &str, start: usize, mut end: usize, pat: &Pattern) -> Option<usize> {
    let bytes = text.as_bytes();
    if pat.trim_punct {
        while end > start
            && bytes
                .get(end - 1)
                .is_some_and(|c| b".,;:!?)]}'\">".contains(c))
        {
            end -= 1;
        }
    }
    loop {
        if end <= start {
            return None;
        }
        let candidate = text.get(start..end)?;
        if boundary_ok(text, start, end, pat.boundary) && pat.validator.check(candidate) {
            return Some(end);
        }
        if !pat.shrink {
            return None;
        }
        let cut = candidate.rfind([' ', '-'])?;
        end = start + cut;
        while end > start && bytes.get(end - 1).is_some_and(|c| matches!(c, b' ' | b'-')) {
            end -= 1;
        }
    }
}

fn run_pattern(
    text: &str,
    profile: &Profile,
    ri: usize,
    pat: &Pattern,
    out: &mut Vec<Match>,
    mut rejected: Option<&mut Vec<usize>>,
) {
    let validated = pat.validator != Validator::None;
    let (mut pos, hi) = pat.window.range(text, profile);
    // Built-in patterns use no look-around assertions, so cutting the haystack
    // at `hi` and starting at `pos` cannot change which matches exist inside.
    let Some(hay) = text.get(..hi) else {
        return;
    };
    while pos <= hi {
        let Some(m) = pat.re.find_at(hay, pos) else {
            break;
        };
        let (s, e) = (m.start(), m.end());
        if e == s {
            pos = next_char_end(text, s);
            continue;
        }
        match accept(text, s, e, pat) {
            Some(end) => {
                out.push(Match {
                    start: s,
                    end,
                    recognizer: ri,
                    validated,
                });
                pos = end;
            }
            None => {
                if let Some(r) = rejected.as_deref_mut() {
                    r.push(ri);
                }
                pos = if pat.retry && pat.boundary != Boundary::None {
                    after_word_run(text, s)
                } else if pat.retry {
                    next_char_end(text, s)
                } else {
                    e
                };
            }
        }
    }
}

/// Within each cluster of overlapping candidates keep, greedily: validated
/// first, then longer, then lower recognizer index. Clusters are contiguous
/// once sorted by start, so this is in place and allocation-free.
pub(super) fn resolve_overlaps(out: &mut Vec<Match>) {
    if out.len() < 2 {
        return;
    }
    out.sort_unstable_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.recognizer.cmp(&b.recognizer))
    });
    let n = out.len();
    let mut w = 0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        let mut max_end = out[i].end;
        while j < n && out[j].start < max_end {
            max_end = max_end.max(out[j].end);
            j += 1;
        }
        let cluster = &mut out[i..j];
        let mut kept = cluster.len();
        if kept > 1 {
            cluster.sort_unstable_by(|a, b| {
                b.validated
                    .cmp(&a.validated)
                    .then((b.end - b.start).cmp(&(a.end - a.start)))
                    .then(a.recognizer.cmp(&b.recognizer))
                    .then(a.start.cmp(&b.start))
            });
            kept = 0;
            for k in 0..cluster.len() {
                let c = cluster[k];
                if cluster[..kept]
                    .iter()
                    .all(|x| x.end <= c.start || c.end <= x.start)
                {
                    cluster[kept] = c;
                    kept += 1;
                }
            }
            cluster[..kept].sort_unstable_by_key(|m| m.start);
        }
        for k in 0..kept {
            out[w] = out[i + k];
            w += 1;
        }
        i = j;
    }
    out.truncate(w);
}
