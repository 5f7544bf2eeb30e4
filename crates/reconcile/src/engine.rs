//! The engine: desired values in, descriptor calls out, in dependency order.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::{Clock, SystemClock};
use crate::descriptor::{Erased, Meta};
use crate::history::{OpKind, Operation, TxnKind, TxnRecord};
use crate::index::DependencyIndex;
use crate::{
    ApplyError, Dependency, Descriptor, FastMap as HashMap, FastSet as HashSet, State, Status,
    StatusChange, Summary,
};

/// When to try a failed operation again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubled after each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Attempts (the first one included) before a value is Failed.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay after `attempts` failed attempts (1 for the first).
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// One key the engine knows: desired, applied, or both.
struct Node<V> {
    /// What the caller (or the parent, for a derived value) wants; `None`
    /// while a value that is no longer wanted is still in the target.
    desired: Option<V>,
    /// What the engine believes is in the target.
    applied: Option<V>,
    /// What the descriptor's `create` (or `retrieve`) returned for the
    /// applied value, handed back to its `update` and `delete`.
    meta: Option<Meta>,
    descriptor: Option<usize>,
    parent: Option<String>,
    children: Vec<String>,
    /// The dependencies of `desired` (of `applied` while not desired), as
    /// indexed in `DependencyIndex`.
    deps: Vec<Dependency>,
    /// `State::Removed` only until the first evaluation.
    state: State,
    attempts: u32,
    last_transition: SystemTime,
    /// Failed because of a dependency cycle (re-evaluated when a member of
    /// the cycle changes).
    in_cycle: bool,
    queued: bool,
    /// Seq of the last transaction that asked for this key itself.
    requested_in: u64,
}

/// The working state of the transaction being run.
struct Txn<V> {
    seq: u64,
    kind: TxnKind,
    now: Instant,
    wall: SystemTime,
    queue: VecDeque<String>,
    operations: Vec<Operation>,
    /// Each touched key's state before the transaction (`Removed`: absent).
    before: HashMap<String, State>,
    /// Keys set Pending: where dependency cycles are looked for.
    pending: Vec<String>,
    notes: Vec<String>,
    /// Resync: retrieved values no node has claimed yet; a derived value
    /// created during the resync takes its actual value from here.
    actual: HashMap<String, (V, Meta)>,
}

type ChangeHook = Box<dyn FnMut(&TxnRecord) + Send>;

/// The reconciler: holds the desired and applied state of every key and
/// drives descriptors to make the target match.
///
/// Each public operation runs one transaction and returns its record (also
/// kept in [`history`](Reconciler::history)); the record's `changes` are the
/// keys whose state changed, for the caller to write back.
pub struct Reconciler<V> {
    descriptors: Vec<Box<dyn Erased<V>>>,
    prefixes: Vec<String>,
    nodes: HashMap<String, Node<V>>,
    index: DependencyIndex,
    /// Keys in `State::Configured`, ordered for `AnyOf` prefix checks.
    configured: BTreeSet<String>,
    /// Keys the engine created in the target and has not deleted: the only
    /// ones resync may remove when nothing wants them.
    owned: HashSet<String>,
    retries: BTreeSet<(Instant, String)>,
    policy: RetryPolicy,
    clock: Box<dyn Clock>,
    history: VecDeque<Arc<TxnRecord>>,
    history_limit: usize,
    seq: u64,
    on_change: Option<ChangeHook>,
}

