//! IPv6: input checks, FIB lookup, hop limit, output (neighbour, MTU, L2
//! rewrite) and the gateway's own addresses (echo, neighbour discovery).

use std::net::{IpAddr, Ipv6Addr};

use crate::buffer::{PktId, FLAG_L2_MULTICAST, FLAG_TTL_DONE};
use crate::config::{is_link_local6, NextHop, PortConfig};
use crate::graph::{Ctx, Dispatch, Node, Reason, FRAME_CAP};
use crate::nodes::ip4::{hold, pick_member, set_icmp};
use crate::nodes::{flow_hash, macs, write_eth};
use crate::worker::Punt;
use weir_packet::checksum;
use weir_packet::ndp;
use weir_packet::{EtherType, Icmpv6Packet, IpProtocol, Ipv6Packet, Ipv6Repr, MacAddr};

const IP6_HLEN: usize = weir_packet::ipv6::HEADER_LEN;

pub const ICMP6_DEST_UNREACHABLE: u8 = 1;
pub const ICMP6_PACKET_TOO_BIG: u8 = 2;
pub const ICMP6_TIME_EXCEEDED: u8 = 3;
pub const CODE6_NO_ROUTE: u8 = 0;
pub const CODE6_ADMIN_PROHIBITED: u8 = 1;
pub const CODE6_ADDR_UNREACHABLE: u8 = 3;
pub const CODE6_REJECT_ROUTE: u8 = 6;

const NDP_NS: u8 = 135;
const NDP_NA: u8 = 136;
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;

/// Solicited-node multicast address of `a` (RFC 4291 2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// Link-scope multicast groups this port listens to.
fn listens_to(port: &PortConfig, dst: Ipv6Addr) -> bool {
    let s = dst.segments();
    if dst == Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
        || dst == Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2)
    {
        return true;
    }
    if s[..6] != [0xff02, 0, 0, 0, 0, 1] || s[6] & 0xff00 != 0xff00 {
        return false;
    }
    dst == solicited_node(port.link_local6)
        || port.addrs6.iter().any(|(a, _)| solicited_node(*a) == dst)
}

/// Validates the header, drops martians, sends link-local multicast for us
/// to ip6-local.
pub struct Ip6Input;

impl Node for Ip6Input {
    fn name(&self) -> &'static str {
        "ip6-input"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["ip6-lookup", "ip6-local"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let l3 = buf.meta.l3_offset as usize;
            let d = buf.data();
            // The fixed header as a view of exactly 40 bytes: no further
            // bounds checks; the payload length is checked here.
            let Some(fixed) = d.get(l3..).and_then(|x| x.first_chunk::<IP6_HLEN>()) else {
                out.drop_at(i, Reason::Ip6Malformed);
                continue;
            };
            let ip = Ipv6Packet::new_unchecked(fixed);
            let total = IP6_HLEN + ip.payload_len() as usize;
            if ip.version() != 6 || l3 + total > d.len() {
                out.drop_at(i, Reason::Ip6Malformed);
                continue;
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            if src.is_multicast() || src.is_loopback() {
                out.drop_at(i, Reason::Ip6MartianSrc);
                continue;
            }
            if dst.is_loopback() || dst.is_unspecified() {
                out.drop_at(i, Reason::Ip6MartianDst);
                continue;
            }
            buf.set_len(l3 + total);
            if dst.is_multicast() {
                let ours = cx
                    .config
                    .port(buf.meta.rx_port)
                    .is_some_and(|p| listens_to(p, dst));
                if ours {
                    out.next(i, 1);
                } else {
                    out.drop_at(i, Reason::Ip6Multicast);
                }
                continue;
            }
            out.next(i, 0);
        }
    }
}

/// Longest-prefix match in the packet's VRF; picks the ECMP member.
#[derive(Default)]
pub struct Ip6Lookup {
    dsts: Vec<u128>,
    nhs: Vec<u32>,
}

const L_FORWARD: usize = 0;
const L_LOCAL: usize = 1;
const L_ICMP: usize = 2;

