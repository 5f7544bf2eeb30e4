//! NAT44 packet rewriting (RFC 3022, RFC 5508 for ICMP).
//!
//! Everything here works in place on a `&mut [u8]` that starts at the IPv4
//! header, never allocates and never panics: lengths are checked against the
//! slice and problems are reported as a [`Nat4Error`]. Checksums are patched
//! incrementally (RFC 1624 eqn. 3, see [`checksum::update_u16`]), so a packet
//! that arrives with valid checksums leaves with valid ones (and with exactly
//! the value a full recomputation would give), while a packet whose checksum
//! was already wrong stays wrong: a NAT must not hide corruption.
//!
//! The IPv4 total length bounds the packet: bytes of the slice past it
//! (link-layer padding) are neither read nor written.
//!
//! # ICMP query identifiers
//!
//! ICMP queries (echo, timestamp, information and address-mask requests and
//! replies) have a single identifier, which [`classify`] reports in both
//! [`Tuple4::sport`] and [`Tuple4::dport`]. [`rewrite`] writes `to.sport`
//! into the identifier when `to.sport == to.dport` (the usual case: the NAT
//! keeps the identifier in both ports). If they differ, a request (types 8,
//! 13, 15, 17) gets `to.sport` and a reply (types 0, 14, 16, 18) gets
//! `to.dport`, i.e. the identifier plays the part of the requester's port.

use crate::checksum;

/// IPv4 fixed header length.
const IP_HDR: usize = 20;
/// The MF flag in the flags/fragment-offset word.
const MF: u16 = 0x2000;
/// The fragment offset bits of the flags/fragment-offset word.
const OFF_MASK: u16 = 0x1fff;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// TCP header length without options.
const TCP_HDR: usize = 20;
/// UDP header length.
const UDP_HDR: usize = 8;
/// ICMP header length.
const ICMP_HDR: usize = 8;

/// Offset of the checksum in a TCP header.
const TCP_CSUM: usize = 16;
/// Offset of the checksum in a UDP header.
const UDP_CSUM: usize = 6;
/// Offset of the checksum in an ICMP header.
const ICMP_CSUM: usize = 2;
/// Offset of the query identifier in an ICMP header.
const ICMP_IDENT: usize = 4;

/// What NAT keys on: protocol, addresses and ports.
///
/// For ICMP queries (echo request/reply, and timestamp/info/address-mask
/// request/reply) both ports are the ICMP identifier. For other protocols
/// ports are 0. Addresses are host-order integers (`u32::from(Ipv4Addr)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tuple4 {
    /// IP protocol number.
    pub proto: u8,
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port (ICMP query: the identifier; otherwise 0 if portless).
    pub sport: u16,
    /// Destination port (ICMP query: the identifier; otherwise 0 if portless).
    pub dport: u16,
}

