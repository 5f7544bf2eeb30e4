//! Crash safety: concurrent bulk applies, the server SIGKILLed mid-way,
//! restarted on the same store file; every bulk apply is wholly stored or
//! wholly absent, and every acknowledged one is stored.

mod api_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_common::{http, ApiServer, TempDir};

const PER_BATCH: usize = 200;

fn batch_body(b: usize) -> String {
    let items: Vec<String> = (0..PER_BATCH)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"weir/v1","kind":"Route","metadata":{{"name":"c{b}-{i}","labels":{{"batch":"b{b}"}}}},"spec":{{"prefix":"10.{}.{}.0/24","blackhole":true}}}}"#,
                b % 256,
                i
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn count(hostport: &str, b: usize) -> usize {
    let (st, body) = http(
        hostport,
        "GET",
        &format!("/v1/routes?labelSelector=batch%3Db{b}"),
        None,
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["items"].as_array().unwrap().len()
}

#[test]
fn bulk_applies_survive_sigkill_whole_or_not_at_all() {
    let dir = TempDir::new("crash");
    let store = dir.path().join("store.redb");
    for round in 0..3 {
        let mut srv = ApiServer::start(&store, "127.0.0.1:0", &[]);
        let hp = srv.hostport();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let attempted = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..4 {
            let (hp, acked, attempted, stop) =
                (hp.clone(), acked.clone(), attempted.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) && k < 20 {
                    let b = round * 80 + t * 20 + k;
                    k += 1;
                    attempted.lock().unwrap().push(b);
                    match http(&hp, "POST", "/v1/apply", Some(&batch_body(b))) {
                        Ok((200, _)) => acked.lock().unwrap().push(b),
                        Ok((st, body)) => panic!("batch {b}: {st} {body}"),
                        Err(_) => break, // the server died
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(150 + 100 * round as u64));
        srv.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let srv = ApiServer::start(&store, "127.0.0.1:0", &[]);
        let hp = srv.hostport();
        let acked = acked.lock().unwrap().clone();
        let attempted = attempted.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "round {round}: nothing was acknowledged before the kill"
        );
        let mut stored = 0;
        for b in &attempted {
            let n = count(&hp, *b);
            assert!(
                n == 0 || n == PER_BATCH,
                "round {round}: batch {b} is partly stored ({n} of {PER_BATCH})"
            );
            if acked.contains(b) {
                assert_eq!(
                    n, PER_BATCH,
                    "round {round}: acknowledged batch {b} was lost"
                );
            }
            stored += usize::from(n > 0);
        }
        eprintln!(
            "round {round}: {} batches attempted, {} acknowledged, {stored} stored",
            attempted.len(),
            acked.len()
        );
        drop(srv);
    }
}
