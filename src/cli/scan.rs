//! `cloakline scan`: personal data found per column; optionally a drafted policy.

use super::*;

#[derive(Args)]
pub(crate) struct ScanArgs {
    /// Input file (.parquet, .csv/.tsv, .ndjson/.jsonl; CSV/NDJSON also .gz or .zst).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Rows examined: all rows up to N, a uniform (reservoir) sample of N beyond it.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    sample: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Write a draft policy here (refused if the file exists, unless --overwrite). Its lawful
    /// bases, controller and purpose are TODO: `validate` rejects it until a person fills them.
    #[arg(long, value_name = "FILE")]
    draft_policy: Option<PathBuf>,
    /// Key id the draft uses for tokenized columns.
    #[arg(long, default_value = "k1", value_name = "ID")]
    key_id: String,
    /// Jurisdictions of the draft, comma-separated: EU, CN.
    #[arg(long, default_value = "EU", value_name = "LIST")]
    jurisdictions: String,
    /// Also use this policy's custom `recognizers:`.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Replace an existing --draft-policy file.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    formats: FormatArgs,
}

pub(crate) fn run(a: ScanArgs) -> Result<()> {
    let set = match &a.policy {
        Some(p) => load_policy(p)?.recognizers.as_ref().clone(),
        None => cloakline::recognizers::RecognizerSet::builtin()
            .map_err(|e| Error::Internal(format!("built-in recognizers: {e}")))?,
    };
    let jur: Vec<&str> = a
        .jurisdictions
        .split(',')
        .filter(|j| !j.trim().is_empty())
        .collect();
    let read = read_options(&a.formats)?;
    let mut job = cloakline::jobs::scan::Scan::new(location(&a.input))
        .with_storage_options(storage())
        .with_format(a.formats.input_format)
        .with_read_options(read)
        .with_sample(a.sample)
        .with_recognizers(set);
    if let Some(d) = &a.draft_policy {
        job = job.with_draft_policy(d, &a.key_id, &jur, a.overwrite);
    }
    let report = runtime()?.block_on(job.run())?;
    if let Some(d) = &a.draft_policy {
        errln!(
            "draft policy written to {} (fill in every TODO, then run `cloakline validate`)",
            d.display()
        );
    }
    show(a.json, &report, || report.to_text());
    Ok(())
}
