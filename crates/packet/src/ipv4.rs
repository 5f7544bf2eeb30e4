//! IPv4 (RFC 791).

use std::net::Ipv4Addr;

use crate::checksum;
pub use crate::IpProtocol;
use crate::{arr4, be16, put16, Error, Result};

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Maximum options length (IHL is 4 bits).
pub const MAX_OPTIONS_LEN: usize = 40;

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;
const OFF_MASK: u16 = 0x1fff;

/// Zero-copy view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps after checking version 4, IHL ≥ 5 and
    /// header_len ≤ total_len ≤ buffer length. The buffer may be longer than
    /// total_len (Ethernet padding); [`payload`](Self::payload) stops at total_len.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// The check done by [`new_checked`](Self::new_checked).
    #[inline]
    pub fn check(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if d[field::VER_IHL] >> 4 != 4 {
            return Err(Error::Malformed("version"));
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed("ihl"));
        }
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(Error::Malformed("total_len"));
        }
        if tl > d.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 after `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP (upper 6 bits) and ECN (lower 2 bits).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & DF != 0
    }

    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF) & OFF_MASK) << 3
    }

    /// True if this is any fragment (MF set or offset non-zero).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & (MF | OFF_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Payload protocol.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_bytes())
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_bytes())
    }

    /// Source address bytes.
    #[inline]
    pub fn src_bytes(&self) -> [u8; 4] {
        arr4(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address bytes.
    #[inline]
    pub fn dst_bytes(&self) -> [u8; 4] {
        arr4(self.buffer.as_ref(), field::DST)
    }

    /// Options (between the fixed header and header_len).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The header bytes (header_len long).
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// Payload, from header_len to total_len (excludes link-layer padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let tl = usize::from(self.total_len());
        &self.buffer.as_ref()[self.header_len()..tl]
    }

    /// True if the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let h = self.header();
        if let Ok(h) = <&[u8; HEADER_LEN]>::try_from(h) {
            // Option-less headers (nearly all): five 32-bit words, unrolled.
            let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
            let acc = w(0) + w(4) + w(8) + w(12) + w(16);
            return checksum::fold(acc) == 0xffff;
        }
        checksum::is_valid(checksum::sum(h))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    #[inline]
    fn set_flg_off(&mut self, mask: u16, val: u16) {
        let d = self.buffer.as_mut();
        let v = (be16(d, field::FLG_OFF) & !mask) | (val & mask);
        put16(d, field::FLG_OFF, v);
    }

    /// Sets version 4 and the header length in bytes (must be a multiple of 4).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP/ECN.
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets the DF flag.
    #[inline]
    pub fn set_dont_frag(&mut self, v: bool) {
        self.set_flg_off(DF, if v { DF } else { 0 });
    }

    /// Sets the MF flag.
    #[inline]
    pub fn set_more_frags(&mut self, v: bool) {
        self.set_flg_off(MF, if v { MF } else { 0 });
    }

    /// Sets the fragment offset in bytes (low 3 bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        self.set_flg_off(OFF_MASK, bytes >> 3);
    }

    /// Sets the TTL (checksum not updated).
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol (checksum not updated).
    #[inline]
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.0;
    }

    /// Stores a checksum value.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the source address (checksum not updated).
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (checksum not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.header()));
        self.set_checksum(c);
    }

    /// Decrements the TTL and patches the checksum incrementally (RFC 1624);
    /// returns the new TTL. A TTL of 0 is left alone (returns 0): callers
    /// check for expiry before forwarding.
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let d = self.buffer.as_mut();
        let ttl = d[field::TTL];
        if ttl == 0 {
            return 0;
        }
        // The TTL is the high byte of its 16-bit word, so the header sum
        // drops by 0x0100 and the checksum (its complement) grows by 0x0100,
        // with the end-around carry (RFC 1141; what Linux does).
        let c = u32::from(be16(d, field::CHECKSUM)) + 0x0100;
        let c = (c + u32::from(c >= 0xffff)) as u16;
        d[field::TTL] = ttl - 1;
        put16(d, field::CHECKSUM, c);
        ttl - 1
    }

    /// Sets the source address and patches the checksum incrementally
    /// (for SNAT). The L4 checksum is the caller's business.
    #[inline]
    pub fn set_src_addr_update_checksum(&mut self, a: Ipv4Addr) {
        let old = u32::from_be_bytes(self.src_bytes());
        let c = checksum::update_u32(self.checksum(), old, u32::from(a));
        self.set_src_addr(a);
        self.set_checksum(c);
    }

    /// Sets the destination address and patches the checksum incrementally.
    #[inline]
    pub fn set_dst_addr_update_checksum(&mut self, a: Ipv4Addr) {
        let old = u32::from_be_bytes(self.dst_bytes());
        let c = checksum::update_u32(self.checksum(), old, u32::from(a));
        self.set_dst_addr(a);
        self.set_checksum(c);
    }

    /// Mutable options.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }

    /// Mutable payload (header_len..total_len).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let tl = usize::from(self.total_len());
        &mut self.buffer.as_mut()[hl..tl]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level IPv4 header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Time to live.
    pub ttl: u8,
    /// DSCP/ECN byte.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// DF flag.
    pub dont_frag: bool,
    /// MF flag.
    pub more_frags: bool,
    /// Fragment offset in bytes (multiple of 8).
    pub frag_offset: u16,
    /// Raw options; a multiple of 4 and at most 40 bytes.
    pub options: Vec<u8>,
    /// Payload length (total_len - header_len).
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Parses and validates a header, including its checksum.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        p.check()?;
        if !p.verify_checksum() {
            return Err(Error::Malformed("checksum"));
        }
        Ok(Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            options: p.options().to_vec(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
        })
    }

    /// Checks the invariants `emit` relies on.
    pub fn validate(&self) -> Result<()> {
        if !self.options.len().is_multiple_of(4) || self.options.len() > MAX_OPTIONS_LEN {
            return Err(Error::Malformed("options"));
        }
        if !self.frag_offset.is_multiple_of(8) {
            return Err(Error::Malformed("frag_offset"));
        }
        if self.buffer_len() + self.payload_len > usize::from(u16::MAX) {
            return Err(Error::Malformed("total_len"));
        }
        Ok(())
    }

    /// Header length (20 + options rounded up to 4, capped at 60).
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len().min(MAX_OPTIONS_LEN).next_multiple_of(4)
    }

    /// Writes the header and fills the checksum; the payload is not touched.
    /// The buffer must hold at least `buffer_len()` bytes. Options are
    /// zero-padded to a multiple of 4 and cut at 40 (see [`validate`](Self::validate)).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) {
        let hl = self.buffer_len();
        p.set_header_len(hl);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len((hl + self.payload_len) as u16);
        p.set_ident(self.ident);
        let flg_off = if self.dont_frag { DF } else { 0 }
            | if self.more_frags { MF } else { 0 }
            | (self.frag_offset >> 3);
        put16(p.buffer.as_mut(), field::FLG_OFF, flg_off);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        let n = self.options.len().min(MAX_OPTIONS_LEN);
        let opts = &mut p.buffer.as_mut()[HEADER_LEN..hl];
        opts[..n].copy_from_slice(&self.options[..n]);
        opts[n..].fill(0);
        p.fill_checksum();
    }
}

/// True for addresses that must never appear as a source (RFC 1812 5.3.7):
/// 0/8, 127/8, multicast and the reserved class E, as a host-order integer.
#[inline(always)]
pub fn martian_src(a: u32) -> bool {
    let top = a >> 24;
    top == 0 || top == 127 || a >= 0xe000_0000
}

/// True for destinations a router never forwards to (0/8, 127/8, class E
/// but the limited broadcast); multicast is left to the caller.
#[inline(always)]
pub fn martian_dst(a: u32) -> bool {
    let top = a >> 24;
    top == 0 || top == 127 || (a >= 0xf000_0000 && a != u32::MAX)
}

/// True when `a` and `b` are in the same `len`-bit prefix.
pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32) as u32)
    };
    u32::from(a) & mask == u32::from(b) & mask
}

/// IPv4 option types (RFC 791, RFC 7126).
pub mod option {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Record route.
    pub const RECORD_ROUTE: u8 = 7;
    /// Internet timestamp.
    pub const TIMESTAMP: u8 = 68;
    /// Loose source and record route.
    pub const LSRR: u8 = 131;
    /// Strict source and record route.
    pub const SSRR: u8 = 137;
    /// Timestamp flag: timestamps only.
    pub const TS_ONLY: u8 = 0;
    /// Timestamp flag: each timestamp preceded by an address.
    pub const TS_ADDR: u8 = 1;
    /// Timestamp flag: prespecified addresses.
    pub const TS_PRESPEC: u8 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured ICMP echo request 192.168.1.10 -> 8.8.8.8 (IPv4 header + 8-byte ICMP + 4 data).
    const PKT: [u8; 32] = [
        0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x4c, 0xd5, 0xc0, 0xa8, 0x01,
        0x0a, 0x08, 0x08, 0x08, 0x08, 0x08, 0x00, 0x33, 0x36, 0x00, 0x01, 0x00, 0x02, 0x61, 0x62,
        0x63, 0x64,
    ];

    fn pkt() -> Vec<u8> {
        PKT.to_vec()
    }

    #[test]
    fn getters() {
        let v = pkt();
        let p = Ipv4Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::ICMP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(8, 8, 8, 8));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 12);
        assert_eq!(p.checksum(), 0x4cd5);
        assert!(p.verify_checksum());
    }

    #[test]
    fn known_checksum() {
        // Header from the checksum module test, with checksum 0xb861 in place.
        let h = [
            0x45, 0x00, 0x00, 0x14, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0xc0, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let p = Ipv4Packet::new_checked(&h[..]).unwrap();
        assert!(p.verify_checksum());
    }

    #[test]
    fn check_errors() {
        let v = pkt();
        assert_eq!(
            Ipv4Packet::new_checked(&v[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&v[..31]).unwrap_err(),
            Error::Truncated
        );
        let mut b = v.clone();
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed("version")
        );
        let mut b = v.clone();
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed("ihl")
        );
        let mut b = v.clone();
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed("total_len")
        );
        let mut b = v.clone();
        b[0] = 0x46; // 24-byte header, still within total_len
        assert!(Ipv4Packet::new_checked(&b[..]).is_ok());
        let mut b = v.clone();
        b[1] ^= 1;
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&p).unwrap_err(),
            Error::Malformed("checksum")
        );
        // Padding beyond total_len is excluded from the payload.
        let mut b = v.clone();
        b.extend_from_slice(&[0; 14]);
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().payload().len(), 12);
    }

    #[test]
    fn setters_and_ttl() {
        let mut v = pkt();
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        p.set_ttl(1);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        p.set_dont_frag(false);
        assert!(p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        p.set_src_addr_update_checksum(Ipv4Addr::new(100, 64, 0, 1));
        p.set_dst_addr_update_checksum(Ipv4Addr::new(10, 1, 2, 3));
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_src_addr_update_checksum(Ipv4Addr::new(1, 2, 3, 4));
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(1, 2, 3, 4));
    }

    #[test]
    fn repr_roundtrip() {
        let r = Ipv4Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::UDP,
            ttl: 17,
            dscp_ecn: 0xb8,
            ident: 77,
            dont_frag: false,
            more_frags: true,
            frag_offset: 64,
            options: vec![0x94, 0x04, 0x00, 0x00], // router alert
            payload_len: 3,
        };
        r.validate().unwrap();
        let mut buf = vec![0xaau8; r.buffer_len() + 3];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
    }
}
