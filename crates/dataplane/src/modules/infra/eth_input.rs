//! `eth-input`: checks the frame is for this port and hands it to the node
//! registered for its ethertype; frames from a kernel mirror go straight
//! out of the port it mirrors.

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId, FLAG_L2_MULTICAST};
use crate::graph::{reasons, Dispatch, Edge, Node};
use crate::registry::{edge_list, edge_of, Registry};
use crate::tables::PortConfig;
use crate::worker::{Ctx, Fwd, INPUT_NODE};
use weir_packet::EthernetFrame;

const ETH_HLEN: usize = weir_packet::ethernet::HEADER_LEN;
const PORT_TX: &str = "port-tx";

reasons! {
    pub enum Drop {
        PortDown => "port-down",
        Malformed => "malformed",
        NotForUs => "not-for-us",
        UnknownType => "unknown-ethertype",
        VlanUnknown => "vlan-not-configured",
    }
}

pub struct EthInput {
    edges: Vec<&'static str>,
    /// Edge of each ethertype from the registry, indexed by the ethertype
    /// itself: one load per packet, as cheap as a `match` (only the lines
    /// of the ethertypes in use are ever in cache).
    types: Box<[u16; 1 << 16]>,
    to_tx: u16,
}

const NO_EDGE: u16 = u16::MAX;

impl EthInput {
    pub fn new(r: &Registry) -> EthInput {
        let edges = edge_list(
            r.ethertypes()
                .iter()
                .map(|t| t.1)
                .chain(std::iter::once(PORT_TX)),
        );
        let mut types: Box<[u16; 1 << 16]> = vec![NO_EDGE; 1 << 16]
            .into_boxed_slice()
            .try_into()
            .expect("one entry per ethertype");
        for (ty, n) in r.ethertypes() {
            if types[ty.0 as usize] == NO_EDGE {
                types[ty.0 as usize] = edge_of(&edges, n);
            }
        }
        EthInput {
            to_tx: edge_of(&edges, PORT_TX),
            types,
            edges,
        }
    }
}

impl Node<Fwd> for EthInput {
    fn name(&self) -> &'static str {
        INPUT_NODE
    }
    fn next_nodes(&self) -> &[&'static str] {
        &self.edges
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let cfg = cx.tables;
        // A batch nearly always comes from one rx queue: look the port up once.
        let mut cached: Option<(u16, Option<&PortConfig>)> = None;
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let rx = buf.meta.rx_port;
            let port = match cached {
                Some((p, c)) if p == rx => c,
                _ => {
                    let c = cfg.port(rx).filter(|p| p.up);
                    cached = Some((rx, c));
                    c
                }
            };
            let Some(port) = port else {
                out.drop_at(i, Drop::PortDown);
                continue;
            };
            if let Some(phys) = port.mirror_of {
                // From the kernel mirror: the kernel routed and resolved it;
                // it leaves through the port it mirrors as it is.
                buf.meta.tx_port = phys;
                out.next(i, Edge(self.to_tx));
                continue;
            }
            // A view over exactly the untagged header: fixed offsets, no
            // further length checks.
            let Some(hdr) = buf.data().first_chunk::<ETH_HLEN>() else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let eth = EthernetFrame::new_unchecked(hdr);
            let dst = eth.dst_addr();
            if dst != port.mac && !dst.is_multicast() {
                out.drop_at(i, Drop::NotForUs);
                continue;
            }
            let ty = eth.outer_ethertype();
            if ty.is_vlan_tag() {
                out.drop_at(i, Drop::VlanUnknown);
                continue;
            }
            buf.meta.l3_offset = ETH_HLEN as u16;
            buf.meta.vrf = port.vrf;
            if dst.is_multicast() {
                buf.meta.flags |= FLAG_L2_MULTICAST;
            }
            match self.types[ty.0 as usize] {
                NO_EDGE => out.drop_at(i, Drop::UnknownType),
                e => out.next(i, Edge(e)),
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        let _ = write!(out, "rx-port {}", buf.meta.rx_port);
        if let Ok(eth) = EthernetFrame::new_checked(buf.data()) {
            let _ = write!(
                out,
                " {} > {} type {:#06x}",
                eth.src_addr(),
                eth.dst_addr(),
                eth.outer_ethertype().0
            );
        }
    }
}
