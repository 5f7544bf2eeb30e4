//! `port-tx`: queues each packet on its `tx_port` for the worker to
//! transmit after the graph has run.

use std::fmt::Write;

use crate::buffer::{PacketBuf, PktId};
use crate::graph::{reasons, Dispatch, Node};
use crate::worker::{Ctx, Fwd};

reasons! {
    pub enum Drop {
        QueueFull => "queue-full",
    }
}

pub struct PortTx;

impl Node<Fwd> for PortTx {
    fn name(&self) -> &'static str {
        "port-tx"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &[]
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let port = cx.pool.get(id).meta.tx_port;
            if cx.local.tx(port, id) {
                out.consumed(i);
            } else {
                out.drop_at(i, Drop::QueueFull);
            }
        }
    }
    fn trace(&self, buf: &PacketBuf, out: &mut String) {
        let _ = write!(out, "tx-port {}", buf.meta.tx_port);
    }
}
