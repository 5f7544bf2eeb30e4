//! Drivers: how frames get in and out of a worker. One trait; a port queue
//! belongs to exactly one worker, so implementations need no locking.

pub mod memory;

use crate::buffer::{PktId, Pool};

pub trait PortQueue: Send {
    /// Receive up to `out.len()` frames into buffers taken from `pool`,
    /// writing their ids to `out`; returns how many.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [PktId]) -> usize;

    /// Transmit the frames in `pkts` and return every buffer to `pool`
    /// (sent or not). Returns how many were sent.
    fn tx_burst(&mut self, pool: &mut Pool, pkts: &[PktId]) -> usize;

    /// A short name for logs, e.g. "memory" or "af_xdp".
    fn kind(&self) -> &'static str;
}
