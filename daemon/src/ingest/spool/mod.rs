//! The spool: a directory per tenant (`<spool_dir>/<tenant>/`, with `done/` and
//! `rejected/`) where sources drop `*.json` (one alert or an array) and `*.ndjson` files.
//! Each file is ingested in one write job — all of it or nothing — through
//! [`super::store_alerts`], audited `alerts.ingest` by the system caller with the file name
//! as the resource and the counts, then moved to `done/`; a file with any bad line or item
//! goes whole to `rejected/` beside a `<name>.error` that names each line (`line N`) or
//! item (`[i]`) and why, audited as failed.
//!
//! Files still being written are never read: sources write `*.tmp` (or a dotfile) and
//! rename, and only `*.json`/`*.ndjson` are picked up. Each tenant directory is watched
//! with notify (debounced, not recursive, symlinks never followed); every tenant directory
//! is also scanned at start (files dropped while the daemon was down) and every
//! `[ingest] rescan_interval` in case an event was lost. The move to `done/` happens after
//! the commit: if the daemon dies in between, the file is ingested again at the next start,
//! which is harmless since ingest is idempotent on alert names.
//!
//! # A source is not trusted
//!
//! A tenant's source can write into its own tenant directory, so it can put anything there
//! under any name, and rename or replace anything there, `done/` and `rejected/` included.
//! Everything the daemon does in the spool therefore goes through directory handles it
//! opened itself, never through a path it looked at earlier:
//!
//! - The spool root is opened `O_DIRECTORY|O_NOFOLLOW` and must be owned by the daemon's
//!   user or root and writable by nobody else (whoever can write it could swap one tenant's
//!   directory for another's); otherwise nothing is ingested and one line says why.
//! - Each tenant directory is opened from the root's handle, `done/` and `rejected/` from
//!   the tenant's handle (`O_DIRECTORY|O_NOFOLLOW`, then `fstat`), before each use. They
//!   must be real directories owned by the daemon's user; their mode is the daemon's
//!   (`0750`). Whatever stands in their place — a symlink, a file, another user's
//!   directory — is renamed aside within the tenant directory to
//!   `<name>.displaced-<unix ms>` with one warning, and a new directory is made; when it
//!   cannot be moved aside (a sticky tenant directory the daemon does not own), that tenant
//!   is not scanned and one line says why. Nothing is ever followed through such a link, so
//!   a `.error` cannot land on the store and `done -> ../fabrikam` cannot move contoso's
//!   file into fabrikam's spool: files move only by `renameat` from the tenant's handle to
//!   a handle opened from that same tenant handle.
//! - A file is opened `openat(tenant, name, O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC)` and
//!   examined with `fstat` on that descriptor: only a regular file with exactly one link is
//!   read, through a `take(max_ingest_body + 1)`, so a FIFO, a socket, a symlink (to
//!   `/dev/zero` or anything), a directory named `x.json` or a hard link to someone else's
//!   file never blocks the scan nor grows memory. It is ingested only into the tenant whose
//!   handle it was opened from.
//! - A file the daemon cannot take (a bad name: not UTF-8 or with control characters;
//!   not a regular file; unreadable; too big; several links) is rejected once: audited,
//!   moved to `rejected/` with a `.error` (created `O_CREAT|O_EXCL|O_NOFOLLOW`, mode
//!   `0640`) saying why. When even that move fails, the file is remembered by inode and
//!   name and skipped with one log line until it changes or goes.
//! - File names reach logs and `.error` files escaped and bounded ([`shown`]), so a name
//!   cannot forge a log line.
//!
//! Modes: a missing spool root is created `0711` (sources may pass through it, not list
//! it), a missing tenant directory `0700` (closed until the operator gives the tenant's
//! source group write access; the daemon never changes the mode of an existing one),
//! `done/` and `rejected/` `0750`. The process umask plays no part.
//!
//! # Where things are
//!
//! - this module: the watcher, the worker that scans one tenant at a time, and
//!   [`ensure_dirs`];
//! - `names`: which entries are the spool's business and how a name is shown;
//! - `dir`: the tenant directory handle and every file system call made through it;
//! - `take`: one file taken — read, parsed, stored or rejected in one write job, moved.

