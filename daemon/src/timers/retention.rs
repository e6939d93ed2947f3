//! The retention sweep: every `[retention] sweep_interval` it deletes the records whose
//! `Purge` entry has passed (JIT requests, alerts, data-subject requests: whoever writes a
//! record schedules its purge) and the audit records older than `[retention] audit`, in
//! bounded batches so a sweep costs what it deletes and never holds the writer long.
//!
//! Each batch is one write job per tenant with one audit record holding the counts:
//! `retention.purge` (per kind, written by [`crate::store::Writer::purge_expired`]) and
//! `audit.purge` (records, by [`crate::store::Writer::purge_audit`]). After the records,
//! the data-subject export bundles whose request is gone are deleted. Not here: deciding when
//! a record expires (the routes that write it).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::state::Shared;
use crate::store::WriteError;

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
        let r = writer
            .purge_expired(Timestamp::now().as_second(), BATCH)
            .await?;
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
            let n = writer.purge_audit(t.id.as_str(), before, BATCH).await?;
            report.audit += n;
            if n < BATCH as u64 || shared.shutdown.is_cancelled() {
                break;
            }
        }
    }
    Ok(report)
}

/// The sweep task: one sweep every `sweep_interval` (re-read from the config each time, so
/// a reload applies) until `shared.shutdown`.
pub async fn run(shared: Arc<Shared>) {
    loop {
        let interval = shared.config().retention.sweep_interval.0.max(MIN_INTERVAL);
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
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
