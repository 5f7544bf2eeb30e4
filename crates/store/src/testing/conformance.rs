//! The conformance suite: what every [`Store`] backend must do. Each
//! function takes a fresh, empty store (nothing else writing to it) and
//! panics on a violation. [`store_conformance_tests!`](crate::store_conformance_tests)
//! turns the whole list into `#[tokio::test]`s for one backend.

use std::time::Duration;

use crate::{Compare, Event, EventKind, Store, StoreError, Txn, WatchStream};

const WAIT: Duration = Duration::from_secs(10);

/// The next event of a watch, failing the test after 10 s or on an error.
pub async fn next_event(stream: &mut WatchStream) -> Event {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(e))) => e,
        Ok(Some(Err(e))) => panic!("watch error: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {WAIT:?}"),
    }
}

/// Asserts that a watch delivers nothing within `wait`.
pub async fn assert_quiet(stream: &mut WatchStream, wait: Duration) {
    if let Ok(item) = tokio::time::timeout(wait, stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

async fn put(store: &dyn Store, key: &str, value: &str) -> u64 {
    let r = store.txn(Txn::new().put(key, value)).await.unwrap();
    assert!(r.succeeded);
    r.revision
}

async fn delete(store: &dyn Store, key: &str) -> u64 {
    let r = store.txn(Txn::new().delete(key)).await.unwrap();
    assert!(r.succeeded);
    r.revision
}

/// Every writing transaction creates exactly one revision; failed and
/// no-op transactions create none; create/mod revisions and versions.
pub async fn revisions(store: &dyn Store) {
    let r0 = store.revision().await.unwrap();
    assert_eq!(put(store, "/weir/v1/a", "1").await, r0 + 1);
    assert_eq!(store.revision().await.unwrap(), r0 + 1);

    let r = store
        .txn(Txn::new().put("/weir/v1/b", "1").put("/weir/v1/c", "1"))
        .await
        .unwrap();
    assert_eq!(r.revision, r0 + 2, "a multi-key txn is one revision");

    let r = store
        .txn(
            Txn::new()
                .when(Compare::Absent("/weir/v1/a".into()))
                .put("/weir/v1/d", "1"),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert_eq!(
        r.revision,
        r0 + 2,
        "a failed txn reports the current revision"
    );

    let r = store
        .txn(Txn::new().delete("/weir/v1/missing"))
        .await
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, r0 + 2, "deleting a missing key changes nothing");
    assert_eq!(store.revision().await.unwrap(), r0 + 2);

    let a = store.get("/weir/v1/a").await.unwrap().unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (r0 + 1, r0 + 1, 1)
    );
    assert_eq!(a.value, b"1");

    assert_eq!(put(store, "/weir/v1/a", "2").await, r0 + 3);
    let a = store.get("/weir/v1/a").await.unwrap().unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (r0 + 1, r0 + 3, 2)
    );
    assert_eq!(a.value, b"2");

    assert_eq!(delete(store, "/weir/v1/a").await, r0 + 4);
    assert!(store.get("/weir/v1/a").await.unwrap().is_none());
    assert_eq!(put(store, "/weir/v1/a", "3").await, r0 + 5);
    let a = store.get("/weir/v1/a").await.unwrap().unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (r0 + 5, r0 + 5, 1),
        "a key put again after a delete starts a new life"
    );

    // Empty values are values.
    put(store, "/weir/v1/empty", "").await;
    let e = store.get("/weir/v1/empty").await.unwrap().unwrap();
    assert!(e.value.is_empty());

    let mut last = store.revision().await.unwrap();
    for i in 0..20 {
        let r = put(store, &format!("/weir/v1/seq/{i}"), "x").await;
        assert_eq!(r, last + 1);
        last = r;
    }
}

