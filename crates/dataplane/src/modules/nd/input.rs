//! `nd-input`: neighbour solicitations and advertisements (RFC 4861) for
//! the gateway. Solicitations for our addresses are answered in place;
//! what neighbours announce goes up to the control side, which owns the
//! neighbour table; advertisements also go to the kernel mirror.

use std::fmt::Write;
use std::net::{IpAddr, Ipv6Addr};

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{edges, reasons, Dispatch, Node, Reason};
use crate::modules::l3::{macs, write_eth};
use crate::worker::{Ctx, Fwd, Upcall};
use weir_packet::ipv6::ALL_NODES;
use weir_packet::{
    icmpv6, ndp, EtherType, Icmpv6Packet, IpProtocol, Ipv6Packet, Ipv6Repr, MacAddr,
};

edges! {
    enum Next {
        Tx => "port-tx",
        Punt => "punt:neighbour-advert",
    }
}

reasons! {
    enum Drop {
        Malformed => "malformed",
        NotForUs => "not-for-us",
        PortDown => "port-down",
    }
}

pub struct NdInput;

impl Node<Fwd> for NdInput {
    fn name(&self) -> &'static str {
        "nd-input"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let b = cx.pool.get(id);
            let l3 = b.meta.l3_offset as usize;
            // icmp6-local checked the headers and the checksum.
            let Ok(ip) = Ipv6Packet::new_checked(&b.data()[l3..]) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            let (src, dst, hop) = (ip.src_addr(), ip.dst_addr(), ip.hop_limit());
            let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            // RFC 4861 7.1: hop limit 255, code 0, a unicast target and a
            // well-formed option list; checked in place.
            let target = icmp.ndp_target();
            let opts = icmp.ndp_options();
            let Some(target) = target.filter(|t| !t.is_multicast()) else {
                out.drop_at(i, Drop::Malformed);
                continue;
            };
            if hop != 255 || icmp.code() != 0 || ndp::check_options(opts).is_err() {
                out.drop_at(i, Drop::Malformed);
                continue;
            }
            let nd = match icmp.msg_type() {
                icmpv6::NEIGHBOR_SOLICIT => Nd::Solicit {
                    target,
                    slla: ndp::find_link_layer_option(opts, ndp::OPT_SOURCE_LL_ADDR),
                },
                icmpv6::NEIGHBOR_ADVERT => Nd::Advert {
                    target,
                    tlla: ndp::find_link_layer_option(opts, ndp::OPT_TARGET_LL_ADDR),
                },
                _ => {
                    out.drop_at(i, Drop::Malformed);
                    continue;
                }
            };
            neighbour_discovery(cx, id, src, dst, nd, out);
            out.consumed(i);
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        let l3 = buf.meta.l3_offset as usize;
        if let Some(ip) = buf
            .data()
            .get(l3..)
            .and_then(|d| Ipv6Packet::new_checked(d).ok())
        {
            let _ = write!(out, "{} > {}", ip.src_addr(), ip.dst_addr());
            if let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) {
                if let Some(t) = icmp.ndp_target() {
                    let _ = write!(out, " type {} target {t}", icmp.msg_type());
                }
            }
        }
    }
}

/// What the gateway needs of a neighbour solicitation or advertisement.
enum Nd {
    Solicit {
        target: Ipv6Addr,
        slla: Option<MacAddr>,
    },
    Advert {
        target: Ipv6Addr,
        tlla: Option<MacAddr>,
    },
}

fn neighbour_discovery(
    cx: &mut Ctx<'_>,
    id: PktId,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: Nd,
    out: &mut Dispatch<'_>,
) {
    let rx = cx.pool.get(id).meta.rx_port;
    let cfg = cx.tables;
    let Some(port) = cfg.port(rx) else {
        out.drop(id, Drop::PortDown);
        return;
    };
    match nd {
        Nd::Solicit { target, slla } => {
            if src.is_unspecified() && (!dst.is_multicast() || slla.is_some()) {
                // DAD probes go to the solicited-node group and carry no SLLA.
                out.drop(id, Drop::Malformed);
                return;
            }
            if let Some(m) = slla {
                learn(cx, rx, src, m);
            }
            if !port.has_addr6(target) {
                out.drop(id, Drop::NotForUs);
                return;
            }
            let mac = port.mac;
            send_na(cx, id, mac, src, target, slla, out);
        }
        Nd::Advert { target, tlla } => {
            if let Some(m) = tlla {
                learn(cx, rx, target, m);
            }
            // The kernel mirror resolves its own neighbours from these.
            out.send(Next::Punt, id);
        }
    }
}

/// Tell the control side about a neighbour if it changes what we know.
fn learn(cx: &mut Ctx<'_>, port: u16, addr: Ipv6Addr, mac: MacAddr) {
    if !mac.is_unicast() || addr.is_unspecified() || addr.is_multicast() {
        return;
    }
    let key = (port, IpAddr::V6(addr));
    if cx.tables.neighbours.get(&key) != Some(&mac) {
        cx.local.upcall(Upcall::Neighbour {
            port,
            addr: IpAddr::V6(addr),
            mac,
        });
    }
}

/// Answer a solicitation for one of our addresses (RFC 4861 7.2.4), in place.
fn send_na(
    cx: &mut Ctx<'_>,
    id: PktId,
    port_mac: MacAddr,
    src: Ipv6Addr,
    target: Ipv6Addr,
    slla: Option<MacAddr>,
    out: &mut Dispatch<'_>,
) {
    let buf = cx.pool.get_mut(id);
    let rx = buf.meta.rx_port;
    let eth_src = MacAddr::from_slice(&buf.data()[6..12]).unwrap_or(MacAddr::BROADCAST);
    let (dst_ip, dst_mac, solicited) = if src.is_unspecified() {
        (ALL_NODES, MacAddr::ipv6_multicast(ALL_NODES), false)
    } else {
        (src, slla.unwrap_or(eth_src), true)
    };
    // The advertisement is written field by field over the solicitation:
    // IPv6 header, 24-byte NA body, one target link-layer address option.
    const NA_LEN: usize = 24 + 8;
    let ip = Ipv6Repr {
        src: target,
        dst: dst_ip,
        next_header: IpProtocol::ICMPV6,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
        payload_len: NA_LEN,
    };
    if !write_eth(buf, &macs(dst_mac, port_mac), EtherType::IPV6) || !buf.set_len(14 + 40 + NA_LEN)
    {
        out.drop(id, Reason::NO_BUFFER);
        return;
    }
    let d = &mut buf.data_mut()[14..];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut d[..40]));
    let na = &mut d[40..40 + NA_LEN];
    na.fill(0);
    na[0] = icmpv6::NEIGHBOR_ADVERT;
    // Router, override, and solicited when answering a unicast source.
    na[4] = ndp::NA_ROUTER | ndp::NA_OVERRIDE | if solicited { ndp::NA_SOLICITED } else { 0 };
    na[8..24].copy_from_slice(&target.octets());
    na[24] = ndp::OPT_TARGET_LL_ADDR;
    na[25] = 1;
    na[26..32].copy_from_slice(&port_mac.0);
    Icmpv6Packet::new_unchecked(&mut na[..]).fill_checksum(target, dst_ip);
    buf.meta.tx_port = rx;
    out.send(Next::Tx, id);
}
