//! Deterministic generators of synthetic routing tables and lookup addresses.
//!
//! Shared by the tests and by `weir bench`. Everything here is a pure function
//! of `(n, seed)`: the same arguments give the same output on every platform.

use std::collections::HashSet;

/// SplitMix64: tiny, fast, statistically decent, and fully deterministic.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Creates a generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed ^ 0x5851_F42D_4C95_7F2D)
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Next 32 random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Next 128 random bits.
    #[inline]
    pub fn next_u128(&mut self) -> u128 {
        ((self.next_u64() as u128) << 64) | self.next_u64() as u128
    }

    /// Uniform value in `0..n` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Picks an index from a table of integer weights.
fn pick(rng: &mut SplitMix64, weights: &[(u8, u32)]) -> u8 {
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut r = rng.below(total as u64) as u32;
    for &(len, w) in weights {
        if r < w {
            return len;
        }
        r -= w;
    }
    weights[weights.len() - 1].0
}

/// Mask of the first `len` bits of an IPv4 address.
#[inline]
pub fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// Mask of the first `len` bits of an IPv6 address.
#[inline]
pub fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

/// IPv4 length mix, in units of 1/100 %, roughly the shape of the public
/// Internet table: ~60 % /24, ~33 % /16–/23, the rest /8–/15 and /25–/32.
const V4_MIX: &[(u8, u32)] = &[
    (8, 1),
    (9, 1),
    (10, 3),
    (11, 10),
    (12, 30),
    (13, 50),
    (14, 90),
    (15, 120),
    (16, 140),
    (17, 90),
    (18, 150),
    (19, 260),
    (20, 420),
    (21, 470),
    (22, 900),
    (23, 850),
    (24, 6000),
    (25, 50),
    (26, 50),
    (27, 50),
    (28, 60),
    (29, 60),
    (30, 60),
    (31, 10),
    (32, 75),
];

/// `n` distinct IPv4 prefixes `(network, len)` with host bits zero, in
/// unicast space (first octet 1..=223), with an Internet-like length mix.
pub fn ipv4_prefixes(n: usize, seed: u64) -> Vec<(u32, u8)> {
    let mut rng = SplitMix64::new(seed ^ 0x1111);
    let mut seen: HashSet<(u32, u8)> = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut len = pick(&mut rng, V4_MIX);
        // Short lengths have few distinct values; avoid spinning on them.
        for _ in 0..8 {
            let addr = (1 + rng.below(223) as u32) << 24 | (rng.next_u32() & 0x00FF_FFFF);
            let p = (addr & mask4(len), len);
            if seen.insert(p) {
                out.push(p);
                break;
            }
            len = 24;
        }
    }
    out
}

/// IPv6 length mix, in units of 1/10 %: mostly /48, many /32–/44, some
/// /56–/64, a few /128 and short aggregates.
const V6_MIX: &[(u8, u32)] = &[
    (19, 2),
    (20, 3),
    (24, 3),
    (28, 5),
    (29, 20),
    (30, 5),
    (31, 3),
    (32, 140),
    (33, 10),
    (34, 10),
    (35, 10),
    (36, 30),
    (38, 5),
    (40, 60),
    (42, 15),
    (44, 60),
    (45, 10),
    (46, 20),
    (47, 20),
    (48, 480),
    (52, 5),
    (56, 40),
    (60, 5),
    (64, 25),
    (96, 2),
    (127, 2),
    (128, 10),
];

/// A random IPv6 address inside 2000::/3, biased like the real table:
/// 70 % fall in the densely used RIR blocks, 30 % anywhere in 2000::/3.
fn v6_addr(rng: &mut SplitMix64) -> u128 {
    // (top bits, block length)
    const BLOCKS: &[(u128, u8, u64)] = &[
        (0x2001, 16, 30),
        (0x240, 12, 15),
        (0x260, 12, 20),
        (0x280, 12, 5),
        (0x2a0, 12, 25),
        (0x2c0, 12, 5),
    ];
    let r = rng.next_u128();
    if rng.below(10) < 7 {
        let total: u64 = BLOCKS.iter().map(|b| b.2).sum();
        let mut x = rng.below(total);
        for &(top, blen, w) in BLOCKS {
            if x < w {
                let net = top << (128 - blen as u32);
                return net | (r & !mask6(blen));
            }
            x -= w;
        }
    }
    (0x2u128 << 124) | (r & !mask6(3))
}

