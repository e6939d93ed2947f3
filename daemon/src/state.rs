//! The daemon's shared state: the configuration in force and the store (whose writer
//! also carries the change events). One `Arc<Shared>` is handed to every connection and timer.

use std::sync::Arc;

use arc_swap::ArcSwap;
use steward::config::Config;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// State shared by every connection and timer.
pub struct Shared {
    /// The configuration in force; swapped whole on reload.
    config: ArcSwap<Config>,
    /// The store: every tenant's records and audit chains.
    pub store: Store,
    /// Cancelled when the daemon starts draining.
    pub shutdown: CancellationToken,
    /// Ingest bytes held at once, all requests together (`limits.ingest_budget`, read at start).
    pub ingest_budget: crate::ingest::Budget,
}

impl Shared {
    /// State for a daemon running `config`.
    pub fn new(config: Config, store: Store, shutdown: CancellationToken) -> Self {
        Shared {
            ingest_budget: crate::ingest::Budget::new(config.limits.ingest_budget.bytes()),
            store,
            config: ArcSwap::from_pointee(config),
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
}
