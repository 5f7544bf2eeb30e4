//! Interface objects: a dataplane port on a host interface, one queue per
//! worker, with its kernel mirror.
//!
//! Resync reads them back from the kernel (`retrieve` below):
//! one whose mirror TAP or XDP program went away is created again, an
//! intact one is left alone. The mirrors weir opens carry the ifalias
//! `weir:<interface>`. Nothing is swept at start: the TAPs are not
//! persistent and XDP programs hang on BPF links, so both go with the
//! process that opened them, and a weir-marked TAP that exists belongs to
//! a live weir (perhaps another one in this namespace).

use ipnet::IpNet;
use weir_dataplane::driver::{self, DriverKind, DriverOptions, TapOptions};
use weir_dataplane::worker::Queue;
use weir_dataplane::PortId;
use weir_model::{Driver, InterfaceSpec};
use weir_packet::MacAddr;
use weir_reconcile::Dependency;

use crate::kind::{vpc_dependency, Apply, Desired};
use crate::{host, Agent, AgentError};

// The model refuses an MTU whose frames would not fit a packet buffer.
const _: () = assert!(InterfaceSpec::PACKET_BUFFER as usize == weir_dataplane::buffer::DATA_ROOM);

/// Mirrors get port ids from here up.
const MIRROR_BASE: PortId = 0x4000;

pub struct Interface;

/// What the agent's index keeps of an applied Interface, for the kinds
/// that refer to it (by name) and for shutdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub port: PortId,
    pub mirror: Option<PortId>,
    pub addresses: Vec<IpNet>,
    /// What the engine keeps of it too, for resync to read back.
    pub(crate) state: Option<PortState>,
}

/// What the engine keeps of an applied Interface.
#[derive(Debug, Clone, PartialEq)]
pub struct PortState {
    pub port: PortId,
    pub mirror: Option<(PortId, String)>,
    pub spec: InterfaceSpec,
    /// The driver really opened, and why not the one asked for.
    pub driver: DriverKind,
    pub fallback: Option<String>,
    pub mac: MacAddr,
    /// The value it was applied from, so what resync reads back of an
    /// intact interface is exactly what the engine holds.
    pub desired: Option<Desired>,
}

fn driver_kind(d: Driver) -> DriverKind {
    match d {
        Driver::Afxdp => DriverKind::AfXdp,
        Driver::Afpacket => DriverKind::AfPacket,
        Driver::Tap => DriverKind::Tap,
        Driver::Memory => DriverKind::Memory,
        Driver::Auto => DriverKind::Auto,
    }
}

impl Apply for Interface {
    type Spec = InterfaceSpec;
    type Metadata = PortState;

    fn dependencies(s: &InterfaceSpec) -> Vec<Dependency> {
        vpc_dependency(&s.vpc).into_iter().collect()
    }

