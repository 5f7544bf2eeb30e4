//! weir on real interfaces: a lab of namespaces (h1 -- gw -- h2), `weir
//! serve` in gw, real pings, traceroute, TCP through and to the gateway,
//! and a clean SIGTERM. Once per driver.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use weir_lab::{unique_name, Lab, Topology};

mod api_common;
mod e2e_probe;
use api_common::{Daemon, WEIR};
use e2e_probe::{Answer, Prober};

fn tempdir() -> TempDir {
    tempfile::tempdir().unwrap()
}

/// The tests share CPUs; one lab at a time keeps timings sane.
static SERIAL: Mutex<()> = Mutex::new(());

const GATEWAY: &str = r#"
apiVersion: weir/v1
kind: Interface
metadata: { name: lan }
spec:
  hostInterface: lan
  driver: DRIVER
  addresses: [10.0.1.1/24, "2001:db8:1::1/64"]
---
apiVersion: weir/v1
kind: Interface
metadata: { name: wan }
spec:
  hostInterface: wan
  driver: DRIVER
  mtu: 1280
  addresses: [10.0.2.1/24, "2001:db8:2::1/64"]
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `weir serve` in gw with the gateway's day-0 file on `driver`; the
/// ready file must say that every object was configured.
fn start(lab: &Lab, driver: &str, dir: &Path) -> Daemon {
    start_with(lab, driver, dir, &[])
}

/// `start` with more `weir serve` arguments.
fn start_with(lab: &Lab, driver: &str, dir: &Path, extra: &[&str]) -> Daemon {
    start_objects(lab, driver, dir, "", extra)
}

/// `start_with`, with more objects in the day-0 file.
fn start_objects(lab: &Lab, driver: &str, dir: &Path, objects: &str, extra: &[&str]) -> Daemon {
    let cfg = dir.join("gateway.yaml");
    std::fs::write(&cfg, GATEWAY.replace("DRIVER", driver) + objects).unwrap();
    let store = dir.join("store.redb");
    let mut args = vec![
        "--config",
        cfg.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ];
    args.extend(extra);
    let d = Daemon::start(lab.node("gw").command(WEIR), dir, &args);
    let ready = std::fs::read_to_string(dir.join("ready")).unwrap();
    assert_eq!(ready, "ready\n", "{}", d.log());
    d
}

fn lab() -> (Lab, TempDir) {
    lab_with_queues(1)
}

/// The example lab with `queues` rx/tx queues on every veth.
fn lab_with_queues(queues: u16) -> (Lab, TempDir) {
    let mut text = std::fs::read_to_string(repo().join("examples/lab.yaml")).unwrap();
    if queues > 1 {
        for port in ["01", "02"] {
            let mac = format!("mac: \"02:00:00:00:{port}:01\"");
            text = text.replace(&mac, &format!("{mac}, queues: {queues}"));
        }
        // The gateway's wan has an MTU of 1280; a veth drops what is longer
        // than its receiver's MTU, so h2 sends no longer packets.
        let h2 = r#"addresses: [10.0.2.2/24, "2001:db8:2::2/64"]"#;
        text = text.replace(h2, &format!("{h2}, mtu: 1280"));
    }
    let name = unique_name("").replace('-', "");
    let t = Topology::parse(&text.replace("lab: weir-demo", &format!("lab: {name}"))).unwrap();
    (t.up().unwrap(), tempdir())
}

