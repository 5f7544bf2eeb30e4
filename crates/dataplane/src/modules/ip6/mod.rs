//! IPv6 forwarding: input checks, FIB lookup, output (hop limit, neighbour,
//! MTU, L2 rewrite) and local delivery by next header.

mod input;
mod local;
mod lookup;
mod output;

pub use input::Ip6Input;
pub use local::Ip6Local;
pub use lookup::Ip6Lookup;
pub use output::Ip6Output;

use crate::registry::{Family, Registry};
use crate::tables::NextHopKind;
use weir_packet::EtherType;

const IP6_HLEN: usize = weir_packet::ipv6::HEADER_LEN;

pub fn register(r: &mut Registry) {
    r.ethertype(EtherType::IPV6, "ip6-input");
    r.nexthop(Family::V6, NextHopKind::Port, "ip6-output");
    r.nexthop(Family::V6, NextHopKind::Local, "ip6-local");
    r.node(|_| Ip6Input);
    r.node(Ip6Lookup::new);
    r.node(|_| Ip6Output);
    r.node(Ip6Local::new);
}

/// Addresses and next header of an IPv6 packet, for traces.
fn trace_ip6(buf: &crate::buffer::PacketBuf, out: &mut String) {
    use std::fmt::Write;
    let l3 = buf.meta.l3_offset as usize;
    if let Some(ip) = buf
        .data()
        .get(l3..)
        .and_then(|d| weir_packet::Ipv6Packet::new_checked(d).ok())
    {
        let _ = write!(
            out,
            "{} > {} next-header {} hop-limit {}",
            ip.src_addr(),
            ip.dst_addr(),
            ip.next_header().0,
            ip.hop_limit()
        );
    }
}
