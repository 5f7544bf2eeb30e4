//! The AF_XDP driver: one `AF_XDP` socket per (interface, rx queue).
//!
//! Setup: a UMEM (anonymous memory cut into fixed frames) is registered with
//! the socket; the fill, completion, rx and tx rings are mapped at the
//! offsets `XDP_MMAP_OFFSETS` reports; the socket is bound to the queue in
//! copy mode (`XDP_COPY`, or `XDP_ZEROCOPY` when asked and the driver
//! allows it) with `XDP_USE_NEED_WAKEUP`. weir then attaches its own XDP
//! program (see `bpf`: an XSKMAP plus five instructions, loaded with
//! `bpf(2)`, attached with one rtnetlink request) and puts the socket in the
//! map at its queue index. Dropping the last queue of an interface detaches
//! the program.
//!
//! UMEM frames are split once: the first half only ever circulates between
//! the fill ring, the rx ring and `rx_burst` (which copies each frame into a
//! pool buffer and gives the frame straight back to the fill ring), the
//! second half between a free list, the tx ring and the completion ring. So
//! the fill ring always has room, and no frame is ever lost track of.
//!
//! Syscalls: none per received burst unless the kernel asks for a wakeup
//! on the fill ring; one `sendto` per transmitted burst in zero-copy mode.
//! In copy mode the kernel transmits at most 32 frames per `sendto`
//! (`TX_BATCH_SIZE`), so a burst of N frames costs ceil(N / 32) kicks.
//!
//! ## veth, on this kernel (6.18)
//!
//! Both native (`XDP_FLAGS_DRV_MODE`) and generic (`XDP_FLAGS_SKB_MODE`)
//! attachment work on veth; `XdpMode::Auto` picks native. Zero-copy is
//! refused on veth (bind fails with `EOPNOTSUPP`); copy mode works in both
//! attachment modes.
//! Frames the peer's kernel stack (or a packet socket on the peer) sends
//! reach a native-mode program without anything on the peer: veth runs the
//! program on its own NAPI, which attaching the program turns on. Frames
//! sent by *another XDP program* with `XDP_REDIRECT` into a veth
//! (`ndo_xdp_xmit`) only arrive if the receiving end of that veth has an
//! XDP program attached (or GRO enabled) -- a concern for XDP-to-XDP
//! forwarding, not for this driver, whose copy-mode transmissions go
//! through the ordinary `dev_direct_xmit` path and arrive on the peer as
//! normal frames.

pub(crate) mod bpf;
pub mod netlink;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::guard::{self, KernelGuard};
use super::sys::{self, Mmap};
use super::{DriverError, PortQueue, QueueStats};
use crate::buffer::{PktId, Pool, DATA_ROOM};

pub use bpf::MAX_QUEUES;

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// Generic XDP on socket buffers (`XDP_FLAGS_SKB_MODE`), any device.
    Skb,
    /// Native, else generic.
    Auto,
}

/// How an AF_XDP queue is set up.
#[derive(Debug, Clone)]
pub struct AfXdpOptions {
    /// Entries of the rx and fill rings, and UMEM frames for receiving (a
    /// power of two).
    pub rx_size: u32,
    /// Entries of the tx and completion rings, and UMEM frames for sending.
    pub tx_size: u32,
    /// UMEM frame size: 2048 or 4096 (the largest frame is this minus the
    /// kernel's 256-byte XDP headroom).
    pub frame_size: u32,
    pub mode: XdpMode,
    /// Bind with `XDP_ZEROCOPY` (fails on devices without support, e.g.
    /// veth) instead of `XDP_COPY`.
    pub zero_copy: bool,
    /// Attach weir's XDP program (and share it between queues). Off when
    /// another loader redirects to the socket.
    pub attach_program: bool,
    /// Keep the kernel stack of the namespace off the interface (see
    /// `guard`): frames of queues without a socket do not reach it, and it
    /// sends nothing there by itself.
    pub keep_kernel_out: bool,
}

