#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The daemon's own files against other local users (issue 12, items 3 and 4): the real
//! `stewardd` started under a loose umask creates private files, and refuses to start on
//! a data dir, store, log dir or runtime dir that another user owns or can write (or, for
//! the store, read); what others can merely list is tightened. Identity is real: each test
//! creates its own OS user (`useradd`, removed on drop) and acts as it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use steward_testkit::process::{
    config_text, health, run_to_exit, spawn_daemon, stewardd, temp_dir_named, wait_to_exit,
};
use steward_testkit::user::OsUser;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

/// An empty directory at `p` (a refused start may have created the log dir already).
fn fresh_dir(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
    std::fs::create_dir(p).unwrap();
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A temp dir other users can traverse (so what protects a file is its own mode and its
/// directory's, as on a real host), with a config whose socket is `socket` (relative to
/// the dir) and whose data dir is `data`.
fn setup(socket: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = temp_dir_named("steward-files-");
    chmod(dir.path(), 0o711);
    let data = dir.path().join("data");
    let text = config_text(dir.path(), &data, "", "").replace(
        &format!("{}/run/steward.sock", dir.path().display()),
        &dir.path().join(socket).display().to_string(),
    );
    let cfg = dir.path().join("steward.toml");
    std::fs::write(&cfg, text).unwrap();
    (dir, cfg, data)
}

/// Starts `stewardd --config cfg` under `umask 022` (as a shell started by hand has) with
/// info logs, and waits for its socket to answer.
fn start_under_umask_022(cfg: &Path, socket: &Path) -> std::process::Child {
    let mut child = spawn_daemon(
        Command::new("sh")
            .arg("-c")
            .arg(r#"umask 022; exec "$0" --config "$1""#)
            .arg(stewardd())
            .arg(cfg)
            .env("RUST_LOG", "info"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !health(socket) {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("stewardd exited ({st}): {err}");
        }
        assert!(Instant::now() < deadline, "stewardd did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn stop(child: std::process::Child) -> String {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs stewardd to its exit and checks it refused to start naming `path` and `fix`.
fn assert_refused(cfg: &Path, path: &Path, fix: &str, case: &str) {
    let (code, err) = run_to_exit(cfg, false, Duration::from_secs(20));
    assert!(
        code.is_some_and(|c| c != 0),
        "{case}: stewardd started ({code:?}): {err}"
    );
    assert!(!err.contains("panicked"), "{case}: {err}");
    // A file's protections are not a store that cannot be opened: the message says what
    // it is, not "cannot open the store in …" before it.
    assert!(!err.contains("cannot open the store"), "{case}: {err}");
    assert!(
        err.contains(&path.display().to_string()) && err.contains(fix),
        "{case}: the message does not name {} and `{fix}`:\n{err}",
        path.display()
    );
    println!("{case}: {}", err.lines().next().unwrap_or(""));
}

#[test]
fn a_fresh_daemon_under_umask_022_creates_only_private_files() {
    let other = OsUser::new("filesa");
    let (dir, cfg, data) = setup("run/steward.sock");
    let socket = dir.path().join("run/steward.sock");
    let child = start_under_umask_022(&cfg, &socket);
    let logs = dir.path().join("logs");
    let store = data.join("steward.redb");
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&store), 0o600, "store");
    assert_eq!(mode(&logs), 0o700, "log dir");
    assert_eq!(mode(&dir.path().join("run")), 0o750, "runtime dir");
    assert_eq!(mode(&socket), 0o600, "socket");
    let stderr = stop(child);
    let files: Vec<PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty(), "no log file: {stderr}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        assert!(
            std::fs::metadata(f).unwrap().len() > 0,
            "{} is empty",
            f.display()
        );
    }
    // As another user: nothing can be listed or read.
    for p in [&data, &logs] {
        let out = other.sh_output(&format!("ls '{}'", p.display()));
        assert!(
            !out.status.success(),
            "{} listable by another user",
            p.display()
        );
    }
    for p in [&store, &files[0]] {
        let out = other.sh_output(&format!("cat '{}' >/dev/null", p.display()));
        assert!(
            !out.status.success(),
            "{} readable by another user",
            p.display()
        );
    }
}

#[test]
fn listable_data_and_log_dirs_are_tightened_and_old_log_files_closed() {
    let (dir, cfg, data) = setup("run/steward.sock");
    let logs = dir.path().join("logs");
    for d in [&data, &logs] {
        std::fs::create_dir(d).unwrap();
        chmod(d, 0o755);
    }
    let old_log = logs.join("stewardd.2026-01-01.log");
    std::fs::write(&old_log, b"an old line\n").unwrap();
    chmod(&old_log, 0o644);
    let socket = dir.path().join("run/steward.sock");
    let child = start_under_umask_022(&cfg, &socket);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&logs), 0o700);
    assert_eq!(mode(&old_log), 0o600);
    let stderr = stop(child);
    assert!(
        stderr.contains("could be listed by other users; its mode is now 0700"),
        "no log line about the tightening: {stderr}"
    );
}

#[test]
fn a_store_others_can_read_or_write_is_refused() {
    let (dir, cfg, data) = setup("run/steward.sock");
    // A real store first (from a daemon run), then loosened.
    stop(start_under_umask_022(
        &cfg,
        &dir.path().join("run/steward.sock"),
    ));
    let store = data.join("steward.redb");
    for m in [0o644, 0o640, 0o660, 0o606] {
        chmod(&store, m);
        assert_refused(&cfg, &store, "chmod 600", &format!("store {m:04o}"));
    }
    chmod(&store, 0o600);
    let (code, err) = run_to_exit(&cfg, false, Duration::from_millis(1500));
    assert_eq!(code, None, "a 0600 store must be accepted: {err}");
}

#[test]
fn files_another_user_owns_are_refused() {
    let other = OsUser::new("filesb");
    let (dir, cfg, data) = setup("run/steward.sock");
    // A store planted by another user in the daemon's data dir.
    std::fs::create_dir(&data).unwrap();
    chmod(&data, 0o700);
    let store = data.join("steward.redb");
    std::fs::write(&store, b"").unwrap();
    chmod(&store, 0o600);
    other.chown(&store);
    assert_refused(&cfg, &store, "chown", "store owned by another user");
    std::fs::remove_file(&store).unwrap();
    // The data dir itself owned by another user (0700: root is not stopped by the mode).
    other.chown(&data);
    assert_refused(&cfg, &data, "chown", "data dir owned by another user");
    // The data dir a symbolic link to a directory another user owns.
    std::fs::remove_dir(&data).unwrap();
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o700);
    other.chown(&theirs);
    std::os::unix::fs::symlink(&theirs, &data).unwrap();
    assert_refused(
        &cfg,
        &data,
        "chown",
        "data dir a link to another user's dir",
    );
    // A log dir another user owns.
    std::fs::remove_file(&data).unwrap();
    let logs = dir.path().join("logs");
    fresh_dir(&logs);
    chmod(&logs, 0o700);
    other.chown(&logs);
    assert_refused(&cfg, &logs, "chown", "log dir owned by another user");
}

