//! NAT44 state shared by every worker: sessions (one per 5-tuple, found
//! from either direction with one index lookup), mappings (an inside
//! endpoint's outside address and port, reused for every destination:
//! endpoint-independent mapping) and counters per inside source and per
//! address-dependent filter. All of it is allocated once, at the
//! configured capacity, and read and written without locks.
//!
//! Workers create sessions and refresh them; only the sweeper (one
//! control-side thread) ends them, a slice of the table at a time, so
//! expiry costs the workers nothing. An ended session's slot waits out a
//! quarantine before reuse, so a worker that read its index just before
//! never sees it half rewritten.
//!
//! Each worker allocates from its own share of the slots (a lock-free
//! queue the sweeper refills), so workers never contend on allocation.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::index::{hash2, Hash, Index};
use weir_packet::nat4::Tuple4;

/// A session's TCP and life state (`Session` word 3).
pub mod state {
    /// In use; 0 means free.
    pub const ALIVE: u8 = 1;
    /// SYN seen from the side that opened the session.
    pub const SYN_ORIG: u8 = 2;
    /// SYN seen from the other side.
    pub const SYN_REPLY: u8 = 4;
    pub const FIN_ORIG: u8 = 8;
    pub const FIN_REPLY: u8 = 16;
    pub const RST: u8 = 32;
    /// Both SYNs seen, or picked up mid-stream.
    pub const ESTABLISHED: u8 = 64;
    /// Counted among the transitory TCP sessions.
    pub const TRANSITORY: u8 = 128;
}

const NONE: u32 = u32::MAX;
/// Word 3 flags: the session is counted against its inside source, and
/// in an address-dependent filter.
const COUNTED_SOURCE: u64 = 1;
const COUNTED_ADF: u64 = 2;
/// Index values of a session's reply-direction entry have this bit.
const REPLY: u32 = 1 << 31;

const KIND_SESSION: u64 = 1;
const KIND_MAP_IN: u64 = 2;
const KIND_MAP_OUT: u64 = 3;
const KIND_SOURCE: u64 = 4;
const KIND_ADF: u64 = 5;
const KIND_FRAG: u64 = 6;

/// Fragmented datagrams remembered at once (their first fragment's
/// session, for the later fragments, which carry no ports).
const FRAGS: usize = 4096;

/// Mapping reference counts have 12 bits; a full one takes no more
/// sessions (the next gets a mapping of its own).
const MAP_REFS: u64 = 0xfff;

/// One session: 40 bytes.
/// w0 orig src|dst; w1 orig sport|dport|proto|vrf_in(12)|rule(12);
/// w2 xlat src|dst; w3 xlat sport|dport|vrf_out(12)|state(8)|-(12);
/// w4 seen(32)|mapping(32).
#[derive(Default)]
struct Session {
    w: [AtomicU64; 5],
}

/// One mapping: 16 bytes. m0 inside ip|outside ip; m1 inside
/// port|outside port|proto|vrf(12)|references(12).
#[derive(Default)]
struct Mapping {
    m: [AtomicU64; 2],
}

/// Why a session could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No free session (this worker's share of the table is in use).
    TableFull,
    /// The index had no room near the key's home.
    IndexFull,
    /// The inside source has its cap of sessions.
    SourceCap,
    /// The rule has its cap of sessions.
    RuleCap,
    /// Too many half-open TCP sessions.
    TransitoryCap,
    /// No outside port free for the mapping.
    NoPort,
}

/// Which way a packet goes through its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// As the session's first packet went.
    Orig,
    /// The other way.
    Reply,
}

/// A session as the table holds it (for listing, tests and sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView {
    pub id: u32,
    pub vrf_in: u16,
    pub vrf_out: u16,
    pub rule: u16,
    /// The first packet as it arrived.
    pub orig: Tuple4,
    /// The first packet as it left.
    pub xlat: Tuple4,
    pub state: u8,
    /// Seconds on the table's clock of the last packet.
    pub seen: u32,
}

/// Per-rule counters, summed over workers by atomics (touched only when
/// sessions start and end).
#[derive(Default)]
pub struct RuleCounters {
    pub active: AtomicU64,
    pub created: AtomicU64,
    pub expired: AtomicU64,
}

/// Most rule ids (12 bits).
pub const MAX_RULES: usize = 4096;
/// Most VRF ids NAT can use (12 bits).
pub const MAX_VRFS: u16 = 4096;

