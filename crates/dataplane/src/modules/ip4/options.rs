//! IPv4 options (RFC 791, RFC 1812 4.2.2.1): the whole list is
//! checked on input, each option's length and pointer against the bytes
//! there are; a fault draws a parameter problem pointing at it. On the way
//! out the gateway records its outgoing address in a Record Route option
//! with room left, and stamps (or counts the overflow of) a Timestamp
//! option. Loose and strict source routes are checked and left as they are:
//! a packet whose source route names the gateway is local traffic, which
//! the kernel mirror (which refuses source routing by default) receives.
//! Only packets with options come here.

use std::net::Ipv4Addr;

use weir_packet::ipv4::option::{
    EOL as OPT_EOL, LSRR as OPT_LSRR, NOP as OPT_NOP, RECORD_ROUTE as OPT_RR, SSRR as OPT_SSRR,
    TIMESTAMP as OPT_TS, TS_ADDR, TS_ONLY, TS_PRESPEC,
};

/// Bytes one timestamp entry takes for a flag, or None for an unknown flag.
fn ts_entry(flag: u8) -> Option<usize> {
    match flag {
        TS_ONLY => Some(4),
        TS_ADDR | TS_PRESPEC => Some(8),
        _ => None,
    }
}

/// Check the options (the header bytes after the first 20). Err holds the
/// offset in the IP header of the octet at fault, for the parameter
/// problem's pointer.
pub fn check(opts: &[u8]) -> Result<(), u8> {
    let at = |k: usize| (20 + k).min(255) as u8;
    let (mut rr, mut ts, mut sr) = (false, false, false);
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        if t == OPT_EOL {
            return Ok(());
        }
        if t == OPT_NOP {
            i += 1;
            continue;
        }
        let Some(&l) = opts.get(i + 1) else {
            return Err(at(i));
        };
        let l = l as usize;
        if l < 2 || i + l > opts.len() {
            return Err(at(i + 1));
        }
        let o = &opts[i..i + l];
        match t {
            OPT_RR | OPT_LSRR | OPT_SSRR => {
                let seen = if t == OPT_RR { &mut rr } else { &mut sr };
                if *seen {
                    return Err(at(i));
                }
                *seen = true;
                if l < 3 {
                    return Err(at(i + 1));
                }
                let p = o[2] as usize;
                // The pointer starts at 4 and moves by whole addresses; it
                // may be past the end (full), never inside the last address.
                if p < 4 || (p <= l && p + 3 > l) {
                    return Err(at(i + 2));
                }
            }
            OPT_TS => {
                if ts {
                    return Err(at(i));
                }
                ts = true;
                if l < 4 {
                    return Err(at(i + 1));
                }
                let p = o[2] as usize;
                let Some(w) = ts_entry(o[3] & 0x0f) else {
                    return Err(at(i + 3));
                };
                if p < 5 || (p <= l && p + w - 1 > l) {
                    return Err(at(i + 2));
                }
                if p > l && o[3] >> 4 == 15 {
                    // Full and the overflow count cannot grow.
                    return Err(at(i + 3));
                }
            }
            _ => {}
        }
        i += l;
    }
    Ok(())
}

/// Milliseconds since midnight UT, as the Timestamp option carries them.
fn ms_since_midnight() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_millis() % 86_400_000) as u32
}