impl<V: Clone + PartialEq> Default for Reconciler<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + PartialEq> Reconciler<V> {
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        Reconciler {
            descriptors: Vec::new(),
            prefixes: Vec::new(),
            nodes: HashMap::default(),
            index: DependencyIndex::default(),
            configured: BTreeSet::new(),
            owned: HashSet::default(),
            retries: BTreeSet::new(),
            policy: RetryPolicy::default(),
            clock: Box::new(clock),
            history: VecDeque::new(),
            history_limit: 1000,
            seq: 0,
            on_change: None,
        }
    }

    pub fn set_retry_policy(&mut self, policy: RetryPolicy) {
        self.policy = policy;
    }

    /// How many transactions [`history`](Reconciler::history) keeps.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
    }

    /// Called after every transaction that changed some key's state.
    pub fn on_change(&mut self, hook: impl FnMut(&TxnRecord) + Send + 'static) {
        self.on_change = Some(Box::new(hook));
    }

    /// Adds a kind. Register every descriptor before setting values of its
    /// kind (a value no descriptor handles is Invalid until set again or
    /// resynced).
    ///
    /// # Panics
    /// If another descriptor has the same key prefix.
    pub fn register<D: Descriptor<V> + 'static>(&mut self, descriptor: D) {
        let prefix = Descriptor::key_prefix(&descriptor).to_string();
        assert!(
            !self.prefixes.contains(&prefix),
            "two descriptors for key prefix {prefix}"
        );
        self.prefixes.push(prefix);
        self.descriptors.push(Box::new(descriptor));
    }

    /// Applies changes to the desired state: `Some` puts a value, `None`
    /// deletes one. Returns what was done.
    pub fn set_desired(
        &mut self,
        changes: impl IntoIterator<Item = (String, Option<V>)>,
    ) -> Arc<TxnRecord> {
        let mut tx = self.begin(TxnKind::SetDesired, self.clock.now());
        let changes = changes.into_iter();
        let (expected, _) = changes.size_hint();
        self.nodes.reserve(expected);
        tx.before.reserve(expected);
        for (key, value) in changes {
            self.put_desired(&mut tx, key, value);
        }
        self.run(&mut tx);
        self.finish(tx)
    }

    /// Makes `desired` the whole desired state and converges the target to
    /// it, starting from what the descriptors retrieve: values already
    /// there as desired are adopted with no call, changed ones updated,
    /// missing ones created, and values no longer desired deleted, but only
    /// those the engine created (see [`owned`](Reconciler::owned)); keys
    /// it did not create and nobody desires are left alone.
    pub fn resync_full(
        &mut self,
        desired: impl IntoIterator<Item = (String, V)>,
    ) -> Arc<TxnRecord> {
        self.resync(TxnKind::ResyncFull, Some(desired.into_iter().collect()))
    }

    /// Reads the target back and repairs what differs from what the engine
    /// believes is applied (values gone, changed, or left behind).
    pub fn resync_downstream(&mut self) -> Arc<TxnRecord> {
        self.resync(TxnKind::ResyncDownstream, None)
    }

    /// Runs the retries due at `now`; `None` if there were none.
    pub fn tick(&mut self, now: Instant) -> Option<Arc<TxnRecord>> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.retries.first() {
            if *at > now {
                break;
            }
            let Some((at, key)) = self.retries.pop_first() else {
                break;
            };
            let current = self.nodes.get(&key).is_some_and(
                |n| matches!(n.state, State::Retrying { next_at, .. } if next_at == at),
            );
            if current {
                due.push(key);
            }
        }
        if due.is_empty() {
            return None;
        }
        let mut tx = self.begin(TxnKind::Retry, now);
        for key in due {
            if let Some(node) = self.nodes.get_mut(&key) {
                node.requested_in = tx.seq;
            }
            enqueue(&mut self.nodes, &mut tx, &key);
        }
        self.run(&mut tx);
        Some(self.finish(tx))
    }

    /// When the next retry is due, for the caller's timer.
    pub fn next_retry(&self) -> Option<Instant> {
        self.retries.first().map(|(at, _)| *at)
    }

    pub fn status(&self, key: &str) -> Option<Status> {
        self.nodes.get(key).map(status_of)
    }

    /// Every key's status, sorted by key.
    pub fn statuses(&self) -> Vec<(String, Status)> {
        let mut all: Vec<_> = self
            .nodes
            .iter()
            .map(|(k, n)| (k.clone(), status_of(n)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for node in self.nodes.values() {
            match node.state {
                State::Configured => s.configured += 1,
                State::Pending { .. } => s.pending += 1,
                State::Retrying { .. } => s.retrying += 1,
                State::Failed { .. } => s.failed += 1,
                State::Invalid { .. } => s.invalid += 1,
                State::Removed => {}
            }
        }
        s
    }

    /// The last transactions, oldest first.
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &TxnRecord> + ExactSizeIterator {
        self.history.iter().map(|r| r.as_ref())
    }

    pub fn desired(&self, key: &str) -> Option<&V> {
        self.nodes.get(key).and_then(|n| n.desired.as_ref())
    }

    /// What the engine believes is in the target for `key`.
    pub fn applied(&self, key: &str) -> Option<&V> {
        self.nodes.get(key).and_then(|n| n.applied.as_ref())
    }

    /// The metadata the engine keeps for `key`'s applied value (what its
    /// descriptor's `create` returned), if it is of type `M`.
    pub fn metadata<M: std::any::Any>(&self, key: &str) -> Option<&M> {
        self.nodes.get(key)?.meta.as_ref()?.downcast_ref()
    }

    /// Keys the engine created and has not deleted, sorted. Persist them to
    /// let a restarted engine's resync remove values nobody wants any more.
    pub fn owned(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.owned.iter().cloned().collect();
        keys.sort();
        keys
    }

    /// Restores [`owned`](Reconciler::owned) after a restart, before the
    /// first resync.
    pub fn restore_owned(&mut self, keys: impl IntoIterator<Item = String>) {
        self.owned.extend(keys);
    }

    /// The dependency graph in Graphviz DOT: a node per key, filled by
    /// state; solid edges from a value to the keys it needs, dashed ones to
    /// `prefix*` for `AnyOf`, dotted ones from a parent to its derived
    /// values.
    pub fn graph_dot(&self) -> String {
        let mut keys: Vec<&String> = self.nodes.keys().collect();
        keys.sort();
        let mut out = String::from(
            "digraph reconciler {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n",
        );
        let mut extra = BTreeSet::new();
        let mut edges = Vec::new();
        for key in keys {
            let node = &self.nodes[key];
            let (color, detail) = match &node.state {
                State::Configured | State::Removed => ("palegreen", String::new()),
                State::Pending { missing } => {
                    ("khaki", format!("waits for {}", missing.join(", ")))
                }
                State::Retrying {
                    error, attempts, ..
                } => ("orange", format!("{error} (attempt {attempts})")),
                State::Failed { error, .. } => ("tomato", error.clone()),
                State::Invalid { reason } => ("plum", reason.clone()),
            };
            let mut label = format!("{}\\n{}", escape(key), node.state.name());
            if !detail.is_empty() {
                label.push_str("\\n");
                label.push_str(&escape(&detail));
            }
            out.push_str(&format!(
                "  {} [fillcolor={color}, label=\"{label}\"];\n",
                quote(key)
            ));
            for dep in &node.deps {
                match dep {
                    Dependency::Key(k) => {
                        if !self.nodes.contains_key(k) {
                            extra.insert(k.clone());
                        }
                        edges.push(format!("  {} -> {};\n", quote(key), quote(k)));
                    }
                    Dependency::AnyOf(p) => {
                        let label = format!("{p}*");
                        extra.insert(label.clone());
                        edges.push(format!(
                            "  {} -> {} [style=dashed];\n",
                            quote(key),
                            quote(&label)
                        ));
                    }
                }
            }
            for child in &node.children {
                edges.push(format!(
                    "  {} -> {} [style=dotted, label=\"derived\"];\n",
                    quote(key),
                    quote(child)
                ));
            }
        }
        for key in extra {
            out.push_str(&format!(
                "  {} [style=dashed, fillcolor=white, label=\"{}\\nabsent\"];\n",
                quote(&key),
                escape(&key)
            ));
        }
        for e in edges {
            out.push_str(&e);
        }
        out.push_str("}\n");
        out
    }

    // ---- transactions ----

    fn begin(&mut self, kind: TxnKind, now: Instant) -> Txn<V> {
        self.seq += 1;
        Txn {
            seq: self.seq,
            kind,
            now,
            wall: self.clock.wall(),
            queue: VecDeque::new(),
            operations: Vec::new(),
            before: HashMap::default(),
            pending: Vec::new(),
            notes: Vec::new(),
            actual: HashMap::default(),
        }
    }

    /// Converges every queued key (converging one may queue others), then
    /// marks dependency cycles among the values left pending.
    fn run(&mut self, tx: &mut Txn<V>) {
        while let Some(key) = tx.queue.pop_front() {
            match self.nodes.get_mut(&key) {
                Some(node) => node.queued = false,
                None => continue,
            }
            self.converge(tx, &key);
        }
        self.fail_cycles(tx);
    }

    fn finish(&mut self, tx: Txn<V>) -> Arc<TxnRecord> {
        let mut changes: Vec<StatusChange> = tx
            .before
            .into_iter()
            .filter_map(|(key, before)| {
                let status = match self.nodes.get(&key) {
                    Some(node) => status_of(node),
                    None => Status {
                        state: State::Removed,
                        attempts: 0,
                        last_transition: tx.wall,
                        derived_from: None,
                    },
                };
                (status.state != before).then_some(StatusChange { key, status })
            })
            .collect();
        changes.sort_by(|a, b| a.key.cmp(&b.key));
        let record = Arc::new(TxnRecord {
            seq: tx.seq,
            at: tx.wall,
            kind: tx.kind,
            operations: tx.operations,
            changes,
            notes: tx.notes,
        });
        if self.history.len() == self.history_limit {
            self.history.pop_front();
        }
        self.history.push_back(record.clone());
        if !record.changes.is_empty() {
            if let Some(hook) = self.on_change.as_mut() {
                hook(&record);
            }
        }
        record
    }

    fn resync(&mut self, kind: TxnKind, desired: Option<Vec<(String, V)>>) -> Arc<TxnRecord> {
        let mut tx = self.begin(kind, self.clock.now());

        // What is in the target, per descriptor that can tell.
        let mut retrievable = vec![false; self.descriptors.len()];
        let mut retrieved = Vec::new();
        for (i, descriptor) in self.descriptors.iter_mut().enumerate() {
            match descriptor.retrieve() {
                Ok(Some(values)) => {
                    retrievable[i] = true;
                    retrieved.push((i, values));
                }
                Ok(None) => {}
                Err(e) => tx.notes.push(format!(
                    "retrieve {}: {} (keeping the engine's record)",
                    descriptor.name(),
                    e.message
                )),
            }
        }
        let mut actual = HashMap::default();
        for (i, values) in retrieved {
            for (key, value, meta) in values {
                // Only what this descriptor handles (not a longer prefix's).
                if self.descriptor_for(&key) == Some(i) {
                    actual.insert(key, (value, meta));
                }
            }
        }

        if let Some(desired) = desired {
            let wanted: HashMap<String, V> = desired.into_iter().collect();
            let mut gone: Vec<String> = self
                .nodes
                .iter()
                .filter(|(k, n)| {
                    n.parent.is_none() && n.desired.is_some() && !wanted.contains_key(*k)
                })
                .map(|(k, _)| k.clone())
                .collect();
            gone.sort();
            for key in gone {
                self.put_desired(&mut tx, key, None);
            }
            let mut wanted: Vec<(String, V)> = wanted.into_iter().collect();
            wanted.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, value) in wanted {
                self.put_desired(&mut tx, key, Some(value));
            }
        }

        // The engine's view of the target becomes what was read back.
        for (key, node) in self.nodes.iter_mut() {
            if node.descriptor.is_some_and(|i| retrievable[i]) {
                (node.applied, node.meta) = match actual.remove(key) {
                    Some((value, meta)) => (Some(value), Some(meta)),
                    None => (None, None),
                };
            }
        }
        // Values nobody knows: the engine's own leftovers are strays to
        // delete; anything else is foreign, unless a value derived during
        // this resync claims it.
        let mut strays: Vec<(String, (V, Meta))> = Vec::new();
        for (key, found) in actual {
            if self.owned.contains(&key) {
                strays.push((key, found));
            } else {
                tx.actual.insert(key, found);
            }
        }
        strays.sort_by(|a, b| a.0.cmp(&b.0));
        let stray_keys: Vec<String> = strays.iter().map(|(k, _)| k.clone()).collect();
        for (key, found) in strays {
            self.new_node(&mut tx, &key, None, Some(found), None);
        }

        // Values found as desired count as configured from the start, so
        // their dependents are kept rather than deleted and re-created; the
        // convergence below checks each of them. Their derived values are
        // put in place the same way.
        let mut work: Vec<String> = self.nodes.keys().cloned().collect();
        work.sort_unstable_by(|a, b| b.cmp(a));
        while let Some(key) = work.pop() {
            let Some(node) = self.nodes.get(&key) else {
                continue;
            };
            if node.desired.is_some() && node.applied == node.desired {
                self.set_state(&mut tx, &key, State::Configured);
                self.sync_derived(&mut tx, &key);
                if let Some(node) = self.nodes.get(&key) {
                    work.extend(node.children.iter().rev().cloned());
                }
            } else if node.state.is_configured() {
                self.set_state(
                    &mut tx,
                    &key,
                    State::Pending {
                        missing: Vec::new(),
                    },
                );
            }
        }

        let strays: HashSet<&String> = stray_keys.iter().collect();
        let mut keys: Vec<String> = self
            .nodes
            .keys()
            .filter(|k| !strays.contains(k))
            .cloned()
            .collect();
        keys.sort();
        keys.extend(stray_keys.iter().cloned());
        for key in keys {
            if let Some(node) = self.nodes.get_mut(&key) {
                node.requested_in = tx.seq;
            }
            enqueue(&mut self.nodes, &mut tx, &key);
        }
        self.run(&mut tx);
        self.finish(tx)
    }

    // ---- desired state ----

    fn put_desired(&mut self, tx: &mut Txn<V>, key: String, value: Option<V>) {
        let Some(node) = self.nodes.get_mut(&key) else {
            if let Some(value) = value {
                self.new_node(tx, &key, Some(value), None, None);
                if let Some(node) = self.nodes.get_mut(&key) {
                    node.requested_in = tx.seq;
                }
                enqueue(&mut self.nodes, tx, &key);
            }
            return;
        };
        if let Some(parent) = &node.parent {
            tx.notes.push(format!(
                "{key}: derived from {parent}; change the parent instead"
            ));
            return;
        }
        // Putting a failed value again is a request to try it again.
        let nudge = matches!(node.state, State::Failed { .. }) && value.is_some();
        if node.desired == value && !nudge {
            return;
        }
        if node.desired != value {
            node.attempts = 0;
        }
        node.desired = value;
        node.requested_in = tx.seq;
        if let Some(v) = &node.desired {
            let deps = deps_for(&self.descriptors, node.descriptor, &key, v);
            self.set_deps(&key, deps);
        }
        enqueue(&mut self.nodes, tx, &key);
        // A dependency cycle through this key may be broken now.
        let stuck: Vec<String> = self
            .index
            .on_key(&key)
            .filter(|d| self.nodes.get(*d).is_some_and(|n| n.in_cycle))
            .cloned()
            .collect();
        for d in stuck {
            enqueue(&mut self.nodes, tx, &d);
        }
    }

    fn new_node(
        &mut self,
        tx: &mut Txn<V>,
        key: &str,
        desired: Option<V>,
        applied: Option<(V, Meta)>,
        parent: Option<String>,
    ) {
        let descriptor = self.descriptor_for(key);
        let (applied, meta) = match applied {
            Some((value, meta)) => (Some(value), Some(meta)),
            None => (None, None),
        };
        let deps = match desired.as_ref().or(applied.as_ref()) {
            Some(v) => deps_for(&self.descriptors, descriptor, key, v),
            None => Vec::new(),
        };
        for d in &deps {
            self.index.add(key, d);
        }
        if !tx.before.contains_key(key) {
            tx.before.insert(key.to_string(), State::Removed);
        }
        self.nodes.insert(
            key.to_string(),
            Node {
                desired,
                applied,
                meta,
                descriptor,
                parent,
                children: Vec::new(),
                deps,
                state: State::Removed,
                attempts: 0,
                last_transition: tx.wall,
                in_cycle: false,
                queued: false,
                requested_in: 0,
            },
        );
    }

    fn set_deps(&mut self, key: &str, deps: Vec<Dependency>) {
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        if node.deps == deps {
            return;
        }
        for d in &node.deps {
            self.index.remove(key, d);
        }
        for d in &deps {
            self.index.add(key, d);
        }
        node.deps = deps;
    }

    fn descriptor_for(&self, key: &str) -> Option<usize> {
        self.prefixes
            .iter()
            .enumerate()
            .filter(|(_, p)| key.starts_with(p.as_str()))
            .max_by_key(|(_, p)| p.len())
            .map(|(i, _)| i)
    }

    // ---- convergence ----

    /// Brings one key's target state in line with its desired state.
    fn converge(&mut self, tx: &mut Txn<V>, key: &str) {
        let Some(node) = self.nodes.get(key) else {
            return;
        };
        let Some(want) = node.desired.clone() else {
            if node.applied.is_none() || self.unapply(tx, key) {
                self.drop_node(tx, key);
            }
            return;
        };
        let applied = node.applied.is_some();
        let Some(di) = node.descriptor else {
            if node.parent.is_some() {
                // A property: no descriptor, it exists while its parent does.
                if let Some(node) = self.nodes.get_mut(key) {
                    node.applied = Some(want);
                }
                self.became_configured(tx, key);
            } else if !applied || self.unapply(tx, key) {
                let reason = "no descriptor handles this key".to_string();
                self.set_state(tx, key, State::Invalid { reason });
            }
            return;
        };
        if let Err(reason) = self.descriptors[di].validate(key, &want) {
            if !applied || self.unapply(tx, key) {
                self.set_state(tx, key, State::Invalid { reason });
            }
            return;
        }
        let missing = self.missing(key, &node.deps);
        if !missing.is_empty() {
            if !applied || self.unapply(tx, key) {
                self.set_state(tx, key, State::Pending { missing });
            }
            return;
        }
        let op = match &node.applied {
            None => OpKind::Create,
            Some(old) if *old == want => {
                // Already there (adopted on resync, or after a retry of a
                // delete that did happen): nothing to call.
                self.owned.insert(key.to_string());
                self.became_configured(tx, key);
                return;
            }
            Some(old) if self.descriptors[di].needs_recreate(key, old, &want) => {
                if !self.unapply(tx, key) {
                    return;
                }
                OpKind::Create
            }
            Some(_) => {
                // Derived values the new value no longer has go first, as
                // when the parent itself goes.
                let keep: Vec<String> = self.descriptors[di]
                    .derived(key, &want)
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                self.prune_derived(tx, key, &keep);
                OpKind::Update
            }
        };
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        let result = match (op, node.applied.as_ref(), node.meta.as_mut()) {
            (OpKind::Update, Some(old), Some(meta)) => self.descriptors[di]
                .update(key, old, &want, meta)
                .map(|()| None),
            _ => self.descriptors[di].create(key, &want).map(Some),
        };
        self.record(
            tx,
            key,
            op,
            result.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        match result {
            Ok(meta) => {
                if let Some(node) = self.nodes.get_mut(key) {
                    node.applied = Some(want);
                    if meta.is_some() {
                        node.meta = meta;
                    }
                }
                self.owned.insert(key.to_string());
                self.became_configured(tx, key);
            }
            Err(e) => self.fail(tx, key, e),
        }
    }

    fn became_configured(&mut self, tx: &mut Txn<V>, key: &str) {
        let was = self.nodes.get(key).is_some_and(|n| n.state.is_configured());
        if let Some(node) = self.nodes.get_mut(key) {
            node.attempts = 0;
        }
        self.set_state(tx, key, State::Configured);
        self.sync_derived(tx, key);
        if !was {
            self.cascade(tx, key);
        }
    }

    /// Queues the values waiting for `key`, which just became configured.
    fn cascade(&mut self, tx: &mut Txn<V>, key: &str) {
        let nodes = &mut self.nodes;
        for d in self.index.on_key(key) {
            if nodes.get(d).is_some_and(|n| waits(n, key)) {
                enqueue(nodes, tx, d);
            }
        }
        for (prefix, dependents) in self.index.on_prefixes_of(key) {
            // With two other configured keys under the prefix, every value
            // depending on it was satisfied already.
            if count_configured(&self.configured, prefix, key, 2) >= 2 {
                continue;
            }
            let label = format!("{prefix}*");
            for d in dependents {
                if d != key && nodes.get(d).is_some_and(|n| waits(n, &label)) {
                    enqueue(nodes, tx, d);
                }
            }
        }
    }

    /// Brings `parent`'s derived values in line with what its descriptor
    /// derives from its applied value.
    fn sync_derived(&mut self, tx: &mut Txn<V>, parent: &str) {
        let Some(node) = self.nodes.get(parent) else {
            return;
        };
        let (Some(di), Some(value)) = (node.descriptor, node.applied.as_ref()) else {
            return;
        };
        let derived = self.descriptors[di].derived(parent, value);
        if derived.is_empty() && node.children.is_empty() {
            return;
        }
        let old_children = node.children.clone();
        let mut children = Vec::with_capacity(derived.len());
        for (key, value) in derived {
            let Some(child) = self.nodes.get_mut(&key) else {
                let applied = tx.actual.remove(&key);
                self.new_node(tx, &key, Some(value), applied, Some(parent.to_string()));
                enqueue(&mut self.nodes, tx, &key);
                children.push(key);
                continue;
            };
            let ours = child.parent.as_deref() == Some(parent);
            // A stray left in the target, now derived again: adopt it.
            let adopt = child.parent.is_none() && child.desired.is_none();
            if !ours && !adopt {
                let owner = child.parent.as_deref().unwrap_or("a desired value");
                tx.notes.push(format!(
                    "{parent} derives {key}, which belongs to {owner}; skipped"
                ));
                continue;
            }
            child.parent = Some(parent.to_string());
            if child.desired.as_ref() != Some(&value) {
                child.attempts = 0;
                let deps = deps_for(&self.descriptors, child.descriptor, &key, &value);
                child.desired = Some(value);
                self.set_deps(&key, deps);
                enqueue(&mut self.nodes, tx, &key);
            }
            children.push(key);
        }
        for old in old_children {
            if !children.contains(&old) {
                if let Some(child) = self.nodes.get_mut(&old) {
                    child.desired = None;
                    child.parent = None;
                }
                enqueue(&mut self.nodes, tx, &old);
            }
        }
        if let Some(node) = self.nodes.get_mut(parent) {
            node.children = children;
        }
    }

    /// Takes out `parent`'s derived values whose keys are not in `keep`.
    fn prune_derived(&mut self, tx: &mut Txn<V>, parent: &str, keep: &[String]) {
        let Some(node) = self.nodes.get_mut(parent) else {
            return;
        };
        let (kept, gone): (Vec<String>, Vec<String>) =
            node.children.drain(..).partition(|c| keep.contains(c));
        node.children = kept;
        for child in gone {
            if let Some(c) = self.nodes.get_mut(&child) {
                c.desired = None;
                c.parent = None;
            }
            self.converge(tx, &child);
        }
    }

    /// Takes `root` out of the target, after its derived values and the
    /// applied values that cannot stay without it (recursively: dependents
    /// before what they depend on). Dependents that are still desired go
    /// back to pending; derived values go for good. Returns whether the
    /// root's delete succeeded.
    fn unapply(&mut self, tx: &mut Txn<V>, root: &str) -> bool {
        let mut stack = vec![(root.to_string(), false)];
        let mut seen = HashSet::default();
        let mut root_deleted = false;
        while let Some((key, expanded)) = stack.pop() {
            if expanded {
                let deleted = self.delete_applied(tx, &key);
                if key == root {
                    root_deleted = deleted;
                } else if deleted {
                    if self.nodes.get(&key).is_some_and(|n| n.desired.is_none()) {
                        self.drop_node(tx, &key);
                    } else {
                        enqueue(&mut self.nodes, tx, &key);
                    }
                }
                continue;
            }
            let Some(node) = self.nodes.get(&key) else {
                continue;
            };
            if node.applied.is_none() || !seen.insert(key.clone()) {
                continue;
            }
            stack.push((key.clone(), true));
            for child in node.children.clone().into_iter().rev() {
                let Some(c) = self.nodes.get_mut(&child) else {
                    continue;
                };
                c.desired = None;
                if c.applied.is_some() {
                    stack.push((child, false));
                } else {
                    enqueue(&mut self.nodes, tx, &child);
                }
            }
            // Sorted, and pushed in reverse so they are deleted in key order.
            let mut dependents = self.breaking_dependents(&key);
            dependents.sort_unstable();
            dependents.dedup();
            let mut in_target = Vec::new();
            for d in dependents {
                let Some(n) = self.nodes.get(&d) else {
                    continue;
                };
                if n.applied.is_some() {
                    in_target.push((d, false));
                } else if n.desired.is_some() && !matches!(n.state, State::Invalid { .. }) {
                    // Not in the target, but what it waits for changes.
                    enqueue(&mut self.nodes, tx, &d);
                }
            }
            stack.extend(in_target.into_iter().rev());
        }
        root_deleted
    }

    /// Values whose dependencies stop being met when `key` goes.
    fn breaking_dependents(&self, key: &str) -> Vec<String> {
        let mut out: Vec<String> = self.index.on_key(key).cloned().collect();
        for (prefix, dependents) in self.index.on_prefixes_of(key) {
            let mut others = self
                .configured
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|k| k.starts_with(prefix))
                .filter(|k| *k != key)
                .take(2);
            match (others.next(), others.next()) {
                (Some(_), Some(_)) => {}
                (Some(only), None) => {
                    // Only `only` itself remains, which does not count for
                    // its own dependency.
                    if dependents.contains(only) {
                        out.push(only.clone());
                    }
                }
                _ => out.extend(dependents.iter().filter(|d| *d != key).cloned()),
            }
        }
        out
    }

    /// Deletes `key`'s applied value from the target. Returns success.
    fn delete_applied(&mut self, tx: &mut Txn<V>, key: &str) -> bool {
        let Some(node) = self.nodes.get(key) else {
            return true;
        };
        let Some(value) = node.applied.as_ref() else {
            return true;
        };
        if let Some(di) = node.descriptor {
            let result = match node.meta.as_ref() {
                Some(meta) => self.descriptors[di].delete(key, value, meta),
                None => Err(ApplyError::fatal(format!(
                    "{key}: no metadata to delete it with"
                ))),
            };
            self.record(tx, key, OpKind::Delete, result.clone());
            if let Err(e) = result {
                self.fail(tx, key, e);
                return false;
            }
        }
        self.owned.remove(key);
        if let Some(node) = self.nodes.get_mut(key) {
            node.applied = None;
            node.meta = None;
            if node.state.is_configured() {
                // Until the caller settles the final state.
                self.set_state(
                    tx,
                    key,
                    State::Pending {
                        missing: Vec::new(),
                    },
                );
            }
        }
        true
    }

    /// Forgets a key that is neither desired nor applied.
    fn drop_node(&mut self, tx: &mut Txn<V>, key: &str) {
        let Some(node) = self.nodes.remove(key) else {
            return;
        };
        if !tx.before.contains_key(key) {
            tx.before.insert(key.to_string(), node.state.clone());
        }
        for d in &node.deps {
            self.index.remove(key, d);
        }
        self.configured.remove(key);
        if let Some(parent) = node.parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
            parent.children.retain(|c| c != key);
        }
        for child in node.children {
            if let Some(c) = self.nodes.get_mut(&child) {
                c.desired = None;
                c.parent = None;
            }
            enqueue(&mut self.nodes, tx, &child);
        }
    }

    /// Dependencies of `key` that are not configured, named as in
    /// `State::Pending`.
    fn missing(&self, key: &str, deps: &[Dependency]) -> Vec<String> {
        let mut out = Vec::new();
        for dep in deps {
            match dep {
                Dependency::Key(k) => {
                    let ok = k != key && self.nodes.get(k).is_some_and(|n| n.state.is_configured());
                    if !ok {
                        out.push(k.clone());
                    }
                }
                Dependency::AnyOf(prefix) => {
                    if count_configured(&self.configured, prefix, key, 1) == 0 {
                        out.push(dep.label());
                    }
                }
            }
        }
        out
    }

    fn record(&mut self, tx: &mut Txn<V>, key: &str, op: OpKind, result: Result<(), ApplyError>) {
        let cascade = self.nodes.get(key).is_none_or(|n| n.requested_in != tx.seq);
        tx.operations.push(Operation {
            key: key.to_string(),
            op,
            result,
            cascade,
        });
    }

    fn fail(&mut self, tx: &mut Txn<V>, key: &str, error: ApplyError) {
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        node.attempts += 1;
        let attempts = node.attempts;
        let state = if error.retriable && attempts < self.policy.max_attempts {
            let next_at = tx.now + self.policy.delay(attempts);
            self.retries.insert((next_at, key.to_string()));
            State::Retrying {
                error: error.message,
                attempts,
                next_at,
            }
        } else {
            State::Failed {
                error: error.message,
                attempts,
            }
        };
        self.set_state(tx, key, state);
    }

    fn set_state(&mut self, tx: &mut Txn<V>, key: &str, state: State) {
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        if node.state == state {
            return;
        }
        if !tx.before.contains_key(key) {
            tx.before.insert(key.to_string(), node.state.clone());
        }
        match (node.state.is_configured(), state.is_configured()) {
            (false, true) => {
                self.configured.insert(key.to_string());
            }
            (true, false) => {
                self.configured.remove(key);
            }
            _ => {}
        }
        // Only values with key dependencies can be in a cycle.
        let keyed = || node.deps.iter().any(|d| matches!(d, Dependency::Key(_)));
        if matches!(state, State::Pending { .. }) && keyed() {
            tx.pending.push(key.to_string());
        }
        node.in_cycle = false;
        node.state = state;
        node.last_transition = tx.wall;
    }

    /// Fails the values left pending on each other in a cycle, which would
    /// otherwise wait forever (Tarjan's strongly connected components over
    /// pending values and their key dependencies).
    fn fail_cycles(&mut self, tx: &mut Txn<V>) {
        let pending = |nodes: &HashMap<String, Node<V>>, k: &str| {
            nodes
                .get(k)
                .is_some_and(|n| matches!(n.state, State::Pending { .. }))
        };
        let successors = |nodes: &HashMap<String, Node<V>>, k: &str| -> Vec<String> {
            nodes[k]
                .deps
                .iter()
                .filter_map(|d| match d {
                    Dependency::Key(t) if pending(nodes, t) => Some(t.clone()),
                    _ => None,
                })
                .collect()
        };
        let mut index: HashMap<String, (usize, usize)> = HashMap::default(); // (index, lowlink)
        let mut on_stack: HashSet<String> = HashSet::default();
        let mut stack: Vec<String> = Vec::new();
        let mut cycles: Vec<Vec<String>> = Vec::new();
        let mut next = 0;
        for start in std::mem::take(&mut tx.pending) {
            if index.contains_key(&start) || !pending(&self.nodes, &start) {
                continue;
            }
            let mut frames: Vec<(String, Vec<String>, usize)> = Vec::new();
            index.insert(start.clone(), (next, next));
            next += 1;
            stack.push(start.clone());
            on_stack.insert(start.clone());
            frames.push((start.clone(), successors(&self.nodes, &start), 0));
            while let Some((v, succ, pos)) = frames.last_mut() {
                if let Some(w) = succ.get(*pos).cloned() {
                    *pos += 1;
                    if let Some(&(wi, _)) = index.get(&w) {
                        if on_stack.contains(&w) {
                            let low = &mut index.get_mut(v.as_str()).expect("visited").1;
                            *low = (*low).min(wi);
                        }
                    } else {
                        index.insert(w.clone(), (next, next));
                        next += 1;
                        stack.push(w.clone());
                        on_stack.insert(w.clone());
                        let s = successors(&self.nodes, &w);
                        frames.push((w, s, 0));
                    }
                    continue;
                }
                let v = v.clone();
                frames.pop();
                let (vi, vlow) = index[&v];
                if let Some((u, _, _)) = frames.last() {
                    let low = &mut index.get_mut(u.as_str()).expect("visited").1;
                    *low = (*low).min(vlow);
                }
                if vlow == vi {
                    let mut scc = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack.remove(&w);
                        let done = w == v;
                        scc.push(w);
                        if done {
                            break;
                        }
                    }
                    let self_loop = scc.len() == 1
                        && self.nodes[&scc[0]]
                            .deps
                            .contains(&Dependency::Key(scc[0].clone()));
                    if scc.len() > 1 || self_loop {
                        scc.sort();
                        cycles.push(scc);
                    }
                }
            }
        }
        for cycle in cycles {
            let error = format!("dependency cycle among {}", cycle.join(", "));
            for key in cycle {
                let attempts = self.nodes.get(&key).map_or(0, |n| n.attempts);
                let state = State::Failed {
                    error: error.clone(),
                    attempts,
                };
                self.set_state(tx, &key, state);
                if let Some(node) = self.nodes.get_mut(&key) {
                    node.in_cycle = true;
                }
            }
        }
    }
}

