//! A worker: one thread, one core. It polls its rx queues, runs the graph
//! over each batch and transmits, reading the tables through one
//! snapshot per batch. It talks to the control side only through bounded
//! channels, and only for slow-path events (neighbours, held packets).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_packet::MacAddr;

use crate::buffer::{PktId, Pool};
use crate::driver::PortQueue;
use crate::graph::{self, Graph, NodeStats, Reason, BATCH, FRAME_CAP};
use crate::snapshot::{Reader, TableId, TableReaders};
use crate::tables::{PortId, Tables, VrfId};

/// Where received packets enter the graph: the runtime's contract with
/// the module that registers this node.
pub const INPUT_NODE: &str = "eth-input";

/// What a node sees besides its packets, for one batch.
pub struct Ctx<'a> {
    pub pool: &'a mut Pool,
    pub tables: &'a Tables,
    /// Nanoseconds on a monotonic clock, read once per batch.
    pub now_ns: u64,
    pub local: &'a mut WorkerLocal,
    /// The modules' own tables, pinned for this batch like `tables`.
    pub modules: &'a TableReaders,
}

impl Ctx<'_> {
    /// This batch's version of a module's table (`Registry::table`): read
    /// it once per batch, not per packet.
    #[inline(always)]
    pub fn table<T: 'static>(&self, id: TableId<T>) -> &T {
        self.modules.get(id)
    }
}

/// The forwarding graph's context family: its nodes see a `Ctx`.
pub struct Fwd;

impl graph::Context for Fwd {
    type Of<'a> = Ctx<'a>;
}

impl graph::HasPool for Ctx<'_> {
    #[inline(always)]
    fn pool(&mut self) -> &mut Pool {
        self.pool
    }
}

/// The forwarding graph of one worker.
pub type FwdGraph = Graph<Fwd>;

/// Slow-path events a worker hands up to the control side (not to be
/// confused with `punt-kernel`, which hands packets to the kernel mirror).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upcall {
    /// A neighbour announced its link-layer address (ARP, NS or NA).
    Neighbour {
        port: PortId,
        addr: IpAddr,
        mac: MacAddr,
    },
    /// A packet waits for `addr` on `port` to resolve. `l3` is the packet
    /// from its IP header on, already routed (TTL decremented).
    Hold {
        port: PortId,
        addr: IpAddr,
        vrf: VrfId,
        l3: Vec<u8>,
    },
}

/// What the control side asks a worker to do, between batches.
pub enum WorkerCmd {
    /// Send a complete frame on a port (ARP requests, released packets).
    Send { port: PortId, frame: Vec<u8> },
    /// Start polling a new queue (a port was added).
    AddQueue(Queue),
    /// Stop polling a port's queue and close it.
    RemoveQueue(PortId),
}

/// Packets waiting for transmission on one port.
pub struct TxFrame {
    pub ids: Vec<PktId>,
}

/// Worker-local state the nodes use besides packets and the snapshot.
pub struct WorkerLocal {
    pub worker: usize,
    /// Per-port transmit frames, flushed after each graph run.
    pub tx: Vec<TxFrame>,
    pub upcall: Option<SyncSender<Upcall>>,
    /// This worker's ICMP error budget (the rule is `l3::icmp_allow`).
    pub icmp_budget: TokenBucket,
}

/// A token bucket on the batch clock, for per-worker rate limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenBucket {
    tokens: f64,
    refill_ns: u64,
}

impl TokenBucket {
    /// Take one token at `now_ns`, refilling at `per_second` up to `burst`
    /// (full on first use).
    #[inline]
    pub fn take(&mut self, per_second: u32, burst: u32, now_ns: u64) -> bool {
        if self.refill_ns == 0 {
            self.tokens = burst as f64;
        } else {
            let dt = now_ns.saturating_sub(self.refill_ns) as f64 / 1e9;
            self.tokens = (self.tokens + dt * per_second as f64).min(burst as f64);
        }
        self.refill_ns = now_ns;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl WorkerLocal {
    pub fn new(worker: usize, upcall: Option<SyncSender<Upcall>>) -> WorkerLocal {
        WorkerLocal {
            worker,
            tx: Vec::new(),
            upcall,
            icmp_budget: TokenBucket::default(),
        }
    }

    /// Queue `pkt` for transmission on `port`. False if the port has no
    /// queue on this worker or its frame is full.
    #[inline(always)]
    pub fn tx(&mut self, port: PortId, pkt: PktId) -> bool {
        match self.tx.get_mut(port as usize) {
            Some(f) if f.ids.len() < FRAME_CAP => {
                f.ids.push(pkt);
                true
            }
            _ => false,
        }
    }

    /// Hand an event to the control side; false if there is none or it is
    /// overwhelmed (the bounded channel is full).
    pub fn upcall(&mut self, p: Upcall) -> bool {
        match &self.upcall {
            Some(tx) => match tx.try_send(p) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
            None => false,
        }
    }
}

/// Counters a worker publishes for readers on other threads.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    pub nodes: Vec<(&'static str, NodeStats)>,
    /// Drop counters, named by `reason_names`.
    pub reasons: Vec<u64>,
    /// `no-buffer`, ... (the graph's own), then `node/reason`.
    pub reason_names: Arc<[String]>,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub polls: u64,
    pub idle_polls: u64,
}

impl WorkerStats {
    /// Sum counters of several workers.
    pub fn merge(all: &[WorkerStats]) -> WorkerStats {
        let mut out = WorkerStats::default();
        for w in all {
            if out.nodes.is_empty() {
                out.nodes = w.nodes.clone();
                out.reasons = w.reasons.clone();
                out.reason_names = w.reason_names.clone();
            } else {
                for (o, n) in out.nodes.iter_mut().zip(&w.nodes) {
                    o.1.calls += n.1.calls;
                    o.1.packets += n.1.packets;
                    o.1.cycles += n.1.cycles;
                }
                for (o, r) in out.reasons.iter_mut().zip(&w.reasons) {
                    *o += r;
                }
            }
            out.rx_packets += w.rx_packets;
            out.tx_packets += w.tx_packets;
            out.polls += w.polls;
            out.idle_polls += w.idle_polls;
        }
        out
    }

