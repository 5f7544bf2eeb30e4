use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_family_cidr, check_prefix, check_ref, default_vpc, join, opt, NameRef};
use crate::error::Errors;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::{Cidr, Family, PortRange};
use crate::registry::Spec;

/// The translation a rule performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NatType {
    /// IPv4 source NAT (masquerade to a pool).
    Snat44,
    /// IPv4 destination NAT (port forwarding, load balancing).
    Dnat44,
    /// IPv6-to-IPv6 prefix translation.
    Nat66,
    /// Stateful NAT64: IPv6 clients reach IPv4 servers.
    Nat64,
}

impl std::fmt::Display for NatType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NatType::Snat44 => "snat44",
            NatType::Dnat44 => "dnat44",
            NatType::Nat66 => "nat66",
            NatType::Nat64 => "nat64",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Any,
}

/// Which packets the rule applies to; an empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatMatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<Cidr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination: Vec<Cidr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Destination ports (tcp or udp only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
}

/// What matching packets are translated to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatTranslate {
    /// The address pool, as CIDRs (a /32 or /128 is one address).
    #[schemars(length(min = 1))]
    pub addresses: Vec<Cidr>,
    /// Port range to translate to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
}

/// A NAT rule in a VPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatRuleSpec {
    #[serde(default = "default_vpc")]
    #[schemars(with = "NameRef")]
    pub vpc: String,
    #[serde(rename = "type")]
    pub nat_type: NatType,
    #[serde(rename = "match", default)]
    pub matches: NatMatch,
    pub translate: NatTranslate,
    /// Apply only to traffic leaving (snat) or entering (dnat) this Interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NameRef>")]
    pub interface: Option<String>,
}

impl KindSpec for NatRuleSpec {
    const KIND: &'static str = "NatRule";
}

fn fam_list(e: &mut Errors, path: &str, list: &[Cidr], want: Family, because: &str) {
    for (i, c) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        check_prefix(e, &p, c);
        check_family_cidr(e, &p, c, want, because);
    }
}

impl Spec for NatRuleSpec {
    const PLURAL: &'static str = "natrules";
    const COLUMNS: &'static [&'static str] = &["VPC", "TYPE", "MATCH", "TRANSLATE"];

    fn validate(&self, e: &mut Errors) {
        use Family::{V4, V6};
        check_ref(e, "vpc", &self.vpc);
        let t = self.nat_type;
        let (src, dst, to) = match t {
            NatType::Snat44 | NatType::Dnat44 => (V4, V4, V4),
            NatType::Nat66 => (V6, V6, V6),
            NatType::Nat64 => (V6, V6, V4),
        };
        let m = &self.matches;
        fam_list(
            e,
            "match.source",
            &m.source,
            src,
            &format!("spec.type is {t}"),
        );
        fam_list(
            e,
            "match.destination",
            &m.destination,
            dst,
            &format!("spec.type is {t}"),
        );
        fam_list(
            e,
            "translate.addresses",
            &self.translate.addresses,
            to,
            &format!("spec.type is {t}"),
        );
        if self.translate.addresses.is_empty() {
            e.at(
                "translate.addresses",
                "at least one address or pool is required",
            );
        }
        if t == NatType::Dnat44 && m.destination.is_empty() {
            e.at(
                "match.destination",
                "required for dnat44: the addresses being forwarded",
            );
        }
        if t == NatType::Nat64 {
            if m.destination.is_empty() {
                e.at(
                    "match.destination",
                    "required for nat64: the NAT64 prefix, e.g. 64:ff9b::/96",
                );
            }
            for (i, d) in m.destination.iter().enumerate() {
                if d.family() == V6 && ![32, 40, 48, 56, 64, 96].contains(&d.prefix_len()) {
                    e.at(
                        format!("match.destination[{i}]"),
                        format!("a NAT64 prefix must be /32, /40, /48, /56, /64 or /96 (RFC 6052), got /{}", d.prefix_len()),
                    );
                }
            }
        }
        if m.ports.is_some() && !matches!(m.protocol, Some(Protocol::Tcp | Protocol::Udp)) {
            e.at("match.ports", "ports need match.protocol tcp or udp");
        }
        if let Some(p) = self.translate.ports {
            if p.first == 0 {
                e.at("translate.ports", "port 0 cannot be translated to");
            }
            if t == NatType::Nat66 {
                e.at("translate.ports", "nat66 translates prefixes, not ports");
            }
        }
        if let Some(i) = &self.interface {
            check_ref(e, "interface", i);
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        let mut r = vec![ObjectRef::new("Vpc", &self.vpc)];
        if let Some(i) = &self.interface {
            r.push(ObjectRef::new("Interface", i));
        }
        r
    }

    fn row(&self) -> Vec<String> {
        let m = &self.matches;
        let mut parts = Vec::new();
        if !m.source.is_empty() {
            parts.push(format!("src {}", join(&m.source, ",")));
        }
        if !m.destination.is_empty() {
            parts.push(format!("dst {}", join(&m.destination, ",")));
        }
        if let Some(p) = m.protocol {
            parts.push(format!("{p:?}").to_lowercase());
        }
        if let Some(p) = m.ports {
            parts.push(format!("port {p}"));
        }
        let mut to = join(&self.translate.addresses, ",");
        if let Some(p) = self.translate.ports {
            to.push_str(&format!(":{p}"));
        }
        vec![
            self.vpc.clone(),
            self.nat_type.to_string(),
            if parts.is_empty() {
                opt::<String>(&None)
            } else {
                parts.join(" ")
            },
            to,
        ]
    }
}
