//! Routes: the RIB (paths by source, the best one installed) and how a
//! route target becomes a next hop.

use std::net::IpAddr;

use ipnet::IpNet;

use super::*;
use crate::tables::{NextHopId, PortId, TableChange, VrfId, MAX_ECMP};

impl Control {
    /// Add or replace a static route.
    pub fn add_route(
        &mut self,
        vrf: VrfId,
        prefix: IpNet,
        target: RouteTarget,
    ) -> Result<(), ControlError> {
        let prefix = canonical(prefix)?;
        if !self.has_vrf(vrf) {
            return Err(ControlError::NoVrf(vrf));
        }
        let nh = self.resolve_target(vrf, prefix, &target)?;
        self.rib_add(vrf, prefix, RouteSource::Static, nh, target);
        Ok(())
    }

    pub fn del_route(&mut self, vrf: VrfId, prefix: IpNet) -> Result<(), ControlError> {
        let prefix = canonical(prefix)?;
        let has = self
            .rib
            .get(&(vrf, prefix))
            .is_some_and(|e| e.paths.iter().any(|p| p.0 == RouteSource::Static));
        if !has {
            return Err(ControlError::NoRoute { vrf, prefix });
        }
        self.rib_del(vrf, prefix, RouteSource::Static);
        Ok(())
    }

    /// Routes of a VRF: prefix, source and target of the installed path.
    pub fn routes(&self, vrf: VrfId) -> Vec<(IpNet, RouteSource, RouteTarget)> {
        let mut v: Vec<_> = self
            .rib
            .iter()
            .filter(|((v, _), _)| *v == vrf)
            .map(|((_, p), e)| (*p, e.paths[0].0, e.paths[0].2.clone()))
            .collect();
        v.sort_by_key(|a| a.0);
        v
    }

    pub fn route_count(&self) -> usize {
        self.rib.len()
    }

    pub(super) fn gateway_port(
        &self,
        vrf: VrfId,
        prefix: IpNet,
        gw: IpAddr,
        port: Option<PortId>,
    ) -> Result<PortId, ControlError> {
        if gw.is_ipv4() != prefix.addr().is_ipv4() {
            return Err(ControlError::FamilyMismatch {
                prefix,
                gateway: gw,
            });
        }
        match port {
            Some(p) => {
                if self.port(p).is_none() {
                    return Err(ControlError::NoPort(p));
                }
                if !self.on_link(p, gw) {
                    return Err(ControlError::GatewayNotOnPort {
                        port: p,
                        gateway: gw,
                    });
                }
                Ok(p)
            }
            None => self
                .connected_port(vrf, gw)
                .ok_or(ControlError::GatewayNotConnected { vrf, gateway: gw }),
        }
    }

    pub(super) fn resolve_target(
        &mut self,
        vrf: VrfId,
        prefix: IpNet,
        target: &RouteTarget,
    ) -> Result<NextHopId, ControlError> {
        Ok(match target {
            RouteTarget::Blackhole => NH_BLACKHOLE,
            RouteTarget::Unreachable => NH_UNREACHABLE,
            RouteTarget::Prohibit => NH_PROHIBIT,
            RouteTarget::Attached(p) => {
                self.port(*p).ok_or(ControlError::NoPort(*p))?;
                self.nh_get(NhKey::Attached(*p))
            }
            RouteTarget::Local(p) => {
                self.port(*p).ok_or(ControlError::NoPort(*p))?;
                self.nh_get(NhKey::Local(*p))
            }
            RouteTarget::Table(v) => {
                if !self.has_vrf(*v) {
                    return Err(ControlError::NoVrf(*v));
                }
                self.nh_get(NhKey::Table(*v))
            }
            RouteTarget::Via { gateway, port } => {
                let p = self.gateway_port(vrf, prefix, *gateway, *port)?;
                self.nh_neighbour(p, *gateway)
            }
            RouteTarget::Ecmp(gws) => {
                if gws.is_empty() || gws.len() > MAX_ECMP {
                    return Err(ControlError::EcmpSize(gws.len()));
                }
                let mut ports = Vec::with_capacity(gws.len());
                for (gw, port) in gws {
                    ports.push(self.gateway_port(vrf, prefix, *gw, *port)?);
                }
                let mut members: Vec<NextHopId> = gws
                    .iter()
                    .zip(ports)
                    .map(|((gw, _), p)| self.nh_neighbour(p, *gw))
                    .collect();
                members.sort_unstable();
                let key = NhKey::Group(members.clone());
                let existed = self.nh_ids.contains_key(&key);
                let id = self.nh_get(key);
                if existed {
                    // The group holds one reference per member already.
                    for m in members {
                        self.nh_release(m);
                    }
                }
                id
            }
        })
    }

    pub(super) fn rib_add(
        &mut self,
        vrf: VrfId,
        prefix: IpNet,
        src: RouteSource,
        nh: NextHopId,
        target: RouteTarget,
    ) {
        let e = self
            .rib
            .entry((vrf, prefix))
            .or_insert(RibEntry { paths: Vec::new() });
        let old_best = e.paths.first().map(|p| p.1);
        let mut released = None;
        if let Some(i) = e.paths.iter().position(|p| p.0 == src) {
            released = Some(e.paths[i].1);
            e.paths[i] = (src, nh, target);
        } else {
            e.paths.push((src, nh, target));
            e.paths.sort_by_key(|p| p.0);
        }
        let new_best = e.paths[0].1;
        if old_best != Some(new_best) {
            self.push_route(vrf, prefix, Some(new_best));
        }
        if let Some(r) = released {
            self.nh_release(r);
        }
    }

    pub(super) fn rib_del(&mut self, vrf: VrfId, prefix: IpNet, src: RouteSource) {
        let Some(e) = self.rib.get_mut(&(vrf, prefix)) else {
            return;
        };
        let Some(i) = e.paths.iter().position(|p| p.0 == src) else {
            return;
        };
        let (_, nh, _) = e.paths.remove(i);
        let new_best = e.paths.first().map(|p| p.1);
        if e.paths.is_empty() {
            self.rib.remove(&(vrf, prefix));
        }
        if i == 0 {
            self.push_route(vrf, prefix, new_best);
        }
        self.nh_release(nh);
    }

    pub(super) fn push_route(&mut self, vrf: VrfId, prefix: IpNet, nh: Option<NextHopId>) {
        self.pending.push(match prefix {
            IpNet::V4(p) => TableChange::Route4 {
                vrf,
                addr: u32::from(p.network()),
                len: p.prefix_len(),
                nexthop: nh,
            },
            IpNet::V6(p) => TableChange::Route6 {
                vrf,
                addr: u128::from(p.network()),
                len: p.prefix_len(),
                nexthop: nh,
            },
        });
    }
}
