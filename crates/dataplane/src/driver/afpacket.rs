//! The AF_PACKET driver: works on any interface, in any kernel.
//!
//! Receive goes through a `TPACKET_V3` ring: the kernel fills fixed-size
//! blocks with frames and hands a block over (status `TP_STATUS_USER`) when
//! it is full or its timeout expires; `rx_burst` walks the frames of handed
//! over blocks, copies each into a pool buffer and gives each block back
//! (`TP_STATUS_KERNEL`) once all its frames are copied. No syscall on this
//! path; `fd()` becomes readable when a block is handed over.
//!
//! Transmit is one `sendmmsg(2)` per burst (one message per frame, pointing
//! into the pool buffers), with `PACKET_QDISC_BYPASS` so frames go straight
//! to the device's driver.
//!
//! The socket is bound to one interface, puts it in promiscuous mode, ignores
//! the frames the host itself sends (`PACKET_IGNORE_OUTGOING`, which includes
//! our own transmissions) and can join a `PACKET_FANOUT` group: the sockets
//! of one group on one interface (one per worker, same group id, same
//! network namespace) share its frames by flow hash, each frame going to
//! exactly one of them.
//!
//! A frame longer than a packet buffer (`DATA_ROOM`, tag included) is
//! dropped and counted in `rx_oversize`, never delivered cut.
//!
//! The kernel strips 802.1Q tags before packet sockets see frames and
//! reports them beside the frame; `rx_burst` puts them back, so buffers hold
//! the frame as it was on the wire.

use std::cell::Cell;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::guard::{self, KernelGuard};
use super::sys::{self, Mmap};
use super::{DriverError, PortQueue, QueueStats};
use crate::buffer::{PktId, Pool, DATA_ROOM};

/// How an AF_PACKET queue is set up.
#[derive(Debug, Clone)]
pub struct AfPacketOptions {
    /// Size of one rx ring block (a power of two, at least a page).
    pub block_size: u32,
    /// Number of rx ring blocks.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full (bounds receive latency at low rates).
    pub block_timeout_ms: u32,
    /// Join this `PACKET_FANOUT` (hash) group: every socket of the group on
    /// the interface gets a share of the flows.
    pub fanout_group: Option<u16>,
    pub promiscuous: bool,
    /// Send straight to the device, skipping the qdisc layer.
    pub qdisc_bypass: bool,
    /// Do not receive what the host (or this socket) transmits.
    pub ignore_outgoing: bool,
    /// Keep the kernel stack of the namespace off the interface (see
    /// `guard`): it then receives nothing there and, with `qdisc_bypass`,
    /// sends nothing there by itself.
    pub keep_kernel_out: bool,
}

impl Default for AfPacketOptions {
    fn default() -> Self {
        AfPacketOptions {
            block_size: 1 << 17,
            block_count: 32,
            block_timeout_ms: 1,
            fanout_group: None,
            promiscuous: true,
            qdisc_bypass: true,
            ignore_outgoing: true,
            keep_kernel_out: true,
        }
    }
}

/// Frames handed to one `sendmmsg` call at most.
const TX_CHUNK: usize = 256;

// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then
// `struct tpacket_hdr_v1`).
const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST_PKT: usize = 16;
// Offsets in `struct tpacket3_hdr`.
const H_NEXT: usize = 0;
const H_SNAPLEN: usize = 12;
const H_LEN: usize = 16;
const H_STATUS: usize = 20;
const H_MAC: usize = 24;
const H_VLAN_TCI: usize = 32;
const H_VLAN_TPID: usize = 36;

#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

pub struct AfPacket {
    fd: OwnedFd,
    ifname: String,
    ifindex: u32,
    ring: Mmap,
    block_size: usize,
    block_count: usize,
    /// The block being read (or waited for).
    block: usize,
    /// Frames left to read in `block` (0: not yet handed over).
    left: u32,
    /// Offset of the next frame in `block`.
    next: usize,
    iov: Box<[libc::iovec; TX_CHUNK]>,
    msgs: Box<[libc::mmsghdr; TX_CHUNK]>,
    stats: QueueStats,
    kernel_drops: Cell<u64>,
    _guard: Option<Arc<KernelGuard>>,
}

// SAFETY: the raw pointers in `iov`/`msgs` are scratch space only valid
// during one `tx_burst`; the ring mapping belongs to this value alone.
unsafe impl Send for AfPacket {}

