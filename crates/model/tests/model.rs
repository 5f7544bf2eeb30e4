use std::path::PathBuf;

use serde_json::{json, Value};
use weir_model::*;

fn testdata(dir: &str) -> Vec<(PathBuf, String)> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(dir);
    let mut v: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let s = std::fs::read_to_string(&p).unwrap();
            (p, s)
        })
        .collect();
    v.sort();
    v
}

fn all_valid() -> Vec<Object> {
    let r = Registry::builtin();
    testdata("valid")
        .into_iter()
        .flat_map(|(p, s)| {
            r.parse_yaml(&s)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

#[test]
fn every_valid_file_parses_and_every_kind_is_covered() {
    let objs = all_valid();
    for k in BUILTIN_KINDS {
        assert!(objs.iter().any(|o| o.kind == *k), "no valid example of {k}");
    }
    assert!(objs.len() >= 20);
}

#[test]
fn valid_set_passes_cross_object_validation() {
    let r = Registry::builtin();
    let objs = all_valid();
    r.validate_set(&objs).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn round_trips_yaml_object_json_object() {
    let r = Registry::builtin();
    for o in all_valid() {
        let json = o.to_json();
        let back = r.parse_json(&json).unwrap();
        assert_eq!(o, back, "JSON round trip of {}", o.key());
        let plain: Object = serde_json::from_str(&json).unwrap();
        assert_eq!(o, plain);
        let yaml = o.to_yaml();
        let back = r.parse_yaml(&yaml).unwrap();
        assert_eq!(vec![o.clone()], back, "YAML round trip of {}", o.key());
    }
}

#[test]
fn valid_examples_match_their_json_schema() {
    let r = Registry::builtin();
    for (p, s) in testdata("valid") {
        for doc in weir_model::yaml::documents(&s).unwrap() {
            let kind = doc["kind"].as_str().unwrap();
            let schema = r.schema(kind).unwrap();
            let v = jsonschema::validator_for(schema).unwrap();
            let errs: Vec<String> = v
                .iter_errors(&doc)
                .map(|e| format!("{} at {}", e, e.instance_path().as_str()))
                .collect();
            assert!(errs.is_empty(), "{} {kind}: {errs:?}", p.display());
            // The normalised form must validate too.
            let o = r.parse(&doc).unwrap();
            let n = serde_json::to_value(&o).unwrap();
            assert!(v.is_valid(&n), "{} normalised {kind}", p.display());
        }
    }
}

#[test]
fn schemas_are_complete() {
    let r = Registry::builtin();
    for k in BUILTIN_KINDS {
        let s = r.schema(k).unwrap();
        jsonschema::validator_for(s).unwrap();
        assert_eq!(s["properties"]["kind"]["const"], json!(k));
        assert_eq!(
            s["properties"]["spec"]["additionalProperties"],
            json!(false),
            "{k}"
        );
    }
    let route = r.spec_schema("Route").unwrap();
    assert_eq!(route["required"], json!(["prefix"]));
    assert_eq!(route["oneOf"].as_array().unwrap().len(), 5);
    let iface = r.spec_schema("Interface").unwrap();
    assert_eq!(iface["properties"]["mtu"]["minimum"], json!(68));
    assert_eq!(iface["properties"]["mtu"]["maximum"], json!(2030));
    assert_eq!(iface["properties"]["driver"]["default"], json!("auto"));
    let s = serde_json::to_string(r.schema("BgpNeighbor").unwrap()).unwrap();
    assert!(s.contains("l2vpn-evpn"));
    assert!(!s.contains("$ref"), "schemas are self-contained");
}

#[test]
fn invalid_testdata_files() {
    let r = Registry::builtin();
    for (p, s) in testdata("invalid") {
        let errs = r.parse_yaml(&s).expect_err(&p.display().to_string());
        let expects: Vec<(&str, &str)> = s
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|l| l.split_once(" | ").unwrap())
            .collect();
        assert!(!expects.is_empty());
        for (field, reason) in expects {
            let e = errs
                .on_field(field)
                .unwrap_or_else(|| panic!("{}: no error on {field}: {errs}", p.display()));
            assert!(
                e.reason.contains(reason),
                "{}: {field}: {:?} lacks {reason:?}",
                p.display(),
                e.reason
            );
        }
    }
}

fn obj(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": "weir/v1", "kind": kind, "metadata": {"name": "x"}, "spec": spec})
}

#[test]
fn bad_inputs_give_field_and_reason() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            obj("Route", json!({"prefix": "10.0.0.0/8"})),
            "spec",
            "got none",
        ),
        (
            obj("Route", json!({"prefix": "10.0.0.0", "blackhole": true})),
            "spec.prefix",
            "no prefix length",
        ),
        (
            obj("Route", json!({"prefix": "10.0.0.0/33", "blackhole": true})),
            "spec.prefix",
            "0 to 32",
        ),
        (
            obj("Route", json!({"prefix": "nonsense/8", "blackhole": true})),
            "spec.prefix",
            "not an IPv4 or IPv6 address",
        ),
        (
            obj("Route", json!({"prefix": "10.0.0.0/8", "blackhole": false})),
            "spec.blackhole",
            "must be true",
        ),
        (
            obj("Route", json!({"prefix": "10.0.0.0/8", "reject": "maybe"})),
            "spec.reject",
            "unknown variant",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "2001:db8::/32", "nextHop": {"address": "10.0.0.1"}}),
            ),
            "spec.nextHop.address",
            "expected an IPv6 address because spec.prefix is IPv6",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "::/0", "nextHop": {"address": "fe80::1"}}),
            ),
            "spec.nextHop.interface",
            "link-local",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "10.0.0.0/8", "nextHop": {"adress": "10.0.0.1"}}),
            ),
            "spec.nextHop.adress",
            "unknown field `adress`",
        ),
        (
            obj("Route", json!({"prefix": "10.0.0.0/8", "nextHops": []})),
            "spec.nextHops",
            "1 to 64",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "10.0.0.0/8", "nextHops": (0..65).map(|i| json!({"address": format!("10.1.0.{i}")})).collect::<Vec<_>>()}),
            ),
            "spec.nextHops",
            "got 65",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "10.0.0.0/8", "nextHops": [{"address": "10.0.0.1"}, {"address": "10.0.0.1"}]}),
            ),
            "spec.nextHops[1]",
            "listed twice",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "10.0.0.0/8", "nextHops": [{"address": "10.0.0.1"}, {"address": "x"}]}),
            ),
            "spec.nextHops[1].address",
            "invalid IP address",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "10.0.0.0/8", "interface": "Eth0"}),
            ),
            "spec.interface",
            "invalid character 'E'",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "10.0.0.0/8", "blackhole": true, "distance": 0}),
            ),
            "spec.distance",
            "between 1 and 255",
        ),
        (
            obj(
                "Route",
                json!({"prefix": "10.0.0.0/8", "nextHop": {"address": "224.0.0.1"}}),
            ),
            "spec.nextHop.address",
            "multicast",
        ),
        (
            obj(
                "Interface",
                json!({"hostInterface": "eth0", "addresses": ["10.0.0.255/24"]}),
            ),
            "spec.addresses[0]",
            "broadcast",
        ),
        (
            obj(
                "Interface",
                json!({"hostInterface": "eth0", "addresses": ["2001:db8::/64"]}),
            ),
            "spec.addresses[0]",
            "needs a host part",
        ),
        (
            obj("Interface", json!({"hostInterface": "eth0", "mtu": 67})),
            "spec.mtu",
            "between 68 and 2030",
        ),
        (
            obj("Interface", json!({"hostInterface": "eth0", "mtu": 9000})),
            "spec.mtu",
            "at most 2030, got 9000: packet buffers hold 2048 bytes",
        ),
        (
            obj(
                "Interface",
                json!({"hostInterface": "averyveryverylongname"}),
            ),
            "spec.hostInterface",
            "1 to 15",
        ),
        (
            obj(
                "Interface",
                json!({"hostInterface": "eth0", "driver": "dpdk"}),
            ),
            "spec.driver",
            "unknown variant `dpdk`",
        ),
        (
            obj(
                "Interface",
                json!({"hostInterface": "eth0", "mac": "01:00:5e:00:00:01"}),
            ),
            "spec.mac",
            "multicast",
        ),
        (
            obj("Interface", json!({"hostInterface": "eth0", "mac": "zz"})),
            "spec.mac",
            "not a MAC address",
        ),
        (
            obj("Interface", json!({"mtu": 1500})),
            "spec",
            "missing field `hostInterface`",
        ),
        (obj("Vpc", json!({"vrf": 254})), "spec.vrf", "reserved"),
        (
            obj("Vpc", json!({"vni": 0})),
            "spec.vni",
            "between 1 and 16777214",
        ),
        (
            obj(
                "Subnet",
                json!({"vpc": "blue", "cidr": "10.0.0.0/24", "gateway": "10.0.1.1"}),
            ),
            "spec.gateway",
            "not inside spec.cidr",
        ),
        (
            obj(
                "Subnet",
                json!({"vpc": "blue", "cidr": "10.0.0.0/24", "gateway": "2001:db8::1"}),
            ),
            "spec.gateway",
            "expected an IPv4 address because spec.cidr is IPv4",
        ),
        (
            obj(
                "Subnet",
                json!({"vpc": "blue", "cidr": "10.0.0.0/24", "vlan": 4095}),
            ),
            "spec.vlan",
            "between 1 and 4094",
        ),
        (
            obj("Subnet", json!({"vpc": "blue", "cidr": "10.0.0.4/24"})),
            "spec.cidr",
            "did you mean 10.0.0.0/24",
        ),
        (
            obj(
                "Peering",
                json!({"vpcs": ["a"], "expose": {"a": ["10.0.0.0/8"]}}),
            ),
            "spec.vpcs",
            "exactly two",
        ),
        (
            obj(
                "Peering",
                json!({"vpcs": ["a", "b"], "expose": {"a": ["10.0.0.0/8"], "b": ["10.1.0.0/16"]}}),
            ),
            "spec.expose.b[0]",
            "overlaps 10.0.0.0/8",
        ),
        (
            obj(
                "NatRule",
                json!({"type": "snat44", "translate": {"addresses": ["2001:db8::1/128"]}}),
            ),
            "spec.translate.addresses[0]",
            "expected an IPv4 prefix because spec.type is snat44",
        ),
        (
            obj(
                "NatRule",
                json!({"type": "dnat44", "translate": {"addresses": ["10.0.0.1/32"]}}),
            ),
            "spec.match.destination",
            "required for dnat44",
        ),
        (
            obj(
                "NatRule",
                json!({"type": "nat64", "match": {"destination": ["64:ff9b::/97"]}, "translate": {"addresses": ["192.0.2.0/28"]}}),
            ),
            "spec.match.destination[0]",
            "RFC 6052",
        ),
        (
            obj(
                "NatRule",
                json!({"type": "snat44", "match": {"ports": 80}, "translate": {"addresses": ["192.0.2.1/32"]}}),
            ),
            "spec.match.ports",
            "tcp or udp",
        ),
        (
            obj(
                "NatRule",
                json!({"type": "snat44", "match": {"protocol": "tcp", "ports": "90-80"}, "translate": {"addresses": ["192.0.2.1/32"]}}),
            ),
            "spec.match.ports",
            "reversed",
        ),
        (
            obj(
                "NatRule",
                json!({"type": "nat46", "translate": {"addresses": []}}),
            ),
            "spec.type",
            "unknown variant `nat46`",
        ),
        (
            obj(
                "RateLimit",
                json!({"target": {"kind": "Route", "name": "r"}, "rate": "1Gbit"}),
            ),
            "spec.target.kind",
            "unknown variant `Route`",
        ),
        (
            obj(
                "RateLimit",
                json!({"target": {"kind": "Vpc", "name": "b"}, "rate": "1Gbit", "burst": "1KiB"}),
            ),
            "spec.burst",
            "full-size frame",
        ),
        (
            obj(
                "RateLimit",
                json!({"target": {"kind": "Vpc", "name": "b"}, "rate": 0}),
            ),
            "spec.rate",
            "greater than 0",
        ),
        (
            obj(
                "RateLimit",
                json!({"target": {"kind": "Vpc", "name": "b"}, "rate": "1Gbit", "direction": "up"}),
            ),
            "spec.direction",
            "unknown variant `up`",
        ),
        (
            obj("Vtep", json!({"address": "0.0.0.0", "interface": "wan"})),
            "spec.address",
            "unspecified",
        ),
        (
            obj(
                "Vtep",
                json!({"address": "192.0.2.1", "interface": "wan", "vnis": [1, 1]}),
            ),
            "spec.vnis[1]",
            "listed twice",
        ),
        (
            obj(
                "Vtep",
                json!({"address": "192.0.2.1", "interface": "wan", "udpPort": 0}),
            ),
            "spec.udpPort",
            "between 1 and 65535",
        ),
        (
            obj(
                "BgpRouter",
                json!({"asn": 4294967296u64, "routerId": "1.1.1.1"}),
            ),
            "spec.asn",
            "invalid value",
        ),
        (
            obj("BgpRouter", json!({"asn": 23456, "routerId": "1.1.1.1"})),
            "spec.asn",
            "AS_TRANS",
        ),
        (
            obj(
                "BgpRouter",
                json!({"asn": 65000, "routerId": "2001:db8::1"}),
            ),
            "spec.routerId",
            "invalid IPv4 address",
        ),
        (
            obj(
                "BgpNeighbor",
                json!({"router": "r", "address": "10.0.0.1", "remoteAs": 1, "holdTime": 2}),
            ),
            "spec.holdTime",
            "at least 3",
        ),
        (
            obj(
                "BgpNeighbor",
                json!({"router": "r", "address": "10.0.0.1", "remoteAs": 1, "holdTime": 9, "keepalive": 9}),
            ),
            "spec.keepalive",
            "less than spec.holdTime",
        ),
        (
            obj(
                "BgpNeighbor",
                json!({"router": "r", "address": "10.0.0.1", "remoteAs": 1, "addressFamilies": ["ipv4-multicast"]}),
            ),
            "spec.addressFamilies[0]",
            "unknown variant",
        ),
        (
            json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "a".repeat(64)}}),
            "metadata.name",
            "at most 63",
        ),
        (
            json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "a_b"}}),
            "metadata.name",
            "invalid character '_'",
        ),
        (
            json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "a", "nmae": "b"}}),
            "metadata.nmae",
            "unknown field `nmae`",
        ),
        (
            json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "a"}, "sepc": {}}),
            "sepc",
            "unknown field `sepc`",
        ),
        (
            json!({"apiVersion": "weir/v1", "kind": "route", "metadata": {"name": "a"}}),
            "kind",
            "did you mean Route?",
        ),
        (
            json!({"kind": "Vpc", "metadata": {"name": "a"}}),
            "apiVersion",
            "required",
        ),
        (
            json!({"apiVersion": "weir/v1", "kind": "Vpc"}),
            "metadata",
            "required",
        ),
        (
            json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "a"}, "status": {"state": "happy"}}),
            "status.state",
            "unknown variant `happy`",
        ),
        (json!(["not", "a", "mapping"]), "", "expected a mapping"),
    ];
    let r = Registry::builtin();
    let mut failures = Vec::new();
    for (doc, field, reason) in &cases {
        match r.parse(doc) {
            Ok(_) => failures.push(format!("{doc}: accepted, expected {field}: {reason}")),
            Err(errs) => match errs.on_field(field) {
                Some(e) if e.reason.contains(reason) => {
                    assert!(e.kind == doc["kind"].as_str().unwrap_or("") || e.kind.is_empty());
                }
                _ => failures.push(format!("{doc}: wanted {field}: {reason}, got: {errs}")),
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
fn several_errors_per_object_are_collected() {
    let r = Registry::builtin();
    let doc = json!({"apiVersion": "weir/v2", "kind": "Interface", "metadata": {"name": "Bad"},
        "spec": {"hostInterface": "eth0", "mtu": 1, "addresses": ["10.0.0.0/24", "10.0.0.0/24"], "vpc": "-x", "queues": 0}});
    let errs = r.parse(&doc).unwrap_err();
    for f in [
        "apiVersion",
        "metadata.name",
        "spec.mtu",
        "spec.addresses[0]",
        "spec.addresses[1]",
        "spec.vpc",
        "spec.queues",
    ] {
        assert!(errs.on_field(f).is_some(), "missing {f}: {errs}");
    }
    assert!(errs
        .iter()
        .all(|e| e.kind == "Interface" && e.name == "Bad"));
}

#[test]
fn multi_document_errors_are_collected_across_documents() {
    let r = Registry::builtin();
    let y = "apiVersion: weir/v1\nkind: Vpc\nmetadata: {name: ok}\n---\napiVersion: weir/v1\nkind: Vpc\nmetadata: {name: bad1}\nspec: {vni: 0}\n---\n---\napiVersion: weir/v1\nkind: Vpc\nmetadata: {name: bad2}\nspec: {vrf: 0}\n";
    let errs = r.parse_yaml(y).unwrap_err();
    let names: Vec<&str> = errs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["bad1", "bad2"]);
    let e = r.parse_yaml("a: [1, 2\nb: c").unwrap_err();
    assert!(e.0[0].reason.contains("invalid YAML"), "{e}");
}

#[test]
fn defaults_are_filled_in() {
    let r = Registry::builtin();
    let o = r
        .parse(&obj("Interface", json!({"hostInterface": "eth0"})))
        .unwrap();
    assert_eq!(
        o.spec,
        json!({"hostInterface": "eth0", "driver": "auto", "mtu": 1500, "vpc": "default", "adminUp": true})
    );
    let s: SubnetSpec = r
        .parse(&obj("Subnet", json!({"vpc": "b", "cidr": "10.0.0.0/24"})))
        .unwrap()
        .typed()
        .unwrap();
    assert_eq!(s.gateway, Some("10.0.0.1".parse().unwrap()));
    let v: VtepSpec = r
        .parse(&obj(
            "Vtep",
            json!({"address": "192.0.2.1", "interface": "wan"}),
        ))
        .unwrap()
        .typed()
        .unwrap();
    assert_eq!(v.udp_port, 4789);
    let n: BgpNeighborSpec = r
        .parse(&obj(
            "BgpNeighbor",
            json!({"router": "r", "address": "2001:db8::1", "remoteAs": 65000}),
        ))
        .unwrap()
        .typed()
        .unwrap();
    assert_eq!(n.address_families, [AddressFamily::Ipv6Unicast]);
}

#[test]
fn typed_access_and_back() {
    let r = Registry::builtin();
    let o = r.parse(&obj("Route", json!({"prefix": "10.8.0.0/16", "nextHops": [{"address": "10.0.0.10"}, {"address": "10.0.0.11"}]}))).unwrap();
    let route: RouteSpec = o.typed().unwrap();
    assert!(matches!(route.target(), Some(RouteTarget::Ecmp(n)) if n.len() == 2));
    assert_eq!(route.vpc, "default");
    assert!(o.typed::<VpcSpec>().is_err());
    let t: Typed<RouteSpec> = (&o).try_into().unwrap();
    assert_eq!(Object::from(t), o);
    assert_eq!(o.key(), "/weir/v1/route/x");
    assert_eq!(r.get("NatRule").unwrap().key_prefix(), "/weir/v1/natrule/");
    assert_eq!(r.lookup("natrules").unwrap().name(), "NatRule");
    assert_eq!(r.references(&o), [ObjectRef::new("Vpc", "default")]);
}

#[test]
fn table_columns_and_rows() {
    let r = Registry::builtin();
    assert_eq!(
        r.columns("Route"),
        ["NAME", "VPC", "PREFIX", "NEXTHOP", "STATE"]
    );
    for o in all_valid() {
        let row = r.row(&o);
        assert_eq!(row.len(), r.columns(&o.kind).len(), "{}", o.kind);
        assert_eq!(row[0], o.metadata.name);
        assert_eq!(row.last().unwrap(), "unknown");
    }
    let mut o = r
        .parse(&obj(
            "Route",
            json!({"prefix": "0.0.0.0/0", "nextHop": {"address": "192.0.2.1", "interface": "wan"}}),
        ))
        .unwrap();
    o.status = Some(Status {
        state: State::Pending,
        missing: vec![ObjectRef::new("Interface", "wan")],
        ..Default::default()
    });
    assert_eq!(
        r.row(&o),
        ["x", "default", "0.0.0.0/0", "192.0.2.1%wan", "pending"]
    );
}

fn with_name(kind: &str, name: &str, spec: Value) -> Object {
    Registry::builtin()
        .parse(&json!({"apiVersion": "weir/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}))
        .unwrap()
}

#[test]
fn cross_object_cases() {
    let vpc = |n: &str, vni: u32| with_name("Vpc", n, json!({"vni": vni}));
    let subnet =
        |n: &str, vpc: &str, cidr: &str| with_name("Subnet", n, json!({"vpc": vpc, "cidr": cidr}));
    let iface = |n: &str, host: &str, node: Option<&str>| {
        let mut o = with_name("Interface", n, json!({"hostInterface": host}));
        o.metadata.node = node.map(String::from);
        o
    };
    type Case = (
        Vec<Object>,
        Option<(&'static str, &'static str, &'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            vec![
                subnet("a", "blue", "10.0.0.0/24"),
                subnet("b", "blue", "10.0.0.128/25"),
            ],
            Some(("b", "spec.cidr", "overlaps 10.0.0.0/24 of Subnet a", "a")),
        ),
        (
            vec![
                subnet("a", "blue", "10.0.0.0/24"),
                subnet("b", "red", "10.0.0.0/24"),
            ],
            None,
        ),
        (
            vec![vpc("blue", 100), vpc("red", 100)],
            Some(("red", "spec.vni", "already used by Vpc blue", "blue")),
        ),
        (vec![vpc("blue", 100), vpc("red", 200)], None),
        (
            vec![iface("a", "eth0", None), iface("b", "eth0", Some("gw1"))],
            Some((
                "b",
                "spec.hostInterface",
                "already used by Interface a",
                "a",
            )),
        ),
        (
            vec![
                iface("a", "eth0", Some("gw2")),
                iface("b", "eth0", Some("gw1")),
            ],
            None,
        ),
        (
            vec![vpc("blue", 1), vpc("blue", 2)],
            Some(("blue", "metadata.name", "more than once", "blue")),
        ),
        (
            vec![
                with_name(
                    "Route",
                    "r1",
                    json!({"prefix": "10.0.0.0/8", "blackhole": true}),
                ),
                with_name(
                    "Route",
                    "r2",
                    json!({"prefix": "10.0.0.0/8", "reject": "unreachable"}),
                ),
            ],
            Some((
                "r2",
                "spec.prefix",
                "Route r1 already routes 10.0.0.0/8",
                "r1",
            )),
        ),
        (
            vec![
                vpc("blue", 1),
                subnet("s", "blue", "10.0.0.0/24"),
                with_name(
                    "Peering",
                    "p",
                    json!({"vpcs": ["blue", "red"], "expose": {"blue": ["10.0.1.0/24"]}}),
                ),
            ],
            Some((
                "p",
                "spec.expose.blue[0]",
                "not inside any Subnet or Route of Vpc blue",
                "blue",
            )),
        ),
        (
            vec![
                vpc("blue", 1),
                subnet("s", "blue", "10.0.0.0/16"),
                with_name(
                    "Peering",
                    "p",
                    json!({"vpcs": ["blue", "red"], "expose": {"blue": ["10.0.1.0/24"]}}),
                ),
            ],
            None,
        ),
        (
            vec![
                with_name(
                    "Interface",
                    "lan",
                    json!({"hostInterface": "eth1", "vpc": "red", "addresses": ["10.0.0.1/24"]}),
                ),
                with_name(
                    "Subnet",
                    "s",
                    json!({"vpc": "blue", "cidr": "10.0.0.0/24", "interface": "lan"}),
                ),
            ],
            Some(("s", "spec.interface", "is in Vpc red", "lan")),
        ),
        (
            vec![
                with_name(
                    "Interface",
                    "lan",
                    json!({"hostInterface": "eth1", "vpc": "blue", "addresses": ["10.0.0.254/24"]}),
                ),
                with_name(
                    "Subnet",
                    "s",
                    json!({"vpc": "blue", "cidr": "10.0.0.0/24", "interface": "lan"}),
                ),
            ],
            Some((
                "s",
                "spec.gateway",
                "not one of Interface lan's addresses",
                "lan",
            )),
        ),
        (
            vec![
                with_name(
                    "Interface",
                    "a",
                    json!({"hostInterface": "eth1", "addresses": ["10.0.0.1/24"]}),
                ),
                with_name(
                    "Interface",
                    "b",
                    json!({"hostInterface": "eth2", "addresses": ["10.0.0.1/16"]}),
                ),
            ],
            Some((
                "b",
                "spec.addresses[0]",
                "already assigned to Interface a",
                "a",
            )),
        ),
        (
            vec![
                with_name(
                    "RateLimit",
                    "l1",
                    json!({"target": {"kind": "Vpc", "name": "b"}, "rate": "1Gbit", "direction": "in"}),
                ),
                with_name(
                    "RateLimit",
                    "l2",
                    json!({"target": {"kind": "Vpc", "name": "b"}, "rate": "2Gbit"}),
                ),
            ],
            Some(("l2", "spec.target", "already limits Vpc/b", "l1")),
        ),
        (
            vec![
                with_name(
                    "RateLimit",
                    "l1",
                    json!({"target": {"kind": "Vpc", "name": "b"}, "rate": "1Gbit", "direction": "in"}),
                ),
                with_name(
                    "RateLimit",
                    "l2",
                    json!({"target": {"kind": "Vpc", "name": "b"}, "rate": "2Gbit", "direction": "out"}),
                ),
            ],
            None,
        ),
        (
            vec![
                with_name("BgpRouter", "a", json!({"asn": 1, "routerId": "1.1.1.1"})),
                with_name("BgpRouter", "b", json!({"asn": 2, "routerId": "1.1.1.2"})),
            ],
            Some(("b", "spec.vpc", "already runs BGP in Vpc default", "a")),
        ),
        (
            vec![
                with_name(
                    "BgpNeighbor",
                    "n1",
                    json!({"router": "r", "address": "10.0.0.1", "remoteAs": 1}),
                ),
                with_name(
                    "BgpNeighbor",
                    "n2",
                    json!({"router": "r", "address": "10.0.0.1", "remoteAs": 2}),
                ),
            ],
            Some(("n2", "spec.address", "already peers with 10.0.0.1", "n1")),
        ),
        (
            vec![
                with_name(
                    "Vtep",
                    "v1",
                    json!({"address": "192.0.2.1", "interface": "a"}),
                ),
                with_name(
                    "Vtep",
                    "v2",
                    json!({"address": "192.0.2.1", "interface": "b"}),
                ),
            ],
            Some((
                "v2",
                "spec.address",
                "already uses 192.0.2.1 port 4789",
                "v1",
            )),
        ),
        // A missing reference is pending, not invalid.
        (
            vec![with_name(
                "Route",
                "r",
                json!({"vpc": "nowhere", "prefix": "10.0.0.0/8", "interface": "gone"}),
            )],
            None,
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

#[test]
fn dynamic_kinds() {
    let mut r = Registry::builtin();
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["vpc", "port"],
        "properties": {
            "vpc": {"type": "string"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "servers": {"type": "array", "items": {"type": "string", "format": "ipv4"}}
        },
        "x-weir-columns": [{"name": "VPC", "path": "/vpc"}, {"name": "PORT", "path": "/port"}],
        "x-weir-references": [{"kind": "Vpc", "path": "/vpc"}]
    });
    r.register_dynamic("DnsProxy", schema).unwrap();
    assert!(matches!(
        r.register_dynamic("DnsProxy", json!({})),
        Err(RegistryError::AlreadyRegistered(_))
    ));
    assert!(matches!(
        r.register_dynamic("Route", json!({})),
        Err(RegistryError::AlreadyRegistered(_))
    ));
    assert!(matches!(
        r.register_dynamic("dns_proxy", json!({})),
        Err(RegistryError::InvalidName(..))
    ));
    assert!(matches!(
        r.register_dynamic("Broken", json!({"type": 12})),
        Err(RegistryError::InvalidSchema(..))
    ));
    assert_eq!(r.get("DnsProxy").unwrap().plural(), "dnsproxies");
    assert_eq!(
        r.get("DnsProxy").unwrap().key_prefix(),
        "/weir/v1/dnsproxy/"
    );

    let ok = r.parse_yaml("apiVersion: weir/v1\nkind: DnsProxy\nmetadata: {name: dns}\nspec: {vpc: blue, port: 53, servers: [9.9.9.9]}\n").unwrap();
    assert_eq!(r.row(&ok[0]), ["dns", "blue", "53", "unknown"]);
    assert_eq!(r.columns("DnsProxy"), ["NAME", "VPC", "PORT", "STATE"]);
    assert_eq!(r.references(&ok[0]), [ObjectRef::new("Vpc", "blue")]);
    assert_eq!(
        r.schema("DnsProxy").unwrap()["properties"]["kind"]["const"],
        "DnsProxy"
    );

    let errs = r
        .parse(
            &json!({"apiVersion": "weir/v1", "kind": "DnsProxy", "metadata": {"name": "dns"},
        "spec": {"vpc": "blue", "port": 70000, "servers": ["1.2.3.4", "nope"], "extra": 1}}),
        )
        .unwrap_err();
    assert!(
        errs.on_field("spec.port").unwrap().reason.contains("70000"),
        "{errs}"
    );
    assert!(errs.on_field("spec.servers[1]").is_some(), "{errs}");
    assert!(
        errs.on_field("spec").unwrap().reason.contains("extra"),
        "{errs}"
    );
    assert!(errs.len() >= 3);

    r.unregister("DnsProxy").unwrap();
    assert!(r.get("DnsProxy").is_none());
    assert!(matches!(
        r.unregister("Route"),
        Err(RegistryError::Builtin(_))
    ));
}

#[test]
fn quantities() {
    let rate = |s: &str| s.parse::<Rate>().map(|r| r.0);
    assert_eq!(rate("10Mbit"), Ok(10_000_000));
    assert_eq!(rate("1Gbit"), Ok(1_000_000_000));
    assert_eq!(rate("1.5Gbit"), Ok(1_500_000_000));
    assert_eq!(rate("100kbit"), Ok(100_000));
    assert_eq!(rate("42"), Ok(42));
    assert!(rate("10Mbyte").is_err());
    assert!(rate("").is_err());
    assert!(rate("99999999999Tbit").is_err());
    assert_eq!(Rate(10_000_000).to_string(), "10Mbit");
    let b = |s: &str| s.parse::<ByteSize>().map(|r| r.0);
    assert_eq!(b("64KiB"), Ok(65536));
    assert_eq!(b("1MiB"), Ok(1 << 20));
    assert_eq!(b("1500"), Ok(1500));
    assert_eq!(b("2kB"), Ok(2000));
    assert!(b("3 parsecs").is_err());
    assert_eq!(ByteSize(65536).to_string(), "64KiB");
    assert_eq!(
        "1024-65535".parse::<PortRange>().unwrap(),
        PortRange {
            first: 1024,
            last: 65535
        }
    );
    assert!("70000".parse::<PortRange>().is_err());
}

mod props {
    use proptest::prelude::*;
    use weir_model::Registry;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            let _ = Registry::builtin().parse_yaml(&s);
        }

        #[test]
        fn yamlish_text_never_panics(s in "(apiVersion: weir/v1\n|kind: (Route|Vpc|Interface)\n|metadata: \\{name: [a-z-]{0,5}\\}\n|spec:\n|  [a-zA-Z]{1,8}: [-0-9a-f.:/\\[\\]{}, ]{0,20}\n|---\n|  - [0-9.]{0,12}\n){0,12}") {
            let _ = Registry::builtin().parse_yaml(&s);
        }

        #[test]
        fn cidr_parsing_never_panics(s in "[0-9a-f.:/]{0,50}") {
            let _ = s.parse::<weir_model::Cidr>();
            let _ = s.parse::<weir_model::Rate>();
            let _ = s.parse::<weir_model::ByteSize>();
            let _ = s.parse::<weir_model::PortRange>();
        }
    }
}
