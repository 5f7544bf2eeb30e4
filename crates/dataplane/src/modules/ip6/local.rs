//! `ip6-local`: packets for the gateway's own addresses (and link-scope
//! multicast it listens to) go to the node registered for their next
//! header; everything unclaimed (TCP/UDP to local services, extension
//! headers) goes to the default node (the kernel mirror).

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{reasons, Dispatch, Node};
use crate::modules::l3::LocalClaims;
use crate::registry::{Family, Registry};
use crate::worker::{Ctx, Fwd};
use weir_packet::Ipv6Packet;

reasons! {
    enum Drop {
        Malformed => "malformed",
    }
}

pub struct Ip6Local {
    claims: LocalClaims,
}

impl Ip6Local {
    pub fn new(r: &Registry) -> Ip6Local {
        Ip6Local {
            claims: LocalClaims::new(r, Family::V6),
        }
    }
}

impl Node<Fwd> for Ip6Local {
    fn name(&self) -> &'static str {
        "ip6-local"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &self.claims.edges
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let b = cx.pool.get(id);
            let l3 = b.meta.l3_offset as usize;
            let Ok(ip) = Ipv6Packet::new_checked(&b.data()[l3..]) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            // Dispatched on the header right after the fixed one.
            out.next(i, self.claims.edge(ip.next_header(), ip.payload()));
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        super::trace_ip6(buf, out);
    }
}
