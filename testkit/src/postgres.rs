//! A real PostgreSQL for the tests: a cluster made with `initdb` and run with `pg_ctl` as
//! an unprivileged OS user made for it (CI runs as root, and PostgreSQL refuses to run as
//! root), on a temp dir, listening only on a Unix socket there; a database per test.
//!
//! - [`Postgres::start`]: a cluster of the test's own, stopped (and its user and files
//!   removed) when the guard drops.
//! - [`shared`]: one cluster for the whole test binary, made on first use; a watchdog
//!   process stops it and removes its user and files once the test binary has exited.
//! - [`database`]: a fresh database on the shared cluster, as a `postgresql://` URL.
//! - [`backend`]: which backend the suites' daemons use: `STW_TEST_BACKEND=postgres`
//!   puts every daemon the config builder writes on its own database of the shared
//!   cluster (the same suites run against both backends, from one definition).
//!
//! Missing PostgreSQL is a failure that says how to install it, never a silent pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::user::OsUser;

/// Which store backend the suites' daemons run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded redb file (the default).
    Redb,
    /// A database on the [`shared`] cluster.
    Postgres,
}

/// The backend `STW_TEST_BACKEND` names (`redb` when unset); panics on another value.
pub fn backend() -> Backend {
    match std::env::var("STW_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("redb") => Backend::Redb,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => panic!("STW_TEST_BACKEND={other:?}: use `redb` or `postgres`"),
    }
}

/// The directory holding PostgreSQL's server programs (`initdb`, `pg_ctl`): the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else where `initdb` is on `PATH`.
/// Panics, saying how to install it, when there is none.
pub fn bin_dir() -> PathBuf {
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    debian.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(b) = debian.pop() {
        return b;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH): \
             the PostgreSQL backend's tests need it. Install it with `bash .ci/install-deps` \
             (Debian: apt-get install postgresql)"
        )
    })
}

/// A running PostgreSQL cluster owned by an OS user made for it.
#[derive(Debug)]
pub struct Postgres {
    /// The cluster's owner (its superuser role has the same name).
    user: OsUser,
    /// Holds `data/`, `sock/` and `log`; removed on drop.
    dir: PathBuf,
    /// The server programs.
    bin: PathBuf,
    /// Stopped already (the guard's drop then only cleans up).
    stopped: bool,
}

impl Postgres {
    /// Makes and starts a cluster: `initdb` (local connections trusted: only the socket
    /// directory's permissions guard it) and `pg_ctl start` with no TCP listener.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let user = OsUser::new("pg");
        let dir = tempfile::Builder::new()
            .prefix("steward-pg-")
            .tempdir()
            .unwrap()
            .keep();
        set_mode(&dir, 0o755);
        user.dir(&dir.join("data"), 0o700);
        user.dir(&dir.join("sock"), 0o700);
        user.chown(&dir);
        let pg = Postgres {
            user,
            dir,
            bin,
            stopped: false,
        };
        pg.as_owner(&format!(
            "'{initdb}' -D '{data}' -U '{name}' --auth-local=trust --auth-host=reject \
             --encoding=UTF8 --no-locale >'{dir}/initdb.log' 2>&1",
            initdb = pg.bin.join("initdb").display(),
            data = pg.dir.join("data").display(),
            name = pg.user.name,
            dir = pg.dir.display(),
        ));
        pg.as_owner(&format!(
            "'{pg_ctl}' -D '{data}' -l '{dir}/log' -w -t 60 \
             -o \"-c listen_addresses='' -k '{sock}' -c max_connections=200\" start >/dev/null",
            pg_ctl = pg.bin.join("pg_ctl").display(),
            data = pg.dir.join("data").display(),
            dir = pg.dir.display(),
            sock = pg.socket_dir().display(),
        ));
        pg
    }

    /// The directory holding the server's socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The cluster's superuser role (the owner's OS user name).
    pub fn role(&self) -> &str {
        &self.user.name
    }

    /// The URL of database `db` on this cluster, as the superuser role.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql:///{db}?host={}&user={}",
            self.socket_dir().display(),
            self.user.name
        )
    }

    /// Creates database `db` (if it does not exist yet); returns its URL.
    pub fn create_database(&self, db: &str) -> String {
        let out = self.psql("postgres", &format!("CREATE DATABASE \"{db}\""));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("already exists"),
            "CREATE DATABASE {db}: {err}"
        );
        self.url(db)
    }

    /// Runs `sql` with `psql` on database `db` as the superuser (stopping at the first
    /// error); the output, for the caller to check.
    pub fn psql(&self, db: &str, sql: &str) -> std::process::Output {
        let psql = self.bin.join("psql");
        let psql = if psql.is_file() {
            psql
        } else {
            PathBuf::from("psql")
        };
        Command::new(psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h"])
            .arg(self.socket_dir())
            .args(["-U", &self.user.name, "-d", db, "-c", sql])
            .output()
            .unwrap()
    }

    /// Stops the server now (`pg_ctl stop -m fast`).
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = self.user.sh_output(&self.stop_script());
        }
    }

    fn stop_script(&self) -> String {
        format!(
            "'{}' -D '{}' -m fast -w stop >/dev/null 2>&1",
            self.bin.join("pg_ctl").display(),
            self.dir.join("data").display()
        )
    }

    /// Runs `script` as the cluster's owner; panics with the server's logs if it fails.
    fn as_owner(&self, script: &str) {
        let out = self.user.sh_output(script);
        if !out.status.success() {
            let log = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            panic!(
                "PostgreSQL: `{script}` failed: {}\ninitdb.log:\n{}\nlog:\n{}",
                String::from_utf8_lossy(&out.stderr),
                log("initdb.log"),
                log("log")
            );
        }
    }

    /// Leaves the cluster to a watchdog that stops it and removes its files and user once
    /// this process has exited (for a cluster kept in a `static`, whose drop never runs).
    fn reap_after_exit(self) -> &'static Postgres {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             setpriv --reuid={uid} --regid={gid} --clear-groups sh -c \"{stop}\"; \
             rm -rf '{dir}'; userdel -f {name} >/dev/null 2>&1; groupdel {name} >/dev/null 2>&1",
            pid = std::process::id(),
            uid = self.user.uid,
            gid = self.user.gid,
            stop = self.stop_script().replace('"', "\\\""),
            dir = self.dir.display(),
            name = self.user.name,
        );
        let spawned = Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        assert!(
            spawned.is_ok_and(|s| s.success()),
            "cannot start the watchdog that stops the shared PostgreSQL"
        );
        Box::leak(Box::new(self))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        // The OsUser's own drop removes the user and its group.
    }
}

/// Sets `p`'s permission bits.
fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The test binary's one shared cluster, started on first use.
pub fn shared() -> &'static Postgres {
    static SHARED: OnceLock<&'static Postgres> = OnceLock::new();
    SHARED.get_or_init(|| Postgres::start().reap_after_exit())
}

/// A fresh database on the [`shared`] cluster; its URL.
pub fn database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    shared().create_database(&name)
}

/// The database on the [`shared`] cluster for the daemon rooted at `dir` (created on first
/// use; the same `dir` always gets the same one, so a restarted daemon finds its data).
pub fn database_for(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    shared().create_database(&format!("d{:016x}", h.finish()))
}
