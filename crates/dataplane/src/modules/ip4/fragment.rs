//! `ip4-fragment`: splits packets larger than the egress MTU (DF clear)
//! into fragments (RFC 791); each goes back to ip4-output.

use crate::buffer::PktId;
use crate::graph::{edges, reasons, Dispatch, Node, Reason};
use crate::worker::{Ctx, Fwd};
use weir_packet::Ipv4Packet;

edges! {
    enum Next {
        Output => "ip4-output",
    }
}

reasons! {
    enum Drop {
        Malformed => "malformed",
        FragNeeded => "fragmentation-needed",
        Fragmented => "fragmented",
    }
}

/// Splits packets larger than the egress MTU (DF clear) into fragments
/// (RFC 791); each goes back to ip4-output.
pub struct Ip4Fragment;

impl Node<Fwd> for Ip4Fragment {
    fn name(&self) -> &'static str {
        "ip4-fragment"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let (port_mtu, l3) = {
                let b = cx.pool.get(id);
                let mtu = cx.tables.port(b.meta.tx_port).map(|p| p.mtu).unwrap_or(0);
                (mtu as usize, b.meta.l3_offset as usize)
            };
            // Header of the original, payload bounds and fragment fields.
            let mut hdr = [0u8; 60];
            let (hl, total, off0, mf0) = {
                let Ok(ip) = Ipv4Packet::new_checked(&cx.pool.get(id).data()[l3..]) else {
                    out.drop_at(i, Drop::Malformed);
                    continue;
                };
                let hl = ip.header_len();
                hdr[..hl].copy_from_slice(ip.header());
                (
                    hl,
                    ip.total_len() as usize,
                    ip.frag_offset() as usize,
                    ip.more_frags(),
                )
            };
            // Later fragments carry only the options marked "copy" (RFC 791).
            let (copied, clen) = copied_options(&hdr[20..hl]);
            let later_hl = 20 + clen;
            if port_mtu < later_hl.max(hl) + 8 {
                out.drop_at(i, Drop::FragNeeded);
                continue;
            }
            let first_chunk = (port_mtu - hl) & !7;
            let chunk = (port_mtu - later_hl) & !7;
            let payload_len = total - hl;
            // Later fragments first, built from the original's payload.
            let mut pos = first_chunk;
            let mut ok = true;
            while pos < payload_len {
                let n = chunk.min(payload_len - pos);
                let last = pos + n == payload_len;
                let Some(fid) = cx.pool.alloc() else {
                    out.count(Reason::NO_BUFFER);
                    ok = false;
                    break;
                };
                let (src_buf, dst_buf) = cx.pool.get_two_mut(id, fid);
                let payload = &src_buf.data()[l3 + hl + pos..l3 + hl + pos + n];
                dst_buf.meta = src_buf.meta;
                dst_buf.meta.l3_offset = 0;
                dst_buf.set_len(later_hl + n);
                let d = dst_buf.data_mut();
                d[..20].copy_from_slice(&hdr[..20]);
                d[20..later_hl].copy_from_slice(&copied[..clen]);
                d[later_hl..].copy_from_slice(payload);
                let mut ip = Ipv4Packet::new_unchecked(&mut d[..]);
                ip.set_header_len(later_hl);
                ip.set_total_len((later_hl + n) as u16);
                ip.set_frag_offset((off0 + pos) as u16);
                ip.set_more_frags(!last || mf0);
                ip.fill_checksum();
                out.send_new(Next::Output, fid);
                pos += n;
            }
            if !ok {
                out.drop_at(i, Reason::NO_BUFFER);
                continue;
            }
            // The original becomes the first fragment.
            let b = cx.pool.get_mut(id);
            b.set_len(l3 + hl + first_chunk);
            let mut ip = Ipv4Packet::new_unchecked(&mut b.data_mut()[l3..]);
            ip.set_total_len((hl + first_chunk) as u16);
            ip.set_more_frags(true);
            ip.fill_checksum();
            out.count(Drop::Fragmented);
            out.next(i, Next::Output);
        }
    }
}

/// Options whose "copied" flag is set, packed, with their length padded to
/// a multiple of four.
fn copied_options(opts: &[u8]) -> ([u8; 40], usize) {
    let mut outb = [0u8; 40];
    let mut n = 0;
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        if t == 0 {
            break;
        }
        if t == 1 {
            i += 1;
            continue;
        }
        let Some(&l) = opts.get(i + 1) else { break };
        let l = l as usize;
        if l < 2 || i + l > opts.len() {
            break;
        }
        if t & 0x80 != 0 && n + l <= 40 {
            outb[n..n + l].copy_from_slice(&opts[i..i + l]);
            n += l;
        }
        i += l;
    }
    (outb, n.div_ceil(4) * 4)
}
