//! IPv4: input checks, FIB lookup, TTL, output (neighbour, MTU, L2
//! rewrite), fragmentation and the gateway's own addresses.

use std::net::IpAddr;

use crate::buffer::{PktId, FLAG_L2_MULTICAST, FLAG_TTL_DONE};
use crate::config::{Config, NextHop, PortId};
use crate::graph::{Ctx, Dispatch, Node, Reason, FRAME_CAP};
use crate::nodes::{flow_hash, ip4opt, write_eth};
use crate::worker::Punt;
use weir_packet::checksum;
use weir_packet::{EtherType, Icmpv4Packet, IpProtocol, Ipv4Packet};

const IP4_HLEN: usize = weir_packet::ipv4::HEADER_LEN;

pub const ICMP_DEST_UNREACHABLE: u8 = 3;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const CODE_NET_UNREACHABLE: u8 = 0;
pub const CODE_HOST_UNREACHABLE: u8 = 1;
pub const CODE_FRAG_NEEDED: u8 = 4;
pub const CODE_ADMIN_PROHIBITED: u8 = 13;

/// Addresses that must never appear as a source (RFC 1812 5.3.7).
#[inline(always)]
pub fn martian_src(a: u32) -> bool {
    let top = a >> 24;
    top == 0 || top == 127 || a >= 0xe000_0000
}

/// Destinations a router never forwards to (multicast is handled apart).
#[inline(always)]
pub fn martian_dst(a: u32) -> bool {
    let top = a >> 24;
    top == 0 || top == 127 || (a >= 0xf000_0000 && a != u32::MAX)
}

/// Point a packet at an ICMP error node with the error to send.
#[inline(always)]
pub(crate) fn set_icmp(cx: &mut Ctx<'_>, id: PktId, ty: u8, code: u8, param: u16) {
    let m = &mut cx.pool.get_mut(id).meta;
    m.icmp_type = ty;
    m.icmp_code = code;
    m.icmp_param = param;
}

/// Validates headers, drops martians, trims link padding.
pub struct Ip4Input;

impl Node for Ip4Input {
    fn name(&self) -> &'static str {
        "ip4-input"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["ip4-lookup", "icmp4-error"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let l3 = buf.meta.l3_offset as usize;
            let mut bad_option = None;
            let (src, dst, total) = {
                let d = buf.data();
                let Some(fixed) = d.get(l3..).and_then(|x| x.first_chunk::<IP4_HLEN>()) else {
                    out.drop_at(i, Reason::Ip4Malformed);
                    continue;
                };
                // The fixed header as a view of exactly 20 bytes: its getters
                // need no bounds checks. Options and lengths checked here.
                let ip = Ipv4Packet::new_unchecked(fixed);
                let (hl, total) = (ip.header_len(), ip.total_len() as usize);
                if ip.version() != 4 || hl < IP4_HLEN || total < hl || l3 + total > d.len() {
                    out.drop_at(i, Reason::Ip4Malformed);
                    continue;
                }
                let csum_ok = if hl == IP4_HLEN {
                    ip.verify_checksum()
                } else {
                    Ipv4Packet::new_unchecked(&d[l3..l3 + hl]).verify_checksum()
                };
                if !csum_ok {
                    out.drop_at(i, Reason::Ip4BadChecksum);
                    continue;
                }
                if hl > IP4_HLEN {
                    if let Err(ptr) = ip4opt::check(&d[l3 + IP4_HLEN..l3 + hl]) {
                        bad_option = Some(ptr);
                    }
                }
                (
                    u32::from_be_bytes(ip.src_bytes()),
                    u32::from_be_bytes(ip.dst_bytes()),
                    total,
                )
            };
            if martian_src(src) {
                out.drop_at(i, Reason::Ip4MartianSrc);
                continue;
            }
            if dst >= 0xe000_0000 {
                if dst == u32::MAX {
                    out.drop_at(i, Reason::Ip4Broadcast);
                } else if dst < 0xf000_0000 {
                    out.drop_at(i, Reason::Ip4Multicast);
                } else {
                    out.drop_at(i, Reason::Ip4MartianDst);
                }
                continue;
            }
            if martian_dst(dst) {
                out.drop_at(i, Reason::Ip4MartianDst);
                continue;
            }
            // Ethernet pads short frames; forward the IP packet only.
            buf.set_len(l3 + total);
            if let Some(ptr) = bad_option {
                out.count(Reason::Ip4BadOption);
                set_icmp(cx, id, ip4opt::ICMP_PARAM_PROBLEM, 0, ptr as u16);
                out.next(i, 1);
                continue;
            }
            out.next(i, 0);
        }
    }
}

