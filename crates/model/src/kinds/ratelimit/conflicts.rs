//! Two RateLimits on the same target and direction.

use super::RateLimitSpec;
use crate::cross::{conflict, ObjectSet};
use crate::error::ValidationError;

pub(super) const READS: &[&str] = &[];

pub(super) fn check(set: &ObjectSet<'_>, errs: &mut Vec<ValidationError>) {
    let limits = set.of::<RateLimitSpec>();
    for (i, a) in limits.iter().enumerate() {
        for b in &limits[..i] {
            if a.spec.target == b.spec.target && a.spec.direction.overlaps(b.spec.direction) {
                errs.push(conflict(
                    "RateLimit",
                    &a.meta.name,
                    "spec.target",
                    format!(
                        "RateLimit {} already limits {}/{} in direction {}",
                        b.meta.name,
                        a.spec.target.kind.as_str(),
                        a.spec.target.name,
                        b.spec.direction.as_str()
                    ),
                    "RateLimit",
                    &b.meta.name,
                ));
            }
        }
    }
}
