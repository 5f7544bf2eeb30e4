//! The neighbour table under a scan of an attached subnet: it stays at its
//! caps, unresolved entries make room first, refusals are counted, and a
//! resolved neighbour that routes use keeps forwarding.

mod common;

use std::net::IpAddr;

use common::*;
use weir_dataplane::frames;
use weir_packet::{ArpOperation, MacAddr};

const GW_C: MacAddr = MacAddr([0x02, 0, 0, 0, 0xcc, 0x05]);

/// UDP from host A to 10.2.<i / 256>.<i % 256> + 10 for `n` addresses.
fn scan(l: &mut Lab, from: usize, n: usize) {
    for i in from..from + n {
        let a = 10 + i;
        let dst = format!("10.2.{}.{}", a / 256, a % 256);
        l.ports[0].inject(udp4_to(GW0, &dst, 64));
        if i % 200 == 199 {
            l.dp.poll();
        }
    }
    for _ in 0..4 {
        l.dp.poll();
    }
}

/// A route through 10.2.0.5 on p2, resolved by its ARP reply.
fn gateway_on_p2(l: &mut Lab) {
    l.dp.control
        .add_route(0, net("198.51.100.0/24"), via("10.2.0.5"))
        .unwrap();
    l.dp.control.commit();
    l.dp.poll();
    l.send(
        2,
        frames::arp(
            ArpOperation::Reply,
            GW2,
            GW_C,
            v4("10.2.0.5"),
            GW2,
            v4("10.2.0.1"),
        ),
    );
    l.dp.poll();
    l.out(2);
}

fn forwards_through_gateway(l: &mut Lab) {
    l.send(0, udp4_to(GW0, "198.51.100.7", 64));
    let out = l.out(2);
    let fwd: Vec<_> = out.iter().filter(|f| f[12..14] == [0x08, 0x00]).collect();
    assert_eq!(fwd.len(), 1, "forwarded through the gateway");
    assert_eq!(&fwd[0][0..6], &GW_C.0);
}

#[test]
fn a_scan_keeps_the_table_at_its_port_cap() {
    let mut l = lab();
    l.dp.control.settings.max_per_port = 32;
    gateway_on_p2(&mut l);
    forwards_through_gateway(&mut l);
    scan(&mut l, 0, 1000);
    assert_eq!(l.dp.control.neighbour_count(2), 32);
    let s = l.dp.control.stats.clone();
    assert!(s.neigh_evicted >= 1000 - 32, "evicted {}", s.neigh_evicted);
    // Unresolved entries made room: nothing had to be refused.
    assert_eq!(s.neigh_refused, 0);
    // The gateway, resolved and in use, is still there and forwarding.
    let n = l.dp.control.neighbours();
    assert!(n
        .iter()
        .any(|x| x.1 == IpAddr::V4(v4("10.2.0.5")) && x.2.is_usable()));
    forwards_through_gateway(&mut l);
    l.assert_no_leak();
}

#[test]
fn a_table_full_of_resolved_neighbours_refuses_and_counts() {
    let mut l = lab();
    l.dp.control.settings.max_per_port = 16;
    gateway_on_p2(&mut l);
    // Hosts that answer: unsolicited ARP replies from 40 addresses.
    for i in 0..40u8 {
        let m = MacAddr([0x02, 0, 0, 0, 0xdd, i]);
        l.ports[2].inject(frames::arp(
            ArpOperation::Reply,
            GW2,
            m,
            v4(&format!("10.2.1.{i}")),
            GW2,
            v4("10.2.0.1"),
        ));
    }
    l.dp.poll();
    l.dp.poll();
    assert_eq!(l.dp.control.neighbour_count(2), 16);
    let refused = l.dp.control.stats.neigh_refused;
    assert_eq!(
        refused,
        40 - 14,
        "two slots are the gateway's and router C's"
    );
    // A scan now finds no room either: refused, counted, table unchanged.
    scan(&mut l, 1000, 100);
    assert_eq!(l.dp.control.neighbour_count(2), 16);
    assert_eq!(l.dp.control.stats.neigh_refused, refused + 100);
    assert_eq!(l.dp.control.stats.held_dropped, 100);
    forwards_through_gateway(&mut l);
    l.assert_no_leak();
}

#[test]
fn a_scan_keeps_the_table_at_its_total_cap() {
    let mut l = lab();
    l.dp.control.settings.max_total = 20;
    gateway_on_p2(&mut l);
    scan(&mut l, 0, 500);
    assert_eq!(l.dp.control.neighbours().len(), 20);
    // IPv6 too: a scan of 2001:db8:2::/64.
    for i in 0..300u32 {
        let dst = format!("2001:db8:2::{:x}", 0x100 + i);
        l.ports[0].inject(udp6_to(GW0, &dst, 64));
    }
    for _ in 0..4 {
        l.dp.poll();
    }
    assert_eq!(l.dp.control.neighbours().len(), 20);
    forwards_through_gateway(&mut l);
    l.assert_no_leak();
}
