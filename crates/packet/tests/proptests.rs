//! Property tests: no panics on arbitrary bytes, repr round trips, and
//! incremental checksum updates matching full recomputation.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;
use weir_packet::ipv6::UpperLayer;
use weir_packet::ndp::{self, NdpOptionIter};
use weir_packet::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    }
}

fn ip4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}
fn ip6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}
fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

// ---------------------------------------------------------------- (a) fuzz

// Each `poke_*` calls every getter (and invariant-preserving setter) on a
// checked view and every repr parser. They only have to not panic.

fn poke_ethernet(b: &mut [u8]) {
    if let Ok(mut f) = EthernetFrame::new_checked(&mut *b) {
        let _ = (
            f.dst_addr(),
            f.src_addr(),
            f.ethertype(),
            f.outer_ethertype(),
        );
        let _ = (f.vlan_id(), f.inner_vlan_id(), f.vlan_pcp(), f.vlan_count());
        let _ = (f.header_len(), f.payload().len());
        let _ = EthernetRepr::parse(&f);
        f.set_dst_addr(MacAddr::BROADCAST);
        f.set_src_addr(MacAddr::ZERO);
        f.set_ethertype(EtherType::IPV4);
        f.set_vlan_id(7);
        f.payload_mut().fill(0);
    }
}

fn poke_arp(b: &mut [u8]) {
    if let Ok(mut p) = ArpPacket::new_checked(&mut *b) {
        let _ = (p.hardware_type(), p.protocol_type(), p.operation());
        let _ = (p.sender_mac(), p.sender_ip(), p.target_mac(), p.target_ip());
        let _ = ArpRepr::parse(&p);
        p.set_operation(ArpOperation::Reply);
        p.set_target_ip(Ipv4Addr::LOCALHOST);
    }
}

fn poke_ipv4(b: &mut [u8]) {
    if let Ok(mut p) = Ipv4Packet::new_checked(&mut *b) {
        let _ = (
            p.version(),
            p.header_len(),
            p.dscp_ecn(),
            p.total_len(),
            p.ident(),
        );
        let _ = (
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.is_fragment(),
        );
        let _ = (
            p.ttl(),
            p.protocol(),
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
        );
        let _ = (
            p.src_bytes(),
            p.dst_bytes(),
            p.options().len(),
            p.payload().len(),
        );
        let _ = (p.verify_checksum(), p.header().len());
        let _ = Ipv4Repr::parse(&p);
        p.decrement_ttl();
        p.set_src_addr_update_checksum(Ipv4Addr::new(1, 2, 3, 4));
        p.set_dst_addr_update_checksum(Ipv4Addr::new(5, 6, 7, 8));
        p.set_dont_frag(true);
        p.set_more_frags(true);
        p.set_frag_offset(0xffff);
        p.fill_checksum();
        p.options_mut().fill(1);
        p.payload_mut().fill(0);
        let _ = p.payload().len();
    }
}

fn poke_ipv6(b: &mut [u8]) -> Option<UpperLayer> {
    let mut p = Ipv6Packet::new_checked(&mut *b).ok()?;
    let _ = (
        p.version(),
        p.traffic_class(),
        p.flow_label(),
        p.payload_len(),
    );
    let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
    let _ = (p.src_bytes(), p.dst_bytes(), p.payload().len());
    let _ = Ipv6Repr::parse(&p);
    let ul = p.upper_layer();
    if let Ok(ul) = ul {
        // The offset must always be inside the packet.
        assert!(ul.offset <= 40 + usize::from(p.payload_len()));
    }
    p.set_hop_limit(1);
    p.set_traffic_class(0xff);
    p.set_flow_label(u32::MAX);
    p.payload_mut().fill(0);
    ul.ok()
}

fn poke_icmpv4(b: &mut [u8]) {
    if let Ok(mut p) = Icmpv4Packet::new_checked(&mut *b) {
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
        );
        let _ = (
            p.next_hop_mtu(),
            p.rest_of_header(),
            p.data().len(),
            p.is_error(),
        );
        let _ = p.verify_checksum();
        let _ = Icmpv4Repr::parse(&p);
        p.fill_checksum();
        assert!(p.verify_checksum());
        let _ = Icmpv4Repr::parse(&p);
    }
}

