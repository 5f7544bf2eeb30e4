//! Router requirements (RFC 1812, RFC 4861, RFC 4443, RFC 791) on the memory
//! driver: craft a frame, send it through the graph, assert on what comes
//! out and on the counters.

mod common;

use common::*;
use weir_dataplane::frames::{self, V4};
use weir_packet::MacAddr;

const MCAST4: MacAddr = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x09]);
const MCAST6: MacAddr = MacAddr([0x33, 0x33, 0x00, 0x00, 0x00, 0x09]);

// ---- link-layer broadcast / multicast with a unicast IP destination ----

#[test]
fn ipv4_unicast_in_link_broadcast_is_not_forwarded() {
    let mut l = lab();
    for mac in [MacAddr::BROADCAST, MCAST4] {
        l.send(0, udp4_to(mac, "192.0.2.5", 64));
        l.assert_silent();
    }
    assert_eq!(l.drops("ip4-output/link-broadcast-not-forwarded"), 2);
    // The same packet to the gateway's MAC is forwarded.
    l.send(0, udp4_to(GW0, "192.0.2.5", 64));
    assert_eq!(l.out(1).len(), 1);
    l.assert_no_leak();
}

#[test]
fn ipv4_link_broadcast_draws_no_icmp_error() {
    let mut l = lab();
    // TTL 1 would draw a time exceeded, no route a net unreachable.
    l.send(0, udp4_to(MacAddr::BROADCAST, "192.0.2.5", 1));
    l.send(0, udp4_to(MCAST4, "198.51.100.1", 64));
    l.assert_silent();
    assert_eq!(l.drops("ip4-output/link-broadcast-not-forwarded"), 1);
    assert_eq!(l.drops("icmp4-error/suppressed"), 1);
    // Sent to our MAC, both are answered.
    l.send(0, udp4_to(GW0, "192.0.2.5", 1));
    l.send(0, udp4_to(GW0, "198.51.100.1", 64));
    let out = l.out(0);
    assert_eq!(out.len(), 2);
    assert_eq!(icmp4_of(&out[0]).2, 11);
    assert_eq!(icmp4_of(&out[1]).2, 3);
    l.assert_no_leak();
}

#[test]
fn traffic_to_the_gateway_in_link_broadcast_still_works() {
    let mut l = lab();
    l.send(
        0,
        frames::arp_request(HOST_A, v4("10.0.0.2"), v4("10.0.0.1")),
    );
    let out = l.out(0);
    assert_eq!(out.len(), 1, "ARP reply");
    // An echo request to our own address, sent to the broadcast MAC, is
    // local delivery, not forwarding: answered.
    let ip = V4::new(v4("10.0.0.2"), v4("10.0.0.1"));
    l.send(0, frames::ping4(MacAddr::BROADCAST, HOST_A, &ip, 7, 1));
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    let (src, dst, ty, _, _) = icmp4_of(&out[0]);
    assert_eq!((src, dst, ty), (v4("10.0.0.1"), v4("10.0.0.2"), 0));
    assert_eq!(l.drops("ip4-output/link-broadcast-not-forwarded"), 0);
    l.assert_no_leak();
}

#[test]
fn ipv6_unicast_in_link_multicast_is_not_forwarded() {
    let mut l = lab();
    for mac in [MacAddr::BROADCAST, MCAST6] {
        l.send(0, udp6_to(mac, "2001:db8:100::5", 64));
        // Hop limit 1 and no route: no ICMPv6 error either.
        l.send(0, udp6_to(mac, "2001:db8:100::5", 1));
        l.send(0, udp6_to(mac, "2001:db8:999::5", 64));
        l.assert_silent();
    }
    assert_eq!(l.drops("ip6-output/link-multicast-not-forwarded"), 4);
    assert_eq!(l.drops("icmp6-error/suppressed"), 2);
    l.send(0, udp6_to(GW0, "2001:db8:100::5", 64));
    assert_eq!(l.out(1).len(), 1);
    l.assert_no_leak();
}

