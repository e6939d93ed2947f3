//! The accept loop: one task per connection, identity, limits, timeouts and draining.
//!
//! `axum::serve` installs no header-read timeout, so the daemon runs its own loop over
//! hyper's HTTP/1 connection builder (mini-redis style). Per connection it learns the
//! caller from `SO_PEERCRED`, enforces the total and per-uid connection caps (429),
//! bounds the request head (431 past `max_header`) and the time to send it, closes
//! idle keep-alive connections, bounds each request's time to a response (408), and on
//! shutdown lets in-flight requests finish before closing.
//!
//! File descriptors: at start the soft `RLIMIT_NOFILE` is raised to the hard limit, and
//! the total cap is held under that limit less a reserve ([`fd_budget`]), so the
//! connections alone never exhaust the table and identity lookups, the store and the
//! logs keep the descriptors they need. A connection past a cap is answered 429 and
//! closed right in the accept loop, before any identity lookup or HTTP parsing. Should
//! `accept` still fail for lack of descriptors (EMFILE/ENFILE), one descriptor kept in
//! reserve is let go to accept and close the waiting connection (503), so the loop
//! backs off instead of spinning; such errors are logged at most once per
//! [`LOG_EVERY`].

mod conn;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::Shared;

/// How long a draining daemon waits for in-flight requests before it exits anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// How long a connection past a cap may wait for one of its uid's connections that has
/// sent its last response to finish closing, before it is answered 429.
const CLOSING_GRACE: Duration = Duration::from_millis(500);

/// Accept errors and refused connections are logged at most once per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// How long a refused connection that has not sent its request yet is given to send it.
const REFUSAL_LINGER: Duration = Duration::from_millis(100);

/// Refused connections lingering at once (each holds a descriptor).
const LINGER_MAX: usize = 32;

/// The pause after an accept error, so a persistent one cannot spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Descriptors kept out of the connection budget: the store, logs, the watcher, NSS
/// lookups (each opens the password and group files), spool files, hooks.
const FD_RESERVE_MIN: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force.
/// A daemon serves one descriptor per connection: the default soft limit (often 1024)
/// is the first thing a crowd of connections would exhaust.
pub fn raise_fd_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    // Linux refuses an unlimited NOFILE; the kernel's own ceiling is what counts then.
    let want = if hard == RLIM_INFINITY { 1 << 20 } else { hard };
    if soft >= want {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
        Ok(()) => {
            tracing::debug!(from = soft, to = want, "raised the open-file limit");
            want
        }
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
            soft
        }
    }
}