fn hash6(ip: &[u8]) -> u32 {
    let Ok(p) = Ipv6Packet::new_checked(ip) else {
        return 0;
    };
    let (proto, l4) = match p.upper_layer() {
        Ok(u) if u.fragment.is_none() => (u.protocol.0, ip.get(u.offset..).unwrap_or(&[])),
        Ok(u) => (u.protocol.0, &[][..]),
        Err(_) => (0, &[][..]),
    };
    let fl = p.flow_label() as u128;
    flow_hash(
        u128::from_be_bytes(p.src_bytes()),
        u128::from_be_bytes(p.dst_bytes()) ^ fl,
        proto,
        l4,
    )
}

impl Node for Ip6Lookup {
    fn name(&self) -> &'static str {
        "ip6-lookup"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["ip6-output", "ip6-local", "icmp6-error"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        if self.dsts.capacity() < FRAME_CAP {
            self.dsts.reserve(FRAME_CAP);
            self.nhs.reserve(FRAME_CAP);
        }
        self.dsts.clear();
        let vrf0 = cx.pool.get(pkts[0]).meta.vrf;
        let mut one_vrf = true;
        for &id in pkts.iter() {
            let b = cx.pool.get(id);
            one_vrf &= b.meta.vrf == vrf0;
            let l3 = b.meta.l3_offset as usize;
            let dst = b
                .data()
                .get(l3 + 24..l3 + 40)
                .map(|x| u128::from_be_bytes(x.try_into().unwrap_or([0; 16])))
                .unwrap_or(0);
            self.dsts.push(dst);
        }
        self.nhs.clear();
        self.nhs.resize(pkts.len(), weir_fib::NO_ROUTE);
        let cfg = cx.config;
        if one_vrf {
            if let Some(v) = cfg.vrf(vrf0) {
                v.fib6.lookup_batch(&self.dsts, &mut self.nhs);
            }
        } else {
            for (i, &id) in pkts.iter().enumerate() {
                let vrf = cx.pool.get(id).meta.vrf;
                if let Some(nh) = cfg.lookup6(vrf, self.dsts[i]) {
                    self.nhs[i] = nh;
                }
            }
        }
        for (i, &id) in pkts.iter().enumerate() {
            // fe80::/10, on the integer: the top ten bits.
            if self.dsts[i] >> 118 == 0x3fa {
                let dst = Ipv6Addr::from(self.dsts[i]);
                // Link-local destinations are ours or nobody's.
                let ours = cx
                    .config
                    .port(cx.pool.get(id).meta.rx_port)
                    .is_some_and(|p| p.link_local6 == dst);
                if ours {
                    out.next(i, L_LOCAL);
                } else {
                    out.drop_at(i, Reason::Ip6ScopeViolation);
                }
                continue;
            }
            let nh = self.nhs[i];
            if cfg.forwards(nh) {
                cx.pool.get_mut(id).meta.nexthop = nh;
                out.next(i, L_FORWARD);
                continue;
            }
            let dst = self.dsts[i];
            let nh = cfg.follow_table(nh, |c, v| c.lookup6(v, dst));
            if nh == weir_fib::NO_ROUTE {
                out.count(Reason::Ip6NoRoute);
                set_icmp(cx, id, ICMP6_DEST_UNREACHABLE, CODE6_NO_ROUTE, 0);
                out.next(i, L_ICMP);
                continue;
            }
            match cfg.nexthop(nh) {
                Some(NextHop::Neighbour { .. }) | Some(NextHop::Attached { .. }) => {
                    cx.pool.get_mut(id).meta.nexthop = nh;
                    out.next(i, L_FORWARD);
                }
                Some(NextHop::Group(_)) => {
                    let b = cx.pool.get_mut(id);
                    let member = pick_member(cfg, nh, || {
                        let l3 = b.meta.l3_offset as usize;
                        hash6(&b.data()[l3..])
                    });
                    b.meta.nexthop = member;
                    out.next(i, L_FORWARD);
                }
                Some(NextHop::Local { .. }) => {
                    cx.pool.get_mut(id).meta.nexthop = nh;
                    out.next(i, L_LOCAL);
                }
                Some(NextHop::Blackhole) => out.drop_at(i, Reason::Ip6Blackhole),
                Some(NextHop::Unreachable) | Some(NextHop::Table(_)) | None => {
                    out.count(Reason::Ip6Unreachable);
                    set_icmp(cx, id, ICMP6_DEST_UNREACHABLE, CODE6_REJECT_ROUTE, 0);
                    out.next(i, L_ICMP);
                }
                Some(NextHop::Prohibit) => {
                    out.count(Reason::Ip6Prohibited);
                    set_icmp(cx, id, ICMP6_DEST_UNREACHABLE, CODE6_ADMIN_PROHIBITED, 0);
                    out.next(i, L_ICMP);
                }
            }
        }
    }
}

