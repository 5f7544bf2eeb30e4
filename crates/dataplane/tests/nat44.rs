//! NAT44 on the memory driver: p0 is the inside (host A 10.0.0.2), p1 the
//! outside (router B 10.1.0.2, 192.0.2.0/24 behind it). Crafted frames
//! go in; the frames that come out, the sessions and the counters are
//! checked.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use weir_dataplane::frames::{self, V4};
use weir_dataplane::modules::nat44::{Action, Filtering, Ports, Prefix4, Rule, Timeouts};
use weir_dataplane::Nat44;
use weir_packet::MacAddr;

mod common;
use common::*;

const POOL: &str = "203.0.113.10";

fn a(s: &str) -> u32 {
    u32::from(v4(s))
}

fn p(s: &str) -> Prefix4 {
    let n: ipnet::Ipv4Net = s.parse().unwrap();
    Prefix4::new(u32::from(n.network()), n.prefix_len())
}

fn snat(filtering: Filtering) -> Rule {
    Rule {
        name: String::new(),
        vrf: 0,
        port: Some(1),
        src: vec![p("10.0.0.0/24")],
        dst: vec![],
        proto: None,
        dports: None,
        action: Action::Snat {
            pool: vec![a(POOL)],
            ports: None,
            filtering,
            paired: true,
        },
        timeouts: Timeouts::default(),
        max_sessions: 0,
        max_per_source: 0,
    }
}

fn nat_lab(rules: &[(&str, Rule)]) -> Lab {
    let mut l = lab();
    l.dp.control
        .set_static_neighbour(0, IpAddr::V4(v4("10.0.0.3")), HOST_A);
    l.dp.control.commit();
    Nat44::set_capacity(&mut l.dp.control, 4096);
    for (name, r) in rules {
        Nat44::set_rule(&mut l.dp.control, name, r.clone()).unwrap();
    }
    l.dp.poll();
    l
}

/// UDP from `src`:`sport` to `dst`:`dport`, into the gateway's port whose
/// MAC is `gw`.
fn udp(gw: MacAddr, src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    frames::udp4(gw, HOST_A, &V4::new(v4(src), v4(dst)), sport, dport, 16)
}

fn tcp(gw: MacAddr, src: &str, sport: u16, dst: &str, dport: u16, syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_A.0, gw.0)
        .ipv4(v4(src).octets(), v4(dst).octets(), 64)
        .tcp(sport, dport, 1000, 65535);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut f = Vec::new();
    b.write(&mut f, b"hello").unwrap();
    f
}

/// (src, sport, dst, dport) of a frame, with its checksums verified.
fn flow(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let s = SlicedPacket::from_ethernet(f).expect("parses");
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    let h = ip.header();
    let mut hdr = h.to_header();
    let c = hdr.header_checksum;
    hdr.header_checksum = hdr.calc_header_checksum();
    assert_eq!(c, hdr.header_checksum, "IPv4 header checksum");
    let (sp, dp) = match &s.transport {
        Some(TransportSlice::Udp(u)) => {
            if u.checksum() != 0 {
                let want = u.to_header().calc_checksum_ipv4(&hdr, u.payload()).unwrap();
                assert_eq!(u.checksum(), want, "UDP checksum");
            }
            (u.source_port(), u.destination_port())
        }
        Some(TransportSlice::Tcp(t)) => {
            let want = t.to_header().calc_checksum_ipv4(&hdr, t.payload()).unwrap();
            assert_eq!(t.checksum(), want, "TCP checksum");
            (t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let id = u16::from_be_bytes([i.bytes5to8()[0], i.bytes5to8()[1]]);
            (id, id)
        }
        _ => (0, 0),
    };
    (h.source_addr(), sp, h.destination_addr(), dp)
}

#[test]
fn source_nat_out_and_back_with_valid_checksums() {
    let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent))]);
    l.send(0, udp(GW0, "10.0.0.2", 5000, "192.0.2.5", 2000));
    let out = l.out(1);
    assert_eq!(out.len(), 1);
    let (s, sp, d, dp) = flow(&out[0]);
    assert_eq!(s, v4(POOL), "source is the pool address");
    assert!(
        (1024..=65535).contains(&sp),
        "port {sp} from the upper range"
    );
    assert_eq!(sp % 2, 0, "parity of 5000 kept");
    assert_eq!((d, dp), (v4("192.0.2.5"), 2000));
    // The reply comes back to host A's own address and port.
    l.send(1, udp(GW1, "192.0.2.5", 2000, POOL, sp));
    let back = l.out(0);
    assert_eq!(back.len(), 1);
    assert_eq!(
        flow(&back[0]),
        (v4("192.0.2.5"), 2000, v4("10.0.0.2"), 5000)
    );
    let sessions = Nat44::sessions(&mut l.dp.control);
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].orig.src, a("10.0.0.2"));
    assert_eq!(sessions[0].xlat.sport, sp);
    l.assert_no_leak();
}

