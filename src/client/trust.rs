//! The checks behind [`ClientError::Untrusted`]: before connecting, the socket's
//! directory; after connecting and before sending a byte, the listener's uid.
//!
//! Under the default per-user path ([`default_socket_path`]) the directory must be a
//! real directory the caller owns that nobody else can write, and the listener must run
//! as the caller or root. Under any other (configured) path the directory must be
//! writable by its owner alone (group-writable is refused too: the socket's own mode and
//! `socket_group` are what grant access, never the directory), and the listener must
//! run as the directory's owner or as root (root: a daemon run as root, or systemd
//! holding an activated socket). Root is trusted on the host anyway.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use super::{Untrusted, default_socket_path};

/// Who may be listening, decided from the socket's directory before connecting.
#[derive(Debug, Clone)]
pub(super) enum Expect {
    /// The caller (or root): the default per-user path.
    Caller(u32),
    /// The owner of the socket's directory (or root): a configured path. `None` when
    /// the directory did not exist (then only root: whoever creates it meanwhile
    /// is not the daemon).
    DirOwner {
        /// The directory's owner.
        owner: Option<u32>,
        /// The directory, for the message.
        dir: PathBuf,
    },
}

/// Checks the socket's directory and says whose listener to accept.
pub(super) fn expected(socket: &Path) -> Result<Expect, Untrusted> {
    let dir = match socket.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let me = nix::unistd::geteuid().as_raw();
    let default = socket == default_socket_path();
    let absent = |dir: PathBuf| {
        if default {
            Expect::Caller(me)
        } else {
            Expect::DirOwner { owner: None, dir }
        }
    };
    // No socket: connect will say so (ENOENT); should one appear meanwhile, only a
    // listener of the expected user passes `check_peer`.
    if let Err(e) = std::fs::symlink_metadata(socket)
        && e.kind() == std::io::ErrorKind::NotFound
    {
        return Ok(absent(dir));
    }
    let meta = if default {
        std::fs::symlink_metadata(&dir)
    } else {
        std::fs::metadata(&dir)
    };
    let meta = match meta {
        Ok(m) => m,
        // No directory, no socket: let connect report it as unreachable.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(absent(dir)),
        Err(e) => {
            return Err(Untrusted::Unverifiable {
                what: format!("its directory {}", dir.display()),
                error: e.to_string(),
            });
        }
    };
    if meta.file_type().is_symlink() {
        return Err(Untrusted::DirIsLink { dir });
    }
    if default && meta.uid() != me {
        return Err(Untrusted::DirNotYours {
            dir,
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Untrusted::DirWritable { dir, mode });
    }
    Ok(if default {
        Expect::Caller(me)
    } else {
        Expect::DirOwner {
            owner: Some(meta.uid()),
            dir,
        }
    })
}

/// Checks the listener's uid (`SO_PEERCRED`) against what the directory promised.
pub(super) fn check_peer(stream: &UnixStream, expect: Expect) -> Result<(), Untrusted> {
    let peer = stream
        .peer_cred()
        .map_err(|e| Untrusted::Unverifiable {
            what: "the listening process's credentials".into(),
            error: e.to_string(),
        })?
        .uid();
    match expect {
        _ if peer == 0 => Ok(()),
        Expect::Caller(me) if peer == me => Ok(()),
        Expect::Caller(me) => Err(Untrusted::PeerNotYou { peer, me }),
        Expect::DirOwner { owner, .. } if owner == Some(peer) => Ok(()),
        Expect::DirOwner { owner, dir } => Err(Untrusted::PeerNotOwner { peer, dir, owner }),
    }
}
