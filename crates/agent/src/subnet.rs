//! Subnet and Peering objects.
//!
//! A Subnet on an Interface gives that port the subnet's gateway address
//! (so it answers ARP/ND and ping there) and the subnet's connected route.
//! A Peering leaks, into each of its two VPCs, the prefixes the other side
//! exposes: the FIB entry says "look the destination up in the other VRF".

use ipnet::IpNet;
use weir_dataplane::config::{PortId, VrfId};
use weir_dataplane::{ControlError, RouteTarget};
use weir_model::{ObjectRef, PeeringSpec, SubnetSpec};

use crate::{Agent, AgentError};

/// What the agent keeps of an applied Subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetState {
    pub vrf: VrfId,
    /// The port and address added to it, when on an interface.
    pub address: Option<(PortId, IpNet)>,
}

impl Agent {
    pub fn apply_subnet(&mut self, name: &str, spec: &SubnetSpec) -> Result<(), AgentError> {
        let vrf = self.vrf_of(&spec.vpc)?;
        let address = match &spec.interface {
            Some(i) => {
                let port = self.port_of(i)?;
                let pvrf = self.control.port(port).map(|p| p.vrf);
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
        if self.subnets.get(name).map(|s| &s.address) == Some(&address) {
            return Ok(());
        }
        self.delete_subnet(name)?;
        if let Some((port, a)) = address {
            match self.control.add_address(port, a) {
                // The Interface already carries it: nothing of ours to add.
                Ok(()) | Err(ControlError::AddressExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.control.commit();
        self.subnets
            .insert(name.to_string(), SubnetState { vrf, address });
        Ok(())
    }

    pub fn delete_subnet(&mut self, name: &str) -> Result<(), AgentError> {
        let Some(s) = self.subnets.remove(name) else {
            return Ok(());
        };
        if let Some((port, a)) = s.address {
            let on_interface = self
                .interfaces
                .values()
                .any(|i| i.port == port && i.spec.addresses.iter().any(|x| x.net() == a));
            if !on_interface {
                match self.control.del_address(port, a) {
                    Ok(()) | Err(ControlError::NoAddress { .. }) | Err(ControlError::NoPort(_)) => {
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.control.commit();
        Ok(())
    }

    pub fn apply_peering(&mut self, name: &str, spec: &PeeringSpec) -> Result<(), AgentError> {
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
            .filter(|v| self.vrf_of(v).is_err())
            .map(|v| ObjectRef::new("Vpc", v.as_str()))
            .collect();
        if !missing.is_empty() {
            return Err(AgentError::Missing(missing));
        }
        let (va, vb) = (self.vrf_of(&a)?, self.vrf_of(&b)?);
        let mut leaked = Vec::new();
        // Into a: what b exposes, looked up in b; and the other way round.
        for (into, from, side) in [(va, vb, &b), (vb, va, &a)] {
            for p in spec.exposed(side) {
                leaked.push((into, p.network(), from));
            }
        }
        self.delete_peering(name)?;
        for (into, p, from) in &leaked {
            self.control
                .add_route(*into, *p, RouteTarget::Table(*from))?;
        }
        self.control.commit();
        self.peerings.insert(name.to_string(), leaked);
        Ok(())
    }

    pub fn delete_peering(&mut self, name: &str) -> Result<(), AgentError> {
        let Some(leaked) = self.peerings.remove(name) else {
            return Ok(());
        };
        for (into, p, _) in leaked {
            match self.control.del_route(into, p) {
                Ok(()) | Err(ControlError::NoRoute { .. }) | Err(ControlError::NoVrf(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.control.commit();
        Ok(())
    }
}
