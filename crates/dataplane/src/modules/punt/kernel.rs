//! `punt-kernel`: hand local traffic the dataplane does not handle itself to the kernel
//! mirror (a TAP with the port's MAC and addresses), as VPP's linux-cp
//! does: BGP, BFD, ssh and the rest then work as on a Linux router.

use crate::buffer::PktId;
use crate::graph::{edges, reasons, Dispatch, Node};
use crate::worker::{Ctx, Fwd};

edges! {
    enum Next {
        Tx => "port-tx",
    }
}

reasons! {
    enum Drop {
        NoMirror => "no-kernel-mirror",
    }
}

pub struct PuntKernel;

impl Node<Fwd> for PuntKernel {
    fn name(&self) -> &'static str {
        "punt-kernel"
    }
    fn next_nodes(&self) -> &[&'static str] {
        Next::NAMES
    }
    fn reasons(&self) -> &'static [&'static str] {
        Drop::NAMES
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let cfg = cx.tables;
        for (i, &id) in pkts.iter().enumerate() {
            let buf = cx.pool.get_mut(id);
            match cfg.port(buf.meta.rx_port).and_then(|p| p.mirror) {
                Some(m) => {
                    // The frame is as it arrived: nodes before this one
                    // only read it.
                    buf.meta.tx_port = m;
                    out.next(i, Next::Tx);
                }
                None => out.drop_at(i, Drop::NoMirror),
            }
        }
    }
}
