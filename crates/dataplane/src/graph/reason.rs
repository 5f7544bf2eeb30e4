//! Why a packet was dropped or diverted: every drop names one of these, and
//! each has a per-worker counter.

macro_rules! reasons {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Reason { $($variant,)* }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// Stable name shown in counters and traces.
            pub const fn name(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }
        }
    };
}

reasons! {
    NoBuffer => "no-buffer",
    FrameOverflow => "frame-overflow",
    RxTooLong => "rx-frame-longer-than-buffer",
    NodeNoDecision => "node-no-decision",
    EthMalformed => "eth-malformed",
    EthNotForUs => "eth-not-for-us",
    EthUnknownType => "eth-unknown-ethertype",
    EthVlanUnknown => "eth-vlan-not-configured",
    PortDown => "port-down",
    ArpMalformed => "arp-malformed",
    ArpNotForUs => "arp-not-for-us",
    Ip4Malformed => "ip4-malformed",
    Ip4BadChecksum => "ip4-bad-checksum",
    Ip4MartianSrc => "ip4-martian-source",
    Ip4MartianDst => "ip4-martian-destination",
    Ip4TtlExpired => "ip4-ttl-expired",
    Ip4NoRoute => "ip4-no-route",
    Ip4Blackhole => "ip4-blackhole",
    Ip4Unreachable => "ip4-unreachable",
    Ip4Prohibited => "ip4-prohibited",
    Ip4FragNeeded => "ip4-fragmentation-needed",
    Ip4Fragmented => "ip4-fragmented",
    Ip4Multicast => "ip4-multicast-not-forwarded",
    Ip4Broadcast => "ip4-broadcast-not-forwarded",
    Ip4LinkBroadcast => "ip4-link-broadcast-not-forwarded",
    Ip4BadOption => "ip4-bad-option",
    Ip6Malformed => "ip6-malformed",
    Ip6MartianSrc => "ip6-martian-source",
    Ip6MartianDst => "ip6-martian-destination",
    Ip6HopLimitExpired => "ip6-hop-limit-expired",
    Ip6NoRoute => "ip6-no-route",
    Ip6Blackhole => "ip6-blackhole",
    Ip6Unreachable => "ip6-unreachable",
    Ip6Prohibited => "ip6-prohibited",
    Ip6TooBig => "ip6-packet-too-big",
    Ip6Multicast => "ip6-multicast-not-forwarded",
    Ip6LinkMulticast => "ip6-link-multicast-not-forwarded",
    Ip6ScopeViolation => "ip6-link-local-not-forwarded",
    IcmpMalformed => "icmp-malformed",
    IcmpBadChecksum => "icmp-bad-checksum",
    IcmpUnhandled => "icmp-type-unhandled",
    IcmpErrorRateLimited => "icmp-error-rate-limited",
    IcmpErrorSuppressed => "icmp-error-suppressed",
    NdMalformed => "nd-malformed",
    NdNotForUs => "nd-not-for-us",
    NeighHeld => "neigh-held-for-resolution",
    NeighQueueFull => "neigh-queue-full",
    NeighFailed => "neigh-resolution-failed",
    NeighHoldTooBig => "neigh-held-packet-too-big",
    TxFull => "tx-queue-full",
    PuntNoMirror => "local-traffic-without-kernel-mirror",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Reason::COUNT);
        assert_eq!(Reason::ALL[Reason::TxFull as usize], Reason::TxFull);
    }
}
