mod conflicts;

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_ref, check_unicast, NameRef, MAX_VNI};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::IpSchema;
use crate::registry::Spec;

fn default_port() -> u16 {
    4789
}

/// A VXLAN tunnel endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VtepSpec {
    /// Local tunnel source address.
    #[schemars(with = "IpSchema")]
    pub address: IpAddr,
    /// Underlay Interface the tunnels leave through.
    #[schemars(with = "NameRef")]
    pub interface: String,
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub udp_port: u16,
    /// VNIs carried; every VPC with a VNI when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(range(min = 1, max = MAX_VNI)), extend("uniqueItems" = true))]
    pub vnis: Option<Vec<u32>>,
}

impl KindSpec for VtepSpec {
    const KIND: &'static str = "Vtep";
}

impl Spec for VtepSpec {
    const PLURAL: &'static str = "vteps";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["ADDRESS", "INTERFACE", "PORT", "VNIS"];

    fn validate(&self, e: &mut Errors) {
        check_unicast(e, "address", self.address);
        check_ref(e, "interface", &self.interface);
        if self.udp_port == 0 {
            e.at("udpPort", "must be between 1 and 65535, got 0");
        }
        for (i, v) in self.vnis.iter().flatten().enumerate() {
            if !(1..=MAX_VNI).contains(v) {
                e.at(
                    format!("vnis[{i}]"),
                    format!("must be between 1 and {MAX_VNI}, got {v}"),
                );
            } else if self.vnis.as_ref().is_some_and(|l| l[..i].contains(v)) {
                e.at(format!("vnis[{i}]"), format!("VNI {v} is listed twice"));
            }
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        vec![ObjectRef::new("Interface", &self.interface)]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.address.to_string(),
            self.interface.clone(),
            self.udp_port.to_string(),
            match &self.vnis {
                Some(v) => super::join(v, ","),
                None => "all".into(),
            },
        ]
    }
}
