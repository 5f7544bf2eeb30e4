//! `weir bench e2e-ipv4-fwd`: weir against the Linux kernel as the router
//! of the same lab, in the same run. A generator namespace sends 64-byte
//! UDP over 1024 flows with trafgen (pinned to CPU 0); the router's work is
//! on CPU 1 (kernel: RPS of its ingress to CPU 1; weir: its worker pinned
//! to CPU 1); the sink counts with its interface counters. Three runs each,
//! medians.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use weir_lab::{unique_name, Lab, Netns, Topology};

const GEN_MAC: &str = "02:00:00:00:0a:01";
const LAN_MAC: &str = "02:00:00:00:01:01";
const WAN_MAC: &str = "02:00:00:00:02:01";
const SINK_MAC: &str = "02:00:00:00:0b:01";
const ROUTER_CPU: usize = 1;

#[derive(Serialize, Default, Debug, Clone)]
pub struct E2eResult {
    pub scenario: String,
    pub driver: String,
    pub seconds_per_run: f64,
    pub runs: usize,
    /// Packets per second trafgen offered (median).
    pub generator_pps: f64,
    pub kernel_pps: f64,
    pub weir_pps: f64,
    pub ratio: f64,
    /// CPU seconds spent on the router's CPU per million packets forwarded.
    /// None when the kernel's work could not be put on its own CPU.
    pub kernel_cpu_s_per_mpkt: Option<f64>,
    pub weir_cpu_s_per_mpkt: f64,
    /// How the kernel's forwarding was placed: "rps-cpu1", or
    /// "generator-cpu" when RPS to CPU 1 did not work on this machine.
    pub kernel_mode: String,
    /// True when the router forwarded nearly all the generator offered:
    /// then the generator, not the router, is the limit.
    pub generator_limited: bool,
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

/// CPU time (user + system + irq + softirq) of one CPU, in seconds.
fn cpu_seconds(cpu: usize) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("cpu{cpu} ")))
        .unwrap_or("");
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq
    let busy = f.first().unwrap_or(&0)
        + f.get(1).unwrap_or(&0)
        + f.get(2).unwrap_or(&0)
        + f.get(5).unwrap_or(&0)
        + f.get(6).unwrap_or(&0);
    busy as f64 / 100.0
}

