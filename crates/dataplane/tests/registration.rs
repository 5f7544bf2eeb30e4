//! A feature plugs in by registering: a node and a claim on an ethertype or
//! on local UDP traffic to a port, without touching the nodes that
//! dispatch on them. A module also owns tables (published by the control
//! side, read once per batch) and slots of per-packet metadata.

use std::net::Ipv4Addr;

use weir_dataplane::buffer::{Meta, SlotId, SLOT_AREA};
use weir_dataplane::frames::{self, V4};
use weir_dataplane::graph::{self, Dispatch, Node, Reason};
use weir_dataplane::registry::Family;
use weir_dataplane::snapshot::{Apply, TableId};
use weir_dataplane::worker::{Ctx, Fwd};
use weir_dataplane::{modules, Builder, PktId};
use weir_packet::{EtherType, IpProtocol, MacAddr};

const GW: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0xaa, 0x01]);

/// Takes every packet and drops it under its one reason, "taken".
struct Sink(&'static str);

impl Node<Fwd> for Sink {
    fn name(&self) -> &'static str {
        self.0
    }
    fn next_nodes(&self) -> &[&'static str] {
        &[]
    }
    fn reasons(&self) -> &'static [&'static str] {
        &["taken"]
    }
    fn process(&mut self, _cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for i in 0..pkts.len() {
            out.drop_at(i, Reason::node(0));
        }
    }
}

fn udp_to_gateway(dport: u16) -> Vec<u8> {
    let ip = V4::new(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
    frames::udp4(GW, HOST, &ip, 5555, dport, 16)
}

#[test]
fn local_udp_to_a_registered_port_goes_to_its_node_and_the_rest_to_the_kernel() {
    let mut r = modules::registry();
    r.local(Family::V4, IpProtocol::UDP, Some(4789), "vxlan-test");
    r.node(|_| Sink("vxlan-test"));
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW, 1500).unwrap().remove(0);
    b.control()
        .add_address(0, "10.0.0.1/24".parse().unwrap())
        .unwrap();
    let mut dp = b.build_with(&r);
    p0.inject(udp_to_gateway(4789));
    p0.inject(udp_to_gateway(4790));
    dp.poll();
    let st = dp.stats();
    assert_eq!(st.drop_count("vxlan-test/taken"), 1);
    // Unclaimed: the kernel mirror, which this gateway has none of.
    assert_eq!(st.drop_count("punt-kernel/no-kernel-mirror"), 1);
    assert_eq!(st.node("ip4-local").packets, 2);
}

#[test]
fn a_registered_ethertype_goes_to_its_node() {
    let mut r = modules::registry();
    r.ethertype(EtherType(0x88b5), "local-experimental");
    r.node(|_| Sink("local-experimental"));
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW, 1500).unwrap().remove(0);
    let mut dp = b.build_with(&r);
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&GW.0);
    f[6..12].copy_from_slice(&HOST.0);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    p0.inject(f.clone());
    f[12..14].copy_from_slice(&0x88b6u16.to_be_bytes());
    p0.inject(f);
    dp.poll();
    let st = dp.stats();
    assert_eq!(st.drop_count("local-experimental/taken"), 1);
    assert_eq!(st.drop_count("eth-input/unknown-ethertype"), 1);
}

#[test]
fn the_graph_runs_senders_before_receivers() {
    let order = modules::registry().graph().nodes();
    let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
    assert_eq!(pos("eth-input"), 0);
    assert!(pos("ip4-input") < pos("ip4-lookup"));
    assert!(pos("ip4-lookup") < pos("ip4-output"));
    assert!(pos("ip4-output") < pos("port-tx"));
    assert!(pos("ip6-lookup") < pos("ip6-output"));
    assert_eq!(pos("port-tx"), order.len() - 1);
}

#[test]
fn a_punt_reason_goes_to_the_node_registered_for_it() {
    let mut r = modules::registry();
    r.punt("icmp4-unhandled", "icmp-test");
    r.node(|_| Sink("icmp-test"));
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW, 1500).unwrap().remove(0);
    b.control()
        .add_address(0, "10.0.0.1/24".parse().unwrap())
        .unwrap();
    let mut dp = b.build_with(&r);
    let ip = V4::new(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
    let mut f = frames::ping4(GW, HOST, &ip, 1, 1);
    // A timestamp request: ICMP the dataplane does not answer itself.
    let mut icmp = weir_packet::Icmpv4Packet::new_checked(&mut f[34..]).unwrap();
    icmp.set_msg_type(13);
    icmp.fill_checksum();
    p0.inject(f);
    dp.poll();
    let st = dp.stats();
    assert_eq!(st.drop_count("icmp-test/taken"), 1);
    assert_eq!(st.node("punt-kernel").packets, 0);
}

