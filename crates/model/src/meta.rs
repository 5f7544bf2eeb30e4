//! The envelope every object shares: apiVersion, kind, metadata, spec, status.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationErrors};

/// The only API version this crate speaks.
pub const API_VERSION: &str = "weir/v1";

/// Longest allowed object name.
pub const MAX_NAME_LEN: usize = 63;

/// Checks a DNS-1123 label: lowercase letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63 characters. Returns the reason
/// when the name is not valid.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "must be at most {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "invalid character {c:?} in {name:?}: a name is lowercase letters, digits and '-' (DNS-1123 label)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} must start and end with a lowercase letter or digit (DNS-1123 label)"
        ));
    }
    Ok(())
}

/// JSON Schema pattern for names (DNS-1123 label).
pub const NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Label keys: letters, digits and `-_./`, starting and ending with a
/// letter or digit, at most 253 characters (`app.example/tier`).
pub const LABEL_KEY_PATTERN: &str = "^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$";
/// Label values: letters, digits and `-_.`, starting and ending with a
/// letter or digit, at most 63 characters, or empty.
pub const LABEL_VALUE_PATTERN: &str = "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$";

/// A label key inside a longer pattern (no anchors, length included).
pub const LABEL_KEY: &str = "[A-Za-z0-9]([-A-Za-z0-9_./]{0,251}[A-Za-z0-9])?";
/// A label value inside a longer pattern (no anchors, length included).
pub const LABEL_VALUE: &str = "([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?";

/// Checks one label; the reason when it is not valid.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let edge = |s: &str| {
        s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if key.len() > 253
        || !edge(key)
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
    {
        return Err(format!(
            "invalid label key {key:?}: 1 to 253 letters, digits and -_./, starting and ending with a letter or digit"
        ));
    }
    if value.len() > 63
        || !(value.is_empty()
            || (edge(value)
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))))
    {
        return Err(format!(
            "invalid label value {value:?}: at most 63 letters, digits and -_., starting and ending with a letter or digit, or empty"
        ));
    }
    Ok(())
}

fn labels_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": {"pattern": LABEL_KEY_PATTERN, "minLength": 1, "maxLength": 253},
        "additionalProperties": {"type": "string", "pattern": LABEL_VALUE_PATTERN, "maxLength": 63},
    })
}

/// A reference to another object by kind and name.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef {
            kind: kind.into(),
            name: name.into(),
        }
    }
    /// The object's store key, `/weir/v1/<kind-lowercase>/<name>`.
    pub fn key(&self) -> String {
        key(&self.kind, &self.name)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Store key prefix of a kind: `/weir/v1/<kind-lowercase>/`.
pub fn key_prefix(kind: &str) -> String {
    format!("/{API_VERSION}/{}/", kind.to_ascii_lowercase())
}

/// Store key of an object: `/weir/v1/<kind-lowercase>/<name>`.
pub fn key(kind: &str, name: &str) -> String {
    format!("{}{name}", key_prefix(kind))
}

/// Object metadata. `generation`, `revision` and `creationTimestamp` are
/// set by the server; anything written there by a client is overwritten.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// DNS-1123 label, at most 63 characters; unique per kind.
    #[schemars(pattern(NAME_PATTERN), length(min = 1, max = 63))]
    pub name: String,
    /// Labels for selection (`?labelSelector=`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "labels_schema")]
    pub labels: BTreeMap<String, String>,
    /// The gateway node this object is meant for; absent means every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(NAME_PATTERN), length(min = 1, max = 63))]
    pub node: Option<String>,
    /// Server-set: bumped on every spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Server-set: the store revision of the last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// Server-set: RFC 3339 time the object was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
}

impl ObjectMeta {
    pub fn named(name: impl Into<String>) -> Self {
        ObjectMeta {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Whether an object for `self.node` may land on the same gateway as
    /// one for `other.node` (absent = every node).
    pub fn shares_node_with(&self, other: &ObjectMeta) -> bool {
        match (&self.node, &other.node) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// Where the reconciler is with an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Applied to every driver.
    Configured,
    /// Waiting for the objects listed in `missing`.
    Pending,
    /// A driver refused it; retried with backoff.
    Failed,
    /// Rejected by validation; never applied.
    Invalid,
    /// Not yet seen by the reconciler.
    #[default]
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Configured => "configured",
            State::Pending => "pending",
            State::Failed => "failed",
            State::Invalid => "invalid",
            State::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Server-set status of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Status {
    #[serde(default)]
    pub state: State,
    /// Why the object is pending, failed or invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// References the object waits for (state pending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<ObjectRef>,
    /// How many times applying it has been tried since it last changed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// RFC 3339 time `state` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An object of any kind, with its spec as JSON. Obtained from
/// [`Registry::parse`](crate::Registry::parse), which has validated it; for
/// built-in kinds the spec is normalised (defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// A spec type tied to its kind name, so objects can be converted to it.
pub trait KindSpec: Serialize + DeserializeOwned {
    /// The kind's name, e.g. `Route`.
    const KIND: &'static str;
}

impl Object {
    /// A new `weir/v1` object from a typed spec.
    pub fn from_spec<S: KindSpec>(metadata: ObjectMeta, spec: &S) -> Object {
        Object {
            api_version: API_VERSION.to_string(),
            kind: S::KIND.to_string(),
            metadata,
            spec: serde_json::to_value(spec).expect("specs serialise to JSON"),
            status: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// This object's reference.
    pub fn reference(&self) -> ObjectRef {
        ObjectRef::new(&self.kind, &self.metadata.name)
    }

    /// Store key: `/weir/v1/<kind-lowercase>/<name>`.
    pub fn key(&self) -> String {
        key(&self.kind, &self.metadata.name)
    }

    /// The spec as its typed form. Fails if the kind differs or the spec
    /// does not fit the type.
    pub fn typed<S: KindSpec>(&self) -> Result<S, ValidationErrors> {
        if self.kind != S::KIND {
            return Err(ValidationError::new(
                &self.kind,
                &self.metadata.name,
                "kind",
                format!("expected kind {}, object is a {}", S::KIND, self.kind),
            )
            .into());
        }
        crate::registry::deserialize_spec::<S>(&self.spec).map_err(|(field, reason)| {
            ValidationError::new(&self.kind, &self.metadata.name, field, reason).into()
        })
    }

    /// State from the status, `unknown` when there is none.
    pub fn state(&self) -> State {
        self.status.as_ref().map(|s| s.state).unwrap_or_default()
    }

    /// Serialises as YAML.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("objects serialise to YAML")
    }

    /// Serialises as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("objects serialise to JSON")
    }
}

/// An object with its spec in typed form.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed<S> {
    pub metadata: ObjectMeta,
    pub spec: S,
    pub status: Option<Status>,
}

impl<S: KindSpec> TryFrom<&Object> for Typed<S> {
    type Error = ValidationErrors;
    fn try_from(o: &Object) -> Result<Self, ValidationErrors> {
        Ok(Typed {
            metadata: o.metadata.clone(),
            spec: o.typed()?,
            status: o.status.clone(),
        })
    }
}

impl<S: KindSpec> From<Typed<S>> for Object {
    fn from(t: Typed<S>) -> Object {
        let mut o = Object::from_spec(t.metadata, &t.spec);
        o.status = t.status;
        o
    }
}
