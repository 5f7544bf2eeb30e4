//! Forwarding behaviour on the memory driver: craft a frame, send it
//! through the graph, assert on the frames that come out and the counters.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use weir_dataplane::frames::{self, V4};
use weir_dataplane::{Builder, RouteTarget};
use weir_packet::{
    ArpOperation, ArpPacket, ArpRepr, Icmpv4Packet, Icmpv6Packet, Ipv4Packet, MacAddr,
};

mod common;
use common::*;

fn host_udp(dst: &str, ttl: u8, len: usize) -> Vec<u8> {
    let mut ip = V4::new(v4("10.0.0.2"), v4(dst));
    ip.ttl = ttl;
    frames::udp4(GW0, HOST_A, &ip, 1000, 2000, len)
}

#[test]
fn ipv4_forward_rewrites_l2_and_decrements_ttl() {
    let mut l = lab();
    let sent = host_udp("192.0.2.5", 64, 100);
    l.send(0, sent.clone());
    let out = l.out(1);
    assert_eq!(out.len(), 1, "one frame out on p1");
    let f = &out[0];
    assert_eq!(&f[0..6], &ROUTER_B.0, "dst MAC is the next hop's");
    assert_eq!(&f[6..12], &GW1.0, "src MAC is the egress port's");
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum(), "incremental checksum is right");
    assert_eq!(ip.dst_addr(), v4("192.0.2.5"));
    // Everything past the TTL/checksum is unchanged.
    assert_eq!(&f[14 + 20..], &sent[14 + 20..]);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    assert!(matches!(p.transport, Some(TransportSlice::Udp(_))));
    assert!(l.out(0).is_empty() && l.out(2).is_empty());
    assert_eq!(l.dp.stats().node("ip4-lookup").packets, 1);
    l.assert_no_leak();
}

#[test]
fn ethernet_padding_is_trimmed() {
    let mut l = lab();
    let mut f = host_udp("192.0.2.5", 64, 0);
    f.resize(60, 0); // minimum Ethernet frame with padding
    l.send(0, f);
    let out = l.out(1);
    assert_eq!(out[0].len(), 14 + 20 + 8);
}

#[test]
fn ttl_expiry_sends_time_exceeded_quoting_the_packet() {
    let mut l = lab();
    let sent = host_udp("192.0.2.5", 1, 32);
    l.send(0, sent.clone());
    assert!(l.out(1).is_empty());
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(&f[0..6], &HOST_A.0);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(ip.src_addr(), v4("10.0.0.1"));
    assert_eq!(ip.dst_addr(), v4("10.0.0.2"));
    assert!(ip.verify_checksum());
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (11, 0));
    assert!(icmp.verify_checksum());
    // The quoted packet is the original IP packet, TTL 1.
    assert_eq!(icmp.data(), &sent[14..]);
    assert_eq!(l.drops("ip4-output/ttl-expired"), 1);
    l.assert_no_leak();
}

#[test]
fn no_route_sends_net_unreachable() {
    let mut l = lab();
    l.send(0, host_udp("203.0.113.9", 64, 10));
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    let ip = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 0));
    assert_eq!(l.drops("ip4-lookup/no-route"), 1);
}

#[test]
fn blackhole_drops_silently_and_prohibit_answers() {
    let mut l = lab();
    l.dp.control
        .add_route(0, net("198.18.0.0/15"), RouteTarget::Blackhole)
        .unwrap();
    l.dp.control
        .add_route(0, net("198.51.100.0/24"), RouteTarget::Prohibit)
        .unwrap();
    l.dp.control.commit();
    l.send(0, host_udp("198.18.1.1", 64, 10));
    assert!(l.out(0).is_empty() && l.out(1).is_empty());
    assert_eq!(l.drops("ip4-lookup/blackhole"), 1);
    l.send(0, host_udp("198.51.100.1", 64, 10));
    let out = l.out(0);
    let ip = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 13));
}