impl AfPacket {
    /// Open an AF_PACKET socket on `ifname` (in the calling thread's network
    /// namespace).
    pub fn open(ifname: &str, opts: &AfPacketOptions) -> Result<AfPacket, DriverError> {
        let ifindex = sys::ifindex(ifname)?;
        let bs = opts.block_size;
        if !bs.is_power_of_two() || bs < 4096 || opts.block_count == 0 {
            return Err(DriverError::InvalidOption {
                ifname: ifname.to_string(),
                what: format!("block_size {bs} must be a power of two >= 4096 and block_count > 0"),
            });
        }
        // Protocol 0: nothing is received until bind, after the ring exists.
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
            .map_err(|e| DriverError::sys_err(ifname, "socket(AF_PACKET)", e))?;
        let raw = fd.as_raw_fd();
        let err = |op| move |e| DriverError::sys_err(ifname, op, e);
        sys::setsockopt(raw, sys::SOL_PACKET, sys::PACKET_VERSION, &sys::TPACKET_V3)
            .map_err(err("setsockopt(PACKET_VERSION)"))?;
        let frame_size = 2048u32;
        let req = TpacketReq3 {
            block_size: bs,
            block_nr: opts.block_count,
            frame_size,
            frame_nr: bs / frame_size * opts.block_count,
            retire_blk_tov: opts.block_timeout_ms.max(1),
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        sys::setsockopt(raw, sys::SOL_PACKET, sys::PACKET_RX_RING, &req)
            .map_err(err("setsockopt(PACKET_RX_RING)"))?;
        let len = bs as usize * opts.block_count as usize;
        let ring = Mmap::socket(&fd, len, 0).map_err(err("mmap(rx ring)"))?;
        if opts.qdisc_bypass {
            sys::setsockopt(raw, sys::SOL_PACKET, sys::PACKET_QDISC_BYPASS, &1i32)
                .map_err(err("setsockopt(PACKET_QDISC_BYPASS)"))?;
        }
        if opts.ignore_outgoing {
            sys::setsockopt(raw, sys::SOL_PACKET, sys::PACKET_IGNORE_OUTGOING, &1i32)
                .map_err(err("setsockopt(PACKET_IGNORE_OUTGOING)"))?;
        }
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = sys::ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size given.
        let r = unsafe {
            libc::bind(
                raw,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(DriverError::sys(ifname, "bind(AF_PACKET)"));
        }
        if opts.promiscuous {
            // SAFETY: packet_mreq is plain data.
            let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
            mr.mr_ifindex = ifindex as i32;
            mr.mr_type = sys::PACKET_MR_PROMISC;
            sys::setsockopt(raw, sys::SOL_PACKET, sys::PACKET_ADD_MEMBERSHIP, &mr)
                .map_err(err("setsockopt(PACKET_ADD_MEMBERSHIP promisc)"))?;
        }
        if let Some(group) = opts.fanout_group {
            // No PACKET_FANOUT_FLAG_DEFRAG: reassembled datagrams would not
            // fit a buffer, and fragments are forwarded as they come.
            let v: u32 = group as u32 | (sys::PACKET_FANOUT_HASH << 16);
            sys::setsockopt(raw, sys::SOL_PACKET, sys::PACKET_FANOUT, &v)
                .map_err(err("setsockopt(PACKET_FANOUT)"))?;
        }
        let guard = if opts.keep_kernel_out {
            Some(guard::acquire(ifname, ifindex, opts.qdisc_bypass)?)
        } else {
            None
        };
        // SAFETY: all-zero iovec / mmsghdr are valid (null pointers, 0 lengths).
        let (iov, msgs) = unsafe { (Box::new(std::mem::zeroed()), Box::new(std::mem::zeroed())) };
        Ok(AfPacket {
            fd,
            ifname: ifname.to_string(),
            ifindex,
            ring,
            block_size: bs as usize,
            block_count: opts.block_count as usize,
            block: 0,
            left: 0,
            next: 0,
            iov,
            msgs,
            stats: QueueStats::default(),
            kernel_drops: Cell::new(0),
            _guard: guard,
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    #[inline(always)]
    fn block_ptr(&self, b: usize) -> *mut u8 {
        // SAFETY: b < block_count, inside the mapping.
        unsafe { self.ring.ptr().add(b * self.block_size) }
    }

    #[inline(always)]
    fn block_status(&self, b: usize) -> &AtomicU32 {
        // SAFETY: an aligned u32 inside the mapping, shared with the kernel.
        unsafe { &*(self.block_ptr(b).add(BD_STATUS) as *const AtomicU32) }
    }

    /// Give the current block back to the kernel and move to the next.
    #[inline]
    fn release_block(&mut self) {
        self.block_status(self.block)
            .store(sys::TP_STATUS_KERNEL, Ordering::Release);
        self.block += 1;
        if self.block == self.block_count {
            self.block = 0;
        }
        self.left = 0;
    }
}

#[inline(always)]
unsafe fn rd32(p: *const u8, off: usize) -> u32 {
    (p.add(off) as *const u32).read_unaligned()
}

#[inline(always)]
unsafe fn rd16(p: *const u8, off: usize) -> u16 {
    (p.add(off) as *const u16).read_unaligned()
}

impl PortQueue for AfPacket {
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [PktId]) -> usize {
        let mut n = 0;
        while n < out.len() {
            if self.left == 0 {
                let b = self.block;
                if self.block_status(b).load(Ordering::Acquire) & sys::TP_STATUS_USER == 0 {
                    break;
                }
                let bp = self.block_ptr(b);
                // SAFETY: the block header is ours while its status is USER.
                let (num, first) = unsafe { (rd32(bp, BD_NUM_PKTS), rd32(bp, BD_FIRST_PKT)) };
                if num == 0 {
                    self.release_block();
                    continue;
                }
                self.left = num;
                self.next = first as usize;
            }
            let bp = self.block_ptr(self.block);
            // SAFETY: frames of a handed-over block lie inside it; the
            // kernel wrote their headers before setting the block status.
            let (h, snap, wire, status) = unsafe {
                let h = bp.add(self.next);
                (
                    h,
                    rd32(h, H_SNAPLEN) as usize,
                    rd32(h, H_LEN) as usize,
                    rd32(h, H_STATUS),
                )
            };
            let tagged = status & sys::TP_STATUS_VLAN_VALID != 0 && snap >= 12;
            let len = snap + if tagged { 4 } else { 0 };
            if snap < wire || len > DATA_ROOM {
                // Cut by the kernel or longer than a buffer: drop it whole.
                self.stats.rx_oversize += 1;
                self.stats.rx_dropped += 1;
                // SAFETY: as above.
                self.next += unsafe { rd32(h, H_NEXT) } as usize;
                self.left -= 1;
                if self.left == 0 {
                    self.release_block();
                }
                continue;
            }
            let Some(id) = pool.alloc_raw() else { break };
            // SAFETY: as above; `len` fits a buffer.
            unsafe {
                let mac = rd16(h, H_MAC) as usize;
                let frame = std::slice::from_raw_parts(h.add(mac), snap);
                let buf = pool.get_mut(id);
                if tagged {
                    // Put the stripped 802.1Q tag back.
                    let tci = rd32(h, H_VLAN_TCI) as u16;
                    let tpid = if status & sys::TP_STATUS_VLAN_TPID_VALID != 0 {
                        rd16(h, H_VLAN_TPID)
                    } else {
                        0x8100
                    };
                    buf.fill(&frame[..12]);
                    let room = buf.room_mut();
                    room[12..14].copy_from_slice(&tpid.to_be_bytes());
                    room[14..16].copy_from_slice(&tci.to_be_bytes());
                    room[16..len].copy_from_slice(&frame[12..]);
                    buf.set_len(len);
                } else {
                    buf.fill(frame);
                }
                self.stats.rx_bytes += buf.len() as u64;
                self.next += rd32(h, H_NEXT) as usize;
            }
            out[n] = id;
            n += 1;
            self.left -= 1;
            if self.left == 0 {
                self.release_block();
            }
        }
        self.stats.rx_packets += n as u64;
        n
    }

    fn tx_burst(&mut self, pool: &mut Pool, pkts: &[PktId]) -> usize {
        let fd = self.fd.as_raw_fd();
        let mut sent_total = 0;
        for chunk in pkts.chunks(TX_CHUNK) {
            for (i, &id) in chunk.iter().enumerate() {
                let d = pool.get(id).data();
                self.iov[i] = libc::iovec {
                    iov_base: d.as_ptr() as *mut libc::c_void,
                    iov_len: d.len(),
                };
                let m = &mut self.msgs[i].msg_hdr;
                m.msg_iov = &mut self.iov[i];
                m.msg_iovlen = 1;
                self.stats.tx_bytes += d.len() as u64;
            }
            let mut done = 0;
            while done < chunk.len() {
                // SAFETY: msgs[done..len] point at live iovecs over pool
                // buffers that stay untouched during the call.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        self.msgs.as_mut_ptr().add(done),
                        (chunk.len() - done) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if r <= 0 {
                    let e = std::io::Error::last_os_error();
                    if r < 0 && sys::transient(&e) {
                        self.stats.tx_ring_full += 1;
                    }
                    break;
                }
                done += r as usize;
            }
            for i in done..chunk.len() {
                self.stats.tx_bytes -= self.iov[i].iov_len as u64;
            }
            sent_total += done;
            if done < chunk.len() {
                // Do not hammer a full queue with the rest of the burst.
                break;
            }
        }
        self.stats.tx_dropped += (pkts.len() - sent_total) as u64;
        pool.free_all(pkts);
        self.stats.tx_packets += sent_total as u64;
        sent_total
    }

    fn kind(&self) -> &'static str {
        "af_packet"
    }

    fn fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn stats(&self) -> QueueStats {
        // PACKET_STATISTICS resets the kernel's counters on each read.
        let mut st = TpacketStatsV3::default();
        if sys::getsockopt(
            self.fd.as_raw_fd(),
            sys::SOL_PACKET,
            sys::PACKET_STATISTICS,
            &mut st,
        )
        .is_ok()
        {
            self.kernel_drops
                .set(self.kernel_drops.get() + st.drops as u64);
        }
        let mut s = self.stats;
        s.rx_dropped += self.kernel_drops.get();
        s
    }
}

impl std::fmt::Debug for AfPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacket")
            .field("ifname", &self.ifname)
            .field("ifindex", &self.ifindex)
            .finish()
    }
}
