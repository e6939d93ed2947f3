//! A real daemon served inside the test process (`steward_daemon::daemon::Daemon`) on a
//! socket in a temp dir, from a config *file* the daemon watches, and a small JSON client.
//!
//! The test reaches the daemon only the ways an operator can: the socket (with the
//! caller's real peer credentials), the config file and a reload (what SIGHUP does,
//! [`TestDaemon::reload`]), stopping it, and the redb file once it is stopped
//! ([`stored`]). Not here: the `stewardd` process ([`crate::process`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;
use steward::client::Client;
use steward::config::{Config, StoreBackend};
use steward::model::AuditRecord;
use steward::model::AuditStatus;
use steward_daemon::daemon::{Daemon, Reloader, StartError};
use steward_daemon::store::{
    AuditEntry, DocInput, Kind, Store, StoreError, StoreOptions, TenantRead, TenantWrite,
    WriteError, system_caller,
};
use tokio_util::sync::CancellationToken;

pub use crate::config::ConfigBuilder;
pub use crate::user::me;

/// The tenant every API test works in.
pub const T: &str = "contoso";
/// The VM of the standard policy.
pub const VM: &str =
    "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";

/// Config text: one tenant (`contoso`) where the current user is tenant-admin, plus
/// `extra` TOML ([`ConfigBuilder::single`]).
pub fn config_text(dir: &Path, extra: &str) -> String {
    ConfigBuilder::single(dir).extra(extra).text()
}

/// Retries `f` while another daemon on the same data dir still holds the store (a stopped
/// daemon's last tasks may hold it a moment), for at most 10 s.
fn while_locked<X>(mut f: impl FnMut() -> Result<X, StartError>) -> X {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(x) => return x,
            Err(StartError::Store(StoreError::AlreadyOpen { .. })) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("the store did not open: {e}"),
        }
    }
}

/// Opens (but does not serve) a daemon on `dir` with `extra` config: the store is open
/// and what fell due while it was down has been applied.
pub fn open(dir: &Path, extra: &str) -> Daemon {
    open_config(&ConfigBuilder::single(dir).extra(extra))
}

/// Opens (but does not serve) a daemon from the config `b`, written to its file.
pub fn open_config(b: &ConfigBuilder) -> Daemon {
    let path = b.write();
    let config = Config::load(&path).unwrap();
    while_locked(|| Daemon::open(config.clone(), Some(path.clone())))
}

/// The store of a daemon on `dir` that is not running: the real redb file, opened as the
/// daemon opens it (to look at what a stopped daemon left behind), or its PostgreSQL
/// database when its config file puts it on one.
pub fn stored(dir: &Path) -> Store {
    let config = Config::load(&dir.join("steward.toml")).ok();
    if let Some(c) = config.filter(|c| c.store.backend == StoreBackend::Postgres) {
        let options = steward_daemon::store::pg::PgOptions::from_config(&c.store);
        return Store::open_postgres(&options, StoreOptions::default()).unwrap();
    }
    while_locked(|| Ok(Store::open(&dir.join("data"), StoreOptions::default())?))
}

/// Every audit record of `tenant` in the store of a stopped daemon on `dir`.
pub fn stored_audit(dir: &Path, tenant: &str) -> Vec<AuditRecord> {
    stored(dir)
        .tenant(&crate::tid(tenant))
        .audit(0, 1_000_000, &mut |_| true)
        .unwrap()
        .items
}

/// A succeeded audit entry of operation `op` by the daemon's own caller: what a test that
/// writes the store directly (a seed, a record from an older version) records beside it.
pub fn system_entry(op: &str) -> AuditEntry {
    AuditEntry::named(system_caller(), op, AuditStatus::Succeeded)
}

/// Puts `kind/name` in `tenant` of the store of a stopped daemon on `dir`, directly (what
/// no route would store: a damaged record, a purge time in the past), with a
/// [`system_entry`] `op`, in one write job.
pub async fn put_stored(
    dir: &Path,
    tenant: &str,
    (kind, name): (Kind, &str),
    input: DocInput,
    op: &str,
) {
    let name = crate::rn(name);
    let entry = system_entry(op);
    stored(dir)
        .writer()
        .write(&crate::tid(tenant), move |txn: &mut dyn TenantWrite| {
            txn.put(kind, &name, input, None)?;
            txn.audit(entry);
            Ok::<_, WriteError>(())
        })
        .await
        .unwrap();
}

