//! JIT expiry: a request's open ports become `Revoked`/`Expired` at their `endTimeUtc`, to
//! the second, and a request that fell due while the daemon was down is expired at startup
//! before the socket opens.
//! How a request is stored and scheduled is [`crate::jit`], shared with the routes. Not
//! here: the HTTP side (`routes/jit.rs`) and the hook (`hook.rs`).

use std::sync::Arc;
use std::time::Duration;
use steward::resource::Operation;

use crate::jit::request_input;
use crate::records::Stored;

use jiff::Timestamp;
use steward::model::{AuditStatus, JitRequest};

use super::hook::{self, HookEvent};
use crate::state::Shared;
use crate::store::{
    self, AuditEntry, ChangeEvent, DocInput, Kind, ScheduleAction, StoreError, TenantWrite,
    WriteError,
};

/// Requests expired per write job (one job per tenant per batch).
const BATCH: usize = 256;

/// Expires, in one write job for `tenant`, the due ports of the requests `names` at the
/// group's clock. Returns the hook events of the requests whose ports closed.
fn expire_job(
    txn: &mut dyn TenantWrite,
    names: &[String],
    retention: Duration,
) -> Result<Vec<HookEvent>, WriteError> {
    let now = Timestamp::from_microsecond(txn.now_micros()).unwrap_or_else(|_| Timestamp::now());
    let now_secs = now.as_second();
    let mut hooks = Vec::new();
    for name in names {
        let Some(doc) = txn.get(Kind::JitRequest, name)? else {
            continue;
        };
        let still_due = doc
            .schedule
            .iter()
            .any(|s| s.action == ScheduleAction::End && s.at_secs <= now_secs);
        if !still_due {
            continue;
        }
        let resource = format!("jit-requests/{name}");
        let entry = AuditEntry::new(
            store::system_caller(),
            Operation::JitExpire,
            AuditStatus::Succeeded,
        )
        .resource(&resource);
        let mut req = match JitRequest::from_doc(&doc) {
            Ok(r) => r,
            Err(e) => {
                // Drop the End entry so an unreadable record cannot keep the timer busy.
                tracing::error!(tenant = %txn.tenant(), request = %name, error = %e, "cannot expire JIT request");
                let mut input = DocInput::new(doc.body_json.clone());
                input.subjects = doc.subjects.clone();
                input.schedule = doc
                    .schedule
                    .iter()
                    .copied()
                    .filter(|s| s.action != ScheduleAction::End)
                    .collect();
                txn.update(Kind::JitRequest, name, input)?;
                txn.audit(
                    AuditEntry::new(
                        store::system_caller(),
                        Operation::JitExpire,
                        AuditStatus::Failed,
                    )
                    .resource(&resource)
                    .reason("the stored request is unreadable"),
                );
                continue;
            }
        };
        let before = req.clone();
        let closed = req.expire_due(now);
        txn.update(Kind::JitRequest, name, request_input(&req, retention)?)?;
        let mut entry = entry
            .count("ports", closed as u64)
            .field("virtualMachines[].ports[].status");
        for k in &req.subject_keys() {
            entry = entry.subject(k);
        }
        txn.audit(entry);
        if closed > 0 {
            txn.emit(Kind::JitRequest, name, "expired");
            hooks.push(HookEvent::closed(txn.tenant(), &before, &req));
        }
    }
    Ok(hooks)
}

/// Expires everything due now, synchronously: the startup pass, run from `Daemon::open`
/// before the socket exists. It runs on a thread of its own, so it may be called from
/// inside or outside an async runtime. Hooks of what it closed are started if a runtime is
/// available (they run once the daemon serves); otherwise they are logged as skipped.
pub fn expire_overdue_at_start(shared: &Arc<Shared>) -> Result<usize, StoreError> {
    let retention = shared.config().retention.jit_requests.0;
    let store = &shared.store;
    let writer = store.writer();
    let result = std::thread::scope(|s| {
        s.spawn(|| -> Result<Vec<HookEvent>, WriteError> {
            let mut hooks = Vec::new();
            loop {
                let now = Timestamp::now().as_second();
                let due = store.due(ScheduleAction::End, now, BATCH)?;
                let more = due.len() >= BATCH;
                for (tenant, names) in super::by_tenant(due, Kind::JitRequest) {
                    let h = writer.write_blocking(&tenant, move |txn: &mut dyn TenantWrite| {
                        expire_job(txn, &names, retention)
                    })?;
                    hooks.extend(h);
                }
                if !more {
                    return Ok(hooks);
                }
            }
        })
        .join()
    });
    let hooks = match result {
        Ok(Ok(h)) => h,
        Ok(Err(WriteError::Store(e))) => return Err(e),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "startup JIT expiry pass failed; the timer will retry");
            Vec::new()
        }
        Err(_) => {
            tracing::error!("startup JIT expiry pass panicked; the timer will retry");
            Vec::new()
        }
    };
    let n = hooks.len();
    if n > 0 {
        tracing::info!(
            requests = n,
            "expired JIT requests that fell due while stopped"
        );
        if tokio::runtime::Handle::try_current().is_ok() {
            hook::spawn(Arc::clone(shared), hooks);
        } else {
            tracing::warn!(
                requests = n,
                "no async runtime at startup: jit.on_change not run for them"
            );
        }
    }
    Ok(n)
}

/// One asynchronous pass: expires everything due at `now`, one job per tenant per batch,
/// and runs the hooks of what closed.
async fn expire_pass(shared: &Arc<Shared>) -> Result<usize, WriteError> {
    let retention = shared.config().retention.jit_requests.0;
    let writer = shared.store.writer();
    let mut total = 0;
    loop {
        let (due, more) =
            super::due_now(shared, ScheduleAction::End, Kind::JitRequest, BATCH).await?;
        for (tenant, names) in due {
            let hooks = writer
                .write(&tenant, move |txn: &mut dyn TenantWrite| {
                    expire_job(txn, &names, retention)
                })
                .await?;
            total += hooks.len();
            hook::spawn(Arc::clone(shared), hooks);
        }
        if !more {
            return Ok(total);
        }
    }
}

/// The JIT expiry task: sleeps until the earliest `End` entry, expires what is due, and
/// wakes early when a request is written (a new request may end sooner). Stops on
/// `shared.shutdown`.
pub async fn run(shared: Arc<Shared>) {
    // A new request may end sooner than the next entry.
    let wakes = |ev: &ChangeEvent| ev.kind == Kind::JitRequest && ev.action == "created";
    super::run_due(shared, ScheduleAction::End, wakes, |shared| async move {
        let result = expire_pass(&shared).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "JIT expiry pass failed");
        }
        result.is_err()
    })
    .await;
}
