//! Where each value stands, as the caller reports it back to the store.

use std::time::{Instant, SystemTime};

/// The state of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Applied to the target as desired.
    Configured,
    /// Waiting for these dependencies (keys, or `prefix*` for
    /// [`crate::Dependency::AnyOf`]) to be configured.
    Pending { missing: Vec<String> },
    /// The last operation failed with a retriable error; the next attempt
    /// is at `next_at` (see [`crate::Reconciler::tick`]).
    Retrying {
        error: String,
        attempts: u32,
        next_at: Instant,
    },
    /// Given up: a non-retriable error, too many attempts, or a dependency
    /// cycle. Tried again when the value changes or on resync.
    Failed { error: String, attempts: u32 },
    /// Rejected by the descriptor's `validate`; never applied.
    Invalid { reason: String },
    /// No longer desired and out of the target (only in changes and
    /// history: removed keys have no status).
    Removed,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Configured => "configured",
            State::Pending { .. } => "pending",
            State::Retrying { .. } => "retrying",
            State::Failed { .. } => "failed",
            State::Invalid { .. } => "invalid",
            State::Removed => "removed",
        }
    }

    pub fn is_configured(&self) -> bool {
        matches!(self, State::Configured)
    }
}

/// A key's state with its bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// Failed attempts since the value last changed or was applied.
    pub attempts: u32,
    pub last_transition: SystemTime,
    /// The value this one is derived from, if any.
    pub derived_from: Option<String>,
}

/// A key whose state changed in a transaction, with its new status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub key: String,
    pub status: Status,
}

/// How many keys are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub configured: usize,
    pub pending: usize,
    pub retrying: usize,
    pub failed: usize,
    pub invalid: usize,
}
