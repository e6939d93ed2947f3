//! The client side of the daemon's socket API: HTTP/1.1 over a Unix socket.
//!
//! `steward` (CLI and TUI) and the end-to-end tests talk to `stewardd` only through
//! this module, exactly as `curl --unix-socket` would. It knows the transport (one new
//! connection per request, `Host: localhost`, the `X-Steward-Role` header, content
//! types) and the error body shape of the API; it does not know the routes' meaning —
//! callers decode bodies into the wire types themselves. Every path is built by
//! [`paths`] from a [`crate::resource::Resource`], so the CLI and the TUI ask for the
//! same URLs.
//!
//! What it is not: a connection pool (a connect on a local socket costs microseconds,
//! and a fresh connection per request survives daemon restarts without any reconnect
//! logic), nor a retry layer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), steward::client::ClientError> {
//! use steward::client::{Client, default_socket_path};
//! let client = Client::new(default_socket_path()).with_role(Some("reader".into()));
//! let whoami: serde_json::Value = client.get_json("/v1/whoami").await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

pub mod paths;

pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};

pub use crate::wire::ROLE_HEADER;

/// `Content-Type` of JSON bodies.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// `Content-Type` of NDJSON bodies (an ingest batch, one JSON value per line).
pub const CONTENT_TYPE_NDJSON: &str = "application/x-ndjson";

/// The socket the daemon listens on when its config names none, and the one `steward`
/// tries when neither `--socket` nor `$STEWARD_SOCKET` is given:
/// `$XDG_RUNTIME_DIR/steward/steward.sock`, else `/tmp/steward-$UID/steward.sock`.
///
/// The daemon's embedded default config calls this same function, so the two agree.
/// An empty or relative `$XDG_RUNTIME_DIR` is ignored, as the XDG spec asks.
pub fn default_socket_path() -> PathBuf {
    socket_path_from(
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        nix::unistd::getuid().as_raw(),
    )
}

/// [`default_socket_path`] with its inputs made explicit (testable without touching the
/// process environment).
fn socket_path_from(xdg_runtime_dir: Option<PathBuf>, uid: u32) -> PathBuf {
    match xdg_runtime_dir {
        Some(dir) if dir.is_absolute() => dir.join("steward").join("steward.sock"),
        _ => PathBuf::from(format!("/tmp/steward-{uid}")).join("steward.sock"),
    }
}

/// A request body with its content type.
#[derive(Debug, Clone)]
pub struct Body {
    /// The `Content-Type` header sent with it.
    content_type: &'static str,
    /// The bytes, sent as they are.
    bytes: Bytes,
}

impl Body {
    /// A JSON body from a value.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, ClientError> {
        let bytes = serde_json::to_vec(value).map_err(ClientError::Encode)?;
        Ok(Self::json_bytes(bytes))
    }

    /// A JSON body from bytes that already hold JSON (as read from a file); the daemon
    /// validates them.
    pub fn json_bytes(bytes: impl Into<Bytes>) -> Self {
        Self {
            content_type: CONTENT_TYPE_JSON,
            bytes: bytes.into(),
        }
    }

    /// An NDJSON body (one JSON value per line), for alert ingestion batches.
    pub fn ndjson_bytes(bytes: impl Into<Bytes>) -> Self {
        Self {
            content_type: CONTENT_TYPE_NDJSON,
            bytes: bytes.into(),
        }
    }

    /// The `Content-Type` this body is sent with.
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// The bytes of the body.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// A complete response: status, headers and the whole body in memory.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers (`ETag`, `Location`, …).
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// `Ok(self)` for a 2xx status, else the [`ApiError`] its body describes.
    pub fn error_for_status(self) -> Result<Self, ApiError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(ApiError::from_body(self.status, &self.body))
        }
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(ClientError::Decode)
    }

    /// The `ETag` header without its quotes, if the daemon sent one.
    pub fn etag(&self) -> Option<&str> {
        let raw = self.headers.get(header::ETAG)?.to_str().ok()?;
        let raw = raw.strip_prefix("W/").unwrap_or(raw);
        Some(raw.trim_matches('"'))
    }
}

