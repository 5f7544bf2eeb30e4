//! Value types for addresses, prefixes and quantities, with clear parse
//! errors and JSON Schemas.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 or IPv6 network in CIDR notation, as written: `10.0.0.0/24`, or
/// `10.0.0.1/24` for an interface address (the host part is kept). Whether
/// host bits are allowed depends on the field and is checked by validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    pub fn net(&self) -> IpNet {
        self.0
    }
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }
    pub fn is_ipv4(&self) -> bool {
        matches!(self.0, IpNet::V4(_))
    }
    /// The network with host bits cleared.
    pub fn network(&self) -> IpNet {
        self.0.trunc()
    }
    /// Whether any bit past the prefix length is set.
    pub fn has_host_bits(&self) -> bool {
        self.0.trunc() != self.0
    }
    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let (a, b) = (self.network(), other.network());
        a.contains(&b) || b.contains(&a)
    }
    /// Whether `self` (as a network) lies inside `outer`.
    pub fn within(&self, outer: &Cidr) -> bool {
        outer.network().contains(&self.network())
    }
    pub fn family(&self) -> Family {
        Family::of(self.addr())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Cidr {
    type Err = String;
    /// Exactly `ADDRESS/LENGTH` as [`cidr_pattern`] describes it: no
    /// spaces, the length in plain decimal (no sign, no leading zero).
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((addr, len)) = s.split_once('/') else {
            return Err(format!(
                "{s:?} has no prefix length: expected CIDR notation like 10.0.0.0/24 or 2001:db8::/32"
            ));
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} in {s:?} is not an IPv4 or IPv6 address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let plain = !len.is_empty()
            && len.bytes().all(|b| b.is_ascii_digit())
            && (len == "0" || !len.starts_with('0'));
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| plain && *l <= max)
            .ok_or_else(|| format!("prefix length in {s:?} must be a number from 0 to {max}"))?;
        Ok(Cidr(IpNet::new(ip, len).expect("length checked")))
    }
}

impl From<IpNet> for Cidr {
    fn from(n: IpNet) -> Self {
        Cidr(n)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a CIDR string like 10.0.0.0/24 or 2001:db8::/32")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cidr, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "IPv4 or IPv6 network in CIDR notation, e.g. 10.0.0.0/24 or 2001:db8::/64",
            "pattern": cidr_pattern(),
            "maxLength": 49
        })
    }
}

/// A dotted-quad IPv4 address as `std::net::Ipv4Addr` parses it: decimal
/// octets without leading zeros (regular expression, no anchors).
const IPV4: &str = concat!(
    "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    "(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
);

/// An IPv6 address in any form `std::net::Ipv6Addr` parses (regular
/// expression, no anchors): eight groups of 1 to 4 hex digits, or fewer
/// around one `::` standing for at least one group, the last 32 bits
/// optionally written as an IPv4 address.
fn ipv6() -> String {
    const H: &str = "[0-9A-Fa-f]{1,4}";
    let groups = |n: usize| match n {
        0 => String::new(),
        n => format!("{H}(:{H}){{{}}}", n - 1),
    };
    let mut alts = vec![format!("({H}:){{7}}{H}"), format!("({H}:){{6}}{IPV4}")];
    for head in 0..=7 {
        let room = 7 - head;
        let mut tail = Vec::new();
        if room >= 1 {
            tail.push(format!("{H}(:{H}){{0,{}}}", room - 1));
        }
        if room >= 2 {
            tail.push(format!("({H}:){{0,{}}}{IPV4}", room - 2));
        }
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!("({})?", tail.join("|"))
        };
        alts.push(format!("{}::{tail}", groups(head)));
    }
    format!("({})", alts.join("|"))
}

/// JSON Schema pattern of [`Cidr`]: an IPv4 address with a length of 0 to
/// 32, or an IPv6 address with 0 to 128, decimal without leading zeros.
pub fn cidr_pattern() -> String {
    format!(
        "^({IPV4}/(3[0-2]|[12][0-9]|[0-9])|{}/(12[0-8]|1[01][0-9]|[1-9][0-9]|[0-9]))$",
        ipv6()
    )
}

/// JSON Schema pattern of an IPv4 or IPv6 address.
pub fn ip_pattern() -> String {
    format!("^({IPV4}|{})$", ipv6())
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(a: IpAddr) -> Family {
        if a.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Schema helper for `IpAddr` fields.
pub(crate) struct IpSchema;
impl JsonSchema for IpSchema {
    fn schema_name() -> Cow<'static, str> {
        "IpAddress".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "IPv4 or IPv6 address",
            "pattern": ip_pattern(),
            "maxLength": 45
        })
    }
}

