//! Ethernet in and out: classify by ethertype, accept frames for us, and
//! queue frames for transmission.

use crate::buffer::{PktId, FLAG_L2_MULTICAST};
use crate::graph::{Ctx, Dispatch, Node, Reason};
use weir_packet::{EtherType, EthernetFrame};

/// Checks the frame is for this port and hands it to the protocol's input.
pub struct EthInput;

const TO_ARP: usize = 0;
const TO_IP4: usize = 1;
const TO_IP6: usize = 2;
const TO_TX: usize = 3;
const ETH_HLEN: usize = weir_packet::ethernet::HEADER_LEN;

impl Node for EthInput {
    fn name(&self) -> &'static str {
        "eth-input"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["arp-input", "ip4-input", "ip6-input", "port-tx"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let cfg = cx.config;
        // A batch nearly always comes from one rx queue: look the port up once.
        let mut cached: Option<(u16, Option<&crate::config::PortConfig>)> = None;
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
                out.drop_at(i, Reason::PortDown);
                continue;
            };
            if let Some(phys) = port.mirror_of {
                // From the kernel mirror: the kernel routed and resolved it;
                // it leaves through the port it mirrors as it is.
                buf.meta.tx_port = phys;
                out.next(i, TO_TX);
                continue;
            }
            // A view over exactly the untagged header: fixed offsets, no
            // further length checks.
            let Some(hdr) = buf.data().first_chunk::<ETH_HLEN>() else {
                out.drop_at(i, Reason::EthMalformed);
                continue;
            };
            let eth = EthernetFrame::new_unchecked(hdr);
            let dst = eth.dst_addr();
            if dst != port.mac && !dst.is_multicast() {
                out.drop_at(i, Reason::EthNotForUs);
                continue;
            }
            let ty = eth.outer_ethertype();
            if ty.is_vlan_tag() {
                out.drop_at(i, Reason::EthVlanUnknown);
                continue;
            }
            buf.meta.l3_offset = ETH_HLEN as u16;
            buf.meta.vrf = port.vrf;
            if dst.is_multicast() {
                buf.meta.flags |= FLAG_L2_MULTICAST;
            }
            match ty {
                EtherType::IPV4 => out.next(i, TO_IP4),
                EtherType::IPV6 => out.next(i, TO_IP6),
                EtherType::ARP => out.next(i, TO_ARP),
                _ => out.drop_at(i, Reason::EthUnknownType),
            }
        }
    }
}

/// Queues each packet on its `tx_port` for the worker to transmit.
pub struct PortTx;

impl Node for PortTx {
    fn name(&self) -> &'static str {
        "port-tx"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &[]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let port = cx.pool.get(id).meta.tx_port;
            if cx.local.tx(port, id) {
                out.consumed(i);
            } else {
                out.drop_at(i, Reason::TxFull);
            }
        }
    }
}
