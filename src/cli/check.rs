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
    /// Only measure the data as the field rules release it (level 0): no preview of the
    /// levels and suppression `apply` would choose with `on_violation: suppress` or
    /// `generalize`; exit 3 unless level 0 meets the models within `max_suppression`.
    #[arg(long)]
    no_preview: bool,
    /// Group on a cluster (`df://HOST:PORT`, the scheduler of `cloakline cluster`): the
    /// executors read the input (a URL) in place and group it; the models are evaluated here.
    #[arg(long, env = "CLOAKLINE_CLUSTER", value_name = "df://HOST:PORT")]
    cluster: Option<String>,
    #[command(flatten)]
    consent: super::ConsentArgs,
}

pub(crate) fn run(c: CheckArgs) -> Result<()> {
    let policy = load_policy(&c.policy)?;
    // The grouping pass reads only the models' columns, on input values: no key is needed.
    let keyring = if c.keyring.keyring.is_some() {
        keyring_for(Some(&policy), &c.keyring)?
    } else {
        cloakline::keys::Keyring::default()
    };
    let mut read = ReadOptions::default()
        .with_infer_rows(c.infer_rows)
        .with_all_strings(c.all_strings);
    if let Some(d) = &c.delimiter {
        read = read.with_explicit_delimiter(delimiter(d)?);
    }
    let consent = c.consent.options(Some((&policy, &c.policy)))?;
    let job = cloakline::jobs::check::Check::new(policy, keyring, location(&c.input))
        .with_storage_options(storage())
        .with_read_options(read)
        .with_preview(!c.no_preview)
        .with_cluster(c.cluster.clone())
        .with_consent(consent);
    let report = runtime()?.block_on(job.run())?;
    show(c.json, &report, || report.to_text());
    if report.passes() {
        Ok(())
    } else {
        Err(Error::Privacy {
            input: c.input.display().to_string(),
            message: "the models are not met (see the report above)".into(),
            assessment: None,
        })
    }
}
