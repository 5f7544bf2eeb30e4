//! The tables workers forward with: ports, VRF FIBs, next hops and
//! resolved neighbours. Built and changed only by the control side
//! (`control::Control`), published to workers as snapshots. (The daemon's
//! day-0 file is its "config"; this is not it.)

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use weir_fib::{Lpm4, Lpm6, NO_ROUTE};
use weir_packet::{ipv4, ipv6, MacAddr};

use crate::snapshot::Apply;

pub type PortId = u16;
pub type VrfId = u16;
pub type NextHopId = u32;

/// Largest number of next hops in one ECMP group.
pub const MAX_ECMP: usize = 64;

/// A dataplane port as the workers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub name: String,
    pub mac: MacAddr,
    /// IP MTU: the largest IP packet (L3 header included) sent on this port.
    pub mtu: u16,
    pub vrf: VrfId,
    pub up: bool,
    pub addrs4: Vec<(Ipv4Addr, u8)>,
    pub addrs6: Vec<(Ipv6Addr, u8)>,
    /// fe80::/64 address derived from the MAC (EUI-64).
    pub link_local6: Ipv6Addr,
    /// The kernel mirror (TAP) of this port, where local traffic the
    /// dataplane does not handle goes.
    pub mirror: Option<PortId>,
    /// Set on a mirror: the port it mirrors, where its frames leave.
    pub mirror_of: Option<PortId>,
}

impl PortConfig {
    pub fn new(name: &str, mac: MacAddr, mtu: u16, vrf: VrfId) -> PortConfig {
        PortConfig {
            name: name.to_string(),
            mac,
            mtu,
            vrf,
            up: true,
            addrs4: Vec::new(),
            addrs6: Vec::new(),
            link_local6: ipv6::link_local_from_mac(mac),
            mirror: None,
            mirror_of: None,
        }
    }

    /// The address ICMPv4 errors sent from this port come from.
    pub fn primary4(&self) -> Option<Ipv4Addr> {
        self.addrs4.first().map(|a| a.0)
    }

    /// Source for ICMPv6 errors: a global address, else the link-local one.
    pub fn primary6(&self) -> Ipv6Addr {
        self.addrs6.first().map(|a| a.0).unwrap_or(self.link_local6)
    }

    /// Our IPv4 address on the subnet that contains `dst`, if any.
    pub fn source4_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addrs4
            .iter()
            .find(|(a, l)| ipv4::same_subnet(*a, dst, *l))
            .map(|a| a.0)
            .or_else(|| self.primary4())
    }

    /// Our IPv6 source for talking to `dst` on this link.
    pub fn source6_for(&self, dst: Ipv6Addr) -> Ipv6Addr {
        if ipv6::is_link_local(dst) {
            return self.link_local6;
        }
        self.addrs6
            .iter()
            .find(|(a, l)| ipv6::same_subnet(*a, dst, *l))
            .map(|a| a.0)
            .unwrap_or_else(|| self.primary6())
    }

    pub fn has_addr4(&self, a: Ipv4Addr) -> bool {
        self.addrs4.iter().any(|x| x.0 == a)
    }

    pub fn has_addr6(&self, a: Ipv6Addr) -> bool {
        a == self.link_local6 || self.addrs6.iter().any(|x| x.0 == a)
    }
}

/// What a FIB entry points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// A neighbour on `port`; `mac` is None until it resolves.
    Neighbour {
        port: PortId,
        addr: IpAddr,
        mac: Option<MacAddr>,
    },
    /// A connected subnet on `port`: the destination itself is the neighbour
    /// (resolved hosts get their own /32 or /128 entries).
    Attached {
        port: PortId,
    },
    /// Equal-cost group; a member is chosen by the flow hash.
    Group(Vec<NextHopId>),
    /// One of the gateway's own addresses.
    Local {
        port: PortId,
    },
    /// Look the destination up again in another VRF (routes leaked by a
    /// peering). One level only: a table next hop found there is no route.
    Table(VrfId),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// Kinds of next hop packets are forwarded to, each handled by the node a
/// module registered for it (`Registry::nexthop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHopKind {
    /// Out of a port: a neighbour or an attached subnet (an ECMP group
    /// resolves to one of these).
    Port,
    /// One of the gateway's own addresses.
    Local,
}

