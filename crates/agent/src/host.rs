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

/// What `ip -j link show` tells of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// Its ifalias (weir marks what it creates with `weir:<interface>`).
    pub alias: Option<String>,
    /// Whether an XDP program is attached (by netlink or a BPF link).
    pub xdp: bool,
}

/// The interface as the kernel has it now; `None` if there is none.
pub fn link(ifname: &str) -> Result<Option<Link>, AgentError> {
    if !exists(ifname) {
        return Ok(None);
    }
    let out = match run(&["ip", "-j", "link", "show", "dev", ifname]) {
        Ok(out) => out,
        // Gone in between.
        Err(_) if !exists(ifname) => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| AgentError::Host(format!("ip -j link show dev {ifname}: {e}")))?;
    let Some(l) = v.as_array().and_then(|a| a.first()) else {
        return Ok(None);
    };
    Ok(Some(parse_link(l)))
}

fn parse_link(l: &serde_json::Value) -> Link {
    let mac = l["address"].as_str().and_then(|s| {
        let parts: Vec<u8> = s
            .split(':')
            .map(|p| u8::from_str_radix(p, 16))
            .collect::<Result<_, _>>()
            .ok()?;
        <[u8; 6]>::try_from(parts).ok()
    });
    Link {
        mac,
        mtu: l["mtu"].as_u64().and_then(|m| u32::try_from(m).ok()),
        alias: l["ifalias"].as_str().map(str::to_string),
        xdp: l.get("xdp").is_some_and(|x| !x.is_null()),
    }
}

/// The ifalias weir gives a kernel mirror it creates.
pub fn mirror_alias(interface: &str) -> String {
    format!("weir:{interface}")
}

/// Mark a kernel mirror as weir's (its ifalias).
pub fn mark_mirror(tap: &str, interface: &str) -> Result<(), AgentError> {
    run(&[
        "ip",
        "link",
        "set",
        "dev",
        tap,
        "alias",
        &mirror_alias(interface),
    ])
    .map(|_| ())
}

/// Delete a kernel mirror weir created (and only such: its ifalias says so).
pub fn delete_mirror(tap: &str, interface: &str) -> Result<(), AgentError> {
    match link(tap)? {
        Some(l) if l.alias.as_deref() == Some(mirror_alias(interface).as_str()) => {
            run(&["ip", "link", "del", "dev", tap]).map(|_| ())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_link_json() {
        let v: serde_json::Value = serde_json::from_str(
            r#"[{"ifindex":7,"ifname":"cp-a","mtu":1500,"address":"02:00:00:00:00:01",
                 "ifalias":"weir:a","xdp":{"mode":1,"prog":{"id":12}}}]"#,
        )
        .unwrap();
        let l = parse_link(&v[0]);
        assert_eq!(l.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(l.mtu, Some(1500));
        assert_eq!(l.alias.as_deref(), Some("weir:a"));
        assert!(l.xdp);
        let v: serde_json::Value =
            serde_json::from_str(r#"{"ifname":"eth0","mtu":9000,"address":"zz"}"#).unwrap();
        let l = parse_link(&v);
        assert_eq!((l.mac, l.alias, l.xdp), (None, None, false));
    }
}
