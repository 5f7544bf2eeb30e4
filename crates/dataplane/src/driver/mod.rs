//! Drivers: how frames get in and out of a worker. One trait; a port queue
//! belongs to exactly one worker, so implementations need no locking.

pub mod afpacket;
pub mod afxdp;
pub mod guard;
pub mod memory;
mod readiness;
mod sys;
pub mod tap;

use std::os::fd::{AsRawFd, RawFd};

use crate::buffer::{PktId, Pool};

pub use afpacket::{AfPacket, AfPacketOptions};
pub use afxdp::{AfXdp, AfXdpOptions, XdpMode};
pub use tap::{Tap, TapOptions};

pub trait PortQueue: Send {
    /// Receive up to `out.len()` frames into buffers taken from `pool`,
    /// writing their ids to `out`; returns how many.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [PktId]) -> usize;

    /// Transmit the frames in `pkts` and return every buffer to `pool`
    /// (sent or not). Returns how many were sent.
    fn tx_burst(&mut self, pool: &mut Pool, pkts: &[PktId]) -> usize;

    /// A short name for logs, e.g. "memory" or "af_xdp".
    fn kind(&self) -> &'static str;

    /// A descriptor that becomes readable when frames wait, for a worker to
    /// `poll(2)` when idle. None: the queue must be polled.
    fn fd(&self) -> Option<RawFd> {
        None
    }

    /// Counters since the queue was opened.
    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

/// Per-queue counters. Drivers count what they see; `rx_dropped` adds what
/// the kernel reports it dropped for this queue (ring full) where it can.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames lost on receive: the kernel ring was full, or (counted by the
    /// driver) a frame was too long or malformed.
    pub rx_dropped: u64,
    /// Of `rx_dropped`: frames longer than a packet buffer holds
    /// (`buffer::DATA_ROOM`), dropped whole rather than delivered cut.
    pub rx_oversize: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames given to `tx_burst` that were not sent.
    pub tx_dropped: u64,
    /// Times `tx_burst` found the transmit ring or queue full.
    pub tx_ring_full: u64,
    /// Syscalls made only to wake the kernel (AF_XDP need-wakeup kicks).
    pub wakeups: u64,
}

/// What failed while opening or running a driver, naming the interface and
/// the operation (usually a syscall) that failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{ifname}: {op}: {source}")]
    Sys {
        ifname: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{ifname}: no such interface")]
    NoSuchInterface { ifname: String },
    #[error("{ifname}: the kernel rejected the XDP program: {source}; verifier log: {log}")]
    BpfRejected {
        ifname: String,
        #[source]
        source: std::io::Error,
        log: String,
    },
    #[error("{ifname}: attaching the XDP program ({mode}) failed: {source}{}", ext_ack_suffix(.message))]
    XdpAttach {
        ifname: String,
        mode: &'static str,
        #[source]
        source: std::io::Error,
        /// The kernel's extended ack message, if any.
        message: Option<String>,
    },
    #[error("{ifname}: another XDP program is already attached")]
    XdpBusy { ifname: String },
    #[error("{ifname}: invalid option: {what}")]
    InvalidOption { ifname: String, what: String },
    #[error("network namespace {name}: {op}: {source}")]
    Netns {
        name: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown driver {0:?} (expected afxdp, afpacket, tap, memory or auto)")]
    UnknownKind(String),
}

fn ext_ack_suffix(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
}

impl DriverError {
    pub(crate) fn sys(ifname: &str, op: &'static str) -> DriverError {
        Self::sys_err(ifname, op, std::io::Error::last_os_error())
    }

    pub(crate) fn sys_err(ifname: &str, op: &'static str, source: std::io::Error) -> DriverError {
        DriverError::Sys {
            ifname: ifname.to_string(),
            op,
            source,
        }
    }

    /// The errno behind the error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DriverError::Sys { source, .. }
            | DriverError::BpfRejected { source, .. }
            | DriverError::XdpAttach { source, .. }
            | DriverError::Netns { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Which driver to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverKind {
    AfXdp,
    AfPacket,
    Tap,
    Memory,
    /// AF_XDP, falling back to AF_PACKET when AF_XDP is refused.
    Auto,
}

impl std::str::FromStr for DriverKind {
    type Err = DriverError;

    fn from_str(s: &str) -> Result<DriverKind, DriverError> {
        Ok(match s {
            "afxdp" | "af_xdp" | "xdp" => DriverKind::AfXdp,
            "afpacket" | "af_packet" | "packet" => DriverKind::AfPacket,
            "tap" => DriverKind::Tap,
            "memory" => DriverKind::Memory,
            "auto" => DriverKind::Auto,
            _ => return Err(DriverError::UnknownKind(s.to_string())),
        })
    }
}

impl std::fmt::Display for DriverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DriverKind::AfXdp => "afxdp",
            DriverKind::AfPacket => "afpacket",
            DriverKind::Tap => "tap",
            DriverKind::Memory => "memory",
            DriverKind::Auto => "auto",
        })
    }
}

