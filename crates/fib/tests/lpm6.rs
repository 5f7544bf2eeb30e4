//! Differential tests of `Lpm6` against `prefix_trie::PrefixMap`.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use prefix_trie::PrefixMap;
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_fib::gen::{self, mask6};
use weir_fib::{FibError, Lpm6, NO_ROUTE};

struct Pair {
    ours: Lpm6,
    reference: PrefixMap<Ipv6Net, u32>,
}

fn net(a: u128, l: u8) -> Ipv6Net {
    Ipv6Net::new(Ipv6Addr::from(a & mask6(l)), l).unwrap()
}

impl Pair {
    fn new() -> Self {
        Pair {
            ours: Lpm6::new(),
            reference: PrefixMap::new(),
        }
    }
    fn insert(&mut self, a: u128, l: u8, v: u32) {
        let r = self.reference.insert(net(a, l), v);
        assert_eq!(self.ours.insert(a, l, v).unwrap(), r, "insert {a:#x}/{l}");
    }
    fn remove(&mut self, a: u128, l: u8) {
        let r = self.reference.remove(&net(a, l));
        assert_eq!(self.ours.remove(a, l), r, "remove {a:#x}/{l}");
    }
    fn expect(&self, a: u128) -> u32 {
        self.reference
            .get_lpm(&net(a, 128))
            .map_or(NO_ROUTE, |(_, v)| *v)
    }
    fn check_addrs(&self, addrs: &[u128]) {
        let mut out = vec![0; addrs.len()];
        self.ours.lookup_batch(addrs, &mut out);
        for (&a, &o) in addrs.iter().zip(&out) {
            let e = self.expect(a);
            assert_eq!(self.ours.lookup(a), e, "lookup {}", Ipv6Addr::from(a));
            assert_eq!(o, e, "lookup_batch {}", Ipv6Addr::from(a));
        }
    }
    fn check(&self, rng: &mut SmallRng, random: usize) {
        let mut addrs: Vec<u128> = (0..random)
            .map(|i| {
                if i % 2 == 0 {
                    rng.gen()
                } else {
                    (rng.gen::<u128>() & !mask6(3)) | 1 << 125
                }
            })
            .collect();
        for (p, _) in self.reference.iter() {
            let first = u128::from(p.network());
            let last = u128::from(p.broadcast());
            addrs.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
            addrs.push(first | (rng.gen::<u128>() & !mask6(p.prefix_len())));
        }
        self.check_addrs(&addrs);
        assert_eq!(self.ours.len(), self.reference.len());
        let a: Vec<_> = self.ours.iter().collect();
        let mut b: Vec<_> = self
            .reference
            .iter()
            .map(|(p, v)| (u128::from(p.network()), p.prefix_len(), *v))
            .collect();
        b.sort_unstable();
        assert_eq!(a, b);
        for &(x, l, v) in b.iter().take(200) {
            assert_eq!(self.ours.get(x, l), Some(v));
        }
        // The incrementally maintained trie is exactly as big as a fresh one.
        let mut fresh = Lpm6::new();
        for &(x, l, v) in &b {
            fresh.insert(x, l, v).unwrap();
        }
        assert_eq!(self.ours.node_count(), fresh.node_count());
        assert_eq!(self.ours.leaf_count(), fresh.leaf_count());
    }
}

fn rand_len(rng: &mut SmallRng) -> u8 {
    match rng.gen_range(0..100) {
        0 => 0,
        1 => rng.gen_range(1..=16),
        2..=9 => 128,
        10..=19 => rng.gen_range(65..=127),
        20..=29 => rng.gen_range(17..=31),
        30..=49 => rng.gen_range(32..=47),
        50..=74 => 48,
        _ => rng.gen_range(49..=64),
    }
}

/// A prefix nested in (or containing) an existing one, or a fresh one.
fn related(rng: &mut SmallRng, existing: &[(u128, u8)]) -> (u128, u8) {
    let l = rand_len(rng);
    let fresh = (rng.gen::<u128>() & !mask6(3)) | 1 << 125;
    if existing.is_empty() || rng.gen_bool(0.3) {
        return (fresh & mask6(l), l);
    }
    let (a, _) = existing[rng.gen_range(0..existing.len())];
    (
        (a | (fresh & !mask6(l.min(128)) & rng.gen::<u128>())) & mask6(l),
        l,
    )
}

