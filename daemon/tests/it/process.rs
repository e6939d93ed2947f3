#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `stewardd` process as an operator runs it: flags, config checking, the socket it
//! creates, one daemon per data dir, reloads, logs, and a clean stop on SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use steward::client::Client;
use steward_testkit::api::strings;
use steward_testkit::config::ConfigBuilder;
use steward_testkit::me;
use steward_testkit::process::stewardd;

/// The reader-or-owner config of these tests: tenant `contoso`, the test's user `role`.
fn config(dir: &Path, role: &str) -> String {
    ConfigBuilder::new(dir)
        .tenant("contoso", "Contoso")
        .grant(&me(), "contoso", role)
        .text()
}

/// A temp dir with [`config`] (`role` for the test's user) written to its
/// `steward.toml`; returns both.
fn setup(role: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steward.toml");
    std::fs::write(&cfg, config(dir.path(), role)).unwrap();
    (dir, cfg)
}

struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, cfg: &Path) -> Daemon {
        let child = Command::new(stewardd())
            .arg("--config")
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let socket = dir.join("run/steward.sock");
        let mut d = Daemon { child, socket };
        d.wait_ready();
        d
    }

    /// Spawns `cmd` (a daemon serving `socket`, or what starts one) with its output
    /// dropped; not waited for.
    fn spawn(cmd: &mut Command, socket: PathBuf) -> Daemon {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon { child, socket }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("stewardd exited at start: {status}");
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("stewardd did not listen within 15 s");
    }

    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "stewardd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn put_contact(socket: &Path) -> http::StatusCode {
    rt().block_on(async {
        Client::new(socket)
            .put_json(
                "/v1/tenants/contoso/contacts/default",
                &serde_json::json!({"properties": {"emails": "a@contoso.com"}}),
                None,
            )
            .await
            .unwrap()
            .status
    })
}

/// `stewardd FLAG PATH` (`check-config FILE`, `--config FILE`) run to its exit.
fn stewardd_run(flag: &str, path: &Path) -> std::process::Output {
    Command::new(stewardd())
        .arg(flag)
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn help_and_version() {
    let out = Command::new(stewardd()).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("check-config"));
    let out = Command::new(stewardd()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_config_accepts_the_example_and_names_a_typo() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/steward.toml");
    let out = stewardd_run("check-config", &example);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[daemon]\nsockett = \"/x\"\n").unwrap();
    let out = stewardd_run("check-config", &bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sockett"));
}

#[test]
fn check_config_refuses_grants_that_match_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grants.toml");
    let base = config(dir.path(), "reader");
    for (grant, want) in [
        ("user = \"*\"", "grant #2: `user` matches nobody"),
        ("group = \"*\"", "grant #2: `group` matches nobody"),
        ("user = \"\"", "grant #2: `user` is empty"),
        ("uid = 4294967295", "grant #2: `uid = 4294967295`"),
        ("user = \"a\"\nuid = 1", "grant #2: give exactly one of"),
    ] {
        let text = format!("{base}\n[[grant]]\n{grant}\ntenant = \"contoso\"\nrole = \"reader\"\n");
        std::fs::write(&file, text).unwrap();
        let out = stewardd_run("check-config", &file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{grant}: accepted");
        assert!(err.contains(want), "{grant}: {err}");
    }
}

#[test]
fn the_socket_is_private_and_a_second_daemon_refuses_the_same_data_dir() {
    let (dir, cfg) = setup("owner");
    let d = Daemon::start(dir.path(), &cfg);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket), 0o600);
    assert_eq!(mode(&dir.path().join("run")), 0o750);

    let out = stewardd_run("--config", &cfg);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another stewardd"), "{err}");
    // The refused daemon left the live one's socket alone.
    assert_eq!(put_contact(&d.socket), http::StatusCode::CREATED);
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    // A socket file nobody listens on, as a killed daemon leaves it.
    drop(std::os::unix::net::UnixListener::bind(dir.path().join("run/steward.sock")).unwrap());
    let cfg = dir.path().join("steward.toml");
    std::fs::write(&cfg, config(dir.path(), "owner")).unwrap();
    let d = Daemon::start(dir.path(), &cfg);
    assert_eq!(put_contact(&d.socket), http::StatusCode::CREATED);
}

