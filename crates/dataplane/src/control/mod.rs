//! The control side of the dataplane: the only writer of the tables
//! snapshot. It keeps a small RIB (routes by source), allocates next hops,
//! owns the neighbour table (resolution, held packets, aging) and publishes
//! changes to the workers as one snapshot per commit.
//!
//! By job: `ports` (VRFs, ports, mirrors, addresses), `rib` (routes),
//! `nexthop` (next-hop ids), `neighbour` (+ `held`, `unreachable`: the
//! neighbour table, packets waiting for it and the errors about them),
//! `channels` (upcalls from and frames to the workers); this file holds
//! the state, commits and the poll loop.

mod channels;
mod held;
pub mod nat44;
mod neighbour;
mod nexthop;
mod ports;
mod rib;
mod unreachable;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::modules::icmp::IcmpLimit;
use crate::registry::Registry;
use crate::snapshot::{Apply, Publisher, Reader, TablePublishers, TableReaders};
use crate::tables::{
    HeldBuffers, NextHop, NextHopId, PortConfig, PortId, TableChange, Tables, VrfId, MAX_ECMP,
};
use crate::worker::{Upcall, WorkerCmd};
pub use neighbour::{NeighState, Neighbour, NeighbourSettings};

/// Bound of the channel workers punt through; beyond it they drop.
const PUNT_QUEUE: usize = 4096;
const INJECT_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("port {0} does not exist")]
    NoPort(PortId),
    #[error("port {0} already exists")]
    PortExists(PortId),
    #[error("VRF {0} does not exist")]
    NoVrf(VrfId),
    #[error("VRF {0} is still used by port {1}")]
    VrfInUse(VrfId, PortId),
    #[error("gateway {gateway} is not on a connected subnet of VRF {vrf}")]
    GatewayNotConnected { vrf: VrfId, gateway: IpAddr },
    #[error("gateway {gateway} is not on a subnet of port {port}")]
    GatewayNotOnPort { port: PortId, gateway: IpAddr },
    #[error("gateway {gateway} is of a different address family than prefix {prefix}")]
    FamilyMismatch { prefix: IpNet, gateway: IpAddr },
    #[error("ECMP group has {0} next hops; 1 to {MAX_ECMP} are allowed")]
    EcmpSize(usize),
    #[error("route {prefix} in VRF {vrf} does not exist")]
    NoRoute { vrf: VrfId, prefix: IpNet },
    #[error("prefix {0} has host bits set")]
    HostBits(IpNet),
    #[error("address {0} is not usable on a port (network, multicast or reserved)")]
    BadAddress(IpNet),
    #[error("address {addr} is already on port {port}")]
    AddressExists { port: PortId, addr: IpNet },
    #[error("address {addr} is not on port {port}")]
    NoAddress { port: PortId, addr: IpNet },
    #[error("MTU {0} out of range 68..={max}: a frame must fit a packet buffer", max = crate::buffer::MAX_MTU)]
    Mtu(u16),
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// Through a gateway; the port is found from the connected subnets when
    /// not given.
    Via {
        gateway: IpAddr,
        port: Option<PortId>,
    },
    /// Equal-cost multipath over several gateways.
    Ecmp(Vec<(IpAddr, Option<PortId>)>),
    /// Destinations are directly on this port's link.
    Attached(PortId),
    /// One of the gateway's own addresses.
    Local(PortId),
    /// Look up again in another VRF (a peering's leaked prefixes).
    Table(VrfId),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// Who installed a route; for the same prefix the lowest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteSource {
    Local,
    Connected,
    Static,
    /// A /32 or /128 for a resolved neighbour on a connected subnet.
    Neighbour,
}

/// Identity of a next hop (its MAC is state, not identity).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NhKey {
    Neighbour(PortId, IpAddr),
    Attached(PortId),
    Local(PortId),
    Table(VrfId),
    Group(Vec<NextHopId>),
}

#[derive(Debug, Clone)]
struct RibEntry {
    /// (source, next hop); the first is installed.
    paths: Vec<(RouteSource, NextHopId, RouteTarget)>,
}

/// Fixed next hops present in every configuration.
pub const NH_BLACKHOLE: NextHopId = 0;
pub const NH_UNREACHABLE: NextHopId = 1;
pub const NH_PROHIBIT: NextHopId = 2;

/// Counters of the control side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlStats {
    pub commits: u64,
    pub punts: u64,
    pub held: u64,
    pub held_dropped: u64,
    pub released: u64,
    pub resolved: u64,
    pub failed: u64,
    pub requests_sent: u64,
    pub inject_dropped: u64,
    /// New neighbour entries refused because the table was full of
    /// resolved or configured neighbours.
    pub neigh_refused: u64,
    /// Unresolved or stale entries evicted to make room for new ones.
    pub neigh_evicted: u64,
    /// ICMP host / ICMPv6 address unreachable sent about held packets.
    pub unreachable_sent: u64,
    /// Held packets that drew no such error: rate limited, an error
    /// themselves, or no way back to their source.
    pub unreachable_suppressed: u64,
}

