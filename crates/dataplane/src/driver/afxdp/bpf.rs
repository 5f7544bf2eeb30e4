//! weir's XDP program, loaded at run time through `bpf(2)`: an XSKMAP and
//! five hand-assembled instructions that redirect each frame to the AF_XDP
//! socket registered for its rx queue, or pass it to the kernel stack when
//! there is none:
//!
//! ```text
//! r2 = *(u32 *)(r1 + 16)      ; xdp_md->rx_queue_index
//! r1 = map_fd ll              ; ld_imm64, BPF_PSEUDO_MAP_FD
//! r3 = XDP_PASS               ; flags: action when the slot is empty
//! call bpf_redirect_map
//! exit
//! ```
//!
//! One attachment per interface (and namespace) is shared by every queue
//! weir opens on it; the last one dropped detaches the program. The
//! program is attached through a BPF link (`BPF_LINK_CREATE`, kernel 5.9
//! and later), which the kernel detaches when its last file descriptor
//! closes: a weir killed with SIGKILL leaves no program behind, and a
//! restarted weir can attach again. Older kernels get the netlink attach
//! (`IFLA_XDP`), detached on drop.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use super::netlink::{self, Rtnl};
use super::XdpMode;
use crate::driver::DriverError;

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_XDP: u32 = 37;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;

/// Queues an interface may have AF_XDP sockets on.
pub const MAX_QUEUES: u32 = 256;

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Insn {
    code: u8,
    /// dst register in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

pub(crate) const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

fn program(map_fd: i32) -> [Insn; 6] {
    [
        // BPF_LDX | BPF_MEM | BPF_W
        insn(0x61, 2, 1, 16, 0),
        // BPF_LD | BPF_IMM | BPF_DW, two slots
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // BPF_ALU64 | BPF_MOV | BPF_K
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // BPF_JMP | BPF_CALL
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        // BPF_JMP | BPF_EXIT
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// `union bpf_attr`, as bytes: each command fills in its own fields.
#[repr(C, align(8))]
pub(crate) struct Attr([u8; 128]);

impl Attr {
    pub(crate) fn new() -> Attr {
        Attr([0; 128])
    }
    pub(crate) fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    pub(crate) fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, off: usize, v: &[u8]) -> &mut Self {
        self.0[off..off + v.len()].copy_from_slice(v);
        self
    }
}

pub(crate) fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: attr is a zero-padded bpf_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(crate) fn owned(fd: i64) -> OwnedFd {
    // SAFETY: a fresh fd returned by bpf(2).
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// An XDP program with its XSKMAP, attached to one interface.
pub struct Attachment {
    ifname: String,
    ifindex: u32,
    key: (u64, u64, u32),
    pub mode: XdpMode,
    map: OwnedFd,
    _prog: OwnedFd,
    hook: Hook,
}

/// How the program is attached.
enum Hook {
    /// A BPF link: closing it detaches the program.
    Link { _fd: OwnedFd },
    /// The netlink attach of kernels without XDP links: detached on drop.
    Netlink { rtnl: Mutex<Rtnl>, flags: u32 },
}

impl Attachment {
    /// Put socket `xsk` in the map slot of `queue`.
    pub fn insert(&self, queue: u32, xsk: i32) -> io::Result<()> {
        let key = queue;
        let val = xsk as u32;
        let mut a = Attr::new();
        a.u32(0, self.map.as_raw_fd() as u32)
            .u64(8, &key as *const u32 as u64)
            .u64(16, &val as *const u32 as u64)
            .u64(24, 0);
        bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
    }

    pub fn remove(&self, queue: u32) {
        let key = queue;
        let mut a = Attr::new();
        a.u32(0, self.map.as_raw_fd() as u32)
            .u64(8, &key as *const u32 as u64);
        let _ = bpf(BPF_MAP_DELETE_ELEM, &mut a);
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Hook::Netlink { rtnl, flags } = &self.hook {
            let flags = flags & !netlink::XDP_FLAGS_UPDATE_IF_NOEXIST;
            if let Ok(mut nl) = rtnl.lock() {
                let _ = nl.set_xdp(self.ifindex, -1, flags);
            }
        }
    }
}

/// The network namespace of the calling thread, as (device, inode).
pub(crate) fn netns_id() -> (u64, u64) {
    // SAFETY: stat into a local struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(c"/proc/thread-self/ns/net".as_ptr(), &mut st) == 0 {
            (st.st_dev, st.st_ino)
        } else {
            (0, 0)
        }
    }
}

type Registry = Mutex<Vec<((u64, u64, u32), Weak<Attachment>)>>;
static ATTACHED: Registry = Mutex::new(Vec::new());

/// The attachment for `ifindex` in the calling thread's namespace: the
/// existing one, or a new program attached in `mode`.
pub fn attach(ifname: &str, ifindex: u32, mode: XdpMode) -> Result<Arc<Attachment>, DriverError> {
    let (dev, ino) = netns_id();
    let key = (dev, ino, ifindex);
    let mut reg = ATTACHED.lock().unwrap_or_else(|p| p.into_inner());
    reg.retain(|(_, w)| w.strong_count() > 0);
    if let Some(a) = reg
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        if mode != XdpMode::Auto && a.mode != mode {
            return Err(DriverError::InvalidOption {
                ifname: ifname.to_string(),
                what: format!("XDP already attached in {:?} mode", a.mode),
            });
        }
        return Ok(a);
    }
    let a = Arc::new(load_and_attach(ifname, ifindex, key, mode)?);
    reg.push((key, Arc::downgrade(&a)));
    Ok(a)
}

