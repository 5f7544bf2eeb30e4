//! The engine against a fake target: ordering, pending and cascades,
//! retries, invalid values, update and recreate, derived values, resync,
//! history, the graph and change notification.

mod fake;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake::{pending, val, Harness};
use weir_reconcile::{ApplyError, OpKind, State, TxnKind};

// ---- ordering ----

#[test]
fn creates_come_after_their_dependencies_in_one_transaction() {
    let mut h = Harness::new();
    let rec = h.txn(&[
        ("/route/r1", Some(val("10.0.0.0/8").needs("/if/eth0"))),
        ("/if/eth0", Some(val("up").needs("/vpc/blue"))),
        ("/vpc/blue", Some(val("vrf 1"))),
    ]);
    assert_eq!(
        h.calls(),
        ["create /vpc/blue", "create /if/eth0", "create /route/r1"]
    );
    assert_eq!(
        rec.operation_lines(),
        [
            "create /vpc/blue ok",
            "create /if/eth0 ok",
            "create /route/r1 ok"
        ]
    );
    for key in ["/vpc/blue", "/if/eth0", "/route/r1"] {
        assert_eq!(h.state(key), State::Configured, "{key}");
    }
    assert_eq!(h.engine.summary().configured, 3);
}

#[test]
fn deleting_a_dependency_deletes_its_dependents_first_and_they_wait() {
    let mut h = Harness::new();
    h.txn(&[
        ("/vpc/blue", Some(val("vrf 1"))),
        ("/if/eth0", Some(val("up").needs("/vpc/blue"))),
        ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
        ("/route/r2", Some(val("11/8").needs("/if/eth0"))),
    ]);
    h.calls();

    let rec = h.delete("/vpc/blue");
    let calls = h.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[3], "delete /vpc/blue");
    assert_eq!(calls[2], "delete /if/eth0");
    assert!(calls[..2].contains(&"delete /route/r1".to_string()));
    assert!(calls[..2].contains(&"delete /route/r2".to_string()));
    // The deletes of dependents are cascades; the vpc's is the request.
    assert!(rec.operations[..3].iter().all(|o| o.cascade));
    assert!(!rec.operations[3].cascade);

    assert_eq!(h.state("/vpc/blue"), State::Removed);
    assert_eq!(h.state("/if/eth0"), pending(&["/vpc/blue"]));
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0"]));

    // It comes back: so do its dependents, in order.
    h.put("/vpc/blue", val("vrf 1"));
    let calls = h.calls();
    assert_eq!(calls[..2], ["create /vpc/blue", "create /if/eth0"]);
    assert_eq!(calls.len(), 4);
    assert_eq!(h.engine.summary().configured, 4);
}

#[test]
fn deleting_dependency_and_dependent_together_deletes_the_dependent_first() {
    for order in [["/if/eth0", "/route/r1"], ["/route/r1", "/if/eth0"]] {
        let mut h = Harness::new();
        h.txn(&[
            ("/if/eth0", Some(val("up"))),
            ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
        ]);
        h.calls();
        let rec = h.txn(&[(order[0], None), (order[1], None)]);
        assert_eq!(h.calls(), ["delete /route/r1", "delete /if/eth0"]);
        assert_eq!(h.state("/route/r1"), State::Removed);
        assert_eq!(h.state("/if/eth0"), State::Removed);
        let removed: Vec<&str> = rec
            .changes
            .iter()
            .filter(|c| c.status.state == State::Removed)
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(removed, ["/if/eth0", "/route/r1"]);
        assert!(h.engine.statuses().is_empty());
    }
}

// ---- pending and cascades ----

#[test]
fn pending_values_are_applied_when_their_dependencies_appear_in_any_order() {
    let chain = [
        ("/vpc/blue", val("vrf 1")),
        ("/if/eth0", val("up").needs("/vpc/blue")),
        (
            "/route/r1",
            val("10/8").needs("/if/eth0").needs("/vpc/blue"),
        ),
    ];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        // One transaction per value.
        let mut h = Harness::new();
        for &i in &order {
            let (k, v) = &chain[i];
            h.put(k, v.clone());
        }
        assert_eq!(
            h.calls(),
            ["create /vpc/blue", "create /if/eth0", "create /route/r1"],
            "{order:?}"
        );
        assert_eq!(h.engine.summary().configured, 3, "{order:?}");

        // All in one.
        let mut h = Harness::new();
        let changes: Vec<_> = order
            .iter()
            .map(|&i| (chain[i].0, Some(chain[i].1.clone())))
            .collect();
        h.txn(&changes);
        assert_eq!(
            h.calls(),
            ["create /vpc/blue", "create /if/eth0", "create /route/r1"],
            "{order:?}"
        );
    }
}