pub struct Control {
    publisher: Publisher<Tables>,
    /// The modules' own tables, one publisher each.
    modules: TablePublishers,
    pending: Vec<TableChange>,
    ports: Vec<Option<PortConfig>>,
    vrfs: Vec<bool>,
    nh_ids: HashMap<NhKey, (NextHopId, u32)>,
    nh_keys: Vec<Option<NhKey>>,
    nh_free: Vec<NextHopId>,
    rib: HashMap<(VrfId, IpNet), RibEntry>,
    neighbours: HashMap<(PortId, IpAddr), Neighbour>,
    /// Per port: entries that may be evicted (unresolved or stale), oldest
    /// first; checked again when taken.
    evictable: Vec<std::collections::VecDeque<IpAddr>>,
    /// Per port: number of neighbour entries.
    neigh_count: Vec<usize>,
    held: held::HeldSlab,
    held_buffers: HeldBuffers,
    unreachable_bucket: unreachable::Bucket,
    pub settings: NeighbourSettings,
    punt_tx: SyncSender<Upcall>,
    punt_rx: Receiver<Upcall>,
    injects: Vec<SyncSender<WorkerCmd>>,
    next_inject: usize,
    pub stats: ControlStats,
}

fn canonical(p: IpNet) -> Result<IpNet, ControlError> {
    if p.trunc() != p {
        return Err(ControlError::HostBits(p));
    }
    Ok(p)
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    pub fn new() -> Control {
        let mut fixed = vec![
            TableChange::SetNextHop(NH_BLACKHOLE, NextHop::Blackhole),
            TableChange::SetNextHop(NH_UNREACHABLE, NextHop::Unreachable),
            TableChange::SetNextHop(NH_PROHIBIT, NextHop::Prohibit),
            TableChange::AddVrf(0),
        ];
        let held_buffers = HeldBuffers::new(held::HELD_PACKETS, crate::buffer::DATA_ROOM);
        fixed.push(TableChange::SetHeldBuffers(held_buffers.clone()));
        let (punt_tx, punt_rx) = mpsc::sync_channel(PUNT_QUEUE);
        let mut c = Control {
            publisher: Publisher::new(Tables::default(), Tables::default()),
            modules: TablePublishers::default(),
            pending: fixed,
            ports: Vec::new(),
            vrfs: vec![true],
            nh_ids: HashMap::new(),
            nh_keys: vec![None, None, None],
            nh_free: Vec::new(),
            rib: HashMap::new(),
            neighbours: HashMap::new(),
            evictable: Vec::new(),
            neigh_count: Vec::new(),
            held: held::HeldSlab::new(held::HELD_PACKETS),
            held_buffers,
            unreachable_bucket: unreachable::Bucket::default(),
            settings: NeighbourSettings::default(),
            punt_tx,
            punt_rx,
            injects: Vec::new(),
            next_inject: 0,
            stats: ControlStats::default(),
        };
        for decl in crate::modules::registry().tables() {
            c.modules.declare(decl);
        }
        c.commit();
        c
    }

    /// The publisher of a module's table of type `T` (`Registry::table`):
    /// its commits reach the workers' next batch. Panics if no module
    /// registered such a table.
    pub fn table<T: Apply + 'static>(&mut self) -> &mut Publisher<T> {
        self.modules
            .get_mut()
            .unwrap_or_else(|| panic!("no module table {}", std::any::type_name::<T>()))
    }

    /// One worker's readers of the module tables `registry` registered
    /// (in its `TableId` order), publishers made for any not seen yet.
    pub fn table_readers(&mut self, registry: &Registry) -> TableReaders {
        self.modules.readers(registry.tables())
    }

    /// The ICMP error budget the icmp module's table holds now.
    pub fn icmp_limit(&self) -> IcmpLimit {
        self.modules
            .get::<IcmpLimit>()
            .map(|p| **p.load())
            .unwrap_or_default()
    }

    /// The handle workers read the configuration through.
    pub fn reader(&self) -> Reader<Tables> {
        self.publisher.reader()
    }

    /// The live tables (as the workers see them).
    pub fn tables(&self) -> arc_swap::Guard<std::sync::Arc<Tables>> {
        self.publisher.load()
    }

    /// The live tables; the name callers knew them by.
    pub fn config(&self) -> arc_swap::Guard<std::sync::Arc<Tables>> {
        self.tables()
    }

    /// Publish every change made since the last commit as one snapshot.
    pub fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.pending);
        self.publisher.commit(changes);
        self.stats.commits += 1;
    }

    pub fn generation(&self) -> u64 {
        self.publisher.generation()
    }

    pub fn set_icmp_limit(&mut self, l: IcmpLimit) {
        self.table::<IcmpLimit>().commit(vec![l]);
    }

    /// Handle what the workers punted and run timers; publishes the result.
    pub fn poll(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Ok(p) = self.punt_rx.try_recv() {
            n += 1;
            self.stats.punts += 1;
            match p {
                Upcall::Neighbour { port, addr, mac } => self.neigh_learned(port, addr, mac, now),
                Upcall::Hold {
                    port,
                    addr,
                    vrf,
                    l3,
                } => self.neigh_hold(port, addr, vrf, l3, now),
            }
            if n >= 4096 {
                break;
            }
        }
        self.neigh_timers(now);
        self.held_top_up();
        self.commit();
        n
    }

    /// Run `poll` in a loop until `stop` is set (the control thread).
    pub fn run(&mut self, stop: &std::sync::atomic::AtomicBool) {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if self.poll(Instant::now()) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Source address for talking to `dst` from a port (ARP/NS probes).
fn probe_source(p: &PortConfig, dst: IpAddr) -> Option<IpAddr> {
    match dst {
        IpAddr::V4(d) => p.source4_for(d).map(IpAddr::V4),
        IpAddr::V6(d) => Some(IpAddr::V6(p.source6_for(d))),
    }
}
