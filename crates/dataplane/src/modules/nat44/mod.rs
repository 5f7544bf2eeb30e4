//! NAT44: source NAT to pools or the egress address (masquerade), port
//! forwarding, static 1:1 NAT and hairpinning, with sessions shared by
//! every worker (`store`).
//!
//! Two nodes on the IPv4 arcs:
//! - `nat44-in` (before the lookup): packets of existing sessions, both
//!   ways; new inbound flows to forwarded ports, to mappings that let
//!   them in (RFC 4787 filtering) and to 1:1 addresses; ICMP errors about
//!   sessions (their embedded packets too), and the drop of those that
//!   match none.
//! - `nat44-out` (after the lookup, where the egress port is known): new
//!   outbound flows that a source NAT or 1:1 rule takes.
//!
//! A packet with TTL 1 or less is never translated, so that the time
//! exceeded error goes to the address the sender knows. Later fragments
//! follow their first fragment's session; a later fragment that comes
//! before its first is dropped (`fragment-before-first`).

mod index;
mod input;
mod output;
pub mod rules;
mod snat;
pub mod store;

/// Sessions the table holds unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

pub use input::Nat44In;
pub use output::Nat44Out;
pub use rules::{Action, Filtering, Nat44Table, Ports, Prefix4, Rule, Rules};
pub use store::{Dir, Refused, SessionView, Store, Timeouts};

use crate::buffer::{PacketBuf, SlotId};
use crate::graph::reasons;
use crate::registry::Registry;
use crate::snapshot::TableId;
use weir_packet::nat4::{self, Tuple4};

/// The arcs the nodes sit on (the ip4 module's).
pub const PREROUTING: &str = "ip4-prerouting";
pub const POSTROUTING: &str = "ip4-postrouting";

/// Per-packet mark: set when `nat44-in` handled the packet, so that
/// `nat44-out` leaves it alone.
#[derive(Clone, Copy)]
pub struct Marks {
    pub done: SlotId<u8>,
}

pub fn register(r: &mut Registry) {
    let table: TableId<Nat44Table> = r.table(Nat44Table::default());
    let marks = Marks {
        done: r.slot::<u8>(),
    };
    r.feature(PREROUTING, "nat44-in", "nat44-in:next");
    r.feature(POSTROUTING, "nat44-out", "nat44-out:next");
    r.node(move |_| Nat44In::new(table, marks));
    r.node(move |_| Nat44Out::new(table, marks));
}

/// Rewrite the packet at its L3 offset to `to` (addresses and ports).
#[inline]
fn rewrite(buf: &mut PacketBuf, to: &Tuple4) -> bool {
    let l3 = buf.meta.l3_offset as usize;
    buf.data_mut()
        .get_mut(l3..)
        .is_some_and(|ip| nat4::rewrite(ip, to).is_ok())
}

/// `t` with the addresses of `to` and its own ports (later fragments).
#[inline]
fn addresses_only(t: &Tuple4, to: &Tuple4) -> Tuple4 {
    Tuple4 {
        src: to.src,
        dst: to.dst,
        ..*t
    }
}

/// The L3 bytes of a packet.
#[inline]
fn l3(buf: &PacketBuf) -> &[u8] {
    buf.data().get(buf.meta.l3_offset as usize..).unwrap_or(&[])
}

/// TTL of an IPv4 packet (validated by ip4-input).
#[inline]
fn ttl(buf: &PacketBuf) -> u8 {
    l3(buf).get(8).copied().unwrap_or(0)
}

// Both nodes' drop reasons (counted as `nat44-in/...`, `nat44-out/...`):
// table-full (every worker's share in use), index-full (no room near the
// key's home), source-cap and rule-cap (the caps), transitory-cap (half-open
// TCP sessions at their cap), no-port (no outside address and port free),
// icmp-error-no-session (an error to a NAT address about no session),
// fragment-before-first, malformed (cut-short transport header), no-session
// (an ICMP query reply leaving with no session).
reasons! {
    pub enum Drop {
        TableFull => "table-full",
        IndexFull => "index-full",
        SourceCap => "source-cap",
        RuleCap => "rule-cap",
        TransitoryCap => "transitory-cap",
        NoPort => "no-port",
        ErrorNoSession => "icmp-error-no-session",
        FragmentBeforeFirst => "fragment-before-first",
        Malformed => "malformed",
        NoSession => "no-session",
    }
}

impl From<Refused> for Drop {
    fn from(r: Refused) -> Drop {
        match r {
            Refused::TableFull => Drop::TableFull,
            Refused::IndexFull => Drop::IndexFull,
            Refused::SourceCap => Drop::SourceCap,
            Refused::RuleCap => Drop::RuleCap,
            Refused::TransitoryCap => Drop::TransitoryCap,
            Refused::NoPort => Drop::NoPort,
        }
    }
}
