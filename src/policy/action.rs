//! Checking one field rule's action and its parameters.

use std::sync::Arc;

use super::model::{
    Action, ActionKind, Constant, CustomAction, EncryptSpec, FieldRule, MaskSpec, ReplaceWith,
    ScrubSpec, TokenizeSpec,
};
use crate::error::Problem;
use crate::kernels::generalize::{DateLevel, GeneralizeSpec, NumberBins};
use crate::kernels::scrub::ScrubMode;
use crate::recognizers::RecognizerSet;

/// Check the action's parameters and build the validated action. `set` is `None` where
/// `scrub` cannot appear (privacy-block levels).
pub(super) fn validate_action(
    name: &str,
    r: &FieldRule,
    set: Option<&Arc<RecognizerSet>>,
) -> std::result::Result<Action, Problem> {
    check_parameters(r)?;
    Ok(match r.action {
        ActionKind::Scrub => scrub_action(r, set)?,
        ActionKind::Keep => Action::Keep,
        ActionKind::Drop => Action::Drop,
        ActionKind::Redact => Action::Redact {
            replacement: replacement(r)?,
        },
        ActionKind::Mask => mask_action(r)?,
        ActionKind::Tokenize => {
            let length = token_length(r)?;
            Action::Tokenize(TokenizeSpec {
                key: required_key(r)?,
                domain: domain(name, r),
                length,
                prefix: prefix(r)?,
            })
        }
        ActionKind::Encrypt => Action::Encrypt(EncryptSpec {
            key: required_key(r)?,
            domain: domain(name, r),
        }),
        ActionKind::EncryptDeterministic => Action::EncryptDeterministic(EncryptSpec {
            key: required_key(r)?,
            domain: domain(name, r),
        }),
        ActionKind::Fpe => fpe_action(name, r)?,
        ActionKind::ShiftDate => {
            let max_days = r
                .max_days
                .ok_or("`shift_date` needs `max_days`: the largest shift, in days (e.g. 30)")?;
            if !(1..=crate::kernels::subject::MAX_SHIFT_DAYS).contains(&max_days) {
                return Err(Problem(format!(
                    "`max_days` is {max_days}; it must be 1 to {}",
                    crate::kernels::subject::MAX_SHIFT_DAYS
                )));
            }
            // One shift per subject across all its date columns: the domain defaults to
            // the keyed_by column, not the field.
            let keyed_by = keyed_by(name, r)?;
            Action::ShiftDate(crate::kernels::subject::ShiftDateSpec {
                key: required_key(r)?,
                domain: r.domain.clone().unwrap_or_else(|| keyed_by.clone()),
                keyed_by,
                max_days,
            })
        }
        ActionKind::Noise => {
            let scale = r
                .scale
                .ok_or("`noise` needs `scale`: the noise's size in the column's unit")?;
            if !(scale.is_finite() && scale > 0.0) {
                return Err("`scale` must be a positive number".into());
            }
            Action::Noise(crate::kernels::subject::NoiseSpec {
                key: required_key(r)?,
                domain: domain(name, r),
                keyed_by: keyed_by(name, r)?,
                distribution: r.distribution.unwrap_or_default(),
                scale,
            })
        }
        ActionKind::Generalize => generalize_action(r)?,
        ActionKind::Custom(name) => custom_action(name, r)?,
    })
}

/// A registered transform: its parameters checked against what it declares.
fn custom_action(name: &str, r: &FieldRule) -> std::result::Result<Action, Problem> {
    let transform = crate::kernels::custom::custom(name)
        .ok_or_else(|| Problem(format!("no transform named `{name}` is registered")))?;
    let params = r.params.clone().unwrap_or_default();
    crate::kernels::custom::check_params(transform, &params)?;
    Ok(Action::Custom(CustomAction { transform, params }))
}

