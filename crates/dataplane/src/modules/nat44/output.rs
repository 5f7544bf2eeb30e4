//! `nat44-out`: after the lookup, where the egress port is known. New
//! outbound flows that a source NAT or 1:1 rule takes; packets `nat44-in`
//! translated pass untouched.

use super::input::{hairpin_source, masq_of, through, trace};
use super::rules::{Action, Nat44Table, Rules};
use super::snat::{self, Rng};
use super::store::{NewSession, Store};
use super::{l3, rewrite, ttl, Drop, Marks};
use crate::buffer::{PacketBuf, PktId};
use crate::graph::{edges, Dispatch, Node};
use crate::snapshot::TableId;
use crate::tables::Tables;
use crate::worker::{Ctx, Fwd};
use weir_packet::nat4::{self, Kind4, Tuple4};

edges! {
    enum Next {
        Continue => "nat44-out:next",
    }
}

pub struct Nat44Out {
    table: TableId<Nat44Table>,
    marks: Marks,
    rng: Rng,
}

impl Nat44Out {
    pub fn new(table: TableId<Nat44Table>, marks: Marks) -> Nat44Out {
        Nat44Out {
            table,
            marks,
            rng: Rng::new(),
        }
    }
}

/// Static 1:1 NAT outbound: a packet from an inside host of a rule leaves
/// as its outside twin.
fn one_to_one_out(rules: &Rules, b: &mut PacketBuf, t: &Tuple4, egress: u16) -> bool {
    let Some(list) = rules.one_to_one.get(b.meta.vrf as usize) else {
        return false;
    };
    for &id in list {
        let Some(r) = rules.rule(id) else { continue };
        let Action::OneToOne { inside, outside } = r.action else {
            continue;
        };
        if r.port.is_some_and(|p| p != egress) || !inside.contains(t.src) {
            continue;
        }
        let to = Tuple4 {
            src: outside.net | (t.src & !outside.mask()),
            ..*t
        };
        return rewrite(b, &to);
    }
    false
}