#[test]
fn sighup_reloads_a_valid_file_and_keeps_the_old_one_over_an_invalid_one() {
    let (dir, cfg) = setup("reader");
    let d = Daemon::start(dir.path(), &cfg);
    assert_eq!(put_contact(&d.socket), http::StatusCode::FORBIDDEN);

    // Written in place (the watcher may also see it); SIGHUP asks explicitly.
    std::fs::write(&cfg, config(dir.path(), "owner")).unwrap();
    d.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while put_contact(&d.socket) != http::StatusCode::OK
        && put_contact(&d.socket) != http::StatusCode::CREATED
    {
        assert!(Instant::now() < deadline, "the reload did not apply");
        std::thread::sleep(Duration::from_millis(50));
    }

    std::fs::write(
        &cfg,
        "[[tenant]]\nid = \"contoso\"\nname = \"C\"\ncolour = 1\n",
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        put_contact(&d.socket),
        http::StatusCode::OK,
        "the old config stays in force"
    );

    let audit: serde_json::Value = rt().block_on(async {
        Client::new(&d.socket)
            .get_json("/v1/tenants/contoso/audit?action=config.reload")
            .await
            .unwrap()
    });
    let statuses = strings(&audit["value"], "status");
    assert!(
        statuses.contains(&"Succeeded") && statuses.contains(&"Failed"),
        "{audit}"
    );
}

/// The `config.reload` audit records of contoso, oldest first.
fn reload_records(socket: &Path) -> Vec<serde_json::Value> {
    let audit: serde_json::Value = rt().block_on(async {
        Client::new(socket)
            .get_json("/v1/tenants/contoso/audit?action=config.reload&limit=1000")
            .await
            .unwrap()
    });
    audit["value"].as_array().unwrap().clone()
}

