//! Lab topologies from YAML: hosts (network namespaces), links (veth
//! pairs), addresses and routes, and the node that runs weir.
//!
//! ```yaml
//! lab: demo                      # namespaces are named <lab>-<node>
//! nodes:
//!   h1:
//!     interfaces:
//!       eth0: { addresses: [10.0.1.2/24, "2001:db8:1::2/64"] }
//!     routes:
//!       - { to: default, via: 10.0.1.1 }
//!   gw:
//!     weir: true                 # weir runs here; its ports carry no kernel addresses
//!     interfaces:
//!       lan: { mac: "02:00:00:00:01:01" }
//! links:
//!   - [h1:eth0, gw:lan]
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::netns::{run, Netns};

/// Longest lab name: namespaces are named `<lab>-<node>`.
pub const MAX_LAB_NAME: usize = 20;
/// Longest node name.
pub const MAX_NODE_NAME: usize = 20;
/// Longest interface name the kernel takes (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("lab file: {0}")]
    Parse(String),
    #[error("lab {lab}: {reason}")]
    Invalid { lab: String, reason: String },
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub lab: String,
    #[serde(default)]
    pub nodes: BTreeMap<String, Node>,
    #[serde(default)]
    pub links: Vec<[String; 2]>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// weir runs in this namespace: its interfaces get no kernel addresses.
    #[serde(default)]
    pub weir: bool,
    #[serde(default)]
    pub interfaces: BTreeMap<String, Interface>,
    #[serde(default)]
    pub routes: Vec<Route>,
    /// sysctls to set, e.g. net.ipv4.ip_forward: "1".
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    #[serde(default)]
    pub addresses: Vec<String>,
    pub mac: Option<String>,
    pub mtu: Option<u16>,
    /// Receive and transmit queues of the veth (both ends get the larger
    /// of the two); several queues spread flows over AF_XDP sockets.
    pub queues: Option<u16>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A prefix or "default" (IPv4 unless `via` is IPv6; "default6" for IPv6).
    pub to: String,
    pub via: Option<String>,
    pub dev: Option<String>,
}

