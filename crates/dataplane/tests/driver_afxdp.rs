//! The AF_XDP driver on a veth pair across two namespaces, with weir's own
//! XDP program.

#[path = "driver_util.rs"]
mod util;

use std::time::Duration;

use util::*;
use weir_dataplane::driver::{
    in_netns, open, AfXdp, AfXdpOptions, DriverError, DriverKind, DriverOptions, PortQueue, XdpMode,
};
use weir_dataplane::Pool;

fn open_a(p: &Pair, opts: AfXdpOptions) -> Result<AfXdp, DriverError> {
    let dev = p.veth.a.clone();
    in_netns(p.ns_a.name(), move || AfXdp::open(&dev, 0, &opts)).unwrap()
}

fn rx_tx_roundtrip(mode: XdpMode) {
    let p = Pair::new(if mode == XdpMode::Skb { "xs" } else { "xn" });
    let mut q = open_a(
        &p,
        AfXdpOptions {
            mode,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(q.xdp_mode(), Some(mode));
    assert!(has_xdp(&p.ns_a, &p.veth.a));
    let raw = RawSock::open(p.ns_b.name(), &p.veth.b);
    let mut pool = Pool::new(4096);

    // Receive: more frames than one burst.
    let frames = test_frames(MAC_A, MAC_B, 600);
    for f in &frames {
        raw.send(f);
    }
    let got = drain(&mut q, &mut pool, frames.len(), Duration::from_secs(3));
    assert_eq!(got.len(), frames.len());
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(g, f, "rx frame {i}");
    }

    // Transmit: more than the kernel's 32 frames per copy-mode kick.
    let frames = test_frames(MAC_B, MAC_A, 300);
    assert_eq!(send_burst(&mut q, &mut pool, &frames), frames.len());
    let got = raw.capture(frames.len(), Duration::from_secs(3));
    assert_eq!(got.len(), frames.len());
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(g, f, "tx frame {i}");
    }
    // Many bursts: frames come back through the completion ring.
    for round in 0..20 {
        let frames = test_frames(MAC_B, MAC_A, 256);
        assert_eq!(send_burst(&mut q, &mut pool, &frames), 256, "round {round}");
        assert_eq!(raw.capture(256, Duration::from_secs(3)).len(), 256);
    }
    let st = q.stats();
    assert_eq!(st.rx_packets, 600);
    assert_eq!(st.tx_packets, 300 + 20 * 256);
    assert_eq!(st.tx_dropped, 0);
    assert_eq!(pool.available(), 4096);

    drop(q);
    assert!(!has_xdp(&p.ns_a, &p.veth.a), "program detached on drop");
}

#[test]
fn native_mode_receives_and_transmits_then_detaches() {
    rx_tx_roundtrip(XdpMode::Native);
}

#[test]
fn skb_mode_receives_and_transmits_then_detaches() {
    rx_tx_roundtrip(XdpMode::Skb);
}

#[test]
fn zero_copy_on_veth_is_refused_with_a_typed_error_and_auto_falls_back() {
    let p = Pair::new("xz");
    let err = open_a(
        &p,
        AfXdpOptions {
            zero_copy: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, DriverError::Sys { .. }), "{err}");
    println!("zero-copy on veth: {err}");
    assert!(err.to_string().contains(&p.veth.a), "{err}");
    assert!(!has_xdp(&p.ns_a, &p.veth.a));

    // auto: AF_XDP when it works...
    let dev = p.veth.a.clone();
    let (q, kind, why) = in_netns(p.ns_a.name(), move || {
        open(DriverKind::Auto, &dev, 0, &DriverOptions::default())
    })
    .unwrap()
    .unwrap();
    assert_eq!((kind, q.kind(), why), (DriverKind::AfXdp, "af_xdp", None));
    drop(q);
    // ... AF_PACKET with the reason when it does not.
    let dev = p.veth.a.clone();
    let mut opts = DriverOptions::default();
    opts.afxdp.zero_copy = true;
    let (q, kind, why) = in_netns(p.ns_a.name(), move || {
        open(DriverKind::Auto, &dev, 0, &opts)
    })
    .unwrap()
    .unwrap();
    assert_eq!((kind, q.kind()), (DriverKind::AfPacket, "af_packet"));
    assert!(why.unwrap().contains("XDP_ZEROCOPY"));
}

#[test]
fn queues_of_one_interface_share_the_program() {
    let ns = quiet_ns("xq");
    let (a, b) = (weir_lab::unique_name("a"), weir_lab::unique_name("b"));
    // Both ends in one namespace, removed with it.
    ns.exec(&[
        "ip",
        "link",
        "add",
        &a,
        "numrxqueues",
        "2",
        "numtxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        &b,
        "numrxqueues",
        "2",
        "numtxqueues",
        "2",
    ])
    .unwrap();
    ns.exec(&["ip", "link", "set", &a, "up"]).unwrap();
    ns.exec(&["ip", "link", "set", &b, "up"]).unwrap();
    let (a2, a3) = (a.clone(), a.clone());
    let q0 = in_netns(ns.name(), move || {
        AfXdp::open(&a2, 0, &AfXdpOptions::default())
    })
    .unwrap()
    .unwrap();
    let q1 = in_netns(ns.name(), move || {
        AfXdp::open(&a3, 1, &AfXdpOptions::default())
    })
    .unwrap()
    .unwrap();
    assert_eq!(q0.xdp_mode(), q1.xdp_mode());
    drop(q0);
    assert!(has_xdp(&ns, &a), "still attached while queue 1 is open");
    // A queue that does not exist is refused, naming the interface.
    let a4 = a.clone();
    let err = in_netns(ns.name(), move || {
        AfXdp::open(&a4, 5, &AfXdpOptions::default())
    })
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains(&a), "{err}");
    drop(q1);
    assert!(!has_xdp(&ns, &a));
}
