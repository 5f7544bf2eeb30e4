//! Two BgpRouters for one VPC on a node; two BgpNeighbors of one router
//! with the same address.

use std::collections::BTreeMap;

use super::{BgpNeighborSpec, BgpRouterSpec};
use crate::cross::{conflict, ObjectSet};
use crate::error::ValidationError;

pub(super) const ROUTER_READS: &[&str] = &[];
pub(super) const NEIGHBOR_READS: &[&str] = &[];

pub(super) fn check_routers(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let routers = set.of::<BgpRouterSpec>();
    for (i, a) in routers.iter().enumerate() {
        for b in &routers[..i] {
            if a.spec.vpc == b.spec.vpc && a.meta.shares_node_with(b.meta) {
                errs.push(conflict(
                    "BgpRouter",
                    &a.meta.name,
                    "spec.vpc",
                    format!(
                        "BgpRouter {} already runs BGP in Vpc {}",
                        b.meta.name, a.spec.vpc
                    ),
                    "BgpRouter",
                    &b.meta.name,
                ));
            }
        }
    }
}

pub(super) fn check_neighbors(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let mut by_router: BTreeMap<(&str, std::net::IpAddr), &str> = BTreeMap::new();
    let neighbors = set.of::<BgpNeighborSpec>();
    for n in &neighbors {
        if let Some(other) = by_router.insert(
            (n.spec.router.as_str(), n.spec.address),
            n.meta.name.as_str(),
        ) {
            errs.push(conflict(
                "BgpNeighbor",
                &n.meta.name,
                "spec.address",
                format!(
                    "BgpNeighbor {other} of router {} already peers with {}",
                    n.spec.router, n.spec.address
                ),
                "BgpNeighbor",
                other,
            ));
        }
    }
}
