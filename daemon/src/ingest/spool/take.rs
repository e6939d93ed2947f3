//! One spool file taken: read and parsed on the blocking pool, stored in one write job
//! audited `alerts.ingest` (or only the failed audit record when any line or item is bad),
//! then moved to `done/` or `rejected/` beside its `.error`.

use std::sync::Arc;

use steward::model::{AuditStatus, ValidationErrors};
use steward::names::TenantId;
use steward::resource::Operation;

use super::blocking;
use super::dir::{FileId, Found, Refusal, TenantDir};
use super::names::{shown, valid_name};
use crate::ingest::{PreparedAlert, parse_json, parse_ndjson, prepare, store_alerts};
use crate::state::Shared;
use crate::store::{self, AuditEntry, TenantWrite, WriteError};

/// What reading a file gave.
enum Taken {
    /// It is gone (renamed away by its source): nothing to do.
    Gone,
    /// It was read and parsed (or refused before that); `id` is what was opened, if it was.
    Parsed {
        /// The file that was read.
        id: Option<FileId>,
        /// The alerts, or why the file is rejected whole.
        alerts: Result<Vec<PreparedAlert>, ValidationErrors>,
    },
}

/// The audit record of one spool file, by the system caller, the file as the resource.
fn entry(file: &str, status: AuditStatus) -> AuditEntry {
    AuditEntry::new(store::system_caller(), Operation::AlertsIngest, status)
        .resource(format!("spool/{file}"))
}

/// Takes one file: read and parse, one write job, then the move. `Ok(Some(why))`: it was
/// dealt with but could not be moved, so it must not be taken again. A storage failure
/// leaves the file where it is (retried at the next scan).
pub(super) async fn take(
    shared: &Arc<Shared>,
    tenant: &TenantId,
    dir: &Arc<TenantDir>,
    file: &Found,
) -> Result<Option<String>, WriteError> {
    let raw = file.key.1.clone();
    // The name as records and logs show it: itself when valid, else escaped.
    let name = valid_name(&raw).map_or_else(|| shown(&raw), str::to_owned);
    let cfg = shared.config();
    let limit = cfg.limits.max_ingest_body.bytes();
    let ndjson = raw.ends_with(b".ndjson");
    let retention = cfg.retention.alerts.0;
    let tenant_id = tenant.clone();
    let (d, n) = (Arc::clone(dir), raw.clone());
    let taken = blocking(move || match d.read(&n, limit) {
        Err(Refusal::Gone) => Taken::Gone,
        Err(Refusal::No(why)) => Taken::Parsed {
            id: None,
            alerts: Err(ValidationErrors::one("file", why)),
        },
        Ok((id, bytes)) => {
            let now = jiff::Timestamp::now();
            let alerts = if ndjson {
                parse_ndjson(&bytes, now)
            } else {
                parse_json(&bytes, now)
            };
            Taken::Parsed {
                id: Some(id),
                alerts: alerts.map(|a| prepare(a, &tenant_id, retention)),
            }
        }
    })
    .await?;
    let Taken::Parsed { id, alerts } = taken else {
        return Ok(None);
    };
    let file = name.clone();
    match alerts {
        Ok(alerts) => {
            let e = entry(&name, AuditStatus::Succeeded);
            let summary = shared
                .store
                .writer()
                .write(tenant, move |txn: &mut dyn TenantWrite| {
                    store_alerts(txn, alerts, e)
                })
                .await?;
            let d = Arc::clone(dir);
            match blocking(move || d.finish(&raw, id)).await? {
                Ok(_) => {}
                Err(why) => return Ok(Some(format!("ingested, but {why}"))),
            }
            tracing::info!(
                tenant = %tenant,
                file = %file,
                ingested = summary.ingested,
                duplicates = summary.duplicates,
                "spool file ingested"
            );
            Ok(None)
        }
        Err(errors) => {
            let report: String = errors
                .errors()
                .iter()
                .map(|f| format!("{}: {}\n", f.path, f.message))
                .collect();
            let first = errors.target().unwrap_or("").to_string();
            let n = errors.errors().len() as u64;
            let e = entry(&name, AuditStatus::Failed)
                .count("errors", n)
                .reason(format!(
                    "file rejected whole: {n} invalid, first at {first}"
                ));
            shared
                .store
                .writer()
                .write(tenant, move |txn: &mut dyn TenantWrite| {
                    txn.audit(e);
                    Ok::<(), WriteError>(())
                })
                .await?;
            let header = format!("{file} was rejected whole; nothing of it was ingested.\n");
            let text = format!("{header}{report}");
            let d = Arc::clone(dir);
            let error_file = match blocking(move || d.reject(&raw, id, &text)).await? {
                Ok(Some(wrote)) => wrote,
                Ok(None) => return Ok(None),
                Err(why) => return Ok(Some(format!("rejected ({first}), but {why}"))),
            };
            // The daemon's own refusals name no content of the file; parse errors may.
            let why = errors
                .errors()
                .first()
                .filter(|f| f.path == "file")
                .map_or(first, |f| f.message.clone());
            tracing::warn!(
                tenant = %tenant,
                file = %file,
                errors = n,
                error_file,
                why,
                "spool file rejected"
            );
            Ok(None)
        }
    }
}
