//! An object this gateway does not apply (a kind it has no support for,
//! or a NatRule of a type it does not translate) is not stored as if it
//! worked: its status says it is not applied, and why.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_daemon::{Daemon, ServeArgs};
use weir_model::{Object, State};

const DAY0: &str = "\
apiVersion: weir/v1
kind: Vpc
metadata: {name: blue}
spec: {}
---
apiVersion: weir/v1
kind: NatRule
metadata: {name: six}
spec:
  type: nat64
  match:
    destination: [64:ff9b::/96]
  translate:
    addresses: [192.0.2.64/28]
---
apiVersion: weir/v1
kind: NatRule
metadata: {name: web}
spec:
  type: dnat44
  match:
    destination: [192.0.2.2/32]
    protocol: tcp
    ports: 443
  translate:
    addresses: [10.0.0.80/32]
    ports: 8443
";

fn args(dir: &std::path::Path) -> ServeArgs {
    let config = dir.join("day0.yaml");
    std::fs::write(&config, DAY0).unwrap();
    ServeArgs {
        config: Some(config),
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

fn settled(d: &Daemon, kind: &str, name: &str) -> Object {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = d.rt.block_on(d.client.get(kind, name)).unwrap();
        let state = o.status.as_ref().map(|s| s.state);
        if state.is_some_and(|s| s != State::Unknown) || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_nat_type_the_gateway_does_not_translate_is_reported_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&args(dir.path()), Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("start: {}", e.1));

    let vpc = settled(&d, "Vpc", "blue");
    assert_eq!(vpc.status.unwrap().state, State::Configured);

    let nat = settled(&d, "NatRule", "six");
    let status = nat.status.expect("a status");
    assert_eq!(status.state, State::Failed);
    assert_eq!(
        status.reason.as_deref(),
        Some("nat64 rules are not supported on this gateway yet")
    );
    assert_eq!(status.observed_generation, Some(1));

    // The other types of the kind are applied.
    let web = settled(&d, "NatRule", "web");
    assert_eq!(web.status.unwrap().state, State::Configured);
    d.shutdown();
}
