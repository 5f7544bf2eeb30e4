//! `icmp4-error`: ICMPv4 errors (RFC 792, RFC 1812 4.3.2): built in place in front of the
//! packet that caused them, rate limited per worker, never sent about
//! another error, a non-first fragment, a non-unicast packet or one that
//! came to a link-layer broadcast or multicast address.

use std::net::Ipv4Addr;

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId, FLAG_L2_MULTICAST, FLAG_TTL_DONE};
use crate::graph::{edges, reasons, Dispatch, Node, Reason};
use crate::snapshot::TableId;

use super::{allow, IcmpLimit};
use crate::worker::{Ctx, Fwd};
use weir_packet::icmpv4::{DEST_UNREACHABLE, FRAG_NEEDED, PARAM_PROBLEM};
use weir_packet::ipv4::martian_src;
use weir_packet::{Icmpv4Packet, IpProtocol, Ipv4Packet, Ipv4Repr};

edges! {
    enum Next {
        Lookup => "ip4-prerouting",
    }
}

reasons! {
    enum Drop {
        Suppressed => "suppressed",
        RateLimited => "rate-limited",
        Malformed => "malformed",
    }
}

/// Largest ICMP error datagram (RFC 1812 4.3.2.3).
const MAX_ERROR_LEN: usize = 576;
const HDRS: usize = 20 + 8;

pub struct Icmp4Error {
    pub(super) limit: TableId<IcmpLimit>,
}

/// True when the quoted packet must not get an error.
pub fn suppressed(ip: &Ipv4Packet<&[u8]>) -> bool {
    let src = u32::from_be_bytes(ip.src_bytes());
    let dst = u32::from_be_bytes(ip.dst_bytes());
    if martian_src(src) || dst >= 0xe000_0000 || ip.frag_offset() != 0 {
        return true;
    }
    if ip.protocol() == IpProtocol::ICMP {
        // Errors only about queries (echo, timestamp, ...), never errors.
        return match Icmpv4Packet::new_checked(ip.payload()) {
            Ok(icmp) => icmp.is_error(),
            Err(_) => true,
        };
    }
    false
}

impl Node<Fwd> for Icmp4Error {
    fn name(&self) -> &'static str {
        "icmp4-error"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let limit = *cx.table(self.limit);
        for (i, &id) in pkts.iter().enumerate() {
            let b = cx.pool.get(id);
            let l3 = b.meta.l3_offset as usize;
            let (ty, code, param) = (b.meta.icmp_type, b.meta.icmp_code, b.meta.icmp_param);
            if b.meta.flags & FLAG_L2_MULTICAST != 0 {
                out.drop_at(i, Drop::Suppressed);
                continue;
            }
            let (orig_src, quoted) = match Ipv4Packet::new_checked(&b.data()[l3..]) {
                Ok(ip) if !suppressed(&ip) => (
                    ip.src_addr(),
                    (ip.total_len() as usize).min(MAX_ERROR_LEN - HDRS),
                ),
                Ok(_) => {
                    out.drop_at(i, Drop::Suppressed);
                    continue;
                }
                Err(_) => {
                    out.drop_at(i, Drop::Malformed);
                    continue;
                }
            };
            let Some(src) = cx
                .tables
                .port(b.meta.rx_port)
                .and_then(|p| p.source4_for(orig_src))
            else {
                out.drop_at(i, Drop::Suppressed);
                continue;
            };
            if !allow(cx, limit) {
                out.drop_at(i, Drop::RateLimited);
                continue;
            }
            let buf = cx.pool.get_mut(id);
            // Make room for the new IP and ICMP headers in front of the
            // quoted packet, which stays where it is.
            if l3 < HDRS && !buf.prepend(HDRS - l3) {
                out.drop_at(i, Reason::NO_BUFFER);
                continue;
            }
            let start = l3.max(HDRS) - HDRS;
            buf.meta.l3_offset = start as u16;
            buf.meta.flags |= FLAG_TTL_DONE;
            buf.set_len(start + HDRS + quoted);
            let d = &mut buf.data_mut()[start..];
            let rest = if ty == DEST_UNREACHABLE && code == FRAG_NEEDED {
                param as u32
            } else if ty == PARAM_PROBLEM {
                // The pointer is the first octet (RFC 792).
                (param as u32) << 24
            } else {
                0
            };
            write_error(d, src, orig_src, ty, code, rest, quoted);
            out.next(i, Next::Lookup);
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        let m = &buf.meta;
        let _ = write!(out, "type {} code {}", m.icmp_type, m.icmp_code);
    }
}

/// Writes the IPv4 and ICMP headers of an error from `src` to `dst` at the
/// start of `d`, in front of the `quoted` bytes already at `d[28..]`, and
/// fills both checksums.
pub fn write_error(
    d: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ty: u8,
    code: u8,
    rest: u32,
    quoted: usize,
) {
    Ipv4Repr {
        src,
        dst,
        protocol: IpProtocol::ICMP,
        ttl: 64,
        dscp_ecn: 0xc0,
        ident: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: Vec::new(),
        payload_len: 8 + quoted,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut d[..]));
    let mut icmp = Icmpv4Packet::new_unchecked(&mut d[20..]);
    icmp.set_msg_type(ty);
    icmp.set_code(code);
    icmp.set_rest_of_header(rest);
    icmp.fill_checksum();
}
