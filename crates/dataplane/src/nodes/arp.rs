//! ARP: answer requests for the gateway's own addresses in place, and hand
//! what neighbours announce to the control side, which owns the neighbour
//! table.

use std::net::IpAddr;

use crate::buffer::PktId;
use crate::config::{same_subnet4, PortConfig};
use crate::graph::{Ctx, Dispatch, Node, Reason};
use crate::nodes::{macs, write_eth};
use crate::worker::Punt;
use weir_packet::{ArpOperation, ArpPacket, ArpRepr, EtherType};

pub struct ArpInput;

const TO_TX: usize = 0;

fn on_link(port: &PortConfig, ip: std::net::Ipv4Addr) -> bool {
    port.addrs4.iter().any(|(a, l)| same_subnet4(*a, ip, *l))
}

impl Node for ArpInput {
    fn name(&self) -> &'static str {
        "arp-input"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["port-tx", "punt-kernel"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            let rx = buf.meta.rx_port;
            let Some(port) = cx.config.port(rx) else {
                out.drop_at(i, Reason::PortDown);
                continue;
            };
            let l3 = buf.meta.l3_offset as usize;
            let Some(repr) = buf
                .data()
                .get(l3..)
                .and_then(|d| ArpPacket::new_checked(d).ok())
                .and_then(|p| ArpRepr::parse(&p).ok())
            else {
                out.drop_at(i, Reason::ArpMalformed);
                continue;
            };
            let for_us = port.has_addr4(repr.target_ip);
            // Learn only from neighbours on one of our subnets, and only what
            // changes the table, so a flood of ARP does not flood control.
            if on_link(port, repr.sender_ip)
                && repr.sender_mac.is_unicast()
                && (for_us
                    || cx
                        .config
                        .neighbours
                        .contains_key(&(rx, IpAddr::V4(repr.sender_ip))))
                && cx.config.neighbours.get(&(rx, IpAddr::V4(repr.sender_ip)))
                    != Some(&repr.sender_mac)
            {
                cx.local.punt(Punt::Neighbour {
                    port: rx,
                    addr: IpAddr::V4(repr.sender_ip),
                    mac: repr.sender_mac,
                });
            }
            match repr.operation {
                ArpOperation::Request if for_us => {
                    let reply = ArpRepr {
                        operation: ArpOperation::Reply,
                        sender_mac: port.mac,
                        sender_ip: repr.target_ip,
                        target_mac: repr.sender_mac,
                        target_ip: repr.sender_ip,
                    };
                    let mac = port.mac;
                    if !write_eth(buf, &macs(repr.sender_mac, mac), EtherType::ARP)
                        || !buf.set_len(14 + reply.buffer_len())
                    {
                        out.drop_at(i, Reason::ArpMalformed);
                        continue;
                    }
                    reply.emit(&mut ArpPacket::new_unchecked(&mut buf.data_mut()[14..]));
                    buf.meta.tx_port = rx;
                    out.next(i, TO_TX);
                }
                // Learned above; the kernel mirror needs it too.
                ArpOperation::Reply if for_us => out.next(i, 1),
                _ => out.drop_at(i, Reason::ArpNotForUs),
            }
        }
    }
}
