//! Feature modules, one folder each with its nodes (one per file) and its
//! `register()`. A module names other modules' nodes only as edge names and
//! uses shared things from `l3` or lower, never a sibling module.
//!
//! A packet's path is read by following the node names:
//!
//! ```text
//! eth-input -> arp-input -> port-tx | punt-kernel
//!           -> ip4-input -> ip4-lookup -> ip4-output -> port-tx
//!                                      |            \-> ip4-fragment -> ip4-output
//!                                      \-> ip4-local -> icmp4-local (echo) -> ip4-lookup
//!                                                    \-> punt-kernel (unclaimed) -> port-tx
//!              ip4-input (bad option) | any ip4 error -> icmp4-error -> ip4-lookup
//!           -> ip6-input -> ip6-lookup -> ip6-output -> port-tx
//!                       \-> ip6-local -> icmp6-local (echo) -> ip6-lookup | port-tx
//!                                     |               \-> nd-input (NS, NA) -> port-tx | punt-kernel
//!                                     \-> punt-kernel (unclaimed)
//!              any ip6 error -> icmp6-error -> ip6-lookup
//!           -> port-tx (frames from a kernel mirror)
//! ```

pub mod arp;
pub mod icmp;
pub mod infra;
pub mod ip4;
pub mod ip6;
pub mod l3;
pub mod nd;
pub mod punt;

use crate::registry::Registry;

/// A registry with every module.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}

/// Every module's registration, one line each.
pub fn register(r: &mut Registry) {
    infra::register(r);
    ip4::register(r);
    ip6::register(r);
    arp::register(r);
    nd::register(r);
    icmp::register(r);
    punt::register(r);
}