pub struct Store {
    seed: [u64; 2],
    epoch: Instant,
    sessions: Box<[Session]>,
    mappings: Box<[Mapping]>,
    sidx: Index,
    midx: Index,
    counts: Index,
    /// Free sessions and mappings of each worker's share.
    free_sessions: Box<[ArrayQueue<u32>]>,
    free_mappings: Box<[ArrayQueue<u32>]>,
    transitory: AtomicU32,
    pub transitory_cap: u32,
    pub rules: Box<[RuleCounters]>,
    /// The sweeper's own state.
    sweep: Mutex<Sweep>,
    /// Each rule's timeouts, None for ids not in use (set by the control
    /// side, read by the sweeper).
    timeouts: Mutex<Vec<Option<Timeouts>>>,
    /// Datagrams whose first fragment went through a session: hash tag
    /// and session (with the reply bit). A newer datagram may take an
    /// older one's place; its later fragments are then dropped.
    frags: Box<[AtomicU64]>,
}

#[derive(Default)]
struct Sweep {
    hand: usize,
    /// Ended sessions and mappings waiting out the quarantine: (slot,
    /// when it ended).
    sessions: std::collections::VecDeque<(u32, Instant)>,
    mappings: std::collections::VecDeque<(u32, Instant)>,
}

/// How long an ended session's slot waits before reuse: far longer than
/// a worker holds what it looked up (one batch).
pub const QUARANTINE: Duration = Duration::from_millis(500);

#[inline(always)]
fn hi(w: u64) -> u32 {
    (w >> 32) as u32
}
#[inline(always)]
fn lo(w: u64) -> u32 {
    w as u32
}

/// Key words of a packet's 5-tuple in a VRF.
#[inline(always)]
fn skey(vrf: u16, t: &Tuple4) -> (u64, u64) {
    (
        (t.src as u64) << 32 | t.dst as u64,
        (t.sport as u64) << 48
            | (t.dport as u64) << 32
            | (t.proto as u64) << 24
            | (vrf as u64) << 8
            | KIND_SESSION,
    )
}

/// Timeouts in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub udp: u32,
    pub tcp_established: u32,
    pub tcp_transitory: u32,
    pub icmp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            udp: 300,
            tcp_established: 7440,
            tcp_transitory: 240,
            icmp: 60,
        }
    }
}

impl Timeouts {
    /// The timeout of a session of `proto` in `state`.
    pub fn of(&self, proto: u8, st: u8) -> u32 {
        use state::*;
        match proto {
            6 => {
                let closed = st & RST != 0 || st & (FIN_ORIG | FIN_REPLY) == FIN_ORIG | FIN_REPLY;
                if st & ESTABLISHED != 0 && !closed {
                    self.tcp_established
                } else {
                    self.tcp_transitory
                }
            }
            1 => self.icmp,
            _ => self.udp,
        }
    }
}

/// What a new session is made from.
#[derive(Debug, Clone, Copy)]
pub struct NewSession {
    pub vrf_in: u16,
    pub orig: Tuple4,
    pub vrf_out: u16,
    pub xlat: Tuple4,
    pub rule: u16,
    /// TCP flags of the first packet (0 for others).
    pub tcp_flags: u8,
    /// Count the session against its inside source (source NAT), with
    /// this cap (0: none).
    pub count_source: bool,
    pub source_cap: u32,
    pub rule_cap: u32,
    /// The mapping it uses (source NAT), if any.
    pub mapping: Option<u32>,
    /// Address-dependent filtering: let replies from `xlat.dst` in.
    pub adf: bool,
}

