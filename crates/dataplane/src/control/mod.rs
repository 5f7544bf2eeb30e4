//! The control side of the dataplane: the only writer of the configuration
//! snapshot. It keeps a small RIB (routes by source), allocates next hops,
//! owns the neighbour table (resolution, held packets, aging) and publishes
//! changes to the workers as one snapshot per commit.

mod held;
mod neighbour;
mod unreachable;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv6Net};
use weir_packet::MacAddr;

use crate::snapshot::{Publisher, Reader};
use crate::tables::{
    HeldBuffers, IcmpLimit, NextHop, NextHopId, PortConfig, PortId, TableChange, Tables, VrfId,
    MAX_ECMP,
};
use crate::worker::{Queue, Upcall, WorkerCmd};
pub use neighbour::{NeighState, Neighbour, NeighbourSettings};
use weir_packet::{ipv4, ipv6};

/// Bound of the channel workers punt through; beyond it they drop.
const PUNT_QUEUE: usize = 4096;
const INJECT_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("port {0} does not exist")]
    NoPort(PortId),
    #[error("port {0} already exists")]
    PortExists(PortId),
    #[error("VRF {0} does not exist")]
    NoVrf(VrfId),
    #[error("VRF {0} is still used by port {1}")]
    VrfInUse(VrfId, PortId),
    #[error("gateway {gateway} is not on a connected subnet of VRF {vrf}")]
    GatewayNotConnected { vrf: VrfId, gateway: IpAddr },
    #[error("gateway {gateway} is not on a subnet of port {port}")]
    GatewayNotOnPort { port: PortId, gateway: IpAddr },
    #[error("gateway {gateway} is of a different address family than prefix {prefix}")]
    FamilyMismatch { prefix: IpNet, gateway: IpAddr },
    #[error("ECMP group has {0} next hops; 1 to {MAX_ECMP} are allowed")]
    EcmpSize(usize),
    #[error("route {prefix} in VRF {vrf} does not exist")]
    NoRoute { vrf: VrfId, prefix: IpNet },
    #[error("prefix {0} has host bits set")]
    HostBits(IpNet),
    #[error("address {0} is not usable on a port (network, multicast or reserved)")]
    BadAddress(IpNet),
    #[error("address {addr} is already on port {port}")]
    AddressExists { port: PortId, addr: IpNet },
    #[error("address {addr} is not on port {port}")]
    NoAddress { port: PortId, addr: IpNet },
    #[error("MTU {0} out of range 68..={max}: a frame must fit a packet buffer", max = crate::buffer::MAX_MTU)]
    Mtu(u16),
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// Through a gateway; the port is found from the connected subnets when
    /// not given.
    Via {
        gateway: IpAddr,
        port: Option<PortId>,
    },
    /// Equal-cost multipath over several gateways.
    Ecmp(Vec<(IpAddr, Option<PortId>)>),
    /// Destinations are directly on this port's link.
    Attached(PortId),
    /// One of the gateway's own addresses.
    Local(PortId),
    /// Look up again in another VRF (a peering's leaked prefixes).
    Table(VrfId),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// Who installed a route; for the same prefix the lowest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteSource {
    Local,
    Connected,
    Static,
    /// A /32 or /128 for a resolved neighbour on a connected subnet.
    Neighbour,
}

/// Identity of a next hop (its MAC is state, not identity).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NhKey {
    Neighbour(PortId, IpAddr),
    Attached(PortId),
    Local(PortId),
    Table(VrfId),
    Group(Vec<NextHopId>),
}

#[derive(Debug, Clone)]
struct RibEntry {
    /// (source, next hop); the first is installed.
    paths: Vec<(RouteSource, NextHopId, RouteTarget)>,
}

/// Fixed next hops present in every configuration.
pub const NH_BLACKHOLE: NextHopId = 0;
pub const NH_UNREACHABLE: NextHopId = 1;
pub const NH_PROHIBIT: NextHopId = 2;

/// Counters of the control side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlStats {
    pub commits: u64,
    pub punts: u64,
    pub held: u64,
    pub held_dropped: u64,
    pub released: u64,
    pub resolved: u64,
    pub failed: u64,
    pub requests_sent: u64,
    pub inject_dropped: u64,
    /// New neighbour entries refused because the table was full of
    /// resolved or configured neighbours.
    pub neigh_refused: u64,
    /// Unresolved or stale entries evicted to make room for new ones.
    pub neigh_evicted: u64,
    /// ICMP host / ICMPv6 address unreachable sent about held packets.
    pub unreachable_sent: u64,
    /// Held packets that drew no such error: rate limited, an error
    /// themselves, or no way back to their source.
    pub unreachable_suppressed: u64,
}

