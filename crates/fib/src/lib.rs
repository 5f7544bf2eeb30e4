//! Longest-prefix-match tables for the weir forwarding plane.
//!
//! * [`Lpm4`]: DIR-24-8 for IPv4 (one memory read per lookup, two for
//!   prefixes longer than /24).
//! * [`Lpm6`]: poptrie-style compressed multibit trie for IPv6 behind a
//!   direct-pointing first level on the top 18 bits.
//!
//! Values are next-hop ids in `0..(1 << 30)`; lookups return [`NO_ROUTE`] on
//! a miss. Addresses are host-order integers. Host bits of inserted, removed
//! or queried prefixes are ignored (masked off), as in `prefix_trie`.
//!
//! Both tables are deterministic: applying the same sequence of changes to two
//! tables yields identical lookups, so a dataplane can keep an active and a
//! standby copy and replay changes on the standby one.

pub mod bench;
pub mod gen;
pub mod lpm4;
pub mod lpm6;

pub use lpm4::Lpm4;
pub use lpm6::Lpm6;

/// Returned by lookups when no prefix (not even a default route) matches.
pub const NO_ROUTE: u32 = u32::MAX;

/// Largest value (exclusive) that can be stored: next-hop ids are 30 bits.
pub const VALUE_LIMIT: u32 = 1 << 30;

/// Errors of table updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// The prefix length is longer than the address.
    #[error("prefix length {len} exceeds {max}")]
    PrefixTooLong {
        /// Requested length.
        len: u8,
        /// Address width (32 or 128).
        max: u8,
    },
    /// The value does not fit in 30 bits.
    #[error("next-hop value {0} out of range (must be below 2^30 = 1073741824)")]
    ValueOutOfRange(u32),
}

/// Small, fast, well-mixing hasher for integer keys of the control-side
/// prefix records (SipHash is needlessly slow for a 1M-route build).
#[derive(Default, Clone, Copy)]
pub(crate) struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0 ^ i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0 ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type MixBuild = std::hash::BuildHasherDefault<MixHasher>;

/// Validates a value and prefix length.
#[inline]
pub(crate) fn check(len: u8, max: u8, value: u32) -> Result<(), FibError> {
    if len > max {
        return Err(FibError::PrefixTooLong { len, max });
    }
    if value >= VALUE_LIMIT {
        return Err(FibError::ValueOutOfRange(value));
    }
    Ok(())
}

/// Prefetches the cache line holding `p` into all cache levels.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, even on invalid addresses.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}

/// Allocates a zeroed vector of `n` elements (calloc: the kernel backs pages
/// lazily) and copies only the non-zero pages of `src` into it, so cloning a
/// sparse table does not back its untouched pages.
pub(crate) fn clone_sparse<T: Copy + Default + PartialEq>(src: &[T]) -> Vec<T> {
    let mut v = vec![T::default(); src.len()];
    let chunk = 4096 / std::mem::size_of::<T>().max(1);
    let zero = T::default();
    for (d, s) in v.chunks_mut(chunk).zip(src.chunks(chunk)) {
        if s.iter().any(|x| *x != zero) {
            d.copy_from_slice(s);
        }
    }
    v
}

/// Asks for transparent huge pages on a large table (cuts TLB misses of
/// random lookups). Best effort; failures are ignored.
pub(crate) fn advise_hugepages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + std::mem::size_of_val(v);
        let a = (start + HUGE - 1) & !(HUGE - 1);
        let b = end & !(HUGE - 1);
        if b > a {
            // SAFETY: the range lies inside the live allocation of `v`;
            // MADV_HUGEPAGE only changes the paging policy, not contents.
            unsafe {
                libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}
