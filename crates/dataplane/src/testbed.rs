//! A gateway on memory ports with a realistic configuration (IPv4 and IPv6
//! addresses, static and learnable neighbours, routes through gateways,
//! ECMP, blackhole, prohibit, a second VRF reached through a table route, a
//! kernel mirror) that checks, for any frames sent through it, that no
//! buffer leaks and that packets are conserved: every packet that came in
//! or that a node made was handed to a port or dropped with a counted
//! reason. Used by the property tests and the fuzz target.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ipnet::IpNet;
use weir_packet::MacAddr;

use crate::{Builder, Dataplane, MemoryHandle, RouteTarget, POOL_SIZE};

pub const GW0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
pub const GW1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
pub const GW2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x12]);
pub const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0xaa, 0x01]);
pub const ROUTER: MacAddr = MacAddr([0x02, 0, 0, 0, 0xbb, 0x01]);

pub struct Testbed {
    pub dp: Dataplane,
    /// p0, p1, p2, then p0's kernel mirror.
    pub ports: Vec<MemoryHandle>,
}

fn n(s: &str) -> IpNet {
    s.parse().expect("valid prefix")
}

fn via(gw: &str) -> RouteTarget {
    RouteTarget::Via {
        gateway: gw.parse().expect("valid address"),
        port: None,
    }
}

impl Default for Testbed {
    fn default() -> Self {
        Self::new()
    }
}

/// NAT44 on the outside port p1: source NAT of 10.0.0.0/8 to a pool,
/// a port forward to host 10.0.0.2, and 1:1 for 10.2.5.0/25.
fn nat_rules(c: &mut crate::Control) {
    use crate::modules::nat44::{Action, Filtering, Ports, Prefix4, Rule, Timeouts};
    let a = |s: &str| u32::from(s.parse::<Ipv4Addr>().expect("address"));
    let rule = |action, src: Vec<Prefix4>, dst: Vec<Prefix4>, proto, dports| Rule {
        name: String::new(),
        vrf: 0,
        port: Some(1),
        src,
        dst,
        proto,
        dports,
        action,
        timeouts: Timeouts::default(),
        max_sessions: 0,
        max_per_source: 4,
    };
    crate::Nat44::set_capacity(c, 4096);
    let rules = [
        (
            "out",
            rule(
                Action::Snat {
                    pool: vec![a("198.51.100.10")],
                    ports: None,
                    filtering: Filtering::AddressDependent,
                    paired: true,
                },
                vec![Prefix4::new(a("10.0.0.0"), 8)],
                vec![],
                None,
                None,
            ),
        ),
        (
            "web",
            rule(
                Action::Dnat {
                    to: a("10.0.0.2"),
                    ports: Some(Ports {
                        first: 8080,
                        last: 8080,
                    }),
                },
                vec![],
                vec![Prefix4::new(a("198.51.100.20"), 32)],
                Some(6),
                Some(Ports {
                    first: 80,
                    last: 80,
                }),
            ),
        ),
        (
            "static",
            rule(
                Action::OneToOne {
                    inside: Prefix4::new(a("10.2.5.0"), 25),
                    outside: Prefix4::new(a("198.51.100.128"), 25),
                },
                vec![],
                vec![],
                None,
                None,
            ),
        ),
    ];
    for (name, r) in rules {
        crate::Nat44::set_rule(c, name, r).expect("NAT rule");
    }
}

