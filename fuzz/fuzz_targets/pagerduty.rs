//! Fuzz target: arbitrary bytes through the pagerduty parser and mapping, with
//! the invariants of `tocsin_wire::fuzz::pagerduty`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tocsin_wire::fuzz::pagerduty(data);
});
