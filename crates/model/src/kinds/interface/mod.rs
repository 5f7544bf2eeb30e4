mod conflicts;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_ref, default_vpc, join, yes, NameRef};
use crate::cross::ObjectSet;
use crate::error::Errors;
use crate::error::ValidationError;
use crate::meta::{KindSpec, ObjectRef};
use crate::net::{parse_mac, Cidr, MacSchema};
use crate::registry::Spec;

/// How weir reaches the host interface's packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// AF_XDP sockets (fastest, needs kernel and NIC support).
    Afxdp,
    /// AF_PACKET with TPACKET_V3 rings (portable).
    Afpacket,
    /// A TAP device.
    Tap,
    /// In-memory port (tests and benchmarks).
    Memory,
    /// Pick the best one that works.
    #[default]
    Auto,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::Afxdp => "afxdp",
            Driver::Afpacket => "afpacket",
            Driver::Tap => "tap",
            Driver::Memory => "memory",
            Driver::Auto => "auto",
        })
    }
}

pub const MIN_MTU: u32 = 68;
/// Bytes a dataplane packet buffer holds (`weir_dataplane::buffer::DATA_ROOM`).
pub const PACKET_BUFFER: u32 = 2048;
/// The largest MTU whose frames fit a packet buffer: the IP packet plus 14
/// bytes of Ethernet header and 4 of an 802.1Q tag. Longer frames would be
/// dropped on receive (and counted), so such an MTU is refused up front.
pub const MAX_MTU: u32 = PACKET_BUFFER - 14 - 4;

/// Most receive queues an interface may ask for.
pub const MAX_QUEUES: u32 = 256;

/// A Linux interface name as weir accepts it (see [`check_host_interface`]).
pub const HOST_INTERFACE_PATTERN: &str = concat!(
    r"^([\x21-\x2d\x30-\x39\x3b-\x7e][\x21-\x2e\x30-\x39\x3b-\x7e]{0,14}",
    r"|\.[\x21-\x2d\x30-\x39\x3b-\x7e][\x21-\x2e\x30-\x39\x3b-\x7e]{0,13}",
    r"|\.\.[\x21-\x2e\x30-\x39\x3b-\x7e]{1,13})$"
);

/// The kernel takes any bytes but `/`, `:`, whitespace and NUL up to
/// IFNAMSIZ - 1; weir keeps to printable ASCII so that lengths in bytes and
/// characters agree.
fn check_host_interface(h: &str) -> Result<(), String> {
    if h.is_empty() || h.len() > 15 {
        return Err(format!(
            "must be 1 to 15 characters (Linux IFNAMSIZ), got {}",
            h.len()
        ));
    }
    if h == "."
        || h == ".."
        || !h
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
    {
        return Err(format!(
            "{h:?} is not a valid Linux interface name: printable ASCII but '/' and ':', not . or .."
        ));
    }
    Ok(())
}

fn default_mtu() -> u32 {
    1500
}

/// A gateway port attached to a host network interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InterfaceSpec {
    /// Linux interface name the port attaches to: 1 to 15 printable ASCII
    /// characters but `/` and `:`, not `.` or `..`.
    #[schemars(length(min = 1, max = 15), pattern(HOST_INTERFACE_PATTERN))]
    pub host_interface: String,
    #[serde(default)]
    pub driver: Driver,
    #[serde(default = "default_mtu")]
    #[schemars(range(min = MIN_MTU, max = MAX_MTU))]
    pub mtu: u32,
    /// The gateway's own addresses on this port, with prefix length
    /// (e.g. 10.0.0.1/24, 2001:db8::1/64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Cidr>,
    /// The VPC (VRF) the port belongs to.
    #[serde(default = "default_vpc")]
    #[schemars(with = "NameRef")]
    pub vpc: String,
    /// Ethernet address; the host interface's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<MacSchema>")]
    pub mac: Option<String>,
    #[serde(default = "yes")]
    pub admin_up: bool,
    /// Receive queues to poll; one per worker when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_QUEUES))]
    pub queues: Option<u32>,
}

impl InterfaceSpec {
    /// The largest `mtu` accepted (see `MAX_MTU`).
    pub const MAX_MTU: u32 = MAX_MTU;
    /// Bytes a dataplane packet buffer holds, which bounds `mtu`.
    pub const PACKET_BUFFER: u32 = PACKET_BUFFER;
}

impl KindSpec for InterfaceSpec {
    const KIND: &'static str = "Interface";
}

impl Spec for InterfaceSpec {
    const PLURAL: &'static str = "interfaces";
    const READS: &'static [&'static str] = conflicts::READS;

    fn conflicts(set: &ObjectSet<'_>, errors: &mut Vec<ValidationError>) {
        conflicts::check(set, errors);
    }
    const COLUMNS: &'static [&'static str] = &["HOST", "DRIVER", "MTU", "VPC", "ADDRESSES"];

    fn validate(&self, e: &mut Errors) {
        if let Err(r) = check_host_interface(&self.host_interface) {
            e.at("hostInterface", r);
        }
        if self.mtu < MIN_MTU {
            e.at(
                "mtu",
                format!("must be between {MIN_MTU} and {MAX_MTU}, got {}", self.mtu),
            );
        } else if self.mtu > MAX_MTU {
            e.at(
                "mtu",
                format!(
                    "at most {MAX_MTU}, got {}: packet buffers hold {PACKET_BUFFER} bytes, \
                     Ethernet header and VLAN tag included",
                    self.mtu
                ),
            );
        }
        for (i, a) in self.addresses.iter().enumerate() {
            let path = format!("addresses[{i}]");
            let net = a.network();
            let single = matches!((a.is_ipv4(), a.prefix_len()), (true, 31..) | (false, 127..));
            if !single && !a.has_host_bits() {
                e.at(
                    &path,
                    format!(
                        "{a} is a network address: an interface address needs a host part, e.g. {}/{}",
                        first_host(net), a.prefix_len()
                    ),
                );
            } else if a.is_ipv4() && !single && a.addr() == net.broadcast() {
                e.at(&path, format!("{a} is the broadcast address of {net}"));
            } else if a.addr().is_multicast() || a.addr().is_unspecified() {
                e.at(
                    &path,
                    format!("{} cannot be an interface address", a.addr()),
                );
            }
            if self.addresses[..i].iter().any(|b| b.addr() == a.addr()) {
                e.at(&path, format!("address {} is listed twice", a.addr()));
            }
        }
        check_ref(e, "vpc", &self.vpc);
        if let Some(m) = &self.mac {
            match parse_mac(m) {
                Err(r) => e.at("mac", r),
                Ok(b) if b[0] & 1 == 1 => e.at("mac", format!("{m} is a multicast MAC address")),
                Ok(b) if b == [0; 6] => {
                    e.at("mac", "00:00:00:00:00:00 is not a usable MAC address")
                }
                Ok(_) => {}
            }
        }
        if let Some(q) = self.queues {
            if !(1..=MAX_QUEUES).contains(&q) {
                e.at(
                    "queues",
                    format!("must be between 1 and {MAX_QUEUES}, got {q}"),
                );
            }
        }
    }

    fn references(&self) -> Vec<ObjectRef> {
        vec![ObjectRef::new("Vpc", &self.vpc)]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.host_interface.clone(),
            self.driver.to_string(),
            self.mtu.to_string(),
            self.vpc.clone(),
            if self.addresses.is_empty() {
                "-".into()
            } else {
                join(&self.addresses, ",")
            },
        ]
    }
}

fn first_host(net: ipnet::IpNet) -> std::net::IpAddr {
    super::subnet::nth_host(net, 1)
}
