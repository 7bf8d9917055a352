//! The `cloakline` command: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use cloakline::apply::Apply;
use cloakline::io::{Format, ReadOptions, refuse_collisions};
use cloakline::keys::Keyring;
use cloakline::policy::Policy;
use cloakline::{Error, Result};

/// Make datasets safe to share: apply a declarative privacy policy to Parquet, CSV and NDJSON
/// files, and record what was done, with which key and on what lawful basis.
#[derive(Parser)]
#[command(name = "cloakline", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply a policy to a file or directory; writes the output and <OUTPUT>.provenance.json.
    Apply(ApplyArgs),
    /// Check a policy (and, with --input, that it fits the data's schema and the keyring).
    Validate(ValidateArgs),
    /// Check an output against its provenance: SHA-256, size, rows, schema, the embedded copy,
    /// the policy file (--policy) and the signature (--keyring). Exit 0 when every check
    /// passes, 4 when one fails.
    Verify(VerifyArgs),
    /// Render a run's provenance for a person: summary, fields with lawful bases, privacy
    /// evidence with a class-size chart, and findings to review.
    Report(ReportArgs),
    /// Records of processing activities (GDPR Art. 30(1) a-g, lawful basis per field, PIPL
    /// Art. 55 triggers) from one or more policies.
    Ropa(RopaArgs),
    /// Measure the input against the policy's privacy models (k, l, t, class sizes,
    /// re-identification risks) without writing anything. Exit 0 when the models are met
    /// (with suppression within the limit), 3 when not.
    Check(CheckArgs),
    /// Find personal data in every column of a file (recognizers with validators over a
    /// sample), report a verdict per column, and optionally draft a policy.
    Scan(ScanArgs),
    /// Decrypt the encrypted columns of a cloakline output.
    Decrypt(DecryptArgs),
    /// Manage keyrings.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the JSON Schema of the policy format (for editors).
    Schema,
    /// Run SQL with the cloakline functions (tokenize, encrypt, decrypt, mask, redact,
    /// generalize, scrub) registered; print the result or write it with a provenance sidecar.
    Sql(SqlArgs),
}

#[derive(Args)]
struct SqlArgs {
    /// The query, e.g. "SELECT tokenize(email, 'k1') FROM customers".
    query: String,
    /// Register a file as a table (repeatable): NAME=PATH (.parquet, .csv/.tsv, .ndjson/.jsonl).
    /// PATH may be a directory of files of one format, read as one table.
    #[arg(long = "table", value_name = "NAME=PATH")]
    tables: Vec<cloakline::sql::TableArg>,
    #[command(flatten)]
    keyring: KeyringArg,
    /// Also register the policy's masked view of the first table, as <NAME>_shared.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write the result to this file (.parquet or .csv) with <FILE>.provenance.json,
    /// instead of printing it.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// CSV field delimiter for CSV tables and output.
    #[arg(long, default_value = ",", value_name = "CHAR")]
    delimiter: String,
    /// Also run DDL (CREATE EXTERNAL TABLE), DML (COPY … TO, INSERT) and statements (SET).
    /// Off by default: they read and write arbitrary files with no policy and no provenance.
    #[arg(long)]
    allow_unsafe_sql: bool,
}

#[derive(Args)]
struct KeyringArg {
    /// Keyring file (JSON with named 256-bit keys). Create one with `cloakline keys generate`.
    #[arg(long, env = "CLOAKLINE_KEYRING", value_name = "FILE")]
    keyring: Option<PathBuf>,
}

#[derive(Args)]
struct FormatArgs {
    /// Input format; default: from the file extension (.parquet, .csv/.tsv, .ndjson/.jsonl).
    #[arg(long, value_enum, value_name = "FORMAT")]
    input_format: Option<Format>,
    /// CSV field delimiter (one ASCII character; `\t` for tab). Used for CSV input and output.
    #[arg(long, default_value = ",", value_name = "CHAR")]
    delimiter: String,
    /// Rows per batch (1 to 1,048,576).
    #[arg(long, default_value_t = 8192, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch_size: u64,
}