fn churn(seed: u64, n: usize, random_lookups: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut p = Pair::new();
    let mut live: Vec<(u128, u8)> = Vec::new();
    for i in 0..n {
        let (a, l) = related(&mut rng, &live);
        p.insert(a, l, i as u32 % 1000);
        live.push((a, l));
    }
    p.check(&mut rng, random_lookups);
    for _ in 0..n / 4 {
        let (a, l) = live[rng.gen_range(0..live.len())];
        p.insert(a, l, rng.gen_range(0..1 << 30));
    }
    p.check(&mut rng, random_lookups);
    for i in 0..n {
        if rng.gen_bool(0.7) {
            let k = rng.gen_range(0..live.len());
            let (a, l) = live.swap_remove(k);
            p.remove(a, l);
        } else {
            let (a, l) = related(&mut rng, &live);
            p.insert(a, l, i as u32);
            live.push((a, l));
        }
    }
    p.check(&mut rng, random_lookups);
    for (a, l) in live.drain(..) {
        p.remove(a, l);
    }
    p.check(&mut rng, 1000);
    assert_eq!(p.ours.len(), 0);
    assert_eq!(p.ours.node_count(), 0);
    assert_eq!(p.ours.leaf_count(), 0);
}

#[test]
fn errors() {
    let mut t = Lpm6::new();
    assert_eq!(
        t.insert(0, 129, 1),
        Err(FibError::PrefixTooLong { len: 129, max: 128 })
    );
    assert_eq!(
        t.insert(0, 129, 1).unwrap_err().to_string(),
        "prefix length 129 exceeds 128"
    );
    assert_eq!(
        t.insert(0, 8, 1 << 30),
        Err(FibError::ValueOutOfRange(1 << 30))
    );
    assert_eq!(t.remove(0, 129), None);
    assert_eq!(t.get(0, 129), None);
}

#[test]
fn basics() {
    let mut t = Lpm6::new();
    let a: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;
    assert_eq!(t.lookup(a), NO_ROUTE);
    assert_eq!(t.insert(a, 32, 1), Ok(None)); // host bits masked
    assert_eq!(t.get(a & mask6(32), 32), Some(1));
    t.insert(a, 48, 2).unwrap();
    t.insert(a, 128, 3).unwrap();
    t.insert(0, 0, 4).unwrap();
    assert_eq!(t.lookup(a), 3);
    assert_eq!(t.lookup(a + 1), 2);
    assert_eq!(t.lookup(a + (1 << 80)), 1);
    assert_eq!(t.lookup(0x3000 << 112), 4);
    t.insert(0x2000 << 112, 3, 5).unwrap();
    assert_eq!(t.lookup(0x3000 << 112), 5);
    assert_eq!(t.lookup(a + (1 << 80)), 1);
    assert_eq!(t.remove(a, 32), Some(1));
    assert_eq!(t.lookup(a + (1 << 80)), 5);
    assert_eq!(t.remove(a, 128), Some(3));
    assert_eq!(t.lookup(a), 2);
    assert_eq!(t.remove(0x2000 << 112, 3), Some(5));
    assert_eq!(t.remove(0, 0), Some(4));
    assert_eq!(t.lookup(0x3000 << 112), NO_ROUTE);
    t.insert(u128::MAX, 128, 6).unwrap();
    assert_eq!(t.lookup(u128::MAX), 6);
    assert_eq!(t.lookup(u128::MAX - 1), NO_ROUTE);
    assert_eq!(t.remove(a, 48), Some(2));
    assert_eq!(t.remove(u128::MAX, 128), Some(6));
    assert_eq!(t.node_count(), 0);
}

#[test]
fn seeded_churn_small() {
    for seed in 0..10 {
        churn(seed, 300, 2000);
    }
}

#[test]
fn seeded_churn_large() {
    churn(1000, 20_000, 20_000);
}

