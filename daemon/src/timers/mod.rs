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
//! | [`dsr_scrub`] | the store rewritten after data-subject erasures, within `[dsr] scrub_within` |
//! | [`compact`] | the store compacted once it is mostly free pages (`[store] compact_when_free_over`) |

pub mod compact;
pub mod dsr_deadlines;
pub mod dsr_scrub;
pub mod hook;
pub mod jit_expiry;
pub mod retention;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use steward::names::TenantId;

use jiff::Timestamp;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use jit_expiry::expire_overdue_at_start;

use crate::state::Shared;
use crate::store::{ChangeEvent, Due, Kind, ScheduleAction, Subscription, WriteError};

/// Longest a timer sleeps without looking again (clock changes, missed wake-ups).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Shortest wait between passes: never spin, even on an entry a pass could not clear.
const MIN_WAIT: Duration = Duration::from_millis(50);
/// Wait after a failed pass, rather than retry a past-due entry at once.
const RETRY: Duration = Duration::from_secs(1);

/// Names of `kind` among `due`, by tenant (each tenant's are handled in one write job).
pub(crate) fn by_tenant(due: Vec<Due>, kind: Kind) -> BTreeMap<TenantId, Vec<String>> {
    let mut out: BTreeMap<TenantId, Vec<String>> = BTreeMap::new();
    for d in due.into_iter().filter(|d| d.kind == kind) {
        out.entry(d.tenant).or_default().push(d.name);
    }
    out
}

/// One batch of `action` entries of `kind` due now (at most `limit`, read off the async
/// threads), by tenant, and whether more may be due.
async fn due_now(
    shared: &Arc<Shared>,
    action: ScheduleAction,
    kind: Kind,
    limit: usize,
) -> Result<(BTreeMap<TenantId, Vec<String>>, bool), WriteError> {
    let now = Timestamp::now().as_second();
    let due = shared.store.writer().due(action, now, limit).await?;
    let more = due.len() >= limit;
    Ok((by_tenant(due, kind), more))
}

/// A timer task: runs `pass` (which logs its outcome and answers whether it failed), then
/// waits for the next `action` entry or a change `wakes` accepts ([`wait_for_due`]), until
/// the daemon shuts down. On a fleet only the daemon that leads runs passes
/// ([`crate::store::Store::leads`]); the others wait to take over.
async fn run_due<Fut: Future<Output = bool>>(
    shared: Arc<Shared>,
    action: ScheduleAction,
    wakes: impl Fn(&ChangeEvent) -> bool,
    mut pass: impl FnMut(Arc<Shared>) -> Fut,
) {
    let mut changes = shared.store.writer().subscribe();
    let mut lead = shared.store.leadership();
    loop {
        if !*lead.borrow_and_update() {
            // Another daemon of the fleet runs the timers.
            tokio::select! {
                () = shared.shutdown.cancelled() => return,
                changed = lead.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let failed = pass(Arc::clone(&shared)).await;
        if !wait_for_due(&shared, (&mut changes, &mut lead), action, failed, &wakes).await {
            return;
        }
    }
}

/// Waits for a timer's next pass: until the earliest `action` entry is due (at most
/// [`MAX_SLEEP`]; at least [`RETRY`] after a failed pass, else [`MIN_WAIT`]), or until a
/// change `wakes` accepts arrives (it may be due sooner), or events were missed, or the
/// daemon's leadership of the fleet's timers moved (`lead`). `false` when the daemon
/// shuts down.
async fn wait_for_due(
    shared: &Arc<Shared>,
    (changes, lead): (&mut Subscription, &mut watch::Receiver<bool>),
    action: ScheduleAction,
    failed: bool,
    wakes: impl Fn(&ChangeEvent) -> bool,
) -> bool {
    let sh = Arc::clone(shared);
    let next = tokio::task::spawn_blocking(move || sh.store.next_due(action))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let wait = until(next).max(if failed { RETRY } else { MIN_WAIT });
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return false,
            () = &mut sleep => return true,
            changed = lead.changed() => return changed.is_ok(),
            ev = changes.recv() => match ev {
                Ok(ev) if wakes(&ev) => return true,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return true,
                Err(RecvError::Closed) => return false,
            },
        }
    }
}

/// How long to sleep until `at_secs` (Unix seconds; `None`: nothing scheduled), at most
/// [`MAX_SLEEP`].
fn until(at_secs: Option<i64>) -> Duration {
    let Some(target) = at_secs.and_then(|at| Timestamp::from_second(at).ok()) else {
        return MAX_SLEEP;
    };
    Duration::try_from(Timestamp::now().duration_until(target))
        .unwrap_or(Duration::ZERO)
        .min(MAX_SLEEP)
}

/// Starts every timer task; each stops when `shared.shutdown` is cancelled.
pub fn start(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(retention::run(Arc::clone(shared))),
        tokio::spawn(jit_expiry::run(Arc::clone(shared))),
        tokio::spawn(dsr_deadlines::run(Arc::clone(shared))),
        tokio::spawn(dsr_scrub::run(Arc::clone(shared))),
        tokio::spawn(compact::run(Arc::clone(shared))),
    ]
}
