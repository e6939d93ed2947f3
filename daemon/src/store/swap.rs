//! The swap that puts a finished copy of the store in place of the live file (what SQLite's
//! `VACUUM` does), and the retirement of the old file. The rewrite (the data-subject scrub,
//! compaction) copies beside the writer (`copy.rs`, `online.rs`), then swaps:
//!
//! 1. the copy is committed durably in `steward.redb.copy` ([`COPY_FILE`], created `0600`,
//!    `O_EXCL|O_NOFOLLOW`, [`create_copy`]) and closed to other writers;
//! 2. rename it over `steward.redb` and fsync the directory ([`swap_in`]): a crash before
//!    the rename leaves the old file (a leftover copy is removed at the next open,
//!    [`remove_leftover`]), after it the new one, never neither;
//! 3. open the new file and put it in the slot, so the writer and new readers move to it;
//!    readers already holding the old instance finish on their snapshot;
//! 4. once the last of them lets go ([`Retirement`], off the writer thread), overwrite the
//!    old file's bytes with zeros through a descriptor opened before the rename, fsync,
//!    close. The old name is already gone (the rename replaced it), so nothing of it is
//!    reachable under the data directory; the zeros keep its blocks from lingering readable
//!    in the file system's free space (best effort: a copy-on-write file system or an SSD's
//!    remapping may still keep old blocks, which only encryption at rest prevents).
//!
//! Not here: the copy itself (`copy.rs`), when to rewrite (`crate::dsr::scrub`,
//! `crate::timers::compact`), the catch-up (`online.rs`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::Database;

use super::copy::CopyCounts;
use super::error::{StoreError, WriteError};
use super::slot::DbSlot;

/// The copy being written, next to the live file (same directory, so the rename is atomic).
pub const COPY_FILE: &str = "steward.redb.copy";

/// What a rewrite did, for logs and the notes' pause figure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteReport {
    /// What was copied.
    pub copied: CopyCounts,
    /// Size of the file before, bytes.
    pub old_bytes: u64,
    /// Size of the new file, bytes.
    pub new_bytes: u64,
    /// How long writes waited: the catch-up of what committed during the copy and the
    /// swap (plus any wait for the copy once the catch-up journal was full).
    pub pause: Duration,
    /// The part of `pause` that writes waited for the copy itself because the catch-up
    /// journal was full (`StoreOptions::rewrite_journal_bytes`); zero when it never filled.
    pub journal_wait: Duration,
}

/// The old file after a rewrite, until its last reader lets go and its bytes are zeroed.
#[derive(Debug)]
pub struct Retirement {
    /// The thread that waits for the readers, then zeroes; returns the bytes zeroed.
    thread: Option<std::thread::JoinHandle<std::io::Result<u64>>>,
}

impl Retirement {
    /// Nothing to retire (a backend with no file of its own to zero).
    pub(crate) fn none() -> Retirement {
        Retirement { thread: None }
    }

    /// Waits until the old file's bytes are zeroed and synced; returns how many.
    pub fn wait(mut self) -> Result<u64, StoreError> {
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => Ok(r?),
            Some(Err(_)) => Err(StoreError::Io(std::io::Error::other(
                "the thread zeroing the old store file panicked",
            ))),
            None => Ok(0),
        }
    }
}

/// Removes a copy left by a rewrite that did not finish (the process died before the
/// rename). It holds only what the live file holds; the live file is never touched here.
pub(crate) fn remove_leftover(data_dir: &Path) -> Result<bool, StoreError> {
    let p = data_dir.join(COPY_FILE);
    match std::fs::symlink_metadata(&p) {
        Ok(_) => {
            std::fs::remove_file(&p)?;
            File::open(data_dir)?.sync_all()?;
            tracing::warn!(file = %p.display(), "removed the copy left by an unfinished store rewrite");
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the copy's file: `0600`, never through a symlink, never an existing file.
pub(crate) fn create_copy_file(path: &Path) -> Result<File, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?)
}

/// Swaps the finished copy at `dest` (committed; `new` is its open instance) in for the
/// live file (steps 2–4 of the module doc): renames it over the live name, fsyncs the directory, puts the new file
/// in the slot, and hands the old one to a [`Retirement`] that zeroes it once its last
/// reader is done. Runs on the writer thread between groups; `paused` is when writes
/// started waiting, for the report.
pub(crate) fn swap_in(
    slot: &DbSlot,
    dest: &Path,
    new: Database,
    old_bytes: u64,
    copied: CopyCounts,
    paused: Instant,
) -> Result<(RewriteReport, Retirement), WriteError> {
    let path = slot.path().to_path_buf();
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::Io(std::io::Error::other("the store file has no directory")))?
        .to_path_buf();
    // The old file, for zeroing once the readers are done: opened before the rename.
    let old_file = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(dest);
            return Err(StoreError::from(e).into());
        }
    };
    let retired = match slot.replace(|| Ok(std::fs::rename(dest, &path)?), Some(new)) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(dest);
            return Err(e.into());
        }
    };
    if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the data directory after the rewrite");
    }
    let pause = paused.elapsed();
    let new_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let thread = std::thread::Builder::new()
        .name("steward-retire".into())
        .spawn(move || zero_when_released(retired, old_file))
        .map_err(StoreError::from)?;
    Ok((
        RewriteReport {
            copied,
            old_bytes,
            new_bytes,
            pause,
            journal_wait: Duration::ZERO,
        },
        Retirement {
            thread: Some(thread),
        },
    ))
}

