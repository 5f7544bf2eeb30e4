//! Two Interfaces on the same host interface (of a node they share), or
//! the same address twice in one VPC.

use super::InterfaceSpec;
use crate::cross::{conflict, ObjectSet};
use crate::error::ValidationError;

pub(super) const READS: &[&str] = &[];

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let ifs = set.of::<InterfaceSpec>();
    for (i, a) in ifs.iter().enumerate() {
        for b in &ifs[..i] {
            if a.spec.host_interface == b.spec.host_interface && a.meta.shares_node_with(b.meta) {
                errs.push(conflict(
                    "Interface",
                    &a.meta.name,
                    "spec.hostInterface",
                    format!(
                        "host interface {} is already used by Interface {}",
                        a.spec.host_interface, b.meta.name
                    ),
                    "Interface",
                    &b.meta.name,
                ));
            }
            if a.spec.vpc == b.spec.vpc && a.meta.shares_node_with(b.meta) {
                for (k, addr) in a.spec.addresses.iter().enumerate() {
                    if b.spec.addresses.iter().any(|x| x.addr() == addr.addr()) {
                        errs.push(conflict(
                            "Interface",
                            &a.meta.name,
                            &format!("spec.addresses[{k}]"),
                            format!(
                                "address {} is already assigned to Interface {} in Vpc {}",
                                addr.addr(),
                                b.meta.name,
                                a.spec.vpc
                            ),
                            "Interface",
                            &b.meta.name,
                        ));
                    }
                }
            }
        }
    }
}
