//! A small gateway on the memory driver shared by the forwarding,
//! conformance and neighbour tests: p0 towards host A, p1 towards router B,
//! p2 an attached /16 with only router C (10.2.0.2) known on it.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use weir_dataplane::frames::{self, V4, V6};
use weir_dataplane::{Builder, Dataplane, MemoryHandle, RouteTarget, POOL_SIZE};
use weir_packet::{Icmpv4Packet, Icmpv6Packet, Ipv4Packet, Ipv6Packet, MacAddr};

pub const GW0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
pub const GW1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
pub const GW2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x12]);
pub const HOST_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0xaa, 0x01]);
pub const ROUTER_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0xbb, 0x01]);
pub const ROUTER_C: MacAddr = MacAddr([0x02, 0, 0, 0, 0xcc, 0x01]);

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn via(gw: &str) -> RouteTarget {
    RouteTarget::Via {
        gateway: gw.parse().unwrap(),
        port: None,
    }
}

pub struct Lab {
    pub dp: Dataplane,
    pub ports: Vec<MemoryHandle>,
}

/// p0: 10.0.0.1/24, 2001:db8::1/64 (host A at .2 / ::2, static);
/// p1: 10.1.0.1/24, 2001:db8:1::1/64 (router B at .2 / ::2, static),
///     routes 192.0.2.0/24 and 2001:db8:100::/48 via B;
/// p2: 10.2.0.1/16, 2001:db8:2::1/64, router C at 10.2.0.2 (static).
pub fn lab() -> Lab {
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW0, 1500).unwrap().remove(0);
    let p1 = b.memory_port(1, "p1", GW1, 1500).unwrap().remove(0);
    let p2 = b.memory_port(2, "p2", GW2, 1500).unwrap().remove(0);
    let c = b.control();
    c.add_address(0, net("10.0.0.1/24")).unwrap();
    c.add_address(1, net("10.1.0.1/24")).unwrap();
    c.add_address(2, net("10.2.0.1/16")).unwrap();
    c.add_address(0, net("2001:db8::1/64")).unwrap();
    c.add_address(1, net("2001:db8:1::1/64")).unwrap();
    c.add_address(2, net("2001:db8:2::1/64")).unwrap();
    c.set_static_neighbour(0, IpAddr::V4(v4("10.0.0.2")), HOST_A);
    c.set_static_neighbour(1, IpAddr::V4(v4("10.1.0.2")), ROUTER_B);
    c.set_static_neighbour(2, IpAddr::V4(v4("10.2.0.2")), ROUTER_C);
    c.set_static_neighbour(0, IpAddr::V6(v6("2001:db8::2")), HOST_A);
    c.set_static_neighbour(1, IpAddr::V6(v6("2001:db8:1::2")), ROUTER_B);
    c.add_route(0, net("192.0.2.0/24"), via("10.1.0.2"))
        .unwrap();
    c.add_route(0, net("2001:db8:100::/48"), via("2001:db8:1::2"))
        .unwrap();
    let mut dp = b.build();
    dp.control.commit();
    dp.poll();
    Lab {
        dp,
        ports: vec![p0, p1, p2],
    }
}

impl Lab {
    pub fn send(&mut self, port: usize, frame: Vec<u8>) {
        self.ports[port].inject(frame);
        self.dp.poll();
    }
    pub fn out(&self, port: usize) -> Vec<Vec<u8>> {
        self.ports[port].collect()
    }
    /// Frames out of every port, which must all be empty.
    pub fn assert_silent(&self) {
        for (i, p) in self.ports.iter().enumerate() {
            let f = p.collect();
            assert!(f.is_empty(), "port {i} sent {} frame(s)", f.len());
        }
    }
    /// A drop counter by name, `node/reason`.
    pub fn drops(&self, name: &str) -> u64 {
        self.dp.stats().drop_count(name)
    }
    pub fn assert_no_leak(&self) {
        for w in &self.dp.workers {
            assert_eq!(w.pool.available(), POOL_SIZE, "buffers leaked");
        }
    }
}

/// UDP from host A to `dst`, Ethernet destination `mac`.
pub fn udp4_to(mac: MacAddr, dst: &str, ttl: u8) -> Vec<u8> {
    let mut ip = V4::new(v4("10.0.0.2"), v4(dst));
    ip.ttl = ttl;
    frames::udp4(mac, HOST_A, &ip, 1000, 2000, 32)
}

pub fn udp6_to(mac: MacAddr, dst: &str, hop: u8) -> Vec<u8> {
    let mut ip = V6::new(v6("2001:db8::2"), v6(dst));
    ip.hop_limit = hop;
    frames::udp6(mac, HOST_A, &ip, 1000, 2000, 32)
}

/// (source, destination, type, code, ICMP message) of an ICMPv4 frame.
pub fn icmp4_of(f: &[u8]) -> (Ipv4Addr, Ipv4Addr, u8, u8, Vec<u8>) {
    let ip = Ipv4Packet::new_checked(&f[14..]).expect("IPv4");
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!(ip.protocol(), weir_packet::IpProtocol::ICMP);
    let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("ICMP");
    assert!(icmp.verify_checksum(), "ICMP checksum");
    (
        ip.src_addr(),
        ip.dst_addr(),
        icmp.msg_type(),
        icmp.code(),
        ip.payload().to_vec(),
    )
}

pub fn icmp6_of(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, u8, Vec<u8>) {
    let ip = Ipv6Packet::new_checked(&f[14..]).expect("IPv6");
    assert_eq!(ip.next_header(), weir_packet::IpProtocol::ICMPV6);
    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("ICMPv6");
    assert!(
        icmp.verify_checksum(ip.src_addr(), ip.dst_addr()),
        "ICMPv6 checksum"
    );
    (
        ip.src_addr(),
        ip.dst_addr(),
        icmp.msg_type(),
        icmp.code(),
        ip.payload().to_vec(),
    )
}
