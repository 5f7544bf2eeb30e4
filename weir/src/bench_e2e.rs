//! `weir bench e2e-ipv4-fwd`: weir against the Linux kernel as the router
//! of the same topology, in the same run.
//!
//! Each router under test gets its own lab (gen -- router -- sink), all up
//! at once, so that trials of every router can be interleaved: a round is
//! one trial of each, and the ratio is taken per round (weir against the
//! best kernel arrangement of that round), so slow spells of a shared
//! machine move weir and the kernel alike. The figure is the median round.
//!
//! - Generator: weir's own AF_XDP transmit path (AF_PACKET where AF_XDP is
//!   refused) on the gen namespace's eth0, from a fixed set of 1024 frames
//!   (64-byte UDP, 1024 flows by source port), on CPU 0. It offers what the
//!   link takes; the offered rate is what gen's eth0 transmitted (sent plus
//!   dropped at the peer), the forwarded rate what the sink received.
//! - Routes: 10.3.0.0/16 via the sink (10.2.0.2), so each packet takes a
//!   route lookup to a next hop; the sink, not forwarding, drops them right
//!   after its own route lookup (no ICMP).
//! - The kernel is measured in every arrangement this machine offers for a
//!   veth: forwarding in the sender's softirq on CPU 0 (`sender-cpu0`), RPS
//!   of the ingress to CPU 1 (`rps-cpu1`), and veth's threaded NAPI with
//!   its thread on CPU 1 (`napi-thread-cpu1`). weir: its worker on CPU 1.
//! - Generator, weir's worker and the NAPI thread run SCHED_FIFO, so other
//!   work on the machine delays them less (it still takes the CPU from
//!   ksoftirqd and whatever else is not real-time).
//! - Router CPU: softirq time of both CPUs (tick-sampled from /proc/stat:
//!   the kernel's forwarding, veth's receive work for weir's sockets, the
//!   sink's drop) plus the CPU time of the router's own threads (weir's
//!   worker, the NAPI thread), over the generator's window.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use weir_dataplane::driver::{self, DriverKind, DriverOptions};
use weir_dataplane::frames::{self, V4};
use weir_dataplane::{Pool, PortQueue};
use weir_lab::{unique_name, Lab, Topology};
use weir_packet::MacAddr;

const GEN_MAC: &str = "02:00:00:00:0a:01";
const LAN_MAC: &str = "02:00:00:00:01:01";
const WAN_MAC: &str = "02:00:00:00:02:01";
const SINK_MAC: &str = "02:00:00:00:0b:01";
const GEN_CPU: usize = 0;
const ROUTER_CPU: usize = 1;
/// Real-time priority of the generator and of the routers' threads.
const RT_PRIORITY: i32 = 10;
/// Frames per generator burst.
const BURST: usize = 64;
/// Kernel arrangements, in the order they are tried.
const KERNEL: [&str; 3] = ["sender-cpu0", "rps-cpu1", "napi-thread-cpu1"];

/// One arrangement's figures: medians over rounds, and every round.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Figures {
    /// What the arrangement is.
    pub arrangement: String,
    /// Packets per second the sink received (median round).
    pub pps: f64,
    /// Packets per second the generator put on the link (median round).
    pub offered_pps: f64,
    /// Packets per second the generator tried to send (median round): more
    /// than `offered_pps` when the link pushed back (a full ring).
    pub attempted_pps: f64,
    /// Router CPU time per forwarded packet, nanoseconds (median round).
    pub router_cpu_ns_per_packet: f64,
    /// The router forwarded nearly all that was offered (≥ 97%) and the
    /// link took nearly all the generator tried to send, in most rounds:
    /// the generator, not the router, is the limit, and `pps` is a floor.
    pub generator_limited: bool,
    pub pps_per_round: Vec<f64>,
    pub offered_pps_per_round: Vec<f64>,
    /// Why the arrangement could not be measured, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Debug, Clone, Default)]
