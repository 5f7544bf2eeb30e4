//! The registry of kinds: built-in typed kinds and kinds registered at run
//! time with only a JSON Schema, all parsed and validated the same way.

mod dynamic;
mod kind;
mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{ValidationError, ValidationErrors};
use crate::kinds::*;
use crate::meta::{check_name, Object, ObjectMeta, ObjectRef, State, Status, API_VERSION};

pub use dynamic::{parse_status, pointer_to_path, DynamicKind};
pub(crate) use kind::deserialize_spec;
pub use kind::{Kind, Spec, TypedKind};
use schema::object_schema;
pub use schema::{bound_integers, schema_of};

/// Why a kind could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid kind name {0:?}: {1}")]
    InvalidName(String, String),
    #[error("kind {0} is already registered")]
    AlreadyRegistered(String),
    #[error("kind {0} is built in and cannot be replaced or removed")]
    Builtin(String),
    #[error("kind {0}: invalid JSON Schema: {1}")]
    InvalidSchema(String, String),
    #[error("kind {0} is not registered")]
    NotFound(String),
}

fn check_kind_name(name: &str) -> Result<(), RegistryError> {
    let bad = |r: &str| Err(RegistryError::InvalidName(name.to_string(), r.to_string()));
    if name.is_empty() || name.len() > 63 {
        return bad("must be 1 to 63 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return bad("must start with an uppercase letter (PascalCase, like NatRule)");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return bad("must be letters and digits only (PascalCase, like NatRule)");
    }
    Ok(())
}

/// English plural of a kind name, lowercased (`Policy` -> `policies`).
pub fn plural_of(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy") {
        format!("{}ies", &k[..k.len() - 1])
    } else if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else {
        format!("{k}s")
    }
}

struct Entry {
    kind: Arc<dyn Kind>,
    schema: Value,
    /// The whole-object schema, compiled on first use (its patterns are
    /// large). A dynamic kind's spec schema may be of another draft and is
    /// checked by its own validator; the whole-object check is then left
    /// out (`None`).
    validator: std::sync::OnceLock<Option<jsonschema::Validator>>,
}

impl Entry {
    fn validator(&self) -> Option<&jsonschema::Validator> {
        self.validator
            .get_or_init(|| jsonschema::options().build(&self.schema).ok())
            .as_ref()
    }
}

/// Every kind weir understands. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, Arc<Entry>>,
    /// Names in registration order: the order conflicts are reported in.
    order: Vec<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The names of the built-in kinds, in dependency order.