impl Testbed {
    pub fn new() -> Testbed {
        let mut b = Builder::new(1);
        let p0 = b.memory_port(0, "p0", GW0, 1500).expect("port").remove(0);
        let p1 = b.memory_port(1, "p1", GW1, 1280).expect("port").remove(0);
        let p2 = b
            .memory_port(2, "p2", GW2, crate::buffer::MAX_MTU)
            .expect("port")
            .remove(0);
        let m0 = b.memory_mirror(3, 0, "tap0").expect("mirror").remove(0);
        let c = b.control();
        c.settings.max_per_port = 64;
        c.settings.max_total = 128;
        c.add_address(0, n("10.0.0.1/24")).expect("address");
        c.add_address(1, n("10.1.0.1/24")).expect("address");
        c.add_address(2, n("10.2.0.1/16")).expect("address");
        c.add_address(0, n("2001:db8::1/64")).expect("address");
        c.add_address(1, n("2001:db8:1::1/64")).expect("address");
        c.add_address(2, n("2001:db8:2::1/64")).expect("address");
        let v4 = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().expect("address"));
        let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().expect("address"));
        c.set_static_neighbour(0, v4("10.0.0.2"), HOST);
        c.set_static_neighbour(1, v4("10.1.0.2"), ROUTER);
        c.set_static_neighbour(1, v4("10.1.0.3"), ROUTER);
        c.set_static_neighbour(0, v6("2001:db8::2"), HOST);
        c.set_static_neighbour(1, v6("2001:db8:1::2"), ROUTER);
        c.add_route(0, n("0.0.0.0/0"), via("10.1.0.2"))
            .expect("route");
        c.add_route(0, n("::/0"), via("2001:db8:1::2"))
            .expect("route");
        c.add_route(
            0,
            n("192.0.2.0/24"),
            RouteTarget::Ecmp(vec![
                ("10.1.0.2".parse().expect("address"), None),
                ("10.1.0.3".parse().expect("address"), None),
            ]),
        )
        .expect("route");
        // A gateway nobody answers for: its packets wait, then fail.
        c.add_route(0, n("198.18.0.0/15"), via("10.2.0.9"))
            .expect("route");
        c.add_route(0, n("203.0.113.0/25"), RouteTarget::Blackhole)
            .expect("route");
        c.add_route(0, n("203.0.113.128/25"), RouteTarget::Prohibit)
            .expect("route");
        c.add_route(0, n("2001:db8:dead::/48"), RouteTarget::Unreachable)
            .expect("route");
        c.add_vrf(7);
        c.add_route(0, n("100.64.0.0/10"), RouteTarget::Table(7))
            .expect("route");
        c.commit();
        nat_rules(c);
        let mut dp = b.build();
        dp.control.commit();
        dp.poll();
        let tb = Testbed {
            dp,
            ports: vec![p0, p1, p2, m0],
        };
        for p in &tb.ports {
            p.collect();
        }
        tb
    }

    /// Send `frames` (port index, bytes; the index is taken modulo the
    /// number of ports) through the graph and check conservation and that
    /// every buffer is back in its pool. Then let the control side run (held
    /// packets, timers) and flush what it sends.
    pub fn run<'a>(
        &mut self,
        frames: impl IntoIterator<Item = (u8, &'a [u8])>,
    ) -> Result<(), String> {
        let before: Vec<_> = self
            .dp
            .workers
            .iter()
            .map(|w| (w.stats(), w.graph.totals()))
            .collect();
        let mut sent = 0u64;
        for (p, f) in frames {
            self.ports[p as usize % self.ports.len()].inject(f.to_vec());
            sent += 1;
        }
        // Workers only: the control side injects nothing meanwhile, so what
        // the workers count is exactly what the frames caused.
        for _ in 0..64 {
            let mut busy = 0;
            for w in &mut self.dp.workers {
                busy += w.poll();
            }
            if busy == 0 {
                break;
            }
        }
        let mut rx = 0;
        for (w, (s0, t0)) in self.dp.workers.iter().zip(&before) {
            let (s1, t1) = (w.stats(), w.graph.totals());
            let got = s1.rx_packets - s0.rx_packets;
            let made = t1.made - t0.made;
            let tx = s1.tx_packets - s0.tx_packets;
            let dropped = t1.dropped - t0.dropped;
            rx += got;
            if got + made != tx + dropped {
                return Err(format!(
                    "worker {}: {got} in + {made} made != {tx} sent + {dropped} dropped",
                    w.id
                ));
            }
            if w.pool.available() != POOL_SIZE {
                return Err(format!(
                    "worker {}: {} buffers not back in the pool",
                    w.id,
                    POOL_SIZE - w.pool.available()
                ));
            }
        }
        if rx != sent {
            return Err(format!("{sent} frames sent, {rx} received"));
        }
        self.dp.control.poll(Instant::now());
        for _ in 0..4 {
            self.dp.poll();
        }
        for w in &self.dp.workers {
            if w.pool.available() != POOL_SIZE {
                return Err(format!("worker {}: buffers leaked after control", w.id));
            }
        }
        for p in &self.ports {
            p.collect();
        }
        Ok(())
    }
}

/// Split fuzzer bytes into frames: [port, length (u16 BE), bytes]...
pub fn split_frames(data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 && out.len() < 512 {
        let port = rest[0];
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let body = &rest[3..];
        let len = len.min(body.len());
        out.push((port, &body[..len]));
        rest = &body[len..];
    }
    out
}
