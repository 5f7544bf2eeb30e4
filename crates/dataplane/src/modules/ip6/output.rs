//! `ip6-output`: hop limit, next hop to port and MAC, MTU (routers never
//! fragment IPv6), Ethernet rewrite. Packets whose neighbour is not
//! resolved yet are held.

use std::fmt::Write;
use std::net::IpAddr;

use crate::buffer::{PacketBuf, PktId, FLAG_L2_MULTICAST, FLAG_TTL_DONE};
use crate::graph::{edges, reasons, Dispatch, Node, Reason};
use crate::modules::l3::{hold, set_icmp, write_eth, Held};
use crate::tables::{NextHop, PortId};
use crate::worker::{Ctx, Fwd};
use weir_packet::ipv6::is_link_local;
use weir_packet::{icmpv6, EtherType, Ipv6Packet};

use super::IP6_HLEN;

edges! {
    enum Next {
        Tx => "port-tx",
        Icmp => "icmp6-error",
    }
}

reasons! {
    enum Drop {
        LinkMulticast => "link-multicast-not-forwarded",
        Malformed => "malformed",
        ScopeViolation => "link-local-not-forwarded",
        HopLimitExpired => "hop-limit-expired",
        TooBig => "packet-too-big",
        Unreachable => "unreachable",
        NeighHeld => "neigh-held-for-resolution",
        NeighQueueFull => "neigh-queue-full",
        NeighHoldTooBig => "neigh-held-packet-too-big",
    }
}

pub struct Ip6Output;

/// Hold a packet for its neighbour and count what became of it.
fn hold_counted(cx: &mut Ctx<'_>, id: PktId, port: PortId, addr: IpAddr, out: &mut Dispatch<'_>) {
    let why = match hold(cx, id, port, addr) {
        Held::Held => Drop::NeighHeld,
        Held::QueueFull => Drop::NeighQueueFull,
        Held::TooBig => Drop::NeighHoldTooBig,
    };
    out.drop(id, why);
}

impl Node<Fwd> for Ip6Output {
    fn name(&self) -> &'static str {
        "ip6-output"
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
                out.drop_at(i, Drop::LinkMulticast);
                continue;
            }
            buf.meta.flags |= FLAG_TTL_DONE;
            // ip6-input validated the header; work on its fixed 40 bytes.
            let Some(fixed) = buf
                .data_mut()
                .get_mut(l3..)
                .and_then(|x| x.first_chunk_mut::<IP6_HLEN>())
            else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let mut ip = Ipv6Packet::new_unchecked(fixed);
            if !ttl_done {
                let src = ip.src_addr();
                if is_link_local(src) || src.is_unspecified() {
                    out.drop_at(i, Drop::ScopeViolation);
                    continue;
                }
                let hl = ip.hop_limit();
                if hl <= 1 {
                    out.count(Drop::HopLimitExpired);
                    set_icmp(buf, icmpv6::TIME_EXCEEDED, icmpv6::HOP_LIMIT_EXCEEDED, 0);
                    out.next(i, Next::Icmp);
                    continue;
                }
                ip.set_hop_limit(hl - 1);
            }
            let total = IP6_HLEN + ip.payload_len() as usize;
            let adj = cfg.adjacency_of(nexthop);
            if !adj.ready {
                let dst = ip.dst_addr();
                match cfg.nexthop(nexthop) {
                    Some(NextHop::Neighbour { port, addr, .. }) => {
                        hold_counted(cx, id, *port, *addr, out)
                    }
                    Some(NextHop::Attached { port }) => {
                        hold_counted(cx, id, *port, IpAddr::V6(dst), out)
                    }
                    _ => out.drop(id, Drop::Unreachable),
                }
                out.consumed(i);
                continue;
            }
            buf.meta.tx_port = adj.port;
            if total > adj.mtu as usize {
                out.count(Drop::TooBig);
                set_icmp(buf, icmpv6::PACKET_TOO_BIG, 0, adj.mtu);
                out.next(i, Next::Icmp);
                continue;
            }
            if !write_eth(buf, &adj.rewrite, EtherType::IPV6) {
                out.drop_at(i, Reason::NO_BUFFER);
                continue;
            }
            out.next(i, Next::Tx);
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        super::trace_ip6(buf, out);
        let _ = write!(
            out,
            " nexthop {} tx-port {}",
            buf.meta.nexthop, buf.meta.tx_port
        );
    }
}
