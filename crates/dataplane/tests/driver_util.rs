//! Shared by the driver tests (included with `#[path]`): a veth pair across
//! two namespaces, a plain AF_PACKET socket to send and capture on the far
//! side, and test frames.
#![allow(dead_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use weir_dataplane::driver::{in_netns, PortQueue};
use weir_dataplane::{PktId, Pool};
use weir_lab::{unique_name, Netns, Veth};

/// Two namespaces joined by a veth: `a` (where the driver runs) and `b`
/// (the test's side), with IPv6 off so the kernel sends nothing by itself.
pub struct Pair {
    pub veth: Veth,
    pub ns_b: Netns,
    pub ns_a: Netns,
}

pub fn quiet_ns(tag: &str) -> Netns {
    let ns = Netns::new(tag).unwrap();
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
        .unwrap();
    ns
}

impl Pair {
    pub fn new(tag: &str) -> Pair {
        let ns_a = quiet_ns(&format!("{tag}a"));
        let ns_b = quiet_ns(&format!("{tag}b"));
        let a = unique_name("a");
        let b = unique_name("b");
        let veth = Veth::new(Some(&ns_a), &a, Some(&ns_b), &b).unwrap();
        Veth::set_mac(Some(&ns_a), &a, "02:00:00:00:00:0a").unwrap();
        Veth::set_mac(Some(&ns_b), &b, "02:00:00:00:00:0b").unwrap();
        Pair { veth, ns_b, ns_a }
    }
}

/// A plain AF_PACKET socket bound to one interface.
pub struct RawSock {
    fd: OwnedFd,
}

impl RawSock {
    /// Open on `ifname` inside namespace `ns`.
    pub fn open(ns: &str, ifname: &str) -> RawSock {
        let ifname = ifname.to_string();
        in_netns(ns, move || {
            let c = std::ffi::CString::new(ifname).unwrap();
            // SAFETY: test code; plain syscalls with local structs.
            unsafe {
                let idx = libc::if_nametoindex(c.as_ptr());
                assert!(idx != 0, "no such interface");
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0x0003u16.to_be() as i32);
                assert!(fd >= 0);
                let one: libc::c_int = 1;
                // PACKET_AUXDATA: learn the 802.1Q tags the kernel strips.
                libc::setsockopt(fd, 263, 8, &one as *const _ as *const libc::c_void, 4);
                let sz: libc::c_int = 16 << 20;
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    &sz as *const _ as *const libc::c_void,
                    4,
                );
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_protocol = 0x0003u16.to_be();
                sll.sll_ifindex = idx as i32;
                let r = libc::bind(
                    fd,
                    &sll as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
                RawSock {
                    fd: OwnedFd::from_raw_fd(fd),
                }
            }
        })
        .unwrap()
    }

    pub fn send(&self, frame: &[u8]) {
        // SAFETY: sending a local buffer.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        assert_eq!(
            r,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Incoming test frames (those carrying `MAGIC`) until `n` arrived or
    /// `timeout` passed.
    pub fn capture(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        self.capture_where(n, timeout, is_test_frame)
    }

    /// Incoming frames for which `keep` holds, until `n` arrived or
    /// `timeout` passed.
    pub fn capture_where(
        &self,
        n: usize,
        timeout: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let end = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        while out.len() < n && Instant::now() < end {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: polling one local pollfd.
            unsafe { libc::poll(&mut pfd, 1, 20) };
            loop {
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                    iov_len: buf.len(),
                };
                let mut ctl = [0u64; 64];
                // SAFETY: receiving into local buffers.
                let (r, vlan) = unsafe {
                    let mut m: libc::msghdr = std::mem::zeroed();
                    m.msg_iov = &mut iov;
                    m.msg_iovlen = 1;
                    m.msg_control = ctl.as_mut_ptr() as *mut libc::c_void;
                    m.msg_controllen = std::mem::size_of_val(&ctl) as _;
                    let r = libc::recvmsg(self.fd.as_raw_fd(), &mut m, libc::MSG_DONTWAIT);
                    let mut vlan = None;
                    let mut c = libc::CMSG_FIRSTHDR(&m);
                    while r > 0 && !c.is_null() {
                        if (*c).cmsg_level == 263 && (*c).cmsg_type == 8 {
                            // struct tpacket_auxdata
                            let d = libc::CMSG_DATA(c);
                            let status = (d as *const u32).read_unaligned();
                            let tci = (d.add(16) as *const u16).read_unaligned();
                            let tpid = (d.add(18) as *const u16).read_unaligned();
                            if status & (1 << 4) != 0 {
                                let tpid = if status & (1 << 6) != 0 { tpid } else { 0x8100 };
                                vlan = Some((tpid, tci));
                            }
                        }
                        c = libc::CMSG_NXTHDR(&m, c);
                    }
                    (r, vlan)
                };
                if r <= 0 {
                    break;
                }
                let f = &buf[..r as usize];
                if keep(f) {
                    let mut v = f[..12].to_vec();
                    if let Some((tpid, tci)) = vlan {
                        v.extend_from_slice(&tpid.to_be_bytes());
                        v.extend_from_slice(&tci.to_be_bytes());
                    }
                    v.extend_from_slice(&f[12..]);
                    out.push(v);
                }
            }
        }
        out
    }
}

