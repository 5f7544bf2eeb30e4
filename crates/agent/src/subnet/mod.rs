//! Subnet objects. A Subnet on an Interface gives that port the subnet's
//! gateway address (so it answers ARP/ND and ping there) and the subnet's
//! connected route.

use ipnet::IpNet;
use weir_dataplane::ControlError;
use weir_dataplane::{PortId, VrfId};
use weir_model::{key, SubnetSpec};
use weir_reconcile::Dependency;

use crate::kind::{vpc_dependency, Apply};
use crate::{Agent, AgentError};

pub struct Subnet;

/// What the engine keeps of an applied Subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetState {
    pub vrf: VrfId,
    /// The port and address added to it, when on an interface.
    pub address: Option<(PortId, IpNet)>,
}

impl Apply for Subnet {
    type Spec = SubnetSpec;
    type Metadata = SubnetState;

    fn dependencies(s: &SubnetSpec) -> Vec<Dependency> {
        let mut d: Vec<Dependency> = vpc_dependency(&s.vpc).into_iter().collect();
        if let Some(i) = &s.interface {
            d.push(Dependency::key(key("Interface", i)));
        }
        d
    }

    fn create(
        agent: &mut Agent,
        _name: &str,
        spec: &SubnetSpec,
    ) -> Result<SubnetState, AgentError> {
        let state = wanted(agent, spec)?;
        if let Some((port, a)) = state.address {
            match agent.control.add_address(port, a) {
                // The Interface already carries it: nothing of ours to add.
                Ok(()) | Err(ControlError::AddressExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        agent.control.commit();
        Ok(state)
    }

    fn update(
        agent: &mut Agent,
        name: &str,
        old: &SubnetSpec,
        new: &SubnetSpec,
        state: &mut SubnetState,
    ) -> Result<(), AgentError> {
        if wanted(agent, new)? == *state {
            return Ok(());
        }
        Self::delete(agent, name, old, state)?;
        state.address = None;
        *state = Self::create(agent, name, new)?;
        Ok(())
    }

    fn delete(
        agent: &mut Agent,
        _name: &str,
        _spec: &SubnetSpec,
        state: &SubnetState,
    ) -> Result<(), AgentError> {
        if let Some((port, a)) = state.address {
            // Not when the Interface carries the address itself.
            if !agent.port_has_address(port, a) {
                match agent.control.del_address(port, a) {
                    Ok(()) | Err(ControlError::NoAddress { .. }) | Err(ControlError::NoPort(_)) => {
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        agent.control.commit();
        Ok(())
    }
}

/// Where the subnet's gateway address goes.
fn wanted(agent: &Agent, spec: &SubnetSpec) -> Result<SubnetState, AgentError> {
    let vrf = agent.vrf_of(&spec.vpc)?;
    let address = match &spec.interface {
        Some(i) => {
            let port = agent.port_of(i)?;
            let pvrf = agent.control.port(port).map(|p| p.vrf);
            if pvrf != Some(vrf) {
                return Err(AgentError::Invalid(format!(
                    "interface {i} is not in vpc {}",
                    spec.vpc
                )));
            }
            let net = spec.cidr.network();
            let a = IpNet::new(spec.gateway(), net.prefix_len())
                .map_err(|e| AgentError::Invalid(e.to_string()))?;
            Some((port, a))
        }
        None => None,
    };
    Ok(SubnetState { vrf, address })
}
