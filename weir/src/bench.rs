//! `weir bench`: throughput of the whole graph on one core, memory driver rx
//! to tx, and LPM lookups against a reference trie in the same run. One JSON
//! object per line with `--json`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ipnet::IpNet;
use serde::Serialize;
use weir_dataplane::driver::memory::MemoryCounters;
use weir_dataplane::frames::{self, V4};
use weir_dataplane::worker::Queue;
use weir_dataplane::{prefetch, Control, MemoryQueue, PortQueue, RouteTarget, Worker};
use weir_fib::gen;
use weir_packet::MacAddr;

pub const SCENARIOS: &[&str] = &[
    "ipv4-fwd-1route",
    "ipv4-fwd-1m-routes",
    "ipv6-fwd-100k-routes",
    "lpm-ipv4-1m",
    "nat44-established",
    "nat44-new-sessions",
];

const GW0: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
const GW1: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
const SRC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0xaa, 1]);
/// Next-hop routers behind port 1 that the routes are spread over.
const NEXT_HOPS: u32 = 16;

#[derive(Serialize, Default)]
pub struct Result {
    pub scenario: String,
    pub packets: u64,
    pub seconds: f64,
    pub mpps: f64,
    pub ns_per_packet: f64,
    pub cycles_per_packet: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_install_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlookups: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_mlookups: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<f64>,
    /// Forwarding scenarios: how many equal trials `packets` was split in
    /// (`mpps` is the median trial's rate), and the slowest and fastest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trials: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mpps_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mpps_max: Option<f64>,
    /// NAT scenarios: sessions in the table at the end, the table's
    /// memory per session it holds, and new sessions made per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_session: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_per_s: Option<f64>,
    /// Packets NAT dropped (any reason); 0 when every flow got its session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_drops: Option<u64>,
}

/// Trials a forwarding scenario's packets are split in.
const TRIALS: u64 = 10;

pub struct Options {
    /// Packets pushed through the graph per measured scenario.
    pub packets: u64,
    pub core: Option<usize>,
}

pub fn run(name: &str, opts: &Options) -> std::result::Result<Result, String> {
    if let Some(c) = opts.core {
        weir_dataplane::pin_to_core(c);
    }
    match name {
        "ipv4-fwd-1route" => Ok(fwd_v4(name, 0, opts)),
        "ipv4-fwd-1m-routes" => Ok(fwd_v4(name, 1_000_000, opts)),
        "ipv6-fwd-100k-routes" => Ok(fwd_v6(name, 100_000, opts)),
        "lpm-ipv4-1m" => Ok(lpm4(name)),
        "nat44-established" => Ok(nat44(name, false, opts)),
        "nat44-new-sessions" => Ok(nat44(name, true, opts)),
        _ => Err(format!(
            "unknown scenario {name:?}; known: {}",
            SCENARIOS.join(", ")
        )),
    }
}

/// Two ports: traffic in on p0, out on p1 towards NEXT_HOPS routers.
fn control() -> Control {
    let mut c = Control::new();
    c.add_port(0, "p0", GW0, 1500, 0).unwrap();
    c.add_port(1, "p1", GW1, 1500, 0).unwrap();
    c.add_address(0, "10.0.0.1/24".parse().unwrap()).unwrap();
    c.add_address(1, "100.64.0.1/16".parse().unwrap()).unwrap();
    c.add_address(0, "2001:db8::1/64".parse().unwrap()).unwrap();
    c.add_address(1, "2001:db8:ffff::1/64".parse().unwrap())
        .unwrap();
    for i in 0..NEXT_HOPS {
        let mac = MacAddr([2, 0, 0, 1, 0, i as u8]);
        c.set_static_neighbour(1, IpAddr::V4(gw4(i)), mac);
        c.set_static_neighbour(1, IpAddr::V6(gw6(i)), mac);
    }
    c.commit();
    c
}

fn gw4(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, 1, 1 + i as u8)
}

fn gw6(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x100 + i as u16)
}

fn via(gw: IpAddr) -> RouteTarget {
    RouteTarget::Via {
        gateway: gw,
        port: Some(1),
    }
}

/// Drive one worker on this thread until `packets` have gone through.
fn drive(
    name: &str,
    control: Control,
    frames: Vec<Vec<u8>>,
    opts: &Options,
) -> (Result, std::sync::Arc<MemoryCounters>) {
    let warmup = opts.packets / 10;
    let (r, tx, _) = drive_with(name, control, frames, warmup, opts.packets);
    (r, tx)
}

