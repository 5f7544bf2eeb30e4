//! `ip6-input`: validates the header, drops martians, sends link-scope
//! multicast the port listens to (neighbour discovery, all-nodes) to
//! ip6-local.

use std::net::Ipv6Addr;

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{edges, reasons, Dispatch, Node};
use crate::tables::PortConfig;
use crate::worker::{Ctx, Fwd};
use weir_packet::ipv6::{is_solicited_node, solicited_node, ALL_NODES, ALL_ROUTERS};
use weir_packet::Ipv6Packet;

use super::IP6_HLEN;

edges! {
    enum Next {
        Lookup => "ip6-lookup",
        Local => "ip6-local",
    }
}

reasons! {
    enum Drop {
        Malformed => "malformed",
        MartianSrc => "martian-source",
        MartianDst => "martian-destination",
        Multicast => "multicast-not-forwarded",
    }
}

/// Link-scope multicast groups this port listens to.
fn listens_to(port: &PortConfig, dst: Ipv6Addr) -> bool {
    if dst == ALL_NODES || dst == ALL_ROUTERS {
        return true;
    }
    if !is_solicited_node(dst) {
        return false;
    }
    dst == solicited_node(port.link_local6)
        || port.addrs6.iter().any(|(a, _)| solicited_node(*a) == dst)
}

pub struct Ip6Input;

impl Node<Fwd> for Ip6Input {
    fn name(&self) -> &'static str {
        "ip6-input"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let l3 = buf.meta.l3_offset as usize;
            let d = buf.data();
            // The fixed header as a view of exactly 40 bytes: no further
            // bounds checks; the payload length is checked here.
            let Some(fixed) = d.get(l3..).and_then(|x| x.first_chunk::<IP6_HLEN>()) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let ip = Ipv6Packet::new_unchecked(fixed);
            let total = IP6_HLEN + ip.payload_len() as usize;
            if ip.version() != 6 || l3 + total > d.len() {
                out.drop_at(i, Drop::Malformed);
                continue;
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            if src.is_multicast() || src.is_loopback() {
                out.drop_at(i, Drop::MartianSrc);
                continue;
            }
            if dst.is_loopback() || dst.is_unspecified() {
                out.drop_at(i, Drop::MartianDst);
                continue;
            }
            buf.set_len(l3 + total);
            if dst.is_multicast() {
                let ours = cx
                    .tables
                    .port(buf.meta.rx_port)
                    .is_some_and(|p| listens_to(p, dst));
                if ours {
                    out.next(i, Next::Local);
                } else {
                    out.drop_at(i, Drop::Multicast);
                }
                continue;
            }
            out.next(i, Next::Lookup);
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        super::trace_ip6(buf, out);
    }
}
