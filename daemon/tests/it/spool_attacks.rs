//! The spool against a hostile alert source (issue 12, items 1 and 2), on the real
//! `stewardd` process: a source that can write into its own tenant's spool directory
//! replaces `rejected/` by a symlink towards the store, points `done` at another tenant's
//! spool, swaps a listed file for a FIFO or a symlink to `/dev/zero`, names a file with a
//! newline, drops a file the daemon cannot open, a directory named `x.json`, a hard link
//! to a file outside the spool, a huge sparse file, or a symlink to `/`.
//!
//! Sources are real OS users made with `useradd` (removed on drop), acting through
//! `sh -c` with their own uid and gid; the tenant directory is group-writable for them
//! without the sticky bit, so they can rename and replace `done/` and `rejected/` — the
//! daemon must hold anyway. Where the daemon's own permissions matter (an unreadable
//! file), the daemon runs as a user of its own too, since root would read anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};
use steward_testkit::process::{
    Stewardd, get, health, list_all, stewardd, temp_dir_named, verify_all,
};
use steward_testkit::user::OsUser;

/// A daemon whose spool (`<dir>/spool`, rescanned every 200 ms) sources can reach.
struct Rig {
    d: Stewardd,
    spool: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let dir = temp_dir_named("stw-spool-");
        // Sources pass through to their tenant directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let spool = dir.path().join("spool");
        let data = dir.path().join("data");
        let extra = format!(
            "[ingest]\nspool_dir = \"{}\"\nrescan_interval = \"200ms\"\n",
            spool.display()
        );
        let d = Stewardd::with_data_dir(dir, &data, "", &extra);
        Rig { d, spool }
    }

    /// `<spool>/<tenant>`.
    fn tenant(&self, t: &str) -> PathBuf {
        self.spool.join(t)
    }

    /// Lets `src` write into `tenant`'s directory as an operator would (its group, 2770,
    /// no sticky bit: the source can replace `done/` and `rejected/`).
    fn open_to(&self, tenant: &str, src: &OsUser) {
        let t = self.tenant(tenant);
        nix::unistd::chown(&t, None, Some(nix::unistd::Gid::from_raw(src.gid))).unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o2770)).unwrap();
    }

    /// Starts the daemon as `user` (uid, gid) instead of root.
    fn start_as(&mut self, uid: u32, gid: u32) {
        let chown = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(self.d.dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.d.stderr)
            .unwrap();
        let child = Command::new(stewardd())
            .arg("--config")
            .arg(&self.d.config)
            .env("RUST_LOG", "warn")
            .env_remove("LISTEN_FDS")
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        self.d.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !health(&self.d.socket) {
            assert!(self.d.alive(), "stewardd exited: {}", self.d.stderr_text());
            assert!(Instant::now() < deadline, "{}", self.d.stderr_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the daemon wrote to its log files (stderr has the same lines).
    fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(self.d.dir.path().join("logs")) {
            for e in rd.flatten() {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }
}

fn alert(name: &str) -> Value {
    json!({"name": name, "properties": {
        "alertDisplayName": "Login from new IP", "severity": "Medium", "status": "Active",
        "timeGeneratedUtc": jiff::Timestamp::now().to_string(),
        "entities": [{"type": "account", "name": "carol", "upn": "carol@contoso.com"}]
    }})
}

async fn alert_status(d: &Stewardd, tenant: &str, name: &str) -> StatusCode {
    get(&d.client(), &format!("/v1/tenants/{tenant}/alerts/{name}"))
        .await
        .0
}

/// Polls `f` every 50 ms for at most `within`.
async fn until<F: FnMut() -> bool>(within: Duration, mut f: F) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_alert(d: &Stewardd, tenant: &str, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if alert_status(d, tenant, name).await == StatusCode::OK {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Names in `dir` starting with `prefix`.
fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn is_real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Writes one contact per tenant (the data that must survive).
async fn seed(d: &Stewardd) {
    let c = d.client();
    for t in steward_testkit::process::TENANTS {
        let r = c
            .put_json(
                &format!("/v1/tenants/{t}/contacts/default"),
                &steward_testkit::process::contact(t),
                None,
            )
            .await
            .unwrap();
        assert!(r.status.is_success(), "seed {t}: {}", r.status);
    }
}

async fn check_seed(d: &Stewardd) {
    let c = d.client();
    for t in steward_testkit::process::TENANTS {
        let (s, v) = get(&c, &format!("/v1/tenants/{t}/contacts/default")).await;
        assert_eq!(s, StatusCode::OK, "{t}: {v}");
        assert_eq!(
            steward_testkit::process::emails_of(&v).as_deref(),
            Some(format!("{t}@example.com").as_str())
        );
    }
}

/// Item 1 (critical): `rejected/` replaced by a symlink to a directory of the source's
/// where `bad.json.error` links to the store. The daemon writes its `.error` into a real
/// `rejected/` of its own; the store is untouched, and the daemon restarts with every
/// tenant's data and audit chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_replaced_by_a_symlink_to_the_store_cannot_reach_it() {
    let src = OsUser::new("spoolr");
    let mut rig = Rig::new();
    rig.d.start();
    seed(&rig.d).await;
    rig.open_to("contoso", &src);
    let t = rig.tenant("contoso");
    let store = rig.d.dir.path().join("data/steward.redb");
    assert!(store.exists());
    // Inside the source's own directory: links into the data dir and to the store.
    src.sh(&format!(
        "cd {t} && mkdir evil && ln -s {store} evil/bad.json.error && ln -s {data} evil/data \
         && mv rejected rejected.old && ln -s evil rejected",
        t = t.display(),
        store = store.display(),
        data = store.parent().unwrap().display(),
    ));
    src.sh(&format!(
        "cd {} && printf 'this is not json\\n' > bad.tmp && mv bad.tmp bad.json",
        t.display()
    ));
    assert!(
        until(Duration::from_secs(10), || !t.join("bad.json").exists()).await,
        "bad.json never dealt with"
    );
    let raw = std::fs::read(&store).unwrap();
    assert!(
        !raw.windows(26).any(|w| w == b"nothing of it was ingested"),
        "the .error was written into the store"
    );
    assert!(!store.parent().unwrap().join("bad.json").exists());
    // Restart: the store opens, every tenant's data and chain are there.
    assert!(rig.d.stop().unwrap().success(), "{}", rig.d.stderr_text());
    rig.d.start();
    check_seed(&rig.d).await;
    verify_all(&rig.d.client()).await;
    // The file and its report are in a real rejected/ of the daemon's.
    assert!(
        is_real_dir(&t.join("rejected")),
        "rejected/ is not a real directory"
    );
    let report = std::fs::read_to_string(t.join("rejected/bad.json.error")).unwrap();
    assert!(report.contains("rejected whole"), "{report}");
    assert!(t.join("rejected/bad.json").is_file());
    assert_eq!(
        names(&t, "rejected.displaced-").len(),
        1,
        "impostor not moved aside"
    );
    assert!(rig.d.stop().unwrap().success());
}

/// Item 2: `done -> ../fabrikam` must not move contoso's file into fabrikam's spool:
/// the alert is contoso's only, fabrikam's audit shows no ingest, nothing lands there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_pointing_at_another_tenant_moves_nothing_there() {
    let src = OsUser::new("spoold");
    let mut rig = Rig::new();
    rig.d.start();
    rig.open_to("contoso", &src);
    let t = rig.tenant("contoso");
    src.sh(&format!(
        "cd {} && mv done done.old && ln -s ../fabrikam done",
        t.display()
    ));
    src.sh(&format!(
        "cd {} && printf '%s\\n' '{}' > x.tmp && mv x.tmp x.json",
        t.display(),
        alert("inj-1")
    ));
    assert!(
        wait_alert(&rig.d, "contoso", "inj-1").await,
        "not ingested in contoso"
    );
    assert!(
        until(Duration::from_secs(10), || !t.join("x.json").exists()).await,
        "x.json never moved"
    );
    // Several rescans later, fabrikam holds nothing of it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        alert_status(&rig.d, "fabrikam", "inj-1").await,
        StatusCode::NOT_FOUND,
        "contoso's source injected an alert into fabrikam"
    );
    let audit = list_all(&rig.d.client(), "/v1/tenants/fabrikam/audit").await;
    assert!(
        !audit.iter().any(|r| r["operationName"] == "alerts.ingest"),
        "fabrikam's audit shows an ingest: {audit:?}"
    );
    assert!(names(&rig.tenant("fabrikam"), "x.json").is_empty());
    let fab_done = rig.tenant("fabrikam").join("done");
    assert!(names(&fab_done, "x.json").is_empty());
    // It is in contoso's own, real done/; the symlink was moved aside.
    assert!(
        t.join("done/x.json").is_file(),
        "x.json not in contoso's done/"
    );
    assert!(is_real_dir(&t.join("done")));
    assert_eq!(names(&t, "done.displaced-").len(), 1);
    assert!(rig.d.stop().unwrap().success());
}

/// Item 1: odd entries named like spool files — a FIFO, a symlink to `/dev/zero`, a
/// directory, a hard link to a file outside the spool, a 10 GiB sparse file — are each
/// moved to `rejected/` with a `.error` saying why, read nothing, and block nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_entries_are_rejected_without_being_read() {
    let src = OsUser::new("spoolo");
    let mut rig = Rig::new();
    rig.d.start();
    rig.open_to("contoso", &src);
    let t = rig.tenant("contoso");
    // A file of the source's outside the spool, holding a valid alert.
    let outside = rig.d.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    nix::unistd::chown(&outside, Some(nix::unistd::Uid::from_raw(src.uid)), None).unwrap();
    src.sh(&format!(
        "cd {o} && printf '%s\\n' '{a}' > outside.json && cd {t} && mkfifo fifo.json \
         && ln -s /dev/zero zero.json && mkdir dir.json && ln {o}/outside.json link.json \
         && truncate -s 10G sparse.ndjson",
        o = outside.display(),
        t = t.display(),
        a = alert("linked-1"),
    ));
    let odd = [
        ("fifo.json", "FIFO"),
        ("zero.json", "symbolic link"),
        ("dir.json", "directory"),
        ("link.json", "hard links"),
        ("sparse.ndjson", "more than the ingest limit"),
    ];
    let pid = rig.d.child.as_ref().unwrap().id();
    for (name, why) in odd {
        assert!(
            until(Duration::from_secs(30), || std::fs::symlink_metadata(
                t.join("rejected").join(name)
            )
            .is_ok())
            .await,
            "{name} not moved to rejected/"
        );
        let report =
            std::fs::read_to_string(t.join("rejected").join(format!("{name}.error"))).unwrap();
        assert!(report.contains(why), "{name}: {report}");
    }
    assert!(
        rss_kib(pid) < 256 * 1024,
        "daemon grew to {} KiB",
        rss_kib(pid)
    );
    assert_eq!(
        alert_status(&rig.d, "contoso", "linked-1").await,
        StatusCode::NOT_FOUND,
        "a hard link to a file outside the spool was ingested"
    );
    // The spool still works, for contoso and the others.
    for tenant in ["contoso", "fabrikam"] {
        let f = rig.tenant(tenant).join("after.json");
        std::fs::write(&f, alert(&format!("after-{tenant}")).to_string()).unwrap();
        assert!(wait_alert(&rig.d, tenant, &format!("after-{tenant}")).await);
    }
    assert!(rig.d.stop().unwrap().success());
}

/// The daemon's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Item 1, the race: while the source keeps swapping `a.json` between a regular file, a
/// FIFO and a symlink to `/dev/zero`, the other tenants' files are still ingested, the
/// daemon does not grow, and SIGTERM still ends the real process promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_file_swapped_for_a_fifo_or_dev_zero_blocks_nothing() {
    let src = OsUser::new("spools");
    let mut rig = Rig::new();
    rig.d.start();
    rig.open_to("contoso", &src);
    let t = rig.tenant("contoso");
    let pid = rig.d.child.as_ref().unwrap().id();
    // The racer is this test binary again (see `racer`), as the source user: a shell loop
    // is too slow to hit the window between a listing and an open reliably.
    let mut racer = Command::new(std::env::current_exe().unwrap())
        .args([
            "spool_attacks::racer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RACE_DIR, &t)
        .uid(src.uid)
        .gid(src.gid)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let raced = loop {
        if let Some(st) = racer.try_wait().unwrap() {
            break st;
        }
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(raced.success(), "the racer failed");
    peak = peak.max(rss_kib(pid));
    assert!(peak < 256 * 1024, "daemon grew to {peak} KiB");
    let f = rig.tenant("fabrikam").join("other.json");
    std::fs::write(&f, alert("other-1").to_string()).unwrap();
    assert!(
        wait_alert(&rig.d, "fabrikam", "other-1").await,
        "fabrikam's file not ingested after the race"
    );
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    let start = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut child = rig.d.child.take().unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM did not end stewardd within 10 s: {}",
        rig.d.stderr_text()
    );
    // The race did reach the daemon: it took some of what it saw.
    let seen = names(&t.join("done"), "a.json").len() + names(&t.join("rejected"), "a.json").len();
    assert!(seen > 0, "the daemon took nothing of the race: did it run?");
}

/// Where [`racer`] races.
const RACE_DIR: &str = "STEWARD_TEST_RACE_DIR";

/// Not a test of its own: the source's side of
/// `a_listed_file_swapped_for_a_fifo_or_dev_zero_blocks_nothing`, run in a child process
/// as the source user. It keeps replacing `a.json` in `$STEWARD_TEST_RACE_DIR` by
/// a regular file holding an alert, a FIFO, and a symlink to `/dev/zero`, in turn; 12 s,
/// so that a daemon without the `rescan_interval` knob (10 s) scans during the race too.
#[test]
#[ignore = "run by a_listed_file_swapped_for_a_fifo_or_dev_zero_blocks_nothing"]
fn racer() {
    let Some(dir) = std::env::var_os(RACE_DIR).map(PathBuf::from) else {
        return;
    };
    let a = dir.join("a.json");
    let body = alert("swap-1").to_string();
    let end = Instant::now() + Duration::from_secs(12);
    let mut i = 0u64;
    while Instant::now() < end {
        i += 1;
        let r = dir.join(format!("r{i}.tmp"));
        let _ = std::fs::write(&r, &body);
        let _ = std::fs::rename(&r, &a);
        let f = dir.join(format!("f{i}.tmp"));
        let _ = nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600));
        let _ = std::fs::rename(&f, &a);
        let z = dir.join(format!("z{i}.tmp"));
        let _ = std::os::unix::fs::symlink("/dev/zero", &z);
        let _ = std::fs::rename(&z, &a);
    }
}

