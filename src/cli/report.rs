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
    let (input, output) = (location(&r.input), r.output.as_deref().map(location));
    if let (Some(cloakline::io::Location::Local(o)), cloakline::io::Location::Local(i)) =
        (&output, &input)
    {
        let side = cloakline::provenance::sidecar_path(i);
        refuse_collisions(
            &[("the report's input", i), ("its provenance", &side)],
            &[("--output", o)],
        )?;
    }
    let rt = runtime()?;
    let record = rt.block_on(cloakline::jobs::report::load_record_at(&input, &storage()))?;
    let text = match r.format {
        ReportFormat::Html => cloakline::jobs::report::render_html(&record),
        ReportFormat::Md => cloakline::jobs::report::render_markdown(&record),
    };
    match output {
        Some(cloakline::io::Location::Url(u)) => {
            let remote = cloakline::io::store::Remote::open(&u, &storage())?;
            let shown = remote.shown();
            let same_as_input = match &input {
                cloakline::io::Location::Url(i) => {
                    cloakline::io::store::Remote::open(i, &storage())?.shown() == shown
                }
                _ => false,
            };
            // Never over a record, a lock, or an object a release lists.
            let covered = rt.block_on(remote.covering_record())?.is_some();
            if same_as_input
                || shown.contains(".provenance.json")
                || shown.ends_with(".lock")
                || covered
            {
                return Err(Error::Usage(format!(
                    "--output {shown} would replace a record, a lock or part of a release; \
                     write the report elsewhere"
                )));
            }
            rt.block_on(remote.put_small(text.into_bytes()))?;
        }
        _ => write_or_print(r.output.as_deref(), &text)?,
    }
    Ok(())
}
