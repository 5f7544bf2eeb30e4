//! The one hash index NAT uses for everything it looks up (sessions by
//! either direction's 5-tuple, mappings by either endpoint, counters by
//! key): open addressing over cache-line buckets of seven 64-bit slots,
//! allocated once, shared by every worker without locks.
//!
//! A slot holds a 32-bit tag (from the key's hash, never 0) and a 32-bit
//! value (an entry's index, or a count); 0 is an empty slot. A key lives in
//! its home bucket or, when that is full, in the next ones; each bucket
//! counts the entries that passed it while it was full (F14's overflow
//! count), so a lookup stops at the first bucket whose count is 0 and a
//! removal needs no tombstone. Inserts and removals are single
//! compare-and-swaps; a lookup racing an insert may miss it, which NAT
//! treats like a packet that came a moment earlier.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Slots per bucket: seven and the overflow count fill a cache line.
pub const SLOTS: usize = 7;

#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    overflow: AtomicU32,
    _pad: u32,
    slots: [AtomicU64; SLOTS],
}

/// How far an insert looks before calling the index full.
const MAX_PROBE: usize = 64;

pub struct Index {
    buckets: Box<[Bucket]>,
}

/// A key's place in an index: its hash, from which the home bucket and
/// the tag come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash(pub u64);

impl Hash {
    #[inline(always)]
    fn tag(self) -> u64 {
        ((self.0 >> 32) | 1) << 32
    }
}

#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let m = (a as u128).wrapping_mul(b as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

/// A seeded hash of two key words (wyhash's mixing step): seeds are per
/// store and random, so crafted flows cannot pile into one bucket.
#[inline(always)]
pub fn hash2(seed: [u64; 2], a: u64, b: u64) -> Hash {
    Hash(mix(a ^ seed[0], b ^ seed[1] ^ 0xe703_7ed1_a0b4_28db) ^ seed[0])
}

