//! The TAP driver inside a namespace.

#[path = "driver_util.rs"]
mod util;

use std::time::Duration;

use util::*;
use weir_dataplane::driver::{
    in_netns, open, DriverKind, DriverOptions, PortQueue, Tap, TapOptions,
};
use weir_dataplane::Pool;

fn link_exists(ns: &weir_lab::Netns, dev: &str) -> bool {
    ns.exec(&["ip", "link", "show", "dev", dev]).is_ok()
}

#[test]
fn tap_passes_frames_both_ways_and_vanishes_on_drop() {
    let ns = quiet_ns("t");
    let dev = weir_lab::unique_name("t");
    let d = dev.clone();
    let mut q = in_netns(ns.name(), move || {
        Tap::open(&d, &TapOptions::up(Some(MAC_A), Some(1400)))
    })
    .unwrap()
    .unwrap();
    assert!(link_exists(&ns, &dev));
    let show = ns.output(&["ip", "link", "show", "dev", &dev]).unwrap();
    assert!(show.contains("02:00:00:00:00:0a"), "{show}");
    assert!(show.contains("mtu 1400"), "{show}");
    assert!(show.contains(",UP"), "{show}");

    // The kernel side sends: frames reach rx_burst byte-exact.
    let raw = RawSock::open(ns.name(), &dev);
    let frames = test_frames(MAC_A, MAC_B, 50)
        .into_iter()
        .filter(|f| f.len() <= 1414)
        .collect::<Vec<_>>();
    for f in &frames {
        raw.send(f);
    }
    let mut pool = Pool::new(512);
    let got = drain(&mut q, &mut pool, frames.len(), Duration::from_secs(3));
    assert_eq!(got, frames);

    // tx_burst: frames reach the kernel side byte-exact.
    let frames = test_frames(MAC_B, MAC_A, 40)
        .into_iter()
        .filter(|f| f.len() <= 1414)
        .collect::<Vec<_>>();
    assert_eq!(send_burst(&mut q, &mut pool, &frames), frames.len());
    let got = raw.capture(frames.len(), Duration::from_secs(3));
    assert_eq!(got, frames);
    let st = q.stats();
    assert_eq!(st.tx_packets, frames.len() as u64);
    assert!(q.fd().is_some());

    drop(raw);
    drop(q);
    assert!(!link_exists(&ns, &dev), "the device goes with its queue");
}

#[test]
fn tap_through_open() {
    let ns = quiet_ns("to");
    let dev = weir_lab::unique_name("t");
    let d = dev.clone();
    let (q, kind, why) = in_netns(ns.name(), move || {
        open(DriverKind::Tap, &d, 0, &DriverOptions::default())
    })
    .unwrap()
    .unwrap();
    assert_eq!((kind, q.kind(), why), (DriverKind::Tap, "tap", None));
    assert!(link_exists(&ns, &dev));
    drop(q);
    assert!(!link_exists(&ns, &dev));
}

/// Read syscalls made by the calling thread so far.
fn thread_reads() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn an_idle_tap_costs_no_syscall_per_poll_and_wakes_when_frames_come() {
    let ns = quiet_ns("ti");
    let dev = weir_lab::unique_name("t");
    let d = dev.clone();
    let mut q = in_netns(ns.name(), move || {
        Tap::open(&d, &TapOptions::up(Some(MAC_A), None))
    })
    .unwrap()
    .unwrap();
    let raw = RawSock::open(ns.name(), &dev);
    let mut pool = Pool::new(256);
    let mut ids = [0; 64];
    // Let whatever the kernel sent at start drain.
    for _ in 0..50 {
        let n = q.rx_burst(&mut pool, &mut ids);
        pool.free_all(&ids[..n]);
        std::thread::sleep(Duration::from_millis(2));
    }
    // Reading the counter is itself a read or two.
    let a = thread_reads();
    let own = thread_reads() - a;
    let before = thread_reads();
    for _ in 0..100_000 {
        assert_eq!(q.rx_burst(&mut pool, &mut ids), 0);
    }
    let idle = thread_reads() - before - own;
    assert!(idle <= 1, "{idle} reads for 100000 idle polls");

    // Frames wake it up, all of them are read, and it goes quiet again.
    let frames = test_frames(MAC_A, MAC_B, 100)
        .into_iter()
        .filter(|f| f.len() <= 1514)
        .collect::<Vec<_>>();
    for f in &frames {
        raw.send(f);
    }
    let got = drain(&mut q, &mut pool, frames.len(), Duration::from_secs(3));
    assert_eq!(got, frames);
    let before = thread_reads();
    for _ in 0..100_000 {
        assert_eq!(q.rx_burst(&mut pool, &mut ids), 0);
    }
    let idle = thread_reads() - before - own;
    assert!(
        idle <= 1,
        "{idle} reads for 100000 idle polls after a burst"
    );
}
