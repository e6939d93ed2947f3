//! Bounded ingest and honest write answers, against the real `stewardd` process:
//!
//! - the daemon-wide ingest budget answers 503 with `Retry-After` when it is spent, and
//!   frees what a dropped request held;
//! - concurrent maximal ingests under an address-space limit never kill the daemon, and
//!   every answer is a 2xx or a 503 (the memory bound, proven without timing);
//! - another tenant's write commits between the chunks of a big ingest (ordering, read
//!   from the audit records' commit times);
//! - a write handed to the writer is answered with its commit's outcome, never 408;
//! - `Idempotency-Key`: a retry replays the first answer and acts once, a different body
//!   is 422, keys are per uid and per tenant, and they survive a restart.
//!
//! Figures (memory, latency) are in the load benchmark, not here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::{HeaderName, Method, StatusCode};
use serde_json::{Value, json};
use steward::client::{Body, Client};
use steward_testkit::api::{alert_array, ingest_body};
use steward_testkit::process::{Stewardd, list_all};
use steward_testkit::user::OsUser;

/// `n` tiny alerts named `{prefix}{i}` as a JSON array.
fn tiny_alerts(prefix: &str, n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(n * 40);
    s.push('[');
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{{\"name\":\"{prefix}{i}\",\"properties\":{{}}}}"));
    }
    s.push(']');
    s.into_bytes()
}

/// A body just under 16 MiB whose alerts each hold a thousand tiny entities: the shape
/// whose parsed `Value` tree is many times its text.
fn dense_alerts(prefix: &str) -> Vec<u8> {
    let entities = vec!["{\"a\":1}"; 1000].join(",");
    let properties = format!("{{\"entities\":[{entities}]}}");
    alert_array(prefix, &properties, (16 << 20) - 1)
        .0
        .into_bytes()
}

