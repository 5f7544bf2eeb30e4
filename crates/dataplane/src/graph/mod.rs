//! The node graph: small nodes, each one job, passing batches of packet ids
//! along named edges.
//!
//! A node declares the names of the nodes it can send to; the graph resolves
//! them when it is built. `Graph::run` processes every node that has packets
//! waiting, in registration order, and repeats until all frames are empty
//! (edges may point backwards, e.g. an echo reply going back to the lookup).

pub mod reason;

use crate::buffer::{PktId, Pool};
use crate::config::Config;
use crate::prefetch;
use crate::worker::WorkerLocal;
pub use reason::Reason;

/// Most packets a driver hands to the graph at once.
pub const BATCH: usize = 256;
/// Capacity of a node's input frame: room for a full batch twice over, since
/// a few nodes make more packets than they consume (fragmentation).
pub const FRAME_CAP: usize = 2 * BATCH;
/// Passes over the nodes per run before leftover packets are dropped; only a
/// misbehaving loop in the graph could reach it.
const MAX_PASSES: usize = 8;

/// What a node sees besides its packets.
pub struct Ctx<'a> {
    pub pool: &'a mut Pool,
    pub config: &'a Config,
    /// Nanoseconds on a monotonic clock, read once per batch.
    pub now_ns: u64,
    pub local: &'a mut WorkerLocal,
}

pub trait Node: Send {
    /// Name used in edges, counters and traces, e.g. "ip4-input".
    fn name(&self) -> &'static str;
    /// Nodes this one can send to; edge `i` of `Dispatch::send` is `next_nodes()[i]`.
    fn next_nodes(&self) -> &'static [&'static str];
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>);
}

/// A node's input: packet ids waiting to be processed.
pub struct Frame {
    ids: Box<[PktId; FRAME_CAP]>,
    len: usize,
}

impl Frame {
    fn new() -> Frame {
        Frame {
            ids: Box::new([0; FRAME_CAP]),
            len: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, id: PktId) -> bool {
        if self.len == FRAME_CAP {
            return false;
        }
        self.ids[self.len] = id;
        self.len += 1;
        true
    }

    fn as_slice(&self) -> &[PktId] {
        &self.ids[..self.len]
    }
}

/// Per-node counters, summed over workers when read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub calls: u64,
    pub packets: u64,
    pub cycles: u64,
}

/// One step of a traced packet: which node saw it and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    pub pkt: PktId,
    pub node: &'static str,
    pub next: &'static str,
}

/// What a node decided for input packet `i`: an edge, a drop (with its
/// reason), or "consumed" when the node already handed the packet on itself.
const NEXT_DROP: u16 = 0x8000;
const NEXT_CONSUMED: u16 = 0xffff;
const NEXT_UNSET: u16 = 0xfffe;

/// Where a node puts the packets it has processed. For its input packets a
/// node records a decision per index (`next`, `drop_at`, `consumed`); the
/// graph then moves the whole batch at once, with a fast path when every
/// packet takes the same edge (VPP's enqueue-to-next). Packets a node makes
/// itself go out at once with `send`.
pub struct Dispatch<'a> {
    edges: &'a [usize],
    frames: &'a mut [Frame],
    reasons: &'a mut [u64; Reason::COUNT],
    totals: &'a mut Totals,
    pool_free: &'a mut Vec<PktId>,
    nexts: &'a mut [u16; FRAME_CAP],
    trace: Option<(&'static str, &'a [&'static str], &'a mut Vec<TraceStep>)>,
}

