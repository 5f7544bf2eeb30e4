//! `weir serve` writes status back to each object: after a spec change
//! that leaves the state as it was (configured to configured),
//! `status.observedGeneration` still follows `metadata.generation`.

use std::process::Command;
use std::time::{Duration, Instant};

mod api_common;
use api_common::{Daemon, WEIR};

fn route(prefix: &str) -> String {
    format!(
        "apiVersion: weir/v1\nkind: Route\nmetadata: {{ name: sink, node: t }}\nspec: {{ prefix: {prefix}, blackhole: true }}\n"
    )
}

#[test]
fn observed_generation_follows_spec_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let serve = Daemon::start(
        Command::new(WEIR),
        dir.path(),
        &[
            "--store",
            store.to_str().unwrap(),
            "--node",
            "t",
            "--no-mirror",
        ],
    );
    for (i, prefix) in ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
        .iter()
        .enumerate()
    {
        let (code, out) = serve.cli(&["apply", "-f", "-"], Some(&route(prefix)));
        assert_eq!(code, 0, "{out}");
        let want = i as u64 + 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, out) = serve.cli(&["get", "route", "sink", "-o", "json"], None);
            assert_eq!(code, 0, "{out}");
            let o: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(o["metadata"]["generation"], want, "{o}");
            if o["status"]["observedGeneration"] == want {
                assert_eq!(o["status"]["state"], "configured", "{o}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "observedGeneration never reached {want}: {o}\n{}",
                serve.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