/// `n` distinct IPv6 prefixes `(network, len)` inside 2000::/3, host bits
/// zero.
pub fn ipv6_prefixes(n: usize, seed: u64) -> Vec<(u128, u8)> {
    let mut rng = SplitMix64::new(seed ^ 0x6666);
    let mut seen: HashSet<(u128, u8)> = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut len = pick(&mut rng, V6_MIX);
        for _ in 0..8 {
            let p = (v6_addr(&mut rng) & mask6(len), len);
            if seen.insert(p) {
                out.push(p);
                break;
            }
            len = 48;
        }
    }
    out
}

/// `n` uniformly random IPv4 addresses.
pub fn random_addrs_v4(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed ^ 0x4444);
    (0..n).map(|_| rng.next_u32()).collect()
}

/// `n` random IPv6 addresses inside 2000::/3, with the same bias towards the
/// dense RIR blocks as [`ipv6_prefixes`] (so lookups walk deep paths).
pub fn random_addrs_v6(n: usize, seed: u64) -> Vec<u128> {
    let mut rng = SplitMix64::new(seed ^ 0x8888);
    (0..n).map(|_| v6_addr(&mut rng)).collect()
}

/// `n` addresses each drawn from inside a randomly chosen prefix of
/// `prefixes` (every lookup hits a route, usually the deepest path).
pub fn addrs_in_prefixes_v6(prefixes: &[(u128, u8)], n: usize, seed: u64) -> Vec<u128> {
    let mut rng = SplitMix64::new(seed ^ 0x9999);
    (0..n)
        .map(|_| {
            let (a, l) = prefixes[rng.below(prefixes.len() as u64) as usize];
            a | (rng.next_u128() & !mask6(l))
        })
        .collect()
}

/// `n` addresses each drawn from inside a randomly chosen prefix of
/// `prefixes`.
pub fn addrs_in_prefixes_v4(prefixes: &[(u32, u8)], n: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed ^ 0x7777);
    (0..n)
        .map(|_| {
            let (a, l) = prefixes[rng.below(prefixes.len() as u64) as usize];
            a | (rng.next_u32() & !mask4(l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mix_distinct_deterministic() {
        let p = ipv4_prefixes(50_000, 1);
        assert_eq!(p, ipv4_prefixes(50_000, 1));
        assert_ne!(p, ipv4_prefixes(50_000, 2));
        let set: HashSet<_> = p.iter().collect();
        assert_eq!(set.len(), p.len());
        assert!(p
            .iter()
            .all(|&(a, l)| a & !mask4(l) == 0 && (8..=32).contains(&l)));
        let frac =
            |f: &dyn Fn(u8) -> bool| p.iter().filter(|x| f(x.1)).count() as f64 / p.len() as f64;
        let f24 = frac(&|l| l == 24);
        let fmid = frac(&|l| (16..24).contains(&l));
        assert!((0.55..0.65).contains(&f24), "{f24}");
        assert!((0.27..0.37).contains(&fmid), "{fmid}");
    }

    #[test]
    fn v6_mix_distinct_deterministic() {
        let p = ipv6_prefixes(20_000, 1);
        assert_eq!(p, ipv6_prefixes(20_000, 1));
        let set: HashSet<_> = p.iter().collect();
        assert_eq!(set.len(), p.len());
        assert!(p.iter().all(|&(a, l)| a & !mask6(l) == 0 && a >> 125 == 1));
        let f48 = p.iter().filter(|x| x.1 == 48).count() as f64 / p.len() as f64;
        assert!(f48 > 0.4, "{f48}");
        assert!(p.iter().any(|x| x.1 == 128));
        assert!(random_addrs_v6(1000, 3).iter().all(|a| a >> 125 == 1));
        assert_eq!(random_addrs_v4(10, 3), random_addrs_v4(10, 3));
    }
}