#[test]
fn bad_packets_are_counted_and_dropped() {
    let mut l = lab();
    let mut bad_csum = host_udp("192.0.2.5", 64, 10);
    bad_csum[14 + 10] ^= 0xff;
    l.send(0, bad_csum);
    let mut bad_version = host_udp("192.0.2.5", 64, 10);
    bad_version[14] = 0x55;
    l.send(0, bad_version);
    let mut short_len = host_udp("192.0.2.5", 64, 10);
    short_len[14 + 2] = 0;
    short_len[14 + 3] = 10; // total length below the header length
    l.send(0, short_len);
    l.send(0, host_udp_from("127.0.0.1", "192.0.2.5"));
    l.send(0, host_udp_from("10.0.0.2", "0.1.2.3"));
    l.send(0, host_udp_from("10.0.0.2", "224.0.0.5"));
    l.send(0, vec![1, 2, 3]);
    let mut not_for_us = host_udp("192.0.2.5", 64, 10);
    not_for_us[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    l.send(0, not_for_us);
    assert!(l.out(0).is_empty() && l.out(1).is_empty());
    assert_eq!(l.drops("ip4-input/bad-checksum"), 1);
    assert_eq!(l.drops("ip4-input/malformed"), 2);
    assert_eq!(l.drops("ip4-input/martian-source"), 1);
    assert_eq!(l.drops("ip4-input/martian-destination"), 1);
    assert_eq!(l.drops("ip4-input/multicast-not-forwarded"), 1);
    assert_eq!(l.drops("eth-input/malformed"), 1);
    assert_eq!(l.drops("eth-input/not-for-us"), 1);
    l.assert_no_leak();
}

fn host_udp_from(src: &str, dst: &str) -> Vec<u8> {
    frames::udp4(GW0, HOST_A, &V4::new(v4(src), v4(dst)), 1, 2, 8)
}

#[test]
fn too_big_with_df_gets_fragmentation_needed() {
    let mut l = lab();
    l.dp.control.set_port_mtu(1, 1000).unwrap();
    l.dp.control.commit();
    let mut ip = V4::new(v4("10.0.0.2"), v4("192.0.2.5"));
    ip.dont_frag = true;
    l.send(0, frames::udp4(GW0, HOST_A, &ip, 1, 2, 1200));
    assert!(l.out(1).is_empty());
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    let ip = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 4));
    assert_eq!(icmp.next_hop_mtu(), 1000);
    assert!(out[0].len() <= 14 + 576);
    assert_eq!(l.drops("ip4-output/fragmentation-needed"), 1);
}

#[test]
fn too_big_without_df_is_fragmented() {
    let mut l = lab();
    l.dp.control.set_port_mtu(1, 576).unwrap();
    l.dp.control.commit();
    let sent = frames::udp4(
        GW0,
        HOST_A,
        &V4::new(v4("10.0.0.2"), v4("192.0.2.5")),
        1,
        2,
        1400,
    );
    l.send(0, sent.clone());
    let out = l.out(1);
    assert_eq!(out.len(), 3, "1408 bytes of payload in 552-byte pieces");
    let mut pieces: Vec<(usize, Vec<u8>, bool)> = out
        .iter()
        .map(|f| {
            assert!(f.len() - 14 <= 576);
            let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.ttl(), 63);
            assert_eq!(ip.ident(), 0x1234);
            (
                ip.frag_offset() as usize,
                ip.payload().to_vec(),
                ip.more_frags(),
            )
        })
        .collect();
    pieces.sort_by_key(|p| p.0);
    let mut payload = Vec::new();
    for (off, data, _) in &pieces {
        assert_eq!(*off, payload.len());
        payload.extend_from_slice(data);
    }
    assert!(!pieces.last().unwrap().2, "last fragment has MF clear");
    assert!(pieces[..2].iter().all(|p| p.2));
    assert_eq!(
        payload,
        sent[34..].to_vec(),
        "fragments reassemble to the original"
    );
    l.assert_no_leak();
}

#[test]
fn arp_request_for_gateway_gets_reply() {
    let mut l = lab();
    l.send(
        0,
        frames::arp_request(HOST_A, v4("10.0.0.2"), v4("10.0.0.1")),
    );
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &HOST_A.0);
    let r = ArpRepr::parse(&ArpPacket::new_checked(&out[0][14..]).unwrap()).unwrap();
    assert_eq!(r.operation, ArpOperation::Reply);
    assert_eq!((r.sender_mac, r.sender_ip), (GW0, v4("10.0.0.1")));
    assert_eq!((r.target_mac, r.target_ip), (HOST_A, v4("10.0.0.2")));
    // A request for someone else is not answered.
    l.send(
        0,
        frames::arp_request(HOST_A, v4("10.0.0.2"), v4("10.0.0.77")),
    );
    assert!(l.out(0).is_empty());
    assert_eq!(l.drops("arp-input/not-for-us"), 1);
}

