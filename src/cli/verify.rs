//! `cloakline verify`: an output checked against its provenance.

use super::*;

#[derive(Args)]
pub(crate) struct VerifyArgs {
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

pub(crate) fn run(v: VerifyArgs) -> Result<()> {
    let ring = match &v.keyring {
        Some(p) => Some(load_keyring(p)?),
        None => None,
    };
    let read = ReadOptions::default().with_delimiter(delimiter(&v.delimiter)?);
    let result = cloakline::jobs::verify::verify_with(
        &v.output,
        &read,
        &cloakline::jobs::verify::VerifyOptions::default()
            .with_provenance(v.provenance.as_deref())
            .with_policy(v.policy.as_deref())
            .with_keyring(ring.as_ref())
            .with_require_signature(v.require_signature),
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
