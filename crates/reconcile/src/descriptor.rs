//! What a kind plugs into the engine: one [`Descriptor`] per kind.

use std::any::Any;
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
///
/// What `create` returns (the port a value got, the table entries it added)
/// is the value's [`Metadata`](Descriptor::Metadata): the engine keeps it
/// with the value and hands it to `update` and `delete`, so a descriptor
/// keeps no per-value record of its own (as Ligato's KVScheduler does).
pub trait Descriptor<V>: Send {
    /// What the engine keeps per applied value for this descriptor.
    type Metadata: Send + 'static;

    /// A short name for logs and the graph (`route`, `interface`).
    fn name(&self) -> &str;

    /// Keys this descriptor handles (`/weir/v1/route/`).
    fn key_prefix(&self) -> &str;

    /// Checks a value on its own. An invalid value is never applied; its
    /// state is [`crate::State::Invalid`] with this reason.
    fn validate(&self, _key: &str, _value: &V) -> Result<(), String> {
        Ok(())
    }

    fn create(&mut self, key: &str, value: &V) -> Result<Self::Metadata, ApplyError>;

    /// Changes a value in place, and its metadata with it. Called only when
    /// [`needs_recreate`](Descriptor::needs_recreate) returns false, so a
    /// descriptor that implements `update` also overrides `needs_recreate`.
    fn update(
        &mut self,
        key: &str,
        _old: &V,
        _new: &V,
        _metadata: &mut Self::Metadata,
    ) -> Result<(), ApplyError> {
        Err(ApplyError::fatal(format!("{key}: update not supported")))
    }

    /// Whether going from `old` to `new` takes a delete and a create (and so
    /// takes the value's dependents out of the target meanwhile) rather than
    /// an update. The default, true, suits kinds with no `update`.
    fn needs_recreate(&self, _key: &str, _old: &V, _new: &V) -> bool {
        true
    }

    /// Takes a value out of the target; on success the engine drops its
    /// metadata.
    fn delete(&mut self, key: &str, value: &V, metadata: &Self::Metadata)
        -> Result<(), ApplyError>;

    /// What exists in the target right now under this descriptor's prefix
    /// (including derived values it handles), with the metadata the engine
    /// keeps for each, for resync. `Ok(None)`: this kind cannot be read
    /// back, and resync trusts the engine's record.
    #[allow(clippy::type_complexity)]
    fn retrieve(&mut self) -> Result<Option<Vec<(String, V, Self::Metadata)>>, ApplyError> {
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

/// Metadata as the engine stores it, whatever the descriptor.
pub(crate) type Meta = Box<dyn Any + Send>;

/// A [`Descriptor`] with its metadata type erased, so the engine can hold
/// descriptors of different metadata together.
#[allow(clippy::type_complexity)]
pub(crate) trait Erased<V>: Send {
    fn name(&self) -> &str;
    fn validate(&self, key: &str, value: &V) -> Result<(), String>;
    fn create(&mut self, key: &str, value: &V) -> Result<Meta, ApplyError>;
    fn update(&mut self, key: &str, old: &V, new: &V, meta: &mut Meta) -> Result<(), ApplyError>;
    fn needs_recreate(&self, key: &str, old: &V, new: &V) -> bool;
    fn delete(&mut self, key: &str, value: &V, meta: &Meta) -> Result<(), ApplyError>;
    fn retrieve(&mut self) -> Result<Option<Vec<(String, V, Meta)>>, ApplyError>;
    fn dependencies(&self, key: &str, value: &V) -> Vec<Dependency>;
    fn derived(&self, key: &str, value: &V) -> Vec<(String, V)>;
}

fn foreign(key: &str) -> ApplyError {
    ApplyError::fatal(format!("{key}: metadata of another descriptor"))
}

impl<V, D: Descriptor<V>> Erased<V> for D {
    fn name(&self) -> &str {
        Descriptor::name(self)
    }
    fn validate(&self, key: &str, value: &V) -> Result<(), String> {
        Descriptor::validate(self, key, value)
    }
    fn create(&mut self, key: &str, value: &V) -> Result<Meta, ApplyError> {
        Descriptor::create(self, key, value).map(|m| Box::new(m) as Meta)
    }
    fn update(&mut self, key: &str, old: &V, new: &V, meta: &mut Meta) -> Result<(), ApplyError> {
        let meta = meta.downcast_mut().ok_or_else(|| foreign(key))?;
        Descriptor::update(self, key, old, new, meta)
    }
    fn needs_recreate(&self, key: &str, old: &V, new: &V) -> bool {
        Descriptor::needs_recreate(self, key, old, new)
    }
    fn delete(&mut self, key: &str, value: &V, meta: &Meta) -> Result<(), ApplyError> {
        let meta = meta.downcast_ref().ok_or_else(|| foreign(key))?;
        Descriptor::delete(self, key, value, meta)
    }
    fn retrieve(&mut self) -> Result<Option<Vec<(String, V, Meta)>>, ApplyError> {
        Ok(Descriptor::retrieve(self)?.map(|values| {
            values
                .into_iter()
                .map(|(k, v, m)| (k, v, Box::new(m) as Meta))
                .collect()
        }))
    }
    fn dependencies(&self, key: &str, value: &V) -> Vec<Dependency> {
        Descriptor::dependencies(self, key, value)
    }
    fn derived(&self, key: &str, value: &V) -> Vec<(String, V)> {
        Descriptor::derived(self, key, value)
    }
}
