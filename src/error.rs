//! The crate-wide error type.
//!
//! Every variant says which file or field is at fault and what to do. Exit codes follow the
//! CLI contract: 2 for a bad policy, keyring or argument (fix the input and rerun), 1 for a data
//! or I/O failure.

use std::path::PathBuf;

/// Crate result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem found by a check that does not know where it is: a parameter out of range, a
/// malformed hierarchy row, a key id that looks like key material. The caller places it —
/// file, field, YAML line and column — and turns it into an [`Error`] variant. Like every
/// message here it names what is wrong, never a data value or a key byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub message: String,
    /// The lawful-basis rule it breaks (an id from docs/RULES.md), when it is one.
    pub rule: Option<&'static str>,
}

/// A [`Problem`] with this message (the tuple-like spelling the checks use).
#[allow(non_snake_case)]
pub fn Problem(message: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        rule: None,
    }
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Self {
        Problem(message)
    }

    /// A breach of rule `rule` (an id from docs/RULES.md).
    pub fn breach(rule: &'static str, message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            rule: Some(rule),
        }
    }

    /// The same problem with what it concerns in front: `hierarchy age: …`.
    #[must_use]
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        Problem {
            message: format!("{what}: {}", self.message),
            rule: self.rule,
        }
    }
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem(s)
    }
}

impl From<&str> for Problem {
    fn from(s: &str) -> Self {
        Problem(s)
    }
}

/// Typed data an error carries for callers to inspect, made by a layer above this one (the
/// privacy assessment of [`Error::Privacy`]): the error type sits below every layer, so it
/// holds the value opaquely and that layer gives the typed accessor.
#[derive(Clone)]
pub struct Details(std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl Details {
    pub fn new<T: std::any::Any + Send + Sync>(value: T) -> Self {
        Details(std::sync::Arc::new(value))
    }

    /// The value, if it is a `T`.
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Details {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Details(..)")
    }
}

/// What went wrong, with enough context to fix it. Callers branch on the variant (a missing
/// key, a policy that does not fit the data, privacy models not met…); the message is for
/// people and never carries a data value or key byte.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy file is not valid YAML or not a valid policy.
    #[error("policy {path}: {message}")]
    Policy { path: String, message: String },
    /// The policy breaks a lawful-basis rule (`rule`: its id in docs/RULES.md, e.g. `GDPR-9`).
    #[error("policy {path}: {message}")]
    Rule {
        path: String,
        rule: &'static str,
        message: String,
    },

    /// The keyring is missing, malformed, or lacks a key. Never carries key material.
    #[error("keyring {path}: {message}")]
    Keyring { path: String, message: String },

    /// A key the policy or a call names is not in the keyring.
    #[error("{}: no key with id {key_id:?} (keys present: {}); {}", keyring_shown(.keyring), present_keys(.present), missing_key_hint(.key_id))]
    MissingKey {
        keyring: String,
        key_id: String,
        /// The ids the keyring does hold.
        present: Vec<String>,
    },

    /// The policy does not fit the data: every problem found, each on its own.
    #[error("plan for {input}: {}", join_problems(.problems))]
    Plan {
        input: String,
        problems: Vec<PlanProblem>,
    },

    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),

    /// Reading or decoding input data failed.
    #[error("reading {path}: {message}")]
    Data { path: String, message: String },

    /// A transform failed on a value (e.g. decryption of a tampered field).
    #[error("field {field}: {message}")]
    Transform { field: String, message: String },

    /// File-system failure.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The data does not meet the policy's privacy models (and `on_violation` says fail, or
    /// suppression/generalization cannot meet them). Nothing was written.
    #[error("privacy models not met for {input}: {message}")]
    Privacy {
        input: String,
        message: String,
        /// What was measured (a `provenance::record::Assessment`, via
        /// [`Error::privacy_assessment`]), when the data was assessed.
        assessment: Option<Details>,
    },

    /// An object store failed or refused (a missing bucket, denied credentials, a lost
    /// connection). `location` is shown without credentials or query strings.
    #[error("{location}: {message}")]
    Storage { location: String, message: String },

    /// The consent ledger is unreadable or refuses the run (docs/CONSENT.md). `ledger` is
    /// shown without credentials; messages name rows, never subject ids.
    #[error("consent ledger {ledger}: {message}")]
    Consent { ledger: String, message: String },

    /// A cluster failed: its scheduler could not be reached, or a job failed there.
    #[error("cluster {scheduler}: {message}")]
    Cluster { scheduler: String, message: String },

    /// `verify` found a mismatch between an output and its provenance.
    #[error("{0}")]
    Verification(String),

    /// The run was stopped by Ctrl-C; nothing was written.
    #[error("interrupted; no output was written")]
    Interrupted,

    /// A bug in cloakline (a broken invariant or a worker panic). The message never carries
    /// data values; please report it.
    #[error("internal error (a bug in cloakline, please report it): {0}")]
    Internal(String),

    /// Arrow failure not tied to a specific file.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    /// Parquet failure not tied to a specific file.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
}

