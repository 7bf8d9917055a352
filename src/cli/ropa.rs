//! `cloakline ropa`: records of processing activities from policies.

use super::*;

#[derive(Args)]
pub(crate) struct RopaArgs {
    /// Policy files (YAML).
    #[arg(required = true, value_name = "POLICY")]
    policies: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    format: RopaFormat,
    /// Write here (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum RopaFormat {
    Csv,
    Json,
    Md,
}

pub(crate) fn run(r: RopaArgs) -> Result<()> {
    if let Some(o) = &r.output {
        let ins: Vec<(&str, &Path)> = r
            .policies
            .iter()
            .map(|p| ("a policy", p.as_path()))
            .collect();
        refuse_collisions(&ins, &[("--output", o)])?;
    }
    let mut acts = Vec::new();
    for p in &r.policies {
        acts.push(cloakline::jobs::report::ropa::activity(&load_policy(p)?));
    }
    let text = match r.format {
        RopaFormat::Csv => cloakline::jobs::report::ropa::to_csv(&acts),
        RopaFormat::Md => cloakline::jobs::report::ropa::to_markdown(&acts),
        RopaFormat::Json => serde_json::to_string_pretty(&acts).unwrap_or_default() + "\n",
    };
    write_or_print(r.output.as_deref(), &text)?;
    Ok(())
}