#[test]
fn internet_like_table() {
    let prefixes = gen::ipv6_prefixes(30_000, 7);
    let mut p = Pair::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        p.insert(a, l, i as u32);
    }
    let mut rng = SmallRng::seed_from_u64(3);
    p.check(&mut rng, 20_000);
    p.check_addrs(&gen::random_addrs_v6(20_000, 9));
    p.check_addrs(&gen::addrs_in_prefixes_v6(&prefixes, 20_000, 9));
    for &(a, l) in prefixes.iter().step_by(3) {
        p.remove(a, l);
    }
    p.check(&mut rng, 20_000);
}

#[test]
fn replicas_agree_and_memory_is_stable() {
    let prefixes = gen::ipv6_prefixes(20_000, 11);
    let mut a = Lpm6::new();
    for (i, &(x, l)) in prefixes.iter().enumerate() {
        a.insert(x, l, i as u32).unwrap();
    }
    let mut b = a.clone();
    let mut c = Lpm6::new();
    for (i, &(x, l)) in prefixes.iter().enumerate() {
        c.insert(x, l, i as u32).unwrap();
    }
    let nodes = a.node_count();
    let mut rng = SmallRng::seed_from_u64(5);
    let mut mem = 0;
    for round in 0..6 {
        let extra: Vec<(u128, u8)> = gen::ipv6_prefixes(22_000, 100 + round)
            .into_iter()
            .filter(|p| prefixes.binary_search(p).is_err() && a.get(p.0, p.1).is_none())
            .take(1000)
            .collect();
        for t in [&mut a, &mut b, &mut c] {
            for (i, &(x, l)) in extra.iter().enumerate() {
                t.insert(x, l, i as u32 + 7).unwrap();
            }
        }
        let addrs: Vec<u128> = (0..5000)
            .map(|_| rng.gen::<u128>() >> 3 | 1 << 125)
            .collect();
        for &x in &addrs {
            assert_eq!(a.lookup(x), b.lookup(x));
            assert_eq!(a.lookup(x), c.lookup(x));
        }
        for t in [&mut a, &mut b, &mut c] {
            for &(x, l) in &extra {
                t.remove(x, l);
            }
        }
        assert_eq!(a.node_count(), nodes);
        assert_eq!(c.node_count(), nodes);
        if round == 1 {
            mem = a.dataplane_bytes();
        }
        if round > 1 {
            // Freed blocks are reused: no growth beyond a small slack.
            assert!(
                a.dataplane_bytes() <= mem + mem / 10,
                "{} {}",
                a.dataplane_bytes(),
                mem
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u128, u8, u32),
    Remove(usize),
}

fn len() -> impl Strategy<Value = u8> {
    prop_oneof![
        1 => 0u8..=16,
        1 => Just(0u8),
        2 => Just(128u8),
        10 => 17u8..=64,
        3 => 65u8..=128,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let addr = prop_oneof![
        Just(0u128),
        Just(u128::MAX),
        (0u128..64).prop_map(|x| (0x2001_0db8u128 << 96) | x << 74),
        (0u128..64).prop_map(|x| (0x2001_0db8u128 << 96) | x << 2),
        (0u128..16).prop_map(|x| x << 124),
        any::<u128>(),
    ];
    prop_oneof![
        3 => (addr, len(), 0u32..1000).prop_map(|(a, l, v)| Op::Insert(a, l, v)),
        1 => any::<usize>().prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]
    #[test]
    fn prop_matches_reference(ops in proptest::collection::vec(op(), 1..120)) {
        let mut p = Pair::new();
        let mut live = Vec::new();
        let mut probe = vec![0u128, u128::MAX];
        for o in ops {
            match o {
                Op::Insert(a, l, v) => {
                    p.insert(a, l, v);
                    live.push((a, l));
                    let f = a & mask6(l);
                    let last = f | !mask6(l);
                    probe.extend([f, last, f.wrapping_sub(1), last.wrapping_add(1)]);
                }
                Op::Remove(k) if !live.is_empty() => {
                    let (a, l) = live.swap_remove(k % live.len());
                    p.remove(a, l);
                }
                Op::Remove(_) => {}
            }
        }
        p.check_addrs(&probe);
        let mut rng = SmallRng::seed_from_u64(1);
        p.check(&mut rng, 500);
    }
}
