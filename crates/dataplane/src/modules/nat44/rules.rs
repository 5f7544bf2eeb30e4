//! NAT44 rules as the nodes read them: the module's table, published by
//! the control side as one value (rules are few; a change replaces them).

use std::sync::Arc;

use super::store::{Store, Timeouts, MAX_RULES, MAX_VRFS};
use crate::snapshot::Apply;
use crate::tables::PortId;
use weir_packet::nat4::Tuple4;

/// An IPv4 prefix as (network, length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix4 {
    pub net: u32,
    pub len: u8,
}

impl Prefix4 {
    pub fn new(net: u32, len: u8) -> Prefix4 {
        let len = len.min(32);
        Prefix4 {
            net: net & Self::mask_of(len),
            len,
        }
    }
    #[inline(always)]
    fn mask_of(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - len as u32)
        }
    }
    #[inline(always)]
    pub fn mask(&self) -> u32 {
        Self::mask_of(self.len)
    }
    #[inline(always)]
    pub fn contains(&self, a: u32) -> bool {
        a & self.mask() == self.net
    }
    /// Addresses in the prefix.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.len as u32)
    }
}

/// `a` is in one of `list`; an empty list holds every address.
#[inline]
fn any_of(list: &[Prefix4], a: u32) -> bool {
    list.is_empty() || list.iter().any(|p| p.contains(a))
}

/// Inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub first: u16,
    pub last: u16,
}

impl Ports {
    #[inline(always)]
    pub fn contains(&self, p: u16) -> bool {
        (self.first..=self.last).contains(&p)
    }
    pub fn count(&self) -> u32 {
        self.last as u32 - self.first as u32 + 1
    }
}

/// RFC 4787 REQ-8: which outside hosts may send to a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filtering {
    EndpointIndependent,
    #[default]
    AddressDependent,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Source NAT of traffic leaving (through `Rule::port` when set) to
    /// `pool`, or to the egress port's own address when `pool` is empty.
    Snat {
        pool: Vec<u32>,
        /// Ports to allocate; None: 1024-65535, and 1-1023 for inside
        /// ports below 1024 (RFC 4787 REQ-3's ranges kept apart).
        ports: Option<Ports>,
        filtering: Filtering,
        /// One inside address always gets the same outside address
        /// (RFC 4787 REQ-2); else any address of the pool.
        paired: bool,
    },
    /// Destination NAT of traffic to `Rule::dst` (and `Rule::ports`) to
    /// `to`, the port kept, made `ports.first` or shifted into `ports`.
    Dnat { to: u32, ports: Option<Ports> },
    /// Static 1:1 NAT: `inside` leaves as the same host in `outside`, and
    /// `outside` comes in as `inside`.
    OneToOne { inside: Prefix4, outside: Prefix4 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub vrf: u16,
    /// The interface traffic leaves (snat) or arrives (dnat, 1:1) by.
    pub port: Option<PortId>,
    pub src: Vec<Prefix4>,
    pub dst: Vec<Prefix4>,
    /// IP protocol; None for any.
    pub proto: Option<u8>,
    /// Destination ports (tcp, udp).
    pub dports: Option<Ports>,
    pub action: Action,
    pub timeouts: Timeouts,
    /// Caps (0: none).
    pub max_sessions: u32,
    pub max_per_source: u32,
}

impl Rule {
    #[inline]
    fn proto_ok(&self, t: &Tuple4) -> bool {
        self.proto.is_none_or(|p| p == t.proto)
            && self
                .dports
                .is_none_or(|r| matches!(t.proto, 6 | 17) && r.contains(t.dport))
    }

    /// Source NAT applies to `t` leaving by `port`.
    #[inline]
    pub fn snat_matches(&self, t: &Tuple4, port: PortId) -> bool {
        self.port.is_none_or(|p| p == port)
            && any_of(&self.src, t.src)
            && any_of(&self.dst, t.dst)
            && self.proto_ok(t)
    }

    /// Destination NAT applies to `t` arriving by `port`.
    #[inline]
    pub fn dnat_matches(&self, t: &Tuple4, port: PortId) -> bool {
        self.port.is_none_or(|p| p == port)
            && !self.dst.is_empty()
            && any_of(&self.dst, t.dst)
            && any_of(&self.src, t.src)
            && self.proto_ok(t)
    }

    /// A source NAT rule's pool holds `a` (masquerade: `a` is `masq`).
    pub fn pool_has(&self, a: u32, masq: Option<u32>) -> bool {
        match &self.action {
            Action::Snat { pool, .. } if pool.is_empty() => masq == Some(a),
            Action::Snat { pool, .. } => pool.contains(&a),
            _ => false,
        }
    }
}