/// A daemon running in this process; stop it with [`TestDaemon::stop`].
pub struct TestDaemon {
    /// The temp dir's path (data, socket, config).
    pub dir: PathBuf,
    /// The socket.
    pub socket: PathBuf,
    /// Puts the config file in force again, as SIGHUP does.
    reloader: Option<Reloader>,
    /// Cancelled to stop the daemon.
    stop: CancellationToken,
    /// The serving task.
    handle: tokio::task::JoinHandle<Result<(), StartError>>,
}

impl TestDaemon {
    /// Starts a daemon on `dir` with `extra` config.
    pub async fn start(dir: &Path, extra: &str) -> TestDaemon {
        TestDaemon::serve(dir, open(dir, extra))
    }

    /// Starts a daemon on a new temp dir with `extra` config; the dir goes when the
    /// returned handle is dropped, so keep it for the test's length.
    pub async fn in_temp(extra: &str) -> (tempfile::TempDir, TestDaemon) {
        let dir = tempfile::tempdir().unwrap();
        let d = TestDaemon::start(dir.path(), extra).await;
        (dir, d)
    }

    /// Starts a daemon on `dir` from the config `b` (rooted at `dir`).
    pub async fn start_config(dir: &Path, b: &ConfigBuilder) -> TestDaemon {
        TestDaemon::serve(dir, open_config(b))
    }

