//! The store's upkeep over the socket: `POST /v1/store/backup` (an online backup to a file)
//! and `POST /v1/store/compact`. Both are for the daemon's own user and root only, by the
//! connection's peer credentials: they act on every tenant's data at once and write a file
//! as the daemon's user wherever the caller names. Anyone else gets 403, and the attempt
//! is audited as denied in every tenant's chain (coalesced like other denials).
//!
//! Not here: the copy itself (`crate::store`, `backup.rs` and `copy.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use steward::resource::Operation;

use axum::body::Body;
use axum::extract::State;
use axum::{Extension, Json};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use steward::model::{AuditCaller, AuditStatus};

use super::{CallerExt, body};
use crate::error::ApiError;
use crate::identity::Caller;
use crate::state::Shared;
use crate::store::{AuditEntry, BackupReport, Handoff, StoreError, TenantWrite, WriteError};

/// The body of `POST /v1/store/backup`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// The file to write: an absolute path outside the data directory, written as the
    /// daemon's user (mode 0600); an existing regular file there is replaced whole.
    pub out: PathBuf,
}

/// The answer of `POST /v1/store/compact`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CompactReport {
    /// The file's size before, bytes.
    pub old_bytes: u64,
    /// The new file's size, bytes.
    pub new_bytes: u64,
    /// Table entries copied.
    pub entries: u64,
    /// How long writes waited, milliseconds.
    pub pause_ms: u64,
}

/// The operation names audited for these routes.
const BACKUP: Operation = Operation::StoreBackup;
const COMPACT: Operation = Operation::StoreCompact;

/// Whether `caller` may copy or compact the store: the daemon's own uid, or root.
fn is_owner(caller: &Caller) -> bool {
    caller.uid == 0 || caller.uid == nix::unistd::geteuid().as_raw()
}

/// Passes for the daemon's own user and root; anyone else is audited as denied in every
/// tenant and answered 403 (or the error that kept the denial from being audited).
async fn require_owner(
    shared: &Shared,
    caller: &Caller,
    operation: Operation,
) -> Result<(), ApiError> {
    if is_owner(caller) {
        return Ok(());
    }
    let cfg = shared.config();
    for t in &cfg.tenants {
        let entry = AuditEntry::new(
            AuditCaller {
                uid: caller.uid,
                user: caller.user.clone(),
                profile: "none".into(),
            },
            operation,
            AuditStatus::Denied,
        )
        .resource("store")
        .reason("needs the daemon's own user or root");
        shared
            .denials
            .record(
                shared,
                caller.uid,
                &t.id,
                entry,
                operation.as_str(),
                "store",
            )
            .await?;
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        steward::wire::codes::FORBIDDEN,
        format!("{operation} is only for the daemon's own user or root"),
    ))
}

/// Records `operation` by `caller` in every tenant's chain before it runs: a backup
/// copies every tenant's records, so it is audited like an export (fail closed: no
/// record, no backup). The file's path is not recorded (it is free text).
async fn audit_all(
    shared: &Shared,
    caller: &Caller,
    operation: Operation,
    reason: &'static str,
) -> Result<(), ApiError> {
    let who = AuditCaller {
        uid: caller.uid,
        user: caller.user.clone(),
        profile: "none".into(),
    };
    for t in &shared.config().tenants {
        let entry = AuditEntry::new(who.clone(), operation, AuditStatus::Succeeded)
            .resource("store")
            .reason(reason);
        shared
            .store
            .writer()
            .write(&t.id, move |txn: &mut dyn TenantWrite| {
                txn.audit(entry);
                Ok::<(), WriteError>(())
            })
            .await?;
    }
    Ok(())
}

