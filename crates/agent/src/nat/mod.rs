//! NatRule objects: NAT44 rules of a VPC in the dataplane's `nat44`
//! module. A rule keeps its dataplane id across updates (by name), so a
//! change of timers or caps keeps its sessions. nat64 and nat66 rules are
//! refused: this gateway does not translate between families yet.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use weir_dataplane::modules::nat44::{Action, Filtering, Ports, Prefix4, Rule, Timeouts};
use weir_dataplane::{Nat44, NatError};
use weir_model::{key, Cidr, NatRuleSpec, NatType, Pooling, PortRange, Protocol};
use weir_reconcile::Dependency;

use crate::kind::{vpc_dependency, Apply};
use crate::{Agent, AgentError};

pub struct NatRule;

/// Most addresses an snat44 pool may hold.
pub const MAX_POOL: u64 = 65536;

impl Apply for NatRule {
    type Spec = NatRuleSpec;
    type Metadata = ();

    fn dependencies(s: &NatRuleSpec) -> Vec<Dependency> {
        let mut d: Vec<Dependency> = vpc_dependency(&s.vpc).into_iter().collect();
        if let Some(i) = &s.interface {
            d.push(Dependency::key(key("Interface", i)));
        }
        d
    }

    fn create(agent: &mut Agent, name: &str, spec: &NatRuleSpec) -> Result<(), AgentError> {
        let rule = rule_of(agent, name, spec)?;
        set(agent, name, rule)
    }

    fn update(
        agent: &mut Agent,
        name: &str,
        _old: &NatRuleSpec,
        new: &NatRuleSpec,
        _: &mut (),
    ) -> Result<(), AgentError> {
        let rule = rule_of(agent, name, new)?;
        set(agent, name, rule)
    }

    fn delete(
        agent: &mut Agent,
        name: &str,
        _spec: &NatRuleSpec,
        _: &(),
    ) -> Result<(), AgentError> {
        match Nat44::remove_rule(&mut agent.control, name) {
            Ok(_) | Err(NatError::NoRule(_)) => Ok(()),
            Err(e) => Err(AgentError::Invalid(e.to_string())),
        }
    }
}

fn set(agent: &mut Agent, name: &str, rule: Rule) -> Result<(), AgentError> {
    Nat44::set_rule(&mut agent.control, name, rule)
        .map(|_| ())
        .map_err(|e| AgentError::Invalid(e.to_string()))
}

/// Why a rule of this type is not applied here, if it is not.
pub fn unsupported(t: NatType) -> Option<String> {
    matches!(t, NatType::Nat64 | NatType::Nat66)
        .then(|| format!("{t} rules are not supported on this gateway yet"))
}

/// The dataplane rule for `spec`.
pub fn rule_of(agent: &Agent, name: &str, spec: &NatRuleSpec) -> Result<Rule, AgentError> {
    if let Some(why) = unsupported(spec.nat_type) {
        return Err(AgentError::Invalid(why));
    }
    let vrf = agent.vrf_of(&spec.vpc)?;
    let port = spec
        .interface
        .as_deref()
        .map(|i| agent.port_of(i))
        .transpose()?;
    let (m, tr) = (&spec.matches, &spec.translate);
    let mut src = prefixes("match.source", &m.source)?;
    let dst = prefixes("match.destination", &m.destination)?;
    let first = |what: &str| -> Result<Prefix4, AgentError> {
        match tr.addresses.first() {
            Some(c) => prefix("translate.addresses[0]", c),
            None => Err(AgentError::Invalid(format!(
                "{} needs translate.addresses ({what})",
                spec.nat_type
            ))),
        }
    };
    let action = match spec.nat_type {
        NatType::Snat44 => Action::Snat {
            pool: if tr.masquerade {
                if port.is_none() {
                    return Err(AgentError::Invalid(
                        "translate.masquerade needs an interface".into(),
                    ));
                }
                Vec::new()
            } else {
                pool(&tr.addresses)?
            },
            ports: tr.ports.map(ports),
            filtering: match spec.filtering {
                weir_model::Filtering::EndpointIndependent => Filtering::EndpointIndependent,
                weir_model::Filtering::AddressDependent => Filtering::AddressDependent,
            },
            paired: spec.pooling == Pooling::Paired,
        },
        NatType::Dnat44 => Action::Dnat {
            to: first("the inside server")?.net,
            ports: tr.ports.map(ports),
        },
        NatType::OneToOne => {
            let inside = match m.source.as_slice() {
                [c] => prefix("match.source[0]", c)?,
                l => {
                    return Err(AgentError::Invalid(format!(
                        "one-to-one needs exactly one match.source prefix, got {}",
                        l.len()
                    )))
                }
            };
            src.clear();
            Action::OneToOne {
                inside,
                outside: first("the outside prefix")?,
            }
        }
        NatType::Nat64 | NatType::Nat66 => unreachable!("refused above"),
    };
    Ok(Rule {
        name: name.to_string(),
        vrf,
        port,
        src,
        dst,
        proto: m.protocol.and_then(protocol),
        dports: m.ports.map(ports),
        action,
        timeouts: Timeouts {
            udp: spec.timeouts.udp,
            tcp_established: spec.timeouts.tcp_established,
            tcp_transitory: spec.timeouts.tcp_transitory,
            icmp: spec.timeouts.icmp,
        },
        max_sessions: spec.limits.sessions,
        max_per_source: spec.limits.sessions_per_source,
    })
}

/// The IP protocol number; None for any.
pub fn protocol(p: Protocol) -> Option<u8> {
    match p {
        Protocol::Tcp => Some(6),
        Protocol::Udp => Some(17),
        Protocol::Icmp => Some(1),
        Protocol::Any => None,
    }
}

fn ports(p: PortRange) -> Ports {
    Ports {
        first: p.first,
        last: p.last,
    }
}

fn v4(path: &str, c: &Cidr) -> Result<(Ipv4Addr, u8), AgentError> {
    match (c.network(), c.addr()) {
        (IpNet::V4(n), IpAddr::V4(_)) => Ok((n.network(), n.prefix_len())),
        _ => Err(AgentError::Invalid(format!(
            "{path}: {} is not an IPv4 prefix",
            c.net()
        ))),
    }
}

fn prefix(path: &str, c: &Cidr) -> Result<Prefix4, AgentError> {
    let (a, len) = v4(path, c)?;
    Ok(Prefix4::new(u32::from(a), len))
}

fn prefixes(path: &str, list: &[Cidr]) -> Result<Vec<Prefix4>, AgentError> {
    list.iter()
        .enumerate()
        .map(|(i, c)| prefix(&format!("{path}[{i}]"), c))
        .collect()
}

/// Every address of the pool's CIDRs, in order, each once.
fn pool(list: &[Cidr]) -> Result<Vec<u32>, AgentError> {
    let prefixes = prefixes("translate.addresses", list)?;
    let total: u64 = prefixes.iter().map(|p| p.size()).sum();
    if total > MAX_POOL {
        return Err(AgentError::Invalid(format!(
            "translate.addresses: a pool of {total} addresses is more than the {MAX_POOL} this gateway takes"
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(total as usize);
    let mut out: Vec<u32> = Vec::with_capacity(total as usize);
    for p in prefixes {
        for i in 0..p.size() {
            let a = p.net.wrapping_add(i as u32);
            if seen.insert(a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}