/// A response whose body is still arriving: exports, bundles and the `/v1/events`
/// stream. Memory stays flat in the size of the body.
#[derive(Debug)]
pub struct StreamResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as hyper delivers it.
    body: Incoming,
    /// Trailers, once the body has ended with some (a daemon may send a record count).
    trailers: Option<HeaderMap>,
}

impl StreamResponse {
    /// The next chunk of the body, or `None` at its end. Trailers met on the way are
    /// kept for [`StreamResponse::trailers`].
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            match frame?.into_data() {
                Ok(data) => return Ok(Some(data)),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.trailers = Some(trailers);
                    }
                }
            }
        }
    }

    /// Trailers the body ended with, once [`StreamResponse::next_chunk`] returned `None`.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// Reads the rest of the body into a [`Response`] (for error bodies, mostly).
    pub async fn collect(mut self) -> Result<Response, ClientError> {
        let mut body = BytesMut::new();
        while let Some(chunk) = self.next_chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status: self.status,
            headers: self.headers,
            body: body.freeze(),
        })
    }

    /// `Ok(self)` for a 2xx status; otherwise reads the (small) error body and returns
    /// the [`ApiError`] it describes.
    pub async fn error_for_status(self) -> Result<Self, ClientError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let response = self.collect().await?;
        Err(ClientError::Api(ApiError::from_body(
            response.status,
            &response.body,
        )))
    }

    /// The body split into lines, for NDJSON (events, ndjson exports).
    pub fn into_lines(self) -> Lines {
        Lines {
            response: self,
            buffer: BytesMut::new(),
            done: false,
        }
    }
}

/// The lines of a streamed body (an NDJSON stream), without their `\n` (or `\r\n`).
#[derive(Debug)]
pub struct Lines {
    /// Where the bytes come from.
    response: StreamResponse,
    /// Bytes received but not yet returned as a line.
    buffer: BytesMut,
    /// The body has ended.
    done: bool,
}

impl Lines {
    /// The next non-empty line, or `None` when the stream ends. A last line without a
    /// final newline is still returned.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let mut line = self.buffer.split_to(pos + 1);
                line.truncate(pos);
                if line.last() == Some(&b'\r') {
                    line.truncate(pos - 1);
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line.freeze()));
            }
            if self.done {
                if self.buffer.iter().all(u8::is_ascii_whitespace) {
                    self.buffer.clear();
                    return Ok(None);
                }
                return Ok(Some(self.buffer.split().freeze()));
            }
            match self.response.next_chunk().await? {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => self.done = true,
            }
        }
    }

    /// The status and headers of the response the lines come from.
    pub fn response(&self) -> &StreamResponse {
        &self.response
    }
}

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

/// The socket client. Cheap to clone; every request opens its own connection.
#[derive(Debug, Clone)]
pub struct Client {
    /// The daemon's socket.
    socket: PathBuf,
    /// The lower role profile to act under (`X-Steward-Role`), if any.
    role: Option<String>,
    /// How long to wait for a response head (connect included); `None` waits forever.
    /// A streamed body is not limited by it.
    timeout: Option<Duration>,
}

