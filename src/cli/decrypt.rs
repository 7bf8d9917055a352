//! `cloakline decrypt`: encrypted columns of an output restored.

use super::*;

#[derive(Args)]
pub(crate) struct DecryptArgs {
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
    #[arg(long, value_parser = format_parser(), value_name = "FORMAT")]
    output_format: Option<Format>,
}

pub(crate) fn run(d: DecryptArgs) -> Result<()> {
    let mut ins = vec![("--input", d.input.as_path())];
    if let Some(k) = &d.keyring.keyring {
        ins.push(("--keyring", k));
    }
    refuse_collisions(&ins, &[("--output", &d.output)])?;
    let keyring = keyring_for(None, &d.keyring)?;
    let read = read_options(&d.formats)?;
    let cols = cloakline::jobs::decrypt::decrypt_file(
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
