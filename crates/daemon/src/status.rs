//! Status written back to the objects: the reconciler's state of each
//! object, in the store, in batches.

use weir_model::{ObjectRef, Registry, State, Status};
use weir_store::Store;

use crate::watch::{decode, Generations};

fn to_ref(reg: &Registry, key: &str) -> ObjectRef {
    let rest = key.trim_start_matches("/weir/v1/");
    let (kind, name) = rest.split_once('/').unwrap_or((rest, ""));
    let kind = reg
        .lookup(kind)
        .map(|k| k.name().to_string())
        .unwrap_or_else(|| kind.to_string());
    ObjectRef::new(kind, if name.is_empty() { "*" } else { name })
}

/// The object status for a reconciler state.
pub fn status_of(reg: &Registry, s: &weir_reconcile::Status) -> Status {
    use weir_reconcile::State as R;
    let (state, reason, missing) = match &s.state {
        R::Configured => (State::Configured, None, Vec::new()),
        R::Pending { missing } => (
            State::Pending,
            Some(format!("waiting for {}", missing.join(", "))),
            missing
                .iter()
                .map(|k| to_ref(reg, k.trim_end_matches('*')))
                .collect(),
        ),
        R::Retrying { error, .. } => (
            State::Failed,
            Some(format!("{error} (retrying)")),
            Vec::new(),
        ),
        R::Failed { error, .. } => (State::Failed, Some(error.clone()), Vec::new()),
        R::Invalid { reason } => (State::Invalid, Some(reason.clone()), Vec::new()),
        R::Removed => (State::Unknown, None, Vec::new()),
    };
    Status {
        state,
        reason,
        missing,
        attempts: s.attempts,
        last_transition: Some(humantime::format_rfc3339_seconds(s.last_transition).to_string()),
        observed_generation: None,
    }
}

/// Write statuses into their objects: one store transaction for the batch
/// (each object compared on its revision), object by object if that fails.
pub(crate) async fn write_statuses(
    store: &dyn Store,
    reg: &Registry,
    generations: &Generations,
    items: &[(String, weir_reconcile::Status)],
) {
    use weir_store::{Compare, Txn};
    // Status is derived: a crash loses at most the latest statuses, which
    // the next start recomputes, so these commits do not wait for the disk
    // (and do not hold up the next desired-state write behind an fsync).
    let mut txn = Txn::new().relaxed();
    let mut singles = Vec::new();
    for (key, st) in items {
        if matches!(st.state, weir_reconcile::State::Removed) {
            continue;
        }
        let Ok(Some(kv)) = store.get(key).await else {
            continue;
        };
        let Some(mut o) = decode(&kv.value) else {
            continue;
        };
        let mut s = status_of(reg, st);
        // The generation the reconciler was handed, not the stored one: a
        // newer spec may be in the store and not reconciled yet.
        s.observed_generation = generations
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .or(o.metadata.generation);
        if o.status.as_ref().is_some_and(|cur| same_status(cur, &s)) {
            continue;
        }
        o.status = Some(s);
        let Ok(v) = serde_json::to_vec(&o) else {
            continue;
        };
        txn = txn
            .when(Compare::ModRevision(key.clone(), kv.mod_revision))
            .put(key.clone(), v.clone());
        singles.push((key.clone(), kv.mod_revision, v));
    }
    if singles.is_empty() {
        return;
    }
    if let Ok(r) = store.txn(txn).await {
        if r.succeeded {
            return;
        }
    }
    // Someone changed some of them meanwhile: write the others one by one;
    // the changed ones get a fresh status when they are reconciled.
    for (key, rev, v) in singles {
        let t = Txn::new()
            .relaxed()
            .when(Compare::ModRevision(key.clone(), rev))
            .put(key, v);
        let _ = store.txn(t).await;
    }
}

/// Equal but for the transition time.
fn same_status(a: &Status, b: &Status) -> bool {
    a.state == b.state
        && a.reason == b.reason
        && a.missing == b.missing
        && a.attempts == b.attempts
        && a.observed_generation == b.observed_generation
}