impl Client {
    /// A client for the daemon listening on `socket`. Nothing is connected yet.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            role: None,
            timeout: None,
        }
    }

    /// Gives up on a request whose response head (status and headers) has not arrived
    /// after `timeout`, so a wedged daemon cannot hang a script. Bodies that stream
    /// (exports, events) are not limited by it.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Acts under this role profile on every request (`X-Steward-Role`); `None` acts
    /// with everything the caller holds.
    #[must_use]
    pub fn with_role(mut self, role: Option<String>) -> Self {
        self.role = role;
        self
    }

    /// The socket this client connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The role profile requests are sent under, if any.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Sends one request and reads the whole response. Any status is `Ok`; use
    /// [`Response::error_for_status`] to turn a non-2xx into an [`ApiError`].
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Body>,
        headers: &[(HeaderName, String)],
    ) -> Result<Response, ClientError> {
        self.request_streaming(method, path_and_query, body, headers)
            .await?
            .collect()
            .await
    }

    /// Sends one request and returns as soon as the status and headers are in; the
    /// body is read from the returned [`StreamResponse`]. Any status is `Ok`.
    pub async fn request_streaming(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Body>,
        headers: &[(HeaderName, String)],
    ) -> Result<StreamResponse, ClientError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, "localhost")
            // One connection per request: saying so lets the daemon count it as closing as
            // soon as it answers, so the next request is never refused by the per-uid cap.
            .header(header::CONNECTION, "close");
        if let Some(role) = &self.role {
            builder = builder.header(ROLE_HEADER, role.as_str());
        }
        for (name, value) in headers {
            builder = builder.header(name, value.as_str());
        }
        let payload = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, body.content_type);
                body.bytes
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(payload))?;
        match self.timeout {
            None => self.exchange(request).await,
            Some(after) => tokio::time::timeout(after, self.exchange(request))
                .await
                .map_err(|_| ClientError::Timeout {
                    socket: self.socket.clone(),
                    after,
                })?,
        }
    }

    /// Connects, sends `request` and waits for the response head.
    async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<StreamResponse, ClientError> {
        let untrusted = |reason| ClientError::Untrusted {
            socket: self.socket.clone(),
            reason,
        };
        let expect = trust::expected(&self.socket).map_err(untrusted)?;
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Unreachable {
                    socket: self.socket.clone(),
                    source,
                })?;
        trust::check_peer(&stream, expect).map_err(untrusted)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection task drives the exchange until the response body is read to
        // its end (or dropped); its error, if any, surfaces through the body.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        Ok(StreamResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            trailers: None,
        })
    }

    /// `GET`, whole response, any status.
    pub async fn get(&self, path_and_query: &str) -> Result<Response, ClientError> {
        self.request(Method::GET, path_and_query, None, &[]).await
    }

    /// `GET` and decode a 2xx JSON body; a non-2xx is [`ClientError::Api`].
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, ClientError> {
        self.get(path_and_query).await?.error_for_status()?.json()
    }

    /// `GET` a streamed NDJSON body (the `/v1/events` stream, an ndjson export) as
    /// lines; a non-2xx is [`ClientError::Api`].
    pub async fn get_lines(&self, path_and_query: &str) -> Result<Lines, ClientError> {
        let response = self
            .request_streaming(Method::GET, path_and_query, None, &[])
            .await?
            .error_for_status()
            .await?;
        Ok(response.into_lines())
    }

    /// `PUT` a JSON body, with `If-Match` when `if_match` is given (quoted here unless
    /// it already is, or is `*`). Whole response, any status.
    pub async fn put_json<B: Serialize + ?Sized>(
        &self,
        path_and_query: &str,
        body: &B,
        if_match: Option<&str>,
    ) -> Result<Response, ClientError> {
        let headers = if_match_header(if_match);
        self.request(
            Method::PUT,
            path_and_query,
            Some(Body::json(body)?),
            &headers,
        )
        .await
    }

    /// `POST` a JSON body. Whole response, any status.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        path_and_query: &str,
        body: &B,
    ) -> Result<Response, ClientError> {
        self.request(Method::POST, path_and_query, Some(Body::json(body)?), &[])
            .await
    }

    /// `DELETE`, with `If-Match` when given. Whole response, any status.
    pub async fn delete(
        &self,
        path_and_query: &str,
        if_match: Option<&str>,
    ) -> Result<Response, ClientError> {
        let headers = if_match_header(if_match);
        self.request(Method::DELETE, path_and_query, None, &headers)
            .await
    }
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

/// The checks behind [`ClientError::Untrusted`]: before connecting, the socket's
/// directory; after connecting and before sending a byte, the listener's uid.
///
/// Under the default per-user path ([`default_socket_path`]) the directory must be a
/// real directory the caller owns that nobody else can write, and the listener must run
/// as the caller or root. Under any other (configured) path the directory must be
/// writable by its owner alone (group-writable is refused too: the socket's own mode and
/// `socket_group` are what grant access, never the directory), and the listener must
/// run as the directory's owner or as root (root: a daemon run as root, or systemd
/// holding an activated socket). Root is trusted on the host anyway.
mod trust {
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
}

