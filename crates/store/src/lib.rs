//! The consistent store that holds weir's desired state.
//!
//! A [`Store`] maps string keys (by convention `/weir/v1/<kind>/<name>`) to
//! opaque byte values (JSON documents; the store does not look inside). It
//! follows etcd's MVCC model, so the two backends behave the same:
//!
//! - [`EmbeddedStore`] (the default): a single file in redb, owned by one
//!   process, durable once a transaction returns.
//! - [`EtcdStore`]: an etcd v3 cluster through the `etcd-client` crate.
//!
//! # Revisions
//!
//! The store has one global revision, a `u64` that only grows. Every
//! transaction that changes something (at least one put, or a delete of a
//! key that exists) creates exactly one new revision, shared by all of its
//! changes. A transaction whose compares fail, or that changes nothing
//! (only deletes of absent keys, or no operations), creates none. An empty
//! embedded store is at revision 0; a fresh etcd cluster is at revision 1.
//! Callers must only rely on order and on "+1 per writing transaction"
//! while the store runs, never on absolute numbers: after a crash the
//! embedded store skips ahead (see below).
//!
//! A revision any client may have seen is never handed out again, not
//! even after a crash: a client that saw revision `r` finds the store at
//! `r` or later after a restart, a watch resumed from `r + 1` receives
//! every change committed after `r`, and a compare-and-swap with a
//! `mod_revision` read before the crash fails once the key has changed.
//! etcd gets this from raft. The embedded store commits relaxed
//! transactions (see [`Txn::relaxed`]) without waiting for the disk, and
//! a crash may lose the last of them; their revisions stay taken because
//! the store reserves revisions in blocks, durably, before it hands any of
//! them out, and reopens after a crash at the end of the reserved block.
//! So after a crash the embedded store's revision may jump by up to
//! [`REVISION_BLOCK`].
//!
//! Each key carries, as in etcd, `create_revision` (the revision that
//! created it since it last did not exist), `mod_revision` (the revision of
//! its last put) and `version` (puts since creation, starting at 1). A
//! delete removes the key; putting it again starts a new life with a new
//! `create_revision` and version 1.
//!
//! # Transactions
//!
//! A [`Txn`] has compares, puts and deletes. The store evaluates every
//! compare against the current state; if all hold it applies all puts and
//! deletes at one new revision, atomically and in isolation from other
//! transactions, else it applies nothing. A failed compare is not an error:
//! [`TxnResult::succeeded`] is `false` and [`TxnResult::failed_compares`]
//! lists the indexes of the compares that did not hold. A key may appear
//! at most once among a transaction's puts and deletes
//! ([`StoreError::InvalidTxn`] otherwise); keys must not be empty.
//!
//! # Lists
//!
//! [`Store::list`] returns every key that starts with the prefix (a plain
//! byte prefix: `/weir/v1/route/` does not match `/weir/v1/routex`), sorted
//! by key, and the store revision the list was read at. All entries come
//! from that one revision.
//!
//! # Watches
//!
//! [`Store::watch`] delivers every change to keys under a prefix whose
//! revision is `>= from_revision`, in revision order (changes of one
//! transaction share a revision and come one after another), first from
//! history and then live, with no gaps and no duplicates. `from_revision`
//! 0 means "from the next revision". The usual pattern is
//! `list(prefix)` at revision `r`, then `watch(prefix, r + 1)`.
//!
//! History below the compact revision is dropped by [`Store::compact`];
//! the embedded store also keeps only the last
//! [`DEFAULT_HISTORY`] revisions (configurable), compacting as it writes,
//! and etcd compacts as configured (`--auto-compaction-retention`).
//! Watching from a revision below it returns [`StoreError::Compacted`] with
//! the compact revision; the caller relists. A watcher that falls behind a
//! compaction gets the same error as a stream item, and its stream ends.
//! Any error item ends a stream. The etcd backend reconnects a broken watch
//! by itself, resuming after the last revision it delivered.

mod bench;
mod embedded;
mod etcd;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use bench::{bench_writes, WriteBench};
pub use embedded::{EmbeddedStore, DEFAULT_HISTORY, REVISION_BLOCK};
pub use etcd::{EtcdStore, DEFAULT_WRITE_TIMEOUT};