/// Schema helper for `Ipv4Addr` fields.
pub(crate) struct Ipv4Schema;
impl JsonSchema for Ipv4Schema {
    fn schema_name() -> Cow<'static, str> {
        "Ipv4Address".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "IPv4 address",
            "pattern": format!("^{IPV4}$"),
            "maxLength": 15
        })
    }
}

/// Schema helper for MAC address strings.
pub(crate) struct MacSchema;
impl JsonSchema for MacSchema {
    fn schema_name() -> Cow<'static, str> {
        "MacAddress".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "unicast Ethernet address, six hex octets separated by ':', not all zero",
            "pattern": MAC_PATTERN,
            "not": {"pattern": "^00(:00){5}$"}
        })
    }
}

/// A unicast MAC address (the first octet's low bit clear), as
/// [`parse_mac`] reads it.
pub const MAC_PATTERN: &str = "^[0-9A-Fa-f][02468AaCcEe](:[0-9A-Fa-f]{2}){5}$";

/// Parses `aa:bb:cc:dd:ee:ff` (exactly two hex digits per octet).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad =
        || format!("{s:?} is not a MAC address: expected six hex octets like 02:00:00:00:00:01");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// Splits `1.5 Gbit` into its number and unit: digits, an optional
/// fraction of 1 to 9 digits, an optional single space, the unit. `None`
/// when the text has another shape ([`quantity_pattern`] describes it).
fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    let (int, frac) = num.split_once('.').unwrap_or((num, "1"));
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    if unit.is_empty() && !rest.is_empty() {
        return None;
    }
    Some((num, unit))
}

/// The JSON Schema pattern of a quantity with these units (`""` for none).
fn quantity_pattern(units: &[(&str, u64)]) -> String {
    let named: Vec<&str> = units
        .iter()
        .map(|(u, _)| *u)
        .filter(|u| !u.is_empty())
        .collect();
    format!("^[0-9]+(\\.[0-9]{{1,9}})?( ?({}))?$", named.join("|"))
}

fn parse_quantity(s: &str, units: &[(&str, u64)], what: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a valid {what}");
    let (num, unit) = split_number(s).ok_or_else(bad)?;
    let Some((_, mult)) = units.iter().find(|(u, _)| *u == unit) else {
        let names: Vec<&str> = units
            .iter()
            .map(|(u, _)| *u)
            .filter(|u| !u.is_empty())
            .collect();
        return Err(format!(
            "{s:?} has an unknown {what} unit {unit:?}: use {}",
            names.join(", ")
        ));
    };
    scaled(num, *mult, s, what)
}

fn scaled(num: &str, mult: u64, whole: &str, what: &str) -> Result<u64, String> {
    let bad = || format!("{whole:?} is not a valid {what}");
    if num.is_empty() {
        return Err(bad());
    }
    if let Some((i, f)) = num.split_once('.') {
        if f.is_empty() || f.len() > 9 {
            return Err(bad());
        }
        let i: u64 = if i.is_empty() {
            0
        } else {
            i.parse().map_err(|_| bad())?
        };
        let frac: u64 = f.parse().map_err(|_| bad())?;
        let scale = 10u64.pow(f.len() as u32);
        let v = (i as u128 * mult as u128) + (frac as u128 * mult as u128) / scale as u128;
        u64::try_from(v).map_err(|_| format!("{whole:?} is too large"))
    } else {
        let i: u64 = num.parse().map_err(|_| bad())?;
        i.checked_mul(mult)
            .ok_or_else(|| format!("{whole:?} is too large"))
    }
}

macro_rules! quantity {
    ($name:ident, $what:literal, $desc:literal, $units:ident, $parse:ident, $fmt:ident) => {
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $parse(s).map($name)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&$fmt(self.0))
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "{} (an integer or a string like {})", $what, $desc)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        Ok($name(v))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        u64::try_from(v)
                            .map($name)
                            .map_err(|_| E::custom(concat!($what, " must not be negative")))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": concat!($what, ": an integer or a string like ", $desc),
                    "anyOf": [
                        {"type": "integer", "minimum": 0, "maximum": u64::MAX},
                        {"type": "string", "pattern": quantity_pattern($units)}
                    ]
                })
            }
        }
    };
}

