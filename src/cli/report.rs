//! `cloakline report`: a run's provenance rendered for a person.

use super::*;

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// A cloakline output (its <OUTPUT>.provenance.json is read, or the copy in a Parquet
    /// footer) or a provenance document (.json).
    input: PathBuf,
    /// `html` (one self-contained file: inline CSS and SVG, no scripts, printable) or `md`.
    #[arg(long, value_enum, default_value = "html")]
    format: ReportFormat,
    /// Write here (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Html,
    Md,
}

pub(crate) fn run(r: ReportArgs) -> Result<()> {
    if let Some(o) = &r.output {
        let side = cloakline::provenance::sidecar_path(&r.input);
        refuse_collisions(
            &[("the report's input", &r.input), ("its provenance", &side)],
            &[("--output", o)],
        )?;
    }
    let record = cloakline::jobs::report::load_record(&r.input)?;
    let text = match r.format {
        ReportFormat::Html => cloakline::jobs::report::render_html(&record),
        ReportFormat::Md => cloakline::jobs::report::render_markdown(&record),
    };
    write_or_print(r.output.as_deref(), &text)?;
    Ok(())
}
