//! Shared helpers for the reliability tests that drive the real `stewardd` process: a
//! private temp dir with its own config file, starting, killing and restarting the
//! daemon, a raw-socket client for hostile bytes, and a well-behaved client
//! (`steward::client::Client`) for checks.
//!
//! Not here: what each suite checks (see `crash.rs`, `hostile.rs`, `overload.rs`,
//! `storage_faults.rs`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;
use steward::client::Client;

/// The `stewardd` binary under test.
pub const STEWARDD: &str = env!("CARGO_BIN_EXE_stewardd");

/// The tenants every reliability config declares.
pub const TENANTS: [&str; 3] = ["contoso", "fabrikam", "northwind"];

/// The OS user running the tests.
pub fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap()
}

/// Config text for a daemon rooted at `dir` (socket, data and logs inside it): three
/// tenants where the test's user is tenant-admin and may ingest alerts, with `limits`
/// as the body of `[limits]` and `extra` appended.
pub fn config_text(dir: &Path, data_dir: &Path, limits: &str, extra: &str) -> String {
    let d = dir.display();
    let me = me();
    let mut s = format!(
        "[daemon]\nsocket = \"{d}/run/steward.sock\"\ndata_dir = \"{}\"\nlog_dir = \"{d}/logs\"\n\n[limits]\n{limits}\n\n",
        data_dir.display()
    );
    for t in TENANTS {
        s.push_str(&format!("[[tenant]]\nid = \"{t}\"\nname = \"{t} org\"\n\n"));
    }
    s.push_str(&format!(
        "[[grant]]\nuser = \"{me}\"\ntenant = \"*\"\nrole = \"tenant-admin\"\n\n\
         [[grant]]\nuser = \"{me}\"\ntenant = \"*\"\nrole = \"ingest\"\n\n{extra}\n"
    ));
    s
}

/// A `stewardd` process on a private directory.
pub struct Stewardd {
    /// The temp dir holding config, socket, data and logs (removed on drop).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
    /// The socket.
    pub socket: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
    /// Where the process's stderr goes (one file per start, appended).
    pub stderr: PathBuf,
}

impl Stewardd {
    /// A temp dir with a config (`limits` and `extra` as in [`config_text`]); not started.
    pub fn new(limits: &str, extra: &str) -> Stewardd {
        let dir = tempfile::Builder::new()
            .prefix("steward-rel-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        Self::with_data_dir(dir, &data, limits, extra)
    }

    /// As [`Stewardd::new`] with the data directory somewhere else (a small mount).
    pub fn with_data_dir(dir: tempfile::TempDir, data: &Path, limits: &str, extra: &str) -> Self {
        let config = dir.path().join("steward.toml");
        std::fs::write(&config, config_text(dir.path(), data, limits, extra)).unwrap();
        let socket = dir.path().join("run/steward.sock");
        let stderr = dir.path().join("stderr.log");
        Stewardd {
            dir,
            config,
            socket,
            child: None,
            stderr,
        }
    }

    /// Starts the daemon and waits until `/v1/health` answers (panics after 20 s or if it
    /// exits, showing its stderr).
    pub fn start(&mut self) {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let child = Command::new(STEWARDD)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
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
                "stewardd did not answer within 20 s: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
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
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
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

    /// A well-behaved client.
    pub fn client(&self) -> Client {
        Client::new(&self.socket).with_timeout(Some(Duration::from_secs(30)))
    }
}

impl Drop for Stewardd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `stewardd --config FILE` to its exit (for start-up failures) with a time limit;
/// `as_nobody` runs it through `setpriv` as uid/gid 65534. Returns (exit status, stderr).
pub fn run_to_exit(config: &Path, as_nobody: bool, limit: Duration) -> (Option<i32>, String) {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            STEWARDD,
        ]);
        c
    } else {
        Command::new(STEWARDD)
    };
    let mut child = cmd
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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

/// Whether `GET /v1/health` answers 200 on `socket` (raw, with a short timeout).
pub fn health(socket: &Path) -> bool {
    let r = raw(
        socket,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
        1,
    );
    r.statuses.first() == Some(&200)
}

