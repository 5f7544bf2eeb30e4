mod conflicts;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_prefix, check_ref, NameRef};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::Cidr;
use crate::registry::Spec;

/// Routes traffic between two VPCs, limited to the prefixes each side
/// exposes to the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeeringSpec {
    /// The two VPCs, distinct.
    #[schemars(with = "[NameRef; 2]", extend("uniqueItems" = true))]
    pub vpcs: Vec<String>,
    /// Per VPC (a key from `vpcs`): the prefixes that side offers the other.
    #[schemars(with = "BTreeMap<String, Vec<Cidr>>")]
    pub expose: BTreeMap<String, Vec<Cidr>>,
}

impl PeeringSpec {
    /// The prefixes `vpc` exposes (empty if none).
    pub fn exposed(&self, vpc: &str) -> &[Cidr] {
        self.expose.get(vpc).map(Vec::as_slice).unwrap_or(&[])
    }
}

impl KindSpec for PeeringSpec {
    const KIND: &'static str = "Peering";
}

impl Spec for PeeringSpec {
    const PLURAL: &'static str = "peerings";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["VPCS", "EXPOSED"];

    fn validate(&self, e: &mut Errors) {
        if self.vpcs.len() != 2 {
            e.at(
                "vpcs",
                format!("must name exactly two VPCs, got {}", self.vpcs.len()),
            );
        }
        for (i, v) in self.vpcs.iter().enumerate() {
            check_ref(e, &format!("vpcs[{i}]"), v);
        }
        if self.vpcs.len() == 2 && self.vpcs[0] == self.vpcs[1] {
            e.at(
                "vpcs[1]",
                format!("a VPC cannot peer with itself ({})", self.vpcs[0]),
            );
        }
        if self.expose.values().all(Vec::is_empty) {
            e.at("expose", "at least one side must expose a prefix");
        }
        for (vpc, prefixes) in &self.expose {
            if !self.vpcs.contains(vpc) {
                e.at(
                    format!("expose.{vpc}"),
                    format!("{vpc:?} is not one of the peered VPCs {:?}", self.vpcs),
                );
            }
            for (i, p) in prefixes.iter().enumerate() {
                check_prefix(e, &format!("expose.{vpc}[{i}]"), p);
            }
        }
        if let [a, b] = self.vpcs.as_slice() {
            for (i, p) in self.exposed(b).iter().enumerate() {
                if let Some(q) = self.exposed(a).iter().find(|q| q.overlaps(p)) {
                    e.at(
                        format!("expose.{b}[{i}]"),
                        format!("{p} overlaps {q} exposed by {a}: traffic between them would be ambiguous"),
                    );
                }
            }
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        self.vpcs.iter().map(|v| ObjectRef::new("Vpc", v)).collect()
    }

    fn row(&self) -> Vec<String> {
        let exposed = self
            .vpcs
            .iter()
            .map(|v| format!("{v}:{}", self.exposed(v).len()))
            .collect::<Vec<_>>()
            .join(",");
        vec![self.vpcs.join("<->"), exposed]
    }
}
