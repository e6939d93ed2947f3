//! Fuzz target: stored values read back through a real store file (see `steward_fuzz::stored`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzz::stored(data));