/// Hop limit, next hop to port and MAC, MTU (routers never fragment
/// IPv6), Ethernet rewrite.
pub struct Ip6Output;

const O_TX: usize = 0;
const O_ICMP: usize = 1;

impl Node for Ip6Output {
    fn name(&self) -> &'static str {
        "ip6-output"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["port-tx", "icmp6-error"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let cfg = cx.config;
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let l3 = buf.meta.l3_offset as usize;
            let nexthop = buf.meta.nexthop;
            let flags = buf.meta.flags;
            let ttl_done = flags & FLAG_TTL_DONE != 0;
            if !ttl_done && flags & FLAG_L2_MULTICAST != 0 {
                out.drop_at(i, Reason::Ip6LinkMulticast);
                continue;
            }
            buf.meta.flags |= FLAG_TTL_DONE;
            // ip6-input validated the header; work on its fixed 40 bytes.
            let Some(fixed) = buf
                .data_mut()
                .get_mut(l3..)
                .and_then(|x| x.first_chunk_mut::<IP6_HLEN>())
            else {
                out.drop_at(i, Reason::Ip6Malformed);
                continue;
            };
            let mut ip = Ipv6Packet::new_unchecked(fixed);
            if !ttl_done {
                let src = ip.src_addr();
                if is_link_local6(src) || src.is_unspecified() {
                    out.drop_at(i, Reason::Ip6ScopeViolation);
                    continue;
                }
                let hl = ip.hop_limit();
                if hl <= 1 {
                    out.count(Reason::Ip6HopLimitExpired);
                    set_icmp(cx, id, ICMP6_TIME_EXCEEDED, 0, 0);
                    out.next(i, O_ICMP);
                    continue;
                }
                ip.set_hop_limit(hl - 1);
            }
            let total = 40 + ip.payload_len() as usize;
            let adj = cfg.adjacency_of(nexthop);
            if !adj.ready {
                let dst = ip.dst_addr();
                match cfg.nexthop(nexthop) {
                    Some(NextHop::Neighbour { port, addr, .. }) => hold(cx, id, *port, *addr, out),
                    Some(NextHop::Attached { port }) => hold(cx, id, *port, IpAddr::V6(dst), out),
                    _ => out.drop(id, Reason::Ip6Unreachable),
                }
                out.consumed(i);
                continue;
            }
            buf.meta.tx_port = adj.port;
            if total > adj.mtu as usize {
                out.count(Reason::Ip6TooBig);
                set_icmp(cx, id, ICMP6_PACKET_TOO_BIG, 0, adj.mtu);
                out.next(i, O_ICMP);
                continue;
            }
            if !write_eth(buf, &adj.rewrite, EtherType::IPV6) {
                out.drop_at(i, Reason::NoBuffer);
                continue;
            }
            out.next(i, O_TX);
        }
    }
}

/// Packets for the gateway itself: echo replies and neighbour discovery.
pub struct Ip6Local;

const LOCAL_LOOKUP: usize = 0;
const LOCAL_TX: usize = 1;
const LOCAL_PUNT: usize = 2;

