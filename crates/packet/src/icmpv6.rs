//! ICMP for IPv6 (RFC 4443). Neighbor discovery bodies live in [`crate::ndp`].

use std::net::Ipv6Addr;

use crate::checksum;
use crate::ndp::NdpRepr;
use crate::{be16, be32, put16, put32, Error, IpProtocol, Result};

/// Destination unreachable type.
pub const DST_UNREACHABLE: u8 = 1;
/// Packet too big type.
pub const PACKET_TOO_BIG: u8 = 2;
/// Time exceeded type.
pub const TIME_EXCEEDED: u8 = 3;
/// Parameter problem type.
pub const PARAM_PROBLEM: u8 = 4;
/// Echo request type.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply type.
pub const ECHO_REPLY: u8 = 129;
/// Router solicitation type.
pub const ROUTER_SOLICIT: u8 = 133;
/// Router advertisement type.
pub const ROUTER_ADVERT: u8 = 134;
/// Neighbor solicitation type.
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// Neighbor advertisement type.
pub const NEIGHBOR_ADVERT: u8 = 136;
/// Redirect type.
pub const REDIRECT: u8 = 137;

/// Destination unreachable: no route to destination.
pub const NO_ROUTE: u8 = 0;
/// Destination unreachable: administratively prohibited.
pub const ADMIN_PROHIBITED: u8 = 1;
/// Destination unreachable: beyond scope of source address.
pub const BEYOND_SCOPE: u8 = 2;
/// Destination unreachable: address unreachable.
pub const ADDR_UNREACHABLE: u8 = 3;
/// Destination unreachable: port unreachable.
pub const PORT_UNREACHABLE: u8 = 4;
/// Destination unreachable: reject route to destination.
pub const REJECT_ROUTE: u8 = 6;
/// Time exceeded: hop limit exceeded in transit.
pub const HOP_LIMIT_EXCEEDED: u8 = 0;
/// Time exceeded: fragment reassembly time exceeded.
pub const REASSEMBLY_EXCEEDED: u8 = 1;
/// Parameter problem: erroneous header field.
pub const ERRONEOUS_HEADER: u8 = 0;
/// Parameter problem: unrecognized next header.
pub const UNRECOGNIZED_NEXT_HEADER: u8 = 1;
/// Parameter problem: unrecognized IPv6 option.
pub const UNRECOGNIZED_OPTION: u8 = 2;

/// Length of the common header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = 8;

/// Zero-copy view of an ICMPv6 message; the buffer must be exactly the
/// message since the checksum covers all of it.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps after checking the 8-byte header is present. NDP bodies are
    /// longer; their accessors ([`crate::ndp`]) check their own lengths.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// The check done by [`new_checked`](Self::new_checked).
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// MTU of a packet-too-big message (bytes 4..8).
    #[inline]
    pub fn mtu(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// Pointer of a parameter-problem message (bytes 4..8).
    #[inline]
    pub fn pointer(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True for error messages (types < 128), which must not trigger errors.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    #[inline]
    fn sum_with_pseudo(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        let d = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, d.len() as u32);
        checksum::combine(ph, checksum::sum(d))
    }

    /// Verifies the checksum over the IPv6 pseudo-header.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::is_valid(self.sum_with_pseudo(src, dst))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the type.
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    /// Sets the code.
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }

    /// Stores a checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 6, v);
    }

    /// Sets bytes 4..8 (MTU, pointer, NDP flags/reserved).
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 4, v);
    }

    /// Mutable data.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum over the IPv6 pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::finish(self.sum_with_pseudo(src, dst));
        self.set_checksum(c);
    }

    pub(crate) fn raw_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv6Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// High-level ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr {
    /// Type 128.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: Vec<u8>,
    },
    /// Type 129.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: Vec<u8>,
    },
    /// Type 1.
    DstUnreachable {
        /// Code.
        code: u8,
        /// Invoking packet.
        data: Vec<u8>,
    },
    /// Type 2.
    PacketTooBig {
        /// Next-hop MTU.
        mtu: u32,
        /// Invoking packet.
        data: Vec<u8>,
    },
    /// Type 3.
    TimeExceeded {
        /// Code.
        code: u8,
        /// Invoking packet.
        data: Vec<u8>,
    },
    /// Type 4.
    ParamProblem {
        /// Code.
        code: u8,
        /// Offset of the offending byte in the invoking packet.
        pointer: u32,
        /// Invoking packet.
        data: Vec<u8>,
    },
    /// Types 133–136.
    Ndp(NdpRepr),
    /// Anything else (incl. redirect); `data` is bytes 4.. of the message
    /// (so it starts with the 4 type-specific bytes and is ≥ 4 long).
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// Bytes 4.. of the message.
        data: Vec<u8>,
    },
}

