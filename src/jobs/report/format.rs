//! Small text-formatting helpers shared by the sections and both renderers: numbers, sizes,
//! percentages, durations and labels.

use serde_json::Value;

use super::read::non_empty;

pub(super) fn join_or_none(v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| v.join(", "))
}

pub(super) fn human(s: &str) -> String {
    s.replace('_', " ")
}

pub(super) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}…")
    }
}

pub(super) fn jurisdiction_code(j: &str) -> String {
    let tail = j.rsplit(['#', ':', '/']).next().unwrap_or(j);
    tail.to_string()
}

pub(super) fn law_of(j: &str) -> Option<&'static str> {
    match j {
        "EU" => Some("GDPR"),
        "CN" => Some("PIPL"),
        _ => None,
    }
}

/// The DPV term of a policy category: the policy loader's own table.
pub(super) fn category_term(category: &str) -> Option<String> {
    crate::policy::basis::category_term(category)
}

/// "P12M" → "P12M (12 months)"; anything it cannot read is shown as is.
pub(super) fn retention(s: &str) -> String {
    let Some(rest) = s.strip_prefix('P') else {
        return s.to_string();
    };
    let mut parts = Vec::new();
    let mut digits = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'Y' => "year",
            'M' => "month",
            'W' => "week",
            'D' => "day",
            _ => return s.to_string(),
        };
        if digits.is_empty() {
            return s.to_string();
        }
        let plural = if digits == "1" { "" } else { "s" };
        parts.push(format!("{digits} {unit}{plural}"));
        digits.clear();
    }
    if parts.is_empty() || !digits.is_empty() {
        return s.to_string();
    }
    format!("{s} ({})", parts.join(" "))
}

pub(super) fn group_u(n: u64) -> String {
    group_digits(&n.to_string())
}

fn group_digits(digits: &str) -> String {
    let (sign, d) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    let mut out = String::new();
    let len = d.chars().count();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (len - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

pub(super) fn num(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(group_u(u))
            } else if let Some(i) = n.as_i64() {
                Some(group_digits(&i.to_string()))
            } else {
                n.as_f64().map(float)
            }
        }
        Value::String(s) => non_empty(s),
        _ => None,
    }
}

/// Non-finite figures (recorded as JSON null, read back as NaN) are shown as "—".
pub(super) fn float(f: f64) -> String {
    if !f.is_finite() {
        return "—".into();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return group_digits(&(f as i64).to_string());
    }
    if f.abs() < 0.001 {
        return format!("{f:.2e}");
    }
    let s = format!("{f:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s.split_once('.') {
        Some((int, frac)) => format!("{}.{frac}", group_digits(int)),
        None => group_digits(s),
    }
}

/// A recorded figure, or None when it is not a number (NaN stands for JSON null).
pub(super) fn finite(f: f64) -> Option<f64> {
    f.is_finite().then_some(f)
}

pub(super) fn pct(f: f64) -> String {
    format!("{:.2}%", f * 100.0)
}

pub(super) fn bytes(n: u64) -> String {
    let exact = format!("{} B", group_u(n));
    let units = [("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)];
    let best = units.iter().rev().find(|(_, size)| n >= *size);
    match best {
        Some((name, size)) => format!("{exact} ({:.1} {name})", n as f64 / *size as f64),
        None => exact,
    }
}
