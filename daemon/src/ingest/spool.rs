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

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steward::resource::Operation;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, geteuid, unlinkat};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};
use steward::config::Config;
use steward::model::{AuditStatus, ValidationErrors};
use steward::names::TenantId;
use tokio::sync::mpsc;

use super::{PreparedAlert, parse_json, parse_ndjson, prepare, store_alerts};
use crate::state::Shared;
use crate::store::{self, AuditEntry, TenantWrite, WriteError};

/// How long the tree must be quiet before files are looked at.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Subdirectory of ingested files.
pub const DONE: &str = "done";
/// Subdirectory of rejected files and their `.error` files.
pub const REJECTED: &str = "rejected";
/// Mode of a spool root the daemon creates: sources pass through, nobody lists tenants.
const ROOT_MODE: u32 = 0o711;
/// Mode of a tenant directory the daemon creates: closed until the operator opens it.
const TENANT_MODE: u32 = 0o700;
/// Mode of `done/` and `rejected/`, the daemon's own.
const OWN_MODE: u32 = 0o750;
/// Mode of a `.error` file.
const ERROR_MODE: u32 = 0o640;
/// Longest file name shown in logs and `.error` files, in characters.
const SHOWN_MAX: usize = 120;
/// Longest name a Linux file system takes.
const NAME_MAX: usize = 255;

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

/// Whether `name` is a file to ingest: `*.json` or `*.ndjson`, not a dotfile.
pub fn eligible(name: &str) -> bool {
    candidate(name.as_bytes())
}

/// Whether a directory entry is the spool's business: named like a file to ingest
/// (whatever else its name holds, and whatever it is).
fn candidate(name: &[u8]) -> bool {
    !name.starts_with(b".") && (name.ends_with(b".json") || name.ends_with(b".ndjson"))
}

/// A file name as logs and `.error` files show it: invalid UTF-8 replaced, every control
/// or invisible character escaped (`\n`, `\u{202e}`), at most [`SHOWN_MAX`] characters.
pub fn shown(name: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in String::from_utf8_lossy(name).chars().enumerate() {
        if i == SHOWN_MAX {
            out.push('…');
            break;
        }
        if c == '"' || c == '\'' {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    out
}

/// The name as text, when a spool file may carry it: valid UTF-8 where every character
/// shows as itself (no control or invisible characters).
fn valid_name(name: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(name).ok()?;
    s.chars()
        .all(|c| matches!(c, '"' | '\'' | '\\') || c.escape_debug().len() == 1)
        .then_some(s)
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

/// A directory entry as the worker remembers it: inode and name.
type FileKey = (u64, Vec<u8>);

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

/// An open tenant directory.
struct TenantDir {
    /// `<spool>/<tenant>`, for messages only.
    path: PathBuf,
    /// The handle every operation in it goes through.
    fd: OwnedFd,
}

/// A file found in a tenant directory.
struct Found {
    /// Its inode (from the listing: only to remember it) and its name.
    key: FileKey,
}

/// Device and inode of an opened file: the move checks that the name still is that file.
type FileId = (u64, u64);

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

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits)
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// What a file is, in words.
fn kind_of(st: &FileStat) -> &'static str {
    [
        (SFlag::S_IFREG, "regular file"),
        (SFlag::S_IFDIR, "directory"),
        (SFlag::S_IFLNK, "symbolic link"),
        (SFlag::S_IFIFO, "FIFO"),
        (SFlag::S_IFSOCK, "socket"),
        (SFlag::S_IFCHR, "character device"),
        (SFlag::S_IFBLK, "block device"),
    ]
    .into_iter()
    .find(|(k, _)| is(st, *k))
    .map_or("special file", |(_, w)| w)
}

/// Gives a directory the daemon has just made its mode (the umask does not count) after
/// checking it is the one it made.
fn set_created_mode(fd: &OwnedFd, bits: u32) -> Result<(), Errno> {
    let st = fstat(fd)?;
    if st.st_uid != geteuid().as_raw() {
        return Err(Errno::EPERM);
    }
    fchmod(fd, mode(bits))
}

/// Opens the spool root, creating it (`0711`) when missing, and checks it.
fn open_root(root: &Path) -> Result<OwnedFd, SpoolError> {
    let dir_err = |source: std::io::Error| SpoolError::Dir {
        dir: root.to_owned(),
        source,
    };
    let unsafe_dir = |why: String| SpoolError::Unsafe {
        dir: root.to_owned(),
        why,
    };
    let mut created = false;
    let fd = match open(root, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            if let Some(parent) = root.parent() {
                std::fs::create_dir_all(parent).map_err(dir_err)?;
            }
            match nix::unistd::mkdir(root, mode(ROOT_MODE)) {
                Ok(()) => created = true,
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(dir_err(e.into())),
            }
            open(root, dir_flags(), Mode::empty()).map_err(|e| dir_err(e.into()))?
        }
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            return Err(unsafe_dir(
                "it is a symbolic link or not a directory; point [ingest] spool_dir at the real directory".into(),
            ));
        }
        Err(e) => return Err(dir_err(e.into())),
    };
    if created {
        set_created_mode(&fd, ROOT_MODE).map_err(|e| dir_err(e.into()))?;
    }
    let st = fstat(&fd).map_err(|e| dir_err(e.into()))?;
    let me = geteuid().as_raw();
    if st.st_uid != me && st.st_uid != 0 {
        return Err(unsafe_dir(format!(
            "it is owned by uid {}, neither the daemon's user (uid {me}) nor root: that user could swap one tenant's directory for another's; chown it",
            st.st_uid
        )));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "its group or others may write it (mode {:04o}): they could swap one tenant's directory for another's; chmod go-w it",
            st.st_mode & 0o7777
        )));
    }
    Ok(fd)
}

