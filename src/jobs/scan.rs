//! PII discovery: run the recognizers over a sample of every column, give each column a
//! verdict, and draft a policy a person then completes.
//!
//! ```no_run
//! use cloakline::jobs::scan::Scan;
//! # async fn f() -> cloakline::Result<()> {
//! // The built-in recognizers; `with_recognizers` adds a policy's own.
//! let report = Scan::new("examples/customers.csv").with_sample(10_000).run().await?;
//! for c in &report.columns {
//!     println!("{}: {} -> {}", c.name, c.verdict, c.proposed_action);
//! }
//! std::fs::write("draft.yaml", report.draft_policy("k1", &["EU"])).expect("writable");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::{Format, Input, Location, ReadOptions};
use crate::privacy::table::utf8;
use crate::recognizers::{Match, RecognizerSet};

/// The verdict on one column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Identifies a person on its own (email, phone, ID number, name, unique id).
    DirectIdentifier,
    /// Identifies in combination with others (birth date, ZIP, city, gender, age).
    QuasiIdentifier,
    /// Sensitive data that is not an identifier (health, income, religion, ...).
    Sensitive,
    /// Free text in which recognizers found personal data.
    FreeTextWithPii,
    /// Nothing found.
    NoPiiFound,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::DirectIdentifier => "direct identifier",
            Verdict::QuasiIdentifier => "quasi-identifier",
            Verdict::Sensitive => "sensitive",
            Verdict::FreeTextWithPii => "free text containing PII",
            Verdict::NoPiiFound => "no PII found",
        })
    }
}

/// One recognizer's evidence in one column.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecognizerHit {
    pub recognizer: String,
    pub category: String,
    /// Share of sampled non-null values where the pattern matched (validated or not).
    pub share_pattern: f64,
    /// Share of sampled non-null values with at least one validated match.
    pub share_matching: f64,
    /// Share of values that are one match from end to end (the column *is* this kind).
    pub share_whole_value: f64,
    pub entities: u64,
    /// Whether the column name points at this recognizer.
    pub name_signal: bool,
}

/// What the scan found in one column.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnReport {
    pub name: String,
    pub data_type: String,
    /// Non-null values examined.
    pub sampled: u64,
    pub nulls: u64,
    pub distinct_share: f64,
    pub average_chars: f64,
    pub free_text: bool,
    /// Column-name signals: recognizer names and keyword classes (`person_name`,
    /// `identifier`, `quasi_identifier`, `sensitive`, `free_text`).
    pub name_signals: Vec<String>,
    pub recognizers: Vec<RecognizerHit>,
    pub verdict: Verdict,
    /// PIPL Art. 28 sensitive personal information (or GDPR Art. 9 data), as far as the
    /// evidence shows.
    pub sensitive: bool,
    pub category: Option<String>,
    pub proposed_action: String,
    pub reason: String,
}

/// A scan of one file.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    pub input: String,
    pub rows: u64,
    pub sampled_rows: u64,
    pub columns: Vec<ColumnReport>,
    /// What the scan had to work around (a type that did not hold for the whole file…).
    pub notes: Vec<String>,
    #[serde(skip)]
    format: Option<Format>,
    /// Columns whose type inferred from the first rows failed later in the file.
    #[serde(skip)]
    drifted: HashSet<String>,
}

/// Builder for one scan: an owned job, awaited like `Apply`.
#[must_use]
pub struct Scan {
    input: Location,
    recognizers: Option<std::sync::Arc<RecognizerSet>>,
    format: Option<Format>,
    read: ReadOptions,
    sample: usize,
    seed: u64,
    storage: crate::io::store::StorageOptions,
    draft: Option<Draft>,
}

/// Where and how to write a drafted policy after a scan.
struct Draft {
    path: std::path::PathBuf,
    key_id: String,
    jurisdictions: Vec<String>,
    overwrite: bool,
}