/// Like `drive`, with `warmup` packets first (untimed) and `packets`
/// measured; also hands back the worker's counters.
fn drive_with(
    name: &str,
    mut control: Control,
    frames: Vec<Vec<u8>>,
    warmup: u64,
    packets: u64,
) -> (
    Result,
    std::sync::Arc<MemoryCounters>,
    weir_dataplane::WorkerStats,
) {
    let (rxq, _) = MemoryQueue::replay(frames);
    let (txq, tx) = MemoryQueue::sink();
    let queues = vec![
        Queue {
            port: 0,
            driver: Box::new(rxq) as Box<dyn PortQueue>,
        },
        Queue {
            port: 1,
            driver: Box::new(txq),
        },
    ];
    let registry = weir_dataplane::modules::registry();
    let mut w = Worker::new(
        0,
        registry.graph(),
        weir_dataplane::Pool::new(weir_dataplane::POOL_SIZE),
        control.reader(),
        queues,
        None,
        None,
    )
    .with_tables(control.table_readers(&registry));
    // Warm up caches, page tables and branch predictors.
    let mut n = 0;
    while n < warmup {
        n += w.poll() as u64;
    }
    let tx0 = tx.tx_packets.load(std::sync::atomic::Ordering::Relaxed);
    // Several equal trials back to back; the figure is the median trial,
    // so a burst of interference from the rest of the machine (a shared,
    // noisy host) moves it less than a single long run. The slowest and
    // fastest trials are reported beside it.
    let per_trial = (packets / TRIALS).max(1);
    let mut trials: Vec<(f64, f64)> = Vec::with_capacity(TRIALS as usize);
    let mut done = 0u64;
    let t0 = Instant::now();
    for _ in 0..TRIALS {
        let (t, c0) = (Instant::now(), prefetch::cycles());
        let mut n = 0u64;
        while n < per_trial {
            n += w.poll() as u64;
        }
        let cycles = prefetch::cycles() - c0;
        trials.push((
            n as f64 / t.elapsed().as_secs_f64(),
            cycles as f64 / n as f64,
        ));
        done += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    let forwarded = tx.tx_packets.load(std::sync::atomic::Ordering::Relaxed) - tx0;
    let stats = w.stats();
    drop(control);
    trials.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (pps, cycles) = trials[trials.len() / 2];
    (
        Result {
            scenario: name.to_string(),
            packets: done,
            seconds: secs,
            mpps: pps / 1e6,
            ns_per_packet: 1e9 / pps,
            cycles_per_packet: cycles,
            forwarded: Some(forwarded),
            trials: Some(TRIALS),
            mpps_min: Some(trials[0].0 / 1e6),
            mpps_max: Some(trials[trials.len() - 1].0 / 1e6),
            ..Default::default()
        },
        tx,
        stats,
    )
}

/// Sessions in the NAT scenarios.
const NAT_SESSIONS: u32 = 1 << 20;

/// Source NAT of 1M flows (16384 inside hosts, 64 ports each) to a pool
/// of 32 addresses, from p0 out of p1. `new_sessions`: every packet is
/// a new flow, timed once through; else the flows are made first
/// (untimed) and then sent again in random order, each hitting its
/// session.
fn nat44(name: &str, new_sessions: bool, opts: &Options) -> Result {
    use weir_dataplane::modules::nat44::{Action, Filtering, Prefix4, Rule, Timeouts};
    let mut c = control();
    c.add_route(0, "0.0.0.0/0".parse().unwrap(), via(IpAddr::V4(gw4(0))))
        .unwrap();
    c.commit();
    weir_dataplane::Nat44::set_capacity(&mut c, NAT_SESSIONS as usize);
    let pool: Vec<u32> = (0..32).map(|i| 0xcb00_7100 + i).collect(); // 203.0.113.0/27
    let rule = Rule {
        name: String::new(),
        vrf: 0,
        port: Some(1),
        src: vec![Prefix4::new(0x0a00_0000, 8)],
        dst: vec![],
        proto: None,
        dports: None,
        action: Action::Snat {
            pool,
            ports: None,
            filtering: Filtering::EndpointIndependent,
            paired: true,
        },
        timeouts: Timeouts::default(),
        max_sessions: 0,
        max_per_source: 0,
    };
    weir_dataplane::Nat44::set_rule(&mut c, "bench", rule).expect("rule");
    let store = weir_dataplane::Nat44::store(&mut c).expect("table made");
    let mut flows: Vec<(u32, u16, u32)> = (0..NAT_SESSIONS)
        .map(|i| {
            let host = i >> 6;
            let src = 0x0a00_0000 | (host + 2);
            let sport = 1024 + (i & 63) as u16 * 7;
            let dst = 0x0800_0000 | (i.wrapping_mul(2_654_435_761) & 0x00ff_ffff);
            (src, sport, dst)
        })
        .collect();
    if !new_sessions {
        // Random order: each packet a random session of the table.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in (1..flows.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            flows.swap(i, (x % (i as u64 + 1)) as usize);
        }
    }
    let frames: Vec<Vec<u8>> = flows
        .iter()
        .map(|&(s, sp, d)| {
            let ip = V4::new(Ipv4Addr::from(s), Ipv4Addr::from(d));
            frames::udp4(GW0, SRC_MAC, &ip, sp, 4789, 18) // 64-byte frames
        })
        .collect();
    let n = frames.len() as u64;
    let (warmup, packets) = if new_sessions {
        (0, n)
    } else {
        (n, opts.packets)
    };
    let (mut r, _, stats) = drive_with(name, c, frames, warmup, packets);
    let sessions = store.active();
    r.sessions = Some(sessions);
    r.bytes_per_session = Some(store.bytes() as f64 / store.capacity() as f64);
    r.nat_drops = Some(
        stats
            .drops()
            .filter(|(d, _)| d.starts_with("nat44"))
            .map(|(_, c)| c)
            .sum(),
    );
    for (d, c) in stats
        .drops()
        .filter(|(d, c)| d.starts_with("nat44") && *c > 0)
    {
        eprintln!("{d}: {c}");
    }
    if new_sessions {
        r.sessions_per_s = Some(sessions as f64 / r.seconds);
    }
    r
}

