//! Any bytes in, no panic out: random frames and random mutations of valid
//! frames go through the whole graph; every buffer comes back to the pool.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use weir_dataplane::frames::{self, V4};
use weir_dataplane::{Builder, Dataplane, MemoryHandle, RouteTarget, POOL_SIZE};
use weir_packet::MacAddr;

const GW0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const GW1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0xaa, 0x01]);

fn setup() -> (Dataplane, MemoryHandle, MemoryHandle) {
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW0, 1500).unwrap().remove(0);
    let p1 = b.memory_port(1, "p1", GW1, 1280).unwrap().remove(0);
    let c = b.control();
    let n = |s: &str| s.parse::<IpNet>().unwrap();
    c.add_address(0, n("10.0.0.1/24")).unwrap();
    c.add_address(1, n("10.1.0.1/24")).unwrap();
    c.add_address(0, n("2001:db8::1/64")).unwrap();
    c.add_address(1, n("2001:db8:1::1/64")).unwrap();
    c.set_static_neighbour(0, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), HOST);
    c.set_static_neighbour(1, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), HOST);
    c.add_route(
        0,
        n("0.0.0.0/0"),
        RouteTarget::Via {
            gateway: "10.1.0.2".parse().unwrap(),
            port: None,
        },
    )
    .unwrap();
    c.add_route(
        0,
        n("::/0"),
        RouteTarget::Via {
            gateway: "2001:db8:1::2".parse().unwrap(),
            port: None,
        },
    )
    .unwrap();
    (b.build(), p0, p1)
}

/// Valid frames of every kind the graph handles, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let a = Ipv4Addr::new(10, 0, 0, 2);
    let h6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let mut ttl1 = V4::new(a, Ipv4Addr::new(8, 8, 8, 8));
    ttl1.ttl = 1;
    vec![
        frames::udp4(GW0, HOST, &V4::new(a, Ipv4Addr::new(8, 8, 8, 8)), 1, 2, 40),
        frames::udp4(GW0, HOST, &ttl1, 1, 2, 1400),
        frames::ping4(GW0, HOST, &V4::new(a, Ipv4Addr::new(10, 0, 0, 1)), 1, 1),
        frames::udp6(
            GW0,
            HOST,
            &frames::V6 {
                src: h6,
                dst: "2001:db8:5::1".parse().unwrap(),
                hop_limit: 64,
            },
            1,
            2,
            1300,
        ),
        frames::ping6(GW0, HOST, h6, "2001:db8::1".parse().unwrap(), 1, 1),
        frames::neighbor_solicit(HOST, h6, "2001:db8::1".parse().unwrap()),
        frames::neighbor_advert(
            GW0,
            HOST,
            "2001:db8::9".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ),
        frames::arp_request(HOST, a, Ipv4Addr::new(10, 0, 0, 1)),
    ]
}

fn run(frames_in: Vec<Vec<u8>>) {
    let (mut dp, p0, p1) = setup();
    for f in frames_in {
        p0.inject(f);
    }
    for _ in 0..3 {
        dp.poll();
    }
    p0.collect();
    p1.collect();
    for w in &dp.workers {
        assert_eq!(w.pool.available(), POOL_SIZE, "every buffer returned");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20)) {
        run(frames);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        picks in proptest::collection::vec((0usize..8, proptest::collection::vec((0usize..1500, any::<u8>()), 1..6), 0usize..1600), 1..16)
    ) {
        let s = seeds();
        let frames = picks.into_iter().map(|(i, muts, cut)| {
            let mut f = s[i].clone();
            for (pos, val) in muts {
                // Keep the Ethernet destination so most frames get past eth-input.
                if pos >= 6 && pos < f.len() {
                    f[pos] = val;
                }
            }
            if cut < f.len() && cut > 0 {
                f.truncate(cut);
            }
            f
        }).collect();
        run(frames);
    }
}