/// How many connections the descriptor limit `nofile` leaves room for: the limit less
/// a reserve of an eighth of it (at least [`FD_RESERVE_MIN`]).
pub fn fd_budget(nofile: u64) -> usize {
    let reserve = (nofile / 8).max(FD_RESERVE_MIN);
    usize::try_from(nofile.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Open connections of one uid.
#[derive(Debug, Default, Clone, Copy)]
struct PerUid {
    /// Connections open.
    open: usize,
    /// Of those, connections that have been handed their last response.
    closing: usize,
    /// Connections waiting for a closing one to finish.
    waiting: usize,
}

/// The numbers under the caps.
#[derive(Debug, Default)]
struct Open {
    /// All uids together.
    total: PerUid,
    /// By uid (entries with nothing open or waiting are removed).
    by_uid: HashMap<u32, PerUid>,
}

/// Open connections, in total and per uid, for the connection caps. The caps are read
/// from the configuration in force at each accept, so a reload changes them live.
///
/// A connection counts until its task ends. One that has been handed its last response
/// (the request asked for `Connection: close`) is *closing*: a newcomer past a cap may
/// wait up to [`CLOSING_GRACE`] for it to end instead of being refused, so a client
/// that connects again the moment it has read its answer is never refused for the
/// connection it has just finished with.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// The numbers, under one lock.
    open: Mutex<Open>,
    /// Woken whenever a connection ends.
    freed: Notify,
}

/// What [`Counts::try_take`] decided.
enum Take {
    /// A place under the caps.
    Slot(Slot),
    /// Over a cap, but a closing connection will free a place soon: wait for it.
    Wait(Waiting),
    /// Over a cap: answer 429.
    Refuse,
}

/// A connection's place under the caps; dropping it frees the place.
pub(crate) struct Slot {
    /// The table the slot was taken from.
    counts: Arc<Counts>,
    /// Whose slot it is.
    uid: u32,
    /// Whether the connection has been handed its last response.
    closing: AtomicBool,
}

impl Slot {
    /// Marks the connection as closing: its last response is on its way.
    pub(crate) fn mark_closing(&self) {
        if self.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut open) = self.counts.open.lock() {
            open.total.closing += 1;
            if let Some(n) = open.by_uid.get_mut(&self.uid) {
                n.closing += 1;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let closing = usize::from(*self.closing.get_mut());
        if let Ok(mut open) = self.counts.open.lock() {
            let o = &mut *open;
            o.total.open = o.total.open.saturating_sub(1);
            o.total.closing = o.total.closing.saturating_sub(closing);
            if let Some(n) = o.by_uid.get_mut(&self.uid) {
                n.open = n.open.saturating_sub(1);
                n.closing = n.closing.saturating_sub(closing);
                if n.open == 0 && n.waiting == 0 {
                    o.by_uid.remove(&self.uid);
                }
            }
        }
        self.counts.freed.notify_waiters();
    }
}

/// A connection waiting under [`CLOSING_GRACE`]; dropping it stops the wait's count.
pub(crate) struct Waiting {
    /// The table.
    counts: Arc<Counts>,
    /// Whose wait it is.
    uid: u32,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut open) = self.counts.open.lock() {
            let o = &mut *open;
            o.total.waiting = o.total.waiting.saturating_sub(1);
            if let Some(n) = o.by_uid.get_mut(&self.uid) {
                n.waiting = n.waiting.saturating_sub(1);
                if n.open == 0 && n.waiting == 0 {
                    o.by_uid.remove(&self.uid);
                }
            }
        }
    }
}

impl Counts {
    /// Takes a place for `uid` if fewer than `total_cap` connections are open in all
    /// and fewer than `uid_cap` for this uid. Past a cap, a wait when closing
    /// connections outnumber those already waiting for them (when `may_wait`).
    fn try_take(
        self: &Arc<Self>,
        uid: u32,
        total_cap: usize,
        uid_cap: usize,
        may_wait: bool,
    ) -> Take {
        let Ok(mut open) = self.open.lock() else {
            return Take::Refuse;
        };
        let o = &mut *open;
        let mine = o.by_uid.get(&uid).copied().unwrap_or_default();
        let total_over = o.total.open >= total_cap;
        let uid_over = mine.open >= uid_cap;
        if !total_over && !uid_over {
            o.total.open += 1;
            o.by_uid.entry(uid).or_default().open += 1;
            return Take::Slot(Slot {
                counts: Arc::clone(self),
                uid,
                closing: AtomicBool::new(false),
            });
        }
        let room_soon = (!total_over || o.total.closing > o.total.waiting)
            && (!uid_over || mine.closing > mine.waiting);
        if !may_wait || !room_soon {
            return Take::Refuse;
        }
        o.total.waiting += 1;
        o.by_uid.entry(uid).or_default().waiting += 1;
        Take::Wait(Waiting {
            counts: Arc::clone(self),
            uid,
        })
    }

    /// Waits (at most [`CLOSING_GRACE`]) for a closing connection to free a place.
    async fn wait_take(
        self: &Arc<Self>,
        waiting: Waiting,
        total_cap: usize,
        uid_cap: usize,
    ) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + CLOSING_GRACE;
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            match self.try_take(waiting.uid, total_cap, uid_cap, false) {
                Take::Slot(s) => return Some(s),
                Take::Wait(_) | Take::Refuse => {}
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }
}

/// Rate-limited warnings: the first occurrence at once, then a count per interval.
#[derive(Debug)]
struct Throttled {
    /// What is counted (for the log line).
    what: &'static str,
    /// When the last line was written.
    last: Option<Instant>,
    /// Occurrences since then.
    count: u64,
}

