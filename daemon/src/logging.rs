//! Operational logs: daily-rotated files through tracing-appender (non-blocking, so a
//! slow disk never stalls a request; lines may be dropped under pressure) plus stderr
//! in the foreground. The audit log never goes through here.
//!
//! Logs name users, tenants and paths, so they are private: the log directory is the
//! daemon's own, `0700` (created so, tightened if others could list it, refused if
//! another user owns it or can write it: [`crate::private`]), and log files are `0600`.
//! tracing-appender creates each day's file with the process umask and has no mode
//! option, so the files present at start are set to `0600` here and the ones created
//! later rely on the umask: `stewardd` sets `077` before anything else. (`steward demo`
//! installs no file logger.)

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The start of every log file's name.
const PREFIX: &str = "stewardd";

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log directory could not be created or written.
    #[error("cannot write logs to {dir}: {source}")]
    Dir {
        /// The log directory.
        dir: String,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The log directory is not private to the daemon (or cannot be made so).
    #[error(transparent)]
    Private(#[from] crate::private::PrivateError),
    /// `log_level` / `RUST_LOG` is not a valid filter.
    #[error("log_level: {0}")]
    Filter(String),
}

/// Installs the global subscriber: `stewardd.YYYY-MM-DD.log` files in `dir` (keeping
/// `max_files`) and, when `stderr` is set, human-readable lines on stderr. The returned
/// guard flushes the file writer when dropped: keep it alive for the daemon's life.
pub fn init(
    dir: &Path,
    level: &str,
    max_files: usize,
    stderr: bool,
) -> Result<WorkerGuard, LogError> {
    let dir_err = |source: Box<dyn std::error::Error + Send + Sync>| LogError::Dir {
        dir: dir.display().to_string(),
        source,
    };
    use crate::private::{Dir, own_dir, tighten_files};
    let dir_state = own_dir(dir, Dir::Log, None)?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(PREFIX)
        .filename_suffix("log")
        .max_log_files(max_files.max(1))
        .build(dir)
        .map_err(|e| dir_err(Box::new(e)))?;
    // Today's file exists now; it and older ones may come from a looser umask.
    let tightened = tighten_files(dir, PREFIX);
    let (file, guard) = tracing_appender::non_blocking(appender);
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::try_new(f),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| LogError::Filter(e.to_string()))?;
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(file)
        .with_ansi(false);
    let stderr_layer = stderr.then(|| {
        use std::io::IsTerminal;
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    // A second init (tests starting several daemons in one process) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    dir_state.log(Dir::Log, dir);
    for f in tightened {
        tracing::warn!(path = %f.display(), "a log file could be read by other users; its mode is now 0600");
    }
    Ok(guard)
}