#[test]
fn next_hop_resolution_holds_packets_then_releases_them() {
    let mut l = lab();
    l.dp.control
        .add_route(0, net("203.0.113.0/24"), via("10.2.0.3"))
        .unwrap();
    l.dp.control.commit();
    // The new next hop is asked for at once.
    l.dp.poll();
    let req = l.out(2);
    assert_eq!(req.len(), 1, "ARP request on p2");
    let r = ArpRepr::parse(&ArpPacket::new_checked(&req[0][14..]).unwrap()).unwrap();
    assert_eq!(r.operation, ArpOperation::Request);
    assert_eq!((r.sender_ip, r.target_ip), (v4("10.2.0.1"), v4("10.2.0.3")));
    assert_eq!(&req[0][0..6], &MacAddr::BROADCAST.0);
    // Packets wait.
    l.send(0, host_udp("203.0.113.1", 64, 10));
    l.send(0, host_udp("203.0.113.2", 64, 10));
    assert!(l.out(2).is_empty());
    assert_eq!(l.drops("ip4-output/neigh-held-for-resolution"), 2);
    // The neighbour answers: the held packets leave with its MAC.
    let c_mac = MacAddr([0x02, 0, 0, 0, 0xcc, 0x03]);
    l.send(
        2,
        frames::arp(
            ArpOperation::Reply,
            GW2,
            c_mac,
            v4("10.2.0.3"),
            GW2,
            v4("10.2.0.1"),
        ),
    );
    l.dp.poll();
    let out = l.out(2);
    assert_eq!(out.len(), 2);
    for f in &out {
        assert_eq!(&f[0..6], &c_mac.0);
        assert_eq!(Ipv4Packet::new_checked(&f[14..]).unwrap().ttl(), 63);
    }
    // Later packets go straight through.
    l.send(0, host_udp("203.0.113.3", 64, 10));
    assert_eq!(l.out(2).len(), 1);
    assert_eq!(l.dp.control.stats.released, 2);
    l.assert_no_leak();
}

#[test]
fn attached_hosts_are_resolved_and_get_host_routes() {
    let mut l = lab();
    l.send(0, host_udp("10.1.0.50", 64, 10));
    let req = l.out(1);
    assert_eq!(req.len(), 1);
    let r = ArpRepr::parse(&ArpPacket::new_checked(&req[0][14..]).unwrap()).unwrap();
    assert_eq!(r.target_ip, v4("10.1.0.50"));
    let m = MacAddr([0x02, 0, 0, 0, 0x50, 0x50]);
    l.send(
        1,
        frames::arp(
            ArpOperation::Reply,
            GW1,
            m,
            v4("10.1.0.50"),
            GW1,
            v4("10.1.0.1"),
        ),
    );
    l.dp.poll();
    let out = l.out(1);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &m.0);
    let cfg = l.dp.control.config();
    let nh = cfg.lookup4(0, u32::from(v4("10.1.0.50"))).unwrap();
    assert!(
        matches!(cfg.nexthop(nh), Some(weir_dataplane::NextHop::Neighbour { mac: Some(x), .. }) if *x == m)
    );
}

#[test]
fn unanswered_resolution_fails_and_drops_held_packets() {
    let mut l = lab();
    l.dp.control.settings.retry_interval = Duration::from_millis(1);
    l.send(0, host_udp("10.2.0.99", 64, 10));
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(2));
        l.dp.poll();
    }
    let reqs = l.out(2);
    assert_eq!(reqs.len(), 3, "three requests, then give up");
    let n = l.dp.control.neighbours();
    let e = n
        .iter()
        .find(|x| x.1 == IpAddr::V4(v4("10.2.0.99")))
        .unwrap();
    assert_eq!(e.2.state, weir_dataplane::control::NeighState::Failed);
    assert_eq!(l.dp.control.stats.held_dropped, 1);
    l.assert_no_leak();
}

