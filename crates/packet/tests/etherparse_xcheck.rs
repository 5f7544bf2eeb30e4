//! (c) Cross-checks against etherparse: packets it builds parse and verify
//! here, and packets emitted here parse there with matching checksums.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader, UdpHeader};
use proptest::collection::vec;
use proptest::prelude::*;
use weir_packet::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 500,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn etherparse_ipv4_udp_parses_here(
        s in any::<[u8; 4]>(), d in any::<[u8; 4]>(), ttl in any::<u8>(),
        sp in any::<u16>(), dp in 1u16.., payload in vec(any::<u8>(), 0..300),
        smac in any::<[u8; 6]>(), dmac in any::<[u8; 6]>(),
    ) {
        let b = PacketBuilder::ethernet2(smac, dmac).ipv4(s, d, ttl).udp(sp, dp);
        let mut out = Vec::new();
        b.write(&mut out, &payload).unwrap();

        let f = EthernetFrame::new_checked(&out[..]).unwrap();
        prop_assert_eq!(f.src_addr(), MacAddr(smac));
        prop_assert_eq!(f.dst_addr(), MacAddr(dmac));
        prop_assert_eq!(f.ethertype(), EtherType::IPV4);
        let ip = Ipv4Packet::new_checked(f.payload()).unwrap();
        prop_assert!(ip.verify_checksum());
        let r = Ipv4Repr::parse(&ip).unwrap();
        prop_assert_eq!((r.src, r.dst, r.ttl, r.protocol), (Ipv4Addr::from(s), Ipv4Addr::from(d), ttl, IpProtocol::UDP));
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        prop_assert!(udp.verify_checksum_v4(r.src, r.dst));
        prop_assert_eq!((udp.src_port(), udp.dst_port()), (sp, dp));
        prop_assert_eq!(udp.payload(), &payload[..]);
    }

    #[test]
    fn etherparse_ipv4_tcp_parses_here(
        s in any::<[u8; 4]>(), d in any::<[u8; 4]>(), ttl in any::<u8>(),
        sp in any::<u16>(), dp in 1u16.., seq in any::<u32>(), win in any::<u16>(),
        payload in vec(any::<u8>(), 0..300),
    ) {
        let b = PacketBuilder::ipv4(s, d, ttl).tcp(sp, dp, seq, win).syn().ack(7);
        let mut out = Vec::new();
        b.write(&mut out, &payload).unwrap();
        let ip = Ipv4Packet::new_checked(&out[..]).unwrap();
        prop_assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        prop_assert!(tcp.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
        prop_assert!(tcp.syn() && tcp.ack() && !tcp.fin());
        prop_assert_eq!((tcp.seq_number(), tcp.ack_number(), tcp.window_len()), (seq, 7, win));
        prop_assert_eq!(tcp.payload(), &payload[..]);
    }

    #[test]
    fn etherparse_ipv6_parses_here(
        s in any::<[u8; 16]>(), d in any::<[u8; 16]>(), hl in any::<u8>(),
        sp in any::<u16>(), dp in 1u16.., payload in vec(any::<u8>(), 0..300), use_tcp in any::<bool>(),
    ) {
        let mut out = Vec::new();
        if use_tcp {
            PacketBuilder::ipv6(s, d, hl).tcp(sp, dp, 1, 2).write(&mut out, &payload).unwrap();
        } else {
            PacketBuilder::ipv6(s, d, hl).udp(sp, dp).write(&mut out, &payload).unwrap();
        }
        let ip = Ipv6Packet::new_checked(&out[..]).unwrap();
        let r = Ipv6Repr::parse(&ip).unwrap();
        prop_assert_eq!((r.src, r.dst, r.hop_limit), (Ipv6Addr::from(s), Ipv6Addr::from(d), hl));
        let ul = ip.upper_layer().unwrap();
        prop_assert_eq!(ul.offset, 40);
        let l4 = &out[ul.offset..];
        if use_tcp {
            prop_assert_eq!(ul.protocol, IpProtocol::TCP);
            prop_assert!(TcpPacket::new_checked(l4).unwrap().verify_checksum_v6(r.src, r.dst));
        } else {
            prop_assert_eq!(ul.protocol, IpProtocol::UDP);
            prop_assert!(UdpPacket::new_checked(l4).unwrap().verify_checksum_v6(r.src, r.dst));
        }
    }

    #[test]
    fn weir_ipv4_udp_parses_there(
        s in any::<[u8; 4]>(), d in any::<[u8; 4]>(), ttl in any::<u8>(), ident in any::<u16>(),
        df in any::<bool>(), optw in 0usize..=10, sp in any::<u16>(), dp in 1u16..,
        payload in vec(any::<u8>(), 0..300),
    ) {
        let udp = UdpRepr { src_port: sp, dst_port: dp, payload_len: payload.len() };
        let ip = Ipv4Repr {
            src: s.into(), dst: d.into(), protocol: IpProtocol::UDP, ttl, dscp_ecn: 0,
            ident, dont_frag: df, more_frags: false, frag_offset: 0,
            // NOP options: valid for etherparse.
            options: vec![1; optw * 4], payload_len: udp.buffer_len() + payload.len(),
        };
        let mut buf = vec![0u8; ip.buffer_len() + ip.payload_len];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p);
        let mut u = UdpPacket::new_unchecked(p.payload_mut());
        udp.emit(&mut u);
        u.payload_mut().copy_from_slice(&payload);
        u.fill_checksum_v4(ip.src, ip.dst);

        let (h, rest) = Ipv4Header::from_slice(&buf).unwrap();
        prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
        prop_assert_eq!((h.source, h.destination, h.time_to_live, h.identification), (s, d, ttl, ident));
        prop_assert_eq!(h.dont_fragment, df);
        prop_assert_eq!(h.options.as_slice(), &ip.options[..]);
        let (uh, data) = UdpHeader::from_slice(rest).unwrap();
        prop_assert_eq!(data, &payload[..]);
        prop_assert_eq!(uh.checksum, uh.calc_checksum_ipv4(&h, data).unwrap());
    }

    #[test]
    fn weir_tcp_parses_there(
        s in any::<[u8; 16]>(), d in any::<[u8; 16]>(), s4 in any::<[u8; 4]>(), d4 in any::<[u8; 4]>(),
        sp in any::<u16>(), dp in 1u16.., seq in any::<u32>(), ack in any::<u32>(), flags in any::<u8>(),
        optw in 0usize..=10, payload in vec(any::<u8>(), 0..300),
    ) {
        let t = TcpRepr {
            src_port: sp, dst_port: dp, seq, ack, flags: TcpFlags(flags), window: 100, urgent: 0,
            options: vec![1; optw * 4], payload_len: payload.len(),
        };
        let mut buf = vec![0u8; t.buffer_len() + payload.len()];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        t.emit(&mut p);
        p.payload_mut().copy_from_slice(&payload);

        p.fill_checksum_v6(s.into(), d.into());
        let (th, data) = TcpHeader::from_slice(&buf).unwrap();
        prop_assert_eq!((th.sequence_number, th.acknowledgment_number), (seq, ack));
        prop_assert_eq!((th.syn, th.ack, th.fin, th.rst), (flags & 2 != 0, flags & 0x10 != 0, flags & 1 != 0, flags & 4 != 0));
        prop_assert_eq!(th.options.as_slice(), &t.options[..]);
        prop_assert_eq!(th.checksum, th.calc_checksum_ipv6_raw(s, d, data).unwrap());

        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.fill_checksum_v4(s4.into(), d4.into());
        let (th, data) = TcpHeader::from_slice(&buf).unwrap();
        prop_assert_eq!(th.checksum, th.calc_checksum_ipv4_raw(s4, d4, data).unwrap());
    }

    #[test]
    fn weir_ipv6_parses_there(
        s in any::<[u8; 16]>(), d in any::<[u8; 16]>(), tc in any::<u8>(), fl in 0u32..(1 << 20),
        hl in any::<u8>(), nh in any::<u8>(), pl in 0usize..100,
    ) {
        let r = Ipv6Repr {
            src: s.into(), dst: d.into(), next_header: IpProtocol(nh), hop_limit: hl,
            traffic_class: tc, flow_label: fl, payload_len: pl,
        };
        let mut buf = vec![0u8; 40 + pl];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        let (h, _) = Ipv6Header::from_slice(&buf).unwrap();
        prop_assert_eq!((h.source, h.destination, h.hop_limit, h.traffic_class), (s, d, hl, tc));
        prop_assert_eq!((h.flow_label.value(), h.payload_length, h.next_header.0), (fl, pl as u16, nh));
    }
}

#[test]
fn etherparse_vlan_frame() {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .single_vlan(etherparse::VlanId::try_new(42).unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9)
        .udp(1, 4789);
    let mut out = Vec::new();
    b.write(&mut out, &[8, 0, 0, 0, 0, 0, 1, 0]).unwrap();
    let f = EthernetFrame::new_checked(&out[..]).unwrap();
    assert_eq!(f.vlan_id(), Some(42));
    assert_eq!(f.ethertype(), EtherType::IPV4);
    let ip = Ipv4Packet::new_checked(f.payload()).unwrap();
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.dst_port(), vxlan::UDP_PORT);
    let vx = VxlanPacket::new_checked(udp.payload()).unwrap();
    assert_eq!(vx.vni(), 1);
}
