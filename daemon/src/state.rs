//! The daemon's shared state: the configuration in force, the store, and the change
//! event channel. One `Arc<Shared>` is handed to every connection and timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use steward::config::Config;
use steward::wire::Event;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How many change events a slow `/v1/events` reader may fall behind before it is told
/// it missed some.
const EVENT_BACKLOG: usize = 4096;

/// State shared by every connection and timer.
pub struct Shared {
    /// The configuration in force; swapped whole on reload.
    config: ArcSwap<Config>,
    /// Change events for `/v1/events`, sent after each commit.
    events: broadcast::Sender<Event>,
    /// The last event sequence number handed out.
    event_seq: AtomicU64,
    /// The store: every tenant's records and audit chains.
    pub store: Store,
    /// Cancelled when the daemon starts draining.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// State for a daemon running `config`.
    pub fn new(config: Config, store: Store, shutdown: CancellationToken) -> Self {
        Shared {
            store,
            config: ArcSwap::from_pointee(config),
            events: broadcast::channel(EVENT_BACKLOG).0,
            event_seq: AtomicU64::new(0),
            shutdown,
        }
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Puts a new (validated) configuration in force.
    pub fn set_config(&self, config: Config) {
        self.config.store(Arc::new(config));
    }

    /// Publishes a committed change.
    pub fn publish(&self, tenant: &str, kind: &str, name: &str, action: &str) {
        let seq = self.event_seq.fetch_add(1, Ordering::Relaxed) + 1;
        // No subscriber is not an error.
        let _ = self.events.send(Event {
            seq,
            at: jiff::Timestamp::now().to_string(),
            tenant: tenant.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            action: action.to_owned(),
        });
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
