//! ICMP for IPv4 (RFC 792).

use crate::checksum;
use crate::{be16, put16, Error, Result};

/// Echo reply type.
pub const ECHO_REPLY: u8 = 0;
/// Destination unreachable type.
pub const DEST_UNREACHABLE: u8 = 3;
/// Redirect type.
pub const REDIRECT: u8 = 5;
/// Echo request type.
pub const ECHO_REQUEST: u8 = 8;
/// Time exceeded type.
pub const TIME_EXCEEDED: u8 = 11;
/// Parameter problem type.
pub const PARAM_PROBLEM: u8 = 12;

/// Destination unreachable: net unreachable.
pub const NET_UNREACHABLE: u8 = 0;
/// Destination unreachable: host unreachable.
pub const HOST_UNREACHABLE: u8 = 1;
/// Destination unreachable: protocol unreachable.
pub const PROTO_UNREACHABLE: u8 = 2;
/// Destination unreachable: port unreachable.
pub const PORT_UNREACHABLE: u8 = 3;
/// Destination unreachable: fragmentation needed and DF set (RFC 1191).
pub const FRAG_NEEDED: u8 = 4;
/// Destination unreachable: communication administratively prohibited (RFC 1812).
pub const ADMIN_PROHIBITED: u8 = 13;

/// Time exceeded: TTL exceeded in transit.
pub const TTL_EXCEEDED: u8 = 0;
/// Time exceeded: fragment reassembly time exceeded.
pub const REASSEMBLY_EXCEEDED: u8 = 1;

/// Length of the ICMP header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = 8;

/// Zero-copy view of an ICMPv4 message. The buffer must be exactly the
/// message (the IPv4 payload), since the checksum covers all of it.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps after checking the 8-byte header is present.
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

    /// Echo identifier (bytes 4..6).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number (bytes 6..8).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// Next-hop MTU of a fragmentation-needed message (bytes 6..8).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// The 4 type-specific header bytes as one word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        crate::be32(self.buffer.as_ref(), 4)
    }

    /// Everything after the 8-byte header (echo data, or the invoking packet).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True if the checksum over the whole message is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::is_valid(checksum::sum(self.buffer.as_ref()))
    }

    /// True for error messages (which must never be answered with an error).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            DEST_UNREACHABLE | REDIRECT | TIME_EXCEEDED | PARAM_PROBLEM | 4
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
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

    /// Sets the 4 type-specific bytes.
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        crate::put32(self.buffer.as_mut(), 4, v);
    }

    /// Mutable data.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Recomputes the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(self.buffer.as_ref()));
        self.set_checksum(c);
    }
}

/// High-level ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr {
    /// Type 8.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: Vec<u8>,
    },
    /// Type 0.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Payload.
        data: Vec<u8>,
    },
    /// Type 3.
    DstUnreachable {
        /// Code (`NET_UNREACHABLE`, ..., `FRAG_NEEDED`, `ADMIN_PROHIBITED`).
        code: u8,
        /// Next-hop MTU (meaningful for `FRAG_NEEDED`, else 0).
        next_hop_mtu: u16,
        /// Invoking IPv4 header + leading data.
        data: Vec<u8>,
    },
    /// Type 11.
    TimeExceeded {
        /// Code.
        code: u8,
        /// Invoking IPv4 header + leading data.
        data: Vec<u8>,
    },
    /// Any other type; `data` is everything after the checksum, i.e. it
    /// starts with the 4 type-specific header bytes (so is ≥ 4 long).
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// Bytes 4.. of the message.
        data: Vec<u8>,
    },
}

