//! The real `stewardd` process on a private temp dir: its config file, its stderr kept in
//! a file, start and wait for `/v1/health`, SIGTERM, SIGHUP and SIGKILL, and a run to exit
//! for start-up failures.
//!
//! Not here: in-process daemons ([`crate::inproc`]), raw bytes ([`crate::raw`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use steward::client::Client;

pub use crate::api::{contact, emails_of, get, list_all, verify_all};
pub use crate::bin::stewardd;
pub use crate::config::{ConfigBuilder, TENANTS, config_text};
pub use crate::raw::{RawReply, health, parse_statuses, raw, read_replies};
pub use crate::user::me;

/// A `stewardd` process on a private directory, SIGKILLed on drop.
pub struct Stewardd {
    /// The temp dir holding config, socket, data and logs (removed on drop).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
    /// The socket.
    pub socket: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
    /// Where the process's stderr goes (one file for every start, appended).
    pub stderr: PathBuf,
    /// `RUST_LOG` for the process (`warn` unless changed).
    pub rust_log: String,
}

impl Stewardd {
    /// A temp dir with the reliability config (`limits` and `extra` as in
    /// [`config_text`]); not started.
    pub fn new(limits: &str, extra: &str) -> Stewardd {
        let dir = temp_dir();
        let data = dir.path().join("data");
        Self::with_data_dir(dir, &data, limits, extra)
    }

    /// As [`Stewardd::new`], started ([`Stewardd::start`]).
    pub fn started(limits: &str, extra: &str) -> Stewardd {
        let mut d = Stewardd::new(limits, extra);
        d.start();
        d
    }

    /// As [`Stewardd::new`] with the data directory somewhere else (a small mount).
    pub fn with_data_dir(dir: tempfile::TempDir, data: &Path, limits: &str, extra: &str) -> Self {
        let config = ConfigBuilder::reliability(dir.path(), limits)
            .data_dir(data)
            .extra(extra);
        Self::with_config(dir, &config)
    }

    /// A daemon on `dir` running the config `b` (which must be rooted at `dir`).
    pub fn with_config(dir: tempfile::TempDir, b: &ConfigBuilder) -> Self {
        let config = dir.path().join("steward.toml");
        std::fs::write(&config, b.text()).unwrap();
        let socket = b.socket();
        let stderr = dir.path().join("stderr.log");
        Stewardd {
            dir,
            config,
            socket,
            child: None,
            stderr,
            rust_log: "warn".to_owned(),
        }
    }

    /// Starts the daemon and waits until `/v1/health` answers (panics after 20 s or if it
    /// exits, showing its stderr).
    pub fn start(&mut self) {
        self.start_within(Duration::from_secs(20));
    }

    /// As [`Stewardd::start`], waiting at most `limit`.
    pub fn start_within(&mut self, limit: Duration) {
        self.start_wrapped(&[], limit);
    }

    /// As [`Stewardd::start`], run through `wrapper`: `wrapper[0] wrapper[1..] stewardd
    /// --config FILE` (`["prlimit", "--as=N", "--"]`; with `sh -c SCRIPT`, the script
    /// sees the binary as `$0` and its arguments as `"$@"`).
    pub fn start_wrapped(&mut self, wrapper: &[&str], limit: Duration) {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(stewardd());
                c
            }
            None => Command::new(stewardd()),
        };
        let child = cmd
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", &self.rust_log)
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + limit;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(st) = c.try_wait().unwrap()
            {
                panic!("stewardd exited at start ({st}): {}", self.stderr_text());
            }
            if health(&self.socket) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stewardd did not answer within {limit:?}: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The running process's pid.
    pub fn pid(&self) -> Option<Pid> {
        self.child
            .as_ref()
            .map(|c| Pid::from_raw(i32::try_from(c.id()).unwrap()))
    }

    /// Sends `sig` to the running process.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            kill(pid, sig).unwrap();
        }
    }

    /// SIGKILLs the daemon and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the daemon and waits for it (at most 15 s, then SIGKILL).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let pid = Pid::from_raw(i32::try_from(c.id()).unwrap());
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// A well-behaved client (30 s timeout).
    pub fn client(&self) -> Client {
        Client::new(&self.socket).with_timeout(Some(Duration::from_secs(30)))
    }
}

impl Drop for Stewardd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A fresh private temp dir named `steward-rel-…`.
pub fn temp_dir() -> tempfile::TempDir {
    temp_dir_named("steward-rel-")
}

/// A fresh private temp dir whose name starts with `prefix` (so that a test's leftovers
/// say which suite made them).
pub fn temp_dir_named(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// Runs `stewardd --config FILE` to its exit (for start-up failures) with a time limit;
/// `as_nobody` runs it through `setpriv` as uid/gid 65534. Returns (exit code, stderr).
pub fn run_to_exit(config: &Path, as_nobody: bool, limit: Duration) -> (Option<i32>, String) {
    let mut cmd = if as_nobody {
        crate::user::as_nobody(stewardd())
    } else {
        Command::new(stewardd())
    };
    cmd.arg("--config").arg(config).env("RUST_LOG", "warn");
    wait_to_exit(spawn_daemon(&mut cmd), limit)
}

/// Spawns `cmd` the way the tests run a daemon: no inherited `LISTEN_FDS` (socket
/// activation is the test's choice, never an accident), no stdin, stdout dropped, stderr
/// piped for the test to read.
pub fn spawn_daemon(cmd: &mut Command) -> Child {
    cmd.env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` (spawned by [`spawn_daemon`]) to exit, killing it after `limit`.
/// Returns (exit code, `None` when killed; its stderr).
pub fn wait_to_exit(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.and_then(|s| s.code()), err)
}
