//! The daemon's timers: the retention sweep, JIT expiry and the `jit.on_change` hook they
//! (and the JIT routes) run. Each timer is a tokio task started by [`start`] from
//! `Daemon::serve` that stops when `shared.shutdown` is cancelled; the startup pass
//! ([`expire_overdue_at_start`]) runs from `Daemon::open`, before the socket exists.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`retention`] | the sweep: expired records and old audit records, in bounded batches |
//! | [`jit_expiry`] | JIT ports closed at `endTimeUtc` to the second; how a request is stored and scheduled |
//! | [`hook`] | the `[jit] on_change` command, run off the request path |
//! | [`dsr_deadlines`] | data-subject requests past their deadline: an `overdue` event and audit record |

pub mod dsr_deadlines;
pub mod hook;
pub mod jit_expiry;
pub mod retention;

use std::sync::Arc;

use tokio::task::JoinHandle;

pub use jit_expiry::expire_overdue_at_start;

use crate::state::Shared;

/// Starts every timer task; each stops when `shared.shutdown` is cancelled.
pub fn start(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(retention::run(Arc::clone(shared))),
        tokio::spawn(jit_expiry::run(Arc::clone(shared))),
        tokio::spawn(dsr_deadlines::run(Arc::clone(shared))),
    ]
}
