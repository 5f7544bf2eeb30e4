//! Neighbor discovery (RFC 4861) message bodies and options, carried in ICMPv6.

use std::net::Ipv6Addr;

use crate::ethernet::MacAddr;
use crate::icmpv6::{
    Icmpv6Packet, NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT, REDIRECT, ROUTER_ADVERT, ROUTER_SOLICIT,
};
use crate::{arr16, be16, be32, put16, put32, Error, Result};

/// Source link-layer address option type.
pub const OPT_SOURCE_LL_ADDR: u8 = 1;
/// Target link-layer address option type.
pub const OPT_TARGET_LL_ADDR: u8 = 2;
/// Prefix information option type.
pub const OPT_PREFIX_INFO: u8 = 3;
/// Redirected header option type.
pub const OPT_REDIRECTED_HEADER: u8 = 4;
/// MTU option type.
pub const OPT_MTU: u8 = 5;

const RA_MANAGED: u8 = 0x80;
const RA_OTHER: u8 = 0x40;
/// Neighbour advertisement flag: the sender is a router.
pub const NA_ROUTER: u8 = 0x80;
/// Neighbour advertisement flag: sent in answer to a solicitation.
pub const NA_SOLICITED: u8 = 0x40;
/// Neighbour advertisement flag: override a cached link-layer address.
pub const NA_OVERRIDE: u8 = 0x20;
const PI_ON_LINK: u8 = 0x80;
const PI_AUTONOMOUS: u8 = 0x40;

/// Offset of the options in an NDP message of type `msg_type`, or None if
/// the type is not an NDP message.
#[inline]
pub fn options_offset(msg_type: u8) -> Option<usize> {
    match msg_type {
        ROUTER_SOLICIT => Some(8),
        ROUTER_ADVERT => Some(16),
        NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT => Some(24),
        REDIRECT => Some(40),
        _ => None,
    }
}

/// NDP accessors on an ICMPv6 view. They check their own lengths (the view
/// only guarantees 8 bytes), so they cannot panic either.
impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Target address of an NS, NA or redirect; None if another type or too short.
    #[inline]
    pub fn ndp_target(&self) -> Option<Ipv6Addr> {
        let d = self.as_ref();
        match self.msg_type() {
            NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT | REDIRECT if d.len() >= 24 => {
                Some(Ipv6Addr::from(arr16(d, 8)))
            }
            _ => None,
        }
    }

    /// NA flags (router, solicited, override); None if not an NA.
    #[inline]
    pub fn na_flags(&self) -> Option<(bool, bool, bool)> {
        if self.msg_type() != NEIGHBOR_ADVERT {
            return None;
        }
        let f = self.as_ref()[4];
        Some((
            f & NA_ROUTER != 0,
            f & NA_SOLICITED != 0,
            f & NA_OVERRIDE != 0,
        ))
    }

    /// Raw option bytes of an NDP message; empty if another type or too short.
    #[inline]
    pub fn ndp_options(&self) -> &[u8] {
        let d = self.as_ref();
        match options_offset(self.msg_type()) {
            Some(off) if d.len() >= off => &d[off..],
            _ => &[],
        }
    }
}

/// Zero-allocation iterator over raw NDP options, yielding `(type, option)`
/// where `option` is the whole option including its type and length bytes.
/// Yields one `Err` and stops on a malformed list.
#[derive(Debug, Clone)]
pub struct NdpOptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> NdpOptionIter<'a> {
    /// Iterates over `options`.
    #[inline]
    pub fn new(options: &'a [u8]) -> Self {
        NdpOptionIter { rest: options }
    }
}

impl<'a> Iterator for NdpOptionIter<'a> {
    type Item = Result<(u8, &'a [u8])>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.rest;
        if r.is_empty() {
            return None;
        }
        self.rest = &[];
        if r.len() < 2 {
            return Some(Err(Error::Truncated));
        }
        let len = usize::from(r[1]) * 8;
        if len == 0 {
            // RFC 4861 §4.6: nodes must silently discard such packets.
            return Some(Err(Error::Malformed("option length")));
        }
        if len > r.len() {
            return Some(Err(Error::Truncated));
        }
        self.rest = &r[len..];
        Some(Ok((r[0], &r[..len])))
    }
}