#[test]
fn dirs_others_can_write_are_refused() {
    let (dir, cfg, data) = setup("run/steward.sock");
    let logs = dir.path().join("logs");
    for (d, which) in [(&data, "data dir"), (&logs, "log dir")] {
        fresh_dir(d);
        for m in [0o777, 0o770, 0o1777, 0o702] {
            chmod(d, m);
            assert_refused(&cfg, d, "chmod go-w", &format!("{which} {m:04o}"));
        }
        chmod(d, 0o700);
    }
}

#[test]
fn a_squatted_runtime_dir_is_refused() {
    let other = OsUser::new("filesc");
    // The squatter creates the daemon's runtime dir first, as `/tmp/steward-$UID` can be:
    // one it owns (any mode), or one open to everyone.
    let (dir, cfg, _data) = setup("squat/steward.sock");
    let squat = dir.path().join("squat");
    std::fs::create_dir(&squat).unwrap();
    chmod(&squat, 0o777);
    assert_refused(&cfg, &squat, "chmod go-w", "runtime dir 0777 (ours)");
    chmod(&squat, 0o1777);
    assert_refused(&cfg, &squat, "chmod go-w", "runtime dir 1777 (ours)");
    other.chown(&squat);
    chmod(&squat, 0o755);
    assert_refused(
        &cfg,
        &squat,
        "chown",
        "runtime dir owned by the squatter, 0755",
    );
    chmod(&squat, 0o777);
    assert_refused(
        &cfg,
        &squat,
        "chown",
        "runtime dir owned by the squatter, 0777",
    );
    // The runtime dir a symbolic link (in a sticky dir the squatter can write) to its own.
    let (dir, cfg, _data) = setup("link/steward.sock");
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    other.chown(&theirs);
    std::os::unix::fs::symlink(&theirs, dir.path().join("link")).unwrap();
    assert_refused(
        &cfg,
        &dir.path().join("link"),
        "chown",
        "runtime dir a link to the squatter's dir",
    );
    assert!(
        std::fs::read_dir(&theirs).unwrap().next().is_none(),
        "the daemon left something in the squatter's dir"
    );
}