pub struct Control {
    publisher: Publisher<Tables>,
    pending: Vec<TableChange>,
    ports: Vec<Option<PortConfig>>,
    vrfs: Vec<bool>,
    nh_ids: HashMap<NhKey, (NextHopId, u32)>,
    nh_keys: Vec<Option<NhKey>>,
    nh_free: Vec<NextHopId>,
    rib: HashMap<(VrfId, IpNet), RibEntry>,
    neighbours: HashMap<(PortId, IpAddr), Neighbour>,
    /// Per port: entries that may be evicted (unresolved or stale), oldest
    /// first; checked again when taken.
    evictable: Vec<std::collections::VecDeque<IpAddr>>,
    /// Per port: number of neighbour entries.
    neigh_count: Vec<usize>,
    held: held::HeldSlab,
    held_buffers: HeldBuffers,
    unreachable_bucket: unreachable::Bucket,
    pub settings: NeighbourSettings,
    punt_tx: SyncSender<Upcall>,
    punt_rx: Receiver<Upcall>,
    injects: Vec<SyncSender<WorkerCmd>>,
    next_inject: usize,
    pub stats: ControlStats,
}

fn canonical(p: IpNet) -> Result<IpNet, ControlError> {
    if p.trunc() != p {
        return Err(ControlError::HostBits(p));
    }
    Ok(p)
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    pub fn new() -> Control {
        let mut fixed = vec![
            TableChange::SetNextHop(NH_BLACKHOLE, NextHop::Blackhole),
            TableChange::SetNextHop(NH_UNREACHABLE, NextHop::Unreachable),
            TableChange::SetNextHop(NH_PROHIBIT, NextHop::Prohibit),
            TableChange::AddVrf(0),
        ];
        let held_buffers = HeldBuffers::new(held::HELD_PACKETS, crate::buffer::DATA_ROOM);
        fixed.push(TableChange::SetHeldBuffers(held_buffers.clone()));
        let (punt_tx, punt_rx) = mpsc::sync_channel(PUNT_QUEUE);
        let mut c = Control {
            publisher: Publisher::new(Tables::default(), Tables::default()),
            pending: fixed,
            ports: Vec::new(),
            vrfs: vec![true],
            nh_ids: HashMap::new(),
            nh_keys: vec![None, None, None],
            nh_free: Vec::new(),
            rib: HashMap::new(),
            neighbours: HashMap::new(),
            evictable: Vec::new(),
            neigh_count: Vec::new(),
            held: held::HeldSlab::new(held::HELD_PACKETS),
            held_buffers,
            unreachable_bucket: unreachable::Bucket::default(),
            settings: NeighbourSettings::default(),
            punt_tx,
            punt_rx,
            injects: Vec::new(),
            next_inject: 0,
            stats: ControlStats::default(),
        };
        c.commit();
        c
    }

    /// The handle workers read the configuration through.
    pub fn reader(&self) -> Reader<Tables> {
        self.publisher.reader()
    }

    /// The live tables (as the workers see them).
    pub fn tables(&self) -> arc_swap::Guard<std::sync::Arc<Tables>> {
        self.publisher.load()
    }

    /// The live tables; the name callers knew them by.
    pub fn config(&self) -> arc_swap::Guard<std::sync::Arc<Tables>> {
        self.tables()
    }

    /// Channels for a new worker: where it punts to and where it receives
    /// frames to send.
    pub fn worker_channels(&mut self) -> (SyncSender<Upcall>, Receiver<WorkerCmd>) {
        let (tx, rx) = mpsc::sync_channel(INJECT_QUEUE);
        self.injects.push(tx);
        (self.punt_tx.clone(), rx)
    }

    /// Publish every change made since the last commit as one snapshot.
    pub fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.pending);
        self.publisher.commit(changes);
        self.stats.commits += 1;
    }

    pub fn generation(&self) -> u64 {
        self.publisher.generation()
    }

    pub fn set_icmp_limit(&mut self, l: IcmpLimit) {
        self.pending.push(TableChange::SetIcmpLimit(l));
    }

    // ---- VRFs and ports ----

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

    fn push_port(&mut self, id: PortId) {
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

    fn port_mut(&mut self, id: PortId) -> Result<&mut PortConfig, ControlError> {
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

    fn on_link(&self, id: PortId, a: IpAddr) -> bool {
        let Some(p) = self.port(id) else { return false };
        match a {
            IpAddr::V4(a) => p.addrs4.iter().any(|(x, l)| ipv4::same_subnet(*x, a, *l)),
            IpAddr::V6(a) => {
                ipv6::is_link_local(a) || p.addrs6.iter().any(|(x, l)| ipv6::same_subnet(*x, a, *l))
            }
        }
    }

    /// The port of VRF `vrf` whose connected subnet contains `a`.
    fn connected_port(&self, vrf: VrfId, a: IpAddr) -> Option<PortId> {
        self.ports()
            .filter(|(_, p)| p.vrf == vrf)
            .find(|(id, _)| match a {
                IpAddr::V6(x) if ipv6::is_link_local(x) => false,
                _ => self.on_link(*id, a),
            })
            .map(|(id, _)| id)
    }

    // ---- routes ----

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

    fn gateway_port(
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

    fn resolve_target(
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

    fn rib_add(
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

    fn rib_del(&mut self, vrf: VrfId, prefix: IpNet, src: RouteSource) {
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

    fn push_route(&mut self, vrf: VrfId, prefix: IpNet, nh: Option<NextHopId>) {
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

    // ---- next hops ----

    fn nh_get(&mut self, key: NhKey) -> NextHopId {
        if let Some((id, refs)) = self.nh_ids.get_mut(&key) {
            *refs += 1;
            return *id;
        }
        let id = self
            .nh_free
            .pop()
            .unwrap_or(self.nh_keys.len() as NextHopId);
        if self.nh_keys.len() <= id as usize {
            self.nh_keys.resize(id as usize + 1, None);
        }
        self.nh_keys[id as usize] = Some(key.clone());
        let nh = self.nh_value(&key);
        self.nh_ids.insert(key, (id, 1));
        self.pending.push(TableChange::SetNextHop(id, nh));
        id
    }

    fn nh_value(&self, key: &NhKey) -> NextHop {
        match key {
            NhKey::Neighbour(p, a) => NextHop::Neighbour {
                port: *p,
                addr: *a,
                mac: self
                    .neighbours
                    .get(&(*p, *a))
                    .filter(|n| n.is_usable())
                    .map(|n| n.mac),
            },
            NhKey::Attached(p) => NextHop::Attached { port: *p },
            NhKey::Local(p) => NextHop::Local { port: *p },
            NhKey::Table(v) => NextHop::Table(*v),
            NhKey::Group(m) => NextHop::Group(m.clone()),
        }
    }

    /// A neighbour next hop; starts resolving it if it is new.
    fn nh_neighbour(&mut self, port: PortId, addr: IpAddr) -> NextHopId {
        let id = self.nh_get(NhKey::Neighbour(port, addr));
        if !self.neighbours.contains_key(&(port, addr)) {
            self.neigh_start(port, addr, Instant::now(), true);
        }
        id
    }

    fn nh_release(&mut self, id: NextHopId) {
        let Some(Some(key)) = self.nh_keys.get(id as usize).cloned() else {
            return; // the fixed ones
        };
        let Some((_, refs)) = self.nh_ids.get_mut(&key) else {
            return;
        };
        *refs -= 1;
        if *refs > 0 {
            return;
        }
        self.nh_ids.remove(&key);
        self.nh_keys[id as usize] = None;
        self.nh_free.push(id);
        self.pending
            .push(TableChange::SetNextHop(id, NextHop::Unreachable));
        if let NhKey::Group(members) = key {
            for m in members {
                self.nh_release(m);
            }
        }
    }

    /// Refresh every next hop that points at neighbour (port, addr).
    fn nh_refresh(&mut self, port: PortId, addr: IpAddr) {
        let key = NhKey::Neighbour(port, addr);
        if let Some((id, _)) = self.nh_ids.get(&key) {
            let id = *id;
            let v = self.nh_value(&key);
            self.pending.push(TableChange::SetNextHop(id, v));
        }
    }

    /// Number of next hops in use (fixed ones excluded).
    pub fn nexthop_count(&self) -> usize {
        self.nh_ids.len()
    }

    fn inject(&mut self, port: PortId, frame: Vec<u8>) {
        if self.injects.is_empty() {
            self.stats.inject_dropped += 1;
            return;
        }
        let i = self.next_inject % self.injects.len();
        self.next_inject = self.next_inject.wrapping_add(1);
        if self.injects[i]
            .try_send(WorkerCmd::Send { port, frame })
            .is_err()
        {
            self.stats.inject_dropped += 1;
        }
    }

    /// Number of workers attached to this control side.
    pub fn workers(&self) -> usize {
        self.injects.len()
    }

    /// Give worker `w` a queue to poll (blocks while its command queue is
    /// full). False if the worker is gone.
    pub fn add_queue(&self, w: usize, q: Queue) -> bool {
        self.injects
            .get(w)
            .is_some_and(|tx| tx.send(WorkerCmd::AddQueue(q)).is_ok())
    }

    /// Tell every worker to stop polling `port` and close its queues.
    pub fn remove_queues(&self, port: PortId) {
        for tx in &self.injects {
            let _ = tx.send(WorkerCmd::RemoveQueue(port));
        }
    }

    /// Handle what the workers punted and run timers; publishes the result.
    pub fn poll(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Ok(p) = self.punt_rx.try_recv() {
            n += 1;
            self.stats.punts += 1;
            match p {
                Upcall::Neighbour { port, addr, mac } => self.neigh_learned(port, addr, mac, now),
                Upcall::Hold {
                    port,
                    addr,
                    vrf,
                    l3,
                } => self.neigh_hold(port, addr, vrf, l3, now),
            }
            if n >= 4096 {
                break;
            }
        }
        self.neigh_timers(now);
        self.held_top_up();
        self.commit();
        n
    }

    /// Run `poll` in a loop until `stop` is set (the control thread).
    pub fn run(&mut self, stop: &std::sync::atomic::AtomicBool) {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if self.poll(Instant::now()) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Source address for talking to `dst` from a port (ARP/NS probes).
fn probe_source(p: &PortConfig, dst: IpAddr) -> Option<IpAddr> {
    match dst {
        IpAddr::V4(d) => p.source4_for(d).map(IpAddr::V4),
        IpAddr::V6(d) => Some(IpAddr::V6(p.source6_for(d))),
    }
}