/// `get` and `list` by prefix, with exact prefix boundaries.
pub async fn get_and_list(store: &dyn Store) {
    assert!(store.get("/weir/v1/route/a").await.unwrap().is_none());
    let (kvs, r) = store.list("/weir/v1/route/").await.unwrap();
    assert!(kvs.is_empty());
    assert_eq!(r, store.revision().await.unwrap());

    for key in [
        "/weir/v1/route/b",
        "/weir/v1/route/a",
        "/weir/v1/routex",
        "/weir/v1/route",
        "/weir/v1/rout",
        "/weir/v1/route/a/sub",
        "/weir/v1/route0",
        "/weir/v2/route/a",
    ] {
        put(store, key, key).await;
    }
    let rev = store.revision().await.unwrap();

    let (kvs, r) = store.list("/weir/v1/route/").await.unwrap();
    let keys: Vec<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/weir/v1/route/a",
            "/weir/v1/route/a/sub",
            "/weir/v1/route/b"
        ]
    );
    assert_eq!(r, rev);
    for kv in &kvs {
        assert_eq!(kv.value, kv.key.as_bytes());
        assert_eq!(kv.version, 1);
    }

    let (kvs, _) = store.list("/weir/v1/route").await.unwrap();
    assert_eq!(kvs.len(), 6, "{kvs:?}");
    let (kvs, _) = store.list("/weir/v1/").await.unwrap();
    assert_eq!(kvs.len(), 7);
    let (all, _) = store.list("").await.unwrap();
    assert_eq!(all.len(), 8, "an empty prefix lists everything");
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(all, sorted, "lists are sorted by key");

    let got = store.get("/weir/v1/route").await.unwrap().unwrap();
    assert_eq!(got.key, "/weir/v1/route");
    assert!(store.get("/weir/v1/rou").await.unwrap().is_none());

    delete(store, "/weir/v1/route/a").await;
    let (kvs, _) = store.list("/weir/v1/route/").await.unwrap();
    assert_eq!(kvs.len(), 2);
}