#[test]
fn neighbours_age_and_are_reprobed() {
    let mut l = lab();
    l.dp.control.settings.reachable_time = Duration::from_millis(1);
    l.dp.control.settings.retry_interval = Duration::from_millis(1);
    l.send(0, host_udp("10.1.0.60", 64, 10));
    l.out(1);
    let m = MacAddr([0x02, 0, 0, 0, 0x60, 0x60]);
    l.send(
        1,
        frames::arp(
            ArpOperation::Reply,
            GW1,
            m,
            v4("10.1.0.60"),
            GW1,
            v4("10.1.0.1"),
        ),
    );
    l.dp.poll();
    l.out(1);
    // Past the reachable time: a unicast probe; no answer: forgotten.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(2));
        l.dp.control.poll(Instant::now());
        l.dp.poll();
    }
    let probes = l.out(1);
    assert!(!probes.is_empty());
    assert!(probes.iter().all(|f| f[0..6] == m.0), "probes are unicast");
    assert!(!l
        .dp
        .control
        .neighbours()
        .iter()
        .any(|x| x.1 == IpAddr::V4(v4("10.1.0.60"))));
    assert!(
        l.dp.control
            .config()
            .lookup4(0, u32::from(v4("10.1.0.60")))
            .is_some_and(|nh| {
                matches!(
                    l.dp.control.config().nexthop(nh),
                    Some(weir_dataplane::NextHop::Attached { .. })
                )
            }),
        "host route removed, subnet route remains"
    );
}

#[test]
fn ping_to_gateway_address_is_answered() {
    let mut l = lab();
    let ip = V4::new(v4("10.0.0.2"), v4("10.0.0.1"));
    l.send(0, frames::ping4(GW0, HOST_A, &ip, 7, 1));
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    let p = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!(
        (p.src_addr(), p.dst_addr()),
        (v4("10.0.0.1"), v4("10.0.0.2"))
    );
    assert!(p.verify_checksum());
    let icmp = Icmpv4Packet::new_checked(p.payload()).unwrap();
    assert_eq!(icmp.msg_type(), 0);
    assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (7, 1));
    assert!(icmp.verify_checksum());
    // The address of another port answers too (routed back through p0).
    let ip = V4::new(v4("10.0.0.2"), v4("10.2.0.1"));
    l.send(0, frames::ping4(GW0, HOST_A, &ip, 7, 2));
    assert_eq!(l.out(0).len(), 1);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut l = lab();
    l.dp.control
        .set_icmp_limit(weir_dataplane::modules::icmp::IcmpLimit {
            per_second: 1,
            burst: 3,
        });
    l.dp.control.commit();
    for _ in 0..10 {
        l.send(0, host_udp("203.0.113.9", 64, 10));
    }
    assert_eq!(l.out(0).len(), 3);
    assert_eq!(l.drops("icmp4-error/rate-limited"), 7);
}

#[test]
fn no_error_about_an_error() {
    let mut l = lab();
    // An ICMP time-exceeded with TTL 1 must not trigger another error.
    let mut ip = V4::new(v4("10.0.0.2"), v4("192.0.2.5"));
    ip.ttl = 1;
    let inner = frames::udp4(GW0, HOST_A, &ip, 1, 2, 8);
    let repr = weir_packet::Icmpv4Repr::TimeExceeded {
        code: 0,
        data: inner[14..].to_vec(),
    };
    let ipr = weir_packet::Ipv4Repr {
        src: v4("10.0.0.2"),
        dst: v4("192.0.2.5"),
        protocol: weir_packet::IpProtocol::ICMP,
        ttl: 1,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: vec![],
        payload_len: repr.buffer_len(),
    };
    let mut f = vec![0u8; 14 + 20 + repr.buffer_len()];
    f[..14].copy_from_slice(&inner[..14]);
    ipr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]));
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut f[34..]));
    l.send(0, f);
    assert!(l.out(0).is_empty());
    assert_eq!(l.drops("icmp4-error/suppressed"), 1);
}

