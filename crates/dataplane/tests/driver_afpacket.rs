//! The AF_PACKET driver on a veth pair across two namespaces.

#[path = "driver_util.rs"]
mod util;

use std::collections::BTreeSet;
use std::time::Duration;

use util::*;
use weir_dataplane::driver::{
    in_netns, open, AfPacket, AfPacketOptions, DriverKind, DriverOptions, PortQueue,
};
use weir_dataplane::Pool;

fn open_a(p: &Pair, opts: AfPacketOptions) -> AfPacket {
    let dev = p.veth.a.clone();
    in_netns(p.ns_a.name(), move || AfPacket::open(&dev, &opts))
        .unwrap()
        .unwrap()
}

#[test]
fn receives_frames_byte_exact_with_vlan_tags_restored() {
    let p = Pair::new("pr");
    let mut q = open_a(&p, AfPacketOptions::default());
    let tx = RawSock::open(p.ns_b.name(), &p.veth.b);
    let frames = test_frames(MAC_A, MAC_B, 120);
    for f in &frames {
        tx.send(f);
    }
    let mut pool = Pool::new(1024);
    let got = drain(&mut q, &mut pool, frames.len(), Duration::from_secs(3));
    assert_eq!(got.len(), frames.len());
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(g, f, "frame {i}");
    }
    let st = q.stats();
    assert!(st.rx_packets >= frames.len() as u64);
    assert_eq!(st.rx_dropped, 0);
    assert!(q.fd().is_some());
    assert_eq!(pool.available(), 1024);
}

#[test]
fn transmits_bursts_byte_exact() {
    let p = Pair::new("pt");
    let mut q = open_a(&p, AfPacketOptions::default());
    let cap = RawSock::open(p.ns_b.name(), &p.veth.b);
    // More than one sendmmsg chunk.
    let frames = test_frames(MAC_B, MAC_A, 300);
    let mut pool = Pool::new(1024);
    let sent = send_burst(&mut q, &mut pool, &frames);
    assert_eq!(sent, frames.len());
    let got = cap.capture(frames.len(), Duration::from_secs(3));
    assert_eq!(got.len(), frames.len());
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(g, f, "frame {i}");
    }
    let st = q.stats();
    assert_eq!(st.tx_packets, 300);
    assert_eq!(st.tx_dropped, 0);
    // Our own transmissions are not received back.
    assert!(drain(&mut q, &mut pool, 1, Duration::from_millis(50)).is_empty());
}

#[test]
fn fanout_group_shares_every_frame_once() {
    let p = Pair::new("pf");
    let opts = AfPacketOptions {
        fanout_group: Some(0x4242),
        ..Default::default()
    };
    let mut q1 = open_a(&p, opts.clone());
    let mut q2 = open_a(&p, opts);
    let tx = RawSock::open(p.ns_b.name(), &p.veth.b);
    let frames: Vec<Vec<u8>> = (0..400)
        .map(|i| udp_frame(MAC_A, MAC_B, (i % 64) as u16, i as u32, 100))
        .collect();
    for f in &frames {
        tx.send(f);
    }
    let mut pool = Pool::new(1024);
    let mut all = Vec::new();
    let mut per = [0usize; 2];
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while all.len() < frames.len() && std::time::Instant::now() < deadline {
        for (i, q) in [&mut q1, &mut q2].into_iter().enumerate() {
            let got = drain(q, &mut pool, usize::MAX, Duration::from_millis(20));
            per[i] += got.len();
            all.extend(got);
        }
    }
    // Once more, to catch duplicates arriving late.
    for q in [&mut q1, &mut q2] {
        all.extend(drain(q, &mut pool, usize::MAX, Duration::from_millis(30)));
    }
    assert_eq!(all.len(), frames.len(), "each frame exactly once: {per:?}");
    let want: BTreeSet<_> = frames.iter().collect();
    let got: BTreeSet<_> = all.iter().collect();
    assert_eq!(want, got);
    assert!(
        per[0] > 0 && per[1] > 0,
        "both sockets got a share: {per:?}"
    );
}

#[test]
fn open_by_kind_and_errors_name_the_interface() {
    let p = Pair::new("pk");
    let dev = p.veth.a.clone();
    let (q, kind, why) = in_netns(p.ns_a.name(), move || {
        open(DriverKind::AfPacket, &dev, 0, &DriverOptions::default())
    })
    .unwrap()
    .unwrap();
    assert_eq!(kind, DriverKind::AfPacket);
    assert!(why.is_none());
    assert_eq!(q.kind(), "af_packet");

    let err = in_netns(p.ns_a.name(), || {
        AfPacket::open("nope0", &AfPacketOptions::default()).err()
    })
    .unwrap()
    .unwrap();
    assert!(err.to_string().contains("nope0"), "{err}");

    for s in ["afxdp", "afpacket", "tap", "memory", "auto"] {
        let k: DriverKind = s.parse().unwrap();
        assert_eq!(k.to_string(), s);
    }
    assert!("dpdk".parse::<DriverKind>().is_err());
}