#[test]
fn ipv6_neighbour_discovery_and_ping_in_link_multicast_still_work() {
    let mut l = lab();
    // NS to the solicited-node group (multicast MAC): answered.
    l.send(
        0,
        frames::neighbor_solicit(HOST_A, v6("2001:db8::2"), v6("2001:db8::1")),
    );
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    assert_eq!(icmp6_of(&out[0]).2, 136);
    // Echo to our unicast address in a multicast frame: local, answered.
    l.send(
        0,
        frames::ping6(MCAST6, HOST_A, v6("2001:db8::2"), v6("2001:db8::1"), 3, 1),
    );
    let out = l.out(0);
    assert_eq!(out.len(), 1);
    assert_eq!(icmp6_of(&out[0]).2, 129);
    assert_eq!(l.drops("ip6-output/link-multicast-not-forwarded"), 0);
    l.assert_no_leak();
}

// ---- neighbour resolution failure ----

/// Let resolution run out of retries (1 ms apart).
fn fail_resolution(l: &mut Lab) {
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(2));
        l.dp.poll();
    }
}

#[test]
fn failed_resolution_sends_host_unreachable_quoting_the_held_packet() {
    let mut l = lab();
    l.dp.control.settings.retry_interval = std::time::Duration::from_millis(1);
    let sent = udp4_to(GW0, "10.2.0.99", 64);
    l.send(0, sent.clone());
    fail_resolution(&mut l);
    let arps = l.out(2);
    assert_eq!(arps.len(), 3, "three ARP requests");
    let out = l.out(0);
    assert_eq!(out.len(), 1, "one error back to the sender");
    assert_eq!(&out[0][0..6], &HOST_A.0);
    let (src, dst, ty, code, msg) = icmp4_of(&out[0]);
    assert_eq!((src, dst, ty, code), (v4("10.0.0.1"), v4("10.0.0.2"), 3, 1));
    // The quote is the held packet: its header (TTL already 63) and data.
    let quoted = &msg[8..];
    assert_eq!(quoted.len(), sent.len() - 14);
    assert_eq!(quoted[8], 63);
    assert_eq!(&quoted[20..], &sent[34..]);
    assert_eq!(l.dp.control.stats.unreachable_sent, 1);
    assert_eq!(l.dp.control.stats.held_dropped, 1);
    l.assert_no_leak();
}

#[test]
fn failed_resolution_sends_address_unreachable_for_ipv6() {
    let mut l = lab();
    l.dp.control.settings.retry_interval = std::time::Duration::from_millis(1);
    let sent = udp6_to(GW0, "2001:db8:2::99", 64);
    l.send(0, sent.clone());
    l.send(0, udp6_to(GW0, "2001:db8:2::99", 64));
    fail_resolution(&mut l);
    let ns = l.out(2);
    assert_eq!(ns.len(), 3, "three solicitations");
    let out = l.out(0);
    assert_eq!(out.len(), 2, "one error per held packet");
    let (src, dst, ty, code, msg) = icmp6_of(&out[0]);
    assert_eq!(
        (src, dst, ty, code),
        (v6("2001:db8::1"), v6("2001:db8::2"), 1, 3)
    );
    let quoted = &msg[8..];
    assert_eq!(quoted.len(), sent.len() - 14);
    assert_eq!(quoted[7], 63, "hop limit as forwarded");
    assert_eq!(&quoted[8..], &sent[22..]);
    // While the entry stays failed, new packets are answered at once.
    l.send(0, udp6_to(GW0, "2001:db8:2::99", 64));
    l.dp.poll();
    assert_eq!(l.out(0).len(), 1);
    assert!(l.out(2).is_empty(), "no new solicitation while failed");
    l.assert_no_leak();
}

#[test]
fn no_unreachable_about_an_icmp_error_and_errors_are_rate_limited() {
    let mut l = lab();
    l.dp.control.settings.retry_interval = std::time::Duration::from_millis(1);
    l.dp.control
        .set_icmp_limit(weir_dataplane::modules::icmp::IcmpLimit {
            per_second: 1,
            burst: 2,
        });
    l.dp.control.commit();
    // An ICMP error (time exceeded quoting some packet) held, then failed.
    let err = {
        let mut f = udp4_to(GW0, "10.2.0.77", 64);
        let ip = weir_packet::Ipv4Packet::new_checked(&f[14..]).unwrap();
        let hl = ip.header_len();
        let icmp = &mut f[14 + hl..];
        icmp[0] = 11;
        icmp[1] = 0;
        let mut p = weir_packet::Icmpv4Packet::new_unchecked(&mut icmp[..]);
        p.fill_checksum();
        let mut ip = weir_packet::Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_protocol(weir_packet::IpProtocol::ICMP);
        ip.fill_checksum();
        f
    };
    l.send(0, err);
    for _ in 0..4 {
        l.send(0, udp4_to(GW0, "10.2.0.77", 64));
    }
    fail_resolution(&mut l);
    let out = l.out(0);
    assert_eq!(out.len(), 2, "burst of two, then rate limited");
    for f in &out {
        assert_eq!(icmp4_of(f).2, 3);
        assert_eq!(f[14 + 28 + 9], 17, "about the UDP packets, never the error");
    }
    assert_eq!(l.dp.control.stats.unreachable_suppressed, 3);
    l.assert_no_leak();
}