/// Longest-prefix match in the packet's VRF; picks the ECMP member.
#[derive(Default)]
pub struct Ip4Lookup {
    dsts: Vec<u32>,
    nhs: Vec<u32>,
}

const L_FORWARD: usize = 0;
const L_LOCAL: usize = 1;
const L_ICMP: usize = 2;

/// Resolve an ECMP group to one member by flow hash.
#[inline(always)]
pub(crate) fn pick_member(cfg: &Config, nh: u32, hash: impl FnOnce() -> u32) -> u32 {
    match cfg.nexthop(nh) {
        Some(NextHop::Group(members)) if !members.is_empty() => {
            members[(hash() as usize) % members.len()]
        }
        _ => nh,
    }
}

impl Node for Ip4Lookup {
    fn name(&self) -> &'static str {
        "ip4-lookup"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["ip4-output", "ip4-local", "icmp4-error"]
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
            // ip4-input validated the header.
            let d = b.data();
            let dst = d
                .get(l3 + 16..l3 + 20)
                .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
                .unwrap_or(0);
            self.dsts.push(dst);
        }
        self.nhs.clear();
        self.nhs.resize(pkts.len(), weir_fib::NO_ROUTE);
        let cfg = cx.config;
        if one_vrf {
            if let Some(v) = cfg.vrf(vrf0) {
                v.fib4.lookup_batch(&self.dsts, &mut self.nhs);
            }
        } else {
            for (i, &id) in pkts.iter().enumerate() {
                let vrf = cx.pool.get(id).meta.vrf;
                if let Some(nh) = cfg.lookup4(vrf, self.dsts[i]) {
                    self.nhs[i] = nh;
                }
            }
        }
        for (i, &id) in pkts.iter().enumerate() {
            let nh = self.nhs[i];
            if cfg.forwards(nh) {
                cx.pool.get_mut(id).meta.nexthop = nh;
                out.next(i, L_FORWARD);
                continue;
            }
            let dst = self.dsts[i];
            let nh = cfg.follow_table(nh, |c, v| c.lookup4(v, dst));
            if nh == weir_fib::NO_ROUTE {
                out.count(Reason::Ip4NoRoute);
                set_icmp(cx, id, ICMP_DEST_UNREACHABLE, CODE_NET_UNREACHABLE, 0);
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
                        hash4(&b.data()[l3..])
                    });
                    b.meta.nexthop = member;
                    out.next(i, L_FORWARD);
                }
                Some(NextHop::Local { .. }) => {
                    cx.pool.get_mut(id).meta.nexthop = nh;
                    out.next(i, L_LOCAL);
                }
                Some(NextHop::Blackhole) => out.drop_at(i, Reason::Ip4Blackhole),
                Some(NextHop::Unreachable) | Some(NextHop::Table(_)) | None => {
                    out.count(Reason::Ip4Unreachable);
                    set_icmp(cx, id, ICMP_DEST_UNREACHABLE, CODE_HOST_UNREACHABLE, 0);
                    out.next(i, L_ICMP);
                }
                Some(NextHop::Prohibit) => {
                    out.count(Reason::Ip4Prohibited);
                    set_icmp(cx, id, ICMP_DEST_UNREACHABLE, CODE_ADMIN_PROHIBITED, 0);
                    out.next(i, L_ICMP);
                }
            }
        }
    }
}

