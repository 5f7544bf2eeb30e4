//! The patterns in the kinds' JSON Schemas accept exactly the strings the
//! parsers behind them accept, so the OpenAPI document and the server
//! agree on every address, prefix, port range, quantity and name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_json::{json, Value};
use weir_model::net::{cidr_pattern, ip_pattern, MAC_PATTERN};
use weir_model::registry::schema_of;
use weir_model::{ByteSize, Cidr, PortRange, Rate, Registry};

fn matcher(schema: Value) -> impl Fn(&str) -> bool {
    let v = jsonschema::validator_for(&schema).unwrap();
    move |s: &str| v.is_valid(&json!(s))
}

/// The string branch of a type's `anyOf` schema.
fn string_branch<T: schemars::JsonSchema>() -> Value {
    let s = schema_of::<T>();
    s["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "string")
        .cloned()
        .unwrap()
}

/// Addresses written the ways people write them, and near misses.
fn address_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string()),
        any::<u128>().prop_map(|a| Ipv6Addr::from(a).to_string()),
        // Mostly-zero IPv6 addresses, so that "::" shows up everywhere.
        (any::<u16>(), 0usize..8, any::<u16>(), 0usize..8).prop_map(|(a, i, b, j)| {
            let mut g = [0u16; 8];
            g[i] = a;
            g[j] = b;
            Ipv6Addr::from(g).to_string()
        }),
        (
            any::<u32>(),
            prop::sample::select(vec!["::ffff:", "::", "64:ff9b::", "1:2:3:4:5:6:"])
        )
            .prop_map(|(a, p)| format!("{p}{}", Ipv4Addr::from(a))),
        "[0-9a-fA-F:.]{0,20}",
        "[0-9.]{1,18}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,4}",
        "([0-9a-f]{1,5}:){1,8}[0-9a-f]{0,5}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn addresses(text in address_text()) {
        let m = matcher(json!({"type": "string", "pattern": ip_pattern()}));
        prop_assert_eq!(text.parse::<IpAddr>().is_ok(), m(&text), "{:?}", text);
    }

    #[test]
    fn prefixes(addr in address_text(), len in prop_oneof![
        (0u16..140).prop_map(|l| l.to_string()),
        "[0-9+ -]{0,4}",
    ]) {
        let text = format!("{addr}/{len}");
        let m = matcher(json!({"type": "string", "pattern": cidr_pattern()}));
        prop_assert_eq!(text.parse::<Cidr>().is_ok(), m(&text), "{:?}", text);
    }

    #[test]
    fn port_ranges(text in prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        any::<u32>().prop_map(|p| p.to_string()),
        "[0-9+ -]{1,12}",
    ]) {
        let m = matcher(string_branch::<PortRange>());
        let parsed = text.parse::<PortRange>();
        // A reversed range is refused with its own reason; no pattern says so.
        let reversed = parsed.as_ref().err().is_some_and(|e| e.contains("reversed"));
        if !reversed {
            prop_assert_eq!(parsed.is_ok(), m(&text), "{:?}", text);
        }
    }

    #[test]
    fn quantities(text in prop_oneof![
        "[0-9]{1,6}(\\.[0-9]{0,10})? ?(bit|bps|k|kbit|Kbit|Mbps|mbit|G|Gbit|T|K|KiB|Ki|MB|GB|B|kB|x|)",
        "[0-9. a-zA-Z]{0,10}",
    ]) {
        let rate = matcher(string_branch::<Rate>());
        let size = matcher(string_branch::<ByteSize>());
        prop_assert_eq!(text.parse::<Rate>().is_ok(), rate(&text), "rate {:?}", text);
        prop_assert_eq!(text.parse::<ByteSize>().is_ok(), size(&text), "size {:?}", text);
    }

    #[test]
    fn macs(text in prop_oneof![
        any::<[u8; 6]>().prop_map(|b| b.iter().map(|o| format!("{o:02x}")).collect::<Vec<_>>().join(":")),
        "[0-9a-fA-F:+ ]{15,19}",
    ]) {
        let m = matcher(json!({"type": "string", "pattern": MAC_PATTERN, "not": {"pattern": "^00(:00){5}$"}}));
        let reg = Registry::builtin();
        let doc = json!({"apiVersion": "weir/v1", "kind": "Interface", "metadata": {"name": "a"},
            "spec": {"hostInterface": "eth0", "mac": text}});
        prop_assert_eq!(reg.parse(&doc).is_ok(), m(&text), "{:?}", text);
    }

    #[test]
    fn host_interfaces(text in prop_oneof![".{0,17}", "[a-z0-9./:-]{0,17}", "\\.{1,3}"]) {
        let reg = Registry::builtin();
        let spec = reg.spec_schema("Interface").unwrap();
        let m = matcher(spec["properties"]["hostInterface"].clone());
        let doc = json!({"apiVersion": "weir/v1", "kind": "Interface", "metadata": {"name": "a"},
            "spec": {"hostInterface": text}});
        prop_assert_eq!(reg.parse(&doc).is_ok(), m(&text), "{:?}", text);
    }
}

#[test]
fn integer_fields_carry_their_type_range() {
    let reg = Registry::builtin();
    let vpc = reg.schema("Vpc").unwrap();
    let vni = &vpc["properties"]["spec"]["properties"]["vni"];
    assert_eq!(vni["minimum"], 1);
    assert_eq!(vni["maximum"], weir_model::MAX_VNI);
    let meta = &vpc["properties"]["metadata"]["properties"];
    assert_eq!(meta["revision"]["maximum"], u64::MAX);
    let status = &vpc["properties"]["status"]["properties"];
    assert_eq!(status["attempts"]["maximum"], u32::MAX);
    let ifs = reg.spec_schema("Interface").unwrap();
    assert_eq!(
        ifs["properties"]["mtu"]["maximum"],
        weir_model::InterfaceSpec::MAX_MTU
    );
}
