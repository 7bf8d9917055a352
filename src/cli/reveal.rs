//! `cloakline reveal` (audited re-identification) and `cloakline audit verify`.

use super::*;

#[derive(Args)]
pub(crate) struct RevealArgs {
    #[command(flatten)]
    io: super::decrypt::RestoreArgs,
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
}

pub(crate) fn run(r: RevealArgs) -> Result<()> {
    let (keyring, read) = r.io.prepare(&[("--audit-log", r.audit_log.as_path())])?;
    let request = cloakline::jobs::decrypt::RevealRequest {
        purpose: r.purpose,
        requested_by: r.requested_by,
        audit_log: r.audit_log.clone(),
    };
    let io = &r.io;
    let done = cloakline::jobs::decrypt::reveal_file(
        &io.input,
        &io.output,
        &keyring,
        &io.columns,
        &read,
        io.formats.input_format,
        io.output_format,
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
        io.output.display(),
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
