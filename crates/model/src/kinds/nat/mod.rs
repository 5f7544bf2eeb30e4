mod conflicts;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_family_cidr, check_prefix, check_ref, default_vpc, join, opt, NameRef};
use crate::cross::ObjectSet;
use crate::error::{Errors, ValidationError};
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
    /// IPv4 static one-to-one NAT: an inside prefix to an outside prefix
    /// of the same length, both directions, no ports.
    #[serde(rename = "one-to-one")]
    OneToOne,
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
            NatType::OneToOne => "one-to-one",
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

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Any => "any",
        })
    }
}

/// Which inbound packets an snat44 mapping lets through (RFC 4787).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    /// Any outside host may send to a mapping once it exists.
    EndpointIndependent,
    /// Only outside addresses the inside host has sent to (RFC 4787 REQ-8).
    #[default]
    AddressDependent,
}

impl std::fmt::Display for Filtering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Filtering::EndpointIndependent => "endpoint-independent",
            Filtering::AddressDependent => "address-dependent",
        })
    }
}

/// How an snat44 rule picks a pool address for an inside host (RFC 4787).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Every session of an inside address uses the same outside address
    /// (RFC 4787 REQ-2).
    #[default]
    Paired,
    /// Any pool address for any session.
    Arbitrary,
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pooling::Paired => "paired",
            Pooling::Arbitrary => "arbitrary",
        })
    }
}

/// Default UDP mapping timeout, seconds (RFC 4787 REQ-5).
pub const UDP_TIMEOUT: u32 = 300;
/// Default established TCP timeout, seconds (RFC 5382 REQ-5).
pub const TCP_ESTABLISHED_TIMEOUT: u32 = 7440;
/// Default transitory TCP timeout, seconds (RFC 5382).
pub const TCP_TRANSITORY_TIMEOUT: u32 = 240;
/// Default ICMP query timeout, seconds (RFC 5508 REQ-1).
pub const ICMP_TIMEOUT: u32 = 60;

fn udp_timeout() -> u32 {
    UDP_TIMEOUT
}
fn tcp_established_timeout() -> u32 {
    TCP_ESTABLISHED_TIMEOUT
}
fn tcp_transitory_timeout() -> u32 {
    TCP_TRANSITORY_TIMEOUT
}
fn icmp_timeout() -> u32 {
    ICMP_TIMEOUT
}

/// Idle timeouts of a rule's sessions, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatTimeouts {
    /// UDP mappings (default 300, RFC 4787 REQ-5).
    #[serde(default = "udp_timeout")]
    #[schemars(range(min = 1))]
    pub udp: u32,
    /// Established TCP connections (default 7440, RFC 5382 REQ-5).
    #[serde(default = "tcp_established_timeout")]
    #[schemars(range(min = 1))]
    pub tcp_established: u32,
    /// TCP connections opening or closing (default 240).
    #[serde(default = "tcp_transitory_timeout")]
    #[schemars(range(min = 1))]
    pub tcp_transitory: u32,
    /// ICMP query mappings (default 60, RFC 5508 REQ-1).
    #[serde(default = "icmp_timeout")]
    #[schemars(range(min = 1))]
    pub icmp: u32,
}

impl Default for NatTimeouts {
    fn default() -> Self {
        NatTimeouts {
            udp: UDP_TIMEOUT,
            tcp_established: TCP_ESTABLISHED_TIMEOUT,
            tcp_transitory: TCP_TRANSITORY_TIMEOUT,
            icmp: ICMP_TIMEOUT,
        }
    }
}

impl NatTimeouts {
    fn is_default(&self) -> bool {
        *self == NatTimeouts::default()
    }
}

/// Caps on a rule's sessions; 0 is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatLimits {
    /// Sessions of this rule.
    #[serde(default)]
    pub sessions: u32,
    /// Sessions per inside source address.
    #[serde(default)]
    pub sessions_per_source: u32,
}