impl Store {
    /// A table for `capacity` sessions shared out among `workers`.
    pub fn new(capacity: usize, workers: usize) -> Store {
        let capacity = capacity.clamp(workers.max(1), (REPLY - 1) as usize);
        let workers = workers.max(1);
        let share = capacity / workers;
        let capacity = share * workers;
        let queues = |n: usize| -> Box<[ArrayQueue<u32>]> {
            (0..workers)
                .map(|w| {
                    let q = ArrayQueue::new(share);
                    for i in 0..share {
                        let _ = q.push((w * share + i) as u32);
                    }
                    let _ = n;
                    q
                })
                .collect()
        };
        let r = std::collections::hash_map::RandomState::new();
        use std::hash::BuildHasher;
        Store {
            seed: [r.hash_one(1u64) | 1, r.hash_one(2u64)],
            epoch: Instant::now(),
            sessions: (0..capacity).map(|_| Session::default()).collect(),
            mappings: (0..capacity).map(|_| Mapping::default()).collect(),
            sidx: Index::with_capacity(capacity * 2),
            midx: Index::with_capacity(capacity * 2),
            counts: Index::with_capacity(capacity * 2),
            free_sessions: queues(capacity),
            free_mappings: queues(capacity),
            transitory: AtomicU32::new(0),
            transitory_cap: (capacity / 2) as u32,
            rules: (0..MAX_RULES).map(|_| RuleCounters::default()).collect(),
            sweep: Mutex::new(Sweep::default()),
            timeouts: Mutex::new(Vec::new()),
            frags: (0..FRAGS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.sessions.len()
    }

    /// Bytes allocated for sessions, mappings and their indexes.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.sessions)
            + std::mem::size_of_val(&*self.mappings)
            + self.sidx.bytes()
            + self.midx.bytes()
            + self.counts.bytes()
            + FRAGS * 8
    }

    fn frag_hash(&self, vrf: u16, t: &Tuple4, ip_id: u16) -> Hash {
        hash2(
            self.seed,
            (t.src as u64) << 32 | t.dst as u64,
            (ip_id as u64) << 32 | (t.proto as u64) << 24 | (vrf as u64) << 8 | KIND_FRAG,
        )
    }

    /// Remember that the datagram `ip_id` of `t` (its first fragment) went
    /// through session `id` in direction `dir`.
    pub fn frag_note(&self, vrf: u16, t: &Tuple4, ip_id: u16, id: u32, dir: Dir) {
        let h = self.frag_hash(vrf, t, ip_id);
        let v = id | if dir == Dir::Reply { REPLY } else { 0 };
        self.frags[(h.0 as usize) % FRAGS].store((h.0 >> 32) << 32 | v as u64, Relaxed);
    }

    /// The session and direction of a later fragment's datagram.
    pub fn frag_find(&self, vrf: u16, t: &Tuple4, ip_id: u16) -> Option<(u32, Dir)> {
        let h = self.frag_hash(vrf, t, ip_id);
        let e = self.frags[(h.0 as usize) % FRAGS].load(Relaxed);
        if e == 0 || e >> 32 != h.0 >> 32 {
            return None;
        }
        let v = e as u32;
        let id = v & !REPLY;
        if (self.sessions[id as usize].w[3].load(Acquire) >> 12) as u8 == 0 {
            return None;
        }
        Some((
            id,
            if v & REPLY == 0 {
                Dir::Orig
            } else {
                Dir::Reply
            },
        ))
    }

    /// Seconds since the table was made: its clock.
    #[inline]
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// The hash a packet's session is found under; `prefetch` it a batch
    /// ahead.
    #[inline(always)]
    pub fn session_hash(&self, vrf: u16, t: &Tuple4) -> Hash {
        let (a, b) = skey(vrf, t);
        hash2(self.seed, a, b)
    }

    #[inline(always)]
    pub fn prefetch(&self, h: Hash) {
        self.sidx.prefetch(h);
    }

    /// Bring in the session `h` most likely leads to (its home bucket
    /// should be in the cache already: `prefetch` a step earlier).
    #[inline(always)]
    pub fn prefetch_session(&self, h: Hash) {
        if let Some(v) = self.sidx.candidate(h) {
            if let Some(s) = self.sessions.get((v & !REPLY) as usize) {
                crate::prefetch::read(s);
            }
        }
    }

    /// The session of a packet with tuple `t` in `vrf`, and which way it
    /// goes through it.
    #[inline]
    pub fn lookup(&self, h: Hash, vrf: u16, t: &Tuple4) -> Option<(u32, Dir)> {
        let (ka, kb) = skey(vrf, t);
        let v = self.sidx.find(h, |v| {
            let s = &self.sessions[(v & !REPLY) as usize];
            if v & REPLY == 0 {
                let w1 = s.w[1].load(Relaxed);
                s.w[0].load(Relaxed) == ka
                    && w1 >> 24 == kb >> 24
                    && (w1 >> 12) & 0xfff == (kb >> 8) & 0xfff
            } else {
                let (w2, w3) = (s.w[2].load(Relaxed), s.w[3].load(Relaxed));
                // The reply comes from the translated destination.
                let rep = (lo(w2) as u64) << 32 | hi(w2) as u64;
                let ports = ((w3 >> 32) & 0xffff) << 16 | (w3 >> 48);
                let proto = (s.w[1].load(Relaxed) >> 24) & 0xff;
                rep == ka
                    && ports == kb >> 32
                    && proto == (kb >> 24) & 0xff
                    && (w3 >> 20) & 0xfff == (kb >> 8) & 0xfff
            }
        })?;
        let idx = v & !REPLY;
        let st = (self.sessions[idx as usize].w[3].load(Acquire) >> 12) as u8;
        if st == 0 {
            return None;
        }
        Some((
            idx,
            if v & REPLY == 0 {
                Dir::Orig
            } else {
                Dir::Reply
            },
        ))
    }

    /// What a packet going `dir` through session `id` becomes: its new
    /// tuple and the VRF it is routed in from here.
    #[inline]
    pub fn translate(&self, id: u32, dir: Dir) -> (Tuple4, u16) {
        let v = self.view(id);
        match dir {
            Dir::Orig => (v.xlat, v.vrf_out),
            Dir::Reply => (v.orig.reversed(), v.vrf_in),
        }
    }

    /// Note a packet on the session: refresh its timer and follow TCP.
    #[inline]
    pub fn touch(&self, id: u32, dir: Dir, tcp_flags: u8, now: u32) {
        let s = &self.sessions[id as usize];
        let w4 = s.w[4].load(Relaxed);
        if hi(w4) != now {
            s.w[4].store((now as u64) << 32 | lo(w4) as u64, Relaxed);
        }
        if tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST) != 0 {
            self.tcp_event(s, dir, tcp_flags);
        }
    }

