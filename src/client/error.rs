//! Why a request failed: [`ClientError`], with the daemon's own error body as [`ApiError`]
//! and a socket refused before a byte was sent as [`Untrusted`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;

/// An error answered by the daemon: a non-2xx status with the API's error body
/// `{"error": {"code", "message", "target"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    /// The HTTP status (it decides the CLI's exit code).
    pub status: StatusCode,
    /// The error code (`forbidden`, `not_found`, …), or the status text when the body
    /// was not the API's error shape.
    pub code: String,
    /// The daemon's message (for 403 it names the permission needed).
    pub message: String,
    /// The field path a validation error is about (`properties.emails`).
    pub target: Option<String>,
}

impl ApiError {
    /// Reads the error body of a response. A body that is not the API's error shape
    /// (a proxy, an older daemon, a plain-text 431) falls back to the status text and
    /// the body's text.
    pub fn from_body(status: StatusCode, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            code: String,
            message: String,
            #[serde(default)]
            target: Option<String>,
        }
        let reason = status.canonical_reason().unwrap_or("error");
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => Self {
                status,
                code: error.code,
                message: error.message,
                target: error.target,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                Self {
                    status,
                    code: reason.to_lowercase().replace(' ', "_"),
                    message: if text.is_empty() || text.len() > 500 {
                        reason.to_lowercase()
                    } else {
                        text.to_owned()
                    },
                    target: None,
                }
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(target) = &self.target {
            write!(f, " (at {target})")?;
        }
        Ok(())
    }
}

/// Why a request did not produce a response the caller can use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket could not be connected: it does not exist (the daemon is not running
    /// or listens elsewhere), nobody accepts on it, or the caller may not open it.
    #[error(
        "cannot reach the steward daemon at {}: {source} (is stewardd running, and is this its socket?)",
        socket.display()
    )]
    Unreachable {
        /// The socket path that was tried.
        socket: PathBuf,
        /// The connect error (ENOENT, ECONNREFUSED, EACCES, …).
        #[source]
        source: std::io::Error,
    },
    /// The socket is not the daemon its path promises (a squatted directory, a listener
    /// run by another user): nothing was sent. The CLI treats it as unreachable (exit 6).
    #[error("refusing to talk to the daemon at {}: {reason}", socket.display())]
    Untrusted {
        /// The socket path that was tried.
        socket: PathBuf,
        /// What is wrong with it.
        reason: Untrusted,
    },
    /// The HTTP exchange failed after connecting (the daemon closed the connection,
    /// sent something that is not HTTP/1.1, …).
    #[error("talking to the daemon failed: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a path or header value that is not valid HTTP).
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] http::Error),
    /// A local I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A body could not be encoded as JSON.
    #[error("cannot encode the request body as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The daemon's answer is not the JSON the caller expected.
    #[error("cannot decode the daemon's answer: {0}")]
    Decode(#[source] serde_json::Error),
    /// The daemon accepted the connection but sent no response head in time.
    #[error("the steward daemon at {} did not answer within {}s", socket.display(), after.as_secs())]
    Timeout {
        /// The socket that was tried.
        socket: PathBuf,
        /// The time waited.
        after: Duration,
    },
    /// The daemon answered with an error status.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Why a socket is not trusted to be the daemon its path promises (DESIGN.md "Threat
/// model", the client). Each reads as one line after "refusing to talk to …: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Untrusted {
    /// The default per-user socket's directory is not a directory the caller owns.
    #[error("its directory {} is owned by uid {owner}, not by you (uid {me}); another user may have created it first: remove it and start stewardd again", dir.display())]
    DirNotYours {
        /// The socket's directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// The caller's uid.
        me: u32,
    },
    /// The default per-user socket's directory is a symbolic link (whoever owns the link
    /// can point it elsewhere).
    #[error("its directory {} is a symbolic link, not a directory: remove it and start stewardd again", dir.display())]
    DirIsLink {
        /// The socket's directory.
        dir: PathBuf,
    },
    /// Users other than its owner can write the socket's directory, so they could have
    /// replaced the socket.
    #[error("its directory {} is writable by other users (mode {mode:04o}), so anyone could have replaced the socket: `chmod go-w {}`", dir.display(), dir.display())]
    DirWritable {
        /// The socket's directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The process listening on the default per-user socket runs as another user.
    #[error("the process listening on it runs as uid {peer}, neither you (uid {me}) nor root")]
    PeerNotYou {
        /// The listener's uid (`SO_PEERCRED`).
        peer: u32,
        /// The caller's uid.
        me: u32,
    },
    /// The process listening on a configured socket does not own the socket's directory.
    #[error("the process listening on it runs as uid {peer}, but its directory {} belongs to {}", dir.display(), owner.map_or("nobody (it did not exist a moment before)".to_owned(), |o| format!("uid {o}")))]
    PeerNotOwner {
        /// The listener's uid (`SO_PEERCRED`).
        peer: u32,
        /// The socket's directory.
        dir: PathBuf,
        /// The directory's owner, if it existed when checked.
        owner: Option<u32>,
    },
    /// The directory or the peer's credentials could not be read.
    #[error("cannot check {what}: {error}")]
    Unverifiable {
        /// What could not be checked.
        what: String,
        /// The error.
        error: String,
    },
}
