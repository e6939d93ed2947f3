//! One connection: caller identity, the HTTP/1 codec with its limits, the idle watchdog,
//! the per-request timeout and the request log line.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixStream;
use tokio::net::unix::UCred;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::Slot;
use crate::error::ApiError;
use crate::identity::Caller;
use crate::state::Shared;
use crate::store::Handoff;

/// hyper refuses a read buffer smaller than this.
const MIN_HEAD_BUFFER: usize = 8192;

/// A daemon-wide request number, for correlating log lines and audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub u64);

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// Everything a connection task needs.
pub(super) struct Conn {
    /// The daemon's state (config, store, events).
    pub shared: Arc<Shared>,
    /// The API's routes.
    pub router: Router,
    /// Cancelled when the daemon starts draining.
    pub shutdown: CancellationToken,
}

/// What the idle watchdog watches.
struct Activity {
    /// Requests being answered right now.
    inflight: AtomicUsize,
    /// When the last request finished or started, in ms since the connection opened.
    last_ms: AtomicU64,
    /// When the connection opened.
    opened: Instant,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.inflight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.opened.elapsed().saturating_sub(last))
    }
}

/// Decrements the in-flight count even when a request future is dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl Conn {
    /// Serves one connection to its end. Without a `slot` the caller is over a
    /// connection cap: every request on the connection answers 429 and it closes.
    pub async fn run(self, stream: UnixStream, cred: UCred, slot: Option<Slot>) {
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
        // Password and group lookups may go to NSS (LDAP, sssd): keep them off the
        // async threads.
        let caller = match tokio::task::spawn_blocking(move || Caller::resolve(uid, gid, pid)).await
        {
            Ok(c) => Arc::new(c),
            Err(_) => return,
        };
        let cfg = self.shared.config();
        let limits = &cfg.limits;
        let activity = Arc::new(Activity {
            inflight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            opened: Instant::now(),
        });
        let over_cap = slot.is_none();
        let request_timeout = limits.request_timeout.0;
        let max_header = limits.max_header.bytes();
        let svc = {
            let activity = Arc::clone(&activity);
            let router = self.router.clone();
            let caller = Arc::clone(&caller);
            hyper::service::service_fn(move |req: Request<Incoming>| {
                activity.inflight.fetch_add(1, Ordering::Relaxed);
                activity.touch();
                let guard = InFlight(Arc::clone(&activity));
                let router = router.clone();
                let caller = Arc::clone(&caller);
                async move {
                    let resp =
                        handle(router, caller, req, over_cap, request_timeout, max_header).await;
                    drop(guard);
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout.0)
            .max_buf_size(limits.max_header.bytes().max(MIN_HEAD_BUFFER))
            .keep_alive(!over_cap);
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let mut conn = std::pin::pin!(conn);
        let idle_limit = limits.idle_timeout.0;
        let tick = (idle_limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut closing = false;
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(uid, error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = self.shutdown.cancelled(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep(tick), if !closing => {
                    if activity.idle_for().is_some_and(|d| d >= idle_limit) {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
        drop(slot);
    }
}

/// The size of a request's head as sent: request line and header lines.
fn head_len<B>(req: &Request<B>) -> usize {
    // Origin-form targets (all a Unix-socket client sends) are the path and query; an
    // absolute-form target's scheme and authority are a few bytes more at most.
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + req.uri().authority().map_or(0, |a| a.as_str().len() + 8);
    let line = req.method().as_str().len() + target + 12;
    req.headers().iter().fold(line, |n, (k, v)| {
        n.saturating_add(k.as_str().len() + v.len() + 4)
    })
}

/// Answers one request: caps, timeout, routing, and the log line.
async fn handle(
    router: Router,
    caller: Arc<Caller>,
    mut req: Request<Incoming>,
    over_cap: bool,
    timeout: Duration,
    max_header: usize,
) -> Response<Body> {
    let id = RequestId(NEXT_REQUEST.fetch_add(1, Ordering::Relaxed));
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = if over_cap {
        ApiError::too_many_connections().into_response()
    } else if head_len(&req) > max_header {
        // hyper's buffer limit only stops a head still incomplete when the buffer fills,
        // so a head that arrives in one large read can pass it: measure it here.
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "RequestHeaderFieldsTooLarge",
            format!("the request head is larger than the limit of {max_header} bytes"),
        )
        .into_response()
    } else {
        req.extensions_mut().insert(Arc::clone(&caller));
        req.extensions_mut().insert(id);
        // The timeout bounds reading the request and waiting for a writer queue slot. Once
        // a write is handed to the writer (`Handoff`), the answer is its commit's outcome:
        // a 408 for a write that then commits would make a retrying client act twice.
        let handoff = Arc::new(Handoff::default());
        req.extensions_mut().insert(Arc::clone(&handoff));
        let mut fut = std::pin::pin!(router.oneshot(req.map(Body::new)));
        let answered = match tokio::time::timeout(timeout, fut.as_mut()).await {
            Err(_) if handoff.handed() => Ok(fut.await),
            other => other,
        };
        match answered {
            Ok(Ok(r)) => r,
            Ok(Err(never)) => match never {},
            Err(_) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!("the request took longer than {timeout:?}"),
            )
            .into_response(),
        }
    };
    tracing::info!(
        target: "stewardd::request",
        request_id = id.0,
        uid = caller.uid,
        %method,
        path,
        status = resp.status().as_u16(),
        us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    resp
}
