//! The listening socket: systemd socket activation, or a socket of our own created
//! safely.
//!
//! Our own socket lives in a runtime directory created `0750`, or an existing one the
//! daemon's user owns and nobody else can write (else it refuses to bind, see
//! [`crate::private`]: whoever can write the directory can swap the socket). Its mode is
//! fixed by the umask *before* `bind`, so there is no window in which it is more open
//! than it should be (`0600` alone, `0660` with `socket_group`). A socket file already there is
//! replaced only after a connect to it fails: a live daemon's socket is never unlinked.
//! (The store is opened first, so a second daemon on the same data dir stops before it
//! gets here.)

use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, umask};
use nix::unistd::{Group, chown};

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another process answers on the socket path.
    #[error("another daemon is already listening on {0}; stop it first")]
    InUse(PathBuf),
    /// The configured group does not exist.
    #[error("socket_group `{0}` does not exist")]
    NoSuchGroup(String),
    /// A file system or socket call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The runtime directory is not the daemon's own, or others can write it.
    #[error(transparent)]
    RuntimeDir(#[from] crate::private::PrivateError),
    /// `LISTEN_FDS` was set but did not hold a Unix socket.
    #[error("socket activation: {0}")]
    Activation(String),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SocketError + 'a {
    move |source| SocketError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The socket systemd passed us (`LISTEN_FDS`), if any.
pub fn activated() -> Result<Option<std::os::unix::net::UnixListener>, SocketError> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    fds.take_unix_listener(0)
        .map_err(|e| SocketError::Activation(e.to_string()))
}

/// Creates the socket at `path`: `0660` owned by `group` when one is given, else `0600`.
pub fn bind(
    path: &Path,
    group: Option<&str>,
) -> Result<std::os::unix::net::UnixListener, SocketError> {
    let gid = match group {
        None => None,
        Some(g) => Some(
            Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| SocketError::NoSuchGroup(g.to_owned()))?
                .gid,
        ),
    };
    // Whoever can write the directory can replace the socket with their own: it must be
    // ours and writable by nobody else, whoever created it (`/tmp/steward-$UID` squatted).
    if let Some(dir) = path.parent() {
        use crate::private::{Dir, own_dir};
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        own_dir(dir, Dir::Runtime, gid)?;
    }
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(SocketError::InUse(path.to_owned())),
            Err(_) => {
                std::fs::remove_file(path).map_err(io("cannot remove the stale socket", path))?
            }
        }
    }
    let mask = if gid.is_some() { 0o117 } else { 0o177 };
    let old = umask(Mode::from_bits_truncate(mask));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(io("cannot bind", path))?;
    if let Some(gid) = gid {
        chown(path, None, Some(gid))
            .map_err(|e| io("cannot chown", path)(std::io::Error::from(e)))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(io("cannot set non-blocking", path))?;
    Ok(listener)
}

/// Removes our socket file at exit, if it is still ours (an inode check would be
/// stricter; the path is private to this daemon by the data-dir lock).
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::sync::Mutex;

    /// `bind` sets the process-wide umask around `bind(2)`; tests that bind at the same
    /// time would see each other's umask, so they take turns.
    static UMASK: Mutex<()> = Mutex::new(());

    #[test]
    fn private_socket_is_0600_in_a_0750_dir() {
        let _turn = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("run/steward.sock");
        let _l = bind(&p, None).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let d = std::fs::metadata(p.parent().unwrap()).unwrap();
        assert_eq!(d.permissions().mode() & 0o777, 0o750);
    }

    #[test]
    fn a_live_socket_is_not_replaced_but_a_stale_one_is() {
        let _turn = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.sock");
        let live = bind(&p, None).unwrap();
        assert!(matches!(bind(&p, None), Err(SocketError::InUse(_))));
        drop(live); // the file stays, nobody listens: stale
        assert!(p.exists());
        let _again = bind(&p, None).unwrap();
    }

    #[test]
    fn group_socket_is_0660() {
        let _turn = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("g.sock");
        let primary = Group::from_gid(nix::unistd::getgid())
            .unwrap()
            .unwrap()
            .name;
        let _l = bind(&p, Some(&primary)).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o660
        );
        assert!(matches!(
            bind(&t.path().join("x.sock"), Some("no-such-group-xyz")),
            Err(SocketError::NoSuchGroup(_))
        ));
    }
}
