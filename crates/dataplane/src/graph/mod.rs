//! The node graph: small nodes, each one job, passing batches of packet ids
//! along named edges.
//!
//! A node declares, in its own file, the names of the nodes it can send to
//! and its drop reasons (`edges!`, `reasons!`); the graph resolves the names
//! when it is built and runs the nodes in an order derived from the edges
//! (`order`), repeating until all frames are empty (back edges, e.g. an echo
//! reply going back to the lookup, make a second pass).
//!
//! This layer knows buffers and nothing above them: what a node sees
//! besides its packets is a context type chosen by the runtime (`Context`),
//! so nodes are monomorphised over it and the graph never names the worker,
//! the tables or any node.

mod decl;
pub mod order;

use std::sync::Arc;

use crate::buffer::{PacketBuf, PktId, Pool};
use crate::prefetch;
use decl::GRAPH_REASON;
pub(crate) use decl::{edges, reasons};
pub use decl::{Edge, Reason};

/// Most packets a driver hands to the graph at once.
pub const BATCH: usize = 256;
/// Capacity of a node's input frame: room for a full batch twice over, since
/// a few nodes make more packets than they consume (fragmentation).
pub const FRAME_CAP: usize = 2 * BATCH;
/// Passes over the nodes per run before leftover packets are dropped; only a
/// misbehaving loop in the graph could reach it.
const MAX_PASSES: usize = 8;

/// The family of context types nodes see besides their packets: the
/// runtime picks one (`Ctx<'a>`, borrowed for one batch) and the graph and
/// its nodes are generic over it.
pub trait Context: 'static {
    type Of<'a>: HasPool;
}

/// The one thing the graph needs of a context: the packet buffers.
pub trait HasPool {
    fn pool(&mut self) -> &mut Pool;
}

pub trait Node<C: Context>: Send {
    /// Name used in edges, counters and traces, e.g. "ip4-input".
    fn name(&self) -> &'static str;
    /// Nodes this one can send to; `Edge(i)` is `next_nodes()[i]`.
    fn next_nodes(&self) -> &[&'static str];
    /// This node's drop reasons; `Reason::node(i)` is `reasons()[i]`.
    fn reasons(&self) -> &'static [&'static str] {
        &[]
    }
    fn process(&mut self, cx: &mut C::Of<'_>, pkts: &[PktId], out: &mut Dispatch<'_>);
    /// A few fields worth showing in a trace of `buf` after this node
    /// (addresses, ports, next hop). Called only while tracing.
    fn trace(&self, _buf: &PacketBuf, _out: &mut String) {}
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

/// One step of a traced packet: which node saw it, where it went (a node,
/// or the drop reason) and the fields the node shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    pub pkt: PktId,
    pub node: &'static str,
    pub next: &'static str,
    pub fields: String,
}

/// What a node decided for input packet `i`: an edge, a drop (with its
/// reason), or "consumed" when the node already handed the packet on itself.
const NEXT_DROP: u16 = 0x8000;
const NEXT_CONSUMED: u16 = 0xffff;
const NEXT_UNSET: u16 = 0xfffe;

struct Tracing<'a> {
    node: &'static str,
    edges: &'a [&'static str],
    reasons: &'a [&'static str],
    steps: &'a mut Vec<TraceStep>,
}

/// Where a node puts the packets it has processed. For its input packets a
/// node records a decision per index (`next`, `drop_at`, `consumed`); the
/// graph then moves the whole batch at once, with a fast path when every
/// packet takes the same edge (VPP's enqueue-to-next). Packets a node makes
/// itself go out at once with `send`.
pub struct Dispatch<'a> {
    edges: &'a [usize],
    frames: &'a mut [Frame],
    counters: &'a mut [u64],
    /// Index of this node's first reason in `counters`.
    reason_base: usize,
    reason_count: u16,
    totals: &'a mut Totals,
    pool_free: &'a mut Vec<PktId>,
    nexts: &'a mut [u16; FRAME_CAP],
    trace: Option<Tracing<'a>>,
}

