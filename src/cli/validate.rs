//! `cloakline validate`: a policy checked, optionally against data and keyring. Every problem
//! of the policy is reported in one run; `--json` for machines, `--strict` for CI.

use cloakline::error::PlanProblem;
use cloakline::policy::{Field, PolicyProblem, problems_error};

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
    /// Print one JSON object on stdout, also when the policy is invalid: `valid`, `policy`,
    /// `errors` and `warnings`, each with `line`, `column`, `field`, `message` (and `rule`
    /// for a lawful-basis rule).
    #[arg(long)]
    json: bool,
    /// Fail on any warning (exit 2, as for an invalid policy): for CI.
    #[arg(long)]
    strict: bool,
    /// The key that will sign the provenance (`apply --sign-key`): warn when the policy also
    /// tokenizes, encrypts or scrubs with it.
    #[arg(long, env = "CLOAKLINE_SIGN_KEY", value_name = "KEY_ID")]
    sign_key: Option<String>,
}

/// What `--json` prints.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    /// The command passes: no error (and, with `--strict`, no warning).
    valid: bool,
    policy: String,
    errors: Vec<PolicyProblem>,
    warnings: Vec<PolicyProblem>,
}

pub(crate) fn run(v: ValidateArgs) -> Result<()> {
    let source = v.policy.display().to_string();
    let report = |valid: bool, errors: Vec<PolicyProblem>, warnings: Vec<PolicyProblem>| {
        let r = Report {
            valid,
            policy: source.clone(),
            errors,
            warnings,
        };
        show(true, &r, String::new);
    };
    let loaded = match location(&v.policy) {
        cloakline::io::Location::Local(p) => Policy::load_collecting(&p),
        loc => runtime()?
            .block_on(Policy::load_at_collecting(&loc, &storage()))?
            .map_err(|(_, ps)| ps),
    };
    let policy = match loaded {
        Ok(p) => p,
        Err(problems) => {
            if v.json {
                report(false, problems.clone(), Vec::new());
            }
            return Err(problems_error(&source, problems));
        }
    };
    let fields = in_file_order(&policy);
    let mut warnings: Vec<PolicyProblem> = policy
        .warnings
        .iter()
        .map(|w| {
            let mut p = PolicyProblem::new(w.message.clone());
            p.rule = Some(w.rule);
            if let Some(f) = &w.field {
                p.field = Some(f.clone());
                if let Some(f) = policy.fields.get(f) {
                    (p.line, p.column) = (Some(f.line), Some(f.column));
                }
            }
            if !v.json {
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
            p
        })
        .collect();
    if let Some(id) = &v.sign_key {
        for p in shared_signing_key(&fields, id) {
            if !v.json {
                errln!("warning: {}", p.message);
            }
            warnings.push(p);
        }
    }
    // Plain key material in a file: it works, but a security review wants it wrapped.
    if let Some(k) = &v.keyring.keyring
        && let Ok((_, None)) = cloakline::keys::list_file(k)
        && !cloakline::keys::Keyring::load(k).is_ok_and(|r| r.is_demo())
    {
        let p = PolicyProblem::new(format!(
            "keyring {} holds plain key material; wrap it under a passphrase or an HSM key with `cloakline keys wrap` (docs/KEYS.md)",
            k.display()
        ));
        if !v.json {
            errln!("warning: {}", p.message);
        }
        warnings.push(p);
    }
    let fits = match against(&v, &policy, &fields) {
        Ok(f) => f,
        Err(e) => {
            if v.json {
                report(false, errors_of(&e, &policy), warnings);
            }
            return Err(e);
        }
    };
    if v.strict && !warnings.is_empty() {
        if v.json {
            report(false, Vec::new(), warnings.clone());
        }
        return Err(Error::Policy {
            path: source.clone(),
            message: format!(
                "{} warning(s), and --strict makes a warning fail; resolve them or run \
                 without --strict",
                warnings.len()
            ),
        });
    }
    if v.json {
        report(true, Vec::new(), warnings);
        return Ok(());
    }
    match fits {
        None => outln!(
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
        ),
        Some(lines) => {
            for l in lines {
                outln!("{l}");
            }
        }
    }
    if let Some(c) = &policy.consent {
        outln!(
            "consent: ledger {}, purpose {}, subject {} ({} ids); withdrawn or missing consent \
             removes {} (on_withdrawn: {}, on_missing: {})",
            c.ledger,
            c.purpose,
            c.subject,
            match c.subject_ids {
                cloakline::policy::consent::SubjectIds::Raw => "raw",
                cloakline::policy::consent::SubjectIds::Tokenized => "tokenized",
            },
            c.consent_fields.join(", "),
            match c.on_withdrawn {
                cloakline::policy::consent::OnWithdrawn::DropRow => "drop_row",
                cloakline::policy::consent::OnWithdrawn::NullFields => "null_fields",
            },
            match c.on_missing {
                cloakline::policy::consent::OnMissing::Drop => "drop",
                cloakline::policy::consent::OnMissing::Fail => "fail",
            }
        );
    }
    if let Some(r) = &policy.release {
        outln!(
            "release: to {} ({}), risk threshold {}, approved by {}, re-evaluate by {}",
            r.recipient,
            r.model.keyword(),
            r.risk_threshold,
            r.approver,
            r.re_evaluate_by
        );
    }
    Ok(())
}

fn in_file_order(policy: &Policy) -> Vec<&Field> {
    let mut fields: Vec<&Field> = policy.fields.values().collect();
    fields.sort_by_key(|f| (f.line, f.column));
    fields
}

/// A warning for each field the signing key `id` also protects: an HMAC signature is checked
/// with the same secret.
fn shared_signing_key(fields: &[&Field], id: &str) -> Vec<PolicyProblem> {
    fields
        .iter()
        .filter(|f| cloakline::provenance::sign::protects(f, id))
        .map(|f| {
            let mut p = PolicyProblem::new(format!(
                "field `{}` (line {} column {}): key `{id}` will sign the provenance (HMAC) and \
                 also protects this field (`{}`): whoever can check the signature holds the key \
                 that protects the data; sign with an Ed25519 key (`keys generate --signing`)",
                f.input_name,
                f.line,
                f.column,
                f.action.kind().keyword()
            ));
            (p.line, p.column, p.field) =
                (Some(f.line), Some(f.column), Some(f.input_name.clone()));
            p
        })
        .collect()
}

/// The keyring and input checks of a valid policy: `Some(lines)` describing the plan when
/// there is an input.
fn against(v: &ValidateArgs, policy: &Policy, fields: &[&Field]) -> Result<Option<Vec<String>>> {
    let Some(input) = &v.input else {
        if let Some(k) = &v.keyring.keyring {
            let ring = load_keyring(k)?;
            for f in fields {
                if let Some(id) = f.action.key_id() {
                    ring.data_key(id)?;
                }
            }
        }
        return Ok(None);
    };
    let keyring = keyring_for(Some(policy), &v.keyring)?;
    let read = read_options(&v.formats)?;
    let plans = Apply::new(policy.clone(), keyring, input, Path::new("-"))
        .with_input_format(v.formats.input_format)
        .with_delimiter(read.delimiter)
        .validate()?;
    let plan = &plans[0];
    let mut lines = vec![format!(
        "policy {} v{} fits {}: {} output columns, {} dropped",
        policy.name,
        policy.version,
        input.display(),
        plan.columns.len(),
        plan.dropped.len()
    )];
    for c in &plan.columns {
        lines.push(format!(
            "  {:<20} {:<10} {} -> {}",
            c.rule.output_name,
            c.rule.action.kind().keyword(),
            c.input_type,
            c.output_field.data_type()
        ));
    }
    for d in &plan.dropped {
        lines.push(format!("  {:<20} dropped ({})", d.name, d.reason));
    }
    Ok(Some(lines))
}

/// An error of the keyring or input checks as `--json` errors: one per plan problem, placed at
/// its field where it has one.
fn errors_of(e: &Error, policy: &Policy) -> Vec<PolicyProblem> {
    let problems = match e {
        Error::Plan { problems, .. } => problems,
        Error::MissingKey { key_id, .. } => {
            let mut p = PolicyProblem::new(e.to_string());
            if let Some(f) = in_file_order(policy)
                .into_iter()
                .find(|f| f.action.key_id() == Some(key_id.as_str()))
            {
                (p.line, p.column) = (Some(f.line), Some(f.column));
                p.field = Some(f.input_name.clone());
            }
            return vec![p];
        }
        _ => return vec![PolicyProblem::new(e.to_string())],
    };
    problems
        .iter()
        .map(|pp| {
            let mut p = PolicyProblem::new(pp.to_string());
            let field = match pp {
                PlanProblem::UnknownColumn { field, .. } | PlanProblem::Misfit { field, .. } => {
                    Some(field)
                }
                _ => None,
            };
            if let Some(f) = field.and_then(|f| policy.fields.get(f)) {
                (p.line, p.column) = (Some(f.line), Some(f.column));
                p.field = Some(f.input_name.clone());
            }
            p
        })
        .collect()
}
