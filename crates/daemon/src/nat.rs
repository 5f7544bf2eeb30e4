//! NAT44 sessions and counters as the API gives them (`GET /v1/sessions`
//! and the `nat` part of `GET /v1/stats`).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde_json::{json, Value};
use weir_agent::Agent;
use weir_api::{ApiError, Detail};
use weir_dataplane::modules::nat44::store::state;
use weir_dataplane::modules::nat44::{Nat44Table, SessionView};
use weir_dataplane::Nat44;

/// Sessions shown unless `?limit=` says otherwise.
pub const DEFAULT_LIMIT: usize = 1000;

/// What `GET /v1/sessions` is asked for.
#[derive(Debug, Default, PartialEq)]
pub struct Filter {
    pub vpc: Option<String>,
    pub rule: Option<String>,
    pub inside: Option<Ipv4Addr>,
    pub outside: Option<Ipv4Addr>,
    pub protocol: Option<u8>,
    pub limit: usize,
}

fn bad(field: &str, reason: String) -> ApiError {
    ApiError::bad_request(format!("?{field}=: {reason}"))
        .with_detail(Detail::new("", "", field, reason))
}

/// The protocol number of `tcp`, `udp`, `icmp` or a number 0-255.
pub fn protocol_number(s: &str) -> Option<u8> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
        _ => None,
    }
}

pub fn protocol_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        n => n.to_string(),
    }
}

impl Filter {
    pub fn parse(q: &HashMap<String, String>) -> Result<Filter, ApiError> {
        let mut f = Filter {
            limit: DEFAULT_LIMIT,
            ..Filter::default()
        };
        for (k, v) in q {
            match k.as_str() {
                "vpc" => f.vpc = Some(v.clone()),
                "rule" => f.rule = Some(v.clone()),
                "inside" | "outside" => {
                    let a = v
                        .parse::<Ipv4Addr>()
                        .map_err(|_| bad(k, format!("expected an IPv4 address, got {v:?}")))?;
                    if k == "inside" {
                        f.inside = Some(a);
                    } else {
                        f.outside = Some(a);
                    }
                }
                "protocol" => {
                    f.protocol = Some(protocol_number(v).ok_or_else(|| {
                        bad(
                            "protocol",
                            format!("expected tcp, udp, icmp or a number 0-255, got {v:?}"),
                        )
                    })?)
                }
                "limit" => {
                    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                    f.limit = v
                        .parse::<u64>()
                        .ok()
                        .filter(|_| digits)
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                        .ok_or_else(|| {
                            bad("limit", format!("expected an unsigned integer, got {v:?}"))
                        })?;
                }
                other => {
                    return Err(bad(
                        other,
                        "unknown parameter: expected vpc, rule, inside, outside, protocol or limit"
                            .into(),
                    ))
                }
            }
        }
        Ok(f)
    }
}

/// An address and port.
type Endpoint = (u32, u16);

/// A session from the inside host's side: (inside, outside, remote)
/// endpoints and the VRF of the inside host.
fn sides(s: &SessionView) -> (Endpoint, Endpoint, Endpoint, u16) {
    let (o, x) = (&s.orig, &s.xlat);
    // (An ICMP query's identifier is in both ports: only its address
    // tells.)
    if o.dst != x.dst || (o.proto != 1 && o.dport != x.dport) {
        // Opened from outside: its destination was translated to the
        // inside host.
        (
            (x.dst, x.dport),
            (o.dst, o.dport),
            (o.src, o.sport),
            s.vrf_out,
        )
    } else {
        (
            (o.src, o.sport),
            (x.src, x.sport),
            (o.dst, o.dport),
            s.vrf_in,
        )
    }
}

/// A TCP session's state in words; others are "active".
pub fn state_name(proto: u8, st: u8) -> &'static str {
    if proto != 6 {
        return "active";
    }
    let fins = st & (state::FIN_ORIG | state::FIN_REPLY);
    if st & state::RST != 0 {
        "reset"
    } else if fins == state::FIN_ORIG | state::FIN_REPLY {
        "closing"
    } else if fins != 0 {
        "fin-wait"
    } else if st & state::ESTABLISHED != 0 {
        "established"
    } else {
        "syn-sent"
    }
}

fn endpoint((a, p): Endpoint) -> String {
    format!("{}:{p}", Ipv4Addr::from(a))
}

