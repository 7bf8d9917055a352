//! `cloakline check`: the privacy models measured, nothing written.

use super::*;

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Policy file (YAML) with a `privacy:` block.
    #[arg(long, env = "CLOAKLINE_POLICY", value_name = "FILE")]
    policy: PathBuf,
    /// Input file (.parquet, .csv/.tsv, .ndjson/.jsonl), or a directory of files of one
    /// format, measured as one table.
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    #[command(flatten)]
    keyring: KeyringArg,
    /// CSV field delimiter (one ASCII character; `\t` for tab); default: tab for .tsv files,
    /// `,` otherwise.
    #[arg(long, value_name = "CHAR")]
    delimiter: Option<String>,
    /// Rows of a CSV/NDJSON input read to infer its column types; 0 reads the whole file.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    infer_rows: usize,
    /// Read every CSV column (every scalar NDJSON field) as text; `type:` overrides apply.
    #[arg(long)]
    all_strings: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(c: CheckArgs) -> Result<()> {
    let policy = Policy::load(&c.policy)?;
    let keyring = keyring_for(Some(&policy), &c.keyring)?;
    let mut read = ReadOptions::default()
        .with_infer_rows(c.infer_rows)
        .with_all_strings(c.all_strings);
    if let Some(d) = &c.delimiter {
        read = read.with_explicit_delimiter(delimiter(d)?);
    }
    // The grouping pass reads through a reader that does not decompress.
    if let Some(f) = cloakline::io::compressed_files(&c.input).first() {
        return Err(Error::Usage(format!(
            "{} is compressed; `check` groups the input with a reader that does not \
             decompress. Decompress it first",
            f.display()
        )));
    }
    let job = cloakline::jobs::check::Check::new(policy, keyring, &c.input).with_read_options(read);
    let report = runtime()?.block_on(job.run())?;
    show(c.json, &report, || report.to_text());
    if report.meets_with_suppression {
        Ok(())
    } else {
        Err(Error::Privacy {
            input: c.input.display().to_string(),
            message: "the models are not met (see the report above)".into(),
            assessment: None,
        })
    }
}