impl Topology {
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let t: Topology =
            serde_norway::from_str(text).map_err(|e| TopologyError::Parse(e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    pub fn load(path: &std::path::Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TopologyError::Parse(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    fn invalid(&self, reason: String) -> TopologyError {
        TopologyError::Invalid {
            lab: self.lab.clone(),
            reason,
        }
    }

    fn validate(&self) -> Result<(), TopologyError> {
        // Names end up in `ip` arguments, namespace file names and kernel
        // interface names: letters, digits and '-', not starting with '-'
        // (which `ip` would read as an option).
        let ok_name = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !s.starts_with('-')
        };
        if !ok_name(&self.lab, MAX_LAB_NAME) {
            return Err(self.invalid(format!(
                "lab name {:?} must be 1-{MAX_LAB_NAME} letters, digits or '-', not starting with '-'",
                self.lab
            )));
        }
        for node in self.nodes.keys() {
            if !ok_name(node, MAX_NODE_NAME) {
                return Err(self.invalid(format!(
                    "node name {node:?} must be 1-{MAX_NODE_NAME} letters, digits or '-', not starting with '-'"
                )));
            }
        }
        let mut used = std::collections::HashSet::new();
        for [a, b] in &self.links {
            for end in [a, b] {
                let (node, ifname) = self.split(end)?;
                if !self.nodes.contains_key(node) {
                    return Err(
                        self.invalid(format!("link end {end:?} names unknown node {node:?}"))
                    );
                }
                if !ok_name(ifname, MAX_IFNAME) {
                    return Err(self.invalid(format!(
                        "interface name {ifname:?} must be 1-{MAX_IFNAME} letters, digits or '-', not starting with '-'"
                    )));
                }
                if ifname == "lo" {
                    return Err(self.invalid(format!(
                        "interface {end:?}: \"lo\" is the namespace's loopback"
                    )));
                }
                if !used.insert(end.clone()) {
                    return Err(self.invalid(format!("interface {end:?} is in two links")));
                }
            }
        }
        for (name, node) in &self.nodes {
            for ifname in node.interfaces.keys() {
                if !used.contains(&format!("{name}:{ifname}")) {
                    return Err(
                        self.invalid(format!("interface {name}:{ifname} is not in any link"))
                    );
                }
            }
        }
        Ok(())
    }

    fn split<'a>(&self, end: &'a str) -> Result<(&'a str, &'a str), TopologyError> {
        end.split_once(':')
            .ok_or_else(|| self.invalid(format!("link end {end:?} must be node:interface")))
    }

    /// The namespace name of a node.
    pub fn netns_name(&self, node: &str) -> String {
        format!("{}-{}", self.lab, node)
    }

    /// Create everything. On failure, what was created is removed.
    pub fn up(&self) -> Result<Lab, TopologyError> {
        let mut lab = Lab {
            topology: self.clone(),
            nodes: BTreeMap::new(),
            links: Vec::new(),
        };
        for (name, node) in &self.nodes {
            let ns = Netns::named(&self.netns_name(name))?;
            for (k, v) in &node.sysctl {
                ns.sysctl(k, v)?;
            }
            lab.nodes.insert(name.clone(), ns);
        }
        for [a, b] in &self.links {
            let (na, ia) = self.split(a)?;
            let (nb, ib) = self.split(b)?;
            // Each end is created in its namespace under its final name, so
            // no temporary name in the root namespace can collide with
            // another lab's (or be left behind there by a failure).
            let (nsa, nsb) = (lab.nodes[na].name(), lab.nodes[nb].name());
            let queues = [(na, ia), (nb, ib)]
                .iter()
                .filter_map(|(n, i)| self.nodes[*n].interfaces.get(*i)?.queues)
                .max()
                .unwrap_or(1)
                .to_string();
            let q = ["numtxqueues", &queues, "numrxqueues", &queues];
            let mut cmd = vec!["ip", "link", "add", "name", ia, "netns", nsa];
            cmd.extend(q);
            cmd.extend(["type", "veth", "peer", "name", ib, "netns", nsb]);
            cmd.extend(q);
            run(&cmd)?;
            for (node, ifname) in [(na, ia), (nb, ib)] {
                let ns = &lab.nodes[node];
                let cfg = self.nodes[node]
                    .interfaces
                    .get(ifname)
                    .cloned()
                    .unwrap_or_default();
                if let Some(mac) = &cfg.mac {
                    ns.exec(&["ip", "link", "set", ifname, "address", mac])?;
                }
                if let Some(mtu) = cfg.mtu {
                    ns.exec(&["ip", "link", "set", ifname, "mtu", &mtu.to_string()])?;
                }
                if self.nodes[node].weir {
                    // weir owns this port: the kernel must not answer on it.
                    ns.sysctl(&format!("net.ipv6.conf.{ifname}.disable_ipv6"), "1")?;
                }
                ns.exec(&["ip", "link", "set", ifname, "up"])?;
                // Checksum and segmentation offloads only work kernel to
                // kernel: a frame leaving a veth with a partial checksum or
                // as a 64 KiB GSO super-frame is not a wire frame, and a
                // userspace dataplane in between would forward it as it is.
                ns.exec(&[
                    "ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                ])?;
                for a in &cfg.addresses {
                    ns.addr_add(ifname, a)?;
                }
            }
            lab.links.push((a.clone(), b.clone()));
        }
        for (name, node) in &self.nodes {
            let ns = &lab.nodes[name];
            for r in &node.routes {
                let mut spec: Vec<&str> = Vec::new();
                let v6 = r.to.contains(':') || r.via.as_deref().is_some_and(|v| v.contains(':'));
                let to = if r.to == "default6" {
                    "default"
                } else {
                    r.to.as_str()
                };
                let mut args = vec!["ip"];
                if v6 || r.to == "default6" {
                    args.push("-6");
                }
                args.extend(["route", "replace", to]);
                if let Some(v) = &r.via {
                    spec.extend(["via", v]);
                }
                if let Some(d) = &r.dev {
                    spec.extend(["dev", d]);
                }
                args.extend(spec);
                ns.exec(&args)?;
            }
        }
        Ok(lab)
    }

    /// Remove every namespace of the lab; fine if they are already gone.
    pub fn down(&self) -> Result<Vec<String>, TopologyError> {
        let mut removed = Vec::new();
        for name in self.nodes.keys() {
            let ns = self.netns_name(name);
            if exists(&ns) {
                if let Ok(out) = run(&["ip", "netns", "pids", &ns]) {
                    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                        let _ = run(&["kill", "-TERM", pid]);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
                if let Ok(out) = run(&["ip", "netns", "pids", &ns]) {
                    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                        let _ = run(&["kill", "-KILL", pid]);
                    }
                }
                run(&["ip", "netns", "del", &ns])?;
                removed.push(ns);
            }
        }
        Ok(removed)
    }

    /// What exists now: per node, its namespace and interfaces.
    pub fn status(&self) -> String {
        let node_w = self.nodes.keys().map(String::len).max().unwrap_or(0);
        let ns_w = node_w + self.lab.len() + 1;
        let mut s = String::new();
        for name in self.nodes.keys() {
            let ns = self.netns_name(name);
            if !exists(&ns) {
                let _ = writeln!(s, "{name:<node_w$}   {ns:<ns_w$}   down");
                continue;
            }
            let _ = writeln!(s, "{name:<node_w$}   {ns:<ns_w$}   up");
            let n = Netns::existing(&ns);
            if let Ok(out) = n.output(&["ip", "-br", "addr"]) {
                for line in out.lines().filter(|l| !l.starts_with("lo ")) {
                    // `ip -br` pads with spaces and ends some lines with one.
                    let _ = writeln!(s, "    {}", line.trim_end());
                }
            }
        }
        s
    }
}

fn exists(ns: &str) -> bool {
    run(&["ip", "netns", "list"])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns))
        })
        .unwrap_or(false)
}

