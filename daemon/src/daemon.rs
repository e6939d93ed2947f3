//! Starting and stopping a daemon: open the store, apply what fell due while it was
//! down, then serve a listener until told to stop. `stewardd` and `steward demo` (and
//! the tests) all start daemons through here, on listeners of their own.

use std::path::PathBuf;
use std::sync::Arc;

use steward::config::Config;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::state::Shared;

/// Why a daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or the store file is missing its protections (another user
    /// owns it or can write it, the store is readable by others, …) or cannot be created.
    #[error(transparent)]
    Private(#[from] crate::private::PrivateError),
    /// The store could not be opened (locked by another daemon, damaged, …).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The config file could not be watched.
    #[error(transparent)]
    Watch(#[from] crate::reload::WatchError),
    /// `[jit] firewall` is on but its table could not be built (no `nft`, no
    /// CAP_NET_ADMIN, …): the daemon does not serve with doors it cannot control.
    #[error(transparent)]
    Firewall(#[from] crate::firewall::FirewallError),
}

/// A daemon whose store is open and whose overdue timers have run, ready to serve.
pub struct Daemon {
    /// State shared with connections and timers.
    shared: Arc<Shared>,
    /// The config file to watch and reload, if the daemon runs from one.
    config_path: Option<PathBuf>,
}

impl Daemon {
    /// Opens the daemon's data for `config`. `config_path` is the file the config came
    /// from, watched for changes while serving (none for an in-memory config).
    pub fn open(config: Config, config_path: Option<PathBuf>) -> Result<Daemon, StartError> {
        let dir = config.daemon.data_dir.clone();
        // Explicit modes and checks, not the process umask: `steward demo` and the tests
        // run daemons in-process under whatever umask they have.
        use crate::private::{Dir, own_dir, store_file};
        own_dir(&dir, Dir::Data, None)?.log(Dir::Data, &dir);
        let postgres = config.store.backend == steward::config::StoreBackend::Postgres;
        if !postgres {
            store_file(&dir.join(crate::store::DB_FILE))?;
        }
        if let Err(e) = crate::ingest::spool::ensure_dirs(&config) {
            tracing::error!(error = %e, "cannot create spool directories");
        }
        let options = crate::store::StoreOptions {
            verify_on_start: config.daemon.verify_on_start,
            ..Default::default()
        };
        let store = if postgres {
            let pg = crate::store::pg::PgOptions::from_config(&config.store);
            crate::store::Store::open_postgres(&pg, options)?
        } else {
            crate::store::Store::open(&dir, options)?
        };
        let shared = Arc::new(Shared::new(config, store, CancellationToken::new()));
        crate::timers::expire_overdue_at_start(&shared)?;
        // firewall: the table is rebuilt from the store before the socket opens.
        if crate::firewall::enabled(&shared.config()) {
            crate::firewall::sync_blocking(&shared, &crate::firewall::Trigger::Start)?;
        }
        Ok(Daemon {
            shared,
            config_path,
        })
    }

    /// Serves `listener` until `shutdown` is cancelled, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: UnixListener,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let shared = self.shared;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let _watch = match &self.config_path {
            Some(p) => Some(crate::reload::watch(p, tx.clone())?),
            None => None,
        };
        if let Some(path) = self.config_path.clone() {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                while rx.recv().await.is_some() {
                    let _ = crate::reload::reload(&shared, &path).await;
                }
            });
        }
        let token = shared.shutdown.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            token.cancel();
        });
        let timers = crate::timers::start(&shared);
        let denials = crate::denials::start(&shared);
        let _spool = match crate::ingest::spool::start(&shared) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "the spool is not watched");
                None
            }
        };
        crate::dsr::resume_all(&shared).await;
        crate::server::serve(listener, Arc::clone(&shared), shutdown).await;
        shared.shutdown.cancel();
        let _ = denials.await;
        shared.denials.flush(&shared, true).await;
        futures::future::join_all(timers).await;
        drop(tx);
        Ok(())
    }

    /// What SIGHUP uses to put the config file in force again, if the daemon has one.
    pub fn reloader(&self) -> Option<Reloader> {
        self.config_path.clone().map(|path| Reloader {
            shared: Arc::clone(&self.shared),
            path,
        })
    }
}

/// Puts a daemon's config file in force again on demand (SIGHUP in `stewardd`, a reload
/// in an in-process test); the only thing it can do.
#[derive(Clone)]
pub struct Reloader {
    /// The daemon whose configuration it replaces.
    shared: Arc<Shared>,
    /// The config file it reads.
    path: PathBuf,
}

impl Reloader {
    /// Reads the config file and puts it in force, or keeps the one in force and says why.
    pub async fn reload(&self) -> Result<(), String> {
        crate::reload::reload(&self.shared, &self.path).await
    }
}

/// Runs a daemon for `config` on `listener` until `shutdown` is cancelled: the
/// in-process entry point for `steward demo` and tests.
pub async fn run(
    listener: UnixListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let daemon = Daemon::open(config, None)?;
    daemon.serve(listener, shutdown).await
}
