//! `ip4-output`: TTL, next hop to port and MAC, MTU, Ethernet rewrite
//! (VPP's ip4-rewrite): one pass over the packet on its way out. Packets
//! whose neighbour is not resolved yet are held.

use std::fmt::Write;
use std::net::IpAddr;

use crate::buffer::{PacketBuf, PktId, FLAG_L2_MULTICAST, FLAG_TTL_DONE};
use crate::graph::{edges, reasons, Dispatch, Node, Reason};
use crate::modules::l3::{hold, set_icmp, write_eth, Held};
use crate::tables::{NextHop, Tables};
use crate::worker::{Ctx, Fwd};
use weir_packet::{icmpv4, EtherType, Ipv4Packet};

use super::{options, IP4_HLEN};

edges! {
    enum Next {
        Tx => "port-tx",
        Fragment => "ip4-fragment",
        Icmp => "icmp4-error",
    }
}

reasons! {
    enum Drop {
        LinkBroadcast => "link-broadcast-not-forwarded",
        Malformed => "malformed",
        TtlExpired => "ttl-expired",
        FragNeeded => "fragmentation-needed",
        Unreachable => "unreachable",
        NeighHeld => "neigh-held-for-resolution",
        NeighQueueFull => "neigh-queue-full",
        NeighHoldTooBig => "neigh-held-packet-too-big",
    }
}

pub struct Ip4Output;

/// Hold a packet for its neighbour and count what became of it.
fn hold_counted(
    cx: &mut Ctx<'_>,
    id: PktId,
    port: crate::tables::PortId,
    addr: IpAddr,
    out: &mut Dispatch<'_>,
) {
    let why = match hold(cx, id, port, addr) {
        Held::Held => Drop::NeighHeld,
        Held::QueueFull => Drop::NeighQueueFull,
        Held::TooBig => Drop::NeighHoldTooBig,
    };
    out.drop(id, why);
}

impl Node<Fwd> for Ip4Output {
    fn name(&self) -> &'static str {
        "ip4-output"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let cfg = cx.tables;
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let l3 = buf.meta.l3_offset as usize;
            let nexthop = buf.meta.nexthop;
            let flags = buf.meta.flags;
            let ttl_done = flags & FLAG_TTL_DONE != 0;
            if !ttl_done && flags & FLAG_L2_MULTICAST != 0 {
                // Only packets the gateway makes itself set FLAG_TTL_DONE
                // first; anything else here would be forwarded.
                out.drop_at(i, Drop::LinkBroadcast);
                continue;
            }
            buf.meta.flags |= FLAG_TTL_DONE;
            // ip4-input validated the header; work on its fixed 20 bytes.
            let Some(fixed) = buf
                .data_mut()
                .get_mut(l3..)
                .and_then(|x| x.first_chunk_mut::<IP4_HLEN>())
            else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let mut ip = Ipv4Packet::new_unchecked(fixed);
            if !ttl_done {
                if ip.ttl() <= 1 {
                    out.count(Drop::TtlExpired);
                    set_icmp(buf, icmpv4::TIME_EXCEEDED, icmpv4::TTL_EXCEEDED, 0);
                    out.next(i, Next::Icmp);
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
                    Some(NextHop::Neighbour { port, addr, .. }) => {
                        hold_counted(cx, id, *port, *addr, out)
                    }
                    Some(NextHop::Attached { port }) => {
                        hold_counted(cx, id, *port, IpAddr::V4(dst), out)
                    }
                    _ => out.drop(id, Drop::Unreachable),
                }
                out.consumed(i);
                continue;
            }
            buf.meta.tx_port = adj.port;
            if total > adj.mtu {
                if df {
                    out.count(Drop::FragNeeded);
                    set_icmp(buf, icmpv4::DEST_UNREACHABLE, icmpv4::FRAG_NEEDED, adj.mtu);
                    out.next(i, Next::Icmp);
                } else {
                    out.next(i, Next::Fragment);
                }
                continue;
            }
            if !write_eth(buf, &adj.rewrite, EtherType::IPV4) {
                out.drop_at(i, Reason::NO_BUFFER);
                continue;
            }
            out.next(i, Next::Tx);
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        super::trace_ip4(buf, out);
        let _ = write!(
            out,
            " nexthop {} tx-port {}",
            buf.meta.nexthop, buf.meta.tx_port
        );
    }
}

/// Record Route and Timestamp on the way out (only packets with options).
#[cold]
fn forward_options(cfg: &Tables, buf: &mut PacketBuf, l3: usize, nexthop: u32) {
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
    if options::forward(ip.options_mut(), out, ours) {
        ip.fill_checksum();
    }
}
