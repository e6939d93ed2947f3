//! Copies of the store kept elsewhere: the online backup (a consistent copy of one read
//! snapshot written to a file of the operator's choosing), the check of such a copy, and the
//! verified restore that puts one back in place of the live file.
//!
//! A backup is the copier of `copy.rs` (the same one the scrub's rewrite and compaction
//! use) reading one redb read transaction: MVCC makes it a snapshot of one moment, and the
//! writer keeps committing meanwhile (it never waits for a reader). The copy is written to a
//! temporary file beside the target (`.NAME.partial-PID`, created `O_EXCL|O_NOFOLLOW`,
//! `0600`), fsynced, renamed onto the target (a symbolic link at the target is refused,
//! never followed), and the directory fsynced: the target name holds either the previous
//! file or the whole new copy, never part of one. A partial file left by a process that
//! died (SIGKILL) is removed by the next backup to the same target.
//!
//! A restore copies the backup into the data directory (`steward.redb.restore`), checks
//! that copy fully (schema version, every page's checksum, every audit chain) before it
//! touches anything, keeps the replaced store aside under a dated name, and renames the
//! checked copy over the live name. The live file's lock is held throughout, so a daemon
//! cannot start on either file meanwhile.
//!
//! Not here: the copier (`copy.rs`), compaction (a rewrite, `swap.rs`), who may ask
//! (`crate::routes::store`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::audit::{AuditHead, ChainPoint};
use super::check::{self, CheckReport};
use super::copy::{self, CopyCounts};
use super::error::{StoreError, WriteError};
use super::pace::Control;
use super::{DB_FILE, Kind, codec, slot, tables};

/// The restore's staging copy inside the data directory (removed at the next open if a
/// restore died before renaming it).
pub const RESTORE_FILE: &str = "steward.redb.restore";

/// Prefix of the name the replaced store is kept under by a restore.
pub const REPLACED_PREFIX: &str = "steward.redb.replaced-";

/// What a backup wrote: enough to tell later that a copy is the one taken, and what it
/// holds (`stewardd backup` prints it; the socket answers it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    /// The file written.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The store's layout version in the copy.
    pub schema_version: u32,
    /// Records per kind (`contacts`, `alerts`, …, and `audit` for audit records).
    pub records: BTreeMap<String, u64>,
    /// Every tenant's audit head `(seq, hash)` in the copy: save them to prove later that
    /// a restored store holds at least this much of each chain.
    pub heads: BTreeMap<String, ChainPoint>,
    /// Table entries copied, indexes included.
    pub entries: u64,
    /// How long the copy took, milliseconds.
    pub took_ms: u64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The full check of the copy that was put in place.
    pub check: CheckReport,
    /// Where the replaced store was kept (none when there was no store).
    pub kept_aside: Option<PathBuf>,
}

/// The records per kind of a copy, by the API's names.
fn records_by_kind(counts: &CopyCounts) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (byte, n) in &counts.per_kind {
        let name = Kind::from_u8(*byte).map_or_else(|| format!("kind-{byte}"), |k| k.to_string());
        out.insert(name, *n);
    }
    let audit = counts
        .per_table
        .get(redb::TableHandle::name(&tables::AUDIT))
        .copied()
        .unwrap_or(0);
    out.insert("audit".into(), audit);
    out
}

/// Every tenant's audit head in the snapshot.
fn heads_of(src: &ReadTransaction) -> Result<BTreeMap<String, ChainPoint>, StoreError> {
    let mut out = BTreeMap::new();
    let t = match src.open_table(tables::AUDIT_HEAD) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for item in t.iter()? {
        let (k, v) = item?;
        let tenant = k.value().to_string();
        let head: AuditHead = codec::decode(v.value())
            .map_err(|e| StoreError::codec(format!("audit_head[{tenant}]"), e))?;
        out.insert(tenant, head.head);
    }
    Ok(out)
}

