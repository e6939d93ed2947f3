//! One config builder for every test daemon: it writes the daemon's TOML (socket, data
//! and logs inside a temp dir, tenants, grants, limits, and any further tables as text).
//!
//! Two presets cover most suites: [`ConfigBuilder::single`] (the API suites: tenant
//! `contoso`, the test's user its tenant-admin) and [`ConfigBuilder::reliability`] (the
//! process suites: three tenants, the test's user tenant-admin and ingest in all).
//! Not here: the meaning of any key (see `config/steward.toml`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::user::me;

/// The tenants of [`ConfigBuilder::reliability`].
pub const TENANTS: [&str; 3] = ["contoso", "fabrikam", "northwind"];

/// One `[[grant]]`.
#[derive(Debug, Clone)]
struct Grant {
    /// `user = "name"` or `uid = N`, as TOML.
    who: String,
    /// A tenant id or `*`.
    tenant: String,
    /// A role or profile name.
    role: String,
}

/// A daemon config under construction; [`ConfigBuilder::text`] renders it.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    /// The temp dir holding socket (`run/steward.sock`), data and logs by default.
    dir: PathBuf,
    /// The data directory (default `<dir>/data`).
    data_dir: PathBuf,
    /// The log directory (default `<dir>/logs`).
    log_dir: PathBuf,
    /// `[daemon] socket_group`, when set.
    socket_group: Option<String>,
    /// The body of `[limits]`; no table when `None` (so `extra` may hold one).
    limits: Option<String>,
    /// `[[tenant]]` ids and names, in order.
    tenants: Vec<(String, String)>,
    /// `[[grant]]`s, in order.
    grants: Vec<Grant>,
    /// Further TOML appended as is (`[dsr]`, `[[spool]]`, `[limits]`, …).
    extra: String,
    /// The PostgreSQL database the daemon's store is on, when set; otherwise the backend
    /// `STW_TEST_BACKEND` names ([`crate::postgres::backend`]).
    postgres_url: Option<String>,
}

impl ConfigBuilder {
    /// An empty config rooted at `dir`: no tenants, no grants.
    pub fn new(dir: &Path) -> ConfigBuilder {
        ConfigBuilder {
            dir: dir.to_path_buf(),
            data_dir: dir.join("data"),
            log_dir: dir.join("logs"),
            socket_group: None,
            limits: None,
            tenants: Vec::new(),
            grants: Vec::new(),
            extra: String::new(),
            postgres_url: None,
        }
    }

    /// Tenant `contoso` ("Contoso Ltd") where the test's user is `tenant-admin`.
    pub fn single(dir: &Path) -> ConfigBuilder {
        ConfigBuilder::new(dir)
            .tenant("contoso", "Contoso Ltd")
            .grant(&me(), "contoso", "tenant-admin")
    }

    /// The [`TENANTS`] (named `<id> org`), the test's user `tenant-admin` and `ingest` in
    /// every tenant, and `limits` as the body of `[limits]`.
    pub fn reliability(dir: &Path, limits: &str) -> ConfigBuilder {
        let mut b = ConfigBuilder::new(dir).limits(limits);
        for t in TENANTS {
            b = b.tenant(t, &format!("{t} org"));
        }
        b.grant(&me(), "*", "tenant-admin")
            .grant(&me(), "*", "ingest")
    }

    /// Puts the data directory at `p` (a small mount, say).
    pub fn data_dir(mut self, p: &Path) -> Self {
        self.data_dir = p.to_path_buf();
        self
    }

    /// Puts the log directory at `p`.
    pub fn log_dir(mut self, p: &Path) -> Self {
        self.log_dir = p.to_path_buf();
        self
    }

    /// Lets group `g` use the socket.
    pub fn socket_group(mut self, g: &str) -> Self {
        self.socket_group = Some(g.to_owned());
        self
    }

    /// Sets the body of `[limits]` (TOML lines).
    pub fn limits(mut self, body: &str) -> Self {
        self.limits = Some(body.to_owned());
        self
    }

