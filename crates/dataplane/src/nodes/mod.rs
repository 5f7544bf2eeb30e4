//! The forwarding nodes, one folder-level module per feature. A packet's
//! path is read by following the node names:
//!
//! ```text
//! eth-input -> arp-input -> port-tx
//!           -> ip4-input -> ip4-lookup -> ip4-output -> port-tx
//!              ip4-input (bad option) -> icmp4-error
//!                                     \-> ip4-local (echo) -> ip4-lookup
//!                          ip4-output -> ip4-fragment -> ip4-output
//!              any ip4 error -> icmp4-error -> ip4-lookup
//!           -> ip6-input -> ip6-lookup -> ip6-output -> port-tx
//!                                     \-> ip6-local (echo, NDP) -> ip6-lookup | port-tx
//!              any ip6 error -> icmp6-error -> ip6-lookup
//! ```

pub mod arp;
pub mod eth;
pub mod icmp4;
pub mod icmp6;
pub mod ip4;
pub mod ip4opt;
pub mod ip6;
pub mod punt;

use crate::buffer::PacketBuf;
use crate::graph::{Graph, Node};
use weir_packet::{EtherType, MacAddr};

/// Where received packets enter the graph.
pub const INPUT_NODE: &str = "eth-input";

/// Every node of the forwarding graph, in processing order.
pub fn all() -> Vec<Box<dyn Node>> {
    vec![
        Box::new(eth::EthInput),
        Box::new(arp::ArpInput),
        Box::new(ip4::Ip4Input),
        Box::new(ip6::Ip6Input),
        Box::new(ip4::Ip4Local),
        Box::new(ip6::Ip6Local),
        Box::new(icmp4::Icmp4Error),
        Box::new(icmp6::Icmp6Error),
        Box::new(ip4::Ip4Lookup::default()),
        Box::new(ip6::Ip6Lookup::default()),
        Box::new(ip4::Ip4Output),
        Box::new(ip4::Ip4Fragment),
        Box::new(ip6::Ip6Output),
        Box::new(punt::PuntKernel),
        Box::new(eth::PortTx),
    ]
}

/// The forwarding graph for one worker.
pub fn graph() -> Graph {
    Graph::new(all()).expect("the built-in nodes name only each other")
}

/// Put a 14-byte Ethernet header right before the L3 header (dropping any
/// VLAN tags it came with) and point the packet at it.
#[inline(always)]
pub(crate) fn write_eth(buf: &mut PacketBuf, rewrite: &[u8; 12], ty: EtherType) -> bool {
    let l3 = buf.meta.l3_offset as usize;
    let ok = if l3 > 14 {
        buf.advance(l3 - 14)
    } else {
        buf.prepend(14 - l3)
    };
    if !ok {
        return false;
    }
    buf.meta.l3_offset = 14;
    let d = buf.data_mut();
    if d.len() < 14 {
        return false;
    }
    d[0..12].copy_from_slice(rewrite);
    d[12..14].copy_from_slice(&ty.0.to_be_bytes());
    true
}

/// Destination and source MAC as an adjacency rewrite.
#[inline(always)]
pub(crate) fn macs(dst: MacAddr, src: MacAddr) -> [u8; 12] {
    let mut r = [0u8; 12];
    r[..6].copy_from_slice(&dst.0);
    r[6..].copy_from_slice(&src.0);
    r
}

/// Flow hash over addresses, protocol and ports (for ECMP). `l4` holds the
/// first bytes of the transport header, or nothing for fragments.
#[inline(always)]
pub(crate) fn flow_hash(src: u128, dst: u128, proto: u8, l4: &[u8]) -> u32 {
    let ports = if l4.len() >= 4 && matches!(proto, 6 | 17 | 132) {
        u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]])
    } else {
        0
    };
    let mut h = (src as u64) ^ ((src >> 64) as u64).rotate_left(17);
    h ^= ((dst as u64) ^ ((dst >> 64) as u64).rotate_left(29)).rotate_left(32);
    h ^= ((proto as u64) << 32) | ports as u64;
    // splitmix64 finaliser: good avalanche for a few cycles.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^= h >> 31;
    (h ^ (h >> 32)) as u32
}
