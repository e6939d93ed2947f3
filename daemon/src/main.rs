//! `stewardd`: the steward daemon's command line. Finds the configuration, starts
//! logging, opens the store, sets up the socket (or takes systemd's), tells systemd
//! when it is ready, and serves until SIGTERM.

mod cmd_store;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use steward::config::Config;
use steward_daemon::daemon::{Daemon, StartError};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Where a config file is looked for when neither `--config` nor `$STEWARD_CONFIG` is given.
const SYSTEM_CONFIG: &str = "/etc/steward/steward.toml";

/// stewardd keeps an organisation's security data about people and the audit log of
/// every change, and serves it on a Unix socket to the users its config grants.
#[derive(Debug, Parser)]
#[command(name = "stewardd", version, about, long_about = None)]
struct Args {
    /// The config file (else $STEWARD_CONFIG, else /etc/steward/steward.toml, else the
    /// embedded default: a private socket and one tenant for your own user).
    #[arg(long, env = "STEWARD_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Do not copy log lines to stderr (systemd units log to files only).
    #[arg(long)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config file without starting; exits 0 when it is valid.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Check a store file (every page's checksum and every tenant's audit chain): FILE (a
    /// backup), else the configured data directory's store with the daemon stopped; exits
    /// 0 when it is sound.
    VerifyStore {
        /// A store file or backup to check instead of the configured store.
        file: Option<PathBuf>,
    },
    /// Write a consistent copy of the whole store as of one moment to FILE (mode 0600,
    /// through a temp file and a rename): by the running daemon over its socket while it
    /// keeps serving (its own user or root only), or from the file when none runs.
    Backup {
        /// The file to write (outside the data directory); an existing file is replaced.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the store with the backup FILE, with the daemon stopped: the copy is
    /// checked fully first and the replaced store is kept aside in the data directory.
    Restore {
        /// The backup to restore.
        file: PathBuf,
    },
    /// Rewrite the store into a fresh file so the space of purged records is given back
    /// (by the running daemon over its socket, or directly when none runs).
    Compact,
    /// Move the store to another backend, with the daemon stopped: `--from redb --to
    /// postgres` copies everything of the data directory's redb file (records, every audit
    /// chain, the HMAC key) into the empty database `[store] postgres_url` names, then
    /// checks the chains and record counts there. The redb file is left as it was.
    Migrate {
        /// The backend the store is in now.
        #[arg(long, value_enum)]
        from: cmd_store::BackendName,
        /// The backend to move it to.
        #[arg(long, value_enum)]
        to: cmd_store::BackendName,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // Before anything is created: the store, logs, bundles and spool files hold personal
    // data, and the umask a shell hands us (022) would make new files world-readable.
    // The daemon's own directories and store also get explicit modes (`private`).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let args = Args::parse();
    if let Some(Command::CheckConfig { file }) = &args.command {
        return match Config::load(file) {
            Ok(c) => {
                println!(
                    "{}: valid ({} tenants, {} grants)",
                    file.display(),
                    c.tenants.len(),
                    c.grants.len()
                );
                if c.store.backend == steward::config::StoreBackend::Postgres {
                    return check_postgres(file, &c);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("stewardd: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        };
    }
    if let Some(
        cmd @ (Command::VerifyStore { .. }
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Compact
        | Command::Migrate { .. }),
    ) = &args.command
    {
        return store_command(args.config.clone(), cmd);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stewardd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `stewardd verify-store | backup | restore | compact` (see `cmd_store.rs`).
fn store_command(config: Option<PathBuf>, cmd: &Command) -> ExitCode {
    let done = load_config(config).and_then(|(c, _)| match cmd {
        Command::Migrate { from, to, json } => cmd_store::migrate(&c, *from, *to, *json),
        _ if c.store.backend == steward::config::StoreBackend::Postgres => cmd_store::postgres(
            &c,
            cmd_name(cmd),
            matches!(cmd, Command::VerifyStore { file: None }),
        ),
        Command::VerifyStore { file } => cmd_store::verify(&c, file.clone()),
        Command::Backup { out, json } => cmd_store::backup(&c, out, *json),
        Command::Restore { file } => cmd_store::restore(&c, file),
        Command::Compact => cmd_store::compact(&c),
        Command::CheckConfig { .. } => Ok(()),
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stewardd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The subcommand's name as typed.
fn cmd_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::VerifyStore { .. } => "verify-store",
        Command::Backup { .. } => "backup",
        Command::Restore { .. } => "restore",
        Command::Compact => "compact",
        Command::Migrate { .. } => "migrate",
        Command::CheckConfig { .. } => "check-config",
    }
}

/// `check-config` of a file with `[store] backend = "postgres"`: connects and reads the
/// schema version, changing nothing.
fn check_postgres(file: &std::path::Path, c: &Config) -> ExitCode {
    let options = steward_daemon::store::pg::PgOptions::from_config(&c.store);
    match steward_daemon::store::pg::check(&options) {
        Ok((server, schema)) => {
            println!(
                "{}: PostgreSQL {server} reached at {} (steward schema version {schema}, this build {})",
                file.display(),
                c.store.postgres_url,
                steward_daemon::store::pg::SCHEMA_VERSION
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "stewardd: {}: [store] postgres_url {}: {e}",
                file.display(),
                c.store.postgres_url
            );
            ExitCode::FAILURE
        }
    }
}

/// The config in force at start, and the file it came from.
fn load_config(arg: Option<PathBuf>) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let path = arg.or_else(|| {
        let p = PathBuf::from(SYSTEM_CONFIG);
        p.exists().then_some(p)
    });
    match path {
        Some(p) => {
            let c = Config::load(&p).with_context(|| format!("config {}", p.display()))?;
            // Watch the absolute path: relative paths break once the cwd changes.
            let abs = std::path::absolute(&p).unwrap_or(p);
            Ok((c, Some(abs)))
        }
        None => {
            let me = steward_daemon::identity::Caller::daemon()
                .context("cannot look up the daemon's own user for the embedded default")?;
            Ok((Config::embedded_default(&me.user), None))
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let (config, path) = load_config(args.config)?;
    let _log_guard = steward_daemon::logging::init(
        &config.daemon.log_dir,
        &config.daemon.log_level,
        config.daemon.log_max_files,
        !args.quiet,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let socket_path = config.daemon.socket.clone();
        let group = config.daemon.socket_group.clone();
        // The store first: a second daemon on the same data dir stops here, before it
        // could touch the first one's socket.
        let data_dir = config.daemon.data_dir.clone();
        // Only a store error needs the directory named; the others name their own path.
        let daemon = Daemon::open(config, path).map_err(|e| match e {
            StartError::Store(_) => anyhow::Error::new(e)
                .context(format!("cannot open the store in {}", data_dir.display())),
            other => anyhow::Error::new(other),
        })?;
        let (std_listener, owned) = match steward_daemon::socket::activated()? {
            Some(l) => (l, false),
            None => (steward_daemon::socket::bind(&socket_path, group.as_deref())?, true),
        };
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(std_listener)?;
        let shutdown = CancellationToken::new();
        spawn_signals(&daemon, shutdown.clone())?;
        tracing::info!(socket = %socket_path.display(), version = env!("CARGO_PKG_VERSION"), "stewardd ready");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        daemon.serve(listener, shutdown).await?;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        if owned {
            steward_daemon::socket::remove(&socket_path);
        }
        tracing::info!("stewardd stopped");
        Ok(())
    })
}

/// SIGTERM and SIGINT drain and stop; SIGHUP reloads the config file.
fn spawn_signals(daemon: &Daemon, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let reload = daemon.reloader();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => match &reload {
                    Some(r) => { let _ = r.reload().await; }
                    None => tracing::info!("SIGHUP: no config file to reload (embedded default)"),
                },
            }
        }
        tracing::info!("stopping: draining in-flight requests");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        shutdown.cancel();
    });
    Ok(())
}
