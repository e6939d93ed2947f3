//! The daemon's own files and their modes: the data directory, the store file, the log
//! directory and the runtime (socket) directory.
//!
//! On a host shared by many OS users these hold every tenant's data and the HMAC key, so
//! the daemon does not trust the umask it was started with (DESIGN.md "Threat model"):
//! what it creates gets an explicit mode (directories `0700`, the store `0600`; the runtime
//! directory `0750` so a `socket_group` can reach the socket), and what already exists is
//! checked the way ssh checks a private key. It refuses to start, naming the path and the
//! fix, on a directory another user owns or can write, and on a store file another user
//! owns or can read or write; a data or log directory that others can merely list is
//! tightened to `0700`, and the caller logs that it was.
//!
//! Each check works on a handle (`open`, then `fstat`/`fchmod` on it), so the object
//! checked is the object changed. Only the daemon's own directories are checked, not their
//! parents (`/var/lib`, `/run` belong to root and are fine); a symbolic link given as one
//! of them is followed and its target checked. The store file itself is never followed
//! through a symbolic link.
//!
//! Not here: the spool directories (their modes are the deployment's spool group's
//! business, see `ingest::spool`) and the socket file's own mode (`socket`).

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, geteuid};

/// Permission bits that let a user other than the owner write.
const OTHERS_WRITE: u32 = 0o022;
/// Permission bits of anyone but the owner.
const OTHERS_ANY: u32 = 0o077;

/// Which of the daemon's directories a check is about (it names it in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `[daemon] data_dir`: the store, DSR bundles.
    Data,
    /// `[daemon] log_dir`: operational logs.
    Log,
    /// The directory holding the socket the daemon binds itself.
    Runtime,
}

impl Dir {
    /// The directory's name in messages.
    fn what(self) -> &'static str {
        match self {
            Dir::Data => "the data directory",
            Dir::Log => "the log directory",
            Dir::Runtime => "the runtime (socket) directory",
        }
    }
}