/// The schema version recorded in a file (`None` for a file never initialised).
pub(crate) fn schema_of(db: &Database) -> Result<Option<u32>, StoreError> {
    let rtx = db.begin_read()?;
    let meta = match rtx.open_table(tables::META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(v) = meta.get(tables::META_SCHEMA_VERSION)? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = v.value().try_into().map_err(|_| {
        StoreError::Corrupted("the schema version in the meta table is malformed".into())
    })?;
    Ok(Some(u32::from_le_bytes(bytes)))
}

/// Refuses a copy this build cannot serve, naming why.
pub(crate) fn require_schema(db: &Database, what: &Path) -> Result<u32, StoreError> {
    let w = what.display();
    match schema_of(db)? {
        Some(v) if v == tables::SCHEMA_VERSION => Ok(v),
        Some(v) if v > tables::SCHEMA_VERSION => Err(StoreError::Refused(format!(
            "{w} was written by a newer stewardd (store schema {v}; this one reads schema {}): \
             restore it with a stewardd of that version or later",
            tables::SCHEMA_VERSION
        ))),
        Some(v) => Err(StoreError::Refused(format!(
            "{w} has store schema {v}, older than this stewardd's {} and not readable by it",
            tables::SCHEMA_VERSION
        ))),
        None => Err(StoreError::Refused(format!(
            "{w} is not a steward store (no schema version in its meta table)"
        ))),
    }
}

/// The temporary name of a backup to `name`, for the process `pid`.
fn partial_name(name: &str, pid: u32) -> String {
    format!(".{name}.partial-{pid}")
}

/// Removes partial files of backups to `name` in `dir` left by processes that are gone
/// (or by this one). Returns how many.
fn remove_partials(dir: &Path, name: &str) -> usize {
    let prefix = format!(".{name}.partial-");
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = pid == me
            || i32::try_from(pid).is_ok_and(|p| {
                matches!(
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None),
                    Err(nix::errno::Errno::ESRCH)
                )
            });
        if gone && std::fs::remove_file(entry.path()).is_ok() {
            tracing::warn!(file = %entry.path().display(), "removed the partial file of a backup that did not finish");
            removed += 1;
        }
    }
    removed
}

/// The checked parts of a backup target: its directory and file name.
struct Target {
    dir: PathBuf,
    name: String,
}

/// Checks `out` as the target of a copy: an absolute path whose directory exists, outside
/// the data directory `data_dir`, and not a symbolic link nor anything but a regular file
/// if it exists (a regular file there is replaced whole).
fn target(out: &Path, data_dir: &Path) -> Result<Target, StoreError> {
    let refuse =
        |why: &str| StoreError::BadTarget(format!("backup target {}: {why}", out.display()));
    if !out.is_absolute() {
        return Err(refuse("must be an absolute path"));
    }
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| refuse("must end in a file name (UTF-8)"))?
        .to_string();
    let parent = out.parent().ok_or_else(|| refuse("has no directory"))?;
    let dir = std::fs::canonicalize(parent)
        .map_err(|e| refuse(&format!("its directory cannot be used: {e}")))?;
    if !dir.is_dir() {
        return Err(refuse("its directory is not a directory"));
    }
    if let Ok(data) = std::fs::canonicalize(data_dir)
        && dir.starts_with(&data)
    {
        return Err(refuse(
            "is inside the daemon's data directory; write backups somewhere else",
        ));
    }
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(refuse(
                "is a symbolic link; refusing to write through it (remove it or name the file itself)",
            ));
        }
        Ok(m) if !m.is_file() => return Err(refuse("exists and is not a regular file")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(refuse(&format!("cannot be examined: {e}"))),
    }
    Ok(Target { dir, name })
}

/// Opens `path` to write it, `0600` whatever the umask, never through a symbolic link:
/// created new (an existing file is an error), or with `replace` created or emptied in
/// place (the space reserve, rewritten where it stands).
pub(super) fn create_private(path: &Path, replace: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let f = options.open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// fsyncs a directory (after a rename in it).
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn store_error(e: WriteError) -> StoreError {
    match e {
        WriteError::Store(s) => s,
        other => StoreError::Io(std::io::Error::other(other.to_string())),
    }
}

/// Writes a backup of the snapshot `src` to `out` (see the module doc). `data_dir` is the
/// live store's directory, which a target may not be in.
pub(crate) fn write_backup(
    src: &ReadTransaction,
    out: &Path,
    data_dir: &Path,
) -> Result<BackupReport, StoreError> {
    let started = Instant::now();
    let t = target(out, data_dir)?;
    remove_partials(&t.dir, &t.name);
    let partial = t.dir.join(partial_name(&t.name, std::process::id()));
    let file = create_private(&partial, false)?;
    let written = (|| {
        let counts =
            copy::copy_into(src, file, &Control::default(), |_| Ok(())).map_err(store_error)?;
        // redb fsynced the commit; its close may still write the header: sync once more.
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&partial)?
            .sync_all()?;
        let heads = heads_of(src)?;
        std::fs::rename(&partial, t.dir.join(&t.name))?;
        Ok::<_, StoreError>((counts, heads))
    })();
    let (counts, heads) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    sync_dir(&t.dir)?;
    let file = t.dir.join(&t.name);
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        file,
        bytes,
        schema_version: tables::SCHEMA_VERSION,
        records: records_by_kind(&counts),
        heads,
        entries: counts.entries,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Opens an existing file for a check: a regular file (a symbolic link is followed: the
/// operator named it), never created.
pub(crate) fn open_existing(path: &Path) -> Result<Database, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => slot::open_database(path),
        Ok(_) => Err(StoreError::Refused(format!(
            "{}: not a regular file",
            path.display()
        ))),
        Err(e) => Err(StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))),
    }
}

