//! NAT sessions over the API: NatRules applied through it, packets sent
//! on memory wires, and `GET /v1/sessions` (with its filters) and the NAT
//! part of `GET /v1/stats` showing what they made.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{json, Value};
use weir_daemon::{Daemon, ServeArgs};
use weir_dataplane::driver::memory::wire;
use weir_dataplane::frames::{self, V4};
use weir_model::{Object, State};
use weir_packet::MacAddr;

const GW_LAN: MacAddr = MacAddr([2, 0, 0, 0, 0x31, 1]);
const GW_WAN: MacAddr = MacAddr([2, 0, 0, 0, 0x32, 1]);
const LAN_HOST: MacAddr = MacAddr([2, 0, 0, 0, 0x31, 2]);
const WAN_HOST: MacAddr = MacAddr([2, 0, 0, 0, 0x32, 2]);

fn args(dir: &std::path::Path) -> ServeArgs {
    ServeArgs {
        config: None,
        store: dir.join("store.redb").display().to_string(),
        listen: format!("unix:{}", dir.join("api.sock").display()),
        token_file: None,
        insecure: false,
        node: Some("gw1".into()),
        workers: 1,
        cores: Vec::new(),
        no_mirror: true,
        ready_file: None,
        history: weir_store::DEFAULT_HISTORY,
        nat_sessions: 4096,
    }
}

fn objects() -> Vec<Object> {
    let o = |kind: &str, name: &str, spec: Value| -> Object {
        serde_json::from_value(json!({"apiVersion": "weir/v1", "kind": kind,
            "metadata": {"name": name}, "spec": spec}))
        .unwrap()
    };
    vec![
        o("Vpc", "blue", json!({})),
        o(
            "Interface",
            "lan",
            json!({"hostInterface": "ss-lan", "driver": "memory", "vpc": "blue",
                "mac": "02:00:00:00:31:01", "addresses": ["10.0.0.1/24"]}),
        ),
        o(
            "Interface",
            "wan",
            json!({"hostInterface": "ss-wan", "driver": "memory", "vpc": "blue",
                "mac": "02:00:00:00:32:01", "addresses": ["192.0.2.1/24"]}),
        ),
        o(
            "NatRule",
            "out",
            json!({"vpc": "blue", "type": "snat44", "interface": "wan",
                "match": {"source": ["10.0.0.0/24"]},
                "translate": {"addresses": ["203.0.113.5/32"]}}),
        ),
        o(
            "NatRule",
            "web",
            json!({"vpc": "blue", "type": "dnat44", "interface": "wan",
                "match": {"destination": ["192.0.2.10/32"], "protocol": "udp", "ports": 5353},
                "translate": {"addresses": ["10.0.0.80/32"], "ports": 53}}),
        ),
    ]
}

