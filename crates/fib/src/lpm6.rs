//! IPv6 longest-prefix match: direct pointing on the top 18 bits, then a
//! poptrie (Asai & Ohara, SIGCOMM 2015) of 6-bit-stride compressed nodes.
//!
//! * `top[a >> 110]` (2^18 entries, 1 MiB) is either a leaf (`0` = default,
//!   `value + 1`) or `NODE | index` of the root node of that /18's subtree.
//!   With 18 bits (poptrie's recommendation) the node levels start at bits
//!   18, 24, 30, 36, 42, so a /48, the most common IPv6 route, ends exactly
//!   at the 5th node and a /32 at the 3rd.
//! * A node covers 6 address bits (the last level reads bits 126..128 padded
//!   with zeros). `vector` has a bit per position that continues in a child
//!   node; children are contiguous from `base1`, so child `i` is
//!   `base1 + popcnt(vector & mask(i)) - 1`. Leaf positions are compressed:
//!   `leafvec` marks where a run of equal leaves starts and the leaf is
//!   `leaves[base0 + popcnt(leafvec & mask(i)) - 1]`. A node is 40 bytes.
//! * Path compression: a node whose region holds only prefixes longer than
//!   its level and all in one child (a single child and only the inherited
//!   leaf) is not stored; its child takes its place and `skip`s its bits
//!   (up to 60). So a node's own 6 bits start at `off`, which it stores,
//!   with the address bits of its path before `off` (inverted, `path`);
//!   an address whose skipped bits differ gets the node's `miss` leaf (the
//!   leaf inherited at the first skipped bit). With 100k Internet-like
//!   prefixes this keeps a third of the nodes and a lookup takes 2.7 node
//!   steps instead of 4.75 (a lone /48 is one node at bit 42).
//! * Lookups take `s = 63 - i` from the inverted address (`nk`); for a node
//!   whose 6 bits lie in the high half (`off <= 58`, every level up to /64)
//!   the path check and the extraction are one shift: `path` is 0 from
//!   `off` on, so `(nk ^ path) >> (58 - off)` is `s` on the node's path and
//!   more than 63 off it. `vector << s` has position `i` in its sign bit and
//!   `popcnt` of it is the child's rank, with no separate mask or bit test.
//! * `lookup_batch` walks 32 addresses level by level: per level, each lane
//!   still in the trie takes one step (child or leaf) and prefetches what it
//!   reads next, so the cache misses of all lanes overlap. Lanes hold the
//!   node's offset in u64 words plus one node (`5 * (index + 1)`), which
//!   folds the `- 1` and the 24-byte scaling into address arithmetic. Leaves
//!   are read in a final pass. (A branch-free step was measured slower.)
//! * Control side: all prefixes in a `BTreeMap<(addr, len), value>`, the
//!   covering <= /18 prefix of each top slot, and per-size free lists for the
//!   node and leaf blocks. An update of a prefix longer than /18 rebuilds only
//!   the subtree under the deepest existing node whose region contains it
//!   (found with one walk and one B-tree range scan), in place; a /18-or-
//!   shorter prefix rewrites the top slots it spans. A prefix ending in or
//!   diverging from a node's skipped bits rebuilds that node's subtree, and
//!   a removal that leaves a node with a single child and only the
//!   inherited leaf rebuilds it so it merges into its child's skip: the
//!   trie stays exactly the one a fresh build gives.

use std::collections::BTreeMap;

use crate::gen::mask6;
use crate::{check, clone_sparse, prefetch, FibError, NO_ROUTE};

