//! The conformance suite and crash tests against the embedded backend.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_store::testing::conformance::next_event;
use weir_store::{Compare, EmbeddedStore, EventKind, Store, StoreError, Txn};

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
const OBJECTS: u64 = 4;

fn obj_key(i: u64) -> String {
    format!("/crash/obj/{i}")
}

/// Run by `kill_9_loop` in a child process: clients write desired state
/// (durable), status (relaxed, compare-and-swap on the object's revision)
/// and watch, printing every revision they see, until killed. Does
/// nothing in a normal test run.
///
/// Lines: `ack REV KEY=VALUE KEY=VALUE` for an acknowledged durable
/// transaction, `seen REV KEY` for a key's `mod_revision` a client saw.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open(path).unwrap();
        let start = store.revision().await.unwrap();
        let mut watch = store.watch("/crash/", 0).await.unwrap();
        tokio::spawn(async move {
            while let Some(Ok(e)) = watch.next().await {
                println!("seen {} {}", e.revision, e.kv.key);
            }
        });
        let s = store.clone();
        tokio::spawn(async move {
            // Status: derived from the object, written relaxed.
            for j in 0u64.. {
                let key = obj_key(j % OBJECTS);
                let Some(kv) = s.get(&key).await.unwrap() else {
                    tokio::task::yield_now().await;
                    continue;
                };
                println!("seen {} {key}", kv.mod_revision);
                let spec = String::from_utf8(kv.value).unwrap();
                let spec = spec.split(';').next().unwrap().to_string();
                let r = s
                    .txn(
                        Txn::new()
                            .relaxed()
                            .when(Compare::ModRevision(key.clone(), kv.mod_revision))
                            .put(key.clone(), format!("{spec};status={j}")),
                    )
                    .await
                    .unwrap();
                if r.succeeded {
                    println!("seen {} {key}", r.revision);
                }
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        });
        // Desired state: the object's spec and a log entry, together.
        for n in start + 1.. {
            let key = obj_key(n % OBJECTS);
            let value = format!("spec={n}");
            let log = format!("/crash/log/{n:012}");
            let r = store
                .txn(
                    Txn::new()
                        .put(key.clone(), value.clone())
                        .put(log.clone(), "1"),
                )
                .await
                .unwrap();
            println!("ack {} {key}={value} {log}=1", r.revision);
            // Room for relaxed commits between durable ones: a crash
            // there loses some.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

/// Tiny xorshift: random kill points, reproducible from the seed printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Ack {
    revision: u64,
    puts: Vec<(String, String)>,
}

/// SIGKILLs a child writing desired state and relaxed status while its
/// clients record every revision they see, at random points, many times.
/// After each restart: the store's revision is at or past every revision
/// seen; every acknowledged write is there, whole; a watch resumed from a
/// seen revision gets every later acknowledged write, before and after the
/// crash; a compare-and-swap with any revision seen before the crash fails
/// once the key has been written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let exe = std::env::current_exe().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let rounds: u64 = std::env::var("WEIR_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut max_seen = 0u64;
    let mut jumps = Vec::new();
    for round in 0..rounds {
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
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // Kill after a random number of acknowledged writes.
        let target = 20 + rng.below(200);
        let mut lines = Vec::new();
        let started = Instant::now();
        let mut acks = 0;
        while acks < target {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("child too slow");
            acks += u64::from(line.starts_with("ack "));
            lines.push(line);
        }
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        // What the child's clients printed before dying, they saw.
        lines.extend(rx.try_iter());
        let took = started.elapsed();

        let mut acked = Vec::new();
        let mut seen: Vec<(u64, String)> = Vec::new();
        for line in &lines {
            let mut w = line.split(' ');
            match w.next() {
                Some("ack") => {
                    let revision: u64 = w.next().unwrap().parse().unwrap();
                    let puts: Vec<(String, String)> = w
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap();
                            (k.to_string(), v.to_string())
                        })
                        .collect();
                    for (k, _) in &puts {
                        seen.push((revision, k.clone()));
                    }
                    acked.push(Ack { revision, puts });
                }
                Some("seen") => {
                    let revision: u64 = w.next().unwrap().parse().unwrap();
                    seen.push((revision, w.next().unwrap().to_string()));
                }
                _ => {}
            }
        }
        let round_max = seen.iter().map(|s| s.0).max().unwrap();
        max_seen = max_seen.max(round_max);

        let store = EmbeddedStore::open(&path).unwrap();
        let r0 = store.revision().await.unwrap();
        if let Some(j) = store.skipped_revisions() {
            jumps.push(j.1 + 1 - j.0);
        }
        println!(
            "round {round}: {} acked, {} revisions seen (max {round_max}) in {took:?}; reopened at {r0}, skipped {:?}",
            acked.len(),
            seen.len(),
            store.skipped_revisions()
        );
        assert!(
            r0 >= max_seen,
            "round {round}: the revision went back: {r0} < {max_seen} seen"
        );

        // Every acknowledged write is there, whole: an object's spec and
        // its log entry were written together.
        for a in &acked {
            for (k, v) in &a.puts {
                let kv = store.get(k).await.unwrap();
                let kv = kv.unwrap_or_else(|| panic!("acknowledged {k} at {} lost", a.revision));
                if k.starts_with("/crash/log/") {
                    assert_eq!(kv.value, v.as_bytes());
                }
            }
        }
        for i in 0..OBJECTS {
            let kv = store.get(&obj_key(i)).await.unwrap().unwrap();
            let spec = String::from_utf8(kv.value).unwrap();
            let n: u64 = spec.split(';').next().unwrap()["spec=".len()..]
                .parse()
                .unwrap();
            let last_acked = acked
                .iter()
                .flat_map(|a| a.puts.iter())
                .filter(|(k, _)| *k == obj_key(i))
                .map(|(_, v)| v["spec=".len()..].parse::<u64>().unwrap())
                .max()
                .unwrap_or(0);
            assert!(
                n >= last_acked,
                "{}: spec {n} < acknowledged {last_acked}",
                obj_key(i)
            );
            let log = format!("/crash/log/{n:012}");
            assert!(
                store.get(&log).await.unwrap().is_some(),
                "{log} missing: txn torn"
            );
        }

        // Written after the restart: once per object, and more if the
        // revision had gone back, so that reused numbers would show.
        let mut after = Vec::new();
        let passes = max_seen.saturating_sub(r0) / OBJECTS + 1;
        for p in 0..passes {
            for i in 0..OBJECTS {
                let v = format!("spec=after{round}.{p}");
                let r = store
                    .txn(Txn::new().put(obj_key(i), v.clone()))
                    .await
                    .unwrap();
                after.push((r.revision, obj_key(i), v));
            }
        }

        // A watch resumed from a revision seen before the crash gets every
        // acknowledged write after it, before and after the crash.
        let (from, _) = seen[rng.below(seen.len() as u64) as usize].clone();
        let mut w = store.watch("/crash/", from + 1).await.unwrap();
        let mut want: Vec<(u64, String, String)> = acked
            .iter()
            .filter(|a| a.revision > from)
            .flat_map(|a| {
                a.puts
                    .iter()
                    .map(|(k, v)| (a.revision, k.clone(), v.clone()))
            })
            .chain(after.iter().cloned())
            .collect();
        want.sort();
        let last = after.last().unwrap().0;
        let mut got = Vec::new();
        loop {
            let e = next_event(&mut w).await;
            let done = e.revision == last;
            got.push((e.revision, e.kv.key, String::from_utf8(e.kv.value).unwrap()));
            if done {
                break;
            }
        }
        assert!(got.windows(2).all(|p| p[0].0 <= p[1].0), "out of order");
        for x in &want {
            assert!(
                got.contains(x),
                "round {round}: watch from {} missed {x:?}",
                from + 1
            );
        }

        // Compare-and-swap with any revision seen before the crash: every
        // object has been written since, so all must fail.
        for (rev, key) in seen.iter().filter(|(_, k)| k.starts_with("/crash/obj/")) {
            let r = store
                .txn(
                    Txn::new()
                        .when(Compare::ModRevision(key.clone(), *rev))
                        .put(key.clone(), "stale"),
                )
                .await
                .unwrap();
            assert!(
                !r.succeeded,
                "round {round}: a CAS on {key} with revision {rev} from before the crash succeeded"
            );
        }
        max_seen = max_seen.max(last);
        drop(w);
        drop(store);
        // Let the aborted watcher task go, and the file with it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("revisions skipped per crash: {jumps:?}");
}

