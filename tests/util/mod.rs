//! Compatibility path for a test file written against the old helpers (`mod util;` in
//! `tests/NAME.rs`): the same names, now from `steward_testkit::inproc`. The daemon's
//! shared state is no longer handed out: read audit records with `TestDaemon::audit`,
//! reload with `TestDaemon::reload`, and read the store of a stopped daemon with
//! `steward_testkit::inproc::stored`. New tests go in `tests/it/` as a module.

#![allow(dead_code, unused_imports)]

pub use steward_testkit::inproc::{
    Api, T, TestDaemon, VM, config_text, in_secs, initiate, me, open, poll, policy, reasons,
    stored, stored_audit,
};