/// Finds the source/target link-layer address option (`option_type` 1 or 2)
/// without allocating. Returns None if absent, not Ethernet-sized, or if
/// any option in the list is malformed (such packets must be dropped).
#[inline]
pub fn find_link_layer_option(options: &[u8], option_type: u8) -> Option<MacAddr> {
    let mut found = None;
    for o in NdpOptionIter::new(options) {
        let (t, o) = o.ok()?;
        if t == option_type && found.is_none() && o.len() == 8 {
            found = MacAddr::from_slice(&o[2..]);
        }
    }
    found
}

/// Checks a whole option list by the rules of [`NdpOption::parse_all`]
/// (every length valid, link-layer, prefix and MTU options of their fixed
/// sizes) without allocating: for the forwarding path, which then picks
/// the options it needs with [`find_link_layer_option`].
#[inline]
pub fn check_options(options: &[u8]) -> Result<()> {
    for o in NdpOptionIter::new(options) {
        let (t, o) = o?;
        let ok = match t {
            OPT_SOURCE_LL_ADDR | OPT_TARGET_LL_ADDR | OPT_MTU => o.len() == 8,
            OPT_PREFIX_INFO => o.len() == 32,
            _ => true,
        };
        if !ok {
            return Err(Error::Malformed("option length"));
        }
    }
    Ok(())
}

/// A parsed NDP option.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NdpOption {
    /// Type 1.
    SourceLinkLayerAddr(MacAddr),
    /// Type 2.
    TargetLinkLayerAddr(MacAddr),
    /// Type 3.
    PrefixInformation {
        /// Prefix length in bits.
        prefix_len: u8,
        /// L flag.
        on_link: bool,
        /// A flag.
        autonomous: bool,
        /// Valid lifetime (s).
        valid_lifetime: u32,
        /// Preferred lifetime (s).
        preferred_lifetime: u32,
        /// Prefix.
        prefix: Ipv6Addr,
    },
    /// Type 5.
    Mtu(u32),
    /// Anything else; `data` is the option minus its type and length bytes
    /// (so 8n - 2 bytes long; `emit` zero-pads otherwise).
    Unknown {
        /// Option type.
        option_type: u8,
        /// Body.
        data: Vec<u8>,
    },
}

impl NdpOption {
    /// Parses one option (as yielded by [`NdpOptionIter`]).
    pub fn parse(option_type: u8, o: &[u8]) -> Result<NdpOption> {
        Ok(match option_type {
            OPT_SOURCE_LL_ADDR | OPT_TARGET_LL_ADDR => {
                // Ethernet only: the address fills exactly one 8-byte unit.
                let mac = match MacAddr::from_slice(&o[2..]) {
                    Some(m) if o.len() == 8 => m,
                    _ => return Err(Error::Malformed("link-layer address option")),
                };
                if option_type == OPT_SOURCE_LL_ADDR {
                    NdpOption::SourceLinkLayerAddr(mac)
                } else {
                    NdpOption::TargetLinkLayerAddr(mac)
                }
            }
            OPT_PREFIX_INFO => {
                if o.len() != 32 {
                    return Err(Error::Malformed("prefix information option"));
                }
                NdpOption::PrefixInformation {
                    prefix_len: o[2],
                    on_link: o[3] & PI_ON_LINK != 0,
                    autonomous: o[3] & PI_AUTONOMOUS != 0,
                    valid_lifetime: be32(o, 4),
                    preferred_lifetime: be32(o, 8),
                    prefix: Ipv6Addr::from(arr16(o, 16)),
                }
            }
            OPT_MTU => {
                if o.len() != 8 {
                    return Err(Error::Malformed("mtu option"));
                }
                NdpOption::Mtu(be32(o, 4))
            }
            t => NdpOption::Unknown {
                option_type: t,
                data: o[2..].to_vec(),
            },
        })
    }

    /// Parses a whole option list.
    pub fn parse_all(options: &[u8]) -> Result<Vec<NdpOption>> {
        NdpOptionIter::new(options)
            .map(|o| o.and_then(|(t, o)| NdpOption::parse(t, o)))
            .collect()
    }

    /// Encoded length (a multiple of 8).
    pub fn buffer_len(&self) -> usize {
        match self {
            NdpOption::SourceLinkLayerAddr(_) | NdpOption::TargetLinkLayerAddr(_) => 8,
            NdpOption::PrefixInformation { .. } => 32,
            NdpOption::Mtu(_) => 8,
            // Capped so the length fits the 8-bit field.
            NdpOption::Unknown { data, .. } => (2 + data.len()).next_multiple_of(8).min(255 * 8),
        }
    }

