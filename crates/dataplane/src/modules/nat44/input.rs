//! `nat44-in`: before the lookup. Packets of sessions, both ways; new
//! inbound flows (port forwards, mappings that let them in, 1:1); ICMP
//! errors about sessions; hairpinning.

use std::fmt::Write;

use super::index::Hash;
use super::rules::{Action, Nat44Table, Rule, Rules};
use super::snat::{self, Rng};
use super::store::{Dir, NewSession, Store};
use super::{addresses_only, l3, rewrite, ttl, Drop, Marks};
use crate::buffer::{PacketBuf, PktId};
use crate::graph::{edges, Dispatch, Node, FRAME_CAP};
use crate::snapshot::TableId;
use crate::tables::Tables;
use crate::worker::{Ctx, Fwd};
use weir_packet::nat4::{self, Kind4, Tuple4};

edges! {
    enum Next {
        Continue => "nat44-in:next",
    }
}

pub struct Nat44In {
    table: TableId<Nat44Table>,
    marks: Marks,
    rng: Rng,
    kinds: Vec<Option<Kind4>>,
    hashes: Vec<Hash>,
}

impl Nat44In {
    pub fn new(table: TableId<Nat44Table>, marks: Marks) -> Nat44In {
        Nat44In {
            table,
            marks,
            rng: Rng::new(),
            kinds: Vec::with_capacity(FRAME_CAP),
            hashes: Vec::with_capacity(FRAME_CAP),
        }
    }
}

/// The address of a masquerading rule's port.
pub(super) fn masq_of(tables: &Tables, r: &Rule) -> Option<u32> {
    match &r.action {
        Action::Snat { pool, .. } if pool.is_empty() => r
            .port
            .and_then(|p| tables.port(p))
            .and_then(|p| p.primary4())
            .map(u32::from),
        _ => None,
    }
}

/// Translate a packet going `dir` through session `id`; false if the
/// packet could not be rewritten.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn through(
    store: &Store,
    buf: &mut PacketBuf,
    t: &Tuple4,
    id: u32,
    dir: Dir,
    flags: u8,
    now: u32,
    addresses: bool,
) -> bool {
    let (to, vrf) = store.translate(id, dir);
    store.touch(id, dir, flags, now);
    let to = if addresses {
        addresses_only(t, &to)
    } else {
        to
    };
    if !rewrite(buf, &to) {
        return false;
    }
    buf.meta.vrf = vrf;
    true
}

/// Hairpinning (RFC 4787 REQ-9): a packet from an inside host to an
/// outside address of another also leaves its source as its own mapping.
#[allow(clippy::too_many_arguments)]
pub(super) fn hairpin_source(
    store: &Store,
    rules: &Rules,
    tables: &Tables,
    vrf: u16,
    rx_port: u16,
    t: &Tuple4,
    rng: &mut Rng,
    worker: usize,
) -> Option<(u16, u32, u32, u16)> {
    let list = rules.snat.get(vrf as usize)?;
    for &id in list {
        let Some(r) = rules.rule(id) else { continue };
        // From the inside: matched by source, and not from the rule's own
        // (outside) interface.
        let inside = !r.src.is_empty()
            && r.src.iter().any(|p| p.contains(t.src))
            && r.port.is_none_or(|p| p != rx_port);
        if !inside {
            continue;
        }
        let masq = super::input::masq_of(tables, r);
        if let Ok((m, a, p)) = snat::mapping(store, rules, r, vrf, t, masq, rng, worker) {
            return Some((id, m, a, p));
        }
    }
    None
}