/// `GET /v1/sessions`: `{total, items}`, `total` counting every session
/// the filter takes, `items` at most `limit` of them.
pub fn sessions(agent: &std::sync::Mutex<Agent>, f: &Filter) -> Value {
    let (store, rules, vpcs) = {
        let mut a = agent.lock().unwrap();
        let vpcs: HashMap<u16, String> = a.vpcs().iter().map(|(n, v)| (*v, n.clone())).collect();
        let rules: HashMap<u16, String> = Nat44::rule_ids(&mut a.control).into_iter().collect();
        (Nat44::store(&mut a.control), rules, vpcs)
    };
    let Some(store) = store else {
        return json!({"total": 0, "items": []});
    };
    let now = store.now();
    let mut total = 0usize;
    let mut items = Vec::new();
    for s in store.sessions() {
        let (inside, outside, remote, vrf) = sides(&s);
        let vpc = vpcs.get(&vrf).map(String::as_str);
        let rule = rules.get(&s.rule).map(String::as_str);
        if f.vpc.as_deref().is_some_and(|v| Some(v) != vpc)
            || f.rule.as_deref().is_some_and(|r| Some(r) != rule)
            || f.inside.is_some_and(|a| u32::from(a) != inside.0)
            || f.outside.is_some_and(|a| u32::from(a) != outside.0)
            || f.protocol.is_some_and(|p| p != s.orig.proto)
        {
            continue;
        }
        total += 1;
        if items.len() < f.limit {
            items.push(json!({
                "vpc": vpc,
                "rule": rule,
                "protocol": protocol_name(s.orig.proto),
                "inside": endpoint(inside),
                "outside": endpoint(outside),
                "remote": endpoint(remote),
                "state": state_name(s.orig.proto, s.state),
                "idle": now.saturating_sub(s.seen),
            }));
        }
    }
    json!({"total": total, "items": items})
}

/// The `nat` part of `GET /v1/stats`: the table's capacity and live
/// sessions, and each rule's counters.
pub fn stats(agent: &std::sync::Mutex<Agent>) -> Value {
    let mut a = agent.lock().unwrap();
    let capacity = a.control.table::<Nat44Table>().load().capacity;
    let ids: BTreeMap<u16, String> = Nat44::rule_ids(&mut a.control).into_iter().collect();
    let store = Nat44::store(&mut a.control);
    drop(a);
    let mut by_name: Vec<(String, Value)> = ids
        .iter()
        .map(|(id, name)| {
            let c = store.as_ref().and_then(|s| s.rules.get(*id as usize));
            let n =
                |f: fn(&weir_dataplane::modules::nat44::store::RuleCounters) -> u64| c.map_or(0, f);
            (
                name.clone(),
                json!({
                    "name": name,
                    "active": n(|c| c.active.load(std::sync::atomic::Ordering::Relaxed)),
                    "created": n(|c| c.created.load(std::sync::atomic::Ordering::Relaxed)),
                    "expired": n(|c| c.expired.load(std::sync::atomic::Ordering::Relaxed)),
                }),
            )
        })
        .collect();
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    json!({
        "capacity": store.as_ref().map_or(capacity, |s| s.capacity()),
        "active": store.as_ref().map_or(0, |s| s.active()),
        "rules": by_name.into_iter().map(|x| x.1).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_states_in_words() {
        use state::*;
        assert_eq!(state_name(17, ALIVE), "active");
        assert_eq!(state_name(1, ALIVE), "active");
        assert_eq!(state_name(6, ALIVE | SYN_ORIG), "syn-sent");
        assert_eq!(
            state_name(6, ALIVE | SYN_ORIG | SYN_REPLY | ESTABLISHED),
            "established"
        );
        assert_eq!(state_name(6, ALIVE | ESTABLISHED | FIN_ORIG), "fin-wait");
        assert_eq!(
            state_name(6, ALIVE | ESTABLISHED | FIN_ORIG | FIN_REPLY),
            "closing"
        );
        assert_eq!(state_name(6, ALIVE | ESTABLISHED | RST), "reset");
    }

    #[test]
    fn protocols_by_name_or_number() {
        assert_eq!(protocol_number("TCP"), Some(6));
        assert_eq!(protocol_number("17"), Some(17));
        assert_eq!(protocol_number("icmp"), Some(1));
        assert_eq!(protocol_number("256"), None);
        assert_eq!(protocol_number("bogus"), None);
        assert_eq!(protocol_number(""), None);
    }
}