/// What the output nodes need of a next hop, precomputed: the port, its MTU
/// and the Ethernet addresses to write (VPP's adjacency rewrite).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adjacency {
    /// True when the neighbour is resolved and the port is up.
    pub ready: bool,
    /// The next hop sends out of a port (a neighbour or an attached
    /// subnet): the lookup nodes' fast path, one load for the common case.
    pub forward: bool,
    pub port: PortId,
    pub mtu: u16,
    /// Destination then source MAC.
    pub rewrite: [u8; 12],
}

/// A VRF's forwarding tables.
pub struct Vrf {
    pub fib4: Lpm4,
    pub fib6: Lpm6,
}

impl Vrf {
    fn new() -> Vrf {
        Vrf {
            fib4: Lpm4::new(),
            fib6: Lpm6::new(),
        }
    }
}

/// Preallocated buffers that packets waiting for neighbour resolution are
/// copied into: workers take one (no allocation), the control side keeps it
/// while the packet waits and gives it back afterwards. Their number bounds
/// how many packets wait in total.
#[derive(Debug, Clone)]
pub struct HeldBuffers(pub Arc<ArrayQueue<Vec<u8>>>);

impl HeldBuffers {
    /// `count` buffers of `size` bytes each.
    pub fn new(count: usize, size: usize) -> HeldBuffers {
        let q = ArrayQueue::new(count.max(1));
        for _ in 0..count {
            let _ = q.push(Vec::with_capacity(size));
        }
        HeldBuffers(Arc::new(q))
    }
}

impl PartialEq for HeldBuffers {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for HeldBuffers {}

/// The snapshot workers read.
#[derive(Default)]
pub struct Tables {
    pub ports: Vec<Option<PortConfig>>,
    pub vrfs: Vec<Option<Vrf>>,
    pub nexthops: Vec<NextHop>,
    /// One per next hop, same index.
    pub adjacencies: Vec<Adjacency>,
    /// Resolved neighbours, for learning decisions (not the forwarding path,
    /// which reads MACs from next hops).
    pub neighbours: HashMap<(PortId, IpAddr), MacAddr>,
    /// Where packets waiting for a neighbour are copied (set by the
    /// control side; without it such packets are dropped).
    pub held: Option<HeldBuffers>,
}

/// One change to the tables; the control side emits these and the
/// snapshot publisher replays them on both copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableChange {
    SetPort(PortId, Option<PortConfig>),
    AddVrf(VrfId),
    DelVrf(VrfId),
    SetNextHop(NextHopId, NextHop),
    Route4 {
        vrf: VrfId,
        addr: u32,
        len: u8,
        nexthop: Option<NextHopId>,
    },
    Route6 {
        vrf: VrfId,
        addr: u128,
        len: u8,
        nexthop: Option<NextHopId>,
    },
    SetNeighbour {
        port: PortId,
        addr: IpAddr,
        mac: Option<MacAddr>,
    },
    SetHeldBuffers(HeldBuffers),
}

impl Apply for Tables {
    type Change = TableChange;

    fn apply(&mut self, change: &TableChange) {
        match change {
            TableChange::SetPort(id, p) => {
                let i = *id as usize;
                if self.ports.len() <= i {
                    self.ports.resize(i + 1, None);
                }
                self.ports[i] = p.clone();
                for nh in 0..self.nexthops.len() {
                    if matches!(self.nexthops[nh], NextHop::Neighbour { port, .. } if port == *id) {
                        self.adjacencies[nh] = self.adjacency(nh);
                    }
                }
            }
            TableChange::AddVrf(id) => {
                let i = *id as usize;
                if self.vrfs.len() <= i {
                    self.vrfs.resize_with(i + 1, || None);
                }
                if self.vrfs[i].is_none() {
                    self.vrfs[i] = Some(Vrf::new());
                }
            }
            TableChange::DelVrf(id) => {
                if let Some(v) = self.vrfs.get_mut(*id as usize) {
                    *v = None;
                }
            }
            TableChange::SetNextHop(id, nh) => {
                let i = *id as usize;
                if self.nexthops.len() <= i {
                    self.nexthops.resize(i + 1, NextHop::Unreachable);
                    self.adjacencies.resize(i + 1, Adjacency::default());
                }
                self.nexthops[i] = nh.clone();
                self.adjacencies[i] = self.adjacency(i);
            }
            TableChange::Route4 {
                vrf,
                addr,
                len,
                nexthop,
            } => {
                if let Some(Some(v)) = self.vrfs.get_mut(*vrf as usize) {
                    match nexthop {
                        // Validated by the control side before it is emitted.
                        Some(nh) => {
                            let _ = v.fib4.insert(*addr, *len, *nh);
                        }
                        None => {
                            v.fib4.remove(*addr, *len);
                        }
                    }
                }
            }
            TableChange::Route6 {
                vrf,
                addr,
                len,
                nexthop,
            } => {
                if let Some(Some(v)) = self.vrfs.get_mut(*vrf as usize) {
                    match nexthop {
                        Some(nh) => {
                            let _ = v.fib6.insert(*addr, *len, *nh);
                        }
                        None => {
                            v.fib6.remove(*addr, *len);
                        }
                    }
                }
            }
            TableChange::SetNeighbour { port, addr, mac } => match mac {
                Some(m) => {
                    self.neighbours.insert((*port, *addr), *m);
                }
                None => {
                    self.neighbours.remove(&(*port, *addr));
                }
            },
            TableChange::SetHeldBuffers(h) => self.held = Some(h.clone()),
        }
    }
}

