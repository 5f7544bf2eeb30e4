//! Attaching and detaching an XDP program with one rtnetlink request
//! (`RTM_SETLINK` carrying a nested `IFLA_XDP`), written by hand: it is a
//! few dozen bytes, not worth a netlink crate.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::super::sys;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLA_F_NESTED: u16 = 0x8000;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NLMSGERR_ATTR_MSG: u16 = 1;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;

pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
pub const XDP_FLAGS_SKB_MODE: u32 = 2;
pub const XDP_FLAGS_DRV_MODE: u32 = 4;

/// A route netlink socket. It stays in the namespace it was opened in, so
/// the program can be detached from any thread later.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

/// A refused request: errno and the kernel's extended ack message.
pub struct NlError {
    pub err: io::Error,
    pub message: Option<String>,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        let fd = sys::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
        // Best effort: ask for error strings, without the request echoed.
        let _ = sys::setsockopt(fd.as_raw_fd(), libc::SOL_NETLINK, NETLINK_EXT_ACK, &1i32);
        let _ = sys::setsockopt(fd.as_raw_fd(), libc::SOL_NETLINK, NETLINK_CAP_ACK, &1i32);
        Ok(Rtnl { fd, seq: 1 })
    }

    /// Attach program `prog_fd` to `ifindex` (or detach with -1).
    pub fn set_xdp(&mut self, ifindex: u32, prog_fd: i32, flags: u32) -> Result<(), NlError> {
        self.seq += 1;
        let mut m = Vec::with_capacity(64);
        // nlmsghdr, length patched below.
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&libc::RTM_SETLINK.to_ne_bytes());
        m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // ifinfomsg: family, pad, type, index, flags, change.
        m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // IFLA_XDP { IFLA_XDP_FD, IFLA_XDP_FLAGS }.
        m.extend_from_slice(&(4u16 + 8 + 8).to_ne_bytes());
        m.extend_from_slice(&(IFLA_XDP | NLA_F_NESTED).to_ne_bytes());
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&IFLA_XDP_FD.to_ne_bytes());
        m.extend_from_slice(&prog_fd.to_ne_bytes());
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&IFLA_XDP_FLAGS.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        let fd = self.fd.as_raw_fd();
        let io_err = |err| NlError { err, message: None };
        // SAFETY: sending our own buffer to the kernel (pid 0 by default).
        let r = unsafe { libc::send(fd, m.as_ptr() as *const libc::c_void, m.len(), 0) };
        if r < 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: receiving into a local buffer.
            let r = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if r < 0 {
                return Err(io_err(io::Error::last_os_error()));
            }
            match parse_ack(&buf[..r as usize], self.seq) {
                Ack::Pending => continue,
                Ack::Ok => return Ok(()),
                Ack::Err { errno, message } => {
                    return Err(NlError {
                        err: io::Error::from_raw_os_error(errno),
                        message,
                    })
                }
            }
        }
    }
}

/// What one datagram of replies says about request `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Nothing about it (yet): read on.
    Pending,
    Ok,
    /// Refused with `errno` and the kernel's extended ack message, if any.
    Err {
        errno: i32,
        message: Option<String>,
    },
}

/// Find the acknowledgement of request `seq` among the netlink messages in
/// `b`, as the kernel sent them. Never panics: a truncated or malformed
/// message ends the walk.
pub fn parse_ack(b: &[u8], seq: u32) -> Ack {
    let u16_at = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut off = 0;
    while off + 16 <= b.len() {
        let mlen = u32_at(off) as usize;
        let ty = u16_at(off + 4);
        let fl = u16_at(off + 6);
        let mseq = u32_at(off + 8);
        if mlen < 16 || mlen > b.len() - off {
            break;
        }
        if ty == NLMSG_ERROR && mseq == seq && mlen >= 20 {
            let code = u32_at(off + 16) as i32;
            if code == 0 {
                return Ack::Ok;
            }
            let msg = &b[off..off + mlen];
            let message = if fl & NLM_F_ACK_TLVS != 0 {
                // The TLVs follow nlmsgerr: the error, then the request's
                // header (and, unless capped, the rest of the request).
                let echoed = if fl & NLM_F_CAPPED != 0 || mlen < 36 {
                    16
                } else {
                    (u32_at(off + 20) as usize).max(16)
                };
                msg.get(20usize.saturating_add((echoed + 3) & !3)..)
                    .and_then(ext_ack_message)
            } else {
                None
            };
            return Ack::Err {
                errno: code.checked_neg().filter(|e| *e > 0).unwrap_or(libc::EIO),
                message,
            };
        }
        off += ((mlen + 3) & !3).min(b.len() - off);
    }
    Ack::Pending
}