#[derive(Args)]
struct ApplyArgs {
    /// Policy file (YAML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    #[command(flatten)]
    keyring: KeyringArg,
    /// Input file, or a directory of input files (the output mirrors its layout).
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    /// Output file (.parquet or .csv), or a directory when the input is one.
    #[arg(long, value_name = "PATH")]
    output: PathBuf,
    #[command(flatten)]
    formats: FormatArgs,
    /// Output format; default: from the output extension (Parquet for directories).
    #[arg(long, value_enum, value_name = "FORMAT")]
    output_format: Option<Format>,
    /// Worker threads (1 to 1024); default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// Zstd compression level of Parquet output (1-22). Higher levels cost time and gain
    /// little on tokens and envelopes.
    #[arg(long, default_value_t = 1, value_name = "LEVEL",
          value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Replace an existing output: a regular file, or a directory that is a previous
    /// cloakline release (every file in it listed by its sidecar). Never a directory holding
    /// the input, a `.git`, links or devices.
    #[arg(long)]
    overwrite: bool,
    /// Print a machine-readable run summary (JSON) on stdout.
    #[arg(long)]
    json: bool,
    /// Never show the progress bar (it only shows when stderr is a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Sign the provenance sidecar with this keyring key (HMAC-SHA256 over the canonical
    /// document); `cloakline verify --keyring` checks it.
    #[arg(long, value_name = "KEY_ID")]
    sign_key: Option<String>,
    /// Also write an OpenLineage run event (columnLineage facet plus the custom
    /// cloakline_lawfulBasis facet) to this file.
    #[arg(long, value_name = "FILE")]
    openlineage: Option<PathBuf>,
    /// OpenLineage namespace of the job and datasets.
    #[arg(long, default_value = "file", value_name = "NS")]
    openlineage_namespace: String,
}

#[derive(Args)]
struct ReportArgs {
    /// A cloakline output (its <OUTPUT>.provenance.json is read, or the copy in a Parquet
    /// footer) or a provenance document (.json).
    input: PathBuf,
    /// `html` (one self-contained file: inline CSS and SVG, no scripts, printable) or `md`.
    #[arg(long, value_enum, default_value = "html")]
    format: ReportFormat,
    /// Write here (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Html,
    Md,
}

#[derive(Args)]
struct RopaArgs {
    /// Policy files (YAML).
    #[arg(required = true, value_name = "POLICY")]
    policies: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    format: RopaFormat,
    /// Write here (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RopaFormat {
    Csv,
    Json,
    Md,
}

#[derive(Args)]
struct VerifyArgs {
    /// A cloakline output file (.parquet or .csv).
    output: PathBuf,
    /// The provenance document (default: <OUTPUT>.provenance.json).
    #[arg(long, value_name = "FILE")]
    provenance: Option<PathBuf>,
    /// Also check that this policy file is the one the record names (by SHA-256).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Keyring holding the signing key, to check a signature.
    #[arg(long, env = "CLOAKLINE_KEYRING", value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// CSV field delimiter of a CSV output.
    #[arg(long, default_value = ",", value_name = "CHAR")]
    delimiter: String,
    /// Fail when the record is not signed, even without --keyring (an unsigned record always
    /// fails when --keyring is given).
    #[arg(long)]
    require_signature: bool,
    /// Print the checks as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ValidateArgs {
    /// Policy file (YAML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Also check the policy against this input's schema (file or directory).
    #[arg(long, value_name = "PATH")]
    input: Option<PathBuf>,
    #[command(flatten)]
    keyring: KeyringArg,
    #[command(flatten)]
    formats: FormatArgs,
}

#[derive(Args)]
struct ScanArgs {
    /// Input file (.parquet, .csv/.tsv, .ndjson/.jsonl).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Rows examined: all rows up to N, a uniform (reservoir) sample of N beyond it.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    sample: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Write a draft policy here (refused if the file exists, unless --overwrite). Its lawful
    /// bases, controller and purpose are TODO: `validate` rejects it until a person fills them.
    #[arg(long, value_name = "FILE")]
    draft_policy: Option<PathBuf>,
    /// Key id the draft uses for tokenized columns.
    #[arg(long, default_value = "k1", value_name = "ID")]
    key_id: String,
    /// Jurisdictions of the draft, comma-separated: EU, CN.
    #[arg(long, default_value = "EU", value_name = "LIST")]
    jurisdictions: String,
    /// Also use this policy's custom `recognizers:`.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Replace an existing --draft-policy file.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    formats: FormatArgs,
}