/// Every rule, by id, and what the nodes check per packet.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub by_id: Vec<Option<Rule>>,
    /// Per VRF: the ids of its source NAT, destination NAT and 1:1 rules.
    pub snat: Vec<Vec<u16>>,
    pub dnat: Vec<Vec<u16>>,
    pub one_to_one: Vec<Vec<u16>>,
    /// Every destination NAT and every source NAT rule, whatever its VRF.
    pub dnat_all: Vec<u16>,
    pub snat_all: Vec<u16>,
    /// VRFs whose packets NAT looks at: those of the rules and of the
    /// ports they name.
    pub active: Vec<bool>,
    /// Addresses that stand for inside hosts (pools, forwarded and 1:1
    /// outside addresses, masquerading ports' addresses): an ICMP error to
    /// one of them that matches no session is dropped.
    pub outside: Vec<Prefix4>,
}

impl Rules {
    /// Rules from (id, rule); `port_vrf` gives the VRF of a port.
    pub fn build(
        rules: impl IntoIterator<Item = (u16, Rule)>,
        port_vrf: impl Fn(PortId) -> Option<u16>,
        port_addrs: impl Fn(PortId) -> Vec<u32>,
    ) -> Rules {
        let mut r = Rules::default();
        let v = MAX_VRFS as usize;
        r.snat = vec![Vec::new(); v];
        r.dnat = vec![Vec::new(); v];
        r.one_to_one = vec![Vec::new(); v];
        r.active = vec![false; v];
        for (id, rule) in rules {
            let (id, vrf) = (id as usize, rule.vrf as usize % v);
            if id >= MAX_RULES {
                continue;
            }
            if r.by_id.len() <= id {
                r.by_id.resize(id + 1, None);
            }
            r.active[vrf] = true;
            match &rule.action {
                Action::Snat { pool, .. } => {
                    r.snat[vrf].push(id as u16);
                    r.snat_all.push(id as u16);
                    r.outside.extend(pool.iter().map(|&a| Prefix4::new(a, 32)));
                    if pool.is_empty() {
                        if let Some(p) = rule.port {
                            r.outside
                                .extend(port_addrs(p).into_iter().map(|a| Prefix4::new(a, 32)));
                        }
                    }
                }
                Action::Dnat { .. } => {
                    r.dnat[vrf].push(id as u16);
                    r.dnat_all.push(id as u16);
                    r.outside.extend(rule.dst.iter().copied());
                }
                Action::OneToOne { outside, .. } => {
                    r.one_to_one[vrf].push(id as u16);
                    r.outside.push(*outside);
                }
            }
            if let Some(p) = rule.port {
                if let Some(pv) = port_vrf(p) {
                    r.active[pv as usize % v] = true;
                }
            }
            r.by_id[id] = Some(rule);
        }
        r
    }

    #[inline(always)]
    pub fn active(&self, vrf: u16) -> bool {
        self.active.get(vrf as usize).copied().unwrap_or(false)
    }

    #[inline(always)]
    pub fn rule(&self, id: u16) -> Option<&Rule> {
        self.by_id.get(id as usize).and_then(|r| r.as_ref())
    }

    /// Whether `a` stands for inside hosts.
    pub fn is_outside(&self, a: u32) -> bool {
        self.outside.iter().any(|p| p.contains(a))
    }

    /// A destination NAT rule forwards (`a`, `port`) of `proto`: the
    /// allocator keeps off it.
    pub fn forwarded(&self, proto: u8, a: u32, port: u16) -> bool {
        self.dnat_all
            .iter()
            .filter_map(|&id| self.rule(id))
            .any(|r| {
                r.proto.is_none_or(|p| p == proto)
                    && r.dst.iter().any(|p| p.contains(a))
                    && r.dports.is_none_or(|d| d.contains(port))
            })
    }

    /// The source NAT rule whose pool holds `a`.
    pub fn snat_rule_of(
        &self,
        a: u32,
        masq: impl Fn(&Rule) -> Option<u32>,
    ) -> Option<(u16, &Rule)> {
        self.snat_all
            .iter()
            .filter_map(|&id| self.rule(id).map(|r| (id, r)))
            .find(|(_, r)| r.pool_has(a, masq(r)))
    }
}

/// The module's table: the rules, and the session table once NAT is in
/// use (allocated at the configured capacity when the first rule comes).
#[derive(Clone)]
pub struct Nat44Table {
    pub rules: Arc<Rules>,
    pub store: Option<Arc<Store>>,
    /// Sessions the table is made for.
    pub capacity: usize,
}

impl Default for Nat44Table {
    fn default() -> Self {
        Nat44Table {
            rules: Arc::default(),
            store: None,
            capacity: super::DEFAULT_CAPACITY,
        }
    }
}

impl Apply for Nat44Table {
    type Change = Nat44Table;
    fn apply(&mut self, change: &Nat44Table) {
        *self = change.clone();
    }
}