    /// Every drop counter as (`node/reason`, count); the graph's own
    /// reasons have no node (`no-buffer`, `tx-queue-full`, ...).
    pub fn drops(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.reason_names
            .iter()
            .map(String::as_str)
            .zip(self.reasons.iter().copied())
    }

    /// One drop counter by name (`ip4-lookup/no-route`), 0 if unknown.
    pub fn drop_count(&self, name: &str) -> u64 {
        self.drops().find(|(n, _)| *n == name).map_or(0, |(_, c)| c)
    }

    pub fn node(&self, name: &str) -> NodeStats {
        self.nodes
            .iter()
            .find(|n| n.0 == name)
            .map(|n| n.1)
            .unwrap_or_default()
    }
}

pub struct Queue {
    pub port: PortId,
    pub driver: Box<dyn PortQueue>,
}

pub struct Worker {
    pub id: usize,
    pub pool: Pool,
    pub graph: FwdGraph,
    queues: Vec<Queue>,
    /// For each port id, the index of its queue on this worker.
    tx_index: Vec<Option<usize>>,
    reader: Reader<Tables>,
    modules: TableReaders,
    pub local: WorkerLocal,
    inject: Option<Receiver<WorkerCmd>>,
    input_node: usize,
    rx_ids: [PktId; BATCH],
    rx_packets: u64,
    tx_packets: u64,
    polls: u64,
    idle_polls: u64,
    epoch: Instant,
    shared_stats: Arc<Mutex<WorkerStats>>,
    /// Frames too long for a buffer that closed queues dropped.
    closed_oversize: u64,
}

impl Worker {
    pub fn new(
        id: usize,
        graph: FwdGraph,
        pool: Pool,
        reader: Reader<Tables>,
        queues: Vec<Queue>,
        upcall: Option<SyncSender<Upcall>>,
        inject: Option<Receiver<WorkerCmd>>,
    ) -> Worker {
        let input_node = graph
            .node_index(INPUT_NODE)
            .expect("graph has an input node");
        let mut w = Worker {
            id,
            pool,
            graph,
            queues: Vec::new(),
            tx_index: Vec::new(),
            reader,
            modules: TableReaders::default(),
            local: WorkerLocal::new(id, upcall),
            inject,
            input_node,
            rx_ids: [0; BATCH],
            rx_packets: 0,
            tx_packets: 0,
            polls: 0,
            idle_polls: 0,
            epoch: Instant::now(),
            shared_stats: Arc::new(Mutex::new(WorkerStats::default())),
            closed_oversize: 0,
        };
        for q in queues {
            w.add_queue(q);
        }
        w
    }

    /// Read the modules' tables through `modules` (from
    /// `Control::table_readers` for the registry the graph was built from).
    pub fn with_tables(mut self, modules: TableReaders) -> Worker {
        self.modules = modules;
        self
    }

    /// Poll a new queue (replacing any queue of the same port).
    pub fn add_queue(&mut self, q: Queue) {
        self.remove_queue(q.port);
        let p = q.port as usize;
        if self.tx_index.len() <= p {
            self.tx_index.resize(p + 1, None);
        }
        while self.local.tx.len() <= p {
            self.local.tx.push(TxFrame {
                ids: Vec::with_capacity(FRAME_CAP),
            });
        }
        self.queues.push(q);
        self.tx_index[p] = Some(self.queues.len() - 1);
    }

