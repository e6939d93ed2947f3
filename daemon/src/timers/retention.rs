//! The retention sweep: every `[retention] sweep_interval` it deletes the records whose
//! `Purge` entry has passed (JIT requests, alerts, data-subject requests: whoever writes a
//! record schedules its purge) and the audit records older than `[retention] audit`, in
//! bounded batches so a sweep costs what it deletes and never holds the writer long.
//!
//! Each batch is one write job per tenant with one audit record holding the counts:
//! `retention.purge` (per kind, [`purge_expired`]) and `audit.purge` (records,
//! [`purge_audit`]). The store offers the mechanisms (the due schedule entries, deletes,
//! the audit chain's purge); the policy — what is due, in which batches, recorded how — is
//! here. After the records,
//! the data-subject export bundles whose request is gone are deleted. Not here: deciding when
//! a record expires (the routes that write it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use steward::names::TenantId;

use jiff::Timestamp;
use steward::model::AuditStatus;
use steward::resource::Operation;

use crate::state::Shared;
use crate::store::{
    AuditEntry, Due, Kind, ScheduleAction, TenantWrite, WriteError, Writer, system_caller,
};

/// Records deleted per write job.
pub const BATCH: usize = 1000;
/// Shortest interval between sweeps, whatever the config says.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Records purged (all kinds, all tenants).
    pub records: u64,
    /// Audit records purged (all tenants).
    pub audit: u64,
    /// Data-subject export bundles removed with their requests.
    pub bundles: u64,
}

/// One sweep at the current time: expired records, then old audit records of every tenant
/// in the config.
pub async fn sweep(shared: &Arc<Shared>) -> Result<SweepReport, WriteError> {
    let writer = shared.store.writer();
    let mut report = SweepReport::default();
    loop {
        let r = purge_expired(&writer, Timestamp::now().as_second(), BATCH).await?;
        report.records += r.total();
        if !r.more || shared.shutdown.is_cancelled() {
            break;
        }
    }
    let sh = Arc::clone(shared);
    report.bundles = tokio::task::spawn_blocking(move || crate::dsr::bundle::remove_orphans(&sh))
        .await
        .map_err(|_| WriteError::Panicked)?? as u64;
    let cfg = shared.config();
    let keep = i64::try_from(cfg.retention.audit.0.as_micros()).unwrap_or(i64::MAX);
    let before = Timestamp::now().as_microsecond().saturating_sub(keep);
    for t in &cfg.tenants {
        loop {
            let n = purge_audit(&writer, &t.id, before, BATCH).await?;
            report.audit += n;
            if n < BATCH as u64 || shared.shutdown.is_cancelled() {
                break;
            }
        }
    }
    Ok(report)
}

/// What [`purge_expired`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Records purged, per tenant and kind.
    pub purged: BTreeMap<TenantId, BTreeMap<Kind, u64>>,
    /// The batch was full: more may be due, run again.
    pub more: bool,
}

impl PurgeReport {
    /// Total records purged.
    pub fn total(&self) -> u64 {
        self.purged.values().flat_map(|m| m.values()).sum()
    }
}

/// Deletes up to `batch` records whose purge time is at or before `now_secs`, with their
/// index entries: one write job and one `retention.purge` audit record per tenant (counts
/// per kind). Call again while [`PurgeReport::more`].
pub async fn purge_expired(
    writer: &Writer,
    now_secs: i64,
    batch: usize,
) -> Result<PurgeReport, WriteError> {
    let due = writer.due(ScheduleAction::Purge, now_secs, batch).await?;
    let more = due.len() >= batch.max(1);
    let mut by_tenant: BTreeMap<TenantId, Vec<Due>> = BTreeMap::new();
    for d in due {
        by_tenant.entry(d.tenant.clone()).or_default().push(d);
    }
    let jobs = by_tenant.into_iter().map(|(tenant, items)| async move {
        let counts = writer
            .write(&tenant, move |txn: &mut dyn TenantWrite| {
                purge_job(txn, items, now_secs)
            })
            .await?;
        Ok::<_, WriteError>((tenant, counts))
    });
    let mut report = PurgeReport {
        purged: BTreeMap::new(),
        more,
    };
    for r in futures::future::join_all(jobs).await {
        let (tenant, counts) = r?;
        if !counts.is_empty() {
            report.purged.insert(tenant, counts);
        }
    }
    Ok(report)
}

/// One tenant's purge: each due record still due inside the transaction (it may have been
/// rewritten since the schedule was read) is deleted and announced `purged`.
fn purge_job(
    txn: &mut dyn TenantWrite,
    items: Vec<Due>,
    now_secs: i64,
) -> Result<BTreeMap<Kind, u64>, WriteError> {
    let mut counts: BTreeMap<Kind, u64> = BTreeMap::new();
    for d in items {
        let still_due = txn.get(d.kind, &d.name)?.is_some_and(|doc| {
            doc.schedule
                .iter()
                .any(|s| s.action == ScheduleAction::Purge && s.at_secs <= now_secs)
        });
        if still_due {
            txn.delete(d.kind, &d.name, None)?;
            txn.emit(d.kind, &d.name, "purged");
            *counts.entry(d.kind).or_default() += 1;
        }
    }
    if !counts.is_empty() {
        let entry = counts.iter().fold(
            AuditEntry::new(
                system_caller(),
                Operation::RetentionPurge,
                AuditStatus::Succeeded,
            ),
            |e, (k, n)| e.count(k.as_str(), *n),
        );
        txn.audit(entry);
    }
    Ok(counts)
}

/// Audit retention: removes `tenant`'s oldest audit records committed before
/// `before_micros` (at most `batch`), keeping the chain's anchor, and records an
/// `audit.purge` entry with the count. Returns how many were removed.
pub async fn purge_audit(
    writer: &Writer,
    tenant: &TenantId,
    before_micros: i64,
    batch: usize,
) -> Result<u64, WriteError> {
    writer
        .write(tenant, move |txn: &mut dyn TenantWrite| {
            let n = txn.purge_audit_before(before_micros, batch)?;
            if n > 0 {
                txn.audit(
                    AuditEntry::new(
                        system_caller(),
                        Operation::AuditPurge,
                        AuditStatus::Succeeded,
                    )
                    .count("records", n),
                );
            }
            Ok(n)
        })
        .await
}

/// The sweep task: one sweep every `sweep_interval` (re-read from the config each time, so
/// a reload applies) until `shared.shutdown`. On a fleet only the daemon that leads
/// sweeps ([`crate::store::Store::leads`]), so each sweep's audit records appear once.
pub async fn run(shared: Arc<Shared>) {
    loop {
        let interval = shared.config().retention.sweep_interval.0.max(MIN_INTERVAL);
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if !shared.store.leads() {
            // The bundles are files of this host: each daemon removes its own orphans.
            let sh = Arc::clone(&shared);
            match tokio::task::spawn_blocking(move || crate::dsr::bundle::remove_orphans(&sh)).await
            {
                Ok(Ok(n)) if n > 0 => tracing::info!(bundles = n, "retention sweep"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "retention sweep of bundles failed"),
                Err(_) => tracing::error!("retention sweep of bundles panicked"),
            }
            continue;
        }
        match sweep(&shared).await {
            Ok(r) if r.records + r.audit + r.bundles > 0 => {
                tracing::info!(
                    records = r.records,
                    audit = r.audit,
                    bundles = r.bundles,
                    "retention sweep"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
    }
}
