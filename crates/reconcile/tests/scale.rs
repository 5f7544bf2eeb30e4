//! Engine overhead at scale: 100k values in one transaction, and single
//! changes among them. Timings are printed (`--nocapture`); the asserts are
//! loose smoke bounds for debug builds, on CPU time.

use std::time::{Duration, Instant};

use weir_reconcile::{ApplyError, Dependency, Descriptor, Reconciler, State};

/// A value: which interface (for routes) and some data.
#[derive(Clone, Debug, PartialEq)]
struct Obj {
    on: u32,
    data: u32,
}

/// A descriptor that only counts calls, so the figures are the engine's.
struct Counting {
    prefix: &'static str,
    calls: usize,
}

impl Descriptor<Obj> for Counting {
    type Metadata = ();

    fn name(&self) -> &str {
        self.prefix
    }

    fn key_prefix(&self) -> &str {
        self.prefix
    }

    fn create(&mut self, _key: &str, _value: &Obj) -> Result<(), ApplyError> {
        self.calls += 1;
        Ok(())
    }

    fn delete(&mut self, _key: &str, _value: &Obj, _: &()) -> Result<(), ApplyError> {
        self.calls += 1;
        Ok(())
    }

    fn dependencies(&self, _key: &str, value: &Obj) -> Vec<Dependency> {
        match self.prefix {
            "/weir/v1/route/" => vec![
                Dependency::Key(format!("/weir/v1/interface/if{}", value.on)),
                Dependency::AnyOf("/weir/v1/vpc/".to_string()),
            ],
            "/weir/v1/interface/" => vec![Dependency::key("/weir/v1/vpc/blue")],
            _ => Vec::new(),
        }
    }
}

const ROUTES: u32 = 100_000;
const INTERFACES: u32 = 100;

fn engine() -> Reconciler<Obj> {
    let mut engine = Reconciler::new();
    for prefix in ["/weir/v1/vpc/", "/weir/v1/interface/", "/weir/v1/route/"] {
        engine.register(Counting { prefix, calls: 0 });
    }
    engine
}

/// Routes first, then interfaces, then the vpc: everything waits, then
/// cascades when the vpc arrives.
fn worst_order() -> Vec<(String, Option<Obj>)> {
    let mut txn = Vec::new();
    for i in 0..ROUTES {
        let route = Obj {
            on: i % INTERFACES,
            data: i,
        };
        txn.push((format!("/weir/v1/route/r{i}"), Some(route)));
    }
    for i in 0..INTERFACES {
        txn.push((
            format!("/weir/v1/interface/if{i}"),
            Some(Obj { on: 0, data: i }),
        ));
    }
    txn.push((
        "/weir/v1/vpc/blue".to_string(),
        Some(Obj { on: 0, data: 0 }),
    ));
    txn
}

/// Time this thread spent on a CPU (Linux), to tell the engine's cost
/// from waiting on a busy machine.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `f`, prints its wall and CPU time, and returns the CPU time (the
/// wall time where it cannot be read): the engine's cost, not how busy the
/// machine running the tests is.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let cpu = cpu_time();
    let start = Instant::now();
    let out = f();
    let wall = start.elapsed();
    match (cpu, cpu_time()) {
        (Some(a), Some(b)) => {
            println!("{what}: {:?} on cpu ({wall:?} wall)", b - a);
            (out, b - a)
        }
        _ => {
            println!("{what}: {wall:?} wall");
            (out, wall)
        }
    }
}

