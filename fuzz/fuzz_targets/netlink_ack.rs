//! Netlink replies as the drivers read them: any datagram, any sequence
//! number, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_dataplane::driver::afxdp::netlink::parse_ack;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let seq = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
    let _ = parse_ack(&data[4..], seq);
});
