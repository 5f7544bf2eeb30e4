//! A fake target for the engine's tests: descriptors that keep objects in a
//! shared map, log every call in order, fail on demand, and panic if the
//! engine ever creates a value before its dependencies or deletes one that
//! something in the target still depends on.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use weir_reconcile::{
    ApplyError, Dependency, Descriptor, ManualClock, Reconciler, RetryPolicy, State, TxnRecord,
};

/// A test value: some data, plus what the descriptor reports about it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Val {
    pub data: String,
    pub deps: Vec<Dependency>,
    pub derived: Vec<(String, Val)>,
    /// A change of generation cannot be done in place (needs a recreate).
    pub generation: u32,
}

pub fn val(data: &str) -> Val {
    Val {
        data: data.to_string(),
        ..Val::default()
    }
}

impl Val {
    pub fn needs(mut self, key: &str) -> Self {
        self.deps.push(Dependency::key(key));
        self
    }

    pub fn needs_any(mut self, prefix: &str) -> Self {
        self.deps.push(Dependency::any_of(prefix));
        self
    }

    pub fn derives(mut self, key: &str, value: Val) -> Self {
        self.derived.push((key.to_string(), value));
        self
    }

    pub fn generation(mut self, generation: u32) -> Self {
        self.generation = generation;
        self
    }
}

#[derive(Default)]
pub struct Target {
    pub objects: BTreeMap<String, Val>,
    pub calls: Vec<String>,
    /// Errors the next calls on a key return, in order.
    pub failures: HashMap<String, VecDeque<ApplyError>>,
    /// Prefixes some fake handles (dependencies elsewhere are properties,
    /// not objects in the target).
    pub prefixes: Vec<String>,
    /// Prefixes whose retrieve fails.
    pub broken_retrieve: Vec<String>,
    /// What create gave each object (as a port id would be), which the
    /// engine must hand back to update and delete; 0 for objects put in
    /// the target behind the engine's back.
    pub handles: BTreeMap<String, u32>,
    pub next_handle: u32,
}

