//! The accept loop: one task per connection, identity, limits, timeouts and draining.
//!
//! `axum::serve` installs no header-read timeout, so the daemon runs its own loop over
//! hyper's HTTP/1 connection builder (mini-redis style). Per connection it learns the
//! caller from `SO_PEERCRED`, enforces the total and per-uid connection caps (429),
//! bounds the request head (431 past `max_header`) and the time to send it, closes
//! idle keep-alive connections, bounds each request's time to a response (408), and on
//! shutdown lets in-flight requests finish before closing.

mod conn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::Shared;

pub use conn::RequestId;

/// How long a draining daemon waits for in-flight requests before it exits anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Open connections per uid, for the per-uid cap.
#[derive(Debug, Default)]
pub(crate) struct UidCounts {
    /// Connections currently open, by uid.
    counts: Mutex<HashMap<u32, usize>>,
}

/// A connection's place under the caps; dropping it frees the place.
pub(crate) struct Slot {
    /// The table the slot was taken from.
    counts: Arc<UidCounts>,
    /// Whose slot it is.
    uid: u32,
    /// The place under the total cap.
    _total: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.counts.counts.lock()
            && let Some(n) = m.get_mut(&self.uid)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.uid);
            }
        }
    }
}

impl UidCounts {
    /// Takes a place for `uid` if it has fewer than `cap` connections open.
    fn take(
        self: &Arc<Self>,
        uid: u32,
        cap: usize,
        total: tokio::sync::OwnedSemaphorePermit,
    ) -> Option<Slot> {
        let mut m = self.counts.lock().ok()?;
        let n = m.entry(uid).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: Arc::clone(self),
            uid,
            _total: total,
        })
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    let uid_counts = Arc::new(UidCounts::default());
    let max_total = shared.config().limits.max_connections;
    let total = Arc::new(tokio::sync::Semaphore::new(max_total));
    let router = crate::routes::router(Arc::clone(&shared));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let cfg = shared.config();
        let conn = conn::Conn {
            shared: Arc::clone(&shared),
            router: router.clone(),
            shutdown: shutdown.clone(),
        };
        let total = Arc::clone(&total);
        let uid_counts = Arc::clone(&uid_counts);
        tracker.spawn(async move {
            let cred = match stream.peer_cred() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "no peer credentials; closing");
                    return;
                }
            };
            let slot = Arc::clone(&total)
                .try_acquire_owned()
                .ok()
                .and_then(|permit| {
                    uid_counts.take(cred.uid(), cfg.limits.max_connections_per_uid, permit)
                });
            conn.run(stream, cred, slot).await;
        });
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
