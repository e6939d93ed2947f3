//! A raw-socket client for bytes no well-behaved client sends, and the parse of the
//! responses that come back (status lines, `Content-Length` or chunked bodies).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether `GET /v1/health` answers 200 on `socket` (raw, with a short timeout).
pub fn health(socket: &Path) -> bool {
    let r = raw(
        socket,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
        1,
    );
    r.statuses.first() == Some(&200)
}

/// What came back on a raw connection.
#[derive(Debug, Default, Clone)]
pub struct RawReply {
    /// The status of each complete response, in order.
    pub statuses: Vec<u16>,
    /// Everything read.
    pub bytes: Vec<u8>,
    /// The server closed (EOF or reset) before `want` responses or the time limit.
    pub closed: bool,
    /// The time limit passed with the connection still open.
    pub timed_out: bool,
    /// The connection could not be made at all.
    pub refused: bool,
}

/// Sends `bytes` on a fresh connection and reads until `want` complete responses have
/// arrived, the server closes, or `limit` passes.
pub fn raw(socket: &Path, bytes: &[u8], limit: Duration, want: usize) -> RawReply {
    let mut reply = RawReply::default();
    let Ok(mut s) = UnixStream::connect(socket) else {
        reply.refused = true;
        return reply;
    };
    // The server may answer and close before reading everything (413, 431): a failed
    // write is not the test's failure, what comes back is.
    let _ = s.set_write_timeout(Some(limit));
    let _ = s.write_all(bytes);
    read_replies(&mut s, limit, want, &mut reply);
    reply
}

/// Reads responses from `s` into `reply` (see [`raw`]).
pub fn read_replies(s: &mut UnixStream, limit: Duration, want: usize, reply: &mut RawReply) {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 16384];
    loop {
        reply.statuses = parse_statuses(&reply.bytes);
        if reply.statuses.len() >= want {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            reply.timed_out = true;
            return;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => {
                reply.closed = true;
                reply.statuses = parse_statuses(&reply.bytes);
                return;
            }
            Ok(n) => reply.bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                reply.timed_out = true;
                reply.statuses = parse_statuses(&reply.bytes);
                return;
            }
            Err(_) => {
                reply.closed = true;
                reply.statuses = parse_statuses(&reply.bytes);
                return;
            }
        }
    }
}

/// The statuses of the complete responses at the front of `b` (status line, headers, and a
/// `Content-Length` or chunked body; a response with neither counts once its head is in).
pub fn parse_statuses(mut b: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(end) = find(b, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&b[..end]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let lower = head.to_ascii_lowercase();
        let body = &b[end + 4..];
        let len = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let consumed = if let Some(n) = len {
            if body.len() < n {
                break;
            }
            n
        } else if lower.contains("transfer-encoding: chunked") {
            match find(body, b"0\r\n\r\n") {
                Some(i) => i + 5,
                None => break,
            }
        } else {
            0
        };
        // 100 Continue and other interim answers are not the response.
        if status >= 200 {
            out.push(status);
        }
        b = &body[consumed..];
    }
    out
}

/// Where `needle` first starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