pub struct E2eResult {
    pub scenario: String,
    /// weir's driver.
    pub driver: String,
    pub seconds_per_trial: f64,
    pub rounds: usize,
    /// weir's forwarded rate over the best kernel arrangement's, median of
    /// the rounds.
    pub ratio: f64,
    pub ratio_per_round: Vec<f64>,
    pub weir: Figures,
    /// The kernel arrangement that was best in most rounds.
    pub kernel_best: String,
    /// The best kernel arrangement's rate (median round) and weir's.
    pub kernel_pps: f64,
    pub weir_pps: f64,
    /// Best kernel rate per round, median.
    pub kernel_best_pps: f64,
    pub kernel: BTreeMap<String, Figures>,
    /// How the traffic was made.
    pub generator: String,
    /// Either weir or the best kernel arrangement forwarded nearly all it
    /// was offered: then the ratio understates the difference.
    pub generator_limited: bool,
    /// How router CPU time was measured.
    pub cpu_accounting: String,
    pub packets: u64,
    pub mpps: f64,
    pub ns_per_packet: f64,
    pub cycles_per_packet: f64,
}

fn topology(name: &str) -> Topology {
    Topology::parse(&format!(
        r#"
lab: {name}
nodes:
  gen:
    interfaces:
      eth0: {{ addresses: [10.1.0.2/24], mac: "{GEN_MAC}" }}
  router:
    interfaces:
      lan: {{ mac: "{LAN_MAC}" }}
      wan: {{ mac: "{WAN_MAC}" }}
  sink:
    interfaces:
      eth0: {{ addresses: [10.2.0.2/24], mac: "{SINK_MAC}" }}
links:
  - [gen:eth0, router:lan]
  - [sink:eth0, router:wan]
"#
    ))
    .expect("built-in lab")
}

/// The source NAT rule of `e2e-nat44`: what the gateway sends out of
/// wan leaves from wan's own address (nftables' masquerade, for the
/// kernel).
const NAT_RULE: &str = r#"---
apiVersion: weir/v1
kind: NatRule
metadata: { name: masquerade }
spec: { type: snat44, interface: wan, match: { source: [10.1.0.0/24] }, translate: { masquerade: true } }
"#;

/// nftables masquerade for the kernel router, one command at a time.
const NFT_MASQUERADE: &[&[&str]] = &[
    &["nft", "add", "table", "ip", "nat"],
    &[
        "nft",
        "add",
        "chain",
        "ip",
        "nat",
        "post",
        "{ type nat hook postrouting priority 100; policy accept; }",
    ],
    &[
        "nft",
        "add",
        "rule",
        "ip",
        "nat",
        "post",
        "oifname",
        "wan",
        "ip",
        "saddr",
        "10.1.0.0/24",
        "masquerade",
    ],
];

fn weir_day0(driver: &str, nat: bool) -> String {
    let nat = if nat { NAT_RULE } else { "" };
    format!(
        r#"apiVersion: weir/v1
kind: Interface
metadata: {{ name: lan }}
spec: {{ hostInterface: lan, driver: {driver}, addresses: [10.1.0.1/24] }}
---
apiVersion: weir/v1
kind: Interface
metadata: {{ name: wan }}
spec: {{ hostInterface: wan, driver: {driver}, addresses: [10.2.0.1/24] }}
---
apiVersion: weir/v1
kind: Route
metadata: {{ name: bench }}
spec: {{ prefix: 10.3.0.0/16, nextHop: {{ address: 10.2.0.2 }} }}
{nat}"#
    )
}

/// The generator's frames: 64 bytes on the wire with the FCS, 1024 flows.
fn frames() -> Vec<Vec<u8>> {
    let mac = |s: &str| s.parse::<MacAddr>().expect("MAC");
    let ip = V4::new("10.1.0.2".parse().unwrap(), "10.3.0.1".parse().unwrap());
    (0..1024u16)
        .map(|i| frames::udp4(mac(LAN_MAC), mac(GEN_MAC), &ip, 1024 + i, 9, 18))
        .collect()
}

/// Per-CPU softirq time from /proc/stat, seconds (tick-sampled).
fn softirq_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let hz = 100.0; // USER_HZ
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .filter_map(|l| l.split_whitespace().nth(7)?.parse::<f64>().ok())
        .sum::<f64>()
        / hz
}

/// CPU time of one thread, seconds (exact, from the scheduler).
fn thread_seconds(tid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .unwrap_or(0.0)
}