/// Item 1: a file name with a newline cannot forge a log line; the file is rejected
/// (moved aside), not ingested. (`done` is a plain file meanwhile, so a daemon that did
/// ingest it would log the name on the failed move.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newline_in_a_file_name_forges_no_log_line() {
    let src = OsUser::new("spooln");
    let mut rig = Rig::new();
    rig.d.start();
    rig.open_to("contoso", &src);
    let t = rig.tenant("contoso");
    let forged = "2026-01-01T00:00:00.000000Z ERROR stewardd: FORGED by the source";
    let name = format!("x\n{forged}\ny.json");
    src.sh(&format!(
        "cd {} && mv done done.old && touch done",
        t.display()
    ));
    let path = t.join(&name);
    std::fs::write(&path, alert("nl-1").to_string()).unwrap();
    nix::unistd::chown(
        &path,
        Some(nix::unistd::Uid::from_raw(src.uid)),
        Some(nix::unistd::Gid::from_raw(src.gid)),
    )
    .unwrap();
    let moved = until(Duration::from_secs(10), || {
        t.join("rejected").join(&name).exists()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = rig.logs() + &rig.d.stderr_text();
    assert!(
        !logs.lines().any(|l| l.starts_with("2026-01-01T00:00:00")),
        "a forged log line: {logs}"
    );
    assert!(
        moved,
        "the file with a newline in its name was not moved aside"
    );
    assert!(logs.contains("spool file rejected"), "{logs}");
    assert_eq!(
        alert_status(&rig.d, "contoso", "nl-1").await,
        StatusCode::NOT_FOUND,
        "a file with a control character in its name was ingested"
    );
    assert!(
        logs.contains("x\\n2026-01-01"),
        "name not shown escaped: {logs}"
    );
    assert!(rig.d.stop().unwrap().success());
}

/// Item 1: a file the daemon cannot open (mode 000, the daemon running as its own user)
/// is dealt with once: moved to `rejected/` (contoso: the daemon owns the tenant
/// directory) or, where it cannot be moved either (fabrikam: a sticky directory owned by
/// root), remembered and skipped — one log line each across many rescans and events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_file_is_logged_once() {
    let src = OsUser::new("spoolu");
    let daemon = OsUser::new("spoolw");
    let mut rig = Rig::new();
    // The daemon's primary group is the source's: it may write the sticky directory.
    rig.start_as(daemon.uid, src.gid);
    rig.open_to("contoso", &src);
    let fab = rig.tenant("fabrikam");
    nix::unistd::chown(&fab, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    std::fs::set_permissions(&fab, std::fs::Permissions::from_mode(0o3770)).unwrap();
    for t in ["contoso", "fabrikam"] {
        src.sh(&format!(
            "cd {} && printf 'x' > s.tmp && chmod 000 s.tmp && mv s.tmp secret.json",
            rig.tenant(t).display()
        ));
    }
    let c = rig.tenant("contoso");
    let moved = until(Duration::from_secs(10), || {
        c.join("rejected/secret.json").exists()
    })
    .await;
    // Many rescans (200 ms) and events later.
    for i in 0..5 {
        for t in ["contoso", "fabrikam"] {
            src.sh(&format!(
                "cd {} && printf '%s' '{}' > g.tmp && chmod 644 g.tmp && mv g.tmp g{i}.json",
                rig.tenant(t).display(),
                alert(&format!("g{i}-{t}"))
            ));
            assert!(wait_alert(&rig.d, t, &format!("g{i}-{t}")).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        fab.join("secret.json").exists(),
        "fabrikam's file was moved"
    );
    let logs = rig.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("secret.json")).collect();
    let about = |t: &str| lines.iter().filter(|l| l.contains(t)).count();
    assert_eq!(about("contoso"), 1, "{lines:#?}");
    assert_eq!(about("fabrikam"), 1, "{lines:#?}");
    assert!(moved, "contoso's unreadable file not moved aside");
    let report = std::fs::read_to_string(c.join("rejected/secret.json.error")).unwrap();
    assert!(report.contains("Permission denied"), "{report}");
    assert!(rig.d.stop().unwrap().success());
}

/// A variant: a symlink to `/` (or any deep tree) in a tenant directory is not walked by
/// the watcher: the daemon holds a handful of inotify watches, not one per directory
/// of the file system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_to_root_in_a_tenant_dir_is_not_walked() {
    let src = OsUser::new("spooll");
    let mut rig = Rig::new();
    rig.d.start();
    rig.open_to("contoso", &src);
    let t = rig.tenant("contoso");
    src.sh(&format!("cd {} && ln -s / everything", t.display()));
    // Made while the daemon runs, and found by the next start.
    std::fs::write(t.join("w.json"), alert("w-1").to_string()).unwrap();
    assert!(wait_alert(&rig.d, "contoso", "w-1").await);
    assert!(rig.d.stop().unwrap().success());
    rig.d.start();
    std::fs::write(t.join("w2.json"), alert("w-2").to_string()).unwrap();
    assert!(wait_alert(&rig.d, "contoso", "w-2").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = rig.d.child.as_ref().unwrap().id();
    let watches: usize = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum();
    assert!(
        watches >= 1,
        "no inotify watch at all: is the spool watched?"
    );
    assert!(
        watches < 20,
        "{watches} inotify watches: the watcher walked the symlink"
    );
    assert!(rig.d.stop().unwrap().success());
}
