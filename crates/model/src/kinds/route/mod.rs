mod conflicts;

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    check_family, check_prefix, check_ref, check_unicast, default_vpc, is_ipv6_link_local, opt,
    NameRef,
};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::{Cidr, IpSchema};
use crate::registry::Spec;

/// Largest ECMP group.
pub const MAX_ECMP: usize = 64;

/// A gateway to forward through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextHop {
    #[schemars(with = "IpSchema")]
    pub address: IpAddr,
    /// Interface to reach it through (required for IPv6 link-local next hops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NameRef>")]
    pub interface: Option<String>,
}

impl std::fmt::Display for NextHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.interface {
            Some(i) => write!(f, "{}%{i}", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// What a `reject` route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RejectKind {
    /// ICMP destination unreachable (network unreachable).
    Unreachable,
    /// ICMP administratively prohibited.
    Prohibit,
}

/// A static route. Exactly one of `nextHop`, `nextHops`, `interface`,
/// `blackhole` and `reject` says where matching packets go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["nextHop"]},
    {"required": ["nextHops"]},
    {"required": ["interface"]},
    {"required": ["blackhole"]},
    {"required": ["reject"]}
]))]
pub struct RouteSpec {
    #[serde(default = "default_vpc")]
    #[schemars(with = "NameRef")]
    pub vpc: String,
    /// Destination network (no host bits).
    pub prefix: Cidr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHop>,
    /// Equal-cost next hops (1 to 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_ECMP), extend("uniqueItems" = true))]
    pub next_hops: Option<Vec<NextHop>>,
    /// Directly attached: destinations are on-link on this Interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NameRef>")]
    pub interface: Option<String>,
    /// Silently drop matching packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("const" = true))]
    pub blackhole: Option<bool>,
    /// Drop matching packets and answer with an ICMP error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<RejectKind>,
    /// Administrative distance; lower wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub distance: Option<u8>,
}

/// Where a route sends packets, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget<'a> {
    NextHop(&'a NextHop),
    Ecmp(&'a [NextHop]),
    Attached(&'a str),
    Blackhole,
    Reject(RejectKind),
}

impl RouteSpec {
    /// A route with only a prefix in the default VPC (add a target).
    pub fn new(prefix: Cidr) -> Self {
        RouteSpec {
            vpc: default_vpc(),
            prefix,
            next_hop: None,
            next_hops: None,
            interface: None,
            blackhole: None,
            reject: None,
            distance: None,
        }
    }

    /// The target; `None` unless exactly one is set (validation ensures it).
    pub fn target(&self) -> Option<RouteTarget<'_>> {
        let all = self.targets_set();
        if all.len() != 1 {
            return None;
        }
        Some(if let Some(n) = &self.next_hop {
            RouteTarget::NextHop(n)
        } else if let Some(n) = &self.next_hops {
            RouteTarget::Ecmp(n)
        } else if let Some(i) = &self.interface {
            RouteTarget::Attached(i)
        } else if let Some(r) = self.reject {
            RouteTarget::Reject(r)
        } else {
            RouteTarget::Blackhole
        })
    }

    fn targets_set(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.next_hop.is_some() {
            v.push("nextHop");
        }
        if self.next_hops.is_some() {
            v.push("nextHops");
        }
        if self.interface.is_some() {
            v.push("interface");
        }
        if self.blackhole.is_some() {
            v.push("blackhole");
        }
        if self.reject.is_some() {
            v.push("reject");
        }
        v
    }

    fn check_next_hop(&self, e: &mut Errors, path: &str, nh: &NextHop) {
        let fam = self.prefix.family();
        let ap = format!("{path}.address");
        if crate::net::Family::of(nh.address) != fam {
            check_family(e, &ap, nh.address, fam, "spec.prefix");
        } else {
            check_unicast(e, &ap, nh.address);
            if is_ipv6_link_local(nh.address) && nh.interface.is_none() {
                e.at(
                    format!("{path}.interface"),
                    format!("required because {} is a link-local address", nh.address),
                );
            }
        }
        if let Some(i) = &nh.interface {
            check_ref(e, &format!("{path}.interface"), i);
        }
    }
}

impl KindSpec for RouteSpec {
    const KIND: &'static str = "Route";
}

impl Spec for RouteSpec {
    const PLURAL: &'static str = "routes";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }

    fn conflict_group(&self) -> Option<String> {
        conflicts::group(self)
    }
    const COLUMNS: &'static [&'static str] = &["VPC", "PREFIX", "NEXTHOP"];

    fn validate(&self, e: &mut Errors) {
        check_ref(e, "vpc", &self.vpc);
        check_prefix(e, "prefix", &self.prefix);
        let set = self.targets_set();
        match set.len() {
            0 => e.at(
                "",
                "exactly one of nextHop, nextHops, interface, blackhole or reject is required, got none",
            ),
            1 => {}
            _ => e.at(
                set[1],
                format!(
                    "exactly one of nextHop, nextHops, interface, blackhole or reject is allowed, got {}",
                    set.join(" and ")
                ),
            ),
        }
        if let Some(nh) = &self.next_hop {
            self.check_next_hop(e, "nextHop", nh);
        }
        if let Some(nhs) = &self.next_hops {
            if nhs.is_empty() || nhs.len() > MAX_ECMP {
                e.at(
                    "nextHops",
                    format!("must list 1 to {MAX_ECMP} next hops, got {}", nhs.len()),
                );
            }
            for (i, nh) in nhs.iter().enumerate() {
                self.check_next_hop(e, &format!("nextHops[{i}]"), nh);
                if nhs[..i].contains(nh) {
                    e.at(
                        format!("nextHops[{i}]"),
                        format!("next hop {nh} is listed twice"),
                    );
                }
            }
        }
        if let Some(i) = &self.interface {
            check_ref(e, "interface", i);
        }
        if self.blackhole == Some(false) {
            e.at(
                "blackhole",
                "must be true when given; omit it and name another target",
            );
        }
        if self.distance == Some(0) {
            e.at(
                "distance",
                "must be between 1 and 255, got 0 (0 is reserved for connected routes)",
            );
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        let mut r = vec![ObjectRef::new("Vpc", &self.vpc)];
        let mut ifs: Vec<&String> = Vec::new();
        ifs.extend(self.interface.iter());
        ifs.extend(self.next_hop.iter().filter_map(|n| n.interface.as_ref()));
        ifs.extend(
            self.next_hops
                .iter()
                .flatten()
                .filter_map(|n| n.interface.as_ref()),
        );
        for i in ifs {
            let x = ObjectRef::new("Interface", i);
            if !r.contains(&x) {
                r.push(x);
            }
        }
        r
    }

    fn row(&self) -> Vec<String> {
        let nh = match self.target() {
            Some(RouteTarget::NextHop(n)) => n.to_string(),
            Some(RouteTarget::Ecmp(n)) => super::join(n, ","),
            Some(RouteTarget::Attached(i)) => format!("dev {i}"),
            Some(RouteTarget::Blackhole) => "blackhole".into(),
            Some(RouteTarget::Reject(RejectKind::Unreachable)) => "unreachable".into(),
            Some(RouteTarget::Reject(RejectKind::Prohibit)) => "prohibit".into(),
            None => opt::<String>(&None),
        };
        vec![self.vpc.clone(), self.prefix.to_string(), nh]
    }
}