impl Node for Ip6Local {
    fn name(&self) -> &'static str {
        "ip6-local"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["ip6-lookup", "port-tx", "punt-kernel"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let b = cx.pool.get(id);
            let l3 = b.meta.l3_offset as usize;
            let Ok(ip) = Ipv6Packet::new_checked(&b.data()[l3..]) else {
                out.drop_at(i, Reason::Ip6Malformed);
                continue;
            };
            // The dataplane answers ICMPv6 right after the fixed header; the
            // rest (TCP/UDP, extension headers, MLD, RA) is the kernel's.
            if ip.next_header() != IpProtocol::ICMPV6 {
                out.next(i, LOCAL_PUNT);
                continue;
            }
            let (src, dst, hop) = (ip.src_addr(), ip.dst_addr(), ip.hop_limit());
            let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
                out.drop_at(i, Reason::IcmpMalformed);
                continue;
            };
            if !icmp.verify_checksum(src, dst) {
                out.drop_at(i, Reason::IcmpBadChecksum);
                continue;
            }
            match icmp.msg_type() {
                ECHO_REQUEST => {
                    echo_reply(cx, id, out);
                    out.consumed(i);
                }
                NDP_NS | NDP_NA => {
                    // RFC 4861 7.1: hop limit 255, code 0, a unicast target
                    // and a well-formed option list; checked in place.
                    let target = icmp.ndp_target();
                    let opts = icmp.ndp_options();
                    let Some(target) = target.filter(|t| !t.is_multicast()) else {
                        out.drop_at(i, Reason::NdMalformed);
                        continue;
                    };
                    if hop != 255 || icmp.code() != 0 || ndp::check_options(opts).is_err() {
                        out.drop_at(i, Reason::NdMalformed);
                        continue;
                    }
                    let nd = if icmp.msg_type() == NDP_NS {
                        Nd::Solicit {
                            target,
                            slla: ndp::find_link_layer_option(opts, ndp::OPT_SOURCE_LL_ADDR),
                        }
                    } else {
                        Nd::Advert {
                            target,
                            tlla: ndp::find_link_layer_option(opts, ndp::OPT_TARGET_LL_ADDR),
                        }
                    };
                    neighbour_discovery(cx, id, src, dst, nd, out);
                    out.consumed(i);
                }
                _ => out.next(i, LOCAL_PUNT),
            }
        }
    }
}

