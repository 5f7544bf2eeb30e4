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
        1 => rng.gen_range(1..=20),
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

/// Prefixes of every length around the top-level width (18 bits) and the
/// u64 boundary of the walk, nested on one address, inserted and removed in
/// several orders; lookups are checked after every change.
#[test]
fn top_width_and_deep_edges() {
    let base: u128 = 0x2001_0db8_85a3_7f00_1234_5678_9abc_def0;
    let lens: Vec<u8> = vec![
        0, 1, 2, 15, 16, 17, 18, 19, 20, 23, 24, 25, 30, 36, 47, 48, 49, 58, 59, 60, 61, 63, 64,
        65, 66, 72, 120, 121, 122, 125, 126, 127, 128,
    ];
    let mut probes = vec![0u128, u128::MAX, base, !base];
    for &l in &lens {
        let f = base & mask6(l);
        let last = f | !mask6(l);
        probes.extend([f, last, f.wrapping_sub(1), last.wrapping_add(1)]);
        // Flip the bit just after the prefix and the last bit of the slot.
        if l < 128 {
            probes.push(base ^ (1u128 << (127 - l)));
        }
        probes.push(base ^ (1u128 << 110));
    }
    // Neighbouring top slots and a sibling subtree in the same slot.
    let sibling = base ^ (1u128 << 90);
    probes.extend([sibling, base ^ (1 << 109), base ^ (1 << 111)]);
    let orders: Vec<Vec<u8>> = vec![
        lens.clone(),
        lens.iter().rev().copied().collect(),
        lens.iter()
            .step_by(2)
            .chain(lens.iter().skip(1).step_by(2))
            .copied()
            .collect(),
    ];
    for (k, order) in orders.iter().enumerate() {
        let mut p = Pair::new();
        p.insert(sibling, 48, 999);
        for (v, &l) in order.iter().enumerate() {
            p.insert(base, l, v as u32 + 10 * k as u32);
            p.check_addrs(&probes);
        }
        // Replace every value, then remove in a different order.
        for &l in order.iter().rev() {
            p.insert(base, l, l as u32 + 500);
        }
        p.check_addrs(&probes);
        let mut rng = SmallRng::seed_from_u64(k as u64);
        p.check(&mut rng, 200);
        let removal = &orders[(k + 1) % orders.len()];
        for &l in removal {
            p.remove(base, l);
            p.check_addrs(&probes);
        }
        p.remove(sibling, 48);
        p.check_addrs(&probes);
        assert_eq!(p.ours.len(), 0);
        assert_eq!(p.ours.node_count(), 0);
        assert_eq!(p.ours.leaf_count(), 0);
        assert!(probes.iter().all(|&a| p.ours.lookup(a) == NO_ROUTE));
    }
}

/// Short prefixes (top-level only) under and over existing subtrees, and
/// their removal, must re-derive the inherited leaves of those subtrees.
#[test]
fn short_prefixes_over_subtrees() {
    let mut p = Pair::new();
    let a: u128 = 0x2400_cb00_0000_0000_0000_0000_0000_0000;
    // Subtrees in slots that a /17 and a /18 cover.
    for i in 0..8u128 {
        p.insert(a | i << 108 | 0x42 << 80, 48, i as u32);
        p.insert(a | i << 108 | 0x42 << 80 | 0x7 << 60, 64, 100 + i as u32);
    }
    let probes: Vec<u128> = (0..8u128)
        .flat_map(|i| {
            let x = a | i << 108;
            [
                x,
                x | 0x42 << 80,
                x | 0x42 << 80 | 0x7 << 60,
                x | 0x43 << 80,
                x | (1 << 100),
            ]
        })
        .collect();
    p.check_addrs(&probes);
    for (v, l) in [(1, 18u8), (2, 17), (3, 16), (4, 0), (5, 19), (6, 1)] {
        p.insert(a, l, v);
        p.check_addrs(&probes);
    }
    for l in [17u8, 0, 19, 18, 1, 16] {
        p.remove(a, l);
        p.check_addrs(&probes);
    }
    let mut rng = SmallRng::seed_from_u64(9);
    p.check(&mut rng, 500);
}

