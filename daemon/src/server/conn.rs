//! One connection: caller identity, the HTTP/1 codec with its limits, the idle watchdog,
//! the per-request timeout and the request log line.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use http::{Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixStream;
use tokio::net::unix::UCred;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::Slot;
use crate::error::ApiError;
use crate::identity::{Caller, Identity, IdentityError};
use crate::routes::RequestId;
use crate::state::Shared;
use crate::store::Handoff;

/// The error code of a 503 for a caller whose identity could not be looked up.
const IDENTITY_UNAVAILABLE: &str = "IdentityUnavailable";

/// hyper refuses a read buffer smaller than this.
const MIN_HEAD_BUFFER: usize = 8192;

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
    /// Serves one connection, which holds `slot` under the connection caps, to its end.
    /// The caller is resolved at its first request and again whenever that resolution
    /// is stale (see [`Identity::current`]), so each request is judged on current group
    /// membership; a failed lookup answers 503 naming the cause.
    pub async fn run(self, stream: UnixStream, cred: UCred, slot: Slot) {
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
        let identity = Arc::new(Identity::new(
            Arc::clone(&self.shared.directory),
            uid,
            gid,
            pid,
        ));
        let slot = Arc::new(slot);
        let cfg = self.shared.config();
        let limits = &cfg.limits;
        let activity = Arc::new(Activity {
            inflight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            opened: Instant::now(),
        });
        let request_timeout = limits.request_timeout.0;
        let max_header = limits.max_header.bytes();
        let svc = {
            let activity = Arc::clone(&activity);
            let router = self.router.clone();
            let shared = Arc::clone(&self.shared);
            let slot = Arc::clone(&slot);
            hyper::service::service_fn(move |req: Request<Incoming>| {
                activity.inflight.fetch_add(1, Ordering::Relaxed);
                activity.touch();
                let guard = InFlight(Arc::clone(&activity));
                let router = router.clone();
                let identity = Arc::clone(&identity);
                let shared = Arc::clone(&shared);
                let slot = Arc::clone(&slot);
                let last = asks_to_close(&req);
                async move {
                    let refresh = shared.config().limits.identity_refresh.0;
                    let lookup = identity.current(refresh, shared.generation());
                    let caller = tokio::time::timeout(request_timeout, lookup)
                        .await
                        .unwrap_or(Err(IdentityError::TimedOut(request_timeout)));
                    let resp =
                        handle(router, identity, caller, req, request_timeout, max_header).await;
                    if last {
                        // Before the answer is written: a client that connects again
                        // once it has read it finds this connection already closing.
                        slot.mark_closing();
                    }
                    drop(guard);
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout.0)
            .max_buf_size(limits.max_header.bytes().max(MIN_HEAD_BUFFER));
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

/// Whether the request is its connection's last: it asks for `Connection: close`, or
/// is HTTP/1.0 without `keep-alive`.
fn asks_to_close<B>(req: &Request<B>) -> bool {
    let has = |token: &str| {
        req.headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has("close") || (req.version() == Version::HTTP_10 && !has("keep-alive"))
}

/// Answers one request: identity, head size, timeout, routing, and the log line.
async fn handle(
    router: Router,
    identity: Arc<Identity>,
    caller: Result<Arc<Caller>, IdentityError>,
    mut req: Request<Incoming>,
    timeout: Duration,
    max_header: usize,
) -> Response<Body> {
    let id = RequestId::next();
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = if let Err(e) = &caller {
        // Never serve a caller whose name or groups could not be read as someone else.
        tracing::error!(uid = identity.uid(), error = %e, "cannot resolve the caller");
        let mut r = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IDENTITY_UNAVAILABLE,
            format!("the daemon cannot tell who you are right now: {e}; retry shortly"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        r
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
        if let Ok(caller) = &caller {
            req.extensions_mut().insert(Arc::clone(caller));
        }
        req.extensions_mut().insert(Arc::clone(&identity));
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
        uid = identity.uid(),
        %method,
        path,
        status = resp.status().as_u16(),
        us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    resp
}
