//! How a kind plugs into the agent: one [`Apply`] per kind (its folder),
//! registered by one line in [`KINDS`]. The generic [`Applier`] turns it
//! into the reconciler's descriptor: the spec arrives decoded once (in
//! [`Desired`]), the metadata `create` returns is kept by the engine and
//! handed back to `update` and `delete`.

use std::any::Any;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::Value;
use weir_model::{key, key_prefix, KindSpec};
use weir_reconcile::{ApplyError, Dependency, Descriptor, Reconciler};

use crate::{Agent, AgentError};

pub type SharedAgent = Arc<Mutex<Agent>>;

/// What the agent does with the objects of one kind.
pub trait Apply: Send + 'static {
    type Spec: KindSpec + DeserializeOwned + Send + Sync + 'static;
    /// What the engine keeps per applied object (its port, its FIB entries).
    type Metadata: Send + 'static;

    /// The objects it needs configured first.
    fn dependencies(_spec: &Self::Spec) -> Vec<Dependency> {
        Vec::new()
    }

    fn create(
        agent: &mut Agent,
        name: &str,
        spec: &Self::Spec,
    ) -> Result<Self::Metadata, AgentError>;

    /// Changes an object in place (called unless `needs_recreate`).
    fn update(
        agent: &mut Agent,
        name: &str,
        old: &Self::Spec,
        new: &Self::Spec,
        metadata: &mut Self::Metadata,
    ) -> Result<(), AgentError>;

    /// Whether a change takes a delete and a create (and so takes the
    /// object's dependents out meanwhile).
    fn needs_recreate(_old: &Self::Spec, _new: &Self::Spec) -> bool {
        false
    }

    fn delete(
        agent: &mut Agent,
        name: &str,
        spec: &Self::Spec,
        metadata: &Self::Metadata,
    ) -> Result<(), AgentError>;

    /// Called once `create` or `update` has succeeded, with the value
    /// applied; a kind that reads its objects back keeps it here.
    fn applied(
        _agent: &mut Agent,
        _name: &str,
        _desired: &Desired,
        _metadata: &mut Self::Metadata,
    ) {
    }

    /// The objects really in place outside the agent's own record (by
    /// name), with the value each was applied from and its metadata, for
    /// resync. `None`: this kind cannot be read back, and resync trusts
    /// the engine's record.
    #[allow(clippy::type_complexity)]
    fn retrieve(
        _agent: &mut Agent,
    ) -> Result<Option<Vec<(String, Desired, Self::Metadata)>>, AgentError> {
        Ok(None)
    }
}

/// A decoded spec, shared by every step of the object's way.
type Typed = Arc<dyn Any + Send + Sync>;

/// A kind the agent applies: its name, how its spec is decoded, and how
/// its descriptor is installed.
pub struct Registration {
    pub kind: &'static str,
    decode: fn(&Value) -> Result<Typed, String>,
    install: fn(&SharedAgent, &mut Reconciler<Desired>),
}

impl Registration {
    pub const fn of<K: Apply>() -> Registration {
        Registration {
            kind: <K::Spec as KindSpec>::KIND,
            decode: decode::<K>,
            install: install::<K>,
        }
    }
}

fn decode<K: Apply>(spec: &Value) -> Result<Typed, String> {
    serde_json::from_value::<K::Spec>(spec.clone())
        .map(|s| Arc::new(s) as Typed)
        .map_err(|e| format!("spec: {e}"))
}

fn install<K: Apply>(agent: &SharedAgent, rec: &mut Reconciler<Desired>) {
    rec.register(Applier::<K> {
        agent: agent.clone(),
        prefix: key_prefix(<K::Spec as KindSpec>::KIND),
        _kind: std::marker::PhantomData,
    });
}

/// Every kind the agent applies, in dependency order.
pub const KINDS: &[Registration] = &[
    Registration::of::<crate::vpc::Vpc>(),
    Registration::of::<crate::interface::Interface>(),
    Registration::of::<crate::subnet::Subnet>(),
    Registration::of::<crate::route::Route>(),
    Registration::of::<crate::peering::Peering>(),
    Registration::of::<crate::nat::NatRule>(),
];

/// Whether the agent applies objects of `kind`.
pub fn applies(kind: &str) -> bool {
    KINDS.iter().any(|r| r.kind == kind)
}

/// Installs a descriptor for every kind the agent applies.
pub fn register_all(agent: &SharedAgent, rec: &mut Reconciler<Desired>) {
    for r in KINDS {
        (r.install)(agent, rec);
    }
}

