//! The control side of NAT44 (the `nat44` module's): rules by name (each keeps its id, so the
//! sessions of rules a change does not touch live on), the session
//! table made on the first rule, and the sweeper thread that ends
//! sessions whose timers ran out.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::control::Control;
use crate::modules::nat44::rules::{Nat44Table, Rule, Rules};
use crate::modules::nat44::store::{SessionView, Store, Timeouts, MAX_RULES, MAX_VRFS};
use crate::tables::PortId;

/// A rule as the control side is given it.
pub type RuleSpec = Rule;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatError {
    #[error("no room for more than {MAX_RULES} NAT rules")]
    TooManyRules,
    #[error("VRF {0} is beyond the {MAX_VRFS} VRFs NAT can serve")]
    VrfTooHigh(u16),
    #[error("no NAT rule {0}")]
    NoRule(String),
}

/// How often the sweeper wakes, and how much of the table it looks at
/// each time (all of it once a second).
const SWEEP_EVERY: Duration = Duration::from_millis(50);
const SWEEP_SHARE: usize = 20;

/// NAT44's control-side operations, on the dataplane's `Control`.
pub struct Nat44;

impl Nat44 {
    fn table(ctl: &mut Control) -> Nat44Table {
        (**ctl.table::<Nat44Table>().load()).clone()
    }

    /// Set the session table's capacity; only before the first rule (the
    /// table is allocated once).
    pub fn set_capacity(ctl: &mut Control, sessions: usize) {
        let mut t = Self::table(ctl);
        if t.store.is_none() {
            t.capacity = sessions.max(1);
            ctl.table::<Nat44Table>().commit(vec![t]);
        }
    }

    /// The session table, once a rule made it.
    pub fn store(ctl: &mut Control) -> Option<Arc<Store>> {
        Self::table(ctl).store
    }

    /// Add or change rule `name`. A change of what a rule translates ends
    /// its sessions (they would no longer match it); a change of timers
    /// or caps keeps them. Returns the sessions ended.
    pub fn set_rule(ctl: &mut Control, name: &str, rule: Rule) -> Result<usize, NatError> {
        let ports = ports_of(ctl);
        let ports = &ports[..];
        if rule.vrf >= MAX_VRFS {
            return Err(NatError::VrfTooHigh(rule.vrf));
        }
        let mut t = Self::table(ctl);
        let mut list: Vec<(u16, Rule)> = t
            .rules
            .by_id
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.clone().map(|r| (i as u16, r)))
            .collect();
        let mut flush = None;
        match list.iter_mut().find(|(_, r)| r.name == name) {
            Some((id, r)) => {
                let same_translation = Rule {
                    timeouts: rule.timeouts,
                    max_sessions: rule.max_sessions,
                    max_per_source: rule.max_per_source,
                    name: rule.name.clone(),
                    ..r.clone()
                } == rule;
                if !same_translation {
                    flush = Some(*id);
                }
                *r = Rule {
                    name: name.to_string(),
                    ..rule
                };
            }
            None => {
                let id = (0..MAX_RULES as u16)
                    .find(|i| !list.iter().any(|(x, _)| x == i))
                    .ok_or(NatError::TooManyRules)?;
                list.push((
                    id,
                    Rule {
                        name: name.to_string(),
                        ..rule
                    },
                ));
            }
        }
        if t.store.is_none() {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            let store = Arc::new(Store::new(t.capacity, workers));
            spawn_sweeper(Arc::downgrade(&store));
            t.store = Some(store);
        }
        t.rules = Arc::new(build(list, ports));
        let store = t.store.clone().expect("made above");
        store.set_timeouts(timeouts_of(&t.rules));
        ctl.table::<Nat44Table>().commit(vec![t]);
        Ok(flush.map_or(0, |id| store.flush(Some(id))))
    }

    /// Remove rule `name` and end its sessions; returns how many.
    pub fn remove_rule(ctl: &mut Control, name: &str) -> Result<usize, NatError> {
        let ports = ports_of(ctl);
        let ports = &ports[..];
        let mut t = Self::table(ctl);
        let list: Vec<(u16, Rule)> = t
            .rules
            .by_id
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.clone().map(|r| (i as u16, r)))
            .collect();
        let Some(id) = list.iter().find(|(_, r)| r.name == name).map(|x| x.0) else {
            return Err(NatError::NoRule(name.to_string()));
        };
        t.rules = Arc::new(build(list.into_iter().filter(|(i, _)| *i != id), ports));
        let store = t.store.clone();
        if let Some(s) = &store {
            s.set_timeouts(timeouts_of(&t.rules));
        }
        ctl.table::<Nat44Table>().commit(vec![t]);
        Ok(store.map_or(0, |s| s.flush(Some(id))))
    }

    /// Rebuild the rules' view of ports (a port's VRF or address changed).
    pub fn refresh_ports(ctl: &mut Control) {
        let ports = ports_of(ctl);
        let ports = &ports[..];
        let mut t = Self::table(ctl);
        let list: Vec<(u16, Rule)> = t
            .rules
            .by_id
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.clone().map(|r| (i as u16, r)))
            .collect();
        if list.is_empty() {
            return;
        }
        t.rules = Arc::new(build(list, ports));
        ctl.table::<Nat44Table>().commit(vec![t]);
    }

    /// Rule ids by name.
    pub fn rule_ids(ctl: &mut Control) -> Vec<(u16, String)> {
        Self::table(ctl)
            .rules
            .by_id
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i as u16, r.name.clone())))
            .collect()
    }

    /// Every live session.
    pub fn sessions(ctl: &mut Control) -> Vec<SessionView> {
        Self::store(ctl).map_or_else(Vec::new, |s| s.sessions().collect())
    }
}

/// Every port: (id, VRF, IPv4 addresses).
fn ports_of(ctl: &Control) -> Vec<(PortId, u16, Vec<u32>)> {
    ctl.tables()
        .ports
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.as_ref().map(|p| {
                (
                    i as PortId,
                    p.vrf,
                    p.addrs4.iter().map(|a| u32::from(a.0)).collect(),
                )
            })
        })
        .collect()
}

fn build(list: impl IntoIterator<Item = (u16, Rule)>, ports: &[(PortId, u16, Vec<u32>)]) -> Rules {
    Rules::build(
        list,
        |p| ports.iter().find(|x| x.0 == p).map(|x| x.1),
        |p| {
            ports
                .iter()
                .find(|x| x.0 == p)
                .map(|x| x.2.clone())
                .unwrap_or_default()
        },
    )
}

fn timeouts_of(rules: &Rules) -> Vec<Option<Timeouts>> {
    rules
        .by_id
        .iter()
        .map(|r| r.as_ref().map(|r| r.timeouts))
        .collect()
}

/// The sweeper: a slice of the table every `SWEEP_EVERY`, the whole table
/// each second; it stops when the table is dropped.
fn spawn_sweeper(store: Weak<Store>) {
    let _ = std::thread::Builder::new()
        .name("weir-nat-sweep".into())
        .spawn(move || loop {
            std::thread::sleep(SWEEP_EVERY);
            let Some(s) = store.upgrade() else { return };
            let chunk = s.capacity().div_ceil(SWEEP_SHARE);
            s.sweep_step(chunk);
        });
}
