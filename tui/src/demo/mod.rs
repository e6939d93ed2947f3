//! `steward demo`: a private daemon with realistic demo data, and the TUI on it, in one
//! command.
//!
//! Everything lives in one fresh temp dir (data, socket; the daemon writes no log files
//! because nobody installs its file logger here): a first daemon, where the current user
//! may also ingest everywhere, is seeded through the socket API exactly as any client
//! would ([`seed`]); it is stopped and a second daemon on the same data, with the
//! demo's real grants ([`config`]: tenant-admin in contoso, reader in fabrikam, owner +
//! ingest in northwind), serves the TUI. Quitting stops the daemon (cancel, then wait
//! for it to finish) and removes the temp dir, unless `--keep`. `--tenant` and `--as`
//! choose where the TUI opens and under which profile; `--socket` is refused
//! ([`options`]).
//!
//! What it is not: a test fixture (tests start their own daemons) nor a load generator.
//! The daemon's tracing is deliberately left without a subscriber, so nothing it logs
//! can draw over the TUI.

pub mod config;
pub mod options;
pub mod seed;

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use steward::client::Client;
use steward_daemon::daemon::{Daemon, StartError};
use steward_daemon::store::StoreError;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The tenant the TUI opens on unless `--tenant` names another demo tenant.
pub const START_TENANT: &str = "contoso";

/// Runs the demo until the operator quits the TUI, opened as `opts` says. With `keep`,
/// the temp dir (data and all) is left in place and its path printed.
pub fn run(keep: bool, opts: options::Options) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let dir = tempfile::Builder::new()
        .prefix("steward-demo-")
        .tempdir()
        .context("cannot create a temp dir for the demo")?;
    let result = rt.block_on(run_in(dir.path(), opts));
    // Let tasks still winding down (a last connection) finish before the files go.
    rt.shutdown_timeout(Duration::from_secs(2));
    if keep {
        let path = dir.keep();
        // Not eprintln!: a terminal that went away must not turn into a panic here.
        let _ = writeln!(
            std::io::stderr(),
            "steward demo: data kept in {}",
            path.display()
        );
    } else {
        dir.close().context("cannot remove the demo's temp dir")?;
    }
    result
}

/// The demo inside the runtime: seed, serve, TUI, stop.
async fn run_in(dir: &Path, opts: options::Options) -> anyhow::Result<()> {
    for note in &opts.notes {
        let _ = writeln!(std::io::stderr(), "steward demo: {note}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "starting demo… (a private daemon in {})",
        dir.display()
    );
    // Keys typed while the data is seeded wait, unechoed, for the TUI instead of landing
    // in a cooked terminal line; the TUI's own restore (or this guard) undoes it.
    let _raw = RawMode::enable();
    let uid = std::fs::metadata(dir)
        .context("cannot read the demo dir")?
        .uid();
    let paths = config::Paths::new(dir);
    // 0700 whatever the umask: the client refuses a socket dir others can write.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&paths.run)
        .and_then(|()| std::fs::set_permissions(&paths.run, Permissions::from_mode(0o700)))
        .context("cannot create the demo's socket dir")?;

    // A hang-up or kill while seeding (the terminal closed) still cleans up: the
    // signals are watched from here on, and the TUI watches its own once it runs.
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;

    // Seeding: the current user may also ingest alerts in every tenant.
    let seeding = start(&paths, &config::text(&paths, uid, config::Phase::Seeding)).await?;
    let client = Client::new(&paths.socket);
    let seeded = tokio::select! {
        r = seed::seed_all(&client) => r.context("cannot seed the demo data"),
        _ = hup.recv() => Err(anyhow::anyhow!("interrupted (SIGHUP) while seeding")),
        _ = term.recv() => Err(anyhow::anyhow!("interrupted (SIGTERM) while seeding")),
        _ = int.recv() => Err(anyhow::anyhow!("interrupted while seeding")),
    };
    seeding.stop().await?;
    seeded?;

    let daemon = start(&paths, &config::text(&paths, uid, config::Phase::Demo)).await?;
    let opts = steward_tui::tui::TuiOptions {
        socket: paths.socket.clone(),
        tenant: Some(opts.tenant),
        role: opts.role,
        keys: None,
    };
    let tui = steward_tui::tui::run_async(opts).await;
    let stopped = daemon.stop().await;
    tui?;
    stopped
}

/// A daemon serving in this process.
struct Running {
    /// Cancelled to stop it.
    shutdown: CancellationToken,
    /// Ends when it has finished serving.
    handle: JoinHandle<Result<(), StartError>>,
}

impl Running {
    /// Stops the daemon and waits until it has drained and released its store.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle
            .await
            .context("the demo daemon's task failed")?
            .context("the demo daemon failed")
    }
}

/// Opens a daemon on the demo's data for `config_text` and serves its socket.
async fn start(paths: &config::Paths, config_text: &str) -> anyhow::Result<Running> {
    let config = steward::config::Config::parse(config_text)
        .context("the demo's generated config is invalid")?;
    // A daemon that just stopped may hold the store for a moment longer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let daemon = loop {
        match Daemon::open(config.clone(), None) {
            Ok(d) => break d,
            Err(StartError::Store(StoreError::AlreadyOpen { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => return Err(e).context("cannot open the demo daemon"),
        }
    };
    let _ = std::fs::remove_file(&paths.socket);
    let listener = tokio::net::UnixListener::bind(&paths.socket)
        .with_context(|| format!("cannot listen on {}", paths.socket.display()))?;
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(daemon.serve(listener, shutdown.clone()));
    Ok(Running { shutdown, handle })
}

/// Raw terminal mode from the start of the demo, so early keys reach the TUI.
struct RawMode;

impl RawMode {
    fn enable() -> RawMode {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            let _ = ratatui::crossterm::terminal::enable_raw_mode();
        }
        RawMode
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // A no-op when the TUI has already restored the terminal.
        let _ = ratatui::crossterm::terminal::disable_raw_mode();
    }
}