fn poke_icmpv6(b: &mut [u8], s: Ipv6Addr, d: Ipv6Addr) {
    if let Ok(mut p) = Icmpv6Packet::new_checked(&mut *b) {
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
        );
        let _ = (p.mtu(), p.pointer(), p.data().len(), p.is_error());
        let _ = (p.ndp_target(), p.na_flags(), p.ndp_options().len());
        let _ = p.verify_checksum(s, d);
        let _ = Icmpv6Repr::parse(&p);
        let _ = NdpRepr::parse(&p);
        let o = p.ndp_options();
        let _ = ndp::find_link_layer_option(o, 1);
        let _ = ndp::find_link_layer_option(o, 2);
        let _ = NdpOption::parse_all(o);
        for x in NdpOptionIter::new(o).flatten() {
            let _ = NdpOption::parse(x.0, x.1);
        }
        p.fill_checksum(s, d);
        assert!(p.verify_checksum(s, d));
    }
}

fn poke_udp(b: &mut [u8]) {
    let (s4, d4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    if let Ok(mut p) = UdpPacket::new_checked(&mut *b) {
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.len(),
            p.checksum(),
            p.payload().len(),
        );
        let _ = p.verify_checksum_v4(s4, d4);
        let _ = p.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        let _ = UdpRepr::parse(&p);
        p.fill_checksum_v4(s4, d4);
        assert!(p.verify_checksum_v4(s4, d4));
        p.fill_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
        assert!(p.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED));
        p.payload_mut().fill(0);
    }
}

fn poke_tcp(b: &mut [u8]) {
    let (s4, d4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    if let Ok(mut p) = TcpPacket::new_checked(&mut *b) {
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.seq_number(),
            p.ack_number(),
            p.header_len(),
        );
        let _ = (
            p.fin(),
            p.syn(),
            p.rst(),
            p.psh(),
            p.ack(),
            p.urg(),
            p.ece(),
            p.cwr(),
        );
        let _ = (
            p.flags(),
            p.window_len(),
            p.checksum(),
            p.urgent_at(),
            p.mss(),
        );
        let _ = (p.options().len(), p.payload().len());
        let _ = p.verify_checksum_v4(s4, d4);
        let _ = p.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        let _ = TcpRepr::parse(&p);
        p.fill_checksum_v4(s4, d4);
        assert!(p.verify_checksum_v4(s4, d4));
        p.fill_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        assert!(p.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST));
        p.options_mut().fill(1);
        p.payload_mut().fill(0);
    }
}

fn poke_vxlan(b: &mut [u8]) {
    if let Ok(mut p) = VxlanPacket::new_checked(&mut *b) {
        let _ = (p.flags(), p.vni(), p.payload().len());
        let _ = VxlanRepr::parse(&p);
        p.set_vni(u32::MAX);
        assert_eq!(p.vni(), 0xff_ffff);
    }
}

fn poke_all(b: &[u8]) {
    let s: Ipv6Addr = "fe80::1".parse().unwrap();
    let d: Ipv6Addr = "ff02::1".parse().unwrap();
    poke_ethernet(&mut b.to_vec());
    poke_arp(&mut b.to_vec());
    poke_ipv4(&mut b.to_vec());
    poke_ipv6(&mut b.to_vec());
    poke_icmpv4(&mut b.to_vec());
    poke_icmpv6(&mut b.to_vec(), s, d);
    poke_udp(&mut b.to_vec());
    poke_tcp(&mut b.to_vec());
    poke_vxlan(&mut b.to_vec());
}

