//! Registration instead of editing: each module adds its nodes and claims
//! entries in the tables that map to node names (ethertype to input node;
//! IP protocol and port of traffic to the gateway's own addresses; ICMPv6
//! type; next-hop kind to output node; punt reason to the node that takes
//! such packets). The nodes that dispatch on these read them when the
//! graph is built, so a new feature plugs in without touching them.
//!
//! A punt reason is an edge name `punt:<reason>` in the node that punts;
//! it leads to the node registered for the reason, or else to the node
//! for unclaimed local traffic (the kernel mirror).

use weir_packet::{EtherType, IpProtocol};

use crate::buffer::{MetaSlot, SlotId, SLOT_AREA};
use crate::graph::Node;
use crate::snapshot::{Apply, TableDecl, TableId};
use crate::tables::NextHopKind;
use crate::worker::{Fwd, FwdGraph};

/// IPv4 or IPv6, for the tables that are per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// A claim on local traffic: protocol, and optionally the transport
/// destination port (UDP or TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalClaim {
    pub family: Family,
    pub protocol: IpProtocol,
    pub port: Option<u16>,
    pub node: &'static str,
}

type MakeNode = Box<dyn Fn(&Registry) -> Box<dyn Node<Fwd>>>;

/// What the modules registered (`modules::registry()` fills one with
/// every module). Built once; `graph` makes one graph per worker from it.
#[derive(Default)]
pub struct Registry {
    nodes: Vec<MakeNode>,
    ethertypes: Vec<(EtherType, &'static str)>,
    local: Vec<LocalClaim>,
    icmp6_types: Vec<(u8, &'static str)>,
    nexthops: Vec<(Family, NextHopKind, &'static str)>,
    /// Where local traffic nobody claimed goes.
    local_default: Option<&'static str>,
    punts: Vec<(&'static str, &'static str)>,
    /// Module tables, in `TableId` order.
    tables: Vec<TableDecl>,
    /// Per-packet metadata slots: (owner's type name, offset, size).
    slots: Vec<(&'static str, usize, usize)>,
    slots_used: usize,
    /// Feature arcs: (arc, the node it ends at).
    arcs: Vec<(&'static str, &'static str)>,
    /// Features on arcs, in registration order: (arc, node, the node's
    /// edge to whatever follows it on the arc).
    features: Vec<(&'static str, &'static str, &'static str)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Add a node; `make` builds it (once per worker) and may read the
    /// tables other modules filled.
    pub fn node<N: Node<Fwd> + 'static>(&mut self, make: impl Fn(&Registry) -> N + 'static) {
        self.nodes.push(Box::new(move |r| Box::new(make(r))));
    }

    /// A read-mostly table of the registering module, starting as
    /// `initial`. The control side publishes new versions through its
    /// `Publisher<T>` (`Control::table`); nodes read the version of the
    /// current batch with `cx.table(id)`. One table per type: registering
    /// a type twice is a bug and panics.
    pub fn table<T>(&mut self, initial: T) -> TableId<T>
    where
        T: Apply + Clone + Send + Sync + 'static,
        T::Change: Send,
    {
        let decl = TableDecl::new(initial);
        assert!(
            !self.tables.iter().any(|d| d.type_id == decl.type_id),
            "module table {} registered twice",
            decl.name
        );
        self.tables.push(decl);
        TableId::new(self.tables.len() - 1)
    }

    /// The module tables registered, in `TableId` order.
    pub fn tables(&self) -> &[TableDecl] {
        &self.tables
    }

    /// Claim a slot of `S` in every packet's module area
    /// (`Meta::slot`). Slots never overlap; panics when the area is full.
    pub fn slot<S: MetaSlot>(&mut self) -> SlotId<S> {
        self.try_slot().unwrap_or_else(|| {
            panic!(
                "no room for {} in the metadata area",
                std::any::type_name::<S>()
            )
        })
    }

    /// Like `slot`, None when the area has no room left for `S`.
    pub fn try_slot<S: MetaSlot>(&mut self) -> Option<SlotId<S>> {
        let (size, align) = (std::mem::size_of::<S>(), std::mem::align_of::<S>());
        let at = self.slots_used.next_multiple_of(align);
        if at + size > SLOT_AREA {
            return None;
        }
        self.slots_used = at + size;
        self.slots.push((std::any::type_name::<S>(), at, size));
        // SAFETY: `at` is aligned for S and `at..at + size` lies in the
        // area and overlaps no other slot of this registry.
        Some(unsafe { SlotId::new(at) })
    }

    /// Slots claimed so far: (type, offset, size).
    pub fn slots(&self) -> &[(&'static str, usize, usize)] {
        &self.slots
    }

    /// Declare a feature arc: a place on a packet path, named like a node,
    /// where features may sit (`feature`); packets sent to `arc` pass the
    /// features in registration order and then reach `end`.
    pub fn arc(&mut self, arc: &'static str, end: &'static str) {
        self.arcs.push((arc, end));
    }

    /// Put `node` on `arc`; `next_edge` is the edge name the node sends
    /// packets on along the arc (unique to it, e.g. `nat44-in:next`).
    pub fn feature(&mut self, arc: &'static str, node: &'static str, next_edge: &'static str) {
        self.features.push((arc, node, next_edge));
    }

    /// The node a packet sent to `arc` reaches first.
    pub fn arc_entry(&self, arc: &'static str) -> &'static str {
        self.features
            .iter()
            .find(|f| f.0 == arc)
            .map(|f| f.1)
            .or_else(|| self.arcs.iter().find(|a| a.0 == arc).map(|a| a.1))
            .unwrap_or(arc)
    }

    /// Edge aliases of the arcs: the arc's name to its first feature (or
    /// its end), each feature's next edge to the feature after it.
    fn arc_aliases(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = Vec::new();
        for &(arc, end) in &self.arcs {
            let on: Vec<_> = self.features.iter().filter(|f| f.0 == arc).collect();
            v.push((arc, on.first().map_or(end, |f| f.1)));
            for (i, f) in on.iter().enumerate() {
                v.push((f.2, on.get(i + 1).map_or(end, |g| g.1)));
            }
        }
        v
    }

    /// Frames of `ty` go to `node`.
    pub fn ethertype(&mut self, ty: EtherType, node: &'static str) {
        self.ethertypes.push((ty, node));
    }

    /// Packets for the gateway's own addresses with this protocol (and,
    /// for UDP and TCP, this destination port when given) go to `node`.
    pub fn local(
        &mut self,
        family: Family,
        protocol: IpProtocol,
        port: Option<u16>,
        node: &'static str,
    ) {
        self.local.push(LocalClaim {
            family,
            protocol,
            port,
            node,
        });
    }

    /// Local traffic nobody claimed (the kernel mirror).
    pub fn local_default(&mut self, node: &'static str) {
        self.local_default = Some(node);
    }

    /// Packets a node punts for `reason` (its edge `punt:<reason>`) go to
    /// `node` instead of the default.
    pub fn punt(&mut self, reason: &'static str, node: &'static str) {
        self.punts.push((reason, node));
    }

    /// ICMPv6 messages of type `ty` for the gateway go to `node`.
    pub fn icmp6_type(&mut self, ty: u8, node: &'static str) {
        self.icmp6_types.push((ty, node));
    }

    /// Packets routed to a next hop of `kind` go to `node`.
    pub fn nexthop(&mut self, family: Family, kind: NextHopKind, node: &'static str) {
        self.nexthops.push((family, kind, node));
    }

    pub fn ethertypes(&self) -> &[(EtherType, &'static str)] {
        &self.ethertypes
    }

    pub fn local_claims(&self, family: Family) -> impl Iterator<Item = &LocalClaim> {
        self.local.iter().filter(move |c| c.family == family)
    }

    pub fn local_default_node(&self) -> Option<&'static str> {
        self.local_default
    }

    pub fn icmp6_types(&self) -> &[(u8, &'static str)] {
        &self.icmp6_types
    }

    /// The node packets to next hops of `kind` go to, if any.
    pub fn nexthop_node(&self, family: Family, kind: NextHopKind) -> Option<&'static str> {
        self.nexthops
            .iter()
            .find(|(f, k, _)| *f == family && *k == kind)
            .map(|x| x.2)
    }

    /// The forwarding graph for one worker.
    pub fn graph(&self) -> FwdGraph {
        let nodes: Vec<_> = self.nodes.iter().map(|make| make(self)).collect();
        let mut aliases = self.arc_aliases();
        for n in &nodes {
            for &e in n.next_nodes() {
                let Some(reason) = e.strip_prefix(PUNT_PREFIX) else {
                    continue;
                };
                let to = self
                    .punts
                    .iter()
                    .find(|p| p.0 == reason)
                    .map(|p| p.1)
                    .or(self.local_default)
                    .expect("a node for punted packets");
                aliases.push((e, to));
            }
        }
        FwdGraph::with_aliases(nodes, &aliases)
            .expect("registered nodes name only registered nodes")
    }
}

/// Edge names that stand for a punt reason start with this.
pub const PUNT_PREFIX: &str = "punt:";

/// Node names as the edges of a dispatching node: the distinct names in
/// `names`, in first-seen order, and each name's edge.
pub fn edge_list(names: impl IntoIterator<Item = &'static str>) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for n in names {
        if !v.contains(&n) {
            v.push(n);
        }
    }
    v
}

/// Edge index of `name` in `edges` (built by `edge_list`).
pub fn edge_of(edges: &[&'static str], name: &str) -> u16 {
    edges
        .iter()
        .position(|e| *e == name)
        .expect("name was added to the edge list") as u16
}
