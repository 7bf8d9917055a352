//! Transforms added from outside the crate: one type implementing [`CustomTransform`] and
//! one call to [`register`] make it a policy action, a SQL function (and a column of the
//! policy view), a provenance entry, a report row, an OpenLineage transformation and a part of
//! `cloakline schema`.
//!
//! The built-in transforms are matched directly (their kernels are specialised per Arrow
//! type); a registered transform goes through the same plan, engine, SQL and provenance code
//! behind this trait.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::RwLock;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use serde_json::{Map, Value};

use super::KernelError;
use super::descriptor::{TRANSFORMS, Transform};
use crate::error::Problem;

/// The parameters of one use of a transform, as written under the rule's `params:`.
pub type Params = BTreeMap<String, Value>;

/// JSON type of a parameter, checked before [`CustomTransform::kernel`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
}

impl ParamType {
    /// The JSON Schema `type`.
    pub fn json_type(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            ParamType::String => v.is_string(),
            ParamType::Integer => v.is_i64() || v.is_u64(),
            ParamType::Number => v.is_number(),
            ParamType::Boolean => v.is_boolean(),
        }
    }
}

/// One parameter a transform takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamType,
    pub required: bool,
    /// Shown in `cloakline schema` and in errors.
    pub description: &'static str,
    /// Recorded in provenance (false for anything secret).
    pub recorded: bool,
}

impl Param {
    /// An optional, recorded parameter.
    pub const fn new(name: &'static str, kind: ParamType, description: &'static str) -> Param {
        Param {
            name,
            kind,
            required: false,
            description,
            recorded: true,
        }
    }

    #[must_use]
    pub const fn required(mut self) -> Param {
        self.required = true;
        self
    }

    /// Keep it out of provenance and reports.
    #[must_use]
    pub const fn secret(mut self) -> Param {
        self.recorded = false;
        self
    }
}

/// A transform built for one column: applied to array after array.
pub trait CustomKernel: Send + Sync + Debug {
    /// Transform one array (nulls stay null). Errors must not quote values.
    fn apply(&self, input: &ArrayRef) -> Result<ArrayRef, KernelError>;
}

/// Everything about a transform defined outside the crate.
pub trait CustomTransform: Send + Sync + Debug {
    /// Name, flags, provenance status and note, DPV measures, OpenLineage subtype and SQL
    /// exposure (see [`Transform::new`]).
    fn descriptor(&self) -> &'static Transform;

    /// The parameters it takes; others are refused.
    fn parameters(&self) -> &'static [Param] {
        &[]
    }

    /// The output type for an input column type, or why the type is refused.
    fn output_type(&self, input: &DataType) -> Result<DataType, Problem>;

    /// Build the kernel for a column of type `input` (parameters already type-checked).
    fn kernel(&self, params: &Params, input: &DataType) -> Result<Box<dyn CustomKernel>, Problem>;
}

static REGISTRY: RwLock<Vec<&'static dyn CustomTransform>> = RwLock::new(Vec::new());

/// Add a transform everywhere (policy, plan, SQL, provenance, report, OpenLineage, schema).
/// Refuses a name that is taken or that is not a lowercase identifier.
pub fn register<T: CustomTransform + 'static>(transform: T) -> Result<(), Problem> {
    let name = transform.descriptor().name;
    let ok_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !ok_name {
        return Err(Problem(format!(
            "transform name {name:?}: use lowercase letters, digits and `_`, starting with a letter"
        )));
    }
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if TRANSFORMS.iter().any(|t| t.name == name) || reg.iter().any(|t| t.descriptor().name == name)
    {
        return Err(Problem(format!(
            "a transform named `{name}` is already registered"
        )));
    }
    // Registered transforms live as long as the process, like the built-in ones.
    reg.push(Box::leak(Box::new(transform)));
    Ok(())
}

/// The registered transform of this name.
pub fn custom(name: &str) -> Option<&'static dyn CustomTransform> {
    let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    reg.iter().copied().find(|t| t.descriptor().name == name)
}

/// Every registered transform, in registration order.
pub fn customs() -> Vec<&'static dyn CustomTransform> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Check `params` against the declared parameters: unknown, missing and mistyped ones are
/// refused, naming the parameter (never its value).
pub fn check_params(t: &dyn CustomTransform, params: &Params) -> Result<(), Problem> {
    let name = t.descriptor().name;
    let declared = t.parameters();
    for k in params.keys() {
        if !declared.iter().any(|p| p.name == k) {
            let list: Vec<&str> = declared.iter().map(|p| p.name).collect();
            return Err(Problem(format!(
                "`{k}` is not a parameter of `{name}`{}",
                if list.is_empty() {
                    " (it takes none)".to_string()
                } else {
                    format!(" (it takes: {})", list.join(", "))
                }
            )));
        }
    }
    for p in declared {
        match params.get(p.name) {
            None if p.required => {
                return Err(Problem(format!(
                    "`{name}` needs `params: {{ {}: … }}`",
                    p.name
                )));
            }
            Some(v) if !p.kind.accepts(v) => {
                return Err(Problem(format!(
                    "`{}` of `{name}` must be a {}",
                    p.name,
                    p.kind.json_type()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The parameters recorded in provenance.
pub fn recorded_params(t: &dyn CustomTransform, params: &Params) -> Map<String, Value> {
    params
        .iter()
        .filter(|(k, _)| t.parameters().iter().any(|p| p.name == *k && p.recorded))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The JSON Schema of a transform's `params:` object.
pub fn params_schema(t: &dyn CustomTransform) -> Value {
    let properties: Map<String, Value> = t
        .parameters()
        .iter()
        .map(|p| {
            (
                p.name.to_string(),
                serde_json::json!({"type": p.kind.json_type(), "description": p.description}),
            )
        })
        .collect();
    let required: Vec<&str> = t
        .parameters()
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}
