//! Every kind the agent applies, through the reconciler, on a dataplane
//! with memory ports: apply, update, delete, dependencies pending then
//! applied, and the FIB that results.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::{json, Value};
use weir_agent::{kind, Agent, AgentOptions, Desired, SharedAgent, SubnetState};
use weir_dataplane::control::RouteSource;
use weir_dataplane::driver::memory::MemoryHandle;
use weir_dataplane::RouteTarget;
use weir_dataplane::VrfId;
use weir_model::key;
use weir_reconcile::{OpKind, Reconciler, State, TxnRecord};

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

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

impl Gw {
    fn put(&mut self, kind: &str, name: &str, spec: Value) -> Arc<TxnRecord> {
        let d = Desired::new(kind, name, spec);
        self.rec.set_desired([(key(kind, name), Some(d))])
    }

    fn delete(&mut self, kind: &str, name: &str) -> Arc<TxnRecord> {
        self.rec.set_desired([(key(kind, name), None)])
    }

    fn state(&self, kind: &str, name: &str) -> State {
        self.rec
            .status(&key(kind, name))
            .map_or(State::Removed, |s| s.state)
    }

    fn vrf(&self, vpc: &str) -> VrfId {
        self.agent.lock().unwrap().vrf_of(vpc).unwrap()
    }

    /// The FIB of a VPC: prefix, source and target, sorted.
    fn fib(&self, vpc: &str) -> Vec<(IpNet, RouteSource, RouteTarget)> {
        let vrf = self.vrf(vpc);
        let mut r = self.agent.lock().unwrap().control.routes(vrf);
        r.sort_by_key(|a| a.0);
        r
    }

    fn route(&self, vpc: &str, prefix: &str) -> Option<(RouteSource, RouteTarget)> {
        self.fib(vpc)
            .into_iter()
            .find(|(p, _, _)| *p == net(prefix))
            .map(|(_, s, t)| (s, t))
    }

    fn port(&self, interface: &str) -> u16 {
        self.agent.lock().unwrap().port_of(interface).unwrap()
    }
}

fn memory_if(vpc: &str, addresses: &[&str]) -> Value {
    on_wire("mem0", vpc, addresses)
}

/// An Interface on the memory wire `wire` (`driver::memory::wire` is the
/// test's end of it).
fn on_wire(wire: &str, vpc: &str, addresses: &[&str]) -> Value {
    json!({"hostInterface": wire, "driver": "memory", "vpc": vpc, "addresses": addresses})
}

fn ops(r: &TxnRecord) -> Vec<(OpKind, String)> {
    r.operations.iter().map(|o| (o.op, o.key.clone())).collect()
}

#[test]
fn vpc_gets_a_vrf_and_gives_it_back() {
    let mut g = gw();
    g.put("Vpc", "blue", json!({}));
    assert_eq!(g.state("Vpc", "blue"), State::Configured);
    let vrf = g.vrf("blue");
    assert_ne!(vrf, 0, "the default VPC keeps VRF 0");
    assert_eq!(g.rec.metadata::<VrfId>(&key("Vpc", "blue")), Some(&vrf));
    assert!(g.agent.lock().unwrap().control.has_vrf(vrf));
    // A change of spec keeps the VRF.
    let r = g.put("Vpc", "blue", json!({"vni": 100}));
    assert_eq!(ops(&r), [(OpKind::Update, key("Vpc", "blue"))]);
    assert_eq!(g.vrf("blue"), vrf);
    g.delete("Vpc", "blue");
    assert_eq!(g.state("Vpc", "blue"), State::Removed);
    assert!(!g.agent.lock().unwrap().control.has_vrf(vrf));
    assert!(g.agent.lock().unwrap().vrf_of("blue").is_err());
}

