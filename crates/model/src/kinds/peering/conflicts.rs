//! A Peering exposing a prefix its VPC has no Subnet or Route for, or two
//! Peerings of the same pair of VPCs.

use super::PeeringSpec;
use crate::cross::{conflict, ObjectSet};
use crate::error::ValidationError;
use crate::kinds::{RouteSpec, SubnetSpec, VpcSpec};
use crate::meta::ObjectRef;
use crate::net::Cidr;

pub(super) const READS: &[&str] = &["Vpc", "Subnet", "Route"];

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let vpcs = set.of::<VpcSpec>();
    let subnets = set.of::<SubnetSpec>();
    let routes = set.of::<RouteSpec>();
    let peerings = set.of::<PeeringSpec>();
    for (i, p) in peerings.iter().enumerate() {
        for q in &peerings[..i] {
            let mut x = p.spec.vpcs.clone();
            let mut y = q.spec.vpcs.clone();
            x.sort();
            y.sort();
            if x == y {
                errs.push(conflict(
                    "Peering",
                    &p.meta.name,
                    "spec.vpcs",
                    format!("Peering {} already peers {}", q.meta.name, x.join(" and ")),
                    "Peering",
                    &q.meta.name,
                ));
            }
        }
        for (vpc, prefixes) in &p.spec.expose {
            let mut known: Vec<(&str, &str, Cidr)> = subnets
                .iter()
                .filter(|s| &s.spec.vpc == vpc)
                .map(|s| ("Subnet", s.meta.name.as_str(), s.spec.cidr))
                .collect();
            known.extend(
                routes
                    .iter()
                    .filter(|r| &r.spec.vpc == vpc)
                    .map(|r| ("Route", r.meta.name.as_str(), r.spec.prefix)),
            );
            let vpc_exists = vpcs.iter().any(|v| &v.meta.name == vpc);
            if !vpc_exists && known.is_empty() {
                continue; // the Vpc is missing: pending, not invalid
            }
            for (k, prefix) in prefixes.iter().enumerate() {
                if !known.iter().any(|(_, _, c)| prefix.within(c)) {
                    let mut e = ValidationError::new(
                        "Peering",
                        &p.meta.name,
                        format!("spec.expose.{vpc}[{k}]"),
                        format!("{prefix} is not inside any Subnet or Route of Vpc {vpc}"),
                    );
                    if vpc_exists {
                        e = e.with_related(ObjectRef::new("Vpc", vpc));
                    }
                    errs.push(e);
                }
            }
        }
    }
}
