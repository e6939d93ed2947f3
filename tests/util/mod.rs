//! Test helpers: a real daemon started in-process on a socket in a temp dir, with a config
//! of the test's choosing, and a tiny JSON client over `steward::client::Client`.
//!
//! The daemon runs from a config *file* (written into the temp dir) so that
//! `Daemon::reload_handle` hands the test the daemon's shared state: its store (to look at
//! audit records and schedules directly) and its shutdown token (to stop it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;
use steward::client::Client;
use steward::config::Config;
use steward::model::AuditRecord;
use steward_daemon::daemon::{Daemon, StartError};
use steward_daemon::state::Shared;
use steward_daemon::store::StoreError;

/// The tenant every test works in.
pub const T: &str = "contoso";
/// The VM of the standard policy.
pub const VM: &str =
    "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";

/// The OS user running the tests.
pub fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap()
}

/// Config text: one tenant where the current user is tenant-admin, plus `extra` TOML.
pub fn config_text(dir: &Path, extra: &str) -> String {
    let d = dir.display();
    format!(
        r#"
[daemon]
socket = "{d}/run/steward.sock"
data_dir = "{d}/data"
log_dir = "{d}/logs"

[[tenant]]
id = "contoso"
name = "Contoso Ltd"

[[grant]]
user = "{me}"
tenant = "contoso"
role = "tenant-admin"

{extra}
"#,
        me = me()
    )
}

/// A daemon running in this process.
pub struct TestDaemon {
    /// The temp dir's path (data, socket, config).
    pub dir: PathBuf,
    /// The socket.
    pub socket: PathBuf,
    /// The daemon's shared state.
    pub shared: Arc<Shared>,
    handle: tokio::task::JoinHandle<Result<(), StartError>>,
}

/// Opens (but does not serve) a daemon on `dir` with `extra` config, retrying while the
/// previous daemon on the same data dir still holds the store.
pub fn open(dir: &Path, extra: &str) -> (Daemon, Arc<Shared>) {
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let path = dir.join("steward.toml");
    std::fs::write(&path, config_text(dir, extra)).unwrap();
    let config = Config::load(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let daemon = loop {
        match Daemon::open(config.clone(), Some(path.clone())) {
            Ok(d) => break d,
            Err(StartError::Store(StoreError::AlreadyOpen { .. })) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("daemon did not open: {e}"),
        }
    };
    let (shared, _) = daemon.reload_handle().unwrap();
    (daemon, shared)
}

impl TestDaemon {
    /// Starts a daemon on `dir` with `extra` config.
    pub async fn start(dir: &Path, extra: &str) -> TestDaemon {
        let (daemon, shared) = open(dir, extra);
        TestDaemon::serve(dir, daemon, shared)
    }

    /// Serves an opened daemon on `dir/run/steward.sock`.
    pub fn serve(dir: &Path, daemon: Daemon, shared: Arc<Shared>) -> TestDaemon {
        let socket = dir.join("run/steward.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let token = shared.shutdown.clone();
        let handle = tokio::spawn(daemon.serve(listener, token));
        TestDaemon {
            dir: dir.to_path_buf(),
            socket,
            shared,
            handle,
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

    /// The tenant's audit records.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.shared
            .store
            .tenant(T)
            .audit(0, 100_000, |_| true)
            .unwrap()
            .items
    }

    /// Stops the daemon and waits until it has finished serving.
    pub async fn stop(self) {
        self.shared.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// A tiny JSON client.
pub struct Api(pub Client);

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
pub async fn poll<T, F, Fut>(within: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = f().await {
            return Some(t);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
