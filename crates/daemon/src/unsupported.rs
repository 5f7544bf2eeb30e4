//! Kinds the model knows but this gateway's agent does not apply. Their
//! objects still go through the reconciler, to a descriptor that refuses
//! them with the reason, so that their status says they are not applied
//! (state Failed) rather than nothing at all.
//!
//! Failed rather than another state: the object is valid (not Invalid),
//! nothing it could wait for would make it work here (not Pending), and
//! the reconciler has seen it (not Unknown). A failed value is tried again
//! when it changes or on resync, so a gateway restarted with support for
//! the kind applies it.
//!
//! A kind the agent applies in part refuses the rest the same way, from
//! its own descriptor: NatRule's nat64 and nat66 types fail with "nat64
//! rules are not supported on this gateway yet" (see `weir_agent::nat`).

use weir_agent::Desired;
use weir_model::key_prefix;
use weir_reconcile::{ApplyError, Descriptor};

pub(crate) struct Unsupported {
    kind: String,
    prefix: String,
    reason: String,
}

impl Unsupported {
    pub(crate) fn new(kind: &str, node: &str) -> Self {
        Unsupported {
            kind: kind.to_string(),
            prefix: key_prefix(kind),
            reason: format!("no {kind} support on this gateway (node {node})"),
        }
    }
}

impl Descriptor<Desired> for Unsupported {
    type Metadata = ();

    fn name(&self) -> &str {
        &self.kind
    }

    fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn create(&mut self, _key: &str, _value: &Desired) -> Result<(), ApplyError> {
        Err(ApplyError::fatal(self.reason.clone()))
    }

    fn delete(&mut self, _key: &str, _value: &Desired, _: &()) -> Result<(), ApplyError> {
        // Never created, so never in the target.
        Ok(())
    }
}
