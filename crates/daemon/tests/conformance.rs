//! Golden conformance scenarios for the management path, in-process and
//! without root: each folder of `tests/conformance/` is a scenario, run
//! against a `weir-daemon` on the memory driver. A step (`NN-name.yaml`)
//! applies and deletes objects through the API and sends packets from the
//! scenario's hosts; after it, what an operator would look at — every
//! object's state, the FIB of every VPC, and the frames that came out for
//! each packet sent — is rendered as text and compared with
//! `NN-name.expect`. `WEIR_BLESS=1` writes the `.expect` files instead
//! (review the diff before committing them).
//!
//! `scenario.yaml` names the hosts on the memory wires; the runner answers
//! ARP and neighbour solicitations for them, as hosts on a link would.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use weir_daemon::{Daemon, ServeArgs};
use weir_dataplane::driver::memory::{wire, MemoryHandle};
use weir_dataplane::frames::{self, V4, V6};
use weir_model::Object;
use weir_packet::MacAddr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    /// What the scenario shows; printed with its failures.
    description: String,
    #[serde(default)]
    hosts: BTreeMap<String, Host>,
    /// Workers the daemon runs.
    #[serde(default = "one")]
    workers: usize,
}

fn one() -> usize {
    1
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Host {
    /// The memory wire (an Interface's `hostInterface`) the host is on.
    wire: String,
    mac: String,
    #[serde(default)]
    ipv4: Option<std::net::Ipv4Addr>,
    #[serde(default)]
    ipv6: Option<std::net::Ipv6Addr>,
    /// The gateway's MAC on that wire, where the host sends its packets.
    gateway_mac: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default)]
    apply: Vec<serde_json::Value>,
    /// `Kind/name` of objects to delete.
    #[serde(default)]
    delete: Vec<String>,
    #[serde(default)]
    send: Vec<Send>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    from: String,
    to: IpAddr,
    /// udp or icmp (an echo request).
    proto: String,
    #[serde(default)]
    ttl: Option<u8>,
    #[serde(default)]
    size: Option<usize>,
}

fn mac(s: &str) -> MacAddr {
    let b: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).expect("MAC"))
        .collect();
    MacAddr(b.try_into().expect("six bytes"))
}

fn show_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One frame as a line: addresses, protocol, the fields that matter.
fn render(f: &[u8]) -> String {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let head = if f.len() >= 12 {
        format!("{} > {}", show_mac(&f[6..12]), show_mac(&f[0..6]))
    } else {
        "runt".into()
    };
    let p = match SlicedPacket::from_ethernet(f) {
        Ok(p) => p,
        Err(e) => return format!("{head} unparsed ({e})"),
    };
    let net = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            format!(
                "ipv4 {} > {} ttl {}",
                h.source_addr(),
                h.destination_addr(),
                h.ttl()
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            format!(
                "ipv6 {} > {} hlim {}",
                h.source_addr(),
                h.destination_addr(),
                h.hop_limit()
            )
        }
        Some(NetSlice::Arp(a)) => {
            return format!(
                "{head} arp {:?} {} asks {}",
                a.operation(),
                show_ip(a.sender_protocol_addr()),
                show_ip(a.target_protocol_addr())
            )
        }
        None => return format!("{head} ethertype {:02x}{:02x}", f[12], f[13]),
    };
    let l4 = match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            format!(" udp {} > {}", u.source_port(), u.destination_port())
        }
        Some(TransportSlice::Tcp(t)) => {
            format!(" tcp {} > {}", t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Icmpv4(i)) => format!(" icmp {:?}", i.icmp_type()),
        Some(TransportSlice::Icmpv6(i)) => format!(" icmp6 {:?}", i.icmp_type()),
        Some(TransportSlice::Igmp(_)) => " igmp".into(),
        None => String::new(),
    };
    format!("{head} {net}{l4}")
}

fn show_ip(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        _ => format!("{b:?}"),
    }
}

struct Run {
    scenario: Scenario,
    daemon: Daemon,
    _tmp: tempfile::TempDir,
    /// Kinds seen in the scenario, for listing their objects.
    kinds: Vec<String>,
    /// Interface object name by wire, for output.
    wires: BTreeMap<String, String>,
    vpcs: Vec<String>,
}

