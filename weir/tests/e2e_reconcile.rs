//! The reconciler end to end, on a real lab: objects applied in the wrong
//! order wait as pending naming what they miss, traffic flows once their
//! dependencies appear and stops when they go, a restarted daemon brings
//! it back from the store alone, and a change written straight into etcd
//! by another writer is applied through watch.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use weir_lab::{unique_name, Lab, Topology};

mod api_common;
use api_common::{Daemon, WEIR};

static SERIAL: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// weir serve in the lab's gateway namespace.
struct Weir(Daemon);

impl std::ops::Deref for Weir {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.0
    }
}

impl std::ops::DerefMut for Weir {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.0
    }
}

impl Weir {
    fn start(lab: &Lab, dir: &Path, store: &str) -> Weir {
        let cmd = lab.node("gw").command(WEIR);
        Weir(Daemon::start(cmd, dir, &["--store", store, "--node", "gw"]))
    }

    fn apply(&self, yaml: &str) {
        let (code, out) = self.cli(&["apply", "-f", "-"], Some(yaml));
        assert_eq!(code, 0, "apply failed: {out}");
    }

    fn object(&self, kind: &str, name: &str) -> serde_json::Value {
        let (code, out) = self.cli(&["get", kind, name, "-o", "json"], None);
        assert_eq!(code, 0, "{out}");
        serde_json::from_str(&out).unwrap()
    }