fn enqueue<V>(nodes: &mut HashMap<String, Node<V>>, tx: &mut Txn<V>, key: &str) {
    if let Some(node) = nodes.get_mut(key) {
        if !node.queued {
            node.queued = true;
            tx.queue.push_back(key.to_string());
        }
    }
}

fn deps_for<V>(
    descriptors: &[Box<dyn Erased<V>>],
    descriptor: Option<usize>,
    key: &str,
    value: &V,
) -> Vec<Dependency> {
    descriptor.map_or_else(Vec::new, |i| descriptors[i].dependencies(key, value))
}

/// Whether a value should be re-evaluated now that `label` (a key, or
/// `prefix*`) is configured.
fn waits<V>(node: &Node<V>, label: &str) -> bool {
    match &node.state {
        State::Pending { missing } => missing.is_empty() || missing.iter().any(|m| m == label),
        State::Failed { .. } => node.in_cycle,
        _ => false,
    }
}

/// Configured keys under `prefix` other than `except`, counted up to `limit`.
fn count_configured(
    configured: &BTreeSet<String>,
    prefix: &str,
    except: &str,
    limit: usize,
) -> usize {
    configured
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(|k| k.starts_with(prefix))
        .filter(|k| *k != except)
        .take(limit)
        .count()
}

fn status_of<V>(node: &Node<V>) -> Status {
    Status {
        state: node.state.clone(),
        attempts: node.attempts,
        last_transition: node.last_transition,
        derived_from: node.parent.clone(),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
