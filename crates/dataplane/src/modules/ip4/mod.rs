//! IPv4 forwarding: input checks, FIB lookup, output (TTL, neighbour, MTU,
//! L2 rewrite), fragmentation, options, and local delivery by protocol.

mod fragment;
mod input;
mod local;
mod lookup;
pub mod options;
mod output;

pub use fragment::Ip4Fragment;
pub use input::Ip4Input;
pub use local::Ip4Local;
pub use lookup::Ip4Lookup;
pub use output::Ip4Output;

use crate::registry::{Family, Registry};
use crate::tables::NextHopKind;
use weir_packet::EtherType;

/// The arc from the input checks to the lookup.
pub const PREROUTING: &str = "ip4-prerouting";
/// The arc from the lookup to the output.
pub const POSTROUTING: &str = "ip4-postrouting";

const IP4_HLEN: usize = weir_packet::ipv4::HEADER_LEN;

pub fn register(r: &mut Registry) {
    r.ethertype(EtherType::IPV4, "ip4-input");
    // Features (NAT) sit before the lookup and between it and the output.
    r.arc(PREROUTING, "ip4-lookup");
    r.arc(POSTROUTING, "ip4-output");
    r.nexthop(Family::V4, NextHopKind::Port, POSTROUTING);
    r.nexthop(Family::V4, NextHopKind::Local, "ip4-local");
    r.node(|_| Ip4Input);
    r.node(Ip4Lookup::new);
    r.node(|_| Ip4Output);
    r.node(|_| Ip4Fragment);
    r.node(Ip4Local::new);
}

/// Addresses and protocol of an IPv4 packet, for traces.
fn trace_ip4(buf: &crate::buffer::PacketBuf, out: &mut String) {
    use std::fmt::Write;
    let l3 = buf.meta.l3_offset as usize;
    if let Some(ip) = buf
        .data()
        .get(l3..)
        .and_then(|d| weir_packet::Ipv4Packet::new_checked(d).ok())
    {
        let _ = write!(
            out,
            "{} > {} proto {} ttl {}",
            ip.src_addr(),
            ip.dst_addr(),
            ip.protocol().0,
            ip.ttl()
        );
    }
}
