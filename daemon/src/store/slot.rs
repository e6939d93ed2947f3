//! [`DbSlot`]: the one place that holds the open `redb::Database`, so that it can be closed
//! and opened again without restarting the daemon.
//!
//! Why: after an I/O error (typically ENOSPC when a commit grows the file on a full disk)
//! redb latches the instance: every later transaction, and any read that misses its cache,
//! fails with `PreviousIo` ("close and re-open the database"). The cure is what the message
//! says. redb holds an exclusive lock on the file per open instance, so the old instance must
//! be fully dropped before a new one can open; every user therefore takes a short-lived
//! `Arc<Database>` from the slot per transaction ([`DbSlot::get`]) instead of keeping one.
//!
//! Reopening is safe for data: redb's commit is atomic, so the reopened file shows exactly the
//! last committed state — every acknowledged write, nothing of a failed one. Not here: what
//! is read or written (`read.rs`, `writer.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redb::Database;

use super::error::StoreError;

/// How long a reopen waits for readers to let go of the old instance before giving up (the
/// next write, or the next read that fails, tries again). Reads are short transactions.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// The shared, replaceable database instance.
#[derive(Debug)]
pub(crate) struct DbSlot {
    /// The open instance; `None` between closing a broken one and opening its successor, or
    /// after a reopen failed (e.g. the repair could not write on a still-full disk).
    db: ArcSwapOption<Database>,
    /// The database file.
    path: PathBuf,
    /// Serialises reopens (writer thread and readers may both ask for one).
    reopen: Mutex<()>,
    /// The instance broke because the disk was full: a `PreviousIo` from it, or a failed
    /// reopen, means "storage full" to the caller. Cleared by a successful reopen.
    broke_full: AtomicBool,
}

/// redb's page cache. Its default (1 GiB) let the daemon's RSS grow with the store (290
/// MiB after ingesting 100k alerts); the kernel's page cache already keeps the file's hot
/// pages, so a small cache keeps the daemon's memory flat at the cost of a `pread` on a
/// miss (docs/PERFORMANCE.md).
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Opens (or creates) the database file. redb may panic on some damaged files; a panic must
/// not take the daemon down, so it becomes [`StoreError::Corrupted`].
pub(crate) fn open_database(path: &Path) -> Result<Database, StoreError> {
    let created =
        std::panic::catch_unwind(|| Database::builder().set_cache_size(CACHE_BYTES).create(path))
            .map_err(|_| {
            StoreError::Corrupted(format!("{}: redb could not read the file", path.display()))
        })?;
    created.map_err(|e| open_error(path, e))
}

/// Runs `f` on a just-opened `db` of the file at `path` that may be damaged: redb panics
/// on some damage instead of returning an error, and a panic becomes
/// [`StoreError::Corrupted`] saying `what` could not be done.
///
/// After such a panic the instance is leaked, not dropped: the panic poisoned redb's locks
/// and its `Drop` panics again (`PoisonError` in `page_manager.rs`, seen in CI), which would
/// end the process before it says what is wrong. The leak keeps one file descriptor and the
/// file's lock until the process exits; nothing reopens a store whose open failed, and the
/// daemon or `verify-store` exits with the error.
pub(crate) fn guarded<T>(
    mut db: Database,
    path: &Path,
    what: &str,
    f: impl FnOnce(&mut Database) -> T,
) -> Result<(Database, T), StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut db))) {
        Ok(t) => Ok((db, t)),
        Err(_) => {
            std::mem::forget(db);
            Err(StoreError::Corrupted(format!("{}: {what}", path.display())))
        }
    }
}

/// The builder every instance of the store is opened with (the live file and a copy).
pub(crate) fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_cache_size(CACHE_BYTES);
    b
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
            path: path.to_path_buf(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            StoreError::Corrupted(format!("{}: {io}", path.display()))
        }
        other => match StoreError::from(other) {
            StoreError::Corrupted(m) => StoreError::Corrupted(format!("{}: {m}", path.display())),
            e => e,
        },
    }
}

impl DbSlot {
    /// Wraps a freshly opened instance of the file at `path`.
    pub(crate) fn new(db: Database, path: &Path) -> DbSlot {
        DbSlot {
            db: ArcSwapOption::new(Some(Arc::new(db))),
            path: path.to_path_buf(),
            reopen: Mutex::new(()),
            broke_full: AtomicBool::new(false),
        }
    }

    /// The open instance, for one transaction: drop it when the transaction ends (holding it
    /// blocks a reopen). If the slot is empty after a failed reopen, tries to open it now.
    pub(crate) fn get(&self) -> Result<Arc<Database>, StoreError> {
        match self.db.load_full() {
            Some(db) => Ok(db),
            None => self.reopen(None),
        }
    }

