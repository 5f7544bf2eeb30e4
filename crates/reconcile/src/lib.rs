//! The reconciler: makes a target (weir's dataplane, the kernel, FRR) match
//! a desired state, as Ligato's KVScheduler does. It knows nothing of
//! networking: each kind plugs in through one [`Descriptor`].
//!
//! # Model
//!
//! A value is a key (`/weir/v1/route/r1`) and an opaque `V`. The key picks
//! the descriptor (longest matching [`Descriptor::key_prefix`]). The engine
//! keeps, per key, the desired value, the value it believes is applied, and
//! a [`State`]:
//!
//! - **Invalid** if the descriptor's `validate` rejects it: never applied.
//! - **Pending** while a [`Dependency`] is not configured: a key, or any
//!   key under a prefix. When it becomes configured, the pending values are
//!   applied in the same transaction (cascade), so creates always come after
//!   what they depend on, whatever the order the values arrived in.
//! - **Configured** once create or update succeeded.
//!
//! What a descriptor's `create` returns is the value's metadata
//! ([`Descriptor::Metadata`]: the port it got, the entries it added). The
//! engine keeps it with the applied value, hands it to `update` (which may
//! change it) and `delete`, drops it once deleted, and takes it from
//! `retrieve` on resync; [`Reconciler::metadata`] reads it. Descriptors
//! keep no per-value records of their own.
//! - **Retrying** after a retriable error, with exponential backoff
//!   ([`RetryPolicy`]; [`Reconciler::tick`] runs what is due), then
//!   **Failed** after too many attempts, at once for a non-retriable error,
//!   and for values pending on each other in a cycle.
//!
//! Taking a value out of the target (deleted, changed in a way that needs a
//! recreate, invalid, or its own dependency gone) first takes out its
//! derived values and the applied values that depend on it, recursively,
//! dependents first. Those still desired go back to Pending and return when
//! it does.
//!
//! [`Descriptor::derived`] values are handled like any other value of their
//! own descriptor, owned by their parent: created after it, removed before
//! it, updated as it changes.
//!
//! # Resync
//!
//! [`Reconciler::resync_full`] (start-up) takes the whole desired state,
//! reads back what each descriptor can [`retrieve`](Descriptor::retrieve),
//! and converges: what is there as desired is kept without any call, what
//! differs is updated, what is missing is created, and what is there but
//! not desired is deleted only if the engine created it (its
//! [`owned`](Reconciler::owned) keys). [`Reconciler::resync_downstream`]
//! does the same against the current desired state, to repair drift.
//!
//! # Records
//!
//! Every transaction returns a [`TxnRecord`]: the descriptor calls in order
//! with their results, and the keys whose state changed (also passed to the
//! [`Reconciler::on_change`] hook, to write status back to the store). The
//! last ones are kept in [`Reconciler::history`]; [`Reconciler::graph_dot`]
//! draws the dependency graph.

mod clock;
mod descriptor;
mod engine;
mod history;
mod index;
mod state;

pub use clock::{Clock, ManualClock, SystemClock};
pub use descriptor::{ApplyError, Dependency, Descriptor};
pub use engine::{Reconciler, RetryPolicy};
pub use history::{OpKind, Operation, TxnKind, TxnRecord};
pub use state::{State, Status, StatusChange, Summary};

type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