#[test]
fn hundred_thousand_values_in_one_transaction() {
    let total = (ROUTES + INTERFACES + 1) as usize;

    let mut e = engine();
    let txn = worst_order();
    let (rec, took) = timed("100k routes, dependents first, one transaction", || {
        e.set_desired(txn)
    });
    assert_eq!(rec.operations.len(), total);
    assert_eq!(rec.operations[0].key, "/weir/v1/vpc/blue");
    assert_eq!(e.summary().configured, total);
    assert!(took < Duration::from_secs(3), "{took:?}");

    let mut forward = engine();
    let mut txn = worst_order();
    txn.reverse();
    let (_, took) = timed("100k routes, dependencies first, one transaction", || {
        forward.set_desired(txn)
    });
    assert_eq!(forward.summary().configured, total);
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Single changes cost what they touch, not what exists.
    let (rec, took) = timed("one route deleted", || {
        e.set_desired([("/weir/v1/route/r7".to_string(), None)])
    });
    assert_eq!(rec.operations.len(), 1);
    assert!(took < Duration::from_millis(50), "{took:?}");
    let (rec, took) = timed("one route added", || {
        e.set_desired([(
            "/weir/v1/route/r7".to_string(),
            Some(Obj { on: 7, data: 7 }),
        )])
    });
    assert_eq!(rec.operations.len(), 1);
    assert!(took < Duration::from_millis(50), "{took:?}");

    // An interface with 1000 routes on it goes, and comes back.
    let (rec, took) = timed("interface with 1000 routes deleted", || {
        e.set_desired([("/weir/v1/interface/if3".to_string(), None)])
    });
    assert_eq!(rec.operations.len(), 1001);
    assert_eq!(e.summary().pending, 1000);
    assert!(took < Duration::from_millis(500), "{took:?}");
    let (rec, took) = timed("interface with 1000 routes back", || {
        e.set_desired([(
            "/weir/v1/interface/if3".to_string(),
            Some(Obj { on: 0, data: 3 }),
        )])
    });
    assert_eq!(rec.operations.len(), 1001);
    assert_eq!(
        e.status("/weir/v1/route/r3").unwrap().state,
        State::Configured
    );
    assert!(took < Duration::from_millis(500), "{took:?}");

    // Full resync of the same state: no retrieve here, so no calls.
    let desired: Vec<(String, Obj)> = worst_order()
        .into_iter()
        .map(|(k, v)| (k, v.expect("put")))
        .collect();
    let (rec, took) = timed("full resync of 100k unchanged values", || {
        e.resync_full(desired)
    });
    assert!(rec.operations.is_empty());
    assert!(rec.changes.is_empty());
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Everything goes at once.
    let txn: Vec<(String, Option<Obj>)> =
        worst_order().into_iter().map(|(k, _)| (k, None)).collect();
    let (rec, took) = timed("100k routes deleted in one transaction", || {
        e.set_desired(txn)
    });
    assert_eq!(rec.operations.len(), total);
    assert_eq!(rec.operations.last().unwrap().key, "/weir/v1/vpc/blue");
    assert!(e.statuses().is_empty());
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_long_dependency_chain_does_not_recurse() {
    // Each value depends on the previous; given last-first, every one waits
    // until the head arrives, then the whole chain cascades.
    let mut e = engine();
    let n = 50_000u32;
    struct Chain;
    impl Descriptor<Obj> for Chain {
        type Metadata = ();

        fn name(&self) -> &str {
            "chain"
        }
        fn key_prefix(&self) -> &str {
            "/chain/"
        }
        fn create(&mut self, _: &str, _: &Obj) -> Result<(), ApplyError> {
            Ok(())
        }
        fn delete(&mut self, _: &str, _: &Obj, _: &()) -> Result<(), ApplyError> {
            Ok(())
        }
        fn dependencies(&self, _: &str, v: &Obj) -> Vec<Dependency> {
            if v.on == 0 {
                Vec::new()
            } else {
                vec![Dependency::Key(format!("/chain/{}", v.on - 1))]
            }
        }
    }
    e.register(Chain);
    let txn: Vec<(String, Option<Obj>)> = (0..n)
        .rev()
        .map(|i| (format!("/chain/{i}"), Some(Obj { on: i, data: 0 })))
        .collect();
    let (rec, _) = timed("50k-long chain, tail first", || e.set_desired(txn));
    assert_eq!(rec.operations.len(), n as usize);
    assert_eq!(e.summary().configured, n as usize);
    // Deleting the head takes the whole chain out, tail first.
    let (rec, _) = timed("50k-long chain, head deleted", || {
        e.set_desired([("/chain/0".to_string(), None)])
    });
    assert_eq!(rec.operations.len(), n as usize);
    assert_eq!(rec.operations[0].key, format!("/chain/{}", n - 1));
    assert_eq!(e.summary().pending, n as usize - 1);
}
