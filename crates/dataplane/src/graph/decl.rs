//! How a node declares its edges and drop reasons: one list each, in the
//! node's own file. `edges!` makes the enum a node passes to `Dispatch` and
//! the names the graph resolves; `reasons!` makes the enum of its drop
//! reasons and the names they are counted under (`node/reason`).

/// An edge of the node that is running: an index into its `next_nodes()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge(pub u16);

/// Why a packet was dropped or diverted: one of the running node's own
/// reasons (an index into its `reasons()`), or one of the graph's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(pub(crate) u16);

/// Marks the graph's own reasons, counted apart from any node's.
pub(crate) const GRAPH_REASON: u16 = 0x4000;

impl Reason {
    /// The graph ran out of packet buffers (rx, a copy, a fragment).
    pub const NO_BUFFER: Reason = Reason(GRAPH_REASON);
    /// A node's input frame was full.
    pub const FRAME_OVERFLOW: Reason = Reason(GRAPH_REASON | 1);
    /// A driver received a frame longer than a buffer.
    pub const RX_TOO_LONG: Reason = Reason(GRAPH_REASON | 2);
    /// A node left a packet without a decision (a bug in the node).
    pub const NODE_NO_DECISION: Reason = Reason(GRAPH_REASON | 3);
    /// A port's transmit queue was full or missing.
    pub const TX_FULL: Reason = Reason(GRAPH_REASON | 4);

    /// Names of the graph's own reasons, in the order of their values.
    pub const GRAPH: &'static [&'static str] = &[
        "no-buffer",
        "frame-overflow",
        "rx-frame-longer-than-buffer",
        "node-no-decision",
        "tx-queue-full",
    ];

    /// Where one of the graph's own reasons is counted: its index in
    /// `Graph::reasons`. None for a node's reason.
    pub const fn graph_index(self) -> Option<usize> {
        if self.0 & GRAPH_REASON != 0 {
            Some((self.0 & !GRAPH_REASON) as usize)
        } else {
            None
        }
    }

    /// A node's own reason by index (what `reasons!` produces).
    pub const fn node(i: u16) -> Reason {
        Reason(i)
    }
}

/// Declare a node's edges: `edges! { pub enum Next { Lookup => "ip4-lookup", ... } }`
/// gives `Next::Lookup` (usable wherever an `Edge` is expected) and
/// `Next::NAMES` for `Node::next_nodes`.
macro_rules! edges {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u16)]
        $vis enum $name { $($v,)* }
        impl $name {
            /// Names of the nodes, in the order of the variants.
            pub const NAMES: &'static [&'static str] = &[$($s,)*];
        }
        impl From<$name> for $crate::graph::Edge {
            #[inline(always)]
            fn from(e: $name) -> $crate::graph::Edge {
                $crate::graph::Edge(e as u16)
            }
        }
    };
}

/// Declare a node's drop reasons: `reasons! { pub enum Drop { NoRoute => "no-route", ... } }`
/// gives `Drop::NoRoute` (usable wherever a `Reason` is expected) and
/// `Drop::NAMES` for `Node::reasons`; counted as `<node>/no-route`.
macro_rules! reasons {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u16)]
        $vis enum $name { $($v,)* }
        impl $name {
            /// Names of the reasons, in the order of the variants.
            pub const NAMES: &'static [&'static str] = &[$($s,)*];
        }
        impl From<$name> for $crate::graph::Reason {
            #[inline(always)]
            fn from(r: $name) -> $crate::graph::Reason {
                $crate::graph::Reason::node(r as u16)
            }
        }
    };
}

pub(crate) use edges;
pub(crate) use reasons;