    fn tcp_event(&self, s: &Session, dir: Dir, flags: u8) {
        use state::*;
        let w3 = &s.w[3];
        let mut cur = w3.load(Relaxed);
        loop {
            let st = (cur >> 12) as u8;
            if st == 0 {
                return;
            }
            let mut n = st;
            let orig = dir == Dir::Orig;
            if flags & TCP_SYN != 0 {
                n |= if orig { SYN_ORIG } else { SYN_REPLY };
            }
            if flags & TCP_FIN != 0 {
                n |= if orig { FIN_ORIG } else { FIN_REPLY };
            }
            if flags & TCP_RST != 0 {
                n |= RST;
            }
            if n & (SYN_ORIG | SYN_REPLY) == SYN_ORIG | SYN_REPLY {
                n |= ESTABLISHED;
            }
            if n & ESTABLISHED != 0 && n & TRANSITORY != 0 {
                n &= !TRANSITORY;
            }
            if n == st {
                return;
            }
            let new = cur & !(0xff << 12) | (n as u64) << 12;
            match w3.compare_exchange_weak(cur, new, AcqRel, Relaxed) {
                Ok(_) => {
                    if st & TRANSITORY != 0 && n & TRANSITORY == 0 {
                        self.transitory.fetch_sub(1, Relaxed);
                    }
                    return;
                }
                Err(x) => cur = x,
            }
        }
    }

    /// A session as stored.
    pub fn view(&self, id: u32) -> SessionView {
        let s = &self.sessions[id as usize];
        let w: [u64; 5] = std::array::from_fn(|i| s.w[i].load(Relaxed));
        let proto = (w[1] >> 24) as u8;
        SessionView {
            id,
            vrf_in: ((w[1] >> 12) & 0xfff) as u16,
            vrf_out: ((w[3] >> 20) & 0xfff) as u16,
            rule: (w[1] & 0xfff) as u16,
            orig: Tuple4 {
                proto,
                src: hi(w[0]),
                dst: lo(w[0]),
                sport: (w[1] >> 48) as u16,
                dport: (w[1] >> 32) as u16,
            },
            xlat: Tuple4 {
                proto,
                src: hi(w[2]),
                dst: lo(w[2]),
                sport: (w[3] >> 48) as u16,
                dport: (w[3] >> 32) as u16,
            },
            state: (w[3] >> 12) as u8,
            seen: hi(w[4]),
        }
    }

