//! Keeping the kernel stack off an interface weir drives.
//!
//! A packet socket taps frames in `__netif_receive_skb_core` before the
//! device's tc ingress hook, and an AF_XDP socket takes them even earlier
//! (XDP), so a program on the tcx ingress hook that drops every frame
//! leaves weir's view of the wire whole while the kernel of the namespace
//! no longer receives anything there: no second ARP reply, echo reply or
//! ICMP error beside weir's, no ARP answers for its other addresses. The
//! kernel reaches the wire only through the port's kernel mirror (TAP).
//!
//! The same program on the tcx egress hook keeps the kernel from sending
//! on the interface by itself (ARP, ND, DAD, forwarded packets): that hook
//! sits in `__dev_queue_xmit`, which weir's own transmissions skip (AF_XDP
//! and AF_PACKET with `PACKET_QDISC_BYPASS` go through
//! `__dev_direct_xmit`).
//!
//! The program (`r0 = TCX_DROP; exit`) is loaded with `bpf(2)` and attached
//! through two bpf links, placed first on each hook. A link lives as long
//! as its file descriptor: dropping the guard, a clean exit and a crash
//! alike detach it, so nothing is left behind for a restarted weir to
//! find, and nothing stale keeps an interface dark after weir is gone.
//!
//! One guard per interface (and namespace) is shared by every queue weir
//! opens on it; the last queue dropped gives the interface back.

use std::sync::{Arc, Mutex, Weak};

use super::afxdp::bpf::{bpf, insn, netns_id, owned, Attr};
use super::DriverError;
use std::os::fd::{AsRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_TCX_INGRESS: u32 = 46;
const BPF_TCX_EGRESS: u32 = 47;
/// Attach before every program already on the hook.
const BPF_F_BEFORE: u32 = 1 << 3;
const TCX_DROP: i32 = 2;

/// Drop programs attached to an interface's tcx ingress (and egress) hooks.
pub struct KernelGuard {
    ifname: String,
    key: (u64, u64, u32),
    egress: bool,
    _ingress: OwnedFd,
    _egress: Option<OwnedFd>,
    _prog: OwnedFd,
}

impl KernelGuard {
    /// Whether the kernel's own transmissions are dropped too.
    pub fn egress(&self) -> bool {
        self.egress
    }
}

impl std::fmt::Debug for KernelGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelGuard")
            .field("ifname", &self.ifname)
            .field("key", &self.key)
            .field("egress", &self.egress)
            .finish()
    }
}

type Registry = Mutex<Vec<((u64, u64, u32), Weak<KernelGuard>)>>;
static GUARDS: Registry = Mutex::new(Vec::new());

/// The guard of `ifindex` in the calling thread's namespace: the existing
/// one, or a new one. `egress`: also drop what the kernel sends (only for
/// queues whose transmissions bypass the qdisc layer).
pub fn acquire(ifname: &str, ifindex: u32, egress: bool) -> Result<Arc<KernelGuard>, DriverError> {
    let (dev, ino) = netns_id();
    let key = (dev, ino, ifindex);
    let mut reg = GUARDS.lock().unwrap_or_else(|p| p.into_inner());
    reg.retain(|(_, w)| w.strong_count() > 0);
    if let Some(g) = reg
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        if g.egress && !egress {
            return Err(DriverError::InvalidOption {
                ifname: ifname.to_string(),
                what: "the interface's egress hook drops what goes through the qdisc layer: \
                       open its queues with qdisc_bypass"
                    .into(),
            });
        }
        return Ok(g);
    }
    let g = Arc::new(attach(ifname, ifindex, key, egress)?);
    reg.push((key, Arc::downgrade(&g)));
    Ok(g)
}

fn attach(
    ifname: &str,
    ifindex: u32,
    key: (u64, u64, u32),
    egress: bool,
) -> Result<KernelGuard, DriverError> {
    let sys = |op| move |e| DriverError::sys_err(ifname, op, e);
    // r0 = TCX_DROP; exit
    let insns = [
        // BPF_ALU64 | BPF_MOV | BPF_K
        insn(0xb7, 0, 0, 0, TCX_DROP),
        // BPF_JMP | BPF_EXIT
        insn(0x95, 0, 0, 0, 0),
    ];
    let license = c"Dual MIT/GPL";
    let mut a = Attr::new();
    a.u32(0, BPF_PROG_TYPE_SCHED_CLS)
        .u32(4, insns.len() as u32)
        .u64(8, insns.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .bytes(48, b"weir_guard");
    let prog = owned(bpf(BPF_PROG_LOAD, &mut a).map_err(sys("bpf(BPF_PROG_LOAD tcx drop)"))?);
    let link = |ty: u32, op| -> Result<OwnedFd, DriverError> {
        let mut a = Attr::new();
        a.u32(0, prog.as_raw_fd() as u32)
            .u32(4, ifindex)
            .u32(8, ty)
            .u32(12, BPF_F_BEFORE);
        Ok(owned(bpf(BPF_LINK_CREATE, &mut a).map_err(sys(op))?))
    };
    let ingress = link(BPF_TCX_INGRESS, "bpf(BPF_LINK_CREATE tcx ingress)")?;
    let egress_link = if egress {
        Some(link(BPF_TCX_EGRESS, "bpf(BPF_LINK_CREATE tcx egress)")?)
    } else {
        None
    };
    Ok(KernelGuard {
        ifname: ifname.to_string(),
        key,
        egress,
        _ingress: ingress,
        _egress: egress_link,
        _prog: prog,
    })
}
