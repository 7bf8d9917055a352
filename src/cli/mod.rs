//! The command-line door: one file per command, and what several commands share (flags
//! declared once, printing, keyring loading, the progress bar).

pub(crate) use std::io::IsTerminal;
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::sync::Arc;

pub(crate) use clap::builder::TypedValueParser as _;
pub(crate) use clap::{Args, Subcommand};

pub(crate) use cloakline::engine::{Cancel, Progress};
pub(crate) use cloakline::io::{Format, ReadOptions, refuse_collisions};
pub(crate) use cloakline::jobs::apply::Apply;
pub(crate) use cloakline::keys::Keyring;
pub(crate) use cloakline::policy::Policy;
pub(crate) use cloakline::{Error, Result};

/// `println!`/`eprintln!` with control characters escaped (see [`printable`]).
macro_rules! outln {
    ($($t:tt)*) => { println!("{}", $crate::cli::printable(&format!($($t)*))) };
}
/// Notices, warnings and summaries on stderr; silent under `--quiet` (errors only).
macro_rules! errln {
    ($($t:tt)*) => {
        if !$crate::cli::quiet() {
            eprintln!("{}", $crate::cli::printable(&format!($($t)*)))
        }
    };
}

pub(crate) mod apply;
pub(crate) mod check;
#[cfg(feature = "cluster")]
pub(crate) mod cluster;
pub(crate) mod decrypt;
pub(crate) mod gc;
pub(crate) mod keys;
pub(crate) mod logging;
pub(crate) mod report;
pub(crate) mod reveal;
pub(crate) mod ropa;
pub(crate) mod scan;
pub(crate) mod schema;
pub(crate) mod sql;
pub(crate) mod validate;
pub(crate) mod verify;

#[derive(Args)]
pub(crate) struct KeyringArg {
    /// Keyring file (JSON with named 256-bit keys). Create one with `cloakline keys generate`.
    #[arg(long, env = "CLOAKLINE_KEYRING", value_name = "FILE")]
    keyring: Option<PathBuf>,
}

/// `parquet`, `csv` or `ndjson` (listed in `--help`).
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    clap::builder::PossibleValuesParser::new(["parquet", "csv", "ndjson"])
        .try_map(|s| s.parse::<Format>())
}

#[derive(Args)]
pub(crate) struct FormatArgs {
    /// Input format; default: from the file extension (.parquet, .csv/.tsv, .ndjson/.jsonl,
    /// each CSV/NDJSON one also .gz or .zst). Required when the input is `-` (stdin).
    #[arg(long, value_parser = format_parser(), value_name = "FORMAT")]
    input_format: Option<Format>,
    /// CSV field delimiter (one ASCII character; `\t` for tab). Used for CSV input and output;
    /// default: tab for .tsv files, `,` otherwise.
    #[arg(long, value_name = "CHAR")]
    delimiter: Option<String>,
    /// Rows per batch (1 to 1,048,576).
    #[arg(long, env = "CLOAKLINE_BATCH_SIZE", default_value_t = 8192, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch_size: u64,
    /// Rows of a CSV/NDJSON input read to infer its column types; 0 reads the whole file
    /// first (one more pass).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    infer_rows: usize,
    /// Read every CSV column (every scalar NDJSON field) as text, inferring no types; the
    /// policy's `type:` overrides still apply.
    #[arg(long)]
    all_strings: bool,
}

/// How `apply`, `check` and `sql --policy` read and judge a policy's consent ledger.
#[derive(Args)]
pub(crate) struct ConsentArgs {
    /// Read the consent ledger from here instead of the policy's `consent.ledger` (a path or
    /// URL, e.g. a dated snapshot); see docs/CONSENT.md.
    #[arg(long, value_name = "PATH|URL")]
    consent_ledger: Option<String>,
    /// Judge consent as of this time (RFC 3339, or a date meaning its midnight UTC) instead of
    /// the run's start: ledger events after it are ignored.
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// Memory the consent ledger's subject map may take (e.g. 512MiB, 4GiB); a larger ledger
    /// is reduced on disk in the temporary directory instead, and looked up there.
    #[arg(
        long,
        env = "CLOAKLINE_LEDGER_MEMORY",
        value_name = "SIZE",
        default_value = "1GiB"
    )]
    ledger_memory: String,
}

