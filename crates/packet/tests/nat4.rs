//! Property tests for NAT44 rewriting: results match packets built from
//! scratch with the translated fields (so every checksum equals a full
//! recomputation), translating back restores the input byte for byte, and
//! arbitrary or damaged input never panics and is left alone on error.
//!
//! UDP checksum 0 vs 0xffff: a sender whose UDP checksum computes to 0
//! transmits 0xffff (RFC 768), and `fill_checksum_v4` does the same, so the
//! generated packets never carry a computed 0 as 0x0000 (0x0000 means "no
//! checksum" and is generated separately; it must stay 0x0000). The
//! incremental update treats 0xffff and 0x0000 as the same one's complement
//! value and writes a result of 0 as 0xffff, so both directions yield what
//! `fill_checksum_v4` yields and the round trip is exact with no exclusion.

use std::net::Ipv4Addr;

use proptest::collection::vec;
use proptest::prelude::*;
use weir_packet::nat4::{classify, rewrite, rewrite_icmp_error, Kind4, Nat4Error, Tuple4};
use weir_packet::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    }
}

/// Transport of a generated packet; addresses and ports come from a tuple.
#[derive(Debug, Clone)]
enum L4 {
    Tcp {
        flags: u8,
        seq: u32,
        opts: Vec<u8>,
    },
    Udp {
        csum: bool,
    },
    /// ICMP query of the given type (request or reply).
    Query {
        ty: u8,
        seq: u16,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    l4: L4,
    ip_opts: Vec<u8>,
    ident: u16,
    ttl: u8,
    payload: Vec<u8>,
}

impl Spec {
    fn proto(&self) -> u8 {
        match self.l4 {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Query { .. } => 1,
        }
    }

    fn is_request(&self) -> bool {
        matches!(
            self.l4,
            L4::Query {
                ty: 8 | 13 | 15 | 17,
                ..
            }
        )
    }

    /// The ICMP identifier for `t` per the documented rule.
    fn ident_for(&self, t: &Tuple4) -> u16 {
        if t.sport == t.dport || self.is_request() {
            t.sport
        } else {
            t.dport
        }
    }

    /// The tuple `classify` reports for a packet built from `t`.
    fn classified(&self, t: &Tuple4) -> Tuple4 {
        match self.l4 {
            L4::Query { .. } => {
                let id = self.ident_for(t);
                Tuple4 {
                    sport: id,
                    dport: id,
                    ..*t
                }
            }
            _ => *t,
        }
    }

    fn transport(&self, t: &Tuple4) -> Vec<u8> {
        let (s, d) = (Ipv4Addr::from(t.src), Ipv4Addr::from(t.dst));
        match &self.l4 {
            L4::Tcp { flags, seq, opts } => {
                let r = TcpRepr {
                    src_port: t.sport,
                    dst_port: t.dport,
                    seq: *seq,
                    ack: seq.rotate_left(7),
                    flags: TcpFlags(*flags),
                    window: 1234,
                    urgent: 0,
                    options: opts.clone(),
                    payload_len: self.payload.len(),
                };
                let mut b = vec![0; r.buffer_len() + self.payload.len()];
                let mut p = TcpPacket::new_unchecked(&mut b[..]);
                r.emit(&mut p);
                p.payload_mut().copy_from_slice(&self.payload);
                p.fill_checksum_v4(s, d);
                b
            }
            L4::Udp { csum } => {
                let len = 8 + self.payload.len();
                let mut b = vec![0; len];
                let mut p = UdpPacket::new_unchecked(&mut b[..]);
                p.set_src_port(t.sport);
                p.set_dst_port(t.dport);
                p.set_len(len as u16);
                p.payload_mut().copy_from_slice(&self.payload);
                if *csum {
                    p.fill_checksum_v4(s, d);
                }
                b
            }
            L4::Query { ty, seq } => {
                let mut b = vec![*ty, 0, 0, 0, 0, 0, 0, 0];
                b.extend_from_slice(&self.payload);
                let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
                p.set_echo_ident(self.ident_for(t));
                p.set_echo_seq_no(*seq);
                p.fill_checksum();
                b
            }
        }
    }

    fn build(&self, t: &Tuple4) -> Vec<u8> {
        ip(
            t.src,
            t.dst,
            self.proto(),
            self.ident,
            self.ttl,
            &self.ip_opts,
            &self.transport(t),
        )
    }
}

fn ip(src: u32, dst: u32, proto: u8, ident: u16, ttl: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let r = Ipv4Repr {
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        protocol: IpProtocol(proto),
        ttl,
        dscp_ecn: 0,
        ident,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: opts.to_vec(),
        payload_len: payload.len(),
    };
    let hl = r.buffer_len();
    let mut b = vec![0; hl + payload.len()];
    r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
    b[hl..].copy_from_slice(payload);
    b
}

/// Options of 0..=40 bytes in steps of 4.
fn ip_opts() -> impl Strategy<Value = Vec<u8>> {
    (0usize..=10).prop_flat_map(|n| vec(any::<u8>(), n * 4))
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u32>(),
            (0usize..=10).prop_flat_map(|n| vec(any::<u8>(), n * 4))
        )
            .prop_map(|(flags, seq, opts)| L4::Tcp { flags, seq, opts }),
        any::<bool>().prop_map(|csum| L4::Udp { csum }),
        (
            prop::sample::select(vec![0u8, 8, 13, 14, 15, 16, 17, 18]),
            any::<u16>()
        )
            .prop_map(|(ty, seq)| L4::Query { ty, seq }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        l4(),
        ip_opts(),
        any::<u16>(),
        any::<u8>(),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(l4, ip_opts, ident, ttl, payload)| Spec {
            l4,
            ip_opts,
            ident,
            ttl,
            payload,
        })
}