#[test]
fn ecmp_spreads_flows_and_keeps_each_flow_on_one_path() {
    let mut l = lab();
    let target = RouteTarget::Ecmp(vec![
        ("10.1.0.2".parse().unwrap(), None),
        ("10.2.0.2".parse().unwrap(), None),
    ]);
    l.dp.control
        .add_route(0, net("172.16.0.0/12"), target)
        .unwrap();
    l.dp.control.commit();
    let mut per_flow = std::collections::HashMap::new();
    for round in 0..2 {
        for port in 0..64u16 {
            let ip = V4::new(v4("10.0.0.2"), v4("172.16.0.1"));
            l.send(0, frames::udp4(GW0, HOST_A, &ip, 1000 + port, 53, 10));
            let (a, b) = (l.out(1).len(), l.out(2).len());
            assert_eq!(a + b, 1);
            let path = if a == 1 { 1 } else { 2 };
            if round == 0 {
                per_flow.insert(port, path);
            } else {
                assert_eq!(per_flow[&port], path, "a flow keeps its path");
            }
        }
    }
    let on1 = per_flow.values().filter(|p| **p == 1).count();
    assert!(
        (16..=48).contains(&on1),
        "flows spread over both paths: {on1}/64"
    );
}

#[test]
fn route_delete_and_replace_take_effect() {
    let mut l = lab();
    l.dp.control
        .add_route(0, net("192.0.2.0/24"), via("10.2.0.2"))
        .unwrap();
    l.dp.control.commit();
    l.send(0, host_udp("192.0.2.5", 64, 10));
    assert_eq!(l.out(2).len(), 1, "replaced route goes to C");
    l.dp.control.del_route(0, net("192.0.2.0/24")).unwrap();
    l.dp.control.commit();
    l.send(0, host_udp("192.0.2.5", 64, 10));
    assert!(l.out(1).is_empty() && l.out(2).is_empty());
    assert_eq!(l.drops("ip4-lookup/no-route"), 1);
    assert_eq!(
        l.dp.control.del_route(0, net("192.0.2.0/24")),
        Err(weir_dataplane::ControlError::NoRoute {
            vrf: 0,
            prefix: net("192.0.2.0/24")
        })
    );
    assert!(matches!(
        l.dp.control
            .add_route(0, net("192.0.2.0/24"), via("10.9.9.9")),
        Err(weir_dataplane::ControlError::GatewayNotConnected { .. })
    ));
    assert!(matches!(
        l.dp.control
            .add_route(0, net("192.0.2.1/24"), via("10.1.0.2")),
        Err(weir_dataplane::ControlError::HostBits(_))
    ));
}

#[test]
fn vrfs_keep_tables_apart() {
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW0, 1500).unwrap().remove(0);
    let p1 = b.memory_port(1, "p1", GW1, 1500).unwrap().remove(0);
    let c = b.control();
    c.add_vrf(7);
    c.add_port(2, "p2", GW2, 1500, 7).unwrap();
    c.add_address(0, net("10.0.0.1/24")).unwrap();
    c.add_address(1, net("10.1.0.1/24")).unwrap();
    c.add_address(2, net("10.1.0.1/24")).unwrap();
    c.set_static_neighbour(1, IpAddr::V4(v4("10.1.0.2")), ROUTER_B);
    c.set_static_neighbour(0, IpAddr::V4(v4("10.0.0.2")), HOST_A);
    c.add_route(
        7,
        net("0.0.0.0/0"),
        RouteTarget::Via {
            gateway: "10.1.0.2".parse().unwrap(),
            port: Some(2),
        },
    )
    .unwrap();
    let mut dp = b.build();
    // VRF 0 has no default route: no route, even though VRF 7 has one.
    p0.inject(host_udp("8.8.8.8", 64, 10));
    dp.poll();
    assert!(p1.collect().is_empty());
    assert_eq!(dp.stats().drop_count("ip4-lookup/no-route"), 1);
    assert_eq!(
        dp.control.del_vrf(7),
        Err(weir_dataplane::ControlError::VrfInUse(7, 2))
    );
}

// ---- IPv6 ----

fn host_udp6(dst: &str, hop: u8, len: usize) -> Vec<u8> {
    frames::udp6(
        GW0,
        HOST_A,
        &frames::V6 {
            src: v6("2001:db8::2"),
            dst: v6(dst),
            hop_limit: hop,
        },
        1000,
        2000,
        len,
    )
}

