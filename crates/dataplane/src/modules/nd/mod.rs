//! IPv6 neighbour discovery for the gateway's own addresses: the
//! `nd-input` node (the neighbour table itself is the control side's).

mod input;

pub use input::NdInput;

use crate::registry::Registry;
use weir_packet::icmpv6;

pub fn register(r: &mut Registry) {
    r.icmp6_type(icmpv6::NEIGHBOR_SOLICIT, "nd-input");
    r.icmp6_type(icmpv6::NEIGHBOR_ADVERT, "nd-input");
    r.node(|_| NdInput);
}
