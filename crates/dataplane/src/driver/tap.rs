//! The TAP driver: a kernel network device whose frames come and go through
//! a file descriptor. It is weir's slow path, the kernel's mirror of a port
//! for control traffic.
//!
//! A TAP descriptor has no batch interface (one `read` or `write` moves one
//! frame), so the cost that matters is that of an idle TAP: every worker
//! polls every mirror queue on every round. Readiness is therefore watched
//! from one thread for all TAPs (`readiness`), and `rx_burst` on an idle
//! TAP is one atomic load, no syscall. A ready TAP costs one `read` per
//! frame plus one that finds it empty.
//!
//! Frames longer than a packet buffer are not cut: each read has a second,
//! scratch buffer behind the packet buffer, and a frame that reaches into it
//! is dropped and counted (`rx_oversize`).
//!
//! The device is created (not persistent) by `Tap::open` and disappears
//! when the queue is dropped.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::readiness::Readiness;
use super::sys;
use super::{DriverError, PortQueue, QueueStats};
use crate::buffer::{PktId, Pool, DATA_ROOM};

/// How the TAP device is set up.
#[derive(Debug, Clone)]
pub struct TapOptions {
    /// MAC address of the kernel side; the kernel picks one if None.
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// Bring the device up (the default).
    pub up: bool,
    /// Open one queue of a multi-queue TAP (IFF_MULTI_QUEUE): each worker
    /// opens the same name and gets its own queue.
    pub multi_queue: bool,
}

impl Default for TapOptions {
    fn default() -> Self {
        TapOptions {
            mac: None,
            mtu: None,
            up: true,
            multi_queue: false,
        }
    }
}

impl TapOptions {
    /// Options that bring the device up with the given MAC and MTU.
    pub fn up(mac: Option<[u8; 6]>, mtu: Option<u32>) -> TapOptions {
        TapOptions {
            mac,
            mtu,
            up: true,
            multi_queue: false,
        }
    }
}

/// Room behind a packet buffer in which a too-long frame shows itself.
const SCRATCH: usize = 65536;

pub struct Tap {
    // Dropped before the descriptor it watches.
    ready: Readiness,
    fd: OwnedFd,
    scratch: Box<[u8]>,
    ifname: String,
    stats: QueueStats,
}

impl Tap {
    /// Create TAP device `ifname` in the calling thread's network namespace.
    pub fn open(ifname: &str, opts: &TapOptions) -> Result<Tap, DriverError> {
        if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
            return Err(DriverError::InvalidOption {
                ifname: ifname.to_string(),
                what: "interface names have 1 to 15 bytes".into(),
            });
        }
        // SAFETY: a plain open(2) of a constant path.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(DriverError::sys(ifname, "open(/dev/net/tun)"));
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut ifr = sys::ifreq(ifname);
        let mq = if opts.multi_queue {
            libc::IFF_MULTI_QUEUE
        } else {
            0
        };
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | mq) as libc::c_short;
        sys::ioctl_ifreq(raw, libc::TUNSETIFF as libc::c_ulong, &mut ifr)
            .map_err(|e| DriverError::sys_err(ifname, "ioctl(TUNSETIFF)", e))?;
        // Configure through an ordinary socket of this namespace.
        let ctl = sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)
            .map_err(|e| DriverError::sys_err(ifname, "socket(AF_INET)", e))?;
        let c = ctl.as_raw_fd();
        if let Some(mac) = opts.mac {
            let mut ifr = sys::ifreq(ifname);
            // SAFETY: writing the hwaddr member of the union.
            unsafe {
                ifr.ifr_ifru.ifru_hwaddr.sa_family = libc::ARPHRD_ETHER;
                for (d, s) in ifr.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(mac) {
                    *d = s as libc::c_char;
                }
            }
            sys::ioctl_ifreq(c, libc::SIOCSIFHWADDR, &mut ifr)
                .map_err(|e| DriverError::sys_err(ifname, "ioctl(SIOCSIFHWADDR)", e))?;
        }
        if let Some(mtu) = opts.mtu {
            let mut ifr = sys::ifreq(ifname);
            ifr.ifr_ifru.ifru_mtu = mtu as libc::c_int;
            sys::ioctl_ifreq(c, libc::SIOCSIFMTU, &mut ifr)
                .map_err(|e| DriverError::sys_err(ifname, "ioctl(SIOCSIFMTU)", e))?;
        }
        if opts.up {
            let mut ifr = sys::ifreq(ifname);
            sys::ioctl_ifreq(c, libc::SIOCGIFFLAGS, &mut ifr)
                .map_err(|e| DriverError::sys_err(ifname, "ioctl(SIOCGIFFLAGS)", e))?;
            // SAFETY: the flags member was just filled in by the kernel.
            unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
            sys::ioctl_ifreq(c, libc::SIOCSIFFLAGS, &mut ifr)
                .map_err(|e| DriverError::sys_err(ifname, "ioctl(SIOCSIFFLAGS)", e))?;
        }
        Ok(Tap {
            ready: Readiness::watch(fd.as_raw_fd()),
            fd,
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
            ifname: ifname.to_string(),
            stats: QueueStats::default(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }
}

impl PortQueue for Tap {
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [PktId]) -> usize {
        if !self.ready.take() {
            return 0;
        }
        let mut n = 0;
        let mut empty = false;
        while n < out.len() {
            let Some(id) = pool.alloc() else { break };
            let buf = pool.get_mut(id);
            let room = buf.room_mut();
            let cap = room.len().min(DATA_ROOM);
            let mut iov = [
                libc::iovec {
                    iov_base: room.as_mut_ptr() as *mut libc::c_void,
                    iov_len: cap,
                },
                libc::iovec {
                    iov_base: self.scratch.as_mut_ptr() as *mut libc::c_void,
                    iov_len: self.scratch.len(),
                },
            ];
            // SAFETY: reading into the buffer's writable room and our
            // scratch space, both live for the call.
            let r = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_mut_ptr(), 2) };
            if r <= 0 {
                pool.free(id);
                empty = true;
                break;
            }
            let r = r as usize;
            if r > cap {
                self.stats.rx_oversize += 1;
                self.stats.rx_dropped += 1;
                pool.free(id);
                continue;
            }
            buf.set_len(r);
            self.stats.rx_bytes += r as u64;
            out[n] = id;
            n += 1;
        }
        if !empty {
            // Stopped with frames possibly left: look again next poll.
            self.ready.keep();
        }
        self.stats.rx_packets += n as u64;
        n
    }

    fn tx_burst(&mut self, pool: &mut Pool, pkts: &[PktId]) -> usize {
        let mut sent = 0;
        for &id in pkts {
            let d = pool.get(id).data();
            // SAFETY: writing from a live buffer.
            let r = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    d.as_ptr() as *const libc::c_void,
                    d.len(),
                )
            };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if sys::transient(&e) {
                    self.stats.tx_ring_full += 1;
                }
                // A down device or a full queue: drop the rest too.
                break;
            }
            sent += 1;
            self.stats.tx_bytes += d.len() as u64;
        }
        self.stats.tx_packets += sent as u64;
        self.stats.tx_dropped += (pkts.len() - sent) as u64;
        pool.free_all(pkts);
        sent
    }

    fn kind(&self) -> &'static str {
        "tap"
    }

    fn fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap").field("ifname", &self.ifname).finish()
    }
}
