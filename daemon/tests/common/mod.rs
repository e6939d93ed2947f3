//! Compatibility path for a test file written against the old helpers (`mod common;` in
//! `daemon/tests/NAME.rs`): the same names, now from `steward_testkit`. New tests go in
//! `daemon/tests/it/` as a module and use the kit directly (see `tests/it/main.rs` there).

#![allow(dead_code, unused_imports)]

pub use steward_testkit::process::{
    RawReply, Stewardd, TENANTS, config_text, contact, emails_of, get, health, list_all, me,
    parse_statuses, raw, read_replies, run_to_exit, verify_all,
};

/// The `stewardd` binary under test (Cargo names it for this package's tests).
pub const STEWARDD: &str = env!("CARGO_BIN_EXE_stewardd");
