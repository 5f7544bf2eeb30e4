//! ARP for the gateway's own IPv4 addresses: the `arp-input` node (the
//! neighbour table itself is the control side's).

mod input;

pub use input::ArpInput;

use crate::registry::Registry;
use weir_packet::EtherType;

pub fn register(r: &mut Registry) {
    r.ethertype(EtherType::ARP, "arp-input");
    r.node(|_| ArpInput);
}