impl Node<Fwd> for Nat44Out {
    fn name(&self) -> &'static str {
        "nat44-out"
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
        for (i, &id) in pkts.iter().enumerate() {
            out.next(i, Next::Continue);
            let b = cx.pool.get_mut(id);
            let vrf = b.meta.vrf;
            if b.meta.slot(self.marks.done) != 0 || !rules.active(vrf) || ttl(b) <= 1 {
                continue;
            }
            let egress = cx.tables.adjacency_of(b.meta.nexthop).port;
            match nat4::classify(l3(b)) {
                Ok(Kind4::Flow {
                    tuple,
                    flags,
                    first_fragment,
                    is_request,
                }) => {
                    // A packet earlier in this batch may have made the session.
                    let h = store.session_hash(vrf, &tuple);
                    let (sid, dir) = match store.lookup(h, vrf, &tuple) {
                        Some(x) => x,
                        None => {
                            if one_to_one_out(&rules, b, &tuple, egress) {
                                continue;
                            }
                            let rx = b.meta.rx_port;
                            match self.outbound(
                                &store, &rules, cx.tables, vrf, rx, egress, &tuple, flags,
                                is_request, now, worker,
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
                    // Routed already: the VRF the session names matters
                    // only for packets still to be looked up.
                    b.meta.vrf = vrf;
                    if first_fragment {
                        let d = l3(b);
                        let ip_id = u16::from_be_bytes([d[4], d[5]]);
                        let key = Tuple4 {
                            sport: 0,
                            dport: 0,
                            ..tuple
                        };
                        store.frag_note(vrf, &key, ip_id, sid, dir);
                    }
                }
                Ok(Kind4::Fragment { tuple, id: ip_id }) => {
                    if let Some((sid, dir)) = store.frag_find(vrf, &tuple, ip_id) {
                        if !through(&store, b, &tuple, sid, dir, 0, now, true) {
                            out.drop_at(i, Drop::Malformed);
                        }
                        b.meta.vrf = vrf;
                    } else if one_to_one_out(&rules, b, &tuple, egress) {
                    } else if snat_rule(&rules, vrf, &tuple, egress, true).is_some() {
                        out.drop_at(i, Drop::FragmentBeforeFirst);
                    }
                }
                Ok(Kind4::Other { tuple }) => {
                    if one_to_one_out(&rules, b, &tuple, egress) {
                        continue;
                    }
                    let h = store.session_hash(vrf, &tuple);
                    let found = store.lookup(h, vrf, &tuple);
                    let got = match found {
                        Some(x) => Ok(Some(x)),
                        None => {
                            let rx = b.meta.rx_port;
                            self.outbound(
                                &store, &rules, cx.tables, vrf, rx, egress, &tuple, 0, false, now,
                                worker,
                            )
                        }
                    };
                    match got {
                        Ok(Some((sid, dir))) => {
                            let b = cx.pool.get_mut(id);
                            if !through(&store, b, &tuple, sid, dir, 0, now, false) {
                                out.drop_at(i, Drop::Malformed);
                            }
                            b.meta.vrf = vrf;
                        }
                        Ok(None) => {}
                        Err(d) => out.drop_at(i, d),
                    }
                }
                // Errors about sessions were translated by nat44-in; others
                // are not NAT's.
                Ok(Kind4::IcmpError { .. }) => {}
                Err(_) => {
                    // Cut short: it must not leave with an inside address.
                    let Some(d) = l3(b).get(..20) else { continue };
                    let t = Tuple4 {
                        proto: d[9],
                        src: u32::from_be_bytes([d[12], d[13], d[14], d[15]]),
                        dst: u32::from_be_bytes([d[16], d[17], d[18], d[19]]),
                        sport: 0,
                        dport: 0,
                    };
                    if snat_rule(&rules, vrf, &t, egress, true).is_some() {
                        out.drop_at(i, Drop::Malformed);
                    }
                }
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        trace(buf, self.marks, out);
    }
}

/// The first source NAT rule of `vrf` for `t` leaving by `egress`
/// (`any_port`: ignoring the rule's destination ports, for packets that
/// show none).
fn snat_rule<'a>(
    rules: &'a Rules,
    vrf: u16,
    t: &Tuple4,
    egress: u16,
    any_port: bool,
) -> Option<(u16, &'a super::rules::Rule)> {
    rules.snat.get(vrf as usize)?.iter().find_map(|&id| {
        let r = rules.rule(id)?;
        let ok = if any_port {
            r.port.is_none_or(|p| p == egress)
                && (r.src.is_empty() || r.src.iter().any(|p| p.contains(t.src)))
                && (r.dst.is_empty() || r.dst.iter().any(|p| p.contains(t.dst)))
                && r.proto.is_none_or(|p| p == t.proto)
        } else {
            r.snat_matches(t, egress)
        };
        ok.then_some((id, r))
    })
}

impl Nat44Out {
    /// A new flow leaving: source NAT if a rule takes it. Ok(None): no
    /// rule does.
    #[allow(clippy::too_many_arguments)]
    fn outbound(
        &mut self,
        store: &Store,
        rules: &Rules,
        tables: &Tables,
        vrf: u16,
        _rx: u16,
        egress: u16,
        t: &Tuple4,
        flags: u8,
        is_request: bool,
        now: u32,
        worker: usize,
    ) -> Result<Option<(u32, super::store::Dir)>, Drop> {
        let Some((rid, r)) = snat_rule(rules, vrf, t, egress, false) else {
            return Ok(None);
        };
        // An ICMP query reply leaving has no request to answer here.
        if t.proto == 1 && !is_request {
            return Err(Drop::NoSession);
        }
        let masq = masq_of(tables, r);
        let (m, addr, port) = snat::mapping(store, rules, r, vrf, t, masq, &mut self.rng, worker)
            .map_err(Drop::from)?;
        let Action::Snat { filtering, .. } = r.action else {
            return Ok(None);
        };
        let xlat = Tuple4 {
            src: addr,
            sport: port,
            // An ICMP query's identifier is both "ports".
            dport: if t.proto == 1 { port } else { t.dport },
            ..*t
        };
        let vrf_out = tables.port(egress).map(|p| p.vrf).unwrap_or(vrf);
        let n = NewSession {
            vrf_in: vrf,
            orig: *t,
            vrf_out,
            xlat,
            rule: rid,
            tcp_flags: flags,
            count_source: true,
            source_cap: r.max_per_source,
            rule_cap: r.max_sessions,
            mapping: Some(m),
            adf: filtering == super::rules::Filtering::AddressDependent,
        };
        let _ = hairpin_source;
        store
            .create(worker, &n, now)
            .map(|id| Some((id, super::store::Dir::Orig)))
            .map_err(Drop::from)
    }
}
