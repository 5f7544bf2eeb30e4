//! Next hops: allocated by identity, reference counted, refreshed when
//! their neighbour changes.

use std::net::IpAddr;
use std::time::Instant;

use super::*;
use crate::tables::{NextHop, NextHopId, PortId, TableChange};

impl Control {
    pub(super) fn nh_get(&mut self, key: NhKey) -> NextHopId {
        if let Some((id, refs)) = self.nh_ids.get_mut(&key) {
            *refs += 1;
            return *id;
        }
        let id = self
            .nh_free
            .pop()
            .unwrap_or(self.nh_keys.len() as NextHopId);
        if self.nh_keys.len() <= id as usize {
            self.nh_keys.resize(id as usize + 1, None);
        }
        self.nh_keys[id as usize] = Some(key.clone());
        let nh = self.nh_value(&key);
        self.nh_ids.insert(key, (id, 1));
        self.pending.push(TableChange::SetNextHop(id, nh));
        id
    }

    pub(super) fn nh_value(&self, key: &NhKey) -> NextHop {
        match key {
            NhKey::Neighbour(p, a) => NextHop::Neighbour {
                port: *p,
                addr: *a,
                mac: self
                    .neighbours
                    .get(&(*p, *a))
                    .filter(|n| n.is_usable())
                    .map(|n| n.mac),
            },
            NhKey::Attached(p) => NextHop::Attached { port: *p },
            NhKey::Local(p) => NextHop::Local { port: *p },
            NhKey::Table(v) => NextHop::Table(*v),
            NhKey::Group(m) => NextHop::Group(m.clone()),
        }
    }

    /// A neighbour next hop; starts resolving it if it is new.
    pub(super) fn nh_neighbour(&mut self, port: PortId, addr: IpAddr) -> NextHopId {
        let id = self.nh_get(NhKey::Neighbour(port, addr));
        if !self.neighbours.contains_key(&(port, addr)) {
            self.neigh_start(port, addr, Instant::now(), true);
        }
        id
    }

    pub(super) fn nh_release(&mut self, id: NextHopId) {
        let Some(Some(key)) = self.nh_keys.get(id as usize).cloned() else {
            return; // the fixed ones
        };
        let Some((_, refs)) = self.nh_ids.get_mut(&key) else {
            return;
        };
        *refs -= 1;
        if *refs > 0 {
            return;
        }
        self.nh_ids.remove(&key);
        self.nh_keys[id as usize] = None;
        self.nh_free.push(id);
        self.pending
            .push(TableChange::SetNextHop(id, NextHop::Unreachable));
        if let NhKey::Group(members) = key {
            for m in members {
                self.nh_release(m);
            }
        }
    }

    /// Refresh every next hop that points at neighbour (port, addr).
    pub(super) fn nh_refresh(&mut self, port: PortId, addr: IpAddr) {
        let key = NhKey::Neighbour(port, addr);
        if let Some((id, _)) = self.nh_ids.get(&key) {
            let id = *id;
            let v = self.nh_value(&key);
            self.pending.push(TableChange::SetNextHop(id, v));
        }
    }

    /// Number of next hops in use (fixed ones excluded).
    pub fn nexthop_count(&self) -> usize {
        self.nh_ids.len()
    }
}