/// (rx_packets, tx_packets + tx_dropped) of `dev` in the network
/// namespace of process `pid`.
fn link_counters(pid: u32, dev: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    for line in text.lines() {
        if let Some((name, rest)) = line.split_once(':') {
            if name.trim() == dev {
                let f: Vec<u64> = rest
                    .split_whitespace()
                    .map(|x| x.parse().unwrap_or(0))
                    .collect();
                if f.len() >= 12 {
                    return (f[1], f[9] + f[11]);
                }
            }
        }
    }
    (0, 0)
}

/// Pin thread `tid` to one CPU (util-linux `taskset`).
fn pin_thread(tid: u32, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SCHED_FIFO for thread `tid` (util-linux `chrt`). Best effort.
fn realtime(tid: u32) -> bool {
    Command::new("chrt")
        .args(["-f", "-p", &RT_PRIORITY.to_string(), &tid.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The calling thread's id.
fn gettid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One router under test: its lab, the generator's queue on gen's eth0,
/// and what to charge as router CPU.
struct Bed {
    name: String,
    lab: Lab,
    gen: Option<Box<dyn PortQueue>>,
    /// Processes left in gen and sink, whose /proc/PID/net/dev shows the
    /// namespace's interface counters without starting anything.
    gen_pid: u32,
    sink_pid: u32,
    /// Threads whose CPU time is router work (weir's worker, NAPI thread).
    router_threads: Vec<u32>,
    weir: Option<Child>,
    trials: Vec<Trial>,
    /// The router masquerades what it sends out of wan.
    nat: bool,
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.gen = None;
        if let Some(mut c) = self.weir.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Trial {
    attempted_pps: f64,
    offered_pps: f64,
    pps: f64,
    cpu_ns_per_packet: f64,
}

impl Bed {
    fn new(label: &str, gen_kind: DriverKind, nat: bool) -> Result<Bed, String> {
        let name = unique_name("").replace('-', "");
        let lab = topology(&format!("{name}{label}"))
            .up()
            .map_err(|e| e.to_string())?;
        let keep = |node: &str| {
            lab.node(node)
                .spawn(&["sleep", "100000"])
                .map_err(|e| e.to_string())
        };
        let (gen_pid, sink_pid) = (keep("gen")?, keep("sink")?);
        let sink = lab.node("sink");
        // The sink drops what it receives after one route lookup.
        sink.sysctl("net.ipv4.ip_forward", "0")
            .map_err(|e| e.to_string())?;
        let ns = lab.node("gen").name().to_string();
        let mut opts = DriverOptions::default();
        // Transmit only: no XDP program on the generator's side.
        opts.afxdp.attach_program = false;
        let (q, _, _) = driver::in_netns(&ns, move || driver::open(gen_kind, "eth0", 0, &opts))
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("generator on {ns}: {e}"))?;
        Ok(Bed {
            name: label.to_string(),
            lab,
            gen: Some(q),
            gen_pid,
            sink_pid,
            router_threads: Vec::new(),
            weir: None,
            trials: Vec::new(),
            nat,
        })
    }

    fn router(&self, args: &[&str]) -> Result<(), String> {
        self.lab
            .node("router")
            .exec(args)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The kernel as the router, in arrangement `mode`.
    fn kernel(&mut self, mode: &str) -> Result<(), String> {
        self.router(&["ip", "addr", "add", "10.1.0.1/24", "dev", "lan"])?;
        self.router(&["ip", "addr", "add", "10.2.0.1/24", "dev", "wan"])?;
        self.router(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        self.router(&[
            "ip", "neigh", "replace", "10.2.0.2", "lladdr", SINK_MAC, "dev", "wan",
        ])?;
        self.router(&["ip", "route", "add", "10.3.0.0/16", "via", "10.2.0.2"])?;
        if self.nat {
            for cmd in NFT_MASQUERADE {
                self.router(cmd)?;
            }
        }
        match mode {
            "sender-cpu0" => {}
            "rps-cpu1" => self.router(&[
                "sh",
                "-c",
                &format!(
                    "echo {:x} > /sys/class/net/lan/queues/rx-0/rps_cpus",
                    1u32 << ROUTER_CPU
                ),
            ])?,
            "napi-thread-cpu1" => {
                // veth receives through NAPI once GRO is on; threaded NAPI
                // moves that poll into a kernel thread we can place.
                let before = napi_threads();
                self.router(&["ethtool", "-K", "lan", "gro", "on"])?;
                self.router(&["sh", "-c", "echo 1 > /sys/class/net/lan/threaded"])?;
                let new: Vec<u32> = napi_threads()
                    .into_iter()
                    .filter(|t| !before.contains(t))
                    .collect();
                if new.is_empty() {
                    return Err("no NAPI thread appeared for lan".into());
                }
                for &t in &new {
                    if !pin_thread(t, ROUTER_CPU) {
                        return Err(format!("cannot pin NAPI thread {t} to CPU {ROUTER_CPU}"));
                    }
                    realtime(t);
                }
                self.router_threads = new;
            }
            _ => unreachable!("unknown arrangement {mode}"),
        }
        Ok(())
    }

    /// weir as the router, with `driver`, its worker on the router CPU.
    fn weir(&mut self, driver: &str, dir: &std::path::Path) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let cfg = dir.join(format!("router-{driver}.yaml"));
        std::fs::write(&cfg, weir_day0(driver, self.nat)).map_err(|e| e.to_string())?;
        let ready = dir.join(format!("ready-{driver}"));
        let log = dir.join(format!("weir-{driver}.log"));
        let child = self
            .lab
            .node("router")
            .command(&exe.to_string_lossy())
            .args([
                "serve",
                "--no-mirror",
                "--listen",
                &format!("unix:{}", dir.join(format!("api-{driver}.sock")).display()),
                "--store",
                &dir.join(format!("store-{driver}.redb")).to_string_lossy(),
                "--cores",
                &ROUTER_CPU.to_string(),
                "--config",
            ])
            .arg(&cfg)
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| e.to_string())?;
        let pid = child.id();
        self.weir = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "weir serve ({driver}) not ready in 20 s: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let workers = threads_named(pid, "weir-worker");
        if workers.is_empty() {
            return Err(format!("weir serve ({driver}): no worker thread"));
        }
        for &t in &workers {
            realtime(t);
        }
        self.router_threads = workers;
        Ok(())
    }

    /// One generator run of `secs`.
    fn trial(&mut self, frames: &[Vec<u8>], secs: f64) -> Result<Trial, String> {
        let mut q = self.gen.take().ok_or("generator queue lost")?;
        let frames = frames.to_vec();
        let (gen_pid, sink_pid) = (self.gen_pid, self.sink_pid);
        let threads = self.router_threads.clone();
        let cpu =
            move || softirq_seconds() + threads.iter().map(|&t| thread_seconds(t)).sum::<f64>();
        let h = std::thread::spawn(move || {
            weir_dataplane::pin_to_core(GEN_CPU);
            realtime(gettid());
            let mut pool = Pool::new(4 * BURST);
            let mut ids = [0; BURST];
            let mut k = 0;
            let (_, tx0) = link_counters(gen_pid, "eth0");
            let (rx0, _) = link_counters(sink_pid, "eth0");
            let c0 = cpu();
            let t0 = Instant::now();
            let deadline = t0 + Duration::from_secs_f64(secs);
            let mut n = 0u64;
            loop {
                for id in ids.iter_mut() {
                    *id = pool.alloc().expect("burst fits the pool");
                    pool.get_mut(*id).fill(&frames[k]);
                    k = (k + 1) % frames.len();
                }
                q.tx_burst(&mut pool, &ids);
                n += 1;
                if n.is_multiple_of(16) && Instant::now() >= deadline {
                    break;
                }
            }
            let el = t0.elapsed().as_secs_f64();
            let (_, tx1) = link_counters(gen_pid, "eth0");
            let (rx1, _) = link_counters(sink_pid, "eth0");
            let c1 = cpu();
            (q, el, n * BURST as u64, tx1 - tx0, rx1 - rx0, c1 - c0)
        });
        let (q, el, tried, tx, rx, cpu) = h.join().map_err(|_| "generator thread panicked")?;
        self.gen = Some(q);
        // Let queues drain before the next trial.
        std::thread::sleep(Duration::from_millis(100));
        if tx == 0 {
            return Err(format!("{}: the generator sent nothing", self.name));
        }
        Ok(Trial {
            attempted_pps: tried as f64 / el,
            offered_pps: tx as f64 / el,
            pps: rx as f64 / el,
            cpu_ns_per_packet: cpu * 1e9 / rx.max(1) as f64,
        })
    }

    fn figures(&self, arrangement: &str) -> Figures {
        let pps: Vec<f64> = self.trials.iter().map(|t| t.pps).collect();
        let off: Vec<f64> = self.trials.iter().map(|t| t.offered_pps).collect();
        let cpu: Vec<f64> = self.trials.iter().map(|t| t.cpu_ns_per_packet).collect();
        let limited = self
            .trials
            .iter()
            .filter(|t| t.pps >= 0.97 * t.offered_pps && t.offered_pps >= 0.97 * t.attempted_pps)
            .count();
        let tried: Vec<f64> = self.trials.iter().map(|t| t.attempted_pps).collect();
        Figures {
            arrangement: arrangement.to_string(),
            pps: median(&pps),
            offered_pps: median(&off),
            attempted_pps: median(&tried),
            router_cpu_ns_per_packet: median(&cpu),
            generator_limited: 2 * limited > self.trials.len(),
            pps_per_round: pps,
            offered_pps_per_round: off,
            error: None,
        }
    }
}

/// Kernel threads named `napi/...`.
fn napi_threads() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("napi/"))
        })
        .collect()
}

