//! Live configuration: the config file's parent directory is watched (editors save by
//! renaming a temp file over the original, which a watch on the file itself would
//! miss), changes are debounced, and SIGHUP asks for the same reload. A file that does
//! not parse or validate is refused whole: the refusal is logged and audited and the
//! configuration in force stays.
//!
//! Only a change of the file's content reloads. Events that cannot change it (open,
//! read, close without writing, metadata) are ignored, and a reload whose text equals
//! the text of the configuration in force ([`Config::source_text`]) is a no-op: logged,
//! not audited, nothing swapped. Reading the file (`cat`, `stewardd check-config`, an
//! editor, a backup job, the reload's own read) therefore never reloads it. SIGHUP on an
//! unchanged file is the same no-op (it still reports RELOADING/READY to systemd, which
//! waits for them), except that callers' groups are looked up again on open connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use steward::config::{Config, ConfigError};
use tokio::sync::mpsc;

use crate::state::Shared;
use crate::store::{AuditEntry, WriteError, system_caller};
use steward::model::AuditStatus;
use steward::resource::Operation;

/// How long the file must be quiet before a change is applied.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for config changes: {source}")]
pub struct WatchError {
    /// The watched directory.
    dir: PathBuf,
    /// The watcher's error.
    source: notify::Error,
}

/// Keeps the watcher alive; dropping it stops watching.
pub struct Watch {
    /// The debouncer thread and its inotify handle.
    _debouncer: Box<dyn std::any::Any + Send>,
}

/// Watches `path`'s directory and sends `()` on `tx` whenever `path` may have changed.
pub fn watch(path: &Path, tx: mpsc::Sender<()>) -> Result<Watch, WatchError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let name = path.file_name().map(|n| n.to_owned());
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |res: DebounceEventResult| {
        let Ok(events) = res else { return };
        let touches = events.iter().any(|e| {
            may_change_content(&e.kind) && e.paths.iter().any(|p| p.file_name() == name.as_deref())
        });
        if touches {
            // A full channel already holds a pending reload.
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| WatchError {
        dir: dir.clone(),
        source,
    })?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError {
            dir: dir.clone(),
            source,
        })?;
    Ok(Watch {
        _debouncer: Box::new(debouncer),
    })
}

/// Whether an event of this kind can mean the file's content changed: a write, a
/// create, a rename or a removal. Opening, reading, closing without writing and metadata
/// changes (`touch`, `chmod`) cannot.
fn may_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    }
}

/// What a read of the config file found.
enum Read {
    /// The same text as the configuration in force.
    Unchanged,
    /// New text, parsed and validated, or why it was refused.
    Changed(Result<Box<Config>, String>),
}

/// Reads `path` again and puts it in force if it is valid. Returns the error that kept
/// the old configuration in force, if any. Both outcomes are logged and audited; a file
/// whose text is that of the configuration in force changes nothing and is not audited.
pub async fn reload(shared: &Arc<Shared>, path: &Path) -> Result<(), String> {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
    let p = path.to_owned();
    let current = shared.config();
    let read = tokio::task::spawn_blocking(move || match std::fs::read_to_string(&p) {
        Ok(text) if current.source_text() == Some(text.as_str()) => Read::Unchanged,
        Ok(text) => Read::Changed(
            Config::parse(&text)
                .map(Box::new)
                .map_err(|e| e.to_string()),
        ),
        Err(source) => Read::Changed(Err(ConfigError::Read { path: p, source }.to_string())),
    })
    .await
    .unwrap_or_else(|e| Read::Changed(Err(e.to_string())));
    let loaded = match read {
        Read::Unchanged => {
            tracing::info!(path = %path.display(), "configuration file unchanged; nothing to reload");
            // Group membership may have changed even if the file has not.
            shared.refresh_identities();
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            return Ok(());
        }
        Read::Changed(loaded) => loaded,
    };
    let outcome = match loaded {
        Ok(cfg) => {
            let firewall_was_on = crate::firewall::enabled(&shared.config());
            shared.set_config(*cfg);
            tracing::info!(path = %path.display(), "configuration reloaded");
            on_config_applied(shared).await;
            crate::firewall::reloaded(shared, firewall_was_on).await; // firewall
            Ok(())
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "configuration refused; the previous one stays in force");
            Err(e)
        }
    };
    audit_reload(shared, outcome.as_ref().err().map(String::as_str)).await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    outcome
}

/// Work that follows a new configuration: spool directories for new tenants.
async fn on_config_applied(shared: &Arc<Shared>) {
    if let Err(e) = crate::ingest::spool::ensure_dirs(&shared.config()) {
        tracing::error!(error = %e, "cannot create spool directories");
    }
}

/// Audits a reload's outcome in every tenant of the configuration in force. A refusal's
/// reason stays in the daemon's log: a config error may quote the file (user names).
async fn audit_reload(shared: &Arc<Shared>, refused: Option<&str>) {
    let status = if refused.is_some() {
        AuditStatus::Failed
    } else {
        AuditStatus::Succeeded
    };
    let writer = shared.store.writer();
    for t in &shared.config().tenants {
        let mut entry =
            AuditEntry::new(system_caller(), Operation::ConfigReload, status).resource("config");
        if refused.is_some() {
            entry = entry.reason("the new file was refused and the previous configuration stays in force; the daemon's log has the error");
        }
        let r: Result<(), WriteError> = writer
            .write(&t.id, move |txn| {
                txn.audit(entry);
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::error!(tenant = %t.id, error = %e, "could not audit a config reload");
        }
    }
}
