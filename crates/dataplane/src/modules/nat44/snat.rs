//! Source NAT's slow path: an inside endpoint's mapping, reused for every
//! destination (endpoint-independent mapping, RFC 4787 REQ-1) or made
//! with an outside address from the pool (the same one for an inside
//! address when pooling is paired, REQ-2) and a random port (RFC 6056)
//! from the range its inside port belongs to, of the same parity.

use super::rules::{Action, Ports, Rule, Rules};
use super::store::{Refused, Store};
use weir_packet::nat4::Tuple4;

/// Random candidates tried per pool address before giving up.
const TRIES: u32 = 64;

/// A per-worker xorshift generator: port choice needs unpredictability
/// against off-path guessing, not cryptographic strength.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        use std::hash::BuildHasher;
        // Seeded like std's hash maps: random per process and instance.
        Rng(std::collections::hash_map::RandomState::new().hash_one(0x6e6174u64) | 1)
    }
    #[inline]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// The ports a mapping for `t` may take.
fn range_for(t: &Tuple4, ports: Option<Ports>) -> Option<Ports> {
    if !matches!(t.proto, 6 | 17 | 1) {
        return None;
    }
    Some(ports.unwrap_or(if t.proto != 1 && t.sport < 1024 {
        Ports {
            first: 1,
            last: 1023,
        }
    } else {
        Ports {
            first: 1024,
            last: 65535,
        }
    }))
}

/// The mapping for `t`'s source under source NAT rule `rule`, taking a
/// reference on it: (mapping, outside address, outside port).
/// `masq` is the egress port's address, for masquerading rules.
#[allow(clippy::too_many_arguments)]
pub fn mapping(
    store: &Store,
    rules: &Rules,
    rule: &Rule,
    vrf: u16,
    t: &Tuple4,
    masq: Option<u32>,
    rng: &mut Rng,
    worker: usize,
) -> Result<(u32, u32, u16), Refused> {
    let Action::Snat {
        pool,
        ports,
        paired,
        ..
    } = &rule.action
    else {
        return Err(Refused::NoPort);
    };
    if let Some((m, a, p)) = store.mapping_for(vrf, t.proto, t.src, t.sport) {
        if rule.pool_has(a, masq) && ports.is_none_or(|r| r.contains(p)) {
            return Ok((m, a, p));
        }
        store.release_mapping(m);
    }
    let masq_pool;
    let pool: &[u32] = if pool.is_empty() {
        masq_pool = masq.into_iter().collect::<Vec<_>>();
        &masq_pool
    } else {
        pool
    };
    if pool.is_empty() {
        return Err(Refused::NoPort);
    }
    let (start, tries) = if *paired {
        // The same address for an inside address, whatever its ports.
        let h = (t.src as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        ((h % pool.len() as u64) as usize, 1)
    } else {
        ((rng.next() % pool.len() as u64) as usize, pool.len().min(4))
    };
    let range = range_for(t, *ports);
    for k in 0..tries {
        let addr = pool[(start + k) % pool.len()];
        let Some(r) = range else {
            // No ports: the address alone is the mapping.
            if !store.outside_in_use(t.proto, addr, 0) {
                if let Some(m) = store.new_mapping(worker, vrf, t.proto, (t.src, 0), (addr, 0)) {
                    return Ok((m, addr, 0));
                }
            }
            continue;
        };
        for _ in 0..TRIES {
            let mut port = r.first as u32 + (rng.next() % r.count() as u64) as u32;
            // Keep the inside port's parity (RFC 4787 4.2.2) where the
            // range allows; ICMP identifiers have none to keep.
            if t.proto != 1 && r.count() > 1 && (port ^ t.sport as u32) & 1 != 0 {
                port = if port < r.last as u32 {
                    port + 1
                } else {
                    port - 1
                };
            }
            let port = port as u16;
            if store.outside_in_use(t.proto, addr, port) || rules.forwarded(t.proto, addr, port) {
                continue;
            }
            if let Some(m) = store.new_mapping(worker, vrf, t.proto, (t.src, t.sport), (addr, port))
            {
                return Ok((m, addr, port));
            }
        }
    }
    Err(Refused::NoPort)
}
