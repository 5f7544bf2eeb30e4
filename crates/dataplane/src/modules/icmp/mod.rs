//! ICMP: the echo responders for the gateway's own addresses and the error
//! nodes (built in place, rate limited per worker). The control side uses
//! `error4`/`error6` for the errors about packets that waited for a
//! neighbour in vain.

pub mod error4;
pub mod error6;
mod local4;
mod local6;

pub use error4::Icmp4Error;
pub use error6::Icmp6Error;
pub use local4::Icmp4Local;
pub use local6::Icmp6Local;

use crate::registry::{Family, Registry};
use crate::snapshot::Apply;
use crate::worker::Ctx;
use weir_packet::IpProtocol;

/// Per-worker ICMP error budget: this module's table, published by the
/// control side (`Control::set_icmp_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for IcmpLimit {
    fn default() -> Self {
        IcmpLimit {
            per_second: 1000,
            burst: 50,
        }
    }
}

impl Apply for IcmpLimit {
    type Change = IcmpLimit;
    fn apply(&mut self, change: &IcmpLimit) {
        *self = *change;
    }
}

pub fn register(r: &mut Registry) {
    let limit = r.table(IcmpLimit::default());
    r.local(Family::V4, IpProtocol::ICMP, None, "icmp4-local");
    r.local(Family::V6, IpProtocol::ICMPV6, None, "icmp6-local");
    r.node(|_| Icmp4Local);
    r.node(Icmp6Local::new);
    r.node(move |_| Icmp4Error { limit });
    r.node(move |_| Icmp6Error { limit });
}

/// Take one token from this worker's ICMP error budget (RFC 1812 4.3.2.8,
/// RFC 4443 2.4 f), shared by IPv4 and IPv6; `l` is this batch's limit.
#[inline]
fn allow(cx: &mut Ctx<'_>, l: IcmpLimit) -> bool {
    cx.local.icmp_budget.take(l.per_second, l.burst, cx.now_ns)
}
