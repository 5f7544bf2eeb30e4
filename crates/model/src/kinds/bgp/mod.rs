mod conflicts;

use std::net::{IpAddr, Ipv4Addr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_prefix, check_ref, check_unicast, default_vpc, join, NameRef};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::{Cidr, IpSchema, Ipv4Schema};
use crate::registry::Spec;

/// Route sources a BGP router can redistribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Redistribute {
    Connected,
    Static,
}

/// Longest TCP MD5 password, in characters.
pub const MAX_PASSWORD: usize = 80;

/// AS_TRANS (RFC 6793), reserved.
pub const AS_TRANS: u32 = 23456;

fn check_asn(e: &mut Errors, path: &str, asn: u32) {
    if asn == 0 {
        e.at(path, "must be between 1 and 4294967295, got 0");
    } else if asn == AS_TRANS {
        e.at(path, "23456 is AS_TRANS (RFC 6793) and cannot be used");
    }
}

/// A BGP speaker in one VPC (rendered into FRR's bgpd).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpRouterSpec {
    #[schemars(range(min = 1), extend("not" = {"const": AS_TRANS}))]
    pub asn: u32,
    #[schemars(with = "Ipv4Schema")]
    pub router_id: Ipv4Addr,
    #[serde(default = "default_vpc")]
    #[schemars(with = "NameRef")]
    pub vpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<IpSchema>")]
    pub listen_address: Option<IpAddr>,
    /// Prefixes to originate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Cidr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true))]
    pub redistribute: Vec<Redistribute>,
}

impl KindSpec for BgpRouterSpec {
    const KIND: &'static str = "BgpRouter";
}

impl Spec for BgpRouterSpec {
    const PLURAL: &'static str = "bgprouters";
    const READS: &'static [&'static str] = conflicts::ROUTER_READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check_routers(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["ASN", "ROUTER-ID", "VPC", "NETWORKS"];

    fn validate(&self, e: &mut Errors) {
        check_asn(e, "asn", self.asn);
        if self.router_id.is_unspecified()
            || self.router_id.is_broadcast()
            || self.router_id.is_multicast()
        {
            e.at(
                "routerId",
                format!("{} cannot be a router id", self.router_id),
            );
        }
        check_ref(e, "vpc", &self.vpc);
        if let Some(a) = self.listen_address {
            check_unicast(e, "listenAddress", a);
        }
        for (i, n) in self.networks.iter().enumerate() {
            check_prefix(e, &format!("networks[{i}]"), n);
            if self.networks[..i].contains(n) {
                e.at(format!("networks[{i}]"), format!("{n} is listed twice"));
            }
        }
        for (i, r) in self.redistribute.iter().enumerate() {
            if self.redistribute[..i].contains(r) {
                e.at(
                    format!("redistribute[{i}]"),
                    format!("{r:?} is listed twice").to_lowercase(),
                );
            }
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        vec![ObjectRef::new("Vpc", &self.vpc)]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.asn.to_string(),
            self.router_id.to_string(),
            self.vpc.clone(),
            if self.networks.is_empty() {
                "-".into()
            } else {
                join(&self.networks, ",")
            },
        ]
    }
}

/// Address families a BGP session negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AddressFamily {
    Ipv4Unicast,
    Ipv6Unicast,
    L2vpnEvpn,
}

/// A BGP peer of a BgpRouter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BgpNeighborSpec {
    /// The BgpRouter this session belongs to.
    #[schemars(with = "NameRef")]
    pub router: String,
    #[schemars(with = "IpSchema")]
    pub address: IpAddr,
    #[schemars(range(min = 1), extend("not" = {"const": AS_TRANS}))]
    pub remote_as: u32,
    /// TCP MD5 password (at most 80 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_PASSWORD))]
    pub password: Option<String>,
    #[serde(default)]
    pub bfd: bool,
    /// Seconds; 0 disables keepalives, else at least 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("not" = {"enum": [1, 2]}))]
    pub hold_time: Option<u16>,
    /// Seconds; below holdTime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub keepalive: Option<u16>,
    /// Negotiated families; the neighbour address's unicast family when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true))]
    pub address_families: Vec<AddressFamily>,
}

impl KindSpec for BgpNeighborSpec {
    const KIND: &'static str = "BgpNeighbor";
}

impl Spec for BgpNeighborSpec {
    const PLURAL: &'static str = "bgpneighbors";
    const READS: &'static [&'static str] = conflicts::NEIGHBOR_READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check_neighbors(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["ROUTER", "ADDRESS", "REMOTE-AS", "BFD"];

    fn validate(&self, e: &mut Errors) {
        check_ref(e, "router", &self.router);
        check_unicast(e, "address", self.address);
        check_asn(e, "remoteAs", self.remote_as);
        if let Some(p) = &self.password {
            if p.is_empty() || p.chars().count() > MAX_PASSWORD {
                e.at(
                    "password",
                    format!("must be 1 to {MAX_PASSWORD} characters (TCP MD5 key)"),
                );
            }
        }
        if let Some(h) = self.hold_time {
            if h > 0 && h < 3 {
                e.at(
                    "holdTime",
                    format!("must be 0 or at least 3 seconds (RFC 4271), got {h}"),
                );
            }
        }
        if let Some(k) = self.keepalive {
            if k == 0 {
                e.at("keepalive", "must be at least 1 second");
            } else if let Some(h) = self.hold_time.filter(|h| *h > 0) {
                if k >= h {
                    e.at(
                        "keepalive",
                        format!("must be less than spec.holdTime ({h}), got {k}"),
                    );
                }
            }
        }
        for (i, f) in self.address_families.iter().enumerate() {
            if self.address_families[..i].contains(f) {
                e.at(format!("addressFamilies[{i}]"), "listed twice");
            }
        }
    }

    fn normalize(&mut self) {
        if self.address_families.is_empty() {
            self.address_families.push(if self.address.is_ipv4() {
                AddressFamily::Ipv4Unicast
            } else {
                AddressFamily::Ipv6Unicast
            });
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        vec![ObjectRef::new("BgpRouter", &self.router)]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.router.clone(),
            self.address.to_string(),
            self.remote_as.to_string(),
            if self.bfd { "yes".into() } else { "no".into() },
        ]
    }
}
