//! The etcd backend, through the `etcd-client` crate.
//!
//! - A [`Txn`] is one etcd `Txn`: `ModRevision(k, r)` compares `mod_revision
//!   == r` (etcd treats a missing key as revision 0), `Exists`/`Absent`
//!   compare `version > 0` / `version == 0`. The failure branch reads every
//!   compared key, at the same revision, so the store can tell which
//!   compares failed.
//! - A watch asks for `start_revision` and progress notifications. When
//!   the stream breaks it reconnects (with backoff) from the revision after
//!   the last event or progress notification it saw. A compacted start
//!   revision surfaces as [`StoreError::Compacted`].
//! - etcd limits a transaction to `--max-txn-ops` operations (default 128)
//!   and a request to `--max-request-bytes` (default 1.5 MiB); run etcd
//!   with limits above the largest transaction weir writes (the test
//!   fixture uses 100000 ops and 32 MiB).
//! - A writing transaction that gets no answer within the write timeout
//!   ([`DEFAULT_WRITE_TIMEOUT`]), or whose request fails after it may have
//!   reached etcd (connection lost, cancelled, etcd's own "request timed
//!   out"), is [`StoreError::OutcomeUnknown`]: etcd may have applied it.
//!   Only a failure to connect at all, or a refusal (bad request), is a
//!   plain [`StoreError::Etcd`], known not to have been applied.
//! - etcd never reuses a revision (every commit goes through raft to
//!   disk), so revisions a client saw never go back after a restart.

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, CompactionOptions, Compare as EtcdCompare, CompareOp, ConnectOptions, EventType,
    GetOptions, KvClient, TxnOp, TxnOpResponse, WatchClient, WatchOptions, WatchResponse,
};
use tokio::sync::mpsc;

use crate::{
    Compare, Event, EventKind, KeyValue, Result, Store, StoreError, Txn, TxnResult, WatchStream,
};

/// Largest gRPC message the store accepts (lists, big watch responses).
const MAX_MESSAGE: usize = 256 << 20;
const WATCH_CHANNEL: usize = 1024;

/// How long a request waits for etcd's answer: then a writing transaction's
/// outcome is reported unknown, and a read fails.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A store in an etcd cluster. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    write_timeout: Duration,
}

/// Whether a failed write may have been applied: anything but a refusal
/// or a connection that was never made.
fn outcome_unknown(e: &etcd_client::Error) -> bool {
    use tonic::Code::*;
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let never_sent = error_chain(s).contains("connect");
            match s.code() {
                Cancelled | Unknown | DeadlineExceeded | Aborted | Internal | DataLoss => true,
                Unavailable => !never_sent,
                _ => false,
            }
        }
        etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// A status's message and the messages of its sources.
fn error_chain(s: &tonic::Status) -> String {
    let mut out = s.message().to_ascii_lowercase();
    let mut src = std::error::Error::source(s);
    while let Some(e) = src {
        out.push_str(": ");
        out.push_str(&e.to_string().to_ascii_lowercase());
        src = e.source();
    }
    out
}

fn to_u64(v: i64) -> u64 {
    v.max(0) as u64
}

fn convert_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    Ok(KeyValue {
        key: std::str::from_utf8(kv.key())
            .map_err(|_| StoreError::EtcdResponse("key is not UTF-8".into()))?
            .to_string(),
        value: kv.value().to_vec(),
        create_revision: to_u64(kv.create_revision()),
        mod_revision: to_u64(kv.mod_revision()),
        version: to_u64(kv.version()),
    })
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Result<u64> {
    h.map(|h| to_u64(h.revision()))
        .ok_or_else(|| StoreError::EtcdResponse("response without a header".into()))
}

