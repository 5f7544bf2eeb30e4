//! IPv4 longest-prefix match: DIR-24-8.
//!
//! * `tbl24` has one `u32` entry per /24 (2^24 entries, 64 MiB of address
//!   space allocated zeroed, so untouched pages are never backed; advised for
//!   transparent huge pages).
//! * An entry is `0` (no route more specific than the default), `value + 1`
//!   (a leaf), or `EXT | group` pointing at a tbl8 group of 256 entries
//!   (same leaf encoding) for /24s that contain prefixes longer than /24.
//! * The /0 default lives outside the tables, so a lookup is
//!   `e = tbl24[a >> 8]; if ext { e = tbl8[g*256 + (a & 255)] }; e == 0 ? default : e - 1`.
//!
//! Control side: the prefixes per length (hash maps, for exact get, iteration
//! and finding the next less specific prefix on removal) and one depth byte
//! per table entry (the length of the prefix that wrote it). Insert writes
//! only entries whose depth is `<=` its length, so more specific prefixes
//! below it are untouched; remove rewrites only entries whose depth equals
//! its length with the next less specific prefix. Both cost O(span). tbl8
//! groups are reference counted by the number of >/24 prefixes in them and
//! returned to a free list when that drops to zero.

use std::collections::HashMap;

use crate::gen::mask4;
use crate::{advise_hugepages, check, clone_sparse, prefetch, FibError, MixBuild, NO_ROUTE};

const EXT: u32 = 1 << 31;
const TBL24: usize = 1 << 24;

/// DIR-24-8 IPv4 LPM table. See the module docs.
pub struct Lpm4 {
    tbl24: Vec<u32>,
    depth24: Vec<u8>,
    tbl8: Vec<u32>,
    depth8: Vec<u8>,
    /// Per tbl8 group: number of prefixes longer than /24 inside it.
    group_refs: Vec<u32>,
    free_groups: Vec<u32>,
    default: u32,
    /// Control record: prefixes of each length (index = length).
    routes: Vec<HashMap<u32, u32, MixBuild>>,
    /// Bit `l` set if some prefix of length `l` is present.
    present: u64,
    count: usize,
}