#[test]
fn low_ports_stay_low_and_mapping_is_endpoint_independent() {
    let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent))]);
    l.send(0, udp(GW0, "10.0.0.2", 123, "192.0.2.5", 123));
    l.send(0, udp(GW0, "10.0.0.2", 123, "192.0.2.9", 123));
    let out = l.out(1);
    assert_eq!(out.len(), 2);
    let (p1, p2) = (flow(&out[0]).1, flow(&out[1]).1);
    assert!((1..1024).contains(&p1), "port {p1} below 1024");
    assert_eq!(p1 % 2, 1, "odd stays odd");
    assert_eq!(p1, p2, "one mapping for every destination (RFC 4787 REQ-1)");
}

#[test]
fn address_dependent_filtering_lets_in_only_contacted_addresses() {
    let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent))]);
    l.send(0, udp(GW0, "10.0.0.2", 5000, "192.0.2.5", 53));
    let sp = flow(&l.out(1)[0]).1;
    // Another port of the same host: allowed.
    l.send(1, udp(GW1, "192.0.2.5", 54, POOL, sp));
    assert_eq!(l.out(0).len(), 1, "same address, other port");
    // A host never contacted: not let in.
    l.send(1, udp(GW1, "192.0.2.77", 53, POOL, sp));
    assert!(l.out(0).is_empty(), "unsolicited sender filtered");
}

#[test]
fn endpoint_independent_filtering_lets_anyone_in() {
    let mut l = nat_lab(&[("out", snat(Filtering::EndpointIndependent))]);
    l.send(0, udp(GW0, "10.0.0.2", 5000, "192.0.2.5", 53));
    let sp = flow(&l.out(1)[0]).1;
    l.send(1, udp(GW1, "192.0.2.77", 999, POOL, sp));
    let back = l.out(0);
    assert_eq!(back.len(), 1);
    assert_eq!(
        flow(&back[0]),
        (v4("192.0.2.77"), 999, v4("10.0.0.2"), 5000)
    );
}

#[test]
fn ping_identifier_is_translated_both_ways() {
    let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent))]);
    let ip = V4::new(v4("10.0.0.2"), v4("192.0.2.5"));
    l.send(0, frames::ping4(GW0, HOST_A, &ip, 0x4242, 1));
    let out = l.out(1);
    let (s, id, _, _) = flow(&out[0]);
    assert_eq!(s, v4(POOL));
    // The echo reply.
    let mut reply = out[0].clone();
    let e = &mut reply[..];
    e[0..6].copy_from_slice(&GW1.0);
    // Swap addresses, make it a reply, fix checksums.
    let ipb = &mut e[14..];
    let (src, dst) = (
        [ipb[12], ipb[13], ipb[14], ipb[15]],
        [ipb[16], ipb[17], ipb[18], ipb[19]],
    );
    ipb[12..16].copy_from_slice(&dst);
    ipb[16..20].copy_from_slice(&src);
    ipb[20] = 0;
    let icmp_len = ipb.len() - 20;
    ipb[22] = 0;
    ipb[23] = 0;
    let c =
        !weir_packet::checksum::fold(weir_packet::checksum::sum(&ipb[20..20 + icmp_len]) as u64);
    ipb[22..24].copy_from_slice(&c.to_be_bytes());
    l.send(1, reply);
    let back = l.out(0);
    assert_eq!(back.len(), 1);
    assert_eq!(
        flow(&back[0]),
        (v4("192.0.2.5"), 0x4242, v4("10.0.0.2"), 0x4242)
    );
    let _ = id;
}

