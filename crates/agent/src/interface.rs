//! Interface objects: a dataplane port on a host interface, one queue per
//! worker, with its kernel mirror.

use ipnet::IpNet;
use weir_dataplane::config::PortId;
use weir_dataplane::driver::{self, DriverKind, DriverOptions, TapOptions};
use weir_dataplane::worker::Queue;
use weir_model::{Driver, InterfaceSpec};
use weir_packet::MacAddr;

use crate::{host, Agent, AgentError};

// The model refuses an MTU whose frames would not fit a packet buffer.
const _: () = assert!(InterfaceSpec::PACKET_BUFFER as usize == weir_dataplane::buffer::DATA_ROOM);

/// Mirrors get port ids from here up.
const MIRROR_BASE: PortId = 0x4000;

/// What the agent keeps of an applied Interface.
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

impl Agent {
    /// Create or update an Interface.
    pub fn apply_interface(&mut self, name: &str, spec: &InterfaceSpec) -> Result<(), AgentError> {
        let vrf = self.vrf_of(&spec.vpc)?;
        if let Some(cur) = self.interfaces.get(name) {
            let same_attachment = cur.spec.host_interface == spec.host_interface
                && cur.spec.driver == spec.driver
                && cur.spec.vpc == spec.vpc
                && cur.spec.mac == spec.mac
                && cur.spec.queues == spec.queues;
            if same_attachment {
                return self.update_interface(name, spec);
            }
            self.delete_interface(name)?;
        }
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
            .find(|p| !self.interfaces.values().any(|s| s.port == *p))
            .ok_or_else(|| AgentError::Invalid("no free port id".into()))?;
        if spec.driver != Driver::Memory {
            host::take_over(&spec.host_interface, spec.mtu)?;
        }
        // One queue per worker; AF_PACKET queues share the interface's
        // traffic through a fanout group.
        let workers = self.control.workers();
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
        self.control.add_port(port, name, mac, mtu, vrf)?;
        for a in &spec.addresses {
            self.control.add_address(port, a.net())?;
        }
        self.control.set_port_up(port, spec.admin_up)?;
        let mirror = if self.options().mirror && spec.driver != Driver::Memory {
            Some(self.open_mirror(name, port, mac, spec)?)
        } else {
            None
        };
        self.control.commit();
        for (w, q) in queues.into_iter().enumerate() {
            self.control.add_queue(w, Queue { port, driver: q });
        }
        self.interfaces.insert(
            name.to_string(),
            PortState {
                port,
                mirror,
                spec: spec.clone(),
                driver: kind,
                fallback,
                mac,
            },
        );
        Ok(())
    }

    fn open_mirror(
        &mut self,
        name: &str,
        port: PortId,
        mac: MacAddr,
        spec: &InterfaceSpec,
    ) -> Result<(PortId, String), AgentError> {
        let tap = host::mirror_name(name);
        let id = MIRROR_BASE + port;
        let workers = self.control.workers();
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
        self.control.add_mirror(port, id, &tap)?;
        for (w, q) in queues.into_iter().enumerate() {
            self.control.add_queue(
                w,
                Queue {
                    port: id,
                    driver: Box::new(q),
                },
            );
        }
        Ok((id, tap))
    }

    /// Addresses, MTU and admin state change in place.
    fn update_interface(&mut self, name: &str, spec: &InterfaceSpec) -> Result<(), AgentError> {
        let cur = self.interfaces[name].clone();
        let port = cur.port;
        let old: Vec<IpNet> = cur.spec.addresses.iter().map(|a| a.net()).collect();
        let new: Vec<IpNet> = spec.addresses.iter().map(|a| a.net()).collect();
        for a in old.iter().filter(|a| !new.contains(a)) {
            self.control.del_address(port, *a)?;
        }
        for a in new.iter().filter(|a| !old.contains(a)) {
            self.control.add_address(port, *a)?;
        }
        if spec.mtu != cur.spec.mtu {
            let mtu = u16::try_from(spec.mtu).map_err(|_| AgentError::Invalid("mtu".into()))?;
            self.control.set_port_mtu(port, mtu)?;
            if spec.driver != Driver::Memory {
                host::take_over(&spec.host_interface, spec.mtu)?;
            }
        }
        self.control.set_port_up(port, spec.admin_up)?;
        if let Some((_, tap)) = &cur.mirror {
            host::mirror_addresses(tap, &new)?;
        }
        self.control.commit();
        if let Some(s) = self.interfaces.get_mut(name) {
            s.spec = spec.clone();
        }
        Ok(())
    }

    /// Remove an Interface: its queues close (AF_XDP programs detached) and
    /// its kernel mirror is deleted; routes through it lose their next hop.
    pub fn delete_interface(&mut self, name: &str) -> Result<(), AgentError> {
        let Some(s) = self.interfaces.remove(name) else {
            return Ok(());
        };
        self.control.remove_queues(s.port);
        if let Some((m, _)) = s.mirror {
            self.control.remove_queues(m);
            self.control.del_port(m)?;
        }
        self.control.del_port(s.port)?;
        self.control.commit();
        Ok(())
    }
}
