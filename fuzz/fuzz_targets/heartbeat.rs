//! Fuzz target: arbitrary bytes through the heartbeat parser and mapping, with
//! the invariants of `tocsin_wire::fuzz::heartbeat`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tocsin_wire::fuzz::heartbeat(data);
});