// ---- IPv4 options ----

/// `frame` (Ethernet + IPv4 without options) with `opts` (a multiple of 4
/// bytes) put after the IPv4 header.
fn with_options(frame: &[u8], opts: &[u8]) -> Vec<u8> {
    let mut f = frame[..34].to_vec();
    f.extend_from_slice(opts);
    f.extend_from_slice(&frame[34..]);
    let mut ip = weir_packet::Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_header_len(20 + opts.len());
    let total = ip.total_len() + opts.len() as u16;
    ip.set_total_len(total);
    ip.fill_checksum();
    f
}

#[test]
fn record_route_gets_the_outgoing_address() {
    let mut l = lab();
    // Record Route with room for two addresses, then an end of list.
    let opts = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let sent = with_options(&udp4_to(GW0, "192.0.2.5", 64), &opts);
    l.send(0, sent.clone());
    let out = l.out(1);
    assert_eq!(out.len(), 1);
    let ip = weir_packet::Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    assert!(ip.verify_checksum(), "header checksum updated");
    assert_eq!(ip.ttl(), 63);
    let o = ip.options();
    assert_eq!(o[2], 8, "pointer moved past one address");
    assert_eq!(&o[3..7], &[10, 1, 0, 1], "p1's address recorded");
    assert_eq!(&o[7..11], &[0; 4]);
    assert_eq!(ip.payload(), &sent[14 + 32..]);
    // A full option passes unchanged.
    let full = [7, 7, 8, 10, 9, 9, 9, 0];
    l.send(0, with_options(&udp4_to(GW0, "192.0.2.5", 64), &full));
    let out = l.out(1);
    let ip = weir_packet::Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!(ip.options(), &full);
    l.assert_no_leak();
}

#[test]
fn record_route_is_not_copied_into_later_fragments() {
    let mut l = lab();
    let opts = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut ip = V4::new(v4("10.0.0.2"), v4("192.0.2.5"));
    ip.ttl = 64;
    let big = frames::udp4(GW0, HOST_A, &ip, 1, 2, 2000 - 34 - 12 - 8 - 40);
    l.send(0, with_options(&big, &opts));
    let out = l.out(1);
    assert_eq!(out.len(), 2, "fragmented for p1's MTU");
    let first = weir_packet::Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    let later = weir_packet::Ipv4Packet::new_checked(&out[1][14..]).unwrap();
    let (first, later) = if first.frag_offset() == 0 {
        (first, later)
    } else {
        (later, first)
    };
    assert_eq!(&first.options()[3..7], &[10, 1, 0, 1], "recorded once");
    assert_eq!(first.options()[2], 8);
    assert_eq!(later.header_len(), 20, "not a copied option");
}

#[test]
fn malformed_options_draw_a_parameter_problem() {
    let mut l = lab();
    // Record Route whose length runs past the header, and one whose
    // pointer is below 4.
    for (opts, ptr) in [
        ([1u8, 7, 40, 4, 0, 0, 0, 0], 22u8),
        ([7, 7, 2, 0, 0, 0, 0, 0], 22),
    ] {
        let sent = with_options(&udp4_to(GW0, "192.0.2.5", 64), &opts);
        l.send(0, sent.clone());
        assert!(l.out(1).is_empty(), "not forwarded");
        let out = l.out(0);
        assert_eq!(out.len(), 1);
        let (src, dst, ty, code, msg) = icmp4_of(&out[0]);
        assert_eq!(
            (src, dst, ty, code),
            (v4("10.0.0.1"), v4("10.0.0.2"), 12, 0)
        );
        assert_eq!(msg[4], ptr, "pointer at the octet in fault");
        assert_eq!(&msg[8..], &sent[14..], "quotes the packet as received");
    }
    assert_eq!(l.drops("ip4-input/bad-option"), 2);
    l.assert_no_leak();
}