impl TenantDir {
    /// Opens `<root>/<tenant>` through the root's handle, creating it (`0700`) when missing.
    fn open(root: &Path, tenant: &TenantId) -> Result<TenantDir, SpoolError> {
        let root_fd = open_root(root)?;
        let path = root.join(tenant.as_str());
        let dir_err = |e: Errno| SpoolError::Dir {
            dir: path.clone(),
            source: e.into(),
        };
        let fd = match openat(&root_fd, tenant.as_str(), dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let created = match mkdirat(&root_fd, tenant.as_str(), mode(TENANT_MODE)) {
                    Ok(()) => true,
                    Err(Errno::EEXIST) => false,
                    Err(e) => return Err(dir_err(e)),
                };
                let fd = openat(&root_fd, tenant.as_str(), dir_flags(), Mode::empty())
                    .map_err(dir_err)?;
                if created {
                    set_created_mode(&fd, TENANT_MODE).map_err(dir_err)?;
                }
                fd
            }
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(SpoolError::Unsafe {
                    dir: path,
                    why: "it is a symbolic link or not a directory".into(),
                });
            }
            Err(e) => return Err(dir_err(e)),
        };
        Ok(TenantDir { path, fd })
    }

    /// Opens the daemon's own `done/` or `rejected/`: a real directory owned by the
    /// daemon's user, mode `0750`, never followed through a symlink. Whatever else stands
    /// in its place is moved aside and a new directory is made (see the module doc).
    fn own(&self, name: &str) -> Result<OwnedFd, SpoolError> {
        let path = self.path.join(name);
        let dir_err = |e: Errno| SpoolError::Dir {
            dir: path.clone(),
            source: e.into(),
        };
        let me = geteuid().as_raw();
        // Each round either returns or changes something (made the directory, moved an
        // impostor aside); a source that keeps replacing it gets a refusal, not a loop.
        for _ in 0..4 {
            let found = match openat(&self.fd, name, dir_flags(), Mode::empty()) {
                Ok(fd) => {
                    let st = fstat(&fd).map_err(dir_err)?;
                    if st.st_uid == me {
                        if st.st_mode & 0o777 != OWN_MODE {
                            fchmod(&fd, mode(OWN_MODE)).map_err(dir_err)?;
                        }
                        return Ok(fd);
                    }
                    format!("a directory owned by uid {}", st.st_uid)
                }
                Err(Errno::ENOENT) => {
                    match mkdirat(&self.fd, name, mode(OWN_MODE)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(dir_err(e)),
                    }
                    continue;
                }
                Err(e) => match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => format!("a {}", kind_of(&st)),
                    Err(Errno::ENOENT) => continue,
                    Err(_) => return Err(dir_err(e)),
                },
            };
            self.displace(name, &found)?;
        }
        Err(SpoolError::Unsafe {
            dir: path,
            why: "it keeps being replaced".into(),
        })
    }

    /// Renames what stands at `name` (described by `found`) aside within the tenant
    /// directory, with one warning.
    fn displace(&self, name: &str, found: &str) -> Result<(), SpoolError> {
        let ms = jiff::Timestamp::now().as_millisecond();
        let aside = free_name(&self.fd, format!("{name}.displaced-{ms}").as_bytes(), false)
            .map_err(|source| SpoolError::Dir {
                dir: self.path.clone(),
                source,
            })?;
        match renameat(&self.fd, name, &self.fd, aside.as_slice()) {
            Ok(()) | Err(Errno::ENOENT) => {
                tracing::warn!(
                    dir = %self.path.join(name).display(),
                    found,
                    moved_to = shown(&aside),
                    "spool: the daemon's own directory was replaced; the impostor was moved aside and a new directory made"
                );
                Ok(())
            }
            Err(e) => Err(SpoolError::Unsafe {
                dir: self.path.join(name),
                why: format!(
                    "it is {found}, not the daemon's own directory, and cannot be moved aside ({e}); remove it"
                ),
            }),
        }
    }

    /// The entries named like files to ingest, oldest name first.
    fn list(&self) -> Result<Vec<Found>, SpoolError> {
        let dir_err = |e: Errno| SpoolError::Dir {
            dir: self.path.clone(),
            source: e.into(),
        };
        let mut d = Dir::openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(dir_err)?;
        let mut out = Vec::new();
        for e in d.iter() {
            let e = e.map_err(dir_err)?;
            let name = e.file_name().to_bytes();
            if candidate(name) {
                out.push(Found {
                    key: (e.ino(), name.to_vec()),
                });
            }
        }
        out.sort_by(|a, b| a.key.1.cmp(&b.key.1));
        Ok(out)
    }

    /// Reads one file (see the module doc for what is refused) and parses it.
    fn read(&self, name: &[u8], limit: usize) -> Result<(FileId, Vec<u8>), Refusal> {
        if valid_name(name).is_none() {
            return Err(Refusal::No(
                "its name is not valid UTF-8 or holds control characters; rename it".into(),
            ));
        }
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY;
        let fd = match openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(Refusal::Gone),
            Err(e) => {
                // Only to say what it is: the decision is the failed open.
                return Err(
                    match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                        Err(Errno::ENOENT) => Refusal::Gone,
                        Ok(st) if !is(&st, SFlag::S_IFREG) => {
                            Refusal::No(format!("it is a {}, not a regular file", kind_of(&st)))
                        }
                        _ => Refusal::No(format!("it cannot be opened: {e}")),
                    },
                );
            }
        };
        let st = fstat(&fd).map_err(|e| Refusal::No(format!("it cannot be examined: {e}")))?;
        let id = (st.st_dev, st.st_ino);
        if !is(&st, SFlag::S_IFREG) {
            return Err(Refusal::No(format!(
                "it is a {}, not a regular file",
                kind_of(&st)
            )));
        }
        if st.st_nlink != 1 {
            return Err(Refusal::No(format!(
                "it has {} hard links; a spool file must have one (write it under another name, then rename it)",
                st.st_nlink
            )));
        }
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let cap = limit as u64;
        if size > cap {
            return Err(Refusal::No(format!(
                "it is {size} bytes, more than the ingest limit of {limit}"
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
        std::fs::File::from(fd)
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Refusal::No(format!("it cannot be read: {e}")))?;
        if bytes.len() > limit {
            return Err(Refusal::No(format!(
                "it grew past the ingest limit of {limit} bytes while it was read"
            )));
        }
        Ok((id, bytes))
    }

    /// Whether `name` still is the file `id` that was read (`None`: nothing was opened,
    /// any entry will do). A source may swap it after the read; the new one waits for the
    /// next scan.
    fn still(&self, name: &[u8], id: Option<FileId>) -> Result<bool, std::io::Error> {
        let Some(id) = id else { return Ok(true) };
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok((st.st_dev, st.st_ino) == id),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `name` into `done/` (under a free name). `Ok(false)`: it was replaced
    /// meanwhile and stays for the next scan.
    fn finish(&self, name: &[u8], id: Option<FileId>) -> Result<bool, String> {
        let done = self.own(DONE).map_err(|e| e.to_string())?;
        if !self.still(name, id).map_err(|e| e.to_string())? {
            return Ok(false);
        }
        let to = free_name(&done, name, false).map_err(|e| e.to_string())?;
        renameat(&self.fd, name, &done, to.as_slice())
            .map_err(|e| format!("it cannot be moved to {DONE}/: {e}"))?;
        Ok(true)
    }

    /// Moves `name` into `rejected/` beside a `.error` holding `report` (when one can be
    /// made). `Ok(None)`: it was replaced meanwhile and stays for the next scan; else
    /// whether the `.error` was written.
    fn reject(
        &self,
        name: &[u8],
        id: Option<FileId>,
        report: &str,
    ) -> Result<Option<bool>, String> {
        let rejected = self.own(REJECTED).map_err(|e| e.to_string())?;
        if !self.still(name, id).map_err(|e| e.to_string())? {
            return Ok(None);
        }
        let to = free_name(&rejected, name, true).map_err(|e| e.to_string())?;
        let mut err_name = to.clone();
        err_name.extend_from_slice(b".error");
        let wrote = write_error(&rejected, &err_name, report);
        if let Err(e) = renameat(&self.fd, name, &rejected, to.as_slice()) {
            if wrote {
                let _ = unlinkat(&rejected, err_name.as_slice(), UnlinkatFlags::NoRemoveDir);
            }
            return Err(format!("it cannot be moved to {REJECTED}/: {e}"));
        }
        Ok(Some(wrote))
    }
}

/// Why a file was not read.
enum Refusal {
    /// It is gone.
    Gone,
    /// It cannot be taken, and why.
    No(String),
}

/// Creates `name` in `dir` (never through a link, never over an existing file, mode
/// `0640`) holding `text`. Whether it was written.
fn write_error(dir: &OwnedFd, name: &[u8], text: &str) -> bool {
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let Ok(fd) = openat(dir, name, flags, mode(ERROR_MODE)) else {
        return false;
    };
    let written = fchmod(&fd, mode(ERROR_MODE)).is_ok()
        && std::fs::File::from(fd).write_all(text.as_bytes()).is_ok();
    if !written {
        let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// A name in `dir` that does not exist yet (`name`, else `name.1`, …); with `error`, its
/// `.error` does not exist either (unless that name would be too long to make at all).
fn free_name(dir: &OwnedFd, name: &[u8], error: bool) -> std::io::Result<Vec<u8>> {
    let taken = |n: &[u8]| match fstatat(dir, n, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(std::io::Error::from(e)),
    };
    for i in 0..10_000u32 {
        let mut n = name.to_vec();
        if i > 0 {
            n.extend_from_slice(format!(".{i}").as_bytes());
        }
        if taken(&n)? {
            continue;
        }
        let mut e = n.clone();
        e.extend_from_slice(b".error");
        if !error || e.len() > NAME_MAX || !taken(&e)? {
            return Ok(n);
        }
    }
    Err(std::io::Error::other("no free name left for it"))
}

fn entry(file: &str, status: AuditStatus) -> AuditEntry {
    AuditEntry::new(store::system_caller(), Operation::AlertsIngest, status)
        .resource(format!("spool/{file}"))
}

/// Takes one file: read and parse, one write job, then the move. `Ok(Some(why))`: it was
/// dealt with but could not be moved, so it must not be taken again. A storage failure
/// leaves the file where it is (retried at the next scan).
async fn take(
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