const NODE: u32 = 1 << 31;
/// Address bits resolved by the direct-pointing top level.
const TOP_BITS: u32 = 18;
const TOP: usize = 1 << TOP_BITS;
/// Shift of an address that leaves its top-level slot.
const SLOT_SHIFT: u32 = 128 - TOP_BITS;
/// Most trie nodes on one path (the last one may be padded past bit 128).
const MAX_DEPTH: usize = (128 - TOP_BITS).div_ceil(STRIDE) as usize;
const STRIDE: u32 = 6;
/// Size of a node in u64 words.
const NODE_WORDS: usize = std::mem::size_of::<Node>() / 8;
/// Node indices stay below this, so `node_pos` fits in a u32 (and the index
/// in a top entry).
const MAX_NODES: usize = u32::MAX as usize / NODE_WORDS - 1;
const _: () = assert!(std::mem::size_of::<Node>() == NODE_WORDS * 8 && MAX_NODES < NODE as usize);
const _: () = assert!(std::mem::align_of::<Node>() == 8);
/// Addresses walked together by `lookup_batch`.
const LANES: usize = 32;

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
struct Node {
    vector: u64,
    leafvec: u64,
    /// Inverted address bits of the node's path up to `off`, as the 64-bit
    /// window ending at `max(off, 64)` (see [`Node::mismatch`]); bits from
    /// `off` on are 0.
    path: u64,
    base0: u32,
    base1: u32,
    /// Leaf entry of an address whose skipped bits differ from the path.
    miss: u32,
    /// Offset of the node's own 6 bits.
    off: u8,
    /// `64 - STRIDE - off` if `off <= 64 - STRIDE`, else `NO_SH`: for an
    /// address `a` (`nk = !(a >> 64)`), `(nk ^ path) >> sh` is the step's
    /// shift (see [`shift_of`]) if `a` is on the node's path, else `> 63`.
    sh: u8,
    /// Path compression: address bits skipped before `off` (a multiple of
    /// `STRIDE`, at most `MAX_SKIP`), which the node would otherwise spend
    /// single-child nodes on.
    skip: u16,
}

impl Node {
    /// True if `a` (`nk = !(a >> 64)`) is not on the node's path: its bits
    /// before `off` differ from `path`. Only the skipped bits can differ for
    /// an address that reached the node.
    #[inline(always)]
    fn mismatch(&self, a: u128, nk: u64) -> bool {
        let off = self.off as u32;
        if off <= 64 {
            (nk ^ self.path) >> (64 - off) != 0
        } else {
            !((a << (off - 64)) >> 64) as u64 != self.path
        }
    }
}

/// `Node::sh` of a node whose bits start deeper than the high half.
const NO_SH: u8 = u8::MAX;

/// The `path` of a node at `off` on the path of `a`.
fn path_bits(a: u128, off: u32) -> u64 {
    if off < 64 {
        !(a >> 64) as u64 & !(u64::MAX >> off)
    } else {
        !((a << (off - 64)) >> 64) as u64
    }
}

/// Most address bits a node skips (all within the 64-bit `path` window).
const MAX_SKIP: u32 = 10 * STRIDE;

/// Six bits of `a` starting at bit `off` (from the top); bits past 128 are 0.
#[inline(always)]
fn chunk(a: u128, off: u32) -> u32 {
    ((a << off) >> (128 - STRIDE)) as u32
}

/// `63 - chunk(a, off)`, given `nk = !(a >> 64)`: shifting a node's vector
/// left by it moves position `chunk` to bit 63 and drops the positions after
/// it, so the sign tells whether the position is set and `count_ones` is its
/// rank plus one.
#[inline(always)]
fn shift_of(a: u128, nk: u64, off: u32) -> u32 {
    if off <= 64 - STRIDE {
        ((nk << off) >> (64 - STRIDE)) as u32
    } else {
        63 - chunk(a, off)
    }
}

/// Position of node `idx` used by the batch walk: its offset in u64 words
/// plus one node (`+ 1` folds the `- 1` of `base + rank - 1` into the
/// address arithmetic).
#[inline(always)]
fn node_pos(idx: u32) -> u32 {
    idx.wrapping_add(1).wrapping_mul(NODE_WORDS as u32)
}