/// An ICMP port unreachable from the outside host about `quoted`.
fn port_unreachable(from: &str, to: &str, quoted: &[u8]) -> Vec<u8> {
    let q = &quoted[14..14 + 28];
    let b = PacketBuilder::ethernet2(ROUTER_B.0, GW1.0)
        .ipv4(v4(from).octets(), v4(to).octets(), 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ));
    let mut f = Vec::new();
    b.write(&mut f, q).unwrap();
    f
}

#[test]
fn icmp_errors_about_sessions_are_translated_and_forged_ones_dropped() {
    let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent))]);
    l.send(0, udp(GW0, "10.0.0.2", 1000, "192.0.2.5", 2000));
    let sent = l.out(1).remove(0);
    l.send(1, port_unreachable("192.0.2.5", POOL, &sent));
    let back = l.out(0);
    assert_eq!(back.len(), 1, "the error reaches host A");
    let (src, dst, ty, code, quoted) = icmp4_of(&back[0]);
    assert_eq!(
        (src, dst, ty, code),
        (v4("192.0.2.5"), v4("10.0.0.2"), 3, 3)
    );
    let quoted = &quoted[8..];
    assert_eq!(
        &quoted[12..16],
        &v4("10.0.0.2").octets(),
        "embedded source is A's"
    );
    assert_eq!(u16::from_be_bytes([quoted[20], quoted[21]]), 1000);
    // A forged error: the embedded packet matches no session.
    let mut forged = sent.clone();
    forged[14 + 20] ^= 0x55; // another source port
    l.send(1, port_unreachable("192.0.2.5", POOL, &forged));
    assert!(l.out(0).is_empty(), "forged error never reaches inside");
    assert_eq!(l.drops("nat44-in/icmp-error-no-session"), 1);
}

#[test]
fn port_forward_reaches_the_inside_server_and_replies_go_back() {
    let fwd = Rule {
        name: String::new(),
        vrf: 0,
        port: Some(1),
        src: vec![],
        dst: vec![p("203.0.113.20/32")],
        proto: Some(6),
        dports: Some(Ports {
            first: 8080,
            last: 8080,
        }),
        action: Action::Dnat {
            to: a("10.0.0.2"),
            ports: Some(Ports {
                first: 80,
                last: 80,
            }),
        },
        timeouts: Timeouts::default(),
        max_sessions: 0,
        max_per_source: 0,
    };
    let mut l = nat_lab(&[("fwd", fwd)]);
    l.send(1, tcp(GW1, "192.0.2.5", 5555, "203.0.113.20", 8080, true));
    let inside = l.out(0);
    assert_eq!(inside.len(), 1);
    assert_eq!(
        flow(&inside[0]),
        (v4("192.0.2.5"), 5555, v4("10.0.0.2"), 80)
    );
    l.send(0, tcp(GW0, "10.0.0.2", 80, "192.0.2.5", 5555, true));
    let out = l.out(1);
    assert_eq!(out.len(), 1);
    assert_eq!(
        flow(&out[0]),
        (v4("203.0.113.20"), 8080, v4("192.0.2.5"), 5555)
    );
    // Other ports are not forwarded.
    l.send(1, tcp(GW1, "192.0.2.5", 5555, "203.0.113.20", 22, true));
    assert!(l.out(0).is_empty());
}

