//! The conformance suite and crash tests against the embedded backend.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_store::testing::conformance::next_event;
use weir_store::{EmbeddedStore, EventKind, Store, StoreError, Txn};

async fn make() -> (EmbeddedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("store.redb")).unwrap();
    (store, dir)
}

weir_store::store_conformance_tests!(make());

#[tokio::test]
async fn relaxed_txn_is_visible_and_kept_by_the_next_durable_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    let mut w = store.watch("/", 0).await.unwrap();
    let r = store
        .txn(Txn::new().put("/status", "ok").relaxed())
        .await
        .unwrap();
    assert_eq!(r.revision, 1);
    assert_eq!(store.revision().await.unwrap(), 1);
    assert_eq!(store.get("/status").await.unwrap().unwrap().value, b"ok");
    assert_eq!(next_event(&mut w).await.kv.key, "/status");
    store.txn(Txn::new().put("/spec", "1")).await.unwrap();
    assert_eq!(next_event(&mut w).await.revision, 2);
    drop(store);
    // The watch ends once its store is gone, and lets go of the file.
    let end = tokio::time::timeout(Duration::from_secs(5), w.next()).await;
    assert!(end.unwrap().is_none());
    drop(w);
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.revision().await.unwrap(), 2);
    assert_eq!(store.get("/status").await.unwrap().unwrap().value, b"ok");
}

/// Writers racing each other: a watcher sees every revision once, in
/// order, whether it takes events from the latest commit or from history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_every_revision_in_order_under_concurrent_writers() {
    let (store, _dir) = make().await;
    let mut w = store.watch("/", 1).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let txn = Txn::new().put(format!("/w/{t}/{i}"), "x");
                let txn = if i % 2 == 0 { txn.relaxed() } else { txn };
                s.txn(txn).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for rev in 1..=400 {
        assert_eq!(next_event(&mut w).await.revision, rev);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), w.next())
            .await
            .is_err(),
        "no event past the last revision"
    );
}

#[tokio::test]
async fn reopen_keeps_state_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.revision().await.unwrap(), 0, "an empty store is at 0");
    store.txn(Txn::new().put("/a", "1")).await.unwrap();
    store
        .txn(Txn::new().put("/b", "2").delete("/a"))
        .await
        .unwrap();
    assert!(
        EmbeddedStore::open(&path).is_err(),
        "one owner per file at a time"
    );
    let mut w = store.watch("/", 0).await.unwrap();
    drop(store);
    // A watch ends when its store is dropped.
    let end = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap();
    assert!(end.is_none());
    drop(w);

    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.revision().await.unwrap(), 2);
    assert!(store.get("/a").await.unwrap().is_none());
    assert_eq!(store.get("/b").await.unwrap().unwrap().value, b"2");
    let mut w = store.watch("/", 1).await.unwrap();
    assert_eq!(next_event(&mut w).await.kind, EventKind::Put);
    assert_eq!(next_event(&mut w).await.revision, 2);
    assert_eq!(next_event(&mut w).await.revision, 2);
    assert_eq!(
        store.txn(Txn::new().put("/c", "3")).await.unwrap().revision,
        3
    );
}

#[tokio::test]
async fn watch_lagging_behind_compaction_gets_compacted() {
    let (store, _dir) = make().await;
    for i in 0..2000 {
        store
            .txn(Txn::new().put(format!("/k/{i}"), "v"))
            .await
            .unwrap();
    }
    // The watcher reads history in batches and cannot run ahead of a
    // consumer that does not read, so compaction overtakes it.
    let mut w = store.watch("/k/", 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.compact(2000).await.unwrap();
    let mut last = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
        {
            Some(Ok(e)) => {
                assert_eq!(e.revision, last + 1);
                last = e.revision;
            }
            Some(Err(StoreError::Compacted {
                compact_revision, ..
            })) => {
                assert_eq!(compact_revision, 2000);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(last < 2000);
    assert!(w.next().await.is_none(), "an error ends the stream");
}

const CRASH_ENV: &str = "WEIR_STORE_CRASH_CHILD_DB";
const KEYS_PER_TXN: u64 = 5;

/// Run by `crash_recovery` in a child process: writes transactions until
/// killed. Does nothing in a normal test run.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open(path).unwrap();
        let mut i = store.revision().await.unwrap() + 1;
        loop {
            // Every third transaction is relaxed: it may be lost with the
            // crash, but not once a durable one after it has returned.
            let relaxed = i % 3 == 0;
            let mut txn = if relaxed {
                Txn::new().relaxed()
            } else {
                Txn::new()
            };
            for j in 0..KEYS_PER_TXN {
                txn = txn.put(format!("/crash/{i:08}/{j}"), i.to_string());
            }
            txn = txn.put("/crash/counter", i.to_string());
            if i > 1 {
                txn = txn.delete(format!("/crash/{:08}/0", i - 1));
            }
            let r = store.txn(txn).await.unwrap();
            assert_eq!(r.revision, i);
            if !relaxed {
                println!("crash-child: committed {i}");
            }
            i += 1;
        }
    });
}