mod dir;
mod names;
mod take;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};
use steward::config::Config;
use steward::names::TenantId;
use tokio::sync::mpsc;

use crate::state::Shared;
use crate::store::WriteError;
use dir::{FileKey, TenantDir};
pub use names::{eligible, shown};
use take::take;

/// How long the tree must be quiet before files are looked at.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Subdirectory of ingested files.
pub const DONE: &str = "done";
/// Subdirectory of rejected files and their `.error` files.
pub const REJECTED: &str = "rejected";

/// Why the spool, or one tenant's part of it, could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A directory could not be opened or created.
    #[error("cannot open or create the spool directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A directory is not what the spool needs, and the daemon will not use it.
    #[error("the spool directory {dir} is not safe to use: {why}")]
    Unsafe {
        /// The directory.
        dir: PathBuf,
        /// What is wrong and how to fix it.
        why: String,
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
/// after a reload), checking what exists as each scan does. A tenant whose directories
/// cannot be used does not stop the others; the first error is returned.
pub fn ensure_dirs(cfg: &Config) -> Result<(), SpoolError> {
    let root = cfg.spool_dir();
    let mut first = None;
    for t in &cfg.tenants {
        let opened = TenantDir::open(&root, &t.id).and_then(|d| {
            d.own(DONE)?;
            d.own(REJECTED)?;
            Ok(())
        });
        if let Err(e) = opened {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Keeps the spool running; dropping it (and the end of the worker at shutdown) stops
/// the watcher.
pub struct Spool {
    /// The debouncer thread and its inotify handle, shared with the worker that adds a
    /// watch per tenant directory.
    _watcher: Arc<Mutex<Watcher>>,
}

/// The debounced watcher of the tenant directories.
type Watcher = Debouncer<RecommendedWatcher, NoCache>;

/// Starts the spool: watches the tenant directories and ingests what is there.
pub fn start(shared: &Arc<Shared>) -> Result<Spool, SpoolError> {
    let cfg = shared.config();
    let root = cfg.spool_dir();
    let (tx, rx) = mpsc::channel::<TenantId>(1024);
    let watch_root = root.clone();
    let events_tx = tx.clone();
    let handler = move |res: DebounceEventResult| {
        let Ok(events) = res else { return };
        for e in events {
            // The daemon's own reads must not trigger the next scan.
            if matches!(
                e.kind,
                EventKind::Access(
                    AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
                )
            ) {
                continue;
            }
            for p in &e.paths {
                // Only files directly inside `<root>/<tenant>/` matter.
                let Ok(rel) = p.strip_prefix(&watch_root) else {
                    continue;
                };
                let mut parts = rel.components();
                if let (Some(t), Some(_), None) = (parts.next(), parts.next(), parts.next())
                    && let Some(t) = t.as_os_str().to_str()
                    && let Ok(t) = TenantId::parse(t)
                {
                    let _ = events_tx.try_send(t);
                }
            }
        }
    };
    // Not recursive and no file-id cache: a source that makes a symlink to `/` (or a deep
    // tree) in its directory must not make the daemon walk it.
    let watcher = new_debouncer_opt::<_, RecommendedWatcher, NoCache>(
        DEBOUNCE,
        None,
        handler,
        NoCache,
        notify::Config::default().with_follow_symlinks(false),
    )
    .map_err(|source| SpoolError::Watch {
        dir: root.clone(),
        source,
    })?;
    let watcher = Arc::new(Mutex::new(watcher));
    tokio::spawn(worker(Arc::clone(shared), rx, Arc::clone(&watcher)));
    // Files present before the start.
    for t in &cfg.tenants {
        let _ = tx.try_send(t.id.clone());
    }
    let sh = Arc::clone(shared);
    tokio::spawn(async move {
        loop {
            let every = sh.config().ingest.rescan_interval.0;
            tokio::select! {
                () = sh.shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            for t in &sh.config().tenants {
                let _ = tx.try_send(t.id.clone());
            }
        }
    });
    Ok(Spool { _watcher: watcher })
}

/// What the worker remembers about one tenant between scans.
#[derive(Default)]
struct Memory {
    /// Files that could be neither taken nor moved aside, by inode and name: skipped
    /// without another log line until they change or go.
    stuck: HashSet<FileKey>,
    /// The last problem logged about the tenant's directories, so that one that lasts is
    /// logged once.
    problem: Option<String>,
    /// Whether the watcher watches the tenant's directory.
    watched: bool,
}

/// Scans the tenants named on `rx`, one at a time, until shutdown.
async fn worker(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<TenantId>,
    watcher: Arc<Mutex<Watcher>>,
) {
    let mut memory: HashMap<TenantId, Memory> = HashMap::new();
    loop {
        let tenant = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            t = rx.recv() => match t { Some(t) => t, None => return },
        };
        let cfg = shared.config();
        if cfg.tenant(&tenant).is_none() {
            continue;
        }
        let mem = memory.entry(tenant.clone()).or_default();
        // Watch first, then scan: a file dropped during the first scan raises an event
        // instead of waiting for the next rescan.
        if !mem.watched {
            let dir = cfg.spool_dir().join(tenant.as_str());
            if let Ok(mut w) = watcher.lock() {
                match w.watch(&dir, RecursiveMode::NonRecursive) {
                    Ok(()) => mem.watched = true,
                    // The rescan still finds its files; the next scan tries again.
                    Err(e) => {
                        tracing::debug!(tenant = %tenant, error = %e, "spool directory not watched")
                    }
                }
            }
        }
        scan(&shared, &tenant, mem).await;
    }
}

/// Runs `f` on the blocking pool (every file system call of the spool is one).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WriteError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| WriteError::Panicked)
}

/// Ingests every file of one tenant's directory, oldest name first.
async fn scan(shared: &Arc<Shared>, tenant: &TenantId, mem: &mut Memory) {
    let root = shared.config().spool_dir();
    let t = tenant.to_owned();
    let opened = blocking(move || -> Result<_, SpoolError> {
        let dir = TenantDir::open(&root, &t)?;
        // Checked (and remade if need be) before anything is taken.
        dir.own(DONE)?;
        dir.own(REJECTED)?;
        let files = dir.list()?;
        Ok((Arc::new(dir), files))
    })
    .await;
    let (dir, files) = match opened {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            let problem = e.to_string();
            if mem.problem.as_deref() != Some(problem.as_str()) {
                tracing::error!(tenant = %tenant, error = problem, "spool directory not scanned");
                mem.problem = Some(problem);
            }
            return;
        }
        Err(e) => {
            tracing::error!(tenant = %tenant, error = %e, "spool scan failed");
            return;
        }
    };
    if mem.problem.take().is_some() {
        tracing::info!(tenant = %tenant, "spool directory usable again");
    }
    let present: HashSet<&FileKey> = files.iter().map(|f| &f.key).collect();
    mem.stuck.retain(|k| present.contains(k));
    for file in &files {
        if shared.shutdown.is_cancelled() {
            break;
        }
        if mem.stuck.contains(&file.key) {
            continue;
        }
        match take(shared, tenant, &dir, file).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                tracing::warn!(
                    tenant = %tenant,
                    file = %shown(&file.key.1),
                    why,
                    "spool file left where it is; skipped until it changes"
                );
                mem.stuck.insert(file.key.clone());
            }
            Err(e) => {
                tracing::error!(tenant = %tenant, file = %shown(&file.key.1), error = %e, "spool file not ingested; retried later");
            }
        }
    }
}