impl Throttled {
    fn new(what: &'static str) -> Self {
        Throttled {
            what,
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence; logs when the interval has passed.
    fn hit(&mut self, detail: &dyn std::fmt::Display) {
        self.count += 1;
        if self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            tracing::warn!(count = self.count, last = %detail, "{} (at most one line per {LOG_EVERY:?})", self.what);
            self.last = Some(Instant::now());
            self.count = 0;
        }
    }
}

/// The whole 429 answer of a connection past a cap, sent without parsing its request.
fn refusal_bytes(e: &crate::error::ApiError) -> Vec<u8> {
    let status = e.status;
    let body = serde_json::to_vec(&steward::wire::ErrorBody {
        error: e.detail.clone(),
    })
    .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Answers `bytes` on `stream` and closes it. What the client already sent is read off
/// first, so the close is not a reset. A client that has not sent its request yet (it
/// has just connected) is given up to [`REFUSAL_LINGER`] to send it, in a task, so that
/// its write does not fail before it can read the answer; at most [`LINGER_MAX`]
/// refusals linger at once, the others are answered and closed on the spot.
fn refuse(stream: UnixStream, bytes: Arc<[u8]>, lingering: &Arc<Semaphore>) {
    use std::io::Write;
    // A std stream (still non-blocking) does plain syscalls: tokio's `try_*` would
    // answer WouldBlock before the reactor has seen the new socket's readiness.
    let Ok(mut s) = stream.into_std() else {
        return;
    };
    if read_off(&mut s) {
        let _ = s.write(&bytes);
        return;
    }
    let Ok(permit) = Arc::clone(lingering).try_acquire_owned() else {
        let _ = s.write(&bytes);
        return;
    };
    let Ok(stream) = UnixStream::from_std(s) else {
        return;
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_LINGER, stream.readable()).await;
        if let Ok(mut s) = stream.into_std() {
            read_off(&mut s);
            let _ = s.write(&bytes);
        }
        drop(permit);
    });
}

/// Reads off (and drops) what the client has sent so far, without waiting; whether it
/// sent anything or closed its side.
fn read_off(s: &mut std::os::unix::net::UnixStream) -> bool {
    use std::io::Read;
    let mut sink = [0u8; 4096];
    let mut any = false;
    for _ in 0..16 {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => any = true,
            Err(_) => break,
        }
    }
    any
}

/// Whether an accept error means the descriptor table (the process's or the system's)
/// is full.
fn out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(nix::errno::Errno::from_raw),
        Some(nix::errno::Errno::EMFILE | nix::errno::Errno::ENFILE)
    )
}

