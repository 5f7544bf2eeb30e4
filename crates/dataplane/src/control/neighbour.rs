//! The neighbour table (ARP and NDP): resolution with a small bounded queue
//! of waiting packets, retries, failure, and aging by periodic re-probing.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use weir_packet::ndp::{NdpOption, NdpRepr};
use weir_packet::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Icmpv6Packet,
    Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, MacAddr,
};

use super::{probe_source, Control, NhKey, RouteSource, RouteTarget};
use crate::config::{is_link_local6, ConfigChange, PortId, VrfId};
use crate::nodes::ip6::solicited_node;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    /// Asked, no answer yet; packets wait.
    Incomplete,
    Reachable,
    /// Reachable but old: re-asked, still used meanwhile.
    Probe,
    /// No answer after the retries; packets to it are dropped for a while.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Neighbour {
    pub mac: MacAddr,
    pub state: NeighState,
    /// When the state last changed or was confirmed.
    pub updated: Instant,
    pub probes: u32,
    last_probe: Instant,
    held: VecDeque<(VrfId, Vec<u8>)>,
    host_route: bool,
}

impl Neighbour {
    pub fn is_usable(&self) -> bool {
        matches!(self.state, NeighState::Reachable | NeighState::Probe)
    }
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourSettings {
    /// Packets kept per unresolved neighbour; older ones are dropped first.
    pub queue_len: usize,
    /// Requests sent before a neighbour is declared failed.
    pub retries: u32,
    pub retry_interval: Duration,
    /// After this long without confirmation a neighbour is re-probed.
    pub reachable_time: Duration,
    /// How long a failed neighbour drops packets before it is asked again.
    pub failed_time: Duration,
}

impl Default for NeighbourSettings {
    fn default() -> Self {
        NeighbourSettings {
            queue_len: 16,
            retries: 3,
            retry_interval: Duration::from_secs(1),
            reachable_time: Duration::from_secs(30),
            failed_time: Duration::from_secs(3),
        }
    }
}

impl Control {
    /// Every neighbour: port, address and entry.
    pub fn neighbours(&self) -> Vec<(PortId, IpAddr, Neighbour)> {
        let mut v: Vec<_> = self
            .neighbours
            .iter()
            .map(|((p, a), n)| (*p, *a, n.clone()))
            .collect();
        v.sort_by_key(|x| (x.0, x.1));
        v
    }

    /// Add a static neighbour (never aged).
    pub fn set_static_neighbour(&mut self, port: PortId, addr: IpAddr, mac: MacAddr) {
        self.neigh_learned(
            port,
            addr,
            mac,
            Instant::now() + Duration::from_secs(1 << 30),
        );
    }

    pub(super) fn neigh_start(&mut self, port: PortId, addr: IpAddr, now: Instant) {
        self.neighbours.insert(
            (port, addr),
            Neighbour {
                mac: MacAddr::ZERO,
                state: NeighState::Incomplete,
                updated: now,
                probes: 1,
                last_probe: now,
                held: VecDeque::new(),
                host_route: false,
            },
        );
        self.send_request(port, addr, None);
    }

    pub(super) fn neigh_learned(&mut self, port: PortId, addr: IpAddr, mac: MacAddr, now: Instant) {
        if !self.on_link(port, addr) || !mac.is_unicast() {
            return;
        }
        let key = (port, addr);
        let changed = match self.neighbours.get_mut(&key) {
            Some(n) => {
                let changed = !n.is_usable() || n.mac != mac;
                n.mac = mac;
                n.state = NeighState::Reachable;
                n.updated = now;
                n.probes = 0;
                changed
            }
            None => {
                self.neighbours.insert(
                    key,
                    Neighbour {
                        mac,
                        state: NeighState::Reachable,
                        updated: now,
                        probes: 0,
                        last_probe: now,
                        held: VecDeque::new(),
                        host_route: false,
                    },
                );
                true
            }
        };
        if !changed {
            return;
        }
        self.stats.resolved += 1;
        self.pending.push(ConfigChange::SetNeighbour {
            port,
            addr,
            mac: Some(mac),
        });
        self.nh_refresh(port, addr);
        let vrf = self.port(port).map(|p| p.vrf).unwrap_or(0);
        let on_subnet = !matches!(addr, IpAddr::V6(a) if is_link_local6(a));
        let n = self.neighbours.get_mut(&key).expect("inserted above");
        let needs_route = on_subnet && !n.host_route;
        n.host_route |= on_subnet;
        let held: Vec<_> = n.held.drain(..).collect();
        if needs_route {
            let host = IpNet::new(addr, if addr.is_ipv4() { 32 } else { 128 }).expect("valid");
            let nh = self.nh_get(NhKey::Neighbour(port, addr));
            let target = RouteTarget::Via {
                gateway: addr,
                port: Some(port),
            };
            self.rib_add(vrf, host, RouteSource::Neighbour, nh, target);
        }
        for (_, l3) in held {
            self.send_l3(port, mac, addr.is_ipv4(), &l3);
            self.stats.released += 1;
        }
    }

    pub(super) fn neigh_hold(
        &mut self,
        port: PortId,
        addr: IpAddr,
        vrf: VrfId,
        l3: Vec<u8>,
        now: Instant,
    ) {
        if !self.neighbours.contains_key(&(port, addr)) {
            if !self.on_link(port, addr) {
                self.stats.held_dropped += 1;
                return;
            }
            self.neigh_start(port, addr, now);
        }
        let qlen = self.settings.queue_len;
        let n = self.neighbours.get_mut(&(port, addr)).expect("present");
        match n.state {
            NeighState::Failed => self.stats.held_dropped += 1,
            NeighState::Reachable | NeighState::Probe => {
                // Resolved while the packet was on its way here.
                let mac = n.mac;
                self.send_l3(port, mac, addr.is_ipv4(), &l3);
                self.stats.released += 1;
            }
            NeighState::Incomplete => {
                if n.held.len() >= qlen {
                    n.held.pop_front();
                    self.stats.held_dropped += 1;
                }
                n.held.push_back((vrf, l3));
                self.stats.held += 1;
            }
        }
    }

