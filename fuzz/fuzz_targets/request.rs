//! Fuzz target: request decoding and validation (see `steward_fuzz::request`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::request(data));