impl Node<Fwd> for Nat44In {
    fn name(&self) -> &'static str {
        "nat44-in"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let t = cx.table(self.table);
        let Some(store) = t.store.clone() else {
            for i in 0..pkts.len() {
                out.next(i, Next::Continue);
            }
            return;
        };
        let rules = t.rules.clone();
        let now = store.now();
        let worker = cx.local.worker;
        // Pass 1: classify, hash, and bring the index buckets in.
        self.kinds.clear();
        self.hashes.clear();
        for &id in pkts {
            let b = cx.pool.get(id);
            let k = if rules.active(b.meta.vrf) && ttl(b) > 1 {
                nat4::classify(l3(b)).ok()
            } else {
                None
            };
            let h = match &k {
                Some(Kind4::Flow { tuple, .. }) => store.session_hash(b.meta.vrf, tuple),
                Some(Kind4::IcmpError { inner, .. }) => {
                    store.session_hash(b.meta.vrf, &inner.reversed())
                }
                _ => Hash(0),
            };
            if h.0 != 0 {
                store.prefetch(h);
            }
            self.kinds.push(k);
            self.hashes.push(h);
        }
        // Pass 2: bring in the sessions the buckets point at.
        for &h in &self.hashes {
            if h.0 != 0 {
                store.prefetch_session(h);
            }
        }
        // Pass 3: translate.
        for (i, &id) in pkts.iter().enumerate() {
            out.next(i, Next::Continue);
            let Some(kind) = self.kinds[i] else { continue };
            let h = self.hashes[i];
            let b = cx.pool.get_mut(id);
            let vrf = b.meta.vrf;
            match kind {
                Kind4::Flow {
                    tuple,
                    flags,
                    first_fragment,
                    ..
                } => {
                    let (sid, dir) = match store.lookup(h, vrf, &tuple) {
                        Some(x) => x,
                        None => {
                            if one_to_one_in(&rules, b, &tuple) {
                                *b.meta.slot_mut(self.marks.done) = 1;
                                continue;
                            }
                            let rx = b.meta.rx_port;
                            match self.inbound(
                                &store, &rules, cx.tables, vrf, rx, &tuple, flags, now, worker,
                            ) {
                                Ok(Some(x)) => x,
                                Ok(None) => continue,
                                Err(d) => {
                                    out.drop_at(i, d);
                                    continue;
                                }
                            }
                        }
                    };
                    let b = cx.pool.get_mut(id);
                    if !through(&store, b, &tuple, sid, dir, flags, now, false) {
                        out.drop_at(i, Drop::Malformed);
                        continue;
                    }
                    if first_fragment {
                        let ip_id = u16::from_be_bytes([l3(b)[4], l3(b)[5]]);
                        let _ = ip_id;
                        store.frag_note(
                            vrf,
                            &Tuple4 {
                                sport: 0,
                                dport: 0,
                                ..tuple
                            },
                            ip_id,
                            sid,
                            dir,
                        );
                    }
                    *b.meta.slot_mut(self.marks.done) = 1;
                }
                Kind4::Fragment { tuple, id: ip_id } => {
                    if let Some((sid, dir)) = store.frag_find(vrf, &tuple, ip_id) {
                        if through(&store, b, &tuple, sid, dir, 0, now, true) {
                            *b.meta.slot_mut(self.marks.done) = 1;
                        } else {
                            out.drop_at(i, Drop::Malformed);
                        }
                    } else if one_to_one_in(&rules, b, &tuple) {
                        *b.meta.slot_mut(self.marks.done) = 1;
                    }
                    // Else nat44-out decides (its first fragment may be in
                    // this batch).
                }
                Kind4::IcmpError { outer, inner, .. } => {
                    match store.lookup(h, vrf, &inner.reversed()) {
                        Some((sid, dir)) => {
                            let (to, nvrf) = store.translate(sid, dir);
                            store.touch(sid, dir, 0, now);
                            let src = if outer.src == inner.dst {
                                to.src
                            } else {
                                outer.src
                            };
                            let l3o = b.meta.l3_offset as usize;
                            let ok = b.data_mut().get_mut(l3o..).is_some_and(|ip| {
                                nat4::rewrite_icmp_error(ip, src, to.dst, &to.reversed()).is_ok()
                            });
                            if !ok {
                                out.drop_at(i, Drop::Malformed);
                                continue;
                            }
                            b.meta.vrf = nvrf;
                            *b.meta.slot_mut(self.marks.done) = 1;
                        }
                        None if rules.is_outside(outer.dst) => {
                            out.drop_at(i, Drop::ErrorNoSession);
                        }
                        None => {}
                    }
                }
                Kind4::Other { tuple } => {
                    if let Some((sid, dir)) =
                        store.lookup(store.session_hash(vrf, &tuple), vrf, &tuple)
                    {
                        if !through(&store, b, &tuple, sid, dir, 0, now, false) {
                            out.drop_at(i, Drop::Malformed);
                            continue;
                        }
                        *b.meta.slot_mut(self.marks.done) = 1;
                    } else if one_to_one_in(&rules, b, &tuple) {
                        *b.meta.slot_mut(self.marks.done) = 1;
                    }
                }
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        trace(buf, self.marks, out);
    }
}

pub(super) fn trace(buf: &PacketBuf, marks: Marks, out: &mut String) {
    if let Ok(k) = nat4::classify(l3(buf)) {
        let t = match k {
            Kind4::Flow { tuple, .. } | Kind4::Fragment { tuple, .. } | Kind4::Other { tuple } => {
                tuple
            }
            Kind4::IcmpError { outer, .. } => outer,
        };
        let a = |x: u32| std::net::Ipv4Addr::from(x);
        let _ = write!(
            out,
            "{}:{} > {}:{} proto {}{}",
            a(t.src),
            t.sport,
            a(t.dst),
            t.dport,
            t.proto,
            if buf.meta.slot(marks.done) != 0 {
                " translated"
            } else {
                ""
            }
        );
    }
}

/// Static 1:1 NAT inbound: a packet to an outside address of a rule
/// goes to its inside host.
fn one_to_one_in(rules: &Rules, b: &mut PacketBuf, t: &Tuple4) -> bool {
    let Some(list) = rules.one_to_one.get(b.meta.vrf as usize) else {
        return false;
    };
    for &id in list {
        let Some(r) = rules.rule(id) else { continue };
        let Action::OneToOne { inside, outside } = r.action else {
            continue;
        };
        if r.port.is_some_and(|p| p != b.meta.rx_port) || !outside.contains(t.dst) {
            continue;
        }
        let to = Tuple4 {
            dst: inside.net | (t.dst & !inside.mask()),
            ..*t
        };
        return rewrite(b, &to);
    }
    false
}

impl Nat44In {
    /// A new flow from outside: a port forward, or a mapping that lets it
    /// in. Ok(None): NAT has nothing to do with it.
    #[allow(clippy::too_many_arguments)]
    fn inbound(
        &mut self,
        store: &Store,
        rules: &Rules,
        tables: &Tables,
        vrf: u16,
        rx: u16,
        t: &Tuple4,
        flags: u8,
        now: u32,
        worker: usize,
    ) -> Result<Option<(u32, Dir)>, Drop> {
        // Port forwarding.
        if let Some(list) = rules.dnat.get(vrf as usize) {
            for &rid in list {
                let Some(r) = rules.rule(rid) else { continue };
                let Action::Dnat { to, ports } = r.action else {
                    continue;
                };
                if !r.dnat_matches(t, rx) {
                    continue;
                }
                let dport = match (ports, r.dports) {
                    (Some(p), Some(m)) if p.count() == m.count() => p.first + (t.dport - m.first),
                    (Some(p), _) => p.first,
                    (None, _) => t.dport,
                };
                let mut xlat = Tuple4 {
                    dst: to,
                    dport: if matches!(t.proto, 6 | 17) {
                        dport
                    } else {
                        t.dport
                    },
                    ..*t
                };
                let hairpin =
                    hairpin_source(store, rules, tables, vrf, rx, t, &mut self.rng, worker);
                if let Some((_, _, a, p)) = hairpin {
                    xlat.src = a;
                    xlat.sport = p;
                }
                let n = NewSession {
                    vrf_in: vrf,
                    orig: *t,
                    vrf_out: r.vrf,
                    xlat,
                    rule: rid,
                    tcp_flags: flags,
                    count_source: hairpin.is_some(),
                    source_cap: hairpin
                        .and_then(|h| rules.rule(h.0))
                        .map_or(0, |r| r.max_per_source),
                    rule_cap: r.max_sessions,
                    mapping: hairpin.map(|h| h.1),
                    adf: false,
                };
                return store
                    .create(worker, &n, now)
                    .map(|id| Some((id, Dir::Orig)))
                    .map_err(Drop::from);
            }
        }
        // A mapping of source NAT that lets this sender in. ICMP queries
        // from outside never reach inside hosts through a mapping.
        if t.proto == 1 || !rules.is_outside(t.dst) {
            return Ok(None);
        }
        let Some((m, mvrf, iip, iport)) = store.mapping_from_outside(t.proto, t.dst, t.dport)
        else {
            return Ok(None);
        };
        let Some((rid, r)) = rules.snat_rule_of(t.dst, |r| masq_of(tables, r)) else {
            return Ok(None);
        };
        let Action::Snat { filtering, .. } = r.action else {
            return Ok(None);
        };
        if filtering == super::rules::Filtering::AddressDependent
            && !store.adf_allows(t.dst, t.dport, t.proto, t.src)
        {
            return Ok(None);
        }
        if !store.mapping_ref(m) {
            return Ok(None);
        }
        let mut xlat = Tuple4 {
            dst: iip,
            dport: iport,
            ..*t
        };
        let hairpin = hairpin_source(store, rules, tables, vrf, rx, t, &mut self.rng, worker);
        if let Some((_, hm, a, p)) = hairpin {
            // The session keeps one mapping: the target's.
            store.release_mapping(hm);
            xlat.src = a;
            xlat.sport = p;
        }
        let n = NewSession {
            vrf_in: vrf,
            orig: *t,
            vrf_out: mvrf,
            xlat,
            rule: rid,
            tcp_flags: flags,
            count_source: false,
            source_cap: 0,
            rule_cap: r.max_sessions,
            mapping: Some(m),
            adf: false,
        };
        store
            .create(worker, &n, now)
            .map(|id| Some((id, Dir::Orig)))
            .map_err(Drop::from)
    }
}
