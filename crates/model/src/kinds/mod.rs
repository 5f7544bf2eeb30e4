//! The built-in `weir/v1` kinds: their spec types and single-object
//! validation.

use std::borrow::Cow;
use std::net::IpAddr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use crate::error::Errors;
use crate::meta::{check_name, NAME_PATTERN};
use crate::net::{Cidr, Family};

mod bgp;
mod interface;
mod nat;
mod peering;
mod ratelimit;
mod route;
mod subnet;
mod vpc;
mod vtep;

pub use bgp::{AddressFamily, BgpNeighborSpec, BgpRouterSpec, Redistribute};
pub use interface::{Driver, InterfaceSpec};
pub use nat::{
    Filtering, NatLimits, NatMatch, NatRuleSpec, NatTimeouts, NatTranslate, NatType, Pooling,
    Protocol,
};
pub use peering::PeeringSpec;
pub use ratelimit::{Direction, RateLimitSpec, RateLimitTarget, TargetKind};
pub use route::{NextHop, RejectKind, RouteSpec, RouteTarget};
pub use subnet::SubnetSpec;
pub use vpc::VpcSpec;
pub use vtep::VtepSpec;

/// The VPC objects belong to when they name none.
pub const DEFAULT_VPC: &str = "default";
/// Largest VXLAN network identifier weir accepts (2^24 - 2; 2^24 - 1 is reserved).
pub const MAX_VNI: u32 = 16_777_214;

pub(crate) fn default_vpc() -> String {
    DEFAULT_VPC.to_string()
}

pub(crate) fn yes() -> bool {
    true
}

/// Schema of a reference to another object by name.
pub(crate) struct NameRef;
impl JsonSchema for NameRef {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "name of another object (DNS-1123 label)",
            "minLength": 1,
            "maxLength": 63,
            "pattern": NAME_PATTERN
        })
    }
}

/// Records an error if `name` is not a valid object name.
pub(crate) fn check_ref(e: &mut Errors, path: &str, name: &str) {
    if let Err(r) = check_name(name) {
        e.at(path, format!("not a valid reference: {r}"));
    }
}

/// Records an error if `c` has host bits set (a prefix, not an address).
pub(crate) fn check_prefix(e: &mut Errors, path: &str, c: &Cidr) {
    if c.has_host_bits() {
        e.at(
            path,
            format!(
                "{c} has host bits set: a prefix must be a network address, did you mean {}?",
                c.network()
            ),
        );
    }
}

/// Records an error unless `addr` has the family `want`; `because` names the
/// field that fixed the family.
pub(crate) fn check_family(e: &mut Errors, path: &str, addr: IpAddr, want: Family, because: &str) {
    if Family::of(addr) != want {
        e.at(
            path,
            format!(
                "expected an {} address because {because} is {}, got {addr}",
                want.name(),
                want.name()
            ),
        );
    }
}

pub(crate) fn check_family_cidr(e: &mut Errors, path: &str, c: &Cidr, want: Family, because: &str) {
    if c.family() != want {
        e.at(
            path,
            format!(
                "expected an {} prefix because {because}, got {c}",
                want.name()
            ),
        );
    }
}

/// Records an error if `addr` cannot be a unicast host address.
pub(crate) fn check_unicast(e: &mut Errors, path: &str, addr: IpAddr) {
    if addr.is_unspecified() {
        e.at(path, format!("{addr} is the unspecified address"));
    } else if addr.is_multicast() {
        e.at(path, format!("{addr} is a multicast address"));
    } else if addr == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        e.at(path, format!("{addr} is the broadcast address"));
    }
}

pub(crate) fn is_ipv6_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

pub(crate) fn join<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

pub(crate) fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".into())
}
