//! The embedded backend: one redb file owned by one process.
//!
//! Tables:
//! - `kv`: key -> (create_revision, mod_revision, version, value), the
//!   current state;
//! - `history`: revision -> every event of that revision, for watches;
//! - `meta`: `revision` (the current revision), `compact` (the oldest
//!   revision whose history is kept) and `ceiling` (the highest revision
//!   that may have been handed out, durably recorded).
//!
//! A transaction is one redb write transaction, committed with
//! `Durability::Immediate` (fsync) before `txn` returns, so a returned
//! transaction survives a crash and an interrupted one leaves no trace.
//! redb runs one write transaction at a time, which gives isolation.
//!
//! # Relaxed transactions and revisions that never go back
//!
//! A relaxed transaction (derived data such as object status) is committed
//! with `Durability::None`: visible at once, on disk with the next
//! immediate commit, lost if the process dies before that one. Its
//! revision is visible at once too (in its result, in watches, in the
//! `mod_revision` of what it wrote), so if the store, after a crash,
//! numbered its next transactions from the last durable revision, a client
//! would see a revision go back and the same number name two different
//! writes: a watch resumed from a revision it saw would skip the new
//! writes, and a compare-and-swap with a revision read before the crash
//! could succeed against a different value.
//!
//! So revisions are reserved in blocks of [`REVISION_BLOCK`], durably,
//! before any of them is handed out: `ceiling` is only raised by a durable
//! commit, and a relaxed transaction whose revision would pass it is
//! committed durably itself, raising it. Every revision ever handed out is
//! at most the durable `ceiling`. A store opened after a crash starts at
//! `ceiling` (skipping the revisions the lost relaxed commits may have
//! used, and the unused rest of the block); a store closed cleanly lowers
//! `ceiling` to its revision on the way out, so a clean restart skips
//! nothing. Raising the ceiling costs nothing on ordinary transactions
//! (they fsync anyway) and one fsync per [`REVISION_BLOCK`] relaxed
//! transactions in a row, so status writes stay cheap and never hold
//! desired-state writes behind an fsync of their own.
//!
//! The other way, keeping status outside the revisioned keyspace, would
//! make status invisible to watches (clients follow status through them)
//! and need a second consistency model for the merge on read.
//!
//! # History
//!
//! Every commit also drops the history older than the last `history`
//! revisions (default [`DEFAULT_HISTORY`]), so the file does not grow with
//! the number of writes; a watch from before that answers
//! [`StoreError::Compacted`] and the watcher relists.
//!
//! Watchers are woken through a `tokio::sync::watch` channel carrying the
//! latest commit: its revision and its events. A watcher that is exactly
//! one revision behind takes the events from there; one further behind
//! (several commits while it slept) reads them from the history table.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, watch};

use crate::{Event, EventKind, KeyValue, Result, Store, StoreError, Txn, TxnResult, WatchStream};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACT: &str = "compact";
const META_CEILING: &str = "ceiling";

/// Revisions reserved (durably) at a time; after a crash the revision may
/// jump by up to this much.
pub const REVISION_BLOCK: u64 = 1024;
/// Revisions of history the embedded store keeps by default.
pub const DEFAULT_HISTORY: u64 = 10_000;

/// How many revisions a watcher reads from history at a time.
const WATCH_BATCH: u64 = 256;
/// Events buffered between a watcher's reader task and its stream.
const WATCH_CHANNEL: usize = 1024;

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Embedded(e.into())
}

/// The embedded store. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    /// The latest commit, for waking watchers and answering `revision`.
    /// Watcher tasks hold receivers only, so dropping the store ends them.
    notify: watch::Sender<Commit>,
    /// Revisions of history to keep (at least 1).
    history: u64,
    /// The revisions skipped when the store was opened after a crash.
    skipped: Option<(u64, u64)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A clean close: nothing past the revision was handed out, so the
        // next open need not skip the rest of the reserved block. Only
        // transactions hold `Inner`, so none runs after this.
        let _ = close(&self.db);
    }
}