/// A module's own table: the tag its node writes into packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tag(u32);

impl Apply for Tag {
    type Change = Tag;
    fn apply(&mut self, c: &Tag) {
        *self = *c;
    }
}

/// Writes this batch's tag and a fixed marker into its module's slots.
struct Tagger {
    tag: TableId<Tag>,
    slot: SlotId<u32>,
    marker: SlotId<u64>,
}

impl Node<Fwd> for Tagger {
    fn name(&self) -> &'static str {
        "tag-test"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &["tag-check"]
    }
    fn reasons(&self) -> &'static [&'static str] {
        &[]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        let tag = cx.table(self.tag).0;
        for (i, &id) in pkts.iter().enumerate() {
            let m = &mut cx.pool.get_mut(id).meta;
            *m.slot_mut(self.slot) = tag;
            *m.slot_mut(self.marker) = u64::MAX;
            out.next(i, graph::Edge(0));
        }
    }
}

/// Drops each packet as "seven" when its tag slot holds 7 (and the other
/// module's marker is intact), else as "other".
struct Checker {
    slot: SlotId<u32>,
    marker: SlotId<u64>,
}

impl Node<Fwd> for Checker {
    fn name(&self) -> &'static str {
        "tag-check"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &[]
    }
    fn reasons(&self) -> &'static [&'static str] {
        &["seven", "other"]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PktId], out: &mut Dispatch<'_>) {
        for (i, &id) in pkts.iter().enumerate() {
            let m = &cx.pool.get(id).meta;
            let ok = m.slot(self.slot) == 7 && m.slot(self.marker) == u64::MAX;
            out.drop_at(i, Reason::node(if ok { 0 } else { 1 }));
        }
    }
}

fn frame_88b5() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&GW.0);
    f[6..12].copy_from_slice(&HOST.0);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f
}

#[test]
fn a_module_table_published_after_build_reaches_its_node_next_batch() {
    let mut r = modules::registry();
    let tag = r.table(Tag(1));
    // Two modules' slots: one for the tag, one for another module's marker.
    let slot = r.slot::<u32>();
    let marker = r.slot::<u64>();
    r.ethertype(EtherType(0x88b5), "tag-test");
    r.node(move |_| Tagger { tag, slot, marker });
    r.node(move |_| Checker { slot, marker });
    let mut b = Builder::new(1);
    let p0 = b.memory_port(0, "p0", GW, 1500).unwrap().remove(0);
    let mut dp = b.build_with(&r);

    p0.inject(frame_88b5());
    dp.poll();
    assert_eq!(dp.stats().drop_count("tag-check/other"), 1);

    dp.control.table::<Tag>().commit(vec![Tag(7)]);
    p0.inject(frame_88b5());
    dp.poll();
    let st = dp.stats();
    assert_eq!(st.drop_count("tag-check/seven"), 1);
    assert_eq!(st.drop_count("tag-check/other"), 1);
}

#[test]
fn module_slots_do_not_overlap_and_a_full_area_refuses_more() {
    let mut r = modules::registry();
    let a = r.slot::<u8>();
    let b = r.slot::<u64>();
    let c = r.slot::<[u16; 3]>();
    let spans: Vec<_> = r.slots().iter().map(|&(_, at, n)| at..at + n).collect();
    for (i, x) in spans.iter().enumerate() {
        for y in &spans[i + 1..] {
            assert!(x.end <= y.start || y.end <= x.start, "{x:?} overlaps {y:?}");
        }
    }
    assert_eq!(b.offset() % 8, 0);
    // Writing one slot leaves the others as they were.
    let mut m = Meta::default();
    *m.slot_mut(b) = u64::MAX;
    *m.slot_mut(c) = [0xffff; 3];
    *m.slot_mut(a) = 5;
    assert_eq!(
        (m.slot(a), m.slot(b), m.slot(c)),
        (5, u64::MAX, [0xffff; 3])
    );
    // 22 bytes used: 16 more at the next 8-byte boundary do not fit.
    assert!(r.try_slot::<[u64; 2]>().is_none());
    assert!(r.try_slot::<u64>().is_some());
    assert!(r.try_slot::<u8>().is_none());
    assert_eq!(SLOT_AREA, 32);
}

#[test]
#[should_panic(expected = "registered twice")]
fn a_table_type_belongs_to_one_module() {
    let mut r = modules::registry();
    r.table(Tag(1));
    r.table(Tag(2));
}