impl Dispatch<'_> {
    /// Input packet `i` goes along edge `edge` (an index into `next_nodes`).
    #[inline(always)]
    pub fn next(&mut self, i: usize, edge: usize) {
        self.nexts[i] = edge as u16;
    }

    /// Input packet `i` is dropped, counting `reason`.
    #[inline(always)]
    pub fn drop_at(&mut self, i: usize, reason: Reason) {
        self.nexts[i] = NEXT_DROP | reason as u16;
    }

    /// Input packet `i` was handed on by the node itself (queued for
    /// transmission, or sent/dropped with `send`/`drop`).
    #[inline(always)]
    pub fn consumed(&mut self, i: usize) {
        self.nexts[i] = NEXT_CONSUMED;
    }

    /// Send `pkt` along edge `edge` now (for packets the node created, or
    /// followed by `consumed` for an input packet).
    #[inline(always)]
    pub fn send(&mut self, edge: usize, pkt: PktId) {
        let node = self.edges[edge];
        if let Some((name, names, steps)) = &mut self.trace {
            steps.push(TraceStep {
                pkt,
                node: name,
                next: names[edge],
            });
        }
        if !self.frames[node].push(pkt) {
            self.reasons[Reason::FrameOverflow as usize] += 1;
            self.totals.dropped += 1;
            self.pool_free.push(pkt);
        }
    }

    /// Send a packet the node made itself (e.g. a fragment) along `edge`.
    #[inline(always)]
    pub fn send_new(&mut self, edge: usize, pkt: PktId) {
        self.totals.made += 1;
        self.send(edge, pkt);
    }

    /// Drop `pkt` now, counting `reason`.
    #[inline(always)]
    pub fn drop(&mut self, pkt: PktId, reason: Reason) {
        if let Some((name, _, steps)) = &mut self.trace {
            steps.push(TraceStep {
                pkt,
                node: name,
                next: reason.name(),
            });
        }
        self.reasons[reason as usize] += 1;
        self.totals.dropped += 1;
        self.pool_free.push(pkt);
    }

    /// Count `reason` without dropping anything (the packet goes on, e.g.
    /// turned into an ICMP error).
    #[inline(always)]
    pub fn count(&mut self, reason: Reason) {
        self.reasons[reason as usize] += 1;
    }

    /// Move the input packets where the node decided.
    fn flush(&mut self, input: &[PktId]) {
        let n = input.len();
        let first = self.nexts[0];
        // Branch-free so it vectorises: are all decisions equal?
        let uniform = self.nexts[..n]
            .iter()
            .fold(0u16, |acc, &x| acc | (x ^ first))
            == 0;
        if uniform && first == NEXT_CONSUMED {
            return;
        }
        if uniform && self.trace.is_none() && (first as usize) < self.edges.len() {
            let f = &mut self.frames[self.edges[first as usize]];
            if f.len + n <= FRAME_CAP {
                f.ids[f.len..f.len + n].copy_from_slice(input);
                f.len += n;
                return;
            }
        }
        for (i, &pkt) in input.iter().enumerate() {
            match self.nexts[i] {
                NEXT_CONSUMED => {}
                NEXT_UNSET => self.drop(pkt, Reason::NodeNoDecision),
                x if x & NEXT_DROP != 0 => {
                    let r = Reason::ALL
                        .get((x & !NEXT_DROP) as usize)
                        .copied()
                        .unwrap_or(Reason::NodeNoDecision);
                    self.drop(pkt, r)
                }
                e if (e as usize) < self.edges.len() => self.send(e as usize, pkt),
                _ => self.drop(pkt, Reason::NodeNoDecision),
            }
        }
    }
}

/// Packets a graph made and dropped, for the conservation check: over any
/// run, packets in + made = packets handed to a port + dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub made: u64,
    pub dropped: u64,
}

struct Slot {
    node: Box<dyn Node>,
    edges: Vec<usize>,
    stats: NodeStats,
}

/// A worker's instance of the graph.
pub struct Graph {
    slots: Vec<Slot>,
    frames: Vec<Frame>,
    spare: Frame,
    nexts: Box<[u16; FRAME_CAP]>,
    reasons: Box<[u64; Reason::COUNT]>,
    totals: Totals,
    freed: Vec<PktId>,
    trace: Option<Vec<TraceStep>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("node {node:?} names unknown next node {next:?}")]
    UnknownNext {
        node: &'static str,
        next: &'static str,
    },
    #[error("two nodes are named {0:?}")]
    Duplicate(&'static str),
}