/// A rate in bits per second: an integer, or a string with a decimal unit
/// (`bit`, `kbit`, `Mbit`, `Gbit`, `Tbit`; also `bps`, `kbps`, `Mbps`,
/// `Gbps`, `Tbps`), e.g. `"10Mbit"`, `"1.5Gbit"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(pub u64);

/// Rate units and what they multiply by (decimal, bits per second).
const RATE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("bit", 1),
    ("bps", 1),
    ("k", 1_000),
    ("kbit", 1_000),
    ("Kbit", 1_000),
    ("kbps", 1_000),
    ("Kbps", 1_000),
    ("M", 1_000_000),
    ("Mbit", 1_000_000),
    ("mbit", 1_000_000),
    ("Mbps", 1_000_000),
    ("G", 1_000_000_000),
    ("Gbit", 1_000_000_000),
    ("gbit", 1_000_000_000),
    ("Gbps", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("Tbit", 1_000_000_000_000),
    ("tbit", 1_000_000_000_000),
    ("Tbps", 1_000_000_000_000),
];

fn parse_rate(s: &str) -> Result<u64, String> {
    parse_quantity(s, RATE_UNITS, "rate")
}

fn fmt_rate(v: u64) -> String {
    for (m, u) in [
        (1_000_000_000_000, "Tbit"),
        (1_000_000_000, "Gbit"),
        (1_000_000, "Mbit"),
        (1_000, "kbit"),
    ] {
        if v >= m && v.is_multiple_of(m) {
            return format!("{}{u}", v / m);
        }
    }
    format!("{v}bit")
}

quantity!(
    Rate,
    "rate in bits per second",
    "10Mbit or 1Gbit",
    RATE_UNITS,
    parse_rate,
    fmt_rate
);

/// A size in bytes: an integer, or a string with a unit (`B`, `KiB`, `MiB`,
/// `GiB` binary; `kB`, `KB`, `MB`, `GB` decimal), e.g. `"64KiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// Size units and what they multiply by (binary `Ki`, decimal `k`).
const BYTE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("KiB", 1 << 10),
    ("Ki", 1 << 10),
    ("MiB", 1 << 20),
    ("Mi", 1 << 20),
    ("GiB", 1 << 30),
    ("Gi", 1 << 30),
    ("kB", 1_000),
    ("KB", 1_000),
    ("k", 1_000),
    ("K", 1_000),
    ("MB", 1_000_000),
    ("M", 1_000_000),
    ("GB", 1_000_000_000),
    ("G", 1_000_000_000),
];

fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_quantity(s, BYTE_UNITS, "size")
}

fn fmt_bytes(v: u64) -> String {
    for (m, u) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if v >= m && v.is_multiple_of(m) {
            return format!("{}{u}", v / m);
        }
    }
    format!("{v}B")
}

quantity!(
    ByteSize,
    "size in bytes",
    "64KiB or 1500",
    BYTE_UNITS,
    parse_bytes,
    fmt_bytes
);

/// A port number, 0 to 65535 in plain decimal (regular expression).
const PORT: &str =
    "(0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";

/// A port or an inclusive port range: `80`, `"80"` or `"1024-65535"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a port or port range like 80 or 1024-65535");
        // Plain decimal, as PORT_PATTERN says: no sign, space or leading zero.
        let p = |x: &str| {
            let plain = !x.is_empty()
                && x.bytes().all(|b| b.is_ascii_digit())
                && (x == "0" || !x.starts_with('0'));
            x.parse::<u16>().ok().filter(|_| plain).ok_or_else(bad)
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (p(a)?, p(b)?),
            None => {
                let v = p(s)?;
                (v, v)
            }
        };
        if first > last {
            return Err(format!("port range {s:?} is reversed: {first} > {last}"));
        }
        Ok(PortRange { first, last })
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.first == self.last {
            s.serialize_u16(self.first)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port (0-65535) or a range like \"1024-65535\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                let p = u16::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0-65535")))?;
                Ok(PortRange { first: p, last: p })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                if v < 0 {
                    return Err(E::custom(format!("port {v} is out of range 0-65535")));
                }
                self.visit_u64(v as u64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRange, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for PortRange {
    fn schema_name() -> Cow<'static, str> {
        "PortRange".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "a port, or an inclusive range like \"1024-65535\"",
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 65535},
                {"type": "string", "pattern": format!("^{PORT}(-{PORT})?$")}
            ]
        })
    }
}