const PERSON_NAME: &[&str] = &[
    "name",
    "full_name",
    "fullname",
    "first_name",
    "last_name",
    "surname",
    "given_name",
    "family_name",
    "姓名",
    "名字",
];
const IDENTIFIER: &[&str] = &[
    "id", "uuid", "guid", "account", "username", "login", "编号", "账号",
];
const QUASI: &[&str] = &[
    "zip",
    "zipcode",
    "postcode",
    "postal",
    "birth",
    "dob",
    "birthday",
    "age",
    "gender",
    "sex",
    "city",
    "region",
    "province",
    "district",
    "country",
    "nationality",
    "邮编",
    "出生",
    "年龄",
    "性别",
    "城市",
    "省",
    "地区",
];
const SENSITIVE: &[&str] = &[
    "health",
    "diagnosis",
    "disease",
    "medical",
    "religion",
    "ethnic",
    "ethnicity",
    "race",
    "sexual",
    "biometric",
    "income",
    "salary",
    "wage",
    "健康",
    "疾病",
    "病",
    "宗教",
    "民族",
    "收入",
    "工资",
];
const ZIP: &[&str] = &["zip", "zipcode", "postcode", "postal", "邮编"];
const FREE_TEXT: &[&str] = &[
    "note",
    "notes",
    "comment",
    "comments",
    "remark",
    "remarks",
    "description",
    "memo",
    "message",
    "text",
    "feedback",
    "备注",
    "说明",
    "留言",
    "评论",
];

/// Lowercase tokens of a column name (split on `_ - . space` and camelCase).
fn tokens(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' || c == '.' || c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn name_has(name: &str, words: &[&str]) -> bool {
    let toks = tokens(name);
    let lower = name.to_lowercase();
    words.iter().any(|w| {
        if w.is_ascii() {
            let wt = tokens(w);
            toks.windows(wt.len().max(1))
                .any(|win| win == wt.as_slice())
        } else {
            lower.contains(w)
        }
    })
}

impl Scan {
    pub fn new(input: impl Into<Location>) -> Self {
        Scan {
            input: input.into(),
            recognizers: None,
            format: None,
            read: ReadOptions::default(),
            sample: 100_000,
            seed: 0x5ca9,
            storage: Default::default(),
            draft: None,
        }
    }
    /// Rows examined: all rows up to this many, a uniform reservoir sample beyond it.
    pub fn with_sample(mut self, rows: usize) -> Self {
        self.sample = rows.max(1);
        self
    }
    /// Input format (default: from the extension).
    pub fn with_format(mut self, f: Option<Format>) -> Self {
        self.format = f;
        self
    }
    /// CSV delimiter.
    pub fn with_delimiter(mut self, d: u8) -> Self {
        self.read.delimiter = d;
        self
    }
    /// How to read CSV/NDJSON: delimiter, batch size, inference window, all strings.
    pub fn with_read_options(mut self, read: ReadOptions) -> Self {
        self.read = read;
        self
    }

    /// Settings of the store a URL input is in (see docs/STORAGE.md).
    pub fn with_storage_options(mut self, options: crate::io::store::StorageOptions) -> Self {
        self.storage = options;
        self
    }

    /// Recognizers to run (default: the built-in ones).
    pub fn with_recognizers(mut self, set: impl Into<std::sync::Arc<RecognizerSet>>) -> Self {
        self.recognizers = Some(set.into());
        self
    }

    /// Also write a draft policy (`ScanReport::draft_policy`) to `path` once the scan is
    /// done: refused before any reading if the file exists (it may hold a reviewed policy)
    /// and `overwrite` is false, or when a jurisdiction is not EU or CN.
    pub fn with_draft_policy(
        mut self,
        path: impl Into<std::path::PathBuf>,
        key_id: impl Into<String>,
        jurisdictions: &[&str],
        overwrite: bool,
    ) -> Self {
        self.draft = Some(Draft {
            path: path.into(),
            key_id: key_id.into(),
            jurisdictions: jurisdictions.iter().map(|j| j.trim().to_string()).collect(),
            overwrite,
        });
        self
    }