#[test]
fn interface_waits_for_its_vpc_then_puts_its_addresses_in_the_fib() {
    let mut g = gw();
    g.put("Interface", "eth0", memory_if("blue", &["10.0.0.1/24"]));
    assert_eq!(
        g.state("Interface", "eth0"),
        State::Pending {
            missing: vec![key("Vpc", "blue")]
        }
    );
    g.put("Vpc", "blue", json!({}));
    assert_eq!(g.state("Interface", "eth0"), State::Configured);
    let port = g.port("eth0");
    let state = g
        .rec
        .metadata::<weir_agent::PortState>(&key("Interface", "eth0"))
        .expect("kept by the engine")
        .clone();
    assert_eq!(state.port, port);
    assert_eq!(
        g.route("blue", "10.0.0.0/24"),
        Some((RouteSource::Connected, RouteTarget::Attached(port)))
    );
    assert_eq!(
        g.route("blue", "10.0.0.1/32"),
        Some((RouteSource::Local, RouteTarget::Local(port)))
    );

    // New addresses are an update in place: same port.
    let r = g.put("Interface", "eth0", memory_if("blue", &["10.0.1.1/24"]));
    assert_eq!(ops(&r), [(OpKind::Update, key("Interface", "eth0"))]);
    assert_eq!(g.port("eth0"), port);
    assert_eq!(g.route("blue", "10.0.0.0/24"), None);
    assert!(g.route("blue", "10.0.1.0/24").is_some());

    g.delete("Interface", "eth0");
    assert_eq!(g.route("blue", "10.0.1.0/24"), None);
    assert!(g.agent.lock().unwrap().port_of("eth0").is_err());
}

#[test]
fn subnet_on_an_interface_adds_its_gateway_and_connected_route() {
    let mut g = gw();
    g.put(
        "Subnet",
        "s1",
        json!({"vpc": "blue", "cidr": "10.0.2.0/24", "interface": "eth0"}),
    );
    assert!(matches!(g.state("Subnet", "s1"), State::Pending { .. }));
    g.put("Vpc", "blue", json!({}));
    g.put("Interface", "eth0", memory_if("blue", &[]));
    assert_eq!(g.state("Subnet", "s1"), State::Configured);
    let port = g.port("eth0");
    assert_eq!(
        g.rec.metadata::<SubnetState>(&key("Subnet", "s1")),
        Some(&SubnetState {
            vrf: g.vrf("blue"),
            address: Some((port, net("10.0.2.1/24"))),
        })
    );
    assert_eq!(
        g.route("blue", "10.0.2.0/24"),
        Some((RouteSource::Connected, RouteTarget::Attached(port)))
    );
    assert!(g.route("blue", "10.0.2.1/32").is_some());

    // Another gateway: the old address goes, the new one comes.
    g.put(
        "Subnet",
        "s1",
        json!({"vpc": "blue", "cidr": "10.0.2.0/24", "gateway": "10.0.2.254", "interface": "eth0"}),
    );
    assert_eq!(g.route("blue", "10.0.2.1/32"), None);
    assert!(g.route("blue", "10.0.2.254/32").is_some());

    g.delete("Subnet", "s1");
    assert_eq!(g.route("blue", "10.0.2.0/24"), None);
    assert_eq!(g.state("Interface", "eth0"), State::Configured);
}

#[test]
fn route_through_a_gateway_on_a_connected_subnet() {
    let mut g = gw();
    let route =
        |gw: &str| json!({"vpc": "blue", "prefix": "192.168.0.0/16", "nextHop": {"address": gw}});
    g.put("Route", "r1", route("10.0.0.254"));
    assert_eq!(
        g.state("Route", "r1"),
        State::Pending {
            missing: vec![key("Vpc", "blue"), "/weir/v1/interface/*".to_string()]
        }
    );
    g.put("Vpc", "blue", json!({}));
    g.put("Interface", "eth0", memory_if("blue", &["10.0.0.1/24"]));
    assert_eq!(g.state("Route", "r1"), State::Configured);
    let (source, target) = g.route("blue", "192.168.0.0/16").expect("in the FIB");
    assert_eq!(source, RouteSource::Static);
    assert_eq!(
        target,
        RouteTarget::Via {
            gateway: "10.0.0.254".parse().unwrap(),
            port: None
        }
    );
    assert_eq!(
        g.rec.metadata::<(VrfId, IpNet)>(&key("Route", "r1")),
        Some(&(g.vrf("blue"), net("192.168.0.0/16")))
    );

    g.put("Route", "r1", route("10.0.0.253"));
    let (_, target) = g.route("blue", "192.168.0.0/16").unwrap();
    assert!(
        matches!(target, RouteTarget::Via { gateway, .. } if gateway.to_string() == "10.0.0.253")
    );

    // A changed prefix replaces the FIB entry.
    g.put(
        "Route",
        "r1",
        json!({"vpc": "blue", "prefix": "172.16.0.0/12", "nextHop": {"address": "10.0.0.253"}}),
    );
    assert_eq!(g.route("blue", "192.168.0.0/16"), None);
    assert!(g.route("blue", "172.16.0.0/12").is_some());

    g.delete("Route", "r1");
    assert_eq!(g.route("blue", "172.16.0.0/12"), None);
}

