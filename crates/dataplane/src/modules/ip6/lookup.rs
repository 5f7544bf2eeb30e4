//! `ip6-lookup`: longest-prefix match in the packet's VRF, the ECMP member,
//! and the node registered for the kind of next hop found. Link-local
//! destinations are ours or nobody's.

use std::fmt::Write;
use std::net::Ipv6Addr;

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{reasons, Dispatch, Edge, Node, FRAME_CAP};
use crate::modules::l3::{flow_hash, pick_member, set_icmp};
use crate::registry::{edge_list, edge_of, Family, Registry};
use crate::tables::{NextHop, NextHopKind};
use crate::worker::{Ctx, Fwd};
use weir_packet::{icmpv6, Ipv6Packet};

reasons! {
    enum Drop {
        NoRoute => "no-route",
        Blackhole => "blackhole",
        Unreachable => "unreachable",
        Prohibited => "prohibited",
        ScopeViolation => "link-local-not-forwarded",
    }
}

const ICMP: &str = "icmp6-error";

pub struct Ip6Lookup {
    edges: Vec<&'static str>,
    to_port: Edge,
    to_local: Edge,
    to_icmp: Edge,
    dsts: Vec<u128>,
    nhs: Vec<u32>,
}

impl Ip6Lookup {
    pub fn new(r: &Registry) -> Ip6Lookup {
        let port = r
            .nexthop_node(Family::V6, NextHopKind::Port)
            .expect("a node for IPv6 port next hops");
        let local = r
            .nexthop_node(Family::V6, NextHopKind::Local)
            .expect("a node for IPv6 local next hops");
        let edges = edge_list([port, local, ICMP]);
        Ip6Lookup {
            to_port: Edge(edge_of(&edges, port)),
            to_local: Edge(edge_of(&edges, local)),
            to_icmp: Edge(edge_of(&edges, ICMP)),
            edges,
            dsts: Vec::with_capacity(FRAME_CAP),
            nhs: Vec::with_capacity(FRAME_CAP),
        }
    }
}

fn hash6(ip: &[u8]) -> u32 {
    let Ok(p) = Ipv6Packet::new_checked(ip) else {
        return 0;
    };
    let (proto, l4) = match p.upper_layer() {
        Ok(u) if u.fragment.is_none() => (u.protocol.0, ip.get(u.offset..).unwrap_or(&[])),
        Ok(u) => (u.protocol.0, &[][..]),
        Err(_) => (0, &[][..]),
    };
    let fl = p.flow_label() as u128;
    flow_hash(
        u128::from_be_bytes(p.src_bytes()),
        u128::from_be_bytes(p.dst_bytes()) ^ fl,
        proto,
        l4,
    )
}

impl Node<Fwd> for Ip6Lookup {
    fn name(&self) -> &'static str {
        "ip6-lookup"
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
            let dst = b
                .data()
                .get(l3 + 24..l3 + 40)
                .map(|x| u128::from_be_bytes(x.try_into().unwrap_or([0; 16])))
                .unwrap_or(0);
            self.dsts.push(dst);
        }
        self.nhs.clear();
        self.nhs.resize(pkts.len(), weir_fib::NO_ROUTE);
        let cfg = cx.tables;
        if one_vrf {
            if let Some(v) = cfg.vrf(vrf0) {
                v.fib6.lookup_batch(&self.dsts, &mut self.nhs);
            }
        } else {
            for (i, &id) in pkts.iter().enumerate() {
                let vrf = cx.pool.get(id).meta.vrf;
                if let Some(nh) = cfg.lookup6(vrf, self.dsts[i]) {
                    self.nhs[i] = nh;
                }
            }
        }
        for (i, &id) in pkts.iter().enumerate() {
            // fe80::/10, on the integer: the top ten bits.
            if self.dsts[i] >> 118 == 0x3fa {
                let dst = Ipv6Addr::from(self.dsts[i]);
                // Link-local destinations are ours or nobody's.
                let ours = cfg
                    .port(cx.pool.get(id).meta.rx_port)
                    .is_some_and(|p| p.link_local6 == dst);
                if ours {
                    out.next(i, self.to_local);
                } else {
                    out.drop_at(i, Drop::ScopeViolation);
                }
                continue;
            }
            let nh = self.nhs[i];
            if cfg.forwards(nh) {
                cx.pool.get_mut(id).meta.nexthop = nh;
                out.next(i, self.to_port);
                continue;
            }
            let dst = self.dsts[i];
            let nh = cfg.follow_table(nh, |c, v| c.lookup6(v, dst));
            let b = cx.pool.get_mut(id);
            if nh == weir_fib::NO_ROUTE {
                out.count(Drop::NoRoute);
                set_icmp(b, icmpv6::DST_UNREACHABLE, icmpv6::NO_ROUTE, 0);
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
                        hash6(&b.data()[l3..])
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
                    set_icmp(b, icmpv6::DST_UNREACHABLE, icmpv6::REJECT_ROUTE, 0);
                    out.next(i, self.to_icmp);
                }
                Some(NextHop::Prohibit) => {
                    out.count(Drop::Prohibited);
                    set_icmp(b, icmpv6::DST_UNREACHABLE, icmpv6::ADMIN_PROHIBITED, 0);
                    out.next(i, self.to_icmp);
                }
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        super::trace_ip6(buf, out);
        let _ = write!(out, " vrf {} nexthop {}", buf.meta.vrf, buf.meta.nexthop);
    }
}