/// A failing compare applies nothing; many puts and deletes apply together.
pub async fn txn_atomic(store: &dyn Store) {
    let r1 = put(store, "/weir/v1/x", "1").await;
    put(store, "/weir/v1/y", "1").await;
    let before = store.revision().await.unwrap();

    // Compares: 0 holds, 1 fails, 2 holds, 3 fails, 4 holds, 5 fails.
    let r = store
        .txn(
            Txn::new()
                .when(Compare::ModRevision("/weir/v1/x".into(), r1))
                .when(Compare::ModRevision("/weir/v1/y".into(), r1))
                .when(Compare::Exists("/weir/v1/y".into()))
                .when(Compare::Exists("/weir/v1/nope".into()))
                .when(Compare::Absent("/weir/v1/nope".into()))
                .when(Compare::ModRevision("/weir/v1/x".into(), 0))
                .put("/weir/v1/x", "2")
                .put("/weir/v1/new", "2")
                .delete("/weir/v1/y"),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.failed_compares, [1, 3, 5]);
    assert_eq!(r.revision, before);
    assert_eq!(store.revision().await.unwrap(), before);
    assert_eq!(store.get("/weir/v1/x").await.unwrap().unwrap().value, b"1");
    assert!(store.get("/weir/v1/y").await.unwrap().is_some());
    assert!(store.get("/weir/v1/new").await.unwrap().is_none());

    // ModRevision 0 means "must not exist".
    let r = store
        .txn(
            Txn::new()
                .when(Compare::ModRevision("/weir/v1/new".into(), 0))
                .put("/weir/v1/new", "1"),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    assert!(r.failed_compares.is_empty());

    // Many puts and deletes, one revision.
    let mut seed = Txn::new();
    for i in 0..300 {
        seed = seed.put(format!("/weir/v1/bulk/{i:04}"), "old");
    }
    store.txn(seed).await.unwrap();
    let mut txn = Txn::new().when(Compare::Exists("/weir/v1/bulk/0000".into()));
    for i in 0..300 {
        if i % 3 == 0 {
            txn = txn.delete(format!("/weir/v1/bulk/{i:04}"));
        } else {
            txn = txn.put(format!("/weir/v1/bulk/{i:04}"), "new");
        }
    }
    for i in 300..500 {
        txn = txn.put(format!("/weir/v1/bulk/{i:04}"), "new");
    }
    let r = store.txn(txn).await.unwrap();
    assert!(r.succeeded);
    let (kvs, list_rev) = store.list("/weir/v1/bulk/").await.unwrap();
    assert_eq!(list_rev, r.revision);
    assert_eq!(kvs.len(), 400);
    for kv in &kvs {
        assert_eq!(kv.value, b"new");
        assert_eq!(kv.mod_revision, r.revision, "{kv:?}");
    }

    // Malformed transactions are errors and change nothing.
    let before = store.revision().await.unwrap();
    for bad in [
        Txn::new().put("/weir/v1/d", "1").put("/weir/v1/d", "2"),
        Txn::new().put("/weir/v1/d", "1").delete("/weir/v1/d"),
        Txn::new().put("", "1"),
    ] {
        assert!(
            matches!(store.txn(bad).await, Err(StoreError::InvalidTxn(_))),
            "a malformed txn must be rejected"
        );
    }
    assert_eq!(store.revision().await.unwrap(), before);
}

/// Concurrent transactions with compares on the same key revision: exactly
/// one wins.
pub async fn isolation(store: &dyn Store) {
    let r = put(store, "/weir/v1/k", "0").await;
    for round in 0..5 {
        let current = store.get("/weir/v1/k").await.unwrap().unwrap().mod_revision;
        if round == 0 {
            assert_eq!(current, r);
        }
        let attempt = |i: u32| {
            store.txn(
                Txn::new()
                    .when(Compare::ModRevision("/weir/v1/k".into(), current))
                    .put("/weir/v1/k", format!("{round}-{i}"))
                    .put(format!("/weir/v1/winner/{round}/{i}"), "1"),
            )
        };
        let (a, b, c, d) = tokio::join!(attempt(0), attempt(1), attempt(2), attempt(3));
        let results = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
        let winners: Vec<usize> = (0..4).filter(|&i| results[i].succeeded).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let w = winners[0];
        let k = store.get("/weir/v1/k").await.unwrap().unwrap();
        assert_eq!(k.value, format!("{round}-{w}").as_bytes());
        assert_eq!(k.mod_revision, results[w].revision);
        let (marks, _) = store
            .list(&format!("/weir/v1/winner/{round}/"))
            .await
            .unwrap();
        assert_eq!(marks.len(), 1, "losers must apply nothing");
        for (i, r) in results.iter().enumerate() {
            if i != w {
                assert_eq!(r.failed_compares, [0]);
            }
        }
    }

    // A creation race: only one creates.
    let create = |i: u32| {
        store.txn(
            Txn::new()
                .when(Compare::Absent("/weir/v1/lock".into()))
                .put("/weir/v1/lock", i.to_string()),
        )
    };
    let (a, b, c) = tokio::join!(create(0), create(1), create(2));
    let won = [a.unwrap(), b.unwrap(), c.unwrap()]
        .iter()
        .filter(|r| r.succeeded)
        .count();
    assert_eq!(won, 1);
}

fn check(e: &Event, kind: EventKind, key: &str, value: &str, revision: u64) {
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.kv.value.as_slice(), e.revision),
        (kind, key, value.as_bytes(), revision),
        "{e:?}"
    );
    assert_eq!(e.kv.mod_revision, revision);
}

