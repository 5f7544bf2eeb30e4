//! Side-by-side timing of our tables against `prefix_trie::PrefixMap`, used
//! by `weir bench`. Both are built from the same prefixes and time batch
//! lookups over the same addresses in the same run.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use crate::{Lpm4, Lpm6, NO_ROUTE};

/// Result of [`lpm4_compare`] / [`lpm6_compare`].
#[derive(Debug, Clone, PartialEq)]
pub struct LpmComparison {
    /// Prefixes in the table.
    pub prefixes: usize,
    /// Lookups per timed pass.
    pub lookups: usize,
    /// Our table: million lookups per second (best pass).
    pub mlookups: f64,
    /// Our table: nanoseconds per lookup (best pass).
    pub ns_per_lookup: f64,
    /// Reference: million lookups per second (best pass).
    pub reference_mlookups: f64,
    /// Reference: nanoseconds per lookup (best pass).
    pub reference_ns_per_lookup: f64,
    /// `mlookups / reference_mlookups`.
    pub ratio: f64,
    /// Time to build our table by inserting every prefix, in ms.
    pub build_ms: f64,
    /// Time to build the reference, in ms.
    pub reference_build_ms: f64,
    /// Our table's allocated bytes (see `memory_bytes`).
    pub memory_bytes: usize,
    /// Fraction of lookups that found a route.
    pub hit_ratio: f64,
    /// Results of both implementations agreed on every address.
    pub agree: bool,
}

/// Alias kept for the IPv4 call site.
pub type Lpm4Comparison = LpmComparison;
/// Alias kept for the IPv6 call site.
pub type Lpm6Comparison = LpmComparison;

const PASSES: usize = 3;

fn best_of(mut f: impl FnMut()) -> Duration {
    (0..PASSES)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn finish(
    prefixes: usize,
    lookups: usize,
    ours: Duration,
    theirs: Duration,
    build: Duration,
    rbuild: Duration,
    memory_bytes: usize,
    out: &[u32],
    agree: bool,
) -> LpmComparison {
    let n = lookups.max(1) as f64;
    let ns = ours.as_secs_f64() * 1e9 / n;
    let rns = theirs.as_secs_f64() * 1e9 / n;
    LpmComparison {
        prefixes,
        lookups,
        mlookups: 1e3 / ns,
        ns_per_lookup: ns,
        reference_mlookups: 1e3 / rns,
        reference_ns_per_lookup: rns,
        ratio: rns / ns,
        build_ms: build.as_secs_f64() * 1e3,
        reference_build_ms: rbuild.as_secs_f64() * 1e3,
        memory_bytes,
        hit_ratio: out.iter().filter(|&&v| v != NO_ROUTE).count() as f64 / n,
        agree,
    }
}

/// Builds an [`Lpm4`] and a `PrefixMap<Ipv4Net, u32>` from `prefixes`
/// (value = index) and times batch lookups of `addrs` through each.
pub fn lpm4_compare(prefixes: &[(u32, u8)], addrs: &[u32]) -> Lpm4Comparison {
    let t = Instant::now();
    let mut ours = Lpm4::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        ours.insert(a, l, i as u32).expect("valid prefix");
    }
    let build = t.elapsed();
    let t = Instant::now();
    let mut reference = PrefixMap::<Ipv4Net, u32>::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        reference.insert(Ipv4Net::new(Ipv4Addr::from(a), l).expect("len"), i as u32);
    }
    let rbuild = t.elapsed();

    let mut out = vec![0u32; addrs.len()];
    let mut rout = vec![0u32; addrs.len()];
    let dt = best_of(|| {
        ours.lookup_batch(black_box(addrs), &mut out);
        black_box(&mut out);
    });
    let rdt = best_of(|| {
        for (a, o) in black_box(addrs).iter().zip(rout.iter_mut()) {
            let q = Ipv4Net::new(Ipv4Addr::from(*a), 32).expect("len");
            *o = reference.get_lpm(&q).map_or(NO_ROUTE, |(_, v)| *v);
        }
        black_box(&mut rout);
    });
    finish(
        prefixes.len(),
        addrs.len(),
        dt,
        rdt,
        build,
        rbuild,
        ours.memory_bytes(),
        &out,
        out == rout,
    )
}

/// Builds an [`Lpm6`] and a `PrefixMap<Ipv6Net, u32>` from `prefixes`
/// (value = index) and times batch lookups of `addrs` through each.
pub fn lpm6_compare(prefixes: &[(u128, u8)], addrs: &[u128]) -> Lpm6Comparison {
    let t = Instant::now();
    let mut ours = Lpm6::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        ours.insert(a, l, i as u32).expect("valid prefix");
    }
    let build = t.elapsed();
    let t = Instant::now();
    let mut reference = PrefixMap::<Ipv6Net, u32>::new();
    for (i, &(a, l)) in prefixes.iter().enumerate() {
        reference.insert(Ipv6Net::new(Ipv6Addr::from(a), l).expect("len"), i as u32);
    }
    let rbuild = t.elapsed();

    let mut out = vec![0u32; addrs.len()];
    let mut rout = vec![0u32; addrs.len()];
    let dt = best_of(|| {
        ours.lookup_batch(black_box(addrs), &mut out);
        black_box(&mut out);
    });
    let rdt = best_of(|| {
        for (a, o) in black_box(addrs).iter().zip(rout.iter_mut()) {
            let q = Ipv6Net::new(Ipv6Addr::from(*a), 128).expect("len");
            *o = reference.get_lpm(&q).map_or(NO_ROUTE, |(_, v)| *v);
        }
        black_box(&mut rout);
    });
    finish(
        prefixes.len(),
        addrs.len(),
        dt,
        rdt,
        build,
        rbuild,
        ours.memory_bytes(),
        &out,
        out == rout,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen;

    #[test]
    fn comparisons_agree() {
        let c = lpm4_compare(
            &gen::ipv4_prefixes(5000, 1),
            &gen::random_addrs_v4(20_000, 2),
        );
        assert!(c.agree && c.mlookups > 0.0 && c.ratio > 0.0);
        let p6 = gen::ipv6_prefixes(5000, 1);
        let c = lpm6_compare(&p6, &gen::addrs_in_prefixes_v6(&p6, 20_000, 2));
        assert!(c.agree && c.hit_ratio == 1.0);
    }
}