#[test]
fn ipv6_forward_decrements_hop_limit() {
    let mut l = lab();
    let sent = host_udp6("2001:db8:100::5", 64, 100);
    l.send(0, sent.clone());
    let out = l.out(1);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(&f[0..6], &ROUTER_B.0);
    assert_eq!(&f[6..12], &GW1.0);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    match p.net {
        Some(NetSlice::Ipv6(ip)) => assert_eq!(ip.header().hop_limit(), 63),
        other => panic!("not IPv6: {other:?}"),
    }
    assert_eq!(&f[14 + 8..], &sent[14 + 8..]);
    l.assert_no_leak();
}

#[test]
fn ipv6_hop_limit_expiry_and_no_route_and_too_big() {
    let mut l = lab();
    l.send(0, host_udp6("2001:db8:100::5", 1, 10));
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    let (src, dst, ty, code, _) = icmp6_of(&out[0]);
    assert_eq!(
        (src, dst, ty, code),
        (v6("2001:db8::1"), v6("2001:db8::2"), 3, 0)
    );

    l.send(0, host_udp6("2001:db8:999::5", 64, 10));
    let (_, _, ty, code, _) = icmp6_of(&l.out(0)[0]);
    assert_eq!((ty, code), (1, 0));

    l.dp.control.set_port_mtu(1, 1280).unwrap();
    l.dp.control.commit();
    l.send(0, host_udp6("2001:db8:100::5", 64, 1300));
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    assert!(out[0].len() - 14 <= 1280);
    let (_, _, ty, _, body) = icmp6_of(&out[0]);
    assert_eq!(ty, 2);
    assert_eq!(
        u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
        1280
    );
    assert_eq!(l.drops("ip6-output/packet-too-big"), 1);
    l.assert_no_leak();
}

#[test]
fn ipv6_neighbour_solicitation_for_gateway_gets_advert() {
    let mut l = lab();
    l.send(
        0,
        frames::neighbor_solicit(HOST_A, v6("2001:db8::2"), v6("2001:db8::1")),
    );
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &HOST_A.0);
    let (src, dst, ty, _, body) = icmp6_of(&out[0]);
    assert_eq!((src, dst, ty), (v6("2001:db8::1"), v6("2001:db8::2"), 136));
    let icmp = Icmpv6Packet::new_checked(&body[..]).unwrap();
    match weir_packet::Icmpv6Repr::parse(&icmp).unwrap() {
        weir_packet::Icmpv6Repr::Ndp(weir_packet::NdpRepr::NeighborAdvert {
            solicited,
            target,
            options,
            ..
        }) => {
            assert!(solicited);
            assert_eq!(target, v6("2001:db8::1"));
            assert!(options.contains(&weir_packet::NdpOption::TargetLinkLayerAddr(GW0)));
        }
        other => panic!("not an NA: {other:?}"),
    }
}

#[test]
fn ipv6_next_hop_resolution_by_neighbour_discovery() {
    let mut l = lab();
    l.send(0, host_udp6("2001:db8:1::77", 64, 10));
    let req = l.out(1);
    assert_eq!(req.len(), 1, "NS sent");
    let (src, dst, ty, _, _) = icmp6_of(&req[0]);
    assert_eq!((src, ty), (v6("2001:db8:1::1"), 135));
    assert_eq!(dst, weir_packet::ipv6::solicited_node(v6("2001:db8:1::77")));
    let m = MacAddr([0x02, 0, 0, 0, 0x77, 0x77]);
    l.send(
        1,
        frames::neighbor_advert(GW1, m, v6("2001:db8:1::77"), v6("2001:db8:1::1")),
    );
    l.dp.poll();
    let out = l.out(1);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &m.0);
}

