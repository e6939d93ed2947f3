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

/// Open connections, in total and per uid, for the connection caps. The caps are read
/// from the configuration in force at each accept, so a reload changes them live.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Connections currently open: the total and the count by uid.
    open: Mutex<(usize, HashMap<u32, usize>)>,
}

/// A connection's place under the caps; dropping it frees the place.
pub(crate) struct Slot {
    /// The table the slot was taken from.
    counts: Arc<Counts>,
    /// Whose slot it is.
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.counts.open.lock() {
            open.0 = open.0.saturating_sub(1);
            if let Some(n) = open.1.get_mut(&self.uid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.1.remove(&self.uid);
                }
            }
        }
    }
}

impl Counts {
    /// Takes a place for `uid` if fewer than `total_cap` connections are open in all
    /// and fewer than `uid_cap` for this uid.
    fn take(self: &Arc<Self>, uid: u32, total_cap: usize, uid_cap: usize) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        let mine = open.1.get(&uid).copied().unwrap_or(0);
        if open.0 >= total_cap || mine >= uid_cap {
            return None;
        }
        open.0 += 1;
        open.1.insert(uid, mine + 1);
        Some(Slot {
            counts: Arc::clone(self),
            uid,
        })
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    let counts = Arc::new(Counts::default());
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
        let counts = Arc::clone(&counts);
        tracker.spawn(async move {
            let cred = match stream.peer_cred() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "no peer credentials; closing");
                    return;
                }
            };
            let slot = counts.take(
                cred.uid(),
                cfg.limits.max_connections,
                cfg.limits.max_connections_per_uid,
            );
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
