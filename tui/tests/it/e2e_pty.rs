//! End to end in a pseudo-terminal: the real `steward` binary at 80×24 with `NO_COLOR`,
//! read back through a vt100 parser, as an operator would see it.
//!
//! `the_tui_against_a_real_daemon` runs a real daemon in this test process on a socket
//! in a temp dir (seeded through `steward::client::Client` like any client);
//! `the_demo_starts_shows_alerts_and_leaves_nothing_behind` runs `steward demo` with
//! `HOME`, `XDG_RUNTIME_DIR` and `TMPDIR` inside a temp dir and checks it is empty again
//! after `q`; `e_opens_the_record_in_the_editor_and_the_daemon_validates_it` runs the TUI
//! with `EDITOR` set to a script that edits the record's file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use serde_json::json;
use steward::client::Client;
use steward_testkit::config::ConfigBuilder;
use steward_testkit::inproc::TestDaemon;

const ROWS: u16 = 24;
const COLS: u16 = 80;

/// The real `steward` running in a pseudo-terminal, its screen kept by a vt100 parser.
struct Term {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    _master: Box<dyn MasterPty + Send>,
}

impl Term {
    /// Starts `steward args…` with `env` (and `NO_COLOR=1`) at 80×24.
    fn spawn(args: &[&str], env: &[(&str, &Path)], cwd: &Path) -> Term {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_steward"));
        cmd.args(args);
        cmd.cwd(cwd);
        for var in ["STEWARD_SOCKET", "STEWARD_TENANT", "STEWARD_KEYS", "TMUX"] {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1");
        cmd.env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(ROWS).unwrap(),
            NonZeroU16::new(COLS).unwrap(),
            0,
        )));
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().process(&buf[..n]);
            }
        });
        Term {
            child,
            writer,
            screen,
            _master: pair.master,
        }
    }

    /// The screen's text.
    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until `pred` holds for the screen, or fails naming `what`.
    fn wait(&self, within: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text();
            if pred(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("{what}; the screen:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen shows `needle`.
    fn wait_for(&self, needle: &str, what: &str) -> String {
        self.wait(Duration::from_secs(20), what, |t| t.contains(needle))
    }

    /// Types `keys` (raw bytes: `\r` is Enter, `\x1b` Escape), then lets the TUI react.
    fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Waits for the process to end and returns whether it exited 0.
    fn exit_ok(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("steward did not exit; the screen:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The uid that owns `dir` (the current user, for a fresh temp dir).
fn uid_of(dir: &Path) -> u32 {
    std::fs::metadata(dir).unwrap().uid()
}

/// A daemon served by this process on `dir/run/steward.sock` (the pattern of the
/// workspace's `tests/util`): contoso as tenant-admin + ingest, fabrikam as reader.
/// The config of these tests: contoso (tenant-admin and ingest) and fabrikam (reader),
/// granted by the uid that owns `dir` (the test's own).
fn config(dir: &Path) -> ConfigBuilder {
    let uid = uid_of(dir);
    ConfigBuilder::new(dir)
        .tenant("contoso", "Contoso Ltd")
        .tenant("fabrikam", "Fabrikam Inc")
        .grant_uid(uid, "contoso", "tenant-admin")
        .grant_uid(uid, "contoso", "ingest")
        .grant_uid(uid, "fabrikam", "reader")
}

/// A contact and 300 alerts `Alert number 001…300` sharing one timestamp.
async fn seed(socket: &Path) {
    let c = Client::new(socket);
    let r = c
        .put_json(
            "/v1/tenants/contoso/contacts/default",
            &json!({"properties": {"emails": "alice@contoso.com", "phone": "(214)275-4038"}}),
            None,
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{r:?}");
    let now = jiff::Timestamp::now().to_string();
    let alerts: Vec<_> = (1..=300)
        .map(|i| {
            json!({"name": format!("tui-{i:03}"), "properties": {
                "alertDisplayName": format!("Alert number {i:03}"),
                "severity": if i % 3 == 0 { "High" } else { "Low" },
                "status": "Active",
                "timeGeneratedUtc": now,
            }})
        })
        .collect();
    let r = c
        .post_json("/v1/tenants/contoso/alerts", &alerts)
        .await
        .unwrap();
    assert!(r.status.is_success(), "{r:?}");
    assert_eq!(r.json::<serde_json::Value>().unwrap()["ingested"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_against_a_real_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start_config(dir.path(), &config(dir.path())).await;
    seed(&daemon.socket).await;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let socket = daemon.socket.clone();
    let tenant = PathBuf::from("contoso");
    // The pty is driven with blocking reads and sleeps, off the runtime serving the daemon.
    let ok = tokio::task::spawn_blocking(move || {
        let mut t = Term::spawn(
            &[],
            &[
                ("STEWARD_SOCKET", &socket),
                ("STEWARD_TENANT", &tenant),
                ("HOME", &home),
                ("XDG_CONFIG_HOME", &home),
            ],
            &home,
        );
        let first = t.wait_for("contoso", "the TUI does not show the tenant");
        for tab in [
            "Contacts",
            "JIT policies",
            "JIT requests",
            "Alerts",
            "Audit",
        ] {
            assert!(first.contains(tab), "no {tab} tab:\n{first}");
        }
        t.wait_for("connected", "the TUI does not connect");
        t.keys(":alerts\r");
        let shown = t.wait_for("Alert number", "':alerts' shows no alerts");
        // All 300 share one timestamp, so either end may come first: G shows the other.
        let last = if shown.contains("Alert number 300") {
            "Alert number 001"
        } else {
            "Alert number 300"
        };
        t.keys("G");
        t.wait_for(last, "G does not reach the last of 300 alerts");
        t.keys("/number 150\r");
        t.wait(
            Duration::from_secs(20),
            "the filter does not narrow to alert 150",
            |s| s.contains("Alert number 150") && !s.contains("Alert number 149"),
        );
        t.keys("\x1b");
        std::thread::sleep(Duration::from_millis(300));
        t.keys("?");
        t.wait(Duration::from_secs(5), "'?' does not open the help", |s| {
            s.contains("elp") && s.to_lowercase().contains("export")
        });
        t.keys("\x1b");
        std::thread::sleep(Duration::from_millis(300));
        t.keys("q");
        t.exit_ok(Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(ok, "steward did not exit 0 on q");
    daemon.stop().await;
}

/// The editor of `e_opens_the_record_in_the_editor…`: logs the modes of the temp dir and
/// file, then edits the file as `$MODE_FILE` says (`bad`: an email without `@`; `good`:
/// mends it and sets the phone; `race`: another client replaces the record first).
const EDITOR_SCRIPT: &str = r#"#!/bin/sh
f="$1"
stat -c '%a' "$(dirname "$f")" "$f" >> "$LOG"
echo "$f" >> "$LOG"
case "$(cat "$MODE_FILE")" in
  bad) sed -i 's/"emails": "[^"]*"/"emails": "nobody"/' "$f" ;;
  good) sed -i -e 's/"nobody"/"alice@contoso.com"/' -e 's/(214)275-4038/(214)275-9999/' "$f" ;;
  race) printf '{"properties": {"emails": "carol@contoso.com"}}' |
          "$STEWARD_BIN" contacts put default - >/dev/null &&
        sed -i 's/(214)275-9999/(214)275-0000/' "$f" ;;
esac
"#;

/// Issue 19: `e` opens the record in `$EDITOR` (a script here) with the TUI suspended,
/// through a private temp file (0700 dir, 0600 file) removed after; the edit is sent with
/// If-Match; a refused edit shows its error at the field and is kept (ctrl-e re-opens
/// it); a record changed meanwhile shows the newer version and nothing is overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_opens_the_record_in_the_editor_and_the_daemon_validates_it() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start_config(dir.path(), &config(dir.path())).await;
    let c = Client::new(&daemon.socket);
    let r = c
        .put_json(
            "/v1/tenants/contoso/contacts/default",
            &json!({"properties": {"emails": "alice@contoso.com", "phone": "(214)275-4038"}}),
            None,
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{r:?}");
    let home = dir.path().join("home");
    let tmp = dir.path().join("tmp");
    for d in [&home, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, EDITOR_SCRIPT).unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let (log, mode) = (dir.path().join("log"), dir.path().join("mode"));
    let socket = daemon.socket.clone();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_steward"));
    let bin2 = bin.clone();
    let tenant = PathBuf::from("contoso");
    let (log2, mode2, tmp2) = (log.clone(), mode.clone(), tmp.clone());
    let screens = tokio::task::spawn_blocking(move || {
        let mut t = Term::spawn(
            &[],
            &[
                ("STEWARD_SOCKET", &socket),
                ("STEWARD_TENANT", &tenant),
                ("HOME", &home),
                ("XDG_CONFIG_HOME", &home),
                ("TMPDIR", &tmp2),
                ("EDITOR", &editor),
                ("LOG", &log2),
                ("MODE_FILE", &mode2),
                ("STEWARD_BIN", &bin2),
            ],
            &home,
        );
        t.wait_for("connected", "the TUI does not connect");
        t.wait_for("default", "the contact is not listed");
        let stored = || -> serde_json::Value {
            let out = std::process::Command::new(&bin)
                .args(["contacts", "get", "default", "-o", "json"])
                .env("STEWARD_SOCKET", &socket)
                .env("STEWARD_TENANT", "contoso")
                .output()
                .unwrap();
            serde_json::from_slice(&out.stdout).unwrap()
        };
        let mut screens = Vec::new();
        // An email without '@': refused at the field, the edit kept.
        std::fs::write(&mode2, "bad").unwrap();
        t.keys("e");
        screens.push(t.wait_for("no '@'", "a refused edit shows no error"));
        assert_eq!(stored()["properties"]["emails"], "alice@contoso.com");
        // ctrl-e re-opens the kept edit; the script mends it and sets the phone.
        std::fs::write(&mode2, "good").unwrap();
        t.keys("\x05");
        screens.push(t.wait_for("saved", "the mended edit is not saved"));
        let v = stored();
        assert_eq!(v["properties"]["phone"], "(214)275-9999", "{v}");
        assert_eq!(v["properties"]["emails"], "alice@contoso.com", "{v}");
        // Changed by another client while in the editor: the newer version, no overwrite.
        std::fs::write(&mode2, "race").unwrap();
        t.keys("e");
        screens.push(t.wait_for("changed meanwhile", "a 412 does not show the newer version"));
        t.keys("\x1b");
        std::thread::sleep(Duration::from_millis(300));
        t.keys("q");
        assert!(t.exit_ok(Duration::from_secs(10)), "steward did not exit 0");
        screens
    })
    .await
    .unwrap();
    assert!(
        screens[0].contains("nobody"),
        "the kept edit:\n{}",
        screens[0]
    );
    assert!(screens[2].contains("carol@contoso.com"), "{}", screens[2]);
    // What the daemon holds: the good edit, then the other client's record (not ours).
    let v: serde_json::Value = c
        .get_json("/v1/tenants/contoso/contacts/default")
        .await
        .unwrap();
    assert_eq!(v["properties"]["emails"], "carol@contoso.com", "{v}");
    // Each run: a 0700 directory and a 0600 file, both gone afterwards.
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 9, "three editor runs:\n{logged}");
    for run in lines.chunks(3) {
        assert_eq!(run[..2], ["700", "600"], "{logged}");
        let file = Path::new(run[2]);
        assert!(file.starts_with(&tmp), "{logged}");
        assert!(
            !file.exists() && !file.parent().unwrap().exists(),
            "{logged}"
        );
    }
    assert!(
        entries(&tmp).is_empty(),
        "left in TMPDIR: {:?}",
        entries(&tmp)
    );
    daemon.stop().await;
}

/// A `STEWARD_TZ` naming no zone: the TUI and the demo say so and exit 2 before taking
/// the screen or starting anything (the demo leaves nothing in `TMPDIR`).
#[test]
fn a_zone_that_does_not_exist_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let socket = dir.path().join("none.sock");
    for args in [&[][..], &["demo"][..]] {
        let mut t = Term::spawn(
            args,
            &[
                ("STEWARD_TZ", Path::new("Mars/Olympus")),
                ("STEWARD_SOCKET", &socket),
                ("HOME", dir.path()),
                ("TMPDIR", &tmp),
            ],
            dir.path(),
        );
        t.wait_for("Mars/Olympus", "no message naming the zone");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = t.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{args:?} did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.exit_code(), 2, "{args:?}: {}", t.text());
        assert!(
            entries(&tmp).is_empty(),
            "{args:?} left {:?}",
            entries(&tmp)
        );
    }
}

/// Every entry under `dir`, recursively.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(entries(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn the_demo_starts_shows_alerts_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let run = dir.path().join("run");
    let tmp = dir.path().join("tmp");
    for d in [&home, &run, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut t = Term::spawn(
        &["demo"],
        &[
            ("HOME", &home),
            ("XDG_RUNTIME_DIR", &run),
            ("XDG_CONFIG_HOME", &home),
            ("TMPDIR", &tmp),
        ],
        &home,
    );
    t.wait(
        Duration::from_secs(120),
        "the demo does not open the TUI",
        |s| s.contains("contoso") && s.contains("connected"),
    );
    t.keys(":alerts\r");
    let rows = |s: &str| {
        s.lines()
            .filter(|l| {
                ["Informational", "Low", "Medium", "High"]
                    .iter()
                    .any(|sev| l.contains(sev))
            })
            .count()
    };
    t.wait(
        Duration::from_secs(20),
        "the demo shows no alert rows",
        |s| rows(s) >= 5,
    );
    t.keys("q");
    assert!(
        t.exit_ok(Duration::from_secs(20)),
        "steward demo did not exit 0"
    );
    for d in [&home, &run, &tmp] {
        let left = entries(d);
        assert!(left.is_empty(), "the demo left {left:?} behind");
    }
}

/// `stewardd --config CONFIG ARGS…`: (exit code, stdout, stderr).
fn stewardd(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(steward_testkit::bin::stewardd())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 16: the demo's data, kept with `steward demo --keep`, moves into PostgreSQL with
/// `stewardd migrate --from redb --to postgres`, and there every tenant's audit chain
/// verifies at the head the redb file had (the README's "Running a fleet" recipe).
#[test]
fn the_demos_kept_data_moves_to_postgres_and_its_chains_verify_there() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let run = dir.path().join("run");
    let tmp = dir.path().join("tmp");
    for d in [&home, &run, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut t = Term::spawn(
        &["demo", "--keep"],
        &[
            ("HOME", &home),
            ("XDG_RUNTIME_DIR", &run),
            ("XDG_CONFIG_HOME", &home),
            ("TMPDIR", &tmp),
        ],
        &home,
    );
    t.wait(
        Duration::from_secs(120),
        "the demo does not open the TUI",
        |s| s.contains("contoso") && s.contains("connected"),
    );
    t.keys("q");
    assert!(
        t.exit_ok(Duration::from_secs(20)),
        "steward demo did not exit 0"
    );
    let kept: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "the demo kept {kept:?}");
    let data = kept[0].join("data");
    assert!(data.join("steward.redb").is_file(), "no store in {kept:?}");

    // The operator's configs: the demo's tenants, on the file and on the database.
    let url = steward_testkit::postgres::database();
    let config = |sub: &str, pg: bool| {
        let root = dir.path().join(sub);
        let mut b = ConfigBuilder::new(&root).data_dir(&data);
        for (id, name) in [
            ("contoso", "Contoso Ltd"),
            ("fabrikam", "Fabrikam Inc"),
            ("northwind", "Northwind Traders"),
        ] {
            b = b.tenant(id, name);
        }
        if pg {
            b = b.postgres(&url);
        }
        b.grant(&steward_testkit::me(), "*", "tenant-admin").write()
    };
    let (on_file, on_db) = (config("file", false), config("db", true));
    let heads = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("audit head "))
            .map(str::to_owned)
            .collect()
    };
    let (code, out, err) = stewardd(&on_file, &["verify-store"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let file_heads = heads(&out);
    assert_eq!(file_heads.len(), 3, "every demo tenant has a chain: {out}");

    let (code, out, err) = stewardd(&on_db, &["migrate", "--from", "redb", "--to", "postgres"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(heads(&out), file_heads, "{out}");
    let (code, out, err) = stewardd(&on_db, &["verify-store"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("store sound: PostgreSQL"), "{out}");
    assert_eq!(
        heads(&out),
        file_heads,
        "the chains verify in PostgreSQL: {out}"
    );
}