#[test]
fn pending_names_what_is_missing_and_cascades_in_the_same_transaction() {
    let mut h = Harness::new();
    let rec = h.put(
        "/route/r1",
        val("10/8").needs("/if/eth0").needs("/vpc/blue"),
    );
    assert!(h.calls().is_empty());
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0", "/vpc/blue"]));
    assert_eq!(
        rec.pending().collect::<Vec<_>>(),
        [(
            "/route/r1",
            &["/if/eth0".to_string(), "/vpc/blue".to_string()][..]
        )]
    );

    h.put("/vpc/blue", val("vrf 1"));
    assert_eq!(h.calls(), ["create /vpc/blue"]);
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0"]));

    let rec = h.put("/if/eth0", val("up"));
    assert_eq!(h.calls(), ["create /if/eth0", "create /route/r1"]);
    assert!(!rec.operations[0].cascade);
    assert!(
        rec.operations[1].cascade,
        "the route came with its interface"
    );
    assert_eq!(h.state("/route/r1"), State::Configured);
}

#[test]
fn any_of_prefix_dependencies() {
    let mut h = Harness::new();
    h.put("/route/default", val("0/0").needs_any("/if/"));
    assert_eq!(h.state("/route/default"), pending(&["/if/*"]));

    h.put("/if/eth0", val("up"));
    assert_eq!(h.calls(), ["create /if/eth0", "create /route/default"]);

    // A second interface, then the first goes: still satisfied.
    h.put("/if/eth1", val("up"));
    h.delete("/if/eth0");
    assert_eq!(h.calls(), ["create /if/eth1", "delete /if/eth0"]);
    assert_eq!(h.state("/route/default"), State::Configured);

    // The last one goes: the route goes first.
    h.delete("/if/eth1");
    assert_eq!(h.calls(), ["delete /route/default", "delete /if/eth1"]);
    assert_eq!(h.state("/route/default"), pending(&["/if/*"]));
}

#[test]
fn any_of_is_not_satisfied_by_the_value_itself() {
    let mut h = Harness::new();
    h.put("/if/eth0", val("up").needs_any("/if/"));
    assert_eq!(h.state("/if/eth0"), pending(&["/if/*"]));
    h.put("/if/eth1", val("up"));
    assert_eq!(h.calls(), ["create /if/eth1", "create /if/eth0"]);
}

#[test]
fn a_dependent_changing_to_need_something_missing_leaves_the_target() {
    let mut h = Harness::new();
    h.txn(&[
        ("/if/eth0", Some(val("up"))),
        ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
    ]);
    h.calls();
    h.put("/route/r1", val("10/8").needs("/if/eth1"));
    assert_eq!(h.calls(), ["delete /route/r1"]);
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth1"]));
    h.put("/if/eth1", val("up"));
    assert_eq!(h.calls(), ["create /if/eth1", "create /route/r1"]);
}