fn echo_reply(cx: &mut Ctx<'_>, id: PktId, out: &mut Dispatch<'_>) {
    let rx = cx.pool.get(id).meta.rx_port;
    let port_ll = cx.config.port(rx).map(|p| p.link_local6);
    let port_mac = cx.config.port(rx).map(|p| p.mac).unwrap_or(MacAddr::ZERO);
    let buf = cx.pool.get_mut(id);
    buf.meta.flags |= FLAG_TTL_DONE;
    let l3 = buf.meta.l3_offset as usize;
    let mut ip = Ipv6Packet::new_unchecked(&mut buf.data_mut()[l3..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    // A reply to a multicast echo comes from our link-local address; the
    // checksum then changes with the pseudo-header, so recompute it.
    let new_src = if dst.is_multicast() {
        match port_ll {
            Some(a) => a,
            None => {
                out.drop(id, Reason::PortDown);
                return;
            }
        }
    } else {
        dst
    };
    ip.set_src_addr(new_src);
    ip.set_dst_addr(src);
    ip.set_hop_limit(64);
    let mut icmp = Icmpv6Packet::new_unchecked(ip.payload_mut());
    icmp.set_msg_type(ECHO_REPLY);
    if new_src == dst {
        let c = checksum::update_u16(
            icmp.checksum(),
            u16::from_be_bytes([ECHO_REQUEST, 0]),
            u16::from_be_bytes([ECHO_REPLY, 0]),
        );
        icmp.set_checksum(c);
    } else {
        icmp.fill_checksum(new_src, src);
    }
    if is_link_local6(src) {
        // On-link by definition: straight back to the sender's MAC.
        let peer = MacAddr::from_slice(&buf.data()[6..12]).unwrap_or(MacAddr::BROADCAST);
        if !write_eth(buf, &macs(peer, port_mac), EtherType::IPV6) {
            out.drop(id, Reason::NoBuffer);
            return;
        }
        buf.meta.tx_port = rx;
        out.send(LOCAL_TX, id);
        return;
    }
    out.send(LOCAL_LOOKUP, id);
}

/// What the gateway needs of a neighbour solicitation or advertisement.
enum Nd {
    Solicit {
        target: Ipv6Addr,
        slla: Option<MacAddr>,
    },
    Advert {
        target: Ipv6Addr,
        tlla: Option<MacAddr>,
    },
}

fn neighbour_discovery(
    cx: &mut Ctx<'_>,
    id: PktId,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: Nd,
    out: &mut Dispatch<'_>,
) {
    let rx = cx.pool.get(id).meta.rx_port;
    let cfg = cx.config;
    let Some(port) = cfg.port(rx) else {
        out.drop(id, Reason::PortDown);
        return;
    };
    match nd {
        Nd::Solicit { target, slla } => {
            if src.is_unspecified() && (!dst.is_multicast() || slla.is_some()) {
                // DAD probes go to the solicited-node group and carry no SLLA.
                out.drop(id, Reason::NdMalformed);
                return;
            }
            if let Some(m) = slla {
                learn(cx, rx, src, m);
            }
            if !port.has_addr6(target) {
                out.drop(id, Reason::NdNotForUs);
                return;
            }
            let mac = port.mac;
            send_na(cx, id, mac, src, target, slla, out);
        }
        Nd::Advert { target, tlla } => {
            if let Some(m) = tlla {
                learn(cx, rx, target, m);
            }
            // The kernel mirror resolves its own neighbours from these.
            out.send(LOCAL_PUNT, id);
        }
    }
}

/// Tell the control side about a neighbour if it changes what we know.
fn learn(cx: &mut Ctx<'_>, port: u16, addr: Ipv6Addr, mac: MacAddr) {
    if !mac.is_unicast() || addr.is_unspecified() || addr.is_multicast() {
        return;
    }
    let key = (port, IpAddr::V6(addr));
    if cx.config.neighbours.get(&key) != Some(&mac) {
        cx.local.punt(Punt::Neighbour {
            port,
            addr: IpAddr::V6(addr),
            mac,
        });
    }
}

/// Answer a solicitation for one of our addresses (RFC 4861 7.2.4), in place.
fn send_na(
    cx: &mut Ctx<'_>,
    id: PktId,
    port_mac: MacAddr,
    src: Ipv6Addr,
    target: Ipv6Addr,
    slla: Option<MacAddr>,
    out: &mut Dispatch<'_>,
) {
    let buf = cx.pool.get_mut(id);
    let rx = buf.meta.rx_port;
    let eth_src = MacAddr::from_slice(&buf.data()[6..12]).unwrap_or(MacAddr::BROADCAST);
    let (dst_ip, dst_mac, solicited) = if src.is_unspecified() {
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        (all_nodes, MacAddr::ipv6_multicast(all_nodes), false)
    } else {
        (src, slla.unwrap_or(eth_src), true)
    };
    // The advertisement is written field by field over the solicitation:
    // IPv6 header, 24-byte NA body, one target link-layer address option.
    const NA_LEN: usize = 24 + 8;
    let ip = Ipv6Repr {
        src: target,
        dst: dst_ip,
        next_header: IpProtocol::ICMPV6,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
        payload_len: NA_LEN,
    };
    if !write_eth(buf, &macs(dst_mac, port_mac), EtherType::IPV6) || !buf.set_len(14 + 40 + NA_LEN)
    {
        out.drop(id, Reason::NoBuffer);
        return;
    }
    let d = &mut buf.data_mut()[14..];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut d[..40]));
    let na = &mut d[40..40 + NA_LEN];
    na.fill(0);
    na[0] = NDP_NA;
    // Router, override, and solicited when answering a unicast source.
    na[4] = 0x80 | 0x20 | if solicited { 0x40 } else { 0 };
    na[8..24].copy_from_slice(&target.octets());
    na[24] = ndp::OPT_TARGET_LL_ADDR;
    na[25] = 1;
    na[26..32].copy_from_slice(&port_mac.0);
    Icmpv6Packet::new_unchecked(&mut na[..]).fill_checksum(target, dst_ip);
    buf.meta.tx_port = rx;
    out.send(LOCAL_TX, id);
}