    fn create(
        agent: &mut Agent,
        name: &str,
        spec: &InterfaceSpec,
    ) -> Result<PortState, AgentError> {
        // A port still open under this name is one resync found broken
        // outside the process: if only its mirror is, that is re-opened
        // and the port kept; otherwise it is opened again from scratch.
        if let Some(old) = agent.interfaces.get(name).and_then(|p| p.state.clone()) {
            if old.spec == *spec && old.mirror.is_some() && port_intact(&old)? {
                return reopen_mirror(agent, name, old);
            }
        }
        agent.close_port(name)?;
        let vrf = agent.vrf_of(&spec.vpc)?;
        if spec.driver != Driver::Memory && !host::exists(&spec.host_interface) {
            return Err(AgentError::Waiting(format!(
                "host interface {:?} does not exist",
                spec.host_interface
            )));
        }
        let mac = match &spec.mac {
            Some(m) => MacAddr(weir_model::net::parse_mac(m).map_err(AgentError::Invalid)?),
            None if spec.driver == Driver::Memory => MacAddr([0x02, 0, 0, 0, 0, 1]),
            None => MacAddr(host::mac_of(&spec.host_interface)?),
        };
        let port = (0..MIRROR_BASE)
            .find(|p| !agent.interfaces.values().any(|s| s.port == *p))
            .ok_or_else(|| AgentError::Invalid("no free port id".into()))?;
        if spec.driver != Driver::Memory {
            host::take_over(&spec.host_interface, spec.mtu)?;
        }
        // One queue per worker; AF_PACKET queues share the interface's
        // traffic through a fanout group.
        let workers = agent.control.workers();
        let mut opts = DriverOptions::default();
        if workers > 1 {
            opts.afpacket.fanout_group = Some(port + 1);
        }
        let mut queues = Vec::new();
        let (mut kind, mut fallback) = (driver_kind(spec.driver), None);
        for w in 0..workers {
            let (q, k, why) = driver::open(kind, &spec.host_interface, w as u32, &opts)?;
            // Every worker uses what the first one got.
            kind = k;
            fallback = fallback.or(why);
            queues.push(q);
        }
        let mtu = u16::try_from(spec.mtu).map_err(|_| AgentError::Invalid("mtu".into()))?;
        agent.control.add_port(port, name, mac, mtu, vrf)?;
        let addresses: Vec<IpNet> = spec.addresses.iter().map(|a| a.net()).collect();
        for a in &addresses {
            agent.control.add_address(port, *a)?;
        }
        agent.control.set_port_up(port, spec.admin_up)?;
        let mirror = if agent.options().mirror && spec.driver != Driver::Memory {
            Some(open_mirror(agent, name, port, mac, spec)?)
        } else {
            None
        };
        agent.control.commit();
        for (w, q) in queues.into_iter().enumerate() {
            agent.control.add_queue(w, Queue { port, driver: q });
        }
        agent.interfaces.insert(
            name.to_string(),
            Port {
                port,
                mirror: mirror.as_ref().map(|m| m.0),
                addresses,
                state: None,
            },
        );
        Ok(PortState {
            port,
            mirror,
            spec: spec.clone(),
            driver: kind,
            fallback,
            mac,
            desired: None,
        })
    }

    /// A change of host interface, driver, VPC, MAC or queues is a new port.
    fn needs_recreate(old: &InterfaceSpec, new: &InterfaceSpec) -> bool {
        old.host_interface != new.host_interface
            || old.driver != new.driver
            || old.vpc != new.vpc
            || old.mac != new.mac
            || old.queues != new.queues
    }

    /// Addresses, MTU and admin state change in place.
    fn update(
        agent: &mut Agent,
        name: &str,
        _old: &InterfaceSpec,
        spec: &InterfaceSpec,
        cur: &mut PortState,
    ) -> Result<(), AgentError> {
        let port = cur.port;
        let old: Vec<IpNet> = cur.spec.addresses.iter().map(|a| a.net()).collect();
        let new: Vec<IpNet> = spec.addresses.iter().map(|a| a.net()).collect();
        for a in old.iter().filter(|a| !new.contains(a)) {
            agent.control.del_address(port, *a)?;
        }
        for a in new.iter().filter(|a| !old.contains(a)) {
            agent.control.add_address(port, *a)?;
        }
        if spec.mtu != cur.spec.mtu {
            let mtu = u16::try_from(spec.mtu).map_err(|_| AgentError::Invalid("mtu".into()))?;
            agent.control.set_port_mtu(port, mtu)?;
            if spec.driver != Driver::Memory {
                host::take_over(&spec.host_interface, spec.mtu)?;
            }
        }
        agent.control.set_port_up(port, spec.admin_up)?;
        if let Some((_, tap)) = &cur.mirror {
            host::mirror_addresses(tap, &new)?;
        }
        agent.control.commit();
        if old != new {
            // Masquerading NAT rules translate to the port's addresses.
            weir_dataplane::Nat44::refresh_ports(&mut agent.control);
        }
        cur.spec = spec.clone();
        if let Some(p) = agent.interfaces.get_mut(name) {
            p.addresses = new;
        }
        Ok(())
    }

    /// Its queues close (AF_XDP programs detached) and its kernel mirror is
    /// deleted; routes through it lose their next hop.
    fn delete(
        agent: &mut Agent,
        name: &str,
        _spec: &InterfaceSpec,
        _state: &PortState,
    ) -> Result<(), AgentError> {
        agent.close_port(name)
    }

    fn applied(agent: &mut Agent, name: &str, desired: &Desired, state: &mut PortState) {
        state.desired = Some(desired.clone());
        if let Some(p) = agent.interfaces.get_mut(name) {
            p.state = Some(state.clone());
        }
    }