pub const BUILTIN_KINDS: &[&str] = &[
    "Vpc",
    "Interface",
    "Subnet",
    "Route",
    "Peering",
    "NatRule",
    "RateLimit",
    "Vtep",
    "BgpRouter",
    "BgpNeighbor",
];

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with every built-in `weir/v1` kind.
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        r.add_typed::<VpcSpec>();
        r.add_typed::<InterfaceSpec>();
        r.add_typed::<SubnetSpec>();
        r.add_typed::<RouteSpec>();
        r.add_typed::<PeeringSpec>();
        r.add_typed::<NatRuleSpec>();
        r.add_typed::<RateLimitSpec>();
        r.add_typed::<VtepSpec>();
        r.add_typed::<BgpRouterSpec>();
        r.add_typed::<BgpNeighborSpec>();
        r
    }

    fn add_typed<S: Spec>(&mut self) {
        self.register(Arc::new(TypedKind::<S>::default()))
            .expect("built-in kinds are distinct");
    }

    /// Registers a kind given by a descriptor.
    pub fn register(&mut self, kind: Arc<dyn Kind>) -> Result<(), RegistryError> {
        let name = kind.name().to_string();
        check_kind_name(&name)?;
        if let Some(k) = self.lookup(&name).or_else(|| self.lookup(kind.plural())) {
            return Err(RegistryError::AlreadyRegistered(k.name().to_string()));
        }
        let schema = object_schema(kind.as_ref());
        self.order.push(name.clone());
        self.kinds.insert(
            name,
            Arc::new(Entry {
                kind,
                schema,
                validator: std::sync::OnceLock::new(),
            }),
        );
        Ok(())
    }

    /// Registers a kind announced at run time with the JSON Schema of its
    /// spec (any draft `jsonschema` understands; 2020-12 when unstated).
    pub fn register_dynamic(
        &mut self,
        name: &str,
        spec_schema: Value,
    ) -> Result<(), RegistryError> {
        self.register(Arc::new(DynamicKind::new(name, spec_schema)?))
    }

    /// Removes a kind registered at run time.
    pub fn unregister(&mut self, name: &str) -> Result<(), RegistryError> {
        match self.kinds.get(name) {
            None => Err(RegistryError::NotFound(name.to_string())),
            Some(e) if e.kind.builtin() => Err(RegistryError::Builtin(name.to_string())),
            Some(_) => {
                self.kinds.remove(name);
                self.order.retain(|n| n != name);
                Ok(())
            }
        }
    }

    /// The kind with exactly this name.
    pub fn get(&self, name: &str) -> Option<&dyn Kind> {
        self.kinds.get(name).map(|e| e.kind.as_ref())
    }

    /// Finds a kind by name, lowercase name or plural (`Route`, `route`,
    /// `routes`), as a CLI would accept.
    pub fn lookup(&self, word: &str) -> Option<&dyn Kind> {
        if let Some(k) = self.get(word) {
            return Some(k);
        }
        let w = word.to_ascii_lowercase();
        self.kinds
            .values()
            .find(|e| e.kind.name().to_ascii_lowercase() == w || e.kind.plural() == w)
            .map(|e| e.kind.as_ref())
    }

    /// Names of every registered kind.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    /// JSON Schema (draft 2020-12, self-contained) of a whole object of
    /// this kind: apiVersion, kind, metadata, spec and status.
    pub fn schema(&self, kind: &str) -> Option<&Value> {
        self.kinds.get(kind).map(|e| &e.schema)
    }

    /// JSON Schema of the kind's spec alone.
    pub fn spec_schema(&self, kind: &str) -> Option<&Value> {
        self.get(kind).map(|k| k.spec_schema())
    }

    /// Parses and validates one object (a YAML or JSON document already
    /// read into a JSON value). The spec of a built-in kind comes back
    /// normalised: defaults filled in.
    pub fn parse(&self, doc: &Value) -> Result<Object, ValidationErrors> {
        let Value::Object(map) = doc else {
            return Err(ValidationError::new(
                "",
                "",
                "",
                format!(
                    "expected a mapping with apiVersion, kind, metadata and spec, got {}",
                    type_name(doc)
                ),
            )
            .into());
        };
        let kind_name = map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut errs = ValidationErrors::new();
        let err =
            |field: &str, reason: String| ValidationError::new(&kind_name, &name, field, reason);

        for key in map.keys() {
            if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&key.as_str()) {
                errs.push(err(
                    key,
                    format!("unknown field `{key}`, expected one of apiVersion, kind, metadata, spec, status"),
                ));
            }
        }
        match map.get("apiVersion") {
            Some(Value::String(v)) if v == API_VERSION => {}
            Some(Value::String(v)) => errs.push(err(
                "apiVersion",
                format!("unsupported apiVersion {v:?}, expected {API_VERSION}"),
            )),
            Some(v) => errs.push(err(
                "apiVersion",
                format!("expected the string {API_VERSION}, got {}", type_name(v)),
            )),
            None => errs.push(err("apiVersion", format!("required: {API_VERSION}"))),
        }
        let kind = match map.get("kind") {
            Some(Value::String(k)) => match self.get(k) {
                Some(kind) => Some(kind),
                None => {
                    let hint = self
                        .lookup(k)
                        .map(|c| format!("; did you mean {}?", c.name()))
                        .unwrap_or_else(|| {
                            format!(
                                "; known kinds: {}",
                                self.kinds().collect::<Vec<_>>().join(", ")
                            )
                        });
                    errs.push(err("kind", format!("unknown kind {k:?}{hint}")));
                    None
                }
            },
            Some(v) => {
                errs.push(err(
                    "kind",
                    format!("expected a string, got {}", type_name(v)),
                ));
                None
            }
            None => {
                errs.push(err("kind", "required".into()));
                None
            }
        };
        let metadata = match map.get("metadata") {
            None => {
                errs.push(err("metadata", "required: at least metadata.name".into()));
                None
            }
            Some(m) => match serde_path_to_error::deserialize::<_, ObjectMeta>(m) {
                Err(e) => {
                    let p = e.path().to_string();
                    let field = if p == "." {
                        "metadata".into()
                    } else {
                        format!("metadata.{p}")
                    };
                    errs.push(err(&field, e.into_inner().to_string()));
                    None
                }
                Ok(meta) => {
                    if let Err(r) = check_name(&meta.name) {
                        errs.push(err("metadata.name", r));
                    }
                    if let Some(n) = &meta.node {
                        if let Err(r) = check_name(n) {
                            errs.push(err("metadata.node", r));
                        }
                    }
                    for (k, v) in &meta.labels {
                        if let Err(r) = crate::meta::check_label(k, v) {
                            errs.push(err(&format!("metadata.labels.{k}"), r));
                        }
                    }
                    Some(meta)
                }
            },
        };
        let status = match map.get("status") {
            None | Some(Value::Null) => None,
            Some(s) => match serde_path_to_error::deserialize::<_, Status>(s) {
                Ok(s) => Some(s),
                Err(e) => {
                    let p = e.path().to_string();
                    let field = if p == "." {
                        "status".into()
                    } else {
                        format!("status.{p}")
                    };
                    errs.push(err(&field, e.into_inner().to_string()));
                    None
                }
            },
        };
        let empty = Value::Object(Map::new());
        let raw_spec = match map.get("spec") {
            None | Some(Value::Null) => &empty,
            Some(s) => s,
        };
        let spec = match kind {
            Some(kind) => match kind.parse_spec(raw_spec) {
                Ok(s) => Some(s),
                Err(list) => {
                    for (path, reason) in list.list {
                        let field = if path.is_empty() {
                            "spec".into()
                        } else {
                            format!("spec.{path}")
                        };
                        errs.push(err(&field, reason));
                    }
                    None
                }
            },
            None => None,
        };
        // Last, the kind's JSON Schema as the OpenAPI document gives it:
        // what deserialising lets through (a struct written as a list, say)
        // is refused here, so the server never accepts what the schema
        // does not.
        if errs.is_empty() {
            if let Some(v) = kind.and_then(|k| self.kinds.get(k.name())?.validator()) {
                for e in v.iter_errors(doc) {
                    let field = pointer_to_path(e.instance_path().as_str());
                    errs.push(err(&field, e.to_string()));
                }
            }
        }
        match (errs.is_empty(), kind, metadata, spec) {
            (true, Some(kind), Some(metadata), Some(spec)) => Ok(Object {
                api_version: API_VERSION.to_string(),
                kind: kind.name().to_string(),
                metadata,
                spec,
                status,
            }),
            _ => Err(errs),
        }
    }

    /// Parses every object in a YAML (or JSON) text: several documents
    /// separated by `---`, or a sequence of objects. Errors from every
    /// document are collected.
    pub fn parse_yaml(&self, text: &str) -> Result<Vec<Object>, ValidationErrors> {
        let docs = crate::yaml::documents(text)?;
        let mut out = Vec::new();
        let mut errs = ValidationErrors::new();
        for d in &docs {
            match self.parse(d) {
                Ok(o) => out.push(o),
                Err(e) => errs.extend(e),
            }
        }
        errs.into_result().map(|_| out)
    }

    /// Parses one object from a JSON text.
    pub fn parse_json(&self, text: &str) -> Result<Object, ValidationErrors> {
        let v: Value = crate::yaml::json_value(text.as_bytes())
            .map_err(|e| ValidationErrors::from(ValidationError::new("", "", e.field, e.reason)))?;
        self.parse(&v)
    }

    /// Re-validates an object (e.g. one read back from the store).
    pub fn validate(&self, object: &Object) -> Result<(), ValidationErrors> {
        let v = serde_json::to_value(object).expect("objects serialise to JSON");
        self.parse(&v).map(|_| ())
    }

    /// Validates single objects and then the set as a whole (the state
    /// after a transaction): see [`crate::cross::validate_set`].
    pub fn validate_set(&self, objects: &[Object]) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::new();
        for o in objects {
            if let Err(e) = self.validate(o) {
                errs.extend(e);
            }
        }
        errs.extend(self.conflicts(objects));
        errs.into_result()
    }

    /// Names of every registered kind, in registration order.
    pub fn in_order(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Every cross-object problem in `objects` (the state after a
    /// transaction): duplicate names, then each kind's own checks.
    pub fn conflicts(&self, objects: &[Object]) -> Vec<ValidationError> {
        let mut errs = crate::cross::duplicate_names(objects);
        for name in &self.order {
            self.kinds[name].kind.conflicts(objects, &mut errs);
        }
        errs
    }

    /// The kinds whose objects can take part in a cross-object error about
    /// an object of `kind`: its own, those its checks read, and those whose
    /// checks read it. Derived from what each kind declares, so a write
    /// validates against exactly these (`None`: not a registered kind).
    pub fn related(&self, kind: &str) -> Option<std::collections::BTreeSet<&str>> {
        let k = self.get(kind)?;
        let mut out: std::collections::BTreeSet<&str> = k.reads().iter().copied().collect();
        out.insert(self.kinds.get_key_value(kind)?.0.as_str());
        for (name, e) in &self.kinds {
            if e.kind.reads().contains(&kind) {
                out.insert(name.as_str());
            }
        }
        Some(out)
    }

    /// The [`Spec::conflict_group`] of an object.
    pub fn conflict_group(&self, object: &Object) -> Option<String> {
        self.get(&object.kind)?.conflict_group(&object.spec)
    }

    /// Objects `object` depends on.
    pub fn references(&self, object: &Object) -> Vec<ObjectRef> {
        self.get(&object.kind)
            .map(|k| k.references(&object.spec))
            .unwrap_or_default()
    }

    /// `weir get` table header for a kind: NAME, the kind's columns, STATE.
    pub fn columns(&self, kind: &str) -> Vec<String> {
        let mut c = vec!["NAME".to_string()];
        if let Some(k) = self.lookup(kind) {
            c.extend(k.columns());
        }
        c.push("STATE".into());
        c
    }

    /// `weir get` table row for an object, matching [`Registry::columns`].
    pub fn row(&self, object: &Object) -> Vec<String> {
        let mut r = vec![object.metadata.name.clone()];
        if let Some(k) = self.get(&object.kind) {
            r.extend(k.row(&object.spec));
        }
        r.push(
            object
                .status
                .as_ref()
                .map(|s| s.state)
                .unwrap_or(State::Unknown)
                .to_string(),
        );
        r
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
