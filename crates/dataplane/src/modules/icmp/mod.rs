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
use weir_packet::IpProtocol;

pub fn register(r: &mut Registry) {
    r.local(Family::V4, IpProtocol::ICMP, None, "icmp4-local");
    r.local(Family::V6, IpProtocol::ICMPV6, None, "icmp6-local");
    r.node(|_| Icmp4Local);
    r.node(Icmp6Local::new);
    r.node(|_| Icmp4Error);
    r.node(|_| Icmp6Error);
}
