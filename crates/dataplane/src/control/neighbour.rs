//! The neighbour table (ARP and NDP): resolution with a small bounded queue
//! of waiting packets, retries, failure (with ICMP errors about the waiting
//! packets), aging by periodic re-probing, and a cap per port and in total
//! so that a scan of an attached subnet cannot grow it without bound.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use weir_packet::ndp::{NdpOption, NdpRepr};
use weir_packet::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Icmpv6Packet,
    Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, MacAddr,
};

use super::held::{give_back, HeldQueue};
use super::{probe_source, Control, NhKey, RouteSource, RouteTarget};
use crate::tables::{PortId, TableChange, VrfId};
use weir_packet::ipv6::is_link_local;
use weir_packet::ipv6::solicited_node;

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
    held: HeldQueue,
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
    /// Entries per port and in total. Beyond them unresolved and stale
    /// entries are evicted to make room, oldest first; when only resolved
    /// or configured neighbours are left, a new entry is refused.
    pub max_per_port: usize,
    pub max_total: usize,
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
            max_per_port: 2048,
            max_total: 8192,
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

    /// Start resolving `addr`. `configured` entries (a route's gateway)
    /// are made even when the table is full; others need room. False when
    /// refused.
    pub(super) fn neigh_start(
        &mut self,
        port: PortId,
        addr: IpAddr,
        now: Instant,
        configured: bool,
    ) -> bool {
        if !self.neigh_room(port) && !configured {
            return false;
        }
        self.neigh_insert(
            (port, addr),
            Neighbour {
                mac: MacAddr::ZERO,
                state: NeighState::Incomplete,
                updated: now,
                probes: 1,
                last_probe: now,
                held: HeldQueue::default(),
                host_route: false,
            },
        );
        self.evictable_push(port, addr);
        self.send_request(port, addr, None);
        true
    }

    fn neigh_insert(&mut self, key: (PortId, IpAddr), n: Neighbour) {
        if self.neighbours.insert(key, n).is_none() {
            let p = key.0 as usize;
            if self.neigh_count.len() <= p {
                self.neigh_count.resize(p + 1, 0);
            }
            self.neigh_count[p] += 1;
        }
    }

    fn neigh_remove(&mut self, key: (PortId, IpAddr)) -> Option<Neighbour> {
        let n = self.neighbours.remove(&key)?;
        if let Some(c) = self.neigh_count.get_mut(key.0 as usize) {
            *c = c.saturating_sub(1);
        }
        Some(n)
    }

    fn evictable_push(&mut self, port: PortId, addr: IpAddr) {
        let p = port as usize;
        if self.evictable.len() <= p {
            self.evictable.resize_with(p + 1, Default::default);
        }
        let q = &mut self.evictable[p];
        q.push_back(addr);
        // Entries that resolved stay in the queue until taken; keep it
        // within a small multiple of the table.
        if q.len() > 2 * self.settings.max_per_port.max(16) {
            let ns = &self.neighbours;
            q.retain(|a| ns.get(&(port, *a)).is_some_and(|n| !n.is_usable()));
        }
    }

    /// Entries on `port`.
    pub fn neighbour_count(&self, port: PortId) -> usize {
        self.neigh_count.get(port as usize).copied().unwrap_or(0)
    }

    /// Whether an entry may go to make room: unresolved or stale, and no
    /// route uses it as its gateway (its own host route aside).
    fn evictable(&self, key: (PortId, IpAddr)) -> bool {
        let Some(n) = self.neighbours.get(&key) else {
            return false;
        };
        if n.is_usable() && n.state != NeighState::Probe {
            return false;
        }
        let refs = self
            .nh_ids
            .get(&NhKey::Neighbour(key.0, key.1))
            .map_or(0, |x| x.1);
        refs <= n.host_route as u32
    }

    /// Evict the oldest evictable entry of `port`.
    fn evict_one(&mut self, port: PortId) -> bool {
        while let Some(a) = self
            .evictable
            .get_mut(port as usize)
            .and_then(|q| q.pop_front())
        {
            if self.evictable((port, a)) {
                self.neigh_forget((port, a));
                self.stats.neigh_evicted += 1;
                return true;
            }
        }
        false
    }

    /// Make room for one more entry on `port`, evicting if needed; counts
    /// a refusal when nothing could go.
    fn neigh_room(&mut self, port: PortId) -> bool {
        let s = self.settings;
        if self.neighbour_count(port) >= s.max_per_port && !self.evict_one(port) {
            self.stats.neigh_refused += 1;
            return false;
        }
        if self.neighbours.len() >= s.max_total {
            // Take from the fullest port first.
            let mut ports: Vec<(usize, PortId)> = self
                .neigh_count
                .iter()
                .enumerate()
                .map(|(p, c)| (*c, p as PortId))
                .collect();
            ports.sort_unstable_by(|a, b| b.cmp(a));
            if !ports.into_iter().any(|(_, p)| self.evict_one(p)) {
                self.stats.neigh_refused += 1;
                return false;
            }
        }
        true
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
                if !self.neigh_room(port) {
                    return;
                }
                self.neigh_insert(
                    key,
                    Neighbour {
                        mac,
                        state: NeighState::Reachable,
                        updated: now,
                        probes: 0,
                        last_probe: now,
                        held: HeldQueue::default(),
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
        self.pending.push(TableChange::SetNeighbour {
            port,
            addr,
            mac: Some(mac),
        });
        self.nh_refresh(port, addr);
        let vrf = self.port(port).map(|p| p.vrf).unwrap_or(0);
        let on_subnet = !matches!(addr, IpAddr::V6(a) if is_link_local(a));
        let n = self.neighbours.get_mut(&key).expect("inserted above");
        let needs_route = on_subnet && !n.host_route;
        n.host_route |= on_subnet;
        let mut held = std::mem::take(&mut n.held);
        if needs_route {
            let host = IpNet::new(addr, if addr.is_ipv4() { 32 } else { 128 }).expect("valid");
            let nh = self.nh_get(NhKey::Neighbour(port, addr));
            let target = RouteTarget::Via {
                gateway: addr,
                port: Some(port),
            };
            self.rib_add(vrf, host, RouteSource::Neighbour, nh, target);
        }
        while let Some((_, l3)) = self.held.pop(&mut held) {
            self.send_l3(port, mac, addr.is_ipv4(), &l3);
            give_back(&self.held_buffers, l3);
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
        if !self.neighbours.contains_key(&(port, addr))
            && (!self.on_link(port, addr) || !self.neigh_start(port, addr, now, false))
        {
            self.stats.held_dropped += 1;
            give_back(&self.held_buffers, l3);
            return;
        }
        let qlen = self.settings.queue_len;
        let n = self.neighbours.get_mut(&(port, addr)).expect("present");
        match n.state {
            NeighState::Failed => {
                // Still failed: the sender hears at once.
                self.stats.held_dropped += 1;
                self.send_unreachable(vrf, &l3, now);
                give_back(&self.held_buffers, l3);
            }
            NeighState::Reachable | NeighState::Probe => {
                // Resolved while the packet was on its way here.
                let mac = n.mac;
                self.send_l3(port, mac, addr.is_ipv4(), &l3);
                give_back(&self.held_buffers, l3);
                self.stats.released += 1;
            }
            NeighState::Incomplete => {
                let mut q = n.held;
                if q.len() >= qlen {
                    if let Some((_, old)) = self.held.pop(&mut q) {
                        give_back(&self.held_buffers, old);
                    }
                    self.stats.held_dropped += 1;
                }
                match self.held.push(&mut q, vrf, l3) {
                    Ok(()) => self.stats.held += 1,
                    Err(l3) => {
                        self.stats.held_dropped += 1;
                        give_back(&self.held_buffers, l3);
                    }
                }
                if let Some(n) = self.neighbours.get_mut(&(port, addr)) {
                    n.held = q;
                }
            }
        }
    }

    /// Drop what `key` holds; with `tell`, the senders get an ICMP error
    /// (rate limited) about each packet.
    fn held_drop(&mut self, key: (PortId, IpAddr), tell: bool, now: Instant) {
        let Some(n) = self.neighbours.get_mut(&key) else {
            return;
        };
        let mut q = std::mem::take(&mut n.held);
        while let Some((vrf, l3)) = self.held.pop(&mut q) {
            self.stats.held_dropped += 1;
            if tell {
                self.send_unreachable(vrf, &l3, now);
            }
            give_back(&self.held_buffers, l3);
        }
    }

    /// Keep the workers' held buffers at their number: a punt the channel
    /// refused took its buffer with it.
    pub(super) fn held_top_up(&mut self) {
        let have = self.held_buffers.0.len() + self.held.len();
        for _ in have..super::held::HELD_PACKETS {
            if self
                .held_buffers
                .0
                .push(Vec::with_capacity(crate::buffer::DATA_ROOM))
                .is_err()
            {
                break;
            }
        }
    }

    pub(super) fn neigh_timers(&mut self, now: Instant) {
        let s = self.settings;
        let mut probe = Vec::new();
        let mut forget = Vec::new();
        let mut restart = Vec::new();
        let mut failed = Vec::new();
        let mut stale = Vec::new();
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
                        failed.push(*k);
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
                    stale.push(*k);
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
        for k in failed {
            // RFC 4861 7.2.2, RFC 1812 4.3.3.1: the senders learn the
            // address is unreachable.
            self.held_drop(k, true, now);
        }
        for (p, a) in stale {
            self.evictable_push(p, a);
        }
        for k in forget {
            self.neigh_forget(k);
            if self.nh_ids.contains_key(&NhKey::Neighbour(k.0, k.1)) {
                restart.push(k);
            }
        }
        for k in restart {
            self.held_drop(k, false, now);
            self.neigh_remove(k);
            if self.nh_ids.contains_key(&NhKey::Neighbour(k.0, k.1)) {
                self.neigh_start(k.0, k.1, now, true);
            }
        }
    }

    /// Remove a neighbour: its MAC leaves the next hops and its host route
    /// goes away.
    pub(super) fn neigh_forget(&mut self, key: (PortId, IpAddr)) {
        self.held_drop(key, false, Instant::now());
        let Some(n) = self.neigh_remove(key) else {
            return;
        };
        self.pending.push(TableChange::SetNeighbour {
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