fn fwd_v4(name: &str, routes: usize, opts: &Options) -> Result {
    let mut c = control();
    let t = Instant::now();
    let dsts: Vec<u32> = if routes == 0 {
        c.add_route(0, "0.0.0.0/0".parse().unwrap(), via(IpAddr::V4(gw4(0))))
            .unwrap();
        // 1024 flows to one route.
        (0..1024u32).map(|i| 0x1000_0000 + i).collect()
    } else {
        let prefixes = gen::ipv4_prefixes(routes, 42);
        for (i, (a, l)) in prefixes.iter().enumerate() {
            let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(*a)), *l).unwrap();
            let gw = gw4(i as u32 % NEXT_HOPS);
            // Skip the two subnets of the bench's own ports.
            if p.contains(&IpAddr::V4(gw)) || p.contains(&"10.0.0.2".parse::<IpAddr>().unwrap()) {
                continue;
            }
            c.add_route(0, p, via(IpAddr::V4(gw))).unwrap();
        }
        c.add_route(0, "0.0.0.0/0".parse().unwrap(), via(IpAddr::V4(gw4(0))))
            .unwrap();
        // Random destinations inside the table's prefixes.
        gen::addrs_in_prefixes_v4(&prefixes, 65536, 7)
    };
    c.commit();
    let install = t.elapsed().as_secs_f64();
    let frames: Vec<Vec<u8>> = dsts
        .iter()
        .map(|d| {
            let ip = V4::new(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::from(*d));
            frames::udp4(GW0, SRC_MAC, &ip, 1024, 4789, 18) // 64-byte frames
        })
        .collect();
    let nroutes = c.route_count();
    let (mut r, _) = drive(name, c, frames, opts);
    r.routes = Some(nroutes);
    r.route_install_seconds = Some(install);
    r
}

fn fwd_v6(name: &str, routes: usize, opts: &Options) -> Result {
    let mut c = control();
    let t = Instant::now();
    let prefixes = gen::ipv6_prefixes(routes, 42);
    for (i, (a, l)) in prefixes.iter().enumerate() {
        let p = IpNet::new(IpAddr::V6(Ipv6Addr::from(*a)), *l).unwrap();
        if p.contains(&"2001:db8::".parse::<IpAddr>().unwrap()) {
            continue;
        }
        c.add_route(0, p, via(IpAddr::V6(gw6(i as u32 % NEXT_HOPS))))
            .unwrap();
    }
    c.add_route(0, "::/0".parse().unwrap(), via(IpAddr::V6(gw6(0))))
        .unwrap();
    c.commit();
    let install = t.elapsed().as_secs_f64();
    let dsts = gen::addrs_in_prefixes_v6(&prefixes, 65536, 7);
    let src: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let frames: Vec<Vec<u8>> = dsts
        .iter()
        .map(|d| {
            frames::udp6(
                GW0,
                SRC_MAC,
                &frames::V6 {
                    src,
                    dst: Ipv6Addr::from(*d),
                    hop_limit: 64,
                },
                1024,
                4789,
                0,
            )
        }) // 62 bytes + pad
        .collect();
    let nroutes = c.route_count();
    let (mut r, _) = drive(name, c, frames, opts);
    r.routes = Some(nroutes);
    r.route_install_seconds = Some(install);
    r
}

fn lpm4(name: &str) -> Result {
    let prefixes = gen::ipv4_prefixes(1_000_000, 42);
    let addrs = gen::random_addrs_v4(4_000_000, 9);
    let t = Instant::now();
    let cmp = weir_fib::bench::lpm4_compare(&prefixes, &addrs);
    assert!(cmp.agree, "our LPM and the reference disagree");
    Result {
        scenario: name.to_string(),
        packets: cmp.lookups as u64,
        seconds: t.elapsed().as_secs_f64(),
        mpps: cmp.mlookups,
        ns_per_packet: cmp.ns_per_lookup,
        cycles_per_packet: cmp.ns_per_lookup * tsc_ghz(),
        routes: Some(cmp.prefixes),
        mlookups: Some(cmp.mlookups),
        reference_mlookups: Some(cmp.reference_mlookups),
        ratio: Some(cmp.ratio),
        memory_mib: Some(cmp.memory_bytes as f64 / (1 << 20) as f64),
        ..Default::default()
    }
}

/// TSC ticks per nanosecond, measured once.
pub fn tsc_ghz() -> f64 {
    static GHZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *GHZ.get_or_init(|| {
        let t = Instant::now();
        let c = prefetch::cycles();
        std::thread::sleep(std::time::Duration::from_millis(50));
        (prefetch::cycles() - c) as f64 / t.elapsed().as_nanos() as f64
    })
}