/// POSTs an ingest body; returns status, `Retry-After` and body.
async fn ingest(c: &Client, tenant: &str, body: Vec<u8>) -> (StatusCode, Option<String>, Value) {
    let r = ingest_body(c, tenant, Body::json_bytes(body)).await;
    let retry = r
        .headers
        .get(http::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, retry, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_over_the_budget_is_503_with_retry_after_and_a_dropped_request_frees_it() {
    let d = Stewardd::started("max_ingest_body = \"1MiB\"\ningest_budget = \"1MiB\"", "");
    let c = d.client();
    // A holds the whole budget: its head declares 1 MiB, its body trickles.
    let mut holder = UnixStream::connect(&d.socket).unwrap();
    holder
        .write_all(b"POST /v1/tenants/contoso/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n[")
        .unwrap();
    let body = tiny_alerts("b", 20_000);
    assert!(body.len() < 1_000_000);
    let mut seen = None;
    for _ in 0..50 {
        let (st, retry, v) = ingest(&c, "fabrikam", body.clone()).await;
        if st == StatusCode::SERVICE_UNAVAILABLE {
            seen = Some((retry, v));
            break;
        }
        // A not yet counted: B went through; try again.
        assert!(st.is_success(), "{st} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (retry, v) = seen.expect("an ingest past the spent budget was never refused 503");
    assert_eq!(retry.as_deref(), Some("1"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ingest_budget"),
        "{v}"
    );
    // The daemon still serves everything else meanwhile.
    let (st, _) = steward_testkit::process::get(&c, "/v1/tenants/fabrikam/contacts").await;
    assert_eq!(st, StatusCode::OK);
    // A gives up: what it held comes back.
    drop(holder);
    let mut ok = false;
    for _ in 0..50 {
        let (st, _, _) = ingest(&c, "fabrikam", tiny_alerts("c", 100)).await;
        if st.is_success() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the budget held by a dropped request never came back");
}

/// Runs `stewardd` with its address space limited to `bytes` (prlimit).
fn start_limited(d: &mut Stewardd, bytes: u64) {
    let limit = format!("--as={bytes}");
    d.start_wrapped(&["prlimit", &limit, "--"], Duration::from_secs(20));
}

/// `VmPeak` and `VmHWM` of a process, in KiB.
fn vm_peak_hwm(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmPeak:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_maximal_ingests_under_an_address_space_limit_do_not_kill_the_daemon() {
    // Each body is just under 16 MiB of alerts holding a thousand tiny entities each:
    // parsed whole into `Value` trees, as before, one such body needs several GiB.
    let mut d = Stewardd::new("request_timeout = \"600s\"\ningest_budget = \"32MiB\"", "");
    start_limited(&mut d, AS_LIMIT);
    let pid = d.child.as_ref().unwrap().id();
    let c = d.client().with_timeout(Some(Duration::from_secs(900)));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let c = c.clone();
        let tenant = steward_testkit::process::TENANTS[i];
        let body = dense_alerts(&format!("m{i}-"));
        assert!(body.len() > 15 << 20 && body.len() <= 16 << 20);
        tasks.push(tokio::spawn(async move { ingest(&c, tenant, body).await }));
    }
    let mut stored = 0;
    for t in tasks {
        let (st, retry, v) = t.await.unwrap();
        match st {
            StatusCode::CREATED => stored += 1,
            StatusCode::SERVICE_UNAVAILABLE => assert_eq!(retry.as_deref(), Some("1"), "{v}"),
            other => panic!("an ingest answered {other}: {v}\n{}", d.stderr_text()),
        }
    }
    assert!(d.alive(), "the daemon died: {}", d.stderr_text());
    let (peak, hwm) = vm_peak_hwm(pid);
    println!("stored {stored} of 3; VmPeak {peak} KiB, VmHWM {hwm} KiB");
    assert!(stored >= 1, "no ingest was stored");
    assert!(steward_testkit::process::health(&d.socket));
}

/// The address space the daemon gets in the test above.
const AS_LIMIT: u64 = 2 << 30;

/// When each record of `operation` in `tenant`'s audit log committed.
async fn commit_times(c: &Client, tenant: &str, operation: &str) -> Vec<jiff::Timestamp> {
    list_all(c, &format!("/v1/tenants/{tenant}/audit"))
        .await
        .iter()
        .filter(|r| r["operationName"] == operation)
        .map(|r| r["at"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_write_commits_between_the_chunks_of_a_big_ingest() {
    let d = Stewardd::started("", "");
    let c = d.client().with_timeout(Some(Duration::from_secs(600)));
    let big = tiny_alerts("big", 40_000);
    let ic = c.clone();
    let big_ingest = tokio::spawn(async move { ingest(&ic, "contoso", big).await });
    // Wait until part of the batch is visible: it is being stored.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (st, v) = steward_testkit::process::get(&c, "/v1/tenants/contoso/alerts?limit=1").await;
        assert_eq!(st, StatusCode::OK, "{v}");
        if !v["value"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            !big_ingest.is_finished(),
            "the ingest ended before any of it was seen"
        );
        assert!(Instant::now() < deadline, "no alert became visible");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = c
        .put_json(
            "/v1/tenants/fabrikam/contacts/between",
            &steward_testkit::process::contact("between"),
            None,
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}", r.status);
    let (st, _, v) = big_ingest.await.unwrap();
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["ingested"], 40_000);
    let put_at = commit_times(&c, "fabrikam", "contacts.write").await;
    let chunks = commit_times(&c, "contoso", "alerts.ingest").await;
    assert_eq!(put_at.len(), 1);
    assert!(chunks.len() > 2, "the batch was stored in one job");
    let last = chunks.iter().max().unwrap();
    assert!(
        put_at[0] < *last,
        "the other tenant's write ({}) waited for the whole batch (last part {last})",
        put_at[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_handed_to_the_writer_answers_its_commit_not_408() {
    // The writer is kept busy by a big spool file (one job, no request timeout of its
    // own); DSR opens sent meanwhile are handed over at once and wait for their group
    // longer than the request timeout: each must answer its commit (201), never 408.
    // One second: long enough that the steps before the hand-over (identity lookup,
    // body read) fit inside it on a loaded CI machine, far shorter than the spool job.
    let timeout = Duration::from_secs(1);
    let d = Stewardd::started("request_timeout = \"1s\"", "");
    let c = d.client().with_timeout(Some(Duration::from_secs(600)));
    let spool = d.dir.path().join("data/spool/contoso");
    std::fs::write(spool.join("big.json.tmp"), tiny_alerts("s", 60_000)).unwrap();
    std::fs::rename(spool.join("big.json.tmp"), spool.join("big.json")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut opened, mut slow) = (0, 0);
    while spool.join("big.json").exists() {
        assert!(
            Instant::now() < deadline,
            "the spool file was never ingested"
        );
        let t0 = Instant::now();
        let (st, _, v) = post(
            &c,
            "/v1/tenants/fabrikam/dsr",
            &dsr_body("alice@contoso.example"),
            None,
        )
        .await;
        let took = t0.elapsed();
        assert_eq!(st, StatusCode::CREATED, "after {took:?}: {v}");
        opened += 1;
        if took > timeout {
            slow += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        spool.join("done/big.json").exists(),
        "the spool file was not stored"
    );
    assert!(
        slow > 0,
        "no DSR open waited longer than the timeout ({opened} sent): this run proves nothing"
    );
    assert_eq!(list_all(&c, "/v1/tenants/fabrikam/dsr").await.len(), opened);
}

/// A raw POST with headers; returns status, headers and body.
async fn post(
    c: &Client,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut headers = Vec::new();
    if let Some(k) = key {
        headers.push((HeaderName::from_static("idempotency-key"), k.to_owned()));
    }
    let r = c
        .request(
            Method::POST,
            path,
            Some(Body::json(body).unwrap()),
            &headers,
        )
        .await
        .unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, r.headers, v)
}

fn dsr_body(email: &str) -> Value {
    json!({"type": "export", "subject": {"email": email}})
}

/// POSTs `body` as `user` through curl on the daemon's socket; returns status and body.
fn post_as(
    user: &str,
    socket: &std::path::Path,
    path: &str,
    body: &Value,
    key: &str,
) -> (u16, Value) {
    let out = Command::new("runuser")
        .args([
            "-u",
            user,
            "--",
            "curl",
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .arg("--unix-socket")
        .arg(socket)
        .args(["-H", "Content-Type: application/json"])
        .args(["-H", &format!("Idempotency-Key: {key}")])
        .args(["--data-binary", &body.to_string()])
        .arg(format!("http://localhost{path}"))
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (b, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(b).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_once_per_uid_and_tenant_and_survive_a_restart() {
    let user = OsUser::new("ingest");
    let mut d = Stewardd::new("", "");
    // The other user reaches the socket through its group and holds dsr.manage in contoso.
    let text = std::fs::read_to_string(&d.config).unwrap();
    let text = text.replacen(
        "[daemon]\n",
        &format!("[daemon]\nsocket_group = \"{}\"\n", user.name),
        1,
    ) + &format!(
        "\n[[grant]]\nuser = \"{}\"\ntenant = \"contoso\"\nrole = \"tenant-admin\"\n",
        user.name
    );
    std::fs::write(&d.config, text).unwrap();
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    d.start();
    let c = d.client();
    let path = "/v1/tenants/contoso/dsr";
    let key = "0190b8c2-7d1e-7c3a-9f00-1234567890ab";
    let (st, h, first) = post(&c, path, &dsr_body("alice@contoso.example"), Some(key)).await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    assert!(h.get("idempotent-replayed").is_none());
    // A retry: the same answer, one request.
    let (st, h, again) = post(&c, path, &dsr_body("alice@contoso.example"), Some(key)).await;
    assert_eq!(st, StatusCode::CREATED, "{again}");
    assert_eq!(again, first);
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(list_all(&c, path).await.len(), 1);
    // The same key for another request: 422 naming the header, nothing opened.
    let (st, _, v) = post(&c, path, &dsr_body("bob@contoso.example"), Some(key)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["target"], "Idempotency-Key");
    assert_eq!(list_all(&c, path).await.len(), 1);
    // A malformed key: 400 naming the header.
    let (st, _, v) = post(&c, path, &dsr_body("alice@contoso.example"), Some("a b")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["target"], "Idempotency-Key");
    // Another tenant: its own keys.
    let (st, _, other) = post(
        &c,
        "/v1/tenants/fabrikam/dsr",
        &dsr_body("alice@contoso.example"),
        Some(key),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{other}");
    assert_ne!(other["id"], first["id"]);
    // Another uid, same key and body: acts for itself, never sees the first answer.
    let (code, theirs) = post_as(
        &user.name,
        &d.socket,
        path,
        &dsr_body("alice@contoso.example"),
        key,
    );
    assert_eq!(code, 201, "{theirs}\n{}", d.stderr_text());
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(list_all(&c, path).await.len(), 2);
    // Kept durably: after a restart the retry still replays.
    d.stop();
    d.start();
    let c = d.client();
    let (st, h, after) = post(&c, path, &dsr_body("alice@contoso.example"), Some(key)).await;
    assert_eq!(st, StatusCode::CREATED, "{after}");
    assert_eq!(after, first);
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(list_all(&c, path).await.len(), 2);
    // Alerts: a replay does not count the batch again as duplicates.
    let body = json!([{"name": "k1", "properties": {}}, {"name": "k2", "properties": {}}]);
    let apath = "/v1/tenants/contoso/alerts";
    let (st, _, v1) = post(&c, apath, &body, Some("batch-1")).await;
    assert_eq!(
        (st, v1["ingested"].as_u64()),
        (StatusCode::CREATED, Some(2)),
        "{v1}"
    );
    let (st, h, v2) = post(&c, apath, &body, Some("batch-1")).await;
    assert_eq!(st, StatusCode::CREATED, "{v2}");
    assert_eq!(v2, v1);
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
}
