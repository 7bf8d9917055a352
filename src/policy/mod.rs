//! The declarative policy: what happens to every field, and on what lawful basis.
//!
//! A policy is YAML (see `docs/POLICY.md`). Loading it checks the syntax, the parameters of
//! each action, and the lawful-basis rules of every jurisdiction it names; every error names the
//! file, the field, and the line and column.
//!
//! ```
//! let yaml = r#"
//! policy: demo
//! version: 1
//! controller: Example Co.
//! jurisdictions: [EU]
//! purpose: testing
//! unlisted: drop
//! fields:
//!   email: { action: tokenize, key: k1, basis: consent, category: email }
//! "#;
//! let policy = cloakline::policy::Policy::from_yaml_str(yaml, "demo.yaml").unwrap();
//! assert_eq!(policy.fields["email"].output_name, "email");
//! ```

mod action;
pub mod basis;
pub mod consent;
pub mod hierarchy;
pub mod jurisdiction;
mod load;
mod model;
pub mod privacy;
mod remote;
pub mod rules;

use arrow::datatypes::{DataType, TimeUnit};

use crate::error::Problem;

pub use action::MAX_MASK_KEEP;

/// The most a policy file may hold (a policy is a hand-written YAML file).
pub const MAX_POLICY_BYTES: u64 = 4 << 20;
pub use basis::{Art9Condition, Basis, BasisRef, Jurisdiction, SpecialCategory};
pub use load::problems_error;
pub use model::{
    Action, ActionKind, BasisSpec, Constant, CustomAction, CustomRecognizer, EncryptSpec, Field,
    FieldRule, MaskSpec, Policy, PolicyFile, PolicyProblem, ReplaceWith, ScrubSpec, TokenizeSpec,
    Unlisted,
};
pub use privacy::{
    HierarchySource, LDiversity, LVariant, LossMetric, OnViolation, PrivacySpec, QuasiIdentifier,
    SearchBudget, TCloseness, TDistance,
};

pub use crate::kernels::generalize::{DateLevel, GeneralizeSpec, LabelStyle, NumberBins};
pub use crate::kernels::scrub::ScrubMode;

/// Parse a policy `type:` name for text inputs.
pub fn parse_type_name(name: &str) -> std::result::Result<DataType, Problem> {
    let t = name.trim().to_ascii_lowercase();
    Ok(match t.as_str() {
        "string" | "utf8" | "text" => DataType::Utf8,
        "int32" => DataType::Int32,
        "int64" | "integer" | "int" => DataType::Int64,
        "float64" | "double" | "float" => DataType::Float64,
        "bool" | "boolean" => DataType::Boolean,
        "date" | "date32" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        _ => {
            if let Some(inner) = t.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
                let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
                if let [p, s] = parts.as_slice()
                    && let (Ok(p), Ok(s)) = (p.parse::<u8>(), s.parse::<i8>())
                    && (1..=38).contains(&p)
                    && s >= 0
                    && (s as u8) <= p
                {
                    return Ok(DataType::Decimal128(p, s));
                }
            }
            return Err(Problem(format!(
                "unknown type `{name}`; use string, int32, int64, float64, bool, date, timestamp, timestamptz or decimal(P,S)"
            )));
        }
    })
}

/// The resulting status of a field after `action`; `personal` says whether the policy gave it
/// a personal-data category.
pub fn status_of(action: &Action, personal: bool) -> &'static str {
    match action {
        Action::Keep if personal => "unchanged personal data",
        a => a.descriptor().status,
    }
}

/// The JSON Schema of the policy file format, for editors (`cloakline schema`).
/// Registered transforms ([`crate::kernels::custom`]) are in it with their parameters.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(PolicyFile);
    let mut v = serde_json::to_value(&schema).unwrap_or(serde_json::Value::Null);
    add_custom_transforms(&mut v);
    v
}

/// Each registered transform: a value of `action`, and the schema of `params` when the
/// action is that transform.
fn add_custom_transforms(schema: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let customs = crate::kernels::custom::customs();
    let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) else {
        return;
    };
    for t in &customs {
        let d = t.descriptor();
        if let Some(kinds) = defs.get_mut("ActionKind") {
            if let Some(Value::Array(one_of)) = kinds.get_mut("oneOf") {
                one_of
                    .push(json!({"type": "string", "const": d.name, "description": d.status_note}));
            } else if let Some(Value::Array(names)) = kinds.get_mut("enum") {
                names.push(json!(d.name));
            }
        }
        defs.insert(
            format!("params_{}", d.name),
            crate::kernels::custom::params_schema(*t),
        );
        if let Some(Value::Object(rule)) = defs.get_mut("FieldRule") {
            let all_of = rule.entry("allOf").or_insert_with(|| json!([]));
            if let Value::Array(a) = all_of {
                a.push(json!({
                    "if": {"properties": {"action": {"const": d.name}}, "required": ["action"]},
                    "then": {"properties": {"params": {"$ref": format!("#/$defs/params_{}", d.name)}}}
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests;