/// A clean close skips nothing; a crash after relaxed writes skips what
/// they may have used.
#[tokio::test]
async fn clean_close_keeps_revisions_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    for i in 0..5 {
        store
            .txn(Txn::new().put(format!("/s/{i}"), "x").relaxed())
            .await
            .unwrap();
    }
    store.txn(Txn::new().put("/d", "x")).await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.skipped_revisions(), None);
    assert_eq!(store.revision().await.unwrap(), 6);
    assert_eq!(
        store.txn(Txn::new().put("/e", "x")).await.unwrap().revision,
        7
    );
}

/// History is bounded: older revisions are compacted as the store writes,
/// and a watch from them is told to relist.
#[tokio::test]
async fn history_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open_with_history(&path, 100).unwrap();
    for i in 0..250 {
        let t = Txn::new().put(format!("/h/{}", i % 7), i.to_string());
        store
            .txn(if i % 2 == 0 { t.relaxed() } else { t })
            .await
            .unwrap();
    }
    assert_eq!(store.revision().await.unwrap(), 250);
    assert_eq!(store.compact_revision().await.unwrap(), 151);
    match store.watch("/h/", 150).await {
        Err(StoreError::Compacted {
            requested: 150,
            compact_revision: 151,
        }) => {}
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut w = store.watch("/h/", 151).await.unwrap();
    for rev in 151..=250 {
        assert_eq!(next_event(&mut w).await.revision, rev);
    }
    drop(w);
    drop(store);
    // Let the aborted watcher task go, and the file with it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A smaller limit at the next open trims at once.
    let store = EmbeddedStore::open_with_history(&path, 10).unwrap();
    assert_eq!(store.compact_revision().await.unwrap(), 241);
    assert!(store.watch("/h/", 240).await.is_err());
    assert!(store.watch("/h/", 241).await.is_ok());
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
