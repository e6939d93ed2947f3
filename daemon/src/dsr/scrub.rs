//! The scrub after an erasure: within `[dsr] scrub_within` of an erasure completing, the
//! store is rewritten into a fresh file ([`crate::store::Writer::rewrite`]), so that none
//! of the pages the erasure freed — each superseded version of a contact, of the request
//! itself while it held the identifiers in clear — survives in any file under the data
//! dir; the old file's bytes are zeroed once its last reader is done.
//!
//! An erasure's completion records `scrubDueAt` (half the window later) in its request,
//! whose record then carries a `Scrub` schedule entry until the scrub has run: the entry
//! is in the store, so a restart before the scrub still scrubs. One rewrite covers every
//! erasure that completed before it, so erasures within one window share it: each of their
//! requests gets `scrubbedAt` and each affected tenant one `dsr.scrub` audit record, which
//! commit with the new file itself. The record says when the scrub ran and how many
//! requests it covered, never what it removed.
//!
//! On PostgreSQL there is no file to rewrite: the scrub VACUUMs the tables the erasures
//! touched first ([`crate::store::Store::vacuum_after_erasure`]), then marks the requests
//! and audits `dsr.scrub` saying so.
//!
//! Not here: when the task wakes (`crate::timers::dsr_scrub`), the copy (`store/copy.rs`).

use std::sync::Arc;
use std::time::Duration;
use steward::resource::Operation;

use jiff::Timestamp;
use steward::model::AuditStatus;

use super::{DsrDoc, save, system};
use crate::state::Shared;
use crate::store::{Kind, RewriteReport, ScheduleAction, TenantWrite, WriteError};

/// Most pending scrub entries read per pass (one rewrite covers them all; more wait for
/// the next pass).
const MAX_PENDING: usize = 100_000;

/// What a scrub did.
#[derive(Debug, Clone)]
pub struct ScrubReport {
    /// The rewrite.
    pub rewrite: RewriteReport,
    /// Erase requests it covered.
    pub requests: usize,
    /// Bytes of the old file overwritten with zeros.
    pub zeroed_bytes: u64,
}

/// Job, in the new file's transaction: marks the listed requests scrubbed (which drops
/// their `Scrub` entries) and records `dsr.scrub`.
fn mark(
    txn: &mut dyn TenantWrite,
    ids: &[String],
    retention: Duration,
    reason: &'static str,
) -> Result<(), WriteError> {
    let now = Timestamp::from_microsecond(txn.now_micros()).unwrap_or_else(|_| Timestamp::now());
    let mut n = 0u64;
    for id in ids {
        let Some(doc) = txn.get(Kind::Dsr, id)? else {
            continue;
        };
        let mut d = DsrDoc::parse(&doc)?;
        if d.execution.as_ref().is_none_or(|x| x.scrubbed_at.is_some()) {
            continue;
        }
        d.exec().scrubbed_at = Some(now);
        save(txn, &d, retention)?;
        n += 1;
    }
    txn.audit(
        system(Operation::DsrScrub, AuditStatus::Succeeded)
            .resource("store")
            .count("requests", n)
            .reason(reason),
    );
    Ok(())
}

/// One pass: if any scrub entry is due, rewrites the store once for every erasure pending
/// (due or not), then waits for the old file to be zeroed. `None` when nothing was due.
pub async fn pass(shared: &Arc<Shared>) -> Result<Option<ScrubReport>, WriteError> {
    let now = Timestamp::now().as_second();
    let sh = Arc::clone(shared);
    let pending = tokio::task::spawn_blocking(move || {
        if sh.store.due(ScheduleAction::Scrub, now, 1)?.is_empty() {
            return Ok(Vec::new());
        }
        sh.store
            .due(ScheduleAction::Scrub, i64::MAX - 1, MAX_PENDING)
    })
    .await
    .map_err(|_| WriteError::Panicked)?
    .map_err(WriteError::Store)?;
    if pending.is_empty() {
        return Ok(None);
    }
    let requests = pending.len();
    let sh = Arc::clone(shared);
    let vacuumed = tokio::task::spawn_blocking(move || sh.store.vacuum_after_erasure())
        .await
        .map_err(|_| WriteError::Panicked)?
        .map_err(WriteError::Store)?;
    let reason = if vacuumed {
        "the tables were vacuumed after data-subject erasures (PostgreSQL: WAL, replicas and backups keep old bytes until recycled)"
    } else {
        "the store was rewritten into a fresh file after data-subject erasures; the old file was zeroed"
    };
    let by_tenant = crate::timers::by_tenant(pending, Kind::Dsr);
    let retention = shared.config().retention.dsr.0;
    let jobs: Vec<_> = by_tenant
        .into_iter()
        .map(|(tenant, ids)| {
            (tenant, move |txn: &mut dyn TenantWrite| {
                mark(txn, &ids, retention, reason)
            })
        })
        .collect();
    let (rewrite, retirement) = shared.store.writer().rewrite(jobs).await?;
    let zeroed_bytes = tokio::task::spawn_blocking(move || retirement.wait())
        .await
        .map_err(|_| WriteError::Panicked)?
        .map_err(WriteError::Store)?;
    Ok(Some(ScrubReport {
        rewrite,
        requests,
        zeroed_bytes,
    }))
}