/// Flow hash of an IPv4 packet (validated header at the start of `ip`).
fn hash4(ip: &[u8]) -> u32 {
    let Ok(p) = Ipv4Packet::new_checked(ip) else {
        return 0;
    };
    let l4 = if p.is_fragment() {
        &[][..]
    } else {
        p.payload()
    };
    flow_hash(
        u32::from_be_bytes(p.src_bytes()) as u128,
        u32::from_be_bytes(p.dst_bytes()) as u128,
        p.protocol().0,
        l4,
    )
}

/// TTL, next hop to port and MAC, MTU, Ethernet rewrite (VPP's
/// ip4-rewrite): one pass over the packet on its way out.
pub struct Ip4Output;

const O_TX: usize = 0;
const O_FRAG: usize = 1;
const O_ICMP: usize = 2;

/// Hand a packet's L3 bytes to the control side to wait for `addr`. They
/// are copied into one of the preallocated held buffers (no allocation);
/// when none is free the packet is dropped, counted.
pub(crate) fn hold(
    cx: &mut Ctx<'_>,
    id: PktId,
    port: PortId,
    addr: IpAddr,
    out: &mut Dispatch<'_>,
) {
    let Some(held) = &cx.config.held else {
        out.drop(id, Reason::NeighQueueFull);
        return;
    };
    let Some(mut v) = held.0.pop() else {
        out.drop(id, Reason::NeighQueueFull);
        return;
    };
    let b = cx.pool.get(id);
    let l3 = &b.data()[b.meta.l3_offset as usize..];
    if l3.len() > v.capacity() {
        let _ = held.0.push(v);
        out.drop(id, Reason::NeighHoldTooBig);
        return;
    }
    v.clear();
    v.extend_from_slice(l3);
    let punt = Punt::Hold {
        port,
        addr,
        vrf: b.meta.vrf,
        l3: v,
    };
    // A refused punt takes its buffer with it; the control side tops the
    // buffers up again.
    if cx.local.punt(punt) {
        out.drop(id, Reason::NeighHeld);
    } else {
        out.drop(id, Reason::NeighQueueFull);
    }
}

impl Node for Ip4Output {
    fn name(&self) -> &'static str {
        "ip4-output"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["port-tx", "ip4-fragment", "icmp4-error"]
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
                // Only packets the gateway makes itself set FLAG_TTL_DONE
                // first; anything else here would be forwarded.
                out.drop_at(i, Reason::Ip4LinkBroadcast);
                continue;
            }
            buf.meta.flags |= FLAG_TTL_DONE;
            // ip4-input validated the header; work on its fixed 20 bytes.
            let Some(fixed) = buf
                .data_mut()
                .get_mut(l3..)
                .and_then(|x| x.first_chunk_mut::<IP4_HLEN>())
            else {
                out.drop_at(i, Reason::Ip4Malformed);
                continue;
            };
            let mut ip = Ipv4Packet::new_unchecked(fixed);
            if !ttl_done {
                if ip.ttl() <= 1 {
                    out.count(Reason::Ip4TtlExpired);
                    set_icmp(cx, id, ICMP_TIME_EXCEEDED, 0, 0);
                    out.next(i, O_ICMP);
                    continue;
                }
                ip.decrement_ttl();
            }
            let (total, df) = (ip.total_len(), ip.dont_frag());
            let (dst, has_options) = (ip.dst_addr(), ip.header_len() > IP4_HLEN);
            let adj = cfg.adjacency_of(nexthop);
            if !ttl_done && has_options {
                forward_options(cfg, buf, l3, nexthop);
            }
            if !adj.ready {
                match cfg.nexthop(nexthop) {
                    Some(NextHop::Neighbour { port, addr, .. }) => hold(cx, id, *port, *addr, out),
                    Some(NextHop::Attached { port }) => hold(cx, id, *port, IpAddr::V4(dst), out),
                    _ => out.drop(id, Reason::Ip4Unreachable),
                }
                out.consumed(i);
                continue;
            }
            buf.meta.tx_port = adj.port;
            if total > adj.mtu {
                if df {
                    out.count(Reason::Ip4FragNeeded);
                    set_icmp(cx, id, ICMP_DEST_UNREACHABLE, CODE_FRAG_NEEDED, adj.mtu);
                    out.next(i, O_ICMP);
                } else {
                    out.next(i, O_FRAG);
                }
                continue;
            }
            if !write_eth(buf, &adj.rewrite, EtherType::IPV4) {
                out.drop_at(i, Reason::NoBuffer);
                continue;
            }
            out.next(i, O_TX);
        }
    }
}