    fn source_hash(&self, vrf: u16, src: u32) -> Hash {
        hash2(self.seed, (src as u64) << 32 | vrf as u64, KIND_SOURCE)
    }

    fn adf_hash(&self, outside: u32, oport: u16, proto: u8, remote: u32) -> Hash {
        hash2(
            self.seed,
            (outside as u64) << 32 | remote as u64,
            (oport as u64) << 16 | (proto as u64) << 8 | KIND_ADF,
        )
    }

    /// Sessions counted against an inside source.
    pub fn source_count(&self, vrf: u16, src: u32) -> u32 {
        self.counts.count(self.source_hash(vrf, src))
    }

    /// Whether the outside endpoint (`outside`, `oport`) has sent to
    /// `remote` (address-dependent filtering, RFC 4787 REQ-8).
    pub fn adf_allows(&self, outside: u32, oport: u16, proto: u8, remote: u32) -> bool {
        self.counts
            .count(self.adf_hash(outside, oport, proto, remote))
            > 0
    }

    fn pop(queues: &[ArrayQueue<u32>], worker: usize) -> Option<u32> {
        let n = queues.len();
        // Own share first, then the others' (a worker that gets most new
        // flows may use the whole table).
        (0..n).find_map(|i| queues[(worker + i) % n].pop())
    }

    /// Make a session; the caller has chosen the translation.
    /// The session owns the mapping reference in `n`; on failure it is
    /// given back.
    pub fn create(&self, worker: usize, n: &NewSession, now: u32) -> Result<u32, Refused> {
        let r = self.try_create(worker, n, now);
        if let (Err(_), Some(m)) = (r, n.mapping) {
            self.release_mapping(m);
        }
        r
    }

    fn try_create(&self, worker: usize, n: &NewSession, now: u32) -> Result<u32, Refused> {
        if n.rule_cap != 0 && self.rules[n.rule as usize].active.load(Relaxed) >= n.rule_cap as u64
        {
            return Err(Refused::RuleCap);
        }
        let tcp_new = n.orig.proto == 6 && n.tcp_flags & TCP_SYN != 0;
        if tcp_new && self.transitory.fetch_add(1, Relaxed) >= self.transitory_cap {
            self.transitory.fetch_sub(1, Relaxed);
            return Err(Refused::TransitoryCap);
        }
        let undo_transitory = || {
            if tcp_new {
                self.transitory.fetch_sub(1, Relaxed);
            }
        };
        let src_h = self.source_hash(n.vrf_in, n.orig.src);
        if n.count_source && !self.counts.count_up(src_h, n.source_cap) {
            undo_transitory();
            return Err(Refused::SourceCap);
        }
        let undo_source = || {
            if n.count_source {
                self.counts.count_down(src_h);
            }
        };
        let Some(id) = Self::pop(&self.free_sessions, worker) else {
            undo_source();
            undo_transitory();
            return Err(Refused::TableFull);
        };
        let mut st = state::ALIVE;
        if n.orig.proto == 6 {
            if tcp_new {
                st |= state::SYN_ORIG | state::TRANSITORY;
            } else {
                // Picked up mid-stream (as Linux does by default).
                st |= state::ESTABLISHED;
            }
        }
        let s = &self.sessions[id as usize];
        let (o, x) = (&n.orig, &n.xlat);
        s.w[0].store((o.src as u64) << 32 | o.dst as u64, Relaxed);
        s.w[1].store(
            (o.sport as u64) << 48
                | (o.dport as u64) << 32
                | (o.proto as u64) << 24
                | (n.vrf_in as u64 & 0xfff) << 12
                | n.rule as u64 & 0xfff,
            Relaxed,
        );
        s.w[2].store((x.src as u64) << 32 | x.dst as u64, Relaxed);
        s.w[4].store(
            (now as u64) << 32 | n.mapping.unwrap_or(NONE) as u64,
            Relaxed,
        );
        s.w[3].store(
            (x.sport as u64) << 48
                | (x.dport as u64) << 32
                | (n.vrf_out as u64 & 0xfff) << 20
                | (st as u64) << 12
                | if n.count_source { COUNTED_SOURCE } else { 0 }
                | if n.adf { COUNTED_ADF } else { 0 },
            Release,
        );
        let h_orig = self.session_hash(n.vrf_in, o);
        let h_reply = self.session_hash(n.vrf_out, &x.reversed());
        if !self.sidx.insert(h_orig, id) {
            self.release_session_slot(id, worker);
            undo_source();
            undo_transitory();
            return Err(Refused::IndexFull);
        }
        if !self.sidx.insert(h_reply, id | REPLY) {
            self.sidx.remove(h_orig, id);
            self.release_session_slot(id, worker);
            undo_source();
            undo_transitory();
            return Err(Refused::IndexFull);
        }
        if n.adf {
            self.counts
                .count_up(self.adf_hash(x.src, x.sport, x.proto, x.dst), 0);
        }
        let r = &self.rules[n.rule as usize];
        r.active.fetch_add(1, Relaxed);
        r.created.fetch_add(1, Relaxed);
        Ok(id)
    }

