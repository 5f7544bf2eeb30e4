//! The memory driver: frames injected and collected by tests, or replayed
//! from a fixed set by benchmarks.
//!
//! An Interface object with `driver: memory` is a *memory wire*: its
//! `hostInterface` names a wire in a process-wide table, the way a kernel
//! interface's name does in the kernel's. [`wire`] gives the other end to
//! whoever runs the daemon in-process (conformance tests): frames injected
//! there are received by the port's first queue, and frames any queue sends
//! are collected there.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::PortQueue;
use crate::buffer::{PktId, Pool};

/// Where received frames come from.
enum Source {
    /// Frames pushed by a test through `MemoryHandle::inject`.
    Queue(Arc<Mutex<VecDeque<Vec<u8>>>>),
    /// A fixed set of frames replayed round robin, forever (benchmarks).
    Replay {
        /// Every frame, each padded to whole cache lines, back to back so
        /// rx reads memory sequentially.
        data: Vec<u8>,
        /// (offset into `data`, padded length, frame length) per frame.
        frames: Vec<(usize, usize, usize)>,
        next: usize,
    },
}

/// Where transmitted frames go.
enum Sink {
    /// Kept for `MemoryHandle::collect`; beyond `WIRE_BACKLOG` uncollected
    /// frames, the oldest are dropped.
    Collect(Arc<Mutex<VecDeque<Vec<u8>>>>),
    /// Count only; the counters are published once per burst.
    Count,
}

/// Counters shared with the handle.
#[derive(Default)]
pub struct MemoryCounters {
    pub rx_packets: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
}

pub struct MemoryQueue {
    source: Source,
    sink: Sink,
    counters: Arc<MemoryCounters>,
}

/// The test's side of a memory port.
#[derive(Clone)]
pub struct MemoryHandle {
    rx: Arc<Mutex<VecDeque<Vec<u8>>>>,
    tx: Arc<Mutex<VecDeque<Vec<u8>>>>,
    pub counters: Arc<MemoryCounters>,
}

impl MemoryHandle {
    /// Queue a frame for the dataplane to receive.
    pub fn inject(&self, frame: Vec<u8>) {
        self.rx.lock().unwrap().push_back(frame);
    }

    /// Take every frame the dataplane has sent.
    pub fn collect(&self) -> Vec<Vec<u8>> {
        self.tx.lock().unwrap().drain(..).collect()
    }

    pub fn tx_packets(&self) -> u64 {
        self.counters.tx_packets.load(Ordering::Relaxed)
    }
}

/// Most sent frames a wire keeps for a reader that does not collect them.
pub const WIRE_BACKLOG: usize = 65536;

fn wires() -> &'static Mutex<HashMap<String, MemoryHandle>> {
    static WIRES: std::sync::OnceLock<Mutex<HashMap<String, MemoryHandle>>> =
        std::sync::OnceLock::new();
    WIRES.get_or_init(Default::default)
}

/// The far end of the memory wire `name`, made on first use (by the port
/// or by the test, whichever comes first).
pub fn wire(name: &str) -> MemoryHandle {
    wires()
        .lock()
        .unwrap()
        .entry(name.to_string())
        .or_insert_with(|| MemoryHandle {
            rx: Arc::default(),
            tx: Arc::default(),
            counters: Arc::default(),
        })
        .clone()
}

impl MemoryQueue {
    /// A queue fed by `MemoryHandle::inject` and drained by `collect`.
    pub fn pair() -> (MemoryQueue, MemoryHandle) {
        let h = MemoryHandle {
            rx: Arc::default(),
            tx: Arc::default(),
            counters: Arc::default(),
        };
        (Self::on(&h, true), h)
    }

    /// Queue `queue` of the memory wire `name`: only queue 0 receives (a
    /// frame arrives once), every queue sends onto the wire.
    pub fn attach(name: &str, queue: u32) -> MemoryQueue {
        Self::on(&wire(name), queue == 0)
    }

    fn on(h: &MemoryHandle, receives: bool) -> MemoryQueue {
        MemoryQueue {
            source: if receives {
                Source::Queue(h.rx.clone())
            } else {
                Source::Replay {
                    data: Vec::new(),
                    frames: Vec::new(),
                    next: 0,
                }
            },
            sink: Sink::Collect(h.tx.clone()),
            counters: h.counters.clone(),
        }
    }

    /// A queue that receives `frames` over and over and only counts what it
    /// sends.
    pub fn replay(frames: Vec<Vec<u8>>) -> (MemoryQueue, Arc<MemoryCounters>) {
        let counters = Arc::new(MemoryCounters::default());
        (
            MemoryQueue {
                source: {
                    let mut data = Vec::new();
                    let mut index = Vec::new();
                    for f in frames {
                        let len = f.len().min(crate::buffer::DATA_ROOM);
                        let padded = len.next_multiple_of(64);
                        let at = data.len();
                        data.extend_from_slice(&f[..len]);
                        data.resize(at + padded, 0);
                        index.push((at, padded, len));
                    }
                    Source::Replay {
                        data,
                        frames: index,
                        next: 0,
                    }
                },
                sink: Sink::Count,
                counters: counters.clone(),
            },
            counters,
        )
    }

    /// A queue that receives nothing and only counts what it sends.
    pub fn sink() -> (MemoryQueue, Arc<MemoryCounters>) {
        Self::replay(Vec::new())
    }
}

impl PortQueue for MemoryQueue {
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [PktId]) -> usize {
        let mut n = 0;
        match &mut self.source {
            Source::Queue(q) => {
                let mut q = q.lock().unwrap();
                while n < out.len() {
                    let Some(frame) = q.front() else { break };
                    let Some(id) = pool.alloc() else { break };
                    pool.get_mut(id).fill(frame);
                    q.pop_front();
                    out[n] = id;
                    n += 1;
                }
            }
            Source::Replay { data, frames, next } => {
                if frames.is_empty() {
                    return 0;
                }
                while n < out.len() {
                    let Some(id) = pool.alloc_raw() else { break };
                    let (at, padded, len) = frames[*next];
                    pool.get_mut(id).fill_blocks(&data[at..at + padded], len);
                    *next += 1;
                    if *next == frames.len() {
                        *next = 0;
                    }
                    out[n] = id;
                    n += 1;
                }
            }
        }
        self.counters
            .rx_packets
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    fn tx_burst(&mut self, pool: &mut Pool, pkts: &[PktId]) -> usize {
        let mut bytes = 0u64;
        match &self.sink {
            Sink::Collect(c) => {
                let mut c = c.lock().unwrap();
                for &id in pkts {
                    let d = pool.get(id).data();
                    bytes += d.len() as u64;
                    if c.len() == WIRE_BACKLOG {
                        c.pop_front();
                    }
                    c.push_back(d.to_vec());
                }
            }
            Sink::Count => {
                for &id in pkts {
                    bytes += pool.get(id).len() as u64;
                }
            }
        }
        pool.free_all(pkts);
        self.counters
            .tx_packets
            .fetch_add(pkts.len() as u64, Ordering::Relaxed);
        self.counters.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
        pkts.len()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
