//! Building whole frames from reprs: used by tests, the benchmark's traffic
//! generator and the demo. Not on the forwarding path.

use std::net::{Ipv4Addr, Ipv6Addr};

use weir_packet::ndp::{NdpOption, NdpRepr};
use weir_packet::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
    MacAddr, UdpPacket, UdpRepr,
};

fn eth(dst: MacAddr, src: MacAddr, ty: EtherType, payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload];
    EthernetRepr {
        dst,
        src,
        vlan: None,
        ethertype: ty,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f
}

/// Fields of an IPv4 packet that tests vary.
#[derive(Debug, Clone)]
pub struct V4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub dont_frag: bool,
}

impl V4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> V4 {
        V4 {
            src,
            dst,
            ttl: 64,
            dont_frag: false,
        }
    }

    fn repr(&self, protocol: IpProtocol, payload_len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src: self.src,
            dst: self.dst,
            protocol,
            ttl: self.ttl,
            dscp_ecn: 0,
            ident: 0x1234,
            dont_frag: self.dont_frag,
            more_frags: false,
            frag_offset: 0,
            options: Vec::new(),
            payload_len,
        }
    }
}

/// Ethernet + IPv4 + UDP with `payload_len` bytes of patterned payload.
pub fn udp4(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    ip: &V4,
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload_len,
    };
    let ipr = ip.repr(IpProtocol::UDP, 8 + payload_len);
    let mut f = eth(dst_mac, src_mac, EtherType::IPV4, 20 + 8 + payload_len);
    ipr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
    let mut u = UdpPacket::new_unchecked(&mut f[34..]);
    udp.emit(&mut u);
    for (i, b) in u.payload_mut().iter_mut().enumerate() {
        *b = i as u8;
    }
    u.fill_checksum_v4(ip.src, ip.dst);
    f
}

/// Ethernet + IPv4 + ICMP echo request.
pub fn ping4(dst_mac: MacAddr, src_mac: MacAddr, ip: &V4, ident: u16, seq: u16) -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoRequest {
        ident,
        seq_no: seq,
        data: b"weir-ping-payload".to_vec(),
    };
    let ipr = ip.repr(IpProtocol::ICMP, icmp.buffer_len());
    let mut f = eth(
        dst_mac,
        src_mac,
        EtherType::IPV4,
        ipr.buffer_len() + icmp.buffer_len(),
    );
    ipr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut f[34..]));
    f
}

/// Fields of an IPv6 packet that tests vary.
#[derive(Debug, Clone)]
pub struct V6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
}

impl V6 {
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> V6 {
        V6 {
            src,
            dst,
            hop_limit: 64,
        }
    }
}

/// Ethernet + IPv6 + UDP.
pub fn udp6(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    ip: &V6,
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let (src, dst) = (ip.src, ip.dst);
    let udp = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload_len,
    };
    let ipr = Ipv6Repr {
        src,
        dst,
        next_header: IpProtocol::UDP,
        hop_limit: ip.hop_limit,
        traffic_class: 0,
        flow_label: 0,
        payload_len: 8 + payload_len,
    };
    let mut f = eth(dst_mac, src_mac, EtherType::IPV6, 40 + 8 + payload_len);
    ipr.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
    let mut u = UdpPacket::new_unchecked(&mut f[54..]);
    udp.emit(&mut u);
    for (i, b) in u.payload_mut().iter_mut().enumerate() {
        *b = i as u8;
    }
    u.fill_checksum_v6(src, dst);
    f
}

/// Ethernet + IPv6 + an ICMPv6 message.
pub fn icmp6(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    msg: &Icmpv6Repr,
) -> Vec<u8> {
    let ipr = Ipv6Repr {
        src,
        dst,
        next_header: IpProtocol::ICMPV6,
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
        payload_len: msg.buffer_len(),
    };
    let mut f = eth(dst_mac, src_mac, EtherType::IPV6, 40 + msg.buffer_len());
    ipr.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
    msg.emit(src, dst, &mut Icmpv6Packet::new_unchecked(&mut f[54..]));
    f
}

pub fn ping6(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq: u16,
) -> Vec<u8> {
    let msg = Icmpv6Repr::EchoRequest {
        ident,
        seq_no: seq,
        data: b"weir-ping6-payload".to_vec(),
    };
    icmp6(dst_mac, src_mac, src, dst, 64, &msg)
}

/// A neighbour solicitation for `target` from `src` (multicast to the
/// target's solicited-node group).
pub fn neighbor_solicit(src_mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = weir_packet::ipv6::solicited_node(target);
    let msg = Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit {
        target,
        options: vec![NdpOption::SourceLinkLayerAddr(src_mac)],
    });
    icmp6(MacAddr::ipv6_multicast(dst), src_mac, src, dst, 255, &msg)
}

/// A solicited neighbour advertisement for `target` (ours is `src_mac`).
pub fn neighbor_advert(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    target: Ipv6Addr,
    dst: Ipv6Addr,
) -> Vec<u8> {
    let msg = Icmpv6Repr::Ndp(NdpRepr::NeighborAdvert {
        router: false,
        solicited: true,
        override_: true,
        target,
        options: vec![NdpOption::TargetLinkLayerAddr(src_mac)],
    });
    icmp6(dst_mac, src_mac, target, dst, 255, &msg)
}

/// A broadcast ARP request: who has `target_ip`? Tell `sender_ip`.
pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        sender_mac,
        sender_ip,
        MacAddr::ZERO,
        target_ip,
    )
}

pub fn arp(
    op: ArpOperation,
    dst_mac: MacAddr,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let a = ArpRepr {
        operation: op,
        sender_mac,
        sender_ip,
        target_mac,
        target_ip,
    };
    let mut f = eth(dst_mac, sender_mac, EtherType::ARP, a.buffer_len());
    a.emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
    f
}
