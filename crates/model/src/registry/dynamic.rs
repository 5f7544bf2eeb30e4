//! Kinds registered at run time with only a JSON Schema.

use serde_json::Value;

use super::*;
use crate::error::{Errors, ValidationError, ValidationErrors};
use crate::meta::{ObjectRef, Status};

/// A kind registered at run time by an external module, described only by
/// the JSON Schema of its spec.
///
/// The schema may carry `"x-weir-columns": [{"name": "VNI", "path": "/vni"}]`
/// (JSON pointers into the spec) for `weir get` tables, and
/// `"x-weir-references": [{"kind": "Vpc", "path": "/vpc"}]` for the
/// objects a spec depends on.
pub struct DynamicKind {
    name: String,
    plural: String,
    schema: Value,
    validator: jsonschema::Validator,
}

impl DynamicKind {
    pub fn new(name: &str, schema: Value) -> Result<Self, RegistryError> {
        check_kind_name(name)?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| RegistryError::InvalidSchema(name.to_string(), e.to_string()))?;
        Ok(DynamicKind {
            name: name.to_string(),
            plural: plural_of(name),
            schema,
            validator,
        })
    }

    fn pointers(&self, ext: &str) -> Vec<(String, String)> {
        let Some(Value::Array(list)) = self.schema.get(ext) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|c| {
                let a = c.get("name").or_else(|| c.get("kind"))?.as_str()?;
                let p = c.get("path")?.as_str()?;
                Some((a.to_string(), p.to_string()))
            })
            .collect()
    }
}

/// Reads an object's status (as the agent writes it), refusing what its
/// JSON Schema refuses.
pub fn parse_status(v: &Value) -> Result<Status, ValidationErrors> {
    static SCHEMA: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
        jsonschema::options()
            .build(&schema_of::<Status>())
            .expect("the Status schema compiles")
    });
    let field = |p: String| {
        if p.is_empty() || p == "." {
            "status".to_string()
        } else {
            format!("status.{p}")
        }
    };
    // serde first, for its clearer words; the schema catches the rest.
    let status = serde_path_to_error::deserialize::<_, Status>(v).map_err(|e| {
        ValidationError::new(
            "",
            "",
            field(e.path().to_string()),
            e.into_inner().to_string(),
        )
    })?;
    if let Some(e) = SCHEMA.iter_errors(v).next() {
        let p = pointer_to_path(e.instance_path().as_str());
        return Err(ValidationError::new("", "", field(p), e.to_string()).into());
    }
    Ok(status)
}

/// Converts a JSON pointer (`/nextHops/0/address`) to a dotted path
/// (`nextHops[0].address`).
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

impl Kind for DynamicKind {
    fn name(&self) -> &str {
        &self.name
    }
    fn plural(&self) -> &str {
        &self.plural
    }
    fn spec_schema(&self) -> &Value {
        &self.schema
    }
    fn parse_spec(&self, spec: &Value) -> Result<Value, Errors> {
        let mut errors = Errors::new();
        for e in self.validator.iter_errors(spec) {
            errors.at(pointer_to_path(e.instance_path().as_str()), e.to_string());
        }
        if errors.is_empty() {
            Ok(spec.clone())
        } else {
            Err(errors)
        }
    }
    fn references(&self, spec: &Value) -> Vec<ObjectRef> {
        self.pointers("x-weir-references")
            .into_iter()
            .filter_map(|(kind, p)| {
                let name = spec.pointer(&p)?.as_str()?;
                Some(ObjectRef::new(kind, name))
            })
            .collect()
    }
    fn columns(&self) -> Vec<String> {
        self.pointers("x-weir-columns")
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }
    fn row(&self, spec: &Value) -> Vec<String> {
        self.pointers("x-weir-columns")
            .into_iter()
            .map(|(_, p)| match spec.pointer(&p) {
                None | Some(Value::Null) => "-".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            })
            .collect()
    }
}