/// Mask of positions `0..=v`.
#[inline(always)]
fn upto(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

/// IPv6 LPM table. See the module docs.
pub struct Lpm6 {
    top: Vec<u32>,
    /// Length of the longest prefix of at most `TOP_BITS` covering each top
    /// slot (0: none).
    top_depth: Vec<u8>,
    /// Leaf entry of that prefix (0: default).
    top_base: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<u32>,
    /// Free blocks of nodes / leaves, indexed by block size (1..=64).
    free_nodes: Vec<Vec<u32>>,
    free_leaves: Vec<Vec<u32>>,
    live_nodes: usize,
    live_leaves: usize,
    default: u32,
    routes: BTreeMap<(u128, u8), u32>,
    len_count: Vec<u32>,
    popcnt: bool,
}

impl Clone for Lpm6 {
    fn clone(&self) -> Self {
        // The top-level arrays are allocated zeroed (backed lazily); copy
        // only their non-zero pages so a sparse table stays sparse.
        Lpm6 {
            top: clone_sparse(&self.top),
            top_depth: clone_sparse(&self.top_depth),
            top_base: clone_sparse(&self.top_base),
            nodes: self.nodes.clone(),
            leaves: self.leaves.clone(),
            free_nodes: self.free_nodes.clone(),
            free_leaves: self.free_leaves.clone(),
            live_nodes: self.live_nodes,
            live_leaves: self.live_leaves,
            default: self.default,
            routes: self.routes.clone(),
            len_count: self.len_count.clone(),
            popcnt: self.popcnt,
        }
    }
}

impl Default for Lpm6 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm6")
            .field("len", &self.routes.len())
            .field("nodes", &self.live_nodes)
            .field("leaves", &self.live_leaves)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl Lpm6 {
    /// Creates an empty table. The top level takes 2.25 MiB of zeroed
    /// allocations (1 MiB read by lookups), backed by the kernel only where
    /// written.
    pub fn new() -> Self {
        Lpm6 {
            top: vec![0; TOP],
            top_depth: vec![0; TOP],
            top_base: vec![0; TOP],
            nodes: Vec::new(),
            leaves: Vec::new(),
            free_nodes: vec![Vec::new(); 65],
            free_leaves: vec![Vec::new(); 65],
            live_nodes: 0,
            live_leaves: 0,
            default: NO_ROUTE,
            routes: BTreeMap::new(),
            len_count: vec![0; 129],
            popcnt: has_popcnt(),
        }
    }

    /// Number of prefixes stored (including a ::/0 default).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True if no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Inserts or replaces `addr/len -> value`. Host bits of `addr` are
    /// ignored. Returns the previous value of exactly this prefix.
    ///
    /// Errors: `len > 128`, `value >= 2^30`.
    pub fn insert(&mut self, addr: u128, len: u8, value: u32) -> Result<Option<u32>, FibError> {
        check(len, 128, value)?;
        let addr = addr & mask6(len);
        let old = self.routes.insert((addr, len), value);
        if old.is_none() {
            self.len_count[len as usize] += 1;
        }
        if old == Some(value) {
            return Ok(old);
        }
        if len == 0 {
            self.default = value;
        } else if len as u32 <= TOP_BITS {
            let lo = (addr >> SLOT_SHIFT) as usize;
            for slot in lo..lo + (1usize << (TOP_BITS - len as u32)) {
                if self.top_depth[slot] <= len {
                    self.set_slot_base(slot, value + 1, len);
                }
            }
        } else {
            self.refresh(addr, len);
        }
        Ok(old)
    }

    /// Removes exactly `addr/len` (host bits ignored); returns its value.
    pub fn remove(&mut self, addr: u128, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        let addr = addr & mask6(len);
        let old = self.routes.remove(&(addr, len))?;
        self.len_count[len as usize] -= 1;
        if len == 0 {
            self.default = NO_ROUTE;
        } else if len as u32 <= TOP_BITS {
            let (rent, rlen) = self.covering_short(addr, len);
            let lo = (addr >> SLOT_SHIFT) as usize;
            for slot in lo..lo + (1usize << (TOP_BITS - len as u32)) {
                if self.top_depth[slot] == len {
                    self.set_slot_base(slot, rent, rlen);
                }
            }
        } else {
            self.refresh(addr, len);
        }
        Some(old)
    }

    /// Value of exactly `addr/len` (host bits ignored), if present.
    pub fn get(&self, addr: u128, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        self.routes.get(&(addr & mask6(len), len)).copied()
    }

    /// Iterates over all `(addr, len, value)` in address order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, u8, u32)> + '_ {
        self.routes.iter().map(|(&(a, l), &v)| (a, l, v))
    }

    /// Bytes allocated: lookup structures plus an estimate of the
    /// control-side B-tree.
    pub fn memory_bytes(&self) -> usize {
        self.dataplane_bytes()
            + self.top_depth.capacity()
            + self.top_base.capacity() * 4
            + self.routes.len() * 48
            + self
                .free_nodes
                .iter()
                .chain(&self.free_leaves)
                .map(|v| v.capacity() * 4)
                .sum::<usize>()
    }

    /// Bytes read by lookups: top level, nodes and leaves.
    pub fn dataplane_bytes(&self) -> usize {
        self.top.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.leaves.capacity() * 4
    }

    /// Trie nodes in use.
    pub fn node_count(&self) -> usize {
        self.live_nodes
    }

    /// Leaf slots in use.
    pub fn leaf_count(&self) -> usize {
        self.live_leaves
    }

    /// Longest-prefix match; [`NO_ROUTE`] if nothing matches.
    #[inline]
    pub fn lookup(&self, addr: u128) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if self.popcnt {
            // SAFETY: the CPU supports popcnt (checked at construction).
            return unsafe { self.lookup_popcnt(addr) };
        }
        self.lookup_generic(addr)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn lookup_popcnt(&self, addr: u128) -> u32 {
        self.lookup_generic(addr)
    }

    #[inline(always)]
    fn lookup_generic(&self, addr: u128) -> u32 {
        let hi = (addr >> 64) as u64;
        let mut e = self.top_entry(hi);
        if e & NODE != 0 {
            let mut idx = e & !NODE;
            let nk = !hi;
            loop {
                let nd = self.node(idx);
                let s = if nd.sh != NO_SH {
                    let z = (nk ^ nd.path) >> nd.sh;
                    if z > 63 {
                        e = nd.miss;
                        break;
                    }
                    z as u32
                } else {
                    if nd.mismatch(addr, nk) {
                        e = nd.miss;
                        break;
                    }
                    shift_of(addr, nk, nd.off as u32)
                };
                let x = nd.vector << s;
                if (x as i64) < 0 {
                    idx = nd.base1 + x.count_ones() - 1;
                } else {
                    e = self.leaf(nd.base0 + (nd.leafvec << s).count_ones() - 1);
                    break;
                }
            }
        }
        self.decode(e)
    }

    /// Top-level entry of the address whose high half is `hi`.
    #[inline(always)]
    fn top_entry(&self, hi: u64) -> u32 {
        let slot = (hi >> (64 - TOP_BITS)) as usize;
        debug_assert_eq!(self.top.len(), TOP);
        // SAFETY: `top` has exactly 2^TOP_BITS entries and `slot < 2^TOP_BITS`.
        unsafe { *self.top.get_unchecked(slot) }
    }

    #[inline(always)]
    fn node(&self, idx: u32) -> &Node {
        debug_assert!((idx as usize) < self.nodes.len());
        // SAFETY: node indices come from `top` (NODE entries) or from a
        // node's `base1 + rank`, which always name allocated nodes.
        unsafe { self.nodes.get_unchecked(idx as usize) }
    }

    #[inline(always)]
    fn leaf(&self, idx: u32) -> u32 {
        debug_assert!((idx as usize) < self.leaves.len());
        // SAFETY: leaf indices are `base0 + rank` of a leaf position, which
        // always name allocated leaves (a node's leaf runs are allocated
        // together and every leaf position lies in a run).
        unsafe { *self.leaves.get_unchecked(idx as usize) }
    }

    #[inline(always)]
    fn decode(&self, e: u32) -> u32 {
        if e == 0 {
            self.default
        } else {
            e - 1
        }
    }

    /// Looks up `addrs[i]` into `out[i]`. Walks groups of 32 addresses level
    /// by level, prefetching each lane's next node so misses overlap.
    ///
    /// Panics if `out` is shorter than `addrs`.
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [u32]) {
        assert!(out.len() >= addrs.len(), "output slice too short");
        #[cfg(target_arch = "x86_64")]
        if self.popcnt {
            // SAFETY: the CPU supports popcnt (checked at construction).
            unsafe { self.batch_popcnt(addrs, out) };
            return;
        }
        self.batch_generic(addrs, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn batch_popcnt(&self, addrs: &[u128], out: &mut [u32]) {
        self.batch_generic(addrs, out)
    }

    #[inline(always)]
    fn batch_generic(&self, addrs: &[u128], out: &mut [u32]) {
        for (a, o) in addrs.chunks(LANES).zip(out.chunks_mut(LANES)) {
            self.batch_chunk(a, o);
        }
    }

    #[inline(always)]
    fn batch_chunk(&self, a: &[u128], out: &mut [u32]) {
        let n = a.len().min(LANES);
        let out = &mut out[..n];
        let leaves = self.leaves.as_ptr();
        // Per lane: the top entry, then the position of the current node
        // (see `node_at`), then the leaf index; and the inverted high half
        // of the address.
        let mut cur = [0u32; LANES];
        let mut nk = [0u64; LANES];
        for i in 0..n {
            let hi = (a[i] >> 64) as u64;
            nk[i] = !hi;
            let e = self.top_entry(hi);
            cur[i] = e;
            out[i] = self.decode(e);
        }
        let mut active: u32 = 0;
        for (i, e) in cur.iter_mut().enumerate() {
            active |= (*e >> 31) << i;
            let w = node_pos(*e & !NODE);
            *e = w;
            prefetch(self.node_ptr(w));
        }
        let mut leafy = active;
        while active != 0 {
            // One level for every active lane.
            let mut m = active;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                debug_assert!(i < n);
                // SAFETY: only bits of lanes `< n <= LANES` are ever set.
                let (w, ki) = unsafe { (*cur.get_unchecked(i), *nk.get_unchecked(i)) };
                let nd = self.node_at(w);
                let s = if nd.sh != NO_SH {
                    let z = (ki ^ nd.path) >> nd.sh;
                    if z > 63 {
                        out[i] = self.decode(nd.miss);
                        active &= !(1 << i);
                        leafy &= !(1 << i);
                        continue;
                    }
                    z as u32
                } else {
                    let off = nd.off as u32;
                    // SAFETY: as above.
                    let ai = unsafe { *a.get_unchecked(i) };
                    if nd.mismatch(ai, ki) {
                        out[i] = self.decode(nd.miss);
                        active &= !(1 << i);
                        leafy &= !(1 << i);
                        continue;
                    }
                    shift_of(ai, ki, off)
                };
                let x = nd.vector << s;
                let c = if (x as i64) < 0 {
                    let w = node_pos(nd.base1.wrapping_add(x.count_ones()).wrapping_sub(1));
                    prefetch(self.node_ptr(w));
                    w
                } else {
                    let c = nd
                        .base0
                        .wrapping_add((nd.leafvec << s).count_ones())
                        .wrapping_sub(1);
                    prefetch(leaves.wrapping_add(c as usize));
                    active &= !(1 << i);
                    c
                };
                // SAFETY: as above.
                unsafe { *cur.get_unchecked_mut(i) = c };
            }
        }
        let mut m = leafy;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            out[i] = self.decode(self.leaf(cur[i]));
        }
    }

    /// Address of the node at position `w` (see [`node_pos`]); only a hint
    /// for prefetching, may be out of bounds.
    #[inline(always)]
    fn node_ptr(&self, w: u32) -> *const u64 {
        (self.nodes.as_ptr() as *const u64)
            .wrapping_add(w as usize)
            .wrapping_sub(NODE_WORDS)
    }

    /// The node at position `w = node_pos(index)`.
    #[inline(always)]
    fn node_at(&self, w: u32) -> &Node {
        debug_assert!((w as usize).is_multiple_of(NODE_WORDS) && w > 0);
        debug_assert!((w as usize) <= self.nodes.len() * NODE_WORDS);
        // SAFETY: `w` is `node_pos` of a valid node index (see `node`), so
        // `w - NODE_WORDS` is the offset in u64 words of that node, and nodes
        // are `NODE_WORDS` words with u64 alignment.
        unsafe {
            &*(self.nodes.as_ptr() as *const u64)
                .add(w as usize - NODE_WORDS)
                .cast::<Node>()
        }
    }

    // ---------------------------------------------------------------- update

    /// Sets the covering short prefix of a top slot and refreshes the slot.
    fn set_slot_base(&mut self, slot: usize, ent: u32, depth: u8) {
        self.top_depth[slot] = depth;
        self.top_base[slot] = ent;
        let e = self.top[slot];
        if e & NODE != 0 {
            self.rebuild(e & !NODE, (slot as u128) << SLOT_SHIFT, TOP_BITS);
        } else {
            self.top[slot] = ent;
        }
    }

    /// Leaf entry and length of the longest prefix of length `1..len` covering
    /// `addr` (`(0, 0)` if none).
    fn covering_short(&self, addr: u128, len: u8) -> (u32, u8) {
        for l in (1..len).rev() {
            if self.len_count[l as usize] == 0 {
                continue;
            }
            if let Some(&v) = self.routes.get(&(addr & mask6(l), l)) {
                return (v + 1, l);
            }
        }
        (0, 0)
    }

    /// Leaf entry inherited by the node at `off` covering `addr`: the longest
    /// prefix of length `TOP_BITS + 1..=off` covering it, else the slot's base.
    fn inherited(&self, addr: u128, off: u32) -> u32 {
        for l in (TOP_BITS + 1..=off).rev() {
            if self.len_count[l as usize] == 0 {
                continue;
            }
            if let Some(&v) = self.routes.get(&(addr & mask6(l as u8), l as u8)) {
                return v + 1;
            }
        }
        self.top_base[(addr >> SLOT_SHIFT) as usize]
    }

    /// Prefixes strictly inside the region `addr/off` (length > off), sorted,
    /// with values encoded as leaf entries.
    fn region(&self, addr: u128, off: u32) -> Vec<(u128, u8, u32)> {
        let start = addr & mask6(off as u8);
        let end = start | !mask6(off as u8);
        self.routes
            .range((start, off as u8 + 1)..=(end, 128))
            .map(|(&(a, l), &v)| (a, l, v + 1))
            .collect()
    }

    fn region_nonempty(&self, addr: u128, off: u32) -> bool {
        let start = addr & mask6(off as u8);
        let end = start | !mask6(off as u8);
        self.routes
            .range((start, off as u8 + 1)..=(end, 128))
            .next()
            .is_some()
    }

    /// Re-derives the trie after the prefix `addr/len` (longer than /18)
    /// was inserted, replaced or removed (the control record is already
    /// updated). Touches only the deepest node containing the prefix, and
    /// rebuilds only subtrees under positions the prefix covers; a node
    /// whose skipped bits the prefix ends in or diverges from is rebuilt
    /// whole, and so is a node an update leaves with a single child and
    /// only its inherited leaf (so that it merges into a skip).
    fn refresh(&mut self, addr: u128, len: u8) {
        let slot = (addr >> SLOT_SHIFT) as usize;
        let e = self.top[slot];
        if e & NODE == 0 {
            if self.region_nonempty(addr, TOP_BITS) {
                let root = self.alloc_nodes(1);
                self.nodes[root as usize] = Node::default();
                self.rebuild(root, addr, TOP_BITS);
                self.top[slot] = NODE | root;
            }
            return;
        }
        // (node, offset of its own 6 bits, offset of its first skipped bit)
        let mut path = [(0u32, 0u32, 0u32); MAX_DEPTH];
        let mut depth = 0;
        let mut idx = e & !NODE;
        let mut phys = TOP_BITS;
        let hi = !((addr >> 64) as u64);
        let mut split = false;
        loop {
            let n = self.nodes[idx as usize];
            let nb = n.skip as u32;
            debug_assert_eq!(phys + nb, n.off as u32);
            if nb > 0 && (len as u32 <= phys + nb || n.mismatch(addr, hi)) {
                split = true;
                break;
            }
            let off = phys + nb;
            path[depth] = (idx, off, phys);
            depth += 1;
            if len as u32 <= off + STRIDE {
                break;
            }
            let v = chunk(addr, off);
            if n.vector >> v & 1 == 0 {
                break;
            }
            idx = n.base1 + (n.vector & upto(v)).count_ones() - 1;
            phys = off + STRIDE;
        }
        let ancestors = if split {
            // The prefix is in the region of node `idx` but not below its
            // skipped bits.
            if self.region_nonempty(addr, phys) {
                self.rebuild(idx, addr, phys);
                return;
            }
            depth
        } else {
            let (idx, off, phys) = path[depth - 1];
            let c = chunk(addr, off);
            if len as u32 > off + STRIDE {
                // Insert below a leaf position: give the node a new child there.
                self.update_node(idx, addr, off, c, c + 1);
                self.recompress(idx, addr, off, phys);
                return;
            }
            // The prefix lies in this node's leaf positions.
            let span = 1u32 << (off + STRIDE - len as u32);
            if self.region_nonempty(addr, off) {
                self.update_node(idx, addr, off, c, c + span);
                self.recompress(idx, addr, off, phys);
                return;
            }
            depth - 1
        };
        // After a removal the node's region is empty: drop it (and any
        // ancestors that become empty) from the deepest non-empty ancestor.
        for k in (0..ancestors).rev() {
            let (pidx, poff, pphys) = path[k];
            if self.region_nonempty(addr, poff) {
                let c = chunk(addr, poff);
                self.update_node(pidx, addr, poff, c, c + 1);
                self.recompress(pidx, addr, poff, pphys);
                return;
            }
        }
        // Nothing longer than /18 left in this slot.
        let root = e & !NODE;
        self.free_contents(root);
        self.free_nodes[1].push(root);
        self.live_nodes -= 1;
        self.top[slot] = self.top_base[slot];
    }

    /// Rebuilds node `idx` (own bits at `off`, first skipped bit at `phys`)
    /// from `phys` if an update left it with a single child and only its
    /// inherited leaf, so it merges with the child into a longer skip.
    fn recompress(&mut self, idx: u32, addr: u128, off: u32, phys: u32) {
        let n = self.nodes[idx as usize];
        if off - phys < MAX_SKIP
            && n.vector.count_ones() == 1
            && n.leafvec.count_ones() == 1
            && self.leaves[n.base0 as usize] == self.inherited(addr, off)
        {
            self.rebuild(idx, addr, phys);
        }
    }

    /// Recomputes positions `lo..hi` of node `idx` (region `addr/off`):
    /// their leaves, whether they have a child, and the children's subtrees.
    /// Other children are kept (moved shallowly if the block changes).
    fn update_node(&mut self, idx: u32, addr: u128, off: u32, lo: u32, hi: u32) {
        let n = self.nodes[idx as usize];
        let start = addr & mask6(off as u8);
        let end = off + STRIDE;
        // Current leaves, expanded.
        let mut leaf = [0u32; 64];
        {
            let mut r = 0u32;
            for (p, slot) in leaf.iter_mut().enumerate() {
                if n.vector >> p & 1 == 0 {
                    if n.leafvec >> p & 1 != 0 {
                        r += 1;
                    }
                    if r > 0 {
                        *slot = self.leaves[(n.base0 + r - 1) as usize];
                    }
                }
            }
        }
        let inh = self.inherited(addr, off);
        let pos_addr = |p: u32| -> u128 {
            if end <= 128 {
                start | (p as u128) << (128 - end)
            } else {
                start | (p >> (end - 128)) as u128
            }
        };
        let mut vector = n.vector;
        for p in lo..hi {
            let a = pos_addr(p);
            let mut v = inh;
            for l in (off + 1..=end.min(128)).rev() {
                if self.len_count[l as usize] == 0 {
                    continue;
                }
                if let Some(&x) = self.routes.get(&(a & mask6(l as u8), l as u8)) {
                    v = x + 1;
                    break;
                }
            }
            leaf[p as usize] = v;
            if end < 128 && self.region_nonempty(a, end) {
                vector |= 1 << p;
            } else {
                vector &= !(1 << p);
            }
        }
        let range = upto(hi - 1) & !(if lo == 0 { 0 } else { upto(lo - 1) });
        // Children.
        let k_old = n.vector.count_ones() as usize;
        let k_new = vector.count_ones() as usize;
        let base1 = if vector == n.vector {
            n.base1
        } else {
            let b = if k_new > 0 {
                self.alloc_nodes(k_new)
            } else {
                0
            };
            let mut j_new = 0;
            let mut j_old = 0;
            for p in 0..64u32 {
                let had = n.vector >> p & 1 != 0;
                let has = vector >> p & 1 != 0;
                if had && has {
                    self.nodes[(b + j_new) as usize] = self.nodes[(n.base1 + j_old) as usize];
                } else if had {
                    self.free_contents(n.base1 + j_old);
                } else if has {
                    self.nodes[(b + j_new) as usize] = Node::default();
                }
                j_old += had as u32;
                j_new += has as u32;
            }
            if k_old > 0 {
                self.free_nodes[k_old].push(n.base1);
                self.live_nodes -= k_old;
            }
            b
        };
        // Leaves.
        let (leafvec, vals, nl) = encode_leaves(vector, &leaf);
        let m_old = n.leafvec.count_ones() as usize;
        let base0 = if nl == m_old && nl > 0 {
            n.base0
        } else {
            if m_old > 0 {
                self.free_leaves[m_old].push(n.base0);
                self.live_leaves -= m_old;
            }
            if nl > 0 {
                self.alloc_leaves(nl)
            } else {
                0
            }
        };
        self.leaves[base0 as usize..base0 as usize + nl].copy_from_slice(&vals[..nl]);
        self.nodes[idx as usize] = Node {
            vector,
            leafvec,
            base0,
            base1,
            ..n
        };
        // Rebuild the children under the changed positions.
        let mut m = vector & range;
        while m != 0 {
            let p = m.trailing_zeros();
            m &= m - 1;
            let child = base1 + (vector & upto(p)).count_ones() - 1;
            self.rebuild(child, pos_addr(p), end);
        }
    }

    /// Rebuilds node `idx` (covering `addr/off`) and its subtree in place.
    fn rebuild(&mut self, idx: u32, addr: u128, off: u32) {
        let inh = self.inherited(addr, off);
        self.free_contents(idx);
        let pfx = self.region(addr, off);
        self.build_node(idx, addr, off, inh, &pfx);
    }

    /// Builds node `idx` at bit offset `off` from `pfx` (all longer than
    /// `off`, inside the node's region, sorted by (addr, len)).
    fn build_node(&mut self, idx: u32, addr: u128, phys: u32, inh: u32, pfx: &[(u128, u8, u32)]) {
        // Skip levels that would have a single child and only the inherited
        // leaf: every prefix is longer than the level and in the same child.
        let mut off = phys;
        while off - phys < MAX_SKIP
            && !pfx.is_empty()
            && chunk(pfx[0].0, off) == chunk(pfx[pfx.len() - 1].0, off)
            && pfx.iter().all(|p| p.1 as u32 > off + STRIDE)
        {
            off += STRIDE;
        }
        let path = path_bits(pfx.first().map_or(addr, |p| p.0), off);
        let end = off + STRIDE;
        let mut leaf = [inh; 64];
        let mut vector = 0u64;
        let mut kids = [(0u8, 0u32, 0u32); 64];
        let mut nk = 0;
        let mut i = 0;
        while i < pfx.len() {
            let (a, l, v) = pfx[i];
            let c = chunk(a, off) as usize;
            if l as u32 <= end {
                // Covering prefixes sort before the prefixes they contain,
                // so more specific ones overwrite.
                let span = 1usize << (end - l as u32);
                leaf[c..c + span].fill(v);
                i += 1;
            } else {
                let s = i;
                while i < pfx.len() && chunk(pfx[i].0, off) as usize == c {
                    debug_assert!(pfx[i].1 as u32 > end);
                    i += 1;
                }
                kids[nk] = (c as u8, s as u32, i as u32);
                nk += 1;
                vector |= 1 << c;
            }
        }
        let (leafvec, vals, nl) = encode_leaves(vector, &leaf);
        let base0 = if nl > 0 {
            let b = self.alloc_leaves(nl);
            self.leaves[b as usize..b as usize + nl].copy_from_slice(&vals[..nl]);
            b
        } else {
            0
        };
        let base1 = if nk > 0 { self.alloc_nodes(nk) } else { 0 };
        self.nodes[idx as usize] = Node {
            vector,
            leafvec,
            base0,
            base1,
            path,
            miss: inh,
            off: off as u8,
            sh: if off <= 64 - STRIDE {
                (64 - STRIDE - off) as u8
            } else {
                NO_SH
            },
            skip: (off - phys) as u16,
        };
        for (j, &(c, s, e)) in kids[..nk].iter().enumerate() {
            let a = pfx[s as usize].0;
            self.build_node(
                base1 + j as u32,
                a,
                end,
                leaf[c as usize],
                &pfx[s as usize..e as usize],
            );
        }
    }

    /// Frees the children and leaves of node `idx` (recursively), not the
    /// node itself.
    fn free_contents(&mut self, idx: u32) {
        let n = self.nodes[idx as usize];
        let k = n.vector.count_ones() as usize;
        let m = n.leafvec.count_ones() as usize;
        for j in 0..k as u32 {
            self.free_contents(n.base1 + j);
        }
        if k > 0 {
            self.free_nodes[k].push(n.base1);
            self.live_nodes -= k;
        }
        if m > 0 {
            self.free_leaves[m].push(n.base0);
            self.live_leaves -= m;
        }
        self.nodes[idx as usize] = Node::default();
    }

    fn alloc_nodes(&mut self, k: usize) -> u32 {
        self.live_nodes += k;
        match self.free_nodes[k].pop() {
            Some(b) => b,
            None => {
                let b = self.nodes.len();
                assert!(b + k < MAX_NODES, "Lpm6 node space exhausted");
                self.nodes.resize(b + k, Node::default());
                b as u32
            }
        }
    }

    fn alloc_leaves(&mut self, m: usize) -> u32 {
        self.live_leaves += m;
        match self.free_leaves[m].pop() {
            Some(b) => b,
            None => {
                let b = self.leaves.len();
                self.leaves.resize(b + m, 0);
                b as u32
            }
        }
    }
}

/// Compresses the leaf positions (those not in `vector`) into runs of equal
/// values: returns `leafvec`, the run values and their count.
fn encode_leaves(vector: u64, leaf: &[u32; 64]) -> (u64, [u32; 64], usize) {
    let mut leafvec = 0u64;
    let mut vals = [0u32; 64];
    let mut nl = 0;
    let mut last = None;
    for (p, &x) in leaf.iter().enumerate() {
        if vector >> p & 1 == 0 && last != Some(x) {
            leafvec |= 1 << p;
            vals[nl] = x;
            nl += 1;
            last = Some(x);
        }
    }
    (leafvec, vals, nl)
}

fn has_popcnt() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
