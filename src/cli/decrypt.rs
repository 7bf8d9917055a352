//! `cloakline decrypt`: encrypted columns of an output restored.

use super::*;

/// What `decrypt` and `reveal` share: the file, where it goes, which columns, the keys.
#[derive(Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) keyring: KeyringArg,
    /// A cloakline output file (.parquet or .csv).
    #[arg(long, value_name = "FILE")]
    pub(crate) input: PathBuf,
    /// Where to write the restored file (owner-only).
    #[arg(long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// Column to restore, as NAME or NAME=DOMAIN (repeatable). Default: every encrypt,
    /// encrypt_deterministic and fpe column the file's metadata marks (Parquet); required
    /// for CSV.
    #[arg(long = "column", value_name = "NAME[=DOMAIN]")]
    pub(crate) columns: Vec<String>,
    #[command(flatten)]
    pub(crate) formats: FormatArgs,
    /// Output format; default: from the output extension.
    #[arg(long, value_parser = format_parser(), value_name = "FORMAT")]
    pub(crate) output_format: Option<Format>,
}

impl RestoreArgs {
    /// Refuse an output that is one of the inputs (`extra` names more of them); load the
    /// keyring and the read options.
    pub(crate) fn prepare(&self, extra: &[(&str, &Path)]) -> Result<(Keyring, ReadOptions)> {
        let mut ins = vec![("--input", self.input.as_path())];
        if let Some(k) = &self.keyring.keyring {
            ins.push(("--keyring", k));
        }
        ins.extend_from_slice(extra);
        refuse_collisions(&ins, &[("--output", &self.output)])?;
        Ok((
            keyring_for(None, &self.keyring)?,
            read_options(&self.formats)?,
        ))
    }
}

#[derive(Args)]
pub(crate) struct DecryptArgs {
    #[command(flatten)]
    io: RestoreArgs,
}

pub(crate) fn run(d: DecryptArgs) -> Result<()> {
    let d = d.io;
    let (keyring, read) = d.prepare(&[])?;
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

#[derive(Args)]
pub(crate) struct RetokenizeArgs {
    #[command(flatten)]
    keyring: KeyringArg,
    /// A cloakline Parquet output.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Where to write the converted file.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// The key version to convert to, e.g. k1@v2.
    #[arg(long, value_name = "KEY")]
    to: String,
    /// Column to convert (repeatable). Default: every encrypt, encrypt_deterministic and fpe
    /// column under any version of the key's id.
    #[arg(long = "column", value_name = "NAME")]
    columns: Vec<String>,
}

pub(crate) fn run_retokenize(r: RetokenizeArgs) -> Result<()> {
    let mut ins = vec![("--input", r.input.as_path())];
    if let Some(k) = &r.keyring.keyring {
        ins.push(("--keyring", k));
    }
    refuse_collisions(&ins, &[("--output", &r.output)])?;
    let keyring = keyring_for(None, &r.keyring)?;
    let cols = cloakline::jobs::decrypt::retokenize_file(
        &r.input, &r.output, &keyring, &r.to, &r.columns,
    )?;
    errln!(
        "re-encrypted {} under {} into {}",
        cols.join(", "),
        r.to,
        r.output.display()
    );
    Ok(())
}