impl Icmpv4Repr {
    /// Parses a message and verifies its checksum. Echo messages with a
    /// non-zero code are `Malformed("code")`.
    pub fn parse<T: AsRef<[u8]>>(p: &Icmpv4Packet<T>) -> Result<Icmpv4Repr> {
        p.check()?;
        if !p.verify_checksum() {
            return Err(Error::Malformed("checksum"));
        }
        let data = p.data().to_vec();
        Ok(match p.msg_type() {
            ECHO_REQUEST | ECHO_REPLY if p.code() != 0 => return Err(Error::Malformed("code")),
            ECHO_REQUEST => Icmpv4Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            ECHO_REPLY => Icmpv4Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            DEST_UNREACHABLE => Icmpv4Repr::DstUnreachable {
                code: p.code(),
                next_hop_mtu: p.next_hop_mtu(),
                data,
            },
            TIME_EXCEEDED => Icmpv4Repr::TimeExceeded {
                code: p.code(),
                data,
            },
            t => Icmpv4Repr::Other {
                msg_type: t,
                code: p.code(),
                data: p.buffer.as_ref()[4..].to_vec(),
            },
        })
    }

    /// Message length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. } => HEADER_LEN + data.len(),
            Icmpv4Repr::Other { data, .. } => 4 + data.len().max(4),
        }
    }

    /// Writes the message (exactly `buffer_len()` bytes are expected) and
    /// fills the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Icmpv4Packet<T>) {
        let (t, c, rest, data): (u8, u8, u32, &[u8]) = match self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (
                ECHO_REQUEST,
                0,
                u32::from(*ident) << 16 | u32::from(*seq_no),
                data,
            ),
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (
                ECHO_REPLY,
                0,
                u32::from(*ident) << 16 | u32::from(*seq_no),
                data,
            ),
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                data,
            } => (DEST_UNREACHABLE, *code, u32::from(*next_hop_mtu), data),
            Icmpv4Repr::TimeExceeded { code, data } => (TIME_EXCEEDED, *code, 0, data),
            Icmpv4Repr::Other {
                msg_type,
                code,
                data,
            } => {
                let d = p.buffer.as_mut();
                d[0] = *msg_type;
                d[1] = *code;
                d[4..4 + data.len()].copy_from_slice(data);
                d[4 + data.len()..self.buffer_len()].fill(0);
                p.fill_checksum_len(self.buffer_len());
                return;
            }
        };
        p.set_msg_type(t);
        p.set_code(c);
        p.set_rest_of_header(rest);
        p.buffer.as_mut()[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        p.fill_checksum_len(self.buffer_len());
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    // Checksums only the emitted bytes, so emitting into a larger scratch
    // buffer still yields a checksum that matches the message.
    fn fill_checksum_len(&mut self, len: usize) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum(&self.buffer.as_ref()[..len]));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request id 1 seq 2 "abcd", as captured (see ipv4 tests).
    const ECHO: [u8; 12] = [
        0x08, 0x00, 0x33, 0x36, 0x00, 0x01, 0x00, 0x02, 0x61, 0x62, 0x63, 0x64,
    ];

    #[test]
    fn echo() {
        let p = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.checksum()), (8, 0, 0x3336));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (1, 2));
        assert_eq!(p.data(), b"abcd");
        assert!(p.verify_checksum() && !p.is_error());
        let r = Icmpv4Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Icmpv4Repr::EchoRequest {
                ident: 1,
                seq_no: 2,
                data: b"abcd".to_vec()
            }
        );
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, ECHO);

        let reply = Icmpv4Repr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: b"abcd".to_vec(),
        };
        let mut out = vec![0u8; reply.buffer_len()];
        reply.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        // Type 8 -> 0 changes the checksum by exactly 0x0800.
        assert_eq!(&out[..4], &[0x00, 0x00, 0x3b, 0x36]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut b = ECHO;
        b[9] ^= 0xff;
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(
            Icmpv4Repr::parse(&p).unwrap_err(),
            Error::Malformed("checksum")
        );
    }

    #[test]
    fn frag_needed_and_other() {
        let r = Icmpv4Repr::DstUnreachable {
            code: FRAG_NEEDED,
            next_hop_mtu: 1400,
            data: vec![0x45; 28],
        };
        let mut out = [0u8; 64];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        let p = Icmpv4Packet::new_checked(&out[..r.buffer_len()]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.next_hop_mtu()), (3, 4, 1400));
        assert!(p.is_error());
        assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);

        let r = Icmpv4Repr::Other {
            msg_type: 13,
            code: 0,
            data: vec![1, 2, 3, 4, 5],
        };
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).unwrap()).unwrap(),
            r
        );
    }
}
