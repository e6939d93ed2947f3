//! An erasure interrupted by SIGKILL completes after a restart without doing anything
//! twice: the real `stewardd` binary is killed while the request is `in_progress`, started
//! again on the same data, and the request must complete with one report line per record
//! and one `dsr.erase` audit record per contact changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward::client::Client;
use steward_daemon::store::{Store, StoreOptions};

const T: &str = "contoso";
const CAROL: &str = "carol@contoso.com";
/// Contacts naming the subject: even ones with a second address, odd ones with only hers.
const CONTACTS: usize = 120;
/// Alerts naming the subject (each gets a `retained` line).
const ALERTS: usize = 2000;

fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

fn write_config(dir: &Path) -> PathBuf {
    let d = dir.display();
    let me = me();
    let text = format!(
        r#"
[daemon]
socket = "{d}/run/steward.sock"
data_dir = "{d}/data"
log_dir = "{d}/logs"

[[tenant]]
id = "contoso"
name = "Contoso"

[[grant]]
user = "{me}"
tenant = "contoso"
role = "tenant-admin"

[[grant]]
user = "{me}"
tenant = "contoso"
role = "ingest"
"#
    );
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let path = dir.join("steward.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `stewardd`; the caller kills or stops the child and waits for it.
#[allow(clippy::zombie_processes)]
async fn start(config: &Path, socket: &Path) -> (Child, Client) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stewardd"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = Client::new(socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get("/v1/health").await
            && r.status.is_success()
        {
            return (child, client);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stewardd did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(c: &Client, path: &str) -> (u16, Value) {
    let r = c.get(path).await.unwrap();
    (
        r.status.as_u16(),
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

async fn seed(c: &Client) {
    let puts = (0..CONTACTS).map(|i| {
        let emails = if i % 2 == 0 {
            format!("{CAROL};x{i}@contoso.com")
        } else {
            CAROL.to_owned()
        };
        let path = format!("/v1/tenants/{T}/contacts/c{i:03}");
        async move {
            let r = c
                .put_json(&path, &json!({"properties": {"emails": emails}}), None)
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 201);
        }
    });
    // Under the per-uid connection cap.
    futures::StreamExt::collect::<Vec<()>>(futures::StreamExt::buffer_unordered(
        futures::stream::iter(puts),
        16,
    ))
    .await;
    let now = jiff::Timestamp::now().to_string();
    let alerts: Vec<Value> = (0..ALERTS)
        .map(|i| {
            json!({"name": format!("al{i:05}"), "properties": {"timeGeneratedUtc": now,
                "entities": [{"type": "account", "name": "carol", "upn": CAROL}]}})
        })
        .collect();
    let r = c
        .post_json(&format!("/v1/tenants/{T}/alerts"), &alerts)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_killed_midway_completes_after_restart_without_doing_anything_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = dir.path().join("run/steward.sock");
    let (mut child, c) = start(&config, &socket).await;
    seed(&c).await;

    let r = c
        .post_json(
            &format!("/v1/tenants/{T}/dsr"),
            &json!({"type": "erase", "subject": {"email": CAROL}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201);
    let id = serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = format!("/v1/tenants/{T}/dsr/{id}");
    let r = c
        .post_json(&format!("{p}/confirm"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 202);

    // Kill it as soon as some of the work has committed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines_at_kill = loop {
        let (_, v) = get(&c, &p).await;
        let n = v["report"].as_array().map_or(0, Vec::len);
        if n > 0 {
            assert_eq!(
                v["status"], "in_progress",
                "finished before the kill: {n} lines"
            );
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break n;
        }
        assert!(Instant::now() < deadline, "execution never started: {v}");
    };
    assert!(lines_at_kill < CONTACTS + ALERTS);
    eprintln!("killed with {lines_at_kill} report lines committed");

    let (mut child, c) = start(&config, &socket).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let req = loop {
        let (_, v) = get(&c, &p).await;
        if v["status"] == "completed" {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "not completed after restart: {}",
            v["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(req["execution"]["attempts"], 2, "{}", req["execution"]);

    // One report line per record, and the audit line.
    let mut lines: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in req["report"].as_array().unwrap() {
        *lines
            .entry((
                e["kind"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            ))
            .or_default() += 1;
    }
    assert!(lines.values().all(|n| *n == 1), "a record reported twice");
    assert_eq!(lines.len(), CONTACTS + ALERTS + 1);

    // Contacts: the address gone from the even ones, the odd ones deleted.
    for i in 0..CONTACTS {
        let (s, v) = get(&c, &format!("/v1/tenants/{T}/contacts/c{i:03}")).await;
        if i % 2 == 0 {
            assert_eq!(v["properties"]["emails"], format!("x{i}@contoso.com"));
        } else {
            assert_eq!(s, 404, "c{i:03}");
        }
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();

    // The audit log: each contact changed exactly once, the resume recorded, no address.
    let store = Store::open(&dir.path().join("data"), StoreOptions::default()).unwrap();
    let audit = store.tenant(T).audit(0, 1_000_000, |_| true).unwrap().items;
    let mut erased: BTreeMap<String, usize> = BTreeMap::new();
    for r in audit.iter().filter(|r| r.operation_name == "dsr.erase") {
        *erased.entry(r.resource_id.clone()).or_default() += 1;
    }
    assert_eq!(erased.len(), CONTACTS);
    assert!(erased.values().all(|n| *n == 1), "a contact erased twice");
    assert!(
        audit.iter().any(|r| r.operation_name == "dsr.execute"
            && r.details.reason.as_deref() == Some("resumed after an interruption")),
        "the resume is not audited"
    );
    assert!(audit.iter().all(|r| !format!("{r:?}").contains(CAROL)));
    drop(store);
}