    /// Every interface the agent has a port for whose outside parts are
    /// really there: its kernel mirror (a TAP with the port's MAC and MTU)
    /// and, for AF_XDP, a program on the host interface. One that is not
    /// is left out, so resync creates it again.
    fn retrieve(
        agent: &mut Agent,
    ) -> Result<Option<Vec<(String, Desired, PortState)>>, AgentError> {
        let mut found = Vec::new();
        for (name, p) in &agent.interfaces {
            let Some(state) = &p.state else { continue };
            let Some(desired) = &state.desired else {
                continue;
            };
            if port_intact(state)? && mirror_intact(state)? {
                found.push((name.clone(), desired.clone(), state.clone()));
            }
        }
        Ok(Some(found))
    }
}

/// Whether the host interface under a port is still there and, for
/// AF_XDP, still has an XDP program attached.
fn port_intact(state: &PortState) -> Result<bool, AgentError> {
    if state.spec.driver == Driver::Memory {
        return Ok(true);
    }
    Ok(match host::link(&state.spec.host_interface)? {
        Some(l) => state.driver != DriverKind::AfXdp || l.xdp,
        None => false,
    })
}

/// Whether a port's kernel mirror, if it has one, is there as opened.
fn mirror_intact(state: &PortState) -> Result<bool, AgentError> {
    let Some((_, tap)) = &state.mirror else {
        return Ok(true);
    };
    Ok(host::link(tap)?
        .is_some_and(|l| l.mac == Some(state.mac.0) && l.mtu == Some(state.spec.mtu)))
}

/// Opens an intact port's kernel mirror again (after it was deleted or
/// changed outside weir).
fn reopen_mirror(
    agent: &mut Agent,
    name: &str,
    mut state: PortState,
) -> Result<PortState, AgentError> {
    if let Some((id, tap)) = state.mirror.take() {
        agent.control.remove_queues(id);
        agent.control.del_port(id)?;
        agent.control.commit();
        // Still there but not as opened: make room for the new one.
        host::delete_mirror(&tap, name)?;
    }
    let (id, tap) = open_mirror(agent, name, state.port, state.mac, &state.spec)?;
    agent.control.commit();
    if let Some(p) = agent.interfaces.get_mut(name) {
        p.mirror = Some(id);
    }
    state.mirror = Some((id, tap));
    Ok(state)
}

fn open_mirror(
    agent: &mut Agent,
    name: &str,
    port: PortId,
    mac: MacAddr,
    spec: &InterfaceSpec,
) -> Result<(PortId, String), AgentError> {
    let tap = host::mirror_name(name);
    let id = MIRROR_BASE + port;
    let workers = agent.control.workers();
    let opts = TapOptions {
        mac: Some(mac.0),
        mtu: Some(spec.mtu),
        up: true,
        multi_queue: workers > 1,
    };
    let mut queues = Vec::new();
    for _ in 0..workers {
        queues.push(driver::tap::Tap::open(&tap, &opts)?);
    }
    let addrs: Vec<IpNet> = spec.addresses.iter().map(|a| a.net()).collect();
    host::mirror_addresses(&tap, &addrs)?;
    host::mark_mirror(&tap, name)?;
    agent.control.add_mirror(port, id, &tap)?;
    for (w, q) in queues.into_iter().enumerate() {
        agent.control.add_queue(
            w,
            Queue {
                port: id,
                driver: Box::new(q),
            },
        );
    }
    Ok((id, tap))
}

impl Agent {
    /// Closes an Interface's port and its mirror.
    pub(crate) fn close_port(&mut self, name: &str) -> Result<(), AgentError> {
        let Some(p) = self.interfaces.remove(name) else {
            return Ok(());
        };
        self.control.remove_queues(p.port);
        if let Some(m) = p.mirror {
            self.control.remove_queues(m);
            self.control.del_port(m)?;
        }
        self.control.del_port(p.port)?;
        self.control.commit();
        Ok(())
    }

    /// Whether an Interface carries `address` on `port` itself.
    pub(crate) fn port_has_address(&self, port: PortId, address: IpNet) -> bool {
        self.interfaces
            .values()
            .any(|i| i.port == port && i.addresses.contains(&address))
    }
}
