//! Peering objects. A Peering leaks, into each of its two VPCs, the
//! prefixes the other side exposes: the FIB entry says "look the
//! destination up in the other VRF".

use ipnet::IpNet;
use weir_dataplane::VrfId;
use weir_dataplane::{ControlError, RouteTarget};
use weir_model::{ObjectRef, PeeringSpec};
use weir_reconcile::Dependency;

use crate::kind::{vpc_dependency, Apply};
use crate::{Agent, AgentError};

pub struct Peering;

/// A leaked entry: into this VRF, this prefix, looked up in that VRF.
pub type Leak = (VrfId, IpNet, VrfId);

impl Apply for Peering {
    type Spec = PeeringSpec;
    type Metadata = Vec<Leak>;

    fn dependencies(s: &PeeringSpec) -> Vec<Dependency> {
        s.vpcs.iter().filter_map(|v| vpc_dependency(v)).collect()
    }

    fn create(agent: &mut Agent, _name: &str, spec: &PeeringSpec) -> Result<Vec<Leak>, AgentError> {
        let leaked = wanted(agent, spec)?;
        for (into, p, from) in &leaked {
            agent
                .control
                .add_route(*into, *p, RouteTarget::Table(*from))?;
        }
        agent.control.commit();
        Ok(leaked)
    }

    fn update(
        agent: &mut Agent,
        name: &str,
        old: &PeeringSpec,
        new: &PeeringSpec,
        leaked: &mut Vec<Leak>,
    ) -> Result<(), AgentError> {
        wanted(agent, new)?;
        Self::delete(agent, name, old, leaked)?;
        leaked.clear();
        *leaked = Self::create(agent, name, new)?;
        Ok(())
    }

    fn delete(
        agent: &mut Agent,
        _name: &str,
        _spec: &PeeringSpec,
        leaked: &Vec<Leak>,
    ) -> Result<(), AgentError> {
        for &(into, p, _) in leaked {
            match agent.control.del_route(into, p) {
                Ok(()) | Err(ControlError::NoRoute { .. }) | Err(ControlError::NoVrf(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        agent.control.commit();
        Ok(())
    }
}

fn wanted(agent: &Agent, spec: &PeeringSpec) -> Result<Vec<Leak>, AgentError> {
    let [a, b] = match spec.vpcs.as_slice() {
        [a, b] => [a.clone(), b.clone()],
        _ => {
            return Err(AgentError::Invalid(
                "a peering joins exactly two vpcs".into(),
            ))
        }
    };
    let missing: Vec<ObjectRef> = [&a, &b]
        .iter()
        .filter(|v| agent.vrf_of(v).is_err())
        .map(|v| ObjectRef::new("Vpc", v.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(AgentError::Missing(missing));
    }
    let (va, vb) = (agent.vrf_of(&a)?, agent.vrf_of(&b)?);
    let mut leaked = Vec::new();
    // Into a: what b exposes, looked up in b; and the other way round.
    for (into, from, side) in [(va, vb, &b), (vb, va, &a)] {
        for p in spec.exposed(side) {
            leaked.push((into, p.network(), from));
        }
    }
    Ok(leaked)
}