    /// Give back a slot never published (no quarantine needed).
    fn release_session_slot(&self, id: u32, worker: usize) {
        self.sessions[id as usize].w[3].store(0, Release);
        let share = self.sessions.len() / self.free_sessions.len();
        let _ = worker;
        let _ = self.free_sessions[id as usize / share].push(id);
    }

    fn mapping_of(&self, id: u32) -> Option<u32> {
        let m = lo(self.sessions[id as usize].w[4].load(Relaxed));
        (m != NONE).then_some(m)
    }

    fn map_in_hash(&self, vrf: u16, proto: u8, ip: u32, port: u16) -> Hash {
        hash2(
            self.seed,
            (ip as u64) << 32 | (vrf as u64) << 8 | proto as u64,
            (port as u64) << 8 | KIND_MAP_IN,
        )
    }

    fn map_out_hash(&self, proto: u8, ip: u32, port: u16) -> Hash {
        hash2(
            self.seed,
            (ip as u64) << 32 | proto as u64,
            (port as u64) << 8 | KIND_MAP_OUT,
        )
    }

    /// The live mapping of an inside endpoint, taking a reference on it:
    /// (mapping, outside address, outside port).
    pub fn mapping_for(&self, vrf: u16, proto: u8, ip: u32, port: u16) -> Option<(u32, u32, u16)> {
        let h = self.map_in_hash(vrf, proto, ip, port);
        let mut got = None;
        self.midx.find(h, |m| {
            let mp = &self.mappings[m as usize];
            let m0 = mp.m[0].load(Relaxed);
            let mut m1 = mp.m[1].load(Relaxed);
            if hi(m0) != ip
                || (m1 >> 48) as u16 != port
                || (m1 >> 24) as u8 != proto
                || ((m1 >> 12) & 0xfff) as u16 != vrf & 0xfff
            {
                return false;
            }
            // Take a reference unless it is dying (0) or full.
            loop {
                let refs = m1 & MAP_REFS;
                if refs == 0 || refs == MAP_REFS {
                    return false;
                }
                match mp.m[1].compare_exchange_weak(m1, m1 + 1, AcqRel, Relaxed) {
                    Ok(_) => {
                        got = Some((m, lo(m0), (m1 >> 32) as u16));
                        return true;
                    }
                    Err(x) => m1 = x,
                }
            }
        });
        got
    }

    /// The live mapping of an outside endpoint: (mapping, vrf, inside
    /// address, inside port).
    pub fn mapping_from_outside(
        &self,
        proto: u8,
        ip: u32,
        port: u16,
    ) -> Option<(u32, u16, u32, u16)> {
        let h = self.map_out_hash(proto, ip, port);
        let mut got = None;
        self.midx.find(h, |m| {
            let mp = &self.mappings[m as usize];
            let m0 = mp.m[0].load(Relaxed);
            let m1 = mp.m[1].load(Relaxed);
            let ok = lo(m0) == ip
                && (m1 >> 32) as u16 == port
                && (m1 >> 24) as u8 == proto
                && m1 & MAP_REFS != 0;
            if ok {
                got = Some((m, ((m1 >> 12) & 0xfff) as u16, hi(m0), (m1 >> 48) as u16));
            }
            ok
        });
        got
    }

    /// Whether an outside endpoint is mapped.
    pub fn outside_in_use(&self, proto: u8, ip: u32, port: u16) -> bool {
        self.mapping_from_outside(proto, ip, port).is_some()
    }

