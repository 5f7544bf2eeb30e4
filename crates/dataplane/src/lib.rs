//! weir's dataplane: packet buffers, the node graph, the forwarding
//! tables, drivers, workers and the feature modules that make the nodes.
//!
//! Layers, each using only those above it in this list:
//!
//! - `buffer`, `prefetch`: packet buffers (and `weir-packet`, `weir-fib`);
//! - `graph/`: nodes, edges, drop reasons, traces, the running order;
//!   generic over the context nodes see, it names nothing below;
//! - runtime: `snapshot` (the one RCU publisher), `tables` (what workers
//!   read), `worker` (the poll loop and the nodes' context), `driver/`
//!   (how frames get in and out), `registry` (what modules register);
//! - `modules/`: one folder per feature (`infra`, `l3`, `ip4`, `ip6`,
//!   `arp`, `nd`, `icmp`, `punt`), each with its nodes and `register()`;
//!   a module never uses a sibling, only `l3` and the layers above;
//! - `control/`: the only writer of the tables (ports, RIB, next hops,
//!   neighbours, worker channels), and `Builder`/`Dataplane` here.
//!
//! A packet's path is read by following the node names (the running
//! order is derived from these edges):
//!
//! ```text
//! eth-input -> arp-input -> port-tx | punt-kernel
//!           -> ip4-input -> ip4-lookup -> ip4-output -> port-tx
//!                                      |            \-> ip4-fragment -> ip4-output
//!                                      \-> ip4-local -> icmp4-local (echo) -> ip4-lookup
//!                                                    \-> punt-kernel (unclaimed) -> port-tx
//!              ip4-input (bad option) | any ip4 error -> icmp4-error -> ip4-lookup
//!           -> ip6-input -> ip6-lookup -> ip6-output -> port-tx
//!                       \-> ip6-local -> icmp6-local (echo) -> ip6-lookup | port-tx
//!                                     |               \-> nd-input (NS, NA) -> port-tx | punt-kernel
//!                                     \-> punt-kernel (unclaimed)
//!              any ip6 error -> icmp6-error -> ip6-lookup
//!           -> port-tx (frames from a kernel mirror)
//! ```

pub mod buffer;
pub mod control;
pub mod driver;
pub mod frames;
pub mod graph;
pub mod modules;
pub mod prefetch;
pub mod registry;
pub mod snapshot;
pub mod tables;
pub mod testbed;
pub mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use buffer::{PktId, Pool};
pub use control::nat44::{Nat44, NatError};
pub use control::{Control, ControlError, RouteTarget};
pub use driver::memory::{MemoryHandle, MemoryQueue};
pub use driver::PortQueue;
pub use graph::{Graph, NodeStats, Reason};
pub use registry::Registry;
pub use tables::{NextHop, PortId, Tables, VrfId};
pub use worker::{FwdGraph, Worker, WorkerStats};

/// Buffers per worker: enough for a batch in every port's rx and tx with room
/// for packets in flight in the graph.
pub const POOL_SIZE: usize = 8192;

/// A dataplane: the control side plus its workers, each with one queue on
/// every port. Tests drive it step by step with `poll`; daemons run the
/// workers on their own threads.
pub struct Dataplane {
    pub control: Control,
    pub workers: Vec<Worker>,
}

/// Collects ports (one queue per worker each) and builds a `Dataplane`.
pub struct Builder {
    control: Control,
    queues: Vec<Vec<worker::Queue>>,
}

impl Builder {
    pub fn new(workers: usize) -> Builder {
        assert!(workers > 0, "a dataplane needs a worker");
        Builder {
            control: Control::new(),
            queues: (0..workers).map(|_| Vec::new()).collect(),
        }
    }

    pub fn control(&mut self) -> &mut Control {
        &mut self.control
    }

    /// Add a port with one queue per worker.
    pub fn port(
        &mut self,
        id: PortId,
        name: &str,
        mac: weir_packet::MacAddr,
        mtu: u16,
        queues: Vec<Box<dyn PortQueue>>,
    ) -> Result<(), ControlError> {
        assert_eq!(queues.len(), self.queues.len(), "one queue per worker");
        self.control.add_port(id, name, mac, mtu, 0)?;
        for (w, q) in queues.into_iter().enumerate() {
            self.queues[w].push(worker::Queue {
                port: id,
                driver: q,
            });
        }
        Ok(())
    }