    /// Read the sample and classify every column (and write the draft policy, when asked).
    pub async fn run(mut self) -> Result<ScanReport> {
        let draft = self.draft.take();
        if let Some(d) = &draft {
            if d.jurisdictions.is_empty() || d.jurisdictions.iter().any(|j| j != "EU" && j != "CN")
            {
                return Err(Error::Usage(format!(
                    "jurisdictions of a draft policy are EU, CN or both; got {:?}",
                    d.jurisdictions
                )));
            }
            // The id is written into YAML: plain id characters only.
            let id_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
            if d.key_id.is_empty() || !d.key_id.chars().all(id_ok) {
                return Err(Error::Usage(
                    "the draft policy's key id must be letters, digits, `_`, `-` or `.`".into(),
                ));
            }
            if let Location::Local(input) = &self.input {
                crate::io::refuse_collisions(
                    &[("the scanned input", input)],
                    &[("the draft policy", &d.path)],
                )?;
            }
            if d.path.exists() && !d.overwrite {
                return Err(Error::Usage(format!(
                    "{} exists; it may hold a reviewed policy. Choose another name or pass \
                     --overwrite",
                    d.path.display()
                )));
            }
        }
        let report = self.scan().await?;
        if let Some(d) = &draft {
            let j: Vec<&str> = d.jurisdictions.iter().map(String::as_str).collect();
            let text = report.draft_policy(&d.key_id, &j);
            crate::io::write_atomically(&d.path, |f| {
                std::io::Write::write_all(f, text.as_bytes())
            })?;
        }
        Ok(report)
    }

    async fn scan(mut self) -> Result<ScanReport> {
        // A URL: the object fetched to scratch, shown as its URL.
        let local = crate::io::store::Local::of(&self.input, &self.storage, |_| true).await?;
        let remote = local.is_remote();
        let from = local.path.display().to_string();
        let to = local.show(&from);
        self.input = Location::Local(local.path.clone());
        let result = crate::engine::run_blocking("Scan::run", move || {
            let set = match &self.recognizers {
                Some(s) => std::sync::Arc::clone(s),
                None => std::sync::Arc::new(
                    RecognizerSet::builtin()
                        .map_err(|e| Error::Internal(format!("built-in recognizers: {e}")))?,
                ),
            };
            self.run_with(&set)
        })
        .await;
        drop(local);
        match (result, remote) {
            (Ok(mut r), true) => {
                r.input = crate::io::store::relocate(&r.input, &from, &to);
                r.notes = r
                    .notes
                    .iter()
                    .map(|n| crate::io::store::relocate(n, &from, &to))
                    .collect();
                Ok(r)
            }
            (Err(e), true) => Err(e.relocated(&from, &to)),
            (r, false) => r,
        }
    }

    fn run_with(self, set: &RecognizerSet) -> Result<ScanReport> {
        let path = self.input.local()?.to_path_buf();
        let format = self
            .format
            .or_else(|| Format::from_path(&path))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "cannot tell the format of {}; pass --input-format parquet|csv|ndjson",
                    path.display()
                ))
            })?;
        // A type inferred from the first rows may fail later on (a ZIP column of numbers
        // until a `02139-4307`): scan exists to look at unknown data, so it reads the file
        // again with types inferred over all of it, then as text, rather than fail.
        let shown = path.display().to_string();
        let mut read = self.read.clone();
        let mut notes = Vec::new();
        let mut first_schema: Option<arrow::datatypes::SchemaRef> = None;
        tracing::info!(input = %shown, format = format.extension(), "scan: sampling");
        let (schema, sample, seen) = loop {
            let input = Input::open(&path, format, &read, &|s| std::sync::Arc::new(s.clone()))?;
            let schema = input.schema.clone();
            match self.sample_rows(input, &shown) {
                Ok((sample, seen)) => break (schema, sample, seen),
                Err(e @ Error::Data { .. }) if format != Format::Parquet && !read.all_strings => {
                    first_schema.get_or_insert(schema);
                    let retry = if read.infer_rows != 0 {
                        read.infer_rows = 0;
                        "read again with the types inferred from the whole file"
                    } else {
                        read.all_strings = true;
                        "read again with every column as text"
                    };
                    notes.push(format!("{e}; {retry}"));
                }
                Err(e) => return Err(e),
            }
        };
        let drifted: HashSet<String> = match &first_schema {
            Some(first) => first
                .fields()
                .iter()
                .zip(schema.fields())
                .filter(|(a, b)| a.data_type() != b.data_type())
                .map(|(a, _)| a.name().clone())
                .collect(),
            None => HashSet::new(),
        };
        let columns = schema
            .fields()
            .iter()
            .zip(&sample)
            .map(|(f, values)| classify(set, f.name(), f.data_type(), values))
            .collect();
        Ok(ScanReport {
            input: shown,
            rows: seen,
            sampled_rows: sample.first().map_or(0, |s| s.len() as u64),
            columns,
            notes,
            format: Some(format),
            drifted,
        })
    }

    /// All rows up to the sample size, a uniform reservoir sample beyond it, as text; and
    /// the number of rows read.
    fn sample_rows(&self, input: Input, shown: &str) -> Result<(Vec<Vec<Option<String>>>, u64)> {
        let ncols = input.schema.fields().len();
        let mut sample: Vec<Vec<Option<String>>> = vec![Vec::new(); ncols];
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let mut seen: u64 = 0;
        for batch in input.batches()? {
            let batch = batch?;
            let cols: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| utf8(c).map_err(|m| Error::data(shown, m)))
                .collect::<Result<_>>()?;
            let strs: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
            for r in 0..batch.num_rows() {
                let slot = if (seen as usize) < self.sample {
                    Some(seen as usize)
                } else {
                    let j = rng.random_range(0..=seen);
                    ((j as usize) < self.sample).then_some(j as usize)
                };
                seen += 1;
                let Some(slot) = slot else { continue };
                for (c, s) in strs.iter().enumerate() {
                    let v = (!s.is_null(r)).then(|| s.value(r).to_string());
                    if slot < sample[c].len() {
                        sample[c][slot] = v;
                    } else {
                        sample[c].push(v);
                    }
                }
            }
        }
        Ok((sample, seen))
    }
}

