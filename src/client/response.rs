//! What a request answers: a whole [`Response`], or a [`StreamResponse`] whose body is
//! still arriving, read as chunks or as NDJSON [`Lines`]. What it is not: the transport
//! (the client in `client.rs`) or the error body's shape (`error.rs`).

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::{ApiError, ClientError};

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
    pub(super) body: Incoming,
    /// Trailers, once the body has ended with some (a daemon may send a record count).
    pub(super) trailers: Option<HeaderMap>,
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
