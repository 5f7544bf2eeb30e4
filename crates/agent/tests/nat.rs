//! NatRule objects through the reconciler: the NAT44 rules they make in
//! the dataplane, updates that keep a rule's id, deletes, and the types
//! this gateway refuses.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use weir_agent::{kind, Agent, AgentOptions, Desired, SharedAgent};
use weir_dataplane::modules::nat44::{
    Action, Filtering, Nat44Table, Ports, Prefix4, Rule, Timeouts,
};
use weir_model::key;
use weir_reconcile::{Reconciler, State};

struct Gw {
    agent: SharedAgent,
    rec: Reconciler<Desired>,
}

fn gw() -> Gw {
    let agent = Arc::new(Mutex::new(Agent::start(AgentOptions {
        workers: 1,
        cores: Vec::new(),
        mirror: false,
    })));
    let mut rec = Reconciler::new();
    kind::register_all(&agent, &mut rec);
    Gw { agent, rec }
}

impl Gw {
    fn put(&mut self, kind: &str, name: &str, spec: Value) {
        let d = Desired::new(kind, name, spec);
        self.rec.set_desired([(key(kind, name), Some(d))]);
    }

    fn delete(&mut self, kind: &str, name: &str) {
        self.rec.set_desired([(key(kind, name), None)]);
    }

    fn state(&self, kind: &str, name: &str) -> State {
        self.rec
            .status(&key(kind, name))
            .map_or(State::Removed, |s| s.state)
    }

    /// The dataplane's NAT44 rules: (id, rule).
    fn rules(&self) -> Vec<(u16, Rule)> {
        let mut a = self.agent.lock().unwrap();
        let t = a.control.table::<Nat44Table>().load();
        t.rules
            .by_id
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.clone().map(|r| (i as u16, r)))
            .collect()
    }

    fn rule(&self, name: &str) -> Option<(u16, Rule)> {
        self.rules().into_iter().find(|(_, r)| r.name == name)
    }

    fn vrf(&self, vpc: &str) -> u16 {
        self.agent.lock().unwrap().vrf_of(vpc).unwrap()
    }

    fn port(&self, interface: &str) -> u16 {
        self.agent.lock().unwrap().port_of(interface).unwrap()
    }

    /// A VPC `blue` with Interface `wan` on a memory wire.
    fn blue(&mut self) {
        self.put("Vpc", "blue", json!({}));
        self.put(
            "Interface",
            "wan",
            json!({"hostInterface": "mem0", "driver": "memory", "vpc": "blue",
                "addresses": ["192.0.2.1/24"]}),
        );
        assert_eq!(self.state("Interface", "wan"), State::Configured);
    }
}

fn p(s: &str) -> Prefix4 {
    let (a, l) = s.split_once('/').unwrap();
    Prefix4::new(
        u32::from(a.parse::<std::net::Ipv4Addr>().unwrap()),
        l.parse().unwrap(),
    )
}