/// The full check of a store file or a backup: schema version, every page's checksum and
/// every audit chain. The file must not be open elsewhere (a running daemon's store:
/// [`StoreError::AlreadyOpen`]).
pub(crate) fn verify_file(path: &Path) -> Result<CheckReport, StoreError> {
    let db = open_existing(path)?;
    require_schema(&db, path)?;
    check::check(db, path).map(|(_, r)| r)
}

/// The name the replaced store is kept under: `steward.redb.replaced-<UTC time>`.
fn aside_name(data_dir: &Path) -> PathBuf {
    let now = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let mut p = data_dir.join(format!("{REPLACED_PREFIX}{now}"));
    let mut n = 1;
    while std::fs::symlink_metadata(&p).is_ok() {
        n += 1;
        p = data_dir.join(format!("{REPLACED_PREFIX}{now}-{n}"));
    }
    p
}

/// Restores the backup `from` into `data_dir` (see the module doc). The daemon must be
/// stopped: its lock on the live file makes this fail with [`StoreError::AlreadyOpen`]
/// before anything is touched.
pub(crate) fn restore(data_dir: &Path, from: &Path) -> Result<RestoreReport, StoreError> {
    let live = data_dir.join(DB_FILE);
    // The lock of the live file, held until the checked copy has replaced it.
    let live_db = match std::fs::symlink_metadata(&live) {
        Ok(_) => match slot::open_database(&live) {
            Ok(db) => Some(db),
            Err(e @ StoreError::AlreadyOpen { .. }) => return Err(e),
            // A damaged live store is a reason to restore, not to stop.
            Err(e) => {
                tracing::warn!(file = %live.display(), error = %e, "the store being replaced cannot be opened");
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let stage = data_dir.join(RESTORE_FILE);
    match std::fs::remove_file(&stage) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let staged = (|| {
        let mut src = File::open(from).map_err(|e| {
            StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", from.display()),
            ))
        })?;
        if !src.metadata()?.is_file() {
            return Err(StoreError::Refused(format!(
                "{}: not a regular file",
                from.display()
            )));
        }
        let mut dst = create_private(&stage, false)?;
        std::io::copy(&mut src, &mut dst)?;
        dst.sync_all()?;
        drop(dst);
        let db = slot::open_database(&stage)?;
        require_schema(&db, from)?;
        let (db, report) = check::check(db, &stage).map_err(|e| match e {
            StoreError::Corrupted(m) => StoreError::Corrupted(m.replace(
                &stage.display().to_string(),
                &format!("{} (copied to {})", from.display(), stage.display()),
            )),
            other => other,
        })?;
        drop(db);
        Ok(report)
    })();
    let check = match staged {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&stage);
            return Err(e);
        }
    };
    let kept_aside = if live_db.is_some() || live.exists() {
        let aside = aside_name(data_dir);
        if let Err(e) = std::fs::hard_link(&live, &aside) {
            let _ = std::fs::remove_file(&stage);
            return Err(e.into());
        }
        std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&stage, &live) {
        let _ = std::fs::remove_file(&stage);
        if let Some(a) = &kept_aside {
            let _ = std::fs::remove_file(a);
        }
        return Err(e.into());
    }
    sync_dir(data_dir)?;
    // Closes the replaced file (now only under its kept-aside name) and releases its lock.
    drop(live_db);
    Ok(RestoreReport { check, kept_aside })
}

/// Removes a restore's staging copy left by a restore that did not finish.
pub(crate) fn remove_leftover(data_dir: &Path) -> Result<bool, StoreError> {
    let p = data_dir.join(RESTORE_FILE);
    match std::fs::remove_file(&p) {
        Ok(()) => {
            sync_dir(data_dir)?;
            tracing::warn!(file = %p.display(), "removed the staging copy of a restore that did not finish");
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}
