//! Fuzz target: arbitrary bytes through the alertmanager parser and mapping, with
//! the invariants of `tocsin_wire::fuzz::alertmanager`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tocsin_wire::fuzz::alertmanager(data);
});