pub const MAGIC: &[u8; 8] = b"weirDRV!";

pub fn is_test_frame(f: &[u8]) -> bool {
    f.windows(8).any(|w| w == MAGIC)
}

/// An Ethernet/IPv4/UDP frame from `src` to `dst`, `len` bytes in all,
/// with flow `flow` (source port) and sequence number `seq` in the payload.
pub fn udp_frame(dst: [u8; 6], src: [u8; 6], flow: u16, seq: u32, len: usize) -> Vec<u8> {
    let len = len.max(14 + 20 + 8 + 12);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 1, (flow >> 8) as u8, flow as u8]);
    ip[16..20].copy_from_slice(&[10, 2, 0, 1]);
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&(10000 + flow).to_be_bytes());
    f.extend_from_slice(&4789u16.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&seq.to_be_bytes());
    let mut i = 0u8;
    while f.len() < len {
        f.push(i);
        i = i.wrapping_add(7);
    }
    f
}

/// An ARP request from `src` (`spa`) for `tpa`, padded with `MAGIC`.
pub fn arp_request(src: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f.extend_from_slice(MAGIC);
    f.resize(60, 0);
    f
}

/// Whether `f` is an ARP frame with operation `op` (1 request, 2 reply).
pub fn is_arp(f: &[u8], op: u16) -> bool {
    f.len() >= 22 && f[12..14] == [0x08, 0x06] && f[20..22] == op.to_be_bytes()
}

/// The same frame with an 802.1Q tag (VLAN `vid`) after the MAC addresses.
pub fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

/// Test frames received through `q` until `n` arrived or `timeout` passed.
pub fn drain(q: &mut dyn PortQueue, pool: &mut Pool, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut ids: [PktId; 256] = [0; 256];
    let end = Instant::now() + timeout;
    while out.len() < n && Instant::now() < end {
        let k = q.rx_burst(pool, &mut ids);
        for &id in &ids[..k] {
            let d = pool.get(id).data();
            if is_test_frame(d) {
                out.push(d.to_vec());
            }
        }
        pool.free_all(&ids[..k]);
        if k == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    out
}

/// Transmit `frames` through `q` in one burst; returns how many it sent.
pub fn send_burst(q: &mut dyn PortQueue, pool: &mut Pool, frames: &[Vec<u8>]) -> usize {
    let ids: Vec<PktId> = frames
        .iter()
        .map(|f| {
            let id = pool.alloc().unwrap();
            pool.get_mut(id).fill(f);
            id
        })
        .collect();
    let before = pool.available();
    let n = q.tx_burst(pool, &ids);
    assert_eq!(
        pool.available(),
        before + ids.len(),
        "tx_burst frees every buffer"
    );
    n
}

/// A mix of sizes, flows and one tagged frame.
pub fn test_frames(dst: [u8; 6], src: [u8; 6], n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = [60, 64, 128, 333, 1000, 1514][i % 6];
            let f = udp_frame(dst, src, (i % 17) as u16, i as u32, len);
            if i % 10 == 3 {
                tagged(&f, 100 + i as u16)
            } else {
                f
            }
        })
        .collect()
}

/// Whether `ip link show dev` in `ns` mentions an XDP program.
pub fn has_xdp(ns: &Netns, dev: &str) -> bool {
    let out = ns
        .output(&["ip", "-d", "link", "show", "dev", dev])
        .unwrap();
    out.contains("prog/xdp") || out.contains(" xdp") || out.contains("xdpgeneric")
}