impl NatLimits {
    fn is_default(&self) -> bool {
        *self == NatLimits::default()
    }
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatTranslate {
    /// The address pool, as CIDRs (a /32 or /128 is one address): for
    /// snat44 the pool (empty with `masquerade`), for dnat44 the inside
    /// server (one /32), for one-to-one the outside prefix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Cidr>,
    /// snat44 only: translate to the egress Interface's own IPv4 address
    /// (then `addresses` is empty and `interface` is required).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masquerade: bool,
    /// Ports to translate to. snat44: ports to allocate from (default
    /// 1024-65535 for inside ports from 1024, 1-1023 below). dnat44: the
    /// inside port, or a range the size of `match.ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
}

impl NatTranslate {
    /// The ports an snat44 rule allocates from for a session from
    /// `inside` port: `ports` if set, else the range `inside` is in
    /// (1-1023 or 1024-65535, RFC 4787 REQ-3).
    pub fn snat_ports(&self, inside: u16) -> PortRange {
        self.ports.unwrap_or(if inside < 1024 {
            PortRange {
                first: 1,
                last: 1023,
            }
        } else {
            PortRange {
                first: 1024,
                last: 65535,
            }
        })
    }
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
    /// Apply only to traffic leaving (snat44) or entering (dnat44,
    /// one-to-one) this Interface; required with `translate.masquerade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NameRef>")]
    pub interface: Option<String>,
    /// snat44 only: which inbound packets a mapping admits.
    #[serde(default)]
    pub filtering: Filtering,
    /// snat44 only: how pool addresses are assigned to inside hosts.
    #[serde(default)]
    pub pooling: Pooling,
    /// Session idle timeouts, seconds.
    #[serde(default, skip_serializing_if = "NatTimeouts::is_default")]
    pub timeouts: NatTimeouts,
    /// snat44 and dnat44 only: session caps.
    #[serde(default, skip_serializing_if = "NatLimits::is_default")]
    pub limits: NatLimits,
}

impl NatRuleSpec {
    /// A rule of `nat_type` in the default VPC matching everything, with
    /// nothing to translate to yet and every other field at its default.
    pub fn new(nat_type: NatType) -> Self {
        NatRuleSpec {
            vpc: default_vpc(),
            nat_type,
            matches: NatMatch::default(),
            translate: NatTranslate::default(),
            interface: None,
            filtering: Filtering::default(),
            pooling: Pooling::default(),
            timeouts: NatTimeouts::default(),
            limits: NatLimits::default(),
        }
    }
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

fn size(p: PortRange) -> u32 {
    u32::from(p.last) - u32::from(p.first) + 1
}

impl NatRuleSpec {
    fn check_snat44(&self, e: &mut Errors) {
        let tr = &self.translate;
        match (tr.addresses.is_empty(), tr.masquerade) {
            (true, false) => e.at(
                "translate.addresses",
                "snat44 needs a pool here or translate.masquerade: true",
            ),
            (false, true) => e.at(
                "translate.addresses",
                "must be empty with translate.masquerade: the egress Interface's own address is used",
            ),
            _ => {}
        }
        if tr.masquerade && self.interface.is_none() {
            e.at(
                "interface",
                "required with translate.masquerade: the egress Interface whose IPv4 address is used",
            );
        }
    }

    fn check_dnat44(&self, e: &mut Errors) {
        let (m, tr) = (&self.matches, &self.translate);
        if m.destination.is_empty() {
            e.at(
                "match.destination",
                "required for dnat44: the addresses being forwarded",
            );
        }
        match tr.addresses.as_slice() {
            [a] => {
                if a.is_ipv4() && a.prefix_len() != 32 {
                    e.at(
                        "translate.addresses[0]",
                        format!("dnat44 forwards to one inside server: expected a /32, got {a}"),
                    );
                }
            }
            list => e.at(
                "translate.addresses",
                format!(
                    "dnat44 forwards to exactly one inside server address (a /32), got {}",
                    list.len()
                ),
            ),
        }
        let Some(to) = tr.ports else { return };
        match m.ports {
            Some(from) => {
                if to.first != to.last && size(to) != size(from) {
                    e.at(
                        "translate.ports",
                        format!(
                            "must be one port or a range of the same size as match.ports {from} ({} ports), got {to} ({} ports)",
                            size(from),
                            size(to)
                        ),
                    );
                }
            }
            None => {
                if to.first != to.last {
                    e.at(
                        "translate.ports",
                        format!("must be a single port when match.ports is not set, got {to}"),
                    );
                }
            }
        }
    }

