//! Channels to the workers: upcalls in, frames to send and queue changes
//! out.

use std::sync::mpsc::{self, Receiver, SyncSender};

use super::*;
use crate::tables::PortId;
use crate::worker::{Queue, Upcall, WorkerCmd};

impl Control {
    /// Channels for a new worker: where it punts to and where it receives
    /// frames to send.
    pub fn worker_channels(&mut self) -> (SyncSender<Upcall>, Receiver<WorkerCmd>) {
        let (tx, rx) = mpsc::sync_channel(INJECT_QUEUE);
        self.injects.push(tx);
        (self.punt_tx.clone(), rx)
    }

    pub(super) fn inject(&mut self, port: PortId, frame: Vec<u8>) {
        if self.injects.is_empty() {
            self.stats.inject_dropped += 1;
            return;
        }
        let i = self.next_inject % self.injects.len();
        self.next_inject = self.next_inject.wrapping_add(1);
        if self.injects[i]
            .try_send(WorkerCmd::Send { port, frame })
            .is_err()
        {
            self.stats.inject_dropped += 1;
        }
    }

    /// Number of workers attached to this control side.
    pub fn workers(&self) -> usize {
        self.injects.len()
    }

    /// Give worker `w` a queue to poll (blocks while its command queue is
    /// full). False if the worker is gone.
    pub fn add_queue(&self, w: usize, q: Queue) -> bool {
        self.injects
            .get(w)
            .is_some_and(|tx| tx.send(WorkerCmd::AddQueue(q)).is_ok())
    }

    /// Tell every worker to stop polling `port` and close its queues.
    pub fn remove_queues(&self, port: PortId) {
        for tx in &self.injects {
            let _ = tx.send(WorkerCmd::RemoveQueue(port));
        }
    }
}