/// Random bytes with the length/version fields of some format patched to
/// plausible values, so the fuzzing gets past the first check.
fn fuzz_input() -> impl Strategy<Value = Vec<u8>> {
    (bytes(160), 0u8..10, any::<u8>()).prop_map(|(mut b, kind, x)| {
        let n = b.len();
        match kind {
            0 if n >= 20 => {
                // IPv4: version 4, small IHL, total_len ≤ len.
                b[0] = 0x40 | (5 + x % 11);
                let tl = (n - (x as usize % 4).min(n)) as u16;
                b[2..4].copy_from_slice(&tl.to_be_bytes());
            }
            1 if n >= 40 => {
                b[0] = 0x60 | (b[0] & 0x0f);
                let pl = (n - 40 - (x as usize % 3).min(n - 40)) as u16;
                b[4..6].copy_from_slice(&pl.to_be_bytes());
                b[6] = [0, 43, 44, 51, 60, 59, 6, 17][x as usize % 8];
            }
            2 if n >= 8 => {
                // UDP length ≤ len
                let l = (n - (x as usize % 4).min(n)) as u16;
                b[4..6].copy_from_slice(&l.to_be_bytes());
            }
            3 if n >= 20 => b[12] = (5 + x % 11) << 4, // TCP data offset
            4 if n >= 8 => {
                // ARP Ethernet/IPv4, or VLAN-tagged Ethernet
                b[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
                if n >= 18 && x & 1 == 1 {
                    b[12..14].copy_from_slice(&[0x81, 0x00]);
                    if x & 2 == 2 {
                        b[12..14].copy_from_slice(&[0x88, 0xa8]);
                        b[16..18].copy_from_slice(&[0x81, 0x00]);
                    }
                }
            }
            5 if n >= 2 => {
                // NDP message with option-ish bytes
                b[0] = 133 + x % 5;
                b[1] = 0;
            }
            6 if n >= 1 => b[0] |= 0x08, // VXLAN I flag
            _ => {}
        }
        b
    })
}

#[derive(Debug, Clone)]
struct Ext {
    nh: u8,
    len: u8,
    fill: u8,
}

/// An IPv6 packet made of a chain of (possibly inconsistent) extension headers.
fn ipv6_chain() -> impl Strategy<Value = Vec<u8>> {
    let ext = (
        prop::sample::select(vec![0u8, 43, 44, 51, 60, 59, 6, 17, 58, 50]),
        0u8..4,
        any::<u8>(),
    )
        .prop_map(|(nh, len, fill)| Ext { nh, len, fill });
    (
        prop::sample::select(vec![0u8, 43, 44, 51, 60]),
        vec(ext, 0..12),
        0usize..8,
        any::<bool>(),
    )
        .prop_map(|(first, exts, cut, frag_nonzero)| {
            let mut payload = Vec::new();
            let mut cur = first;
            for e in &exts {
                let len = match cur {
                    51 => (usize::from(e.len) + 2) * 4,
                    44 => 8,
                    _ => (usize::from(e.len) + 1) * 8,
                };
                let start = payload.len();
                payload.resize(start + len, e.fill);
                payload[start] = e.nh;
                if cur != 44 {
                    payload[start + 1] = e.len;
                } else if !frag_nonzero {
                    payload[start + 2] = 0;
                    payload[start + 3] &= 0x07;
                }
                cur = e.nh;
            }
            payload.extend_from_slice(&[0u8; 8]);
            payload.truncate(payload.len().saturating_sub(cut));
            let mut v = vec![0x60, 0, 0, 0, 0, 0, first, 64];
            v[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
            v.extend_from_slice(&[0u8; 32]);
            v.extend_from_slice(&payload);
            v
        })
}

/// NDP messages with random option lists (valid or not).
fn ndp_bytes() -> impl Strategy<Value = Vec<u8>> {
    let opt = (0u8..8, 0u8..5, bytes(40));
    (133u8..=137, vec(opt, 0..6), bytes(40)).prop_map(|(t, opts, body)| {
        let mut v = vec![t, 0, 0, 0];
        v.extend_from_slice(&body);
        for (ty, len, mut data) in opts {
            data.resize(usize::from(len) * 8, 0);
            if data.len() >= 2 {
                data[0] = ty;
                data[1] = len;
            } else {
                data = vec![ty, len];
            }
            v.extend_from_slice(&data);
        }
        v
    })
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn fuzz_random_bytes(b in bytes(200)) {
        poke_all(&b);
    }

    #[test]
    fn fuzz_structured_bytes(b in fuzz_input()) {
        poke_all(&b);
    }

    #[test]
    fn fuzz_ipv6_ext_chain(b in ipv6_chain()) {
        let mut b2 = b.clone();
        if let Some(ul) = poke_ipv6(&mut b2) {
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            prop_assert!(ul.offset >= 40);
            prop_assert!(ul.offset <= 40 + usize::from(p.payload_len()));
        }
        poke_all(&b);
    }

    #[test]
    fn fuzz_ndp(b in ndp_bytes(), s in ip6(), d in ip6()) {
        poke_icmpv6(&mut b.clone(), s, d);
        poke_all(&b);
    }
}

// ----------------------------------------------------------- (b) round trips

fn ethernet_repr() -> impl Strategy<Value = EthernetRepr> {
    (mac(), mac(), prop::option::of(0u16..4096), any::<u16>()).prop_map(|(dst, src, vlan, t)| {
        let t = if t == 0x8100 || t == 0x88a8 {
            0x0800
        } else {
            t
        };
        EthernetRepr {
            dst,
            src,
            vlan,
            ethertype: EtherType(t),
        }
    })
}

fn arp_repr() -> impl Strategy<Value = ArpRepr> {
    (any::<u16>(), mac(), ip4(), mac(), ip4()).prop_map(|(op, sm, si, tm, ti)| ArpRepr {
        operation: op.into(),
        sender_mac: sm,
        sender_ip: si,
        target_mac: tm,
        target_ip: ti,
    })
}

fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    (
        (
            ip4(),
            ip4(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
            0usize..=10,
            any::<u8>(),
            0usize..300,
        ),
    )
        .prop_map(
            |((src, dst, proto, ttl, dscp_ecn, ident), (df, mf, off, optw, fill, pl))| Ipv4Repr {
                src,
                dst,
                protocol: IpProtocol(proto),
                ttl,
                dscp_ecn,
                ident,
                dont_frag: df,
                more_frags: mf,
                frag_offset: off * 8,
                options: vec![fill; optw * 4],
                payload_len: pl,
            },
        )
}

fn ipv6_repr() -> impl Strategy<Value = Ipv6Repr> {
    (
        ip6(),
        ip6(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0u32..(1 << 20),
        0usize..300,
    )
        .prop_map(|(src, dst, nh, hl, tc, fl, pl)| Ipv6Repr {
            src,
            dst,
            next_header: IpProtocol(nh),
            hop_limit: hl,
            traffic_class: tc,
            flow_label: fl,
            payload_len: pl,
        })
}

fn icmpv4_repr() -> impl Strategy<Value = Icmpv4Repr> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), bytes(64)).prop_map(|(ident, seq_no, data)| {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
        }),
        (any::<u16>(), any::<u16>(), bytes(64)).prop_map(|(ident, seq_no, data)| {
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }
        }),
        (any::<u8>(), any::<u16>(), bytes(64)).prop_map(|(code, next_hop_mtu, data)| {
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                data,
            }
        }),
        (any::<u8>(), bytes(64)).prop_map(|(code, data)| Icmpv4Repr::TimeExceeded { code, data }),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 4..40))
            .prop_filter("known type", |(t, _, _)| ![0, 3, 8, 11].contains(t))
            .prop_map(|(msg_type, code, data)| Icmpv4Repr::Other {
                msg_type,
                code,
                data
            }),
    ]
}