    pub(super) fn neigh_timers(&mut self, now: Instant) {
        let s = self.settings;
        let mut probe = Vec::new();
        let mut forget = Vec::new();
        let mut restart = Vec::new();
        for (k, n) in self.neighbours.iter_mut() {
            let since = now.saturating_duration_since(n.last_probe);
            match n.state {
                NeighState::Incomplete | NeighState::Probe if since >= s.retry_interval => {
                    if n.probes < s.retries {
                        n.probes += 1;
                        n.last_probe = now;
                        let unicast = (n.state == NeighState::Probe).then_some(n.mac);
                        probe.push((*k, unicast));
                    } else if n.state == NeighState::Incomplete {
                        n.state = NeighState::Failed;
                        n.updated = now;
                        self.stats.failed += 1;
                        self.stats.held_dropped += n.held.len() as u64;
                        n.held.clear();
                    } else {
                        forget.push(*k);
                    }
                }
                NeighState::Reachable
                    if now.saturating_duration_since(n.updated) >= s.reachable_time =>
                {
                    n.state = NeighState::Probe;
                    n.probes = 1;
                    n.last_probe = now;
                    probe.push((*k, Some(n.mac)));
                }
                NeighState::Failed if now.saturating_duration_since(n.updated) >= s.failed_time => {
                    restart.push(*k);
                }
                _ => {}
            }
        }
        for ((p, a), mac) in probe {
            self.send_request(p, a, mac);
        }
        for k in forget {
            self.neigh_forget(k);
            if self.nh_ids.contains_key(&NhKey::Neighbour(k.0, k.1)) {
                restart.push(k);
            }
        }
        for k in restart {
            self.neighbours.remove(&k);
            if self.nh_ids.contains_key(&NhKey::Neighbour(k.0, k.1)) {
                self.neigh_start(k.0, k.1, now);
            }
        }
    }

    /// Remove a neighbour: its MAC leaves the next hops and its host route
    /// goes away.
    pub(super) fn neigh_forget(&mut self, key: (PortId, IpAddr)) {
        let Some(n) = self.neighbours.remove(&key) else {
            return;
        };
        self.stats.held_dropped += n.held.len() as u64;
        self.pending.push(ConfigChange::SetNeighbour {
            port: key.0,
            addr: key.1,
            mac: None,
        });
        self.nh_refresh(key.0, key.1);
        if n.host_route {
            let vrf = self.port(key.0).map(|p| p.vrf).unwrap_or(0);
            let host = IpNet::new(key.1, if key.1.is_ipv4() { 32 } else { 128 }).expect("valid");
            self.rib_del(vrf, host, RouteSource::Neighbour);
        }
    }

    /// Ask for `addr` on `port`: broadcast ARP / multicast NS, or unicast to
    /// `mac` when re-probing a known neighbour.
    fn send_request(&mut self, port: PortId, addr: IpAddr, mac: Option<MacAddr>) {
        let Some(p) = self.port(port) else { return };
        let Some(src) = probe_source(p, addr) else {
            return;
        };
        let our_mac = p.mac;
        let frame = match (addr, src) {
            (IpAddr::V4(target), IpAddr::V4(sender)) => {
                let arp = ArpRepr {
                    operation: ArpOperation::Request,
                    sender_mac: our_mac,
                    sender_ip: sender,
                    target_mac: MacAddr::ZERO,
                    target_ip: target,
                };
                let mut f = eth_frame(
                    mac.unwrap_or(MacAddr::BROADCAST),
                    our_mac,
                    EtherType::ARP,
                    arp.buffer_len(),
                );
                arp.emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
                f
            }
            (IpAddr::V6(target), IpAddr::V6(sender)) => {
                let dst = match mac {
                    Some(_) => target,
                    None => solicited_node(target),
                };
                let ns = Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit {
                    target,
                    options: vec![NdpOption::SourceLinkLayerAddr(our_mac)],
                });
                let ip = Ipv6Repr {
                    src: sender,
                    dst,
                    next_header: IpProtocol::ICMPV6,
                    hop_limit: 255,
                    traffic_class: 0,
                    flow_label: 0,
                    payload_len: ns.buffer_len(),
                };
                let dmac = mac.unwrap_or_else(|| MacAddr::ipv6_multicast(dst));
                let mut f = eth_frame(dmac, our_mac, EtherType::IPV6, 40 + ns.buffer_len());
                ip.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
                ns.emit(sender, dst, &mut Icmpv6Packet::new_unchecked(&mut f[54..]));
                f
            }
            _ => return,
        };
        self.stats.requests_sent += 1;
        self.inject(port, frame);
    }

    /// Send a held packet now that its neighbour is known.
    fn send_l3(&mut self, port: PortId, mac: MacAddr, v4: bool, l3: &[u8]) {
        let Some(p) = self.port(port) else { return };
        let ty = if v4 { EtherType::IPV4 } else { EtherType::IPV6 };
        let mut f = eth_frame(mac, p.mac, ty, l3.len());
        f[14..].copy_from_slice(l3);
        self.inject(port, f);
    }
}

fn eth_frame(dst: MacAddr, src: MacAddr, ty: EtherType, payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload];
    EthernetRepr {
        dst,
        src,
        vlan: None,
        ethertype: ty,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f
}