/// `lookup_batch` agrees with `lookup` for every batch length around the
/// lane count, with lanes ending at the top level, in shallow and in deep
/// nodes mixed in one group.
#[test]
fn batch_lengths_and_mixed_depths() {
    let prefixes = gen::ipv6_prefixes(3000, 21);
    let mut t = Lpm6::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        t.insert(a, l, i as u32).unwrap();
    }
    t.insert(0x2000 << 112, 3, 7777).unwrap();
    t.insert(u128::MAX, 128, 8888).unwrap();
    t.insert(0x2001_0db8 << 96 | 0xffff, 128, 9999).unwrap();
    let mut addrs = gen::addrs_in_prefixes_v6(&prefixes, 400, 4);
    for (i, x) in gen::random_addrs_v6(200, 5).into_iter().enumerate() {
        addrs.insert(i * 3 % addrs.len(), x);
    }
    for i in 0..50u128 {
        addrs.insert((i as usize * 7) % addrs.len(), i << 120);
        addrs.insert((i as usize * 11) % addrs.len(), u128::MAX - i);
        addrs.insert((i as usize * 13) % addrs.len(), 0x2001_0db8 << 96 | 0xffff);
    }
    for len in [
        0,
        1,
        2,
        15,
        16,
        17,
        31,
        32,
        33,
        63,
        64,
        65,
        100,
        addrs.len(),
    ] {
        for start in [0, 5] {
            let a = &addrs[start..start + len.min(addrs.len() - start)];
            let mut out = vec![0u32; a.len() + 3];
            t.lookup_batch(a, &mut out);
            for (x, o) in a.iter().zip(&out) {
                assert_eq!(t.lookup(*x), *o, "{}", Ipv6Addr::from(*x));
            }
            assert_eq!(&out[a.len()..], &[0, 0, 0]);
        }
    }
}

#[test]
fn clone_is_independent() {
    let prefixes = gen::ipv6_prefixes(2000, 31);
    let mut a = Lpm6::new();
    for (i, &(x, l)) in prefixes.iter().enumerate() {
        a.insert(x, l, i as u32).unwrap();
    }
    a.insert(0xfe80 << 112, 10, 5).unwrap();
    let mut b = a.clone();
    let addrs = gen::addrs_in_prefixes_v6(&prefixes, 5000, 3);
    let mut oa = vec![0; addrs.len()];
    let mut ob = vec![0; addrs.len()];
    a.lookup_batch(&addrs, &mut oa);
    b.lookup_batch(&addrs, &mut ob);
    assert_eq!(oa, ob);
    assert_eq!(a.lookup(0xfe80 << 112 | 1), 5);
    assert_eq!(b.lookup(0xfe80 << 112 | 1), 5);
    for &(x, l) in &prefixes {
        b.remove(x, l);
    }
    b.remove(0xfe80 << 112, 10);
    assert_eq!(b.node_count(), 0);
    assert_eq!(b.lookup(0xfe80 << 112 | 1), NO_ROUTE);
    let mut oa2 = vec![0; addrs.len()];
    a.lookup_batch(&addrs, &mut oa2);
    assert_eq!(oa, oa2);
}

