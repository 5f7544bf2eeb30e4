//! What a kind plugs into the engine: one [`Descriptor`] per kind.

use std::fmt;

/// Something a value needs configured before it can be applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// This exact key.
    Key(String),
    /// Any key that starts with this prefix (other than the value's own).
    AnyOf(String),
}

impl Dependency {
    pub fn key(key: impl Into<String>) -> Self {
        Dependency::Key(key.into())
    }

    pub fn any_of(prefix: impl Into<String>) -> Self {
        Dependency::AnyOf(prefix.into())
    }

    /// How the dependency is named in [`crate::State::Pending`]: the key, or
    /// the prefix followed by `*`.
    pub fn label(&self) -> String {
        match self {
            Dependency::Key(key) => key.clone(),
            Dependency::AnyOf(prefix) => format!("{prefix}*"),
        }
    }
}

/// A failed create, update, delete or retrieve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyError {
    pub message: String,
    /// Worth trying again later with no change (a transient error); if not,
    /// the value is Failed at once.
    pub retriable: bool,
}

impl ApplyError {
    pub fn retriable(message: impl Into<String>) -> Self {
        ApplyError {
            message: message.into(),
            retriable: true,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        ApplyError {
            message: message.into(),
            retriable: false,
        }
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApplyError {}

/// One kind of value: how to check it, put it into the target, take it out
/// and read it back.
///
/// The engine sends a key to the descriptor with the longest
/// [`key_prefix`](Descriptor::key_prefix) the key starts with. It calls
/// `create`, `update` and `delete` only when the value is valid and every
/// [`dependencies`](Descriptor::dependencies) entry is configured, so a
/// descriptor never sees a value before what it needs.
pub trait Descriptor<V>: Send {
    /// A short name for logs and the graph (`route`, `interface`).
    fn name(&self) -> &str;

    /// Keys this descriptor handles (`/weir/v1/route/`).
    fn key_prefix(&self) -> &str;

    /// Checks a value on its own. An invalid value is never applied; its
    /// state is [`crate::State::Invalid`] with this reason.
    fn validate(&self, _key: &str, _value: &V) -> Result<(), String> {
        Ok(())
    }

    fn create(&mut self, key: &str, value: &V) -> Result<(), ApplyError>;

    /// Changes a value in place. Called only when
    /// [`needs_recreate`](Descriptor::needs_recreate) returns false, so a
    /// descriptor that implements `update` also overrides `needs_recreate`.
    fn update(&mut self, key: &str, _old: &V, _new: &V) -> Result<(), ApplyError> {
        Err(ApplyError::fatal(format!("{key}: update not supported")))
    }

    /// Whether going from `old` to `new` takes a delete and a create (and so
    /// takes the value's dependents out of the target meanwhile) rather than
    /// an update. The default, true, suits kinds with no `update`.
    fn needs_recreate(&self, _key: &str, _old: &V, _new: &V) -> bool {
        true
    }

    fn delete(&mut self, key: &str, value: &V) -> Result<(), ApplyError>;

    /// What exists in the target right now under this descriptor's prefix
    /// (including derived values it handles), for resync. `Ok(None)`: this
    /// kind cannot be read back, and resync trusts the engine's record.
    fn retrieve(&mut self) -> Result<Option<Vec<(String, V)>>, ApplyError> {
        Ok(None)
    }

    /// What the value needs configured first. May be called with a value
    /// that fails [`validate`](Descriptor::validate).
    fn dependencies(&self, _key: &str, _value: &V) -> Vec<Dependency> {
        Vec::new()
    }

    /// Values that exist because this one does (an interface's addresses).
    /// Each is handled by the descriptor of its own key, created once this
    /// value is configured and removed before it. A derived key that no
    /// descriptor handles is a property: configured with its parent, with no
    /// calls, so other values can depend on it.
    fn derived(&self, _key: &str, _value: &V) -> Vec<(String, V)> {
        Vec::new()
    }
}
