//! The write path: plan changes against the cached state, validate the
//! would-be state as a whole, then commit everything in one store
//! transaction guarded by a `ModRevision` compare per key.
//!
//! Validation and the write are one atomic step even with several API
//! servers on one store: every write that needs cross-object validation
//! also compares and bumps one guard key ([`VALIDATED_KEY`]), whose mod
//! revision is that of the last validated write. A server validates
//! against a cache caught up to at least that revision; if another
//! server's validated write lands first, the compare fails and the write
//! is planned and validated again against the newer state. A server
//! remembers the guard's revision from its own last validated write, so a
//! lone server reads the guard only after a compare on it failed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use weir_model::{key, key_prefix, Object, Status};
use weir_store::{Compare, Txn};

use crate::cache::decode;
use crate::error::{summary, ApiError, Detail};
use crate::Shared;

/// One change asked for.
pub enum Op {
    /// Create or replace (create only when `create_only`).
    Upsert {
        obj: Object,
        expect: Option<u64>,
        create_only: bool,
    },
    Delete {
        kind: String,
        name: String,
        expect: Option<u64>,
    },
    Status {
        kind: String,
        name: String,
        status: Status,
        expect: Option<u64>,
    },
}

impl Op {
    fn kind_name(&self) -> (&str, &str) {
        match self {
            Op::Upsert { obj, .. } => (&obj.kind, &obj.metadata.name),
            Op::Delete { kind, name, .. } | Op::Status { kind, name, .. } => (kind, name),
        }
    }
}

/// What a write did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
        }
    }
}

/// The outcome for one object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub kind: String,
    pub name: String,
    pub action: Action,
    /// The object's revision after the write (of the deletion for deletes).
    pub revision: u64,
    /// The object as stored (or as it would be, on a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Object>,
}

