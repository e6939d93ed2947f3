//! The real `stewardd` as a child process on a temp dir: its config, start (timed to the
//! first answered `GET /v1/health`), stop, and its memory from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::client::Conn;

/// The tenant every measurement works in.
pub const TENANT: &str = "bench";

/// A second tenant, whose writes must not wait for the first one's big ingests.
pub const OTHER_TENANT: &str = "other";

/// How the daemon is configured for a phase.
#[derive(Clone, Copy)]
pub struct Settings {
    /// `[retention] sweep_interval`.
    pub sweep_interval: &'static str,
}

/// A running daemon.
pub struct Daemon {
    child: Child,
    /// Its socket.
    pub socket: PathBuf,
    /// Time from spawn to the first answered health check.
    pub startup: Duration,
}

/// The OS user the bench runs as (granted tenant-admin and ingest).
pub fn me() -> Result<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid())?
        .map(|u| u.name)
        .context("the current uid has no user name")
}

fn config(dir: &Path, s: Settings) -> Result<String> {
    let d = dir.display();
    Ok(format!(
        r#"
[daemon]
socket = "{d}/run/steward.sock"
data_dir = "{d}/data"
log_dir = "{d}/logs"
log_level = "warn"

[limits]
max_ingest_body = "64MiB"

[retention]
# Alerts are generated days in the past, so every one is due at once; the sweep only
# runs in the purge phase.
alerts = "1d"
sweep_interval = "{sweep}"

[[tenant]]
id = "{TENANT}"
name = "Bench"

[[grant]]
user = "{me}"
tenant = "{TENANT}"
role = "tenant-admin"

[[grant]]
user = "{me}"
tenant = "{TENANT}"
role = "ingest"

[[tenant]]
id = "{OTHER_TENANT}"
name = "Another tenant"

[[grant]]
user = "{me}"
tenant = "{OTHER_TENANT}"
role = "tenant-admin"
"#,
        sweep = s.sweep_interval,
        me = me()?
    ))
}

impl Daemon {
    /// Starts `stewardd` on `dir` and waits until it answers.
    pub async fn start(dir: &Path, s: Settings) -> Result<Daemon> {
        std::fs::create_dir_all(dir.join("run"))?;
        // The config gets a directory of its own: the daemon watches the config's
        // directory, and the SQLite baseline and the fsync floor write into `dir`.
        std::fs::create_dir_all(dir.join("etc"))?;
        let cfg = dir.join("etc/steward.toml");
        std::fs::write(&cfg, config(dir, s)?)?;
        let socket = dir.join("run/steward.sock");
        let started = Instant::now();
        // As config/stewardd.service runs it: two malloc arenas (docs/PERFORMANCE.md,
        // "Export memory").
        let child = Command::new(env!("CARGO_BIN_EXE_stewardd"))
            .arg("--config")
            .arg(&cfg)
            .arg("--quiet")
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn stewardd")?;
        let mut d = Daemon {
            child,
            socket,
            startup: Duration::ZERO,
        };
        loop {
            if let Ok(mut c) = Conn::open(&d.socket).await
                && c.get_ok("/v1/health").await.is_ok()
            {
                d.startup = started.elapsed();
                return Ok(d);
            }
            if let Some(status) = d.child.try_wait()? {
                bail!("stewardd exited before it was ready: {status}");
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("stewardd not ready after 120 s");
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in bytes.
    pub fn rss(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmRSS:").map(|k| k * 1024)
    }

    /// Peak resident memory since the last [`Daemon::reset_peak`], in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmHWM:").map(|k| k * 1024)
    }

    /// Resets the kernel's peak-RSS mark (`clear_refs` 5), so the next peak belongs to
    /// what follows.
    pub fn reset_peak(&self) -> Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .context("reset the peak RSS (/proc/PID/clear_refs)")
    }

    /// SIGTERM, then waits for the process to finish.
    pub fn stop(mut self) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("stewardd did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Only reached on an error path: never leave a daemon behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/PID/status` field in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}