    /// Stop polling a port and close its queue.
    pub fn remove_queue(&mut self, port: PortId) {
        let Some(i) = self.queues.iter().position(|q| q.port == port) else {
            return;
        };
        let q = self.queues.remove(i);
        self.closed_oversize += q.driver.stats().rx_oversize;
        drop(q);
        self.tx_index.iter_mut().for_each(|x| *x = None);
        for (i, q) in self.queues.iter().enumerate() {
            self.tx_index[q.port as usize] = Some(i);
        }
    }

    /// Ports this worker polls.
    pub fn ports(&self) -> Vec<PortId> {
        self.queues.iter().map(|q| q.port).collect()
    }

    /// A handle other threads read this worker's counters through.
    pub fn stats_handle(&self) -> Arc<Mutex<WorkerStats>> {
        self.shared_stats.clone()
    }

    pub fn stats(&self) -> WorkerStats {
        let mut reasons = self.graph.reasons().to_vec();
        // Drivers drop frames too long for a buffer before the graph sees
        // them; their counts join the graph's drop reasons.
        let oversize: u64 = self.closed_oversize
            + self
                .queues
                .iter()
                .map(|q| q.driver.stats().rx_oversize)
                .sum::<u64>();
        if let Some(r) = Reason::RX_TOO_LONG
            .graph_index()
            .and_then(|i| reasons.get_mut(i))
        {
            *r += oversize;
        }
        WorkerStats {
            nodes: self.graph.stats(),
            reasons,
            reason_names: self.graph.reason_names().clone(),
            rx_packets: self.rx_packets,
            tx_packets: self.tx_packets,
            polls: self.polls,
            idle_polls: self.idle_polls,
        }
    }

    fn publish_stats(&self) {
        if let Ok(mut s) = self.shared_stats.try_lock() {
            *s = self.stats();
        }
    }

    /// One round: injected frames, then one batch from each rx queue through
    /// the graph, then transmit. Returns the number of packets received.
    pub fn poll(&mut self) -> usize {
        self.polls += 1;
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        self.send_injected();
        let mut total = 0;
        for qi in 0..self.queues.len() {
            let port = self.queues[qi].port;
            let n = self.queues[qi]
                .driver
                .rx_burst(&mut self.pool, &mut self.rx_ids);
            if n == 0 {
                continue;
            }
            total += n;
            for &id in &self.rx_ids[..n] {
                self.pool.get_mut(id).meta.rx_port = port;
            }
            self.graph
                .enqueue_batch(self.input_node, &self.rx_ids[..n], &mut self.pool);
            // One snapshot per batch.
            let snap = self.reader.load();
            self.modules.pin();
            let mut cx = Ctx {
                pool: &mut self.pool,
                tables: &snap,
                now_ns,
                local: &mut self.local,
                modules: &self.modules,
            };
            self.graph.run(&mut cx);
            drop(snap);
            self.modules.unpin();
            self.flush_tx();
        }
        self.rx_packets += total as u64;
        if total == 0 {
            self.idle_polls += 1;
        }
        total
    }

    fn send_injected(&mut self) {
        for _ in 0..BATCH {
            let Some(rx) = &self.inject else { return };
            let Ok(cmd) = rx.try_recv() else { break };
            match cmd {
                WorkerCmd::Send { port, frame } => {
                    let Some(id) = self.pool.alloc() else {
                        self.graph.count(Reason::NO_BUFFER, 1);
                        break;
                    };
                    self.pool.get_mut(id).fill(&frame);
                    if !self.local.tx(port, id) {
                        self.graph.count(Reason::TX_FULL, 1);
                        self.pool.free(id);
                    }
                }
                WorkerCmd::AddQueue(q) => self.add_queue(q),
                WorkerCmd::RemoveQueue(p) => self.remove_queue(p),
            }
        }
        self.flush_tx();
    }

    fn flush_tx(&mut self) {
        for port in 0..self.local.tx.len() {
            if self.local.tx[port].ids.is_empty() {
                continue;
            }
            let ids = &self.local.tx[port].ids;
            match self.tx_index[port] {
                Some(qi) => {
                    let sent = self.queues[qi].driver.tx_burst(&mut self.pool, ids);
                    self.tx_packets += sent as u64;
                }
                None => {
                    self.graph.count(Reason::TX_FULL, ids.len() as u64);
                    self.pool.free_all(ids);
                }
            }
            self.local.tx[port].ids.clear();
        }
    }

    /// Poll until `stop` is set. Busy while traffic flows; after a run of
    /// empty polls, sleeps a little between polls so an idle worker does not
    /// burn its core.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut empty = 0u32;
        let mut last_pub = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if self.poll() > 0 {
                empty = 0;
            } else {
                empty = empty.saturating_add(1);
                if empty > 1024 {
                    std::thread::sleep(Duration::from_micros(if empty > 8192 { 1000 } else { 50 }));
                }
            }
            if last_pub.elapsed() > Duration::from_millis(100) {
                self.publish_stats();
                last_pub = Instant::now();
            }
        }
        self.publish_stats();
    }
}
