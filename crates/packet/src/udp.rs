//! UDP (RFC 768).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::{be16, put16, Error, IpProtocol, Result};

/// Header length.
pub const HEADER_LEN: usize = 8;

/// Zero-copy view of a UDP datagram (the buffer is the IP payload).
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps after checking 8 ≤ length field ≤ buffer length.
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
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::Malformed("length"));
        }
        if len > d.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Length field (header + payload).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Checksum as stored (0 = none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// Payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    #[inline]
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// Verifies the checksum over the IPv4 pseudo-header; a zero checksum
    /// means "not computed" and passes.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let ph = checksum::pseudo_header_v4(src, dst, IpProtocol::UDP, self.len());
        checksum::is_valid(checksum::combine(ph, checksum::sum(self.datagram())))
    }

    /// Verifies the checksum over the IPv6 pseudo-header; zero is invalid
    /// over IPv6 (RFC 8200 §8.1).
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::UDP, u32::from(self.len()));
        checksum::is_valid(checksum::combine(ph, checksum::sum(self.datagram())))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v);
    }

    /// Stores a checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 6, v);
    }

    /// Mutable payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }

    /// Computes the checksum with the IPv4 pseudo-header. A computed 0 is
    /// sent as 0xffff, since 0 means "no checksum" (RFC 768).
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let ph = checksum::pseudo_header_v4(src, dst, IpProtocol::UDP, self.len());
        let c = checksum::finish(checksum::combine(ph, checksum::sum(self.datagram())));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Computes the checksum with the IPv6 pseudo-header (0 sent as 0xffff).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::UDP, u32::from(self.len()));
        let c = checksum::finish(checksum::combine(ph, checksum::sum(self.datagram())));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UdpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level UDP header. The payload is not part of the repr: `emit`
/// writes the header, the caller writes `payload_mut()` and then fills the
/// checksum with the right pseudo-header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses the header (checksums are verified separately, since they
    /// need the IP addresses).
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>) -> Result<UdpRepr> {
        p.check()?;
        // Port 0 is reserved as a destination.
        if p.dst_port() == 0 {
            return Err(Error::Malformed("dst_port"));
        }
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: usize::from(p.len()) - HEADER_LEN,
        })
    }

    /// Header length (8).
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with a zero checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut UdpPacket<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len((HEADER_LEN + self.payload_len) as u16);
        p.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // DNS query 10.0.0.1:53000 -> 10.0.0.53:53, payload "\x12\x34" with checksum.
    fn sample() -> Vec<u8> {
        let mut v = vec![0xcf, 0x08, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0x12, 0x34];
        let mut p = UdpPacket::new_unchecked(&mut v[..]);
        p.fill_checksum_v4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 53));
        v
    }

    #[test]
    fn basic() {
        let v = sample();
        // 0a00+0001+0a00+0035+0011+000a + cf08+0035+000a+1234 folds to 0xf5cc.
        assert_eq!(&v[6..8], &[0x0a, 0x33]);
        let p = UdpPacket::new_checked(&v[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (53000, 53, 10));
        assert_eq!(p.payload(), &[0x12, 0x34]);
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 53));
        assert!(p.verify_checksum_v4(s, d));
        assert!(!p.verify_checksum_v4(d, Ipv4Addr::new(10, 0, 0, 2)));
        let r = UdpRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                src_port: 53000,
                dst_port: 53,
                payload_len: 2
            }
        );
        let mut out = vec![0u8; 10];
        let mut q = UdpPacket::new_unchecked(&mut out[..]);
        r.emit(&mut q);
        q.payload_mut().copy_from_slice(&[0x12, 0x34]);
        q.fill_checksum_v4(s, d);
        assert_eq!(out, v);
    }

    #[test]
    fn checksum_zero_rules() {
        let mut v = sample();
        v[6] = 0;
        v[7] = 0;
        let p = UdpPacket::new_checked(&v[..]).unwrap();
        let (a, b) = (Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2));
        assert!(p.verify_checksum_v4(a, b));
        assert!(!p.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST));

        // Find a payload whose checksum computes to 0 and check it is sent as 0xffff.
        let (s6, d6): (Ipv6Addr, Ipv6Addr) = ("::1".parse().unwrap(), "::2".parse().unwrap());
        let mut v = vec![0, 1, 0, 2, 0, 10, 0, 0, 0, 0];
        let mut p = UdpPacket::new_unchecked(&mut v[..]);
        p.fill_checksum_v6(s6, d6);
        let c = p.checksum();
        // Adjust the payload word so the sum becomes 0xffff (checksum 0).
        let want = c; // adding `c` to the sum turns it into 0xffff
        p.payload_mut().copy_from_slice(&want.to_be_bytes());
        p.fill_checksum_v6(s6, d6);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v6(s6, d6));
    }

    #[test]
    fn errors() {
        let v = sample();
        assert_eq!(
            UdpPacket::new_checked(&v[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&v[..9]).unwrap_err(),
            Error::Truncated
        );
        let mut b = v.clone();
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Malformed("length")
        );
    }
}