/// Parameters present, by name, so that a stray one is named in the error.
fn present_parameters(r: &FieldRule) -> [(&'static str, bool); 28] {
    [
        ("keyed_by", r.keyed_by.is_some()),
        ("max_days", r.max_days.is_some()),
        ("distribution", r.distribution.is_some()),
        ("scale", r.scale.is_some()),
        ("alphabet", r.alphabet.is_some()),
        ("characters", r.characters.is_some()),
        ("separators", r.separators.is_some()),
        ("luhn", r.luhn.is_some()),
        ("on_invalid", r.on_invalid.is_some()),
        ("key", r.key.is_some()),
        ("domain", r.domain.is_some()),
        ("length", r.length.is_some()),
        ("prefix", r.prefix.is_some()),
        ("keep_first", r.keep_first.is_some()),
        ("keep_last", r.keep_last.is_some()),
        ("mask_char", r.mask_char.is_some()),
        ("replacement", r.replacement.is_some()),
        ("to", r.to.is_some()),
        ("bin_width", r.bin_width.is_some()),
        ("breaks", r.breaks.is_some()),
        ("top", r.top.is_some()),
        ("bottom", r.bottom.is_some()),
        ("keep_prefix", r.keep_prefix.is_some()),
        ("label", r.label.is_some()),
        ("replace_with", r.replace_with.is_some()),
        ("recognizers", r.recognizers.is_some()),
        ("domains", r.domains.is_some()),
        ("params", r.params.is_some()),
    ]
}

/// The parameters the rule's action takes (for `scrub`, those of its `replace_with`).
fn allowed_parameters(r: &FieldRule) -> &'static [&'static str] {
    match r.action {
        ActionKind::Keep | ActionKind::Drop => &[],
        ActionKind::Custom(_) => &["params"],
        ActionKind::Redact => &["replacement"],
        ActionKind::Mask => &["keep_first", "keep_last", "mask_char"],
        ActionKind::Tokenize => &["key", "domain", "length", "prefix"],
        ActionKind::Encrypt | ActionKind::EncryptDeterministic => &["key", "domain"],
        ActionKind::ShiftDate => &["key", "domain", "keyed_by", "max_days"],
        ActionKind::Noise => &["key", "domain", "keyed_by", "distribution", "scale"],
        ActionKind::Fpe => &[
            "key",
            "domain",
            "alphabet",
            "characters",
            "separators",
            "keep_first",
            "keep_last",
            "luhn",
            "on_invalid",
        ],
        ActionKind::Scrub => match r.replace_with.unwrap_or(ReplaceWith::Placeholder) {
            ReplaceWith::Placeholder => &["replace_with", "recognizers"],
            ReplaceWith::Token => &[
                "replace_with",
                "recognizers",
                "key",
                "domains",
                "length",
                "prefix",
            ],
            ReplaceWith::Mask => &[
                "replace_with",
                "recognizers",
                "mask_char",
                "keep_first",
                "keep_last",
            ],
        },
        ActionKind::Generalize => &[
            "to",
            "bin_width",
            "breaks",
            "top",
            "bottom",
            "keep_prefix",
            "label",
        ],
    }
}

/// Refuse the first parameter given that the action does not take.
fn check_parameters(r: &FieldRule) -> std::result::Result<(), Problem> {
    let allowed = allowed_parameters(r);
    for (p, given) in &present_parameters(r) {
        if *given && !allowed.contains(p) {
            return Err(Problem(format!(
                "`{p}` is not a parameter of `{}`{}",
                r.action.keyword(),
                if allowed.is_empty() {
                    " (it takes none)".to_string()
                } else {
                    format!(" (it takes: {})", allowed.join(", "))
                }
            )));
        }
    }
    Ok(())
}

