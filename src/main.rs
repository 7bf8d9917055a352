//! The `cloakline` command: a thin door onto the library's jobs. Each command lives in
//! `src/cli/<command>.rs`: its flags and a short function that maps them to a job and prints
//! the summary; flags shared by several commands are declared once in `src/cli/mod.rs`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cloakline::Result;
use cloakline::engine::Cancel;

mod cli;

use cli::printable;
use cli::{
    apply::ApplyArgs, check::CheckArgs, decrypt::DecryptArgs, keys::KeysCommand,
    report::ReportArgs, ropa::RopaArgs, scan::ScanArgs, sql::SqlArgs, validate::ValidateArgs,
    verify::VerifyArgs,
};

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
    let cancel = Cancel::new();
    let on_signal = cancel.clone();
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    match run(cli, &cancel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", printable(&e.to_string()));
            ExitCode::from(e.exit_code() as u8)
        }
    }
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
        Command::Keys { command } => cli::keys::run(command),
        Command::Schema => cli::schema::run(),
        Command::Sql(q) => cli::sql::run(q, cancel),
    }
}