/// The result type of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested history has been compacted away; relist and watch
    /// again from the list's revision + 1.
    #[error("revision {requested} has been compacted (history starts at revision {compact_revision}); relist and watch again")]
    Compacted {
        /// The revision that was asked for.
        requested: u64,
        /// The oldest revision whose history is still kept.
        compact_revision: u64,
    },
    /// A revision later than the store's current one was asked for.
    #[error("revision {requested} is in the future (the store is at revision {current})")]
    FutureRevision { requested: u64, current: u64 },
    /// The transaction is malformed (empty key, a key put or deleted twice).
    #[error("invalid transaction: {0}")]
    InvalidTxn(String),
    /// The embedded database failed (I/O, corruption, already open).
    #[error("embedded store: {0}")]
    Embedded(#[from] redb::Error),
    /// A stored record could not be decoded.
    #[error("embedded store: corrupt record: {0}")]
    Corrupt(String),
    /// The etcd client failed (connection, timeout, server error).
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// etcd answered with something the store cannot use.
    #[error("etcd: unexpected response: {0}")]
    EtcdResponse(String),
    /// An etcd watch was cancelled by the server for another reason than
    /// compaction.
    #[error("etcd: watch cancelled: {0}")]
    WatchCancelled(String),
    /// The store is shut down (a background task it needs has gone away).
    #[error("store is closed")]
    Closed,
    /// A read got no answer in time.
    #[error("etcd did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A write was sent but no answer came back (timed out, connection
    /// lost, cancelled): it may or may not have been applied. Read the
    /// keys back before deciding to retry.
    #[error("outcome unknown: {0}; the write may or may not have been applied, read it back before retrying")]
    OutcomeUnknown(String),
}

impl StoreError {
    /// Whether this is [`StoreError::OutcomeUnknown`].
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, StoreError::OutcomeUnknown(_))
    }
}

/// One key and its value as of some revision.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision that created the key (0 in a delete event).
    pub create_revision: u64,
    /// The revision of the key's last change.
    pub mod_revision: u64,
    /// Puts since creation, 1 for a new key (0 in a delete event).
    pub version: u64,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value", &String::from_utf8_lossy(&self.value))
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("version", &self.version)
            .finish()
    }
}

/// A condition a [`Txn`] checks before applying anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals this; 0 means the key must not exist.
    ModRevision(String, u64),
    /// The key exists.
    Exists(String),
    /// The key does not exist.
    Absent(String),
}

impl Compare {
    /// The key this compare looks at.
    pub fn key(&self) -> &str {
        match self {
            Compare::ModRevision(k, _) | Compare::Exists(k) | Compare::Absent(k) => k,
        }
    }

    /// Whether the compare holds for a key whose current `mod_revision` is
    /// `current` (`None` when the key does not exist).
    pub fn holds(&self, current: Option<u64>) -> bool {
        match self {
            Compare::ModRevision(_, want) => current.unwrap_or(0) == *want,
            Compare::Exists(_) => current.is_some(),
            Compare::Absent(_) => current.is_none(),
        }
    }
}

/// Compares, then puts and deletes applied all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub puts: Vec<(String, Vec<u8>)>,
    pub deletes: Vec<String>,
    /// Derived data that can be recomputed (object status): the embedded
    /// store commits it without waiting for the disk, so it may be lost in
    /// a crash, but it is made durable by the next ordinary transaction and
    /// is never reordered with one. Its revision is never reused, even if
    /// it is lost (see "Revisions" above). etcd makes every transaction
    /// durable.
    pub relaxed: bool,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a compare.
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }

    /// Adds a put.
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.puts.push((key.into(), value.into()));
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.deletes.push(key.into());
        self
    }

    /// Marks the transaction as derived data (see [`Txn::relaxed`]).
    pub fn relaxed(mut self) -> Self {
        self.relaxed = true;
        self
    }

    /// Checks the rules every backend enforces: no empty key, no key put or
    /// deleted twice.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for c in &self.compares {
            if c.key().is_empty() {
                return Err(StoreError::InvalidTxn("empty key in a compare".into()));
            }
        }
        let keys = self
            .puts
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(self.deletes.iter().map(String::as_str));
        for k in keys {
            if k.is_empty() {
                return Err(StoreError::InvalidTxn("empty key".into()));
            }
            if !seen.insert(k) {
                return Err(StoreError::InvalidTxn(format!(
                    "key {k:?} is put or deleted more than once"
                )));
            }
        }
        Ok(())
    }

    /// Whether the transaction has no puts and no deletes.
    pub fn is_read_only(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty()
    }
}