/// Options of every driver; `open` uses the part for the kind it opens.
#[derive(Debug, Clone, Default)]
pub struct DriverOptions {
    pub afpacket: AfPacketOptions,
    pub afxdp: AfXdpOptions,
    pub tap: TapOptions,
}

/// What `open` returns: the queue, the driver really opened, and why it is
/// not the one asked for (`auto` falling back), if it is not.
pub type Opened = (Box<dyn PortQueue>, DriverKind, Option<String>);

/// Open queue `queue` of interface `ifname` with driver `kind`, in the
/// calling thread's network namespace (see `in_netns`).
///
/// - `afxdp`: an AF_XDP socket on rx queue `queue`.
/// - `afpacket`: an AF_PACKET socket on the whole interface; several queues
///   share it through `opts.afpacket.fanout_group` (the queue index is not
///   used otherwise).
/// - `tap`: creates the TAP device `ifname` (gone when the queue is dropped).
/// - `memory`: queue `queue` of the memory wire `ifname` (see `memory::wire`).
/// - `auto`: `afxdp`, or `afpacket` with the reason when AF_XDP is refused.
pub fn open(
    kind: DriverKind,
    ifname: &str,
    queue: u32,
    opts: &DriverOptions,
) -> Result<Opened, DriverError> {
    match kind {
        DriverKind::AfXdp => Ok((
            Box::new(AfXdp::open(ifname, queue, &opts.afxdp)?),
            kind,
            None,
        )),
        DriverKind::AfPacket => Ok((
            Box::new(AfPacket::open(ifname, &opts.afpacket)?),
            kind,
            None,
        )),
        DriverKind::Tap => Ok((Box::new(Tap::open(ifname, &opts.tap)?), kind, None)),
        DriverKind::Memory => Ok((
            Box::new(memory::MemoryQueue::attach(ifname, queue)),
            kind,
            None,
        )),
        DriverKind::Auto => match AfXdp::open(ifname, queue, &opts.afxdp) {
            Ok(q) => Ok((Box::new(q), DriverKind::AfXdp, None)),
            Err(e @ DriverError::NoSuchInterface { .. }) => Err(e),
            Err(e) => {
                let q = AfPacket::open(ifname, &opts.afpacket)?;
                Ok((
                    Box::new(q),
                    DriverKind::AfPacket,
                    Some(format!("AF_XDP unavailable: {e}")),
                ))
            }
        },
    }
}

/// Run `f` on a fresh thread switched into the network namespace `name`
/// (as made by `ip netns add`, under /var/run/netns) and return its result.
/// Sockets and devices opened by `f` stay in that namespace afterwards, so
/// this is how a driver is opened for an interface in another namespace.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DriverError> {
    let path = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/var/run/netns/{name}")
    };
    let ns = std::fs::File::open(&path).map_err(|source| DriverError::Netns {
        name: name.to_string(),
        op: "open",
        source,
    })?;
    let name2 = name.to_string();
    std::thread::spawn(move || {
        // SAFETY: setns on this (fresh, private) thread only.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(DriverError::Netns {
                name: name2,
                op: "setns",
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(f())
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
