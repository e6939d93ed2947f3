//! Data-subject-request deadlines: a request is due one calendar month after receipt (two
//! more when extended once); when its `Deadline` schedule entry passes while it is still
//! open, this timer raises an `overdue` change event and audits `dsr.overdue` (subject as
//! HMACs), once per deadline in force. The entry itself is written by the request's record
//! ([`crate::dsr::DsrDoc::input`]): present while the request is open and not yet reported
//! overdue for that deadline. Not here: showing overdue requests (the routes add
//! `overdue`; clients colour them).

use std::sync::Arc;
use std::time::Duration;
use steward::resource::Operation;

use jiff::Timestamp;

use steward::model::AuditStatus;

use crate::dsr::{self, DsrDoc};
use crate::state::Shared;
use crate::store::{self, AuditEntry, Kind, ScheduleAction, TenantWrite, WriteError};

/// Requests looked at per write job.
const BATCH: usize = 256;

/// Job: raises the overdue event of each request in `names` whose deadline has passed.
/// Returns how many were raised.
fn raise(
    txn: &mut dyn TenantWrite,
    names: &[String],
    retention: Duration,
) -> Result<usize, WriteError> {
    let now = Timestamp::from_microsecond(txn.now_micros()).unwrap_or_else(|_| Timestamp::now());
    let mut n = 0;
    for name in names {
        let Some(doc) = txn.get(Kind::Dsr, name)? else {
            continue;
        };
        let mut d = DsrDoc::parse(&doc)?;
        let deadline = d.request.deadline();
        if deadline > now && !d.request.status.is_final() {
            continue; // rescheduled (extended) since the entry was read
        }
        let overdue = !d.request.status.is_final();
        if overdue {
            d.overdue_raised_for = Some(deadline);
        }
        // Re-storing drops the passed entry (and keeps the others).
        dsr::save(txn, &d, retention)?;
        if overdue {
            txn.audit(
                d.entry(AuditEntry::new(
                    store::system_caller(),
                    Operation::DsrOverdue,
                    AuditStatus::Succeeded,
                ))
                .field("dueAt")
                .reason(format!("open past its deadline {deadline}")),
            );
            txn.emit(Kind::Dsr, name, "overdue");
            n += 1;
        } else {
            txn.audit(
                d.entry(AuditEntry::new(
                    store::system_caller(),
                    Operation::DsrDeadline,
                    AuditStatus::Succeeded,
                ))
                .reason("deadline entry of a finished request cleared"),
            );
        }
    }
    Ok(n)
}

/// One pass: everything due now, one job per tenant per batch.
pub async fn pass(shared: &Arc<Shared>) -> Result<usize, WriteError> {
    let retention = shared.config().retention.dsr.0;
    let writer = shared.store.writer();
    let mut total = 0;
    loop {
        let (due, more) =
            super::due_now(shared, ScheduleAction::Deadline, Kind::Dsr, BATCH).await?;
        for (tenant, names) in due {
            total += writer
                .write(&tenant, move |txn: &mut dyn TenantWrite| {
                    raise(txn, &names, retention)
                })
                .await?;
        }
        if !more {
            return Ok(total);
        }
    }
}

/// The deadline task: sleeps until the earliest `Deadline` entry (at most a minute), and
/// wakes early when a request is opened or changed; raises what is due, until
/// `shared.shutdown`.
pub async fn run(shared: Arc<Shared>) {
    // A request opened or changed may be due sooner than the next entry.
    let wakes = |ev: &store::ChangeEvent| {
        ev.kind == Kind::Dsr && (ev.action == "created" || ev.action == "updated")
    };
    super::run_due(
        shared,
        ScheduleAction::Deadline,
        wakes,
        |shared| async move {
            match pass(&shared).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::warn!(requests = n, "data-subject requests overdue");
                    }
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "DSR deadline pass failed");
                    true
                }
            }
        },
    )
    .await;
}
