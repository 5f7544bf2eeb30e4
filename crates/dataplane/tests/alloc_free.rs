//! Work per packet that traffic controls allocates nothing: packets held
//! for neighbour resolution, neighbour solicitations answered, adverts
//! learned from, ARP answered, IPv4 options recorded. A counting allocator
//! watches the worker's polls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, Ipv6Addr};

use weir_dataplane::driver::PortQueue;
use weir_dataplane::frames::{self, V4, V6};
use weir_dataplane::{Builder, MemoryQueue};
use weir_packet::MacAddr;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ARMED.with(|a| a.get()) {
            ALLOCS.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ARMED.with(|a| a.get()) {
            ALLOCS.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const GW0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const GW1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0xaa, 0x01]);

#[test]
fn per_packet_work_allocates_nothing() {
    let a = Ipv4Addr::new(10, 0, 0, 2);
    let h6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let gw6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut rr = frames::udp4(
        GW0,
        HOST,
        &V4::new(a, Ipv4Addr::new(192, 0, 2, 1)),
        1,
        2,
        40,
    );
    rr.splice(34..34, [7, 7, 4, 0, 0, 0, 0, 0]);
    rr[14] = 0x47;
    rr[17] += 8;
    let mut ip = weir_packet::Ipv4Packet::new_unchecked(&mut rr[14..]);
    ip.fill_checksum();
    let traffic = vec![
        // Held: attached hosts nobody has resolved (v4 and v6).
        frames::udp4(
            GW0,
            HOST,
            &V4::new(a, Ipv4Addr::new(10, 1, 0, 77)),
            1,
            2,
            100,
        ),
        frames::udp6(
            GW0,
            HOST,
            &V6::new(h6, "2001:db8:1::77".parse().unwrap()),
            1,
            2,
            100,
        ),
        // Answered in place.
        frames::neighbor_solicit(HOST, h6, gw6),
        frames::arp_request(HOST, a, Ipv4Addr::new(10, 0, 0, 1)),
        // Learned from (an advert with extra options to walk).
        {
            let mut f = frames::neighbor_advert(GW0, HOST, h6, gw6);
            f.extend_from_slice(&[99, 1, 0, 0, 0, 0, 0, 0, 98, 1, 0, 0, 0, 0, 0, 0]);
            let len = f.len() - 54;
            f[18..20].copy_from_slice(&(len as u16).to_be_bytes());
            let mut ip = weir_packet::Ipv6Packet::new_unchecked(&mut f[14..]);
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            let mut icmp = weir_packet::Icmpv6Packet::new_unchecked(ip.payload_mut());
            icmp.fill_checksum(s, d);
            f
        },
        // Forwarded with a Record Route option filled in.
        rr,
    ];
    let (rx, _) = MemoryQueue::replay(traffic);
    let (tx1, sent1) = MemoryQueue::sink();
    let mut b = Builder::new(1);
    b.port(0, "p0", GW0, 1500, vec![Box::new(rx) as Box<dyn PortQueue>])
        .unwrap();
    b.port(
        1,
        "p1",
        GW1,
        1500,
        vec![Box::new(tx1) as Box<dyn PortQueue>],
    )
    .unwrap();
    let c = b.control();
    c.add_address(0, "10.0.0.1/24".parse().unwrap()).unwrap();
    c.add_address(1, "10.1.0.1/24".parse().unwrap()).unwrap();
    c.add_address(0, "2001:db8::1/64".parse().unwrap()).unwrap();
    c.add_address(1, "2001:db8:1::1/64".parse().unwrap())
        .unwrap();
    c.set_static_neighbour(0, std::net::IpAddr::V4(a), HOST);
    c.set_static_neighbour(1, "10.1.0.2".parse().unwrap(), GW1);
    c.add_route(
        0,
        "192.0.2.0/24".parse().unwrap(),
        weir_dataplane::RouteTarget::Via {
            gateway: "10.1.0.2".parse().unwrap(),
            port: None,
        },
    )
    .unwrap();
    let mut dp = b.build();
    dp.control.commit();
    let w = &mut dp.workers[0];
    for _ in 0..4 {
        w.poll();
    }
    // The counter sees an allocation when there is one.
    ARMED.with(|x| x.set(true));
    drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
    ARMED.with(|x| x.set(false));
    assert_eq!(ALLOCS.with(|c| c.replace(0)), 1);
    ARMED.with(|x| x.set(true));
    for _ in 0..40 {
        w.poll();
    }
    ARMED.with(|x| x.set(false));
    let allocs = ALLOCS.with(|c| c.get());
    let s = w.stats();
    assert!(s.rx_packets >= 40 * 256, "the worker was busy");
    assert!(
        s.drop_count("ip4-output/neigh-held-for-resolution") > 0,
        "packets were held"
    );
    assert!(sent1.tx_packets.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!(allocs, 0, "allocations in 40 busy polls");
}
