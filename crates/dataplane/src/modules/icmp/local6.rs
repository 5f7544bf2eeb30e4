//! `icmp6-local`: ICMPv6 for the gateway's own addresses. The checksum is
//! checked here; echo requests are answered in place; the types other
//! modules registered (neighbour discovery) go to their nodes; the rest
//! (MLD, router advertisements, ...) to the kernel mirror.

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId, FLAG_TTL_DONE};
use crate::graph::{edges, reasons, Dispatch, Edge, Node, Reason};
use crate::modules::l3::{macs, write_eth};
use crate::registry::{edge_list, edge_of, Registry};
use crate::worker::{Ctx, Fwd};
use weir_packet::ipv6::is_link_local;
use weir_packet::{checksum, icmpv6, EtherType, Icmpv6Packet, Ipv6Packet, MacAddr};

edges! {
    enum Next {
        Lookup => "ip6-lookup",
        Tx => "port-tx",
        Punt => "punt:icmp6-unhandled",
    }
}

reasons! {
    enum Drop {
        Malformed => "malformed",
        BadChecksum => "bad-checksum",
        PortDown => "port-down",
    }
}

pub struct Icmp6Local {
    /// `Next::NAMES`, then the registered types' nodes.
    edges: Vec<&'static str>,
    types: Vec<(u8, Edge)>,
}

impl Icmp6Local {
    pub fn new(r: &Registry) -> Icmp6Local {
        let edges = edge_list(
            Next::NAMES
                .iter()
                .copied()
                .chain(r.icmp6_types().iter().map(|t| t.1)),
        );
        Icmp6Local {
            types: r
                .icmp6_types()
                .iter()
                .map(|(ty, n)| (*ty, Edge(edge_of(&edges, n))))
                .collect(),
            edges,
        }
    }
}

impl Node<Fwd> for Icmp6Local {
    fn name(&self) -> &'static str {
        "icmp6-local"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &self.edges
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let b = cx.pool.get(id);
            let l3 = b.meta.l3_offset as usize;
            let Ok(ip) = Ipv6Packet::new_checked(&b.data()[l3..]) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            if !icmp.verify_checksum(src, dst) {
                out.drop_at(i, Drop::BadChecksum);
                continue;
            }
            let ty = icmp.msg_type();
            if ty == icmpv6::ECHO_REQUEST {
                echo_reply(cx, id, out);
                out.consumed(i);
                continue;
            }
            match self.types.iter().find(|t| t.0 == ty) {
                Some(&(_, e)) => out.next(i, e),
                None => out.next(i, Next::Punt),
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        let l3 = buf.meta.l3_offset as usize;
        if let Some(ip) = buf
            .data()
            .get(l3..)
            .and_then(|d| Ipv6Packet::new_checked(d).ok())
        {
            let ty = ip.payload().first().copied().unwrap_or(0);
            let _ = write!(out, "{} > {} type {ty}", ip.src_addr(), ip.dst_addr());
        }
    }
}

fn echo_reply(cx: &mut Ctx<'_>, id: PktId, out: &mut Dispatch<'_>) {
    let rx = cx.pool.get(id).meta.rx_port;
    let port_ll = cx.tables.port(rx).map(|p| p.link_local6);
    let port_mac = cx.tables.port(rx).map(|p| p.mac).unwrap_or(MacAddr::ZERO);
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
                out.drop(id, Drop::PortDown);
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
    icmp.set_msg_type(icmpv6::ECHO_REPLY);
    if new_src == dst {
        let c = checksum::update_u16(
            icmp.checksum(),
            u16::from_be_bytes([icmpv6::ECHO_REQUEST, 0]),
            u16::from_be_bytes([icmpv6::ECHO_REPLY, 0]),
        );
        icmp.set_checksum(c);
    } else {
        icmp.fill_checksum(new_src, src);
    }
    if is_link_local(src) {
        // On-link by definition: straight back to the sender's MAC.
        let peer = MacAddr::from_slice(&buf.data()[6..12]).unwrap_or(MacAddr::BROADCAST);
        if !write_eth(buf, &macs(peer, port_mac), EtherType::IPV6) {
            out.drop(id, Reason::NO_BUFFER);
            return;
        }
        buf.meta.tx_port = rx;
        out.send(Next::Tx, id);
        return;
    }
    out.send(Next::Lookup, id);
}
