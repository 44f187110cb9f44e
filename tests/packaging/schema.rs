//! Checks a custom object against a CRD's structural openAPIV3Schema the way the API server
//! would before pruning: unknown fields (which the server would silently drop), types, enums,
//! bounds and required fields. Understands the keywords structural schemas use: `type`,
//! `properties`, `additionalProperties`, `items`, `required`, `enum`, `minimum`/`maximum`,
//! `minLength`/`maxLength`, `nullable`, `anyOf`/`oneOf`/`allOf`,
//! `x-kubernetes-int-or-string` and `x-kubernetes-preserve-unknown-fields`.

use serde_json::Value;

/// Every problem found in `object`'s fields other than `apiVersion`, `kind` and `metadata`
/// (which the API server checks itself), each starting with the field's path.
pub fn check(object: &Value, schema: &Value) -> Vec<String> {
    let mut body = object.clone();
    if let Some(fields) = body.as_object_mut() {
        for key in ["apiVersion", "kind", "metadata"] {
            fields.remove(key);
        }
    }
    let mut schema = schema.clone();
    if let Some(properties) = schema["properties"].as_object_mut() {
        for key in ["apiVersion", "kind", "metadata"] {
            properties.remove(key);
        }
    }
    let mut problems = Vec::new();
    walk(&body, &schema, "", &mut problems);
    problems
}

fn walk(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "." } else { path };
    if value.is_null() {
        if schema["nullable"] != true {
            problems.push(format!("{at}: null is not allowed"));
        }
        return;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema[key].as_array() {
            let fits = branches.iter().any(|b| {
                let mut p = Vec::new();
                walk(value, b, path, &mut p);
                p.is_empty()
            });
            if !fits {
                problems.push(format!("{at}: fits none of the {key} branches"));
            }
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        for branch in all {
            walk(value, branch, path, problems);
        }
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            problems.push(format!("{at}: want an integer or a string, got {value}"));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    match schema["type"].as_str() {
        Some("object") => object(value, schema, path, problems),
        Some("array") => match value.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &schema["items"], &format!("{path}[{i}]"), problems);
                }
            }
            None => problems.push(format!("{at}: want an array, got {value}")),
        },
        Some("string") => match value.as_str() {
            Some(s) => {
                let len = s.chars().count() as u64;
                if schema["minLength"].as_u64().is_some_and(|m| len < m) {
                    problems.push(format!("{at}: shorter than minLength"));
                }
                if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
                    problems.push(format!("{at}: longer than maxLength"));
                }
            }
            None => problems.push(format!("{at}: want a string, got {value}")),
        },
        Some("integer") => match value.as_i64() {
            Some(n) => bounds(n as f64, schema, at, problems),
            None => problems.push(format!("{at}: want an integer, got {value}")),
        },
        Some("number") => match value.as_f64() {
            Some(n) => bounds(n, schema, at, problems),
            None => problems.push(format!("{at}: want a number, got {value}")),
        },
        Some("boolean") if !value.is_boolean() => {
            problems.push(format!("{at}: want a boolean, got {value}"));
        }
        Some("boolean") => {}
        Some(other) => problems.push(format!("{at}: schema type {other} is not understood")),
        None => {}
    }
}

fn bounds(n: f64, schema: &Value, at: &str, problems: &mut Vec<String>) {
    if schema["minimum"].as_f64().is_some_and(|m| n < m) {
        problems.push(format!(
            "{at}: {n} is below the minimum {}",
            schema["minimum"]
        ));
    }
    if schema["maximum"].as_f64().is_some_and(|m| n > m) {
        problems.push(format!(
            "{at}: {n} is above the maximum {}",
            schema["maximum"]
        ));
    }
}

fn object(value: &Value, schema: &Value, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "." } else { path };
    let Some(fields) = value.as_object() else {
        problems.push(format!("{at}: want an object, got {value}"));
        return;
    };
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap_or_default();
        if !fields.contains_key(name) {
            problems.push(format!("{path}.{name}: required"));
        }
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    for (name, field) in fields {
        let here = format!("{path}.{name}");
        if let Some(sub) = schema["properties"].get(name) {
            walk(field, sub, &here, problems);
        } else if schema["additionalProperties"].is_object() {
            walk(field, &schema["additionalProperties"], &here, problems);
        } else if !preserve && schema["additionalProperties"] != true {
            problems.push(format!(
                "{here}: unknown field (the API server would drop it)"
            ));
        }
    }
}
