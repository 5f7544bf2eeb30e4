//! `ip4-local`: packets for the gateway's own addresses go to the node
//! registered for their protocol (and port); fragments (the kernel
//! reassembles) and everything unclaimed go to the default node (the
//! kernel mirror).

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{reasons, Dispatch, Node};
use crate::modules::l3::LocalClaims;
use crate::registry::{Family, Registry};
use crate::worker::{Ctx, Fwd};
use weir_packet::Ipv4Packet;

reasons! {
    enum Drop {
        Malformed => "malformed",
    }
}

pub struct Ip4Local {
    claims: LocalClaims,
}

impl Ip4Local {
    pub fn new(r: &Registry) -> Ip4Local {
        Ip4Local {
            claims: LocalClaims::new(r, Family::V4),
        }
    }
}

impl Node<Fwd> for Ip4Local {
    fn name(&self) -> &'static str {
        "ip4-local"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &self.claims.edges
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get(id);
            let l3 = buf.meta.l3_offset as usize;
            let Ok(ip) = Ipv4Packet::new_checked(&buf.data()[l3..]) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            if ip.is_fragment() {
                out.next(i, self.claims.default);
                continue;
            }
            out.next(i, self.claims.edge(ip.protocol(), ip.payload()));
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        super::trace_ip4(buf, out);
    }
}
