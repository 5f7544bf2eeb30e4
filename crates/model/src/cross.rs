//! Checks over a set of objects: the state the store would hold after a
//! transaction. Each kind declares its own checks next to its spec (its
//! `conflicts.rs`) with the kinds they read ([`crate::registry::Spec::READS`]);
//! this module holds what they share. Each error names one object in
//! `kind`/`name` and the other in `related`.
//!
//! Missing references are not errors here: the reconciler keeps such
//! objects pending until what they need appears.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use crate::error::ValidationError;
use crate::meta::{KindSpec, Object, ObjectMeta, ObjectRef};

/// An object of a known kind with its decoded spec.
pub struct Of<'a, S> {
    pub meta: &'a ObjectMeta,
    pub spec: S,
}

/// The objects a kind's checks see. A check reads its own kind and the
/// kinds it declares; reading another is a bug in the kind (the API would
/// not give it those objects), caught by the debug assertion here and by
/// the model's tests, which run every check over a set of every kind.
pub struct ObjectSet<'a> {
    objects: &'a [Object],
    own: &'a str,
    reads: &'a [&'static str],
}

impl<'a> ObjectSet<'a> {
    pub fn new(objects: &'a [Object], own: &'a str, reads: &'a [&'static str]) -> Self {
        ObjectSet {
            objects,
            own,
            reads,
        }
    }

    /// The objects of kind `S` whose spec decodes.
    pub fn of<S: KindSpec + DeserializeOwned>(&self) -> Vec<Of<'a, S>> {
        debug_assert!(
            S::KIND == self.own || self.reads.contains(&S::KIND),
            "the conflict checks of {} read {} without declaring it in READS",
            self.own,
            S::KIND
        );
        self.objects
            .iter()
            .filter(|o| o.kind == S::KIND)
            .filter_map(|o| {
                o.typed::<S>().ok().map(|spec| Of {
                    meta: &o.metadata,
                    spec,
                })
            })
            .collect()
    }
}

/// An error on `kind`/`name` at `field` that names the other object.
pub fn conflict(
    kind: &str,
    name: &str,
    field: &str,
    reason: String,
    other_kind: &str,
    other: &str,
) -> ValidationError {
    ValidationError::new(kind, name, field, reason).with_related(ObjectRef::new(other_kind, other))
}

/// Two objects of one kind with the same name: the one check every kind
/// shares.
pub fn duplicate_names(objects: &[Object]) -> Vec<ValidationError> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut errs = Vec::new();
    for o in objects {
        if !seen.insert((&o.kind, &o.metadata.name)) {
            errs.push(conflict(
                &o.kind,
                &o.metadata.name,
                "metadata.name",
                format!("{} {:?} appears more than once", o.kind, o.metadata.name),
                &o.kind,
                &o.metadata.name,
            ));
        }
    }
    errs
}

/// Every cross-object problem in `objects`, by the built-in kinds' checks
/// (see [`crate::Registry::conflicts`]).
pub fn validate_set(objects: &[Object]) -> Vec<ValidationError> {
    static BUILTIN: std::sync::OnceLock<crate::Registry> = std::sync::OnceLock::new();
    BUILTIN
        .get_or_init(crate::Registry::builtin)
        .conflicts(objects)
}
