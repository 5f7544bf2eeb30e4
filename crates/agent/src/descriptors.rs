//! Reconciler descriptors for the kinds the agent applies to the dataplane:
//! Vpc, Interface, Subnet, Route, Peering. Each names its dependencies (the
//! objects it refers to) so the engine holds it pending until they are
//! configured, and calls the agent's apply/delete for the rest.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use weir_model::{
    key, key_prefix, InterfaceSpec, KindSpec, PeeringSpec, RouteSpec, SubnetSpec, VpcSpec,
};
use weir_reconcile::{ApplyError, Dependency, Descriptor};

use crate::{Agent, AgentError, DEFAULT_VPC};

/// What the reconciler compares: the spec of an object (metadata such as
/// revisions and status does not make a change).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub kind: String,
    pub name: String,
    pub spec: Value,
}

impl Desired {
    pub fn of(o: &weir_model::Object) -> Desired {
        Desired {
            kind: o.kind.clone(),
            name: o.name().to_string(),
            spec: o.spec.clone(),
        }
    }

    fn typed<S: KindSpec>(&self) -> Result<S, ApplyError> {
        serde_json::from_value(self.spec.clone())
            .map_err(|e| ApplyError::fatal(format!("spec: {e}")))
    }
}

pub type SharedAgent = Arc<Mutex<Agent>>;

fn to_apply_error(e: AgentError) -> ApplyError {
    match e {
        // Declared dependencies make these rare; retry while they settle.
        AgentError::Missing(_) | AgentError::Waiting(_) => ApplyError::retriable(e.to_string()),
        e if e.is_retriable() => ApplyError::retriable(e.to_string()),
        e => ApplyError::fatal(e.to_string()),
    }
}

fn vpc_dep(vpc: &str) -> Option<Dependency> {
    (vpc != DEFAULT_VPC).then(|| Dependency::key(key("Vpc", vpc)))
}

macro_rules! descriptor {
    ($name:ident, $kind:literal, $spec:ty, $apply:ident, $delete:ident, |$s:ident| $deps:expr) => {
        pub struct $name(pub SharedAgent);

        impl Descriptor<Desired> for $name {
            fn name(&self) -> &str {
                $kind
            }
            fn key_prefix(&self) -> &str {
                static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                PREFIX.get_or_init(|| key_prefix($kind))
            }
            fn validate(&self, _key: &str, v: &Desired) -> Result<(), String> {
                v.typed::<$spec>().map(|_| ()).map_err(|e| e.message)
            }
            fn create(&mut self, _key: &str, v: &Desired) -> Result<(), ApplyError> {
                let spec: $spec = v.typed()?;
                self.0
                    .lock()
                    .unwrap()
                    .$apply(&v.name, &spec)
                    .map_err(to_apply_error)
            }
            fn update(
                &mut self,
                key: &str,
                _old: &Desired,
                new: &Desired,
            ) -> Result<(), ApplyError> {
                self.create(key, new)
            }
            fn needs_recreate(&self, _key: &str, _old: &Desired, _new: &Desired) -> bool {
                false
            }
            fn delete(&mut self, _key: &str, v: &Desired) -> Result<(), ApplyError> {
                self.0
                    .lock()
                    .unwrap()
                    .$delete(&v.name)
                    .map_err(to_apply_error)
            }
            fn dependencies(&self, _key: &str, v: &Desired) -> Vec<Dependency> {
                match v.typed::<$spec>() {
                    Ok($s) => $deps,
                    Err(_) => Vec::new(),
                }
            }
        }
    };
}

descriptor!(VpcDescriptor, "Vpc", VpcSpec, apply_vpc, delete_vpc, |_s| {
    Vec::new()
});

descriptor!(
    InterfaceDescriptor,
    "Interface",
    InterfaceSpec,
    apply_interface,
    delete_interface,
    |s| { vpc_dep(&s.vpc).into_iter().collect() }
);

descriptor!(
    SubnetDescriptor,
    "Subnet",
    SubnetSpec,
    apply_subnet,
    delete_subnet,
    |s| {
        let mut d: Vec<Dependency> = vpc_dep(&s.vpc).into_iter().collect();
        if let Some(i) = &s.interface {
            d.push(Dependency::key(key("Interface", i)));
        }
        d
    }
);

descriptor!(
    RouteDescriptor,
    "Route",
    RouteSpec,
    apply_route,
    delete_route,
    |s| {
        let mut d: Vec<Dependency> = vpc_dep(&s.vpc).into_iter().collect();
        let hops = s.next_hop.iter().chain(s.next_hops.iter().flatten());
        let mut via_gateway = false;
        for nh in hops {
            via_gateway = true;
            if let Some(i) = &nh.interface {
                d.push(Dependency::key(key("Interface", i)));
            }
        }
        if let Some(i) = &s.interface {
            d.push(Dependency::key(key("Interface", i)));
        }
        if via_gateway
            && d.iter().all(
                |x| !matches!(x, Dependency::Key(k) if k.starts_with(&key_prefix("Interface"))),
            )
        {
            // A gateway must be on some interface's subnet.
            d.push(Dependency::any_of(key_prefix("Interface")));
        }
        d
    }
);

descriptor!(
    PeeringDescriptor,
    "Peering",
    PeeringSpec,
    apply_peering,
    delete_peering,
    |s| { s.vpcs.iter().filter_map(|v| vpc_dep(v)).collect() }
);

/// All of them, sharing one agent.
pub fn all(agent: &SharedAgent) -> Vec<Box<dyn Descriptor<Desired>>> {
    vec![
        Box::new(VpcDescriptor(agent.clone())),
        Box::new(InterfaceDescriptor(agent.clone())),
        Box::new(SubnetDescriptor(agent.clone())),
        Box::new(RouteDescriptor(agent.clone())),
        Box::new(PeeringDescriptor(agent.clone())),
    ]
}

/// Kinds the agent applies.
pub const KINDS: &[&str] = &["Vpc", "Interface", "Subnet", "Route", "Peering"];