    fn check_one_to_one(&self, e: &mut Errors) {
        let (m, tr) = (&self.matches, &self.translate);
        if m.source.len() != 1 {
            e.at(
                "match.source",
                format!(
                    "one-to-one needs exactly one inside prefix, got {}",
                    m.source.len()
                ),
            );
        }
        if tr.addresses.len() != 1 {
            e.at(
                "translate.addresses",
                format!(
                    "one-to-one needs exactly one outside prefix, got {}",
                    tr.addresses.len()
                ),
            );
        }
        if let ([inside], [outside]) = (m.source.as_slice(), tr.addresses.as_slice()) {
            if inside.prefix_len() != outside.prefix_len() {
                e.at(
                    "translate.addresses[0]",
                    format!(
                        "must have the length of match.source {inside} (/{}), got {outside}",
                        inside.prefix_len()
                    ),
                );
            }
        }
        if m.ports.is_some() {
            e.at(
                "match.ports",
                "one-to-one translates whole addresses: ports do not apply",
            );
        }
        if tr.ports.is_some() {
            e.at(
                "translate.ports",
                "one-to-one translates whole addresses: ports do not apply",
            );
        }
    }

    /// Fields that apply only to some types, with non-default values on
    /// another type.
    fn check_applicable(&self, e: &mut Errors) {
        let t = self.nat_type;
        let snat = t == NatType::Snat44;
        if !snat && self.filtering != Filtering::default() {
            e.at(
                "filtering",
                format!(
                    "applies only to snat44, not to {t} (got {})",
                    self.filtering
                ),
            );
        }
        if !snat && self.pooling != Pooling::default() {
            e.at(
                "pooling",
                format!("applies only to snat44, not to {t} (got {})", self.pooling),
            );
        }
        if !snat && self.translate.masquerade {
            e.at(
                "translate.masquerade",
                format!("applies only to snat44, not to {t}"),
            );
        }
        if !matches!(t, NatType::Snat44 | NatType::Dnat44) && !self.limits.is_default() {
            e.at(
                "limits",
                format!("applies only to snat44 and dnat44, not to {t}"),
            );
        }
    }
}

impl Spec for NatRuleSpec {
    const PLURAL: &'static str = "natrules";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }

    fn conflict_group(&self) -> Option<String> {
        conflicts::group(self)
    }
    const COLUMNS: &'static [&'static str] = &["VPC", "TYPE", "MATCH", "TRANSLATE"];

    fn validate(&self, e: &mut Errors) {
        use Family::{V4, V6};
        check_ref(e, "vpc", &self.vpc);
        let t = self.nat_type;
        let (src, dst, to) = match t {
            NatType::Snat44 | NatType::Dnat44 | NatType::OneToOne => (V4, V4, V4),
            NatType::Nat66 => (V6, V6, V6),
            NatType::Nat64 => (V6, V6, V4),
        };
        let m = &self.matches;
        let because = format!("spec.type is {t}");
        fam_list(e, "match.source", &m.source, src, &because);
        fam_list(e, "match.destination", &m.destination, dst, &because);
        fam_list(
            e,
            "translate.addresses",
            &self.translate.addresses,
            to,
            &because,
        );
        match t {
            NatType::Snat44 => self.check_snat44(e),
            NatType::Dnat44 => self.check_dnat44(e),
            NatType::OneToOne => self.check_one_to_one(e),
            NatType::Nat66 | NatType::Nat64 => {
                if self.translate.addresses.is_empty() {
                    e.at(
                        "translate.addresses",
                        "at least one address or pool is required",
                    );
                }
            }
        }
        self.check_applicable(e);
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
        let tm = &self.timeouts;
        for (field, v) in [
            ("timeouts.udp", tm.udp),
            ("timeouts.tcpEstablished", tm.tcp_established),
            ("timeouts.tcpTransitory", tm.tcp_transitory),
            ("timeouts.icmp", tm.icmp),
        ] {
            if v == 0 {
                e.at(field, "must be at least 1 second, got 0");
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
            parts.push(p.to_string());
        }
        if let Some(p) = m.ports {
            parts.push(format!("port {p}"));
        }
        if let Some(i) = &self.interface {
            parts.push(match self.nat_type {
                NatType::Snat44 => format!("out {i}"),
                _ => format!("in {i}"),
            });
        }
        let tr = &self.translate;
        let mut to = if tr.masquerade {
            "masquerade".to_string()
        } else if tr.addresses.is_empty() {
            opt::<String>(&None)
        } else {
            join(&tr.addresses, ",")
        };
        if let Some(p) = tr.ports {
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
