//! The TUI's one door to the socket: HTTP/1.1 over the daemon's Unix socket.
//!
//! A thin stand-in shaped like `steward::client::Client` (`new`, `with_role`, `request`,
//! `request_streaming`) so that swapping it for the library client touches this file
//! and the imports of `backend.rs` only. It knows transport, not routes: one connection
//! per request (a local connect costs microseconds and survives daemon restarts),
//! `Host: localhost`, `X-Steward-Role`, JSON bodies.

use std::path::PathBuf;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The socket could not be connected (daemon down, wrong path, no permission).
    #[error("cannot reach the daemon at {socket}: {source}")]
    Unreachable {
        /// The socket tried.
        socket: String,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed after connecting.
    #[error("talking to the daemon failed: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (bad path or header).
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers (`ETag`).
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The `ETag` header without quotes.
    pub fn etag(&self) -> Option<String> {
        let raw = self.headers.get(header::ETAG)?.to_str().ok()?;
        let raw = raw.strip_prefix("W/").unwrap_or(raw);
        Some(raw.trim_matches('"').to_owned())
    }
}

/// A response whose body is still arriving (events, exports).
#[derive(Debug)]
pub struct StreamResponse {
    /// The status.
    pub status: StatusCode,
    /// The body.
    body: Incoming,
}

impl StreamResponse {
    /// The next data chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, NetError> {
        loop {
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            if let Ok(data) = frame?.into_data() {
                return Ok(Some(data));
            }
        }
    }

    /// The rest of the body in memory (error bodies).
    pub async fn collect(mut self) -> Result<Bytes, NetError> {
        let mut out = Vec::new();
        while let Some(c) = self.next_chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out.into())
    }
}

/// The socket client: cheap to clone, one connection per request.
#[derive(Debug, Clone)]
pub struct Client {
    /// The daemon's socket.
    socket: PathBuf,
    /// The profile to act under (`X-Steward-Role`), if any.
    role: Option<String>,
}

impl Client {
    /// A client for `socket`; nothing is connected yet.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            role: None,
        }
    }

    /// Acts under `role` on every request.
    #[must_use]
    pub fn with_role(mut self, role: Option<String>) -> Self {
        self.role = role;
        self
    }

    /// One request, whole response, any status. `if_match` is sent quoted.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<Response, NetError> {
        let s = self.request_streaming(method, path, json, if_match).await?;
        let status = s.status;
        let headers = s.headers_snapshot.clone();
        let body = s.inner.collect().await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// One request; returns once status and headers are in.
    pub async fn request_streaming(
        &self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<Streaming, NetError> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        if let Some(role) = &self.role {
            b = b.header(steward::wire::ROLE_HEADER, role.as_str());
        }
        if let Some(tag) = if_match {
            b = b.header(header::IF_MATCH, format!("\"{}\"", tag.trim_matches('"')));
        }
        let payload = match json {
            Some(bytes) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                bytes
            }
            None => Bytes::new(),
        };
        let req = b.body(Full::new(payload))?;
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| NetError::Unreachable {
                    socket: self.socket.display().to_string(),
                    source,
                })?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        tx.ready().await?;
        let resp = tx.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        Ok(Streaming {
            status: parts.status,
            headers_snapshot: parts.headers,
            inner: StreamResponse {
                status: parts.status,
                body,
            },
        })
    }
}

/// A streaming response with its headers.
#[derive(Debug)]
pub struct Streaming {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers_snapshot: HeaderMap,
    /// The body stream.
    pub inner: StreamResponse,
}
