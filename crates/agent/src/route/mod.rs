//! Route objects: static routes in a VPC's FIB.

use ipnet::IpNet;
use weir_dataplane::VrfId;
use weir_dataplane::{ControlError, RouteTarget};
use weir_model::{key, key_prefix, NextHop, RejectKind, RouteSpec};
use weir_reconcile::Dependency;

use crate::kind::{vpc_dependency, Apply};
use crate::{Agent, AgentError};

pub struct Route;

impl Apply for Route {
    type Spec = RouteSpec;
    /// The FIB entry: the VPC's VRF and the prefix.
    type Metadata = (VrfId, IpNet);

    fn dependencies(s: &RouteSpec) -> Vec<Dependency> {
        let mut d: Vec<Dependency> = vpc_dependency(&s.vpc).into_iter().collect();
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
        let on_interface = |x: &Dependency| matches!(x, Dependency::Key(k) if k.starts_with(&key_prefix("Interface")));
        if via_gateway && !d.iter().any(on_interface) {
            // A gateway must be on some interface's subnet.
            d.push(Dependency::any_of(key_prefix("Interface")));
        }
        d
    }

    fn create(
        agent: &mut Agent,
        _name: &str,
        spec: &RouteSpec,
    ) -> Result<(VrfId, IpNet), AgentError> {
        let entry = (agent.vrf_of(&spec.vpc)?, spec.prefix.net());
        add(agent, entry, spec)?;
        Ok(entry)
    }

    fn update(
        agent: &mut Agent,
        _name: &str,
        _old: &RouteSpec,
        new: &RouteSpec,
        entry: &mut (VrfId, IpNet),
    ) -> Result<(), AgentError> {
        let want = (agent.vrf_of(&new.vpc)?, new.prefix.net());
        // A changed prefix or VPC is a different FIB entry: remove the old one.
        if want != *entry {
            let _ = agent.control.del_route(entry.0, entry.1);
            *entry = want;
        }
        add(agent, want, new)
    }

    fn delete(
        agent: &mut Agent,
        _name: &str,
        _spec: &RouteSpec,
        &(vrf, prefix): &(VrfId, IpNet),
    ) -> Result<(), AgentError> {
        match agent.control.del_route(vrf, prefix) {
            Ok(()) | Err(ControlError::NoRoute { .. }) | Err(ControlError::NoVrf(_)) => {}
            Err(e) => return Err(e.into()),
        }
        agent.control.commit();
        Ok(())
    }
}

/// Adds (or replaces) the route's FIB entry.
fn add(
    agent: &mut Agent,
    (vrf, prefix): (VrfId, IpNet),
    spec: &RouteSpec,
) -> Result<(), AgentError> {
    let via = |a: &Agent, nh: &NextHop| -> Result<_, AgentError> {
        let port = nh.interface.as_deref().map(|i| a.port_of(i)).transpose()?;
        Ok((nh.address, port))
    };
    let target = spec
        .target()
        .ok_or_else(|| AgentError::Invalid("a route needs exactly one target".into()))?;
    let target = match target {
        weir_model::RouteTarget::NextHop(nh) => {
            let (gateway, port) = via(agent, nh)?;
            RouteTarget::Via { gateway, port }
        }
        weir_model::RouteTarget::Ecmp(nhs) => RouteTarget::Ecmp(
            nhs.iter()
                .map(|nh| via(agent, nh))
                .collect::<Result<_, _>>()?,
        ),
        weir_model::RouteTarget::Attached(i) => RouteTarget::Attached(agent.port_of(i)?),
        weir_model::RouteTarget::Blackhole => RouteTarget::Blackhole,
        weir_model::RouteTarget::Reject(RejectKind::Unreachable) => RouteTarget::Unreachable,
        weir_model::RouteTarget::Reject(RejectKind::Prohibit) => RouteTarget::Prohibit,
    };
    match agent.control.add_route(vrf, prefix, target) {
        Ok(()) => {}
        Err(e @ ControlError::GatewayNotConnected { .. }) => {
            return Err(AgentError::Waiting(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    }
    agent.control.commit();
    Ok(())
}
