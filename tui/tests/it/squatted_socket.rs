#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A socket squatted by another local user (issue 12, item 4): the real `steward` binary
//! refuses, before sending a byte, a socket whose directory or listening process is not
//! the daemon's its path promises, says why in one line and exits 6 (daemon unreachable).
//!
//! The squatter is a real OS user (`useradd`, removed on drop) running a listener that
//! records every byte it is sent and answers a forged `whoami`; the victim is the test's
//! own user.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use steward_testkit::user::OsUser;

/// The squatter's listener: binds `argv[1]`, touches `argv[3]` when listening, appends
/// every byte received to `argv[2]` and answers each request with a forged identity.
const LISTENER: &str = r#"
import os, socket, sys
path, log, ready = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(16)
open(ready, "w").close()
body = b'{"user":"root","tenants":[{"id":"contoso","name":"Contoso","role":"tenant-admin"}]}'
while True:
    c, _ = s.accept()
    c.settimeout(2)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d:
                break
            data += d
    except OSError:
        pass
    with open(log, "ab") as f:
        f.write(data)
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    c.close()
"#;

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// The squatter's listener, running as `user` on `socket` (in a directory it can write);
/// killed on drop.
struct Squatter {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Squatter {
    fn start(user: &OsUser, socket: &Path) -> Squatter {
        let dir = socket.parent().unwrap();
        let log = dir.join("seen.bin");
        let ready = dir.join("ready");
        let child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(LISTENER)
            .arg(socket)
            .arg(&log)
            .arg(&ready)
            .uid(user.uid)
            .gid(user.gid)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("the squatter's listener needs /usr/bin/python3");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            assert!(
                Instant::now() < deadline,
                "the squatter's listener did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Squatter {
            child,
            socket: socket.to_owned(),
            log,
        }
    }

    /// Every byte the listener has been sent so far.
    fn seen(&self) -> Vec<u8> {
        std::fs::read(&self.log).unwrap_or_default()
    }

