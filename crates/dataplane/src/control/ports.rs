//! VRFs, ports, their kernel mirrors and addresses (with the local and
//! connected routes an address brings).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};
use weir_packet::{ipv4, ipv6, MacAddr};

use super::*;
use crate::tables::{PortConfig, PortId, TableChange, VrfId};

impl Control {
    pub fn add_vrf(&mut self, vrf: VrfId) {
        let i = vrf as usize;
        if self.vrfs.len() <= i {
            self.vrfs.resize(i + 1, false);
        }
        if !self.vrfs[i] {
            self.vrfs[i] = true;
            self.pending.push(TableChange::AddVrf(vrf));
        }
    }

    pub fn del_vrf(&mut self, vrf: VrfId) -> Result<(), ControlError> {
        if !self.has_vrf(vrf) {
            return Err(ControlError::NoVrf(vrf));
        }
        if let Some((i, _)) = self.ports().find(|(_, p)| p.vrf == vrf) {
            return Err(ControlError::VrfInUse(vrf, i));
        }
        let prefixes: Vec<IpNet> = self
            .rib
            .keys()
            .filter(|(v, _)| *v == vrf)
            .map(|(_, p)| *p)
            .collect();
        for p in prefixes {
            if let Some(e) = self.rib.remove(&(vrf, p)) {
                for (_, nh, _) in e.paths {
                    self.nh_release(nh);
                }
            }
        }
        self.vrfs[vrf as usize] = false;
        self.pending.push(TableChange::DelVrf(vrf));
        Ok(())
    }

    pub fn has_vrf(&self, vrf: VrfId) -> bool {
        self.vrfs.get(vrf as usize).copied().unwrap_or(false)
    }