fn a(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

#[test]
fn snat44_makes_a_pool_of_every_address() {
    let mut g = gw();
    g.blue();
    g.put(
        "NatRule",
        "out",
        json!({"vpc": "blue", "type": "snat44", "interface": "wan",
            "match": {"source": ["10.0.0.0/24"], "protocol": "udp"},
            "translate": {"addresses": ["203.0.113.0/30", "198.51.100.7/32"], "ports": "2000-2999"},
            "filtering": "endpoint-independent", "pooling": "arbitrary",
            "timeouts": {"udp": 30},
            "limits": {"sessions": 100, "sessionsPerSource": 10}}),
    );
    assert_eq!(g.state("NatRule", "out"), State::Configured);
    let (_, r) = g.rule("out").expect("the rule in the dataplane");
    assert_eq!(
        r,
        Rule {
            name: "out".into(),
            vrf: g.vrf("blue"),
            port: Some(g.port("wan")),
            src: vec![p("10.0.0.0/24")],
            dst: vec![],
            proto: Some(17),
            dports: None,
            action: Action::Snat {
                pool: vec![
                    a("203.0.113.0"),
                    a("203.0.113.1"),
                    a("203.0.113.2"),
                    a("203.0.113.3"),
                    a("198.51.100.7"),
                ],
                ports: Some(Ports {
                    first: 2000,
                    last: 2999
                }),
                filtering: Filtering::EndpointIndependent,
                paired: false,
            },
            timeouts: Timeouts {
                udp: 30,
                tcp_established: 7440,
                tcp_transitory: 240,
                icmp: 60,
            },
            max_sessions: 100,
            max_per_source: 10,
        }
    );
}

#[test]
fn snat44_pool_too_large_fails_with_the_reason() {
    let mut g = gw();
    g.put(
        "NatRule",
        "big",
        json!({"type": "snat44", "translate": {"addresses": ["100.64.0.0/15"]}}),
    );
    match g.state("NatRule", "big") {
        State::Failed { error, .. } => assert!(
            error.contains("131072 addresses") && error.contains("65536"),
            "{error}"
        ),
        s => panic!("expected Failed, got {s:?}"),
    }
    assert!(g.rules().is_empty());
}

#[test]
fn masquerade_uses_the_interface_port_and_an_empty_pool() {
    let mut g = gw();
    g.blue();
    g.put(
        "NatRule",
        "masq",
        json!({"vpc": "blue", "type": "snat44", "interface": "wan",
            "translate": {"masquerade": true}}),
    );
    assert_eq!(g.state("NatRule", "masq"), State::Configured);
    let (_, r) = g.rule("masq").unwrap();
    assert_eq!(r.port, Some(g.port("wan")));
    assert_eq!(r.proto, None);
    assert_eq!(
        r.action,
        Action::Snat {
            pool: vec![],
            ports: None,
            filtering: Filtering::AddressDependent,
            paired: true,
        }
    );
}

#[test]
fn masquerade_follows_a_change_of_the_interface_address() {
    let mut g = gw();
    g.blue();
    g.put(
        "NatRule",
        "masq",
        json!({"vpc": "blue", "type": "snat44", "interface": "wan",
            "translate": {"masquerade": true}}),
    );
    let outside = |g: &Gw| {
        let mut agent = g.agent.lock().unwrap();
        let t = agent.control.table::<Nat44Table>().load();
        (
            t.rules.is_outside(a("192.0.2.1")),
            t.rules.is_outside(a("192.0.2.77")),
        )
    };
    assert_eq!(outside(&g), (true, false));
    g.put(
        "Interface",
        "wan",
        json!({"hostInterface": "mem0", "driver": "memory", "vpc": "blue",
            "addresses": ["192.0.2.77/24"]}),
    );
    assert_eq!(g.state("Interface", "wan"), State::Configured);
    assert_eq!(outside(&g), (false, true));
}

#[test]
fn a_rule_waits_for_its_vpc_and_interface() {
    let mut g = gw();
    g.put(
        "NatRule",
        "masq",
        json!({"vpc": "blue", "type": "snat44", "interface": "wan",
            "translate": {"masquerade": true}}),
    );
    assert!(matches!(g.state("NatRule", "masq"), State::Pending { .. }));
    assert!(g.rules().is_empty());
    g.blue();
    assert_eq!(g.state("NatRule", "masq"), State::Configured);
    assert!(g.rule("masq").is_some());
}

#[test]
fn dnat44_forwards_the_destination_to_the_server() {
    let mut g = gw();
    g.blue();
    g.put(
        "NatRule",
        "web",
        json!({"vpc": "blue", "type": "dnat44", "interface": "wan",
            "match": {"destination": ["192.0.2.2/32"], "protocol": "tcp", "ports": 443},
            "translate": {"addresses": ["10.0.0.80/32"], "ports": 8443}}),
    );
    assert_eq!(g.state("NatRule", "web"), State::Configured);
    let (_, r) = g.rule("web").unwrap();
    assert_eq!(r.vrf, g.vrf("blue"));
    assert_eq!(r.port, Some(g.port("wan")));
    assert_eq!(r.dst, vec![p("192.0.2.2/32")]);
    assert_eq!(r.proto, Some(6));
    assert_eq!(
        r.dports,
        Some(Ports {
            first: 443,
            last: 443
        })
    );
    assert_eq!(
        r.action,
        Action::Dnat {
            to: a("10.0.0.80"),
            ports: Some(Ports {
                first: 8443,
                last: 8443
            }),
        }
    );
}

#[test]
fn one_to_one_maps_the_inside_prefix_to_the_outside_one() {
    let mut g = gw();
    g.put(
        "NatRule",
        "static",
        json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/30"], "protocol": "icmp"},
            "translate": {"addresses": ["203.0.113.32/30"]}}),
    );
    assert_eq!(g.state("NatRule", "static"), State::Configured);
    let (_, r) = g.rule("static").unwrap();
    assert_eq!(r.vrf, 0);
    assert_eq!(r.port, None);
    assert_eq!(r.proto, Some(1));
    assert!(r.src.is_empty());
    assert_eq!(
        r.action,
        Action::OneToOne {
            inside: p("10.0.0.0/30"),
            outside: p("203.0.113.32/30"),
        }
    );
}

#[test]
fn an_update_of_timers_keeps_the_rule_id_and_a_delete_removes_it() {
    let mut g = gw();
    let spec = |udp: u32| {
        json!({"type": "snat44", "translate": {"addresses": ["203.0.113.1/32"]},
            "timeouts": {"udp": udp}})
    };
    g.put(
        "NatRule",
        "other",
        json!({"type": "dnat44", "match": {"destination": ["192.0.2.9/32"]},
            "translate": {"addresses": ["10.0.0.9/32"]}}),
    );
    g.put("NatRule", "out", spec(300));
    let (id, r) = g.rule("out").unwrap();
    assert_eq!(r.timeouts.udp, 300);
    g.put("NatRule", "out", spec(42));
    assert_eq!(g.state("NatRule", "out"), State::Configured);
    let (id2, r) = g.rule("out").unwrap();
    assert_eq!(id2, id, "an update keeps the rule's id");
    assert_eq!(r.timeouts.udp, 42);
    g.delete("NatRule", "out");
    assert_eq!(g.state("NatRule", "out"), State::Removed);
    assert!(g.rule("out").is_none());
    assert!(g.rule("other").is_some(), "the other rule stays");
}

#[test]
fn nat64_and_nat66_rules_fail_with_the_reason() {
    let mut g = gw();
    g.put(
        "NatRule",
        "six",
        json!({"type": "nat64", "translate": {"addresses": ["203.0.113.0/28"]}}),
    );
    g.put(
        "NatRule",
        "sixsix",
        json!({"type": "nat66", "match": {"source": ["fd00::/48"]},
            "translate": {"addresses": ["2001:db8::/48"]}}),
    );
    for (name, t) in [("six", "nat64"), ("sixsix", "nat66")] {
        match g.state("NatRule", name) {
            State::Failed { error, .. } => assert_eq!(
                error,
                format!("{t} rules are not supported on this gateway yet")
            ),
            s => panic!("{name}: expected Failed, got {s:?}"),
        }
    }
    assert!(g.rules().is_empty());
}
