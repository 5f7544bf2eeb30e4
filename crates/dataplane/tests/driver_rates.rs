//! Rough rates over a veth pair (ignored by default; run with
//! `cargo test --release -p weir-dataplane --test driver_rates -- --ignored --nocapture`).

#[path = "driver_util.rs"]
mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use util::*;
use weir_dataplane::driver::{
    in_netns, AfPacket, AfPacketOptions, AfXdp, AfXdpOptions, PortQueue, XdpMode,
};
use weir_dataplane::{PktId, Pool};

fn blast(mut q: Box<dyn PortQueue>, stop: Arc<AtomicBool>) -> u64 {
    let mut pool = Pool::new(1024);
    let f = udp_frame(MAC_A, MAC_B, 1, 0, 60);
    let mut sent = 0u64;
    let mut ids = [0 as PktId; 256];
    while !stop.load(Ordering::Relaxed) {
        for id in ids.iter_mut() {
            *id = pool.alloc().unwrap();
            pool.get_mut(*id).fill(&f);
        }
        sent += q.tx_burst(&mut pool, &ids) as u64;
    }
    println!("sender: {:?}", q.stats());
    sent
}

fn measure(name: &str, rx: Box<dyn PortQueue>, tx: Box<dyn PortQueue>, secs: f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let sender = std::thread::spawn(move || blast(tx, s2));
    let mut rx = rx;
    let mut pool = Pool::new(4096);
    let mut ids = [0 as PktId; 256];
    let t = Instant::now();
    let mut got = 0u64;
    while t.elapsed().as_secs_f64() < secs {
        let n = rx.rx_burst(&mut pool, &mut ids);
        got += n as u64;
        pool.free_all(&ids[..n]);
    }
    let el = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    println!("receiver: {:?}", rx.stats());
    println!(
        "{name}: tx {:.2} Mpps offered, rx {:.2} Mpps (60-byte frames, {el:.1} s)",
        sent as f64 / el / 1e6,
        got as f64 / el / 1e6
    );
}

#[test]
#[ignore = "a measurement that prints rates, not a check; run with --ignored --nocapture"]
fn rates() {
    let p = Pair::new("r");
    let (a, b) = (p.veth.a.clone(), p.veth.b.clone());
    let open_pkt = |ns: &str, dev: String| -> Box<dyn PortQueue> {
        Box::new(
            in_netns(ns, move || {
                AfPacket::open(&dev, &AfPacketOptions::default())
            })
            .unwrap()
            .unwrap(),
        )
    };
    measure(
        "af_packet -> af_packet",
        open_pkt(p.ns_a.name(), a.clone()),
        open_pkt(p.ns_b.name(), b.clone()),
        2.0,
    );
    for mode in [XdpMode::Native, XdpMode::Skb] {
        let a2 = a.clone();
        let x: Box<dyn PortQueue> = Box::new(
            in_netns(p.ns_a.name(), move || {
                AfXdp::open(
                    &a2,
                    0,
                    &AfXdpOptions {
                        mode,
                        ..Default::default()
                    },
                )
            })
            .unwrap()
            .unwrap(),
        );
        measure(
            &format!("af_packet -> af_xdp ({mode:?})"),
            x,
            open_pkt(p.ns_b.name(), b.clone()),
            2.0,
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // AF_XDP transmit.
    let a2 = a.clone();
    let x: Box<dyn PortQueue> = Box::new(
        in_netns(p.ns_a.name(), move || {
            AfXdp::open(&a2, 0, &AfXdpOptions::default())
        })
        .unwrap()
        .unwrap(),
    );
    measure(
        "af_xdp -> af_packet",
        open_pkt(p.ns_b.name(), b.clone()),
        x,
        2.0,
    );
}
