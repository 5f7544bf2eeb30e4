//! What a kind is to the registry: the `Spec` and `Kind` traits, and
//! `TypedKind`, a built-in kind made from its typed spec.

use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;
use crate::cross::ObjectSet;
use crate::error::{Errors, ValidationError};
use crate::meta::{KindSpec, Object, ObjectRef};

/// A typed built-in spec: validation, defaults, references and table row.
pub trait Spec: KindSpec + JsonSchema + Clone + Send + Sync + 'static {
    /// Lowercase plural used by the API and CLI (`routes`).
    const PLURAL: &'static str;
    /// `weir get` columns between NAME and STATE.
    const COLUMNS: &'static [&'static str];
    /// Single-object checks; paths are relative to the spec.
    fn validate(&self, errors: &mut Errors);
    /// Fills in defaults that depend on other fields (after validation).
    fn normalize(&mut self) {}
    /// Objects this one depends on.
    fn references(&self) -> Vec<ObjectRef> {
        Vec::new()
    }
    /// Values for [`Spec::COLUMNS`].
    fn row(&self) -> Vec<String>;
    /// Kinds, besides its own, whose objects [`Spec::conflicts`] reads.
    /// The API gives a write's check only the objects of these kinds, so
    /// reading another kind without declaring it is a bug (caught in
    /// debug builds by [`ObjectSet::of`]).
    const READS: &'static [&'static str] = &[];
    /// Conflicts between objects of this kind, or with the kinds it reads
    /// (two Subnets that overlap): the state after a transaction.
    fn conflicts(_set: &ObjectSet<'_>, _errors: &mut Vec<ValidationError>) {}
    /// Objects of this kind conflict with their own kind only within the
    /// same group (a Route with routes of its VPC, network and distance),
    /// so a write checks only its group. `None`: one group for the kind.
    fn conflict_group(&self) -> Option<String> {
        None
    }
}

/// What the registry knows about a kind. Built-in kinds implement it
/// through [`TypedKind`]; kinds announced by modules through
/// [`DynamicKind`]. Paths in errors are relative to the spec.
pub trait Kind: Send + Sync {
    /// PascalCase kind name (`Route`).
    fn name(&self) -> &str;
    /// Lowercase plural (`routes`).
    fn plural(&self) -> &str;
    /// Store key prefix, `/weir/v1/<kind-lowercase>/`.
    fn key_prefix(&self) -> String {
        crate::meta::key_prefix(self.name())
    }
    /// JSON Schema (draft 2020-12, self-contained) of the spec.
    fn spec_schema(&self) -> &Value;
    /// Parses and validates a spec; returns it normalised.
    fn parse_spec(&self, spec: &Value) -> Result<Value, Errors>;
    /// References to other objects in an (already parsed) spec.
    fn references(&self, _spec: &Value) -> Vec<ObjectRef> {
        Vec::new()
    }
    /// `weir get` columns between NAME and STATE.
    fn columns(&self) -> Vec<String> {
        Vec::new()
    }
    /// Values for [`Kind::columns`] from an (already parsed) spec.
    fn row(&self, _spec: &Value) -> Vec<String> {
        Vec::new()
    }
    /// Whether the kind is compiled into weir (not registered at run time).
    fn builtin(&self) -> bool {
        false
    }
    /// Kinds, besides its own, that [`Kind::conflicts`] reads.
    fn reads(&self) -> &[&'static str] {
        &[]
    }
    /// Cross-object errors naming objects of this kind in `objects`.
    fn conflicts(&self, _objects: &[Object], _errors: &mut Vec<ValidationError>) {}
    /// See [`Spec::conflict_group`].
    fn conflict_group(&self, _spec: &Value) -> Option<String> {
        None
    }
}

/// Deserialises a spec, reporting the path of the first field that does
/// not fit (relative to the spec).
pub(crate) fn deserialize_spec<S: DeserializeOwned>(spec: &Value) -> Result<S, (String, String)> {
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." {
            "spec".to_string()
        } else {
            format!("spec.{path}")
        };
        (field, inner)
    })
}

/// A built-in kind backed by a Rust spec type.
pub struct TypedKind<S: Spec> {
    schema: Value,
    _spec: PhantomData<fn() -> S>,
}

impl<S: Spec> Default for TypedKind<S> {
    fn default() -> Self {
        TypedKind {
            schema: schema_of::<S>(),
            _spec: PhantomData,
        }
    }
}

impl<S: Spec> Kind for TypedKind<S> {
    fn name(&self) -> &str {
        S::KIND
    }
    fn plural(&self) -> &str {
        S::PLURAL
    }
    fn spec_schema(&self) -> &Value {
        &self.schema
    }
    fn parse_spec(&self, spec: &Value) -> Result<Value, Errors> {
        let mut errors = Errors::new();
        let mut typed: S = match deserialize_spec(spec) {
            Ok(s) => s,
            Err((field, reason)) => {
                let rel = field.strip_prefix("spec").unwrap_or(&field);
                errors.at(rel.strip_prefix('.').unwrap_or(rel), reason);
                return Err(errors);
            }
        };
        typed.validate(&mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        typed.normalize();
        Ok(serde_json::to_value(&typed).expect("specs serialise to JSON"))
    }
    fn references(&self, spec: &Value) -> Vec<ObjectRef> {
        deserialize_spec::<S>(spec)
            .map(|s| s.references())
            .unwrap_or_default()
    }
    fn columns(&self) -> Vec<String> {
        S::COLUMNS.iter().map(|c| c.to_string()).collect()
    }
    fn row(&self, spec: &Value) -> Vec<String> {
        match deserialize_spec::<S>(spec) {
            Ok(s) => s.row(),
            Err(_) => vec!["?".into(); S::COLUMNS.len()],
        }
    }
    fn builtin(&self) -> bool {
        true
    }
    fn reads(&self) -> &[&'static str] {
        S::READS
    }
    fn conflicts(&self, objects: &[Object], errors: &mut Vec<ValidationError>) {
        S::conflicts(&ObjectSet::new(objects, S::KIND, S::READS), errors);
    }
    fn conflict_group(&self, spec: &Value) -> Option<String> {
        deserialize_spec::<S>(spec).ok()?.conflict_group()
    }
}
