//! JSON Schemas of specs and whole objects, generated from the types.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};

use super::*;
use crate::meta::{ObjectMeta, Status, API_VERSION};

fn generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator()
}

/// JSON Schema of a Rust type, self-contained (no `$ref`). Integers get
/// the bounds of their Rust type (see [`bound_integers`]).
pub fn schema_of<T: JsonSchema>() -> Value {
    let mut v =
        serde_json::to_value(generator().into_root_schema_for::<T>()).expect("schema is JSON");
    bound_integers(&mut v);
    v
}

/// Gives every integer schema with a Rust `format` (`uint16`, `int64`,
/// ...) the range of that type where no narrower one is set, so the
/// schema refuses exactly the numbers deserialising would.
pub fn bound_integers(schema: &mut Value) {
    match schema {
        Value::Object(m) => {
            let range: Option<(i128, i128)> = match m.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, u8::MAX.into())),
                Some("uint16") => Some((0, u16::MAX.into())),
                Some("uint32") => Some((0, u32::MAX.into())),
                Some("uint64" | "uint") => Some((0, u64::MAX.into())),
                Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64" | "int") => Some((i64::MIN.into(), i64::MAX.into())),
                _ => None,
            };
            if let Some((lo, hi)) = range {
                let num = |n: i128| match u64::try_from(n) {
                    Ok(u) => Value::from(u),
                    Err(_) => Value::from(n as i64),
                };
                let lo_set = m.get("minimum").and_then(Value::as_f64);
                if lo_set.is_none_or(|x| x < lo as f64) {
                    m.insert("minimum".into(), num(lo));
                }
                let hi_set = m.get("maximum").and_then(Value::as_f64);
                if hi_set.is_none_or(|x| x > hi as f64) {
                    m.insert("maximum".into(), num(hi));
                }
            }
            for v in m.values_mut() {
                bound_integers(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// JSON Schema of a whole object of `kind`.
pub(super) fn object_schema(kind: &dyn Kind) -> Value {
    let mut spec = kind.spec_schema().clone();
    if let Value::Object(m) = &mut spec {
        m.remove("$schema");
    }
    let spec_required = spec
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    let mut required = vec!["apiVersion", "kind", "metadata"];
    if spec_required {
        required.push("spec");
    }
    let mut meta = schema_of::<ObjectMeta>();
    let mut status = schema_of::<Status>();
    for s in [&mut meta, &mut status] {
        if let Value::Object(m) = s {
            m.remove("$schema");
        }
    }
    // `parse` reads a null status as none, and a null spec as an empty
    // one (which only passes when no spec field is required).
    let nullable: Vec<&mut Value> = if spec_required {
        vec![&mut status]
    } else {
        vec![&mut spec, &mut status]
    };
    for s in nullable {
        if let Value::Object(m) = s {
            if m.get("type") == Some(&json!("object")) {
                m.insert("type".into(), json!(["object", "null"]));
            }
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": kind.name(),
        "description": format!("A {API_VERSION} {} object.", kind.name()),
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": {
            "apiVersion": {"type": "string", "const": API_VERSION},
            "kind": {"type": "string", "const": kind.name()},
            "metadata": meta,
            "spec": spec,
            "status": status,
        }
    })
}