/// What a [`Txn`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held (and so the changes were applied).
    pub succeeded: bool,
    /// The transaction's revision if it changed something, else the store
    /// revision it was evaluated at.
    pub revision: u64,
    /// Indexes into [`Txn::compares`] of the compares that did not hold
    /// (empty when `succeeded`).
    pub failed_compares: Vec<usize>,
}

/// Whether an [`Event`] is a put or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The key as written; for a delete, the value is empty and
    /// `create_revision` and `version` are 0.
    pub kv: KeyValue,
    /// The revision of the transaction that made the change.
    pub revision: u64,
}

/// The changes a [`Store::watch`] delivers, in revision order.
///
/// Dropping it stops the watch.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<Event>>,
    task: Option<JoinHandle<()>>,
}

impl WatchStream {
    /// Wraps a channel fed by a background task that is aborted when the
    /// stream is dropped.
    pub(crate) fn new(rx: mpsc::Receiver<Result<Event>>, task: JoinHandle<()>) -> Self {
        Self {
            rx,
            task: Some(task),
        }
    }

    /// The next change; `None` once the stream has ended (after an error
    /// item, or when the store shut down).
    pub async fn next(&mut self) -> Option<Result<Event>> {
        self.rx.recv().await
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}

/// The consistent store. See the crate documentation for the semantics.
#[async_trait]
pub trait Store: Send + Sync {
    /// The key's current value, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Every key starting with `prefix`, sorted by key, and the store
    /// revision they were read at.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)>;

    /// Evaluates the compares, then applies all puts and deletes at one new
    /// revision, or nothing. A failed compare is `Ok` with
    /// `succeeded == false`.
    async fn txn(&self, txn: Txn) -> Result<TxnResult>;

    /// Every change under `prefix` with revision `>= from_revision` (0:
    /// from the next revision), in order. [`StoreError::Compacted`] when
    /// `from_revision` is below the compact revision.
    async fn watch(&self, prefix: &str, from_revision: u64) -> Result<WatchStream>;

    /// The store's current revision.
    async fn revision(&self) -> Result<u64>;

    /// Drops history below `revision`: watches from earlier revisions fail
    /// with [`StoreError::Compacted`]. Compacting to a revision at or below
    /// the current compact revision does nothing; a revision above the
    /// current one is [`StoreError::FutureRevision`].
    async fn compact(&self, revision: u64) -> Result<()>;
}

#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        (**self).get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)> {
        (**self).list(prefix).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        (**self).txn(txn).await
    }
    async fn watch(&self, prefix: &str, from_revision: u64) -> Result<WatchStream> {
        (**self).watch(prefix, from_revision).await
    }
    async fn revision(&self) -> Result<u64> {
        (**self).revision().await
    }
    async fn compact(&self, revision: u64) -> Result<()> {
        (**self).compact(revision).await
    }
}

/// Opens a store from a location: `etcd://host:port[,host:port...]` for an
/// etcd cluster (plain HTTP), anything else is the path of an embedded
/// store file (created if missing).
pub async fn open(location: &str) -> Result<Arc<dyn Store>> {
    open_with_history(location, DEFAULT_HISTORY).await
}

/// [`open`], keeping the last `history` revisions of history in an
/// embedded store (etcd's history is compacted as etcd is configured, or
/// by [`Store::compact`]).
pub async fn open_with_history(location: &str, history: u64) -> Result<Arc<dyn Store>> {
    if let Some(hosts) = location.strip_prefix("etcd://") {
        let endpoints: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("http://{h}"))
            .collect();
        Ok(Arc::new(EtcdStore::connect(&endpoints).await?))
    } else {
        let path = location.to_string();
        let store =
            tokio::task::spawn_blocking(move || EmbeddedStore::open_with_history(path, history))
                .await
                .map_err(|_| StoreError::Closed)??;
        Ok(Arc::new(store))
    }
}
