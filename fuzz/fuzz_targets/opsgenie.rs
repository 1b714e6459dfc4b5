//! Fuzz target: arbitrary bytes through the opsgenie parser and mapping, with
//! the invariants of `tocsin_wire::fuzz::opsgenie`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tocsin_wire::fuzz::opsgenie(data);
});
