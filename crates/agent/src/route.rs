//! Route objects: static routes in a VPC's FIB.

use weir_dataplane::{ControlError, RouteTarget};
use weir_model::{RejectKind, RouteSpec};

use crate::{Agent, AgentError};

impl Agent {
    /// Create or replace a Route.
    pub fn apply_route(&mut self, name: &str, spec: &RouteSpec) -> Result<(), AgentError> {
        let vrf = self.vrf_of(&spec.vpc)?;
        let prefix = spec.prefix.net();
        let via = |a: &Agent, nh: &weir_model::NextHop| -> Result<_, AgentError> {
            let port = nh.interface.as_deref().map(|i| a.port_of(i)).transpose()?;
            Ok((nh.address, port))
        };
        let target = spec
            .target()
            .ok_or_else(|| AgentError::Invalid("a route needs exactly one target".into()))?;
        let target = match target {
            weir_model::RouteTarget::NextHop(nh) => {
                let (gateway, port) = via(self, nh)?;
                RouteTarget::Via { gateway, port }
            }
            weir_model::RouteTarget::Ecmp(nhs) => RouteTarget::Ecmp(
                nhs.iter()
                    .map(|nh| via(self, nh))
                    .collect::<Result<_, _>>()?,
            ),
            weir_model::RouteTarget::Attached(i) => RouteTarget::Attached(self.port_of(i)?),
            weir_model::RouteTarget::Blackhole => RouteTarget::Blackhole,
            weir_model::RouteTarget::Reject(RejectKind::Unreachable) => RouteTarget::Unreachable,
            weir_model::RouteTarget::Reject(RejectKind::Prohibit) => RouteTarget::Prohibit,
        };
        // A changed prefix or VPC is a different FIB entry: remove the old one.
        if let Some((v, p)) = self.routes.get(name).copied() {
            if (v, p) != (vrf, prefix) {
                let _ = self.control.del_route(v, p);
            }
        }
        match self.control.add_route(vrf, prefix, target) {
            Ok(()) => {}
            Err(e @ ControlError::GatewayNotConnected { .. }) => {
                return Err(AgentError::Waiting(e.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        self.control.commit();
        self.routes.insert(name.to_string(), (vrf, prefix));
        Ok(())
    }

    pub fn delete_route(&mut self, name: &str) -> Result<(), AgentError> {
        let Some((vrf, prefix)) = self.routes.remove(name) else {
            return Ok(());
        };
        match self.control.del_route(vrf, prefix) {
            Ok(()) | Err(ControlError::NoRoute { .. }) | Err(ControlError::NoVrf(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.control.commit();
        Ok(())
    }
}