/// A running lab. Dropping it removes the namespaces unless `persist` was
/// called.
pub struct Lab {
    pub topology: Topology,
    pub nodes: BTreeMap<String, Netns>,
    links: Vec<(String, String)>,
}

impl Lab {
    pub fn node(&self, name: &str) -> &Netns {
        &self.nodes[name]
    }

    /// Keep the namespaces after this value is dropped (`weir lab up`).
    pub fn persist(self) {
        for (_, ns) in self.nodes {
            ns.persist();
        }
    }

    pub fn links(&self) -> &[(String, String)] {
        &self.links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
lab: LAB
nodes:
  h1:
    interfaces:
      eth0: { addresses: [10.9.1.2/24] }
    routes:
      - { to: default, via: 10.9.1.1 }
  h2:
    interfaces:
      eth0: { addresses: [10.9.1.1/24], mac: "02:00:00:00:09:01" }
links:
  - [h1:eth0, h2:eth0]
"#;

    fn unique(t: &str) -> String {
        let name = crate::netns::unique_name("");
        t.replace("LAB", &name.replace('-', ""))
    }

    #[test]
    fn up_connects_hosts_and_down_removes_them() {
        let t = Topology::parse(&unique(TWO)).unwrap();
        let lab = t.up().unwrap();
        lab.node("h1")
            .exec(&["ping", "-c", "1", "-W", "2", "10.9.1.1"])
            .unwrap();
        let mac = lab
            .node("h2")
            .output(&["cat", "/sys/class/net/eth0/address"])
            .unwrap();
        assert_eq!(mac.trim(), "02:00:00:00:09:01");
        assert!(t.status().contains("10.9.1.2/24"));
        drop(lab);
        assert!(t.status().contains("down"));
        // down is idempotent.
        assert!(t.down().unwrap().is_empty());
    }

    #[test]
    fn persisted_lab_survives_until_down() {
        let t = Topology::parse(&unique(TWO)).unwrap();
        t.up().unwrap().persist();
        assert!(t.status().contains(" up"));
        assert_eq!(t.down().unwrap().len(), 2);
        assert!(!t.status().contains(" up"));
    }

    /// A lab name of `len` characters, unique to this process and call,
    /// ending in `tail`.
    fn long_name(len: usize, tail: &str) -> String {
        let mut n = crate::netns::unique_name("");
        while n.len() + tail.len() < len {
            n.push('x');
        }
        n.push_str(tail);
        n
    }

    #[test]
    fn longest_names_work_and_labs_sharing_a_long_prefix_coexist() {
        // Interface names of 15 characters, node names of 20, and two labs
        // whose names differ only in their last character.
        let text = r#"
lab: LAB
nodes:
  hosthosthosthosth-01:
    interfaces:
      ifaceifaceifa-1: { addresses: [10.9.2.2/24] }
  hosthosthosthosth-02:
    interfaces:
      ifaceifaceifa-1: { addresses: [10.9.2.1/24] }
links:
  - [hosthosthosthosth-01:ifaceifaceifa-1, hosthosthosthosth-02:ifaceifaceifa-1]
"#;
        let base = long_name(MAX_LAB_NAME - 1, "");
        let a = Topology::parse(&text.replace("LAB", &format!("{base}a"))).unwrap();
        let b = Topology::parse(&text.replace("LAB", &format!("{base}b"))).unwrap();
        assert_eq!(a.lab.len(), MAX_LAB_NAME);
        let la = a.up().unwrap();
        let lb = b.up().unwrap();
        for lab in [&la, &lb] {
            lab.node("hosthosthosthosth-01")
                .exec(&["ping", "-c", "1", "-W", "2", "10.9.2.1"])
                .unwrap();
        }
        // Nothing of either lab is left in the root namespace.
        let root = run(&["ip", "-br", "link"]).unwrap();
        assert!(
            !String::from_utf8_lossy(&root.stdout).contains(&base[..8]),
            "{}",
            String::from_utf8_lossy(&root.stdout)
        );
    }

    #[test]
    fn names_the_lab_cannot_use_are_refused() {
        let too_long = "x".repeat(MAX_LAB_NAME + 1);
        for (lab, node, ifname, what) in [
            (too_long.as_str(), "h1", "eth0", "lab name"),
            ("-x", "h1", "eth0", "lab name"),
            ("a_b", "h1", "eth0", "lab name"),
            ("x", "h/1", "eth0", "node name"),
            ("x", "-h", "eth0", "node name"),
            ("x", &"n".repeat(MAX_NODE_NAME + 1), "eth0", "node name"),
            ("x", "h1", "eth0123456789abc", "interface name"),
            ("x", "h1", "eth.0", "interface name"),
            ("x", "h1", "lo", "loopback"),
        ] {
            let text = format!(
                "lab: {lab:?}\nnodes:\n  {node:?}: {{}}\n  h9: {{}}\nlinks:\n  - [\"{node}:{ifname}\", \"h9:eth0\"]\n"
            );
            let e = Topology::parse(&text).unwrap_err().to_string();
            assert!(e.contains(what), "{lab} {node} {ifname}: {e}");
        }
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let bad = TWO.replace("[h1:eth0, h2:eth0]", "[h1:eth0, h3:eth0]");
        let e = Topology::parse(&bad.replace("LAB", "x")).unwrap_err();
        assert!(e.to_string().contains("unknown node \"h3\""), "{e}");
        let e = Topology::parse("lab: x\nnodes: {}\nlinkz: []\n").unwrap_err();
        assert!(e.to_string().contains("linkz"), "{e}");
    }
}