    /// Add the kernel mirror (TAP) of port `of`, with one queue per worker.
    pub fn mirror(
        &mut self,
        id: PortId,
        of: PortId,
        name: &str,
        queues: Vec<Box<dyn PortQueue>>,
    ) -> Result<(), ControlError> {
        assert_eq!(queues.len(), self.queues.len(), "one queue per worker");
        self.control.add_mirror(of, id, name)?;
        for (w, q) in queues.into_iter().enumerate() {
            self.queues[w].push(worker::Queue {
                port: id,
                driver: q,
            });
        }
        Ok(())
    }

    /// A kernel mirror backed by memory queues, for tests.
    pub fn memory_mirror(
        &mut self,
        id: PortId,
        of: PortId,
        name: &str,
    ) -> Result<Vec<MemoryHandle>, ControlError> {
        let (qs, hs) = self.memory_queues();
        self.mirror(id, of, name, qs)?;
        Ok(hs)
    }

    fn memory_queues(&self) -> (Vec<Box<dyn PortQueue>>, Vec<MemoryHandle>) {
        let mut qs: Vec<Box<dyn PortQueue>> = Vec::new();
        let mut hs = Vec::new();
        for _ in 0..self.queues.len() {
            let (q, h) = MemoryQueue::pair();
            qs.push(Box::new(q));
            hs.push(h);
        }
        (qs, hs)
    }

    /// Add a port backed by memory queues; returns one handle per worker.
    pub fn memory_port(
        &mut self,
        id: PortId,
        name: &str,
        mac: weir_packet::MacAddr,
        mtu: u16,
    ) -> Result<Vec<MemoryHandle>, ControlError> {
        let (qs, hs) = self.memory_queues();
        self.port(id, name, mac, mtu, qs)?;
        Ok(hs)
    }

    pub fn build(self) -> Dataplane {
        self.build_with(&modules::registry())
    }

    /// Build with the nodes and tables of `registry` (every module's, plus
    /// whatever the caller registered).
    pub fn build_with(mut self, registry: &Registry) -> Dataplane {
        self.control.commit();
        let mut workers = Vec::new();
        for (i, qs) in self.queues.into_iter().enumerate() {
            let (upcall, inject) = self.control.worker_channels();
            let modules = self.control.table_readers(registry);
            workers.push(
                Worker::new(
                    i,
                    registry.graph(),
                    Pool::new(POOL_SIZE),
                    self.control.reader(),
                    qs,
                    Some(upcall),
                    Some(inject),
                )
                .with_tables(modules),
            );
        }
        Dataplane {
            control: self.control,
            workers,
        }
    }
}

impl Dataplane {
    /// One step: every worker polls once, then the control side handles what
    /// they punted (and publishes), then workers send what control injected.
    pub fn poll(&mut self) -> usize {
        let mut n = 0;
        for w in &mut self.workers {
            n += w.poll();
        }
        self.control.poll(std::time::Instant::now());
        for w in &mut self.workers {
            n += w.poll();
        }
        n
    }

    /// Counters of all workers, summed.
    pub fn stats(&self) -> WorkerStats {
        let all: Vec<_> = self.workers.iter().map(|w| w.stats()).collect();
        WorkerStats::merge(&all)
    }

    /// Run every worker on its own thread (optionally pinned to `cores`)
    /// until `stop` is set; the control side stays with the caller.
    pub fn spawn_workers(
        workers: Vec<Worker>,
        stop: Arc<AtomicBool>,
        cores: &[usize],
    ) -> Vec<std::thread::JoinHandle<Worker>> {
        workers
            .into_iter()
            .enumerate()
            .map(|(i, mut w)| {
                let stop = stop.clone();
                let core = cores.get(i).copied();
                std::thread::Builder::new()
                    .name(format!("weir-worker-{i}"))
                    .spawn(move || {
                        if let Some(c) = core {
                            pin_to_core(c);
                        }
                        w.run(&stop);
                        w
                    })
                    .expect("spawn worker thread")
            })
            .collect()
    }
}

/// Pin the calling thread to one CPU. Best effort: returns false if the
/// kernel refuses (e.g. the CPU is not in our cpuset).
pub fn pin_to_core(core: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
