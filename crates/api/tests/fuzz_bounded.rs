//! A bounded, in-suite run of what `crates/api/fuzz` does for hours:
//! arbitrary bytes and mutated documents through the server's own body
//! decoding ([`weir_api::decode_body`] then [`Registry::parse`]) and label
//! selectors through [`Selector::parse`]. Nothing may panic, and every
//! refusal must say what is wrong. The selector grammar must also agree
//! with the pattern the OpenAPI document gives for `?labelSelector=`.

use proptest::prelude::*;
use serde_json::{json, Value};
use weir_api::selector::{pattern, Selector};
use weir_api::{decode_body, ApiError};
use weir_model::Registry;

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/yaml"),
    Some("text/plain"),
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
];

/// Valid objects of several kinds, the seeds mutations start from.
fn seeds() -> Vec<Value> {
    vec![
        json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "blue", "labels": {"tier": "web"}}, "spec": {"vni": 100, "vrf": 10}}),
        json!({"apiVersion": "weir/v1", "kind": "Route", "metadata": {"name": "r1"}, "spec": {"prefix": "10.0.0.0/16", "nextHops": [{"address": "192.0.2.1"}, {"address": "fe80::1", "interface": "eth0"}]}}),
        json!({"apiVersion": "weir/v1", "kind": "Interface", "metadata": {"name": "eth0", "node": "gw1"}, "spec": {"hostInterface": "eth0", "mtu": 1500, "addresses": ["10.0.0.1/24", "2001:db8::1/64"], "mac": "02:00:00:00:00:01"}}),
        json!({"apiVersion": "weir/v1", "kind": "NatRule", "metadata": {"name": "n1"}, "spec": {"type": "dnat44", "match": {"destination": ["203.0.113.10/32"], "protocol": "tcp", "ports": "80-81"}, "translate": {"addresses": ["10.0.0.10/32"], "ports": 8080}}}),
        json!({"apiVersion": "weir/v1", "kind": "RateLimit", "metadata": {"name": "rl"}, "spec": {"target": {"kind": "Vpc", "name": "blue"}, "rate": "1.5Gbit", "burst": "64KiB", "pps": 1000}}),
        json!({"apiVersion": "weir/v1", "kind": "BgpNeighbor", "metadata": {"name": "peer"}, "spec": {"router": "r", "address": "192.0.2.2", "remoteAs": 65001, "holdTime": 9, "keepalive": 3}}),
    ]
}

/// Replacement values for one spot of a document.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        "[0-9a-f:./]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer inside `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, c)| pointers(c, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
}

/// The server's refusal must be a 4xx that says something.
fn clear(e: &ApiError) {
    assert!(
        matches!(e.status.as_u16(), 400 | 413 | 415),
        "status {}: {}",
        e.status,
        e.body.error
    );
    assert!(!e.body.error.trim().is_empty());
}

/// Decodes like the server, then parses each document; panics on a
/// panic or an unclear error.
fn check(reg: &Registry, content_type: Option<&str>, body: &[u8]) {
    match decode_body(content_type, body) {
        Err(e) => clear(&e),
        Ok(docs) => {
            for d in docs {
                if let Err(errs) = reg.parse(&d) {
                    assert!(!errs.is_empty());
                    for e in &errs {
                        assert!(!e.reason.trim().is_empty(), "empty reason in {errs:?}");
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_decode_or_fail_clearly(
        body in prop::collection::vec(any::<u8>(), 0..512),
        ct in prop::sample::select(CONTENT_TYPES),
    ) {
        check(&Registry::builtin(), ct, &body);
    }

    #[test]
    fn mutated_documents_decode_or_fail_clearly(
        seed in 0usize..6,
        spot in any::<prop::sample::Index>(),
        replacement in any_json(),
        yaml in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        flip in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
        several in any::<bool>(),
    ) {
        let reg = Registry::builtin();
        let mut doc = seeds()[seed].clone();
        let mut ptrs = Vec::new();
        pointers(&doc, String::new(), &mut ptrs);
        let p = spot.get(&ptrs).clone();
        if p.is_empty() {
            doc = replacement;
        } else if let Some(slot) = doc.pointer_mut(&p) {
            *slot = replacement;
        }
        let doc = if several { json!([doc, seeds()[(seed + 1) % 6]]) } else { doc };
        let mut text = if yaml {
            serde_norway::to_string(&doc).unwrap().into_bytes()
        } else {
            serde_json::to_vec(&doc).unwrap()
        };
        let ct = if yaml { "application/yaml" } else { "application/json" };
        // The structured mutation alone, then with the bytes damaged.
        check(&reg, Some(ct), &text);
        if let Some((i, b)) = flip {
            if !text.is_empty() {
                let at = i.index(text.len());
                text[at] = b;
            }
        }
        text.truncate(cut.index(text.len() + 1));
        check(&reg, Some(ct), &text);
    }

    #[test]
    fn selectors_parse_exactly_what_the_pattern_says(
        text in prop_oneof![
            ".{0,24}",
            "[ a-z0-9=!,._/-]{0,24}",
            "( ?!?[a-z]{1,3}( ?(=|==|!=) ?[a-z0-9]{0,3})? ?,){0,3}[a-z]{1,3}",
        ],
    ) {
        let re = jsonschema::validator_for(&json!({"type": "string", "pattern": pattern()})).unwrap();
        let parsed = Selector::parse(&text);
        if let Err(e) = &parsed {
            prop_assert!(!e.is_empty());
        }
        prop_assert_eq!(parsed.is_ok(), re.is_valid(&json!(text)), "{:?}: {:?}", text, parsed);
    }
}

#[test]
fn whole_floats_and_duplicate_keys_in_json_bodies() {
    let docs = decode_body(Some("application/json"), br#"{"spec": {"mtu": 1500.0}}"#).unwrap();
    assert!(docs[0]["spec"]["mtu"].is_u64(), "{docs:?}");
    let e = decode_body(
        Some("application/json"),
        br#"{"kind": "Vpc", "kind": "Route"}"#,
    )
    .unwrap_err();
    assert_eq!(e.status.as_u16(), 400);
    assert!(e.body.error.contains("duplicate key"), "{}", e.body.error);
    let e = decode_body(Some("application/xml"), b"<a/>").unwrap_err();
    assert_eq!(e.status.as_u16(), 415);
}