fn ndp_option() -> impl Strategy<Value = NdpOption> {
    prop_oneof![
        mac().prop_map(NdpOption::SourceLinkLayerAddr),
        mac().prop_map(NdpOption::TargetLinkLayerAddr),
        (
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            ip6()
        )
            .prop_map(
                |(prefix_len, on_link, autonomous, valid_lifetime, preferred_lifetime, prefix)| {
                    NdpOption::PrefixInformation {
                        prefix_len,
                        on_link,
                        autonomous,
                        valid_lifetime,
                        preferred_lifetime,
                        prefix,
                    }
                }
            ),
        any::<u32>().prop_map(NdpOption::Mtu),
        (any::<u8>(), 1usize..4, any::<u8>())
            .prop_filter("known type", |(t, _, _)| ![1, 2, 3, 5].contains(t))
            .prop_map(|(option_type, n, fill)| NdpOption::Unknown {
                option_type,
                data: vec![fill; n * 8 - 2]
            }),
    ]
}

fn unicast6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(|mut b| {
        if b[0] == 0xff {
            b[0] = 0xfe;
        }
        Ipv6Addr::from(b)
    })
}

fn ndp_repr() -> impl Strategy<Value = NdpRepr> {
    let opts = || vec(ndp_option(), 0..4);
    prop_oneof![
        opts().prop_map(|options| NdpRepr::RouterSolicit { options }),
        (
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            opts()
        )
            .prop_map(
                |(
                    hop_limit,
                    managed,
                    other,
                    router_lifetime,
                    reachable_time,
                    retrans_timer,
                    options,
                )| {
                    NdpRepr::RouterAdvert {
                        hop_limit,
                        managed,
                        other,
                        router_lifetime,
                        reachable_time,
                        retrans_timer,
                        options,
                    }
                }
            ),
        (unicast6(), opts())
            .prop_map(|(target, options)| NdpRepr::NeighborSolicit { target, options }),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            unicast6(),
            opts()
        )
            .prop_map(|(router, solicited, override_, target, options)| {
                NdpRepr::NeighborAdvert {
                    router,
                    solicited,
                    override_,
                    target,
                    options,
                }
            }),
    ]
}

