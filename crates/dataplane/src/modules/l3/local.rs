//! Local delivery by protocol and port: the claims modules registered,
//! in the form the IPv4 and IPv6 local nodes use them.

use crate::graph::Edge;
use crate::registry::{edge_list, edge_of, Family, Registry};
use weir_packet::IpProtocol;

/// Local traffic claims as the node uses them.
pub struct LocalClaims {
    pub edges: Vec<&'static str>,
    /// (protocol, destination port or None for any, edge); claims with a
    /// port first.
    pub by_proto: Vec<(IpProtocol, Option<u16>, Edge)>,
    pub default: Edge,
    pub any_port: bool,
}

impl LocalClaims {
    pub fn new(r: &Registry, family: Family) -> LocalClaims {
        let default = r
            .local_default_node()
            .expect("a node for unclaimed local traffic");
        let mut claims: Vec<_> = r.local_claims(family).copied().collect();
        claims.sort_by_key(|c| c.port.is_none());
        let edges = edge_list(claims.iter().map(|c| c.node).chain([default]));
        LocalClaims {
            by_proto: claims
                .iter()
                .map(|c| (c.protocol, c.port, Edge(edge_of(&edges, c.node))))
                .collect(),
            default: Edge(edge_of(&edges, default)),
            any_port: claims.iter().any(|c| c.port.is_some()),
            edges,
        }
    }

    /// Where a packet of `proto` with transport header `l4` goes.
    #[inline]
    pub fn edge(&self, proto: IpProtocol, l4: &[u8]) -> Edge {
        let dport = if self.any_port && l4.len() >= 4 {
            Some(u16::from_be_bytes([l4[2], l4[3]]))
        } else {
            None
        };
        for &(p, port, e) in &self.by_proto {
            if p == proto && (port.is_none() || port == dport) {
                return e;
            }
        }
        self.default
    }
}