impl Default for Lpm4 {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Lpm4 {
    fn clone(&self) -> Self {
        let tbl24 = clone_sparse(&self.tbl24);
        advise_hugepages(&tbl24);
        Lpm4 {
            tbl24,
            depth24: clone_sparse(&self.depth24),
            tbl8: self.tbl8.clone(),
            depth8: self.depth8.clone(),
            group_refs: self.group_refs.clone(),
            free_groups: self.free_groups.clone(),
            default: self.default,
            routes: self.routes.clone(),
            present: self.present,
            count: self.count,
        }
    }
}

impl std::fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm4")
            .field("len", &self.count)
            .field("tbl8_groups", &self.tbl8_groups_in_use())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl Lpm4 {
    /// Creates an empty table. Allocates 64 MiB + 16 MiB of zeroed virtual
    /// memory; only pages that routes touch get backed.
    pub fn new() -> Self {
        let tbl24 = vec![0u32; TBL24];
        advise_hugepages(&tbl24);
        Lpm4 {
            tbl24,
            depth24: vec![0u8; TBL24],
            tbl8: Vec::new(),
            depth8: Vec::new(),
            group_refs: Vec::new(),
            free_groups: Vec::new(),
            default: NO_ROUTE,
            routes: (0..=32).map(|_| HashMap::default()).collect(),
            present: 0,
            count: 0,
        }
    }

    /// Number of prefixes stored (including a /0 default).
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Inserts or replaces `addr/len -> value`. Host bits of `addr` are
    /// ignored. Returns the previous value of exactly this prefix.
    ///
    /// Errors: `len > 32`, `value >= 2^30`. Cost: O(2^(24-len)) entries for
    /// `len <= 24` (times 256 for /24s holding longer prefixes), O(256) for
    /// longer prefixes.
    pub fn insert(&mut self, addr: u32, len: u8, value: u32) -> Result<Option<u32>, FibError> {
        check(len, 32, value)?;
        let addr = addr & mask4(len);
        let old = self.routes[len as usize].insert(addr, value);
        if old.is_none() {
            self.count += 1;
            self.present |= 1 << len;
        }
        if old == Some(value) {
            return Ok(old);
        }
        let ent = value + 1;
        if len == 0 {
            self.default = value;
        } else if len <= 24 {
            let lo = (addr >> 8) as usize;
            let hi = lo + (1usize << (24 - len));
            for i in lo..hi {
                let e = self.tbl24[i];
                if e & EXT != 0 {
                    let g = ((e & !EXT) as usize) << 8;
                    for j in g..g + 256 {
                        if self.depth8[j] <= len {
                            self.tbl8[j] = ent;
                            self.depth8[j] = len;
                        }
                    }
                } else if self.depth24[i] <= len {
                    self.tbl24[i] = ent;
                    self.depth24[i] = len;
                }
            }
        } else {
            let i = (addr >> 8) as usize;
            let mut e = self.tbl24[i];
            if e & EXT == 0 {
                let g = self.alloc_group(e, self.depth24[i]);
                e = EXT | g;
                self.tbl24[i] = e;
            }
            let g = (e & !EXT) as usize;
            if old.is_none() {
                self.group_refs[g] += 1;
            }
            let lo = (g << 8) | (addr & 0xff) as usize;
            let hi = lo + (1usize << (32 - len));
            for j in lo..hi {
                if self.depth8[j] <= len {
                    self.tbl8[j] = ent;
                    self.depth8[j] = len;
                }
            }
        }
        Ok(old)
    }

    /// Removes exactly `addr/len` (host bits ignored); returns its value.
    pub fn remove(&mut self, addr: u32, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        let addr = addr & mask4(len);
        let old = self.routes[len as usize].remove(&addr)?;
        self.count -= 1;
        if self.routes[len as usize].is_empty() {
            self.present &= !(1 << len);
        }
        if len == 0 {
            self.default = NO_ROUTE;
            return Some(old);
        }
        let (rent, rlen) = self.covering(addr, len);
        if len <= 24 {
            let lo = (addr >> 8) as usize;
            let hi = lo + (1usize << (24 - len));
            for i in lo..hi {
                let e = self.tbl24[i];
                if e & EXT != 0 {
                    let g = ((e & !EXT) as usize) << 8;
                    for j in g..g + 256 {
                        if self.depth8[j] == len {
                            self.tbl8[j] = rent;
                            self.depth8[j] = rlen;
                        }
                    }
                } else if self.depth24[i] == len {
                    self.tbl24[i] = rent;
                    self.depth24[i] = rlen;
                }
            }
        } else {
            let i = (addr >> 8) as usize;
            let e = self.tbl24[i];
            debug_assert!(e & EXT != 0);
            let g = (e & !EXT) as usize;
            self.group_refs[g] -= 1;
            if self.group_refs[g] == 0 {
                // Only <= /24 routes left: the group is uniform; collapse it.
                let base = g << 8;
                debug_assert!(rlen <= 24, "no >/24 prefix left in this /24");
                let (ent, d) = (rent, rlen);
                debug_assert!(self.tbl8[base..base + 256]
                    .iter()
                    .enumerate()
                    .all(|(k, &x)| x == ent || self.depth8[base + k] == len));
                self.tbl24[i] = ent;
                self.depth24[i] = d;
                self.free_groups.push(g as u32);
            } else {
                let lo = (g << 8) | (addr & 0xff) as usize;
                let hi = lo + (1usize << (32 - len));
                for j in lo..hi {
                    if self.depth8[j] == len {
                        self.tbl8[j] = rent;
                        self.depth8[j] = rlen;
                    }
                }
            }
        }
        Some(old)
    }

    /// Value of exactly `addr/len` (host bits ignored), if present.
    pub fn get(&self, addr: u32, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        self.routes[len as usize].get(&(addr & mask4(len))).copied()
    }

    /// Longest-prefix match; [`NO_ROUTE`] if nothing matches.
    #[inline(always)]
    pub fn lookup(&self, addr: u32) -> u32 {
        // SAFETY: tbl24 has exactly 2^24 entries and `addr >> 8 < 2^24`.
        let mut e = unsafe { *self.tbl24.get_unchecked((addr >> 8) as usize) };
        if e & EXT != 0 {
            let j = (((e & !EXT) as usize) << 8) | (addr & 0xff) as usize;
            debug_assert!(j < self.tbl8.len());
            // SAFETY: EXT entries always name an allocated tbl8 group.
            e = unsafe { *self.tbl8.get_unchecked(j) };
        }
        if e == 0 {
            self.default
        } else {
            e - 1
        }
    }

    /// Looks up `addrs[i]` into `out[i]`, prefetching tbl24 entries a few
    /// addresses ahead so that cache and TLB misses overlap.
    ///
    /// Panics if `out` is shorter than `addrs`.
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [u32]) {
        const AHEAD: usize = 12;
        assert!(out.len() >= addrs.len(), "output slice too short");
        let n = addrs.len();
        let t = self.tbl24.as_ptr();
        for &a in &addrs[..AHEAD.min(n)] {
            prefetch(t.wrapping_add((a >> 8) as usize));
        }
        let split = n.saturating_sub(AHEAD);
        for i in 0..split {
            prefetch(t.wrapping_add((addrs[i + AHEAD] >> 8) as usize));
            out[i] = self.lookup(addrs[i]);
        }
        for i in split..n {
            out[i] = self.lookup(addrs[i]);
        }
    }

