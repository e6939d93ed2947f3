//! Live configuration: the config file's parent directory is watched (editors save by
//! renaming a temp file over the original, which a watch on the file itself would
//! miss), changes are debounced, and SIGHUP asks for the same reload. A file that does
//! not parse or validate is refused whole: the refusal is logged and audited and the
//! configuration in force stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use steward::config::Config;
use tokio::sync::mpsc;

use crate::state::Shared;

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
        let touches = events
            .iter()
            .any(|e| e.paths.iter().any(|p| p.file_name() == name.as_deref()));
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

/// Reads `path` again and puts it in force if it is valid. Returns the error that kept
/// the old configuration in force, if any. Both outcomes are logged and audited.
pub async fn reload(shared: &Arc<Shared>, path: &Path) -> Result<(), String> {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
    let p = path.to_owned();
    let loaded = tokio::task::spawn_blocking(move || Config::load(&p))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let outcome = match loaded {
        Ok(cfg) => {
            shared.set_config(cfg);
            tracing::info!(path = %path.display(), "configuration reloaded");
            crate::daemon::on_config_applied(shared).await;
            Ok(())
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "configuration refused; the previous one stays in force");
            Err(e)
        }
    };
    crate::daemon::audit_reload(shared, outcome.as_ref().err().map(String::as_str)).await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    outcome
}