#[test]
fn dependency_cycles_fail_instead_of_waiting_forever() {
    let mut h = Harness::new();
    let rec = h.txn(&[
        ("/if/a", Some(val("a").needs("/if/b"))),
        ("/if/b", Some(val("b").needs("/if/c"))),
        ("/if/c", Some(val("c").needs("/if/a"))),
        ("/route/r", Some(val("r").needs("/if/a"))),
        ("/if/self", Some(val("s").needs("/if/self"))),
    ]);
    assert!(h.calls().is_empty());
    for key in ["/if/a", "/if/b", "/if/c"] {
        match h.state(key) {
            State::Failed { error, .. } => {
                assert_eq!(error, "dependency cycle among /if/a, /if/b, /if/c")
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(matches!(h.state("/if/self"), State::Failed { error, .. } if error.contains("cycle")));
    // Outside the cycle, only waiting on it.
    assert_eq!(h.state("/route/r"), pending(&["/if/a"]));
    assert_eq!(rec.changes.len(), 5);

    // Breaking the cycle lets the rest go through.
    h.put("/if/c", val("c"));
    assert_eq!(
        h.calls(),
        [
            "create /if/c",
            "create /if/b",
            "create /if/a",
            "create /route/r"
        ]
    );
    assert_eq!(h.state("/if/a"), State::Configured);
}

#[test]
fn deleting_a_member_of_a_cycle_makes_the_others_pending() {
    let mut h = Harness::new();
    h.txn(&[
        ("/if/a", Some(val("a").needs("/if/b"))),
        ("/if/b", Some(val("b").needs("/if/a"))),
    ]);
    assert!(matches!(h.state("/if/a"), State::Failed { .. }));
    h.delete("/if/b");
    assert_eq!(h.state("/if/a"), pending(&["/if/b"]));
}

// ---- failures and retries ----

#[test]
fn retriable_failures_are_retried_with_backoff_then_fail() {
    let mut h = Harness::new();
    let t0 = h.clock_now();
    h.fail_next(
        "/if/eth0",
        &[ApplyError::retriable("busy"), ApplyError::retriable("busy")],
    );
    h.put("/route/r1", val("10/8").needs("/if/eth0"));
    h.put("/if/eth0", val("up"));
    assert_eq!(h.calls(), ["create /if/eth0"]);
    assert_eq!(
        h.state("/if/eth0"),
        State::Retrying {
            error: "busy".into(),
            attempts: 1,
            next_at: t0 + Duration::from_millis(100)
        }
    );
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0"]));
    assert_eq!(h.engine.next_retry(), Some(t0 + Duration::from_millis(100)));

    // Not due yet.
    h.clock.advance(Duration::from_millis(99));
    assert!(h.engine.tick(h.clock_now()).is_none());

    // First retry fails; the next one is twice as far.
    h.clock.advance(Duration::from_millis(1));
    let rec = h.engine.tick(h.clock_now()).expect("a retry");
    assert_eq!(rec.kind, TxnKind::Retry);
    assert_eq!(rec.operation_lines(), ["create /if/eth0 error: busy"]);
    let t1 = h.clock_now();
    assert_eq!(
        h.state("/if/eth0"),
        State::Retrying {
            error: "busy".into(),
            attempts: 2,
            next_at: t1 + Duration::from_millis(200)
        }
    );

    // The second retry succeeds, and the route follows.
    h.clock.advance(Duration::from_millis(200));
    h.engine.tick(h.clock_now()).expect("a retry");
    assert_eq!(
        h.calls(),
        ["create /if/eth0", "create /if/eth0", "create /route/r1"]
    );
    assert_eq!(h.state("/if/eth0"), State::Configured);
    assert_eq!(h.engine.status("/if/eth0").unwrap().attempts, 0);
    assert_eq!(h.state("/route/r1"), State::Configured);
    assert_eq!(h.engine.next_retry(), None);

    // A value that never succeeds: Failed after max attempts (4 here).
    let busy = ApplyError::retriable("still busy");
    h.fail_next(
        "/if/eth1",
        &[busy.clone(), busy.clone(), busy.clone(), busy],
    );
    h.put("/if/eth1", val("up"));
    for delay in [100, 200, 400] {
        h.clock.advance(Duration::from_millis(delay));
        h.engine.tick(h.clock_now()).expect("a retry");
    }
    assert_eq!(
        h.state("/if/eth1"),
        State::Failed {
            error: "still busy".into(),
            attempts: 4
        }
    );
    assert_eq!(h.engine.next_retry(), None);
    assert_eq!(h.calls().len(), 4);
}

#[test]
fn backoff_doubles_up_to_the_maximum() {
    let policy = weir_reconcile::RetryPolicy::default();
    let ms = |n| Duration::from_millis(n);
    assert_eq!(policy.delay(1), ms(100));
    assert_eq!(policy.delay(2), ms(200));
    assert_eq!(policy.delay(5), ms(1600));
    assert_eq!(policy.delay(9), ms(25_600));
    assert_eq!(policy.delay(10), Duration::from_secs(30));
    assert_eq!(policy.delay(1000), Duration::from_secs(30));
}

#[test]
fn non_retriable_failures_fail_at_once_and_a_new_put_tries_again() {
    let mut h = Harness::new();
    h.fail_next("/if/eth0", &[ApplyError::fatal("no such device")]);
    h.put("/route/r1", val("10/8").needs("/if/eth0"));
    let rec = h.put("/if/eth0", val("up"));
    assert_eq!(
        rec.operation_lines(),
        ["create /if/eth0 error: no such device"]
    );
    assert_eq!(
        h.state("/if/eth0"),
        State::Failed {
            error: "no such device".into(),
            attempts: 1
        }
    );
    assert_eq!(h.engine.next_retry(), None);
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0"]));

    // Putting the same value again is a request to try again.
    h.put("/if/eth0", val("up"));
    assert_eq!(
        h.calls(),
        ["create /if/eth0", "create /if/eth0", "create /route/r1"]
    );
    assert_eq!(h.state("/route/r1"), State::Configured);
}

#[test]
fn a_failed_delete_keeps_the_value_until_a_retry_removes_it() {
    let mut h = Harness::new();
    h.put("/if/eth0", val("up"));
    h.fail_next("/if/eth0", &[ApplyError::retriable("busy")]);
    h.delete("/if/eth0");
    assert!(matches!(h.state("/if/eth0"), State::Retrying { .. }));
    assert!(h.in_target("/if/eth0").is_some());
    h.clock.advance(Duration::from_millis(100));
    h.engine.tick(h.clock_now());
    assert_eq!(h.state("/if/eth0"), State::Removed);
    assert!(h.in_target("/if/eth0").is_none());
    assert_eq!(
        h.calls(),
        ["create /if/eth0", "delete /if/eth0", "delete /if/eth0"]
    );
}

// ---- invalid values ----

#[test]
fn invalid_values_are_never_applied() {
    let mut h = Harness::new();
    let rec = h.txn(&[
        ("/if/eth0", Some(val("invalid"))),
        ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
    ]);
    assert!(h.calls().is_empty());
    assert_eq!(
        h.state("/if/eth0"),
        State::Invalid {
            reason: "data must not be `invalid`".into()
        }
    );
    assert_eq!(
        rec.invalid().collect::<Vec<_>>(),
        [("/if/eth0", "data must not be `invalid`")]
    );
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0"]));

    // Made valid: applied, dependents follow.
    h.put("/if/eth0", val("up"));
    assert_eq!(h.calls(), ["create /if/eth0", "create /route/r1"]);

    // A configured value changed to an invalid one leaves the target.
    h.put("/if/eth0", val("invalid"));
    assert_eq!(h.calls(), ["delete /route/r1", "delete /if/eth0"]);
    assert!(matches!(h.state("/if/eth0"), State::Invalid { .. }));
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0"]));
}

#[test]
fn keys_no_descriptor_handles_are_invalid() {
    let mut h = Harness::new();
    h.put("/unknown/x", val("x"));
    assert_eq!(
        h.state("/unknown/x"),
        State::Invalid {
            reason: "no descriptor handles this key".into()
        }
    );
}

// ---- update and recreate ----

#[test]
fn updates_in_place_keep_dependents() {
    let mut h = Harness::new();
    h.txn(&[
        ("/if/eth0", Some(val("up"))),
        ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
    ]);
    h.calls();
    let rec = h.put("/if/eth0", val("up mtu 9000"));
    assert_eq!(h.calls(), ["update /if/eth0"]);
    assert_eq!(rec.operations[0].op, OpKind::Update);
    assert_eq!(h.in_target("/if/eth0"), Some(val("up mtu 9000")));
    assert_eq!(h.state("/route/r1"), State::Configured);
    // The same value again is nothing to do.
    h.put("/if/eth0", val("up mtu 9000"));
    assert!(h.calls().is_empty());
}

#[test]
fn recreates_take_dependents_out_and_back() {
    let mut h = Harness::new();
    h.txn(&[
        ("/if/eth0", Some(val("up"))),
        ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
    ]);
    h.calls();
    // A change the interface cannot make in place.
    h.put("/if/eth0", val("up").generation(2));
    assert_eq!(
        h.calls(),
        [
            "delete /route/r1",
            "delete /if/eth0",
            "create /if/eth0",
            "create /route/r1"
        ]
    );
    assert_eq!(h.state("/route/r1"), State::Configured);

    // Routes have no update at all: any change is a delete and a create.
    h.put("/route/r1", val("10/16").needs("/if/eth0"));
    assert_eq!(h.calls(), ["delete /route/r1", "create /route/r1"]);
    assert_eq!(
        h.in_target("/route/r1"),
        Some(val("10/16").needs("/if/eth0"))
    );
}

#[test]
fn a_failed_update_is_retried() {
    let mut h = Harness::new();
    h.put("/if/eth0", val("up"));
    h.fail_next("/if/eth0", &[ApplyError::retriable("busy")]);
    h.put("/if/eth0", val("down"));
    assert!(matches!(
        h.state("/if/eth0"),
        State::Retrying { attempts: 1, .. }
    ));
    assert_eq!(h.in_target("/if/eth0"), Some(val("up")));
    h.clock.advance(Duration::from_millis(100));
    h.engine.tick(h.clock_now());
    assert_eq!(
        h.calls(),
        ["create /if/eth0", "update /if/eth0", "update /if/eth0"]
    );
    assert_eq!(h.in_target("/if/eth0"), Some(val("down")));
    assert_eq!(h.state("/if/eth0"), State::Configured);
}

// ---- derived values ----

#[test]
fn derived_values_are_created_after_and_removed_before_their_parent() {
    let mut h = Harness::new();
    let eth0 = val("up")
        .derives("/addr/eth0/10.0.0.1", val("10.0.0.1/24"))
        .derives("/addr/eth0/10.0.0.2", val("10.0.0.2/24"));
    h.txn(&[
        // Needs an address the interface derives.
        ("/route/r1", Some(val("10/8").needs("/addr/eth0/10.0.0.1"))),
        ("/if/eth0", Some(eth0.clone())),
    ]);
    assert_eq!(
        h.calls(),
        [
            "create /if/eth0",
            "create /addr/eth0/10.0.0.1",
            "create /addr/eth0/10.0.0.2",
            "create /route/r1"
        ]
    );
    let status = h.engine.status("/addr/eth0/10.0.0.1").unwrap();
    assert_eq!(status.state, State::Configured);
    assert_eq!(status.derived_from.as_deref(), Some("/if/eth0"));

    // The parent changes: only the derived values that differ follow.
    let eth0_b = val("up mtu 9000")
        .derives("/addr/eth0/10.0.0.1", val("10.0.0.1/24"))
        .derives("/addr/eth0/10.0.0.3", val("10.0.0.3/24"));
    h.put("/if/eth0", eth0_b);
    assert_eq!(
        h.calls(),
        [
            "delete /addr/eth0/10.0.0.2",
            "update /if/eth0",
            "create /addr/eth0/10.0.0.3"
        ]
    );
    assert_eq!(h.state("/addr/eth0/10.0.0.2"), State::Removed);

    // Derived values cannot be set on their own.
    let rec = h.put("/addr/eth0/10.0.0.1", val("other"));
    assert!(
        rec.notes[0].contains("derived from /if/eth0"),
        "{:?}",
        rec.notes
    );
    assert!(h.calls().is_empty());

    // The parent goes: the route (on a derived address), the addresses, then it.
    h.delete("/if/eth0");
    assert_eq!(
        h.calls(),
        [
            "delete /route/r1",
            "delete /addr/eth0/10.0.0.1",
            "delete /addr/eth0/10.0.0.3",
            "delete /if/eth0"
        ]
    );
    assert_eq!(h.state("/addr/eth0/10.0.0.1"), State::Removed);
    assert_eq!(h.state("/route/r1"), pending(&["/addr/eth0/10.0.0.1"]));
    assert_eq!(h.target.lock().unwrap().objects.len(), 0);
}

#[test]
fn derived_values_with_no_descriptor_are_properties() {
    let mut h = Harness::new();
    h.txn(&[
        ("/route/r1", Some(val("10/8").needs("/prop/eth0/link-up"))),
        (
            "/if/eth0",
            Some(val("up").derives("/prop/eth0/link-up", val(""))),
        ),
    ]);
    // No call for the property; the route depends on it.
    assert_eq!(h.calls(), ["create /if/eth0", "create /route/r1"]);
    assert_eq!(h.state("/prop/eth0/link-up"), State::Configured);

    h.put("/if/eth0", val("down"));
    assert_eq!(h.calls(), ["delete /route/r1", "update /if/eth0"]);
    assert_eq!(h.state("/prop/eth0/link-up"), State::Removed);
    assert_eq!(h.state("/route/r1"), pending(&["/prop/eth0/link-up"]));
}

#[test]
fn a_derived_value_waits_for_its_own_dependencies() {
    let mut h = Harness::new();
    h.put(
        "/if/eth0",
        val("up").derives("/addr/eth0/a", val("a").needs("/vpc/blue")),
    );
    assert_eq!(h.calls(), ["create /if/eth0"]);
    assert_eq!(h.state("/addr/eth0/a"), pending(&["/vpc/blue"]));
    h.put("/vpc/blue", val("vrf 1"));
    assert_eq!(h.calls(), ["create /vpc/blue", "create /addr/eth0/a"]);
}

// ---- resync ----

#[test]
fn full_resync_after_a_restart_converges_without_churn() {
    let target = Arc::new(Mutex::new(fake::Target::default()));
    let eth0 = val("up").derives("/addr/eth0/a", val("a"));
    let owned_before_restart;
    {
        let mut h = Harness::with_target(target.clone());
        h.txn(&[
            ("/if/eth0", Some(eth0.clone())),
            ("/route/r1", Some(val("10/8").needs("/addr/eth0/a"))),
            ("/route/gone", Some(val("11/8").needs("/if/eth0"))),
            ("/if/changed", Some(val("up"))),
            ("/if/lost", Some(val("up"))),
        ]);
        owned_before_restart = h.engine.owned();
    }
    {
        let mut t = target.lock().unwrap();
        // Someone else's objects: one weir will also want, one it will not.
        t.objects.insert("/if/adopt".into(), val("up"));
        t.objects.insert("/if/foreign".into(), val("theirs"));
        // Drift while weir was down.
        t.objects.remove("/if/lost");
        t.calls.clear();
    }

    let mut h = Harness::with_target(target.clone());
    h.engine.restore_owned(owned_before_restart);
    let desired = vec![
        ("/if/eth0".to_string(), eth0),
        ("/route/r1".to_string(), val("10/8").needs("/addr/eth0/a")),
        ("/if/changed".to_string(), val("up mtu 9000")),
        ("/if/lost".to_string(), val("up")),
        ("/if/adopt".to_string(), val("up")),
        ("/route/new".to_string(), val("12/8").needs("/if/adopt")),
    ];
    let rec = h.engine.resync_full(desired.clone());
    assert_eq!(rec.kind, TxnKind::ResyncFull);
    assert_eq!(
        h.calls(),
        [
            "update /if/changed",
            "create /if/lost",
            "create /route/new",
            // Not desired any more, and weir made it.
            "delete /route/gone",
        ]
    );
    assert_eq!(
        h.in_target("/if/foreign"),
        Some(val("theirs")),
        "not ours: kept"
    );
    assert_eq!(
        h.engine.summary().configured,
        7,
        "{:?}",
        h.engine.statuses()
    );
    assert!(h.engine.owned().contains(&"/if/adopt".to_string()));

    // A second resync has nothing to do.
    let rec = h.engine.resync_full(desired);
    assert!(h.calls().is_empty());
    assert!(rec.operations.is_empty());
    assert!(rec.changes.is_empty());
}

#[test]
fn full_resync_deletes_a_stray_dependent_before_its_dependency() {
    let target = Arc::new(Mutex::new(fake::Target::default()));
    let owned;
    {
        let mut h = Harness::with_target(target.clone());
        h.txn(&[
            ("/if/eth0", Some(val("up"))),
            ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
        ]);
        owned = h.engine.owned();
    }
    target.lock().unwrap().calls.clear();
    let mut h = Harness::with_target(target);
    h.engine.restore_owned(owned);
    h.engine.resync_full(Vec::new());
    assert_eq!(h.calls(), ["delete /route/r1", "delete /if/eth0"]);
    assert!(h.engine.statuses().is_empty());
    assert!(h.engine.owned().is_empty());
}

#[test]
fn full_resync_replaces_the_desired_state_of_a_running_engine() {
    let mut h = Harness::new();
    h.txn(&[("/if/a", Some(val("up"))), ("/if/b", Some(val("up")))]);
    h.calls();
    h.engine.resync_full(vec![
        ("/if/a".to_string(), val("up")),
        ("/if/c".to_string(), val("up")),
    ]);
    assert_eq!(h.calls(), ["delete /if/b", "create /if/c"]);
}

#[test]
fn a_failed_retrieve_falls_back_to_the_engine_record() {
    let mut h = Harness::new();
    h.put("/if/a", val("up"));
    h.target.lock().unwrap().broken_retrieve.push("/if/".into());
    let rec = h.engine.resync_downstream();
    assert!(
        rec.notes[0].contains("retrieve interface: target unreachable"),
        "{:?}",
        rec.notes
    );
    assert_eq!(h.calls(), ["create /if/a"]);
    assert_eq!(h.state("/if/a"), State::Configured);
}

#[test]
fn downstream_resync_repairs_drift() {
    let mut h = Harness::new();
    h.txn(&[
        ("/vpc/blue", Some(val("vrf 1"))),
        ("/if/eth0", Some(val("up").needs("/vpc/blue"))),
        ("/if/eth1", Some(val("up"))),
        ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
        ("/route/r2", Some(val("10/8").needs("/if/eth1"))),
    ]);
    h.calls();
    {
        let mut t = h.target.lock().unwrap();
        // The vpc vanished (its interface with it), a route was changed
        // behind weir's back, and a stray weir once made reappeared.
        t.objects.remove("/vpc/blue");
        t.objects.remove("/if/eth0");
        t.objects
            .insert("/route/r2".into(), val("changed").needs("/if/eth1"));
    }
    let rec = h.engine.resync_downstream();
    assert_eq!(rec.kind, TxnKind::ResyncDownstream);
    let calls = h.calls();
    // The route on the vanished interface is taken out (it cannot stay
    // without it) and back once the vpc and interface are re-created; the
    // changed route is put back as desired (routes have no update).
    assert_eq!(
        calls,
        [
            "delete /route/r1",
            "delete /route/r2",
            "create /route/r2",
            "create /vpc/blue",
            "create /if/eth0",
            "create /route/r1",
        ]
    );
    assert_eq!(h.engine.summary().configured, 5);
    assert_eq!(
        h.in_target("/route/r2"),
        Some(val("10/8").needs("/if/eth1"))
    );

    // Nothing differs now.
    h.engine.resync_downstream();
    assert!(h.calls().is_empty());
}

// ---- records ----

#[test]
fn history_records_each_transaction_in_order() {
    let mut h = Harness::new();
    h.put("/route/r1", val("10/8").needs("/if/eth0"));
    h.fail_next("/route/r1", &[ApplyError::fatal("table full")]);
    h.put("/if/eth0", val("up"));
    h.delete("/if/eth0");

    let history: Vec<_> = h.engine.history().collect();
    assert_eq!(history.len(), 3);
    assert_eq!(history.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(history.iter().all(|r| r.kind == TxnKind::SetDesired));

    assert!(history[0].operations.is_empty());
    assert_eq!(history[0].pending().count(), 1);

    assert_eq!(
        history[1].operation_lines(),
        ["create /if/eth0 ok", "create /route/r1 error: table full"]
    );
    assert!(history[1].operations[1].cascade);
    let changed: Vec<(&str, &str)> = history[1]
        .changes
        .iter()
        .map(|c| (c.key.as_str(), c.status.state.name()))
        .collect();
    assert_eq!(
        changed,
        [("/if/eth0", "configured"), ("/route/r1", "failed")]
    );

    // The failed route is not in the target: only the interface goes.
    assert_eq!(history[2].operation_lines(), ["delete /if/eth0 ok"]);
    assert_eq!(h.state("/route/r1"), pending(&["/if/eth0"]));
}

#[test]
fn history_is_bounded() {
    let mut h = Harness::new();
    h.engine.set_history_limit(5);
    for i in 0..12 {
        h.put("/if/a", val(&format!("v{i}")));
    }
    let seqs: Vec<u64> = h.engine.history().map(|r| r.seq).collect();
    assert_eq!(seqs, [8, 9, 10, 11, 12]);
}

#[test]
fn changes_are_reported_to_the_hook() {
    let mut h = Harness::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    h.engine.on_change(move |rec| {
        let mut s = sink.lock().unwrap();
        for c in &rec.changes {
            s.push(format!("{} {}", c.key, c.status.state.name()));
        }
    });
    h.put("/route/r1", val("10/8").needs("/if/eth0"));
    h.put("/if/eth0", val("up"));
    h.put("/if/eth0", val("up")); // no change: no call
    h.delete("/if/eth0");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "/route/r1 pending",
            "/if/eth0 configured",
            "/route/r1 configured",
            "/if/eth0 removed",
            "/route/r1 pending",
        ]
    );
}

#[test]
fn graph_dot_shows_values_dependencies_and_derived_values() {
    let mut h = Harness::new();
    h.txn(&[
        (
            "/if/eth0",
            Some(val("up").derives("/addr/eth0/a", val("a"))),
        ),
        ("/route/r1", Some(val("10/8").needs("/if/eth0"))),
        ("/route/r2", Some(val("11/8").needs("/if/missing"))),
        ("/route/any", Some(val("0/0").needs_any("/vpc/"))),
    ]);
    let dot = h.engine.graph_dot();
    assert!(dot.starts_with("digraph reconciler {"), "{dot}");
    assert!(
        dot.contains("\"/if/eth0\" [fillcolor=palegreen, label=\"/if/eth0\\nconfigured\"]"),
        "{dot}"
    );
    assert!(dot.contains("\"/route/r2\" [fillcolor=khaki"), "{dot}");
    assert!(dot.contains("\"/route/r1\" -> \"/if/eth0\";"), "{dot}");
    assert!(
        dot.contains("\"/route/any\" -> \"/vpc/*\" [style=dashed]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"/if/eth0\" -> \"/addr/eth0/a\" [style=dotted, label=\"derived\"]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"/if/missing\" [style=dashed, fillcolor=white"),
        "{dot}"
    );
    assert!(dot.trim_end().ends_with('}'));
}

impl Harness {
    fn clock_now(&self) -> std::time::Instant {
        use weir_reconcile::Clock;
        self.clock.now()
    }
}

// ---- metadata ----

#[test]
fn metadata_from_create_is_kept_and_handed_to_update_and_delete() {
    let mut h = Harness::new();
    h.put("/vpc/blue", val("v"));
    h.put("/if/a", val("1").needs("/vpc/blue"));
    let handle = *h.engine.metadata::<u32>("/if/a").expect("kept");
    assert_eq!(
        Some(handle),
        h.target.lock().unwrap().handles.get("/if/a").copied()
    );
    // The fake asserts that update and delete get this same handle.
    h.put("/if/a", val("2").needs("/vpc/blue"));
    assert_eq!(h.engine.metadata::<u32>("/if/a"), Some(&handle));
    assert!(
        h.engine.metadata::<String>("/if/a").is_none(),
        "another type"
    );
    h.calls();
    h.delete("/if/a");
    assert_eq!(h.calls(), ["delete /if/a"]);
    assert!(h.engine.metadata::<u32>("/if/a").is_none());
    // A value pending on a missing dependency has none.
    h.put("/route/r", val("r").needs("/if/b"));
    assert!(h.engine.metadata::<u32>("/route/r").is_none());
}

#[test]
fn a_restarted_engine_takes_metadata_from_retrieve() {
    let target = {
        let mut h = Harness::new();
        h.put("/vpc/blue", val("v"));
        h.put("/if/a", val("1").needs("/vpc/blue"));
        h.calls();
        h.target.clone()
    };
    let handle = target.lock().unwrap().handles["/if/a"];
    let mut h = Harness::with_target(target);
    let r = h.engine.resync_full([
        ("/vpc/blue".to_string(), val("v")),
        ("/if/a".to_string(), val("2").needs("/vpc/blue")),
    ]);
    // Updated in place with the handle read back (the fake checks it).
    assert_eq!(h.calls(), ["update /if/a"]);
    assert_eq!(r.operations.len(), 1);
    assert_eq!(h.engine.metadata::<u32>("/if/a"), Some(&handle));
}
