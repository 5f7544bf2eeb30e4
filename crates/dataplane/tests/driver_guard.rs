//! While weir has a queue open on an interface, the kernel stack of its
//! namespace neither receives nor sends anything there; once the last queue
//! is closed, the interface is the kernel's again.

#[path = "driver_util.rs"]
mod util;

use std::time::Duration;

use util::*;
use weir_dataplane::driver::{in_netns, open, DriverKind, DriverOptions, PortQueue};
use weir_dataplane::Pool;

const A_IP: [u8; 4] = [10, 77, 0, 1];
const B_IP: [u8; 4] = [10, 77, 0, 2];

fn arp_replies(cap: &RawSock, n: usize) -> usize {
    cap.capture_where(n, Duration::from_millis(600), |f| is_arp(f, 2))
        .len()
}

fn kernel_kept_out(kind: DriverKind, tag: &str) {
    let p = Pair::new(tag);
    p.ns_a.addr_add(&p.veth.a, "10.77.0.1/24").unwrap();
    p.ns_b.addr_add(&p.veth.b, "10.77.0.2/24").unwrap();
    let sock = RawSock::open(p.ns_b.name(), &p.veth.b);
    let ask = arp_request(MAC_B, B_IP, A_IP);

    // Without weir the kernel answers: the probe can tell.
    sock.send(&ask);
    assert_eq!(arp_replies(&sock, 1), 1, "the kernel answers ARP");

    let dev = p.veth.a.clone();
    let (mut q, got, why) = in_netns(p.ns_a.name(), move || {
        open(kind, &dev, 0, &DriverOptions::default())
    })
    .unwrap()
    .unwrap();
    assert_eq!(got, kind, "{why:?}");
    let mut pool = Pool::new(1024);

    // weir sees the request; the kernel does not answer it.
    sock.send(&ask);
    let seen = drain(q.as_mut(), &mut pool, 1, Duration::from_secs(2));
    assert_eq!(seen.len(), 1, "the driver receives the request");
    assert_eq!(seen[0], ask);
    assert_eq!(arp_replies(&sock, 1), 0, "the kernel answered beside weir");

    // Nor does the kernel send on its own: resolving B's address would
    // broadcast an ARP request from A.
    let _ = p.ns_a.exec(&["ping", "-c", "1", "-W", "1", "10.77.0.2"]);
    let asked = sock.capture_where(1, Duration::from_millis(300), |f| {
        is_arp(f, 1) && f[6..12] == MAC_A
    });
    assert!(asked.is_empty(), "the kernel sent {asked:02x?}");

    // weir's own transmissions still go out.
    let frames = test_frames(MAC_B, MAC_A, 20);
    assert_eq!(send_burst(q.as_mut(), &mut pool, &frames), 20);
    assert_eq!(sock.capture(20, Duration::from_secs(2)).len(), 20);

    // Closing the queue gives the interface back to the kernel.
    drop(q);
    assert!(
        kernel_answers_again(&sock, &ask),
        "the kernel answers again"
    );
}

/// The hooks go when the last reference to their links does, which the
/// kernel may finish a moment after close returns: ask a few times.
fn kernel_answers_again(sock: &RawSock, ask: &[u8]) -> bool {
    (0..5).any(|_| {
        sock.send(ask);
        arp_replies(sock, 1) == 1
    })
}

#[test]
fn afpacket_keeps_the_kernel_off_the_interface() {
    kernel_kept_out(DriverKind::AfPacket, "gp");
}

#[test]
fn afxdp_keeps_the_kernel_off_the_interface() {
    kernel_kept_out(DriverKind::AfXdp, "gx");
}

#[test]
fn two_queues_share_one_guard_until_the_last_closes() {
    let p = Pair::new("g2");
    p.ns_a.addr_add(&p.veth.a, "10.77.0.1/24").unwrap();
    let sock = RawSock::open(p.ns_b.name(), &p.veth.b);
    let ask = arp_request(MAC_B, B_IP, A_IP);
    let mut opts = DriverOptions::default();
    opts.afpacket.fanout_group = Some(7);
    let dev = p.veth.a.clone();
    let (q1, q2) = in_netns(p.ns_a.name(), move || {
        let a = open(DriverKind::AfPacket, &dev, 0, &opts).unwrap().0;
        let b = open(DriverKind::AfPacket, &dev, 1, &opts).unwrap().0;
        (a, b)
    })
    .unwrap();
    drop(q1);
    sock.send(&ask);
    assert_eq!(arp_replies(&sock, 1), 0, "one queue still open");
    drop::<Box<dyn PortQueue>>(q2);
    assert!(kernel_answers_again(&sock, &ask), "the last queue closed");
}
