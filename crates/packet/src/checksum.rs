//! Internet checksum (RFC 1071) and incremental updates (RFC 1624).
//!
//! Partial sums are plain integers congruent (mod 0xffff) to the one's
//! complement sum of the 16-bit big-endian words; since 2^16 ≡ 1 (mod 0xffff),
//! they can be added as integers and folded at the end. Concatenating data is
//! only valid if every piece except the last has even length.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::IpProtocol;

/// Partial one's complement sum of `data` (big-endian 16-bit words; an odd
/// trailing byte is padded with zero).
///
/// Reads 8 bytes per step into a `u64` accumulator: each step adds less than
/// 2^33, so it cannot overflow for any buffer smaller than 2^31 * 8 bytes.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        acc += u64::from(b) << 8;
    }
    fold32(acc)
}

/// Folds a 64-bit partial sum into 32 bits, preserving the value mod 0xffff.
#[inline]
fn fold32(mut acc: u64) -> u32 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Adds two partial sums.
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    fold32(u64::from(a) + u64::from(b))
}

/// Folds a partial sum to 16 bits with end-around carry (not complemented).
///
/// A non-zero sum never folds to 0x0000 (it becomes 0xffff, "negative zero"),
/// which is what RFC 1624 relies on.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    // Branch-free: 64 -> 33 -> 18 -> 17 -> 16 bits.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Final checksum value to store in a header: `!fold(sum)`.
#[inline]
pub fn finish(sum: u32) -> u16 {
    !fold(u64::from(sum))
}

/// True if `sum` (taken over data that includes its checksum field) verifies.
#[inline]
pub fn is_valid(sum: u32) -> bool {
    fold(u64::from(sum)) == 0xffff
}

/// Partial sum of the IPv4 pseudo-header (RFC 793 / 768).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    fold32(
        u64::from(s >> 16)
            + u64::from(s & 0xffff)
            + u64::from(d >> 16)
            + u64::from(d & 0xffff)
            + u64::from(proto.0)
            + u64::from(len),
    )
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: IpProtocol, len: u32) -> u32 {
    let mut acc = u64::from(sum(&src.octets())) + u64::from(sum(&dst.octets()));
    acc += u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(next_header.0);
    fold32(acc)
}

/// RFC 1624 eqn. 3 incremental update of checksum `csum` after a 16-bit
/// word changes from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
///
/// Unlike eqn. 2 this never produces 0xffff from a header whose sum is
/// non-zero, so it agrees with a full recomputation.
#[inline]
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!csum) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// [`update_u16`] for a 32-bit field (e.g. an IPv4 address), both halves at once.
#[inline]
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!csum)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(acc)
}

/// [`update_u32`] for a 128-bit field (e.g. an IPv6 address, for NAT66).
#[inline]
pub fn update_u128(csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    // ~m summed word by word equals 0xffff*8 - sum(m) mod 0xffff, i.e. -sum(m).
    let neg_old = !fold(u64::from(sum(old)));
    let acc = u64::from(!csum) + u64::from(neg_old) + u64::from(sum(new));
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward reference implementation.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(u64::from(sum(&d))), 0xddf2);
        assert_eq!(finish(sum(&d)), !0xddf2);
    }

    #[test]
    fn sum_matches_naive_all_lengths() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8 | 0x80).collect();
        for len in 0..data.len() {
            assert_eq!(
                fold(u64::from(sum(&data[..len]))),
                naive(&data[..len]),
                "len {len}"
            );
        }
        let ff = [0xffu8; 77];
        assert_eq!(fold(u64::from(sum(&ff))), naive(&ff));
    }

    #[test]
    fn combine_even_pieces() {
        let d: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(151)).collect();
        assert_eq!(
            fold(u64::from(combine(sum(&d[..24]), sum(&d[24..])))),
            fold(u64::from(sum(&d)))
        );
    }

    #[test]
    fn known_ipv4_header() {
        // Classic example header with checksum 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(sum(&h)), 0xb861);
        let mut h2 = h;
        h2[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(is_valid(sum(&h2)));
    }

    #[test]
    fn rfc1624_corner_case() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285. Eqn. 3 gives
        // 0x0000 (the correct result); eqn. 2 would give 0xffff.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
        // And back again.
        assert_eq!(update_u16(0x0000, 0x3285, 0x5555), 0xdd2f);
        // No-op change leaves a checksum of 0x0000 alone...
        assert_eq!(update_u16(0x0000, 0x1234, 0x1234), 0x0000);
        // ...while 0xffff (only produced by an all-zero sum, impossible for a
        // real header) is normalised to 0x0000: eqn. 3 never yields 0xffff
        // unless ~HC + ~m + m' is zero.
        assert_eq!(update_u16(0xffff, 0x1234, 0x1234), 0x0000);
    }

    #[test]
    fn update_matches_recompute() {
        let mut h = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c0 = finish(sum(&h));
        let old = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let new = 0x0a00_0001u32;
        h[12..16].copy_from_slice(&new.to_be_bytes());
        assert_eq!(update_u32(c0, old, new), finish(sum(&h)));

        let mut a = [0u8; 40];
        a[0] = 0x60;
        a[8..24].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let c1 = finish(sum(&a));
        let old6: [u8; 16] = a[8..24].try_into().unwrap();
        let new6 = [0xfd, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
        a[8..24].copy_from_slice(&new6);
        assert_eq!(update_u128(c1, &old6, &new6), finish(sum(&a)));
    }

    #[test]
    fn pseudo_headers() {
        let s = Ipv4Addr::new(192, 168, 0, 1);
        let d = Ipv4Addr::new(10, 0, 0, 2);
        let mut ph = Vec::new();
        ph.extend_from_slice(&s.octets());
        ph.extend_from_slice(&d.octets());
        ph.extend_from_slice(&[0, 17, 0x01, 0x02]);
        assert_eq!(
            fold(u64::from(pseudo_header_v4(s, d, IpProtocol::UDP, 0x0102))),
            naive(&ph)
        );

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::ffff:1".parse().unwrap();
        let mut ph6 = Vec::new();
        ph6.extend_from_slice(&s6.octets());
        ph6.extend_from_slice(&d6.octets());
        ph6.extend_from_slice(&0x0001_0203u32.to_be_bytes());
        ph6.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(
            fold(u64::from(pseudo_header_v6(
                s6,
                d6,
                IpProtocol::ICMPV6,
                0x0001_0203
            ))),
            naive(&ph6)
        );
    }
}