impl Icmpv6Repr {
    /// Parses a message. The checksum is *not* verified here since it needs
    /// the addresses: call [`Icmpv6Packet::verify_checksum`] first.
    pub fn parse<T: AsRef<[u8]>>(p: &Icmpv6Packet<T>) -> Result<Icmpv6Repr> {
        p.check()?;
        let data = || p.data().to_vec();
        Ok(match p.msg_type() {
            ECHO_REQUEST | ECHO_REPLY if p.code() != 0 => return Err(Error::Malformed("code")),
            ECHO_REQUEST => Icmpv6Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data: data(),
            },
            ECHO_REPLY => Icmpv6Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data: data(),
            },
            DST_UNREACHABLE => Icmpv6Repr::DstUnreachable {
                code: p.code(),
                data: data(),
            },
            PACKET_TOO_BIG => Icmpv6Repr::PacketTooBig {
                mtu: p.mtu(),
                data: data(),
            },
            TIME_EXCEEDED => Icmpv6Repr::TimeExceeded {
                code: p.code(),
                data: data(),
            },
            PARAM_PROBLEM => Icmpv6Repr::ParamProblem {
                code: p.code(),
                pointer: p.pointer(),
                data: data(),
            },
            ROUTER_SOLICIT | ROUTER_ADVERT | NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT => {
                Icmpv6Repr::Ndp(NdpRepr::parse(p)?)
            }
            t => Icmpv6Repr::Other {
                msg_type: t,
                code: p.code(),
                data: p.as_ref()[4..].to_vec(),
            },
        })
    }

    /// Message length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PacketTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. }
            | Icmpv6Repr::ParamProblem { data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::Ndp(n) => n.buffer_len(),
            Icmpv6Repr::Other { data, .. } => 4 + data.len().max(4),
        }
    }

    /// Writes the message (`buffer_len()` bytes) and fills the checksum
    /// over those bytes with the given pseudo-header addresses.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        p: &mut Icmpv6Packet<T>,
    ) {
        let len = self.buffer_len();
        let (t, c, rest, data): (u8, u8, u32, &[u8]) = match self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (
                ECHO_REQUEST,
                0,
                u32::from(*ident) << 16 | u32::from(*seq_no),
                data,
            ),
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (
                ECHO_REPLY,
                0,
                u32::from(*ident) << 16 | u32::from(*seq_no),
                data,
            ),
            Icmpv6Repr::DstUnreachable { code, data } => (DST_UNREACHABLE, *code, 0, data),
            Icmpv6Repr::PacketTooBig { mtu, data } => (PACKET_TOO_BIG, 0, *mtu, data),
            Icmpv6Repr::TimeExceeded { code, data } => (TIME_EXCEEDED, *code, 0, data),
            Icmpv6Repr::ParamProblem {
                code,
                pointer,
                data,
            } => (PARAM_PROBLEM, *code, *pointer, data),
            Icmpv6Repr::Ndp(n) => {
                n.emit(p);
                fill_checksum_len(p, src, dst, len);
                return;
            }
            Icmpv6Repr::Other {
                msg_type,
                code,
                data,
            } => {
                let d = p.raw_mut();
                d[0] = *msg_type;
                d[1] = *code;
                d[4..4 + data.len()].copy_from_slice(data);
                d[4 + data.len()..len].fill(0);
                fill_checksum_len(p, src, dst, len);
                return;
            }
        };
        p.set_msg_type(t);
        p.set_code(c);
        p.set_rest_of_header(rest);
        p.raw_mut()[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        fill_checksum_len(p, src, dst, len);
    }
}

// Checksums only the emitted bytes, so emitting into a larger scratch buffer
// still gives the right checksum for the message.
fn fill_checksum_len<T: AsRef<[u8]> + AsMut<[u8]>>(
    p: &mut Icmpv6Packet<T>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    len: usize,
) {
    p.set_checksum(0);
    let mut q = Icmpv6Packet::new_unchecked(&mut p.raw_mut()[..len]);
    q.fill_checksum(src, dst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    }

    #[test]
    fn echo() {
        let (s, d) = addrs();
        // Echo request id 0x1234 seq 1 "hi", checksum precomputed.
        let b = [0x80, 0x00, 0xa9, 0xa7, 0x12, 0x34, 0x00, 0x01, 0x68, 0x69];
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(s, d));
        assert!(!p.verify_checksum(d, d));
        let r = Icmpv6Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Icmpv6Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"hi".to_vec()
            }
        );
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(s, d, &mut Icmpv6Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, b);
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn errors_roundtrip() {
        let (s, d) = addrs();
        for r in [
            Icmpv6Repr::PacketTooBig {
                mtu: 1280,
                data: vec![0x60; 40],
            },
            Icmpv6Repr::ParamProblem {
                code: 1,
                pointer: 6,
                data: vec![1, 2, 3],
            },
            Icmpv6Repr::DstUnreachable {
                code: PORT_UNREACHABLE,
                data: vec![],
            },
            Icmpv6Repr::TimeExceeded {
                code: 0,
                data: vec![9],
            },
            Icmpv6Repr::Other {
                msg_type: REDIRECT,
                code: 0,
                data: vec![0; 36],
            },
        ] {
            let mut out = vec![0u8; r.buffer_len() + 5];
            r.emit(s, d, &mut Icmpv6Packet::new_unchecked(&mut out[..]));
            let p = Icmpv6Packet::new_checked(&out[..r.buffer_len()]).unwrap();
            assert!(p.verify_checksum(s, d));
            assert_eq!(Icmpv6Repr::parse(&p).unwrap(), r);
        }
    }
}