fn close(db: &Database) -> Result<()> {
    let wtx = db.begin_write().map_err(db_err)?;
    let lowered = {
        let mut meta = wtx.open_table(META).map_err(db_err)?;
        let m = read_meta(&meta)?;
        if m.ceiling > m.revision {
            meta.insert(META_CEILING, m.revision).map_err(db_err)?;
            true
        } else {
            false
        }
    };
    if lowered {
        // Durable, and it makes every relaxed commit before it durable.
        wtx.commit().map_err(db_err)
    } else {
        wtx.abort().map_err(db_err)
    }
}

/// A committed revision and its events (empty for the revision the store
/// was opened at).
#[derive(Clone, Default)]
struct Commit {
    revision: u64,
    events: Arc<Vec<Event>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`, keeping
    /// [`DEFAULT_HISTORY`] revisions of history. Blocks on I/O; one process
    /// at a time may hold the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_history(path, DEFAULT_HISTORY)
    }

    /// Opens (or creates) the store file at `path`, keeping the last
    /// `history` revisions of history (at least 1).
    pub fn open_with_history(path: impl AsRef<Path>, history: u64) -> Result<Self> {
        let history = history.max(1);
        let db = Database::create(path).map_err(db_err)?;
        let wtx = db.begin_write().map_err(db_err)?;
        let (revision, skipped);
        {
            wtx.open_table(KV).map_err(db_err)?;
            let mut hist = wtx.open_table(HISTORY).map_err(db_err)?;
            let mut meta = wtx.open_table(META).map_err(db_err)?;
            let m = read_meta(&meta)?;
            // Not closed cleanly: relaxed commits up to the ceiling may have
            // been seen and lost. Their revisions stay taken.
            skipped = (m.ceiling > m.revision).then_some((m.revision + 1, m.ceiling));
            revision = m.revision.max(m.ceiling);
            meta.insert(META_REVISION, revision).map_err(db_err)?;
            meta.insert(META_CEILING, revision).map_err(db_err)?;
            trim_history(&mut hist, &mut meta, revision, m.compact, history)?;
        }
        wtx.commit().map_err(db_err)?;
        let (notify, _) = watch::channel(Commit {
            revision,
            events: Arc::default(),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                notify,
                history,
                skipped,
            }),
        })
    }

    /// The revisions skipped at open because the store had not been closed
    /// cleanly (first, last), if any.
    pub fn skipped_revisions(&self) -> Option<(u64, u64)> {
        self.inner.skipped
    }

    /// The revision below which history has been dropped.
    pub async fn compact_revision(&self) -> Result<u64> {
        self.blocking(|db| {
            let rtx = db.begin_read().map_err(db_err)?;
            Ok(read_meta(&rtx.open_table(META).map_err(db_err)?)?.compact)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|_| StoreError::Closed)?
    }
}

/// Drops history older than the last `keep` revisions up to `revision`.
fn trim_history(
    history: &mut redb::Table<u64, &[u8]>,
    meta: &mut redb::Table<&str, u64>,
    revision: u64,
    compact: u64,
    keep: u64,
) -> Result<()> {
    let keep_from = revision.saturating_sub(keep) + 1;
    if keep_from > compact.max(1) {
        history
            .retain_in(..keep_from, |_, _| false)
            .map_err(db_err)?;
        meta.insert(META_COMPACT, keep_from).map_err(db_err)?;
    }
    Ok(())
}

struct Meta {
    revision: u64,
    compact: u64,
    ceiling: u64,
}

/// Reads the meta table.
fn read_meta(meta: &impl ReadableTable<&'static str, u64>) -> Result<Meta> {
    let get =
        |k| -> Result<u64> { Ok(meta.get(k).map_err(db_err)?.map(|g| g.value()).unwrap_or(0)) };
    Ok(Meta {
        revision: get(META_REVISION)?,
        compact: get(META_COMPACT)?,
        ceiling: get(META_CEILING)?,
    })
}

// Record encodings (little endian):
// kv value:  create u64 | mod u64 | version u64 | value bytes
// history:   repeated { kind u8 | key_len u32 | key | create u64 | version u64 | value_len u32 | value }

fn encode_kv(create: u64, modr: u64, version: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modr.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// (create, mod, version) of an encoded kv record.
fn decode_kv_meta(rec: &[u8]) -> Result<(u64, u64, u64)> {
    if rec.len() < 24 {
        return Err(StoreError::Corrupt(format!(
            "kv record of {} bytes",
            rec.len()
        )));
    }
    let u = |i: usize| u64::from_le_bytes(rec[i * 8..i * 8 + 8].try_into().unwrap());
    Ok((u(0), u(1), u(2)))
}

fn decode_kv(key: &str, rec: &[u8]) -> Result<KeyValue> {
    let (create_revision, mod_revision, version) = decode_kv_meta(rec)?;
    Ok(KeyValue {
        key: key.to_string(),
        value: rec[24..].to_vec(),
        create_revision,
        mod_revision,
        version,
    })
}

fn encode_events(events: &[Event], out: &mut Vec<u8>) {
    for e in events {
        out.push(match e.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        });
        out.extend_from_slice(&(e.kv.key.len() as u32).to_le_bytes());
        out.extend_from_slice(e.kv.key.as_bytes());
        out.extend_from_slice(&e.kv.create_revision.to_le_bytes());
        out.extend_from_slice(&e.kv.version.to_le_bytes());
        out.extend_from_slice(&(e.kv.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.kv.value);
    }
}

/// Decodes a revision's events, keeping those whose key starts with
/// `prefix`.
fn decode_events(revision: u64, mut rec: &[u8], prefix: &str, out: &mut Vec<Event>) -> Result<()> {
    fn take<'a>(rec: &mut &'a [u8], n: usize, revision: u64) -> Result<&'a [u8]> {
        if rec.len() < n {
            return Err(StoreError::Corrupt(format!(
                "truncated history record at revision {revision}"
            )));
        }
        let (head, tail) = rec.split_at(n);
        *rec = tail;
        Ok(head)
    }
    while !rec.is_empty() {
        let kind = match take(&mut rec, 1, revision)?[0] {
            0 => EventKind::Put,
            1 => EventKind::Delete,
            k => {
                return Err(StoreError::Corrupt(format!(
                    "event kind {k} at revision {revision}"
                )))
            }
        };
        let klen = u32::from_le_bytes(take(&mut rec, 4, revision)?.try_into().unwrap()) as usize;
        let key = take(&mut rec, klen, revision)?;
        let create = u64::from_le_bytes(take(&mut rec, 8, revision)?.try_into().unwrap());
        let version = u64::from_le_bytes(take(&mut rec, 8, revision)?.try_into().unwrap());
        let vlen = u32::from_le_bytes(take(&mut rec, 4, revision)?.try_into().unwrap()) as usize;
        let value = take(&mut rec, vlen, revision)?;
        if key.starts_with(prefix.as_bytes()) {
            let key = std::str::from_utf8(key).map_err(|_| {
                StoreError::Corrupt(format!("key not UTF-8 at revision {revision}"))
            })?;
            out.push(Event {
                kind,
                kv: KeyValue {
                    key: key.to_string(),
                    value: value.to_vec(),
                    create_revision: create,
                    mod_revision: revision,
                    version,
                },
                revision,
            });
        }
    }
    Ok(())
}

/// Applies `txn`; the events of the new revision when it wrote one.
fn apply_txn(db: &Database, txn: Txn, keep: u64) -> Result<(TxnResult, Vec<Event>)> {
    let mut wtx = db.begin_write().map_err(db_err)?;
    let relaxed = txn.relaxed;
    let mut durable = !relaxed;
    let (result, events) = {
        let mut kv = wtx.open_table(KV).map_err(db_err)?;
        let mut history = wtx.open_table(HISTORY).map_err(db_err)?;
        let mut meta = wtx.open_table(META).map_err(db_err)?;
        let Meta {
            revision,
            compact,
            ceiling,
        } = read_meta(&meta)?;

        let mut failed = Vec::new();
        for (i, c) in txn.compares.iter().enumerate() {
            let current = match kv.get(c.key()).map_err(db_err)? {
                Some(g) => Some(decode_kv_meta(g.value())?.1),
                None => None,
            };
            if !c.holds(current) {
                failed.push(i);
            }
        }
        if !failed.is_empty() {
            (
                TxnResult {
                    succeeded: false,
                    revision,
                    failed_compares: failed,
                },
                Vec::new(),
            )
        } else {
            let new = revision + 1;
            let mut events = Vec::with_capacity(txn.puts.len() + txn.deletes.len());
            for (key, value) in txn.puts {
                let old = match kv.get(key.as_str()).map_err(db_err)? {
                    Some(g) => Some(decode_kv_meta(g.value())?),
                    None => None,
                };
                let (create, version) = match old {
                    Some((create, _, version)) => (create, version + 1),
                    None => (new, 1),
                };
                kv.insert(
                    key.as_str(),
                    encode_kv(create, new, version, &value).as_slice(),
                )
                .map_err(db_err)?;
                events.push(Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key,
                        value,
                        create_revision: create,
                        mod_revision: new,
                        version,
                    },
                    revision: new,
                });
            }
            for key in txn.deletes {
                if kv.remove(key.as_str()).map_err(db_err)?.is_some() {
                    events.push(Event {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key,
                            value: Vec::new(),
                            create_revision: 0,
                            mod_revision: new,
                            version: 0,
                        },
                        revision: new,
                    });
                }
            }
            if events.is_empty() {
                (
                    TxnResult {
                        succeeded: true,
                        revision,
                        failed_compares: Vec::new(),
                    },
                    events,
                )
            } else {
                let mut rec = Vec::new();
                encode_events(&events, &mut rec);
                history.insert(new, rec.as_slice()).map_err(db_err)?;
                meta.insert(META_REVISION, new).map_err(db_err)?;
                if new > ceiling {
                    // Past the reserved block: this commit reserves the
                    // next one and must be durable before `new` is seen.
                    durable = true;
                }
                if durable {
                    // Free on a durable commit (it syncs anyway).
                    meta.insert(META_CEILING, new + REVISION_BLOCK - 1)
                        .map_err(db_err)?;
                }
                trim_history(&mut history, &mut meta, new, compact, keep)?;
                (
                    TxnResult {
                        succeeded: true,
                        revision: new,
                        failed_compares: Vec::new(),
                    },
                    events,
                )
            }
        }
    };
    if events.is_empty() {
        wtx.abort().map_err(db_err)?;
    } else {
        if !durable {
            wtx.set_durability(redb::Durability::None).map_err(db_err)?;
        }
        wtx.commit().map_err(db_err)?;
    }
    Ok((result, events))
}

/// What a watcher's read of history found.
enum HistoryRead {
    /// Events of revisions `from..=to` (filtered by prefix).
    Events {
        events: Vec<Event>,
        to: u64,
    },
    Compacted(u64),
}

fn read_history(db: &Database, prefix: &str, from: u64, to: u64) -> Result<HistoryRead> {
    let rtx = db.begin_read().map_err(db_err)?;
    let meta = rtx.open_table(META).map_err(db_err)?;
    let Meta {
        revision, compact, ..
    } = read_meta(&meta)?;
    if from < compact {
        return Ok(HistoryRead::Compacted(compact));
    }
    let to = to.min(revision);
    let history = rtx.open_table(HISTORY).map_err(db_err)?;
    let mut events = Vec::new();
    for entry in history.range(from..=to).map_err(db_err)? {
        let (rev, rec) = entry.map_err(db_err)?;
        decode_events(rev.value(), rec.value(), prefix, &mut events)?;
    }
    Ok(HistoryRead::Events { events, to })
}

/// A watcher: reads history from `next` on, then waits for new revisions.
async fn run_watch(
    db: Arc<Database>,
    prefix: String,
    mut next: u64,
    mut revisions: watch::Receiver<Commit>,
    tx: mpsc::Sender<Result<Event>>,
) {
    loop {
        let commit = revisions.borrow_and_update().clone();
        let latest = commit.revision;
        if next == latest && !commit.events.is_empty() {
            // The usual case: the one new commit, events at hand.
            for e in commit
                .events
                .iter()
                .filter(|e| e.kv.key.starts_with(&prefix))
            {
                if tx.send(Ok(e.clone())).await.is_err() {
                    return;
                }
            }
            next = latest + 1;
            continue;
        }
        if next <= latest {
            let (db2, prefix2) = (db.clone(), prefix.clone());
            let to = latest.min(next.saturating_add(WATCH_BATCH - 1));
            let read = tokio::task::spawn_blocking(move || read_history(&db2, &prefix2, next, to))
                .await
                .unwrap_or(Err(StoreError::Closed));
            match read {
                Ok(HistoryRead::Events { events, to }) => {
                    for e in events {
                        if tx.send(Ok(e)).await.is_err() {
                            return;
                        }
                    }
                    next = to + 1;
                }
                Ok(HistoryRead::Compacted(compact_revision)) => {
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: next,
                            compact_revision,
                        }))
                        .await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
            continue;
        }
        tokio::select! {
            changed = revisions.changed() => if changed.is_err() {
                // The store was dropped: nothing more will be written.
                return;
            },
            _ = tx.closed() => return,
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.blocking(move |db| {
            let rtx = db.begin_read().map_err(db_err)?;
            let kv = rtx.open_table(KV).map_err(db_err)?;
            match kv.get(key.as_str()).map_err(db_err)? {
                Some(g) => Ok(Some(decode_kv(&key, g.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)> {
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let rtx = db.begin_read().map_err(db_err)?;
            let revision = read_meta(&rtx.open_table(META).map_err(db_err)?)?.revision;
            let kv = rtx.open_table(KV).map_err(db_err)?;
            let mut out = Vec::new();
            for entry in kv.range(prefix.as_str()..).map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                let k = k.value();
                if !k.starts_with(prefix.as_str()) {
                    break;
                }
                out.push(decode_kv(k, v.value())?);
            }
            Ok((out, revision))
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        txn.validate()?;
        let inner = self.inner.clone();
        self.blocking(move |db| {
            let (result, events) = apply_txn(db, txn, inner.history)?;
            if !events.is_empty() {
                // Right after the commit, so `revision` and watchers see it
                // before this transaction is reported done.
                let rev = result.revision;
                inner.notify.send_if_modified(|latest| {
                    if rev > latest.revision {
                        *latest = Commit {
                            revision: rev,
                            events: Arc::new(events),
                        };
                        true
                    } else {
                        false
                    }
                });
            }
            Ok(result)
        })
        .await
    }

    async fn watch(&self, prefix: &str, from_revision: u64) -> Result<WatchStream> {
        let (revision, compact) = self
            .blocking(|db| {
                let rtx = db.begin_read().map_err(db_err)?;
                let m = read_meta(&rtx.open_table(META).map_err(db_err)?)?;
                Ok((m.revision, m.compact))
            })
            .await?;
        let from = if from_revision == 0 {
            revision + 1
        } else {
            from_revision
        };
        if from < compact {
            return Err(StoreError::Compacted {
                requested: from,
                compact_revision: compact,
            });
        }
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL);
        let task = tokio::spawn(run_watch(
            self.inner.db.clone(),
            prefix.to_string(),
            from,
            self.inner.notify.subscribe(),
            tx,
        ));
        Ok(WatchStream::new(rx, task))
    }

    async fn revision(&self) -> Result<u64> {
        // Updated right after every commit, and only this process writes
        // the file.
        Ok(self.inner.notify.borrow().revision)
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        self.blocking(move |db| {
            let wtx = db.begin_write().map_err(db_err)?;
            {
                let mut meta = wtx.open_table(META).map_err(db_err)?;
                let Meta {
                    revision: current,
                    compact,
                    ..
                } = read_meta(&meta)?;
                if revision > current {
                    return Err(StoreError::FutureRevision {
                        requested: revision,
                        current,
                    });
                }
                if revision <= compact {
                    return Ok(());
                }
                let mut history = wtx.open_table(HISTORY).map_err(db_err)?;
                history
                    .retain_in(..revision, |_, _| false)
                    .map_err(db_err)?;
                meta.insert(META_COMPACT, revision).map_err(db_err)?;
            }
            wtx.commit().map_err(db_err)
        })
        .await
    }
}