    /// Iterates over all `(addr, len, value)` (unspecified order).
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, u32)> + '_ {
        self.routes
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.iter().map(move |(&a, &v)| (a, l as u8, v)))
    }

    /// Bytes allocated: tbl24 (64 MiB virtual, lazily backed) + tbl8 groups
    /// + control-side depth arrays and prefix maps (estimated).
    pub fn memory_bytes(&self) -> usize {
        self.dataplane_bytes()
            + self.depth24.len()
            + self.depth8.capacity()
            + self.group_refs.capacity() * 4
            + self.free_groups.capacity() * 4
            + self.routes.iter().map(|m| m.capacity() * 9).sum::<usize>()
    }

    /// Bytes read by lookups: tbl24 plus allocated tbl8 groups.
    pub fn dataplane_bytes(&self) -> usize {
        self.tbl24.len() * 4 + self.tbl8.capacity() * 4
    }

    /// tbl8 groups currently in use.
    pub fn tbl8_groups_in_use(&self) -> usize {
        self.group_refs.len() - self.free_groups.len()
    }

    /// tbl8 groups ever allocated (in use + free list).
    pub fn tbl8_groups_allocated(&self) -> usize {
        self.group_refs.len()
    }

    /// Value entry and depth of the longest prefix strictly shorter than
    /// `len` covering `addr` (entry 0 / depth 0 if only the default).
    fn covering(&self, addr: u32, len: u8) -> (u32, u8) {
        let mut bits = self.present & ((1u64 << len) - 1) & !1;
        while bits != 0 {
            let l = 63 - bits.leading_zeros() as u8;
            if let Some(&v) = self.routes[l as usize].get(&(addr & mask4(l))) {
                return (v + 1, l);
            }
            bits &= !(1u64 << l);
        }
        (0, 0)
    }

    fn alloc_group(&mut self, ent: u32, depth: u8) -> u32 {
        let g = match self.free_groups.pop() {
            Some(g) => g,
            None => {
                let g = self.group_refs.len() as u32;
                assert!(g < EXT >> 8, "tbl8 exhausted");
                self.group_refs.push(0);
                self.tbl8.resize(self.tbl8.len() + 256, 0);
                self.depth8.resize(self.depth8.len() + 256, 0);
                g
            }
        };
        let base = (g as usize) << 8;
        self.tbl8[base..base + 256].fill(ent);
        self.depth8[base..base + 256].fill(depth);
        self.group_refs[g as usize] = 0;
        g
    }
}