impl Tables {
    fn adjacency(&self, nh: usize) -> Adjacency {
        let NextHop::Neighbour { port, mac, .. } = &self.nexthops[nh] else {
            return Adjacency {
                forward: matches!(self.nexthops[nh], NextHop::Attached { .. }),
                ..Adjacency::default()
            };
        };
        let Some(p) = self.port(*port) else {
            return Adjacency {
                forward: true,
                ..Adjacency::default()
            };
        };
        let mut rewrite = [0u8; 12];
        rewrite[6..].copy_from_slice(&p.mac.0);
        if let Some(m) = mac {
            rewrite[..6].copy_from_slice(&m.0);
        }
        Adjacency {
            ready: mac.is_some() && p.up,
            forward: true,
            port: *port,
            mtu: p.mtu,
            rewrite,
        }
    }

    /// Whether `nh` is a neighbour or attached next hop (false for
    /// NO_ROUTE and anything else): the common case of the lookup nodes.
    #[inline(always)]
    pub fn forwards(&self, nh: NextHopId) -> bool {
        self.adjacencies.get(nh as usize).is_some_and(|a| a.forward)
    }

    /// Follows a table next hop (a route leaked by a peering) one level:
    /// what `lookup` finds in that VRF, or NO_ROUTE when nothing matches or
    /// the match is a table next hop again. Other next hops are returned as
    /// they are.
    #[inline(always)]
    pub fn follow_table(
        &self,
        nh: NextHopId,
        lookup: impl FnOnce(&Self, VrfId) -> Option<NextHopId>,
    ) -> NextHopId {
        let Some(NextHop::Table(v)) = self.nexthop(nh) else {
            return nh;
        };
        lookup(self, *v)
            .filter(|n| !matches!(self.nexthop(*n), Some(NextHop::Table(_))))
            .unwrap_or(NO_ROUTE)
    }

    /// The precomputed adjacency of a next hop.
    #[inline(always)]
    pub fn adjacency_of(&self, nh: NextHopId) -> Adjacency {
        self.adjacencies
            .get(nh as usize)
            .copied()
            .unwrap_or_default()
    }

    #[inline(always)]
    pub fn port(&self, id: PortId) -> Option<&PortConfig> {
        self.ports.get(id as usize).and_then(|p| p.as_ref())
    }

    #[inline(always)]
    pub fn vrf(&self, id: VrfId) -> Option<&Vrf> {
        self.vrfs.get(id as usize).and_then(|v| v.as_ref())
    }

    #[inline(always)]
    pub fn nexthop(&self, id: NextHopId) -> Option<&NextHop> {
        self.nexthops.get(id as usize)
    }

    /// IPv4 FIB lookup: the next hop id, or None.
    #[inline]
    pub fn lookup4(&self, vrf: VrfId, addr: u32) -> Option<NextHopId> {
        let nh = self.vrf(vrf)?.fib4.lookup(addr);
        (nh != NO_ROUTE).then_some(nh)
    }

    #[inline]
    pub fn lookup6(&self, vrf: VrfId, addr: u128) -> Option<NextHopId> {
        let nh = self.vrf(vrf)?.fib6.lookup(addr);
        (nh != NO_ROUTE).then_some(nh)
    }
}
