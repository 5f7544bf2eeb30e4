//! Holding a packet for neighbour resolution: its L3 bytes are copied into
//! one of the preallocated held buffers (no allocation) and handed up to
//! the control side, which sends it once the neighbour answers.

use std::net::IpAddr;

use crate::buffer::PktId;
use crate::tables::PortId;
use crate::worker::{Ctx, Upcall};

/// What became of a packet offered for holding; the caller counts it under
/// its own reason and drops the packet (the control side has the copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Copied and handed up.
    Held,
    /// No held buffer free, or the control side is overwhelmed.
    QueueFull,
    /// Larger than a held buffer.
    TooBig,
}

pub fn hold(cx: &mut Ctx<'_>, id: PktId, port: PortId, addr: IpAddr) -> Held {
    let Some(held) = &cx.tables.held else {
        return Held::QueueFull;
    };
    let Some(mut v) = held.0.pop() else {
        return Held::QueueFull;
    };
    let b = cx.pool.get(id);
    let l3 = &b.data()[b.meta.l3_offset as usize..];
    if l3.len() > v.capacity() {
        let _ = held.0.push(v);
        return Held::TooBig;
    }
    v.clear();
    v.extend_from_slice(l3);
    let up = Upcall::Hold {
        port,
        addr,
        vrf: b.meta.vrf,
        l3: v,
    };
    // A refused upcall takes its buffer with it; the control side tops the
    // buffers up again.
    if cx.local.upcall(up) {
        Held::Held
    } else {
        Held::QueueFull
    }
}
