//! Checks over a set of objects: the state the store would hold after a
//! transaction. Each error names one object in `kind`/`name` and the other
//! in `related`.
//!
//! Missing references are not errors here: the reconciler keeps such
//! objects pending until what they need appears.

use std::collections::{BTreeMap, HashMap};

use crate::error::ValidationError;
use crate::kinds::*;
use crate::meta::{KindSpec, Object, ObjectMeta, ObjectRef};
use crate::net::Cidr;

struct Of<'a, S> {
    meta: &'a ObjectMeta,
    spec: S,
}

fn typed<'a, S: KindSpec>(objects: &'a [Object]) -> Vec<Of<'a, S>> {
    objects
        .iter()
        .filter(|o| o.kind == S::KIND)
        .filter_map(|o| {
            o.typed::<S>().ok().map(|spec| Of {
                meta: &o.metadata,
                spec,
            })
        })
        .collect()
}

fn conflict(
    kind: &str,
    name: &str,
    field: &str,
    reason: String,
    other_kind: &str,
    other: &str,
) -> ValidationError {
    ValidationError::new(kind, name, field, reason).with_related(ObjectRef::new(other_kind, other))
}

/// Every cross-object problem in `objects`:
/// - two objects of one kind with the same name;
/// - two Vpcs with the same VNI or VRF table;
/// - two Interfaces on the same host interface (of a node they share),
///   or the same address twice in one VPC;
/// - overlapping Subnets in one VPC; a Subnet whose Interface is in
///   another VPC or whose gateway is on no address of that Interface
///   when the Interface has addresses in the subnet's family;
/// - two Routes for the same prefix, VPC and distance;
/// - a Peering exposing a prefix its VPC has no Subnet or Route for, or
///   two Peerings of the same pair of VPCs;
/// - two RateLimits on the same target and direction;
/// - two Vteps on one node with the same address and port;
/// - two BgpRouters for one VPC on a node; two BgpNeighbors of one router
///   with the same address.
pub fn validate_set(objects: &[Object]) -> Vec<ValidationError> {
    let mut errs = Vec::new();

    let mut seen: HashMap<(&str, &str), ()> = HashMap::new();
    for o in objects {
        if seen.insert((&o.kind, &o.metadata.name), ()).is_some() {
            errs.push(conflict(
                &o.kind,
                &o.metadata.name,
                "metadata.name",
                format!("{} {:?} appears more than once", o.kind, o.metadata.name),
                &o.kind,
                &o.metadata.name,
            ));
        }
    }

    let vpcs = typed::<VpcSpec>(objects);
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

    let ifs = typed::<InterfaceSpec>(objects);
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
    let if_by_name: HashMap<&str, &Of<InterfaceSpec>> =
        ifs.iter().map(|o| (o.meta.name.as_str(), o)).collect();

    let subnets = typed::<SubnetSpec>(objects);
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
        if let Some(ifo) = a.spec.interface.as_deref().and_then(|n| if_by_name.get(n)) {
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
            } else {
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
    }

    let routes = typed::<RouteSpec>(objects);
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

    let peerings = typed::<PeeringSpec>(objects);
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

    let limits = typed::<RateLimitSpec>(objects);
    for (i, a) in limits.iter().enumerate() {
        for b in &limits[..i] {
            if a.spec.target == b.spec.target && a.spec.direction.overlaps(b.spec.direction) {
                errs.push(conflict(
                    "RateLimit",
                    &a.meta.name,
                    "spec.target",
                    format!(
                        "RateLimit {} already limits {}/{} in direction {}",
                        b.meta.name,
                        a.spec.target.kind.as_str(),
                        a.spec.target.name,
                        b.spec.direction.as_str()
                    ),
                    "RateLimit",
                    &b.meta.name,
                ));
            }
        }
    }

    let vteps = typed::<VtepSpec>(objects);
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

    let routers = typed::<BgpRouterSpec>(objects);
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
    let mut by_router: BTreeMap<(&str, std::net::IpAddr), &str> = BTreeMap::new();
    let neighbors = typed::<BgpNeighborSpec>(objects);
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
    errs
}
