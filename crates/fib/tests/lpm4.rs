//! Differential tests of `Lpm4` against `prefix_trie::PrefixMap`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_fib::gen::{self, mask4};
use weir_fib::{FibError, Lpm4, NO_ROUTE};

struct Pair {
    ours: Lpm4,
    reference: PrefixMap<Ipv4Net, u32>,
}

fn net(a: u32, l: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(a & mask4(l)), l).unwrap()
}

impl Pair {
    fn new() -> Self {
        Pair {
            ours: Lpm4::new(),
            reference: PrefixMap::new(),
        }
    }
    fn insert(&mut self, a: u32, l: u8, v: u32) {
        let r = self.reference.insert(net(a, l), v);
        assert_eq!(self.ours.insert(a, l, v).unwrap(), r, "insert {a:#x}/{l}");
    }
    fn remove(&mut self, a: u32, l: u8) {
        let r = self.reference.remove(&net(a, l));
        assert_eq!(self.ours.remove(a, l), r, "remove {a:#x}/{l}");
    }
    fn expect(&self, a: u32) -> u32 {
        self.reference
            .get_lpm(&net(a, 32))
            .map_or(NO_ROUTE, |(_, v)| *v)
    }
    fn check_addrs(&self, addrs: &[u32]) {
        let mut out = vec![0; addrs.len()];
        self.ours.lookup_batch(addrs, &mut out);
        for (&a, &o) in addrs.iter().zip(&out) {
            let e = self.expect(a);
            assert_eq!(self.ours.lookup(a), e, "lookup {}", Ipv4Addr::from(a));
            assert_eq!(o, e, "lookup_batch {}", Ipv4Addr::from(a));
        }
    }
    /// Boundaries of every stored prefix plus random addresses.
    fn check(&self, rng: &mut SmallRng, random: usize) {
        let mut addrs: Vec<u32> = (0..random).map(|_| rng.gen()).collect();
        for (p, _) in self.reference.iter() {
            let first = u32::from(p.network());
            let last = u32::from(p.broadcast());
            addrs.extend([first, last, first.wrapping_sub(1), last.wrapping_add(1)]);
            addrs.push(first | (rng.gen::<u32>() & !mask4(p.prefix_len())));
        }
        self.check_addrs(&addrs);
        assert_eq!(self.ours.len(), self.reference.len());
        let mut a: Vec<_> = self.ours.iter().collect();
        let mut b: Vec<_> = self
            .reference
            .iter()
            .map(|(p, v)| (u32::from(p.network()), p.prefix_len(), *v))
            .collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        for &(x, l, v) in b.iter().take(200) {
            assert_eq!(self.ours.get(x, l), Some(v));
        }
        // tbl8 groups in use == /24s holding a longer prefix.
        let mut s: Vec<u32> = b.iter().filter(|p| p.1 > 24).map(|p| p.0 >> 8).collect();
        s.sort_unstable();
        s.dedup();
        assert_eq!(self.ours.tbl8_groups_in_use(), s.len());
    }
}

/// A prefix nested in (or containing) an existing one, or a fresh one.
fn related(rng: &mut SmallRng, existing: &[(u32, u8)]) -> (u32, u8) {
    // Short prefixes span up to 2^24 entries: keep them rare (debug mode).
    let l: u8 = match rng.gen_range(0..400) {
        0..=1 => 0,
        2 => rng.gen_range(1..=8),
        3..=40 => 32,
        41..=100 => rng.gen_range(9..=16),
        101..=240 => rng.gen_range(17..=24),
        _ => rng.gen_range(25..=32),
    };
    if existing.is_empty() || rng.gen_bool(0.3) {
        return (rng.gen::<u32>() & mask4(l), l);
    }
    let (a, _) = existing[rng.gen_range(0..existing.len())];
    // Keep the existing prefix's bits, randomise the rest.
    (
        (a | (rng.gen::<u32>() & !mask4(l.min(32)) & rng.gen::<u32>())) & mask4(l),
        l,
    )
}