/// A watch delivers history from its start revision and then live changes,
/// in order, with deletes, only under its prefix.
pub async fn watch(store: &dyn Store) {
    let r1 = put(store, "/weir/v1/route/a", "a1").await;
    let r2 = put(store, "/weir/v1/routex", "x").await;
    let r3 = store
        .txn(
            Txn::new()
                .put("/weir/v1/route/b", "b1")
                .put("/weir/v1/route/c", "c1"),
        )
        .await
        .unwrap()
        .revision;
    let r4 = delete(store, "/weir/v1/route/a").await;
    assert_eq!((r2, r3, r4), (r1 + 1, r1 + 2, r1 + 3));

    let mut w = store.watch("/weir/v1/route/", r1).await.unwrap();
    let mut from_r3 = store.watch("/weir/v1/route/", r3).await.unwrap();
    let mut live = store.watch("/weir/v1/route/", 0).await.unwrap();

    check(
        &next_event(&mut w).await,
        EventKind::Put,
        "/weir/v1/route/a",
        "a1",
        r1,
    );
    let e = next_event(&mut w).await;
    check(&e, EventKind::Put, "/weir/v1/route/b", "b1", r3);
    assert_eq!((e.kv.create_revision, e.kv.version), (r3, 1));
    check(
        &next_event(&mut w).await,
        EventKind::Put,
        "/weir/v1/route/c",
        "c1",
        r3,
    );
    let e = next_event(&mut w).await;
    check(&e, EventKind::Delete, "/weir/v1/route/a", "", r4);

    check(
        &next_event(&mut from_r3).await,
        EventKind::Put,
        "/weir/v1/route/b",
        "b1",
        r3,
    );

    // Live changes.
    let r5 = put(store, "/weir/v1/route/b", "b2").await;
    put(store, "/weir/v1/routex", "x2").await;
    let r7 = store
        .txn(
            Txn::new()
                .put("/weir/v1/route/d", "d1")
                .delete("/weir/v1/route/c"),
        )
        .await
        .unwrap()
        .revision;
    let e = next_event(&mut w).await;
    check(&e, EventKind::Put, "/weir/v1/route/b", "b2", r5);
    assert_eq!((e.kv.create_revision, e.kv.version), (r3, 2));
    check(
        &next_event(&mut w).await,
        EventKind::Put,
        "/weir/v1/route/d",
        "d1",
        r7,
    );
    check(
        &next_event(&mut w).await,
        EventKind::Delete,
        "/weir/v1/route/c",
        "",
        r7,
    );

    check(
        &next_event(&mut live).await,
        EventKind::Put,
        "/weir/v1/route/b",
        "b2",
        r5,
    );
    check(
        &next_event(&mut live).await,
        EventKind::Put,
        "/weir/v1/route/d",
        "d1",
        r7,
    );
    check(
        &next_event(&mut live).await,
        EventKind::Delete,
        "/weir/v1/route/c",
        "",
        r7,
    );

    let mut rest = Vec::new();
    for _ in 0..4 {
        rest.push(next_event(&mut from_r3).await.revision);
    }
    assert_eq!(rest, [r3, r4, r5, r7]);

    assert_quiet(&mut w, Duration::from_millis(300)).await;

    // A watch from a future revision waits for it.
    let mut future = store.watch("/weir/v1/", r7 + 2).await.unwrap();
    put(store, "/weir/v1/route/e", "e1").await;
    let r9 = put(store, "/weir/v1/route/f", "f1").await;
    check(
        &next_event(&mut future).await,
        EventKind::Put,
        "/weir/v1/route/f",
        "f1",
        r9,
    );

    // An empty prefix watches everything.
    let mut all = store.watch("", r1).await.unwrap();
    let mut revs = Vec::new();
    for _ in 0..11 {
        revs.push(next_event(&mut all).await.revision);
    }
    let mut sorted = revs.clone();
    sorted.sort();
    assert_eq!(revs, sorted);
    assert_eq!(*revs.last().unwrap(), r9);
}

/// A big transaction reaches a watcher whole, and many small ones in order.
pub async fn watch_many(store: &dyn Store) {
    let start = store.revision().await.unwrap() + 1;
    let mut w = store.watch("/weir/v1/many/", start).await.unwrap();
    let mut bulk = Txn::new();
    for i in 0..2000 {
        bulk = bulk.put(format!("/weir/v1/many/bulk/{i:05}"), "v");
    }
    let rb = store.txn(bulk).await.unwrap().revision;
    let mut last = rb;
    for i in 0..200 {
        last = put(store, &format!("/weir/v1/many/s/{}", i % 7), &i.to_string()).await;
    }
    let mut keys = Vec::new();
    for _ in 0..2000 {
        let e = next_event(&mut w).await;
        assert_eq!(e.revision, rb);
        keys.push(e.kv.key);
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 2000);
    for i in 0..200 {
        let e = next_event(&mut w).await;
        assert_eq!(e.revision, rb + 1 + i);
        assert_eq!(e.kv.value, i.to_string().as_bytes());
    }
    assert_eq!(last, rb + 200);
}