fn icmpv6_repr() -> impl Strategy<Value = Icmpv6Repr> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), bytes(64)).prop_map(|(ident, seq_no, data)| {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
        }),
        (any::<u16>(), any::<u16>(), bytes(64)).prop_map(|(ident, seq_no, data)| {
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            }
        }),
        (any::<u8>(), bytes(64)).prop_map(|(code, data)| Icmpv6Repr::DstUnreachable { code, data }),
        (any::<u32>(), bytes(64)).prop_map(|(mtu, data)| Icmpv6Repr::PacketTooBig { mtu, data }),
        (any::<u8>(), bytes(64)).prop_map(|(code, data)| Icmpv6Repr::TimeExceeded { code, data }),
        (any::<u8>(), any::<u32>(), bytes(64)).prop_map(|(code, pointer, data)| {
            Icmpv6Repr::ParamProblem {
                code,
                pointer,
                data,
            }
        }),
        ndp_repr().prop_map(Icmpv6Repr::Ndp),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 4..40))
            .prop_filter("known type", |(t, _, _)| {
                ![1, 2, 3, 4, 128, 129, 133, 134, 135, 136].contains(t)
            })
            .prop_map(|(msg_type, code, data)| Icmpv6Repr::Other {
                msg_type,
                code,
                data
            }),
    ]
}

fn tcp_repr() -> impl Strategy<Value = TcpRepr> {
    (
        (
            any::<u16>(),
            1u16..,
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
        ),
        (
            any::<u16>(),
            any::<u16>(),
            0usize..=10,
            any::<u8>(),
            0usize..200,
        ),
    )
        .prop_map(
            |((sp, dp, seq, ack, flags), (window, urgent, optw, fill, pl))| TcpRepr {
                src_port: sp,
                dst_port: dp,
                seq,
                ack,
                flags: TcpFlags(flags),
                window,
                urgent,
                options: vec![fill; optw * 4],
                payload_len: pl,
            },
        )
}