/// Counts over a column's sampled values, per recognizer and overall.
struct Tally<'a> {
    /// Values with at least one validated entity.
    matching: Vec<u64>,
    /// Values that are one validated entity as a whole.
    whole: Vec<u64>,
    /// Validated entities.
    entities: Vec<u64>,
    /// Values where the pattern matched, validated or not.
    pattern: Vec<u64>,
    nonnull: u64,
    chars: u64,
    spaced: u64,
    distinct: HashSet<&'a str>,
}

fn tally<'a>(set: &RecognizerSet, context: &[usize], values: &'a [Option<String>]) -> Tally<'a> {
    let n = set.recognizers().len();
    let mut t = Tally {
        matching: vec![0; n],
        whole: vec![0; n],
        entities: vec![0; n],
        pattern: vec![0; n],
        nonnull: 0,
        chars: 0,
        spaced: 0,
        distinct: HashSet::new(),
    };
    let mut matches: Vec<Match> = Vec::new();
    let mut rejected: Vec<usize> = Vec::new();
    let mut hit = vec![false; n];
    let mut candidate = vec![false; n];
    for v in values.iter().flatten() {
        t.nonnull += 1;
        t.chars += v.chars().count() as u64;
        if v.trim().contains(char::is_whitespace) {
            t.spaced += 1;
        }
        t.distinct.insert(v.as_str());
        set.find_with_rejects(v, context, &mut matches, &mut rejected);
        hit.iter_mut().for_each(|h| *h = false);
        candidate.iter_mut().for_each(|h| *h = false);
        for &r in &rejected {
            candidate[r] = true;
        }
        let (lo, hi) = (v.len() - v.trim_start().len(), v.trim_end().len());
        for m in &matches {
            t.entities[m.recognizer] += 1;
            hit[m.recognizer] = true;
            if m.start <= lo && m.end >= hi {
                t.whole[m.recognizer] += 1;
            }
        }
        for (i, h) in hit.iter().enumerate() {
            if *h {
                t.matching[i] += 1;
            }
            if *h || candidate[i] {
                t.pattern[i] += 1;
            }
        }
    }
    t
}

/// What a column's evidence says: verdict, sensitivity, category, proposed action, reason.
struct Decision {
    verdict: Verdict,
    sensitive: bool,
    category: Option<String>,
    action: String,
    reason: String,
}

impl Decision {
    fn new(
        verdict: Verdict,
        sensitive: bool,
        category: Option<&str>,
        action: &str,
        reason: String,
    ) -> Self {
        Decision {
            verdict,
            sensitive,
            category: category.map(str::to_string),
            action: action.to_string(),
            reason,
        }
    }
}