    /// Make a mapping with one reference; None when the outside endpoint
    /// was taken meanwhile or there is no room.
    pub fn new_mapping(
        &self,
        worker: usize,
        vrf: u16,
        proto: u8,
        inside: (u32, u16),
        outside: (u32, u16),
    ) -> Option<u32> {
        let m = Self::pop(&self.free_mappings, worker)?;
        let mp = &self.mappings[m as usize];
        mp.m[0].store((inside.0 as u64) << 32 | outside.0 as u64, Relaxed);
        mp.m[1].store(
            (inside.1 as u64) << 48
                | (outside.1 as u64) << 32
                | (proto as u64) << 24
                | (vrf as u64 & 0xfff) << 12
                | 1,
            Release,
        );
        let h_out = self.map_out_hash(proto, outside.0, outside.1);
        if !self.midx.insert(h_out, m) {
            mp.m[1].store(0, Release);
            let _ = self.free_mappings[m as usize / self.share()].push(m);
            return None;
        }
        // Another worker may have taken the same outside endpoint: the
        // first entry in the index wins.
        let first = self.midx.find(h_out, |x| {
            let o = &self.mappings[x as usize];
            let (m0, m1) = (o.m[0].load(Relaxed), o.m[1].load(Relaxed));
            lo(m0) == outside.0
                && (m1 >> 32) as u16 == outside.1
                && (m1 >> 24) as u8 == proto
                && m1 & MAP_REFS != 0
        });
        if first != Some(m) {
            self.midx.remove(h_out, m);
            mp.m[1].store(0, Release);
            let _ = self.free_mappings[m as usize / self.share()].push(m);
            return None;
        }
        if !self
            .midx
            .insert(self.map_in_hash(vrf, proto, inside.0, inside.1), m)
        {
            self.midx.remove(h_out, m);
            mp.m[1].store(0, Release);
            let _ = self.free_mappings[m as usize / self.share()].push(m);
            return None;
        }
        Some(m)
    }

    fn share(&self) -> usize {
        self.sessions.len() / self.free_sessions.len()
    }

    /// Drop a reference; the last one ends the mapping (quarantined when
    /// `ended` is given, else freed at once: it was never used).
    fn unref_mapping(&self, m: u32, ended: Option<&mut Sweep>) {
        let mp = &self.mappings[m as usize];
        let m1 = mp.m[1].fetch_sub(1, AcqRel);
        if m1 & MAP_REFS != 1 {
            return;
        }
        let m0 = mp.m[0].load(Relaxed);
        let (proto, vrf) = ((m1 >> 24) as u8, ((m1 >> 12) & 0xfff) as u16);
        self.midx
            .remove(self.map_in_hash(vrf, proto, hi(m0), (m1 >> 48) as u16), m);
        self.midx
            .remove(self.map_out_hash(proto, lo(m0), (m1 >> 32) as u16), m);
        match ended {
            Some(sw) => sw.mappings.push_back((m, Instant::now())),
            None => {
                let _ = self.free_mappings[m as usize / self.share()].push(m);
            }
        }
    }

    /// Take a reference on mapping `m` (found by `mapping_from_outside`);
    /// false if it is ending or full.
    pub fn mapping_ref(&self, m: u32) -> bool {
        let w = &self.mappings[m as usize].m[1];
        let mut cur = w.load(Relaxed);
        loop {
            let refs = cur & MAP_REFS;
            if refs == 0 || refs == MAP_REFS {
                return false;
            }
            match w.compare_exchange_weak(cur, cur + 1, AcqRel, Relaxed) {
                Ok(_) => return true,
                Err(x) => cur = x,
            }
        }
    }

    /// Give back a mapping reference taken by `mapping_for` or
    /// `new_mapping` for a session that was then not made.
    pub fn release_mapping(&self, m: u32) {
        self.unref_mapping(m, None);
    }