/// A tuple for `spec`; ICMP queries get equal ports unless `split`.
fn tuple(spec: &Spec, src: u32, dst: u32, sport: u16, dport: u16, split: bool) -> Tuple4 {
    let dport = if matches!(spec.l4, L4::Query { .. }) && !split {
        sport
    } else {
        dport
    };
    Tuple4 {
        proto: spec.proto(),
        src,
        dst,
        sport,
        dport,
    }
}

/// Full recomputation of the IPv4 header and transport checksums.
fn verify(b: &[u8]) {
    let p = Ipv4Packet::new_checked(b).unwrap();
    assert!(p.verify_checksum(), "ipv4 checksum");
    let (s, d) = (p.src_addr(), p.dst_addr());
    match p.protocol() {
        IpProtocol::TCP => assert!(TcpPacket::new_checked(p.payload())
            .unwrap()
            .verify_checksum_v4(s, d)),
        IpProtocol::UDP => assert!(UdpPacket::new_checked(p.payload())
            .unwrap()
            .verify_checksum_v4(s, d)),
        _ => assert!(Icmpv4Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum()),
    }
}

/// An ICMP error of type `ty` (3, 11 or 12) quoting `embedded`.
fn icmp_error(ty: u8, code: u8, embedded: &[u8]) -> Vec<u8> {
    let mut b = vec![ty, code, 0, 0, 0, 0, 0, 0];
    if ty == 12 {
        b[4] = 20; // pointer
    }
    b.extend_from_slice(embedded);
    Icmpv4Packet::new_unchecked(&mut b[..]).fill_checksum();
    b
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn rewrite_matches_scratch_build_and_round_trips(
        spec in spec(),
        a in any::<(u32, u32, u16, u16)>(),
        b in any::<(u32, u32, u16, u16)>(),
        split in any::<bool>(),
    ) {
        let from = tuple(&spec, a.0, a.1, a.2, a.3, false);
        let to = tuple(&spec, b.0, b.1, b.2, b.3, split);
        let orig = spec.build(&from);
        match classify(&orig).unwrap() {
            Kind4::Flow { tuple, flags, first_fragment, is_request } => {
                prop_assert_eq!(tuple, spec.classified(&from));
                prop_assert!(!first_fragment);
                prop_assert_eq!(is_request, spec.is_request());
                let want_flags = match spec.l4 { L4::Tcp { flags, .. } => flags, _ => 0 };
                prop_assert_eq!(flags, want_flags);
            }
            k => prop_assert!(false, "classified as {:?}", k),
        }

        let mut pkt = orig.clone();
        rewrite(&mut pkt, &to).unwrap();
        verify(&pkt);
        prop_assert_eq!(&pkt, &spec.build(&to));
        if let L4::Udp { csum: false } = spec.l4 {
            let hl = usize::from(pkt[0] & 0xf) * 4;
            prop_assert_eq!(&pkt[hl + 6..hl + 8], &[0, 0]);
        }
        match classify(&pkt).unwrap() {
            Kind4::Flow { tuple, .. } => prop_assert_eq!(tuple, spec.classified(&to)),
            k => prop_assert!(false, "classified as {:?}", k),
        }

        rewrite(&mut pkt, &from).unwrap();
        prop_assert_eq!(pkt, orig);
    }

    #[test]
    fn icmp_error_matches_scratch_build_and_round_trips(
        spec in spec(),
        ty in prop::sample::select(vec![3u8, 11, 12]),
        code in any::<u8>(),
        outer_ip in (ip_opts(), any::<u16>(), any::<u8>()),
        quote_extra in any::<prop::sample::Index>(),
        a in any::<(u32, u32, u16, u16)>(),
        b in any::<(u32, u32, u16, u16)>(),
        o in any::<(u32, u32, u32, u32)>(),
        split in any::<bool>(),
    ) {
        let from = tuple(&spec, a.0, a.1, a.2, a.3, false);
        let to = tuple(&spec, b.0, b.1, b.2, b.3, split);
        let full_len = spec.build(&from).len();
        let hl = 20 + spec.ip_opts.len();
        // Quote from the IPv4 header + 8 bytes to the whole packet.
        let quote = hl + 8 + quote_extra.index(full_len - hl - 8 + 1);
        let error = |inner: &Tuple4, src: u32, dst: u32| {
            let mut e = spec.build(inner);
            e.truncate(quote);
            let (opts, ident, ttl) = &outer_ip;
            ip(src, dst, 1, *ident, *ttl, opts, &icmp_error(ty, code, &e))
        };
        let orig = error(&from, o.0, o.1);
        prop_assert_eq!(
            classify(&orig).unwrap(),
            Kind4::IcmpError {
                outer: Tuple4 { proto: 1, src: o.0, dst: o.1, sport: 0, dport: 0 },
                inner: spec.classified(&from),
                icmp_type: ty,
                code,
            }
        );

        let mut pkt = orig.clone();
        rewrite_icmp_error(&mut pkt, o.2, o.3, &to).unwrap();
        verify(&pkt);
        let mut want = error(&to, o.2, o.3);
        if matches!(spec.l4, L4::Tcp { .. }) && quote == hl + 17 {
            // Only the first byte of the embedded TCP checksum is quoted:
            // the field is not all there, so it is left as it was.
            let at = 20 + outer_ip.0.len() + 8 + hl + 16;
            want[at] = orig[at];
            // The outer ICMP checksum then differs from the scratch build.
            let icmp_at = 20 + outer_ip.0.len();
            Icmpv4Packet::new_unchecked(&mut want[icmp_at..]).fill_checksum();
        }
        prop_assert_eq!(&pkt, &want);
        // The embedded header checksum verifies, and so does the embedded
        // transport checksum when the whole packet is quoted.
        let outer_hl = usize::from(pkt[0] & 0xf) * 4;
        let inner_bytes = &pkt[outer_hl + 8..];
        prop_assert!(Ipv4Packet::new_unchecked(inner_bytes).verify_checksum());
        if quote == full_len {
            verify(inner_bytes);
        }

        rewrite_icmp_error(&mut pkt, o.0, o.1, &from).unwrap();
        prop_assert_eq!(pkt, orig);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        mut bytes in vec(any::<u8>(), 0..160),
        t in any::<(u8, u32, u32, u16, u16)>(),
        os in any::<u32>(),
        od in any::<u32>(),
        plausible in any::<bool>(),
    ) {
        if plausible && bytes.len() >= 4 {
            // Version 4, a small IHL and a total length that fits, so the
            // bytes get past the IPv4 checks.
            bytes[0] = 0x40 | (5 + bytes[0] % 3);
            let n = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&n.to_be_bytes());
        }
        let to = Tuple4 { proto: t.0, src: t.1, dst: t.2, sport: t.3, dport: t.4 };
        let _ = classify(&bytes);
        let before = bytes.clone();
        if rewrite(&mut bytes, &to).is_err() {
            prop_assert_eq!(&bytes, &before);
        }
        let before = bytes.clone();
        if rewrite_icmp_error(&mut bytes, os, od, &to).is_err() {
            prop_assert_eq!(&bytes, &before);
        }
    }

    #[test]
    fn damaged_packets_never_panic(
        spec in spec(),
        ty in prop::sample::select(vec![3u8, 11, 12]),
        a in any::<(u32, u32, u16, u16)>(),
        error in any::<bool>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        fix_len in any::<bool>(),
        to in any::<(u8, u32, u32, u16, u16)>(),
    ) {
        // Valid packets (or ICMP errors about them) with a few bytes
        // overwritten and a random cut, so that the parsers get past the
        // first checks.
        let from = tuple(&spec, a.0, a.1, a.2, a.3, false);
        let mut b = spec.build(&from);
        if error {
            b = ip(a.1, a.0, 1, 7, 64, &[], &icmp_error(ty, 0, &b));
        }
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] = v;
        }
        b.truncate(cut.index(b.len() + 1));
        if fix_len && b.len() >= 4 {
            // Make the total length agree with the cut, so the cut lands
            // inside the transport header instead of failing the first check.
            let n = b.len() as u16;
            b[2..4].copy_from_slice(&n.to_be_bytes());
        }
        let _ = classify(&b);
        let to = Tuple4 { proto: to.0, src: to.1, dst: to.2, sport: to.3, dport: to.4 };
        for t in [to, Tuple4 { proto: spec.proto(), ..to }, Tuple4 { proto: 1, ..to }] {
            let before = b.clone();
            if rewrite(&mut b, &t).is_err() {
                prop_assert_eq!(&b, &before);
            }
            let before = b.clone();
            if rewrite_icmp_error(&mut b, to.dst, to.src, &t).is_err() {
                prop_assert_eq!(&b, &before);
            }
        }
    }
}

#[test]
fn error_kinds_are_distinct() {
    // Sanity: the three errors exist and differ (the unit tests in the
    // module check which input gives which).
    assert_ne!(Nat4Error::Truncated, Nat4Error::BadIcmpError);
    assert_ne!(Nat4Error::BadIcmpError, Nat4Error::Unsupported);
}