impl Run {
    fn start(dir: &Path) -> Run {
        let text = std::fs::read_to_string(dir.join("scenario.yaml")).expect("scenario.yaml");
        let scenario: Scenario = serde_norway::from_str(&text).expect("scenario.yaml");
        let tmp = tempfile::tempdir().unwrap();
        let args = ServeArgs {
            config: None,
            store: tmp.path().join("store.redb").display().to_string(),
            listen: format!("unix:{}", tmp.path().join("api.sock").display()),
            token_file: None,
            insecure: false,
            node: Some("conformance".into()),
            workers: scenario.workers,
            cores: Vec::new(),
            no_mirror: true,
            ready_file: None,
            history: 1000,
            nat_sessions: 4096,
        };
        let daemon = match Daemon::start(&args, Arc::new(AtomicBool::new(false))) {
            Ok(d) => d,
            Err(e) => panic!("daemon: {}", e.1),
        };
        Run {
            scenario,
            daemon,
            _tmp: tmp,
            kinds: Vec::new(),
            wires: BTreeMap::new(),
            vpcs: vec!["default".into()],
        }
    }

    /// Apply and delete what the step says; what the API refused, as text.
    fn apply(&mut self, step: &Step) -> String {
        let mut refused = String::new();
        let d = &self.daemon;
        if !step.apply.is_empty() {
            let objects: Vec<Object> = step
                .apply
                .iter()
                .map(|v| serde_json::from_value(v.clone()).expect("object"))
                .collect();
            for o in &objects {
                if !self.kinds.contains(&o.kind) {
                    self.kinds.push(o.kind.clone());
                }
                if o.kind == "Interface" {
                    if let Some(w) = o.spec.get("hostInterface").and_then(|v| v.as_str()) {
                        self.wires.insert(w.to_string(), o.name().to_string());
                    }
                }
                if o.kind == "Vpc" && !self.vpcs.contains(&o.name().to_string()) {
                    self.vpcs.push(o.name().to_string());
                }
            }
            if let Err(e) = d.rt.block_on(d.client.apply(&objects, false)) {
                let _ = writeln!(refused, "refused: apply: {e}");
            }
        }
        for r in &step.delete {
            let (kind, name) = r.split_once('/').expect("Kind/name");
            if let Err(e) = d.rt.block_on(d.client.delete(kind, name, None)) {
                let _ = writeln!(refused, "refused: delete {r}: {e}");
            }
        }
        refused
    }

