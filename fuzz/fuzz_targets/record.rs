//! Fuzz target: on-disk record decoding (see `steward_fuzz::record`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::record(data));
