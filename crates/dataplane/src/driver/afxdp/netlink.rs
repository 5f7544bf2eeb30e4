//! Attaching and detaching an XDP program with one rtnetlink request
//! (`RTM_SETLINK` carrying a nested `IFLA_XDP`), written by hand: it is a
//! few dozen bytes, not worth a netlink crate.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::super::sys;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
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
            let b = &buf[..r as usize];
            let mut off = 0;
            while off + 16 <= b.len() {
                let mlen = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
                let ty = u16::from_ne_bytes(b[off + 4..off + 6].try_into().unwrap());
                let fl = u16::from_ne_bytes(b[off + 6..off + 8].try_into().unwrap());
                let seq = u32::from_ne_bytes(b[off + 8..off + 12].try_into().unwrap());
                if mlen < 16 || off + mlen > b.len() {
                    break;
                }
                if ty == NLMSG_ERROR && seq == self.seq && mlen >= 20 {
                    let code = i32::from_ne_bytes(b[off + 16..off + 20].try_into().unwrap());
                    if code == 0 {
                        return Ok(());
                    }
                    let message = if fl & NLM_F_ACK_TLVS != 0 {
                        // The TLVs follow nlmsgerr (error + the request's
                        // header, capped).
                        ext_ack_message(&b[off + 36..off + mlen])
                    } else {
                        None
                    };
                    return Err(NlError {
                        err: io::Error::from_raw_os_error(-code),
                        message,
                    });
                }
                off += (mlen + 3) & !3;
            }
        }
    }
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
