//! An in-memory copy of every object in the store, kept current by a
//! watch, so that writes validate against the whole would-be state without
//! reading the store each time.
//!
//! The cache is only an optimisation for validation: every write still
//! carries a `ModRevision` compare per key it touches, so a stale cache
//! can cause a retry, never a lost update.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_model::{Object, Registry, API_VERSION};
use weir_store::{EventKind, KeyValue, Store};

/// Every object key starts with this.
pub fn root_prefix() -> String {
    format!("/{API_VERSION}/")
}

/// Decodes a stored object, filling `metadata.revision`.
pub fn decode(kv: &KeyValue) -> Option<Object> {
    let mut o: Object = serde_json::from_slice(&kv.value).ok()?;
    o.metadata.revision = Some(kv.mod_revision);
    Some(o)
}

/// The conflict group of an object (see `weir_model::Spec::conflict_group`),
/// named with its kind: the cross-object check of a write is run over the
/// changed objects' groups only (it is quadratic).
pub fn conflict_group(registry: &Registry, o: &Object) -> Option<String> {
    registry
        .conflict_group(o)
        .map(|g| format!("{}|{g}", o.kind))
}

#[derive(Clone)]
pub struct Entry {
    pub obj: Arc<Object>,
    pub mod_rev: u64,
    pub group: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub entries: BTreeMap<String, Entry>,
    tombs: HashMap<String, u64>,
    pub groups: HashMap<String, BTreeSet<String>>,
    /// Every revision up to this one is reflected.
    pub seen: u64,
    registry: Registry,
}

impl State {
    fn remove_entry(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            if let Some(g) = old.group {
                if let Some(set) = self.groups.get_mut(&g) {
                    set.remove(key);
                    if set.is_empty() {
                        self.groups.remove(&g);
                    }
                }
            }
        }
    }

    /// Records a put at `rev` unless the cache already has something newer.
    pub fn put(&mut self, key: &str, obj: Object, rev: u64) {
        let newer = match self.entries.get(key) {
            Some(e) => rev > e.mod_rev,
            None => self.tombs.get(key).is_none_or(|t| rev > *t),
        };
        if !newer {
            return;
        }
        self.remove_entry(key);
        self.tombs.remove(key);
        let group = conflict_group(&self.registry, &obj);
        if let Some(g) = &group {
            self.groups
                .entry(g.clone())
                .or_default()
                .insert(key.to_string());
        }
        self.entries.insert(
            key.to_string(),
            Entry {
                obj: Arc::new(obj),
                mod_rev: rev,
                group,
            },
        );
    }

    /// Records a delete at `rev` unless the cache already has something newer.
    pub fn delete(&mut self, key: &str, rev: u64) {
        let newer = match self.entries.get(key) {
            Some(e) => rev > e.mod_rev,
            None => self.tombs.get(key).is_none_or(|t| rev > *t),
        };
        if newer {
            self.remove_entry(key);
            self.tombs.insert(key.to_string(), rev);
        }
    }

    fn advance(&mut self, rev: u64) {
        if rev > self.seen {
            self.seen = rev;
            if self.tombs.len() > 4096 {
                let seen = self.seen;
                self.tombs.retain(|_, r| *r >= seen);
            }
        }
    }

    /// Entries whose key starts with `prefix`.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e)
    }
}

pub struct Cache {
    pub state: Mutex<State>,
    seen_tx: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }
}

impl Cache {
    /// Lists the store and starts following it.
    pub async fn start(
        store: Arc<dyn Store>,
        registry: Registry,
    ) -> weir_store::Result<Arc<Cache>> {
        let (seen_tx, _) = watch::channel(0);
        let cache = Arc::new(Cache {
            state: Mutex::new(State {
                registry,
                ..State::default()
            }),
            seen_tx,
            task: Mutex::new(None),
        });
        cache.relist(store.as_ref()).await?;
        let weak = Arc::downgrade(&cache);
        let task = tokio::spawn(async move {
            loop {
                let from = match weak.upgrade() {
                    Some(c) => c.lock().seen + 1,
                    None => return,
                };
                if let Ok(mut w) = store.watch(&root_prefix(), from).await {
                    while let Some(item) = w.next().await {
                        let Ok(ev) = item else { break };
                        let Some(c) = weak.upgrade() else { return };
                        let mut st = c.lock();
                        match ev.kind {
                            EventKind::Put => {
                                if let Some(o) = decode(&ev.kv) {
                                    st.put(&ev.kv.key, o, ev.revision);
                                }
                            }
                            EventKind::Delete => st.delete(&ev.kv.key, ev.revision),
                        }
                        st.advance(ev.revision);
                        let seen = st.seen;
                        drop(st);
                        c.seen_tx.send_replace(seen);
                    }
                }
                // The watch ended (compaction, store error): relist.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(c) = weak.upgrade() else { return };
                let _ = c.relist(store.as_ref()).await;
            }
        });
        *cache.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(cache)
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the whole store and merges it in.
    pub async fn relist(&self, store: &dyn Store) -> weir_store::Result<()> {
        let (kvs, rev) = store.list(&root_prefix()).await?;
        let mut st = self.lock();
        let listed: BTreeSet<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
        let gone: Vec<String> = st
            .entries
            .iter()
            .filter(|(k, e)| e.mod_rev <= rev && !listed.contains(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            st.delete(&k, rev);
        }
        for kv in &kvs {
            if let Some(o) = decode(kv) {
                st.put(&kv.key, o, kv.mod_revision);
            }
        }
        st.advance(rev);
        let seen = st.seen;
        drop(st);
        self.seen_tx.send_replace(seen);
        Ok(())
    }

    /// Waits until the cache reflects every revision up to `rev`; relists
    /// if the watch does not get there in time.
    pub async fn catch_up(&self, store: &dyn Store, rev: u64) -> weir_store::Result<()> {
        let mut rx = self.seen_tx.subscribe();
        let wait = rx.wait_for(|s| *s >= rev);
        if tokio::time::timeout(Duration::from_secs(2), wait)
            .await
            .is_ok_and(|r| r.is_ok())
        {
            return Ok(());
        }
        self.relist(store).await
    }

    /// Marks `rev` as seen when it directly follows what the cache has.
    pub fn advance_if_next(&self, rev: u64) {
        let mut st = self.lock();
        if st.seen + 1 == rev {
            st.advance(rev);
            drop(st);
            self.seen_tx.send_replace(rev);
        }
    }
}