    /// End session `id` now (the sweeper, or a flush).
    fn end(&self, id: u32, sw: &mut Sweep) {
        let v = self.view(id);
        let s = &self.sessions[id as usize];
        let w3 = s.w[3].swap(s.w[3].load(Relaxed) & !(0xff << 12), AcqRel);
        let st = (w3 >> 12) as u8;
        if st == 0 {
            return;
        }
        if st & state::TRANSITORY != 0 {
            self.transitory.fetch_sub(1, Relaxed);
        }
        self.sidx.remove(self.session_hash(v.vrf_in, &v.orig), id);
        self.sidx
            .remove(self.session_hash(v.vrf_out, &v.xlat.reversed()), id | REPLY);
        let x = &v.xlat;
        if w3 & COUNTED_ADF != 0 {
            self.counts
                .count_down(self.adf_hash(x.src, x.sport, x.proto, x.dst));
        }
        if w3 & COUNTED_SOURCE != 0 {
            self.counts
                .count_down(self.source_hash(v.vrf_in, v.orig.src));
        }
        if let Some(m) = self.mapping_of(id) {
            self.unref_mapping(m, Some(sw));
        }
        let r = &self.rules[v.rule as usize];
        r.active.fetch_sub(1, Relaxed);
        r.expired.fetch_add(1, Relaxed);
        sw.sessions.push_back((id, Instant::now()));
    }

    /// One step of the sweeper: look at the next `count` slots, end those
    /// whose timer ran out or whose rule is gone (`timeouts` gives a
    /// rule's timeouts, None when it no longer exists), and free the slots
    /// whose quarantine is over. Returns the sessions ended.
    pub fn sweep(
        &self,
        count: usize,
        now: u32,
        timeouts: impl Fn(u16) -> Option<Timeouts>,
    ) -> usize {
        let mut sw = self.sweep.lock().expect("sweeper state");
        let mut ended = 0;
        let n = self.sessions.len();
        for _ in 0..count.min(n) {
            let id = sw.hand as u32;
            sw.hand = (sw.hand + 1) % n;
            let s = &self.sessions[id as usize];
            let st = (s.w[3].load(Acquire) >> 12) as u8;
            if st == 0 {
                continue;
            }
            let (w1, seen) = (s.w[1].load(Relaxed), hi(s.w[4].load(Relaxed)));
            let expired = match timeouts((w1 & 0xfff) as u16) {
                None => true,
                Some(t) => now.saturating_sub(seen) >= t.of((w1 >> 24) as u8, st),
            };
            if expired {
                self.end(id, &mut sw);
                ended += 1;
            }
        }
        self.reclaim(&mut sw);
        ended
    }

    /// The rules' timeouts, by rule id (None: no such rule).
    pub fn set_timeouts(&self, t: Vec<Option<Timeouts>>) {
        *self.timeouts.lock().expect("timeouts") = t;
    }

    /// One step of the sweeper with the rules' timeouts as set.
    pub fn sweep_step(&self, count: usize) -> usize {
        let t = self.timeouts.lock().expect("timeouts").clone();
        self.sweep(count, self.now(), |r| t.get(r as usize).copied().flatten())
    }

    /// End every session of `rule` (or every session) at once.
    pub fn flush(&self, rule: Option<u16>) -> usize {
        let mut sw = self.sweep.lock().expect("sweeper state");
        let mut ended = 0;
        for id in 0..self.sessions.len() as u32 {
            let s = &self.sessions[id as usize];
            if (s.w[3].load(Acquire) >> 12) as u8 == 0 {
                continue;
            }
            if rule.is_none_or(|r| (s.w[1].load(Relaxed) & 0xfff) as u16 == r) {
                self.end(id, &mut sw);
                ended += 1;
            }
        }
        self.reclaim(&mut sw);
        ended
    }

    fn reclaim(&self, sw: &mut Sweep) {
        let share = self.share();
        while let Some(&(id, at)) = sw.sessions.front() {
            if at.elapsed() < QUARANTINE {
                break;
            }
            sw.sessions.pop_front();
            let _ = self.free_sessions[id as usize / share].push(id);
        }
        while let Some(&(m, at)) = sw.mappings.front() {
            if at.elapsed() < QUARANTINE {
                break;
            }
            sw.mappings.pop_front();
            let _ = self.free_mappings[m as usize / share].push(m);
        }
    }

    /// Every live session (a scan; for listing).
    pub fn sessions(&self) -> impl Iterator<Item = SessionView> + '_ {
        (0..self.sessions.len() as u32)
            .filter(|&id| (self.sessions[id as usize].w[3].load(Acquire) >> 12) as u8 != 0)
            .map(|id| self.view(id))
    }

    /// Live sessions.
    pub fn active(&self) -> u64 {
        self.rules.iter().map(|r| r.active.load(Relaxed)).sum()
    }

    pub fn transitory(&self) -> u32 {
        self.transitory.load(Relaxed)
    }
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
