//! Two Routes for the same prefix, VPC and distance (on a node they share).

use super::RouteSpec;
use crate::cross::{conflict, ObjectSet};
use crate::error::ValidationError;

pub(super) const READS: &[&str] = &[];

/// Routes conflict only within a group (same VPC, network and distance),
/// so a write of a Route needs only its group's routes.
pub(super) fn group(r: &RouteSpec) -> Option<String> {
    Some(format!("{}|{}|{:?}", r.vpc, r.prefix.network(), r.distance))
}

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let routes = set.of::<RouteSpec>();
    for (i, a) in routes.iter().enumerate() {
        for b in &routes[..i] {
            if a.spec.vpc == b.spec.vpc
                && a.spec.prefix.network() == b.spec.prefix.network()
                && a.spec.distance == b.spec.distance
                && a.meta.shares_node_with(b.meta)
            {
                errs.push(conflict(
                    "Route",
                    &a.meta.name,
                    "spec.prefix",
                    format!(
                        "Route {} already routes {} in Vpc {} with the same distance",
                        b.meta.name, a.spec.prefix, a.spec.vpc
                    ),
                    "Route",
                    &b.meta.name,
                ));
            }
        }
    }
}
