//! Who the tests act as: the test's own user ([`me`]), and real OS users and groups made
//! for one test with `useradd`/`groupadd` and removed when their guard drops.
//!
//! Names are `stw<tag><pid>x<n>`: unique across tests running at the same time in one
//! binary (the counter) and across binaries (the pid). How a test acts as a user: the
//! plain [`OsUser::sh`], this test binary's helper test through `setpriv`
//! ([`OsUser::run_test`]), or any program as `nobody` ([`as_nobody`]).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The name of the OS user running the tests.
pub fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the user running the tests has no entry in the user database")
}

/// A unique user or group name for this process: `stw<tag><pid>x<n>`.
fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "stw{tag}{}x{}",
        std::process::id() % 1_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    );
    assert!(name.len() <= 32, "user name {name} is too long for useradd");
    name
}

/// Runs an account tool (`useradd`, `groupadd`), retrying while another test holds the
/// lock on `/etc/passwd` or `/etc/group` (the tools fail rather than wait).
fn account_tool(tool: &str, args: &[&str]) -> Output {
    let mut tries = 0;
    loop {
        let out = Command::new(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        tries += 1;
        if out.status.success() || tries == 50 {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A real OS user with a group of the same name, without a home or a login shell,
/// deleted (with its group) on drop.
#[derive(Debug)]
pub struct OsUser {
    /// The user (and group) name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its own group's gid.
    pub gid: u32,
}

impl OsUser {
    /// `useradd`s a user named `stw<tag><pid>x<n>` (keep `tag` short: names stop at 32).
    pub fn new(tag: &str) -> OsUser {
        let name = unique_name(tag);
        let out = account_tool(
            "useradd",
            &[
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ],
        );
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let u = nix::unistd::User::from_name(&name)
            .unwrap()
            .unwrap_or_else(|| panic!("useradd {name} succeeded but the user is not there"));
        OsUser {
            name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }
    }

    /// `sh -c script` as this user (its own group only), from `/`.
    pub fn sh_output(&self, script: &str) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .uid(self.uid)
            .gid(self.gid)
            .current_dir("/")
            .output()
            .unwrap()
    }

    /// `sh -c script` as this user; panics with its stderr if it fails.
    pub fn sh(&self, script: &str) {
        let out = self.sh_output(script);
        assert!(
            out.status.success(),
            "as {}: {script}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// This test binary run as this user (its groups from the group database) through
    /// `setpriv`, running only the ignored test `test` (`conns::helper`), one thread, its
    /// output shown; the caller adds what the helper reads from its environment.
    pub fn run_test(&self, test: &str) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ]);
        c
    }

    /// Gives `p` to this user and its group.
    pub fn chown(&self, p: &Path) {
        nix::unistd::chown(
            p,
            Some(nix::unistd::Uid::from_raw(self.uid)),
            Some(nix::unistd::Gid::from_raw(self.gid)),
        )
        .unwrap();
    }

    /// Creates the directory `p` with `mode`, owned by this user.
    pub fn dir(&self, p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        self.chown(p);
    }
}

impl Drop for OsUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-f", &self.name]).output();
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// A real OS group, deleted on drop.
#[derive(Debug)]
pub struct OsGroup(pub String);

impl OsGroup {
    /// `groupadd`s a group named `stw<tag><pid>x<n>`.
    pub fn new(tag: &str) -> OsGroup {
        let name = unique_name(tag);
        let out = account_tool("groupadd", &[&name]);
        assert!(out.status.success(), "groupadd {name}: {out:?}");
        OsGroup(name)
    }
}

impl Drop for OsGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.0).output();
    }
}

/// Whether this run can make users and act as them (root, `useradd`, `setpriv`). Fails
/// the test when it cannot, unless `STEWARD_SKIP_ROOT_TESTS` is set (then `false`).
pub fn can_act_as_others() -> bool {
    let ok = nix::unistd::getuid().is_root()
        && Command::new("setpriv").arg("--version").output().is_ok()
        && Command::new("useradd").arg("--help").output().is_ok();
    assert!(
        ok || std::env::var_os("STEWARD_SKIP_ROOT_TESTS").is_some(),
        "these tests need root, useradd and setpriv (STEWARD_SKIP_ROOT_TESTS=1 skips them)"
    );
    ok
}

/// `program` run as `nobody` (uid and gid 65534, no supplementary groups) through
/// `setpriv`: a caller that holds no grant at all.
pub fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program);
    c
}