#[test]
fn ipv6_ping_to_gateway_and_link_local() {
    let mut l = lab();
    l.send(
        0,
        frames::ping6(GW0, HOST_A, v6("2001:db8::2"), v6("2001:db8::1"), 9, 1),
    );
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    let (src, dst, ty, _, _) = icmp6_of(&out[0]);
    assert_eq!((src, dst, ty), (v6("2001:db8::1"), v6("2001:db8::2"), 129));
    // Link-local: the host must resolve it, answer and be answered.
    let ll = weir_packet::ipv6::link_local_from_mac(GW0);
    let host_ll = v6("fe80::aa:1");
    l.send(0, frames::neighbor_solicit(HOST_A, host_ll, ll));
    assert_eq!(l.out(0).len(), 1, "NA for link-local");
    l.send(0, frames::ping6(GW0, HOST_A, host_ll, ll, 9, 2));
    l.dp.poll();
    let out = l.out(0);
    assert_eq!(out.len(), 1, "echo reply to link-local source");
    let (src, dst, ty, _, _) = icmp6_of(&out[0]);
    assert_eq!((src, dst, ty), (ll, host_ll, 129));
}

#[test]
fn ipv6_martians_and_link_local_are_not_forwarded() {
    let mut l = lab();
    l.send(
        0,
        frames::udp6(
            GW0,
            HOST_A,
            &frames::V6 {
                src: v6("::1"),
                dst: v6("2001:db8:100::1"),
                hop_limit: 64,
            },
            1,
            2,
            8,
        ),
    );
    l.send(
        0,
        frames::udp6(
            GW0,
            HOST_A,
            &frames::V6 {
                src: v6("2001:db8::2"),
                dst: v6("fe80::99"),
                hop_limit: 64,
            },
            1,
            2,
            8,
        ),
    );
    l.send(
        0,
        frames::udp6(
            GW0,
            HOST_A,
            &frames::V6 {
                src: v6("fe80::2"),
                dst: v6("2001:db8:100::1"),
                hop_limit: 64,
            },
            1,
            2,
            8,
        ),
    );
    l.send(
        0,
        frames::udp6(
            GW0,
            HOST_A,
            &frames::V6 {
                src: v6("2001:db8::2"),
                dst: v6("ff0e::1"),
                hop_limit: 64,
            },
            1,
            2,
            8,
        ),
    );
    assert!(l.out(1).is_empty() && l.out(0).is_empty());
    assert_eq!(l.drops("ip6-input/martian-source"), 1);
    assert_eq!(l.drops("ip6-lookup/link-local-not-forwarded"), 1);
    assert_eq!(l.drops("ip6-output/link-local-not-forwarded"), 1);
    assert_eq!(l.drops("ip6-input/multicast-not-forwarded"), 1);
    l.assert_no_leak();
}

#[test]
fn trace_shows_the_path_through_the_nodes() {
    let mut l = lab();
    l.dp.workers[0].graph.trace_start();
    l.send(0, host_udp("192.0.2.5", 64, 10));
    let steps = l.dp.workers[0].graph.trace_take();
    let path: Vec<_> = steps.iter().map(|s| (s.node, s.next)).collect();
    assert_eq!(
        path,
        vec![
            ("eth-input", "ip4-input"),
            ("ip4-input", "nat44-in"),
            ("nat44-in", "ip4-lookup"),
            ("ip4-lookup", "nat44-out"),
            ("nat44-out", "ip4-output"),
            ("ip4-output", "port-tx"),
        ]
    );
    // Each step shows what the node saw: addresses, next hop, port.
    assert!(steps[0].fields.contains("rx-port 0"), "{steps:?}");
    assert!(
        steps[1].fields.contains("10.0.0.2 > 192.0.2.5"),
        "{steps:?}"
    );
    assert!(steps[3].fields.contains("nexthop"), "{steps:?}");
    assert!(steps[5].fields.contains("tx-port 1"), "{steps:?}");
}

// ---- kernel mirror ----