/// Run in a node; returns (success, stdout + stderr).
fn sh(lab: &Lab, node: &str, args: &[&str]) -> (bool, String) {
    let out = lab
        .node(node)
        .command(args[0])
        .args(&args[1..])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ok(lab: &Lab, node: &str, args: &[&str]) -> String {
    let (good, text) = sh(lab, node, args);
    assert!(good, "{node}: {} failed:\n{text}", args.join(" "));
    text
}

fn iperf_bps(lab: &Lab, server_node: &str, bind: &str, client_node: &str) -> f64 {
    lab.node(server_node)
        .spawn(&["iperf3", "-s", "-1", "-B", bind])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = ok(lab, client_node, &["iperf3", "-J", "-t", "1", "-c", bind]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap()
}

fn gateway_end_to_end(driver: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, dir) = lab();
    let mut weir = start(&lab, driver, dir.path());
    let log = weir.log();
    let expect = if driver == "afpacket" {
        "via afpacket"
    } else {
        "via afxdp"
    };
    assert!(log.contains(expect), "{log}");

    // Ping across, both families; ARP and ND resolved the gateway's MAC.
    ok(&lab, "h1", &["ping", "-c", "2", "-W", "2", "10.0.2.2"]);
    ok(
        &lab,
        "h1",
        &["ping", "-6", "-c", "2", "-W", "2", "2001:db8:2::2"],
    );
    let neigh = ok(&lab, "h1", &["ip", "neigh", "show", "10.0.1.1"]);
    assert!(neigh.contains("02:00:00:00:01:01"), "{neigh}");
    let neigh6 = ok(&lab, "h1", &["ip", "-6", "neigh", "show", "2001:db8:1::1"]);
    assert!(neigh6.contains("02:00:00:00:01:01"), "{neigh6}");

    // traceroute sees weir's time-exceeded.
    let tr = ok(
        &lab,
        "h1",
        &["traceroute", "-n", "-q", "1", "-w", "2", "10.0.2.2"],
    );
    let hops: Vec<&str> = tr.lines().skip(1).collect();
    assert!(
        hops[0].contains("10.0.1.1") && hops[1].contains("10.0.2.2"),
        "{tr}"
    );

    // Too big for wan's MTU of 1280: fragmentation needed / packet too big.
    let (_, frag) = sh(
        &lab,
        "h1",
        &[
            "ping", "-M", "do", "-s", "1300", "-c", "1", "-W", "2", "10.0.2.2",
        ],
    );
    assert!(
        frag.contains("mtu = 1280") || frag.contains("mtu=1280"),
        "{frag}"
    );
    let (_, ptb) = sh(
        &lab,
        "h1",
        &[
            "ping",
            "-6",
            "-s",
            "1300",
            "-c",
            "1",
            "-W",
            "2",
            "2001:db8:2::2",
        ],
    );
    assert!(
        ptb.to_lowercase().contains("packet too big") && ptb.contains("1280"),
        "{ptb}"
    );

    // TCP through the gateway, and to the gateway through the kernel mirror.
    let through = iperf_bps(&lab, "h2", "10.0.2.2", "h1");
    assert!(through > 50e6, "TCP through weir: {through} bit/s");
    let to_gw = iperf_bps(&lab, "gw", "10.0.1.1", "h1");
    assert!(to_gw > 10e6, "TCP to the gateway: {to_gw} bit/s");

    // SIGTERM: clean exit, nothing left behind.
    assert_eq!(weir.stop(), Some(0), "{}", weir.log());
    let links = ok(&lab, "gw", &["ip", "-d", "link", "show"]);
    assert!(!links.contains("cp-"), "kernel mirrors left:\n{links}");
    assert!(!links.contains("xdp"), "XDP program left:\n{links}");
}

#[test]
fn gateway_end_to_end_afxdp() {
    gateway_end_to_end("afxdp");
}

#[test]
fn gateway_end_to_end_afpacket() {
    gateway_end_to_end("afpacket");
}

/// Exactly one answer to each probe of the gateway: weir's. The kernel of
/// the gateway's namespace, which still has the host interfaces, must
/// neither answer beside it (a second ARP reply, echo reply or ICMP error)
/// nor answer ARP for the other port's address.
fn one_answer_per_probe(driver: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, dir) = lab();
    let mut weir = start(&lab, driver, dir.path());
    // Resolve both ways first, so no resolution traffic is in the way.
    ok(&lab, "h1", &["ping", "-c", "1", "-W", "2", "10.0.1.1"]);
    ok(
        &lab,
        "h1",
        &["ping", "-6", "-c", "1", "-W", "2", "2001:db8:1::1"],
    );
    let link = ok(&lab, "h1", &["ip", "-j", "link", "show", "eth0"]);
    let v: serde_json::Value = serde_json::from_str(&link).unwrap();
    let mac_text = v[0]["address"].as_str().unwrap().to_string();
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(mac_text.split(':')) {
        *m = u8::from_str_radix(p, 16).unwrap();
    }
    let gw4: std::net::Ipv4Addr = "10.0.1.1".parse().unwrap();
    let gw6: std::net::Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let gw_mac = [2, 0, 0, 0, 1, 1];
    let mut p = Prober::open(
        lab.node("h1").name(),
        "eth0",
        mac,
        "10.0.1.2".parse().unwrap(),
        "2001:db8:1::2".parse().unwrap(),
    );
    let probes = [
        (
            "ARP request",
            p.arp_request(gw4),
            Some(Answer::ArpReply { sender: gw4 }),
        ),
        (
            "neighbour solicitation",
            p.ns(gw6),
            Some(Answer::Icmp6 { ty: 136, code: 0 }),
        ),
        (
            "echo request",
            p.echo4(gw_mac, gw4, 0x7701),
            Some(Answer::Icmp4 { ty: 0, code: 0 }),
        ),
        (
            "ICMPv6 echo request",
            p.echo6(gw_mac, gw6, 0x7702),
            Some(Answer::Icmp6 { ty: 129, code: 0 }),
        ),
        (
            "UDP to a closed port",
            p.udp4(gw_mac, gw4, 33999),
            Some(Answer::Icmp4 { ty: 3, code: 3 }),
        ),
        (
            "UDP over IPv6 to a closed port",
            p.udp6(gw_mac, gw6, 33999),
            Some(Answer::Icmp6 { ty: 1, code: 4 }),
        ),
        (
            "ARP request for the other port's address",
            p.arp_request("10.0.2.1".parse().unwrap()),
            None,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, frame, want) in probes {
        let got = p.replies(&frame, Duration::from_millis(800));
        let want: Vec<Answer> = want.into_iter().collect();
        if got != want {
            wrong.push(format!("{what}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{driver}:\n{}\n{}",
        wrong.join("\n"),
        weir.log()
    );
    assert_eq!(weir.stop(), Some(0), "{}", weir.log());
}

#[test]
fn one_answer_per_probe_afpacket() {
    one_answer_per_probe("afpacket");
}

#[test]
fn one_answer_per_probe_afxdp() {
    one_answer_per_probe("afxdp");
}

/// Two workers, each with its own queue of every interface (AF_XDP sockets
/// on two veth queues, or an AF_PACKET fanout group): pings both ways and
/// TCP in both directions at once over several flows.
fn two_workers_both_directions(driver: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, dir) = lab_with_queues(2);
    let mut weir = start_with(&lab, driver, dir.path(), &["--workers", "2"]);
    let log = weir.log();
    assert!(log.contains(&format!("via {driver}")), "{log}");
    for (from, to) in [
        ("h1", "10.0.2.2"),
        ("h2", "10.0.1.2"),
        ("h1", "2001:db8:2::2"),
        ("h2", "2001:db8:1::2"),
    ] {
        ok(&lab, from, &["ping", "-c", "2", "-W", "2", to]);
    }
    lab.node("h2")
        .spawn(&["iperf3", "-s", "-1", "-B", "10.0.2.2"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = ok(
        &lab,
        "h1",
        &[
            "iperf3", "-J", "-t", "2", "-P", "4", "--bidir", "-c", "10.0.2.2",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let there = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    let back = v["end"]["sum_received_bidir_reverse"]["bits_per_second"]
        .as_f64()
        .unwrap();
    assert!(
        there > 20e6 && back > 20e6,
        "{driver}: h1 -> h2 {there} bit/s, h2 -> h1 {back} bit/s\n{}",
        weir.log()
    );
    // Both workers received: the flows were spread over their queues.
    let (code, stats) = weir.cli(&["stats"], None);
    assert_eq!(code, 0, "{stats}");
    let rx: Vec<u64> = stats
        .lines()
        .skip_while(|l| !l.starts_with("WORKER"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        rx.len() == 2 && rx.iter().all(|&n| n > 100),
        "{driver}:\n{stats}"
    );
    assert_eq!(weir.stop(), Some(0), "{}", weir.log());
}

#[test]
fn two_workers_both_directions_afxdp() {
    two_workers_both_directions("afxdp");
}

#[test]
fn two_workers_both_directions_afpacket() {
    two_workers_both_directions("afpacket");
}

#[test]
fn bad_day0_file_is_refused_with_the_field() {
    let dir = tempdir();
    let dir = dir.path();
    let cfg = dir.join("bad.yaml");
    std::fs::write(
        &cfg,
        GATEWAY
            .replace("DRIVER", "auto")
            .replace("mtu: 1280", "mtu: 20"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--store")
        .arg(dir.join("store.redb"))
        .arg("--listen")
        .arg(format!("unix:{}", dir.join("api.sock").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.mtu"), "{err}");
}

/// weir killed with SIGKILL cleans nothing up itself: the kernel must
/// (the XDP program and the tcx guards are BPF links, the kernel mirrors
/// non-persistent TAPs), and a restarted weir takes the interfaces again.
#[test]
fn nothing_is_left_behind_after_kill_9_and_weir_starts_again() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, dir) = lab();
    let mut weir = start(&lab, "afxdp", dir.path());
    ok(&lab, "h1", &["ping", "-c", "1", "-W", "2", "10.0.2.2"]);
    weir.kill_9();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let links = ok(&lab, "gw", &["ip", "-d", "link", "show"]);
        if !links.contains("cp-") && !links.contains("xdp") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind after SIGKILL:\n{links}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let weir = start(&lab, "afxdp", dir.path());
    ok(&lab, "h1", &["ping", "-c", "1", "-W", "2", "10.0.2.2"]);
    assert!(weir.log().contains("via afxdp"), "{}", weir.log());
}

// ---- NAT44 ----

/// h1 (10.0.1.2) leaves masquerading as wan's 10.0.2.1, with a cap of
/// sessions per source and a short UDP timer; 10.0.2.1:8080 forwards to
/// h1's port 5201 (from anywhere: also hairpinned from the inside);
/// h1's 10.0.1.3 is 198.51.100.3 outside, both ways.
const NAT: &str = r#"
---
apiVersion: weir/v1
kind: NatRule
metadata: { name: masquerade }
spec:
  type: snat44
  interface: wan
  match: { source: [10.0.1.0/24] }
  translate: { masquerade: true }
  timeouts: { udp: 3 }
  limits: { sessionsPerSource: 40 }
---
apiVersion: weir/v1
kind: NatRule
metadata: { name: web }
spec:
  type: dnat44
  match: { destination: [10.0.2.1/32], protocol: tcp, ports: 8080 }
  translate: { addresses: [10.0.1.2/32], ports: 5201 }
---
apiVersion: weir/v1
kind: NatRule
metadata: { name: static }
spec:
  type: one-to-one
  interface: wan
  match: { source: [10.0.1.3/32] }
  translate: { addresses: [198.51.100.3/32] }
"#;

/// `weir get sessions ARGS -o json`: (total, items).
fn sessions(weir: &Daemon, args: &[&str]) -> (u64, Vec<serde_json::Value>) {
    let mut a = vec!["get", "sessions", "-o", "json"];
    a.extend(args);
    let (code, out) = weir.cli(&a, None);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (
        v["total"].as_u64().unwrap(),
        v["items"].as_array().cloned().unwrap_or_default(),
    )
}

/// A drop counter from `weir stats --json`, once it reaches `at_least`
/// (workers publish their counters every few milliseconds) or after 3 s.
fn drop_count_reaching(weir: &Daemon, name: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n = drop_count(weir, name);
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A drop counter from `weir stats --json`.
fn drop_count(weir: &Daemon, name: &str) -> u64 {
    let (code, out) = weir.cli(&["stats", "--json"], None);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut n = 0;
    let mut walk = vec![&v];
    while let Some(x) = walk.pop() {
        match x {
            serde_json::Value::Object(m) => {
                if m.get("reason").and_then(|r| r.as_str()) == Some(name) {
                    n += m.get("count").and_then(|c| c.as_u64()).unwrap_or(0);
                } else if let Some(c) = m.get(name).and_then(|c| c.as_u64()) {
                    n += c;
                }
                walk.extend(m.values());
            }
            serde_json::Value::Array(a) => walk.extend(a.iter()),
            _ => {}
        }
    }
    n
}

/// An ICMP port unreachable from h2 to the gateway's outside address,
/// quoting a UDP packet "sent" from 10.0.2.1:`sport` that no session knows.
fn forged_port_unreachable(h2_mac: [u8; 6], sport: u16) -> Vec<u8> {
    fn csum(b: &[u8]) -> [u8; 2] {
        let mut s: u32 = 0;
        for c in b.chunks(2) {
            s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        (!(s as u16)).to_be_bytes()
    }
    fn ip(src: [u8; 4], dst: [u8; 4], proto: u8, payload: usize) -> Vec<u8> {
        let len = (20 + payload) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        let c = csum(&h);
        h[10..12].copy_from_slice(&c);
        h
    }
    let (gw, h2) = ([10, 0, 2, 1], [10, 0, 2, 2]);
    let mut quoted = ip(gw, h2, 17, 8);
    quoted.extend_from_slice(&sport.to_be_bytes());
    quoted.extend_from_slice(&[0, 9, 0, 8, 0, 0]);
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c);
    let mut f = vec![2, 0, 0, 0, 2, 1];
    f.extend_from_slice(&h2_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip(h2, gw, 1, icmp.len()));
    f.extend_from_slice(&icmp);
    f
}

fn mac_of(lab: &Lab, node: &str) -> [u8; 6] {
    let link = ok(lab, node, &["ip", "-j", "link", "show", "eth0"]);
    let v: serde_json::Value = serde_json::from_str(&link).unwrap();
    let mut mac = [0u8; 6];
    for (m, p) in mac
        .iter_mut()
        .zip(v[0]["address"].as_str().unwrap().split(':'))
    {
        *m = u8::from_str_radix(p, 16).unwrap();
    }
    mac
}

fn nat44_end_to_end(driver: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, dir) = lab();
    ok(
        &lab,
        "h1",
        &["ip", "addr", "add", "10.0.1.3/24", "dev", "eth0"],
    );
    ok(
        &lab,
        "h1",
        &["ip", "addr", "add", "10.0.1.4/24", "dev", "eth0"],
    );
    let mut weir = start_objects(&lab, driver, dir.path(), NAT, &[]);
    let (code, rules) = weir.cli(&["get", "natrules"], None);
    assert_eq!(code, 0, "{rules}");
    assert!(!rules.contains("Failed"), "{rules}");

    // Ping and TCP out: h2 sees the gateway's address, not h1's.
    ok(&lab, "h1", &["ping", "-c", "2", "-W", "2", "10.0.2.2"]);
    let report = dir.path().join("iperf-server.json");
    lab.node("h2")
        .spawn(&[
            "sh",
            "-c",
            &format!("iperf3 -s -1 -B 10.0.2.2 -J > {}", report.display()),
        ])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = ok(&lab, "h1", &["iperf3", "-J", "-t", "1", "-c", "10.0.2.2"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    assert!(bps > 20e6, "{driver}: TCP through source NAT: {bps} bit/s");
    let deadline = Instant::now() + Duration::from_secs(5);
    let server = loop {
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            break v;
        }
        assert!(Instant::now() < deadline, "no iperf3 server report");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        server["start"]["connected"][0]["remote_host"].as_str(),
        Some("10.0.2.1"),
        "{driver}: h2 must see the masquerading address"
    );
    let (_, items) = sessions(&weir, &["--inside", "10.0.1.2", "--protocol", "tcp"]);
    assert!(
        items.iter().any(|s| s["outside"]
            .as_str()
            .is_some_and(|o| o.starts_with("10.0.2.1:"))),
        "{items:?}"
    );

    // traceroute (UDP) sees the gateway, then h2: the port unreachable
    // from h2 came back through the session, its quoted packet translated.
    let tr = ok(
        &lab,
        "h1",
        &["traceroute", "-n", "-q", "1", "-w", "2", "10.0.2.2"],
    );
    let hops: Vec<&str> = tr.lines().skip(1).collect();
    assert!(
        hops.len() == 2 && hops[0].contains("10.0.1.1") && hops[1].contains("10.0.2.2"),
        "{driver}: {tr}"
    );

    // Port forward from outside, and hairpinned from the inside.
    for (client, bind) in [("h2", "10.0.2.2"), ("h1", "10.0.1.2")] {
        lab.node("h1")
            .spawn(&["iperf3", "-s", "-1", "-B", "10.0.1.2"])
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let out = ok(
            &lab,
            client,
            &[
                "iperf3", "-J", "-t", "1", "-B", bind, "-c", "10.0.2.1", "-p", "8080",
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let bps = v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap();
        assert!(
            bps > 10e6,
            "{driver}: port forward from {client}: {bps} bit/s"
        );
    }

    // 1:1 both ways.
    ok(&lab, "h2", &["ping", "-c", "1", "-W", "2", "198.51.100.3"]);
    ok(
        &lab,
        "h1",
        &["ping", "-c", "1", "-W", "2", "-I", "10.0.1.3", "10.0.2.2"],
    );
    assert_eq!(
        sessions(&weir, &["--inside", "10.0.1.3"]).0,
        0,
        "1:1 keeps no sessions"
    );

    // A forged error about no session never reaches h1.
    let before = drop_count(&weir, "nat44-in/icmp-error-no-session");
    let mut h1 = Prober::open(
        lab.node("h1").name(),
        "eth0",
        mac_of(&lab, "h1"),
        "10.0.1.2".parse().unwrap(),
        "2001:db8:1::2".parse().unwrap(),
    );
    let mut h2 = Prober::open(
        lab.node("h2").name(),
        "eth0",
        mac_of(&lab, "h2"),
        "10.0.2.2".parse().unwrap(),
        "2001:db8:2::2".parse().unwrap(),
    );
    h1.collect(Duration::from_millis(50));
    h2.send(&forged_port_unreachable(h2.mac, 61000));
    let seen = h1.collect(Duration::from_millis(500));
    assert!(
        !seen
            .iter()
            .any(|f| f.len() > 23 && f[12..14] == [8, 0] && f[23] == 1),
        "{driver}: an ICMP message reached h1"
    );
    assert_eq!(
        drop_count_reaching(&weir, "nat44-in/icmp-error-no-session", before + 1),
        before + 1
    );

    // The cap per source: h1's many UDP flows are cut at 40 sessions,
    // while another inside address still gets out.
    ok(
        &lab,
        "h1",
        &[
            "bash",
            "-c",
            "for i in $(seq 1 60); do echo x > /dev/udp/10.0.2.2/$((9000 + i)); done",
        ],
    );
    assert!(
        drop_count_reaching(&weir, "nat44-out/source-cap", 1) > 0,
        "{driver}: cap never hit: {:?}\n{}",
        sessions(&weir, &["--inside", "10.0.1.2"]),
        weir.cli(&["stats", "--json"], None).1
    );
    // (Sessions a port forward opened to h1 are not h1's own.)
    let (n, _) = sessions(&weir, &["--inside", "10.0.1.2", "--rule", "masquerade"]);
    assert!(n <= 40, "{driver}: {n} sessions for one source");
    ok(
        &lab,
        "h1",
        &["ping", "-c", "1", "-W", "2", "-I", "10.0.1.4", "10.0.2.2"],
    );

    // UDP sessions end when their 3 s timer runs out.
    assert!(sessions(&weir, &["--protocol", "udp"]).0 > 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sessions(&weir, &["--protocol", "udp"]).0 > 0 {
        assert!(
            Instant::now() < deadline,
            "{driver}: UDP sessions never expired"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(weir.stop(), Some(0), "{}", weir.log());
}

#[test]
fn nat44_end_to_end_afxdp() {
    nat44_end_to_end("afxdp");
}

#[test]
fn nat44_end_to_end_afpacket() {
    nat44_end_to_end("afpacket");
}
