//! `icmp4-local`: ICMP for the gateway's own IPv4 addresses. Echo requests
//! are answered in place and routed back; other messages go to the kernel
//! mirror.

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId, FLAG_TTL_DONE};
use crate::graph::{edges, reasons, Dispatch, Node};
use crate::worker::{Ctx, Fwd};
use weir_packet::{checksum, icmpv4, Icmpv4Packet, Ipv4Packet};

edges! {
    enum Next {
        Lookup => "ip4-lookup",
        Punt => "punt:icmp4-unhandled",
    }
}

reasons! {
    enum Drop {
        Malformed => "malformed",
        BadChecksum => "bad-checksum",
    }
}

pub struct Icmp4Local;

impl Node<Fwd> for Icmp4Local {
    fn name(&self) -> &'static str {
        "icmp4-local"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let l3 = buf.meta.l3_offset as usize;
            let d = &mut buf.data_mut()[l3..];
            // ip4-local checked the header.
            let Ok(mut ip) = Ipv4Packet::new_checked(&mut d[..]) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let hl = ip.header_len();
            {
                let Ok(mut icmp) = Icmpv4Packet::new_checked(ip.payload_mut()) else {
                    out.drop_at(i, Drop::Malformed);
                    continue;
                };
                if !icmp.verify_checksum() {
                    out.drop_at(i, Drop::BadChecksum);
                    continue;
                }
                if icmp.msg_type() != icmpv4::ECHO_REQUEST || icmp.code() != 0 {
                    out.next(i, Next::Punt);
                    continue;
                }
                // Echo reply: only the type changes; checksum updated
                // incrementally.
                let old = u16::from_be_bytes([icmpv4::ECHO_REQUEST, 0]);
                let new = u16::from_be_bytes([icmpv4::ECHO_REPLY, 0]);
                let c = checksum::update_u16(icmp.checksum(), old, new);
                icmp.set_msg_type(icmpv4::ECHO_REPLY);
                icmp.set_checksum(c);
            }
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_ttl(64);
            // Options of the request are not reflected.
            if hl > 20 {
                let total = ip.total_len() as usize;
                d.copy_within(hl..total, 20);
                let mut ip = Ipv4Packet::new_unchecked(&mut d[..]);
                ip.set_header_len(20);
                ip.set_total_len((total - (hl - 20)) as u16);
                ip.fill_checksum();
                let new_len = l3 + total - (hl - 20);
                buf.set_len(new_len);
            } else {
                ip.fill_checksum();
            }
            buf.meta.flags |= FLAG_TTL_DONE;
            out.next(i, Next::Lookup);
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        let l3 = buf.meta.l3_offset as usize;
        if let Some(ip) = buf
            .data()
            .get(l3..)
            .and_then(|d| Ipv4Packet::new_checked(d).ok())
        {
            let ty = ip.payload().first().copied().unwrap_or(0);
            let _ = write!(out, "{} > {} type {ty}", ip.src_addr(), ip.dst_addr());
        }
    }
}
