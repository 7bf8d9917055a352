//! The `report` job: load a run's record, render it, and write it where asked (never over a
//! record, a lock, an input, or a file a release lists). The CLI and Python call this.

use std::str::FromStr;

use crate::error::{Error, Problem, Result};
use crate::io::Location;
use crate::io::store::{Remote, StorageOptions};

/// What the report is rendered as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReportFormat {
    /// One self-contained HTML file: inline CSS and SVG, no scripts, printable.
    #[default]
    Html,
    /// Markdown.
    Markdown,
}

impl FromStr for ReportFormat {
    type Err = Problem;
    fn from_str(s: &str) -> std::result::Result<Self, Problem> {
        match s {
            "html" => Ok(Self::Html),
            "md" | "markdown" => Ok(Self::Markdown),
            _ => Err(Problem::new(format!(
                "unknown report format {s:?}: use html or md"
            ))),
        }
    }
}

/// A report of the record of `input` (an output, a directory release, a provenance
/// document; local or a URL).
#[must_use]
pub struct Report {
    input: Location,
    format: ReportFormat,
    output: Option<Location>,
    storage: StorageOptions,
}

impl Report {
    pub fn new(input: impl Into<Location>) -> Self {
        Self {
            input: input.into(),
            format: ReportFormat::Html,
            output: None,
            storage: StorageOptions::default(),
        }
    }

    pub fn with_format(mut self, format: ReportFormat) -> Self {
        self.format = format;
        self
    }

    /// Also write the report here (atomically; a URL in one PUT).
    pub fn with_output(mut self, output: Option<Location>) -> Self {
        self.output = output;
        self
    }

    pub fn with_storage_options(mut self, options: StorageOptions) -> Self {
        self.storage = options;
        self
    }

    /// The rendered report (also written to the output, when one is set).
    pub async fn run(self) -> Result<String> {
        if let (Some(Location::Local(o)), Location::Local(i)) = (&self.output, &self.input) {
            let side = crate::provenance::sidecar_path(i);
            crate::io::refuse_collisions(
                &[("the report's input", i), ("its provenance", &side)],
                &[("the report's output", o)],
            )?;
        }
        let record = super::load_record_at(&self.input, &self.storage).await?;
        let text = match self.format {
            ReportFormat::Html => super::render_html(&record),
            ReportFormat::Markdown => super::render_markdown(&record),
        };
        match &self.output {
            Some(Location::Url(u)) => {
                let remote = Remote::open(u, &self.storage)?;
                let shown = remote.shown();
                let same_as_input = match &self.input {
                    Location::Url(i) => Remote::open(i, &self.storage)?.shown() == shown,
                    _ => false,
                };
                // Never over a record, a lock, or an object a release lists.
                let covered = remote.covering_record().await?.is_some();
                if same_as_input
                    || shown.contains(".provenance.json")
                    || shown.ends_with(".lock")
                    || covered
                {
                    return Err(Error::Usage(format!(
                        "the report's output {shown} would replace a record, a lock or part \
                         of a release; write the report elsewhere"
                    )));
                }
                remote.put_small(text.clone().into_bytes()).await?;
            }
            Some(Location::Local(o)) => {
                crate::io::write_atomically(o, |f| std::io::Write::write_all(f, text.as_bytes()))?;
            }
            None => {}
        }
        Ok(text)
    }
}
