//! The record of what each transaction did.

use std::time::SystemTime;

use crate::{ApplyError, State, StatusChange};

/// What started a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnKind {
    /// [`crate::Reconciler::set_desired`].
    SetDesired,
    /// [`crate::Reconciler::resync_full`].
    ResyncFull,
    /// [`crate::Reconciler::resync_downstream`].
    ResyncDownstream,
    /// [`crate::Reconciler::tick`]: retries that fell due.
    Retry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Update,
    Delete,
}

/// One call into a descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub key: String,
    pub op: OpKind,
    pub result: Result<(), ApplyError>,
    /// Not asked for by the transaction itself: a dependent applied because
    /// its dependency appeared, taken out because its dependency went, or a
    /// derived value following its parent.
    pub cascade: bool,
}

/// One transaction: the operations in the order they ran, and the keys
/// whose state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    /// Starts at 1 and grows by one per transaction.
    pub seq: u64,
    pub at: SystemTime,
    pub kind: TxnKind,
    pub operations: Vec<Operation>,
    /// Every key whose state differs from before the transaction, sorted by
    /// key.
    pub changes: Vec<StatusChange>,
    /// Things that are not a key's state: a retrieve that failed, a derived
    /// key that collides with another value, a put on a derived key.
    pub notes: Vec<String>,
}

impl TxnRecord {
    /// Keys that went pending in this transaction, with what they wait for.
    pub fn pending(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.changes.iter().filter_map(|c| match &c.status.state {
            State::Pending { missing } => Some((c.key.as_str(), missing.as_slice())),
            _ => None,
        })
    }

    /// Keys found invalid in this transaction, with the reason.
    pub fn invalid(&self) -> impl Iterator<Item = (&str, &str)> {
        self.changes.iter().filter_map(|c| match &c.status.state {
            State::Invalid { reason } => Some((c.key.as_str(), reason.as_str())),
            _ => None,
        })
    }

    /// The operations as `create /a ok`, `delete /b error: ...` lines.
    pub fn operation_lines(&self) -> Vec<String> {
        self.operations
            .iter()
            .map(|o| {
                let op = match o.op {
                    OpKind::Create => "create",
                    OpKind::Update => "update",
                    OpKind::Delete => "delete",
                };
                match &o.result {
                    Ok(()) => format!("{op} {} ok", o.key),
                    Err(e) => format!("{op} {} error: {}", o.key, e.message),
                }
            })
            .collect()
    }
}
