//! NatRules of one VPC (on a node they share) that would translate the
//! same packets or hand out the same addresses: overlapping snat44 pools,
//! two rules of one type that both match some packet, and one-to-one
//! rules whose inside or outside prefixes overlap. An snat44 pool may
//! overlap a dnat44 destination (masquerade and port forwarding on one
//! public address).

use super::{NatRuleSpec, NatType, Protocol};
use crate::cross::{conflict, ObjectSet, Of};
use crate::error::ValidationError;
use crate::net::{Cidr, PortRange};

pub(super) const READS: &[&str] = &[];

/// NatRules conflict only within their VPC, so a write of a NatRule needs
/// only its VPC's rules.
pub(super) fn group(r: &NatRuleSpec) -> Option<String> {
    Some(r.vpc.clone())
}

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let rules = set.of::<NatRuleSpec>();
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[..i] {
            if a.spec.vpc == b.spec.vpc && a.meta.shares_node_with(b.meta) {
                pair(a, b, errs);
            }
        }
    }
}

fn err(
    a: &Of<'_, NatRuleSpec>,
    b: &Of<'_, NatRuleSpec>,
    field: &str,
    reason: String,
) -> ValidationError {
    conflict(
        "NatRule",
        &a.meta.name,
        field,
        reason,
        "NatRule",
        &b.meta.name,
    )
}

fn pair(a: &Of<'_, NatRuleSpec>, b: &Of<'_, NatRuleSpec>, errs: &mut Vec<ValidationError>) {
    let (x, y) = (&a.spec, &b.spec);
    if x.nat_type != y.nat_type {
        return;
    }
    let vpc = &x.vpc;
    match x.nat_type {
        NatType::OneToOne => {
            if let Some((p, q)) = first_overlap(&x.matches.source, &y.matches.source) {
                errs.push(err(
                    a,
                    b,
                    "spec.match.source",
                    format!(
                        "inside prefix {p} overlaps {q} of one-to-one NatRule {} in Vpc {vpc}",
                        b.meta.name
                    ),
                ));
            }
            if let Some((p, q)) = first_overlap(&x.translate.addresses, &y.translate.addresses) {
                errs.push(err(
                    a,
                    b,
                    "spec.translate.addresses",
                    format!(
                        "outside prefix {p} overlaps {q} of one-to-one NatRule {} in Vpc {vpc}",
                        b.meta.name
                    ),
                ));
            }
            return;
        }
        NatType::Snat44 => {
            if let Some((p, q)) = first_overlap(&x.translate.addresses, &y.translate.addresses) {
                errs.push(err(
                    a,
                    b,
                    "spec.translate.addresses",
                    format!(
                        "pool {p} overlaps {q} in the pool of NatRule {} in Vpc {vpc}",
                        b.meta.name
                    ),
                ));
            }
        }
        NatType::Dnat44 | NatType::Nat66 | NatType::Nat64 => {}
    }
    if let Some(both) = common_match(x, y) {
        errs.push(err(
            a,
            b,
            "spec.match",
            format!(
                "NatRule {} in Vpc {vpc} would match the same packets: both match {both}",
                b.meta.name
            ),
        ));
    }
}

/// The first pair of networks, one from each list, that share an address.
fn first_overlap<'c>(a: &'c [Cidr], b: &'c [Cidr]) -> Option<(&'c Cidr, &'c Cidr)> {
    a.iter()
        .flat_map(|p| b.iter().map(move |q| (p, q)))
        .find(|(p, q)| p.overlaps(q))
}

/// Whether two address matches share an address (an empty list is any),
/// with a network both match (`None`: any).
fn common_addrs(a: &[Cidr], b: &[Cidr]) -> Option<Option<Cidr>> {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Some(None),
        (true, false) => Some(Some(b[0])),
        (false, true) => Some(Some(a[0])),
        (false, false) => first_overlap(a, b).map(|(p, q)| {
            Some(if p.prefix_len() >= q.prefix_len() {
                *p
            } else {
                *q
            })
        }),
    }
}

/// Whether two protocol matches share a protocol (absent or any is every
/// protocol), with the protocol both match (`None`: any).
fn common_protocol(a: Option<Protocol>, b: Option<Protocol>) -> Option<Option<Protocol>> {
    let a = a.filter(|p| *p != Protocol::Any);
    let b = b.filter(|p| *p != Protocol::Any);
    match (a, b) {
        (None, other) | (other, None) => Some(other),
        (Some(p), Some(q)) => (p == q).then_some(Some(p)),
    }
}

/// Whether two port matches share a port (absent is every port), with
/// the ports both match (`None`: any).
fn common_ports(a: Option<PortRange>, b: Option<PortRange>) -> Option<Option<PortRange>> {
    match (a, b) {
        (None, other) | (other, None) => Some(other),
        (Some(p), Some(q)) => {
            let first = p.first.max(q.first);
            let last = p.last.min(q.last);
            (first <= last).then_some(Some(PortRange { first, last }))
        }
    }
}

/// What both rules match, described, if some packet matches both.
fn common_match(x: &NatRuleSpec, y: &NatRuleSpec) -> Option<String> {
    let interface = match (&x.interface, &y.interface) {
        (Some(i), Some(j)) if i != j => return None,
        (i, j) => i.as_ref().or(j.as_ref()),
    };
    let src = common_addrs(&x.matches.source, &y.matches.source)?;
    let dst = common_addrs(&x.matches.destination, &y.matches.destination)?;
    let proto = common_protocol(x.matches.protocol, y.matches.protocol)?;
    let ports = common_ports(x.matches.ports, y.matches.ports)?;
    let mut parts = Vec::new();
    if let Some(s) = src {
        parts.push(format!("src {s}"));
    }
    if let Some(d) = dst {
        parts.push(format!("dst {d}"));
    }
    if let Some(p) = proto {
        parts.push(p.to_string());
    }
    if let Some(p) = ports {
        parts.push(format!("port {p}"));
    }
    if parts.is_empty() {
        parts.push("every packet".into());
    }
    if let Some(i) = interface {
        parts.push(match x.nat_type {
            NatType::Snat44 => format!("leaving Interface {i}"),
            _ => format!("arriving on Interface {i}"),
        });
    }
    Some(parts.join(" "))
}