/// Serves the API on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let nofile = raise_fd_limit();
    let budget = fd_budget(nofile);
    let tracker = TaskTracker::new();
    let counts = Arc::new(Counts::default());
    let router = crate::routes::router(Arc::clone(&shared));
    let too_many: Arc<[u8]> = refusal_bytes(&crate::error::ApiError::too_many_connections()).into();
    let lingering = Arc::new(Semaphore::new(LINGER_MAX));
    let no_fds = refusal_bytes(&crate::error::ApiError::new(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "OutOfFileDescriptors",
        "the daemon has no file descriptor left for this connection; retry shortly",
    ));
    // The classic reserve: one descriptor held back, let go when accept fails for lack
    // of descriptors so the waiting connection can be taken off the queue and closed.
    let mut reserve = std::fs::File::open("/dev/null").ok();
    let mut accept_errors = Throttled::new("accept failed");
    let mut refused = Throttled::new("connections refused past the connection caps");
    if shared.config().limits.max_connections > budget {
        tracing::warn!(
            nofile,
            max_connections = budget,
            "the open-file limit holds the total connection cap under max_connections"
        );
    }
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                accept_errors.hit(&e);
                if out_of_fds(&e) && reserve.take().is_some() {
                    use futures::FutureExt;
                    if let Some(Ok((s, _))) = listener.accept().now_or_never()
                        && let Ok(mut s) = s.into_std()
                    {
                        use std::io::Write;
                        read_off(&mut s);
                        let _ = s.write(&no_fds);
                    }
                    reserve = std::fs::File::open("/dev/null").ok();
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no peer credentials; closing");
                continue;
            }
        };
        let cfg = shared.config();
        let total_cap = cfg.limits.max_connections.min(budget);
        let uid_cap = cfg.limits.max_connections_per_uid;
        let conn = conn::Conn {
            shared: Arc::clone(&shared),
            router: router.clone(),
            shutdown: shutdown.clone(),
        };
        match counts.try_take(cred.uid(), total_cap, uid_cap, true) {
            Take::Slot(slot) => {
                tracker.spawn(conn.run(stream, cred, slot));
            }
            Take::Refuse => {
                refused.hit(&format_args!("uid {}", cred.uid()));
                refuse(stream, Arc::clone(&too_many), &lingering);
            }
            Take::Wait(w) => {
                // Rare: its uid's last connection is still closing. Wait off the loop.
                let counts = Arc::clone(&counts);
                let too_many = Arc::clone(&too_many);
                let lingering = Arc::clone(&lingering);
                tracker.spawn(async move {
                    match counts.wait_take(w, total_cap, uid_cap).await {
                        Some(slot) => conn.run(stream, cred, slot).await,
                        None => refuse(stream, too_many, &lingering),
                    }
                });
            }
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(DRAIN_LIMIT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "connections still open after the drain limit; closing them"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_a_reserve_under_the_fd_limit() {
        assert_eq!(fd_budget(256), 192);
        assert_eq!(fd_budget(1024), 896);
        assert_eq!(fd_budget(10), 1);
        assert!(fd_budget(1 << 20) > 900_000);
    }

    #[tokio::test]
    async fn a_closing_connection_makes_room_for_the_next_one() {
        let counts = Arc::new(Counts::default());
        let Take::Slot(first) = counts.try_take(7, 10, 1, true) else {
            panic!("the first connection is under the cap");
        };
        // Still open and not closing: past the cap, refused at once.
        assert!(matches!(counts.try_take(7, 10, 1, true), Take::Refuse));
        first.mark_closing();
        let Take::Wait(w) = counts.try_take(7, 10, 1, true) else {
            panic!("a closing connection is worth a wait");
        };
        // Only one newcomer may wait for one closing connection.
        assert!(matches!(counts.try_take(7, 10, 1, true), Take::Refuse));
        let waiter = tokio::spawn({
            let counts = Arc::clone(&counts);
            async move { counts.wait_take(w, 10, 1).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiter.await.unwrap(), "the waiter took the freed place");
    }

    /// A directory whose password lookups fail as under descriptor exhaustion. Making
    /// NSS itself fail on demand is not practical in a test, so the failure is injected
    /// through [`crate::identity::Directory`]; everything else (socket, HTTP, routes,
    /// store) is the real daemon's.
    #[derive(Debug)]
    struct OutOfFds;

    impl crate::identity::Directory for OutOfFds {
        fn user(&self, _: u32) -> Result<Option<(String, u32)>, nix::errno::Errno> {
            Err(nix::errno::Errno::EMFILE)
        }
        fn group_list(&self, _: &str, gid: u32) -> Result<Vec<u32>, nix::errno::Errno> {
            Ok(vec![gid])
        }
        fn group_name(&self, _: u32) -> Result<Option<String>, nix::errno::Errno> {
            Ok(None)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_identity_lookup_answers_503_naming_the_cause() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let me = crate::identity::Caller::daemon().unwrap().user;
        let cfg = steward::config::Config::parse(&format!(
            "[[tenant]]\nid = \"contoso\"\nname = \"C\"\n[[grant]]\nuser = \"{me}\"\ntenant = \"contoso\"\nrole = \"reader\"\n"
        ))
        .unwrap();
        let store =
            crate::store::Store::open(dir.path(), crate::store::StoreOptions::default()).unwrap();
        let stop = CancellationToken::new();
        let shared =
            Arc::new(Shared::new(cfg, store, stop.clone()).with_directory(Arc::new(OutOfFds)));
        let sock = dir.path().join("s.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(serve(listener, shared, stop.clone()));
        let reply = tokio::task::spawn_blocking(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            s.write_all(b"GET /v1/tenants/contoso/contacts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        stop.cancel();
        server.await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        assert!(reply.contains("IdentityUnavailable"), "{reply}");
        assert!(reply.contains("EMFILE"), "the cause is named: {reply}");
        assert!(
            reply.to_ascii_lowercase().contains("retry-after"),
            "{reply}"
        );
    }
}