/// What the reconciler compares: the spec of an object (metadata such as
/// revisions and status does not make a change), decoded once for the
/// descriptors when the agent applies its kind.
#[derive(Clone)]
pub struct Desired {
    pub kind: String,
    pub name: String,
    pub spec: Value,
    typed: Result<Typed, String>,
}

impl PartialEq for Desired {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.spec == other.spec
    }
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("spec", &self.spec)
            .finish()
    }
}

impl Desired {
    pub fn of(o: &weir_model::Object) -> Desired {
        Desired::new(&o.kind, o.name(), o.spec.clone())
    }

    pub fn new(kind: &str, name: &str, spec: Value) -> Desired {
        let typed = match KINDS.iter().find(|r| r.kind == kind) {
            Some(r) => (r.decode)(&spec),
            None => Err(format!("no {kind} support in the agent")),
        };
        Desired {
            kind: kind.to_string(),
            name: name.to_string(),
            spec,
            typed,
        }
    }

    /// The decoded spec.
    pub fn typed<S: Any>(&self) -> Result<&S, ApplyError> {
        let typed = self
            .typed
            .as_ref()
            .map_err(|e| ApplyError::fatal(e.clone()))?;
        typed
            .downcast_ref()
            .ok_or_else(|| ApplyError::fatal(format!("{} is not a {}", self.name, self.kind)))
    }
}

fn to_apply_error(e: AgentError) -> ApplyError {
    match e {
        // Declared dependencies make these rare; retry while they settle.
        AgentError::Missing(_) | AgentError::Waiting(_) => ApplyError::retriable(e.to_string()),
        e if e.is_retriable() => ApplyError::retriable(e.to_string()),
        e => ApplyError::fatal(e.to_string()),
    }
}

/// The reconciler's descriptor for a kind the agent applies.
pub struct Applier<K> {
    agent: SharedAgent,
    prefix: String,
    _kind: std::marker::PhantomData<fn() -> K>,
}

impl<K: Apply> Descriptor<Desired> for Applier<K> {
    type Metadata = K::Metadata;

    fn name(&self) -> &str {
        <K::Spec as KindSpec>::KIND
    }

    fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn validate(&self, _key: &str, v: &Desired) -> Result<(), String> {
        v.typed::<K::Spec>().map(|_| ()).map_err(|e| e.message)
    }

    fn create(&mut self, _key: &str, v: &Desired) -> Result<K::Metadata, ApplyError> {
        let spec = v.typed::<K::Spec>()?;
        let mut agent = self.agent.lock().unwrap();
        let mut metadata = K::create(&mut agent, &v.name, spec).map_err(to_apply_error)?;
        K::applied(&mut agent, &v.name, v, &mut metadata);
        Ok(metadata)
    }

    fn update(
        &mut self,
        _key: &str,
        old: &Desired,
        new: &Desired,
        metadata: &mut K::Metadata,
    ) -> Result<(), ApplyError> {
        let (old, spec) = (old.typed::<K::Spec>()?, new.typed::<K::Spec>()?);
        let mut agent = self.agent.lock().unwrap();
        K::update(&mut agent, &new.name, old, spec, metadata).map_err(to_apply_error)?;
        K::applied(&mut agent, &new.name, new, metadata);
        Ok(())
    }

    fn needs_recreate(&self, _key: &str, old: &Desired, new: &Desired) -> bool {
        match (old.typed::<K::Spec>(), new.typed::<K::Spec>()) {
            (Ok(old), Ok(new)) => K::needs_recreate(old, new),
            _ => true,
        }
    }

    fn delete(
        &mut self,
        _key: &str,
        v: &Desired,
        metadata: &K::Metadata,
    ) -> Result<(), ApplyError> {
        let spec = v.typed::<K::Spec>()?;
        K::delete(&mut self.agent.lock().unwrap(), &v.name, spec, metadata).map_err(to_apply_error)
    }

    fn retrieve(&mut self) -> Result<Option<Vec<(String, Desired, K::Metadata)>>, ApplyError> {
        let found = K::retrieve(&mut self.agent.lock().unwrap()).map_err(to_apply_error)?;
        Ok(found.map(|objects| {
            objects
                .into_iter()
                .map(|(name, v, m)| (key(<K::Spec as KindSpec>::KIND, &name), v, m))
                .collect()
        }))
    }

    fn dependencies(&self, _key: &str, v: &Desired) -> Vec<Dependency> {
        v.typed::<K::Spec>()
            .map(K::dependencies)
            .unwrap_or_default()
    }
}

/// The dependency on a VPC, none for the default one (always there).
pub(crate) fn vpc_dependency(vpc: &str) -> Option<Dependency> {
    (vpc != crate::DEFAULT_VPC).then(|| Dependency::key(weir_model::key("Vpc", vpc)))
}
