//! Two Vteps on one node with the same address and port.

use super::VtepSpec;
use crate::cross::{conflict, ObjectSet};
use crate::error::ValidationError;

pub(super) const READS: &[&str] = &[];

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let vteps = set.of::<VtepSpec>();
    for (i, a) in vteps.iter().enumerate() {
        for b in &vteps[..i] {
            if a.spec.address == b.spec.address
                && a.spec.udp_port == b.spec.udp_port
                && a.meta.shares_node_with(b.meta)
            {
                errs.push(conflict(
                    "Vtep",
                    &a.meta.name,
                    "spec.address",
                    format!(
                        "Vtep {} already uses {} port {}",
                        b.meta.name, a.spec.address, a.spec.udp_port
                    ),
                    "Vtep",
                    &b.meta.name,
                ));
            }
        }
    }
}