/// The evidence `decide` weighs, besides the recognizer hits.
struct Evidence<'a> {
    name: &'a str,
    data_type: &'a DataType,
    name_signals: &'a [String],
    free_text: bool,
    distinct_share: f64,
    nonnull: u64,
}

impl Evidence<'_> {
    fn signal(&self, c: &str) -> bool {
        self.name_signals.iter().any(|s| s == c)
    }
}

fn classify(
    set: &RecognizerSet,
    name: &str,
    data_type: &DataType,
    values: &[Option<String>],
) -> ColumnReport {
    let context = set.column_signal(name);
    let recs = set.recognizers();
    let t = tally(set, &context, values);
    let n = t.nonnull.max(1) as f64;
    let average_chars = t.chars as f64 / n;
    let distinct_share = t.distinct.len() as f64 / n;
    let mut name_signals: Vec<String> = context.iter().map(|&i| recs[i].name.clone()).collect();
    let classes = [
        ("person_name", name_has(name, PERSON_NAME)),
        ("identifier", name_has(name, IDENTIFIER)),
        ("quasi_identifier", name_has(name, QUASI)),
        ("sensitive", name_has(name, SENSITIVE)),
        ("free_text", name_has(name, FREE_TEXT)),
    ];
    for (c, yes) in classes {
        if yes {
            name_signals.push(c.to_string());
        }
    }
    let signal = |c: &str| name_signals.iter().any(|s| s == c);
    let free_text = crate::kernels::is_string_type(data_type)
        && (signal("free_text")
            || (average_chars >= 25.0 && t.spaced as f64 / n >= 0.5 && !signal("person_name")));
    let mut hits: Vec<RecognizerHit> = (0..recs.len())
        .filter(|&i| t.pattern[i] > 0)
        .map(|i| RecognizerHit {
            recognizer: recs[i].name.clone(),
            category: recs[i].category.clone(),
            share_pattern: t.pattern[i] as f64 / n,
            share_matching: t.matching[i] as f64 / n,
            share_whole_value: t.whole[i] as f64 / n,
            entities: t.entities[i],
            name_signal: context.contains(&i),
        })
        .collect();
    hits.sort_by(|a, b| b.share_whole_value.total_cmp(&a.share_whole_value));
    let evidence = Evidence {
        name,
        data_type,
        name_signals: &name_signals,
        free_text,
        distinct_share,
        nonnull: t.nonnull,
    };
    let d = decide(set, &hits, &evidence);
    ColumnReport {
        name: name.to_string(),
        data_type: data_type.to_string(),
        sampled: t.nonnull,
        nulls: values.len() as u64 - t.nonnull,
        distinct_share,
        average_chars,
        free_text,
        name_signals,
        recognizers: hits,
        verdict: d.verdict,
        sensitive: d.sensitive,
        category: d.category,
        proposed_action: d.action,
        reason: d.reason,
    }
}

/// The verdict: a validated recognizer covering most values wins; then free text; then what
/// the column name says; then embedded entities. Pattern matches that never validate are
/// reported, not counted as evidence.
fn decide(set: &RecognizerSet, hits: &[RecognizerHit], e: &Evidence) -> Decision {
    let recs = set.recognizers();
    let best = hits.first().and_then(|h| {
        let i = set.index_of(&h.recognizer)?;
        let threshold = if h.name_signal { 0.3 } else { 0.5 };
        (h.share_whole_value >= threshold).then_some(i)
    });
    let any_embedded = hits.iter().any(|h| h.share_matching >= 0.01);
    if let Some(i) = best.filter(|_| !e.free_text) {
        let r = &recs[i];
        let share = hits[0].share_whole_value * 100.0;
        let (verdict, action) = if r.name == "date_of_birth" {
            (Verdict::QuasiIdentifier, "generalize")
        } else {
            (Verdict::DirectIdentifier, "tokenize")
        };
        let agrees = if hits[0].name_signal {
            "; the column name agrees"
        } else {
            ""
        };
        return Decision::new(
            verdict,
            r.sensitive_pipl || r.sensitive_gdpr,
            Some(&r.category),
            action,
            format!("{share:.0}% of values are {} (validated){agrees}", r.name),
        );
    }
    if e.free_text {
        return decide_free_text(set, hits, any_embedded);
    }
    if let Some(d) = decide_by_name(e) {
        return d;
    }
    if any_embedded {
        let kinds: Vec<String> = hits
            .iter()
            .map(|h| format!("{} ({:.0}%)", h.recognizer, h.share_matching * 100.0))
            .collect();
        return Decision::new(
            Verdict::FreeTextWithPii,
            false,
            None,
            "scrub",
            format!("values contain {}", kinds.join(", ")),
        );
    }
    Decision::new(
        Verdict::NoPiiFound,
        false,
        None,
        "keep",
        "no recognizer matched and the name gives no signal".into(),
    )
}

