//! Namespaces, veth pairs and commands inside them, through iproute2.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("could not run `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A short name unique to this process and call, e.g. `w1234-3-host`:
/// interface names must fit in 15 bytes, so keep `tag` short.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 100_000;
    let mut s = format!("w{pid}-{n}{tag}");
    s.truncate(15);
    s
}

/// Run a command, failing with its stderr.
pub fn run(args: &[&str]) -> Result<Output> {
    let cmd = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// A network namespace, deleted (with its interfaces and the processes
/// started by `spawn`) when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
    owned: bool,
    children: std::sync::Mutex<Vec<Child>>,
}

impl Netns {
    /// Create a namespace named `<unique>-<tag>` with loopback up.
    pub fn new(tag: &str) -> Result<Netns> {
        Self::named(&unique_name(tag))
    }

    /// Create (or take over) a namespace with exactly this name.
    pub fn named(name: &str) -> Result<Netns> {
        let _ = run(&["ip", "netns", "del", name]);
        run(&["ip", "netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
            owned: true,
            children: Default::default(),
        };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Refer to an existing namespace without deleting it on drop.
    pub fn existing(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            owned: false,
            children: Default::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keep the namespace after drop (e.g. `weir lab up`).
    pub fn persist(mut self) -> String {
        self.owned = false;
        self.name.clone()
    }

    /// The argument vector that runs `args` inside the namespace.
    pub fn command_line<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", self.name.as_str()];
        v.extend_from_slice(args);
        v
    }

    /// Run a command inside and wait for it; fails on a non-zero exit.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        run(&self.command_line(args))
    }

    /// Run a command inside and return its stdout as text.
    pub fn output(&self, args: &[&str]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.exec(args)?.stdout).into_owned())
    }

    /// Start a command inside without waiting; it is killed on drop.
    pub fn spawn(&self, args: &[&str]) -> Result<u32> {
        let line = self.command_line(args);
        let child = Command::new(line[0])
            .args(&line[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn {
                cmd: line.join(" "),
                source,
            })?;
        let pid = child.id();
        self.children.lock().unwrap().push(child);
        Ok(pid)
    }

    /// A `Command` that runs `program` inside the namespace, for callers that
    /// need its pipes.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Add an address to an interface inside (e.g. "10.0.0.2/24").
    pub fn addr_add(&self, dev: &str, cidr: &str) -> Result<()> {
        let mut args = vec!["ip"];
        if cidr.contains(':') {
            args.push("-6");
        }
        args.extend(["addr", "add", cidr, "dev", dev]);
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.exec(&args).map(|_| ())
    }

    /// Add a route inside (e.g. "default", "via", "10.0.0.1").
    pub fn route_add(&self, spec: &[&str]) -> Result<()> {
        let mut args = vec!["ip"];
        if spec.iter().any(|s| s.contains(':')) {
            args.push("-6");
        }
        args.extend(["route", "replace"]);
        args.extend_from_slice(spec);
        self.exec(&args).map(|_| ())
    }

    /// Set a sysctl inside, e.g. ("net.ipv4.ip_forward", "1").
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")])
            .map(|_| ())
    }

    /// Kill the processes started by `spawn`.
    pub fn kill_children(&self) {
        for mut c in self.children.lock().unwrap().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_children();
        if self.owned {
            // Processes started some other way inside die with it.
            if let Ok(out) = run(&["ip", "netns", "pids", &self.name]) {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = run(&["kill", "-9", pid]);
                }
            }
            let _ = run(&["ip", "netns", "del", &self.name]);
        }
    }
}

/// A veth pair with one end in each namespace (or the root namespace when
/// `None`), both up. Deleting one end deletes both; done on drop.
#[derive(Debug)]
pub struct Veth {
    pub a: String,
    pub b: String,
    a_ns: Option<String>,
    owned: bool,
}

impl Veth {
    pub fn new(a_ns: Option<&Netns>, a: &str, b_ns: Option<&Netns>, b: &str) -> Result<Veth> {
        run(&["ip", "link", "add", a, "type", "veth", "peer", "name", b])?;
        let v = Veth {
            a: a.to_string(),
            b: b.to_string(),
            a_ns: a_ns.map(|n| n.name().to_string()),
            owned: true,
        };
        for (ns, dev) in [(a_ns, a), (b_ns, b)] {
            if let Some(ns) = ns {
                run(&["ip", "link", "set", dev, "netns", ns.name()])?;
                ns.exec(&["ip", "link", "set", dev, "up"])?;
            } else {
                run(&["ip", "link", "set", dev, "up"])?;
            }
        }
        Ok(v)
    }

    /// Set a MAC address on one end.
    pub fn set_mac(ns: Option<&Netns>, dev: &str, mac: &str) -> Result<()> {
        let args = ["ip", "link", "set", dev, "address", mac];
        match ns {
            Some(n) => n.exec(&args).map(|_| ()),
            None => run(&args).map(|_| ()),
        }
    }

    /// Keep the pair after drop.
    pub fn persist(mut self) {
        self.owned = false;
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let _ = match &self.a_ns {
            Some(ns) => run(&["ip", "netns", "exec", ns, "ip", "link", "del", &self.a]),
            None => run(&["ip", "link", "del", &self.a]),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_veth_pass_traffic_and_clean_up() {
        let name;
        {
            let a = Netns::new("a").unwrap();
            let b = Netns::new("b").unwrap();
            name = a.name().to_string();
            let _v = Veth::new(Some(&a), "va", Some(&b), "vb").unwrap();
            a.addr_add("va", "192.0.2.1/24").unwrap();
            b.addr_add("vb", "192.0.2.2/24").unwrap();
            a.exec(&["ping", "-c", "1", "-W", "2", "192.0.2.2"])
                .unwrap();
            assert!(run(&["ip", "netns", "list"])
                .map(|o| String::from_utf8_lossy(&o.stdout).contains(&name))
                .unwrap());
        }
        let list = run(&["ip", "netns", "list"]).unwrap();
        assert!(!String::from_utf8_lossy(&list.stdout).contains(&name));
    }

    #[test]
    fn failures_name_the_command() {
        let ns = Netns::new("e").unwrap();
        let err = ns.exec(&["ip", "link", "set", "nope0", "up"]).unwrap_err();
        assert!(err.to_string().contains("nope0"), "{err}");
    }

    #[test]
    fn unique_names_fit_interface_names() {
        let a = unique_name("-host");
        let b = unique_name("-host");
        assert_ne!(a, b);
        assert!(a.len() <= 15);
    }
}
