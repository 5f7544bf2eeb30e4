//! The conformance suite against a real etcd (started per test), and
//! etcd-only behaviour: surviving an etcd restart.

use std::time::{Duration, Instant};

use weir_store::testing::conformance::next_event;
use weir_store::testing::EtcdServer;
use weir_store::{Compare, EtcdStore, Store, StoreError, Txn};

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

/// A write that gets no answer may still be applied: it says its outcome
/// is unknown, unlike a read (a plain timeout) or a write to an etcd that
/// is not there at all (known not applied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_to_a_frozen_etcd_has_an_unknown_outcome() {
    let mut server = EtcdServer::start();
    let store = EtcdStore::connect(&[server.endpoint()])
        .await
        .unwrap()
        .with_write_timeout(Duration::from_secs(1));
    let key = "/weir/v1/route/frozen";
    let before = store.txn(Txn::new().put(key, "before")).await.unwrap();

    server.freeze();
    let t = Instant::now();
    let err = store
        .txn(
            Txn::new()
                .when(Compare::ModRevision(key.into(), before.revision))
                .put(key, "during"),
        )
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(err.to_string().starts_with("outcome unknown"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let err = store.get(key).await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout(_)), "{err:?}");
    let err = store.txn(Txn::new()).await.unwrap_err();
    assert!(!err.is_outcome_unknown(), "a read-only txn: {err:?}");
    // Watches and compaction are bounded the same way.
    let t = Instant::now();
    let Err(err) = store.watch("/weir/v1/", 1).await else {
        panic!("a watch on a frozen etcd opened");
    };
    assert!(matches!(err, StoreError::Timeout(_)), "{err:?}");
    let err = store.compact(before.revision).await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    server.thaw();
    // Reading back is what decides; either outcome is possible.
    let deadline = Instant::now() + Duration::from_secs(10);
    let now = loop {
        match store.get(key).await {
            Ok(kv) => break kv.unwrap(),
            Err(e) if Instant::now() < deadline => {
                eprintln!("after the thaw: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("etcd did not come back: {e}"),
        }
    };
    assert!(now.value == b"before" || now.value == b"during", "{now:?}");
    println!(
        "the write whose outcome was unknown was {}applied",
        if now.value == b"during" { "" } else { "not " }
    );

    // Nothing listening: the write never left, so it is a plain failure.
    server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let err = store.txn(Txn::new().put(key, "after")).await.unwrap_err();
        eprintln!("etcd gone: {err}");
        if !err.is_outcome_unknown() {
            return;
        }
        // The first request may have gone out on the old connection.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("a write to a stopped etcd kept reporting an unknown outcome");
}