/// Why one of the daemon's own files or directories is not safe to use. Each message
/// names the path and the command that fixes it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateError {
    /// Another user owns it: they could read, replace or remove what the daemon keeps there.
    #[error(
        "{what} {} is owned by uid {owner}, not by the daemon's user (uid {me}): refusing to start; fix: if it is the daemon's, `chown {me} {}`; if not, another user created it first: remove it or configure another path",
        path.display(), path.display()
    )]
    NotOwned {
        /// What it is.
        what: &'static str,
        /// The path, as configured.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The daemon's effective uid.
        me: u32,
    },
    /// A directory others can write: they could put their own files (or a socket) there,
    /// or remove the daemon's.
    #[error(
        "{what} {} is writable by other users (mode {mode:04o}): refusing to start; fix: `chmod go-w {}`",
        path.display(), path.display()
    )]
    WritableByOthers {
        /// What it is.
        what: &'static str,
        /// The path, as configured.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The store file can be read or written by other users.
    #[error(
        "the store {} can be read or written by other users (mode {mode:04o}): refusing to start; fix: `chmod 600 {}`, and treat its contents (contacts, the HMAC key) as disclosed",
        path.display(), path.display()
    )]
    StoreExposed {
        /// The store file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not what it should be (a file where a directory belongs, a symbolic
    /// link or a device where the store belongs).
    #[error("{what} {} {is}: refusing to start; fix: move it away", path.display())]
    WrongKind {
        /// What it should be.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What it is instead.
        is: &'static str,
    },
    /// A file system call failed.
    #[error("{what} {}: cannot {action}: {source}", path.display())]
    Io {
        /// What it is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// What a directory check did, for the caller to log once logging runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// It did not exist and was created with its mode.
    Created,
    /// It existed and was fine as it was.
    Kept,
    /// It existed and others could list it: its mode was this and is now `0700`.
    Tightened {
        /// The mode it had.
        was: u32,
    },
}

impl DirState {
    /// Logs a tightening (one warning line); nothing for the other outcomes.
    pub fn log(self, which: Dir, path: &Path) {
        if let DirState::Tightened { was } = self {
            tracing::warn!(
                path = %path.display(),
                was = %format!("{was:04o}"),
                "{} could be listed by other users; its mode is now 0700",
                which.what()
            );
        }
    }
}

/// Makes sure `path` is a directory of the daemon's own that nobody else can write,
/// creating it (and missing parents) when absent. A data or log directory ends `0700`
/// (created so, or tightened from a mode that let others list it); a runtime directory is
/// created `0750` with group `group`, and an existing one is left as it is when safe.
pub fn own_dir(path: &Path, which: Dir, group: Option<Gid>) -> Result<DirState, PrivateError> {
    let what = which.what();
    let io = |action| io_error(what, path, action);
    let wanted = match which {
        Dir::Runtime => 0o750,
        Dir::Data | Dir::Log => 0o700,
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(io("create its parent directories"))?;
    }
    let created = match std::fs::DirBuilder::new().mode(wanted).create(path) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) => return Err(io("create it")(e)),
    };
    // From here on, the handle: whatever the path names now is what is checked and set.
    let dir = File::open(path).map_err(io("open it"))?;
    let mode = own_kind(what, path, &dir, Metadata::is_dir, "is not a directory")?;
    if created {
        // The mode asked of mkdir went through the umask: set it exactly.
        if let Some(gid) = group {
            nix::unistd::fchown(&dir, None, Some(gid))
                .map_err(|e| io("set its group")(std::io::Error::from(e)))?;
        }
        dir.set_permissions(Permissions::from_mode(wanted))
            .map_err(io("set its mode"))?;
        return Ok(DirState::Created);
    }
    if mode & OTHERS_WRITE != 0 {
        return Err(PrivateError::WritableByOthers {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    if which != Dir::Runtime && mode & OTHERS_ANY != 0 {
        dir.set_permissions(Permissions::from_mode(0o700))
            .map_err(io("tighten its mode to 0700"))?;
        return Ok(DirState::Tightened { was: mode });
    }
    Ok(DirState::Kept)
}

/// Makes sure the store file `path` (inside a directory already checked by [`own_dir`]) is
/// a regular file of the daemon's own that nobody else can read or write: created `0600`
/// when absent (empty; redb initialises an empty file), refused otherwise. Never follows a
/// symbolic link.
pub fn store_file(path: &Path) -> Result<(), PrivateError> {
    let what = "the store";
    let io = |action| io_error(what, path, action);
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    let (file, created) = match options.clone().create_new(true).open(path) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match options.open(path) {
            Ok(f) => (f, false),
            // O_NOFOLLOW on a symbolic link.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(PrivateError::WrongKind {
                    what,
                    path: path.to_owned(),
                    is: "is a symbolic link",
                });
            }
            Err(e) => return Err(io("open it")(e)),
        },
        Err(e) => return Err(io("create it")(e)),
    };
    let mode = own_kind(
        what,
        path,
        &file,
        Metadata::is_file,
        "is not a regular file",
    )?;
    if created {
        // The mode asked of open went through the umask: set it exactly.
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io("set its mode"))?;
        return Ok(());
    }
    if mode & OTHERS_ANY != 0 {
        return Err(PrivateError::StoreExposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// The [`PrivateError::Io`] of `action` on `what` at `path`.
fn io_error(
    what: &'static str,
    path: &Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> PrivateError {
    let path = path.to_owned();
    move |source| PrivateError::Io {
        what,
        path,
        action,
        source,
    }
}

/// The permission bits of the object `handle` opened at `path`, once it is the kind
/// `is_kind` accepts (else refused as what `not` says it is) and the daemon's own.
fn own_kind(
    what: &'static str,
    path: &Path,
    handle: &File,
    is_kind: fn(&Metadata) -> bool,
    not: &'static str,
) -> Result<u32, PrivateError> {
    let meta = handle
        .metadata()
        .map_err(io_error(what, path, "read its owner and mode"))?;
    if !is_kind(&meta) {
        return Err(PrivateError::WrongKind {
            what,
            path: path.to_owned(),
            is: not,
        });
    }
    owned_by_me(what, path, &meta)?;
    Ok(meta.mode() & 0o7777)
}

/// Refuses what another user owns: whoever owns a file or directory can change its mode.
fn owned_by_me(
    what: &'static str,
    path: &Path,
    meta: &std::fs::Metadata,
) -> Result<(), PrivateError> {
    let me = geteuid().as_raw();
    if meta.uid() == me {
        return Ok(());
    }
    Err(PrivateError::NotOwned {
        what,
        path: path.to_owned(),
        owner: meta.uid(),
        me,
    })
}

/// Sets every regular file of the daemon's own directly in `dir` whose name starts with
/// `prefix` to `0600` when others could read it (log files written by an earlier start
/// under a looser umask). Returns the files changed, for the caller to log.
pub fn tighten_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut changed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return changed;
    };
    let me = geteuid().as_raw();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if meta.is_file()
            && meta.uid() == me
            && meta.mode() & OTHERS_ANY != 0
            && file.set_permissions(Permissions::from_mode(0o600)).is_ok()
        {
            changed.push(path);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_missing_dir_is_created_with_its_exact_mode_whatever_the_umask() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a/b/data");
        assert_eq!(own_dir(&p, Dir::Data, None).unwrap(), DirState::Created);
        assert_eq!(mode(&p), 0o700);
        let r = t.path().join("run");
        assert_eq!(own_dir(&r, Dir::Runtime, None).unwrap(), DirState::Created);
        assert_eq!(mode(&r), 0o750);
    }

    #[test]
    fn a_listable_dir_is_tightened_a_writable_one_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("logs");
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            own_dir(&p, Dir::Log, None).unwrap(),
            DirState::Tightened { was: 0o755 }
        );
        assert_eq!(mode(&p), 0o700);
        assert_eq!(own_dir(&p, Dir::Log, None).unwrap(), DirState::Kept);
        for m in [0o770, 0o702, 0o1777] {
            std::fs::set_permissions(&p, Permissions::from_mode(m)).unwrap();
            let e = own_dir(&p, Dir::Data, None).unwrap_err();
            assert!(
                matches!(e, PrivateError::WritableByOthers { .. }),
                "{m:o}: {e}"
            );
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
            assert!(e.to_string().contains("chmod go-w"), "{e}");
        }
        // A runtime dir others may list (a socket group's search permission) is kept.
        std::fs::set_permissions(&p, Permissions::from_mode(0o750)).unwrap();
        assert_eq!(own_dir(&p, Dir::Runtime, None).unwrap(), DirState::Kept);
        assert_eq!(mode(&p), 0o750);
    }

    #[test]
    fn a_file_where_a_dir_belongs_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(
            own_dir(&p, Dir::Data, None),
            Err(PrivateError::WrongKind { .. })
        ));
    }

    #[test]
    fn the_store_is_created_0600_and_refused_when_exposed_or_a_link() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("steward.redb");
        store_file(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        store_file(&p).unwrap();
        for m in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&p, Permissions::from_mode(m)).unwrap();
            let e = store_file(&p).unwrap_err();
            assert!(matches!(e, PrivateError::StoreExposed { .. }), "{m:o}: {e}");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        let link = t.path().join("link.redb");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(matches!(
            store_file(&link),
            Err(PrivateError::WrongKind { .. })
        ));
    }

    #[test]
    fn readable_log_files_are_tightened() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("stewardd.2026-01-01.log");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        let other = t.path().join("notes.txt");
        std::fs::write(&other, b"x").unwrap();
        std::fs::set_permissions(&other, Permissions::from_mode(0o644)).unwrap();
        assert_eq!(tighten_files(t.path(), "stewardd"), vec![f.clone()]);
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&other), 0o644);
    }
}