    /// Writes the option into `buf` (at least `buffer_len()` bytes).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf.fill(0);
        buf[1] = (len / 8) as u8;
        match self {
            NdpOption::SourceLinkLayerAddr(m) | NdpOption::TargetLinkLayerAddr(m) => {
                buf[0] = if matches!(self, NdpOption::SourceLinkLayerAddr(_)) {
                    OPT_SOURCE_LL_ADDR
                } else {
                    OPT_TARGET_LL_ADDR
                };
                buf[2..8].copy_from_slice(&m.0);
            }
            NdpOption::PrefixInformation {
                prefix_len,
                on_link,
                autonomous,
                valid_lifetime,
                preferred_lifetime,
                prefix,
            } => {
                buf[0] = OPT_PREFIX_INFO;
                buf[2] = *prefix_len;
                buf[3] = if *on_link { PI_ON_LINK } else { 0 }
                    | if *autonomous { PI_AUTONOMOUS } else { 0 };
                put32(buf, 4, *valid_lifetime);
                put32(buf, 8, *preferred_lifetime);
                buf[16..32].copy_from_slice(&prefix.octets());
            }
            NdpOption::Mtu(mtu) => {
                buf[0] = OPT_MTU;
                put32(buf, 4, *mtu);
            }
            NdpOption::Unknown { option_type, data } => {
                buf[0] = *option_type;
                let n = data.len().min(len - 2);
                buf[2..2 + n].copy_from_slice(&data[..n]);
            }
        }
    }
}

fn options_len(options: &[NdpOption]) -> usize {
    options.iter().map(NdpOption::buffer_len).sum()
}

/// A parsed NDP message (RS, RA, NS, NA; redirects are left to
/// [`Icmpv6Repr::Other`](crate::Icmpv6Repr)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NdpRepr {
    /// Router solicitation.
    RouterSolicit {
        /// Options.
        options: Vec<NdpOption>,
    },
    /// Router advertisement.
    RouterAdvert {
        /// Current hop limit.
        hop_limit: u8,
        /// M flag.
        managed: bool,
        /// O flag.
        other: bool,
        /// Router lifetime (s).
        router_lifetime: u16,
        /// Reachable time (ms).
        reachable_time: u32,
        /// Retransmit timer (ms).
        retrans_timer: u32,
        /// Options.
        options: Vec<NdpOption>,
    },
    /// Neighbor solicitation.
    NeighborSolicit {
        /// Target address.
        target: Ipv6Addr,
        /// Options.
        options: Vec<NdpOption>,
    },
    /// Neighbor advertisement.
    NeighborAdvert {
        /// R flag.
        router: bool,
        /// S flag.
        solicited: bool,
        /// O flag.
        override_: bool,
        /// Target address.
        target: Ipv6Addr,
        /// Options.
        options: Vec<NdpOption>,
    },
}

impl NdpRepr {
    /// Parses an NDP message from an ICMPv6 view (checksum not verified).
    /// Checks code 0, body length, a non-multicast NS/NA target and every
    /// option (RFC 4861 §§6.1, 7.1). The IPv6 hop limit (255) is the
    /// caller's to check.
    pub fn parse<T: AsRef<[u8]>>(p: &Icmpv6Packet<T>) -> Result<NdpRepr> {
        p.check()?;
        let d = p.as_ref();
        let t = p.msg_type();
        let off = match options_offset(t) {
            Some(o) if t != REDIRECT => o,
            _ => return Err(Error::Unsupported("not an ndp message")),
        };
        if p.code() != 0 {
            return Err(Error::Malformed("code"));
        }
        if d.len() < off {
            return Err(Error::Truncated);
        }
        let options = NdpOption::parse_all(&d[off..])?;
        Ok(match t {
            ROUTER_SOLICIT => NdpRepr::RouterSolicit { options },
            ROUTER_ADVERT => NdpRepr::RouterAdvert {
                hop_limit: d[4],
                managed: d[5] & RA_MANAGED != 0,
                other: d[5] & RA_OTHER != 0,
                router_lifetime: be16(d, 6),
                reachable_time: be32(d, 8),
                retrans_timer: be32(d, 12),
                options,
            },
            _ => {
                let target = Ipv6Addr::from(arr16(d, 8));
                if target.is_multicast() {
                    return Err(Error::Malformed("target"));
                }
                if t == NEIGHBOR_SOLICIT {
                    NdpRepr::NeighborSolicit { target, options }
                } else {
                    NdpRepr::NeighborAdvert {
                        router: d[4] & NA_ROUTER != 0,
                        solicited: d[4] & NA_SOLICITED != 0,
                        override_: d[4] & NA_OVERRIDE != 0,
                        target,
                        options,
                    }
                }
            }
        })
    }