/// Everything the daemon wrote to its log files so far.
fn log_text(dir: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap() {
        text.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    text
}

#[test]
fn reading_the_config_file_never_reloads_it_and_a_change_reloads_once() {
    use std::io::Read;
    let (dir, cfg) = setup("reader");
    let d = Daemon::start(dir.path(), &cfg);
    std::thread::sleep(Duration::from_millis(500));

    // What operators, tools and backup jobs do to a config file without changing it.
    for _ in 0..20 {
        let st = Command::new("cat")
            .arg(&cfg)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let check = stewardd_run("check-config", &cfg);
    assert!(check.status.success(), "{check:?}");
    for _ in 0..5 {
        // An editor opening the file: read it whole, keep it open a moment, close it.
        let mut f = std::fs::File::open(&cfg).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(f);
        // And one opened for writing but closed without a write.
        drop(std::fs::OpenOptions::new().append(true).open(&cfg).unwrap());
    }
    // Long past the watcher's 200 ms debounce: a reload loop would have run many rounds.
    std::thread::sleep(Duration::from_secs(2));
    let n = reload_records(&d.socket).len();
    assert_eq!(
        n, 0,
        "reading the file must not reload it: {n} config.reload records"
    );
    assert!(
        !log_text(dir.path()).contains("configuration reloaded"),
        "{}",
        log_text(dir.path())
    );

    // A real change, saved the way editors do (rename over the file): applied once.
    let tmp = dir.path().join("steward.toml.tmp");
    std::fs::write(&tmp, config(dir.path(), "owner")).unwrap();
    std::fs::rename(&tmp, &cfg).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !put_contact(&d.socket).is_success() {
        assert!(Instant::now() < deadline, "the change did not apply");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let records = reload_records(&d.socket);
    assert_eq!(records.len(), 1, "one change, one reload: {records:?}");
    assert_eq!(records[0]["status"], "Succeeded");

    // SIGHUP on the unchanged file: logged, nothing applied, nothing audited.
    d.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(reload_records(&d.socket).len(), 1);
    let log = log_text(dir.path());
    assert_eq!(log.matches("configuration reloaded").count(), 1, "{log}");
    assert!(log.contains("configuration file unchanged"), "{log}");
}

#[test]
fn sigterm_stops_cleanly_and_logs_every_request() {
    let (dir, cfg) = setup("owner");
    let mut d = Daemon::start(dir.path(), &cfg);
    assert_eq!(put_contact(&d.socket), http::StatusCode::CREATED);
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit();
    assert!(status.success(), "{status}");
    assert!(
        !d.socket.exists(),
        "the daemon removes its socket on a clean stop"
    );
    let logs: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .collect();
    assert_eq!(logs.len(), 1);
    let text = std::fs::read_to_string(logs[0].as_ref().unwrap().path()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("/v1/tenants/contoso/contacts/default"))
        .expect("a request line");
    for field in ["request_id=", "uid=", "method=PUT", "status=201", "us="] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}

#[test]
fn sd_notify_reports_ready_reloading_and_stopping() {
    let (dir, cfg) = setup("owner");
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut cmd = Command::new(stewardd());
    cmd.arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &notify_path);
    let mut d = Daemon::spawn(&mut cmd, dir.path().join("run/steward.sock"));
    let recv = || {
        let mut buf = [0u8; 256];
        let n = notify.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(recv().contains("READY=1"));
    // READY is sent only once the socket listens.
    assert!(std::os::unix::net::UnixStream::connect(&d.socket).is_ok());
    d.signal(Signal::SIGHUP);
    assert!(recv().contains("RELOADING=1"));
    assert!(recv().contains("READY=1"));
    d.signal(Signal::SIGTERM);
    assert!(recv().contains("STOPPING=1"));
    assert!(d.wait_exit().success());
}

#[test]
fn socket_activation_serves_the_socket_it_is_given() {
    let Ok(activate) = which("systemd-socket-activate") else {
        eprintln!(
            "SKIPPED: systemd-socket-activate is not installed (.ci/install-deps installs it)"
        );
        return;
    };
    let (dir, cfg) = setup("owner");
    let activated = dir.path().join("activated.sock");
    let mut cmd = Command::new(activate);
    cmd.arg("-l")
        .arg(&activated)
        .arg(stewardd())
        .arg("--config")
        .arg(&cfg);
    let mut d = Daemon::spawn(&mut cmd, activated.clone());
    d.wait_ready();
    assert_eq!(put_contact(&activated), http::StatusCode::CREATED);
    // The daemon did not create a socket of its own.
    assert!(!dir.path().join("run/steward.sock").exists());
}

/// The full path of a program on `$PATH`.
fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn sigterm_lets_an_export_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steward.toml");
    std::fs::write(
        &cfg,
        config(dir.path(), "tenant-admin")
            + &format!(
                "\n[[grant]]\nuser = \"{}\"\ntenant = \"contoso\"\nrole = \"ingest\"\n",
                me()
            ),
    )
    .unwrap();
    let mut d = Daemon::start(dir.path(), &cfg);
    const N: usize = 20_000;
    let alerts: Vec<serde_json::Value> = (0..N)
        .map(|i| serde_json::json!({"name": format!("a{i}"), "properties": {"severity": "Low", "timeGeneratedUtc": "2026-01-01T00:00:00Z"}}))
        .collect();
    let pid = d.child.id() as i32;
    let count = rt().block_on(async {
        let c = Client::new(&d.socket);
        for chunk in alerts.chunks(5000) {
            let r = c
                .post_json("/v1/tenants/contoso/alerts", &chunk)
                .await
                .unwrap();
            assert!(r.status.is_success());
        }
        let mut s = c
            .request_streaming(
                http::Method::GET,
                "/v1/tenants/contoso/export/alerts?format=ndjson",
                None,
                &[],
            )
            .await
            .unwrap();
        let mut bytes = s.next_chunk().await.unwrap().unwrap().to_vec();
        // The export is under way: ask the daemon to stop, then read the rest slowly.
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        while let Some(chunk) = s.next_chunk().await.unwrap() {
            bytes.extend_from_slice(&chunk);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
    });
    assert_eq!(count, N, "the export in flight was cut short");
    assert!(d.wait_exit().success());
}