    /// Moves the listening socket to `to` (as a swap on a shared host would): the
    /// listener stays the squatter's.
    fn move_to(&mut self, to: &Path) {
        std::fs::rename(&self.socket, to).unwrap();
        self.socket = to.to_owned();
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `steward whoami` as the test's user, with `XDG_RUNTIME_DIR=xdg` and, when given,
/// `--socket`.
fn whoami(xdg: &Path, socket: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_steward"));
    c.env("XDG_RUNTIME_DIR", xdg)
        .env_remove("STEWARD_SOCKET")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    if let Some(s) = socket {
        c.arg("--socket").arg(s);
    }
    c.arg("whoami").output().unwrap()
}

/// The refusal: exit 6, one line naming the socket and `reason`, nothing sent.
fn assert_refused(out: &Output, squatter: &Squatter, reason: &str, case: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{case}: not refused as unreachable\nstdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{case}: not one line: {err}"
    );
    assert!(
        err.contains("refusing to talk to the daemon") && err.contains(reason),
        "{case}: the reason is not `{reason}`: {err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("tenant-admin"),
        "{case}: the forged identity was printed"
    );
    assert!(
        squatter.seen().is_empty(),
        "{case}: the client sent the squatter {:?}",
        String::from_utf8_lossy(&squatter.seen())
    );
    println!("{case}: {}", err.trim_end());
}

/// A temp dir other users can traverse, with an `xdg` runtime dir inside it that is, like
/// `/tmp`, writable by everyone (sticky).
fn host() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::Builder::new()
        .prefix("steward-squat-")
        .tempdir()
        .unwrap();
    chmod(t.path(), 0o711);
    let xdg = t.path().join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    chmod(&xdg, 0o1777);
    (t, xdg)
}

#[test]
fn a_default_socket_dir_created_by_another_user_is_refused_before_sending() {
    let squatter_user = OsUser::new("squats");
    for dir_mode in [0o755, 0o777] {
        let (_t, xdg) = host();
        // The squatter got there first: `$XDG_RUNTIME_DIR/steward` (or `/tmp/steward-$UID`).
        let dir = xdg.join("steward");
        squatter_user.dir(&dir, dir_mode);
        let squatter = Squatter::start(&squatter_user, &dir.join("steward.sock"));
        let out = whoami(&xdg, None);
        assert_refused(
            &out,
            &squatter,
            "not by you",
            &format!("default dir owned by the squatter, {dir_mode:04o}"),
        );
    }
}

#[test]
fn a_default_socket_dir_that_is_a_link_is_refused() {
    let squatter_user = OsUser::new("squatl");
    let (t, xdg) = host();
    let theirs = t.path().join("theirs");
    squatter_user.dir(&theirs, 0o755);
    let squatter = Squatter::start(&squatter_user, &theirs.join("steward.sock"));
    std::os::unix::fs::symlink(&theirs, xdg.join("steward")).unwrap();
    let out = whoami(&xdg, None);
    assert_refused(
        &out,
        &squatter,
        "symbolic link",
        "default dir a link to the squatter's",
    );
}

#[test]
fn a_listener_run_by_another_user_is_refused_even_in_the_callers_own_dir() {
    let squatter_user = OsUser::new("squatp");
    let (t, xdg) = host();
    let theirs = t.path().join("theirs");
    squatter_user.dir(&theirs, 0o755);
    let mut squatter = Squatter::start(&squatter_user, &theirs.join("steward.sock"));
    // The caller's own private runtime dir, holding the squatter's socket (the state a
    // swap between the directory check and the connect would leave).
    let mine = xdg.join("steward");
    std::fs::create_dir(&mine).unwrap();
    chmod(&mine, 0o700);
    squatter.move_to(&mine.join("steward.sock"));
    let out = whoami(&xdg, None);
    assert_refused(
        &out,
        &squatter,
        "neither you",
        "default dir ours, listener the squatter's",
    );

    // A configured socket: its directory (root's, 0755) is not the listener's.
    let configured = t.path().join("etc-run");
    std::fs::create_dir(&configured).unwrap();
    chmod(&configured, 0o755);
    squatter.move_to(&configured.join("steward.sock"));
    let out = whoami(&xdg, Some(&configured.join("steward.sock")));
    assert_refused(
        &out,
        &squatter,
        "but its directory",
        "configured dir root's, listener the squatter's",
    );

    // The listener really records what it is sent: a plain write reaches it.
    let mut s = std::os::unix::net::UnixStream::connect(&squatter.socket).unwrap();
    s.write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while squatter.seen().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the listener records nothing: the test is blind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_configured_socket_dir_others_can_write_is_refused() {
    let squatter_user = OsUser::new("squatw");
    for dir_mode in [0o777, 0o1777, 0o775] {
        let (t, xdg) = host();
        let open = t.path().join("run");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, dir_mode);
        if dir_mode == 0o775 {
            nix::unistd::chown(
                &open,
                None,
                Some(nix::unistd::Gid::from_raw(squatter_user.gid)),
            )
            .unwrap();
        }
        let squatter = Squatter::start(&squatter_user, &open.join("steward.sock"));
        let out = whoami(&xdg, Some(&open.join("steward.sock")));
        assert_refused(
            &out,
            &squatter,
            "writable by other users",
            &format!("configured dir {dir_mode:04o}"),
        );
    }
}

#[test]
fn the_issue_attack_tmp_steward_uid_squatted_before_the_victims_whoami() {
    // A user without `$XDG_RUNTIME_DIR`: `steward` uses `/tmp/steward-$UID/steward.sock`.
    // Another user created that directory and listens there with a forged identity.
    let victim = OsUser::new("squatv");
    let squatter_user = OsUser::new("squatq");
    let squat = PathBuf::from(format!("/tmp/steward-{}", victim.uid));
    let _ = std::fs::remove_dir_all(&squat);
    let _rm = RemoveDir(squat.clone());
    squatter_user.dir(&squat, 0o777);
    let squatter = Squatter::start(&squatter_user, &squat.join("steward.sock"));
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .uid(victim.uid)
        .gid(victim.gid)
        .current_dir("/")
        .env("HOME", "/nonexistent")
        .env("USER", &victim.name)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("STEWARD_SOCKET")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .arg("whoami")
        .output()
        .unwrap();
    assert_refused(&out, &squatter, "not by you", "/tmp/steward-$UID squatted");
}

/// Removes a directory tree on drop (for paths outside the test's temp dir).
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