    /// Adds a `[[tenant]]`.
    pub fn tenant(mut self, id: &str, name: &str) -> Self {
        self.tenants.push((id.to_owned(), name.to_owned()));
        self
    }

    /// Adds a `[[grant]]` of `role` in `tenant` (or `*`) to the user named `user`.
    pub fn grant(mut self, user: &str, tenant: &str, role: &str) -> Self {
        self.grants.push(Grant {
            who: format!("user = \"{user}\""),
            tenant: tenant.to_owned(),
            role: role.to_owned(),
        });
        self
    }

    /// Adds a `[[grant]]` of `role` in `tenant` (or `*`) to the uid `uid`.
    pub fn grant_uid(mut self, uid: u32, tenant: &str, role: &str) -> Self {
        self.grants.push(Grant {
            who: format!("uid = {uid}"),
            tenant: tenant.to_owned(),
            role: role.to_owned(),
        });
        self
    }

    /// Appends TOML text as is.
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self
    }

    /// Where the daemon's socket will be: `<dir>/run/steward.sock`.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/steward.sock")
    }

    /// Puts the store on the PostgreSQL database `url` (`[store] backend = "postgres"`).
    pub fn postgres(mut self, url: &str) -> Self {
        self.postgres_url = Some(url.to_owned());
        self
    }

    /// The PostgreSQL database this daemon's store is on, if any: the one given to
    /// [`ConfigBuilder::postgres`], else with `STW_TEST_BACKEND=postgres` the shared
    /// cluster's database for this builder's dir (the same on every call).
    pub fn postgres_url(&self) -> Option<String> {
        match (&self.postgres_url, crate::postgres::backend()) {
            (Some(u), _) => Some(u.clone()),
            (None, crate::postgres::Backend::Postgres) => {
                Some(crate::postgres::database_for(&self.dir))
            }
            (None, crate::postgres::Backend::Redb) => None,
        }
    }

    /// The config file's text.
    pub fn text(&self) -> String {
        let mut s = String::from("[daemon]\n");
        if let Some(g) = &self.socket_group {
            let _ = writeln!(s, "socket_group = \"{g}\"");
        }
        let _ = write!(
            s,
            "socket = \"{}\"\ndata_dir = \"{}\"\nlog_dir = \"{}\"\n\n",
            self.socket().display(),
            self.data_dir.display(),
            self.log_dir.display()
        );
        if let Some(l) = &self.limits {
            let _ = write!(s, "[limits]\n{l}\n\n");
        }
        if let Some(url) = self.postgres_url() {
            let _ = write!(
                s,
                "[store]\nbackend = \"postgres\"\npostgres_url = \"{url}\"\npool_size = 4\n\n"
            );
        }
        for (id, name) in &self.tenants {
            let _ = write!(s, "[[tenant]]\nid = \"{id}\"\nname = \"{name}\"\n\n");
        }
        for g in &self.grants {
            let _ = write!(
                s,
                "[[grant]]\n{}\ntenant = \"{}\"\nrole = \"{}\"\n\n",
                g.who, g.tenant, g.role
            );
        }
        s.push_str(&self.extra);
        s.push('\n');
        s
    }

    /// Writes the text to `<dir>/steward.toml` (creating `<dir>/run`); returns the path.
    pub fn write(&self) -> PathBuf {
        std::fs::create_dir_all(self.dir.join("run")).unwrap();
        let path = self.dir.join("steward.toml");
        std::fs::write(&path, self.text()).unwrap();
        path
    }
}

/// [`ConfigBuilder::reliability`] at `dir` with the data dir at `data_dir`, `limits` and
/// `extra` appended, as text (the process suites' former `config_text`).
pub fn config_text(dir: &Path, data_dir: &Path, limits: &str, extra: &str) -> String {
    ConfigBuilder::reliability(dir, limits)
        .data_dir(data_dir)
        .extra(extra)
        .text()
}