impl ConsentArgs {
    /// The job's options; an error when they are given for a policy without a `consent:`
    /// block (`policy`: its path, `None` without a policy).
    pub(crate) fn options(
        &self,
        policy: Option<(&Policy, &Path)>,
    ) -> Result<cloakline::plan::consent::ConsentOptions> {
        use cloakline::plan::consent::{parse_as_of, parse_size};
        // Read only where a ledger is: the variable may be set for every run.
        let memory = match policy {
            Some((p, _)) if p.consent.is_some() => Some(
                parse_size(&self.ledger_memory)
                    .map_err(|e| Error::Usage(format!("--ledger-memory: {e}")))?,
            ),
            _ => None,
        };
        let o = cloakline::plan::consent::ConsentOptions {
            ledger: self
                .consent_ledger
                .as_deref()
                .map(cloakline::io::Location::parse),
            as_of: self.as_of.as_deref().map(parse_as_of).transpose()?,
            memory,
        };
        o.check_for(policy.map(|(p, _)| p))?;
        Ok(o)
    }
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static JSON_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static STORAGE: std::sync::OnceLock<cloakline::io::store::StorageOptions> =
    std::sync::OnceLock::new();

/// `--storage-option KEY=VALUE`, parsed once for every command.
pub(crate) fn set_storage(pairs: &[String]) -> Result<()> {
    let mut o = cloakline::io::store::StorageOptions::new();
    for p in pairs {
        let (k, v) = cloakline::io::store::StorageOptions::parse_pair(p)?;
        // A secret on the command line lands in shell history and process listings.
        let lower = k.to_ascii_lowercase();
        let secret = [
            "secret",
            "token",
            "password",
            "account_key",
            "access_key",
            "sas",
            "service_account_key",
            "client_secret",
        ]
        .iter()
        .any(|s| lower.contains(s))
            && !lower.ends_with("key_id");
        if secret {
            return Err(Error::Usage(format!(
                "--storage-option {k}: credentials are not taken from the command line (shell \
                 history, process listings); set them in the environment (AWS_SECRET_ACCESS_KEY, \
                 AZURE_STORAGE_ACCOUNT_KEY…, see docs/STORAGE.md)"
            )));
        }
        o = o.with(k, v);
    }
    let _ = STORAGE.set(o);
    Ok(())
}

pub(crate) fn storage() -> cloakline::io::store::StorageOptions {
    STORAGE.get().cloned().unwrap_or_default()
}

/// A command-line path as a location: `s3://…` and the like are URLs.
pub(crate) fn location(p: &Path) -> cloakline::io::Location {
    match p.to_str() {
        Some(s) => cloakline::io::Location::parse(s),
        None => cloakline::io::Location::Local(p.to_path_buf()),
    }
}

/// `--quiet`: errors only on stderr.
pub(crate) fn set_quiet(yes: bool) {
    QUIET.store(yes, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether a `--json` result is on stdout already (an error then adds no second document).
pub(crate) fn json_result_shown() -> bool {
    JSON_SHOWN.load(std::sync::atomic::Ordering::Relaxed)
}

/// A job's progress as a bar on stderr (none under `--quiet`).
#[derive(Default)]
struct Bar(std::sync::OnceLock<indicatif::ProgressBar>);

impl Progress for Bar {
    fn start(&self, total_rows: Option<u64>) {
        if quiet() {
            return;
        }
        let (bar, template) = match total_rows {
            Some(n) => (
                indicatif::ProgressBar::new(n),
                "{bar:40} {pos}/{len} rows ({per_sec}, {eta} left)",
            ),
            None => (
                indicatif::ProgressBar::new_spinner(),
                "{spinner} {pos} rows ({per_sec})",
            ),
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        let _ = self.0.set(bar);
    }
    fn advance(&self, rows: u64) {
        if let Some(b) = self.0.get() {
            b.inc(rows);
        }
    }
    fn finish(&self) {
        if let Some(b) = self.0.get() {
            b.finish_and_clear();
        }
    }
}

/// `text` with control characters (terminal escapes in column names, file names…) shown as
/// escapes, so nothing from a file can drive the terminal. Newlines and tabs stay.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Print a result for machines (`--json`) or people, flushed before any error message.
fn show<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        JSON_SHOWN.store(true, std::sync::atomic::Ordering::Relaxed);
    } else {
        print!("{}", printable(&text()));
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// Write `text` to `output` atomically, or to stdout.
fn write_or_print(output: Option<&Path>, text: &str) -> Result<()> {
    match output {
        Some(o) => {
            cloakline::io::write_atomically(o, |f| std::io::Write::write_all(f, text.as_bytes()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn delimiter(s: &str) -> Result<u8> {
    match s {
        "\\t" | "tab" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(Error::Usage(format!(
            "--delimiter must be one ASCII character, got {s:?}"
        ))),
    }
}

fn read_options(f: &FormatArgs) -> Result<ReadOptions> {
    let mut o = ReadOptions::default()
        .with_batch_size(f.batch_size as usize)
        .with_infer_rows(f.infer_rows)
        .with_all_strings(f.all_strings);
    // Not given: `.tsv` files are read and written with tabs.
    if let Some(d) = &f.delimiter {
        o = o.with_explicit_delimiter(delimiter(d)?);
    }
    Ok(o)
}

/// The keyring, if the policy needs one (or an empty one when it does not).
fn keyring_for(policy: Option<&Policy>, arg: &KeyringArg) -> Result<Keyring> {
    match &arg.keyring {
        Some(p) => load_keyring(p),
        None => {
            // Each key once, in order: "key(s) k1, k2", not one mention per field.
            let needs: Vec<&str> = policy
                .map(|p| {
                    p.fields
                        .values()
                        .filter_map(|f| f.action.key_id())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default();
            if needs.is_empty() && policy.is_some() {
                Ok(Keyring::default())
            } else {
                Err(Error::Keyring {
                    path: "(none)".into(),
                    message: format!(
                        "{}no keyring given; pass --keyring FILE or set CLOAKLINE_KEYRING",
                        if needs.is_empty() {
                            String::new()
                        } else {
                            format!("the policy uses key(s) {}, but ", needs.join(", "))
                        }
                    ),
                })
            }
        }
    }
}

/// Load a keyring and show its notices (readable by others, demo keys) on stderr.
/// `--policy PATH|URL`: a URL's policy and its hierarchy files are read from the store.
fn load_policy(path: &Path) -> Result<Policy> {
    match location(path) {
        cloakline::io::Location::Local(p) => Policy::load(&p),
        loc => runtime()?.block_on(Policy::load_at(&loc, &storage())),
    }
}

fn load_keyring(path: &Path) -> Result<Keyring> {
    // Plain key material copied through a bucket spreads to every reader of the bucket.
    if let cloakline::io::Location::Url(u) = location(path) {
        return Err(Error::Usage(format!(
            "--keyring {}: a keyring is read from a local file (mount it as a secret); \
             keeping plain key material in a bucket shares it with everyone who can read \
             the bucket",
            cloakline::io::store::Remote::open(&u, &storage())
                .map(|r| r.shown())
                .unwrap_or_else(|_| "(a URL)".into())
        )));
    }
    let ring = Keyring::load(path)?;
    for n in ring.notices() {
        errln!("warning: {n}");
    }
    if let Some(kek) = ring.kek() {
        // One unwrap per key per run, whatever the data size: the count shows it.
        errln!(
            "keyring {}: {} keys unwrapped under {} ({} key-encryption-key operations)",
            path.display(),
            ring.ids().count(),
            kek.describe(),
            ring.kek_operations()
        );
    }
    Ok(ring)
}

/// The runtime the jobs run on (the library starts none of its own).
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: "<async runtime>".into(),
            source: e,
        })
}
