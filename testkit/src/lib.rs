//! # steward-testkit — what steward's integration tests share
//!
//! One kit for the three packages' integration tests (`tests/it`, `daemon/tests/it`,
//! `tui/tests/it`), so that a daemon is started, configured and spoken to one way.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`user`] | the test's own user ([`me`]) and real OS users and groups made for one test |
//! | [`config`] | one config builder that writes the daemon's TOML (tenants, grants, limits, …) |
//! | [`inproc`] | a daemon served inside the test process, and a small JSON client ([`inproc::Api`]) |
//! | [`process`] | the real `stewardd` process: config file, stderr capture, SIGTERM/SIGKILL, health |
//! | [`bin`] | where the `stewardd` binary under test is, from any package |
//! | [`raw`] | a raw-socket client for hostile bytes, and the parse of what comes back |
//! | [`api`] | JSON helpers over `steward::client::Client`: get, list every page, verify chains |
//! | [`dsr`] | the data-subject request steps: open, confirm, wait for a status |
//! | [`fill`] | filling a small disk: a tmpfs mount and writing until refused |
//! | [`postgres`] | a real PostgreSQL cluster as an OS user of its own; the suites' backend |
//!
//! Also [`env_number`]: the size a long run takes from the environment.
//!
//! Not here: what any suite checks, and `tests/it/isolation.rs`'s permission oracle (an
//! independent copy on purpose). A failed step panics with what went wrong: the kit's
//! callers are tests, where a panic is the failure report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod bin;
pub mod config;
pub mod dsr;
pub mod fill;
pub mod inproc;
pub mod postgres;
pub mod process;
pub mod raw;
pub mod user;

pub use user::me;

/// The number in the environment variable `name` (a long run's size or a seed to replay:
/// `STEWARD_CRASH_TRIALS`), or `None` when it is unset or not such a number.
pub fn env_number<N: std::str::FromStr>(name: &str) -> Option<N> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// A tenant id from a test's literal (panics on a malformed one: a bug in the test).
pub fn tid(s: &str) -> steward::names::TenantId {
    steward::names::TenantId::parse(s).expect("a tenant id literal")
}

/// A resource name from a test's literal (panics on a malformed one: a bug in the test).
pub fn rn(s: &str) -> steward::names::ResourceName {
    steward::names::ResourceName::parse(s).expect("a resource name literal")
}
