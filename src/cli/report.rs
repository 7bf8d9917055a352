//! `cloakline report`: a run's provenance rendered for a person.

use super::*;

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// A cloakline output (its <OUTPUT>.provenance.json is read, or the copy in a Parquet
    /// footer) or a provenance document (.json); local, or a URL (`s3://…`: the sidecar, or
    /// the record of the release an object belongs to).
    input: PathBuf,
    /// `html` (one self-contained file: inline CSS and SVG, no scripts, printable) or `md`.
    #[arg(long, value_enum, default_value = "html")]
    format: ReportFormat,
    /// Write here (atomically; a URL in one PUT) instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Html,
    Md,
}

pub(crate) fn run(r: ReportArgs) -> Result<()> {
    let format = match r.format {
        ReportFormat::Html => cloakline::jobs::report::ReportFormat::Html,
        ReportFormat::Md => cloakline::jobs::report::ReportFormat::Markdown,
    };
    let job = cloakline::jobs::report::Report::new(location(&r.input))
        .with_format(format)
        .with_output(r.output.as_deref().map(location))
        .with_storage_options(storage());
    let text = runtime()?.block_on(job.run())?;
    if r.output.is_none() {
        print!("{text}");
    }
    Ok(())
}