/// `fpe`: a named alphabet or custom characters (not both), separators, kept characters.
fn fpe_action(name: &str, r: &FieldRule) -> std::result::Result<Action, Problem> {
    use crate::kernels::fpe;
    let (alphabet, characters) = match (&r.alphabet, &r.characters) {
        (Some(_), Some(_)) => {
            return Err(
                "use either `alphabet` (a named one) or `characters` (your own), not both".into(),
            );
        }
        (None, Some(c)) => ("custom".to_string(), c.clone()),
        (a, None) => {
            let a = a.as_deref().unwrap_or("digits");
            let c = fpe::named_alphabet(a).ok_or_else(|| {
                let names: Vec<&str> = fpe::NAMED_ALPHABETS.iter().map(|(n, _)| *n).collect();
                Problem(format!(
                    "unknown `alphabet`; use one of {}, or list your own with `characters`",
                    names.join(", ")
                ))
            })?;
            (a.to_string(), c.to_string())
        }
    };
    let separators = r.separators.clone().unwrap_or_default();
    let luhn = r.luhn.unwrap_or(false);
    fpe::check_alphabet(&characters, &separators, luhn).map_err(Problem)?;
    let (keep_first, keep_last) = mask_keeps(r)?;
    Ok(Action::Fpe(crate::kernels::FpeSpec {
        key: required_key(r)?,
        domain: domain(name, r),
        alphabet,
        characters,
        separators,
        keep_first,
        keep_last,
        luhn,
        on_invalid: r.on_invalid.unwrap_or_default(),
    }))
}

/// `keyed_by`: required, and another column than the field itself.
fn keyed_by(name: &str, r: &FieldRule) -> std::result::Result<String, Problem> {
    let c = r.keyed_by.clone().ok_or_else(|| {
        Problem(format!(
            "`{}` needs `keyed_by`: the column whose value keys it (a subject or record id)",
            r.action.keyword()
        ))
    })?;
    if c == name {
        return Err("`keyed_by` names the field itself; name the subject's id column".into());
    }
    Ok(c)
}

/// The key-derivation domain: `domain`, or the field name.
fn domain(name: &str, r: &FieldRule) -> String {
    r.domain.clone().unwrap_or_else(|| name.to_string())
}

fn required_key(r: &FieldRule) -> std::result::Result<String, Problem> {
    r.key.clone().ok_or_else(|| {
        Problem(format!(
            "`{}` needs `key`: the id of a key in the keyring",
            r.action.keyword()
        ))
    })
}

/// Token `length` (default 32), bounded by the 64 hex characters of HMAC-SHA256.
/// The longest token prefix and redact replacement, in characters: each is written once
/// per row, and a batch's text must stay within Arrow's 2 GiB string offsets.
pub const MAX_PREFIX: usize = 256;
pub use crate::kernels::redact::MAX_REPLACEMENT;

fn prefix(r: &FieldRule) -> std::result::Result<String, Problem> {
    let p = r.prefix.clone().unwrap_or_default();
    let n = p.chars().count();
    if n > MAX_PREFIX {
        return Err(Problem(format!(
            "`prefix` is {n} characters long; it must be at most {MAX_PREFIX}"
        )));
    }
    Ok(p)
}

fn replacement(r: &FieldRule) -> std::result::Result<Option<String>, Problem> {
    let t = r.replacement.as_ref().map(Constant::as_text);
    if let Some(n) = t.as_ref().map(|t| t.chars().count())
        && n > MAX_REPLACEMENT
    {
        return Err(Problem(format!(
            "`replacement` is {n} characters long; it must be at most {MAX_REPLACEMENT}"
        )));
    }
    Ok(t)
}

fn token_length(r: &FieldRule) -> std::result::Result<usize, Problem> {
    let length = r.length.unwrap_or(32);
    if !(1..=64).contains(&length) {
        return Err(Problem(format!(
            "`length` is {length}; it must be 1 to 64 hex characters"
        )));
    }
    Ok(length)
}

