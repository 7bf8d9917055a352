//! `cloakline validate`: a policy checked, optionally against data and keyring.

use super::*;

#[derive(Args)]
pub(crate) struct ValidateArgs {
    /// Policy file (YAML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Also check the policy against this input's schema (file or directory).
    #[arg(long, value_name = "PATH")]
    input: Option<PathBuf>,
    #[command(flatten)]
    keyring: KeyringArg,
    #[command(flatten)]
    formats: FormatArgs,
}

pub(crate) fn run(v: ValidateArgs) -> Result<()> {
    let policy = Policy::load(&v.policy)?;
    for w in &policy.warnings {
        errln!(
            "warning [{}] {}{}",
            w.rule,
            w.field
                .as_ref()
                .map(|f| format!("field `{f}`: "))
                .unwrap_or_default(),
            w.message
        );
    }
    match &v.input {
        None => {
            if let Some(k) = &v.keyring.keyring {
                let ring = load_keyring(k)?;
                for f in policy.fields.values() {
                    if let Some(id) = f.action.key_id() {
                        ring.get(id)?;
                    }
                }
            }
            outln!(
                "policy {} v{} is valid: {} fields ({} reach the output), jurisdictions {}",
                policy.name,
                policy.version,
                policy.fields.len(),
                policy.output_fields().count(),
                policy
                    .jurisdictions
                    .iter()
                    .map(|j| j.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Some(input) => {
            let keyring = keyring_for(Some(&policy), &v.keyring)?;
            let read = read_options(&v.formats)?;
            let plans = Apply::new(policy.clone(), keyring, input, Path::new("-"))
                .with_input_format(v.formats.input_format)
                .with_delimiter(read.delimiter)
                .validate()?;
            let plan = &plans[0];
            outln!(
                "policy {} v{} fits {}: {} output columns, {} dropped",
                policy.name,
                policy.version,
                input.display(),
                plan.columns.len(),
                plan.dropped.len()
            );
            for c in &plan.columns {
                outln!(
                    "  {:<20} {:<10} {} -> {}",
                    c.rule.output_name,
                    c.rule.action.kind().keyword(),
                    c.input_type,
                    c.output_field.data_type()
                );
            }
            for d in &plan.dropped {
                outln!("  {:<20} dropped ({})", d.name, d.reason);
            }
        }
    }
    Ok(())
}
