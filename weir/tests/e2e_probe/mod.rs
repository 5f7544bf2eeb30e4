//! Crafted probes from a host of the lab, and what came back: a packet
//! socket on the host's interface (weir's AF_PACKET driver, opened as a
//! plain socket: promiscuous, kernel left alone) sends hand-built frames
//! and counts every frame the gateway sends in reply.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use weir_dataplane::driver::{in_netns, AfPacket, AfPacketOptions, PortQueue};
use weir_dataplane::{PktId, Pool};

pub struct Prober {
    q: AfPacket,
    pool: Pool,
    pub mac: [u8; 6],
    pub ip4: Ipv4Addr,
    pub ip6: Ipv6Addr,
}

/// What a frame from the gateway is, for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    ArpReply {
        sender: Ipv4Addr,
    },
    ArpRequest,
    Icmp4 {
        ty: u8,
        code: u8,
    },
    Icmp6 {
        ty: u8,
        code: u8,
    },
    /// Neighbour discovery or MLD the gateway sends on its own.
    Nd6 {
        ty: u8,
    },
    Other(u16),
}

impl Prober {
    pub fn open(netns: &str, ifname: &str, mac: [u8; 6], ip4: Ipv4Addr, ip6: Ipv6Addr) -> Prober {
        let ifname = ifname.to_string();
        let q = in_netns(netns, move || {
            let opts = AfPacketOptions {
                keep_kernel_out: false,
                qdisc_bypass: false,
                ..AfPacketOptions::default()
            };
            AfPacket::open(&ifname, &opts)
        })
        .unwrap()
        .unwrap();
        Prober {
            q,
            pool: Pool::new(512),
            mac,
            ip4,
            ip6,
        }
    }

    pub fn send(&mut self, frame: &[u8]) {
        let id = self.pool.alloc().unwrap();
        self.pool.get_mut(id).fill(frame);
        assert_eq!(self.q.tx_burst(&mut self.pool, &[id]), 1);
    }

