//! `icmp6-error`: ICMPv6 errors (RFC 4443 2.4): built in place in front of the packet that
//! caused them, rate limited per worker, never about another ICMPv6 error or
//! a packet from an unspecified or multicast source, nor about one that came
//! to a link-layer multicast address.

use std::net::Ipv6Addr;

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId, FLAG_L2_MULTICAST, FLAG_TTL_DONE};
use crate::graph::{edges, reasons, Dispatch, Node, Reason};
use crate::snapshot::TableId;

use super::{allow, IcmpLimit};
use crate::worker::{Ctx, Fwd};
use weir_packet::icmpv6::PACKET_TOO_BIG as ICMP6_PACKET_TOO_BIG;
use weir_packet::{Icmpv6Packet, IpProtocol, Ipv6Packet, Ipv6Repr};

edges! {
    enum Next {
        Lookup => "ip6-lookup",
    }
}

reasons! {
    enum Drop {
        Suppressed => "suppressed",
        RateLimited => "rate-limited",
        Malformed => "malformed",
    }
}

/// An ICMPv6 error must fit the minimum IPv6 MTU.
const MAX_ERROR_LEN: usize = 1280;
const HDRS: usize = 40 + 8;

pub struct Icmp6Error {
    pub(super) limit: TableId<IcmpLimit>,
}

pub fn suppressed(bytes: &[u8], ip: &Ipv6Packet<&[u8]>, ty: u8) -> bool {
    let src = ip.src_addr();
    if src.is_unspecified() || src.is_multicast() {
        return true;
    }
    if ip.dst_addr().is_multicast() && ty != ICMP6_PACKET_TOO_BIG {
        return true;
    }
    match ip.upper_layer() {
        Ok(u) if u.protocol == IpProtocol::ICMPV6 => {
            if u.fragment.is_some_and(|f| !f.is_first()) {
                return true;
            }
            // Error messages have types below 128.
            bytes.get(u.offset).is_none_or(|&t| t < 128)
        }
        Ok(_) => false,
        Err(_) => true,
    }
}

impl Node<Fwd> for Icmp6Error {
    fn name(&self) -> &'static str {
        "icmp6-error"
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
            let bytes = &b.data()[l3..];
            let (orig_src, quoted) = match Ipv6Packet::new_checked(bytes) {
                Ok(ip) if !suppressed(bytes, &ip, ty) => (
                    ip.src_addr(),
                    (40 + ip.payload_len() as usize).min(MAX_ERROR_LEN - HDRS),
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
                .map(|p| p.source6_for(orig_src))
            else {
                out.drop_at(i, Drop::Suppressed);
                continue;
            };
            if !allow(cx, limit) {
                out.drop_at(i, Drop::RateLimited);
                continue;
            }
            let buf = cx.pool.get_mut(id);
            if l3 < HDRS && !buf.prepend(HDRS - l3) {
                out.drop_at(i, Reason::NO_BUFFER);
                continue;
            }
            let start = l3.max(HDRS) - HDRS;
            buf.meta.l3_offset = start as u16;
            buf.meta.flags |= FLAG_TTL_DONE;
            buf.set_len(start + HDRS + quoted);
            let d = &mut buf.data_mut()[start..];
            let rest = if ty == ICMP6_PACKET_TOO_BIG {
                param as u32
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

/// Writes the IPv6 and ICMPv6 headers of an error from `src` to `dst` at
/// the start of `d`, in front of the `quoted` bytes already at `d[48..]`,
/// and fills the checksum.
pub fn write_error(
    d: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    code: u8,
    rest: u32,
    quoted: usize,
) {
    Ipv6Repr {
        src,
        dst,
        next_header: IpProtocol::ICMPV6,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
        payload_len: 8 + quoted,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut d[..]));
    let mut icmp = Icmpv6Packet::new_unchecked(&mut d[40..]);
    icmp.set_msg_type(ty);
    icmp.set_code(code);
    icmp.set_rest_of_header(rest);
    icmp.fill_checksum(src, dst);
}
