//! Interface objects: a dataplane port on a host interface, one queue per
//! worker, with its kernel mirror.

use ipnet::IpNet;
use weir_dataplane::config::PortId;
use weir_dataplane::driver::{self, DriverKind, DriverOptions, TapOptions};
use weir_dataplane::worker::Queue;
use weir_model::{Driver, InterfaceSpec};
use weir_packet::MacAddr;
use weir_reconcile::Dependency;

use crate::kind::{vpc_dependency, Apply};
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
            },
        );
        Ok(PortState {
            port,
            mirror,
            spec: spec.clone(),
            driver: kind,
            fallback,
            mac,
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
