//! The spool: a directory per tenant (`<spool_dir>/<tenant>/`, with `done/` and
//! `rejected/`) where sources drop `*.json` (one alert or an array) and `*.ndjson` files.
//! Each file is ingested in one write job — all of it or nothing — through
//! [`super::store_alerts`], audited `alerts.ingest` by the system caller with the file name
//! as the resource and the counts, then moved to `done/`; a file with any bad line or item
//! goes whole to `rejected/` beside a `<name>.error` that names each line (`line N`) or
//! item (`[i]`) and why, audited as failed.
//!
//! Files still being written are never read: sources write `*.tmp` (or a dotfile) and
//! rename, and only `*.json`/`*.ndjson` are picked up. The directory tree is watched with
//! notify (debounced); every tenant directory is also scanned at start (files dropped while
//! the daemon was down) and every [`RESCAN`] in case an event was lost. The move to `done/`
//! happens after the commit: if the daemon dies in between, the file is ingested again at
//! the next start, which is harmless since ingest is idempotent on alert names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use steward::config::Config;
use steward::model::{AuditStatus, ValidationErrors};
use steward::names::TenantId;
use tokio::sync::mpsc;

use super::{parse_json, parse_ndjson, prepare, store_alerts};
use crate::state::Shared;
use crate::store::{self, AuditEntry, TenantTxn, WriteError};

/// How long the tree must be quiet before files are looked at.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Every tenant directory is scanned this often even without events.
pub const RESCAN: Duration = Duration::from_secs(10);
/// Subdirectory of ingested files.
pub const DONE: &str = "done";
/// Subdirectory of rejected files and their `.error` files.
pub const REJECTED: &str = "rejected";

/// Why the spool could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A directory could not be created.
    #[error("cannot create the spool directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The watcher could not start.
    #[error("cannot watch the spool directory {dir}: {source}")]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: notify::Error,
    },
}

/// Creates `<spool>/<tenant>/{done,rejected}` for every tenant of `cfg` (at start and
/// after a reload).
pub fn ensure_dirs(cfg: &Config) -> Result<(), SpoolError> {
    let root = cfg.spool_dir();
    for t in &cfg.tenants {
        for sub in [DONE, REJECTED] {
            let dir = root.join(t.id.as_str()).join(sub);
            std::fs::create_dir_all(&dir).map_err(|source| SpoolError::Dir {
                dir: dir.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Whether `name` is a file to ingest: `*.json` or `*.ndjson`, not a dotfile.
pub fn eligible(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".json") || name.ends_with(".ndjson"))
}

/// Keeps the spool running; dropping it stops the watcher (the task stops on shutdown).
pub struct Spool {
    /// The debouncer thread and its inotify handle.
    _debouncer: Box<dyn std::any::Any + Send>,
}

/// Starts the spool: creates the directories, watches the tree and ingests what is there.
pub fn start(shared: &Arc<Shared>) -> Result<Spool, SpoolError> {
    let cfg = shared.config();
    ensure_dirs(&cfg)?;
    let root = cfg.spool_dir();
    let (tx, rx) = mpsc::channel::<String>(1024);
    let watch_root = root.clone();
    let events_tx = tx.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |res: DebounceEventResult| {
        let Ok(events) = res else { return };
        for e in events {
            for p in &e.paths {
                // Only files directly inside `<root>/<tenant>/` matter.
                let Ok(rel) = p.strip_prefix(&watch_root) else {
                    continue;
                };
                let mut parts = rel.components();
                if let (Some(t), Some(_), None) = (parts.next(), parts.next(), parts.next()) {
                    let _ = events_tx.try_send(t.as_os_str().to_string_lossy().into_owned());
                }
            }
        }
    })
    .map_err(|source| SpoolError::Watch {
        dir: root.clone(),
        source,
    })?;
    debouncer
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|source| SpoolError::Watch {
            dir: root.clone(),
            source,
        })?;
    tokio::spawn(worker(Arc::clone(shared), rx));
    // Files present before the start.
    for t in &cfg.tenants {
        let _ = tx.try_send(t.id.to_string());
    }
    let sh = Arc::clone(shared);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = sh.shutdown.cancelled() => return,
                () = tokio::time::sleep(RESCAN) => {}
            }
            for t in &sh.config().tenants {
                let _ = tx.try_send(t.id.to_string());
            }
        }
    });
    Ok(Spool {
        _debouncer: Box::new(debouncer),
    })
}

/// Scans the tenants named on `rx`, one at a time, until shutdown.
async fn worker(shared: Arc<Shared>, mut rx: mpsc::Receiver<String>) {
    loop {
        let tenant = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            t = rx.recv() => match t { Some(t) => t, None => return },
        };
        let cfg = shared.config();
        if cfg.tenant(&tenant).is_none() {
            continue;
        }
        let dir = cfg.spool_dir().join(&tenant);
        if let Err(e) = scan(&shared, &tenant, &dir).await {
            tracing::error!(tenant, error = %e, "spool scan failed");
        }
    }
}

