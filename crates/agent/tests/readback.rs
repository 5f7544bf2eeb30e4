//! Resync reads an Interface back from the kernel: an intact one is left
//! alone, one whose kernel mirror was deleted from outside is repaired.
//! Needs root (a veth pair and TAPs in this namespace); skipped without.

use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use weir_agent::{kind, Agent, AgentOptions, Desired, PortState};
use weir_model::key;
use weir_reconcile::{OpKind, Reconciler, State, TxnRecord};

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn exists(ifname: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{ifname}")).exists()
}

/// Whether an interface is gone, or goes within a few seconds (the kernel
/// unregisters a TAP shortly after its last descriptor closes).
fn gone(ifname: &str) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while exists(ifname) {
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

fn alias(ifname: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifalias"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A veth pair, deleted when dropped (whatever the test did).
struct Veth(String);

impl Veth {
    fn new(name: &str) -> Veth {
        if exists(name) {
            let _ = ip(&["link", "del", "dev", name]);
        }
        let peer = format!("{name}p");
        assert!(ip(&[
            "link", "add", "dev", name, "type", "veth", "peer", "name", &peer
        ]));
        assert!(ip(&["link", "set", "dev", &peer, "up"]));
        Veth(name.to_string())
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", "dev", &self.0]);
    }
}

fn ops(r: &TxnRecord) -> Vec<(OpKind, String)> {
    r.operations.iter().map(|o| (o.op, o.key.clone())).collect()
}

fn interface(host: &str, driver: &str) -> Value {
    json!({"hostInterface": host, "driver": driver, "addresses": ["10.77.0.1/24"]})
}

fn mirror_is_repaired(driver: &str, tag: &str) {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let id = std::process::id() % 100_000;
    let name = format!("rb{tag}{id}");
    let veth = Veth::new(&format!("wrb{tag}{id}"));
    let tap = format!("cp-{name}");
    let agent = Arc::new(Mutex::new(Agent::start(AgentOptions {
        workers: 1,
        cores: Vec::new(),
        mirror: true,
    })));
    let mut rec = Reconciler::new();
    kind::register_all(&agent, &mut rec);
    let k = key("Interface", &name);
    let desired = vec![(
        k.clone(),
        Desired::new("Interface", &name, interface(&veth.0, driver)),
    )];

    let r = rec.resync_full(desired.clone());
    assert_eq!(ops(&r), [(OpKind::Create, k.clone())], "{r:?}");
    assert_eq!(rec.status(&k).unwrap().state, State::Configured);
    assert!(exists(&tap));
    assert_eq!(alias(&tap), format!("weir:{name}"), "weir marks its mirror");
    let before = rec.metadata::<PortState>(&k).unwrap().clone();
    eprintln!("{name}: driver {:?} ({:?})", before.driver, before.fallback);

    // Intact: read back exactly as the engine holds it, nothing to do.
    let r = rec.resync_full(desired.clone());
    assert!(r.operations.is_empty(), "{r:?}");
    let r = rec.resync_downstream();
    assert!(r.operations.is_empty(), "{r:?}");

    // The mirror deleted from outside: resync opens it again, on the same
    // port, and touches nothing else.
    assert!(ip(&["link", "del", "dev", &tap]));
    assert!(!exists(&tap));
    let r = rec.resync_downstream();
    assert_eq!(ops(&r), [(OpKind::Create, k.clone())], "{r:?}");
    assert!(r.operations[0].result.is_ok(), "{r:?}");
    assert_eq!(rec.status(&k).unwrap().state, State::Configured);
    assert!(exists(&tap));
    assert_eq!(alias(&tap), format!("weir:{name}"));
    let after = rec.metadata::<PortState>(&k).unwrap().clone();
    assert_eq!(after, before, "same port, same mirror id and name");
    assert_eq!(agent.lock().unwrap().port_of(&name).unwrap(), before.port);

    // And again through a full resync with the same desired state.
    assert!(ip(&["link", "del", "dev", &tap]));
    let r = rec.resync_full(desired.clone());
    assert_eq!(ops(&r), [(OpKind::Create, k.clone())], "{r:?}");
    assert!(exists(&tap));
    let r = rec.resync_full(desired);
    assert!(r.operations.is_empty(), "{r:?}");

    // Removing it takes the mirror with it.
    let r = rec.resync_full(Vec::new());
    assert_eq!(ops(&r), [(OpKind::Delete, k)], "{r:?}");
    agent.lock().unwrap().shutdown();
    assert!(gone(&tap), "{tap} outlives its port");
}

#[test]
fn deleted_mirror_is_recreated_on_afpacket() {
    mirror_is_repaired("afpacket", "p");
}

#[test]
fn deleted_mirror_is_recreated_on_afxdp() {
    mirror_is_repaired("auto", "x");
}