fn churn(seed: u64, n: usize, random_lookups: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut p = Pair::new();
    let mut live: Vec<(u32, u8)> = Vec::new();
    for i in 0..n {
        let (a, l) = related(&mut rng, &live);
        p.insert(a, l, i as u32 % 1000);
        live.push((a, l));
    }
    p.check(&mut rng, random_lookups);
    // Replace values of some.
    for _ in 0..n / 4 {
        let (a, l) = live[rng.gen_range(0..live.len())];
        p.insert(a, l, rng.gen_range(0..1 << 30));
    }
    p.check(&mut rng, random_lookups);
    // Remove about half, interleaved with new nested inserts.
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
    // Remove everything: back to empty, all groups reclaimed.
    for (a, l) in live.drain(..) {
        p.remove(a, l);
    }
    p.check(&mut rng, 1000);
    assert_eq!(p.ours.len(), 0);
    assert_eq!(p.ours.tbl8_groups_in_use(), 0);
}

#[test]
fn errors() {
    let mut t = Lpm4::new();
    assert_eq!(
        t.insert(0, 33, 1),
        Err(FibError::PrefixTooLong { len: 33, max: 32 })
    );
    assert_eq!(
        t.insert(0, 33, 1).unwrap_err().to_string(),
        "prefix length 33 exceeds 32"
    );
    assert_eq!(
        t.insert(0, 8, 1 << 30),
        Err(FibError::ValueOutOfRange(1 << 30))
    );
    assert_eq!(t.insert(0, 8, (1 << 30) - 1), Ok(None));
    assert_eq!(t.remove(0, 33), None);
    assert_eq!(t.get(0, 33), None);
    assert!(!t.is_empty());
    assert_eq!(t.len(), 1);
}

#[test]
fn basics_and_host_bits() {
    let mut t = Lpm4::new();
    assert_eq!(t.lookup(0x0a00_0001), NO_ROUTE);
    // Host bits are masked.
    assert_eq!(t.insert(0x0a01_0203, 16, 5), Ok(None));
    assert_eq!(t.get(0x0a01_0000, 16), Some(5));
    assert_eq!(t.get(0x0a01_ffff, 16), Some(5));
    assert_eq!(t.insert(0x0a01_0000, 16, 6), Ok(Some(5)));
    t.insert(0x0a01_0280, 25, 7).unwrap();
    t.insert(0x0a01_0000, 20, 8).unwrap();
    t.insert(0, 0, 9).unwrap();
    assert_eq!(t.lookup(0x0a01_0281), 7);
    assert_eq!(t.lookup(0x0a01_0201), 8);
    assert_eq!(t.lookup(0x0a01_f201), 6);
    assert_eq!(t.lookup(0x0b00_0000), 9);
    // A /16 inserted later must not overwrite the /20 and /25 below it.
    t.insert(0x0a00_0000, 8, 10).unwrap();
    assert_eq!(t.lookup(0x0a01_0281), 7);
    assert_eq!(t.lookup(0x0a02_0000), 10);
    assert_eq!(t.remove(0x0a01_0280, 25), Some(7));
    assert_eq!(t.lookup(0x0a01_0281), 8);
    assert_eq!(t.tbl8_groups_in_use(), 0);
    assert_eq!(t.remove(0, 0), Some(9));
    assert_eq!(t.lookup(0x0b00_0000), NO_ROUTE);
    t.insert(0xffff_ffff, 32, 11).unwrap();
    assert_eq!(t.lookup(0xffff_ffff), 11);
    assert_eq!(t.lookup(0xffff_fffe), NO_ROUTE);
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
    let prefixes = gen::ipv4_prefixes(50_000, 7);
    let mut p = Pair::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        p.insert(a, l, i as u32);
    }
    let mut rng = SmallRng::seed_from_u64(3);
    p.check(&mut rng, 100_000);
    for &(a, l) in prefixes.iter().step_by(3) {
        p.remove(a, l);
    }
    p.check(&mut rng, 100_000);
}

