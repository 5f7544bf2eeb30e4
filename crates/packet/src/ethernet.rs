//! Ethernet II frames with up to two VLAN tags (802.1Q / 802.1ad QinQ).

use core::fmt;
use core::str::FromStr;
use std::net::Ipv6Addr;

use crate::{be16, put16, Error, Result};

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Builds an address from the first 6 bytes of `b` (None if shorter).
    #[inline]
    pub fn from_slice(b: &[u8]) -> Option<MacAddr> {
        Some(MacAddr(b.get(..6)?.try_into().ok()?))
    }

    /// The raw octets.
    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// ff:ff:ff:ff:ff:ff
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// Group bit set (includes broadcast).
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Group bit clear.
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Locally administered bit set.
    #[inline]
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The Ethernet multicast address for an IPv6 multicast group
    /// (RFC 2464 §7: 33:33 followed by the low 32 bits).
    #[inline]
    pub fn ipv6_multicast(addr: Ipv6Addr) -> MacAddr {
        let o = addr.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (two hex digits each).
    fn from_str(s: &str) -> Result<MacAddr> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for o in out.iter_mut() {
            let p = parts.next().ok_or(Error::Malformed("mac address"))?;
            if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::Malformed("mac address"));
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| Error::Malformed("mac address"))?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed("mac address"));
        }
        Ok(MacAddr(out))
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

/// Ethernet type field.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4 (0x0800).
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP (0x0806).
    pub const ARP: EtherType = EtherType(0x0806);
    /// 802.1Q VLAN tag (0x8100).
    pub const VLAN: EtherType = EtherType(0x8100);
    /// IPv6 (0x86dd).
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// 802.1ad service tag (0x88a8).
    pub const QINQ: EtherType = EtherType(0x88a8);

    /// True for TPIDs that introduce a VLAN tag.
    #[inline]
    pub fn is_vlan_tag(self) -> bool {
        self == Self::VLAN || self == Self::QINQ
    }
}

impl fmt::Debug for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EtherType::IPV4 => f.write_str("Ipv4"),
            EtherType::ARP => f.write_str("Arp"),
            EtherType::VLAN => f.write_str("Vlan"),
            EtherType::IPV6 => f.write_str("Ipv6"),
            EtherType::QINQ => f.write_str("QinQ"),
            EtherType(n) => write!(f, "EtherType({n:#06x})"),
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

mod field {
    pub const DST: core::ops::Range<usize> = 0..6;
    pub const SRC: core::ops::Range<usize> = 6..12;
    pub const TYPE: usize = 12;
    pub const TAG1_TCI: usize = 14;
    pub const TAG1_TYPE: usize = 16;
    pub const TAG2_TCI: usize = 18;
    pub const TAG2_TYPE: usize = 20;
}

/// Untagged header length.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = 4;

#[inline(always)]
fn is_tag(t: u16) -> bool {
    t == 0x8100 || t == 0x88a8
}

/// Zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checks; accessors may panic on short buffers.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking that the whole header, including up to
    /// two VLAN tags, is present. A third tag is `Unsupported`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// The check done by [`new_checked`](Self::new_checked).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if !is_tag(be16(d, field::TYPE)) {
            return Ok(());
        }
        if d.len() < HEADER_LEN + VLAN_TAG_LEN {
            return Err(Error::Truncated);
        }
        if !is_tag(be16(d, field::TAG1_TYPE)) {
            return Ok(());
        }
        if d.len() < HEADER_LEN + 2 * VLAN_TAG_LEN {
            return Err(Error::Truncated);
        }
        if is_tag(be16(d, field::TAG2_TYPE)) {
            return Err(Error::Unsupported("more than two vlan tags"));
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(crate::arr6(self.buffer.as_ref(), field::DST.start))
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(crate::arr6(self.buffer.as_ref(), field::SRC.start))
    }

    /// Number of VLAN tags (0, 1 or 2).
    #[inline]
    pub fn vlan_count(&self) -> usize {
        let d = self.buffer.as_ref();
        if !is_tag(be16(d, field::TYPE)) {
            0
        } else if !is_tag(be16(d, field::TAG1_TYPE)) {
            1
        } else {
            2
        }
    }

    /// Header length including tags (14, 18 or 22).
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + VLAN_TAG_LEN * self.vlan_count()
    }

    /// The payload's ethertype (the innermost one, after any tags).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(be16(self.buffer.as_ref(), self.header_len() - 2))
    }

    /// The ethertype right after the source address (a TPID if tagged).
    #[inline]
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType(be16(self.buffer.as_ref(), field::TYPE))
    }

    /// VLAN ID of the outermost tag, if any.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        match self.vlan_count() {
            0 => None,
            _ => Some(be16(self.buffer.as_ref(), field::TAG1_TCI) & 0x0fff),
        }
    }

    /// VLAN ID of the inner (customer) tag of a QinQ frame.
    #[inline]
    pub fn inner_vlan_id(&self) -> Option<u16> {
        match self.vlan_count() {
            2 => Some(be16(self.buffer.as_ref(), field::TAG2_TCI) & 0x0fff),
            _ => None,
        }
    }

    /// Priority code point of the outermost tag, if any.
    #[inline]
    pub fn vlan_pcp(&self) -> Option<u8> {
        match self.vlan_count() {
            0 => None,
            _ => Some((self.buffer.as_ref()[field::TAG1_TCI] >> 5) & 0x7),
        }
    }

    /// Everything after the header (including any Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    /// Sets the innermost ethertype (keeps any tags).
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        let at = self.header_len() - 2;
        put16(self.buffer.as_mut(), at, t.0);
    }

    /// Sets the VID of the outermost tag, keeping PCP/DEI; no-op if untagged.
    #[inline]
    pub fn set_vlan_id(&mut self, vid: u16) {
        if self.vlan_count() > 0 {
            let d = self.buffer.as_mut();
            let tci = (be16(d, field::TAG1_TCI) & 0xf000) | (vid & 0x0fff);
            put16(d, field::TAG1_TCI, tci);
        }
    }

    /// Mutable payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        &mut self.buffer.as_mut()[h..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level Ethernet header: at most one (802.1Q) tag; QinQ frames are