/// Free text is scrubbed whether or not the sample showed an entity.
fn decide_free_text(set: &RecognizerSet, hits: &[RecognizerHit], any_embedded: bool) -> Decision {
    if !any_embedded {
        return Decision::new(
            Verdict::NoPiiFound,
            false,
            None,
            "scrub",
            "free text; no entity found in the sample, scrubbed as a precaution".into(),
        );
    }
    let recs = set.recognizers();
    let kinds: Vec<String> = hits
        .iter()
        .map(|h| format!("{} in {:.0}%", h.recognizer, h.share_matching * 100.0))
        .collect();
    let sensitive = hits.iter().any(|h| {
        set.index_of(&h.recognizer)
            .is_some_and(|i| recs[i].sensitive_pipl)
    });
    Decision::new(
        Verdict::FreeTextWithPii,
        sensitive,
        None,
        "scrub",
        format!("free text with {}", kinds.join(", ")),
    )
}

/// What the column name alone says, when it says something.
fn decide_by_name(e: &Evidence) -> Option<Decision> {
    let temporal = matches!(
        e.data_type,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
    );
    let dt = e.data_type;
    let numeric = dt.is_integer() || dt.is_floating() || dt.is_numeric();
    let is_string = crate::kernels::is_string_type(dt);
    Some(if e.signal("person_name") && is_string {
        Decision::new(
            Verdict::DirectIdentifier,
            false,
            Some("pd:Name"),
            "tokenize",
            "the column name says person names".into(),
        )
    } else if e.signal("identifier") && e.distinct_share >= 0.9 && e.nonnull > 0 {
        Decision::new(
            Verdict::DirectIdentifier,
            false,
            Some("pd:Identifier"),
            "tokenize",
            format!(
                "the column name says identifier and {:.0}% of values are distinct",
                e.distinct_share * 100.0
            ),
        )
    } else if e.signal("sensitive") {
        Decision::new(
            Verdict::Sensitive,
            true,
            None,
            if numeric { "generalize" } else { "keep" },
            "the column name suggests sensitive data; review the category".into(),
        )
    } else if e.signal("quasi_identifier") {
        let generalize = temporal || numeric || name_has(e.name, ZIP);
        Decision::new(
            Verdict::QuasiIdentifier,
            false,
            None,
            if generalize { "generalize" } else { "keep" },
            "the column name suggests a quasi-identifier".into(),
        )
    } else {
        return None;
    })
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl ScanReport {
    /// A policy with a proposed action per column and `basis: TODO` (and `controller`,
    /// `purpose`) for a person to fill in: `cloakline validate` rejects it until then.
    pub fn draft_policy(&self, key_id: &str, jurisdictions: &[&str]) -> String {
        let stem = Path::new(&self.input)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("data");
        let text_input = matches!(self.format, Some(Format::Csv) | Some(Format::Ndjson));
        let mut y = String::new();
        y.push_str(&format!(
            "# Drafted by `cloakline scan` from {} ({} rows, {} sampled).\n\
             # Review every field: the actions are proposals from pattern evidence, and every\n\
             # TODO (lawful basis, controller, purpose) must be filled by a person before\n\
             # `cloakline validate` accepts the policy.\n",
            self.input, self.rows, self.sampled_rows
        ));
        y.push_str(&format!(
            "policy: {}\nversion: 1\n",
            yaml_str(&format!("{stem}-share"))
        ));
        y.push_str("controller: TODO\npurpose: TODO\n");
        y.push_str(&format!("jurisdictions: [{}]\n", jurisdictions.join(", ")));
        y.push_str("unlisted: error\nfields:\n");
        for c in &self.columns {
            y.push_str(&format!("  # {}: {}\n", c.verdict, c.reason));
            if self.drifted.contains(&c.name) && !c.data_type.starts_with("Utf8") {
                y.push_str(&format!(
                    "  # its values are {} only over the whole file: declare `type:` or \
                     read with --infer-rows 0\n",
                    c.data_type
                ));
            }
            let mut kv: BTreeMap<&str, String> = BTreeMap::new();
            let mut order: Vec<&str> = vec!["action"];
            kv.insert("action", c.proposed_action.clone());
            let numeric_type = c.data_type.starts_with("Int")
                || c.data_type.starts_with("UInt")
                || c.data_type.starts_with("Float")
                || c.data_type.starts_with("Decimal");
            let temporal = c.data_type.starts_with("Date") || c.data_type.starts_with("Timestamp");
            match c.proposed_action.as_str() {
                "tokenize" => {
                    kv.insert("key", yaml_str(key_id));
                    order.push("key");
                }
                "generalize" => {
                    let code = name_has(&c.name, ZIP);
                    let (k, v) = if code {
                        ("keep_prefix", "3".to_string())
                    } else if temporal {
                        ("to", "year".to_string())
                    } else if numeric_type {
                        (
                            "bin_width",
                            if c.name_signals.iter().any(|s| s == "sensitive") {
                                "10000"
                            } else {
                                "10"
                            }
                            .to_string(),
                        )
                    } else {
                        ("keep_prefix", "3".to_string())
                    };
                    kv.insert(k, v);
                    order.push(k);
                }
                _ => {}
            }
            kv.insert("basis", "TODO".into());
            order.push("basis");
            if let Some(cat) = &c.category {
                kv.insert("category", yaml_str(cat));
                order.push("category");
            }
            if c.sensitive {
                kv.insert("sensitive", "true".into());
                order.push("sensitive");
            }
            // Text formats infer numbers: keep identifiers and codes as text.
            // A column whose type drifted is text over the whole file: say so, or `apply`
            // (inferring from the first rows) fails where the scan did.
            let drifted_text = self.drifted.contains(&c.name) && c.data_type.starts_with("Utf8");
            if text_input
                && (drifted_text
                    || ((c.proposed_action == "tokenize" || name_has(&c.name, ZIP))
                        && !c.data_type.starts_with("Utf8")))
            {
                kv.insert("type", "string".into());
                order.push("type");
            }
            let body: Vec<String> = order.iter().map(|k| format!("{k}: {}", kv[k])).collect();
            y.push_str(&format!(
                "  {}: {{ {} }}\n",
                yaml_str(&c.name),
                body.join(", ")
            ));
        }
        y
    }

    /// A plain-text table for people.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}: {} rows, {} sampled\n\n",
            self.input, self.rows, self.sampled_rows
        );
        // Display columns, not chars: a CJK name takes two per character.
        let w = self
            .columns
            .iter()
            .map(|c| crate::error::display_width(&c.name))
            .max()
            .unwrap_or(6)
            .max(6);
        s.push_str(&format!(
            "{:<w$}  {:<30}  {:<10}  evidence\n",
            "column", "verdict", "proposed"
        ));
        for c in &self.columns {
            s.push_str(&format!(
                "{}  {:<30}  {:<10}  {}{}\n",
                crate::error::pad_display(&c.name, w),
                c.verdict.to_string()
                    + if c.sensitive && c.verdict != Verdict::Sensitive {
                        " (sensitive)"
                    } else {
                        ""
                    },
                c.proposed_action,
                c.reason,
                if c.name_signals.is_empty() {
                    String::new()
                } else {
                    format!(" [name: {}]", c.name_signals.join(", "))
                }
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("\nnote: {n}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tokens_and_keywords() {
        assert_eq!(tokens("customerId"), ["customer", "id"]);
        assert_eq!(tokens("full_name"), ["full", "name"]);
        assert!(name_has("customer_id", IDENTIFIER));
        assert!(name_has("birth_date", QUASI));
        assert!(name_has("客户备注", FREE_TEXT));
        assert!(!name_has("paid", IDENTIFIER));
        assert!(name_has("fullName", PERSON_NAME));
    }
}