/// What came back on a raw connection.
#[derive(Debug, Default, Clone)]
pub struct RawReply {
    /// The status of each complete response, in order.
    pub statuses: Vec<u16>,
    /// Everything read.
    pub bytes: Vec<u8>,
    /// The server closed (EOF or reset) before `want` responses or the time limit.
    pub closed: bool,
    /// The time limit passed with the connection still open.
    pub timed_out: bool,
    /// The connection could not be made at all.
    pub refused: bool,
}

/// Sends `bytes` on a fresh connection and reads until `want` complete responses have
/// arrived, the server closes, or `limit` passes.
pub fn raw(socket: &Path, bytes: &[u8], limit: Duration, want: usize) -> RawReply {
    let mut reply = RawReply::default();
    let Ok(mut s) = UnixStream::connect(socket) else {
        reply.refused = true;
        return reply;
    };
    // The server may answer and close before reading everything (413, 431): a failed
    // write is not the test's failure, what comes back is.
    let _ = s.set_write_timeout(Some(limit));
    let _ = s.write_all(bytes);
    read_replies(&mut s, limit, want, &mut reply);
    reply
}

/// Reads responses from `s` into `reply` (see [`raw`]).
pub fn read_replies(s: &mut UnixStream, limit: Duration, want: usize, reply: &mut RawReply) {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 16384];
    loop {
        reply.statuses = parse_statuses(&reply.bytes);
        if reply.statuses.len() >= want {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            reply.timed_out = true;
            return;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => {
                reply.closed = true;
                reply.statuses = parse_statuses(&reply.bytes);
                return;
            }
            Ok(n) => reply.bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                reply.timed_out = true;
                reply.statuses = parse_statuses(&reply.bytes);
                return;
            }
            Err(_) => {
                reply.closed = true;
                reply.statuses = parse_statuses(&reply.bytes);
                return;
            }
        }
    }
}

/// The statuses of the complete responses at the front of `b` (status line, headers, and a
/// `Content-Length` or chunked body; a response with neither counts once its head is in).
pub fn parse_statuses(mut b: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(end) = find(b, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&b[..end]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let lower = head.to_ascii_lowercase();
        let body = &b[end + 4..];
        let len = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let consumed = if let Some(n) = len {
            if body.len() < n {
                break;
            }
            n
        } else if lower.contains("transfer-encoding: chunked") {
            match find(body, b"0\r\n\r\n") {
                Some(i) => i + 5,
                None => break,
            }
        } else {
            0
        };
        // 100 Continue and other interim answers are not the response.
        if status >= 200 {
            out.push(status);
        }
        b = &body[consumed..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// GET `path` with a well-behaved client, decoding the JSON body.
pub async fn get(c: &Client, path: &str) -> (StatusCode, Value) {
    let r = c.get(path).await.unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// Every item of a list, following `nextLink`.
pub async fn list_all(c: &Client, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(format!("{path}?limit=1000"));
    while let Some(p) = next {
        let (st, v) = get(c, &p).await;
        assert_eq!(st, StatusCode::OK, "{p}: {v}");
        out.extend(v["value"].as_array().cloned().unwrap_or_default());
        next = v["nextLink"].as_str().map(str::to_owned);
    }
    out
}

/// Asserts that every tenant's audit chain verifies; returns each tenant's record count.
pub async fn verify_all(c: &Client) -> Vec<u64> {
    let mut counts = Vec::new();
    for t in TENANTS {
        let (st, v) = get(c, &format!("/v1/tenants/{t}/audit/verify")).await;
        assert_eq!(st, StatusCode::OK, "verify {t}: {v}");
        assert_eq!(
            v["ok"],
            Value::Bool(true),
            "audit chain of {t} is broken: {v}"
        );
        counts.push(v["records"].as_u64().unwrap_or(0));
    }
    counts
}

/// A contact body (2023-12-01-preview shape) whose emails carry `tag`.
pub fn contact(tag: &str) -> Value {
    serde_json::json!({
        "properties": {
            "emails": format!("{tag}@example.com"),
            "phone": "+1 (555) 010-0000",
            "isEnabled": true,
            "notificationsByRole": {"state": "On", "roles": ["Owner"]},
            "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Low"}]
        }
    })
}

/// The `emails` of a stored contact.
pub fn emails_of(v: &Value) -> Option<String> {
    v["properties"]["emails"].as_str().map(str::to_owned)
}