impl Index {
    /// An index for about `entries` entries at most 80% full.
    pub fn with_capacity(entries: usize) -> Index {
        let n = (entries * 5 / 4).div_ceil(SLOTS).max(2);
        Index {
            buckets: (0..n).map(|_| Bucket::default()).collect(),
        }
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    #[inline(always)]
    fn home(&self, h: Hash) -> usize {
        (((h.0 as u32) as u64 * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Bring the key's home bucket into the cache.
    #[inline(always)]
    pub fn prefetch(&self, h: Hash) {
        crate::prefetch::read(&self.buckets[self.home(h)]);
    }

    /// The first value in `h`'s home bucket under its tag, unchecked: what
    /// to prefetch before `find` checks it.
    #[inline(always)]
    pub fn candidate(&self, h: Hash) -> Option<u32> {
        let tag = h.tag();
        self.buckets[self.home(h)]
            .slots
            .iter()
            .map(|s| s.load(Relaxed))
            .find(|v| v & !0xffff_ffff == tag)
            .map(|v| v as u32)
    }

    /// The first value under `h`'s tag that `is` accepts.
    #[inline]
    pub fn find(&self, h: Hash, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = h.tag();
        let mut b = self.home(h);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            for s in &bucket.slots {
                let v = s.load(Acquire);
                if v & !0xffff_ffff == tag && is(v as u32) {
                    return Some(v as u32);
                }
            }
            if bucket.overflow.load(Relaxed) == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Add `value` under `h`. False when no slot is free near its home.
    pub fn insert(&self, h: Hash, value: u32) -> bool {
        let entry = h.tag() | value as u64;
        let home = self.home(h);
        let mut b = home;
        for probe in 0..MAX_PROBE.min(self.buckets.len()) {
            for s in &self.buckets[b].slots {
                if s.load(Relaxed) == 0 && s.compare_exchange(0, entry, Release, Relaxed).is_ok() {
                    // Count this entry in every full bucket it passed.
                    let mut p = home;
                    for _ in 0..probe {
                        self.buckets[p].overflow.fetch_add(1, Release);
                        p = self.next(p);
                    }
                    return true;
                }
            }
            b = self.next(b);
        }
        false
    }

    /// Remove the entry `value` under `h`; false if it is not there.
    pub fn remove(&self, h: Hash, value: u32) -> bool {
        self.update(h, |v| (v == value).then_some(None))
    }

    /// Find the first entry under `h` for which `f` returns Some, and
    /// replace its value with the result (None removes it); retries when
    /// another thread changed the slot meanwhile. False if `f` accepted
    /// none.
    pub fn update(&self, h: Hash, mut f: impl FnMut(u32) -> Option<Option<u32>>) -> bool {
        let tag = h.tag();
        let home = self.home(h);
        'retry: loop {
            let mut b = home;
            for probe in 0..self.buckets.len() {
                let bucket = &self.buckets[b];
                for s in &bucket.slots {
                    let v = s.load(Acquire);
                    if v & !0xffff_ffff != tag {
                        continue;
                    }
                    let Some(new) = f(v as u32) else { continue };
                    let new_entry = new.map_or(0, |n| tag | n as u64);
                    if s.compare_exchange(v, new_entry, AcqRel, Relaxed).is_err() {
                        continue 'retry;
                    }
                    if new.is_none() {
                        let mut p = home;
                        for _ in 0..probe {
                            self.buckets[p].overflow.fetch_sub(1, Release);
                            p = self.next(p);
                        }
                    }
                    return true;
                }
                if bucket.overflow.load(Relaxed) == 0 {
                    return false;
                }
                b = self.next(b);
            }
            return false;
        }
    }

    /// Entries in use (a scan; for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|b| &b.slots)
            .filter(|s| s.load(Relaxed) != 0)
            .count()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counters by key in an index: the value is the count, the tag and home
/// bucket (about 40 bits of hash) stand for the key.
impl Index {
    /// Add one to `h`'s count unless it has reached `cap` (0: no cap).
    /// False when capped or the index is full.
    pub fn count_up(&self, h: Hash, cap: u32) -> bool {
        let mut capped = false;
        let found = self.update(h, |c| {
            capped = cap != 0 && c >= cap;
            Some(Some(if capped { c } else { c + 1 }))
        });
        if found {
            return !capped;
        }
        // Two threads may both find no entry and insert one each: the
        // count is then split, and the cap holds per entry.
        self.insert(h, 1)
    }

    /// Take one from `h`'s count, removing the entry at 0.
    pub fn count_down(&self, h: Hash) {
        self.update(h, |c| Some(if c <= 1 { None } else { Some(c - 1) }));
    }

    /// `h`'s count, 0 if absent.
    pub fn count(&self, h: Hash) -> u32 {
        let mut n = 0;
        self.find(h, |c| {
            n += c;
            false
        });
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_with_overflow() {
        let ix = Index::with_capacity(64);
        let h = Hash(0x1234_5678_0000_0001);
        // Far more entries with one home than a bucket holds.
        for v in 0..40 {
            assert!(ix.insert(h, v));
        }
        for v in 0..40 {
            assert_eq!(ix.find(h, |x| x == v), Some(v));
        }
        for v in (0..40).step_by(2) {
            assert!(ix.remove(h, v));
        }
        for v in 0..40 {
            assert_eq!(ix.find(h, |x| x == v).is_some(), v % 2 == 1, "{v}");
        }
        for v in (1..40).step_by(2) {
            assert!(ix.remove(h, v));
        }
        assert!(ix.is_empty());
        assert!(ix.buckets.iter().all(|b| b.overflow.load(Relaxed) == 0));
    }

    #[test]
    fn counts_with_a_cap() {
        let ix = Index::with_capacity(64);
        let h = Hash(77 << 40 | 5);
        assert!(ix.count_up(h, 3));
        assert!(ix.count_up(h, 3));
        assert!(ix.count_up(h, 3));
        assert!(!ix.count_up(h, 3));
        assert_eq!(ix.count(h), 3);
        ix.count_down(h);
        assert_eq!(ix.count(h), 2);
        ix.count_down(h);
        ix.count_down(h);
        assert_eq!(ix.count(h), 0);
        assert!(ix.is_empty());
    }

    #[test]
    fn a_full_index_refuses_and_keeps_what_it_has() {
        let ix = Index::with_capacity(7);
        let mut n = 0;
        while ix.insert(Hash((n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)), n) {
            n += 1;
            assert!(n < 1000);
        }
        for v in 0..n {
            assert!(ix
                .find(Hash((v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)), |x| x
                    == v)
                .is_some());
        }
    }
}