fn udp_repr() -> impl Strategy<Value = UdpRepr> {
    (any::<u16>(), 1u16.., 0usize..300).prop_map(|(src_port, dst_port, payload_len)| UdpRepr {
        src_port,
        dst_port,
        payload_len,
    })
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn roundtrip_ethernet(r in ethernet_repr(), pl in bytes(20)) {
        let mut b = vec![0u8; r.buffer_len() + pl.len()];
        r.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
        b[r.buffer_len()..].copy_from_slice(&pl);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), r);
        prop_assert_eq!(f.payload(), &pl[..]);
    }

    #[test]
    fn roundtrip_arp(r in arp_repr()) {
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn roundtrip_ipv4(r in ipv4_repr()) {
        prop_assert!(r.validate().is_ok());
        let mut b = vec![0u8; r.buffer_len() + r.payload_len];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn roundtrip_ipv6(r in ipv6_repr()) {
        let mut b = vec![0u8; r.buffer_len() + r.payload_len];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
        prop_assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn roundtrip_icmpv4(r in icmpv4_repr()) {
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]));
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn roundtrip_icmpv6(r in icmpv6_repr(), s in ip6(), d in ip6()) {
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(s, d, &mut Icmpv6Packet::new_unchecked(&mut b[..]));
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        prop_assert!(p.verify_checksum(s, d));
        prop_assert_eq!(Icmpv6Repr::parse(&p).unwrap(), r.clone());
        if let Icmpv6Repr::Ndp(n) = &r {
            prop_assert_eq!(&NdpRepr::parse(&p).unwrap(), n);
            // The zero-alloc helper agrees with the full parse.
            let o = p.ndp_options();
            let first = |want: u8| {
                NdpOption::parse_all(o).unwrap().into_iter().find_map(|x| match (want, x) {
                    (1, NdpOption::SourceLinkLayerAddr(m)) | (2, NdpOption::TargetLinkLayerAddr(m)) => Some(m),
                    _ => None,
                })
            };
            prop_assert_eq!(ndp::find_link_layer_option(o, 1), first(1));
            prop_assert_eq!(ndp::find_link_layer_option(o, 2), first(2));
        }
    }

    #[test]
    fn roundtrip_udp(r in udp_repr(), s in ip4(), d in ip4(), s6 in ip6(), d6 in ip6(), fill in any::<u8>()) {
        let mut b = vec![0u8; r.buffer_len() + r.payload_len];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        r.emit(&mut p);
        p.payload_mut().fill(fill);
        p.fill_checksum_v4(s, d);
        prop_assert!(p.verify_checksum_v4(s, d));
        prop_assert_ne!(p.checksum(), 0);
        p.fill_checksum_v6(s6, d6);
        prop_assert!(p.verify_checksum_v6(s6, d6));
        prop_assert_eq!(UdpRepr::parse(&UdpPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn roundtrip_tcp(r in tcp_repr(), s in ip4(), d in ip4(), fill in any::<u8>()) {
        let mut b = vec![0u8; r.buffer_len() + r.payload_len];
        let mut p = TcpPacket::new_unchecked(&mut b[..]);
        r.emit(&mut p);
        p.payload_mut().fill(fill);
        p.fill_checksum_v4(s, d);
        prop_assert!(p.verify_checksum_v4(s, d));
        prop_assert_eq!(TcpRepr::parse(&TcpPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn roundtrip_vxlan(vni in 0u32..(1 << 24)) {
        let r = VxlanRepr { vni };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut VxlanPacket::new_unchecked(&mut b[..]));
        prop_assert_eq!(VxlanRepr::parse(&VxlanPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn mac_display_parse(m in mac()) {
        prop_assert_eq!(m.to_string().parse::<MacAddr>().unwrap(), m);
    }
}

// ------------------------------------------- (d) incremental checksum updates

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn decrement_ttl_matches_recompute(r in ipv4_repr()) {
        let mut b = vec![0u8; r.buffer_len() + r.payload_len];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        let mut ttl = r.ttl;
        // Walk the TTL all the way down, checking every step.
        for _ in 0..=u32::from(r.ttl).min(70) {
            let new = p.decrement_ttl();
            ttl = ttl.saturating_sub(1);
            prop_assert_eq!(new, ttl);
            let inc = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(inc, p.checksum());
        }
    }

    #[test]
    fn nat_update_matches_recompute(r in ipv4_repr(), s in ip4(), d in ip4()) {
        let mut b = vec![0u8; r.buffer_len() + r.payload_len];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_addr_update_checksum(s);
        p.set_dst_addr_update_checksum(d);
        let inc = p.checksum();
        p.fill_checksum();
        prop_assert_eq!(inc, p.checksum());
    }

    #[test]
    fn update_u16_matches_recompute(mut data in vec(any::<u8>(), 6..64), word in any::<prop::sample::Index>(), new in any::<u16>()) {
        // Word 0 stays non-zero (a real header always has one: version,
        // lengths) and word 1 is the checksum field; any other word changes.
        data[0] |= 0x40;
        if data.len() % 2 == 1 { data.push(0); }
        data[2] = 0;
        data[3] = 0;
        let c0 = checksum::finish(checksum::sum(&data));
        let i = 2 * (2 + word.index(data.len() / 2 - 2));
        let old = u16::from_be_bytes([data[i], data[i + 1]]);
        data[i..i + 2].copy_from_slice(&new.to_be_bytes());
        let c1 = checksum::finish(checksum::sum(&data));
        prop_assert_eq!(checksum::update_u16(c0, old, new), c1);
    }

    #[test]
    fn update_u128_matches_recompute(mut data in vec(any::<u8>(), 40..41), new in any::<[u8; 16]>()) {
        data[0] = 0x60;
        data[2] = 0;
        data[3] = 0;
        let c0 = checksum::finish(checksum::sum(&data));
        let old: [u8; 16] = data[8..24].try_into().unwrap();
        data[8..24].copy_from_slice(&new);
        let c1 = checksum::finish(checksum::sum(&data));
        prop_assert_eq!(checksum::update_u128(c0, &old, &new), c1);
    }

    #[test]
    fn sum_split_anywhere_even(data in bytes(300), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(data.len() / 2 + 1) * 2;
        let whole = checksum::fold(u64::from(checksum::sum(&data)));
        let parts = checksum::combine(checksum::sum(&data[..cut]), checksum::sum(&data[cut..]));
        prop_assert_eq!(checksum::fold(u64::from(parts)), whole);
    }
}