impl Dispatch<'_> {
    /// Input packet `i` goes along `edge`.
    #[inline(always)]
    pub fn next(&mut self, i: usize, edge: impl Into<Edge>) {
        self.nexts[i] = edge.into().0;
    }

    /// Input packet `i` is dropped, counting `reason`.
    #[inline(always)]
    pub fn drop_at(&mut self, i: usize, reason: impl Into<Reason>) {
        self.nexts[i] = NEXT_DROP | reason.into().0;
    }

    /// Input packet `i` was handed on by the node itself (queued for
    /// transmission, or sent/dropped with `send`/`drop`).
    #[inline(always)]
    pub fn consumed(&mut self, i: usize) {
        self.nexts[i] = NEXT_CONSUMED;
    }

    /// True while the graph records a trace: nodes may then do extra work
    /// to explain themselves.
    #[inline(always)]
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Send `pkt` along `edge` now (for packets the node created, or
    /// followed by `consumed` for an input packet).
    #[inline(always)]
    pub fn send(&mut self, edge: impl Into<Edge>, pkt: PktId) {
        let edge = edge.into().0 as usize;
        let Some(&node) = self.edges.get(edge) else {
            self.drop(pkt, Reason::NODE_NO_DECISION);
            return;
        };
        if let Some(t) = &mut self.trace {
            t.steps.push(TraceStep {
                pkt,
                node: t.node,
                next: t.edges[edge],
                fields: String::new(),
            });
        }
        if !self.frames[node].push(pkt) {
            self.counters[Reason::FRAME_OVERFLOW.0 as usize & !(GRAPH_REASON as usize)] += 1;
            self.totals.dropped += 1;
            self.pool_free.push(pkt);
        }
    }

    /// Send a packet the node made itself (e.g. a fragment) along `edge`.
    #[inline(always)]
    pub fn send_new(&mut self, edge: impl Into<Edge>, pkt: PktId) {
        self.totals.made += 1;
        self.send(edge, pkt);
    }

    /// Where `reason` is counted, and its name.
    #[inline(always)]
    fn counter(&self, r: Reason) -> usize {
        if r.0 & GRAPH_REASON != 0 {
            (r.0 & !GRAPH_REASON) as usize
        } else if r.0 < self.reason_count {
            self.reason_base + r.0 as usize
        } else {
            (Reason::NODE_NO_DECISION.0 & !GRAPH_REASON) as usize
        }
    }

    /// Drop `pkt` now, counting `reason`.
    #[inline(always)]
    pub fn drop(&mut self, pkt: PktId, reason: impl Into<Reason>) {
        let r = reason.into();
        if let Some(t) = &mut self.trace {
            let next = if r.0 & GRAPH_REASON != 0 {
                Reason::GRAPH
                    .get((r.0 & !GRAPH_REASON) as usize)
                    .copied()
                    .unwrap_or("?")
            } else {
                t.reasons.get(r.0 as usize).copied().unwrap_or("?")
            };
            t.steps.push(TraceStep {
                pkt,
                node: t.node,
                next,
                fields: String::new(),
            });
        }
        let c = self.counter(r);
        self.counters[c] += 1;
        self.totals.dropped += 1;
        self.pool_free.push(pkt);
    }

    /// Count `reason` without dropping anything (the packet goes on, e.g.
    /// turned into an ICMP error).
    #[inline(always)]
    pub fn count(&mut self, reason: impl Into<Reason>) {
        let c = self.counter(reason.into());
        self.counters[c] += 1;
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
                NEXT_UNSET => self.drop(pkt, Reason::NODE_NO_DECISION),
                x if x & NEXT_DROP != 0 => self.drop(pkt, Reason(x & !NEXT_DROP)),
                e => self.send(Edge(e), pkt),
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

struct Slot<C: Context> {
    node: Box<dyn Node<C>>,
    name: &'static str,
    /// `node.next_nodes()`, kept apart so traces can borrow it while the
    /// node runs.
    edge_names: Vec<&'static str>,
    reason_names: &'static [&'static str],
    edges: Vec<usize>,
    reason_base: usize,
    stats: NodeStats,
}

/// A worker's instance of the graph.
pub struct Graph<C: Context> {
    /// In running order.
    slots: Vec<Slot<C>>,
    frames: Vec<Frame>,
    spare: Frame,
    nexts: Box<[u16; FRAME_CAP]>,
    /// The graph's reasons, then each node's, in slot order.
    counters: Vec<u64>,
    counter_names: Arc<[String]>,
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

impl<C: Context> Graph<C> {
    /// Build a graph from nodes, resolving edges by name; the nodes run in
    /// an order derived from the edges.
    pub fn new(nodes: Vec<Box<dyn Node<C>>>) -> Result<Graph<C>, GraphError> {
        Graph::with_aliases(nodes, &[])
    }

    /// Like `new`, where an edge named by the first of an alias pair leads
    /// to the node named by the second (e.g. `punt:arp-reply` to
    /// `punt-kernel`).
    pub fn with_aliases(
        nodes: Vec<Box<dyn Node<C>>>,
        aliases: &[(&'static str, &'static str)],
    ) -> Result<Graph<C>, GraphError> {
        let resolve = |n: &'static str| aliases.iter().find(|a| a.0 == n).map_or(n, |a| a.1);
        let names: Vec<&'static str> = nodes.iter().map(|n| n.name()).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(GraphError::Duplicate(n));
            }
        }
        let mut edges = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let mut es = Vec::new();
            for &next in node.next_nodes() {
                let next = resolve(next);
                match names.iter().position(|n| *n == next) {
                    Some(i) => es.push(i),
                    None => {
                        return Err(GraphError::UnknownNext {
                            node: node.name(),
                            next,
                        })
                    }
                }
            }
            edges.push(es);
        }
        let order = order::topological(&edges);
        let mut at = vec![0; nodes.len()];
        for (pos, &i) in order.iter().enumerate() {
            at[i] = pos;
        }
        let mut nodes: Vec<Option<Box<dyn Node<C>>>> = nodes.into_iter().map(Some).collect();
        let mut counter_names: Vec<String> = Reason::GRAPH.iter().map(|s| s.to_string()).collect();
        let mut slots = Vec::with_capacity(order.len());
        for &i in &order {
            let node = nodes[i].take().expect("each node once");
            let reason_base = counter_names.len();
            counter_names.extend(
                node.reasons()
                    .iter()
                    .map(|r| format!("{}/{r}", node.name())),
            );
            slots.push(Slot {
                edges: edges[i].iter().map(|&e| at[e]).collect(),
                name: node.name(),
                edge_names: node.next_nodes().iter().map(|&n| resolve(n)).collect(),
                reason_names: node.reasons(),
                node,
                reason_base,
                stats: NodeStats::default(),
            });
        }
        let frames = (0..slots.len()).map(|_| Frame::new()).collect();
        Ok(Graph {
            slots,
            frames,
            spare: Frame::new(),
            nexts: Box::new([NEXT_UNSET; FRAME_CAP]),
            counters: vec![0; counter_names.len()],
            counter_names: counter_names.into(),
            totals: Totals::default(),
            freed: Vec::with_capacity(FRAME_CAP * 4),
            trace: None,
        })
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Queue a packet at a node's input (used by rx and by injected packets).
    #[inline(always)]
    pub fn enqueue(&mut self, node: usize, pkt: PktId, pool: &mut Pool) {
        if !self.frames[node].push(pkt) {
            self.count(Reason::FRAME_OVERFLOW, 1);
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
            self.count(Reason::FRAME_OVERFLOW, (pkts.len() - n) as u64);
            pool.free_all(&pkts[n..]);
        }
    }

    /// Count `n` packets dropped outside of any node (e.g. the driver ran
    /// out of buffers, a transmit queue was full): one of the graph's own
    /// reasons.
    pub fn count(&mut self, reason: Reason, n: u64) {
        debug_assert!(reason.0 & GRAPH_REASON != 0, "only the graph's reasons");
        self.counters[(reason.0 & !GRAPH_REASON) as usize] += n;
        self.totals.dropped += n;
    }

    /// Packets made and dropped so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Process every waiting packet until all frames are empty.
    pub fn run(&mut self, cx: &mut C::Of<'_>) {
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
                    cx.pool().prefetch(p);
                }
                let traced_from = self.trace.as_ref().map_or(0, |t| t.len());
                let trace = self.trace.as_mut().map(|steps| Tracing {
                    node: slot.name,
                    edges: &slot.edge_names,
                    reasons: slot.reason_names,
                    steps,
                });
                self.nexts[..input.len()].fill(NEXT_UNSET);
                let mut out = Dispatch {
                    edges: &slot.edges,
                    frames: &mut self.frames,
                    counters: &mut self.counters,
                    reason_base: slot.reason_base,
                    reason_count: slot.reason_names.len() as u16,
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
                if let Some(steps) = &mut self.trace {
                    // The buffers are still intact: dropped ones are freed
                    // below, sent ones are not touched until the next node.
                    for s in &mut steps[traced_from..] {
                        slot.node.trace(cx.pool().get(s.pkt), &mut s.fields);
                    }
                }
                self.spare.len = 0;
                if !self.freed.is_empty() {
                    cx.pool().free_all(&self.freed);
                    self.freed.clear();
                }
            }
            if !busy {
                return;
            }
        }
        // A loop in the graph kept packets moving: drop what is left.
        for f in &mut self.frames {
            self.counters[(Reason::FRAME_OVERFLOW.0 & !GRAPH_REASON) as usize] += f.len as u64;
            self.totals.dropped += f.len as u64;
            cx.pool().free_all(f.as_slice());
            f.len = 0;
        }
    }

    /// Per-node counters in running order.
    pub fn stats(&self) -> Vec<(&'static str, NodeStats)> {
        self.slots.iter().map(|s| (s.name, s.stats)).collect()
    }

    /// Drop counters, in the order of `reason_names`.
    pub fn reasons(&self) -> &[u64] {
        &self.counters
    }

    /// Names of the drop counters: the graph's own (`no-buffer`, ...), then
    /// each node's as `node/reason`.
    pub fn reason_names(&self) -> &Arc<[String]> {
        &self.counter_names
    }

    /// Node names in running order.
    pub fn nodes(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.name).collect()
    }

    /// Edges as (from, to) node names, for `weir graph`-style dumps.
    pub fn edges(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = Vec::new();
        for s in &self.slots {
            for &e in &s.edges {
                v.push((s.name, self.slots[e].name));
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
        self.counters.fill(0);
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
