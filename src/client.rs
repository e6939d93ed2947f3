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

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

mod error;
pub mod paths;
mod response;
mod trust;

pub use error::{ApiError, ClientError, Untrusted};
pub use response::{Lines, Response, StreamResponse};

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

    /// A tiny one-shot HTTP/1.1 server on a real socket in a temp dir, answering one
    /// canned response and handing back the raw request it read; a client of it.
    async fn one_shot(
        answer: &'static str,
    ) -> (tempfile::TempDir, Client, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let client = Client::new(&socket);
        let server = tokio::spawn(async move {
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
        });
        (dir, client, server)
    }

    #[tokio::test]
    async fn request_sends_host_role_content_type_and_if_match() {
        let (_dir, client, server) = one_shot(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\netag: \"e2\"\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}",
        )
        .await;
        let client = client.with_role(Some("reader".into()));
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
        let body = r#"{"error":{"code":"not_found","message":"no such contact"}}"#;
        let answer: &'static str = Box::leak(
            format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let (_dir, client, _server) = one_shot(answer).await;
        let err = client
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
        let (_dir, client, _server) = one_shot(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\na\r\n1}\n\n{\"b\":2\r\n3\r\n}\r\n\r\n7\r\n{\"c\":3}\r\n0\r\n\r\n",
        )
        .await;
        let mut lines = client.get_lines("/v1/events").await.unwrap();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), &b"{\"a\":1}"[..]);
        assert_eq!(lines.next_line().await.unwrap().unwrap(), &b"{\"b\":2}"[..]);
        // The last line has no newline and is still returned.
        assert_eq!(lines.next_line().await.unwrap().unwrap(), &b"{\"c\":3}"[..]);
        assert!(lines.next_line().await.unwrap().is_none());
    }
}