    /// Wait until the object's status state is `state`; returns the object.
    fn wait_state(&self, kind: &str, name: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = self.object(kind, name);
            if o["status"]["state"] == state {
                return o;
            }
            assert!(
                Instant::now() < deadline,
                "{kind}/{name} never {state}: {o}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const INTERFACES_AND_ROUTE: &str = r#"
apiVersion: weir/v1
kind: Interface
metadata: { name: lan }
spec: { hostInterface: lan, driver: afpacket, vpc: blue, addresses: [10.0.1.1/24] }
---
apiVersion: weir/v1
kind: Interface
metadata: { name: wan }
spec: { hostInterface: wan, driver: afpacket, vpc: blue, addresses: [10.0.2.1/24] }
---
apiVersion: weir/v1
kind: Route
metadata: { name: doc-net }
spec: { vpc: blue, prefix: 198.51.100.0/24, nextHop: { address: 10.0.2.2 } }
"#;

const VPC: &str = "apiVersion: weir/v1\nkind: Vpc\nmetadata: { name: blue }\nspec: {}\n";

fn lab() -> Lab {
    let text = std::fs::read_to_string(repo().join("examples/lab.yaml")).unwrap();
    let name = unique_name("").replace('-', "");
    let lab = Topology::parse(&text.replace("lab: weir-demo", &format!("lab: {name}")))
        .unwrap()
        .up()
        .unwrap();
    // h2 answers for an address behind it, reachable only through the Route.
    lab.node("h2").addr_add("lo", "198.51.100.2/32").unwrap();
    lab
}

fn reaches(lab: &Lab, addr: &str) -> bool {
    lab.node("h1")
        .exec(&["ping", "-c", "1", "-W", "1", addr])
        .is_ok()
}

fn eventually(f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn pending_until_the_vpc_exists_and_back_after_restart() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb").display().to_string();
    let mut weir = Weir::start(&lab, dir.path(), &store);

    // The Route (and the interfaces) before their Vpc: pending, naming it.
    weir.apply(INTERFACES_AND_ROUTE);
    let r = weir.wait_state("route", "doc-net", "pending");
    let missing = r["status"]["missing"].to_string();
    assert!(missing.contains("Vpc") && missing.contains("blue"), "{r}");
    let (_, table) = weir.cli(&["get", "routes"], None);
    assert!(table.contains("pending"), "{table}");
    assert!(!reaches(&lab, "198.51.100.2"));

    // The Vpc arrives: everything is configured and traffic flows.
    weir.apply(VPC);
    weir.wait_state("route", "doc-net", "configured");
    weir.wait_state("interface", "lan", "configured");
    assert!(
        eventually(|| reaches(&lab, "198.51.100.2")),
        "{}",
        weir.log()
    );

    // The Vpc goes: its dependents go back to pending and traffic stops.
    let (code, out) = weir.cli(&["delete", "vpc", "blue"], None);
    assert_eq!(code, 0, "{out}");
    weir.wait_state("route", "doc-net", "pending");
    assert!(eventually(|| !reaches(&lab, "198.51.100.2")));

    // Back, then a restart with nothing reapplied: the store is enough.
    weir.apply(VPC);
    weir.wait_state("route", "doc-net", "configured");
    weir.stop();
    let weir = Weir::start(&lab, dir.path(), &store);
    assert!(
        eventually(|| reaches(&lab, "198.51.100.2")),
        "{}",
        weir.log()
    );
    let (code, hist) = weir.cli(&["history"], None);
    assert_eq!(code, 0, "{hist}");
    assert!(
        hist.contains("create") && hist.contains("/weir/v1/route/doc-net"),
        "{hist}"
    );
    let (code, dot) = weir.cli(&["graph"], None);
    assert_eq!(code, 0);
    assert!(dot.contains("digraph"), "{dot}");
}

/// A real etcd inside the gateway's namespace (the daemon reaches it on
/// that namespace's loopback); killed with the namespace.
fn etcd_in(lab: &Lab, dir: &Path) -> String {
    let data = dir.join("etcd");
    let d = data.display().to_string();
    lab.node("gw")
        .spawn(&[
            "etcd",
            "--name",
            "default",
            "--data-dir",
            &d,
            "--listen-client-urls",
            "http://127.0.0.1:2379",
            "--advertise-client-urls",
            "http://127.0.0.1:2379",
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-cluster",
            "default=http://127.0.0.1:2380",
        ])
        .unwrap();
    let endpoint = "etcd://127.0.0.1:2379".to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = in_gw(lab, &endpoint, |store| async move {
            store.revision().await.is_ok()
        });
        if ok {
            return endpoint;
        }
        assert!(
            Instant::now() < deadline,
            "etcd did not start in the gateway namespace"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run `f` with a store client opened from inside the gateway namespace.
fn in_gw<F, Fut, T>(lab: &Lab, endpoint: &str, f: F) -> T
where
    F: FnOnce(std::sync::Arc<dyn weir_store::Store>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static + Default,
{
    let ep = endpoint.to_string();
    weir_dataplane::driver::in_netns(lab.node("gw").name(), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            match weir_store::open(&ep).await {
                Ok(s) => f(s).await,
                Err(_) => T::default(),
            }
        })
    })
    .unwrap()
}

#[test]
fn a_change_written_straight_into_etcd_is_applied_through_watch() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    weir_store::testing::ensure_etcd();
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = etcd_in(&lab, dir.path());
    let weir = Weir::start(&lab, dir.path(), &endpoint);
    weir.apply(VPC);
    weir.apply(INTERFACES_AND_ROUTE);
    weir.wait_state("route", "doc-net", "configured");
    assert!(eventually(|| reaches(&lab, "198.51.100.2")));

    // Another writer puts a second Route directly into etcd.
    lab.node("h2").addr_add("lo", "203.0.113.2/32").unwrap();
    let mut r = weir.object("route", "doc-net");
    r["metadata"] = serde_json::json!({ "name": "test-net", "generation": 1 });
    r["spec"]["prefix"] = "203.0.113.0/24".into();
    r.as_object_mut().unwrap().remove("status");
    let value = serde_json::to_vec(&r).unwrap();
    let stored = in_gw(&lab, &endpoint, move |store| async move {
        let txn = weir_store::Txn::new().put("/weir/v1/route/test-net".to_string(), value);
        store.txn(txn).await.map(|r| r.succeeded).unwrap_or(false)
    });
    assert!(stored);
    assert!(
        eventually(|| reaches(&lab, "203.0.113.2")),
        "{}",
        weir.log()
    );
    weir.wait_state("route", "test-net", "configured");
}
