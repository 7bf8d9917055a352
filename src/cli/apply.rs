//! `cloakline apply`: a policy over a file or directory, with provenance.

use super::*;

#[derive(Args)]
pub(crate) struct ApplyArgs {
    /// Policy file (YAML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    #[command(flatten)]
    keyring: KeyringArg,
    /// Input file, or a directory of input files (the output mirrors its layout).
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    /// Output file (.parquet or .csv), or a directory when the input is one.
    #[arg(long, value_name = "PATH")]
    output: PathBuf,
    #[command(flatten)]
    formats: FormatArgs,
    /// Output format; default: from the output extension (Parquet for directories).
    #[arg(long, value_parser = format_parser(), value_name = "FORMAT")]
    output_format: Option<Format>,
    /// Worker threads (1 to 1024); default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// Zstd compression level of Parquet output (1-22). Higher levels cost time and gain
    /// little on tokens and envelopes.
    #[arg(long, default_value_t = 1, value_name = "LEVEL",
          value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Replace an existing output: a regular file, or a directory that is a previous
    /// cloakline release (every file in it listed by its sidecar). Never a directory holding
    /// the input, a `.git`, links or devices.
    #[arg(long)]
    overwrite: bool,
    /// Print a machine-readable run summary (JSON) on stdout.
    #[arg(long)]
    json: bool,
    /// Never show the progress bar (it only shows when stderr is a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Sign the provenance sidecar with this keyring key (HMAC-SHA256 over the canonical
    /// document); `cloakline verify --keyring` checks it.
    #[arg(long, value_name = "KEY_ID")]
    sign_key: Option<String>,
    /// Also write an OpenLineage run event (columnLineage facet plus the custom
    /// cloakline_lawfulBasis facet) to this file.
    #[arg(long, value_name = "FILE")]
    openlineage: Option<PathBuf>,
    /// OpenLineage namespace of the job and datasets.
    #[arg(long, default_value = "file", value_name = "NS")]
    openlineage_namespace: String,
}

pub(crate) fn run(a: ApplyArgs, cancel: &Cancel) -> Result<()> {
    let policy = Policy::load(&a.policy)?;
    let keyring = keyring_for(Some(&policy), &a.keyring)?;
    let read = read_options(&a.formats)?;
    let mut job = Apply::new(policy, keyring, &a.input, &a.output)
        .with_input_format(a.formats.input_format)
        .with_output_format(a.output_format)
        .with_delimiter(read.delimiter)
        .with_batch_size(read.batch_size)
        .with_zstd_level(a.zstd_level)
        .with_overwrite(a.overwrite)
        .with_cancel(cancel.clone())
        .with_sign_key(a.sign_key.clone())
        .with_openlineage(a.openlineage.clone(), &a.openlineage_namespace);
    if let Some(t) = a.threads {
        job = job.with_threads(t as usize);
    }
    if !a.no_progress && !a.json && std::io::stderr().is_terminal() {
        job = job.with_progress(Arc::new(Bar::default()));
    }
    let summary = runtime()?.block_on(job.run())?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        if let Some(p) = &summary.privacy {
            let levels: Vec<String> = p
                .quasi_identifiers
                .iter()
                .map(|(n, l, h)| format!("{n}={l}/{}", h - 1))
                .collect();
            errln!(
                "privacy: smallest class {}, {} records suppressed ({:.2}%), levels {}",
                p.smallest_class,
                p.suppressed,
                p.suppressed_fraction * 100.0,
                levels.join(" ")
            );
        }
        errln!(
            "wrote {} ({} rows, {} fields, {} dropped) and {} in {:.2}s",
            summary.output.display(),
            summary.rows_out,
            summary.fields.len(),
            summary.dropped.len(),
            summary.provenance.display(),
            summary.seconds
        );
    }
    Ok(())
}