struct Planned {
    key: String,
    prev_rev: u64,
    /// `None`: delete.
    new: Option<Object>,
    /// Whether spec, labels or node change (needs cross validation).
    validate: bool,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn stale(kind: &str, name: &str, given: u64, current: u64) -> ApiError {
    let mut e = ApiError::conflict(format!(
        "{kind}/{name} was changed: revision {given} given, current revision is {current}{}",
        if current == 0 {
            " (it does not exist)"
        } else {
            ""
        }
    ));
    e.body.given_revision = Some(given);
    e.body.current_revision = Some(current);
    e.with_detail(Detail::new(
        kind,
        name,
        "metadata.revision",
        format!("stale: {given} given, current {current}"),
    ))
}

/// The guard key of validated writes, outside the objects' keyspace (no
/// watch of objects sees it).
pub const VALIDATED_KEY: &str = "/weir/meta/validated";

/// `Shared::guard_rev` before the guard key has been read.
pub const GUARD_UNKNOWN: u64 = u64::MAX;

/// Applies `ops` as one transaction. `indexes[i]` is the position of op `i`
/// in the request (for error details).
pub async fn commit(
    shared: &Shared,
    ops: Vec<Op>,
    indexes: Option<Vec<usize>>,
    dry_run: bool,
) -> Result<(Vec<Outcome>, u64), ApiError> {
    let store = shared.state.store.clone();
    let _guard = shared.write_lock.lock().await;
    let cache = shared.cache().await?;
    let rev = store.revision().await?;
    cache.catch_up(store.as_ref(), rev).await?;

    for _attempt in 0..8 {
        // The last validated write, and the cache at least that far.
        let mut guard = shared.guard_rev.load(Ordering::Acquire);
        if guard == GUARD_UNKNOWN {
            guard = store
                .get(VALIDATED_KEY)
                .await?
                .map_or(0, |kv| kv.mod_revision);
            shared.guard_rev.store(guard, Ordering::Release);
        }
        if guard > 0 {
            cache.catch_up(store.as_ref(), guard).await?;
        }
        let (plans, mut outcomes, current_rev) = plan(&cache, &ops)?;
        let validated = validate(
            &shared.state.registry,
            &cache,
            &plans,
            &ops,
            indexes.as_deref(),
        )?;
        if dry_run || plans.is_empty() {
            for o in &mut outcomes {
                if o.revision == 0 && o.action != Action::Deleted {
                    o.revision = current_rev;
                }
            }
            return Ok((outcomes, current_rev));
        }
        let mut txn = Txn::new();
        for p in &plans {
            txn = txn.when(Compare::ModRevision(p.key.clone(), p.prev_rev));
            match &p.new {
                Some(o) => {
                    let mut stored = o.clone();
                    stored.metadata.revision = None;
                    txn = txn.put(p.key.clone(), serde_json::to_vec(&stored).expect("JSON"));
                }
                None => txn = txn.delete(p.key.clone()),
            }
        }
        if validated {
            txn = txn
                .when(Compare::ModRevision(VALIDATED_KEY.into(), guard))
                .put(VALIDATED_KEY, Vec::new());
        }
        let res = store.txn(txn).await?;
        if res.succeeded {
            let t = res.revision;
            if validated {
                shared.guard_rev.store(t, Ordering::Release);
            }
            {
                let mut st = cache.lock();
                for p in plans {
                    match p.new {
                        Some(mut o) => {
                            o.metadata.revision = Some(t);
                            st.put(&p.key, o, t);
                        }
                        None => st.delete(&p.key, t),
                    }
                }
            }
            cache.advance_if_next(t);
            for o in &mut outcomes {
                if o.action != Action::Unchanged {
                    o.revision = t;
                    if let Some(obj) = &mut o.object {
                        obj.metadata.revision = Some(t);
                    }
                }
            }
            return Ok((outcomes, t));
        }
        // Someone else changed a key: refresh those and plan again (after
        // a failed guard compare, the guard is read again).
        if validated && res.failed_compares.contains(&plans.len()) {
            shared.guard_rev.store(GUARD_UNKNOWN, Ordering::Release);
        }
        for i in res.failed_compares {
            let Some(p) = plans.get(i) else { continue };
            let k = &p.key;
            let kv = store.get(k).await?;
            let mut st = cache.lock();
            match kv {
                Some(kv) => {
                    if let Some(o) = decode(&kv) {
                        st.put(k, o, kv.mod_revision);
                    }
                }
                None => st.delete(k, res.revision),
            }
        }
    }
    Err(ApiError::conflict(
        "the objects kept changing under this write; try again",
    ))
}

type Plan = (Vec<Planned>, Vec<Outcome>, u64);

fn plan(cache: &crate::cache::Cache, ops: &[Op]) -> Result<Plan, ApiError> {
    let st = cache.lock();
    let mut plans = Vec::new();
    let mut outcomes = Vec::new();
    for op in ops {
        let (kind, name) = op.kind_name();
        let k = key(kind, name);
        let cur = st.entries.get(&k);
        let cur_rev = cur.map(|e| e.mod_rev).unwrap_or(0);
        let expect = match op {
            Op::Upsert { expect, .. } | Op::Delete { expect, .. } | Op::Status { expect, .. } => {
                *expect
            }
        };
        if let Some(given) = expect {
            if given != cur_rev {
                return Err(stale(kind, name, given, cur_rev));
            }
        }
        let outcome = |action, object: Option<&Object>, revision| Outcome {
            kind: kind.to_string(),
            name: name.to_string(),
            action,
            revision,
            object: object.cloned(),
        };
        match op {
            Op::Upsert {
                obj, create_only, ..
            } => {
                let mut new = obj.clone();
                new.status = None;
                new.metadata.revision = None;
                match cur {
                    None => {
                        new.metadata.generation = Some(1);
                        new.metadata.creation_timestamp = Some(now_rfc3339());
                        outcomes.push(outcome(Action::Created, Some(&new), 0));
                        plans.push(Planned {
                            key: k,
                            prev_rev: 0,
                            new: Some(new),
                            validate: true,
                        });
                    }
                    Some(c) => {
                        if *create_only {
                            let mut e = ApiError::conflict(format!(
                                "{kind}/{name} already exists (revision {cur_rev}); use PUT to replace it"
                            ));
                            e.body.current_revision = Some(cur_rev);
                            return Err(e.with_detail(Detail::new(
                                kind,
                                name,
                                "metadata.name",
                                "already exists",
                            )));
                        }
                        let old = &c.obj;
                        let spec_changed = old.spec != new.spec;
                        if !spec_changed
                            && old.metadata.labels == new.metadata.labels
                            && old.metadata.node == new.metadata.node
                        {
                            outcomes.push(outcome(Action::Unchanged, Some(old), cur_rev));
                            continue;
                        }
                        let gen = old.metadata.generation.unwrap_or(1);
                        new.metadata.generation = Some(if spec_changed { gen + 1 } else { gen });
                        new.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                        new.status = old.status.clone();
                        outcomes.push(outcome(Action::Updated, Some(&new), 0));
                        plans.push(Planned {
                            key: k,
                            prev_rev: cur_rev,
                            new: Some(new),
                            validate: true,
                        });
                    }
                }
            }
            Op::Delete { .. } => {
                if cur.is_none() {
                    return Err(ApiError::not_found(format!("{kind}/{name} not found")));
                }
                outcomes.push(outcome(Action::Deleted, None, 0));
                plans.push(Planned {
                    key: k,
                    prev_rev: cur_rev,
                    new: None,
                    validate: false,
                });
            }
            Op::Status { status, .. } => {
                let Some(c) = cur else {
                    return Err(ApiError::not_found(format!("{kind}/{name} not found")));
                };
                if c.obj.status.as_ref() == Some(status) {
                    outcomes.push(outcome(Action::Unchanged, Some(&c.obj), cur_rev));
                    continue;
                }
                let mut new = (*c.obj).clone();
                new.status = Some(status.clone());
                new.metadata.revision = None;
                outcomes.push(outcome(Action::Updated, Some(&new), 0));
                plans.push(Planned {
                    key: k,
                    prev_rev: cur_rev,
                    new: Some(new),
                    validate: false,
                });
            }
        }
    }
    Ok((plans, outcomes, st.seen))
}

/// Cross-object validation of the would-be state. Only errors that name a
/// changed object (or name one as the other party) are reported, so that
/// problems already in the store do not block unrelated writes. `true`
/// when anything needed validating (the write must then hold the guard).
fn validate(
    registry: &weir_model::Registry,
    cache: &crate::cache::Cache,
    plans: &[Planned],
    ops: &[Op],
    indexes: Option<&[usize]>,
) -> Result<bool, ApiError> {
    let changed: Vec<&Object> = plans
        .iter()
        .filter(|p| p.validate)
        .filter_map(|p| p.new.as_ref())
        .collect();
    if changed.is_empty() {
        return Ok(false);
    }
    let touched: HashSet<&str> = plans.iter().map(|p| p.key.as_str()).collect();
    let changed_refs: HashSet<(&str, &str)> = changed
        .iter()
        .map(|o| (o.kind.as_str(), o.metadata.name.as_str()))
        .collect();

    // What stored objects take part: every object of the kinds related to
    // a changed one (as the registry derives them from what each kind's
    // checks read), but only the changed objects' groups of a changed kind
    // that conflicts within groups.
    let mut kinds: BTreeSet<&str> = BTreeSet::new();
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let mut all_kinds = false;
    for o in &changed {
        let Some(related) = registry.related(&o.kind) else {
            all_kinds = true;
            continue;
        };
        for kind in related {
            match crate::cache::conflict_group(registry, o) {
                Some(g) if kind == o.kind => {
                    groups.insert(g);
                }
                _ => {
                    kinds.insert(kind);
                }
            }
        }
    }
    let st = cache.lock();
    let mut set: Vec<Object> = Vec::new();
    let push = |e: &crate::cache::Entry, key: &str, set: &mut Vec<Object>| {
        if !touched.contains(key) {
            set.push((*e.obj).clone());
        }
    };
    if all_kinds {
        for (k, e) in &st.entries {
            push(e, k, &mut set);
        }
    } else {
        for kind in &kinds {
            for e in st.with_prefix(&key_prefix(kind)) {
                let k = key(&e.obj.kind, &e.obj.metadata.name);
                push(e, &k, &mut set);
            }
        }
        for g in &groups {
            for k in st.groups.get(g).into_iter().flatten() {
                let Some(e) = st.entries.get(k) else {
                    continue;
                };
                if !kinds.contains(e.obj.kind.as_str()) {
                    push(e, k, &mut set);
                }
            }
        }
    }
    drop(st);
    // Changed objects last, so that errors name them rather than the
    // objects already stored.
    set.extend(changed.iter().map(|o| (*o).clone()));
    let errs = registry.conflicts(&set);
    let position: HashMap<(&str, &str), usize> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let (k, n) = op.kind_name();
            ((k, n), indexes.map(|ix| ix[i]).unwrap_or(i))
        })
        .collect();
    let details: Vec<Detail> = errs
        .into_iter()
        .filter(|e| {
            changed_refs.contains(&(e.kind.as_str(), e.name.as_str()))
                || e.related
                    .as_ref()
                    .is_some_and(|r| changed_refs.contains(&(r.kind.as_str(), r.name.as_str())))
        })
        .map(|e| {
            let mut d = Detail::from(e);
            if indexes.is_some() {
                d.index = position.get(&(d.kind.as_str(), d.name.as_str())).copied();
            }
            d
        })
        .collect();
    if details.is_empty() {
        Ok(true)
    } else {
        Err(ApiError::invalid(summary(&details), details))
    }
}