#[test]
fn local_traffic_goes_to_the_kernel_mirror_and_back() {
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW0, 1500).unwrap().remove(0);
    let tap = b.memory_mirror(5, 0, "cp-p0").unwrap().remove(0);
    let c = b.control();
    c.add_address(0, net("10.0.0.1/24")).unwrap();
    c.add_address(0, net("2001:db8::1/64")).unwrap();
    c.set_static_neighbour(0, IpAddr::V4(v4("10.0.0.2")), HOST_A);
    let mut dp = b.build();
    // UDP (e.g. BFD) and TCP (e.g. BGP) to the gateway: to the kernel, unchanged.
    let udp = frames::udp4(
        GW0,
        HOST_A,
        &V4::new(v4("10.0.0.2"), v4("10.0.0.1")),
        49152,
        3784,
        24,
    );
    p0.inject(udp.clone());
    dp.poll();
    assert_eq!(tap.collect(), vec![udp]);
    let udp6 = frames::udp6(
        GW0,
        HOST_A,
        &frames::V6::new(v6("2001:db8::2"), v6("2001:db8::1")),
        1,
        179,
        8,
    );
    p0.inject(udp6.clone());
    dp.poll();
    assert_eq!(tap.collect(), vec![udp6]);
    // Ping is still answered by the dataplane, not the kernel.
    p0.inject(frames::ping4(
        GW0,
        HOST_A,
        &V4::new(v4("10.0.0.2"), v4("10.0.0.1")),
        1,
        1,
    ));
    dp.poll();
    assert!(tap.collect().is_empty());
    assert_eq!(p0.collect().len(), 1);
    // An ARP reply to us is learned and handed to the kernel too.
    let reply = frames::arp(
        ArpOperation::Reply,
        GW0,
        HOST_A,
        v4("10.0.0.2"),
        GW0,
        v4("10.0.0.1"),
    );
    p0.inject(reply.clone());
    dp.poll();
    assert_eq!(tap.collect(), vec![reply]);
    // What the kernel sends leaves through p0 as it is.
    let from_kernel = frames::udp4(
        HOST_A,
        GW0,
        &V4::new(v4("10.0.0.1"), v4("10.0.0.2")),
        179,
        40000,
        30,
    );
    tap.inject(from_kernel.clone());
    dp.poll();
    assert_eq!(p0.collect(), vec![from_kernel]);
}

#[test]
fn local_traffic_without_mirror_is_counted_and_dropped() {
    let mut l = lab();
    l.send(
        0,
        frames::udp4(
            GW0,
            HOST_A,
            &V4::new(v4("10.0.0.2"), v4("10.0.0.1")),
            1,
            22,
            8,
        ),
    );
    assert!(l.out(0).is_empty());
    assert_eq!(l.drops("punt-kernel/no-kernel-mirror"), 1);
}

#[test]
fn table_next_hops_leak_prefixes_between_vrfs() {
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW0, 1500).unwrap().remove(0);
    let c = b.control();
    c.add_vrf(7);
    let p2 = {
        let (q, h) = weir_dataplane::MemoryQueue::pair();
        c.add_port(2, "p2", GW2, 1500, 7).unwrap();
        (q, h)
    };
    let (q2, h2) = p2;
    c.add_address(0, net("10.0.0.1/24")).unwrap();
    c.add_address(2, net("10.7.0.1/24")).unwrap();
    c.set_static_neighbour(2, IpAddr::V4(v4("10.7.0.5")), ROUTER_C);
    c.add_route(0, net("10.7.0.0/24"), RouteTarget::Table(7))
        .unwrap();
    let mut dp = b.build();
    dp.workers[0].add_queue(weir_dataplane::worker::Queue {
        port: 2,
        driver: Box::new(q2),
    });
    p0.inject(host_udp("10.7.0.5", 64, 10));
    dp.poll();
    let out = h2.collect();
    assert_eq!(out.len(), 1, "leaked prefix forwarded into VRF 7's port");
    assert_eq!(&out[0][0..6], &ROUTER_C.0);
    // Not exposed: no route.
    p0.inject(host_udp("10.8.0.5", 64, 10));
    dp.poll();
    assert!(h2.collect().is_empty());
    assert_eq!(dp.stats().drop_count("ip4-lookup/no-route"), 1);
}

#[test]
fn an_mtu_whose_frames_do_not_fit_a_buffer_is_refused() {
    use weir_dataplane::buffer::MAX_MTU;
    let mut l = lab();
    let err = l.dp.control.set_port_mtu(1, MAX_MTU + 1).unwrap_err();
    assert!(err.to_string().contains("packet buffer"), "{err}");
    assert!(l.dp.control.set_port_mtu(1, 9000).is_err());
    assert!(l.dp.control.set_port_mtu(1, 67).is_err());
    l.dp.control.set_port_mtu(1, MAX_MTU).unwrap();
    let mut b = Builder::new(1);
    assert!(b.memory_port(0, "p0", GW0, MAX_MTU + 1).is_err());
}