impl Tuple4 {
    /// The tuple of the opposite direction: `src`/`dst` and `sport`/`dport`
    /// swapped, protocol unchanged.
    #[inline]
    pub fn reversed(&self) -> Tuple4 {
        Tuple4 {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

/// Why a packet could not be classified or rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Nat4Error {
    /// The slice is shorter than a header (or a length field) requires, or a
    /// length field is inconsistent (IHL below 5, total length below the
    /// header length).
    #[error("truncated packet")]
    Truncated,
    /// An ICMP error whose embedded packet is unusable: shorter than its
    /// IPv4 header plus 8 bytes, not IPv4, or itself an ICMP error.
    #[error("unusable packet embedded in an ICMP error")]
    BadIcmpError,
    /// Not something this function handles: not IPv4, a protocol that does
    /// not match the requested tuple, an ICMP error given to [`rewrite`], a
    /// non-error given to [`rewrite_icmp_error`], or a later fragment of an
    /// ICMP error.
    #[error("unsupported packet for NAT44")]
    Unsupported,
}

/// What a packet is, for NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind4 {
    /// TCP, UDP or an ICMP query, unfragmented or the first fragment.
    Flow {
        /// Protocol, addresses and ports (ICMP query: identifier in both ports).
        tuple: Tuple4,
        /// The TCP flags byte (byte 13 of the TCP header); 0 for UDP and ICMP.
        flags: u8,
        /// True if this is the first fragment of a fragmented datagram
        /// (MF set, offset 0).
        first_fragment: bool,
        /// True for an ICMP query request (echo, timestamp, information or
        /// address-mask request); false for replies and for TCP and UDP.
        is_request: bool,
    },
    /// A later fragment (offset > 0): the transport header is elsewhere.
    Fragment {
        /// Protocol and addresses; ports 0.
        tuple: Tuple4,
        /// The IPv4 identification, to match the fragment to its first one.
        id: u16,
    },
    /// An ICMP error (destination unreachable 3, time exceeded 11, parameter
    /// problem 12) carrying an embedded packet.
    IcmpError {
        /// The error's own tuple (protocol 1, ports 0).
        outer: Tuple4,
        /// The embedded packet's tuple as it was sent: for an error about
        /// an outbound UDP packet, `inner.src` is the sender of that packet.
        /// Ports are 0 if the embedded packet is a later fragment or of a
        /// portless protocol; an embedded ICMP query has its identifier in
        /// both ports.
        inner: Tuple4,
        /// ICMP type of the error.
        icmp_type: u8,
        /// ICMP code of the error.
        code: u8,
    },
    /// Anything else (other protocols, other ICMP types): addresses only.
    Other {
        /// Protocol and addresses; ports 0.
        tuple: Tuple4,
    },
}

// ------------------------------------------------------------ bounded access

#[inline]
fn rd16(d: &[u8], at: usize) -> Option<u16> {
    let b: [u8; 2] = d.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

#[inline]
fn wr16(d: &mut [u8], at: usize, v: u16) -> Option<()> {
    d.get_mut(at..at.checked_add(2)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

#[inline]
fn wr32(d: &mut [u8], at: usize, v: u32) -> Option<()> {
    d.get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

// ------------------------------------------------------------------ headers

/// The fields of an IPv4 header NAT needs.
#[derive(Clone, Copy)]
struct V4 {
    /// Header length in bytes.
    hl: usize,
    /// Total length field.
    tl: usize,
    /// Identification.
    id: u16,
    /// Flags and fragment offset word.
    flg_off: u16,
    /// Protocol.
    proto: u8,
    /// Source address.
    src: u32,
    /// Destination address.
    dst: u32,
}

impl V4 {
    /// Reads the fixed header: version 4 and IHL ≥ 5, nothing about lengths
    /// beyond the 20 fixed bytes.
    #[inline]
    fn read(d: &[u8]) -> Option<V4> {
        let h: &[u8; IP_HDR] = d.get(..IP_HDR)?.try_into().ok()?;
        if h[0] >> 4 != 4 || h[0] & 0x0f < 5 {
            return None;
        }
        Some(V4 {
            hl: usize::from(h[0] & 0x0f) * 4,
            tl: usize::from(u16::from_be_bytes([h[2], h[3]])),
            id: u16::from_be_bytes([h[4], h[5]]),
            flg_off: u16::from_be_bytes([h[6], h[7]]),
            proto: h[9],
            src: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            dst: u32::from_be_bytes([h[16], h[17], h[18], h[19]]),
        })
    }

    /// Parses an outer header: also checks hl ≤ total length ≤ slice length.
    #[inline]
    fn outer(ip: &[u8]) -> Result<V4, Nat4Error> {
        let h: &[u8; IP_HDR] = ip
            .get(..IP_HDR)
            .and_then(|s| s.try_into().ok())
            .ok_or(Nat4Error::Truncated)?;
        if h[0] >> 4 != 4 {
            return Err(Nat4Error::Unsupported);
        }
        let v = V4::read(ip).ok_or(Nat4Error::Truncated)?;
        if v.tl < v.hl || v.tl > ip.len() {
            return Err(Nat4Error::Truncated);
        }
        Ok(v)
    }

    /// Fragment offset field (in 8-byte units); non-zero for later fragments.
    #[inline]
    fn offset(&self) -> u16 {
        self.flg_off & OFF_MASK
    }

    /// MF flag.
    #[inline]
    fn more_frags(&self) -> bool {
        self.flg_off & MF != 0
    }
}

/// ICMP query request types: echo, timestamp, information, address mask.
#[inline]
fn icmp_query_request(t: u8) -> bool {
    matches!(t, 8 | 13 | 15 | 17)
}

/// ICMP query reply types.
#[inline]
fn icmp_query_reply(t: u8) -> bool {
    matches!(t, 0 | 14 | 16 | 18)
}

/// ICMP error types NAT translates (RFC 5508 §3).
#[inline]
fn icmp_error_type(t: u8) -> bool {
    matches!(t, 3 | 11 | 12)
}

/// ICMP types that are errors (never translated when embedded): the three
/// above plus source quench (4) and redirect (5).
#[inline]
fn icmp_any_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// The identifier to write into an ICMP query of type `t` for tuple `to`.
#[inline]
fn icmp_ident_for(t: u8, to: &Tuple4) -> u16 {
    if to.sport == to.dport || icmp_query_request(t) {
        to.sport
    } else {
        to.dport
    }
}

/// The embedded packet of an ICMP error: its header and its tuple as sent.
/// `e` is the ICMP message from byte 8 on.
fn embedded(e: &[u8]) -> Result<(V4, Tuple4), Nat4Error> {
    let v = V4::read(e).ok_or(Nat4Error::BadIcmpError)?;
    let l4 = e
        .get(v.hl..)
        .filter(|l4| l4.len() >= 8)
        .ok_or(Nat4Error::BadIcmpError)?;
    let mut t = Tuple4 {
        proto: v.proto,
        src: v.src,
        dst: v.dst,
        sport: 0,
        dport: 0,
    };
    if v.offset() == 0 {
        match v.proto {
            PROTO_TCP | PROTO_UDP => {
                t.sport = rd16(l4, 0).ok_or(Nat4Error::BadIcmpError)?;
                t.dport = rd16(l4, 2).ok_or(Nat4Error::BadIcmpError)?;
            }
            PROTO_ICMP => {
                let ty = l4[0];
                if icmp_any_error(ty) {
                    return Err(Nat4Error::BadIcmpError);
                }
                if icmp_query_request(ty) || icmp_query_reply(ty) {
                    let id = rd16(l4, ICMP_IDENT).ok_or(Nat4Error::BadIcmpError)?;
                    t.sport = id;
                    t.dport = id;
                }
            }
            _ => {}
        }
    }
    Ok((v, t))
}

/// Classifies a packet for NAT. `ip` starts at the IPv4 header.
///
/// TCP needs its 20-byte header, UDP and ICMP their 8-byte headers (within
/// the IPv4 total length) in an unfragmented packet or first fragment, else
/// `Err(Truncated)`. An ICMP error whose embedded packet is unusable is
/// `Err(BadIcmpError)`. A later fragment is always [`Kind4::Fragment`],
/// whatever the protocol.
pub fn classify(ip: &[u8]) -> Result<Kind4, Nat4Error> {
    let v = V4::outer(ip)?;
    let mut tuple = Tuple4 {
        proto: v.proto,
        src: v.src,
        dst: v.dst,
        sport: 0,
        dport: 0,
    };
    if v.offset() != 0 {
        return Ok(Kind4::Fragment { tuple, id: v.id });
    }
    let first_fragment = v.more_frags();
    let l4 = ip.get(v.hl..v.tl).ok_or(Nat4Error::Truncated)?;
    match v.proto {
        PROTO_TCP | PROTO_UDP => {
            let need = if v.proto == PROTO_TCP {
                TCP_HDR
            } else {
                UDP_HDR
            };
            if l4.len() < need {
                return Err(Nat4Error::Truncated);
            }
            tuple.sport = rd16(l4, 0).ok_or(Nat4Error::Truncated)?;
            tuple.dport = rd16(l4, 2).ok_or(Nat4Error::Truncated)?;
            let flags = if v.proto == PROTO_TCP {
                *l4.get(13).ok_or(Nat4Error::Truncated)?
            } else {
                0
            };
            Ok(Kind4::Flow {
                tuple,
                flags,
                first_fragment,
                is_request: false,
            })
        }
        PROTO_ICMP => {
            if l4.len() < ICMP_HDR {
                return Err(Nat4Error::Truncated);
            }
            let ty = l4[0];
            let code = l4[1];
            if icmp_query_request(ty) || icmp_query_reply(ty) {
                let id = rd16(l4, ICMP_IDENT).ok_or(Nat4Error::Truncated)?;
                tuple.sport = id;
                tuple.dport = id;
                Ok(Kind4::Flow {
                    tuple,
                    flags: 0,
                    first_fragment,
                    is_request: icmp_query_request(ty),
                })
            } else if icmp_error_type(ty) {
                let (_, inner) = embedded(&l4[ICMP_HDR..])?;
                Ok(Kind4::IcmpError {
                    outer: tuple,
                    inner,
                    icmp_type: ty,
                    code,
                })
            } else {
                Ok(Kind4::Other { tuple })
            }
        }
        _ => Ok(Kind4::Other { tuple }),
    }
}

/// Rewrites the addresses of the IPv4 header at the start of `h` (whose
/// header length is already checked) and patches its checksum.
#[inline]
fn rewrite_ip_addrs(h: &mut [u8], v: &V4, src: u32, dst: u32) -> Option<()> {
    let mut c = rd16(h, 10)?;
    c = checksum::update_u32(c, v.src, src);
    c = checksum::update_u32(c, v.dst, dst);
    wr32(h, 12, src)?;
    wr32(h, 16, dst)?;
    wr16(h, 10, c)
}

/// Rewrites the ports of a TCP or UDP header (`l4`, at least 4 bytes) and
/// patches its checksum for the port and pseudo-header address changes if
/// the checksum field is present in `l4`. A zero UDP checksum stays zero; a
/// UDP result of zero is written as 0xffff.
fn rewrite_ports(l4: &mut [u8], proto: u8, v: &V4, to: &Tuple4) -> Option<()> {
    let sp = rd16(l4, 0)?;
    let dp = rd16(l4, 2)?;
    wr16(l4, 0, to.sport)?;
    wr16(l4, 2, to.dport)?;
    let at = if proto == PROTO_TCP {
        TCP_CSUM
    } else {
        UDP_CSUM
    };
    let Some(mut c) = rd16(l4, at) else {
        // The checksum is not in the quoted bytes of an ICMP error.
        return Some(());
    };
    if proto == PROTO_UDP && c == 0 {
        return Some(());
    }
    c = checksum::update_u32(c, v.src, to.src);
    c = checksum::update_u32(c, v.dst, to.dst);
    c = checksum::update_u16(c, sp, to.sport);
    c = checksum::update_u16(c, dp, to.dport);
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    wr16(l4, at, c)
}

/// Rewrites the identifier of an ICMP query header (`l4`, at least 8 bytes)
/// and patches the ICMP checksum. Other ICMP types are left alone.
fn rewrite_icmp_ident(l4: &mut [u8], to: &Tuple4) -> Option<()> {
    let ty = *l4.first()?;
    if !(icmp_query_request(ty) || icmp_query_reply(ty)) {
        return Some(());
    }
    let old = rd16(l4, ICMP_IDENT)?;
    let new = icmp_ident_for(ty, to);
    let c = checksum::update_u16(rd16(l4, ICMP_CSUM)?, old, new);
    wr16(l4, ICMP_IDENT, new)?;
    wr16(l4, ICMP_CSUM, c)
}

/// Rewrites the packet's addresses and ports to `to`, patching the IPv4
/// header checksum and the transport checksum incrementally.
///
/// * `to.proto` must equal the packet's protocol, else `Err(Unsupported)`.
/// * TCP: addresses, ports and the TCP checksum.
/// * UDP: addresses, ports and the UDP checksum if it is non-zero (a zero
///   checksum stays zero; a result of 0 is written as 0xffff, RFC 768).
/// * ICMP query: addresses and the identifier (see the
///   [module docs](self#icmp-query-identifiers) for which of `to.sport` and
///   `to.dport` is used) with the ICMP checksum.
/// * A later fragment (offset > 0), another protocol or another ICMP type:
///   only the addresses (the transport checksum of a fragmented datagram is
///   patched in its first fragment, which carries the transport header).
/// * An ICMP error (types 3, 11, 12) is `Err(Unsupported)`: use
///   [`rewrite_icmp_error`], which also translates the embedded packet.
///
/// The length requirements are those of [`classify`]. On error the packet
/// is left unchanged.
pub fn rewrite(ip: &mut [u8], to: &Tuple4) -> Result<(), Nat4Error> {
    let v = V4::outer(ip)?;
    if to.proto != v.proto {
        return Err(Nat4Error::Unsupported);
    }
    let (head, rest) = ip.split_at_mut(v.hl);
    if v.offset() == 0 {
        let l4 = rest.get_mut(..v.tl - v.hl).ok_or(Nat4Error::Truncated)?;
        match v.proto {
            PROTO_TCP | PROTO_UDP => {
                let need = if v.proto == PROTO_TCP {
                    TCP_HDR
                } else {
                    UDP_HDR
                };
                if l4.len() < need {
                    return Err(Nat4Error::Truncated);
                }
                rewrite_ports(l4, v.proto, &v, to).ok_or(Nat4Error::Truncated)?;
            }
            PROTO_ICMP => {
                if l4.len() < ICMP_HDR {
                    return Err(Nat4Error::Truncated);
                }
                if icmp_error_type(l4[0]) {
                    return Err(Nat4Error::Unsupported);
                }
                rewrite_icmp_ident(l4, to).ok_or(Nat4Error::Truncated)?;
            }
            _ => {}
        }
    }
    rewrite_ip_addrs(head, &v, to.src, to.dst).ok_or(Nat4Error::Truncated)
}

/// Rewrites an ICMP error (type 3, 11 or 12): the outer source and
/// destination addresses to `outer_src`/`outer_dst`, and the embedded
/// packet's addresses and ports to `inner` (the embedded tuple as it should
/// appear after translation, i.e. as the translated flow's packet was sent).
///
/// Patched: the embedded IPv4 header checksum; the embedded TCP/UDP
/// checksum when its field is within the quoted bytes (a zero UDP checksum
/// stays zero); an embedded ICMP query's identifier (chosen from
/// `inner.sport`/`inner.dport` as in [`rewrite`]) and its checksum; the
/// outer ICMP checksum; the outer IPv4 header checksum. The outer ICMP
/// checksum is patched incrementally from the sums of the changed bytes
/// before and after, so it is right even for the first fragment of a
/// fragmented error. An embedded later fragment has only its addresses
/// changed; so has an embedded packet of another protocol.
///
/// Errors: the packet is not an ICMP error (or is a later fragment) →
/// `Unsupported`; `inner.proto` differs from the embedded protocol →
/// `Unsupported`; the embedded packet is shorter than its IPv4 header plus
/// 8 bytes, not IPv4, or itself an ICMP error → `BadIcmpError`; the outer
/// headers do not fit → `Truncated`. On error the packet is left unchanged.
pub fn rewrite_icmp_error(
    ip: &mut [u8],
    outer_src: u32,
    outer_dst: u32,
    inner: &Tuple4,
) -> Result<(), Nat4Error> {
    let v = V4::outer(ip)?;
    if v.proto != PROTO_ICMP || v.offset() != 0 {
        return Err(Nat4Error::Unsupported);
    }
    let (head, rest) = ip.split_at_mut(v.hl);
    let icmp = rest.get_mut(..v.tl - v.hl).ok_or(Nat4Error::Truncated)?;
    if icmp.len() < ICMP_HDR {
        return Err(Nat4Error::Truncated);
    }
    if !icmp_error_type(icmp[0]) {
        return Err(Nat4Error::Unsupported);
    }
    let (icmp_head, e) = icmp.split_at_mut(ICMP_HDR);
    let (ev, _) = embedded(e)?;
    if ev.proto != inner.proto {
        return Err(Nat4Error::Unsupported);
    }
    // Everything that changes lies in the embedded IPv4 header and the first
    // 18 bytes after it (TCP checksum); `region` starts at an even offset of
    // the ICMP message, so its sum can be swapped into the ICMP checksum.
    let end = ev.hl.saturating_add(TCP_CSUM + 2).min(e.len());
    let region = e.get_mut(..end).ok_or(Nat4Error::BadIcmpError)?;
    let before = checksum::sum(region);

    let (eh, el4) = region.split_at_mut(ev.hl);
    if ev.offset() == 0 {
        match ev.proto {
            PROTO_TCP | PROTO_UDP => {
                rewrite_ports(el4, ev.proto, &ev, inner).ok_or(Nat4Error::BadIcmpError)?;
            }
            PROTO_ICMP => {
                rewrite_icmp_ident(el4, inner).ok_or(Nat4Error::BadIcmpError)?;
            }
            _ => {}
        }
    }
    rewrite_ip_addrs(eh, &ev, inner.src, inner.dst).ok_or(Nat4Error::BadIcmpError)?;

    let after = checksum::sum(region);
    // RFC 1624 eqn. 3 over the whole region: HC' = ~(~HC + ~before + after).
    let c = rd16(icmp_head, ICMP_CSUM).ok_or(Nat4Error::Truncated)?;
    let neg_before = !checksum::fold(u64::from(before));
    let acc = u64::from(!c) + u64::from(neg_before) + u64::from(checksum::fold(u64::from(after)));
    wr16(icmp_head, ICMP_CSUM, !checksum::fold(acc)).ok_or(Nat4Error::Truncated)?;

    rewrite_ip_addrs(head, &v, outer_src, outer_dst).ok_or(Nat4Error::Truncated)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::icmpv4::{self, Icmpv4Packet, Icmpv4Repr};
    use crate::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpPacket, TcpRepr, UdpPacket};

    // Packets are built from scratch with the crate's reprs and full
    // checksum computations; the expected output of a rewrite is built the
    // same way with the translated fields, never by patching the input.

    fn a(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    struct Ip {
        src: u32,
        dst: u32,
        proto: u8,
        ident: u16,
        more_frags: bool,
        frag_offset: u16,
        options: Vec<u8>,
    }

    impl Ip {
        fn new(src: u32, dst: u32, proto: u8) -> Ip {
            Ip {
                src,
                dst,
                proto,
                ident: 0x1c46,
                more_frags: false,
                frag_offset: 0,
                options: Vec::new(),
            }
        }

        fn build(&self, payload: &[u8]) -> Vec<u8> {
            let r = Ipv4Repr {
                src: Ipv4Addr::from(self.src),
                dst: Ipv4Addr::from(self.dst),
                protocol: IpProtocol(self.proto),
                ttl: 64,
                dscp_ecn: 0,
                ident: self.ident,
                dont_frag: false,
                more_frags: self.more_frags,
                frag_offset: self.frag_offset,
                options: self.options.clone(),
                payload_len: payload.len(),
            };
            let hl = r.buffer_len();
            let mut b = vec![0; hl + payload.len()];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
            b[hl..].copy_from_slice(payload);
            b
        }
    }

    fn udp(src: u32, dst: u32, sp: u16, dp: u16, payload: &[u8], csum: bool) -> Vec<u8> {
        let mut b = vec![0; 8 + payload.len()];
        let mut u = UdpPacket::new_unchecked(&mut b[..]);
        u.set_src_port(sp);
        u.set_dst_port(dp);
        u.set_len((8 + payload.len()) as u16);
        u.payload_mut().copy_from_slice(payload);
        if csum {
            u.fill_checksum_v4(Ipv4Addr::from(src), Ipv4Addr::from(dst));
        } else {
            u.set_checksum(0);
        }
        b
    }

    fn tcp(src: u32, dst: u32, sp: u16, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let r = TcpRepr {
            src_port: sp,
            dst_port: dp,
            seq: 0x0102_0304,
            ack: 0x0a0b_0c0d,
            flags: TcpFlags(flags),
            window: 65000,
            urgent: 0,
            options: vec![2, 4, 5, 0xb4],
            payload_len: payload.len(),
        };
        let hl = r.buffer_len();
        let mut b = vec![0; hl + payload.len()];
        let mut t = TcpPacket::new_unchecked(&mut b[..]);
        r.emit(&mut t);
        t.payload_mut().copy_from_slice(payload);
        t.fill_checksum_v4(Ipv4Addr::from(src), Ipv4Addr::from(dst));
        b
    }

    fn icmp(r: &Icmpv4Repr) -> Vec<u8> {
        let mut b = vec![0; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]));
        b
    }

    fn echo(request: bool, ident: u16, seq_no: u16) -> Vec<u8> {
        let data = b"weir echo data".to_vec();
        icmp(&if request {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
        } else {
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }
        })
    }

    fn t4(proto: u8, src: u32, sport: u16, dst: u32, dport: u16) -> Tuple4 {
        Tuple4 {
            proto,
            src,
            dst,
            sport,
            dport,
        }
    }

    /// Full-recomputation checks of the IPv4 and transport checksums.
    fn checksums_ok(b: &[u8]) -> bool {
        let p = Ipv4Packet::new_checked(b).unwrap();
        if !p.verify_checksum() {
            return false;
        }
        if p.is_fragment() {
            return true;
        }
        let (s, d) = (p.src_addr(), p.dst_addr());
        match p.protocol() {
            IpProtocol::TCP => TcpPacket::new_checked(p.payload())
                .unwrap()
                .verify_checksum_v4(s, d),
            IpProtocol::UDP => UdpPacket::new_checked(p.payload())
                .unwrap()
                .verify_checksum_v4(s, d),
            IpProtocol::ICMP => Icmpv4Packet::new_checked(p.payload())
                .unwrap()
                .verify_checksum(),
            _ => true,
        }
    }

    const PAYLOAD: &[u8] = b"\x01\x02hello, weir\xff";

    #[test]
    fn tuple_reversed() {
        let t = t4(17, 1, 2, 3, 4);
        assert_eq!(t.reversed(), t4(17, 3, 4, 1, 2));
        assert_eq!(t.reversed().reversed(), t);
    }

    #[test]
    fn udp_snat_exact() {
        let (h, s, n) = (a("10.0.0.5"), a("8.8.8.8"), a("100.64.0.1"));
        let mut pkt = Ip::new(h, s, 17).build(&udp(h, s, 40000, 53, PAYLOAD, true));
        let from = t4(17, h, 40000, s, 53);
        assert_eq!(
            classify(&pkt),
            Ok(Kind4::Flow {
                tuple: from,
                flags: 0,
                first_fragment: false,
                is_request: false
            })
        );
        let to = t4(17, n, 61000, s, 53);
        rewrite(&mut pkt, &to).unwrap();
        let want = Ip::new(n, s, 17).build(&udp(n, s, 61000, 53, PAYLOAD, true));
        assert_eq!(pkt, want);
        assert!(checksums_ok(&pkt));
        rewrite(&mut pkt, &from).unwrap();
        assert_eq!(
            pkt,
            Ip::new(h, s, 17).build(&udp(h, s, 40000, 53, PAYLOAD, true))
        );
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        let (h, s, n) = (a("10.0.0.5"), a("8.8.8.8"), a("100.64.0.1"));
        let mut pkt = Ip::new(h, s, 17).build(&udp(h, s, 40000, 53, PAYLOAD, false));
        rewrite(&mut pkt, &t4(17, n, 61000, s, 53)).unwrap();
        let want = Ip::new(n, s, 17).build(&udp(n, s, 61000, 53, PAYLOAD, false));
        assert_eq!(pkt, want);
        assert_eq!(&pkt[26..28], &[0, 0]);
    }

    #[test]
    fn udp_result_zero_is_written_ffff_and_round_trips() {
        // Find a new source port for which the checksum computes to 0, so
        // the wire carries 0xffff; translating back must restore the input.
        let (h, s, n) = (a("10.0.0.5"), a("8.8.8.8"), a("100.64.0.1"));
        let orig = Ip::new(h, s, 17).build(&udp(h, s, 40000, 53, PAYLOAD, true));
        let port = (0..=u16::MAX)
            .find(|&p| {
                let mut u = udp(n, s, p, 53, PAYLOAD, false);
                UdpPacket::new_unchecked(&mut u[..]).fill_checksum_v4(n.into(), s.into());
                u[6..8] == [0xff, 0xff]
            })
            .unwrap();
        let mut pkt = orig.clone();
        rewrite(&mut pkt, &t4(17, n, port, s, 53)).unwrap();
        assert_eq!(&pkt[26..28], &[0xff, 0xff]);
        assert_eq!(
            pkt,
            Ip::new(n, s, 17).build(&udp(n, s, port, 53, PAYLOAD, true))
        );
        assert!(checksums_ok(&pkt));
        rewrite(&mut pkt, &t4(17, h, 40000, s, 53)).unwrap();
        assert_eq!(pkt, orig);
    }

    #[test]
    fn tcp_dnat_exact() {
        let (c, pubip, srv) = (a("198.51.100.7"), a("203.0.113.1"), a("10.0.0.9"));
        let flags = 0x12; // SYN|ACK
        let mut ip = Ip::new(c, pubip, 6);
        ip.options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL: IHL 6
        let mut pkt = ip.build(&tcp(c, pubip, 51000, 443, flags, PAYLOAD));
        assert_eq!(
            classify(&pkt),
            Ok(Kind4::Flow {
                tuple: t4(6, c, 51000, pubip, 443),
                flags,
                first_fragment: false,
                is_request: false
            })
        );
        rewrite(&mut pkt, &t4(6, c, 51000, srv, 8443)).unwrap();
        let mut ip2 = Ip::new(c, srv, 6);
        ip2.options = vec![1, 1, 1, 0];
        assert_eq!(pkt, ip2.build(&tcp(c, srv, 51000, 8443, flags, PAYLOAD)));
        assert!(checksums_ok(&pkt));
    }

    #[test]
    fn icmp_echo_request_ident() {
        let (h, r, n) = (a("10.0.0.5"), a("1.1.1.1"), a("100.64.0.1"));
        let mut pkt = Ip::new(h, r, 1).build(&echo(true, 0x1111, 7));
        assert_eq!(
            classify(&pkt),
            Ok(Kind4::Flow {
                tuple: t4(1, h, 0x1111, r, 0x1111),
                flags: 0,
                first_fragment: false,
                is_request: true
            })
        );
        rewrite(&mut pkt, &t4(1, n, 0x2222, r, 0x2222)).unwrap();
        assert_eq!(pkt, Ip::new(n, r, 1).build(&echo(true, 0x2222, 7)));
        assert!(checksums_ok(&pkt));
    }

    #[test]
    fn icmp_ident_choice_when_ports_differ() {
        let (h, r) = (a("10.0.0.5"), a("1.1.1.1"));
        // Request: sport.
        let mut pkt = Ip::new(h, r, 1).build(&echo(true, 0x1111, 7));
        rewrite(&mut pkt, &t4(1, h, 0xaaaa, r, 0xbbbb)).unwrap();
        assert_eq!(pkt, Ip::new(h, r, 1).build(&echo(true, 0xaaaa, 7)));
        // Reply: dport.
        let mut pkt = Ip::new(r, h, 1).build(&echo(false, 0x1111, 7));
        assert!(matches!(
            classify(&pkt),
            Ok(Kind4::Flow {
                is_request: false,
                ..
            })
        ));
        rewrite(&mut pkt, &t4(1, r, 0xaaaa, h, 0xbbbb)).unwrap();
        assert_eq!(pkt, Ip::new(r, h, 1).build(&echo(false, 0xbbbb, 7)));
        // Timestamp request (13) with no Icmpv4Repr of its own: built by hand.
        let mut ts = vec![13, 0, 0, 0, 0x12, 0x34, 0, 1];
        ts.extend_from_slice(&[0; 12]);
        Icmpv4Packet::new_unchecked(&mut ts[..]).fill_checksum();
        let mut pkt = Ip::new(h, r, 1).build(&ts);
        assert!(matches!(
            classify(&pkt),
            Ok(Kind4::Flow {
                tuple: Tuple4 {
                    sport: 0x1234,
                    dport: 0x1234,
                    ..
                },
                is_request: true,
                ..
            })
        ));
        rewrite(&mut pkt, &t4(1, h, 0x4321, r, 0x4321)).unwrap();
        ts[4..6].copy_from_slice(&[0x43, 0x21]);
        Icmpv4Packet::new_unchecked(&mut ts[..]).fill_checksum();
        assert_eq!(pkt, Ip::new(h, r, 1).build(&ts));
    }

    #[test]
    fn fragments() {
        // A 64-byte UDP datagram split 32 + 32; the UDP checksum (in the
        // first fragment) covers the whole datagram.
        let (h, s, n) = (a("10.0.0.5"), a("192.0.2.80"), a("100.64.0.1"));
        let data: Vec<u8> = (0..56u8).map(|i| i.wrapping_mul(29)).collect();
        let frag = |src: u32, sp: u16, second: bool| {
            let d = udp(src, s, sp, 5000, &data, true);
            let mut ip = Ip::new(src, s, 17);
            ip.ident = 0xbeef;
            if second {
                ip.frag_offset = 32;
                ip.build(&d[32..])
            } else {
                ip.more_frags = true;
                ip.build(&d[..32])
            }
        };
        let to = t4(17, n, 61000, s, 5000);

        let mut first = frag(h, 40000, false);
        assert_eq!(
            classify(&first),
            Ok(Kind4::Flow {
                tuple: t4(17, h, 40000, s, 5000),
                flags: 0,
                first_fragment: true,
                is_request: false
            })
        );
        rewrite(&mut first, &to).unwrap();
        assert_eq!(first, frag(n, 61000, false));

        let mut later = frag(h, 40000, true);
        assert_eq!(
            classify(&later),
            Ok(Kind4::Fragment {
                tuple: t4(17, h, 0, s, 0),
                id: 0xbeef
            })
        );
        rewrite(&mut later, &to).unwrap();
        assert_eq!(later, frag(n, 61000, true));
        assert!(checksums_ok(&later));
    }

    #[test]
    fn other_protocol_addresses_only() {
        let (h, s, n) = (a("10.0.0.5"), a("192.0.2.80"), a("100.64.0.1"));
        let mut pkt = Ip::new(h, s, 47).build(PAYLOAD);
        assert_eq!(
            classify(&pkt),
            Ok(Kind4::Other {
                tuple: t4(47, h, 0, s, 0)
            })
        );
        rewrite(&mut pkt, &t4(47, n, 0, s, 0)).unwrap();
        assert_eq!(pkt, Ip::new(n, s, 47).build(PAYLOAD));
        // An ICMP type that is neither a query nor a translated error.
        let redirect = icmp(&Icmpv4Repr::Other {
            msg_type: icmpv4::REDIRECT,
            code: 1,
            data: vec![192, 0, 2, 1, 0x45, 0, 0, 0],
        });
        let mut pkt = Ip::new(s, h, 1).build(&redirect);
        assert!(matches!(classify(&pkt), Ok(Kind4::Other { .. })));
        rewrite(&mut pkt, &t4(1, s, 0, n, 0)).unwrap();
        assert_eq!(pkt, Ip::new(s, n, 1).build(&redirect));
    }

    fn dest_unreach(embedded: &[u8]) -> Vec<u8> {
        icmp(&Icmpv4Repr::DstUnreachable {
            code: icmpv4::PORT_UNREACHABLE,
            next_hop_mtu: 0,
            data: embedded.to_vec(),
        })
    }

    fn time_exceeded(embedded: &[u8]) -> Vec<u8> {
        icmp(&Icmpv4Repr::TimeExceeded {
            code: icmpv4::TTL_EXCEEDED,
            data: embedded.to_vec(),
        })
    }

    #[test]
    fn icmp_port_unreachable_embedded_udp() {
        // 10.0.0.5:40000 -> 8.8.8.8:53 went out as 100.64.0.1:61000; the
        // port unreachable comes back to 100.64.0.1.
        let (h, s, n) = (a("10.0.0.5"), a("8.8.8.8"), a("100.64.0.1"));
        let sent = Ip::new(n, s, 17).build(&udp(n, s, 61000, 53, PAYLOAD, true));
        let mut pkt = Ip::new(s, n, 1).build(&dest_unreach(&sent));
        let inner_sent = t4(17, n, 61000, s, 53);
        assert_eq!(
            classify(&pkt),
            Ok(Kind4::IcmpError {
                outer: t4(1, s, 0, n, 0),
                inner: inner_sent,
                icmp_type: 3,
                code: 3
            })
        );
        // rewrite() refuses errors: the embedded packet must be translated.
        assert_eq!(
            rewrite(&mut pkt.clone(), &t4(1, s, 0, h, 0)),
            Err(Nat4Error::Unsupported)
        );
        let inner_orig = t4(17, h, 40000, s, 53);
        rewrite_icmp_error(&mut pkt, s, h, &inner_orig).unwrap();
        let orig = Ip::new(h, s, 17).build(&udp(h, s, 40000, 53, PAYLOAD, true));
        let want = Ip::new(s, h, 1).build(&dest_unreach(&orig));
        assert_eq!(pkt, want);
        assert!(checksums_ok(&pkt));
        // And back.
        rewrite_icmp_error(&mut pkt, s, n, &inner_sent).unwrap();
        assert_eq!(pkt, Ip::new(s, n, 1).build(&dest_unreach(&sent)));
    }

    #[test]
    fn icmp_time_exceeded_embedded_tcp_truncated() {
        // Only 8 bytes of TCP are quoted: ports, no checksum. Padding after
        // the IPv4 total length that sits where the TCP checksum would be
        // must not be touched.
        let (h, s, n, rtr) = (
            a("10.0.0.5"),
            a("203.0.113.9"),
            a("100.64.0.1"),
            a("192.0.2.1"),
        );
        let quote = |src: u32, sp: u16| {
            let mut full = Ip::new(src, s, 6).build(&tcp(src, s, sp, 443, 0x02, PAYLOAD));
            full.truncate(20 + 8);
            full
        };
        let mut pkt = Ip::new(rtr, n, 1).build(&time_exceeded(&quote(n, 61000)));
        let pad = [0x5a; 16];
        pkt.extend_from_slice(&pad);
        assert_eq!(
            classify(&pkt),
            Ok(Kind4::IcmpError {
                outer: t4(1, rtr, 0, n, 0),
                inner: t4(6, n, 61000, s, 443),
                icmp_type: 11,
                code: 0
            })
        );
        rewrite_icmp_error(&mut pkt, rtr, h, &t4(6, h, 40000, s, 443)).unwrap();
        let mut want = Ip::new(rtr, h, 1).build(&time_exceeded(&quote(h, 40000)));
        want.extend_from_slice(&pad);
        assert_eq!(pkt, want);
        assert!(checksums_ok(&pkt));
    }

    #[test]
    fn icmp_time_exceeded_embedded_tcp_with_checksum() {
        // 20 bytes of TCP quoted: the embedded TCP checksum is patched.
        let (h, s, n, rtr) = (
            a("10.0.0.5"),
            a("203.0.113.9"),
            a("100.64.0.1"),
            a("192.0.2.1"),
        );
        let quote = |src: u32, sp: u16| {
            let mut full = Ip::new(src, s, 6).build(&tcp(src, s, sp, 443, 0x10, PAYLOAD));
            full.truncate(20 + 20);
            full
        };
        let mut pkt = Ip::new(rtr, n, 1).build(&time_exceeded(&quote(n, 61000)));
        rewrite_icmp_error(&mut pkt, rtr, h, &t4(6, h, 40000, s, 443)).unwrap();
        assert_eq!(
            pkt,
            Ip::new(rtr, h, 1).build(&time_exceeded(&quote(h, 40000)))
        );
    }

    #[test]
    fn icmp_error_half_quoted_tcp_checksum_left_alone() {
        // 17 bytes of TCP quoted: the checksum field is cut in the middle,
        // so it is not touched; ports and addresses are translated.
        let (h, s, n, rtr) = (
            a("10.0.0.5"),
            a("203.0.113.9"),
            a("100.64.0.1"),
            a("192.0.2.1"),
        );
        let quote = |src: u32, sp: u16| {
            let mut full = Ip::new(src, s, 6).build(&tcp(src, s, sp, 443, 0x10, PAYLOAD));
            full.truncate(20 + 17);
            full
        };
        let sent = quote(n, 61000);
        let mut pkt = Ip::new(rtr, n, 1).build(&time_exceeded(&sent));
        rewrite_icmp_error(&mut pkt, rtr, h, &t4(6, h, 40000, s, 443)).unwrap();
        let mut orig = quote(h, 40000);
        orig[36] = sent[36];
        assert_eq!(pkt, Ip::new(rtr, h, 1).build(&time_exceeded(&orig)));
        assert!(checksums_ok(&pkt));
    }

    #[test]
    fn icmp_error_embedded_echo() {
        // 10.0.0.5 pinged 1.1.1.1 with id 0x1111, sent as 100.64.0.1 id
        // 0x2222; a router reports the TTL expired.
        let (h, r, n, rtr) = (a("10.0.0.5"), a("1.1.1.1"), a("100.64.0.1"), a("192.0.2.1"));
        let sent = Ip::new(n, r, 1).build(&echo(true, 0x2222, 9));
        let mut pkt = Ip::new(rtr, n, 1).build(&time_exceeded(&sent));
        assert_eq!(
            classify(&pkt),
            Ok(Kind4::IcmpError {
                outer: t4(1, rtr, 0, n, 0),
                inner: t4(1, n, 0x2222, r, 0x2222),
                icmp_type: 11,
                code: 0
            })
        );
        rewrite_icmp_error(&mut pkt, rtr, h, &t4(1, h, 0x1111, r, 0x1111)).unwrap();
        let orig = Ip::new(h, r, 1).build(&echo(true, 0x1111, 9));
        assert_eq!(pkt, Ip::new(rtr, h, 1).build(&time_exceeded(&orig)));
        assert!(checksums_ok(&pkt));
    }

    #[test]
    fn icmp_error_rejects() {
        let (h, s, n) = (a("10.0.0.5"), a("8.8.8.8"), a("100.64.0.1"));
        let sent = Ip::new(n, s, 17).build(&udp(n, s, 61000, 53, PAYLOAD, true));
        let inner = t4(17, h, 40000, s, 53);

        // Embedded packet shorter than its header + 8.
        let mut pkt = Ip::new(s, n, 1).build(&dest_unreach(&sent[..27]));
        assert_eq!(classify(&pkt), Err(Nat4Error::BadIcmpError));
        let before = pkt.clone();
        assert_eq!(
            rewrite_icmp_error(&mut pkt, s, h, &inner),
            Err(Nat4Error::BadIcmpError)
        );
        assert_eq!(pkt, before);
        // Exactly header + 8 is fine.
        let pkt = Ip::new(s, n, 1).build(&dest_unreach(&sent[..28]));
        assert!(matches!(classify(&pkt), Ok(Kind4::IcmpError { .. })));

        // An error about an error.
        let err_in = Ip::new(n, s, 1).build(&dest_unreach(&sent));
        let mut pkt = Ip::new(s, n, 1).build(&dest_unreach(&err_in));
        assert_eq!(classify(&pkt), Err(Nat4Error::BadIcmpError));
        assert_eq!(
            rewrite_icmp_error(&mut pkt, s, h, &t4(1, h, 0, s, 0)),
            Err(Nat4Error::BadIcmpError)
        );

        // Protocol mismatch, and not an error at all.
        let mut pkt = Ip::new(s, n, 1).build(&dest_unreach(&sent));
        assert_eq!(
            rewrite_icmp_error(&mut pkt, s, h, &t4(6, h, 40000, s, 53)),
            Err(Nat4Error::Unsupported)
        );
        let mut pkt = Ip::new(h, s, 1).build(&echo(true, 1, 1));
        assert_eq!(
            rewrite_icmp_error(&mut pkt, s, h, &inner),
            Err(Nat4Error::Unsupported)
        );
    }

    #[test]
    fn rejects_bad_lengths_and_mismatches() {
        let (h, s) = (a("10.0.0.5"), a("8.8.8.8"));
        let good = Ip::new(h, s, 6).build(&tcp(h, s, 1, 2, 0x02, b""));
        let to = t4(6, s, 1, h, 2);
        // Every prefix of the packet (total length then exceeds the slice).
        for n in 0..good.len() {
            let mut b = good[..n].to_vec();
            assert_eq!(classify(&b), Err(Nat4Error::Truncated), "len {n}");
            assert_eq!(rewrite(&mut b, &to), Err(Nat4Error::Truncated));
            assert_eq!(b, good[..n]);
        }
        // Total length too short for the TCP header.
        let mut b = good.clone();
        b[3] = 20 + 19;
        Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(classify(&b), Err(Nat4Error::Truncated));
        assert_eq!(rewrite(&mut b, &to), Err(Nat4Error::Truncated));
        // IHL below 5, and total length below the header length.
        let mut b = good.clone();
        b[0] = 0x44;
        assert_eq!(classify(&b), Err(Nat4Error::Truncated));
        let mut b = good.clone();
        b[3] = 19;
        assert_eq!(classify(&b), Err(Nat4Error::Truncated));
        // Not IPv4.
        let mut b = good.clone();
        b[0] = 0x65;
        assert_eq!(classify(&b), Err(Nat4Error::Unsupported));
        // Protocol mismatch leaves the packet alone.
        let mut b = good.clone();
        assert_eq!(
            rewrite(&mut b, &t4(17, s, 1, h, 2)),
            Err(Nat4Error::Unsupported)
        );
        assert_eq!(b, good);
        // UDP needs 8 bytes, ICMP 8.
        let u = Ip::new(h, s, 17).build(&[0; 7]);
        assert_eq!(classify(&u), Err(Nat4Error::Truncated));
        let i = Ip::new(h, s, 1).build(&[8, 0, 0, 0, 0, 0, 0]);
        assert_eq!(classify(&i), Err(Nat4Error::Truncated));
    }
}