/// Filling and emptying a table repeatedly reuses the freed blocks.
#[test]
fn refill_reuses_memory() {
    let prefixes = gen::ipv6_prefixes(5000, 41);
    let mut t = Lpm6::new();
    let mut mem = 0;
    for round in 0..4 {
        for (i, &(x, l)) in prefixes.iter().enumerate() {
            t.insert(x, l, i as u32 + round).unwrap();
        }
        t.insert(0, 0, 1).unwrap();
        assert_eq!(t.lookup(0), 1);
        for &(x, l) in &prefixes {
            t.remove(x, l);
        }
        assert_eq!(t.remove(0, 0), Some(1));
        assert_eq!((t.len(), t.node_count(), t.leaf_count()), (0, 0, 0));
        assert_eq!(t.lookup(prefixes[0].0), NO_ROUTE);
        if round == 0 {
            mem = t.dataplane_bytes();
        } else {
            assert_eq!(t.dataplane_bytes(), mem);
        }
    }
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
        2 => 16u8..=20,
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

// ------------------------------------------------------- path compression

/// Addresses around every prefix in the table plus ones that differ from
/// `a` in each single bit (so skipped bits mismatch at every position).
fn check_bit_flips(p: &Pair, a: u128) {
    let mut addrs: Vec<u128> = (0..128).map(|b| a ^ 1u128 << b).collect();
    addrs.push(a);
    p.check_addrs(&addrs);
}

#[test]
fn chain_compression_node_counts() {
    let mut t = Lpm6::new();
    let a: u128 = 0x2001_0db8_1234_5678_9abc_def0_1357_9bdf;
    // A lone /48: one node (the root skips bits 18..42).
    t.insert(a, 48, 1).unwrap();
    assert_eq!(t.node_count(), 1);
    assert_eq!(t.lookup(a), 1);
    assert_eq!(t.lookup(a ^ 1 << 100), NO_ROUTE);
    t.remove(a, 48);
    // A lone /128: nodes at 18 (skipping to 78) and 84 (skipping to 126).
    t.insert(a, 128, 2).unwrap();
    assert_eq!(t.node_count(), 2);
    let mut out = [0u32; 130];
    let addrs: Vec<u128> = (0..128).map(|b| a ^ 1u128 << b).chain([a, a]).collect();
    t.lookup_batch(&addrs, &mut out);
    for (&x, &o) in addrs.iter().zip(&out) {
        let e = if x == a { 2 } else { NO_ROUTE };
        assert_eq!(t.lookup(x), e, "{x:#x}");
        assert_eq!(o, e, "{x:#x}");
    }
    t.remove(a, 128);
    assert_eq!(t.node_count(), 0);
    assert_eq!(t.leaf_count(), 0);
}

#[test]
fn chains_split_and_merge() {
    let mut rng = SmallRng::seed_from_u64(77);
    let a: u128 = 0x2a00_1450_4001_0809_0000_0000_0000_200e;
    for deep in [48u8, 56, 64, 80, 100, 127, 128] {
        let mut p = Pair::new();
        p.insert(a, deep, 1);
        check_bit_flips(&p, a);
        p.check(&mut rng, 200);
        // Prefixes ending inside the chain (split it), at every length.
        for l in 19..deep {
            p.insert(a, l, 100 + l as u32);
            check_bit_flips(&p, a);
            p.check(&mut rng, 50);
            p.remove(a, l);
            check_bit_flips(&p, a);
            p.check(&mut rng, 50);
        }
        // Siblings diverging at every bit inside the chain.
        for b in (0..128 - 19).map(|b| 127 - b) {
            if b >= deep as u32 {
                continue;
            }
            let s = a ^ 1u128 << (127 - b);
            p.insert(s, deep, 500 + b);
            check_bit_flips(&p, a);
            check_bit_flips(&p, s);
            p.remove(s, deep);
        }
        p.check(&mut rng, 200);
        // Covering prefixes at several lengths: mismatches fall back to the
        // longest one shorter than the mismatching bit.
        for &l in &[16u8, 18, 20, 30, 33, 40, 47] {
            if l < deep {
                p.insert(a, l, l as u32);
            }
        }
        check_bit_flips(&p, a);
        p.check(&mut rng, 200);
        // Remove them again in another order: the chain re-forms.
        for &l in &[30u8, 16, 47, 20, 40, 18, 33] {
            if l < deep {
                p.remove(a, l);
                check_bit_flips(&p, a);
            }
        }
        p.check(&mut rng, 200);
        // A second long prefix forks the chain; removing it re-creates it.
        let fork = a ^ 1u128 << (128 - 37);
        p.insert(fork, 128, 9);
        p.insert(a | 1, 128, 10);
        check_bit_flips(&p, a);
        check_bit_flips(&p, fork);
        p.check(&mut rng, 200);
        p.remove(fork, 128);
        p.remove(a | 1, 128);
        p.check(&mut rng, 200);
        p.remove(a, deep);
        p.check(&mut rng, 100);
        assert_eq!(p.ours.node_count(), 0);
    }
}

#[test]
fn chains_under_short_prefixes() {
    // Top-level (<= /18) changes rebuild subtrees whose roots skip.
    let mut rng = SmallRng::seed_from_u64(78);
    let a: u128 = 0x2400_cb00_2049_0001_0000_0000_0000_0001;
    let mut p = Pair::new();
    p.insert(a, 64, 1);
    p.insert(a, 128, 2);
    for l in [0u8, 3, 12, 17, 18] {
        p.insert(a, l, 40 + l as u32);
        check_bit_flips(&p, a);
    }
    p.check(&mut rng, 200);
    for l in [18u8, 0, 12, 3, 17] {
        p.remove(a, l);
        check_bit_flips(&p, a);
    }
    p.check(&mut rng, 200);
}
