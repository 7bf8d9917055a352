//! Reading `cloakline-provenance/v1` records: the same nodes under `@graph`, without the
//! node kinds v2 adds, and with some snake_case members inside objects.

use serde_json::{Map, Value};

use crate::error::Problem;

/// The v2 layout of a v1 document. The format string stays v1, so readers can say so.
pub(super) fn v1_to_v2(doc: &Value) -> Result<Value, Problem> {
    let Value::Object(top) = doc else {
        return Err("the record is not a JSON object".into());
    };
    let mut out = Map::new();
    for (k, v) in top {
        match k.as_str() {
            "@graph" => {
                let Value::Array(nodes) = v else {
                    return Err("@graph is not a list".into());
                };
                out.insert(
                    "@included".into(),
                    Value::Array(nodes.iter().map(node).collect()),
                );
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out.entry("cl:runKind").or_insert_with(|| "apply".into());
    Ok(Value::Object(out))
}

fn node(n: &Value) -> Value {
    let Value::Object(m) = n else {
        return n.clone();
    };
    let mut m = m.clone();
    let types = super::types_of(n);
    let has = |t: &str| types.iter().any(|x| x == t);
    let added = if m.contains_key("cl:sourceColumn") {
        Some("cl:OutputField")
    } else if m.contains_key("cl:column") && !has("cl:Dataset") {
        Some("cl:InputField")
    } else {
        None
    };
    // v2 writes every node's @type as a list.
    let mut all: Vec<Value> = types.iter().map(|t| Value::String(t.clone())).collect();
    all.extend(added.map(Value::from));
    m.insert("@type".into(), Value::Array(all));
    if let Some(Value::Object(p)) = m.get_mut("cl:params") {
        *p = camel_keys(p, false);
    }
    for k in ["cl:achieved", "cl:beforeEnforcement"] {
        if let Some(Value::Object(a)) = m.get_mut(k) {
            *a = camel_keys(a, true);
        }
    }
    Value::Object(m)
}

/// The object with snake_case member names in camelCase (nested objects too when `deep`).
fn camel_keys(m: &Map<String, Value>, deep: bool) -> Map<String, Value> {
    m.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Object(inner) if deep => Value::Object(camel_keys(inner, true)),
                Value::Array(items) if deep => Value::Array(
                    items
                        .iter()
                        .map(|i| match i {
                            Value::Object(o) => Value::Object(camel_keys(o, true)),
                            other => other.clone(),
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
            (camel(k), v)
        })
        .collect()
}

/// `keep_first` → `keepFirst`.
pub fn camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::camel;

    #[test]
    fn camel_case_of_member_names() {
        assert_eq!(camel("keep_first"), "keepFirst");
        assert_eq!(camel("kdf_info"), "kdfInfo");
        assert_eq!(camel("keepFirst"), "keepFirst");
        assert_eq!(camel("records_below_k"), "recordsBelowK");
        assert_eq!(camel("k"), "k");
    }
}
