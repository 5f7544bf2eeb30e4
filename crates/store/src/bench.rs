//! A write benchmark over any [`Store`], for `weir bench api-*`.

use std::time::{Duration, Instant};

use crate::{Compare, Result, Store, StoreError, Txn};

/// Timings from [`bench_writes`].
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBench {
    /// Single-key transactions applied one after another.
    pub singles: usize,
    /// Time for all of them.
    pub singles_elapsed: Duration,
    /// Mean time per single-key transaction.
    pub single_mean: Duration,
    /// Median and 99th percentile of single-key transactions.
    pub single_p50: Duration,
    pub single_p99: Duration,
    /// Keys written by the one bulk transaction.
    pub bulk_keys: usize,
    /// Time for the bulk transaction.
    pub bulk_elapsed: Duration,
    /// Time to list the bulk transaction's keys back.
    pub bulk_list_elapsed: Duration,
    /// Size of each value written.
    pub value_bytes: usize,
}

impl WriteBench {
    /// Single-key transactions per second.
    pub fn singles_per_sec(&self) -> f64 {
        self.singles as f64 / self.singles_elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Keys per second in the bulk transaction.
    pub fn bulk_keys_per_sec(&self) -> f64 {
        self.bulk_keys as f64 / self.bulk_elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

fn value(i: usize, size: usize) -> Vec<u8> {
    let mut v = format!("{{\"name\":\"bench-{i}\",\"spec\":\"").into_bytes();
    while v.len() + 2 < size {
        v.push(b'x');
    }
    v.extend_from_slice(b"\"}");
    v
}

/// Writes `singles` single-key create transactions (each with a
/// "must not exist" compare) one after another, then one transaction
/// putting `bulk_keys` keys, all under `prefix` (which should be empty:
/// the keys are created, never overwritten), with values of about
/// `value_bytes` bytes, and times them.
pub async fn bench_writes(
    store: &dyn Store,
    prefix: &str,
    singles: usize,
    bulk_keys: usize,
    value_bytes: usize,
) -> Result<WriteBench> {
    let mut each = Vec::with_capacity(singles);
    let start = Instant::now();
    for i in 0..singles {
        let key = format!("{prefix}single/{i:08}");
        let t = Instant::now();
        let r = store
            .txn(
                Txn::new()
                    .when(Compare::ModRevision(key.clone(), 0))
                    .put(key, value(i, value_bytes)),
            )
            .await?;
        each.push(t.elapsed());
        if !r.succeeded {
            return Err(StoreError::InvalidTxn(format!(
                "benchmark key {prefix}single/{i:08} already exists; use an empty prefix"
            )));
        }
    }
    let singles_elapsed = start.elapsed();
    each.sort();
    let pct = |p: f64| {
        each.get(((each.len() as f64 * p) as usize).min(each.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };

    let mut bulk = Txn::new();
    for i in 0..bulk_keys {
        bulk = bulk.put(format!("{prefix}bulk/{i:08}"), value(i, value_bytes));
    }
    let t = Instant::now();
    store.txn(bulk).await?;
    let bulk_elapsed = t.elapsed();

    let t = Instant::now();
    let (listed, _) = store.list(&format!("{prefix}bulk/")).await?;
    let bulk_list_elapsed = t.elapsed();
    if listed.len() != bulk_keys {
        return Err(StoreError::InvalidTxn(format!(
            "listed {} bulk keys, wrote {bulk_keys}",
            listed.len()
        )));
    }

    Ok(WriteBench {
        singles,
        singles_elapsed,
        single_mean: singles_elapsed / singles.max(1) as u32,
        single_p50: pct(0.5),
        single_p99: pct(0.99),
        bulk_keys,
        bulk_elapsed,
        bulk_list_elapsed,
        value_bytes,
    })
}
