//! Two Vpcs with the same VNI or VRF table.

use super::VpcSpec;
use crate::cross::{conflict, ObjectSet};
use crate::error::ValidationError;

pub(super) const READS: &[&str] = &[];

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let vpcs = set.of::<VpcSpec>();
    for (i, a) in vpcs.iter().enumerate() {
        for b in &vpcs[..i] {
            if a.spec.vni.is_some() && a.spec.vni == b.spec.vni {
                errs.push(conflict(
                    "Vpc",
                    &a.meta.name,
                    "spec.vni",
                    format!(
                        "VNI {} is already used by Vpc {}",
                        a.spec.vni.unwrap_or_default(),
                        b.meta.name
                    ),
                    "Vpc",
                    &b.meta.name,
                ));
            }
            if a.spec.vrf.is_some() && a.spec.vrf == b.spec.vrf {
                errs.push(conflict(
                    "Vpc",
                    &a.meta.name,
                    "spec.vrf",
                    format!(
                        "VRF table {} is already used by Vpc {}",
                        a.spec.vrf.unwrap_or_default(),
                        b.meta.name
                    ),
                    "Vpc",
                    &b.meta.name,
                ));
            }
        }
    }
}