/// Record Route and Timestamp on the way out (only packets with options).
#[cold]
fn forward_options(cfg: &Config, buf: &mut crate::buffer::PacketBuf, l3: usize, nexthop: u32) {
    let port = match cfg.nexthop(nexthop) {
        Some(NextHop::Neighbour { port, .. }) | Some(NextHop::Attached { port }) => *port,
        _ => return,
    };
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf.data_mut()[l3..]) else {
        return;
    };
    let dst = ip.dst_addr();
    let Some(out) = cfg.port(port).and_then(|p| p.source4_for(dst)) else {
        return;
    };
    let ours = |a| cfg.ports.iter().flatten().any(|p| p.has_addr4(a));
    if ip4opt::forward(ip.options_mut(), out, ours) {
        ip.fill_checksum();
    }
}

/// Splits packets larger than the egress MTU (DF clear) into fragments
/// (RFC 791); each goes back to ip4-output.
pub struct Ip4Fragment;

impl Node for Ip4Fragment {
    fn name(&self) -> &'static str {
        "ip4-fragment"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["ip4-output"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let (port_mtu, l3) = {
                let b = cx.pool.get(id);
                let mtu = cx.config.port(b.meta.tx_port).map(|p| p.mtu).unwrap_or(0);
                (mtu as usize, b.meta.l3_offset as usize)
            };
            // Header of the original, payload bounds and fragment fields.
            let mut hdr = [0u8; 60];
            let (hl, total, off0, mf0) = {
                let Ok(ip) = Ipv4Packet::new_checked(&cx.pool.get(id).data()[l3..]) else {
                    out.drop_at(i, Reason::Ip4Malformed);
                    continue;
                };
                let hl = ip.header_len();
                hdr[..hl].copy_from_slice(ip.header());
                (
                    hl,
                    ip.total_len() as usize,
                    ip.frag_offset() as usize,
                    ip.more_frags(),
                )
            };
            // Later fragments carry only the options marked "copy" (RFC 791).
            let (copied, clen) = copied_options(&hdr[20..hl]);
            let later_hl = 20 + clen;
            if port_mtu < later_hl.max(hl) + 8 {
                out.drop_at(i, Reason::Ip4FragNeeded);
                continue;
            }
            let first_chunk = (port_mtu - hl) & !7;
            let chunk = (port_mtu - later_hl) & !7;
            let payload_len = total - hl;
            // Later fragments first, built from the original's payload.
            let mut pos = first_chunk;
            let mut ok = true;
            while pos < payload_len {
                let n = chunk.min(payload_len - pos);
                let last = pos + n == payload_len;
                let Some(fid) = cx.pool.alloc() else {
                    out.count(Reason::NoBuffer);
                    ok = false;
                    break;
                };
                let (src_buf, dst_buf) = cx.pool.get_two_mut(id, fid);
                let payload = &src_buf.data()[l3 + hl + pos..l3 + hl + pos + n];
                dst_buf.meta = src_buf.meta;
                dst_buf.meta.l3_offset = 0;
                dst_buf.set_len(later_hl + n);
                let d = dst_buf.data_mut();
                d[..20].copy_from_slice(&hdr[..20]);
                d[20..later_hl].copy_from_slice(&copied[..clen]);
                d[later_hl..].copy_from_slice(payload);
                let mut ip = Ipv4Packet::new_unchecked(&mut d[..]);
                ip.set_header_len(later_hl);
                ip.set_total_len((later_hl + n) as u16);
                ip.set_frag_offset((off0 + pos) as u16);
                ip.set_more_frags(!last || mf0);
                ip.fill_checksum();
                out.send_new(0, fid);
                pos += n;
            }
            if !ok {
                out.drop_at(i, Reason::NoBuffer);
                continue;
            }
            // The original becomes the first fragment.
            let b = cx.pool.get_mut(id);
            b.set_len(l3 + hl + first_chunk);
            let mut ip = Ipv4Packet::new_unchecked(&mut b.data_mut()[l3..]);
            ip.set_total_len((hl + first_chunk) as u16);
            ip.set_more_frags(true);
            ip.fill_checksum();
            out.count(Reason::Ip4Fragmented);
            out.next(i, 0);
        }
    }
}

