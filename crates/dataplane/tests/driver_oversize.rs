//! Frames longer than a packet buffer: every driver drops them whole and
//! counts them (`rx_oversize`), and never hands on a cut frame.

#[path = "driver_util.rs"]
mod util;

use std::time::Duration;

use util::*;
use weir_dataplane::buffer::DATA_ROOM;
use weir_dataplane::driver::{
    in_netns, AfPacket, AfPacketOptions, AfXdp, AfXdpOptions, PortQueue, Tap, TapOptions,
};
use weir_dataplane::Pool;

/// A pair whose links carry frames of up to `mtu` + 14 bytes.
fn big_pair(tag: &str, mtu: u32) -> Pair {
    let p = Pair::new(tag);
    for (ns, dev) in [(&p.ns_a, &p.veth.a), (&p.ns_b, &p.veth.b)] {
        ns.exec(&["ip", "link", "set", "dev", dev, "mtu", &mtu.to_string()])
            .unwrap();
    }
    p
}

/// Send one frame of each length in `lens`, then a normal one, and return
/// what the queue delivered and its counters.
fn probe(q: &mut dyn PortQueue, sock: &RawSock, lens: &[usize]) -> Vec<Vec<u8>> {
    for (i, &len) in lens.iter().enumerate() {
        sock.send(&udp_frame(MAC_A, MAC_B, 1, i as u32, len));
    }
    let last = udp_frame(MAC_A, MAC_B, 2, 99, 200);
    sock.send(&last);
    let mut pool = Pool::new(1024);
    let got = drain(q, &mut pool, lens.len() + 1, Duration::from_secs(1));
    assert_eq!(pool.available(), 1024);
    assert_eq!(got.last(), Some(&last), "the frame after them arrives");
    got
}

#[test]
fn afpacket_drops_and_counts_frames_longer_than_a_buffer() {
    let p = big_pair("oa", 4000);
    let dev = p.veth.a.clone();
    let mut q = in_netns(p.ns_a.name(), move || {
        AfPacket::open(&dev, &AfPacketOptions::default())
    })
    .unwrap()
    .unwrap();
    let sock = RawSock::open(p.ns_b.name(), &p.veth.b);
    // A full buffer passes; one byte more (or a tag more) does not.
    let full = udp_frame(MAC_A, MAC_B, 3, 7, DATA_ROOM);
    let over_by_tag = tagged(&udp_frame(MAC_A, MAC_B, 4, 8, DATA_ROOM - 2), 5);
    sock.send(&full);
    sock.send(&over_by_tag);
    let got = probe(&mut q, &sock, &[DATA_ROOM + 1, 3000, 4014]);
    assert_eq!(got.len(), 2, "only the full-buffer frame and the last one");
    assert_eq!(got[0], full);
    let st = q.stats();
    assert_eq!(st.rx_oversize, 4);
    assert!(st.rx_dropped >= 4);
}

#[test]
fn afxdp_drops_and_counts_frames_longer_than_a_buffer() {
    // 3000: native XDP on veth takes MTUs up to about a page.
    let p = big_pair("ox", 3000);
    let dev = p.veth.a.clone();
    let mut q = in_netns(p.ns_a.name(), move || {
        AfXdp::open(&dev, 0, &AfXdpOptions::default())
    })
    .unwrap()
    .unwrap();
    let sock = RawSock::open(p.ns_b.name(), &p.veth.b);
    let got = probe(&mut q, &sock, &[DATA_ROOM + 1, 3014]);
    assert_eq!(got.len(), 1);
    assert_eq!(q.stats().rx_oversize, 2);
}

#[test]
fn afxdp_counts_what_the_kernel_drops_for_a_small_umem_frame() {
    let p = big_pair("ok", 3000);
    let dev = p.veth.a.clone();
    let mut q = in_netns(p.ns_a.name(), move || {
        AfXdp::open(
            &dev,
            0,
            &AfXdpOptions {
                frame_size: 2048,
                ..AfXdpOptions::default()
            },
        )
    })
    .unwrap()
    .unwrap();
    let sock = RawSock::open(p.ns_b.name(), &p.veth.b);
    // 2048-byte UMEM frames hold 1792 bytes after the XDP headroom.
    let got = probe(&mut q, &sock, &[1900]);
    assert_eq!(got.len(), 1);
    let st = q.stats();
    assert_eq!(st.rx_oversize, 1, "{st:?}");
}

#[test]
fn tap_drops_and_counts_frames_longer_than_a_buffer() {
    let ns = quiet_ns("ot");
    let dev = weir_lab::unique_name("t");
    let d = dev.clone();
    let mut q = in_netns(ns.name(), move || {
        Tap::open(&d, &TapOptions::up(Some(MAC_A), Some(4000)))
    })
    .unwrap()
    .unwrap();
    let sock = RawSock::open(ns.name(), &dev);
    let got = probe(&mut q, &sock, &[DATA_ROOM + 1, 4014]);
    assert_eq!(got.len(), 1);
    let st = q.stats();
    assert_eq!(st.rx_oversize, 2);
    assert_eq!(st.rx_packets, 1);
}
