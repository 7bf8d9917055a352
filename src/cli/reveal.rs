//! `cloakline reveal` (audited re-identification) and `cloakline audit verify`.

use super::*;

#[derive(Args)]
pub(crate) struct RevealArgs {
    #[command(flatten)]
    keyring: KeyringArg,
    /// A cloakline output file (.parquet or .csv).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Where to write the re-identified file (owner-only).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Why the data is re-identified, in words (recorded).
    #[arg(long, value_name = "TEXT")]
    purpose: String,
    /// Who asked for it (recorded).
    #[arg(long, value_name = "WHO")]
    requested_by: String,
    /// The append-only audit log (JSON lines, hash-chained) the request is recorded in;
    /// created when missing.
    #[arg(long, env = "CLOAKLINE_AUDIT_LOG", value_name = "FILE")]
    audit_log: PathBuf,
    /// Column to reveal, as NAME or NAME=DOMAIN (repeatable). Default: every encrypt,
    /// encrypt_deterministic and fpe column the file's metadata marks.
    #[arg(
        long = "column",
        alias = "columns",
        value_name = "NAME[=DOMAIN]",
        value_delimiter = ','
    )]
    columns: Vec<String>,
    #[command(flatten)]
    formats: FormatArgs,
    /// Output format; default: from the output extension.
    #[arg(long, value_parser = format_parser(), value_name = "FORMAT")]
    output_format: Option<Format>,
}

pub(crate) fn run(r: RevealArgs) -> Result<()> {
    let mut ins = vec![
        ("--input", r.input.as_path()),
        ("--audit-log", r.audit_log.as_path()),
    ];
    if let Some(k) = &r.keyring.keyring {
        ins.push(("--keyring", k));
    }
    refuse_collisions(&ins, &[("--output", &r.output)])?;
    let keyring = keyring_for(None, &r.keyring)?;
    let read = read_options(&r.formats)?;
    let request = cloakline::jobs::decrypt::RevealRequest {
        purpose: r.purpose,
        requested_by: r.requested_by,
        audit_log: r.audit_log.clone(),
    };
    let done = cloakline::jobs::decrypt::reveal_file(
        &r.input,
        &r.output,
        &keyring,
        &r.columns,
        &read,
        r.formats.input_format,
        r.output_format,
        &request,
    )?;
    let cols: Vec<String> = done
        .columns
        .iter()
        .map(|c| format!("{} ({} values)", c.name, c.values))
        .collect();
    errln!(
        "revealed {} into {}; recorded as entry {} of {} and in {}",
        cols.join(", "),
        r.output.display(),
        done.entry
            .get("seq")
            .map(|v| v.to_string())
            .unwrap_or_default(),
        r.audit_log.display(),
        done.record.display()
    );
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check an audit log's hash chain: every line intact, none deleted, inserted or
    /// reordered. Prints the number of entries and the head hash (keep it elsewhere to
    /// detect lines cut from the end). Exit 4 naming the first broken line.
    Verify {
        /// The audit log (JSON lines).
        #[arg(long, env = "CLOAKLINE_AUDIT_LOG", value_name = "FILE")]
        audit_log: PathBuf,
    },
}

pub(crate) fn run_audit(c: AuditCommand) -> Result<()> {
    match c {
        AuditCommand::Verify { audit_log } => {
            let chain = cloakline::provenance::audit::verify(&audit_log)?;
            outln!(
                "{}: {} entries, chain intact, head {}",
                audit_log.display(),
                chain.entries,
                chain.head
            );
            Ok(())
        }
    }
}