    /// Serves an opened daemon on `dir/run/steward.sock`.
    pub fn serve(dir: &Path, daemon: Daemon) -> TestDaemon {
        let socket = dir.join("run/steward.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let stop = CancellationToken::new();
        let reloader = daemon.reloader();
        let handle = tokio::spawn(daemon.serve(listener, stop.clone()));
        TestDaemon {
            dir: dir.to_path_buf(),
            socket,
            reloader,
            stop,
            handle,
        }
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("steward.toml")
    }

    /// Reads the config file again and puts it in force (what SIGHUP does to `stewardd`).
    pub async fn reload(&self) -> Result<(), String> {
        match &self.reloader {
            Some(r) => r.reload().await,
            None => Err("the daemon runs without a config file".to_owned()),
        }
    }

    /// A client acting with every permission the current user holds.
    pub fn client(&self) -> Api {
        Api(Client::new(&self.socket))
    }

    /// A client acting as `role`.
    pub fn client_as(&self, role: &str) -> Api {
        Api(Client::new(&self.socket).with_role(Some(role.to_owned())))
    }

    /// Tenant [`T`]'s audit records, read through the API (every page, with subjects).
    pub async fn audit(&self) -> Vec<AuditRecord> {
        self.audit_of(T).await
    }

    /// A tenant's audit records, read through the API (every page, with subjects).
    pub async fn audit_of(&self, tenant: &str) -> Vec<AuditRecord> {
        let api = self.client();
        let mut out = Vec::new();
        let mut next = Some(format!(
            "/v1/tenants/{tenant}/audit?subjects=true&limit=1000"
        ));
        while let Some(p) = next {
            let (s, v, _) = api.get(&p).await;
            assert_eq!(s, StatusCode::OK, "{p}: {v}");
            for item in v["value"].as_array().into_iter().flatten() {
                out.push(serde_json::from_value(item.clone()).unwrap());
            }
            next = v["nextLink"].as_str().map(str::to_owned);
        }
        out
    }

    /// Tenant [`T`]'s audit records of operation `op` (`dsr.open`), oldest first.
    pub async fn audited(&self, op: &str) -> Vec<AuditRecord> {
        let mut records = self.audit().await;
        records.retain(|r| r.operation_name == op);
        records
    }

    /// Whether tenant [`T`]'s audit chain verifies (`GET …/audit/verify`).
    pub async fn audit_verifies(&self) -> bool {
        let (s, v, _) = self
            .client()
            .get(&format!("/v1/tenants/{T}/audit/verify"))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["ok"] == Value::Bool(true)
    }

    /// Stops the daemon and waits until it has finished serving.
    pub async fn stop(self) {
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// A tiny JSON client: each call answers (status, JSON body or `Null`, ETag).
pub struct Api(pub Client);

/// A response as (status, JSON body or `Null`, ETag).
fn decode(r: steward::client::Response) -> (StatusCode, Value, Option<String>) {
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    };
    let etag = r.etag().map(str::to_owned);
    (r.status, v, etag)
}

impl Api {
    /// GET.
    pub async fn get(&self, path: &str) -> (StatusCode, Value, Option<String>) {
        decode(self.0.get(path).await.unwrap())
    }

    /// PUT a JSON body, with `If-Match` when given.
    pub async fn put(
        &self,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        decode(self.0.put_json(path, body, if_match).await.unwrap())
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value, Option<String>) {
        decode(self.0.post_json(path, body).await.unwrap())
    }

    /// Asks for `port` until `end` under tenant [`T`]'s policy `policy`, from the
    /// standard source address (`POST …/jit-policies/<policy>/initiate`).
    pub async fn ask(
        &self,
        policy: &str,
        port: u16,
        end: jiff::Timestamp,
    ) -> (StatusCode, Value, Option<String>) {
        let path = format!("/v1/tenants/{T}/jit-policies/{policy}/initiate");
        self.post(&path, &initiate(port, end, "198.51.100.9")).await
    }

    /// DELETE, with `If-Match` when given.
    pub async fn delete(
        &self,
        path: &str,
        if_match: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        decode(self.0.delete(path, if_match).await.unwrap())
    }
}

/// The standard policy body: port 22 from 198.51.100.0/24 for up to `max`, and 3389 from
/// anywhere for up to an hour.
pub fn policy(max: &str) -> Value {
    serde_json::json!({
        "kind": "Basic",
        "properties": {"virtualMachines": [{"id": VM, "ports": [
            {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "198.51.100.0/24", "maxRequestAccessDuration": max},
            {"number": 3389, "protocol": "TCP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT1H"}
        ]}]}
    })
}

/// An initiate body for `port` ending at `end`, from `source`.
pub fn initiate(port: u16, end: jiff::Timestamp, source: &str) -> Value {
    serde_json::json!({
        "virtualMachines": [{"id": VM, "ports": [
            {"number": port, "endTimeUtc": end.to_string(), "allowedSourceAddressPrefix": source}
        ]}],
        "justification": "patching"
    })
}

/// `now + secs` (fractional allowed).
pub fn in_secs(secs: f64) -> jiff::Timestamp {
    jiff::Timestamp::now() + jiff::SignedDuration::from_secs_f64(secs)
}

/// The `statusReason` of every port of a request body.
pub fn reasons(req: &Value) -> Vec<String> {
    req["virtualMachines"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|vm| vm["ports"].as_array().into_iter().flatten())
        .map(|p| p["statusReason"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `within`.
pub async fn poll<X, F, Fut>(within: Duration, mut f: F) -> Option<X>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<X>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(x) = f().await {
            return Some(x);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A daemon served on a runtime of its own, for tests that are not async (the CLI and
/// the TUI binaries as a script or a terminal drives them); stopped on drop.
pub struct Served {
    /// The temp dir (config, socket, data), removed on drop.
    pub dir: tempfile::TempDir,
    /// The socket.
    pub socket: PathBuf,
    /// The runtime serving the daemon; [`Served::block_on`] runs on it too.
    rt: tokio::runtime::Runtime,
    /// The daemon, until dropped.
    daemon: Option<TestDaemon>,
    /// Its config, to serve it again after [`Served::restart_after`].
    config: ConfigBuilder,
}

impl Served {
    /// Writes `config(dir)`'s config into a fresh temp dir and serves a daemon from it.
    pub fn start(config: impl FnOnce(&Path) -> ConfigBuilder) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let b = config(dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let daemon = open_config(&b);
        let d = {
            let _g = rt.enter();
            TestDaemon::serve(dir.path(), daemon)
        };
        assert_eq!(
            d.socket,
            b.socket(),
            "the config must keep the kit's socket"
        );
        Served {
            socket: d.socket.clone(),
            dir,
            rt,
            daemon: Some(d),
            config: b,
        }
    }

    /// Stops the daemon, hands `f` its temp dir (the redb file is `data/steward.redb`
    /// there, free to open), then serves it again from the same config and data.
    pub fn restart_after(&mut self, f: impl FnOnce(&Path)) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.stop());
        }
        // The stopped daemon's last tasks may hold the store a moment longer.
        drop(self.rt.block_on(async { stored(self.dir.path()) }));
        f(self.dir.path());
        let daemon = open_config(&self.config);
        let _g = self.rt.enter();
        self.daemon = Some(TestDaemon::serve(self.dir.path(), daemon));
    }

    /// Runs `f` on the daemon's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A client of the daemon.
    pub fn client(&self) -> Client {
        Client::new(&self.socket)
    }

    /// The API's own JSON answer to `GET path` (which must succeed).
    pub fn api(&self, path: &str) -> Value {
        let c = self.client();
        self.block_on(async { c.get_json(path).await.unwrap() })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.stop());
        }
    }
}
