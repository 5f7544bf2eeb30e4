mod conflicts;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_ref, opt, NameRef};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::{ByteSize, Rate};
use crate::registry::Spec;

/// Kinds a rate limit can apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TargetKind {
    Interface,
    Vpc,
    Subnet,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Interface => "Interface",
            TargetKind::Vpc => "Vpc",
            TargetKind::Subnet => "Subnet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitTarget {
    pub kind: TargetKind,
    #[schemars(with = "NameRef")]
    pub name: String,
}

/// Which traffic is limited, seen from the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    #[default]
    Both,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        }
    }
    /// Whether the two directions limit some of the same traffic.
    pub fn overlaps(self, other: Direction) -> bool {
        self == other || self == Direction::Both || other == Direction::Both
    }
}

/// Smallest burst: one full-size frame.
pub const MIN_BURST: u64 = 1500;

/// A token-bucket policer on an Interface, Vpc or Subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    pub target: RateLimitTarget,
    #[serde(default)]
    pub direction: Direction,
    /// Bits per second: an integer or "10Mbit", "1Gbit".
    pub rate: Rate,
    /// Bucket depth in bytes: an integer or "64KiB".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<ByteSize>,
    /// Packets per second limit, in addition to `rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub pps: Option<u64>,
}

impl KindSpec for RateLimitSpec {
    const KIND: &'static str = "RateLimit";
}

impl Spec for RateLimitSpec {
    const PLURAL: &'static str = "ratelimits";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["TARGET", "DIRECTION", "RATE", "BURST", "PPS"];

    fn validate(&self, e: &mut Errors) {
        check_ref(e, "target.name", &self.target.name);
        if self.rate.0 == 0 {
            e.at(
                "rate",
                "must be greater than 0 (use a blackhole route to drop everything)",
            );
        }
        if let Some(b) = self.burst {
            if b.0 < MIN_BURST {
                e.at(
                    "burst",
                    format!("{b} is smaller than one full-size frame ({MIN_BURST} bytes): no packet would conform"),
                );
            }
        }
        if self.pps == Some(0) {
            e.at("pps", "must be greater than 0");
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        vec![ObjectRef::new(self.target.kind.as_str(), &self.target.name)]
    }

    fn row(&self) -> Vec<String> {
        vec![
            format!("{}/{}", self.target.kind.as_str(), self.target.name),
            self.direction.as_str().into(),
            self.rate.to_string(),
            opt(&self.burst),
            opt(&self.pps),
        ]
    }
}
