//! The conformance suite against a real etcd (started per test), and
//! etcd-only behaviour: surviving an etcd restart.

use std::time::{Duration, Instant};

use weir_store::testing::conformance::next_event;
use weir_store::testing::EtcdServer;
use weir_store::{EtcdStore, Store, Txn};

async fn make() -> (EtcdStore, EtcdServer) {
    let server = EtcdServer::start();
    let store = EtcdStore::connect(&[server.endpoint()]).await.unwrap();
    (store, server)
}

weir_store::store_conformance_tests!(make());

/// Retries a put until etcd answers again.
async fn put_retrying(store: &EtcdStore, key: &str, value: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.txn(Txn::new().put(key, value)).await {
            Ok(r) => return r.revision,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("etcd did not come back: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_etcd_restart() {
    let (store, mut server) = make().await;
    let start = store.revision().await.unwrap() + 1;
    let mut w = store.watch("/weir/v1/", start).await.unwrap();
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(put_retrying(&store, &format!("/weir/v1/k/{i}"), "before").await);
    }
    for r in &revs[..3] {
        assert_eq!(next_event(&mut w).await.revision, *r);
    }

    server.restart();

    for i in 5..10 {
        revs.push(put_retrying(&store, &format!("/weir/v1/k/{i}"), "after").await);
    }
    // The watch reconnects and resumes after the last revision it delivered:
    // no gap, no duplicate.
    for r in &revs[3..] {
        assert_eq!(next_event(&mut w).await.revision, *r);
    }
    let (kvs, _) = store.list("/weir/v1/k/").await.unwrap();
    assert_eq!(kvs.len(), 10);

    // A restart while nothing is written, then writes.
    server.restart();
    let r = put_retrying(&store, "/weir/v1/k/last", "x").await;
    assert_eq!(next_event(&mut w).await.revision, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_figures() {
    let (store, _server) = make().await;
    let b = weir_store::bench_writes(&store, "/weir/bench/", 1000, 10_000, 200)
        .await
        .unwrap();
    println!("etcd: {b:?}");
    println!(
        "etcd: 1000 singles in {:?} ({:.0}/s, p50 {:?}, p99 {:?}); 10k bulk in {:?}; list {:?}",
        b.singles_elapsed,
        b.singles_per_sec(),
        b.single_p50,
        b.single_p99,
        b.bulk_elapsed,
        b.bulk_list_elapsed
    );
}