fn load_and_attach(
    ifname: &str,
    ifindex: u32,
    key: (u64, u64, u32),
    mode: XdpMode,
) -> Result<Attachment, DriverError> {
    let sys = |op| move |e| DriverError::sys_err(ifname, op, e);
    let mut a = Attr::new();
    a.u32(0, BPF_MAP_TYPE_XSKMAP)
        .u32(4, 4)
        .u32(8, 4)
        .u32(12, MAX_QUEUES)
        .bytes(28, b"weir_xsks");
    let map = owned(bpf(BPF_MAP_CREATE, &mut a).map_err(sys("bpf(BPF_MAP_CREATE xskmap)"))?);

    let insns = program(map.as_raw_fd());
    let license = c"Dual MIT/GPL";
    let mut log = vec![0u8; 0];
    let prog = loop {
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .bytes(48, b"weir_xsk")
            .u32(68, BPF_XDP);
        if !log.is_empty() {
            a.u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64);
        }
        match bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => break owned(fd),
            // Retry once with a verifier log to explain the refusal.
            Err(e) if log.is_empty() && e.raw_os_error() != Some(libc::EPERM) => {
                log = vec![0u8; 1 << 16];
            }
            Err(source) => {
                let end = log.iter().position(|&c| c == 0).unwrap_or(log.len());
                return Err(DriverError::BpfRejected {
                    ifname: ifname.to_string(),
                    source,
                    log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
                });
            }
        }
    };

    let (mode, hook) = hook(ifname, ifindex, prog.as_raw_fd(), mode)?;
    Ok(Attachment {
        ifname: ifname.to_string(),
        ifindex,
        key,
        mode,
        map,
        _prog: prog,
        hook,
    })
}

/// Attaches program `prog_fd` to `ifindex` in `mode` (or the first mode
/// that works, for `Auto`): through a BPF link where the kernel has them.
fn hook(
    ifname: &str,
    ifindex: u32,
    prog_fd: i32,
    mode: XdpMode,
) -> Result<(XdpMode, Hook), DriverError> {
    let sys = |op| move |e| DriverError::sys_err(ifname, op, e);
    let tries: &[(XdpMode, u32)] = match mode {
        XdpMode::Native => &[(XdpMode::Native, netlink::XDP_FLAGS_DRV_MODE)],
        XdpMode::Skb => &[(XdpMode::Skb, netlink::XDP_FLAGS_SKB_MODE)],
        XdpMode::Auto => &[
            (XdpMode::Native, netlink::XDP_FLAGS_DRV_MODE),
            (XdpMode::Skb, netlink::XDP_FLAGS_SKB_MODE),
        ],
    };
    let busy = || DriverError::XdpBusy {
        ifname: ifname.to_string(),
    };
    let mut last = None;
    let mut links = true;
    for &(m, f) in tries {
        let mut a = Attr::new();
        a.u32(0, prog_fd as u32)
            .u32(4, ifindex)
            .u32(8, BPF_XDP)
            .u32(12, f);
        match bpf(BPF_LINK_CREATE, &mut a) {
            Ok(fd) => return Ok((m, Hook::Link { _fd: owned(fd) })),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Err(busy()),
            // No XDP links on this kernel: attach through netlink below.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL)) => {
                links = false;
                break;
            }
            Err(e) => {
                last = Some((
                    m,
                    netlink::NlError {
                        err: e,
                        message: None,
                    },
                ))
            }
        }
    }
    if !links {
        let mut rtnl = Rtnl::open().map_err(sys("socket(NETLINK_ROUTE)"))?;
        for &(m, f) in tries {
            let flags = f | netlink::XDP_FLAGS_UPDATE_IF_NOEXIST;
            match rtnl.set_xdp(ifindex, prog_fd, flags) {
                Ok(()) => {
                    let rtnl = Mutex::new(rtnl);
                    return Ok((m, Hook::Netlink { rtnl, flags }));
                }
                Err(e) if e.err.raw_os_error() == Some(libc::EBUSY) => return Err(busy()),
                Err(e) => last = Some((m, e)),
            }
        }
    }
    let (m, e) = last.expect("at least one mode tried");
    Err(DriverError::XdpAttach {
        ifname: ifname.to_string(),
        mode: if m == XdpMode::Native {
            "native"
        } else {
            "skb"
        },
        source: e.err,
        message: e.message,
    })
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("ifname", &self.ifname)
            .field("ifindex", &self.ifindex)
            .field("key", &self.key)
            .field("mode", &self.mode)
            .finish()
    }
}
