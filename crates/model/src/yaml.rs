//! Reading YAML (and JSON, a subset of it) into JSON values.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ValidationError, ValidationErrors};

/// Splits a YAML text into its documents as JSON values. Empty documents
/// are skipped; a document that is a sequence contributes its items (so a
/// JSON array of objects works too).
pub fn documents(text: &str) -> Result<Vec<Value>, ValidationErrors> {
    let mut out = Vec::new();
    let mut errs = ValidationErrors::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(Value::Array(items)) => out.extend(items),
            Ok(v) => out.push(v),
            Err(e) => {
                errs.push(ValidationError::new(
                    "",
                    "",
                    "",
                    format!("document {}: invalid YAML: {e}", i + 1),
                ));
                // After a syntax error the stream cannot be resynchronised.
                break;
            }
        }
    }
    errs.into_result().map(|_| out)
}