    fn options(&self) -> &[NdpOption] {
        match self {
            NdpRepr::RouterSolicit { options }
            | NdpRepr::RouterAdvert { options, .. }
            | NdpRepr::NeighborSolicit { options, .. }
            | NdpRepr::NeighborAdvert { options, .. } => options,
        }
    }

    fn fixed_len(&self) -> usize {
        match self {
            NdpRepr::RouterSolicit { .. } => 8,
            NdpRepr::RouterAdvert { .. } => 16,
            NdpRepr::NeighborSolicit { .. } | NdpRepr::NeighborAdvert { .. } => 24,
        }
    }

    /// ICMPv6 message length.
    pub fn buffer_len(&self) -> usize {
        self.fixed_len() + options_len(self.options())
    }

    /// Writes the ICMPv6 message, checksum zero (use
    /// [`Icmpv6Repr::emit`](crate::Icmpv6Repr::emit) to get it filled).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Icmpv6Packet<T>) {
        let fixed = self.fixed_len();
        let d = p.raw_mut();
        d[..fixed].fill(0);
        match self {
            NdpRepr::RouterSolicit { .. } => d[0] = ROUTER_SOLICIT,
            NdpRepr::RouterAdvert {
                hop_limit,
                managed,
                other,
                router_lifetime,
                reachable_time,
                retrans_timer,
                ..
            } => {
                d[0] = ROUTER_ADVERT;
                d[4] = *hop_limit;
                d[5] = if *managed { RA_MANAGED } else { 0 } | if *other { RA_OTHER } else { 0 };
                put16(d, 6, *router_lifetime);
                put32(d, 8, *reachable_time);
                put32(d, 12, *retrans_timer);
            }
            NdpRepr::NeighborSolicit { target, .. } => {
                d[0] = NEIGHBOR_SOLICIT;
                d[8..24].copy_from_slice(&target.octets());
            }
            NdpRepr::NeighborAdvert {
                router,
                solicited,
                override_,
                target,
                ..
            } => {
                d[0] = NEIGHBOR_ADVERT;
                d[4] = if *router { NA_ROUTER } else { 0 }
                    | if *solicited { NA_SOLICITED } else { 0 }
                    | if *override_ { NA_OVERRIDE } else { 0 };
                d[8..24].copy_from_slice(&target.octets());
            }
        }
        let mut at = fixed;
        for o in self.options() {
            o.emit(&mut d[at..]);
            at += o.buffer_len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Icmpv6Repr;

    // NS fe80::1 -> ff02::1:ff00:2, who-has fe80::2, SLLA 02:00:00:00:00:01.
    const NS: [u8; 32] = [
        0x87, 0x00, 0x7a, 0x97, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x01,
    ];
    // NA fe80::2 -> fe80::1, S|O, target fe80::2, TLLA 02:00:00:00:00:02.
    const NA: [u8; 32] = [
        0x88, 0x00, 0x18, 0x1a, 0x60, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00,
        0x00, 0x02,
    ];

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn neighbor_solicit() {
        let p = Icmpv6Packet::new_checked(&NS[..]).unwrap();
        assert!(p.verify_checksum(a("fe80::1"), a("ff02::1:ff00:2")));
        assert_eq!(p.ndp_target(), Some(a("fe80::2")));
        assert_eq!(
            find_link_layer_option(p.ndp_options(), OPT_SOURCE_LL_ADDR),
            Some(MacAddr([2, 0, 0, 0, 0, 1]))
        );
        assert_eq!(
            find_link_layer_option(p.ndp_options(), OPT_TARGET_LL_ADDR),
            None
        );
        let r = Icmpv6Repr::parse(&p).unwrap();
        let want = Icmpv6Repr::Ndp(NdpRepr::NeighborSolicit {
            target: a("fe80::2"),
            options: vec![NdpOption::SourceLinkLayerAddr(MacAddr([2, 0, 0, 0, 0, 1]))],
        });
        assert_eq!(r, want);
        let mut out = vec![0xffu8; r.buffer_len()];
        r.emit(
            a("fe80::1"),
            a("ff02::1:ff00:2"),
            &mut Icmpv6Packet::new_unchecked(&mut out[..]),
        );
        assert_eq!(out, NS);
    }

    #[test]
    fn neighbor_advert() {
        let (s, d) = (a("fe80::2"), a("fe80::1"));
        let p = Icmpv6Packet::new_checked(&NA[..]).unwrap();
        assert!(p.verify_checksum(s, d));
        assert_eq!(p.na_flags(), Some((false, true, true)));
        let r = Icmpv6Repr::Ndp(NdpRepr::NeighborAdvert {
            router: false,
            solicited: true,
            override_: true,
            target: a("fe80::2"),
            options: vec![NdpOption::TargetLinkLayerAddr(MacAddr([2, 0, 0, 0, 0, 2]))],
        });
        assert_eq!(Icmpv6Repr::parse(&p).unwrap(), r);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(s, d, &mut Icmpv6Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, NA);
    }

    #[test]
    fn router_advert_roundtrip() {
        let r = NdpRepr::RouterAdvert {
            hop_limit: 64,
            managed: true,
            other: false,
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 1000,
            options: vec![
                NdpOption::SourceLinkLayerAddr(MacAddr([2, 0, 0, 0, 0, 9])),
                NdpOption::Mtu(9000),
                NdpOption::PrefixInformation {
                    prefix_len: 64,
                    on_link: true,
                    autonomous: true,
                    valid_lifetime: 86400,
                    preferred_lifetime: 14400,
                    prefix: a("2001:db8:1::"),
                },
                NdpOption::Unknown {
                    option_type: 25,
                    data: vec![0, 0, 0, 0, 0, 60, 1, 2, 3, 4, 5, 6, 7, 8],
                },
            ],
        };
        let mut out = vec![0u8; r.buffer_len()];
        let mut p = Icmpv6Packet::new_unchecked(&mut out[..]);
        r.emit(&mut p);
        assert_eq!(
            NdpRepr::parse(&Icmpv6Packet::new_checked(&out[..]).unwrap()).unwrap(),
            r
        );
        assert_eq!(out.len(), 16 + 8 + 8 + 32 + 16);
    }

    #[test]
    fn bad_options() {
        let mut b = NS;
        b[25] = 0; // option length 0
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            NdpRepr::parse(&p).unwrap_err(),
            Error::Malformed("option length")
        );
        assert_eq!(
            find_link_layer_option(p.ndp_options(), OPT_SOURCE_LL_ADDR),
            None
        );
        let mut b = NS;
        b[25] = 2; // runs past the end
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(NdpRepr::parse(&p).unwrap_err(), Error::Truncated);
        let p = Icmpv6Packet::new_checked(&NS[..31]).unwrap();
        assert_eq!(NdpRepr::parse(&p).unwrap_err(), Error::Truncated);
        let p = Icmpv6Packet::new_checked(&NS[..20]).unwrap();
        assert_eq!(NdpRepr::parse(&p).unwrap_err(), Error::Truncated);
        assert_eq!(p.ndp_target(), None);
        assert!(p.ndp_options().is_empty());
        let mut b = NS;
        b[1] = 1;
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(NdpRepr::parse(&p).unwrap_err(), Error::Malformed("code"));
        let mut b = NS;
        b[8] = 0xff;
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(NdpRepr::parse(&p).unwrap_err(), Error::Malformed("target"));
        // SLLA with 16 bytes (non-Ethernet) is rejected by the repr and ignored by the helper.
        let mut b = NS.to_vec();
        b[25] = 2;
        b.extend_from_slice(&[0; 8]);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(matches!(NdpRepr::parse(&p), Err(Error::Malformed(_))));
        assert_eq!(
            find_link_layer_option(p.ndp_options(), OPT_SOURCE_LL_ADDR),
            None
        );
    }

    proptest::proptest! {
        /// The allocation-free check accepts exactly what the repr parser
        /// accepts.
        #[test]
        fn check_options_agrees_with_parse_all(opts in proptest::collection::vec(
            proptest::prelude::any::<u8>(), 0..80)) {
            proptest::prop_assert_eq!(check_options(&opts).is_ok(), NdpOption::parse_all(&opts).is_ok());
        }
    }
}