impl Error {
    /// The process exit code for this error: 2 = bad policy/keyring/arguments (a named file
    /// that does not exist included, or a policy that does not fit the data), 1 = data or
    /// I/O, 3 = the data does not meet the privacy models, 4 = `verify` found a mismatch,
    /// 70 = internal error (a bug), 130 = interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Interrupted => 130,
            Error::Internal(_) => 70,
            Error::Privacy { .. } => 3,
            Error::Verification(_) => 4,
            Error::Policy { .. }
            | Error::Rule { .. }
            | Error::Keyring { .. }
            | Error::MissingKey { .. }
            | Error::Plan { .. }
            | Error::Usage(_) => 2,
            // A path that does not exist is an argument to fix, like a missing policy.
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 2,
            _ => 1,
        }
    }

    /// A stable name of the variant, for machines (the CLI's `--json` error object):
    /// `policy`, `rule`, `keyring`, `missingKey`, `plan`, `usage`, `data`, `transform`, `io`,
    /// `storage`, `cluster`, `consent`, `privacy`, `verification`, `interrupted`, `internal`, `arrow`,
    /// `parquet`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Policy { .. } => "policy",
            Error::Rule { .. } => "rule",
            Error::Keyring { .. } => "keyring",
            Error::MissingKey { .. } => "missingKey",
            Error::Plan { .. } => "plan",
            Error::Usage(_) => "usage",
            Error::Data { .. } => "data",
            Error::Transform { .. } => "transform",
            Error::Io { .. } => "io",
            Error::Storage { .. } => "storage",
            Error::Cluster { .. } => "cluster",
            Error::Consent { .. } => "consent",
            Error::Privacy { .. } => "privacy",
            Error::Verification(_) => "verification",
            Error::Interrupted => "interrupted",
            Error::Internal(_) => "internal",
            Error::Arrow(_) => "arrow",
            Error::Parquet(_) => "parquet",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into().display().to_string(),
            source,
        }
    }

    pub(crate) fn data(path: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        Error::Data {
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn plan(input: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        Error::Plan {
            input: input.to_string(),
            problems: vec![PlanProblem::Other(message.to_string())],
        }
    }
}

/// One way a policy does not fit the data, found before any data is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanProblem {
    #[error("column `{column}` appears twice in the input")]
    DuplicateColumn { column: String },
    /// An input column the policy does not list, with `unlisted: error`.
    #[error(
        "column `{column}` ({data_type}) is not in policy {policy}; add a rule for it (e.g. `{column}: {{ action: drop }}`) or set `unlisted: drop`"
    )]
    UnlistedColumn {
        column: String,
        data_type: String,
        policy: String,
    },
    /// A policy field that is not a column of the input.
    #[error(
        "policy field `{field}` (line {line} column {column}) is not a column of the input; columns are: {}",
        .columns.join(", ")
    )]
    UnknownColumn {
        field: String,
        line: u64,
        column: u64,
        columns: Vec<String>,
    },
    /// The action cannot apply to the column (its type, or its parameters against the type).
    #[error("field `{field}` (policy line {line} column {column}): {message}")]
    Misfit {
        field: String,
        line: u64,
        column: u64,
        message: String,
    },
    /// Every input column would be dropped.
    #[error(
        "policy {policy} leaves no column in the output: every input column is dropped (by its rule or by `unlisted: drop`), and an output without columns cannot be verified; keep, transform or add at least one column"
    )]
    NoColumns { policy: String },
    #[error("{0}")]
    Other(String),
}

fn join_problems(problems: &[PlanProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Which keyring an error is about; an empty path is the empty keyring of a caller that gave
/// none.
/// How to add a missing key: a new id is generated, a new version is a rotation.
fn missing_key_hint(key_id: &str) -> String {
    match key_id.split_once('@') {
        Some((id, _)) => {
            format!("add a version with `cloakline keys rotate --id {id}`, or name one that exists")
        }
        None => format!("add one with `cloakline keys generate --id {key_id}`"),
    }
}

fn keyring_shown(path: &str) -> String {
    if path.is_empty() {
        "no keyring was given".to_string()
    } else {
        format!("keyring {path}")
    }
}

fn present_keys(present: &[String]) -> String {
    if present.is_empty() {
        "none".to_string()
    } else {
        present.join(", ")
    }
}

thread_local! {
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Run `f`, catching a panic (third-party readers assert on corrupt files). While it runs,
/// [`panic_is_caught`] is true on this thread, so a process panic hook can stay silent for
/// panics that become errors.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    r
}

/// Whether the current thread is inside [`catch_panic`].
pub fn panic_is_caught() -> bool {
    CATCHING.with(|c| c.get() > 0)
}

/// Terminal columns `text` takes: 2 for East Asian Wide and Fullwidth characters (CJK,
/// Hangul, fullwidth forms, most emoji), 0 for combining marks and zero-width characters,
/// 1 otherwise. The text reports (`scan`, `check`) pad their tables with it, so a column
/// named `客户备注` lines up with `email`.
pub fn display_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// `text` followed by spaces up to `width` display columns (nothing when it is wider).
pub fn pad_display(text: &str, width: usize) -> String {
    let mut s = text.to_string();
    s.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(display_width(text)),
    ));
    s
}

fn char_width(c: char) -> usize {
    let c = c as u32;
    match c {
        // Combining marks, zero-width space/joiners, variation selectors.
        0x0300..=0x036F | 0x200B..=0x200F | 0x20D0..=0x20FF | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F => {
            0
        }
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xA960..=0xA97F
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x2FFFD
        | 0x30000..=0x3FFFD => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod width_tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(display_width("email"), 5);
        assert_eq!(display_width("客户备注"), 8);
        assert_eq!(display_width("ｅｍａｉｌ"), 10);
        assert_eq!(display_width("e\u{301}"), 1);
        assert_eq!(pad_display("名字", 6), "名字  ");
        assert_eq!(pad_display("toolong", 3), "toolong");
    }
}