impl Target {
    fn injected(&mut self, key: &str) -> Result<(), ApplyError> {
        match self.failures.get_mut(key).and_then(|q| q.pop_front()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn handle(&self, key: &str) -> u32 {
        self.handles.get(key).copied().unwrap_or(0)
    }

    fn in_target(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    fn check_deps_present(&self, key: &str, value: &Val) {
        for dep in &value.deps {
            match dep {
                Dependency::Key(k) => {
                    if self.in_target(k) {
                        assert!(
                            self.objects.contains_key(k),
                            "{key} created before its dependency {k}"
                        );
                    }
                }
                Dependency::AnyOf(p) => {
                    if self.in_target(p) {
                        assert!(
                            self.objects
                                .keys()
                                .any(|k| k.starts_with(p.as_str()) && k != key),
                            "{key} created with nothing under {p}"
                        );
                    }
                }
            }
        }
    }

    fn check_no_dependents(&self, key: &str) {
        for (other, v) in &self.objects {
            for dep in &v.deps {
                let hangs = match dep {
                    Dependency::Key(k) => k == key,
                    Dependency::AnyOf(p) => {
                        key.starts_with(p.as_str())
                            && !self
                                .objects
                                .keys()
                                .any(|k| k.starts_with(p.as_str()) && k != key && k != other)
                    }
                };
                assert!(!hangs, "{key} deleted while {other} depends on it");
            }
        }
    }
}

pub struct Fake {
    pub name: String,
    pub prefix: String,
    pub target: Arc<Mutex<Target>>,
    pub updatable: bool,
    pub retrievable: bool,
}

impl Fake {
    fn target(&self) -> MutexGuard<'_, Target> {
        self.target.lock().unwrap()
    }
}

impl Descriptor<Val> for Fake {
    type Metadata = u32;

    fn name(&self) -> &str {
        &self.name
    }

    fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn validate(&self, _key: &str, value: &Val) -> Result<(), String> {
        if value.data == "invalid" {
            Err("data must not be `invalid`".to_string())
        } else {
            Ok(())
        }
    }

    fn create(&mut self, key: &str, value: &Val) -> Result<u32, ApplyError> {
        let mut t = self.target();
        t.calls.push(format!("create {key}"));
        t.injected(key)?;
        assert!(!t.objects.contains_key(key), "{key} created twice");
        t.check_deps_present(key, value);
        t.objects.insert(key.to_string(), value.clone());
        t.next_handle += 1;
        let handle = t.next_handle;
        t.handles.insert(key.to_string(), handle);
        Ok(handle)
    }

    fn update(
        &mut self,
        key: &str,
        old: &Val,
        new: &Val,
        handle: &mut u32,
    ) -> Result<(), ApplyError> {
        assert!(
            self.updatable,
            "update called on a descriptor without update"
        );
        let mut t = self.target();
        t.calls.push(format!("update {key}"));
        t.injected(key)?;
        assert_eq!(
            t.objects.get(key),
            Some(old),
            "{key} updated from a value it does not have"
        );
        assert_eq!(
            *handle,
            t.handle(key),
            "{key} updated with another's metadata"
        );
        t.check_deps_present(key, new);
        t.objects.insert(key.to_string(), new.clone());
        Ok(())
    }

    fn needs_recreate(&self, _key: &str, old: &Val, new: &Val) -> bool {
        !self.updatable || old.generation != new.generation
    }

    fn delete(&mut self, key: &str, value: &Val, handle: &u32) -> Result<(), ApplyError> {
        let mut t = self.target();
        t.calls.push(format!("delete {key}"));
        t.injected(key)?;
        assert_eq!(
            t.objects.get(key),
            Some(value),
            "{key} deleted with a value it does not have"
        );
        assert_eq!(
            *handle,
            t.handle(key),
            "{key} deleted with another's metadata"
        );
        t.objects.remove(key);
        t.handles.remove(key);
        t.check_no_dependents(key);
        Ok(())
    }

    fn retrieve(&mut self) -> Result<Option<Vec<(String, Val, u32)>>, ApplyError> {
        if !self.retrievable {
            return Ok(None);
        }
        let t = self.target();
        if t.broken_retrieve.contains(&self.prefix) {
            return Err(ApplyError::retriable("target unreachable"));
        }
        Ok(Some(
            t.objects
                .iter()
                .filter(|(k, _)| k.starts_with(self.prefix.as_str()))
                .map(|(k, v)| (k.clone(), v.clone(), t.handle(k)))
                .collect(),
        ))
    }

    fn dependencies(&self, _key: &str, value: &Val) -> Vec<Dependency> {
        value.deps.clone()
    }

    fn derived(&self, _key: &str, value: &Val) -> Vec<(String, Val)> {
        value.derived.clone()
    }
}

/// An engine with fakes for `/vpc/`, `/if/` (updatable), `/route/`
/// (recreate only) and `/addr/` (derived addresses), all sharing one
/// target, on a manual clock.
pub struct Harness {
    pub engine: Reconciler<Val>,
    pub target: Arc<Mutex<Target>>,
    pub clock: ManualClock,
}

pub const KINDS: [(&str, &str, bool); 4] = [
    ("vpc", "/vpc/", false),
    ("interface", "/if/", true),
    ("route", "/route/", false),
    ("address", "/addr/", false),
];

impl Harness {
    pub fn new() -> Self {
        Self::with_target(Arc::new(Mutex::new(Target::default())))
    }

    /// A fresh engine over an existing target (a restart).
    pub fn with_target(target: Arc<Mutex<Target>>) -> Self {
        let clock = ManualClock::new();
        let mut engine = Reconciler::with_clock(clock.clone());
        engine.set_retry_policy(RetryPolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_attempts: 4,
        });
        for (name, prefix, updatable) in KINDS {
            let mut t = target.lock().unwrap();
            if !t.prefixes.iter().any(|p| p == prefix) {
                t.prefixes.push(prefix.to_string());
            }
            drop(t);
            engine.register(Fake {
                name: name.to_string(),
                prefix: prefix.to_string(),
                target: target.clone(),
                updatable,
                retrievable: true,
            });
        }
        Harness {
            engine,
            target,
            clock,
        }
    }

    pub fn put(&mut self, key: &str, value: Val) -> Arc<TxnRecord> {
        self.engine.set_desired([(key.to_string(), Some(value))])
    }

    pub fn delete(&mut self, key: &str) -> Arc<TxnRecord> {
        self.engine.set_desired([(key.to_string(), None)])
    }

    pub fn txn(&mut self, changes: &[(&str, Option<Val>)]) -> Arc<TxnRecord> {
        self.engine
            .set_desired(changes.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    /// The calls made since the last time, as `create /if/a` lines.
    pub fn calls(&self) -> Vec<String> {
        std::mem::take(&mut self.target.lock().unwrap().calls)
    }

    pub fn fail_next(&self, key: &str, errors: &[ApplyError]) {
        self.target
            .lock()
            .unwrap()
            .failures
            .entry(key.to_string())
            .or_default()
            .extend(errors.iter().cloned());
    }

    pub fn state(&self, key: &str) -> State {
        self.engine.status(key).map_or(State::Removed, |s| s.state)
    }

    pub fn in_target(&self, key: &str) -> Option<Val> {
        self.target.lock().unwrap().objects.get(key).cloned()
    }
}

pub fn pending(missing: &[&str]) -> State {
    State::Pending {
        missing: missing.iter().map(|s| s.to_string()).collect(),
    }
}
