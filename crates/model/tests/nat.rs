//! NatRule: the NAT44 spec (snat44 with pools or masquerade, dnat44,
//! one-to-one), its defaults and validation, and the conflicts between
//! rules of one VPC.

use serde_json::{json, Value};
use weir_model::*;

fn doc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "weir/v1", "kind": "NatRule", "metadata": {"name": name}, "spec": spec})
}

fn parse(spec: Value) -> Result<Object, ValidationErrors> {
    Registry::builtin().parse(&doc("x", spec))
}

fn rule(name: &str, spec: Value) -> Object {
    Registry::builtin()
        .parse(&doc(name, spec))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn on_node(mut o: Object, node: &str) -> Object {
    o.metadata.node = Some(node.into());
    o
}

#[test]
fn nat_minimal_snat44_gets_rfc_defaults() {
    let o = parse(json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"]}})).unwrap();
    let s: NatRuleSpec = o.typed().unwrap();
    assert_eq!(s.vpc, "default");
    assert_eq!(s.filtering, Filtering::AddressDependent);
    assert_eq!(s.pooling, Pooling::Paired);
    assert_eq!(
        s.timeouts,
        NatTimeouts {
            udp: 300,
            tcp_established: 7440,
            tcp_transitory: 240,
            icmp: 60
        }
    );
    assert_eq!(s.timeouts, NatTimeouts::default());
    assert_eq!(s.limits, NatLimits::default());
    assert_eq!(s.limits.sessions, 0);
    assert!(!s.translate.masquerade);
    assert_eq!(s.translate.ports, None);
    // Inside ports keep their class when no range is given (RFC 4787).
    assert_eq!(s.translate.snat_ports(53).to_string(), "1-1023");
    assert_eq!(s.translate.snat_ports(1023).to_string(), "1-1023");
    assert_eq!(s.translate.snat_ports(1024).to_string(), "1024-65535");
    // Filtering and pooling show in the normalised form; default timeouts
    // and limits do not.
    assert_eq!(
        o.spec,
        json!({"vpc": "default", "type": "snat44", "match": {}, "translate": {"addresses": ["192.0.2.1/32"]},
               "filtering": "address-dependent", "pooling": "paired"})
    );
    // A partial timeouts block fills in the rest.
    let s: NatRuleSpec = parse(json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"]}, "timeouts": {"udp": 30}}))
        .unwrap()
        .typed()
        .unwrap();
    assert_eq!(s.timeouts.udp, 30);
    assert_eq!(s.timeouts.tcp_established, 7440);
    assert_eq!(s.timeouts.icmp, 60);
}

const FULL: &str = "\
apiVersion: weir/v1
kind: NatRule
metadata:
  name: out
spec:
  vpc: blue
  type: snat44
  interface: wan
  match:
    source: [10.0.0.0/24, 10.0.1.0/24]
    destination: [0.0.0.0/0]
    protocol: udp
    ports: 1000-2000
  translate:
    masquerade: true
    ports: 20000-30000
  filtering: endpoint-independent
  pooling: arbitrary
  timeouts:
    udp: 120
    tcpEstablished: 3600
    tcpTransitory: 60
    icmp: 30
  limits:
    sessions: 100000
    sessionsPerSource: 2000
";

#[test]
fn nat_full_spec_round_trips_yaml_and_json() {
    let r = Registry::builtin();
    let objs = r.parse_yaml(FULL).unwrap();
    assert_eq!(objs.len(), 1);
    let o = &objs[0];
    let s: NatRuleSpec = o.typed().unwrap();
    assert_eq!(s.nat_type, NatType::Snat44);
    assert!(s.translate.masquerade);
    assert!(s.translate.addresses.is_empty());
    assert_eq!(s.interface.as_deref(), Some("wan"));
    assert_eq!(s.filtering, Filtering::EndpointIndependent);
    assert_eq!(s.pooling, Pooling::Arbitrary);
    assert_eq!(
        s.timeouts,
        NatTimeouts {
            udp: 120,
            tcp_established: 3600,
            tcp_transitory: 60,
            icmp: 30
        }
    );
    assert_eq!(
        s.limits,
        NatLimits {
            sessions: 100000,
            sessions_per_source: 2000
        }
    );
    assert_eq!(
        o.spec["translate"],
        json!({"masquerade": true, "ports": "20000-30000"})
    );
    assert_eq!(o.spec["timeouts"]["tcpEstablished"], json!(3600));
    assert_eq!(o.spec["limits"]["sessionsPerSource"], json!(2000));
    let back = r.parse_yaml(&o.to_yaml()).unwrap();
    assert_eq!(back, objs, "YAML round trip");
    let back = r.parse_json(&o.to_json()).unwrap();
    assert_eq!(&back, o, "JSON round trip");
    // The typed spec round-trips through serde on its own too.
    let again: NatRuleSpec = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert_eq!(again, s);
    // And the document fits the kind's JSON Schema, before and after.
    let schema = r.schema("NatRule").unwrap();
    let v = jsonschema::validator_for(schema).unwrap();
    let raw = &weir_model::yaml::documents(FULL).unwrap()[0];
    assert!(v.is_valid(raw));
    assert!(v.is_valid(&serde_json::to_value(o).unwrap()));
}

#[test]
fn nat_one_to_one_and_dnat44_round_trip() {
    let r = Registry::builtin();
    for spec in [
        json!({"type": "one-to-one", "interface": "wan", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}}),
        json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "protocol": "tcp", "ports": "8000-8009"},
               "translate": {"addresses": ["10.0.0.5/32"], "ports": "9000-9009"}, "limits": {"sessions": 10}}),
    ] {
        let o = rule("r", spec.clone());
        assert_eq!(r.parse_json(&o.to_json()).unwrap(), o);
        assert_eq!(r.parse_yaml(&o.to_yaml()).unwrap(), vec![o.clone()]);
        assert_eq!(o.spec["type"], spec["type"]);
    }
    let s: NatRuleSpec = rule("r", json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}}))
        .typed()
        .unwrap();
    assert_eq!(s.nat_type, NatType::OneToOne);
    assert_eq!(s.nat_type.to_string(), "one-to-one");
}

