//! Shared by IPv4 and IPv6 (and by later features that route): the
//! Ethernet rewrite, ECMP member choice and its flow hash, holding a packet
//! for neighbour resolution, pointing a packet at an ICMP error, and local
//! delivery by protocol. No nodes of its
//! own.

mod hold;
mod local;

pub use hold::{hold, Held};
pub use local::LocalClaims;

use crate::buffer::PacketBuf;
use crate::tables::{NextHop, NextHopId, Tables};
use weir_packet::{EtherType, MacAddr};

/// Put a 14-byte Ethernet header right before the L3 header (dropping any
/// VLAN tags it came with) and point the packet at it.
#[inline(always)]
pub fn write_eth(buf: &mut PacketBuf, rewrite: &[u8; 12], ty: EtherType) -> bool {
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
pub fn macs(dst: MacAddr, src: MacAddr) -> [u8; 12] {
    let mut r = [0u8; 12];
    r[..6].copy_from_slice(&dst.0);
    r[6..].copy_from_slice(&src.0);
    r
}

/// Flow hash over addresses, protocol and ports (for `pick_member`). `l4` holds the first bytes of the transport
/// header, or nothing for fragments.
#[inline(always)]
pub fn flow_hash(src: u128, dst: u128, proto: u8, l4: &[u8]) -> u32 {
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

/// Point a packet at an ICMP error node with the error to send.
#[inline(always)]
pub fn set_icmp(buf: &mut PacketBuf, ty: u8, code: u8, param: u16) {
    let m = &mut buf.meta;
    m.icmp_type = ty;
    m.icmp_code = code;
    m.icmp_param = param;
}

/// Resolve an ECMP group to one member by flow hash; other next hops are
/// returned as they are.
#[inline(always)]
pub fn pick_member(t: &Tables, nh: NextHopId, hash: impl FnOnce() -> u32) -> NextHopId {
    match t.nexthop(nh) {
        Some(NextHop::Group(members)) if !members.is_empty() => {
            members[(hash() as usize) % members.len()]
        }
        _ => nh,
    }
}