    /// Every object's state and every VPC's FIB, as text.
    fn state(&self) -> String {
        let d = &self.daemon;
        let mut out = String::from("objects:\n");
        let mut kinds = self.kinds.clone();
        kinds.sort();
        for k in &kinds {
            let list = d.rt.block_on(d.client.list(k, None)).expect("list");
            for o in list.items {
                let st = o.status.clone().unwrap_or_default();
                let _ = write!(out, "  {}/{}: {:?}", o.kind, o.name(), st.state);
                if let Some(r) = st.reason {
                    let _ = write!(out, " ({r})");
                }
                out.push('\n');
            }
        }
        out.push_str("fib:\n");
        let agent = d.agent.lock().unwrap();
        for vpc in &self.vpcs {
            let Ok(vrf) = agent.vrf_of(vpc) else {
                let _ = writeln!(out, "  {vpc}: no VRF");
                continue;
            };
            let _ = writeln!(out, "  {vpc}:");
            let port = |p: u16| {
                agent
                    .control
                    .port(p)
                    .map(|c| self.wires.get(&c.name).cloned().unwrap_or(c.name.clone()))
                    .unwrap_or_else(|| format!("port {p}"))
            };
            let mut lines: Vec<String> = agent
                .control
                .routes(vrf)
                .into_iter()
                .map(|(prefix, source, target)| {
                    use weir_dataplane::RouteTarget as T;
                    let to = match target {
                        T::Via { gateway, port: p } => match p {
                            Some(p) => format!("via {gateway} on {}", port(p)),
                            None => format!("via {gateway}"),
                        },
                        T::Ecmp(hops) => hops
                            .iter()
                            .map(|(g, p)| match p {
                                Some(p) => format!("via {g} on {}", port(*p)),
                                None => format!("via {g}"),
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        T::Attached(p) | T::Local(p) => format!("on {}", port(p)),
                        T::Table(v) => {
                            let name = self
                                .vpcs
                                .iter()
                                .find(|n| agent.vrf_of(n).ok() == Some(v))
                                .cloned()
                                .unwrap_or_else(|| format!("vrf {v}"));
                            format!("lookup in vpc {name}")
                        }
                        T::Blackhole => "blackhole".into(),
                        T::Unreachable => "unreachable".into(),
                        T::Prohibit => "prohibit".into(),
                    };
                    format!("    {prefix} {source:?} {to}").to_lowercase()
                })
                .collect();
            lines.sort();
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }

    fn handle(&self, w: &str) -> MemoryHandle {
        wire(w)
    }

    fn all_wires(&self) -> Vec<String> {
        let mut w: Vec<String> = self.wires.keys().cloned().collect();
        for h in self.scenario.hosts.values() {
            if !w.contains(&h.wire) {
                w.push(h.wire.clone());
            }
        }
        w
    }

    /// Frames out of the gateway until it has been quiet for a while; ARP
    /// and neighbour solicitations for the scenario's hosts are answered.
    fn collect(&self) -> Vec<(String, Vec<u8>)> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_millis(150) {
            std::thread::sleep(Duration::from_millis(5));
            for w in self.all_wires() {
                for f in self.handle(&w).collect() {
                    quiet_since = Instant::now();
                    if !self.answer(&w, &f) {
                        got.push((w.clone(), f));
                    }
                }
            }
        }
        got
    }

    /// Answer `f` if it asks for one of our hosts' addresses.
    fn answer(&self, w: &str, f: &[u8]) -> bool {
        use etherparse::{NetSlice, SlicedPacket, TransportSlice};
        let Ok(p) = SlicedPacket::from_ethernet(f) else {
            return false;
        };
        let gw_mac = MacAddr(f[6..12].try_into().unwrap());
        match &p.net {
            Some(NetSlice::Arp(a)) => {
                let t = a.target_protocol_addr();
                let s = a.sender_protocol_addr();
                if t.len() != 4 || s.len() != 4 {
                    return false;
                }
                let target = std::net::Ipv4Addr::new(t[0], t[1], t[2], t[3]);
                let sender = std::net::Ipv4Addr::new(s[0], s[1], s[2], s[3]);
                let Some(h) = self
                    .scenario
                    .hosts
                    .values()
                    .find(|h| h.wire == w && h.ipv4 == Some(target))
                else {
                    return false;
                };
                let reply = frames::arp(
                    weir_packet::ArpOperation::Reply,
                    gw_mac,
                    mac(&h.mac),
                    target,
                    gw_mac,
                    sender,
                );
                self.handle(w).inject(reply);
                true
            }
            Some(NetSlice::Ipv6(ip)) => {
                let Some(TransportSlice::Icmpv6(i)) = &p.transport else {
                    return false;
                };
                // A neighbour solicitation: the target follows the 8-byte
                // ICMPv6 header.
                if i.type_u8() != 135 || i.payload().len() < 16 {
                    return false;
                }
                let t: [u8; 16] = i.payload()[..16].try_into().unwrap();
                let target = std::net::Ipv6Addr::from(t);
                let Some(h) = self
                    .scenario
                    .hosts
                    .values()
                    .find(|h| h.wire == w && h.ipv6 == Some(target))
                else {
                    return false;
                };
                let na =
                    frames::neighbor_advert(gw_mac, mac(&h.mac), target, ip.header().source_addr());
                self.handle(w).inject(na);
                true
            }
            _ => false,
        }
    }

    fn send(&self, s: &Send) -> String {
        let h = self
            .scenario
            .hosts
            .get(&s.from)
            .unwrap_or_else(|| panic!("no host {}", s.from));
        let (hm, gm) = (mac(&h.mac), mac(&h.gateway_mac));
        let size = s.size.unwrap_or(32);
        let frame = match (s.to, s.proto.as_str()) {
            (IpAddr::V4(dst), proto) => {
                let mut ip = V4::new(h.ipv4.expect("host has no IPv4 address"), dst);
                ip.ttl = s.ttl.unwrap_or(64);
                match proto {
                    "udp" => frames::udp4(gm, hm, &ip, 40000, 53, size),
                    "icmp" => frames::ping4(gm, hm, &ip, 7, 1),
                    p => panic!("proto {p}"),
                }
            }
            (IpAddr::V6(dst), proto) => {
                let mut ip = V6::new(h.ipv6.expect("host has no IPv6 address"), dst);
                ip.hop_limit = s.ttl.unwrap_or(64);
                match proto {
                    "udp" => frames::udp6(gm, hm, &ip, 40000, 53, size),
                    "icmp" => frames::ping6(gm, hm, ip.src, ip.dst, 7, 1),
                    p => panic!("proto {p}"),
                }
            }
        };
        self.handle(&h.wire).inject(frame);
        let mut out = String::new();
        let got = self.collect();
        if got.is_empty() {
            out.push_str("    nothing\n");
        }
        for (w, f) in got {
            let name = self.wires.get(&w).cloned().unwrap_or(w);
            let _ = writeln!(out, "    {name}: {}", render(&f));
        }
        out
    }

    fn step(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).unwrap();
        let step: Step =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let refused = self.apply(&step);
        let expect_path = path.with_extension("expect");
        let bless = std::env::var_os("WEIR_BLESS").is_some();
        let expected = std::fs::read_to_string(&expect_path).unwrap_or_default();
        let (exp_state, _) = expected.split_once("packets:\n").unwrap_or((&expected, ""));
        let exp_state = exp_state
            .split_once("objects:\n")
            .map(|(_, rest)| format!("objects:\n{rest}"))
            .unwrap_or_default();
        // The reconciler and the status write-back settle shortly after the
        // API answers: wait for the expected state, or for a stable one.
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut state = self.state();
        let mut stable_since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(25));
            let now = self.state();
            if now != state {
                state = now;
                stable_since = Instant::now();
            }
            let settled = stable_since.elapsed() > Duration::from_millis(400);
            if (!bless && state == exp_state && settled) || Instant::now() > deadline {
                break;
            }
            if bless && settled {
                break;
            }
        }
        // What the gateway sent while it was being configured (resolving
        // next hops): answered where it asks for a host, else left out.
        for w in self.all_wires() {
            for f in self.handle(&w).collect() {
                self.answer(&w, &f);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut actual = refused + &state;
        if !step.send.is_empty() {
            actual.push_str("packets:\n");
            for s in &step.send {
                let _ = writeln!(
                    actual,
                    "  {} -> {} {}{}:",
                    s.from,
                    s.to,
                    s.proto,
                    s.ttl.map(|t| format!(" ttl {t}")).unwrap_or_default()
                );
                actual.push_str(&self.send(s));
            }
        }
        if bless {
            std::fs::write(&expect_path, &actual).unwrap();
            return Ok(());
        }
        if actual != expected {
            return Err(format!(
                "{}: differs from {}\n--- expected\n{expected}--- actual\n{actual}",
                path.display(),
                expect_path.display()
            ));
        }
        Ok(())
    }
}

fn scenarios() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("scenario.yaml").exists())
        .collect();
    dirs.sort();
    dirs
}

fn steps(dir: &Path) -> Vec<PathBuf> {
    let mut s: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "scenario.yaml")
        })
        .collect();
    s.sort();
    s
}

#[test]
fn golden_scenarios() {
    let only = std::env::var("WEIR_SCENARIO").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for dir in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if only.as_ref().is_some_and(|o| *o != name) {
            continue;
        }
        ran += 1;
        let mut run = Run::start(&dir);
        for step in steps(&dir) {
            if let Err(e) = run.step(&step) {
                failures.push(format!(
                    "scenario {name}: {}\n{e}",
                    run.scenario.description.trim()
                ));
                break;
            }
        }
        run.daemon.shutdown();
    }
    assert!(ran > 0, "no scenario ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
