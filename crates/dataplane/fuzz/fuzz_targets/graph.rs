//! Arbitrary frames through the whole graph of a realistic gateway on the
//! memory driver. Input: [port, length (u16 BE), bytes]... Fails on a
//! panic, a leaked buffer or a packet neither sent nor dropped with a
//! counted reason.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_dataplane::testbed::{split_frames, Testbed};

fuzz_target!(|data: &[u8]| {
    // A fresh gateway per input: the neighbour table and held packets are
    // state, and a crash must replay from its input alone.
    let mut tb = Testbed::new();
    if let Err(e) = tb.run(split_frames(data)) {
        panic!("{e}");
    }
});
