//! Fuzz target: arbitrary bytes through the ilert parser and mapping, with
//! the invariants of `tocsin_wire::fuzz::ilert`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tocsin_wire::fuzz::ilert(data);
});