/// only handled by the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination.
    pub dst: MacAddr,
    /// Source.
    pub src: MacAddr,
    /// 802.1Q VLAN ID (12 bits; PCP/DEI are not kept).
    pub vlan: Option<u16>,
    /// Payload ethertype.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Parses the header. Double-tagged frames are `Unsupported` here since
    /// the repr has room for one tag only.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        if frame.vlan_count() > 1 {
            return Err(Error::Unsupported("qinq in EthernetRepr"));
        }
        Ok(EthernetRepr {
            dst: frame.dst_addr(),
            src: frame.src_addr(),
            vlan: frame.vlan_id(),
            ethertype: frame.ethertype(),
        })
    }

    /// Header length this repr emits.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + if self.vlan.is_some() { VLAN_TAG_LEN } else { 0 }
    }

    /// Writes the header (tag TPID 0x8100, PCP 0, VID masked to 12 bits).
    /// The buffer must be at least [`buffer_len`](Self::buffer_len) long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        let d = frame.buffer.as_mut();
        d[field::DST].copy_from_slice(&self.dst.0);
        d[field::SRC].copy_from_slice(&self.src.0);
        match self.vlan {
            None => put16(d, field::TYPE, self.ethertype.0),
            Some(vid) => {
                put16(d, field::TYPE, EtherType::VLAN.0);
                put16(d, field::TAG1_TCI, vid & 0x0fff);
                put16(d, field::TAG1_TYPE, self.ethertype.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addr() {
        let m: MacAddr = "aa:bb:cc:dd:ee:0f".parse().unwrap();
        assert_eq!(m.0, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]);
        assert_eq!(m.to_string(), "aa:bb:cc:dd:ee:0f");
        assert_eq!("AA-BB-CC-DD-EE-0F".parse::<MacAddr>().unwrap(), m);
        assert!("aa:bb:cc:dd:ee".parse::<MacAddr>().is_err());
        assert!("aa:bb:cc:dd:ee:ff:00".parse::<MacAddr>().is_err());
        assert!("aa:bb:cc:dd:ee:+f".parse::<MacAddr>().is_err());
        assert!("".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::ZERO.is_unicast());
        assert!(m.is_unicast() && m.is_local());
        let g: Ipv6Addr = "ff02::1:ff00:1234".parse().unwrap();
        assert_eq!(MacAddr::ipv6_multicast(g).to_string(), "33:33:ff:00:12:34");
    }

    const UNTAGGED: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0xde,
        0xad, 0xbe, 0xef,
    ];

    #[test]
    fn untagged() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr::BROADCAST);
        assert_eq!(f.src_addr().to_string(), "02:00:00:00:00:01");
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        let r = EthernetRepr::parse(&f).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        assert_eq!(out, &UNTAGGED[..14]);
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn tagged_and_qinq() {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&[0x81, 0x00, 0x20, 0x64, 0x86, 0xdd, 0x60]);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.vlan_pcp(), Some(1));
        assert_eq!(f.ethertype(), EtherType::IPV6);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x60]);
        assert_eq!(
            EthernetRepr::parse(&f).unwrap().vlan,
            Some(100),
            "pcp dropped, vid kept"
        );
        assert_eq!(
            EthernetFrame::new_checked(&b[..17]).unwrap_err(),
            Error::Truncated
        );

        let mut q = vec![0u8; 12];
        q.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00]);
        let mut f = EthernetFrame::new_checked(&mut q[..]).unwrap();
        assert_eq!(f.vlan_id(), Some(10));
        assert_eq!(f.inner_vlan_id(), Some(20));
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.header_len(), 22);
        assert!(f.payload().is_empty());
        f.set_ethertype(EtherType::IPV6);
        f.set_vlan_id(11);
        assert_eq!(f.ethertype(), EtherType::IPV6);
        assert_eq!(f.vlan_id(), Some(11));
        assert_eq!(
            EthernetRepr::parse(&f).unwrap_err(),
            Error::Unsupported("qinq in EthernetRepr")
        );
        assert_eq!(
            EthernetFrame::new_checked(&q[..21]).unwrap_err(),
            Error::Truncated
        );
        q[20..22].copy_from_slice(&[0x81, 0x00]);
        q.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            EthernetFrame::new_checked(&q[..]),
            Err(Error::Unsupported(_))
        ));
    }
}