/// Update checked options of a packet being forwarded out of an interface
/// whose address is `out`; `ours` tells the gateway's own addresses (for
/// prespecified timestamps). Returns true when a byte changed (the caller
/// recomputes the header checksum).
pub fn forward(opts: &mut [u8], out: Ipv4Addr, ours: impl Fn(Ipv4Addr) -> bool) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        if t == OPT_EOL {
            break;
        }
        if t == OPT_NOP {
            i += 1;
            continue;
        }
        let Some(&l) = opts.get(i + 1) else { break };
        let l = l as usize;
        if l < 2 || i + l > opts.len() {
            break;
        }
        let o = &mut opts[i..i + l];
        match t {
            OPT_RR if l >= 3 => {
                let p = o[2] as usize;
                if p >= 4 && p + 3 <= l {
                    o[p - 1..p + 3].copy_from_slice(&out.octets());
                    o[2] += 4;
                    changed = true;
                }
            }
            OPT_TS if l >= 4 => {
                let p = o[2] as usize;
                let flag = o[3] & 0x0f;
                let w = ts_entry(flag).unwrap_or(usize::MAX);
                if p >= 5 && w != usize::MAX && p + w - 1 <= l {
                    let stamp = ms_since_midnight().to_be_bytes();
                    match flag {
                        TS_ONLY => {
                            o[p - 1..p + 3].copy_from_slice(&stamp);
                            o[2] += 4;
                            changed = true;
                        }
                        TS_ADDR => {
                            o[p - 1..p + 3].copy_from_slice(&out.octets());
                            o[p + 3..p + 7].copy_from_slice(&stamp);
                            o[2] += 8;
                            changed = true;
                        }
                        _ => {
                            let a = Ipv4Addr::new(o[p - 1], o[p], o[p + 1], o[p + 2]);
                            if ours(a) {
                                o[p + 3..p + 7].copy_from_slice(&stamp);
                                o[2] += 8;
                                changed = true;
                            }
                        }
                    }
                } else if p > l && o[3] >> 4 < 15 {
                    // Full: count the router that could not stamp.
                    o[3] += 0x10;
                    changed = true;
                }
            }
            _ => {}
        }
        i += l;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lists_point_at_the_fault() {
        // Option with no length byte.
        assert_eq!(check(&[OPT_RR]), Err(20));
        // Length past the end, length below 2.
        assert_eq!(check(&[OPT_NOP, OPT_RR, 9, 4, 0]), Err(22));
        assert_eq!(check(&[0x94, 1, 0, 0]), Err(21));
        // Record Route pointer below 4, or inside the last address.
        assert_eq!(check(&[OPT_RR, 7, 3, 0, 0, 0, 0, 0]), Err(22));
        assert_eq!(check(&[OPT_RR, 7, 5, 0, 0, 0, 0, 0]), Err(22));
        // Twice.
        assert_eq!(check(&[OPT_RR, 3, 4, OPT_RR, 3, 4, 0, 0]), Err(23));
        // Unknown timestamp flag; full with the overflow at 15.
        assert_eq!(check(&[OPT_TS, 4, 5, 2]), Err(23));
        assert_eq!(check(&[OPT_TS, 4, 5, 0xf0]), Err(23));
        // Good: a full record route, an empty timestamp, an unknown option.
        assert_eq!(
            check(&[OPT_RR, 3, 4, OPT_TS, 8, 5, 0, 0x94, 4, 0, 0, 0]),
            Ok(())
        );
        // Anything after the end of the list is ignored.
        assert_eq!(check(&[OPT_EOL, 0xff, 0xff, 0xff]), Ok(()));
    }

    #[test]
    fn record_route_fills_until_full() {
        let mut o = [OPT_RR, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let a = Ipv4Addr::new(10, 1, 0, 1);
        assert!(forward(&mut o, a, |_| false));
        assert_eq!(&o[..11], &[OPT_RR, 11, 8, 10, 1, 0, 1, 0, 0, 0, 0]);
        assert!(forward(&mut o, Ipv4Addr::new(10, 2, 0, 1), |_| false));
        assert_eq!(o[2], 12);
        assert_eq!(&o[7..11], &[10, 2, 0, 1]);
        assert!(!forward(&mut o, a, |_| false), "full: passes unchanged");
        assert_eq!(check(&o), Ok(()));
    }

    #[test]
    fn timestamps_are_stamped_or_overflow_counted() {
        let mut o = [OPT_TS, 12, 5, TS_ADDR, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(forward(&mut o, Ipv4Addr::new(10, 1, 0, 1), |_| false));
        assert_eq!((o[2], &o[4..8]), (13, &[10, 1, 0, 1][..]));
        assert!(forward(&mut o, Ipv4Addr::new(10, 1, 0, 1), |_| false));
        assert_eq!(o[3] >> 4, 1, "overflow counted");
        let mut p = [OPT_TS, 12, 5, TS_PRESPEC, 10, 9, 9, 9, 0, 0, 0, 0];
        assert!(!forward(&mut p, Ipv4Addr::new(10, 1, 0, 1), |_| false));
        assert!(forward(&mut p, Ipv4Addr::new(10, 1, 0, 1), |a| a
            == Ipv4Addr::new(10, 9, 9, 9)));
        assert_eq!(p[2], 13);
    }
}