    /// Every frame not sent by this host that arrives within `window`.
    pub fn collect(&mut self, window: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut ids: [PktId; 64] = [0; 64];
        let end = Instant::now() + window;
        while Instant::now() < end {
            let n = self.q.rx_burst(&mut self.pool, &mut ids);
            for &id in &ids[..n] {
                let d = self.pool.get(id).data();
                if d.len() >= 14 && d[6..12] != self.mac {
                    out.push(d.to_vec());
                }
            }
            self.pool.free_all(&ids[..n]);
            if n == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        out
    }

    /// Send `frame`, then classify what came back within `window`,
    /// leaving out what the gateway says on its own (its ARP and ND
    /// requests, MLD reports).
    pub fn replies(&mut self, frame: &[u8], window: Duration) -> Vec<Answer> {
        self.collect(Duration::from_millis(50));
        self.send(frame);
        self.collect(window)
            .iter()
            .map(|f| classify(f))
            .filter(|r| !matches!(r, Answer::ArpRequest | Answer::Nd6 { .. }))
            .collect()
    }

    fn eth(&self, dst: [u8; 6], ty: u16) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&ty.to_be_bytes());
        f
    }

    pub fn arp_request(&self, target: Ipv4Addr) -> Vec<u8> {
        let mut f = self.eth([0xff; 6], 0x0806);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&self.ip4.octets());
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target.octets());
        f.resize(60, 0);
        f
    }

    fn ip4(&self, dst_mac: [u8; 6], dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = self.eth(dst_mac, 0x0800);
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&self.ip4.octets());
        h[16..20].copy_from_slice(&dst.octets());
        let c = csum(&h, 0);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend_from_slice(payload);
        f
    }

    fn ip6(&self, dst_mac: [u8; 6], dst: Ipv6Addr, nh: u8, hl: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = self.eth(dst_mac, 0x86dd);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[nh, hl]);
        f.extend_from_slice(&self.ip6.octets());
        f.extend_from_slice(&dst.octets());
        let mut p = payload.to_vec();
        // ICMPv6 and UDP checksums cover a pseudo-header.
        let at = match nh {
            58 => 2,
            17 => 6,
            _ => usize::MAX,
        };
        if at != usize::MAX {
            let mut ph = Vec::new();
            ph.extend_from_slice(&self.ip6.octets());
            ph.extend_from_slice(&dst.octets());
            ph.extend_from_slice(&(p.len() as u32).to_be_bytes());
            ph.extend_from_slice(&[0, 0, 0, nh]);
            let c = csum(&p, sum(&ph));
            p[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(&p);
        f
    }

    pub fn echo4(&self, gw_mac: [u8; 6], dst: Ipv4Addr, id: u16) -> Vec<u8> {
        let mut p = vec![8, 0, 0, 0];
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(b"weir probe");
        let c = csum(&p, 0);
        p[2..4].copy_from_slice(&c.to_be_bytes());
        self.ip4(gw_mac, dst, 1, &p)
    }

    pub fn echo6(&self, gw_mac: [u8; 6], dst: Ipv6Addr, id: u16) -> Vec<u8> {
        let mut p = vec![128, 0, 0, 0];
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(b"weir probe");
        self.ip6(gw_mac, dst, 58, 64, &p)
    }

    pub fn udp4(&self, gw_mac: [u8; 6], dst: Ipv4Addr, port: u16) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&port.to_be_bytes());
        p.extend_from_slice(&16u16.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(b"weirprob");
        self.ip4(gw_mac, dst, 17, &p)
    }

    pub fn udp6(&self, gw_mac: [u8; 6], dst: Ipv6Addr, port: u16) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&port.to_be_bytes());
        p.extend_from_slice(&16u16.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(b"weirprob");
        self.ip6(gw_mac, dst, 17, 64, &p)
    }

    /// A neighbour solicitation for `target`, to its solicited-node group.
    pub fn ns(&self, target: Ipv6Addr) -> Vec<u8> {
        let t = target.octets();
        let group = Ipv6Addr::new(
            0xff02,
            0,
            0,
            0,
            0,
            1,
            0xff00 | t[13] as u16,
            u16::from_be_bytes([t[14], t[15]]),
        );
        let g = group.octets();
        let mac = [0x33, 0x33, g[12], g[13], g[14], g[15]];
        let mut p = vec![135, 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&t);
        p.extend_from_slice(&[1, 1]);
        p.extend_from_slice(&self.mac);
        self.ip6(mac, group, 58, 255, &p)
    }
}

fn sum(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

fn csum(b: &[u8], init: u32) -> u16 {
    let mut s = init + sum(b);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub fn classify(f: &[u8]) -> Answer {
    let ty = u16::from_be_bytes([f[12], f[13]]);
    match ty {
        0x0806 if f.len() >= 42 => {
            if f[21] == 2 {
                Answer::ArpReply {
                    sender: Ipv4Addr::new(f[28], f[29], f[30], f[31]),
                }
            } else {
                Answer::ArpRequest
            }
        }
        0x0800 if f.len() >= 36 => {
            let ihl = (f[14] & 0xf) as usize * 4;
            match f[23] {
                1 if f.len() >= 14 + ihl + 2 => Answer::Icmp4 {
                    ty: f[14 + ihl],
                    code: f[15 + ihl],
                },
                // IGMP: the kernel mirror's group reports.
                2 => Answer::Nd6 { ty: 0 },
                _ => Answer::Other(ty),
            }
        }
        0x86dd if f.len() >= 56 => {
            let mut nh = f[20];
            let mut at = 54;
            // Skip a hop-by-hop header (MLD reports carry one).
            if nh == 0 && f.len() >= at + 8 {
                nh = f[at];
                at += (f[at + 1] as usize + 1) * 8;
            }
            if nh != 58 || f.len() < at + 2 {
                return Answer::Other(ty);
            }
            let (t, c) = (f[at], f[at + 1]);
            match t {
                130..=135 | 137 | 143 => Answer::Nd6 { ty: t },
                _ => Answer::Icmp6 { ty: t, code: c },
            }
        }
        _ => Answer::Other(ty),
    }
}