/// Removes a directory tree on drop (for paths outside the test's temp dir).
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_default_tmp_runtime_dir_squatted_by_another_user_is_refused() {
    // The issue's attack as it happens: a user with no `$XDG_RUNTIME_DIR` starts
    // `stewardd` with the embedded default config, whose socket is
    // `/tmp/steward-$UID/steward.sock`, after another user created that directory 0777.
    let victim = OsUser::new("filesv");
    let squatter = OsUser::new("filesq");
    let squat = PathBuf::from(format!("/tmp/steward-{}", victim.uid));
    let _ = std::fs::remove_dir_all(&squat);
    let _rm = RemoveDir(squat.clone());
    std::fs::create_dir(&squat).unwrap();
    chmod(&squat, 0o777);
    squatter.chown(&squat);
    let t = temp_dir_named("steward-files-");
    chmod(t.path(), 0o711);
    let home = t.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chmod(&home, 0o700);
    victim.chown(&home);
    assert!(
        !Path::new("/etc/steward/steward.toml").exists(),
        "a system config would replace the embedded default"
    );
    let (code, err) = {
        use std::os::unix::process::CommandExt;
        let child = spawn_daemon(
            Command::new(stewardd())
                .uid(victim.uid)
                .gid(victim.gid)
                .current_dir("/")
                .env("HOME", &home)
                .env("USER", &victim.name)
                .env("RUST_LOG", "warn")
                .env("RUST_BACKTRACE", "0")
                .env_remove("XDG_RUNTIME_DIR")
                .env_remove("XDG_DATA_HOME")
                .env_remove("XDG_STATE_HOME")
                .env_remove("STEWARD_CONFIG"),
        );
        wait_to_exit(child, Duration::from_secs(20))
    };
    assert!(
        code.is_some_and(|c| c != 0),
        "stewardd did not refuse the squatted dir ({code:?}): {err}"
    );
    assert!(
        err.contains(&squat.display().to_string()) && err.contains("chown"),
        "the message does not name the squatted dir and the fix: {err}"
    );
    assert!(
        std::fs::read_dir(&squat).unwrap().next().is_none(),
        "stewardd put its socket into the squatted dir"
    );
    // The victim's own files were still created private.
    let data = home.join(".local/share/steward");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("steward.redb")), 0o600);
    println!("{}", err.trim_end());
}