    /// Runs a read against the open instance; if the instance turns out to be broken by an
    /// earlier I/O error, reopens it and runs the read once more.
    pub(crate) fn read<T>(
        &self,
        mut f: impl FnMut(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.get()?;
        match f(&db) {
            Err(e) if e.breaks_instance() => {
                let db = self.reopen(Some(db))?;
                f(&db)
            }
            r => r,
        }
    }

    /// The error to give a caller for `e`, which came from the current instance: a
    /// `PreviousIo` of an instance that broke on a full disk is [`StoreError::StorageFull`].
    /// Remembers when the instance broke on a full disk.
    pub(crate) fn classify(&self, e: StoreError) -> StoreError {
        if matches!(e, StoreError::StorageFull) {
            self.broke_full.store(true, Ordering::SeqCst);
            return e;
        }
        if e.is_previous_io() && self.broke_full.load(Ordering::SeqCst) {
            return StoreError::StorageFull;
        }
        e
    }

    /// Closes `broken` (the instance that failed) and opens the file again, unless someone
    /// already did; `None` means "only if the slot is empty". Waits (bounded) for every other
    /// user of the old instance to drop it; if they do not, the old instance is put back and
    /// the error says so — the next failure tries again.
    pub(crate) fn reopen(
        &self,
        broken: Option<Arc<Database>>,
    ) -> Result<Arc<Database>, StoreError> {
        // Compare by address only and let go of our own reference first: a caller waiting
        // here must not hold the instance the reopen is waiting to close.
        let broken_at = broken.map(|b| Arc::as_ptr(&b));
        let _guard = self
            .reopen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(current) = self.db.load_full() {
            let is_broken = broken_at.is_some_and(|p| std::ptr::eq(p, Arc::as_ptr(&current)));
            if !is_broken {
                // Already reopened by someone else (or nothing to do).
                return Ok(current);
            }
        }
        if let Some(old) = self.db.swap(None) {
            let deadline = Instant::now() + DRAIN_WAIT;
            while Arc::strong_count(&old) > 1 {
                if Instant::now() >= deadline {
                    self.db.store(Some(old));
                    return Err(StoreError::Io(std::io::Error::other(
                        "the database must be reopened after an I/O error, \
                         but readers still hold it; try again",
                    )));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            tracing::warn!(path = %self.path.display(), "reopening the database after an I/O error");
            // The last reference: this closes the file and releases its lock.
            drop(old);
        }
        match open_database(&self.path) {
            Ok(db) => {
                let db = Arc::new(db);
                self.db.store(Some(db.clone()));
                self.broke_full.store(false, Ordering::SeqCst);
                tracing::info!(path = %self.path.display(), "database reopened");
                Ok(db)
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot reopen the database yet");
                Err(self.classify(e))
            }
        }
    }
}

impl DbSlot {
    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the open instance after `install` put a new file at the path (`copy.rs`:
    /// a rename), holding off reopens meanwhile so none opens the old name first. `new` is
    /// the new file's instance when the caller still has it open (a rename keeps it valid),
    /// else the file is opened. Returns the old instance, which readers may still hold. If
    /// `install` fails nothing changed; once it succeeded the old instance is never served
    /// again: if the new file cannot be opened now, the slot is left empty and the next use
    /// opens it.
    pub(crate) fn replace(
        &self,
        install: impl FnOnce() -> Result<(), StoreError>,
        new: Option<Database>,
    ) -> Result<Option<Arc<Database>>, StoreError> {
        let _guard = self
            .reopen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        install()?;
        let old = self.db.swap(None);
        match new.map_or_else(|| open_database(&self.path), Ok) {
            Ok(db) => {
                self.db.store(Some(Arc::new(db)));
                self.broke_full.store(false, Ordering::SeqCst);
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot open the rewritten database yet");
            }
        }
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_waits_for_readers_and_replaces_the_instance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let slot = DbSlot::new(open_database(&path).unwrap(), &path);
        let first = slot.get().unwrap();
        let first_at = Arc::as_ptr(&first);
        // A reader still holds the instance: the reopen gives up and puts it back.
        let holder = slot.get().unwrap();
        assert!(slot.reopen(Some(first)).is_err());
        assert!(std::ptr::eq(Arc::as_ptr(&slot.get().unwrap()), first_at));
        drop(holder);
        // Nobody holds it: a new instance of the same file (the lock was released).
        let old = slot.get().unwrap();
        let new = slot.reopen(Some(old)).unwrap();
        assert!(!std::ptr::eq(Arc::as_ptr(&new), first_at));
        // A stale reopen request (for an instance already replaced) changes nothing.
        let again = slot.reopen(None).unwrap();
        assert!(Arc::ptr_eq(&again, &new));
    }

    #[test]
    fn previous_io_after_a_full_disk_is_storage_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let slot = DbSlot::new(open_database(&path).unwrap(), &path);
        let prev = || StoreError::from(redb::Error::PreviousIo);
        assert!(slot.classify(prev()).is_previous_io());
        assert!(matches!(
            slot.classify(StoreError::StorageFull),
            StoreError::StorageFull
        ));
        assert!(matches!(slot.classify(prev()), StoreError::StorageFull));
        let db = slot.get().unwrap();
        slot.reopen(Some(db)).unwrap();
        assert!(slot.classify(prev()).is_previous_io());
    }
}