fn configured(d: &Daemon, kind: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = d.rt.block_on(d.client.get(kind, name)).unwrap();
        let state = o.status.as_ref().map(|s| s.state);
        if state == Some(State::Configured) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{kind}/{name} not configured: {:?}",
            o.status
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get(d: &Daemon, path: &str) -> (u16, Value) {
    let (s, body) =
        d.rt.block_on(d.client.raw(Method::GET, path, None))
            .unwrap();
    (
        s.as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn sessions(d: &Daemon, query: &str) -> Value {
    let (s, v) = get(d, &format!("/v1/sessions{query}"));
    assert_eq!(s, 200, "{query}: {v}");
    v
}

/// Until `n` sessions are in the table (the workers take a moment, and
/// a packet waiting for ARP may be dropped: `send` is sent again).
fn wait_sessions(d: &Daemon, n: u64, send: &[(&str, Vec<u8>)]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut next_send = Instant::now();
    loop {
        let v = sessions(d, "");
        if v["total"].as_u64() == Some(n) || Instant::now() > deadline {
            return v;
        }
        if Instant::now() >= next_send {
            for (w, f) in send {
                wire(w).inject(f.clone());
            }
            next_send = Instant::now() + Duration::from_millis(200);
        }
        // Answer the gateway's ARP requests on the way, as hosts would.
        for (w, gw, host, ip) in [
            ("ss-wan", GW_WAN, WAN_HOST, [192, 0, 2, 5]),
            ("ss-lan", GW_LAN, LAN_HOST, [10, 0, 0, 80]),
        ] {
            for f in wire(w).collect() {
                if f.len() >= 42 && f[12..14] == [8, 6] && f[38..42] == ip {
                    let sender: [u8; 4] = f[28..32].try_into().unwrap();
                    wire(w).inject(frames::arp(
                        weir_packet::ArpOperation::Reply,
                        gw,
                        host,
                        ip.into(),
                        gw,
                        sender.into(),
                    ));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn sessions_are_listed_filtered_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&args(dir.path()), Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("start: {}", e.1));
    d.rt.block_on(d.client.apply(&objects(), false)).unwrap();
    for (k, n) in [
        ("Interface", "lan"),
        ("Interface", "wan"),
        ("NatRule", "out"),
        ("NatRule", "web"),
    ] {
        configured(&d, k, n);
    }
    assert_eq!(sessions(&d, ""), json!({"total": 0, "items": []}));

    // Out: UDP and a ping from the inside host; in: UDP to the forwarded port.
    let out = V4::new("10.0.0.2".parse().unwrap(), "192.0.2.5".parse().unwrap());
    let inbound = V4::new("192.0.2.5".parse().unwrap(), "192.0.2.10".parse().unwrap());
    let send = [
        (
            "ss-lan",
            frames::udp4(GW_LAN, LAN_HOST, &out, 40000, 53, 16),
        ),
        ("ss-lan", frames::ping4(GW_LAN, LAN_HOST, &out, 7, 1)),
        (
            "ss-wan",
            frames::udp4(GW_WAN, WAN_HOST, &inbound, 41000, 5353, 16),
        ),
    ];
    let all = wait_sessions(&d, 3, &send);
    assert_eq!(all["total"], 3, "{all}");
    assert_eq!(items(&all).len(), 3);
    for s in items(&all) {
        assert_eq!(s["vpc"], "blue", "{s}");
        assert_eq!(s["state"], "active", "{s}");
        assert!(s["idle"].as_u64().is_some_and(|i| i < 60), "{s}");
    }

    let udp_out = sessions(&d, "?protocol=udp&rule=out");
    assert_eq!(udp_out["total"], 1, "{udp_out}");
    let s = &items(&udp_out)[0];
    assert_eq!(s["protocol"], "udp");
    assert_eq!(s["inside"], "10.0.0.2:40000");
    assert!(
        s["outside"].as_str().unwrap().starts_with("203.0.113.5:"),
        "{s}"
    );
    assert_eq!(s["remote"], "192.0.2.5:53");

    let ping = sessions(&d, "?protocol=icmp");
    assert_eq!(ping["total"], 1, "{ping}");
    assert_eq!(items(&ping)[0]["rule"], "out");
    assert_eq!(sessions(&d, "?protocol=1")["total"], 1);

    let web = sessions(&d, "?rule=web");
    assert_eq!(web["total"], 1, "{web}");
    let s = &items(&web)[0];
    assert_eq!(s["inside"], "10.0.0.80:53", "{s}");
    assert_eq!(s["outside"], "192.0.2.10:5353", "{s}");
    assert_eq!(s["remote"], "192.0.2.5:41000", "{s}");

    assert_eq!(sessions(&d, "?inside=10.0.0.2")["total"], 2);
    assert_eq!(sessions(&d, "?inside=10.0.0.80")["total"], 1);
    assert_eq!(sessions(&d, "?outside=203.0.113.5")["total"], 2);
    assert_eq!(sessions(&d, "?outside=192.0.2.10")["total"], 1);
    assert_eq!(sessions(&d, "?vpc=blue")["total"], 3);
    assert_eq!(sessions(&d, "?vpc=default")["total"], 0);
    assert_eq!(sessions(&d, "?rule=nothing")["total"], 0);
    let one = sessions(&d, "?limit=1");
    assert_eq!((one["total"].as_u64(), items(&one).len()), (Some(3), 1));

    for (q, field) in [
        ("?protocol=bogus", "protocol"),
        ("?inside=10.0.0", "inside"),
        ("?limit=-1", "limit"),
        ("?colour=red", "colour"),
    ] {
        let (s, v) = get(&d, &format!("/v1/sessions{q}"));
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["details"][0]["field"], field, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{q}: {v}");
    }

    let (s, stats) = get(&d, "/v1/stats");
    assert_eq!(s, 200);
    let nat = &stats["nat"];
    assert_eq!(nat["capacity"], 4096, "{nat}");
    assert_eq!(nat["active"], 3, "{nat}");
    assert_eq!(
        nat["rules"],
        json!([
            {"name": "out", "active": 2, "created": 2, "expired": 0},
            {"name": "web", "active": 1, "created": 1, "expired": 0},
        ])
    );

    // Deleting a rule ends its sessions.
    d.rt.block_on(d.client.delete("NatRule", "web", None))
        .unwrap();
    let left = wait_sessions(&d, 2, &[]);
    assert_eq!(left["total"], 2, "{left}");
    assert_eq!(sessions(&d, "?rule=web")["total"], 0);
    d.shutdown();
}
