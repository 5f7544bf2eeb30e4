//! ICMP errors about packets that waited for a neighbour that never
//! answered: host unreachable for IPv4 (RFC 1812 4.3.3.1, 5.2.7.1),
//! address unreachable for IPv6 (RFC 4861 7.2.2, RFC 4443 3.1). Built on
//! the control side, which holds those packets, with the same rules as the
//! graph's error nodes (never about an error, a non-first fragment or a
//! non-unicast packet; a quote as long as fits), routed through the live
//! FIB and rate limited with the same budget as one worker.

use std::net::IpAddr;
use std::time::Instant;

use weir_packet::{EtherType, Ipv4Packet, Ipv6Packet};

use super::Control;
use crate::modules::icmp::IcmpLimit;
use crate::modules::icmp::{error4, error6};
use crate::modules::l3::pick_member;
use crate::tables::{PortId, Tables, VrfId};
use weir_packet::icmpv4::{
    DEST_UNREACHABLE as ICMP_DEST_UNREACHABLE, HOST_UNREACHABLE as CODE_HOST_UNREACHABLE,
};
use weir_packet::icmpv6::{
    ADDR_UNREACHABLE as CODE6_ADDR_UNREACHABLE, DST_UNREACHABLE as ICMP6_DEST_UNREACHABLE,
};

/// Token bucket for these errors.
#[derive(Debug, Default)]
pub struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn take(&mut self, l: IcmpLimit, now: Instant) -> bool {
        self.tokens = match self.at {
            None => l.burst as f64,
            Some(t) => (self.tokens
                + now.saturating_duration_since(t).as_secs_f64() * l.per_second as f64)
                .min(l.burst as f64),
        };
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Port and Ethernet rewrite towards `dst` in `vrf`, if resolved.
fn route_back(cfg: &Tables, vrf: VrfId, dst: IpAddr) -> Option<(PortId, [u8; 12])> {
    let lookup = |c: &Tables, v: VrfId| match dst {
        IpAddr::V4(a) => c.lookup4(v, u32::from(a)),
        IpAddr::V6(a) => c.lookup6(v, u128::from(a)),
    };
    let nh = lookup(cfg, vrf)?;
    let nh = cfg.follow_table(nh, lookup);
    let nh = pick_member(cfg, nh, || 0);
    let adj = cfg.adjacency_of(nh);
    adj.ready.then_some((adj.port, adj.rewrite))
}

impl Control {
    /// Tell the source of `l3` (a held packet) that its destination could
    /// not be reached.
    pub(super) fn send_unreachable(&mut self, vrf: VrfId, l3: &[u8], now: Instant) {
        let cfg = self.publisher.load();
        let frame = match l3.first().map(|b| b >> 4) {
            Some(4) => error4(&cfg, vrf, l3),
            Some(6) => error6(&cfg, vrf, l3),
            _ => None,
        };
        let Some((port, frame)) = frame else {
            self.stats.unreachable_suppressed += 1;
            return;
        };
        if !self.unreachable_bucket.take(self.icmp_limit(), now) {
            self.stats.unreachable_suppressed += 1;
            return;
        }
        drop(cfg);
        self.stats.unreachable_sent += 1;
        self.inject(port, frame);
    }
}

fn error4(cfg: &Tables, vrf: VrfId, l3: &[u8]) -> Option<(PortId, Vec<u8>)> {
    const MAX: usize = 576 - 28;
    let ip = Ipv4Packet::new_checked(l3).ok()?;
    if error4::suppressed(&ip) {
        return None;
    }
    let dst = ip.src_addr();
    let (port, rewrite) = route_back(cfg, vrf, IpAddr::V4(dst))?;
    let src = cfg.port(port)?.source4_for(dst)?;
    let quoted = (ip.total_len() as usize).min(l3.len()).min(MAX);
    let mut f = vec![0u8; 14 + 28 + quoted];
    f[..12].copy_from_slice(&rewrite);
    f[12..14].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
    f[42..].copy_from_slice(&l3[..quoted]);
    error4::write_error(
        &mut f[14..],
        src,
        dst,
        ICMP_DEST_UNREACHABLE,
        CODE_HOST_UNREACHABLE,
        0,
        quoted,
    );
    Some((port, f))
}

fn error6(cfg: &Tables, vrf: VrfId, l3: &[u8]) -> Option<(PortId, Vec<u8>)> {
    const MAX: usize = 1280 - 48;
    let ip = Ipv6Packet::new_checked(l3).ok()?;
    if error6::suppressed(l3, &ip, ICMP6_DEST_UNREACHABLE) {
        return None;
    }
    let dst = ip.src_addr();
    let (port, rewrite) = route_back(cfg, vrf, IpAddr::V6(dst))?;
    let src = cfg.port(port)?.source6_for(dst);
    let quoted = (40 + ip.payload_len() as usize).min(l3.len()).min(MAX);
    let mut f = vec![0u8; 14 + 48 + quoted];
    f[..12].copy_from_slice(&rewrite);
    f[12..14].copy_from_slice(&EtherType::IPV6.0.to_be_bytes());
    f[62..].copy_from_slice(&l3[..quoted]);
    error6::write_error(
        &mut f[14..],
        src,
        dst,
        ICMP6_DEST_UNREACHABLE,
        CODE6_ADDR_UNREACHABLE,
        0,
        quoted,
    );
    Some((port, f))
}
