//! `cloakline verify`: an output checked against its provenance.

use super::*;

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// A cloakline output file, or the directory of a directory release (every file is checked
    /// against the directory's record; missing and extra files fail).
    output: PathBuf,
    /// The provenance document (default: <OUTPUT>.provenance.json).
    #[arg(long, value_name = "FILE")]
    provenance: Option<PathBuf>,
    /// Also check that this policy file is the one the record names (by SHA-256).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Keyring holding the key that signed, to check an HMAC signature (the signer's own
    /// secret; partners use --public-key).
    #[arg(long, env = "CLOAKLINE_KEYRING", value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// The signer's Ed25519 public key (PEM, from `cloakline keys export-public`), to check
    /// an Ed25519 signature without any secret. An unsigned record then fails.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// CSV field delimiter of a CSV output.
    #[arg(long, default_value = ",", value_name = "CHAR")]
    delimiter: String,
    /// Fail when the record is not signed, even without --keyring (an unsigned record always
    /// fails when --keyring is given).
    #[arg(long)]
    require_signature: bool,
    /// Also check that this is the consent ledger the run read (by SHA-256; a path or URL).
    #[arg(long, value_name = "PATH|URL")]
    consent_ledger: Option<PathBuf>,
    /// Print the checks as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(v: VerifyArgs) -> Result<()> {
    let mut job = cloakline::jobs::verify::Verify::new(location(&v.output))
        .with_storage_options(storage())
        .with_read_options(ReadOptions::default().with_delimiter(delimiter(&v.delimiter)?))
        .require_signature(v.require_signature);
    if let Some(p) = &v.keyring {
        job = job.with_keyring(load_keyring(p)?);
    }
    if let Some(p) = &v.public_key {
        job = job.with_public_key(cloakline::keys::read_public_key(p)?);
    }
    if let Some(p) = &v.provenance {
        job = job.with_provenance(location(p));
    }
    if let Some(p) = &v.policy {
        job = job.with_policy(location(p));
    }
    if let Some(p) = &v.consent_ledger {
        job = job.with_consent_ledger(location(p));
    }
    let result = runtime()?.block_on(job.run())?;
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