/// Threads of `pid` whose name starts with `prefix`.
fn threads_named(pid: u32, prefix: &str) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .is_ok_and(|c| c.starts_with(prefix))
        })
        .collect()
}

const KERNEL_DESCRIPTIONS: [(&str, &str); 3] = [
    (
        "sender-cpu0",
        "kernel forwarding in the generator's softirq on CPU 0 (no RPS)",
    ),
    (
        "rps-cpu1",
        "kernel forwarding on CPU 1, ingress steered there by RPS",
    ),
    (
        "napi-thread-cpu1",
        "kernel forwarding in veth's threaded NAPI, thread pinned to CPU 1",
    ),
];

/// Scenarios on real interfaces (run only when named).
pub const SCENARIOS: &[&str] = &["e2e-ipv4-fwd", "e2e-nat44"];

/// `scenario`: `e2e-ipv4-fwd`, or `e2e-nat44` (the same with source NAT:
/// nftables masquerade in the kernel, a masquerading NatRule in weir).
pub fn run(
    scenario: &str,
    secs: f64,
    rounds: usize,
    drivers: &[&str],
) -> Result<Vec<E2eResult>, String> {
    let nat = scenario == "e2e-nat44";
    let tools: &[&str] = if nat {
        &["ethtool", "sysctl", "sleep", "taskset", "chrt", "nft"]
    } else {
        &["ethtool", "sysctl", "sleep", "taskset", "chrt"]
    };
    for &tool in tools {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Err(format!("{tool} is missing (scripts/bench installs it)"));
        }
    }
    let dir = std::env::temp_dir().join(unique_name("-bench"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = run_in(&dir, scenario, nat, secs, rounds, drivers);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(
    dir: &std::path::Path,
    scenario: &str,
    nat: bool,
    secs: f64,
    rounds: usize,
    drivers: &[&str],
) -> Result<Vec<E2eResult>, String> {
    let frames = frames();
    // The generator: AF_XDP, or AF_PACKET where AF_XDP is refused.
    let mut gen_kind = DriverKind::AfXdp;
    let probe = Bed::new("p", gen_kind, false).or_else(|e| {
        gen_kind = DriverKind::AfPacket;
        Bed::new("p", gen_kind, false).map_err(|e2| format!("{e}; {e2}"))
    })?;
    drop(probe);
    let generator = format!(
        "weir {} transmit from 1024 prepared frames (64-byte UDP, 1024 flows) on CPU {GEN_CPU}, SCHED_FIFO {RT_PRIORITY}",
        match gen_kind {
            DriverKind::AfXdp => "AF_XDP (copy mode)",
            _ => "AF_PACKET",
        }
    );

    let mut kernel: Vec<(&str, Result<Bed, String>)> = Vec::new();
    for (i, mode) in KERNEL.iter().enumerate() {
        let bed = Bed::new(&format!("k{i}"), gen_kind, nat).and_then(|mut b| {
            b.kernel(mode)?;
            Ok(b)
        });
        kernel.push((mode, bed));
    }
    let mut weir: Vec<(&str, Bed)> = Vec::new();
    for (i, d) in drivers.iter().enumerate() {
        let mut b = Bed::new(&format!("w{i}"), gen_kind, nat)?;
        b.weir(d, dir)?;
        weir.push((d, b));
    }
    // Warm up every router (weir resolves the sink by ARP on the first
    // packets); an arrangement that fails here is reported, not measured.
    for (mode, bed) in kernel.iter_mut() {
        if let Ok(b) = bed {
            if let Err(e) = b.trial(&frames, 0.3) {
                *bed = Err(format!("{mode}: {e}"));
            }
        }
    }
    if let Some(e) = kernel
        .iter()
        .all(|(_, b)| b.is_err())
        .then(|| kernel.iter().filter_map(|(_, b)| b.as_ref().err()).next())
        .flatten()
    {
        return Err(format!(
            "no kernel arrangement ran, so there is nothing to compare with: {e}"
        ));
    }
    for (_, b) in weir.iter_mut() {
        b.trial(&frames, 0.5)?;
    }
    let mut best_per_round: Vec<(f64, &str)> = Vec::new();
    for _ in 0..rounds {
        let mut best = (0.0, "");
        for (mode, bed) in kernel.iter_mut() {
            let Ok(b) = bed else { continue };
            let t = b.trial(&frames, secs)?;
            b.trials.push(t);
            if t.pps > best.0 {
                best = (t.pps, mode);
            }
        }
        for (_, b) in weir.iter_mut() {
            let t = b.trial(&frames, secs)?;
            b.trials.push(t);
        }
        best_per_round.push(best);
    }

    let describe = |mode: &str| {
        KERNEL_DESCRIPTIONS
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, d)| d.to_string())
            .unwrap_or_default()
    };
    let kernel_figures: BTreeMap<String, Figures> = kernel
        .iter()
        .map(|(mode, bed)| {
            let f = match bed {
                Ok(b) => b.figures(&describe(mode)),
                Err(e) => Figures {
                    arrangement: describe(mode),
                    error: Some(e.clone()),
                    ..Default::default()
                },
            };
            (mode.to_string(), f)
        })
        .collect();
    let kernel_best = {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, m) in &best_per_round {
            *count.entry(m).or_default() += 1;
        }
        count
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(m, _)| m.to_string())
            .unwrap_or_default()
    };
    let best_pps: Vec<f64> = best_per_round.iter().map(|b| b.0).collect();
    let best_limited = kernel_figures
        .get(&kernel_best)
        .is_some_and(|f| f.generator_limited);

    let mut results = Vec::new();
    for (d, b) in &weir {
        let w = b.figures(&format!(
            "weir, driver {d}, worker pinned to CPU {ROUTER_CPU}"
        ));
        let ratios: Vec<f64> = b
            .trials
            .iter()
            .zip(&best_pps)
            .map(|(t, k)| t.pps / k.max(1.0))
            .collect();
        let pps = w.pps;
        results.push(E2eResult {
            scenario: scenario.into(),
            kernel_pps: median(&best_pps),
            weir_pps: pps,
            driver: d.to_string(),
            seconds_per_trial: secs,
            rounds,
            ratio: median(&ratios),
            ratio_per_round: ratios,
            generator_limited: w.generator_limited || best_limited,
            weir: w,
            kernel_best: kernel_best.clone(),
            kernel_best_pps: median(&best_pps),
            kernel: kernel_figures.clone(),
            generator: generator.clone(),
            cpu_accounting: "softirq time of all CPUs (/proc/stat, tick-sampled) plus the \
                             scheduler's CPU time of the router's threads (weir's worker, which \
                             busy-polls under load; the NAPI thread), over each trial"
                .into(),
            packets: (pps * secs) as u64,
            mpps: pps / 1e6,
            ns_per_packet: 1e9 / pps.max(1.0),
            cycles_per_packet: 1e9 / pps.max(1.0) * crate::bench::tsc_ghz(),
        });
    }
    Ok(results)
}