fn scrub_action(
    r: &FieldRule,
    set: Option<&Arc<RecognizerSet>>,
) -> std::result::Result<Action, Problem> {
    let set = set.ok_or("`scrub` is not available here")?;
    if let Some(names) = &r.recognizers {
        if names.is_empty() {
            return Err("`recognizers` is empty; list recognizer names or leave it out".into());
        }
        set.subset(names)?;
    }
    let mode = match r.replace_with.unwrap_or(ReplaceWith::Placeholder) {
        ReplaceWith::Placeholder => ScrubMode::Placeholder,
        ReplaceWith::Token => {
            let length = token_length(r)?;
            ScrubMode::Token {
                key: required_key(r)?,
                domains: r.domains.clone().unwrap_or_default(),
                length,
                prefix: prefix(r)?,
            }
        }
        ReplaceWith::Mask => {
            let (keep_first, keep_last) = mask_keeps(r)?;
            ScrubMode::Mask {
                mask_char: r.mask_char.unwrap_or('*'),
                keep_first,
                keep_last,
            }
        }
    };
    Ok(Action::Scrub(ScrubSpec {
        mode,
        recognizers: r.recognizers.clone(),
        set: Arc::clone(set),
    }))
}

fn mask_action(r: &FieldRule) -> std::result::Result<Action, Problem> {
    let mask_char = r.mask_char.unwrap_or('*');
    if mask_char.is_control() {
        return Err("`mask_char` must be a printable character".into());
    }
    let (keep_first, keep_last) = mask_keeps(r)?;
    Ok(Action::Mask(MaskSpec {
        keep_first,
        keep_last,
        mask_char,
    }))
}

/// `generalize` takes the parameters of exactly one kind: dates, numbers or string prefixes.
fn generalize_action(r: &FieldRule) -> std::result::Result<Action, Problem> {
    let date = r.to.is_some();
    let number =
        r.bin_width.is_some() || r.breaks.is_some() || r.top.is_some() || r.bottom.is_some();
    let prefix = r.keep_prefix.is_some();
    let label = r.label.unwrap_or_default();
    let spec = match (date, number, prefix) {
        (true, false, false) => GeneralizeSpec::Date {
            to: r.to.unwrap_or(DateLevel::Year),
            label,
        },
        (false, true, false) => {
            if r.bin_width.is_some() && r.breaks.is_some() {
                return Err("use either `bin_width` or `breaks`, not both".into());
            }
            let bins = NumberBins {
                bin_width: r.bin_width,
                breaks: r.breaks.clone(),
                top: r.top,
                bottom: r.bottom,
                label,
            };
            crate::kernels::generalize::check_number_bins(&bins)?;
            GeneralizeSpec::Number(bins)
        }
        (false, false, true) => {
            if r.label.is_some() {
                return Err("`label` does not apply to `keep_prefix`".into());
            }
            GeneralizeSpec::Prefix {
                keep_prefix: r.keep_prefix.unwrap_or(0),
            }
        }
        (false, false, false) => {
            return Err(
                "`generalize` needs `to` (dates), `bin_width`/`breaks`/`top`/`bottom` \
                 (numbers) or `keep_prefix` (strings)"
                    .into(),
            );
        }
        _ => {
            return Err(
                "`generalize` mixes parameters of different kinds: use `to` for dates, \
                 `bin_width`/`breaks`/`top`/`bottom` for numbers, or `keep_prefix` for strings"
                    .into(),
            );
        }
    };
    Ok(Action::Generalize(spec))
}

/// Largest `keep_first` / `keep_last`: more is never meaningful, and huge values once
/// wrapped around in `keep_first + keep_last` and revealed values.
pub const MAX_MASK_KEEP: usize = 1000;

/// `keep_first` and `keep_last` of `mask` (or `scrub` with masks), bounded.
fn mask_keeps(r: &FieldRule) -> std::result::Result<(usize, usize), Problem> {
    let mut out = [0usize; 2];
    for (o, (name, v)) in out
        .iter_mut()
        .zip([("keep_first", r.keep_first), ("keep_last", r.keep_last)])
    {
        let v = v.unwrap_or(0);
        if v > MAX_MASK_KEEP {
            return Err(Problem(format!(
                "`{name}` is {v}; it must be at most {MAX_MASK_KEEP} characters"
            )));
        }
        *o = v;
    }
    Ok((out[0], out[1]))
}