fn counter(ns: &Netns, dev: &str, what: &str) -> u64 {
    ns.output(&["cat", &format!("/sys/class/net/{dev}/statistics/{what}")])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// One trafgen run of `secs`; returns (offered pps, forwarded pps, router
/// CPU seconds per million forwarded).
fn measure(lab: &Lab, conf: &str, secs: f64) -> Result<(f64, f64, f64), String> {
    let gen = lab.node("gen");
    let sink = lab.node("sink");
    let tx0 = counter(gen, "eth0", "tx_packets");
    let rx0 = counter(sink, "eth0", "rx_packets");
    let c0 = cpu_seconds(ROUTER_CPU);
    let t = Instant::now();
    let out = gen
        .command("timeout")
        .args(["-s", "INT", &format!("{secs}")])
        .args([
            "taskset", "-c", "0", "trafgen", "--dev", "eth0", "--conf", conf, "--cpus", "1", "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("trafgen: {e}"))?;
    let el = t.elapsed().as_secs_f64();
    // Let the router drain.
    std::thread::sleep(Duration::from_millis(200));
    let cpu = cpu_seconds(ROUTER_CPU) - c0;
    let tx = counter(gen, "eth0", "tx_packets") - tx0;
    let rx = counter(sink, "eth0", "rx_packets") - rx0;
    if tx == 0 {
        return Err(format!(
            "trafgen sent nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((
        tx as f64 / el,
        rx as f64 / el,
        cpu / (rx.max(1) as f64 / 1e6),
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn trafgen_conf(dir: &std::path::Path) -> Result<String, String> {
    let path = dir.join("udp64.cfg");
    // 60 bytes on the wire before the FCS: 14 + 20 + 8 + 18; 1024 flows by
    // source port.
    let conf = format!(
        "{{\n  eth(da={LAN_MAC}, sa={GEN_MAC}),\n  ipv4(saddr=10.1.0.2, daddr=10.2.0.2, ttl=64),\n  udp(sp=dinc(1024, 2047, 1), dp=9),\n  fill(0x00, 18)\n}}\n"
    );
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    Ok(path.to_string_lossy().into_owned())
}

fn weir_day0(driver: &str) -> String {
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
"#
    )
}

pub fn run(secs: f64, runs: usize, drivers: &[&str]) -> Result<Vec<E2eResult>, String> {
    for tool in ["trafgen", "taskset", "ethtool"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Err(format!("{tool} is missing (scripts/bench-e2e installs it)"));
        }
    }
    let dir = std::env::temp_dir().join(unique_name("-bench"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = trafgen_conf(&dir)?;
    let name = unique_name("").replace('-', "");
    let topo = topology(&name);
    let lab = topo.up().map_err(|e| e.to_string())?;
    let router = lab.node("router");
    let gen = lab.node("gen");
    let err = |e: weir_lab::Error| e.to_string();
    gen.exec(&[
        "ip", "neigh", "replace", "10.1.0.1", "lladdr", LAN_MAC, "dev", "eth0",
    ])
    .map_err(err)?;

    // The kernel as the router.
    router.addr_add("lan", "10.1.0.1/24").map_err(err)?;
    router.addr_add("wan", "10.2.0.1/24").map_err(err)?;
    router.sysctl("net.ipv4.ip_forward", "1").map_err(err)?;
    router
        .exec(&[
            "ip", "neigh", "replace", "10.2.0.2", "lladdr", SINK_MAC, "dev", "wan",
        ])
        .map_err(err)?;
    let rps = format!("{:x}", 1u32 << ROUTER_CPU);
    router
        .exec(&[
            "sh",
            "-c",
            &format!("echo {rps} > /sys/class/net/lan/queues/rx-0/rps_cpus"),
        ])
        .map_err(err)?;
    let mut kernel = Vec::new();
    for _ in 0..runs {
        kernel.push(measure(&lab, &conf, secs)?);
    }
    let mut kernel_mode = "rps-cpu1".to_string();
    // On some virtual machines a cross-CPU wake-up takes milliseconds and
    // RPS starves the generator; then the kernel forwards in the sender's
    // context on CPU 0 (its CPU time cannot be told apart from trafgen's).
    let rps_rate = median(kernel.iter().map(|r| r.1).collect());
    let offered_rps = median(kernel.iter().map(|r| r.0).collect());
    if rps_rate < 0.5 * offered_rps || offered_rps < 50_000.0 {
        router
            .exec(&[
                "sh",
                "-c",
                "echo 0 > /sys/class/net/lan/queues/rx-0/rps_cpus",
            ])
            .map_err(err)?;
        kernel.clear();
        for _ in 0..runs {
            kernel.push(measure(&lab, &conf, secs)?);
        }
        kernel_mode = "generator-cpu".into();
    }
    router.sysctl("net.ipv4.ip_forward", "0").map_err(err)?;
    router
        .exec(&["ip", "addr", "flush", "dev", "lan"])
        .map_err(err)?;
    router
        .exec(&["ip", "addr", "flush", "dev", "wan"])
        .map_err(err)?;

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for driver in drivers {
        let cfg = dir.join(format!("router-{driver}.yaml"));
        std::fs::write(&cfg, weir_day0(driver)).map_err(|e| e.to_string())?;
        let ready = dir.join(format!("ready-{driver}"));
        let mut child = router
            .command(&exe.to_string_lossy())
            .args([
                "serve",
                "--no-mirror",
                "--cores",
                &ROUTER_CPU.to_string(),
                "--config",
            ])
            .arg(&cfg)
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // weir resolves the sink by ARP on the first packets; warm up.
        let _ = measure(&lab, &conf, 0.5);
        let mut weir = Vec::new();
        for _ in 0..runs {
            weir.push(measure(&lab, &conf, secs)?);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let offered = median(kernel.iter().chain(&weir).map(|r| r.0).collect());
        let k = median(kernel.iter().map(|r| r.1).collect());
        let w = median(weir.iter().map(|r| r.1).collect());
        let kc = median(kernel.iter().map(|r| r.2).collect());
        let wc = median(weir.iter().map(|r| r.2).collect());
        results.push(E2eResult {
            scenario: "e2e-ipv4-fwd".into(),
            driver: driver.to_string(),
            seconds_per_run: secs,
            runs,
            generator_pps: offered,
            kernel_pps: k,
            weir_pps: w,
            ratio: w / k.max(1.0),
            kernel_cpu_s_per_mpkt: (kernel_mode == "rps-cpu1").then_some(kc),
            weir_cpu_s_per_mpkt: wc,
            kernel_mode: kernel_mode.clone(),
            generator_limited: w >= 0.97 * offered,
            packets: (w * secs) as u64,
            mpps: w / 1e6,
            ns_per_packet: 1e9 / w.max(1.0),
            cycles_per_packet: 1e9 / w.max(1.0) * crate::bench::tsc_ghz(),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(lab);
    Ok(results)
}
