//! IPv6 (RFC 8200) fixed header and extension-header walk.

use std::net::Ipv6Addr;

pub use crate::IpProtocol;
use crate::{arr16, be16, be32, put16, put32, Error, Result};

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const LENGTH: usize = 4;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Fixed header length.
pub const HEADER_LEN: usize = 40;
/// Upper bound on extension headers walked by [`Ipv6Packet::upper_layer`];
/// real traffic has at most a handful and an attacker must not make us loop.
pub const MAX_EXT_HEADERS: usize = 8;

/// Contents of an IPv6 fragment header (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    /// Next header of the fragmentable part.
    pub next_header: IpProtocol,
    /// Fragment offset in bytes.
    pub offset: u16,
    /// M flag.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

impl FragmentHeader {
    /// True for the first fragment (offset 0), which carries the upper-layer header.
    #[inline]
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// Where the upper-layer protocol starts, as found by [`Ipv6Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The first protocol that is not a walked extension header (may be
    /// `NO_NEXT`, `ESP`, or anything unknown).
    pub protocol: IpProtocol,
    /// Offset of that protocol's header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if one was seen. For a non-first fragment the
    /// walk stops right after it: `offset` then points at fragment data, not
    /// at an upper-layer header.
    pub fragment: Option<FragmentHeader>,
}

