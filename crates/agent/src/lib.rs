//! The agent: turns `weir/v1` objects into dataplane state and runs the
//! workers. Each kind it applies is a folder (`vpc/`, `interface/`,
//! `subnet/`, `route/`, `peering/`, `nat/`) with one [`kind::Apply`]: create,
//! update and delete, each succeeding with the object's metadata (kept by
//! the reconciler's engine) or failing with what it waits for
//! (`AgentError::Missing`) or why it cannot be done. [`kind::KINDS`]
//! registers them, one line each; the reconciler calls them through
//! [`kind::Applier`] descriptors.
//!
//! The agent itself keeps only the indexes other kinds look things up in:
//! VPC name to VRF, and Interface name to port.

pub mod host;
pub mod interface;
pub mod kind;
pub mod nat;
pub mod peering;
pub mod route;
pub mod subnet;
pub mod vpc;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use weir_dataplane::{Builder, Control, ControlError, Dataplane, Worker, WorkerStats};
use weir_dataplane::{PortId, VrfId};
use weir_model::ObjectRef;

pub use interface::{Port, PortState};
pub use kind::{Desired, SharedAgent};
pub use subnet::SubnetState;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The object refers to objects that do not exist yet.
    #[error("waiting for {}", .0.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "))]
    Missing(Vec<ObjectRef>),
    /// Cannot be applied until something else changes (e.g. a gateway not
    /// yet on any connected subnet).
    #[error("{0}")]
    Waiting(String),
    #[error("{0}")]
    Control(#[from] ControlError),
    #[error("{0}")]
    Driver(#[from] weir_dataplane::driver::DriverError),
    #[error("host: {0}")]
    Host(String),
    #[error("{0}")]
    Invalid(String),
}

impl AgentError {
    /// Worth retrying later without any change (a transient host error).
    pub fn is_retriable(&self) -> bool {
        matches!(self, AgentError::Host(_) | AgentError::Driver(_))
    }
}

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub workers: usize,
    /// CPUs to pin workers to, in order (none: not pinned).
    pub cores: Vec<usize>,
    /// Create a kernel mirror (TAP) for every interface.
    pub mirror: bool,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            workers: 1,
            cores: Vec::new(),
            mirror: true,
        }
    }
}

/// The VPC every object defaults to; it always exists (VRF 0).
pub const DEFAULT_VPC: &str = "default";

pub struct Agent {
    pub control: Control,
    opts: AgentOptions,
    threads: Vec<JoinHandle<Worker>>,
    stats: Vec<Arc<Mutex<WorkerStats>>>,
    stop: Arc<AtomicBool>,
    /// VPC name to VRF (the default VPC included).
    vpcs: BTreeMap<String, VrfId>,
    /// Interface name to port.
    interfaces: BTreeMap<String, Port>,
    started: Instant,
}

impl Agent {
    /// Start the workers (with no ports yet) on their threads.
    pub fn start(opts: AgentOptions) -> Agent {
        let Dataplane { control, workers } = Builder::new(opts.workers.max(1)).build();
        let stats = workers.iter().map(|w| w.stats_handle()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Dataplane::spawn_workers(workers, stop.clone(), &opts.cores);
        let mut vpcs = BTreeMap::new();
        vpcs.insert(DEFAULT_VPC.to_string(), 0);
        Agent {
            control,
            opts,
            threads,
            stats,
            stop,
            vpcs,
            interfaces: BTreeMap::new(),
            started: Instant::now(),
        }
    }

    pub fn options(&self) -> &AgentOptions {
        &self.opts
    }

    /// Counters of every worker, summed (as of their last publication,
    /// at most 100 ms old).
    pub fn stats(&self) -> WorkerStats {
        WorkerStats::merge(&self.worker_stats())
    }

    /// Each worker's counters, in worker order (as `stats`, not summed).
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.stats
            .iter()
            .map(|s| s.lock().unwrap().clone())
            .collect()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Handle punted events and timers; call every millisecond or so.
    pub fn poll(&mut self) -> usize {
        self.control.poll(Instant::now())
    }

    // ---- VPCs ----

    pub fn vrf_of(&self, vpc: &str) -> Result<VrfId, AgentError> {
        self.vpcs
            .get(vpc)
            .copied()
            .ok_or_else(|| AgentError::Missing(vec![ObjectRef::new("Vpc", vpc)]))
    }

    pub fn vpcs(&self) -> &BTreeMap<String, VrfId> {
        &self.vpcs
    }

    pub fn interfaces(&self) -> &BTreeMap<String, Port> {
        &self.interfaces
    }

    pub fn port_of(&self, interface: &str) -> Result<PortId, AgentError> {
        self.interfaces
            .get(interface)
            .map(|p| p.port)
            .ok_or_else(|| AgentError::Missing(vec![ObjectRef::new("Interface", interface)]))
    }

    /// Stop the workers and close every port: AF_XDP programs detached,
    /// TAPs deleted. Returns the final counters.
    pub fn shutdown(&mut self) -> WorkerStats {
        let names: Vec<String> = self.interfaces.keys().cloned().collect();
        for n in names {
            let _ = self.close_port(&n);
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut finals = Vec::new();
        for t in self.threads.drain(..) {
            if let Ok(mut w) = t.join() {
                // Drain queued commands so the queues are closed here.
                w.poll();
                finals.push(w.stats());
            }
        }
        WorkerStats::merge(&finals)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