    pub fn ports(&self) -> impl Iterator<Item = (PortId, &PortConfig)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i as PortId, p)))
    }

    pub fn port(&self, id: PortId) -> Option<&PortConfig> {
        self.ports.get(id as usize).and_then(|p| p.as_ref())
    }

    pub fn add_port(
        &mut self,
        id: PortId,
        name: &str,
        mac: MacAddr,
        mtu: u16,
        vrf: VrfId,
    ) -> Result<(), ControlError> {
        if self.port(id).is_some() {
            return Err(ControlError::PortExists(id));
        }
        if !(68..=crate::buffer::MAX_MTU).contains(&mtu) {
            return Err(ControlError::Mtu(mtu));
        }
        if !self.has_vrf(vrf) {
            return Err(ControlError::NoVrf(vrf));
        }
        let p = PortConfig::new(name, mac, mtu, vrf);
        let ll = p.link_local6;
        if self.ports.len() <= id as usize {
            self.ports.resize(id as usize + 1, None);
        }
        self.ports[id as usize] = Some(p);
        self.push_port(id);
        // The link-local address answers neighbour discovery and ping.
        let lp = IpNet::V6(Ipv6Net::new(ll, 128).expect("valid"));
        let nh = self.nh_get(NhKey::Local(id));
        self.rib_add(vrf, lp, RouteSource::Local, nh, RouteTarget::Local(id));
        Ok(())
    }

    /// Remove a port: its addresses and their local and connected routes,
    /// its neighbours, and its mirror link.
    pub fn del_port(&mut self, id: PortId) -> Result<(), ControlError> {
        let p = self.port(id).ok_or(ControlError::NoPort(id))?.clone();
        for (a, l) in p.addrs4.iter() {
            let n = IpNet::new(IpAddr::V4(*a), *l).expect("valid");
            self.del_address(id, n)?;
        }
        for (a, l) in p.addrs6.iter() {
            let n = IpNet::new(IpAddr::V6(*a), *l).expect("valid");
            self.del_address(id, n)?;
        }
        let ll = IpNet::V6(Ipv6Net::new(p.link_local6, 128).expect("valid"));
        self.rib_del(p.vrf, ll, RouteSource::Local);
        let neigh: Vec<_> = self
            .neighbours
            .keys()
            .filter(|(q, _)| *q == id)
            .copied()
            .collect();
        for k in neigh {
            self.neigh_forget(k);
        }
        if let Some(m) = p.mirror_of {
            if let Some(Some(phys)) = self.ports.get_mut(m as usize) {
                phys.mirror = None;
                self.push_port(m);
            }
        }
        if let Some(m) = p.mirror {
            if let Some(Some(tap)) = self.ports.get_mut(m as usize) {
                tap.mirror_of = None;
                self.push_port(m);
            }
        }
        self.ports[id as usize] = None;
        self.pending.push(TableChange::SetPort(id, None));
        Ok(())
    }

    /// Make `mirror` the kernel mirror (TAP) of `port`: local traffic the
    /// dataplane does not handle goes to it, and what the kernel sends on it
    /// leaves through `port`.
    pub fn add_mirror(
        &mut self,
        port: PortId,
        mirror: PortId,
        name: &str,
    ) -> Result<(), ControlError> {
        if self.port(mirror).is_some() {
            return Err(ControlError::PortExists(mirror));
        }
        let p = self.port_mut(port)?;
        p.mirror = Some(mirror);
        let mut m = PortConfig::new(name, p.mac, p.mtu, p.vrf);
        m.mirror_of = Some(port);
        if self.ports.len() <= mirror as usize {
            self.ports.resize(mirror as usize + 1, None);
        }
        self.ports[mirror as usize] = Some(m);
        self.push_port(port);
        self.push_port(mirror);
        Ok(())
    }

    pub(super) fn push_port(&mut self, id: PortId) {
        let p = self.ports[id as usize].clone();
        self.pending.push(TableChange::SetPort(id, p));
    }

    pub fn set_port_up(&mut self, id: PortId, up: bool) -> Result<(), ControlError> {
        let p = self.port_mut(id)?;
        p.up = up;
        self.push_port(id);
        Ok(())
    }

    pub fn set_port_mtu(&mut self, id: PortId, mtu: u16) -> Result<(), ControlError> {
        if !(68..=crate::buffer::MAX_MTU).contains(&mtu) {
            return Err(ControlError::Mtu(mtu));
        }
        self.port_mut(id)?.mtu = mtu;
        self.push_port(id);
        Ok(())
    }

    pub(super) fn port_mut(&mut self, id: PortId) -> Result<&mut PortConfig, ControlError> {
        self.ports
            .get_mut(id as usize)
            .and_then(|p| p.as_mut())
            .ok_or(ControlError::NoPort(id))
    }

    /// Add an address with its subnet: a local route for the address and a
    /// connected route for the subnet.
    pub fn add_address(&mut self, id: PortId, addr: IpNet) -> Result<(), ControlError> {
        let port = self.port(id).ok_or(ControlError::NoPort(id))?;
        let vrf = port.vrf;
        match addr {
            IpNet::V4(a) => {
                let ip = a.addr();
                if ip.is_multicast()
                    || ip.is_broadcast()
                    || ip.is_unspecified()
                    || ip.is_loopback()
                    || (a.prefix_len() < 31 && (ip == a.network() || ip == a.broadcast()))
                {
                    return Err(ControlError::BadAddress(addr));
                }
                if port.has_addr4(ip) {
                    return Err(ControlError::AddressExists { port: id, addr });
                }
                self.port_mut(id)?.addrs4.push((ip, a.prefix_len()));
            }
            IpNet::V6(a) => {
                let ip = a.addr();
                if ip.is_multicast() || ip.is_unspecified() || ip.is_loopback() {
                    return Err(ControlError::BadAddress(addr));
                }
                if port.has_addr6(ip) {
                    return Err(ControlError::AddressExists { port: id, addr });
                }
                self.port_mut(id)?.addrs6.push((ip, a.prefix_len()));
            }
        }
        self.push_port(id);
        let host = IpNet::new(addr.addr(), addr.max_prefix_len()).expect("valid");
        let nh = self.nh_get(NhKey::Local(id));
        self.rib_add(vrf, host, RouteSource::Local, nh, RouteTarget::Local(id));
        let nh = self.nh_get(NhKey::Attached(id));
        self.rib_add(
            vrf,
            addr.trunc(),
            RouteSource::Connected,
            nh,
            RouteTarget::Attached(id),
        );
        Ok(())
    }

    pub fn del_address(&mut self, id: PortId, addr: IpNet) -> Result<(), ControlError> {
        let port = self.port_mut(id)?;
        let vrf = port.vrf;
        let before = port.addrs4.len() + port.addrs6.len();
        port.addrs4
            .retain(|(a, l)| IpNet::new(IpAddr::V4(*a), *l).ok() != Some(addr));
        port.addrs6
            .retain(|(a, l)| IpNet::new(IpAddr::V6(*a), *l).ok() != Some(addr));
        if port.addrs4.len() + port.addrs6.len() == before {
            return Err(ControlError::NoAddress { port: id, addr });
        }
        self.push_port(id);
        let host = IpNet::new(addr.addr(), addr.max_prefix_len()).expect("valid");
        self.rib_del(vrf, host, RouteSource::Local);
        self.rib_del(vrf, addr.trunc(), RouteSource::Connected);
        // Neighbours no longer on any subnet of the port are forgotten.
        let stale: Vec<(PortId, IpAddr)> = self
            .neighbours
            .keys()
            .filter(|(p, a)| *p == id && !self.on_link(id, *a))
            .copied()
            .collect();
        for k in stale {
            self.neigh_forget(k);
        }
        Ok(())
    }

    pub(super) fn on_link(&self, id: PortId, a: IpAddr) -> bool {
        let Some(p) = self.port(id) else { return false };
        match a {
            IpAddr::V4(a) => p.addrs4.iter().any(|(x, l)| ipv4::same_subnet(*x, a, *l)),
            IpAddr::V6(a) => {
                ipv6::is_link_local(a) || p.addrs6.iter().any(|(x, l)| ipv6::same_subnet(*x, a, *l))
            }
        }
    }

    /// The port of VRF `vrf` whose connected subnet contains `a`.
    pub(super) fn connected_port(&self, vrf: VrfId, a: IpAddr) -> Option<PortId> {
        self.ports()
            .filter(|(_, p)| p.vrf == vrf)
            .find(|(id, _)| match a {
                IpAddr::V6(x) if ipv6::is_link_local(x) => false,
                _ => self.on_link(*id, a),
            })
            .map(|(id, _)| id)
    }
}
