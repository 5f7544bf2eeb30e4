mod conflicts;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_family, check_prefix, check_ref, opt, NameRef};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::{Cidr, IpSchema};
use crate::registry::Spec;

/// The `n`th address of `net` (0 is the network address).
pub(crate) fn nth_host(net: IpNet, n: u32) -> IpAddr {
    match net.network() {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(n as u128))),
    }
}

/// An on-link subnet of a VPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubnetSpec {
    #[schemars(with = "NameRef")]
    pub vpc: String,
    /// The subnet's network (no host bits).
    pub cidr: Cidr,
    /// The gateway address inside `cidr`; the first host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<IpSchema>")]
    pub gateway: Option<IpAddr>,
    /// The Interface the subnet is reached through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NameRef>")]
    pub interface: Option<String>,
    /// 802.1Q VLAN id on that interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4094))]
    pub vlan: Option<u16>,
}

impl SubnetSpec {
    /// The gateway address: the configured one or the first host.
    pub fn gateway(&self) -> IpAddr {
        self.gateway.unwrap_or_else(|| {
            let net = self.cidr.network();
            match (net, net.prefix_len()) {
                (IpNet::V4(_), 31..) | (IpNet::V6(_), 127..) => net.network(),
                _ => nth_host(net, 1),
            }
        })
    }
}

impl KindSpec for SubnetSpec {
    const KIND: &'static str = "Subnet";
}

impl Spec for SubnetSpec {
    const PLURAL: &'static str = "subnets";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["VPC", "CIDR", "GATEWAY", "INTERFACE", "VLAN"];

    fn validate(&self, e: &mut Errors) {
        check_ref(e, "vpc", &self.vpc);
        check_prefix(e, "cidr", &self.cidr);
        if let Some(g) = self.gateway {
            let fam = self.cidr.family();
            if crate::net::Family::of(g) != fam {
                check_family(e, "gateway", g, fam, "spec.cidr");
            } else if !self.cidr.network().contains(&g) {
                e.at(
                    "gateway",
                    format!("{g} is not inside spec.cidr {}", self.cidr.network()),
                );
            } else {
                let net = self.cidr.network();
                let wide = matches!(
                    (net, net.prefix_len()),
                    (IpNet::V4(_), ..=30) | (IpNet::V6(_), ..=126)
                );
                if wide && g == net.network() {
                    e.at("gateway", format!("{g} is the network address of {net}"));
                } else if wide && g.is_ipv4() && g == net.broadcast() {
                    e.at("gateway", format!("{g} is the broadcast address of {net}"));
                }
            }
        }
        if let Some(i) = &self.interface {
            check_ref(e, "interface", i);
        }
        if let Some(v) = self.vlan {
            if !(1..=4094).contains(&v) {
                e.at("vlan", format!("must be between 1 and 4094, got {v}"));
            }
        }
    }

    fn normalize(&mut self) {
        self.gateway = Some(self.gateway());
    }

    fn references(&self) -> Vec<ObjectRef> {
        let mut r = vec![ObjectRef::new("Vpc", &self.vpc)];
        if let Some(i) = &self.interface {
            r.push(ObjectRef::new("Interface", i));
        }
        r
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.vpc.clone(),
            self.cidr.to_string(),
            self.gateway().to_string(),
            opt(&self.interface),
            opt(&self.vlan),
        ]
    }
}
