//! Workers on their own threads keep forwarding correctly while the control
//! side changes routes under them: every packet leaves through one of the
//! two valid paths, whole and with the right MAC, and none is lost.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use weir_dataplane::frames::{self, V4};
use weir_dataplane::{Builder, Dataplane, RouteTarget, WorkerStats};
use weir_packet::{Ipv4Packet, MacAddr};

const GW: [MacAddr; 3] = [
    MacAddr([2, 0, 0, 0, 0, 0x10]),
    MacAddr([2, 0, 0, 0, 0, 0x11]),
    MacAddr([2, 0, 0, 0, 0, 0x12]),
];
const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0xaa, 1]);
const B: MacAddr = MacAddr([2, 0, 0, 0, 0xbb, 1]);
const C: MacAddr = MacAddr([2, 0, 0, 0, 0xcc, 1]);

fn via(gw: &str) -> RouteTarget {
    RouteTarget::Via {
        gateway: gw.parse().unwrap(),
        port: None,
    }
}

#[test]
fn route_changes_while_traffic_flows_never_misforward() {
    const WORKERS: usize = 2;
    let mut b = Builder::new(WORKERS);
    let p0 = b.memory_port(0, "p0", GW[0], 1500).unwrap();
    let p1 = b.memory_port(1, "p1", GW[1], 1500).unwrap();
    let p2 = b.memory_port(2, "p2", GW[2], 1500).unwrap();
    let c = b.control();
    let n = |s: &str| s.parse::<IpNet>().unwrap();
    c.add_address(0, n("10.0.0.1/24")).unwrap();
    c.add_address(1, n("10.1.0.1/24")).unwrap();
    c.add_address(2, n("10.2.0.1/24")).unwrap();
    c.set_static_neighbour(1, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), B);
    c.set_static_neighbour(2, IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2)), C);
    c.add_route(0, n("198.51.100.0/24"), via("10.1.0.2"))
        .unwrap();
    let Dataplane {
        mut control,
        workers,
    } = b.build();
    let stats: Vec<_> = workers.iter().map(|w| w.stats_handle()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let threads = Dataplane::spawn_workers(workers, stop.clone(), &[]);

    let frame = frames::udp4(
        GW[0],
        HOST,
        &V4::new(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(198, 51, 100, 7)),
        1,
        2,
        64,
    );
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut flips = 0u32;
    let mut churn = weir_fib::gen::ipv4_prefixes(2000, 7).into_iter().cycle();
    // A wire keeps at most WIRE_BACKLOG frames for `collect`: send no more
    // than that in all, or a fast (idle) machine overflows it.
    let per_round = 64 * p0.len() as u64;
    let backlog = weir_dataplane::driver::memory::WIRE_BACKLOG as u64;
    while Instant::now() < deadline && sent + per_round <= backlog {
        for h in &p0 {
            for _ in 0..64 {
                h.inject(frame.clone());
                sent += 1;
            }
        }
        // Flip the route and churn unrelated prefixes in the same commit.
        flips += 1;
        let gw = if flips.is_multiple_of(2) {
            "10.1.0.2"
        } else {
            "10.2.0.2"
        };
        control.add_route(0, n("198.51.100.0/24"), via(gw)).unwrap();
        for _ in 0..20 {
            let (a, l) = churn.next().unwrap();
            let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), l).unwrap();
            if p.contains(&"198.51.100.7".parse::<IpAddr>().unwrap()) {
                continue;
            }
            if control.del_route(0, p).is_err() {
                control.add_route(0, p, RouteTarget::Blackhole).unwrap();
            }
        }
        control.commit();
    }
    // Let the workers drain their queues.
    let drain = Instant::now() + Duration::from_secs(5);
    let received = || -> u64 { p1.iter().chain(&p2).map(|h| h.tx_packets()).sum() };
    while received() < sent && Instant::now() < drain {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let all: Vec<WorkerStats> = stats.iter().map(|s| s.lock().unwrap().clone()).collect();
    let st = WorkerStats::merge(&all);
    assert!(flips > 10, "the route changed many times ({flips})");
    let (mut via_b, mut via_c) = (0u64, 0u64);
    for (h, mac) in p1.iter().map(|h| (h, B)).chain(p2.iter().map(|h| (h, C))) {
        for f in h.collect() {
            assert_eq!(&f[0..6], &mac.0, "MAC matches the port's next hop");
            let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert_eq!(ip.ttl(), 63);
            assert!(ip.verify_checksum());
            assert_eq!(&f[14 + 20..], &frame[14 + 20..]);
            if mac == B {
                via_b += 1
            } else {
                via_c += 1
            }
        }
    }
    assert_eq!(st.drop_count("ip4-lookup/no-route"), 0);
    assert_eq!(via_b + via_c, sent, "no packet lost: {st:?}");
    assert!(via_b > 0 && via_c > 0, "both paths used: {via_b} {via_c}");
}