/// Kills a writer with SIGKILL mid-way, several times, and checks every
/// transaction is wholly present or absent, with contiguous revisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let exe = std::env::current_exe().unwrap();
    let mut committed_seen = 0u64;
    for round in 0..3u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CRASH_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let target = committed_seen + 100 + round * 37;
        let started = Instant::now();
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("crash-child: committed ") {
                committed_seen = n.parse().unwrap();
                if committed_seen >= target {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "child too slow"
            );
        }
        // Let it get into the next transaction, then kill it.
        std::thread::sleep(Duration::from_micros(300 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(committed_seen >= target, "child stopped early");
    }

    let store = EmbeddedStore::open(&path).unwrap();
    let r = store.revision().await.unwrap();
    assert!(
        r >= committed_seen,
        "a committed txn was lost: {r} < {committed_seen}"
    );
    let counter = store.get("/crash/counter").await.unwrap().unwrap();
    assert_eq!(counter.value, r.to_string().as_bytes());
    assert_eq!(counter.mod_revision, r);
    let (kvs, list_rev) = store.list("/crash/").await.unwrap();
    assert_eq!(list_rev, r);
    assert_eq!(kvs.len() as u64, r * (KEYS_PER_TXN - 1) + 1 + 1);
    for kv in &kvs {
        if kv.key == "/crash/counter" {
            continue;
        }
        let mut parts = kv.key.trim_start_matches("/crash/").split('/');
        let i: u64 = parts.next().unwrap().parse().unwrap();
        let j: u64 = parts.next().unwrap().parse().unwrap();
        assert!(i >= 1 && i <= r, "{kv:?}");
        assert_eq!(kv.value, i.to_string().as_bytes());
        assert_eq!((kv.mod_revision, kv.create_revision, kv.version), (i, i, 1));
        assert!(j != 0 || i == r, "txn {}'s delete is missing", i + 1);
    }

    // History: revisions 1..=r, each whole.
    let mut w = store.watch("/crash/", 1).await.unwrap();
    for i in 1..=r {
        let per_txn = KEYS_PER_TXN + 1 + u64::from(i > 1);
        for _ in 0..per_txn {
            let e = next_event(&mut w).await;
            assert_eq!(e.revision, i);
        }
    }
    // And the store carries on.
    let next = store
        .txn(Txn::new().put("/crash/after", "1"))
        .await
        .unwrap();
    assert_eq!(next.revision, r + 1);
    let e = next_event(&mut w).await;
    assert_eq!(e.revision, r + 1);
}

/// The write benchmark's figures, printed (run with --nocapture to see).
#[tokio::test]
async fn bench_figures() {
    let (store, _dir) = make().await;
    let b = weir_store::bench_writes(&store, "/weir/bench/", 1000, 10_000, 200)
        .await
        .unwrap();
    println!("embedded: {b:?}");
    println!(
        "embedded: 1000 singles in {:?} ({:.0}/s, p50 {:?}, p99 {:?}); 10k bulk in {:?}; list {:?}",
        b.singles_elapsed,
        b.singles_per_sec(),
        b.single_p50,
        b.single_p99,
        b.bulk_elapsed,
        b.bulk_list_elapsed
    );
}