/// Zero-copy view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps after checking length ≥ 40, version 6 and 40 + payload_len ≤
    /// buffer length (extra bytes are link-layer padding).
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
        if d[0] >> 4 != 6 {
            return Err(Error::Malformed("version"));
        }
        if HEADER_LEN + usize::from(self.payload_len()) > d.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (6 after `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be16(self.buffer.as_ref(), 0) >> 4) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length (everything after the fixed header, incl. extension headers).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next header of the fixed header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_bytes())
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst_bytes())
    }

    /// Source address bytes.
    #[inline]
    pub fn src_bytes(&self) -> [u8; 16] {
        arr16(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address bytes.
    #[inline]
    pub fn dst_bytes(&self) -> [u8; 16] {
        arr16(self.buffer.as_ref(), field::DST)
    }

    /// Payload (40 .. 40 + payload_len), extension headers included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks hop-by-hop, routing, fragment, destination-options and AH
    /// headers to find the upper-layer protocol. Every length is checked
    /// against payload_len (`Truncated`); at most [`MAX_EXT_HEADERS`] are
    /// walked (`Unsupported` beyond); hop-by-hop anywhere but first is
    /// `Malformed` (RFC 8200 §4.1).
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let d = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(d.len());
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = None;
        for i in 0..=MAX_EXT_HEADERS {
            let len = match nh {
                IpProtocol::HOP_BY_HOP | IpProtocol::ROUTING | IpProtocol::DST_OPTS => {
                    if nh == IpProtocol::HOP_BY_HOP && i != 0 {
                        return Err(Error::Malformed("hop-by-hop not first"));
                    }
                    if off + 2 > end {
                        return Err(Error::Truncated);
                    }
                    (usize::from(d[off + 1]) + 1) * 8
                }
                IpProtocol::AH => {
                    if off + 2 > end {
                        return Err(Error::Truncated);
                    }
                    (usize::from(d[off + 1]) + 2) * 4
                }
                IpProtocol::FRAGMENT => 8,
                _ => {
                    return Ok(UpperLayer {
                        protocol: nh,
                        offset: off,
                        fragment,
                    })
                }
            };
            if i == MAX_EXT_HEADERS {
                break;
            }
            if off + len > end {
                return Err(Error::Truncated);
            }
            let next = IpProtocol(d[off]);
            if nh == IpProtocol::FRAGMENT {
                let fo = be16(d, off + 2);
                let frag = FragmentHeader {
                    next_header: next,
                    offset: fo & 0xfff8,
                    more_frags: fo & 1 != 0,
                    ident: be32(d, off + 4),
                };
                fragment = Some(frag);
                if !frag.is_first() {
                    // Non-first fragments carry no upper-layer header.
                    return Ok(UpperLayer {
                        protocol: next,
                        offset: off + len,
                        fragment,
                    });
                }
            }
            nh = next;
            off += len;
        }
        Err(Error::Unsupported("too many extension headers"))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, traffic class and flow label at once.
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        put32(self.buffer.as_mut(), field::VER_TC_FLOW, v);
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let d = self.buffer.as_mut();
        let v = (be32(d, 0) & 0xf00f_ffff) | (u32::from(tc) << 20);
        put32(d, 0, v);
    }

    /// Sets the flow label (20 bits).
    #[inline]
    pub fn set_flow_label(&mut self, fl: u32) {
        let d = self.buffer.as_mut();
        let v = (be32(d, 0) & 0xfff0_0000) | (fl & 0x000f_ffff);
        put32(d, 0, v);
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = v.0;
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(&a.octets());
    }

    /// Mutable payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv6Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source.
    pub src: Ipv6Addr,
    /// Destination.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: IpProtocol,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length (≤ 65535).
    pub payload_len: usize,
}

impl Ipv6Repr {
    /// Parses the fixed header.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        p.check()?;
        Ok(Ipv6Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
            payload_len: usize::from(p.payload_len()),
        })
    }

    /// Always 40.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header into a buffer of at least 40 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<T>) {
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
    }
}

/// Solicited-node multicast address of `a` (RFC 4291 2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// True when `a` is a solicited-node multicast address (ff02::1:ffXX:XXXX).
pub fn is_solicited_node(a: Ipv6Addr) -> bool {
    let s = a.segments();
    s[..6] == [0xff02, 0, 0, 0, 0, 1] && s[6] & 0xff00 == 0xff00
}

/// All-nodes link-scope multicast address, ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All-routers link-scope multicast address, ff02::2.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The fe80::/64 address derived from a MAC (modified EUI-64, RFC 4291
/// appendix A).
pub fn link_local_from_mac(mac: crate::MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

/// True for link-local unicast addresses, fe80::/10.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// True when `a` and `b` are in the same `len`-bit prefix.
pub fn same_subnet(a: Ipv6Addr, b: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len.min(128) as u32)
    };
    u128::from(a) & mask == u128::from(b) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0x6b, 0x81, 0x23, 0x45, // tc 0xb8, flow 0x12345
            0, 0, nh, 64,
        ];
        v[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn fixed_header() {
        let v = header(17, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), IpProtocol::UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        let r = Ipv6Repr::parse(&p).unwrap();
        let mut out = vec![0u8; 48];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
        out[40..].copy_from_slice(p.payload());
        assert_eq!(out, v);
        assert_eq!(
            p.upper_layer().unwrap(),
            UpperLayer {
                protocol: IpProtocol::UDP,
                offset: 40,
                fragment: None
            }
        );
        assert_eq!(
            Ipv6Packet::new_checked(&v[..47]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&v[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut b = v.clone();
        b[0] = 0x4b;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed("version")
        );
        let mut b = v.clone();
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        p.set_traffic_class(0x12);
        p.set_flow_label(0xfffff);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0x12, 0xfffff)
        );
    }

    #[test]
    fn ext_header_walk() {
        // HBH (8) -> DST_OPTS (16) -> FRAGMENT (8, first) -> AH (12) -> TCP
        let mut pl = vec![60, 0, 1, 4, 0, 0, 0, 0];
        pl.extend_from_slice(&[44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        pl.extend_from_slice(&[51, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        pl.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        pl.extend_from_slice(&[0u8; 20]);
        let v = header(0, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        let ul = p.upper_layer().unwrap();
        assert_eq!(ul.protocol, IpProtocol::TCP);
        assert_eq!(ul.offset, 40 + 8 + 16 + 8 + 12);
        assert_eq!(
            ul.fragment,
            Some(FragmentHeader {
                next_header: IpProtocol::AH,
                offset: 0,
                more_frags: true,
                ident: 0xdeadbeef
            })
        );

        // Non-first fragment stops after the fragment header.
        let v = header(44, &[17, 0, 0x05, 0xa8, 0, 0, 0, 9, 1, 2, 3]);
        let ul = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(ul.protocol, IpProtocol::UDP);
        assert_eq!(ul.offset, 48);
        let f = ul.fragment.unwrap();
        assert_eq!((f.offset, f.more_frags, f.ident), (1448, false, 9));

        // No next header.
        let v = header(60, &[59, 0, 0, 0, 0, 0, 0, 0]);
        let ul = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((ul.protocol, ul.offset), (IpProtocol::NO_NEXT, 48));

        // Truncated extension header.
        let v = header(43, &[6, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(Error::Truncated)
        );
        let v = header(60, &[]);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(Error::Truncated)
        );

        // HBH not first.
        let v = header(60, &[0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(Error::Malformed("hop-by-hop not first"))
        );

        // Too many headers.
        let pl: Vec<u8> = (0..9).flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0]).collect();
        let v = header(60, &pl);
        assert!(matches!(
            Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(),
            Err(Error::Unsupported(_))
        ));
        // Exactly MAX_EXT_HEADERS is fine.
        let mut pl: Vec<u8> = (0..7).flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0]).collect();
        pl.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        let v = header(60, &pl);
        let ul = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((ul.protocol, ul.offset), (IpProtocol::UDP, 40 + 64));
    }
}