/// Ingests every eligible file of one tenant's directory, oldest name first.
pub async fn scan(shared: &Arc<Shared>, tenant: &str, dir: &Path) -> std::io::Result<usize> {
    let mut names = Vec::new();
    let mut rd = tokio::fs::read_dir(dir).await?;
    while let Some(e) = rd.next_entry().await? {
        let name = e.file_name().to_string_lossy().into_owned();
        if eligible(&name) && e.file_type().await?.is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut n = 0;
    for name in names {
        if shared.shutdown.is_cancelled() {
            break;
        }
        match ingest_file(shared, tenant, dir, &name).await {
            Ok(()) => n += 1,
            Err(e) => {
                tracing::error!(tenant, file = %name, error = %e, "spool file not ingested; retried later")
            }
        }
    }
    Ok(n)
}

/// A destination in `dir` for `name` that does not exist yet (`name`, else `name.1`, …).
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (1u32..)
        .map(|i| dir.join(format!("{name}.{i}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

fn entry(file: &str, status: AuditStatus) -> AuditEntry {
    AuditEntry::new(store::system_caller(), "alerts.ingest", status)
        .resource(format!("spool/{file}"))
}

/// Ingests one file: parse, one write job, then the move. A storage failure leaves the
/// file where it is (retried at the next scan).
async fn ingest_file(
    shared: &Arc<Shared>,
    tenant: &str,
    dir: &Path,
    name: &str,
) -> Result<(), WriteError> {
    let path = dir.join(name);
    let cfg = shared.config();
    let limit = cfg.limits.max_ingest_body.bytes();
    let ndjson = name.ends_with(".ndjson");
    let p = path.clone();
    let tenant_id = TenantId::parse(tenant).map_err(|e| WriteError::Invalid(e.to_string()))?;
    let retention = cfg.retention.alerts.0;
    let for_tenant = tenant_id.clone();
    let parsed =
        tokio::task::spawn_blocking(move || -> std::io::Result<Result<_, ValidationErrors>> {
            let len = std::fs::metadata(&p)?.len();
            if len > limit as u64 {
                return Ok(Err(ValidationErrors::one(
                    "file",
                    format!("is {len} bytes, more than the ingest limit of {limit}"),
                )));
            }
            let bytes = std::fs::read(&p)?;
            let now = jiff::Timestamp::now();
            let alerts = if ndjson {
                parse_ndjson(&bytes, now)
            } else {
                parse_json(&bytes, now)
            };
            Ok(alerts.map(|a| prepare(a, &for_tenant, retention)))
        })
        .await
        .map_err(|_| WriteError::Panicked)?;
    let parsed = match parsed {
        Ok(p) => p,
        // Gone (moved by a concurrent scan) or unreadable: nothing to do now.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WriteError::Store(e.into())),
    };
    let file = name.to_string();
    match parsed {
        Ok(alerts) => {
            let e = entry(name, AuditStatus::Succeeded);
            let summary = shared
                .store
                .writer()
                .write(tenant, move |txn: &mut TenantTxn<'_>| {
                    store_alerts(txn, alerts, e)
                })
                .await?;
            let to = free_name(&dir.join(DONE), name);
            tokio::fs::rename(&path, &to)
                .await
                .map_err(|e| WriteError::Store(e.into()))?;
            tracing::info!(
                tenant,
                file,
                ingested = summary.ingested,
                duplicates = summary.duplicates,
                "spool file ingested"
            );
            Ok(())
        }
        Err(errors) => {
            let to = free_name(&dir.join(REJECTED), name);
            let report: String = errors
                .errors()
                .iter()
                .map(|f| format!("{}: {}\n", f.path, f.message))
                .collect();
            let first = errors.target().unwrap_or("").to_string();
            let n = errors.errors().len() as u64;
            let e = entry(name, AuditStatus::Failed)
                .count("errors", n)
                .reason(format!(
                    "file rejected whole: {n} invalid, first at {first}"
                ));
            shared
                .store
                .writer()
                .write(tenant, move |txn: &mut TenantTxn<'_>| {
                    txn.audit(e);
                    Ok::<(), WriteError>(())
                })
                .await?;
            let mut err_name = to.clone().into_os_string();
            err_name.push(".error");
            let header = format!("{file} was rejected whole; nothing of it was ingested.\n");
            tokio::fs::write(&err_name, format!("{header}{report}"))
                .await
                .map_err(|e| WriteError::Store(e.into()))?;
            tokio::fs::rename(&path, &to)
                .await
                .map_err(|e| WriteError::Store(e.into()))?;
            tracing::warn!(tenant, file, errors = n, "spool file rejected");
            Ok(())
        }
    }
}
