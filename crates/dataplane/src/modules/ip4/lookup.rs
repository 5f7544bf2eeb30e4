//! `ip4-lookup`: longest-prefix match in the packet's VRF, the ECMP member,
//! and the node registered for the kind of next hop found.

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{reasons, Dispatch, Edge, Node, FRAME_CAP};
use crate::modules::l3::{flow_hash, pick_member, set_icmp};
use crate::registry::{edge_list, edge_of, Family, Registry};
use crate::tables::{NextHop, NextHopKind};
use crate::worker::{Ctx, Fwd};
use weir_packet::{icmpv4, Ipv4Packet};

reasons! {
    enum Drop {
        NoRoute => "no-route",
        Blackhole => "blackhole",
        Unreachable => "unreachable",
        Prohibited => "prohibited",
    }
}

const ICMP: &str = "icmp4-error";

pub struct Ip4Lookup {
    edges: Vec<&'static str>,
    to_port: Edge,
    to_local: Edge,
    to_icmp: Edge,
    dsts: Vec<u32>,
    nhs: Vec<u32>,
}

impl Ip4Lookup {
    pub fn new(r: &Registry) -> Ip4Lookup {
        let port = r
            .nexthop_node(Family::V4, NextHopKind::Port)
            .expect("a node for IPv4 port next hops");
        let local = r
            .nexthop_node(Family::V4, NextHopKind::Local)
            .expect("a node for IPv4 local next hops");
        let edges = edge_list([port, local, ICMP]);
        Ip4Lookup {
            to_port: Edge(edge_of(&edges, port)),
            to_local: Edge(edge_of(&edges, local)),
            to_icmp: Edge(edge_of(&edges, ICMP)),
            edges,
            dsts: Vec::with_capacity(FRAME_CAP),
            nhs: Vec::with_capacity(FRAME_CAP),
        }
    }
}

/// Flow hash of an IPv4 packet (validated header at the start of `ip`).
fn hash4(ip: &[u8]) -> u32 {
    let Ok(p) = Ipv4Packet::new_checked(ip) else {
        return 0;
    };
    let l4 = if p.is_fragment() {
        &[][..]
    } else {
        p.payload()
    };
    flow_hash(
        u32::from_be_bytes(p.src_bytes()) as u128,
        u32::from_be_bytes(p.dst_bytes()) as u128,
        p.protocol().0,
        l4,
    )
}

impl Node<Fwd> for Ip4Lookup {
    fn name(&self) -> &'static str {
        "ip4-lookup"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &self.edges
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        if self.dsts.capacity() < FRAME_CAP {
            self.dsts.reserve(FRAME_CAP);
            self.nhs.reserve(FRAME_CAP);
        }
        self.dsts.clear();
        let vrf0 = cx.pool.get(pkts[0]).meta.vrf;
        let mut one_vrf = true;
        for &id in pkts.iter() {
            let b = cx.pool.get(id);
            one_vrf &= b.meta.vrf == vrf0;
            let l3 = b.meta.l3_offset as usize;
            // ip4-input validated the header.
            let d = b.data();
            let dst = d
                .get(l3 + 16..l3 + 20)
                .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
                .unwrap_or(0);
            self.dsts.push(dst);
        }
        self.nhs.clear();
        self.nhs.resize(pkts.len(), weir_fib::NO_ROUTE);
        let cfg = cx.tables;
        if one_vrf {
            if let Some(v) = cfg.vrf(vrf0) {
                v.fib4.lookup_batch(&self.dsts, &mut self.nhs);
            }
        } else {
            for (i, &id) in pkts.iter().enumerate() {
                let vrf = cx.pool.get(id).meta.vrf;
                if let Some(nh) = cfg.lookup4(vrf, self.dsts[i]) {
                    self.nhs[i] = nh;
                }
            }
        }
        for (i, &id) in pkts.iter().enumerate() {
            let nh = self.nhs[i];
            if cfg.forwards(nh) {
                cx.pool.get_mut(id).meta.nexthop = nh;
                out.next(i, self.to_port);
                continue;
            }
            let dst = self.dsts[i];
            let nh = cfg.follow_table(nh, |c, v| c.lookup4(v, dst));
            let b = cx.pool.get_mut(id);
            if nh == weir_fib::NO_ROUTE {
                out.count(Drop::NoRoute);
                set_icmp(b, icmpv4::DEST_UNREACHABLE, icmpv4::NET_UNREACHABLE, 0);
                out.next(i, self.to_icmp);
                continue;
            }
            match cfg.nexthop(nh) {
                Some(NextHop::Neighbour { .. }) | Some(NextHop::Attached { .. }) => {
                    b.meta.nexthop = nh;
                    out.next(i, self.to_port);
                }
                Some(NextHop::Group(_)) => {
                    let member = pick_member(cfg, nh, || {
                        let l3 = b.meta.l3_offset as usize;
                        hash4(&b.data()[l3..])
                    });
                    b.meta.nexthop = member;
                    out.next(i, self.to_port);
                }
                Some(NextHop::Local { .. }) => {
                    b.meta.nexthop = nh;
                    out.next(i, self.to_local);
                }
                Some(NextHop::Blackhole) => out.drop_at(i, Drop::Blackhole),
                Some(NextHop::Unreachable) | Some(NextHop::Table(_)) | None => {
                    out.count(Drop::Unreachable);
                    set_icmp(b, icmpv4::DEST_UNREACHABLE, icmpv4::HOST_UNREACHABLE, 0);
                    out.next(i, self.to_icmp);
                }
                Some(NextHop::Prohibit) => {
                    out.count(Drop::Prohibited);
                    set_icmp(b, icmpv4::DEST_UNREACHABLE, icmpv4::ADMIN_PROHIBITED, 0);
                    out.next(i, self.to_icmp);
                }
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        super::trace_ip4(buf, out);
        let _ = write!(out, " vrf {} nexthop {}", buf.meta.vrf, buf.meta.nexthop);
    }
}
