//! `ip4-input`: validates the header and its options, drops martians,
//! trims link padding.

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{edges, reasons, Dispatch, Node};
use crate::modules::l3::set_icmp;
use crate::worker::{Ctx, Fwd};
use weir_packet::ipv4::{martian_dst, martian_src};
use weir_packet::{icmpv4, Ipv4Packet};

use super::{options, trace_ip4, IP4_HLEN};

edges! {
    enum Next {
        Lookup => "ip4-prerouting",
        Icmp => "icmp4-error",
    }
}

reasons! {
    enum Drop {
        Malformed => "malformed",
        BadChecksum => "bad-checksum",
        MartianSrc => "martian-source",
        MartianDst => "martian-destination",
        Multicast => "multicast-not-forwarded",
        Broadcast => "broadcast-not-forwarded",
        BadOption => "bad-option",
    }
}

pub struct Ip4Input;

impl Node<Fwd> for Ip4Input {
    fn name(&self) -> &'static str {
        "ip4-input"
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
            let mut bad_option = None;
            let (src, dst, total) = {
                let d = buf.data();
                let Some(fixed) = d.get(l3..).and_then(|x| x.first_chunk::<IP4_HLEN>()) else {
                    out.drop_at(i, Drop::Malformed);
                    continue;
                };
                // The fixed header as a view of exactly 20 bytes: its getters
                // need no bounds checks. Options and lengths checked here.
                let ip = Ipv4Packet::new_unchecked(fixed);
                let (hl, total) = (ip.header_len(), ip.total_len() as usize);
                if ip.version() != 4 || hl < IP4_HLEN || total < hl || l3 + total > d.len() {
                    out.drop_at(i, Drop::Malformed);
                    continue;
                }
                let csum_ok = if hl == IP4_HLEN {
                    ip.verify_checksum()
                } else {
                    Ipv4Packet::new_unchecked(&d[l3..l3 + hl]).verify_checksum()
                };
                if !csum_ok {
                    out.drop_at(i, Drop::BadChecksum);
                    continue;
                }
                if hl > IP4_HLEN {
                    if let Err(ptr) = options::check(&d[l3 + IP4_HLEN..l3 + hl]) {
                        bad_option = Some(ptr);
                    }
                }
                (
                    u32::from_be_bytes(ip.src_bytes()),
                    u32::from_be_bytes(ip.dst_bytes()),
                    total,
                )
            };
            if martian_src(src) {
                out.drop_at(i, Drop::MartianSrc);
                continue;
            }
            if dst >= 0xe000_0000 {
                if dst == u32::MAX {
                    out.drop_at(i, Drop::Broadcast);
                } else if dst < 0xf000_0000 {
                    out.drop_at(i, Drop::Multicast);
                } else {
                    out.drop_at(i, Drop::MartianDst);
                }
                continue;
            }
            if martian_dst(dst) {
                out.drop_at(i, Drop::MartianDst);
                continue;
            }
            // Ethernet pads short frames; forward the IP packet only.
            buf.set_len(l3 + total);
            if let Some(ptr) = bad_option {
                out.count(Drop::BadOption);
                set_icmp(buf, icmpv4::PARAM_PROBLEM, 0, ptr as u16);
                out.next(i, Next::Icmp);
                continue;
            }
            out.next(i, Next::Lookup);
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        trace_ip4(buf, out);
    }
}
