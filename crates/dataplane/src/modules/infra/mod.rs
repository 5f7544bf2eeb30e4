//! Ethernet in and out: frames enter at `eth-input`, which hands them to
//! the input node registered for their ethertype, and leave through
//! `port-tx`.

mod eth_input;
mod port_tx;

pub use eth_input::EthInput;
pub use port_tx::PortTx;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.node(EthInput::new);
    r.node(|_| PortTx);
}
