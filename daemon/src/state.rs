//! The daemon's shared state: the configuration in force and the store (whose writer
//! also carries the change events). One `Arc<Shared>` is handed to every connection and timer.

use std::sync::Arc;

use arc_swap::ArcSwap;
use steward::config::Config;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::identity::{Directory, SystemDirectory};
use crate::store::Store;

/// State shared by every connection and timer.
pub struct Shared {
    /// The configuration in force; swapped whole on reload.
    config: ArcSwap<Config>,
    /// Counts the configurations put in force; open connections and event streams
    /// resolve their callers again when it moves (a reload re-reads group membership).
    generation: watch::Sender<u64>,
    /// Where callers' user and group names are looked up.
    pub directory: Arc<dyn Directory>,
    /// The store: every tenant's records and audit chains.
    pub store: Store,
    /// Cancelled when the daemon starts draining.
    pub shutdown: CancellationToken,
    /// Denied attempts being coalesced, so a flood of them costs bounded disk.
    pub denials: crate::denials::Denials,
    /// Ingest bytes held at once, all requests together (`limits.ingest_budget`, read at start).
    pub ingest_budget: crate::ingest::Budget,
}

impl Shared {
    /// State for a daemon running `config`, looking callers up in the system's databases.
    pub fn new(config: Config, store: Store, shutdown: CancellationToken) -> Self {
        Shared {
            ingest_budget: crate::ingest::Budget::new(config.limits.ingest_budget.bytes()),
            store,
            config: ArcSwap::from_pointee(config),
            generation: watch::Sender::new(0),
            directory: Arc::new(SystemDirectory),
            shutdown,
            denials: crate::denials::Denials::default(),
        }
    }

    /// The same state looking callers up in `directory` (tests inject failing lookups).
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = directory;
        self
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Puts a new (validated) configuration in force, and marks every caller resolved
    /// before it as stale.
    pub fn set_config(&self, config: Config) {
        self.config.store(Arc::new(config));
        self.refresh_identities();
    }

    /// Marks every caller resolved so far as stale, so open connections and event
    /// streams look their user and groups up again before their next request or event
    /// (a reload does it, even of an unchanged file: `systemctl reload` after `gpasswd`).
    pub fn refresh_identities(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The generation of the configuration in force (see [`Shared::set_config`]).
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Wakes when a new configuration is put in force.
    pub fn watch_generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}
