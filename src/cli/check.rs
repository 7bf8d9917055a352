//! `cloakline check`: the privacy models measured, nothing written.

use super::*;

#[derive(Args)]
pub(crate) struct CheckArgs {
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

pub(crate) fn run(c: CheckArgs) -> Result<()> {
    let policy = Policy::load(&c.policy)?;
    let keyring = keyring_for(Some(&policy), &c.keyring)?;
    let read = ReadOptions::default().with_delimiter(delimiter(&c.delimiter)?);
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