/// The HTTP answer for a store error of a backup or compaction.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Refused(m) => {
            ApiError::new(StatusCode::CONFLICT, steward::wire::codes::CONFLICT, m)
        }
        StoreError::BadTarget(m) => ApiError::invalid(m).with_target("out"),
        // Only the daemon's own user or root gets here: the file system's reason helps
        // them (typically: the daemon's user cannot write the target's directory).
        StoreError::Io(e) => {
            tracing::error!(error = %e, "a store copy failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                steward::wire::codes::INTERNAL,
                format!(
                    "the copy failed, written as the daemon's user (uid {}): {e}",
                    nix::unistd::geteuid()
                ),
            )
        }
        other => other.into(),
    }
}

/// `POST /v1/store/backup {"out": "/abs/path"}`: a consistent copy of the whole store as
/// of one moment, written while the daemon keeps serving; answers the [`BackupReport`].
pub async fn backup(
    State(shared): State<Arc<Shared>>,
    CallerExt(caller): CallerExt,
    handoff: Option<Extension<Arc<Handoff>>>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Json<BackupReport>, ApiError> {
    require_owner(&shared, &caller, BACKUP).await?;
    let value = body::object(&shared, &headers, raw).await?;
    let req: BackupRequest = serde_json::from_value(value).map_err(|e| {
        ApiError::invalid(format!(
            "the body must be {{\"out\": \"/absolute/path\"}}: {e}"
        ))
        .with_target("out")
    })?;
    if !req.out.is_absolute() {
        return Err(ApiError::invalid("`out` must be an absolute path").with_target("out"));
    }
    audit_all(
        &shared,
        &caller,
        BACKUP,
        "an online backup of the whole store to a file",
    )
    .await?;
    // From here the copy runs to its end: answer with its outcome, not the request timeout.
    if let Some(Extension(h)) = handoff {
        h.mark();
    }
    let sh = Arc::clone(&shared);
    let out = req.out.clone();
    let report = tokio::task::spawn_blocking(move || sh.store.backup(&out))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(store_error)?;
    tracing::info!(
        uid = caller.uid,
        file = %report.file.display(),
        bytes = report.bytes,
        took_ms = report.took_ms,
        "online backup written"
    );
    Ok(Json(report))
}

/// `POST /v1/store/compact`: rewrites the store into a fresh file (online: writes wait
/// only for the final catch-up); answers the [`CompactReport`].
pub async fn compact(
    State(shared): State<Arc<Shared>>,
    CallerExt(caller): CallerExt,
    handoff: Option<Extension<Arc<Handoff>>>,
) -> Result<Json<CompactReport>, ApiError> {
    require_owner(&shared, &caller, COMPACT).await?;
    // A compaction, once asked of the writer, runs to its end: answer with its outcome.
    if let Some(Extension(h)) = handoff {
        h.mark();
    }
    let report = compact_now(&shared).await.map_err(|e| match e {
        WriteError::Store(s) => store_error(s),
        other => ApiError::from(other),
    })?;
    Ok(Json(report))
}

/// Compacts the store, recording `store.compact` in every configured tenant. Refused on
/// PostgreSQL before anything is audited: there is no file to rewrite (VACUUM is its own).
pub async fn compact_now(shared: &Shared) -> Result<CompactReport, WriteError> {
    if shared.store.is_postgres() {
        return Err(WriteError::Store(StoreError::Refused(
            "compaction is only for the redb backend: PostgreSQL gives space back with its \
             own VACUUM (autovacuum)"
                .into(),
        )));
    }
    let tenants = shared
        .config()
        .tenants
        .iter()
        .map(|t| t.id.clone())
        .collect();
    let r = shared.store.writer().compact(tenants).await?;
    tracing::info!(
        old_bytes = r.old_bytes,
        new_bytes = r.new_bytes,
        pause_ms = r.pause.as_millis() as u64,
        "store compacted"
    );
    Ok(CompactReport {
        old_bytes: r.old_bytes,
        new_bytes: r.new_bytes,
        entries: r.copied.entries,
        pause_ms: u64::try_from(r.pause.as_millis()).unwrap_or(u64::MAX),
    })
}
