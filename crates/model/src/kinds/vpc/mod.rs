mod conflicts;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{opt, MAX_VNI};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::KindSpec;
use crate::registry::Spec;

/// Kernel routing tables a VRF cannot use (253 default, 254 main, 255 local).
pub const RESERVED_TABLES: [u32; 3] = [253, 254, 255];
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 256;

/// A virtual private cloud: one routing domain (VRF) with its own FIB.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VpcSpec {
    /// VXLAN network identifier of the VPC's EVPN overlay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_VNI))]
    pub vni: Option<u32>,
    /// Kernel routing table id of the VRF (not 0, 253, 254 or 255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("not" = {"enum": RESERVED_TABLES}))]
    pub vrf: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_DESCRIPTION))]
    pub description: Option<String>,
}

impl KindSpec for VpcSpec {
    const KIND: &'static str = "Vpc";
}

impl Spec for VpcSpec {
    const PLURAL: &'static str = "vpcs";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["VNI", "VRF", "DESCRIPTION"];

    fn validate(&self, e: &mut Errors) {
        if let Some(v) = self.vni {
            if !(1..=MAX_VNI).contains(&v) {
                e.at("vni", format!("must be between 1 and {MAX_VNI}, got {v}"));
            }
        }
        if let Some(t) = self.vrf {
            if t == 0 || RESERVED_TABLES.contains(&t) {
                e.at(
                    "vrf",
                    format!("table {t} is reserved by Linux (0 unspec, 253 default, 254 main, 255 local)"),
                );
            }
        }
        if let Some(d) = &self.description {
            if d.chars().count() > MAX_DESCRIPTION {
                e.at(
                    "description",
                    format!("must be at most {MAX_DESCRIPTION} characters"),
                );
            }
        }
    }

    fn row(&self) -> Vec<String> {
        vec![
            opt(&self.vni),
            opt(&self.vrf),
            self.description.clone().unwrap_or_default(),
        ]
    }
}