impl Default for AfXdpOptions {
    fn default() -> Self {
        AfXdpOptions {
            rx_size: 2048,
            tx_size: 2048,
            // Room for every frame a packet buffer holds (a 2048-byte UMEM
            // frame holds 1792 after the kernel's headroom).
            frame_size: 4096,
            mode: XdpMode::Auto,
            zero_copy: false,
            attach_program: true,
            keep_kernel_out: true,
        }
    }
}

/// One mapped ring: `producer`/`consumer` indexes shared with the kernel,
/// our cached copies, and the descriptors.
struct Ring {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
    size: u32,
    /// Our side's index (producer for fill/tx, consumer for rx/comp).
    head: u32,
    _map: Mmap,
}

impl Ring {
    fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        entry: usize,
        pgoff: libc::off_t,
    ) -> std::io::Result<Ring> {
        let len = off.desc as usize + size as usize * entry;
        let m = Mmap::socket(fd, len, pgoff)?;
        let p = m.ptr();
        // SAFETY: the offsets come from the kernel and lie inside `len`.
        unsafe {
            Ok(Ring {
                producer: p.add(off.producer as usize) as *const AtomicU32,
                consumer: p.add(off.consumer as usize) as *const AtomicU32,
                flags: p.add(off.flags as usize) as *const AtomicU32,
                desc: p.add(off.desc as usize),
                mask: size - 1,
                size,
                head: 0,
                _map: m,
            })
        }
    }

    #[inline(always)]
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into our mapping.
        unsafe { &*self.producer }
    }

    #[inline(always)]
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: points into our mapping.
        unsafe { &*self.consumer }
    }

    #[inline(always)]
    fn needs_wakeup(&self) -> bool {
        // SAFETY: points into our mapping.
        unsafe { (*self.flags).load(Ordering::Relaxed) & sys::XDP_RING_NEED_WAKEUP != 0 }
    }

    /// Consumer side: entries ready to read.
    #[inline(always)]
    fn ready(&self) -> u32 {
        self.prod().load(Ordering::Acquire).wrapping_sub(self.head)
    }

    /// Consumer side: hand `n` read entries back.
    #[inline(always)]
    fn release(&mut self, n: u32) {
        self.head = self.head.wrapping_add(n);
        self.cons().store(self.head, Ordering::Release);
    }

    /// Producer side: free slots.
    #[inline(always)]
    fn free(&self) -> u32 {
        self.size - self.head.wrapping_sub(self.cons().load(Ordering::Acquire))
    }

    /// Producer side: publish `n` written entries.
    #[inline(always)]
    fn submit(&mut self, n: u32) {
        self.head = self.head.wrapping_add(n);
        self.prod().store(self.head, Ordering::Release);
    }

    /// The u64 entry `i` slots after our head (fill and completion rings).
    #[inline(always)]
    fn addr(&self, i: u32) -> *mut u64 {
        let idx = (self.head.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size, inside the mapping.
        unsafe { (self.desc as *mut u64).add(idx) }
    }

    /// The descriptor `i` slots after our head (rx and tx rings).
    #[inline(always)]
    fn xdp_desc(&self, i: u32) -> *mut libc::xdp_desc {
        let idx = (self.head.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size, inside the mapping.
        unsafe { (self.desc as *mut libc::xdp_desc).add(idx) }
    }
}

pub struct AfXdp {
    // Field order is drop order: the socket goes first (which also takes
    // it out of the XSKMAP), then its rings and UMEM, then, if this was
    // the last queue on the interface, the program.
    fd: OwnedFd,
    rx: Ring,
    tx: Ring,
    fill: Ring,
    comp: Ring,
    umem: Mmap,
    frame_size: u32,
    /// Transmit frames not in the tx or completion ring.
    tx_free: Vec<u64>,
    zero_copy: bool,
    queue: u32,
    ifname: String,
    stats: QueueStats,
    attachment: Option<Arc<bpf::Attachment>>,
    _guard: Option<Arc<KernelGuard>>,
}

// SAFETY: the ring pointers point into mappings owned by this value; the
// kernel side is synchronised through the rings' atomics.
unsafe impl Send for AfXdp {}

fn pow2(ifname: &str, what: &str, v: u32) -> Result<(), DriverError> {
    if v.is_power_of_two() && v >= 64 {
        Ok(())
    } else {
        Err(DriverError::InvalidOption {
            ifname: ifname.to_string(),
            what: format!("{what} = {v}: must be a power of two >= 64"),
        })
    }
}

impl AfXdp {
    /// Open an AF_XDP socket on rx queue `queue` of `ifname` (in the calling
    /// thread's network namespace).
    pub fn open(ifname: &str, queue: u32, opts: &AfXdpOptions) -> Result<AfXdp, DriverError> {
        let ifindex = sys::ifindex(ifname)?;
        pow2(ifname, "rx_size", opts.rx_size)?;
        pow2(ifname, "tx_size", opts.tx_size)?;
        if opts.frame_size != 2048 && opts.frame_size != 4096 {
            return Err(DriverError::InvalidOption {
                ifname: ifname.to_string(),
                what: format!("frame_size = {}: must be 2048 or 4096", opts.frame_size),
            });
        }
        if queue >= MAX_QUEUES {
            return Err(DriverError::InvalidOption {
                ifname: ifname.to_string(),
                what: format!("queue {queue} >= {MAX_QUEUES}"),
            });
        }
        let err = |op| move |e| DriverError::sys_err(ifname, op, e);
        let fd = sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0).map_err(err("socket(AF_XDP)"))?;
        let raw = fd.as_raw_fd();
        let frames = opts.rx_size + opts.tx_size;
        let umem = Mmap::anonymous(frames as usize * opts.frame_size as usize)
            .map_err(err("mmap(UMEM)"))?;
        // SAFETY: xdp_umem_reg is plain data.
        let mut reg: libc::xdp_umem_reg = unsafe { std::mem::zeroed() };
        reg.addr = umem.ptr() as u64;
        reg.len = umem.len() as u64;
        reg.chunk_size = opts.frame_size;
        sys::setsockopt(raw, libc::SOL_XDP, sys::XDP_UMEM_REG, &reg)
            .map_err(err("setsockopt(XDP_UMEM_REG)"))?;
        for (name, op, size) in [
            (
                sys::XDP_UMEM_FILL_RING,
                "setsockopt(XDP_UMEM_FILL_RING)",
                opts.rx_size,
            ),
            (
                sys::XDP_UMEM_COMPLETION_RING,
                "setsockopt(XDP_UMEM_COMPLETION_RING)",
                opts.tx_size,
            ),
            (sys::XDP_RX_RING, "setsockopt(XDP_RX_RING)", opts.rx_size),
            (sys::XDP_TX_RING, "setsockopt(XDP_TX_RING)", opts.tx_size),
        ] {
            sys::setsockopt(raw, libc::SOL_XDP, name, &size).map_err(err(op))?;
        }
        // SAFETY: xdp_mmap_offsets is plain data.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        sys::getsockopt(raw, libc::SOL_XDP, sys::XDP_MMAP_OFFSETS, &mut off)
            .map_err(err("getsockopt(XDP_MMAP_OFFSETS)"))?;
        let dsz = std::mem::size_of::<libc::xdp_desc>();
        let rx = Ring::map(&fd, &off.rx, opts.rx_size, dsz, sys::XDP_PGOFF_RX_RING)
            .map_err(err("mmap(rx ring)"))?;
        let tx = Ring::map(&fd, &off.tx, opts.tx_size, dsz, sys::XDP_PGOFF_TX_RING)
            .map_err(err("mmap(tx ring)"))?;
        let mut fill = Ring::map(&fd, &off.fr, opts.rx_size, 8, sys::XDP_UMEM_PGOFF_FILL_RING)
            .map_err(err("mmap(fill ring)"))?;
        let comp = Ring::map(
            &fd,
            &off.cr,
            opts.tx_size,
            8,
            sys::XDP_UMEM_PGOFF_COMPLETION_RING,
        )
        .map_err(err("mmap(completion ring)"))?;
        // Every receive frame starts in the fill ring.
        for i in 0..opts.rx_size {
            // SAFETY: i < fill ring size.
            unsafe { *fill.addr(i) = i as u64 * opts.frame_size as u64 };
        }
        fill.submit(opts.rx_size);
        let tx_free = (opts.rx_size..frames)
            .rev()
            .map(|i| i as u64 * opts.frame_size as u64)
            .collect();

        // SAFETY: sockaddr_xdp is plain data.
        let mut sxdp: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sxdp.sxdp_family = libc::AF_XDP as u16;
        sxdp.sxdp_ifindex = ifindex;
        sxdp.sxdp_queue_id = queue;
        sxdp.sxdp_flags = sys::XDP_USE_NEED_WAKEUP
            | if opts.zero_copy {
                sys::XDP_ZEROCOPY
            } else {
                sys::XDP_COPY
            };
        // SAFETY: sxdp is a valid sockaddr_xdp of the size given.
        let r = unsafe {
            libc::bind(
                raw,
                &sxdp as *const libc::sockaddr_xdp as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(DriverError::sys(
                ifname,
                if opts.zero_copy {
                    "bind(AF_XDP, XDP_ZEROCOPY)"
                } else {
                    "bind(AF_XDP, XDP_COPY)"
                },
            ));
        }

        let attachment = if opts.attach_program {
            let a = bpf::attach(ifname, ifindex, opts.mode)?;
            a.insert(queue, raw)
                .map_err(err("bpf(BPF_MAP_UPDATE_ELEM xskmap)"))?;
            Some(a)
        } else {
            None
        };
        let guard = if opts.keep_kernel_out {
            Some(guard::acquire(ifname, ifindex, true)?)
        } else {
            None
        };
        Ok(AfXdp {
            fd,
            rx,
            tx,
            fill,
            comp,
            umem,
            frame_size: opts.frame_size,
            tx_free,
            zero_copy: opts.zero_copy,
            queue,
            ifname: ifname.to_string(),
            stats: QueueStats::default(),
            attachment,
            _guard: guard,
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The mode weir's program is attached in (None: not ours).
    pub fn xdp_mode(&self) -> Option<XdpMode> {
        self.attachment.as_ref().map(|a| a.mode)
    }

    #[inline(always)]
    fn frame(&self, addr: u64, len: usize) -> &[u8] {
        // SAFETY: descriptors from the kernel lie inside the UMEM, whose
        // size it checked at registration.
        unsafe { std::slice::from_raw_parts(self.umem.ptr().add(addr as usize), len) }
    }

    /// Collect transmit frames the kernel is done with.
    #[inline]
    fn reap(&mut self) {
        let n = self.comp.ready();
        for i in 0..n {
            // SAFETY: i < ready entries.
            self.tx_free.push(unsafe { *self.comp.addr(i) });
        }
        if n > 0 {
            self.comp.release(n);
        }
    }

    /// Make the kernel transmit what is in the tx ring.
    fn kick_tx(&mut self, queued: u32) {
        if !self.zero_copy || self.tx.needs_wakeup() {
            // Copy mode sends at most 32 frames per call.
            let mut tries = queued / 32 + 2;
            while tries > 0 {
                tries -= 1;
                self.stats.wakeups += 1;
                // SAFETY: a zero-length sendto on our socket.
                let r = unsafe {
                    libc::sendto(
                        self.fd.as_raw_fd(),
                        std::ptr::null(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null(),
                        0,
                    )
                };
                if r >= 0 {
                    if self.zero_copy || self.tx.cons().load(Ordering::Acquire) == self.tx.head {
                        break;
                    }
                    continue;
                }
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                    Some(libc::EBUSY) | Some(libc::ENOBUFS) => {
                        self.stats.tx_ring_full += 1;
                        self.reap();
                    }
                    _ => break,
                }
            }
        }
    }
}

impl PortQueue for AfXdp {
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [PktId]) -> usize {
        let n = (self.rx.ready() as usize)
            .min(out.len())
            .min(pool.available()) as u32;
        if n == 0 {
            return 0;
        }
        let mask = !(self.frame_size as u64 - 1);
        let mut k = 0;
        for i in 0..n {
            // SAFETY: i < ready entries of the rx ring; the fill ring has
            // room for every receive frame (see the module docs).
            let (addr, len) = unsafe {
                let d = *self.rx.xdp_desc(i);
                (d.addr, d.len as usize)
            };
            // SAFETY: see above.
            unsafe { *self.fill.addr(i) = addr & mask };
            if len > DATA_ROOM {
                // Fits a UMEM frame, not a packet buffer: drop it whole.
                self.stats.rx_oversize += 1;
                self.stats.rx_dropped += 1;
                continue;
            }
            let id = pool.alloc_raw().expect("checked pool.available()");
            let frame = self.frame(addr, len);
            self.stats.rx_bytes += pool.get_mut(id).fill(frame) as u64;
            out[k] = id;
            k += 1;
        }
        self.rx.release(n);
        self.fill.submit(n);
        if self.fill.needs_wakeup() {
            self.stats.wakeups += 1;
            // SAFETY: a zero-length non-blocking recvfrom on our socket.
            unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
        self.stats.rx_packets += k as u64;
        k
    }

    fn tx_burst(&mut self, pool: &mut Pool, pkts: &[PktId]) -> usize {
        self.reap();
        let max_len = self.frame_size as usize;
        let room = self.tx.free().min(self.tx_free.len() as u32);
        let mut k = 0u32;
        for &id in pkts {
            if k == room {
                break;
            }
            let d = pool.get(id).data();
            if d.len() > max_len {
                continue;
            }
            let addr = self.tx_free.pop().expect("room counts free frames");
            // SAFETY: addr is a free tx frame of frame_size bytes; the
            // descriptor slot is free (k < tx.free()).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    d.as_ptr(),
                    self.umem.ptr().add(addr as usize),
                    d.len(),
                );
                *self.tx.xdp_desc(k) = libc::xdp_desc {
                    addr,
                    len: d.len() as u32,
                    options: 0,
                };
            }
            self.stats.tx_bytes += d.len() as u64;
            k += 1;
        }
        if (k as usize) < pkts.len() && k == room {
            self.stats.tx_ring_full += 1;
        }
        if k > 0 {
            self.tx.submit(k);
            self.kick_tx(k);
        }
        self.stats.tx_packets += k as u64;
        self.stats.tx_dropped += (pkts.len() - k as usize) as u64;
        pool.free_all(pkts);
        k as usize
    }

    fn kind(&self) -> &'static str {
        "af_xdp"
    }

    fn fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn stats(&self) -> QueueStats {
        let mut s = self.stats;
        // SAFETY: xdp_statistics is plain data.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        if sys::getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_XDP,
            sys::XDP_STATISTICS,
            &mut st,
        )
        .is_ok()
        {
            s.rx_dropped += st.rx_dropped + st.rx_ring_full;
            // A copy-mode socket without multi-buffer counts here the
            // frames longer than a UMEM frame (`__xsk_rcv`).
            s.rx_oversize += st.rx_dropped;
        }
        s
    }
}

impl Drop for AfXdp {
    fn drop(&mut self) {
        if let Some(a) = &self.attachment {
            a.remove(self.queue);
        }
    }
}

impl std::fmt::Debug for AfXdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdp")
            .field("ifname", &self.ifname)
            .field("queue", &self.queue)
            .field("zero_copy", &self.zero_copy)
            .field("mode", &self.xdp_mode())
            .finish()
    }
}