/// Creates the copy's file next to the live one ([`COPY_FILE`]): `0600`, never through a
/// symbolic link, replacing a leftover.
pub(crate) fn create_copy(slot: &DbSlot) -> Result<(PathBuf, File), StoreError> {
    let dir = slot
        .path()
        .parent()
        .ok_or_else(|| StoreError::Io(std::io::Error::other("the store file has no directory")))?;
    let dest = dir.join(COPY_FILE);
    let file = create_copy_file(&dest)?;
    Ok((dest, file))
}

/// Waits for every reader of `old` to let go (reads are short transactions), closes it, then
/// overwrites the file's bytes with zeros and syncs them.
fn zero_when_released(old: Option<Arc<Database>>, file: File) -> std::io::Result<u64> {
    if let Some(mut db) = old {
        loop {
            match Arc::try_unwrap(db) {
                // The last reference: closing writes redb's clean-shutdown header into the
                // old file, which the zeros below then cover. It may also trim free pages
                // off the file's end: those return to the file system unzeroed (not
                // reachable under the data dir; see the module doc on best effort).
                Ok(d) => {
                    drop(d);
                    break;
                }
                Err(still) => {
                    db = still;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    overwrite_with_zeros(&file)
}

/// Writes zeros over the whole of `file` in place and syncs it: what a scrub leaves of a
/// retired store file or of a DSR bundle before it is unlinked. Returns its length.
pub fn overwrite_with_zeros(file: &std::fs::File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_all()?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use redb::ReadableDatabase;
    use steward::model::AuditStatus;

    use super::*;
    use crate::store::copy::tests::{dump, seed};
    use crate::store::{
        AuditEntry, Kind, Store, StoreOptions, TenantRead, TenantWrite, system_caller, tables,
    };
    use crate::testing::tid;

    #[test]
    fn rewrite_swaps_in_the_copy_keeps_readers_and_zeroes_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        seed(&store);
        let before = dump(&store.redb_slot().get().unwrap());
        let reader = store.tenant(&tid("contoso"));
        let verified = reader.audit_verify().unwrap();
        // A reader in the middle of a read of the old file when the rewrite happens.
        let old = store.redb_slot().get().unwrap();
        let old_rtx = old.begin_read().unwrap();
        let mut old_file = File::open(store.path()).unwrap();

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let job = |txn: &mut dyn TenantWrite| {
            txn.audit(AuditEntry::named(
                system_caller(),
                "test.rewrite",
                AuditStatus::Succeeded,
            ));
            Ok(())
        };
        let (report, retirement) = rt
            .block_on(store.writer().rewrite(vec![(tid("contoso"), job)]))
            .unwrap();
        assert_eq!(report.copied.tables.len(), before.len());
        assert!(report.new_bytes <= report.old_bytes, "{report:?}");
        assert!(!dir.path().join(COPY_FILE).exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        // The old reader still reads its snapshot.
        let t = old_rtx.open_table(tables::RECORDS).unwrap();
        assert!(
            t.get(("contoso", Kind::Alert.as_u8(), "a0001"))
                .unwrap()
                .is_some()
        );
        drop(t);
        drop(old_rtx);
        // New reads see the new file: the same records plus the job's audit record.
        let after = reader.audit_verify().unwrap();
        assert!(after.ok);
        assert_eq!(after.records, verified.records + 1);
        let mut now = dump(&store.redb_slot().get().unwrap());
        let mut then = before.clone();
        for d in [&mut now, &mut then] {
            d.retain(|(n, _)| !n.starts_with("audit"));
        }
        assert_eq!(now, then, "the records and meta (HMAC key) are the same");
        // The old file is zeroed once its last reader lets go.
        drop(old);
        let zeroed = retirement.wait().unwrap();
        // redb may trim free space off the end of the file when it closes it.
        assert!(
            zeroed > 0 && zeroed <= report.old_bytes,
            "{zeroed} of {}",
            report.old_bytes
        );
        let mut bytes = Vec::new();
        old_file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, zeroed);
        assert!(
            bytes.iter().all(|b| *b == 0),
            "the old file still holds data"
        );
        // Writes go on in the new file.
        store
            .writer()
            .write_blocking(&tid("contoso"), |txn: &mut dyn TenantWrite| {
                txn.audit(AuditEntry::named(
                    system_caller(),
                    "test.after",
                    AuditStatus::Succeeded,
                ));
                Ok::<_, WriteError>(())
            })
            .unwrap();
        drop(reader);
        drop(store);
        assert!(Store::verify(dir.path()).unwrap().audit_records > 0);
    }
}
