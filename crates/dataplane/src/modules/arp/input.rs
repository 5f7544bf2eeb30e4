//! `arp-input`: answer requests for the gateway's own addresses in place, and hand
//! what neighbours announce to the control side, which owns the neighbour
//! table.

use std::net::IpAddr;

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{edges, reasons, Dispatch, Node};
use crate::modules::l3::{macs, write_eth};
use crate::tables::PortConfig;
use crate::worker::{Ctx, Fwd, Upcall};
use weir_packet::ipv4::same_subnet;
use weir_packet::{ArpOperation, ArpPacket, ArpRepr, EtherType};

edges! {
    enum Next {
        Tx => "port-tx",
        Punt => "punt:arp-reply",
    }
}

reasons! {
    enum Drop {
        PortDown => "port-down",
        Malformed => "malformed",
        NotForUs => "not-for-us",
    }
}

pub struct ArpInput;

fn on_link(port: &PortConfig, ip: std::net::Ipv4Addr) -> bool {
    port.addrs4.iter().any(|(a, l)| same_subnet(*a, ip, *l))
}

impl Node<Fwd> for ArpInput {
    fn name(&self) -> &'static str {
        "arp-input"
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
            let rx = buf.meta.rx_port;
            let Some(port) = cx.tables.port(rx) else {
                out.drop_at(i, Drop::PortDown);
                continue;
            };
            let l3 = buf.meta.l3_offset as usize;
            let Some(repr) = buf
                .data()
                .get(l3..)
                .and_then(|d| ArpPacket::new_checked(d).ok())
                .and_then(|p| ArpRepr::parse(&p).ok())
            else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let for_us = port.has_addr4(repr.target_ip);
            // Learn only from neighbours on one of our subnets, and only what
            // changes the table, so a flood of ARP does not flood control.
            if on_link(port, repr.sender_ip)
                && repr.sender_mac.is_unicast()
                && (for_us
                    || cx
                        .tables
                        .neighbours
                        .contains_key(&(rx, IpAddr::V4(repr.sender_ip))))
                && cx.tables.neighbours.get(&(rx, IpAddr::V4(repr.sender_ip)))
                    != Some(&repr.sender_mac)
            {
                cx.local.upcall(Upcall::Neighbour {
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
                        out.drop_at(i, Drop::Malformed);
                        continue;
                    }
                    reply.emit(&mut ArpPacket::new_unchecked(&mut buf.data_mut()[14..]));
                    buf.meta.tx_port = rx;
                    out.next(i, Next::Tx);
                }
                // Learned above; the kernel mirror needs it too.
                ArpOperation::Reply if for_us => out.next(i, Next::Punt),
                _ => out.drop_at(i, Drop::NotForUs),
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        let l3 = buf.meta.l3_offset as usize;
        if let Some(p) = buf
            .data()
            .get(l3..)
            .and_then(|d| ArpPacket::new_checked(d).ok())
        {
            if let Ok(r) = ArpRepr::parse(&p) {
                let _ = write!(
                    out,
                    "{:?} {} ({}) asks {}",
                    r.operation, r.sender_ip, r.sender_mac, r.target_ip
                );
            }
        }
    }
}