/// Options whose "copied" flag is set, packed, with their length padded to
/// a multiple of four.
fn copied_options(opts: &[u8]) -> ([u8; 40], usize) {
    let mut outb = [0u8; 40];
    let mut n = 0;
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        if t == 0 {
            break;
        }
        if t == 1 {
            i += 1;
            continue;
        }
        let Some(&l) = opts.get(i + 1) else { break };
        let l = l as usize;
        if l < 2 || i + l > opts.len() {
            break;
        }
        if t & 0x80 != 0 && n + l <= 40 {
            outb[n..n + l].copy_from_slice(&opts[i..i + l]);
            n += l;
        }
        i += l;
    }
    (outb, n.div_ceil(4) * 4)
}

/// Packets for the gateway's own addresses: echo requests are answered
/// here; everything else (TCP/UDP to local services, other ICMP) goes to the
/// kernel mirror.
pub struct Ip4Local;

impl Node for Ip4Local {
    fn name(&self) -> &'static str {
        "ip4-local"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["ip4-lookup", "punt-kernel"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        const PUNT: usize = 1;
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let l3 = buf.meta.l3_offset as usize;
            let d = &mut buf.data_mut()[l3..];
            let Ok(mut ip) = Ipv4Packet::new_checked(&mut d[..]) else {
                out.drop_at(i, Reason::Ip4Malformed);
                continue;
            };
            // TCP, UDP, fragments (the kernel reassembles) and the ICMP the
            // dataplane does not answer go to the kernel mirror.
            if ip.protocol() != IpProtocol::ICMP || ip.is_fragment() {
                out.next(i, PUNT);
                continue;
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let hl = ip.header_len();
            {
                let Ok(mut icmp) = Icmpv4Packet::new_checked(ip.payload_mut()) else {
                    out.drop_at(i, Reason::IcmpMalformed);
                    continue;
                };
                if !icmp.verify_checksum() {
                    out.drop_at(i, Reason::IcmpBadChecksum);
                    continue;
                }
                if icmp.msg_type() != 8 || icmp.code() != 0 {
                    out.next(i, PUNT);
                    continue;
                }
                // Echo reply: type 8 -> 0, checksum updated incrementally.
                let old = u16::from_be_bytes([8, 0]);
                let new = u16::from_be_bytes([0, 0]);
                let c = checksum::update_u16(icmp.checksum(), old, new);
                icmp.set_msg_type(0);
                icmp.set_checksum(c);
            }
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_ttl(64);
            // Options of the request are not reflected.
            if hl > 20 {
                let total = ip.total_len() as usize;
                d.copy_within(hl..total, 20);
                let mut ip = Ipv4Packet::new_unchecked(&mut d[..]);
                ip.set_header_len(20);
                ip.set_total_len((total - (hl - 20)) as u16);
                ip.fill_checksum();
                let new_len = l3 + total - (hl - 20);
                buf.set_len(new_len);
            } else {
                ip.fill_checksum();
            }
            buf.meta.flags |= FLAG_TTL_DONE;
            out.next(i, 0);
        }
    }
}