/// Whether an etcd error is the server's "required revision has been
/// compacted".
fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("compacted"))
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (`http://host:port`).
    pub async fn connect<E: AsRef<str>>(endpoints: &[E]) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(options)).await?;
        Ok(Self::from_client(client))
    }

    /// Wraps a connected client.
    pub fn from_client(client: Client) -> Self {
        Self {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            watch: client.watch_client().max_decoding_message_size(MAX_MESSAGE),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// A read, bounded by the request timeout: a frozen etcd answers an
    /// error rather than never.
    async fn read<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        Ok(self.bounded(f).await??)
    }

    /// Any request, bounded by the request timeout; etcd's own error is
    /// left for the caller to look into.
    async fn bounded<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T> {
        tokio::time::timeout(self.write_timeout, f)
            .await
            .map_err(|_| StoreError::Timeout(self.write_timeout))
    }

    /// Sets how long a request waits for an answer (a writing
    /// transaction's outcome is then unknown, a read fails).
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Learns the compact revision by opening a watch from a compacted
    /// revision: etcd answers it with `compact_revision` set.
    async fn compact_revision_for(&self, prefix: &str, start: u64) -> Result<u64> {
        let mut stream = open_watch(self.watch.clone(), prefix, start).await?;
        let wait = async {
            while let Some(resp) = stream.message().await? {
                if resp.compact_revision() > 0 {
                    return Ok(to_u64(resp.compact_revision()));
                }
                if resp.canceled() {
                    return Err(StoreError::WatchCancelled(resp.cancel_reason().to_string()));
                }
            }
            Err(StoreError::EtcdResponse(
                "watch ended before reporting the compact revision".into(),
            ))
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .map_err(|_| {
                StoreError::EtcdResponse("no compact revision from a compacted watch".into())
            })?
    }
}

async fn open_watch(
    mut client: WatchClient,
    prefix: &str,
    start: u64,
) -> Result<etcd_client::WatchStream> {
    let mut options = WatchOptions::new()
        .with_start_revision(start as i64)
        .with_progress_notify();
    options = if prefix.is_empty() {
        options.with_all_keys()
    } else {
        options.with_prefix()
    };
    Ok(client.watch(prefix, Some(options)).await?)
}

/// The result of handling one watch response.
enum Handled {
    Continue,
    /// The consumer went away or the watch ended with an error sent.
    Stop,
}

async fn handle_response(
    resp: WatchResponse,
    next: &mut u64,
    tx: &mpsc::Sender<Result<Event>>,
) -> Handled {
    if resp.compact_revision() > 0 {
        let _ = tx
            .send(Err(StoreError::Compacted {
                requested: *next,
                compact_revision: to_u64(resp.compact_revision()),
            }))
            .await;
        return Handled::Stop;
    }
    if resp.canceled() {
        let _ = tx
            .send(Err(StoreError::WatchCancelled(
                resp.cancel_reason().to_string(),
            )))
            .await;
        return Handled::Stop;
    }
    if resp.events().is_empty() {
        // A progress notification: every change up to the header's revision
        // has been sent. (Not so for the "created" response, whose header
        // revision does not cover pending history.)
        if !resp.created() {
            if let Some(h) = resp.header() {
                *next = (*next).max(to_u64(h.revision()) + 1);
            }
        }
        return Handled::Continue;
    }
    for e in resp.events() {
        let Some(kv) = e.kv() else { continue };
        let kv = match convert_kv(kv) {
            Ok(kv) => kv,
            Err(err) => {
                let _ = tx.send(Err(err)).await;
                return Handled::Stop;
            }
        };
        let revision = kv.mod_revision;
        if revision < *next {
            // Already delivered before a reconnect.
            continue;
        }
        let kind = match e.event_type() {
            EventType::Put => EventKind::Put,
            EventType::Delete => EventKind::Delete,
        };
        if tx.send(Ok(Event { kind, kv, revision })).await.is_err() {
            return Handled::Stop;
        }
    }
    // etcd never splits one revision's events across responses (no
    // fragmenting is asked for), so the next response starts after it.
    if let Some(last) = resp.events().last().and_then(|e| e.kv()) {
        *next = (*next).max(to_u64(last.mod_revision()) + 1);
    }
    Handled::Continue
}

async fn run_watch(
    client: WatchClient,
    prefix: String,
    mut next: u64,
    mut stream: etcd_client::WatchStream,
    tx: mpsc::Sender<Result<Event>>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        loop {
            let msg = tokio::select! {
                msg = stream.message() => msg,
                _ = tx.closed() => return,
            };
            match msg {
                Ok(Some(resp)) => {
                    backoff = Duration::from_millis(50);
                    if let Handled::Stop = handle_response(resp, &mut next, &tx).await {
                        return;
                    }
                }
                // The stream broke or the server closed it: reconnect.
                Ok(None) | Err(_) => break,
            }
        }
        stream = loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = tx.closed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            match open_watch(client.clone(), &prefix, next).await {
                Ok(s) => break s,
                Err(_) => continue,
            }
        };
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        if key.is_empty() {
            return Ok(None);
        }
        let resp = self.read(self.kv.clone().get(key, None)).await?;
        resp.kvs().first().map(convert_kv).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64)> {
        let options = if prefix.is_empty() {
            GetOptions::new().with_all_keys()
        } else {
            GetOptions::new().with_prefix()
        };
        let key = if prefix.is_empty() { "\0" } else { prefix };
        let resp = self.read(self.kv.clone().get(key, Some(options))).await?;
        let revision = header_revision(resp.header())?;
        let kvs = resp
            .kvs()
            .iter()
            .map(convert_kv)
            .collect::<Result<Vec<_>>>()?;
        Ok((kvs, revision))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        txn.validate()?;
        let compares: Vec<EtcdCompare> = txn
            .compares
            .iter()
            .map(|c| match c {
                Compare::ModRevision(k, r) => {
                    EtcdCompare::mod_revision(k.as_str(), CompareOp::Equal, *r as i64)
                }
                Compare::Exists(k) => EtcdCompare::version(k.as_str(), CompareOp::Greater, 0),
                Compare::Absent(k) => EtcdCompare::version(k.as_str(), CompareOp::Equal, 0),
            })
            .collect();
        let reads: Vec<TxnOp> = txn
            .compares
            .iter()
            .map(|c| TxnOp::get(c.key(), None))
            .collect();
        let ops: Vec<TxnOp> = txn
            .puts
            .iter()
            .map(|(k, v)| TxnOp::put(k.as_str(), v.as_slice(), None))
            .chain(txn.deletes.iter().map(|k| TxnOp::delete(k.as_str(), None)))
            .collect();
        let etcd_txn = etcd_client::Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else(reads);
        let writes = !txn.is_read_only();
        let resp =
            match tokio::time::timeout(self.write_timeout, self.kv.clone().txn(etcd_txn)).await {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) if writes && outcome_unknown(&e) => {
                    return Err(StoreError::OutcomeUnknown(format!("etcd: {e}")))
                }
                Ok(Err(e)) => return Err(e.into()),
                // Dropping the request does not take it back from etcd.
                Err(_) if writes => {
                    return Err(StoreError::OutcomeUnknown(format!(
                        "etcd did not answer within {:?}",
                        self.write_timeout
                    )))
                }
                Err(_) => return Err(StoreError::Timeout(self.write_timeout)),
            };
        let revision = header_revision(resp.header())?;
        if resp.succeeded() {
            return Ok(TxnResult {
                succeeded: true,
                revision,
                failed_compares: Vec::new(),
            });
        }
        let responses = resp.op_responses();
        let mut failed = Vec::new();
        for (i, c) in txn.compares.iter().enumerate() {
            let current = match responses.get(i) {
                Some(TxnOpResponse::Get(g)) => g.kvs().first().map(|kv| to_u64(kv.mod_revision())),
                _ => {
                    return Err(StoreError::EtcdResponse(
                        "failed txn without the compared keys' reads".into(),
                    ))
                }
            };
            if !c.holds(current) {
                failed.push(i);
            }
        }
        Ok(TxnResult {
            succeeded: false,
            revision,
            failed_compares: failed,
        })
    }

    async fn watch(&self, prefix: &str, from_revision: u64) -> Result<WatchStream> {
        let current = self.revision().await?;
        let start = if from_revision == 0 {
            current + 1
        } else {
            from_revision
        };
        if start <= current {
            // Reading at `start` fails exactly when a watch from it would.
            let probe = self
                .bounded(
                    self.kv.clone().get(
                        "\0",
                        Some(
                            GetOptions::new()
                                .with_count_only()
                                .with_revision(start as i64),
                        ),
                    ),
                )
                .await?;
            match probe {
                Err(e) if is_compacted(&e) => {
                    return Err(StoreError::Compacted {
                        requested: start,
                        compact_revision: self.compact_revision_for(prefix, start).await?,
                    });
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        let stream = self
            .bounded(open_watch(self.watch.clone(), prefix, start))
            .await??;
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL);
        let task = tokio::spawn(run_watch(
            self.watch.clone(),
            prefix.to_string(),
            start,
            stream,
            tx,
        ));
        Ok(WatchStream::new(rx, task))
    }

    async fn revision(&self) -> Result<u64> {
        let resp = self
            .read(
                self.kv
                    .clone()
                    .get("\0", Some(GetOptions::new().with_count_only())),
            )
            .await?;
        header_revision(resp.header())
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        let current = self.revision().await?;
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        let mut kv = self.kv.clone();
        let compacted = kv.compact(
            revision as i64,
            Some(CompactionOptions::new().with_physical()),
        );
        match self.bounded(compacted).await? {
            Ok(_) => Ok(()),
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
