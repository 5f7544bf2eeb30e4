//! Arbitrary frames through the whole graph on a realistic configuration
//! (the bounded, always-run version of the fuzz target in ../fuzz): no
//! panic, no leaked buffer, and every packet sent, dropped with a counted
//! reason, or accounted for as made by a node.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use weir_dataplane::frames::{self, V4, V6};
use weir_dataplane::testbed::{split_frames, Testbed, GW0, GW1, HOST, ROUTER};
use weir_packet::MacAddr;

/// Valid frames of every kind the graph handles, to mutate.
fn seeds() -> Vec<(u8, Vec<u8>)> {
    let a = Ipv4Addr::new(10, 0, 0, 2);
    let h6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let v4 = |d: [u8; 4], ttl: u8| {
        let mut ip = V4::new(a, Ipv4Addr::from(d));
        ip.ttl = ttl;
        ip
    };
    let v6 = |d: &str, hop: u8| {
        let mut ip = V6::new(h6, d.parse().unwrap());
        ip.hop_limit = hop;
        ip
    };
    let mut rr = frames::udp4(GW0, HOST, &v4([192, 0, 2, 9], 64), 1, 2, 40);
    rr.splice(34..34, [7, 7, 4, 0, 0, 0, 0, 0]);
    rr[14] = 0x47;
    rr[17] += 8;
    vec![
        (0, frames::udp4(GW0, HOST, &v4([8, 8, 8, 8], 64), 1, 2, 40)),
        (0, frames::udp4(GW0, HOST, &v4([8, 8, 8, 8], 1), 1, 2, 1400)),
        (
            0,
            frames::udp4(GW0, HOST, &v4([192, 0, 2, 7], 64), 3, 4, 1400),
        ),
        (
            0,
            frames::udp4(GW0, HOST, &v4([198, 18, 0, 1], 64), 1, 2, 10),
        ),
        (0, frames::udp4(GW0, HOST, &v4([10, 2, 3, 4], 64), 1, 2, 10)),
        (
            0,
            frames::udp4(GW0, HOST, &v4([203, 0, 113, 200], 64), 1, 2, 10),
        ),
        (
            0,
            frames::udp4(GW0, HOST, &v4([100, 64, 0, 1], 64), 1, 2, 10),
        ),
        (
            0,
            frames::udp4(MacAddr::BROADCAST, HOST, &v4([8, 8, 8, 8], 1), 1, 2, 10),
        ),
        (0, frames::ping4(GW0, HOST, &v4([10, 0, 0, 1], 64), 1, 1)),
        (
            0,
            frames::udp4(GW0, HOST, &v4([10, 0, 0, 1], 64), 1, 179, 10),
        ),
        (0, rr),
        (
            0,
            frames::udp6(GW0, HOST, &v6("2001:db8:5::1", 64), 1, 2, 1300),
        ),
        (
            0,
            frames::udp6(GW0, HOST, &v6("2001:db8:2::77", 64), 1, 2, 10),
        ),
        (
            0,
            frames::udp6(GW0, HOST, &v6("2001:db8:dead::1", 1), 1, 2, 10),
        ),
        (
            0,
            frames::ping6(GW0, HOST, h6, "2001:db8::1".parse().unwrap(), 1, 1),
        ),
        (
            0,
            frames::neighbor_solicit(HOST, h6, "2001:db8::1".parse().unwrap()),
        ),
        (
            1,
            frames::neighbor_advert(
                GW1,
                ROUTER,
                "2001:db8:1::9".parse().unwrap(),
                "2001:db8:1::1".parse().unwrap(),
            ),
        ),
        (0, frames::arp_request(HOST, a, Ipv4Addr::new(10, 0, 0, 1))),
        (
            3,
            frames::udp4(HOST, GW0, &v4([10, 0, 0, 2], 64), 179, 1, 20),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_frames_are_conserved(frames in proptest::collection::vec(
        (0u8..4, proptest::collection::vec(any::<u8>(), 0..300)), 1..24)) {
        let mut tb = Testbed::new();
        let r = tb.run(frames.iter().map(|(p, f)| (*p, &f[..])));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn mutated_frames_are_conserved(
        picks in proptest::collection::vec((0usize..19, proptest::collection::vec((0usize..1500, any::<u8>()), 1..6), 0usize..1600), 1..24)
    ) {
        let s = seeds();
        let frames: Vec<(u8, Vec<u8>)> = picks.into_iter().map(|(i, muts, cut)| {
            let (p, mut f) = s[i % s.len()].clone();
            for (pos, val) in muts {
                // Keep the Ethernet destination so most get past eth-input.
                if pos >= 6 && pos < f.len() {
                    f[pos] = val;
                }
            }
            if cut < f.len() && cut > 0 {
                f.truncate(cut);
            }
            (p, f)
        }).collect();
        let mut tb = Testbed::new();
        let r = tb.run(frames.iter().map(|(p, f)| (*p, &f[..])));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

#[test]
fn every_seed_is_conserved_and_the_split_is_total() {
    let mut tb = Testbed::new();
    let s = seeds();
    tb.run(s.iter().map(|(p, f)| (*p, &f[..]))).unwrap();
    // The fuzz target's framing: port, length, bytes.
    let mut bytes = Vec::new();
    for (p, f) in &s {
        bytes.push(*p);
        bytes.extend_from_slice(&(f.len() as u16).to_be_bytes());
        bytes.extend_from_slice(f);
    }
    let split = split_frames(&bytes);
    assert_eq!(split.len(), s.len());
    tb.run(split).unwrap();
    // The fuzz target's starting corpus: one file per seed, and all of
    // them in one.
    if let Ok(dir) = std::env::var("WEIR_FUZZ_SEEDS") {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, (p, f)) in s.iter().enumerate() {
            let mut one = vec![*p];
            one.extend_from_slice(&(f.len() as u16).to_be_bytes());
            one.extend_from_slice(f);
            std::fs::write(format!("{dir}/seed-{i:02}"), one).unwrap();
        }
        std::fs::write(format!("{dir}/seed-all"), &bytes).unwrap();
    }
}
