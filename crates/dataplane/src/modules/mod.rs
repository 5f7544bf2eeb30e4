//! Feature modules, one folder each with its nodes (one per file) and its
//! `register()`. A module names other modules' nodes only as edge names and
//! uses shared things from `l3` or lower, never a sibling module. The
//! packet paths through their nodes are drawn in the crate docs.

pub mod arp;
pub mod icmp;
pub mod infra;
pub mod ip4;
pub mod ip6;
pub mod l3;
pub mod nat44;
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
    nat44::register(r);
    punt::register(r);
}
