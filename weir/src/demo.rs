//! `weir demo`: the dataplane on the memory driver with generated traffic.
//! Builds a gateway with two ports, sends a mix of good and bad packets
//! through the node graph and prints what came out, the per-node counters,
//! the drop reasons and the path of one traced packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use weir_dataplane::control::NeighState;
use weir_dataplane::frames::{self, V4};
use weir_dataplane::{Builder, RouteTarget};
use weir_packet::{ArpOperation, MacAddr};

const GW0: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
const GW1: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0xaa, 1]);
const ROUTER: MacAddr = MacAddr([2, 0, 0, 0, 0xbb, 1]);

pub fn run(rounds: usize) {
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "lan", GW0, 1500).unwrap().remove(0);
    let p1 = b.memory_port(1, "wan", GW1, 1400).unwrap().remove(0);
    let c = b.control();
    c.add_address(0, "10.0.0.1/24".parse().unwrap()).unwrap();
    c.add_address(1, "192.168.100.1/24".parse().unwrap())
        .unwrap();
    c.add_address(0, "2001:db8::1/64".parse().unwrap()).unwrap();
    c.add_address(1, "2001:db8:ff::1/64".parse().unwrap())
        .unwrap();
    c.set_static_neighbour(0, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), HOST);
    c.set_static_neighbour(0, IpAddr::V6("2001:db8::2".parse().unwrap()), HOST);
    c.set_static_neighbour(1, IpAddr::V6("2001:db8:ff::2".parse().unwrap()), ROUTER);
    let via = |g: &str| RouteTarget::Via {
        gateway: g.parse().unwrap(),
        port: None,
    };
    c.add_route(0, "0.0.0.0/0".parse().unwrap(), via("192.168.100.2"))
        .unwrap();
    c.add_route(0, "::/0".parse().unwrap(), via("2001:db8:ff::2"))
        .unwrap();
    c.add_route(0, "198.18.0.0/15".parse().unwrap(), RouteTarget::Blackhole)
        .unwrap();
    let mut dp = b.build();

    println!("weir demo: a gateway with ports lan (10.0.0.1/24, 2001:db8::1/64)");
    println!("and wan (192.168.100.1/24, 2001:db8:ff::1/64, MTU 1400); default routes");
    println!("via 192.168.100.2 (resolved by ARP on the way) and 2001:db8:ff::2.\n");

    let host = Ipv4Addr::new(10, 0, 0, 2);
    let host6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let mut ttl1 = V4::new(host, Ipv4Addr::new(8, 8, 8, 8));
    ttl1.ttl = 1;
    let mut big_df = V4::new(host, Ipv4Addr::new(8, 8, 4, 4));
    big_df.dont_frag = true;
    let mut bad = frames::udp4(
        GW0,
        HOST,
        &V4::new(host, Ipv4Addr::new(1, 1, 1, 1)),
        5,
        53,
        20,
    );
    bad[24] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "UDP 10.0.0.2 -> 8.8.8.8",
            frames::udp4(
                GW0,
                HOST,
                &V4::new(host, Ipv4Addr::new(8, 8, 8, 8)),
                4000,
                53,
                40,
            ),
        ),
        (
            "UDP6 2001:db8::2 -> 2001:4860::8888",
            frames::udp6(
                GW0,
                HOST,
                &frames::V6 {
                    src: host6,
                    dst: "2001:4860::8888".parse().unwrap(),
                    hop_limit: 64,
                },
                4000,
                53,
                40,
            ),
        ),
        (
            "ping 10.0.0.1 (the gateway)",
            frames::ping4(GW0, HOST, &V4::new(host, Ipv4Addr::new(10, 0, 0, 1)), 1, 1),
        ),
        (
            "ping6 2001:db8::1 (the gateway)",
            frames::ping6(GW0, HOST, host6, "2001:db8::1".parse().unwrap(), 1, 1),
        ),
        (
            "ARP who-has 10.0.0.1",
            frames::arp_request(HOST, host, Ipv4Addr::new(10, 0, 0, 1)),
        ),
        (
            "NS for 2001:db8::1",
            frames::neighbor_solicit(HOST, host6, "2001:db8::1".parse().unwrap()),
        ),
        (
            "UDP with TTL 1",
            frames::udp4(GW0, HOST, &ttl1, 4000, 33434, 20),
        ),
        (
            "1472-byte UDP, DF, over MTU 1400",
            frames::udp4(GW0, HOST, &big_df, 4000, 53, 1444),
        ),
        (
            "1472-byte UDP, no DF, over MTU 1400",
            frames::udp4(
                GW0,
                HOST,
                &V4::new(host, Ipv4Addr::new(8, 8, 4, 4)),
                4000,
                53,
                1444,
            ),
        ),
        (
            "UDP to blackholed 198.18.0.1",
            frames::udp4(
                GW0,
                HOST,
                &V4::new(host, Ipv4Addr::new(198, 18, 0, 1)),
                4000,
                53,
                20,
            ),
        ),
        ("IPv4 with a bad header checksum", bad),
    ];

    // First packet towards the wan router: ARP resolves it while it waits.
    println!("{:<38} {:>5} {:>5}", "packet", "lan", "wan");
    let mut first = true;
    for (name, f) in &cases {
        p0.inject(f.clone());
        dp.poll();
        if first {
            // The router answers the ARP request weir sent.
            p1.collect();
            p1.inject(frames::arp(
                ArpOperation::Reply,
                GW1,
                ROUTER,
                Ipv4Addr::new(192, 168, 100, 2),
                GW1,
                Ipv4Addr::new(192, 168, 100, 1),
            ));
            dp.poll();
            dp.poll();
            first = false;
        }
        let (a, w) = (p0.collect(), p1.collect());
        println!("{:<38} {:>5} {:>5}", name, a.len(), w.len());
    }

    // A traced packet.
    dp.workers[0].graph.trace_start();
    p0.inject(cases[0].1.clone());
    dp.poll();
    p1.collect();
    let steps = dp.workers[0].graph.trace_take();
    println!("\ntrace of one UDP packet:");
    let w = steps
        .iter()
        .map(|s| s.node.to_string().len())
        .max()
        .unwrap_or(0)
        .max(12);
    let wn = steps.iter().map(|s| s.next.len()).max().unwrap_or(0);
    for s in &steps {
        println!("  {:<w$} -> {:<wn$}  {}", s.node, s.next, s.fields);
    }

    // Bulk traffic for the counters.
    for _ in 0..rounds {
        for _ in 0..64 {
            p0.inject(cases[0].1.clone());
            p0.inject(cases[1].1.clone());
        }
        dp.poll();
        p0.collect();
        p1.collect();
    }

    println!();
    print!("{}", crate::report::stats_table(&dp.stats()));
    println!("\nneighbours:");
    let mut rows = vec![vec![
        "PORT".to_string(),
        "ADDRESS".into(),
        "MAC".into(),
        "STATE".into(),
    ]];
    for (port, addr, n) in dp.control.neighbours() {
        let pname = dp
            .control
            .port(port)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        rows.push(vec![
            pname,
            addr.to_string(),
            n.mac.to_string(),
            match n.state {
                NeighState::Incomplete => "incomplete",
                NeighState::Reachable => "reachable",
                NeighState::Probe => "probe",
                NeighState::Failed => "failed",
            }
            .to_string(),
        ]);
    }
    for line in crate::cli::output::table(&rows).lines() {
        println!("  {line}");
    }
}
