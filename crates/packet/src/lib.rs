//! Wire formats for the weir dataplane.
//!
//! Every format comes as a pair:
//!
//! * a zero-copy *view* (`XxxPacket<T: AsRef<[u8]>>`) whose `new_checked`
//!   validates every length the accessors rely on, so that after it succeeds no
//!   getter or setter can panic, whatever the bytes; getters read fixed offsets
//!   and never allocate (they are used on the hot path);
//! * a validated *repr* (`XxxRepr`) with `parse`, `buffer_len` and `emit`,
//!   meant for tests and the control side (it may allocate).
//!
//! Parsing arbitrary bytes never panics. `new_unchecked` views make no such
//! promise: use them only on buffers you have sized yourself (e.g. for `emit`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod nat4;
pub mod ndp;
pub mod tcp;
pub mod udp;
pub mod vxlan;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
pub use icmpv4::{Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use ndp::{NdpOption, NdpRepr};
pub use tcp::{TcpFlags, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use vxlan::{VxlanPacket, VxlanRepr};

use core::fmt;

/// Why a buffer could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the format (or one of its length fields) requires.
    #[error("truncated packet")]
    Truncated,
    /// A field has an invalid value; the string names the field.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Valid on the wire but not handled by weir; the string says what.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// IP protocol number / IPv6 next-header value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// IPv6 hop-by-hop options (0).
    pub const HOP_BY_HOP: IpProtocol = IpProtocol(0);
    /// ICMP for IPv4 (1).
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// TCP (6).
    pub const TCP: IpProtocol = IpProtocol(6);
    /// UDP (17).
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 routing header (43).
    pub const ROUTING: IpProtocol = IpProtocol(43);
    /// IPv6 fragment header (44).
    pub const FRAGMENT: IpProtocol = IpProtocol(44);
    /// Encapsulating security payload (50).
    pub const ESP: IpProtocol = IpProtocol(50);
    /// Authentication header (51).
    pub const AH: IpProtocol = IpProtocol(51);
    /// ICMP for IPv6 (58).
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// IPv6 "no next header" (59).
    pub const NO_NEXT: IpProtocol = IpProtocol(59);
    /// IPv6 destination options (60).
    pub const DST_OPTS: IpProtocol = IpProtocol(60);
}

impl fmt::Debug for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            IpProtocol::HOP_BY_HOP => "HopByHop",
            IpProtocol::ICMP => "Icmp",
            IpProtocol::TCP => "Tcp",
            IpProtocol::UDP => "Udp",
            IpProtocol::ROUTING => "Routing",
            IpProtocol::FRAGMENT => "Fragment",
            IpProtocol::ESP => "Esp",
            IpProtocol::AH => "Ah",
            IpProtocol::ICMPV6 => "Icmpv6",
            IpProtocol::NO_NEXT => "NoNext",
            IpProtocol::DST_OPTS => "DstOpts",
            IpProtocol(n) => return write!(f, "IpProtocol({n})"),
        };
        f.write_str(name)
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        IpProtocol(v)
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> Self {
        v.0
    }
}

// Fixed-offset big-endian readers/writers shared by the views. Callers have
// already validated the length (new_checked), so slicing cannot fail there.
#[inline(always)]
pub(crate) fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

#[inline(always)]
pub(crate) fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

#[inline(always)]
pub(crate) fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn put32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn arr4(d: &[u8], at: usize) -> [u8; 4] {
    [d[at], d[at + 1], d[at + 2], d[at + 3]]
}

#[inline(always)]
pub(crate) fn arr6(d: &[u8], at: usize) -> [u8; 6] {
    let mut a = [0u8; 6];
    a.copy_from_slice(&d[at..at + 6]);
    a
}

#[inline(always)]
pub(crate) fn arr16(d: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&d[at..at + 16]);
    a
}