#[test]
fn replicas_agree_and_memory_is_reclaimed() {
    let prefixes = gen::ipv4_prefixes(20_000, 11);
    let mut a = Lpm4::new();
    let mut rng = SmallRng::seed_from_u64(5);
    for (i, &(x, l)) in prefixes.iter().enumerate() {
        a.insert(x, l, i as u32).unwrap();
    }
    let mut b = a.clone();
    let mut c = Lpm4::new();
    for (i, &(x, l)) in prefixes.iter().enumerate() {
        c.insert(x, l, i as u32).unwrap();
    }
    let mut mem_after_first = 0;
    let base_groups = a.tbl8_groups_allocated();
    // Churn long prefixes in and out; apply the same changes to all copies.
    for round in 0..5 {
        let extra: Vec<(u32, u8)> = (0..2000)
            .map(|_| {
                let l = rng.gen_range(25..=32);
                (rng.gen::<u32>() & mask4(l), l)
            })
            .collect();
        for t in [&mut a, &mut b, &mut c] {
            for (i, &(x, l)) in extra.iter().enumerate() {
                if t.get(x, l).is_none() {
                    t.insert(x, l, (round * 10_000 + i) as u32).unwrap();
                }
            }
        }
        for t in [&mut a, &mut b, &mut c] {
            for &(x, l) in &extra {
                if prefixes.binary_search(&(x, l)).is_err() {
                    t.remove(x, l);
                }
            }
        }
        let addrs = gen::random_addrs_v4(20_000, round as u64);
        for &x in &addrs {
            assert_eq!(a.lookup(x), b.lookup(x));
            assert_eq!(a.lookup(x), c.lookup(x));
        }
        // Groups freed by the removals are reused, not leaked.
        assert!(a.tbl8_groups_allocated() <= base_groups + 2000);
        if round == 0 {
            mem_after_first = a.memory_bytes();
        } else {
            assert!(a.memory_bytes() <= mem_after_first + mem_after_first / 20);
        }
    }
    assert!(a.tbl8_groups_allocated() <= base_groups + 2000);
    let groups = a.tbl8_groups_in_use();
    let mut s: Vec<u32> = a.iter().filter(|p| p.1 > 24).map(|p| p.0 >> 8).collect();
    s.sort_unstable();
    s.dedup();
    assert_eq!(groups, s.len());
    // Further churn rounds allocate no new groups at all.
    let before = a.tbl8_groups_allocated();
    for _ in 0..3 {
        for &(x, l) in &prefixes {
            if l > 24 {
                a.remove(x, l);
            }
        }
        for (i, &(x, l)) in prefixes.iter().enumerate() {
            if l > 24 {
                a.insert(x, l, i as u32).unwrap();
            }
        }
    }
    assert_eq!(a.tbl8_groups_allocated(), before);
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u32, u8, u32),
    Remove(usize),
}

fn len() -> impl Strategy<Value = u8> {
    // Every length occurs, but the huge spans of very short prefixes are
    // kept rare so the debug-mode run stays quick.
    prop_oneof![
        1 => 0u8..=12,
        2 => Just(0u8),
        2 => Just(32u8),
        20 => 13u8..=32,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Addresses from a tiny pool of bit patterns so prefixes nest heavily.
    let addr = prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        (0u32..16).prop_map(|x| 0x0a0a_0a00 | x << 2),
        (0u32..16).prop_map(|x| x << 28),
        any::<u32>(),
    ];
    prop_oneof![
        3 => (addr, len(), 0u32..1000).prop_map(|(a, l, v)| Op::Insert(a, l, v)),
        1 => any::<usize>().prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn prop_matches_reference(ops in proptest::collection::vec(op(), 1..120)) {
        let mut p = Pair::new();
        let mut live = Vec::new();
        let mut probe = vec![0u32, u32::MAX];
        for o in ops {
            match o {
                Op::Insert(a, l, v) => {
                    p.insert(a, l, v);
                    live.push((a, l));
                    let f = a & mask4(l);
                    let last = f | !mask4(l);
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
