//! Packets waiting for neighbour resolution, in a slab allocated once: a
//! per-neighbour FIFO threads through fixed slots, so holding, releasing and
//! dropping a packet never allocates. The buffers themselves come from the
//! workers (`HeldBuffers`) and go back there when the packet leaves.

use crate::tables::{HeldBuffers, VrfId};

/// Packets held in total, across every neighbour: the number of held
/// buffers and of slab slots.
pub const HELD_PACKETS: usize = 512;

const NONE: u32 = u32::MAX;

struct Slot {
    vrf: VrfId,
    l3: Vec<u8>,
    next: u32,
}

/// One neighbour's waiting packets: a FIFO of slab slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldQueue {
    head: u32,
    tail: u32,
    len: u32,
}

impl Default for HeldQueue {
    fn default() -> Self {
        HeldQueue {
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }
}

impl HeldQueue {
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }
}

pub struct HeldSlab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl HeldSlab {
    pub fn new(n: usize) -> HeldSlab {
        HeldSlab {
            slots: (0..n)
                .map(|_| Slot {
                    vrf: 0,
                    l3: Vec::new(),
                    next: NONE,
                })
                .collect(),
            free: (0..n as u32).rev().collect(),
        }
    }

    /// Append a packet to `q`; gives the buffer back when the slab is full.
    pub fn push(&mut self, q: &mut HeldQueue, vrf: VrfId, l3: Vec<u8>) -> Result<(), Vec<u8>> {
        let Some(i) = self.free.pop() else {
            return Err(l3);
        };
        self.slots[i as usize] = Slot {
            vrf,
            l3,
            next: NONE,
        };
        if q.tail == NONE {
            q.head = i;
        } else {
            self.slots[q.tail as usize].next = i;
        }
        q.tail = i;
        q.len += 1;
        Ok(())
    }

    /// Take the oldest packet of `q`.
    pub fn pop(&mut self, q: &mut HeldQueue) -> Option<(VrfId, Vec<u8>)> {
        if q.head == NONE {
            return None;
        }
        let i = q.head;
        let s = &mut self.slots[i as usize];
        q.head = s.next;
        if q.head == NONE {
            q.tail = NONE;
        }
        q.len -= 1;
        s.next = NONE;
        let out = (s.vrf, std::mem::take(&mut s.l3));
        self.free.push(i);
        Some(out)
    }

    /// Packets held in total.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// Give a buffer back to the workers (dropped if they are all there, which
/// only happens after a top-up raced a late punt).
pub fn give_back(b: &HeldBuffers, mut l3: Vec<u8>) {
    l3.clear();
    let _ = b.0.push(l3);
}
