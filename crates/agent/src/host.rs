//! What the agent changes on the host (the namespace weir runs in), through
//! iproute2 and sysctl: the attached interface is handed over to weir, and
//! the kernel mirror gets the port's addresses.

use std::process::Command;

use crate::AgentError;

fn run(args: &[&str]) -> Result<String, AgentError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| AgentError::Host(format!("{}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(AgentError::Host(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn exists(ifname: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{ifname}")).exists()
}

/// The interface's MAC address.
pub fn mac_of(ifname: &str) -> Result<[u8; 6], AgentError> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))
        .map_err(|e| AgentError::Host(format!("{ifname}: {e}")))?;
    let s = s.trim();
    let mut mac = [0u8; 6];
    let parts: Vec<_> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(AgentError::Host(format!("{ifname}: bad MAC {s:?}")));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16)
            .map_err(|_| AgentError::Host(format!("{ifname}: bad MAC {s:?}")))?;
    }
    Ok(mac)
}

/// Hand an interface over to weir: up, with room for `mtu`-byte IP packets,
/// and with no kernel addresses or IPv6 of its own (the kernel mirror
/// speaks for it), so the kernel does not answer on it too.
pub fn take_over(ifname: &str, mtu: u32) -> Result<(), AgentError> {
    run(&[
        "ip",
        "link",
        "set",
        "dev",
        ifname,
        "up",
        "mtu",
        &mtu.to_string(),
    ])?;
    run(&["ip", "addr", "flush", "dev", ifname])?;
    let _ = run(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{ifname}.disable_ipv6=1"),
    ]);
    Ok(())
}

/// Give a kernel mirror the port's addresses (no duplicate address
/// detection: the dataplane owns them).
pub fn mirror_addresses(tap: &str, addrs: &[ipnet::IpNet]) -> Result<(), AgentError> {
    let _ = run(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{tap}.accept_dad=0"),
    ]);
    for a in addrs {
        let s = a.to_string();
        let mut args = vec!["ip", "addr", "replace", s.as_str(), "dev", tap];
        if a.addr().is_ipv6() {
            args.push("nodad");
        }
        run(&args)?;
    }
    Ok(())
}

/// The name of an interface's kernel mirror.
pub fn mirror_name(interface: &str) -> String {
    let mut n = format!("cp-{interface}");
    n.truncate(15);
    n
}