/// Specs every rule above accepts.
#[test]
fn nat_valid_specs() {
    let ok = [
        // A pool.
        json!({"type": "snat44", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["192.0.2.0/28"], "ports": "1024-65535"}}),
        // Masquerade on an egress interface, with limits.
        json!({"type": "snat44", "interface": "wan", "translate": {"masquerade": true}, "limits": {"sessionsPerSource": 100}}),
        // dnat44: a range onto one port, onto the same size, one onto one,
        // and no match ports with one port.
        json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "protocol": "tcp", "ports": "80-81"}, "translate": {"addresses": ["10.0.0.10/32"], "ports": 8080}}),
        json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "protocol": "udp", "ports": "5000-5009"}, "translate": {"addresses": ["10.0.0.10/32"], "ports": "6000-6009"}}),
        json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "protocol": "tcp", "ports": 443}, "translate": {"addresses": ["10.0.0.10/32"], "ports": 8443}, "limits": {"sessions": 5}}),
        json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.10/32"], "ports": 22}}),
        json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.10/32"]}}),
        // one-to-one.
        json!({"type": "one-to-one", "match": {"source": ["10.0.0.5/32"]}, "translate": {"addresses": ["198.51.100.5/32"]}}),
        // nat66 and nat64 as before, with timeouts.
        json!({"type": "nat66", "match": {"source": ["fd00:1::/48"]}, "translate": {"addresses": ["2001:db8:1::/48"]}, "timeouts": {"icmp": 1}}),
        json!({"type": "nat64", "match": {"destination": ["64:ff9b::/96"]}, "translate": {"addresses": ["192.0.2.64/28"]}}),
    ];
    for spec in ok {
        parse(spec.clone()).unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

#[test]
fn nat_validation_names_field_and_reason() {
    let pool = json!({"addresses": ["192.0.2.1/32"]});
    let cases: Vec<(Value, &str, &str)> = vec![
        // snat44: a pool or masquerade, not both, not neither.
        (
            json!({"type": "snat44", "translate": {}}),
            "spec.translate.addresses",
            "needs a pool here or translate.masquerade",
        ),
        (
            json!({"type": "snat44", "interface": "wan", "translate": {"addresses": ["192.0.2.1/32"], "masquerade": true}}),
            "spec.translate.addresses",
            "must be empty with translate.masquerade",
        ),
        (
            json!({"type": "snat44", "translate": {"masquerade": true}}),
            "spec.interface",
            "required with translate.masquerade",
        ),
        (
            json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32", "2001:db8::/64"]}}),
            "spec.translate.addresses[1]",
            "expected an IPv4 prefix because spec.type is snat44",
        ),
        (
            json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"], "ports": "0-100"}}),
            "spec.translate.ports",
            "port 0",
        ),
        (
            json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"], "ports": "2000-1000"}}),
            "spec.translate.ports",
            "reversed",
        ),
        (
            json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"], "masquerade": "yes"}}),
            "spec.translate.masquerade",
            "invalid type",
        ),
        // dnat44.
        (
            json!({"type": "dnat44", "translate": {"addresses": ["10.0.0.1/32"]}}),
            "spec.match.destination",
            "required for dnat44",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["2001:db8::1/128"]}, "translate": {"addresses": ["10.0.0.1/32"]}}),
            "spec.match.destination[0]",
            "expected an IPv4 prefix because spec.type is dnat44",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {}}),
            "spec.translate.addresses",
            "exactly one inside server address (a /32), got 0",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.1/32", "10.0.0.2/32"]}}),
            "spec.translate.addresses",
            "exactly one inside server address (a /32), got 2",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.0/30"]}}),
            "spec.translate.addresses[0]",
            "expected a /32, got 10.0.0.0/30",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "ports": 80}, "translate": {"addresses": ["10.0.0.1/32"]}}),
            "spec.match.ports",
            "tcp or udp",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "protocol": "icmp", "ports": 80}, "translate": {"addresses": ["10.0.0.1/32"]}}),
            "spec.match.ports",
            "tcp or udp",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "protocol": "tcp", "ports": "80-89"}, "translate": {"addresses": ["10.0.0.1/32"], "ports": "8080-8085"}}),
            "spec.translate.ports",
            "same size as match.ports 80-89 (10 ports), got 8080-8085 (6 ports)",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.1/32"], "ports": "8080-8081"}}),
            "spec.translate.ports",
            "single port when match.ports is not set",
        ),
        // one-to-one.
        (
            json!({"type": "one-to-one", "translate": {"addresses": ["198.51.100.0/24"]}}),
            "spec.match.source",
            "exactly one inside prefix, got 0",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24", "10.0.1.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}}),
            "spec.match.source",
            "exactly one inside prefix, got 2",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"]}, "translate": {}}),
            "spec.translate.addresses",
            "exactly one outside prefix, got 0",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/23"]}}),
            "spec.translate.addresses[0]",
            "length of match.source 10.0.0.0/24 (/24), got 198.51.100.0/23",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["fd00::/64"]}, "translate": {"addresses": ["198.51.100.0/24"]}}),
            "spec.match.source[0]",
            "expected an IPv4 prefix because spec.type is one-to-one",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.1/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}}),
            "spec.match.source[0]",
            "host bits",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"], "protocol": "tcp", "ports": 80}, "translate": {"addresses": ["198.51.100.0/24"]}}),
            "spec.match.ports",
            "ports do not apply",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"], "ports": 80}}),
            "spec.translate.ports",
            "ports do not apply",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}, "filtering": "endpoint-independent"}),
            "spec.filtering",
            "applies only to snat44, not to one-to-one",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}, "pooling": "arbitrary"}),
            "spec.pooling",
            "applies only to snat44, not to one-to-one",
        ),
        (
            json!({"type": "one-to-one", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}, "limits": {"sessions": 1}}),
            "spec.limits",
            "applies only to snat44 and dnat44, not to one-to-one",
        ),
        // Type-specific fields on other types.
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.1/32"]}, "filtering": "endpoint-independent"}),
            "spec.filtering",
            "applies only to snat44, not to dnat44",
        ),
        (
            json!({"type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.1/32"]}, "pooling": "arbitrary"}),
            "spec.pooling",
            "applies only to snat44, not to dnat44",
        ),
        (
            json!({"type": "dnat44", "interface": "wan", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.1/32"], "masquerade": true}}),
            "spec.translate.masquerade",
            "applies only to snat44, not to dnat44",
        ),
        (
            json!({"type": "nat64", "match": {"destination": ["64:ff9b::/96"]}, "translate": {"addresses": ["192.0.2.64/28"]}, "limits": {"sessionsPerSource": 3}}),
            "spec.limits",
            "applies only to snat44 and dnat44, not to nat64",
        ),
        // nat66 and nat64 still need addresses.
        (
            json!({"type": "nat66", "match": {"source": ["fd00:1::/48"]}, "translate": {}}),
            "spec.translate.addresses",
            "at least one address or pool is required",
        ),
        (
            json!({"type": "nat64", "match": {"destination": ["64:ff9b::/96"]}, "translate": {}}),
            "spec.translate.addresses",
            "at least one address or pool is required",
        ),
        (
            json!({"type": "nat66", "match": {"source": ["fd00:1::/48"]}, "translate": {"addresses": ["2001:db8:1::/48"], "ports": 80}}),
            "spec.translate.ports",
            "nat66 translates prefixes",
        ),
        // Timeouts.
        (
            json!({"type": "snat44", "translate": pool, "timeouts": {"udp": 0}}),
            "spec.timeouts.udp",
            "at least 1 second",
        ),
        (
            json!({"type": "snat44", "translate": pool, "timeouts": {"tcpEstablished": 0}}),
            "spec.timeouts.tcpEstablished",
            "at least 1 second",
        ),
        (
            json!({"type": "snat44", "translate": pool, "timeouts": {"tcpTransitory": 0}}),
            "spec.timeouts.tcpTransitory",
            "at least 1 second",
        ),
        (
            json!({"type": "snat44", "translate": pool, "timeouts": {"icmp": 0}}),
            "spec.timeouts.icmp",
            "at least 1 second",
        ),
        (
            json!({"type": "snat44", "translate": pool, "timeouts": {"udp": -1}}),
            "spec.timeouts.udp",
            "invalid value",
        ),
        // Unknown fields and values.
        (
            json!({"type": "snat44", "translate": pool, "timeouts": {"tcp": 5}}),
            "spec.timeouts.tcp",
            "unknown field `tcp`",
        ),
        (
            json!({"type": "snat44", "translate": pool, "limits": {"perSource": 5}}),
            "spec.limits.perSource",
            "unknown field `perSource`",
        ),
        (
            json!({"type": "snat44", "translate": pool, "filtering": "port-dependent"}),
            "spec.filtering",
            "unknown variant `port-dependent`",
        ),
        (
            json!({"type": "snat44", "translate": pool, "pooling": "random"}),
            "spec.pooling",
            "unknown variant `random`",
        ),
        (
            json!({"type": "one_to_one", "translate": pool}),
            "spec.type",
            "unknown variant `one_to_one`",
        ),
        (
            json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"], "pool": []}}),
            "spec.translate.pool",
            "unknown field `pool`",
        ),
    ];
    let mut failures = Vec::new();
    for (spec, field, reason) in &cases {
        match parse(spec.clone()) {
            Ok(_) => failures.push(format!("{spec}: accepted, expected {field}: {reason}")),
            Err(errs) => match errs.on_field(field) {
                Some(e) if e.reason.contains(reason) => {}
                _ => failures.push(format!("{spec}: wanted {field}: {reason}, got: {errs}")),
            },
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn nat_schema_has_the_bounds_validation_has() {
    let r = Registry::builtin();
    let s = r.spec_schema("NatRule").unwrap();
    let props = &s["properties"];
    let types = serde_json::to_string(&props["type"]).unwrap();
    assert!(types.contains("\"one-to-one\""), "{types}");
    for t in ["udp", "tcpEstablished", "tcpTransitory", "icmp"] {
        let f = &props["timeouts"]["properties"][t];
        assert_eq!(f["minimum"], json!(1), "{t}: {f}");
    }
    assert_eq!(
        props["timeouts"]["properties"]["udp"]["default"],
        json!(300)
    );
    assert_eq!(props["timeouts"]["additionalProperties"], json!(false));
    assert_eq!(props["limits"]["additionalProperties"], json!(false));
    let filtering = serde_json::to_string(&props["filtering"]).unwrap();
    assert!(filtering.contains("endpoint-independent") && filtering.contains("address-dependent"));
    assert_eq!(props["filtering"]["default"], json!("address-dependent"));
    assert_eq!(props["pooling"]["default"], json!("paired"));
    let tr = &props["translate"];
    assert!(tr["properties"]["masquerade"].is_object());
    let required = tr.get("required").cloned().unwrap_or(json!([]));
    assert!(!required.as_array().unwrap().contains(&json!("addresses")));
    // A timeout of 0 is refused by the schema as by validation.
    let v = jsonschema::validator_for(r.schema("NatRule").unwrap()).unwrap();
    let good = doc(
        "x",
        json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"]}}),
    );
    assert!(v.is_valid(&good));
    let bad = doc(
        "x",
        json!({"type": "snat44", "translate": {"addresses": ["192.0.2.1/32"]}, "timeouts": {"udp": 0}}),
    );
    assert!(!v.is_valid(&bad));
}

#[test]
fn nat_rows() {
    let r = Registry::builtin();
    assert_eq!(
        r.columns("NatRule"),
        ["NAME", "VPC", "TYPE", "MATCH", "TRANSLATE", "STATE"]
    );
    let row = |spec: Value| r.row(&rule("n", spec))[1..5].to_vec();
    assert_eq!(
        row(
            json!({"type": "snat44", "interface": "wan", "match": {"source": ["10.0.0.0/24"]}, "translate": {"masquerade": true}})
        ),
        ["default", "snat44", "src 10.0.0.0/24 out wan", "masquerade"]
    );
    assert_eq!(
        row(
            json!({"type": "snat44", "translate": {"masquerade": true, "ports": "20000-30000"}, "interface": "wan"})
        ),
        ["default", "snat44", "out wan", "masquerade:20000-30000"]
    );
    assert_eq!(
        row(
            json!({"vpc": "blue", "type": "dnat44", "match": {"destination": ["192.0.2.1/32"], "protocol": "tcp", "ports": 443}, "translate": {"addresses": ["10.0.0.80/32"], "ports": 8443}})
        ),
        [
            "blue",
            "dnat44",
            "dst 192.0.2.1/32 tcp port 443",
            "10.0.0.80/32:8443"
        ]
    );
    assert_eq!(
        row(
            json!({"type": "one-to-one", "interface": "wan", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}})
        ),
        [
            "default",
            "one-to-one",
            "src 10.0.0.0/24 in wan",
            "198.51.100.0/24"
        ]
    );
    assert_eq!(
        row(json!({"type": "snat44", "translate": {"addresses": ["192.0.2.0/28"]}})),
        ["default", "snat44", "-", "192.0.2.0/28"]
    );
}

#[test]
fn nat_conflict_group_is_the_vpc() {
    let r = Registry::builtin();
    let a = rule(
        "a",
        json!({"vpc": "blue", "type": "snat44", "translate": {"addresses": ["192.0.2.1/32"]}}),
    );
    let b = rule(
        "b",
        json!({"vpc": "blue", "type": "dnat44", "match": {"destination": ["192.0.2.1/32"]}, "translate": {"addresses": ["10.0.0.1/32"]}}),
    );
    let c = rule(
        "c",
        json!({"vpc": "red", "type": "snat44", "translate": {"addresses": ["192.0.2.1/32"]}}),
    );
    assert_eq!(r.conflict_group(&a), Some("blue".into()));
    assert_eq!(r.conflict_group(&a), r.conflict_group(&b));
    assert_ne!(r.conflict_group(&a), r.conflict_group(&c));
}

#[test]
fn nat_conflicts() {
    let snat = |n: &str, spec: Value| {
        let mut s = json!({"type": "snat44"});
        s.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        rule(n, s)
    };
    let dnat = |n: &str, dst: &str, proto: Option<&str>, ports: Option<Value>| {
        let mut m = json!({"destination": [dst]});
        if let Some(p) = proto {
            m["protocol"] = json!(p);
        }
        if let Some(p) = ports {
            m["ports"] = p;
        }
        rule(
            n,
            json!({"type": "dnat44", "match": m, "translate": {"addresses": ["10.0.0.10/32"]}}),
        )
    };
    let one = |n: &str, inside: &str, outside: &str| {
        rule(
            n,
            json!({"type": "one-to-one", "match": {"source": [inside]}, "translate": {"addresses": [outside]}}),
        )
    };
    type Case = (
        Vec<Object>,
        Option<(&'static str, &'static str, &'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        // 0: overlapping pools (different sources, so only the pools).
        (
            vec![
                snat(
                    "a",
                    json!({"match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["192.0.2.0/28"]}}),
                ),
                snat(
                    "b",
                    json!({"match": {"source": ["10.0.1.0/24"]}, "translate": {"addresses": ["192.0.2.8/29"]}}),
                ),
            ],
            Some((
                "b",
                "spec.translate.addresses",
                "pool 192.0.2.8/29 overlaps 192.0.2.0/28 in the pool of NatRule a",
                "a",
            )),
        ),
        // 1: disjoint pools and sources.
        (
            vec![
                snat(
                    "a",
                    json!({"match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["192.0.2.0/29"]}}),
                ),
                snat(
                    "b",
                    json!({"match": {"source": ["10.0.1.0/24"]}, "translate": {"addresses": ["192.0.2.8/29"]}}),
                ),
            ],
            None,
        ),
        // 2: the same pool in another VPC.
        (
            vec![
                snat(
                    "a",
                    json!({"vpc": "blue", "translate": {"addresses": ["192.0.2.0/28"]}}),
                ),
                snat(
                    "b",
                    json!({"vpc": "red", "translate": {"addresses": ["192.0.2.0/28"]}}),
                ),
            ],
            None,
        ),
        // 3: the same pool on gateways that share no node.
        (
            vec![
                on_node(
                    snat("a", json!({"translate": {"addresses": ["192.0.2.0/28"]}})),
                    "gw1",
                ),
                on_node(
                    snat("b", json!({"translate": {"addresses": ["192.0.2.0/28"]}})),
                    "gw2",
                ),
            ],
            None,
        ),
        // 4: ... but one on every node shares with one on gw1.
        (
            vec![
                snat(
                    "a",
                    json!({"match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["192.0.2.0/28"]}}),
                ),
                on_node(
                    snat(
                        "b",
                        json!({"match": {"source": ["10.0.1.0/24"]}, "translate": {"addresses": ["192.0.2.1/32"]}}),
                    ),
                    "gw1",
                ),
            ],
            Some((
                "b",
                "spec.translate.addresses",
                "overlaps 192.0.2.0/28",
                "a",
            )),
        ),
        // 5: shadowing: overlapping sources leaving the same interface.
        (
            vec![
                snat(
                    "a",
                    json!({"interface": "wan", "match": {"source": ["10.0.0.0/16"]}, "translate": {"addresses": ["192.0.2.1/32"]}}),
                ),
                snat(
                    "b",
                    json!({"interface": "wan", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["192.0.2.2/32"]}}),
                ),
            ],
            Some((
                "b",
                "spec.match",
                "both match src 10.0.0.0/24 leaving Interface wan",
                "a",
            )),
        ),
        // 6: ... leaving different interfaces: no packet matches both.
        (
            vec![
                snat(
                    "a",
                    json!({"interface": "wan", "match": {"source": ["10.0.0.0/16"]}, "translate": {"addresses": ["192.0.2.1/32"]}}),
                ),
                snat(
                    "b",
                    json!({"interface": "wan2", "match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["192.0.2.2/32"]}}),
                ),
            ],
            None,
        ),
        // 7: ... but a rule on any interface shadows one on wan (masquerade).
        (
            vec![
                snat(
                    "a",
                    json!({"interface": "wan", "translate": {"masquerade": true}}),
                ),
                snat(
                    "b",
                    json!({"match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["192.0.2.2/32"]}}),
                ),
            ],
            Some((
                "b",
                "spec.match",
                "both match src 10.0.0.0/24 leaving Interface wan",
                "a",
            )),
        ),
        // 8: two masquerades on one interface match every packet.
        (
            vec![
                snat(
                    "a",
                    json!({"interface": "wan", "translate": {"masquerade": true}}),
                ),
                snat(
                    "b",
                    json!({"interface": "wan", "translate": {"masquerade": true}}),
                ),
            ],
            Some((
                "b",
                "spec.match",
                "both match every packet leaving Interface wan",
                "a",
            )),
        ),
        // 9: disjoint protocols do not overlap; any overlaps everything.
        (
            vec![
                snat(
                    "a",
                    json!({"match": {"protocol": "tcp"}, "translate": {"addresses": ["192.0.2.1/32"]}}),
                ),
                snat(
                    "b",
                    json!({"match": {"protocol": "udp"}, "translate": {"addresses": ["192.0.2.2/32"]}}),
                ),
            ],
            None,
        ),
        (
            vec![
                snat(
                    "a",
                    json!({"match": {"protocol": "any"}, "translate": {"addresses": ["192.0.2.1/32"]}}),
                ),
                snat(
                    "b",
                    json!({"match": {"protocol": "udp", "ports": 53}, "translate": {"addresses": ["192.0.2.2/32"]}}),
                ),
            ],
            Some(("b", "spec.match", "both match udp port 53", "a")),
        ),
        // 11: disjoint destinations.
        (
            vec![
                snat(
                    "a",
                    json!({"match": {"destination": ["198.51.100.0/24"]}, "translate": {"addresses": ["192.0.2.1/32"]}}),
                ),
                snat(
                    "b",
                    json!({"match": {"destination": ["203.0.113.0/24"]}, "translate": {"addresses": ["192.0.2.2/32"]}}),
                ),
            ],
            None,
        ),
        // 12: dnat44 forwarding the same address and overlapping ports.
        (
            vec![
                dnat("a", "192.0.2.1/32", Some("tcp"), Some(json!("80-90"))),
                dnat("b", "192.0.2.1/32", Some("tcp"), Some(json!("85-95"))),
            ],
            Some((
                "b",
                "spec.match",
                "both match dst 192.0.2.1/32 tcp port 85-90",
                "a",
            )),
        ),
        // 13: ... disjoint ports.
        (
            vec![
                dnat("a", "192.0.2.1/32", Some("tcp"), Some(json!(80))),
                dnat("b", "192.0.2.1/32", Some("tcp"), Some(json!(443))),
            ],
            None,
        ),
        // 14: ... the same port, different protocols.
        (
            vec![
                dnat("a", "192.0.2.1/32", Some("tcp"), Some(json!(53))),
                dnat("b", "192.0.2.1/32", Some("udp"), Some(json!(53))),
            ],
            None,
        ),
        // 15: ... a whole-address forward shadows a port forward.
        (
            vec![
                dnat("a", "192.0.2.1/32", None, None),
                dnat("b", "192.0.2.1/32", Some("tcp"), Some(json!(22))),
            ],
            Some((
                "b",
                "spec.match",
                "both match dst 192.0.2.1/32 tcp port 22",
                "a",
            )),
        ),
        // 16: ... different outside addresses.
        (
            vec![
                dnat("a", "192.0.2.1/32", Some("tcp"), Some(json!(80))),
                dnat("b", "192.0.2.2/32", Some("tcp"), Some(json!(80))),
            ],
            None,
        ),
        // 17: masquerade plus port forwarding on one public address is fine,
        // and an snat44 pool may hold a dnat44 destination.
        (
            vec![
                snat(
                    "a",
                    json!({"interface": "wan", "translate": {"masquerade": true}}),
                ),
                snat(
                    "p",
                    json!({"interface": "wan2", "translate": {"addresses": ["192.0.2.1/32"]}}),
                ),
                dnat("b", "192.0.2.1/32", Some("tcp"), Some(json!(443))),
            ],
            None,
        ),
        // 18: one-to-one with overlapping inside prefixes.
        (
            vec![
                one("a", "10.0.0.0/24", "198.51.100.0/24"),
                one("b", "10.0.0.128/25", "203.0.113.0/25"),
            ],
            Some((
                "b",
                "spec.match.source",
                "inside prefix 10.0.0.128/25 overlaps 10.0.0.0/24 of one-to-one NatRule a",
                "a",
            )),
        ),
        // 19: ... with overlapping outside prefixes.
        (
            vec![
                one("a", "10.0.0.0/24", "198.51.100.0/24"),
                one("b", "10.0.1.0/24", "198.51.100.0/24"),
            ],
            Some((
                "b",
                "spec.translate.addresses",
                "outside prefix 198.51.100.0/24 overlaps 198.51.100.0/24 of one-to-one NatRule a",
                "a",
            )),
        ),
        // 20: ... disjoint on both sides.
        (
            vec![
                one("a", "10.0.0.0/24", "198.51.100.0/24"),
                one("b", "10.0.1.0/24", "203.0.113.0/24"),
            ],
            None,
        ),
        // 21: different types never shadow each other.
        (
            vec![
                snat(
                    "a",
                    json!({"match": {"source": ["10.0.0.0/24"]}, "translate": {"addresses": ["198.51.100.0/24"]}}),
                ),
                one("b", "10.0.0.0/24", "198.51.100.0/24"),
            ],
            None,
        ),
        // 22: nat66 rules of one type shadow too.
        (
            vec![
                rule(
                    "a",
                    json!({"type": "nat66", "match": {"source": ["fd00:1::/48"]}, "translate": {"addresses": ["2001:db8:1::/48"]}}),
                ),
                rule(
                    "b",
                    json!({"type": "nat66", "match": {"source": ["fd00:1:0:2::/64"]}, "translate": {"addresses": ["2001:db8:2::/64"]}}),
                ),
            ],
            Some(("b", "spec.match", "both match src fd00:1:0:2::/64", "a")),
        ),
    ];
    for (i, (objs, want)) in cases.into_iter().enumerate() {
        let errs = cross::validate_set(&objs);
        match want {
            None => assert!(errs.is_empty(), "case {i}: {errs:?}"),
            Some((name, field, reason, other)) => {
                let e = errs
                    .iter()
                    .find(|e| e.field == field)
                    .unwrap_or_else(|| panic!("case {i}: {errs:?}"));
                assert_eq!(e.kind, "NatRule", "case {i}");
                assert_eq!(e.name, name, "case {i}");
                assert!(e.reason.contains(reason), "case {i}: {}", e.reason);
                assert_eq!(
                    e.related.as_ref().map(|r| r.name.as_str()),
                    Some(other),
                    "case {i}"
                );
            }
        }
    }
}
