//! VXLAN (RFC 7348) header.

use crate::{be32, put32, Error, Result};

/// IANA-assigned UDP destination port.
pub const UDP_PORT: u16 = 4789;
/// Header length.
pub const HEADER_LEN: usize = 8;
/// The "I" flag: the VNI is valid. RFC 7348 requires it set.
pub const FLAG_I: u8 = 0x08;

/// Zero-copy view of a VXLAN header and the inner Ethernet frame.
#[derive(Debug, Clone)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Wraps without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanPacket { buffer }
    }

    /// Wraps after checking the 8-byte header is present and the I flag set.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// The check done by [`new_checked`](Self::new_checked). Reserved bits
    /// are ignored on receipt, as RFC 7348 asks.
    #[inline]
    pub fn check(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if d[0] & FLAG_I == 0 {
            return Err(Error::Malformed("flags"));
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// 24-bit VXLAN network identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        be32(self.buffer.as_ref(), 4) >> 8
    }

    /// Inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    /// Sets the VNI (low 24 bits), keeping the reserved byte.
    #[inline]
    pub fn set_vni(&mut self, vni: u32) {
        let d = self.buffer.as_mut();
        let v = (vni << 8) | u32::from(d[7]);
        put32(d, 4, v);
    }

    /// Mutable inner frame.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// High-level VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxlanRepr {
    /// 24-bit VNI.
    pub vni: u32,
}

impl VxlanRepr {
    /// Parses the header.
    pub fn parse<T: AsRef<[u8]>>(p: &VxlanPacket<T>) -> Result<VxlanRepr> {
        p.check()?;
        Ok(VxlanRepr { vni: p.vni() })
    }

    /// Always 8.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header: I flag, reserved fields zero, VNI masked to 24 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut VxlanPacket<T>) {
        let d = p.buffer.as_mut();
        put32(d, 0, u32::from(FLAG_I) << 24);
        put32(d, 4, (self.vni & 0x00ff_ffff) << 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header() {
        let b = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0x00, 0xaa];
        let p = VxlanPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.vni(), 0x123456);
        assert_eq!(p.flags(), 0x08);
        assert_eq!(p.payload(), &[0xaa]);
        let r = VxlanRepr::parse(&p).unwrap();
        let mut out = [0u8; 8];
        r.emit(&mut VxlanPacket::new_unchecked(&mut out[..]));
        assert_eq!(out, b[..8]);
        assert_eq!(
            VxlanPacket::new_checked(&b[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut z = b;
        z[0] = 0;
        assert_eq!(
            VxlanPacket::new_checked(&z[..]).unwrap_err(),
            Error::Malformed("flags")
        );
        let mut m = b;
        let mut p = VxlanPacket::new_checked(&mut m[..]).unwrap();
        p.set_vni(0xfedcba98);
        assert_eq!(p.vni(), 0xdcba98);
    }
}