impl Graph {
    /// Build a graph from nodes, resolving edges by name.
    pub fn new(nodes: Vec<Box<dyn Node>>) -> Result<Graph, GraphError> {
        let names: Vec<&'static str> = nodes.iter().map(|n| n.name()).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(GraphError::Duplicate(n));
            }
        }
        let mut slots = Vec::with_capacity(nodes.len());
        for node in nodes {
            let mut edges = Vec::new();
            for next in node.next_nodes() {
                match names.iter().position(|n| n == next) {
                    Some(i) => edges.push(i),
                    None => {
                        return Err(GraphError::UnknownNext {
                            node: node.name(),
                            next,
                        })
                    }
                }
            }
            slots.push(Slot {
                node,
                edges,
                stats: NodeStats::default(),
            });
        }
        let frames = (0..slots.len()).map(|_| Frame::new()).collect();
        Ok(Graph {
            slots,
            frames,
            spare: Frame::new(),
            nexts: Box::new([NEXT_UNSET; FRAME_CAP]),
            reasons: Box::new([0; Reason::COUNT]),
            totals: Totals::default(),
            freed: Vec::with_capacity(FRAME_CAP * 4),
            trace: None,
        })
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.node.name() == name)
    }

    /// Queue a packet at a node's input (used by rx and by injected packets).
    #[inline(always)]
    pub fn enqueue(&mut self, node: usize, pkt: PktId, pool: &mut Pool) {
        if !self.frames[node].push(pkt) {
            self.reasons[Reason::FrameOverflow as usize] += 1;
            self.totals.dropped += 1;
            pool.free(pkt);
        }
    }

    /// Queue a batch at a node's input.
    #[inline]
    pub fn enqueue_batch(&mut self, node: usize, pkts: &[PktId], pool: &mut Pool) {
        let f = &mut self.frames[node];
        let room = FRAME_CAP - f.len;
        let n = pkts.len().min(room);
        f.ids[f.len..f.len + n].copy_from_slice(&pkts[..n]);
        f.len += n;
        if n < pkts.len() {
            self.reasons[Reason::FrameOverflow as usize] += (pkts.len() - n) as u64;
            self.totals.dropped += (pkts.len() - n) as u64;
            pool.free_all(&pkts[n..]);
        }
    }

    /// Count `n` packets dropped outside of any node (e.g. the driver ran
    /// out of buffers, a transmit queue was full).
    pub fn count(&mut self, reason: Reason, n: u64) {
        self.reasons[reason as usize] += n;
        self.totals.dropped += n;
    }

    /// Packets made and dropped so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Process every waiting packet until all frames are empty.
    pub fn run(&mut self, cx: &mut Ctx<'_>) {
        for _ in 0..MAX_PASSES {
            let mut busy = false;
            for i in 0..self.slots.len() {
                if self.frames[i].len == 0 {
                    continue;
                }
                busy = true;
                // Take the input frame out so the node can write to others
                // (including, for a self-loop, its own) while reading it.
                std::mem::swap(&mut self.frames[i], &mut self.spare);
                let slot = &mut self.slots[i];
                let input = self.spare.as_slice();
                for &p in input.iter().take(4) {
                    cx.pool.prefetch(p);
                }
                let trace = self.trace.as_mut().map(|t| {
                    let names = slot.node.next_nodes();
                    (slot.node.name(), names, t)
                });
                self.nexts[..input.len()].fill(NEXT_UNSET);
                let mut out = Dispatch {
                    edges: &slot.edges,
                    frames: &mut self.frames,
                    reasons: &mut self.reasons,
                    totals: &mut self.totals,
                    pool_free: &mut self.freed,
                    nexts: &mut self.nexts,
                    trace,
                };
                let t0 = prefetch::cycles();
                slot.node.process(cx, input, &mut out);
                out.flush(input);
                let t1 = prefetch::cycles();
                slot.stats.calls += 1;
                slot.stats.packets += input.len() as u64;
                slot.stats.cycles += t1.wrapping_sub(t0);
                self.spare.len = 0;
                if !self.freed.is_empty() {
                    cx.pool.free_all(&self.freed);
                    self.freed.clear();
                }
            }
            if !busy {
                return;
            }
        }
        // A loop in the graph kept packets moving: drop what is left.
        for f in &mut self.frames {
            self.reasons[Reason::FrameOverflow as usize] += f.len as u64;
            self.totals.dropped += f.len as u64;
            cx.pool.free_all(f.as_slice());
            f.len = 0;
        }
    }

    /// Per-node counters in registration order.
    pub fn stats(&self) -> Vec<(&'static str, NodeStats)> {
        self.slots
            .iter()
            .map(|s| (s.node.name(), s.stats))
            .collect()
    }

    pub fn reasons(&self) -> &[u64; Reason::COUNT] {
        &self.reasons
    }

    /// Edges as (from, to) node names, for `weir graph`-style dumps.
    pub fn edges(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = Vec::new();
        for s in &self.slots {
            for &e in &s.edges {
                v.push((s.node.name(), self.slots[e].node.name()));
            }
        }
        v
    }

    /// Start recording every packet's path through the nodes.
    pub fn trace_start(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// Stop tracing and return what was recorded.
    pub fn trace_take(&mut self) -> Vec<TraceStep> {
        self.trace.take().unwrap_or_default()
    }

    pub fn reset_stats(&mut self) {
        for s in &mut self.slots {
            s.stats = NodeStats::default();
        }
        self.reasons.fill(0);
        self.totals = Totals::default();
    }

    /// Graphviz DOT of the graph.
    pub fn dot(&self) -> String {
        let mut s = String::from("digraph weir {\n  rankdir=LR;\n");
        for (a, b) in self.edges() {
            s.push_str(&format!("  \"{a}\" -> \"{b}\";\n"));
        }
        s.push_str("}\n");
        s
    }
}