#[test]
fn peering_leaks_each_sides_exposed_prefixes() {
    let mut g = gw();
    let peering = json!({"vpcs": ["blue", "red"], "expose": {"blue": ["10.1.0.0/24"], "red": ["10.2.0.0/24"]}});
    g.put("Peering", "p", peering);
    assert_eq!(
        g.state("Peering", "p"),
        State::Pending {
            missing: vec![key("Vpc", "blue"), key("Vpc", "red")]
        }
    );
    g.put("Vpc", "blue", json!({}));
    g.put("Vpc", "red", json!({}));
    assert_eq!(g.state("Peering", "p"), State::Configured);
    let (blue, red) = (g.vrf("blue"), g.vrf("red"));
    assert_eq!(
        g.route("blue", "10.2.0.0/24").map(|r| r.1),
        Some(RouteTarget::Table(red))
    );
    assert_eq!(
        g.route("red", "10.1.0.0/24").map(|r| r.1),
        Some(RouteTarget::Table(blue))
    );

    g.put(
        "Peering",
        "p",
        json!({"vpcs": ["blue", "red"], "expose": {"blue": ["10.1.0.0/24"], "red": ["10.3.0.0/24"]}}),
    );
    assert_eq!(g.route("blue", "10.2.0.0/24"), None);
    assert_eq!(
        g.route("blue", "10.3.0.0/24").map(|r| r.1),
        Some(RouteTarget::Table(red))
    );

    g.delete("Peering", "p");
    assert_eq!(g.route("blue", "10.3.0.0/24"), None);
    assert_eq!(g.route("red", "10.1.0.0/24"), None);
}

/// An ARP request for `target` from 10.0.0.2.
fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let src = [0x02, 0, 0, 0, 0, 0x22];
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

/// Sends an ARP request for the interface's address; whether a reply came.
fn answers(h: &MemoryHandle) -> bool {
    h.inject(arp_request([10, 0, 0, 1]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let out = h.collect();
        let reply = |f: &Vec<u8>| f.len() >= 22 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2];
        if out.iter().any(reply) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_resync_with_nothing_changed_calls_nothing_and_traffic_goes_on() {
    let mut g = gw();
    let desired: Vec<(String, Desired)> = [
        ("Vpc", "blue", json!({})),
        (
            "Interface",
            "eth0",
            on_wire("kinds-resync", "blue", &["10.0.0.1/24"]),
        ),
        (
            "Subnet",
            "s1",
            json!({"vpc": "blue", "cidr": "10.0.0.0/24", "interface": "eth0"}),
        ),
        (
            "Route",
            "r1",
            json!({"vpc": "blue", "prefix": "192.168.0.0/16", "nextHop": {"address": "10.0.0.254"}}),
        ),
        ("Vpc", "red", json!({})),
        (
            "Peering",
            "p",
            json!({"vpcs": ["blue", "red"], "expose": {"blue": ["10.0.0.0/24"]}}),
        ),
    ]
    .into_iter()
    .map(|(k, n, s)| (key(k, n), Desired::new(k, n, s)))
    .collect();
    let first = g.rec.resync_full(desired.clone());
    assert_eq!(first.operations.len(), 6);
    assert_eq!(g.rec.summary().configured, 6);
    let h = weir_dataplane::driver::memory::wire("kinds-resync");
    assert!(answers(&h), "no ARP reply before the resync");
    let generation = g.agent.lock().unwrap().control.generation();

    let again = g.rec.resync_full(desired);
    assert!(again.operations.is_empty(), "{:?}", again.operations);
    assert!(again.changes.is_empty());
    assert_eq!(g.rec.summary().configured, 6);
    assert_eq!(
        g.agent.lock().unwrap().control.generation(),
        generation,
        "nothing committed to the dataplane"
    );
    assert!(answers(&h), "no ARP reply after the resync");
}