/// The `Idempotency-Key` header with a fresh key (a random UUID) for one creating action
/// (alerts batch, DSR open, JIT initiate). Send the same header on every retry of that
/// action: the daemon then answers a retry with the first outcome instead of acting twice.
pub fn idempotency_header() -> (HeaderName, String) {
    (
        HeaderName::from_static("idempotency-key"),
        uuid::Uuid::new_v4().to_string(),
    )
}

/// The `If-Match` header for an etag given bare, quoted, or as `*`.
pub fn if_match_header(etag: Option<&str>) -> Vec<(HeaderName, String)> {
    match etag {
        None => Vec::new(),
        Some(tag) => {
            let tag = tag.trim();
            let value = if tag == "*" || (tag.starts_with('"') && tag.ends_with('"')) {
                tag.to_owned()
            } else {
                format!("\"{tag}\"")
            };
            vec![(header::IF_MATCH, value)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_prefers_an_absolute_xdg_runtime_dir() {
        assert_eq!(
            socket_path_from(Some(PathBuf::from("/run/user/1000")), 1000),
            PathBuf::from("/run/user/1000/steward/steward.sock")
        );
    }

    #[test]
    fn socket_path_falls_back_to_tmp_per_uid() {
        assert_eq!(
            socket_path_from(None, 1234),
            PathBuf::from("/tmp/steward-1234/steward.sock")
        );
        // A relative XDG_RUNTIME_DIR is invalid per the XDG spec and ignored.
        assert_eq!(
            socket_path_from(Some(PathBuf::from("relative")), 7),
            PathBuf::from("/tmp/steward-7/steward.sock")
        );
    }

    #[test]
    fn default_socket_path_ends_in_steward_sock() {
        let path = default_socket_path();
        assert!(path.is_absolute());
        assert!(path.ends_with("steward.sock"), "{}", path.display());
    }

    #[test]
    fn api_error_reads_the_error_body() {
        let body =
            br#"{"error":{"code":"forbidden","message":"needs contacts.write","target":null}}"#;
        let e = ApiError::from_body(StatusCode::FORBIDDEN, body);
        assert_eq!(e.code, "forbidden");
        assert_eq!(e.message, "needs contacts.write");
        assert_eq!(e.target, None);
        let body =
            br#"{"error":{"code":"invalid","message":"bad address","target":"properties.emails"}}"#;
        let e = ApiError::from_body(StatusCode::BAD_REQUEST, body);
        assert_eq!(e.target.as_deref(), Some("properties.emails"));
        assert_eq!(e.to_string(), "invalid: bad address (at properties.emails)");
    }

    #[test]
    fn api_error_falls_back_to_the_status_text() {
        let e = ApiError::from_body(StatusCode::NOT_FOUND, b"");
        assert_eq!(e.code, "not_found");
        assert_eq!(e.message, "not found");
        let e = ApiError::from_body(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, b"too big\n");
        assert_eq!(e.message, "too big");
        assert_eq!(e.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[test]
    fn if_match_quotes_bare_tags_only() {
        assert_eq!(if_match_header(Some("abc"))[0].1, "\"abc\"");
        assert_eq!(if_match_header(Some("\"abc\""))[0].1, "\"abc\"");
        assert_eq!(if_match_header(Some("*"))[0].1, "*");
        assert!(if_match_header(None).is_empty());
    }

    #[test]
    fn etag_header_is_unquoted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        let r = Response {
            status: StatusCode::OK,
            headers,
            body: Bytes::new(),
        };
        assert_eq!(r.etag(), Some("v1"));
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable_and_names_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("nope.sock");
        let err = Client::new(&socket).get("/v1/health").await.unwrap_err();
        match &err {
            ClientError::Unreachable { socket: s, source } => {
                assert_eq!(s, &socket);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(err.to_string().contains("nope.sock"));
    }

    #[tokio::test]
    async fn a_missing_socket_in_a_world_writable_dir_is_unreachable_not_untrusted() {
        let socket = PathBuf::from(format!("/tmp/steward-none-{}.sock", std::process::id()));
        let err = Client::new(&socket).get("/v1/health").await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Unreachable { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_socket_in_a_dir_others_can_write_gets_no_bytes() {
        use std::os::unix::fs::PermissionsExt;
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let socket = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let err = Client::new(&socket).get("/v1/health").await.unwrap_err();
        match &err {
            ClientError::Untrusted {
                reason: Untrusted::DirWritable { mode, .. },
                ..
            } => assert_eq!(*mode, 0o777),
            other => panic!("expected Untrusted, got {other:?}"),
        }
        // Refused before connecting: nothing is waiting to be accepted.
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        if let Ok(Ok((mut s, _))) = accepted {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            assert!(buf.is_empty(), "sent {buf:?}");
        }
    }

    #[tokio::test]
    async fn a_silent_daemon_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let _listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let err = Client::new(&socket)
            .with_timeout(Some(Duration::from_millis(50)))
            .get("/v1/health")
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    }

    /// A tiny one-shot HTTP/1.1 server on a real socket, answering one canned response
    /// and handing back the raw request it read.
    async fn one_shot(socket: &Path, answer: &'static str) -> tokio::task::JoinHandle<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            stream.write_all(answer.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        })
    }

    #[tokio::test]
    async fn request_sends_host_role_content_type_and_if_match() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let server = one_shot(
            &socket,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\netag: \"e2\"\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}",
        )
        .await;
        let client = Client::new(&socket).with_role(Some("reader".into()));
        let response = client
            .put_json(
                "/v1/tenants/t/contacts/default",
                &serde_json::json!({"properties": {}}),
                Some("e1"),
            )
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.etag(), Some("e2"));
        assert_eq!(response.json::<serde_json::Value>().unwrap()["ok"], true);
        let seen = server.await.unwrap().to_lowercase();
        assert!(
            seen.starts_with("put /v1/tenants/t/contacts/default http/1.1\r\n"),
            "{seen}"
        );
        assert!(seen.contains("host: localhost\r\n"), "{seen}");
        assert!(seen.contains("x-steward-role: reader\r\n"), "{seen}");
        assert!(
            seen.contains("content-type: application/json\r\n"),
            "{seen}"
        );
        assert!(seen.contains("if-match: \"e1\"\r\n"), "{seen}");
        assert!(seen.ends_with("{\"properties\":{}}"), "{seen}");
    }

    #[tokio::test]
    async fn get_json_turns_an_error_status_into_api_error() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let body = r#"{"error":{"code":"not_found","message":"no such contact"}}"#;
        let answer: &'static str = Box::leak(
            format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let _server = one_shot(&socket, answer).await;
        let err = Client::new(&socket)
            .get_json::<serde_json::Value>("/v1/tenants/t/contacts/x")
            .await
            .unwrap_err();
        match err {
            ClientError::Api(e) => {
                assert_eq!(e.status, StatusCode::NOT_FOUND);
                assert_eq!(e.message, "no such contact");
            }
            other => panic!("expected Api, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn lines_split_a_chunked_ndjson_stream() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let _server = one_shot(
            &socket,
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\na\r\n1}\n\n{\"b\":2\r\n3\r\n}\r\n\r\n7\r\n{\"c\":3}\r\n0\r\n\r\n",
        )
        .await;
        let mut lines = Client::new(&socket).get_lines("/v1/events").await.unwrap();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), &b"{\"a\":1}"[..]);
        assert_eq!(lines.next_line().await.unwrap().unwrap(), &b"{\"b\":2}"[..]);
        // The last line has no newline and is still returned.
        assert_eq!(lines.next_line().await.unwrap().unwrap(), &b"{\"c\":3}"[..]);
        assert!(lines.next_line().await.unwrap().is_none());
    }
}