/// Dropping a watch and watching again from the last revision seen + 1
/// resumes exactly where it stopped.
pub async fn watch_resume(store: &dyn Store) {
    let start = store.revision().await.unwrap() + 1;
    let mut revs = Vec::new();
    for i in 0..10 {
        revs.push(put(store, &format!("/weir/v1/r/{i}"), "1").await);
    }
    let mut w = store.watch("/weir/v1/r/", start).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_event(&mut w).await.revision);
    }
    drop(w);
    for i in 10..15 {
        revs.push(put(store, &format!("/weir/v1/r/{i}"), "1").await);
    }
    let mut w = store
        .watch("/weir/v1/r/", seen.last().unwrap() + 1)
        .await
        .unwrap();
    for _ in 4..15 {
        seen.push(next_event(&mut w).await.revision);
    }
    assert_eq!(seen, revs);
    for i in 15..20 {
        revs.push(put(store, &format!("/weir/v1/r/{i}"), "1").await);
    }
    for _ in 15..20 {
        seen.push(next_event(&mut w).await.revision);
    }
    assert_eq!(seen, revs);
    assert_quiet(&mut w, Duration::from_millis(200)).await;
}

/// A watch from a compacted revision fails with the compact revision;
/// compaction is idempotent and refuses future revisions.
pub async fn compaction(store: &dyn Store) {
    let mut revs = Vec::new();
    for i in 0..6 {
        revs.push(put(store, "/weir/v1/c/k", &i.to_string()).await);
    }
    let mut live = store.watch("/weir/v1/c/", revs[0]).await.unwrap();
    for r in &revs {
        assert_eq!(next_event(&mut live).await.revision, *r);
    }

    store.compact(revs[3]).await.unwrap();
    match store.watch("/weir/v1/c/", revs[1]).await {
        Err(StoreError::Compacted {
            compact_revision, ..
        }) => assert_eq!(compact_revision, revs[3]),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // From just after the compact revision all history is there.
    let mut w = store.watch("/weir/v1/c/", revs[3] + 1).await.unwrap();
    check(
        &next_event(&mut w).await,
        EventKind::Put,
        "/weir/v1/c/k",
        "4",
        revs[4],
    );
    check(
        &next_event(&mut w).await,
        EventKind::Put,
        "/weir/v1/c/k",
        "5",
        revs[5],
    );

    // Current state is untouched; an open watch keeps going.
    assert_eq!(
        store.get("/weir/v1/c/k").await.unwrap().unwrap().value,
        b"5"
    );
    let r = put(store, "/weir/v1/c/k", "6").await;
    assert_eq!(next_event(&mut live).await.revision, r);
    assert_eq!(next_event(&mut w).await.revision, r);

    // Idempotent below the compact revision; no future revisions.
    store.compact(revs[2]).await.unwrap();
    store.compact(revs[3]).await.unwrap();
    let current = store.revision().await.unwrap();
    assert!(matches!(
        store.compact(current + 10).await,
        Err(StoreError::FutureRevision { .. })
    ));
    store.compact(current).await.unwrap();
    match store.watch("/weir/v1/c/", revs[5]).await {
        Err(StoreError::Compacted {
            compact_revision, ..
        }) => assert_eq!(compact_revision, current),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // Watching from "now" still works after compacting everything.
    let mut w = store.watch("/weir/v1/c/", 0).await.unwrap();
    let r = put(store, "/weir/v1/c/k", "7").await;
    assert_eq!(next_event(&mut w).await.revision, r);
}

/// Writes with the benchmark helper and checks its figures are sane.
pub async fn bench_helper(store: &dyn Store) {
    let b = crate::bench_writes(store, "/weir/bench/", 50, 1000, 200)
        .await
        .unwrap();
    assert_eq!((b.singles, b.bulk_keys), (50, 1000));
    assert!(b.single_p50 <= b.single_p99);
    let (kvs, _) = store.list("/weir/bench/").await.unwrap();
    assert_eq!(kvs.len(), 1050);
}

/// Generates one `#[tokio::test]` per conformance function. `$make` is an
/// expression evaluating to a future of `(store, guard)` where `store`
/// implements [`Store`] and `guard` is kept alive for the test (a temp dir,
/// an [`EtcdServer`](super::EtcdServer)).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            revisions, get_and_list, txn_atomic, isolation, watch, watch_many,
            watch_resume, compaction, bench_helper);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::testing::conformance::$name(&store).await;
            }
        )*
    };
}
