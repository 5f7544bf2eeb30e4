//! Overlapping Subnets in one VPC; a Subnet whose Interface is in another
//! VPC, or whose gateway is on no address of that Interface when the
//! Interface has addresses in the subnet's family.

use std::collections::HashMap;

use super::SubnetSpec;
use crate::cross::{conflict, ObjectSet, Of};
use crate::error::ValidationError;
use crate::kinds::InterfaceSpec;
use crate::net::Cidr;

pub(super) const READS: &[&str] = &["Interface"];

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let ifs = set.of::<InterfaceSpec>();
    let if_by_name: HashMap<&str, &Of<InterfaceSpec>> =
        ifs.iter().map(|o| (o.meta.name.as_str(), o)).collect();
    let subnets = set.of::<SubnetSpec>();
    for (i, a) in subnets.iter().enumerate() {
        for b in &subnets[..i] {
            if a.spec.vpc == b.spec.vpc && a.spec.cidr.overlaps(&b.spec.cidr) {
                errs.push(conflict(
                    "Subnet",
                    &a.meta.name,
                    "spec.cidr",
                    format!(
                        "{} overlaps {} of Subnet {} in Vpc {}",
                        a.spec.cidr, b.spec.cidr, b.meta.name, a.spec.vpc
                    ),
                    "Subnet",
                    &b.meta.name,
                ));
            }
        }
        let Some(ifo) = a.spec.interface.as_deref().and_then(|n| if_by_name.get(n)) else {
            continue;
        };
        if ifo.spec.vpc != a.spec.vpc {
            errs.push(conflict(
                "Subnet",
                &a.meta.name,
                "spec.interface",
                format!(
                    "Interface {} is in Vpc {}, not in the subnet's Vpc {}",
                    ifo.meta.name, ifo.spec.vpc, a.spec.vpc
                ),
                "Interface",
                &ifo.meta.name,
            ));
            continue;
        }
        let fam = a.spec.cidr.family();
        let same_family: Vec<&Cidr> = ifo
            .spec
            .addresses
            .iter()
            .filter(|x| x.family() == fam)
            .collect();
        let gw = a.spec.gateway();
        if !same_family.is_empty() && !same_family.iter().any(|x| x.addr() == gw) {
            errs.push(conflict(
                "Subnet",
                &a.meta.name,
                "spec.gateway",
                format!(
                    "gateway {gw} is not one of Interface {}'s addresses ({})",
                    ifo.meta.name,
                    same_family
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "Interface",
                &ifo.meta.name,
            ));
        }
    }
}
