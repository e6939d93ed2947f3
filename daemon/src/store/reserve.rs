//! [`Reserve`]: disk space kept back so that refusals can still be audited on a full disk.
//!
//! A refusal (a denied attempt) must commit its audit record before it is answered, or the
//! request fails (507). On a full disk that would turn every 403 into a 507 and leave no
//! trace of the attempts. So the store keeps a file of [`RESERVE_BYTES`] really allocated
//! blocks in the data directory (`audit-reserve`). When a refusal's record fails with
//! "storage full", the file is deleted and the record tried once more: redb (reopened after
//! the I/O error, `slot.rs`) now has room to grow into. While the reserve is released, every
//! other write is refused with "storage full" before it runs ([`Reserve::admit`]), so only
//! refusals use the space; each such write first tries to re-create the reserve, which
//! succeeds once space has returned, and then proceeds.
//!
//! Limits: a write already queued when the reserve is released may use some of it; the
//! reserve holds a few hundred small records, and denials are coalesced
//! (`crate::denials`), so it outlasts any flood; when it is used up, refusals answer 507.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::StoreError;

/// Size of the reserve file.
pub const RESERVE_BYTES: u64 = 1024 * 1024;

/// The reserve file's name in the data directory.
pub const RESERVE_FILE: &str = "audit-reserve";

/// The reserve file and whether it is in place.
#[derive(Debug)]
pub(crate) struct Reserve {
    /// `data_dir/audit-reserve`.
    path: PathBuf,
    /// The file is in place with all its blocks.
    present: AtomicBool,
    /// Serialises creating and deleting the file.
    busy: Mutex<()>,
}

impl Reserve {
    /// Puts the reserve in place in `data_dir` (keeping a complete one from an earlier run).
    /// A disk too full for it leaves it released, with a warning.
    pub(crate) fn open(data_dir: &Path) -> Reserve {
        let r = Reserve {
            path: data_dir.join(RESERVE_FILE),
            present: AtomicBool::new(false),
            busy: Mutex::new(()),
        };
        let complete = std::fs::metadata(&r.path).is_ok_and(|m| m.len() == RESERVE_BYTES);
        if complete {
            r.present.store(true, Ordering::SeqCst);
        } else if !r.restore() {
            tracing::warn!(path = %r.path.display(), "no room for the audit space reserve");
        }
        r
    }

    /// Whether an ordinary write may run: yes while the reserve is in place, or once it
    /// could be re-created; otherwise [`StoreError::StorageFull`].
    pub(crate) fn admit(&self) -> Result<(), StoreError> {
        if self.present.load(Ordering::SeqCst) || self.restore() {
            Ok(())
        } else {
            Err(StoreError::StorageFull)
        }
    }

    /// Deletes the reserve file so a refusal's record can use its space. `false` when there
    /// was none to free.
    pub(crate) fn release(&self) -> bool {
        let _guard = self.lock();
        if !self.present.swap(false, Ordering::SeqCst) {
            return false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::warn!(path = %self.path.display(),
                    "the disk is full: the audit space reserve is released for refusals; \
                     other writes are refused until it can be re-created");
                true
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e,
                    "cannot release the audit space reserve");
                false
            }
        }
    }

    /// Creates the reserve file with all its blocks allocated (written under a temporary
    /// name, then renamed); `true` when it is in place.
    fn restore(&self) -> bool {
        let Ok(_guard) = self.busy.try_lock() else {
            return self.present.load(Ordering::SeqCst);
        };
        if self.present.load(Ordering::SeqCst) {
            return true;
        }
        let tmp = self.path.with_extension("tmp");
        match allocate(&tmp).and_then(|()| std::fs::rename(&tmp, &self.path)) {
            Ok(()) => {
                self.present.store(true, Ordering::SeqCst);
                tracing::info!(path = %self.path.display(), "audit space reserve in place");
                true
            }
            Err(_) => {
                let _ = std::fs::remove_file(&tmp);
                false
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Writes [`RESERVE_BYTES`] to `path` and syncs it: written bytes, not a sparse length, so
/// the space is really taken (on every file system, tmpfs included). `0600` whatever the
/// process's umask (`steward demo` runs the daemon in a process that keeps the user's),
/// never through a symbolic link.
fn allocate(path: &Path) -> std::io::Result<()> {
    let mut f = super::backup::create_private(path, true)?;
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut left = RESERVE_BYTES;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn released_reserve_refuses_until_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reserve::open(dir.path());
        let file = dir.path().join(RESERVE_FILE);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), RESERVE_BYTES);
        assert!(r.admit().is_ok());
        assert!(r.release());
        assert!(!file.exists());
        assert!(!r.release(), "nothing left to release");
        // Space is there: an ordinary write re-creates it and proceeds.
        assert!(r.admit().is_ok());
        assert_eq!(std::fs::metadata(&file).unwrap().len(), RESERVE_BYTES);
    }

    #[test]
    fn the_reserve_is_private_whatever_was_there_and_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(RESERVE_FILE);
        // A reserve left world-readable (by a process with umask 022, as `steward demo`
        // was) is made 0600 when it is written again.
        std::fs::write(&file, b"old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _r = Reserve::open(dir.path());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A symbolic link in its place is not written through.
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&target, &file).unwrap();
        assert!(allocate(&file).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