#[derive(Args)]
struct CheckArgs {
    /// Policy file (YAML) with a `privacy:` block.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Input file (.parquet, .csv/.tsv, .ndjson/.jsonl), or a directory of files of one
    /// format, measured as one table.
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    #[command(flatten)]
    keyring: KeyringArg,
    /// CSV field delimiter (one ASCII character; `\t` for tab).
    #[arg(long, default_value = ",", value_name = "CHAR")]
    delimiter: String,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DecryptArgs {
    #[command(flatten)]
    keyring: KeyringArg,
    /// A cloakline output file (.parquet or .csv).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Where to write the decrypted file.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Column to decrypt, as NAME or NAME=DOMAIN (repeatable). Default: every column that
    /// the file's metadata marks as encrypted (Parquet); required for CSV.
    #[arg(long = "column", value_name = "NAME[=DOMAIN]")]
    columns: Vec<String>,
    #[command(flatten)]
    formats: FormatArgs,
    /// Output format; default: from the output extension.
    #[arg(long, value_enum, value_name = "FORMAT")]
    output_format: Option<Format>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new random 256-bit key to a keyring (created if missing, owner-only permissions).
    Generate {
        /// Id of the new key, as the policy will refer to it (A-Z a-z 0-9 . _ - :).
        #[arg(long)]
        id: String,
        #[command(flatten)]
        keyring: KeyringArg,
    },
}

/// `println!`/`eprintln!` with control characters escaped (see [`printable`]).
macro_rules! outln {
    ($($t:tt)*) => { println!("{}", printable(&format!($($t)*))) };
}
macro_rules! errln {
    ($($t:tt)*) => { eprintln!("{}", printable(&format!($($t)*))) };
}

fn main() -> ExitCode {
    // A panic's message may quote a value being processed: print where, never what.
    std::panic::set_hook(Box::new(|info| {
        // Caught panics (a reader asserting on a corrupt file) become errors of their own.
        if cloakline::error::panic_is_caught() {
            return;
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "internal error: cloakline panicked{at} (a bug; please report it — the message is withheld because it may quote data)"
        );
    }));
    let cli = Cli::parse();
    // Ctrl-C, SIGTERM and SIGHUP (the `termination` feature) all stop the run cleanly.
    let _ = ctrlc::set_handler(|| {
        cloakline::engine::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", printable(&e.to_string()));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// `text` with control characters (terminal escapes in column names, file names…) shown as
/// escapes, so nothing from a file can drive the terminal. Newlines and tabs stay.
fn printable(text: &str) -> String {
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
    Ok(ReadOptions {
        batch_size: f.batch_size as usize,
        delimiter: delimiter(&f.delimiter)?,
        ..Default::default()
    })
}

/// The keyring, if the policy needs one (or an empty one when it does not).
fn keyring_for(policy: Option<&Policy>, arg: &KeyringArg) -> Result<Keyring> {
    match &arg.keyring {
        Some(p) => load_keyring(p),
        None => {
            let needs: Vec<&str> = policy
                .map(|p| {
                    p.fields
                        .values()
                        .filter_map(|f| f.action.key_id())
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
fn load_keyring(path: &Path) -> Result<Keyring> {
    let ring = Keyring::load(path)?;
    for n in ring.notices() {
        errln!("warning: {n}");
    }
    Ok(ring)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Apply(a) => {
            let policy = Policy::load(&a.policy)?;
            let keyring = keyring_for(Some(&policy), &a.keyring)?;
            let read = read_options(&a.formats)?;
            let mut job = Apply::new(&policy, &keyring, &a.input, &a.output)
                .with_input_format(a.formats.input_format)
                .with_output_format(a.output_format)
                .with_delimiter(read.delimiter)
                .with_batch_size(read.batch_size)
                .with_zstd_level(a.zstd_level)
                .with_overwrite(a.overwrite)
                .with_progress(!a.no_progress && !a.json)
                .with_sign_key(a.sign_key.clone())
                .with_openlineage(a.openlineage.clone(), &a.openlineage_namespace);
            if let Some(t) = a.threads {
                job = job.with_threads(t as usize);
            }
            let summary = job.run()?;
            if a.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&summary).unwrap_or_default()
                );
            } else {
                if let Some(p) = &summary.privacy {
                    let levels: Vec<String> = p
                        .quasi_identifiers
                        .iter()
                        .map(|(n, l, h)| format!("{n}={l}/{}", h - 1))
                        .collect();
                    errln!(
                        "privacy: smallest class {}, {} records suppressed ({:.2}%), levels {}",
                        p.smallest_class,
                        p.suppressed,
                        p.suppressed_fraction * 100.0,
                        levels.join(" ")
                    );
                }
                errln!(
                    "wrote {} ({} rows, {} fields, {} dropped) and {} in {:.2}s",
                    summary.output.display(),
                    summary.rows_out,
                    summary.fields.len(),
                    summary.dropped.len(),
                    summary.provenance.display(),
                    summary.seconds
                );
            }
            Ok(())
        }
        Command::Report(r) => {
            if let Some(o) = &r.output {
                let side = cloakline::apply::sidecar_path(&r.input);
                refuse_collisions(
                    &[("the report's input", &r.input), ("its provenance", &side)],
                    &[("--output", o)],
                )?;
            }
            let doc = cloakline::report::load_record(&r.input)?;
            let text = match r.format {
                ReportFormat::Html => cloakline::report::render_html(&doc),
                ReportFormat::Md => cloakline::report::render_markdown(&doc),
            };
            write_or_print(r.output.as_deref(), &text)?;
            Ok(())
        }
        Command::Ropa(r) => {
            if let Some(o) = &r.output {
                let ins: Vec<(&str, &Path)> = r
                    .policies
                    .iter()
                    .map(|p| ("a policy", p.as_path()))
                    .collect();
                refuse_collisions(&ins, &[("--output", o)])?;
            }
            let mut acts = Vec::new();
            for p in &r.policies {
                acts.push(cloakline::ropa::activity(&Policy::load(p)?));
            }
            let text = match r.format {
                RopaFormat::Csv => cloakline::ropa::to_csv(&acts),
                RopaFormat::Md => cloakline::ropa::to_markdown(&acts),
                RopaFormat::Json => serde_json::to_string_pretty(&acts).unwrap_or_default() + "\n",
            };
            write_or_print(r.output.as_deref(), &text)?;
            Ok(())
        }
        Command::Verify(v) => {
            let ring = match &v.keyring {
                Some(p) => Some(load_keyring(p)?),
                None => None,
            };
            let read = ReadOptions {
                delimiter: delimiter(&v.delimiter)?,
                ..Default::default()
            };
            let result = cloakline::verify::verify_with(
                &v.output,
                &read,
                &cloakline::verify::VerifyOptions {
                    provenance: v.provenance.as_deref(),
                    policy: v.policy.as_deref(),
                    keyring: ring.as_ref(),
                    require_signature: v.require_signature,
                },
            )?;
            show(v.json, &result, || result.to_text());
            if result.passed() {
                Ok(())
            } else {
                Err(Error::Verification(format!(
                    "{} does not match its provenance",
                    v.output.display()
                )))
            }
        }
        Command::Scan(a) => {
            let set = match &a.policy {
                Some(p) => Policy::load(p)?.recognizers.as_ref().clone(),
                None => cloakline::scan::recognizers::RecognizerSet::builtin()
                    .map_err(|e| Error::Internal(format!("built-in recognizers: {e}")))?,
            };
            let jur: Vec<String> = a
                .jurisdictions
                .split(',')
                .map(|j| j.trim().to_string())
                .filter(|j| !j.is_empty())
                .collect();
            if jur.is_empty() || jur.iter().any(|j| j != "EU" && j != "CN") {
                return Err(Error::Usage(format!(
                    "--jurisdictions takes EU, CN or EU,CN; got {:?}",
                    a.jurisdictions
                )));
            }
            if let Some(d) = &a.draft_policy
                && d.exists()
                && !a.overwrite
            {
                return Err(Error::Usage(format!(
                    "{} exists; it may hold a reviewed policy. Choose another name or pass --overwrite",
                    d.display()
                )));
            }
            let read = read_options(&a.formats)?;
            let report = cloakline::scan::Scan::new(&a.input)
                .with_format(a.formats.input_format)
                .with_delimiter(read.delimiter)
                .with_sample(a.sample)
                .run(&set)?;
            if let Some(d) = &a.draft_policy {
                let j: Vec<&str> = jur.iter().map(String::as_str).collect();
                let text = report.draft_policy(&a.key_id, &j);
                cloakline::io::write_atomically(d, |f| {
                    std::io::Write::write_all(f, text.as_bytes())
                })?;
                errln!(
                    "draft policy written to {} (fill in every TODO, then run `cloakline validate`)",
                    d.display()
                );
            }
            show(a.json, &report, || report.to_text());
            Ok(())
        }
        Command::Check(c) => {
            let policy = Policy::load(&c.policy)?;
            let keyring = keyring_for(Some(&policy), &c.keyring)?;
            let read = ReadOptions {
                delimiter: delimiter(&c.delimiter)?,
                ..Default::default()
            };
            let report = cloakline::privacy::check(&policy, &keyring, &c.input, &read)?;
            show(c.json, &report, || report.to_text());
            if report.meets_with_suppression {
                Ok(())
            } else {
                Err(Error::Privacy {
                    input: c.input.display().to_string(),
                    message: "the models are not met (see the report above)".into(),
                })
            }
        }
        Command::Validate(v) => {
            let policy = Policy::load(&v.policy)?;
            for w in &policy.warnings {
                errln!(
                    "warning [{}] {}{}",
                    w.rule,
                    w.field
                        .as_ref()
                        .map(|f| format!("field `{f}`: "))
                        .unwrap_or_default(),
                    w.message
                );
            }
            match &v.input {
                None => {
                    if let Some(k) = &v.keyring.keyring {
                        let ring = load_keyring(k)?;
                        for f in policy.fields.values() {
                            if let Some(id) = f.action.key_id() {
                                ring.get(id)?;
                            }
                        }
                    }
                    outln!(
                        "policy {} v{} is valid: {} fields ({} reach the output), jurisdictions {}",
                        policy.name,
                        policy.version,
                        policy.fields.len(),
                        policy.output_fields().count(),
                        policy
                            .jurisdictions
                            .iter()
                            .map(|j| j.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                Some(input) => {
                    let keyring = keyring_for(Some(&policy), &v.keyring)?;
                    let read = read_options(&v.formats)?;
                    let plans = Apply::new(&policy, &keyring, input, Path::new("-"))
                        .with_input_format(v.formats.input_format)
                        .with_delimiter(read.delimiter)
                        .validate()?;
                    let plan = &plans[0];
                    outln!(
                        "policy {} v{} fits {}: {} output columns, {} dropped",
                        policy.name,
                        policy.version,
                        input.display(),
                        plan.columns.len(),
                        plan.dropped.len()
                    );
                    for c in &plan.columns {
                        outln!(
                            "  {:<20} {:<10} {} -> {}",
                            c.rule.output_name,
                            c.rule.action.kind().keyword(),
                            c.input_type,
                            c.output_field.data_type()
                        );
                    }
                    for d in &plan.dropped {
                        outln!("  {:<20} dropped ({})", d.name, d.reason);
                    }
                }
            }
            Ok(())
        }
        Command::Decrypt(d) => {
            let mut ins = vec![("--input", d.input.as_path())];
            if let Some(k) = &d.keyring.keyring {
                ins.push(("--keyring", k));
            }
            refuse_collisions(&ins, &[("--output", &d.output)])?;
            let keyring = keyring_for(None, &d.keyring)?;
            let read = read_options(&d.formats)?;
            let cols = cloakline::decrypt::decrypt_file(
                &d.input,
                &d.output,
                &keyring,
                &d.columns,
                &read,
                d.formats.input_format,
                d.output_format,
            )?;
            errln!("decrypted {} into {}", cols.join(", "), d.output.display());
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Generate { id, keyring },
        } => {
            let path = keyring.keyring.ok_or_else(|| {
                Error::Usage(
                    "name the keyring file with --keyring FILE (or CLOAKLINE_KEYRING)".into(),
                )
            })?;
            let fp = Keyring::generate_into_file(&path, &id)?;
            errln!("added key {id} (fingerprint {fp}) to {}", path.display());
            Ok(())
        }
        Command::Sql(q) => {
            if let Some(o) = &q.output {
                let mut ins: Vec<(&str, &Path)> = q
                    .tables
                    .iter()
                    .map(|t| ("a --table", t.path.as_path()))
                    .collect();
                ins.extend(q.policy.as_deref().map(|p| ("--policy", p)));
                ins.extend(q.keyring.keyring.as_deref().map(|k| ("--keyring", k)));
                let side = cloakline::apply::sidecar_path(o);
                refuse_collisions(&ins, &[("--output", o), ("its provenance", &side)])?;
            }
            let policy = q.policy.as_deref().map(Policy::load).transpose()?;
            let keyring = match &q.keyring.keyring {
                Some(p) => load_keyring(p)?,
                None => Keyring::default(),
            };
            let job = cloakline::sql::SqlJob {
                query: q.query,
                tables: q.tables,
                keyring: std::sync::Arc::new(keyring),
                policy: policy.as_ref(),
                output: q.output,
                allow_unsafe: q.allow_unsafe_sql,
                read: ReadOptions {
                    delimiter: delimiter(&q.delimiter)?,
                    ..Default::default()
                },
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Io {
                    path: "<async runtime>".into(),
                    source: e,
                })?;
            match rt.block_on(job.run())? {
                cloakline::sql::QueryOutcome::Rows(batches) => {
                    let table = arrow::util::pretty::pretty_format_batches(&batches)?;
                    outln!("{table}");
                }
                cloakline::sql::QueryOutcome::Written {
                    rows,
                    output,
                    provenance,
                } => {
                    errln!(
                        "wrote {} ({rows} rows) and {}",
                        output.display(),
                        provenance.display()
                    );
                }
            }
            Ok(())
        }
        Command::Schema => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&cloakline::policy::json_schema()).unwrap_or_default()
            );
            Ok(())
        }
    }
}