#[test]
fn one_to_one_both_ways() {
    let r = Rule {
        name: String::new(),
        vrf: 0,
        port: Some(1),
        src: vec![],
        dst: vec![],
        proto: None,
        dports: None,
        action: Action::OneToOne {
            inside: p("10.0.0.0/30"),
            outside: p("203.0.113.32/30"),
        },
        timeouts: Timeouts::default(),
        max_sessions: 0,
        max_per_source: 0,
    };
    let mut l = nat_lab(&[("static", r)]);
    l.send(0, udp(GW0, "10.0.0.2", 7, "192.0.2.5", 7));
    assert_eq!(
        flow(&l.out(1)[0]),
        (v4("203.0.113.34"), 7, v4("192.0.2.5"), 7)
    );
    l.send(1, udp(GW1, "192.0.2.5", 9, "203.0.113.34", 9));
    assert_eq!(flow(&l.out(0)[0]), (v4("192.0.2.5"), 9, v4("10.0.0.2"), 9));
    assert!(
        Nat44::sessions(&mut l.dp.control).is_empty(),
        "1:1 keeps no sessions"
    );
}

#[test]
fn per_source_cap_holds_and_spares_other_hosts() {
    let mut r = snat(Filtering::AddressDependent);
    r.max_per_source = 2;
    let mut l = nat_lab(&[("out", r)]);
    for port in [1001, 1002, 1003] {
        l.send(0, udp(GW0, "10.0.0.2", port, "192.0.2.5", 53));
    }
    assert_eq!(l.out(1).len(), 2, "the third flow is refused");
    assert_eq!(l.drops("nat44-out/source-cap"), 1);
    l.send(0, udp(GW0, "10.0.0.3", 1001, "192.0.2.5", 53));
    assert_eq!(l.out(1).len(), 1, "another host is not affected");
    assert_eq!(Nat44::sessions(&mut l.dp.control).len(), 3);
}

#[test]
fn hairpin_through_a_port_forward() {
    let fwd = Rule {
        name: String::new(),
        vrf: 0,
        port: None,
        src: vec![],
        dst: vec![p("203.0.113.10/32")],
        proto: Some(17),
        dports: Some(Ports {
            first: 53,
            last: 53,
        }),
        action: Action::Dnat {
            to: a("10.0.0.3"),
            ports: None,
        },
        timeouts: Timeouts::default(),
        max_sessions: 0,
        max_per_source: 0,
    };
    let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent)), ("dns", fwd)]);
    // A asks the public address; the server (10.0.0.3) gets it from A's
    // outside address, and its answer goes back to A through the gateway.
    l.send(0, udp(GW0, "10.0.0.2", 4000, POOL, 53));
    let to_server = l.out(0);
    assert_eq!(to_server.len(), 1);
    let (s, sp, d, dp) = flow(&to_server[0]);
    assert_eq!((s, d, dp), (v4(POOL), v4("10.0.0.3"), 53));
    l.send(0, udp(GW0, "10.0.0.3", 53, POOL, sp));
    let to_a = l.out(0);
    assert_eq!(to_a.len(), 1);
    assert_eq!(flow(&to_a[0]), (v4(POOL), 53, v4("10.0.0.2"), 4000));
}

#[test]
fn sessions_expire_when_their_timer_runs_out() {
    let mut r = snat(Filtering::AddressDependent);
    r.timeouts.udp = 1;
    let mut l = nat_lab(&[("out", r)]);
    l.send(0, udp(GW0, "10.0.0.2", 1000, "192.0.2.5", 2000));
    assert_eq!(Nat44::sessions(&mut l.dp.control).len(), 1);
    let start = Instant::now();
    while !Nat44::sessions(&mut l.dp.control).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "session never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "expired early"
    );
}

