//! One tenant's spool directory, as a handle the daemon opened itself: opening the root
//! and the tenant directory, the daemon's own `done/` and `rejected/` (an impostor moved
//! aside), listing, reading a file with every refusal the module doc lists, and the moves
//! to `done/` or `rejected/`. Every call goes through a directory handle, never a path
//! looked at earlier. Not here: what a file's content means (`take`).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, geteuid, unlinkat};
use steward::names::TenantId;

use super::names::{candidate, shown, valid_name};
use super::{DONE, REJECTED, SpoolError};

/// Mode of a spool root the daemon creates: sources pass through, nobody lists tenants.
const ROOT_MODE: u32 = 0o711;
/// Mode of a tenant directory the daemon creates: closed until the operator opens it.
const TENANT_MODE: u32 = 0o700;
/// Mode of `done/` and `rejected/`, the daemon's own.
const OWN_MODE: u32 = 0o750;
/// Mode of a `.error` file.
const ERROR_MODE: u32 = 0o640;
/// Longest name a Linux file system takes.
const NAME_MAX: usize = 255;

/// A directory entry as the worker remembers it: inode and name.
pub(super) type FileKey = (u64, Vec<u8>);

/// An open tenant directory.
pub(super) struct TenantDir {
    /// `<spool>/<tenant>`, for messages only.
    path: PathBuf,
    /// The handle every operation in it goes through.
    fd: OwnedFd,
}

/// A file found in a tenant directory.
pub(super) struct Found {
    /// Its inode (from the listing: only to remember it) and its name.
    pub(super) key: FileKey,
}

/// Device and inode of an opened file: the move checks that the name still is that file.
pub(super) type FileId = (u64, u64);

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
    pub(super) fn open(root: &Path, tenant: &TenantId) -> Result<TenantDir, SpoolError> {
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
    pub(super) fn own(&self, name: &str) -> Result<OwnedFd, SpoolError> {
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
    pub(super) fn list(&self) -> Result<Vec<Found>, SpoolError> {
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
    pub(super) fn read(&self, name: &[u8], limit: usize) -> Result<(FileId, Vec<u8>), Refusal> {
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
    pub(super) fn finish(&self, name: &[u8], id: Option<FileId>) -> Result<bool, String> {
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
    pub(super) fn reject(
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
pub(super) enum Refusal {
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