fn ext_ack_message(mut t: &[u8]) -> Option<String> {
    while t.len() >= 4 {
        let len = u16::from_ne_bytes([t[0], t[1]]) as usize;
        let ty = u16::from_ne_bytes([t[2], t[3]]) & 0x3fff;
        if len < 4 || len > t.len() {
            return None;
        }
        if ty == NLMSGERR_ATTR_MSG {
            let s = &t[4..len];
            let s = s.split(|&c| c == 0).next().unwrap_or(s);
            return Some(String::from_utf8_lossy(s).into_owned());
        }
        t = &t[((len + 3) & !3).min(t.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An NLMSG_ERROR message for `seq` with `code`, the request's header
    /// echoed (capped) and, if given, an extended ack message.
    fn error_msg(seq: u32, code: i32, text: Option<&str>) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        let fl = NLM_F_CAPPED | if text.is_some() { NLM_F_ACK_TLVS } else { 0 };
        m.extend_from_slice(&fl.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&code.to_ne_bytes());
        // The request's header.
        m.extend_from_slice(&40u32.to_ne_bytes());
        m.extend_from_slice(&libc::RTM_SETLINK.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        if let Some(t) = text {
            let len = 4 + t.len() + 1;
            m.extend_from_slice(&(len as u16).to_ne_bytes());
            m.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            m.extend_from_slice(t.as_bytes());
            m.push(0);
            while m.len() % 4 != 0 {
                m.push(0);
            }
        }
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn reads_acks_errors_and_messages() {
        assert_eq!(parse_ack(&error_msg(7, 0, None), 7), Ack::Ok);
        assert_eq!(parse_ack(&error_msg(7, 0, None), 8), Ack::Pending);
        assert_eq!(
            parse_ack(
                &error_msg(7, -libc::EBUSY, Some("XDP program already attached")),
                7
            ),
            Ack::Err {
                errno: libc::EBUSY,
                message: Some("XDP program already attached".into())
            }
        );
        // An uncapped echo: the TLVs come after the whole request.
        let mut m = error_msg(3, -libc::EINVAL, None);
        m.truncate(36);
        m[6..8].copy_from_slice(&NLM_F_ACK_TLVS.to_ne_bytes());
        m[20..24].copy_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&[0xaa; 4]);
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        m.extend_from_slice(b"bad\0");
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        assert_eq!(
            parse_ack(&m, 3),
            Ack::Err {
                errno: libc::EINVAL,
                message: Some("bad".into())
            }
        );
    }

    /// Headers that claim the ext-ack flag with no room for the echoed
    /// request once made the parser slice out of bounds.
    #[test]
    fn short_error_with_ack_tlvs_is_an_error_not_a_panic() {
        let mut m = error_msg(1, -libc::EPERM, None);
        m.truncate(20);
        m[..4].copy_from_slice(&20u32.to_ne_bytes());
        m[6..8].copy_from_slice(&NLM_F_ACK_TLVS.to_ne_bytes());
        assert_eq!(
            parse_ack(&m, 1),
            Ack::Err {
                errno: libc::EPERM,
                message: None
            }
        );
        // A positive or minimal error code still reads as a refusal.
        let m = error_msg(1, i32::MIN, None);
        assert_eq!(
            parse_ack(&m, 1),
            Ack::Err {
                errno: libc::EIO,
                message: None
            }
        );
    }

    /// One message header with fields drawn around the interesting values.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![
                Just(None),
                (0u32..80).prop_map(Some),
                any::<u32>().prop_map(Some)
            ],
            prop_oneof![Just(NLMSG_ERROR), Just(3u16), any::<u16>()],
            prop_oneof![
                Just(NLM_F_ACK_TLVS),
                Just(NLM_F_ACK_TLVS | NLM_F_CAPPED),
                any::<u16>()
            ],
            0u32..3,
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(len, ty, fl, seq, body)| {
                let mut m = Vec::new();
                let len = len.unwrap_or(16 + body.len() as u32);
                m.extend_from_slice(&len.to_ne_bytes());
                m.extend_from_slice(&ty.to_ne_bytes());
                m.extend_from_slice(&fl.to_ne_bytes());
                m.extend_from_slice(&seq.to_ne_bytes());
                m.extend_from_slice(&0u32.to_ne_bytes());
                m.extend_from_slice(&body);
                m
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300), seq in 0u32..3) {
            let _ = parse_ack(&b, seq);
        }

        #[test]
        fn arbitrary_message_sequences_never_panic(
            msgs in proptest::collection::vec(message(), 0..6),
            cut in any::<prop::sample::Index>(),
            seq in 0u32..3,
        ) {
            let b: Vec<u8> = msgs.concat();
            let _ = parse_ack(&b, seq);
            // And every truncation of it, as a short read would leave it.
            let n = if b.is_empty() { 0 } else { cut.index(b.len() + 1) };
            let _ = parse_ack(&b[..n], seq);
        }

        #[test]
        fn well_formed_errors_read_back(
            junk in proptest::collection::vec(message(), 0..3),
            errno in 1i32..4096,
            text in proptest::option::of("[ -~]{0,80}"),
        ) {
            // Junk for other requests first (seq 100 is never drawn).
            let mut b: Vec<u8> = junk.iter().filter(|m| {
                let len = u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize;
                len == m.len() && len >= 16
            }).flat_map(|m| {
                let mut m = m.clone();
                m[8..12].copy_from_slice(&99u32.to_ne_bytes());
                while m.len() % 4 != 0 { m.push(0); }
                let len = m.len() as u32;
                m[..4].copy_from_slice(&len.to_ne_bytes());
                m
            }).collect();
            b.extend(error_msg(100, -errno, text.as_deref()));
            prop_assert_eq!(parse_ack(&b, 100), Ack::Err { errno, message: text });
        }
    }
}