#[test]
fn a_rule_change_ends_only_that_rules_sessions() {
    let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent))]);
    l.send(0, udp(GW0, "10.0.0.2", 1000, "192.0.2.5", 2000));
    assert_eq!(Nat44::sessions(&mut l.dp.control).len(), 1);
    // Timers only: the session stays.
    let mut r = snat(Filtering::AddressDependent);
    r.timeouts.udp = 600;
    assert_eq!(
        Nat44::set_rule(&mut l.dp.control, "out", r.clone()).unwrap(),
        0
    );
    assert_eq!(Nat44::sessions(&mut l.dp.control).len(), 1);
    // Another pool: the session ends.
    if let Action::Snat { pool, .. } = &mut r.action {
        *pool = vec![a("203.0.113.11")];
    }
    assert_eq!(Nat44::set_rule(&mut l.dp.control, "out", r).unwrap(), 1);
    assert!(Nat44::sessions(&mut l.dp.control).is_empty());
}

#[test]
fn traffic_without_nat_rules_is_untouched() {
    let mut l = nat_lab(&[]);
    l.send(0, udp(GW0, "10.0.0.2", 1000, "192.0.2.5", 2000));
    assert_eq!(
        flow(&l.out(1)[0]),
        (v4("10.0.0.2"), 1000, v4("192.0.2.5"), 2000)
    );
}

/// The frame a peer sends back for `f`: addresses and ports swapped,
/// into the gateway's port whose MAC is `gw`; for ICMP an echo reply.
fn reply_to(f: &[u8], gw: MacAddr) -> Vec<u8> {
    let (s, sp, d, dp) = flow(f);
    let proto = f[14 + 9];
    match proto {
        6 => {
            let b = PacketBuilder::ethernet2(ROUTER_B.0, gw.0)
                .ipv4(d.octets(), s.octets(), 64)
                .tcp(dp, sp, 1, 65535)
                .ack(1);
            let mut out = Vec::new();
            b.write(&mut out, b"reply").unwrap();
            out
        }
        17 => frames::udp4(gw, ROUTER_B, &V4::new(d, s), dp, sp, 16),
        _ => {
            let b = PacketBuilder::ethernet2(ROUTER_B.0, gw.0)
                .ipv4(d.octets(), s.octets(), 64)
                .icmpv4_echo_reply(sp, 1);
            let mut out = Vec::new();
            b.write(&mut out, b"pong").unwrap();
            out
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any flow out through source NAT leaves with valid checksums and
        /// the pool address, and its reply comes back as the original flow.
        #[test]
        fn out_and_back_is_the_original_flow(
            host in 2u8..250, sport in 1u16..65535, dst in any::<u32>(), dport in 1u16..65535,
            proto in prop::sample::select(vec![6u8, 17, 1]),
        ) {
            let dst = Ipv4Addr::from(0xc000_0200 | (dst & 0xff)); // 192.0.2.0/24, via B
            let src = Ipv4Addr::new(10, 0, 0, host);
            let mut l = nat_lab(&[("out", snat(Filtering::AddressDependent))]);
            l.dp.control.set_static_neighbour(0, IpAddr::V4(src), HOST_A);
            l.dp.control.commit();
            l.dp.poll();
            let f = match proto {
                6 => tcp(GW0, &src.to_string(), sport, &dst.to_string(), dport, true),
                17 => udp(GW0, &src.to_string(), sport, &dst.to_string(), dport),
                _ => frames::ping4(GW0, HOST_A, &V4::new(src, dst), sport, 1),
            };
            let want = flow(&f);
            l.send(0, f);
            let out = l.out(1);
            prop_assert_eq!(out.len(), 1);
            let (s, sp, d, dp) = flow(&out[0]);
            prop_assert_eq!(s, v4(POOL));
            prop_assert_eq!((d, dp), (want.2, if proto == 1 { sp } else { want.3 }));
            if proto != 1 {
                prop_assert_eq!(sp % 2, want.1 % 2, "parity");
                prop_assert_eq!(sp < 1024, want.1 < 1024, "range");
            }
            l.send(1, reply_to(&out[0], GW1));
            let back = l.out(0);
            prop_assert_eq!(back.len(), 1);
            prop_assert_eq!(flow(&back[0]), (want.2, want.3, want.0, want.1));
        }
    }
}
