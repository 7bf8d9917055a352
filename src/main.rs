//! The `cloakline` command: a thin door onto the library's jobs. Each command lives in
//! `src/cli/<command>.rs`: its flags and a short function that maps them to a job and prints
//! the summary; flags shared by several commands are declared once in `src/cli/mod.rs`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cloakline::Result;
use cloakline::engine::Cancel;

mod cli;

use cli::printable;
use cli::{
    apply::ApplyArgs, check::CheckArgs, decrypt::DecryptArgs, keys::KeysCommand,
    report::ReportArgs, ropa::RopaArgs, scan::ScanArgs, sql::SqlArgs, validate::ValidateArgs,
    verify::VerifyArgs,
};

/// `0.1.0 (1a2b3c4 2026-11-30)`: the commit and UTC build date come from build.rs.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CLOAKLINE_BUILD_COMMIT"),
    " ",
    env!("CLOAKLINE_BUILD_DATE"),
    ")"
);

/// Make datasets safe to share: apply a declarative privacy policy to Parquet, CSV and NDJSON
/// files, and record what was done, with which key and on what lawful basis.
#[derive(Parser)]
#[command(name = "cloakline", version = VERSION, about, long_about = None)]
struct Cli {
    /// Errors only on stderr: no warnings, notices, summaries or progress bar.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More log output on stderr: -v info, -vv debug, -vvv trace. Without it, CLOAKLINE_LOG
    /// (or RUST_LOG) sets the levels, e.g. `debug` or `cloakline::jobs=debug`; default `warn`.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// A setting of the object store a URL is in (repeatable): endpoint, region, allow_http,
    /// max_retries… (docs/STORAGE.md). Credentials come from the cloud's environment.
    #[arg(long = "storage-option", global = true, value_name = "KEY=VALUE")]
    storage_options: Vec<String>,
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
    /// Re-identify encrypted, deterministically encrypted or FPE columns on purpose: who
    /// asked and why are required, and recorded in a hash-chained audit log and next to the
    /// output. Tokenized columns are refused (tokens are one-way).
    Reveal(cli::reveal::RevealArgs),
    /// Re-encrypt a release's encrypt, encrypt_deterministic and fpe columns under another
    /// key version (`--to k1@v2`) without the raw data. HMAC token columns cannot be
    /// converted (a token needs the value it came from): re-run `apply` on the raw input.
    Retokenize(cli::decrypt::RetokenizeArgs),
    /// Check audit logs.
    Audit {
        #[command(subcommand)]
        command: cli::reveal::AuditCommand,
    },
    /// Manage keyrings.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the JSON Schema of the policy format (for editors).
    Schema,
    /// Remove what a killed run left in an object store: its lock, and the objects under the
    /// output that no committed release lists.
    Gc(cli::gc::GcArgs),
    /// Run SQL with the cloakline functions (tokenize, encrypt, decrypt, mask, redact,
    /// generalize, scrub) registered; print the result or write it with a provenance sidecar.
    Sql(SqlArgs),
    /// Run a Ballista scheduler or executor with cloakline's functions inside, for
    /// `--cluster df://HOST:PORT` (docs/CLUSTER.md).
    #[cfg(feature = "cluster")]
    Cluster {
        #[command(subcommand)]
        command: cli::cluster::ClusterCommand,
    },
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
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return bad_arguments(e),
    };
    let json = wants_json(&matches);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return bad_arguments(e),
    };
    cli::set_quiet(cli.quiet);
    // A wrapped keyring's passphrase or a token's PIN, when its variable is not set: asked
    // on the terminal, never taken from a flag (shell history).
    cloakline::keys::wrap::set_prompt(|what| {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(format!("cloakline: {what}: "))
            .ok()
            .map(zeroize::Zeroizing::new)
    });
    if let Err(e) = cli::set_storage(&cli.storage_options) {
        return fail(&e, json);
    }
    if let Err(e) = cli::logging::init(cli.quiet, cli.verbose) {
        return fail(&e, json);
    }
    tracing::debug!(version = VERSION, "cloakline starting");
    // Ctrl-C, SIGTERM and SIGHUP (the `termination` feature) all stop the run cleanly.
    let cancel = Cancel::new();
    let on_signal = cancel.clone();
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    // A panic anywhere (a third-party reader asserting on a hostile file inside DataFusion,
    // say) ends as an internal error with its exit code, after unwinding has removed what
    // the run had not committed; the hook above has said where.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, &cancel))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => fail(&e, json),
        Err(_) => fail(
            &cloakline::Error::Internal(
                "the command stopped on a panic; nothing it had not committed was kept".into(),
            ),
            json,
        ),
    }
}

/// Whether the command line asked for `--json` (only the commands that have the flag).
fn wants_json(matches: &clap::ArgMatches) -> bool {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    matches!(m.try_get_one::<bool>("json"), Ok(Some(true)))
}

/// The error on stderr and, with `--json`, as `{"error": {kind, message, exitCode}}` on
/// stdout, unless the command already printed its JSON result there (`check` whose models
/// are not met, `verify` that found a mismatch: the exit code tells the failure).
fn fail(e: &cloakline::Error, json: bool) -> ExitCode {
    let code = e.exit_code();
    let message = printable(&e.to_string());
    if json && !cli::json_result_shown() {
        print_error_object(e.kind(), &message, code);
    }
    eprintln!("error: {message}");
    ExitCode::from(code as u8)
}

/// A command line clap rejects (exit 2), or `--help`/`--version` (exit 0).
fn bad_arguments(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    let informational = matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    );
    // clap has no parsed matches to ask; look for the flag itself (before a `--`).
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if json && !informational {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        print_error_object("usage", &printable(message), e.exit_code());
    }
    let _ = e.print();
    ExitCode::from(e.exit_code() as u8)
}

fn print_error_object(kind: &str, message: &str, code: i32) {
    let doc = serde_json::json!({
        "error": { "kind": kind, "message": message, "exitCode": code }
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn run(cli: Cli, cancel: &Cancel) -> Result<()> {
    match cli.command {
        Command::Apply(a) => cli::apply::run(a, cancel),
        Command::Validate(v) => cli::validate::run(v),
        Command::Verify(v) => cli::verify::run(v),
        Command::Report(r) => cli::report::run(r),
        Command::Ropa(r) => cli::ropa::run(r),
        Command::Check(c) => cli::check::run(c),
        Command::Scan(a) => cli::scan::run(a),
        Command::Decrypt(d) => cli::decrypt::run(d),
        Command::Reveal(r) => cli::reveal::run(r),
        Command::Retokenize(r) => cli::decrypt::run_retokenize(r),
        Command::Audit { command } => cli::reveal::run_audit(command),
        Command::Keys { command } => cli::keys::run(command),
        Command::Schema => cli::schema::run(),
        Command::Gc(g) => cli::gc::run(g),
        Command::Sql(q) => cli::sql::run(q, cancel),
        #[cfg(feature = "cluster")]
        Command::Cluster { command } => cli::cluster::run(command, cancel),
    }
}
