//! A fleet: two `stewardd` processes on one PostgreSQL database (the test kit's cluster;
//! without PostgreSQL these tests fail saying how to install it) behave as one service:
//! each reads what the other wrote, a change through one reaches the event subscribers
//! of the other (once, numbered per tenant), the audit chains verify, a daemon SIGKILLed
//! under 16 writers loses no acknowledged write, a JIT request initiated on a daemon that
//! then dies still expires on time, and the timers (the retention sweep) run on one
//! daemon only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;
use steward::client::{Client, Lines};
use steward_testkit::api::{contact, get, next_event, verify_all};
use steward_testkit::config::ConfigBuilder;
use steward_testkit::inproc::{Api, in_secs, policy, poll, reasons};
use steward_testkit::postgres;
use steward_testkit::process::Stewardd;

/// What the leader logs when it takes the fleet's timers (`store/pg/leader.rs`).
const LEADS: &str = "runs the fleet's timers";

/// A `stewardd` on the reliability config with `extra` appended, its store on the
/// database `url`, logging at `info` to its stderr; started.
fn stewardd_on(url: &str, extra: &str) -> Stewardd {
    let dir = steward_testkit::process::temp_dir();
    let b = ConfigBuilder::reliability(dir.path(), "")
        .postgres(url)
        .extra(extra);
    let mut d = Stewardd::with_config(dir, &b);
    d.rust_log = "info".to_owned();
    d.start();
    d
}

/// Two daemons on one fresh database; the first started is the timers' leader.
fn fleet(extra: &str) -> (Stewardd, Stewardd) {
    fleet_on(&postgres::database(), extra)
}

/// [`fleet`] on the database `url`.
fn fleet_on(url: &str, extra: &str) -> (Stewardd, Stewardd) {
    let url = url.to_owned();
    let a = stewardd_on(&url, extra);
    let b = stewardd_on(&url, extra);
    assert!(a.stderr_text().contains(LEADS), "{}", a.stderr_text());
    assert!(!b.stderr_text().contains(LEADS), "{}", b.stderr_text());
    (a, b)
}

/// `PUT /v1/tenants/<t>/contacts/<name>`; the status.
async fn put(c: &Client, t: &str, name: &str) -> StatusCode {
    c.put_json(
        &format!("/v1/tenants/{t}/contacts/{name}"),
        &contact(name),
        None,
    )
    .await
    .unwrap()
    .status
}

/// The next events of a stream as `tenant:kind:name:action:seq`, `n` of them.
async fn events(lines: &mut Lines, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = next_event(lines, Duration::from_secs(10)).await;
        let s = |k: &str| {
            v[k].as_str()
                .map_or_else(|| v[k].to_string(), str::to_owned)
        };
        out.push(format!(
            "{}:{}:{}:{}:{}",
            s("tenant"),
            s("kind"),
            s("name"),
            s("action"),
            v["seq"]
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_see_each_others_writes_and_events_once_and_one_chain() {
    let (a, b) = fleet("");
    let (ca, cb) = (a.client(), b.client());
    let mut on_a = ca.get_lines("/v1/events").await.unwrap();
    let mut on_b = cb.get_lines("/v1/events").await.unwrap();
    // Through A, then B, in two tenants: each stream numbers per tenant, and a daemon's
    // own write reaches its subscribers once (locally), not again through the database.
    // Each write is seen on both streams before the next is made.
    for (c, t, name, seq) in [
        (&ca, "contoso", "a1", 1),
        (&ca, "fabrikam", "a2", 1),
        (&cb, "fabrikam", "b1", 2),
        (&cb, "contoso", "b2", 2),
    ] {
        assert_eq!(put(c, t, name).await, StatusCode::CREATED, "{t}/{name}");
        let want = [format!("{t}:contacts:{name}:created:{seq}")];
        assert_eq!(events(&mut on_a, 1).await, want, "on A");
        assert_eq!(events(&mut on_b, 1).await, want, "on B");
    }
    // Nothing more (a duplicate would have come before the last one: notifications
    // arrive in commit order).
    for lines in [&mut on_a, &mut on_b] {
        let more = tokio::time::timeout(Duration::from_millis(700), lines.next_line()).await;
        assert!(more.is_err(), "an extra event: {more:?}");
    }
    // Each reads the other's writes, with the same etag.
    for name in ["a1", "b2"] {
        let path = format!("/v1/tenants/contoso/contacts/{name}");
        let (ra, rb) = (ca.get(&path).await.unwrap(), cb.get(&path).await.unwrap());
        assert_eq!((ra.status, rb.status), (StatusCode::OK, StatusCode::OK));
        assert_eq!(ra.etag(), rb.etag());
        assert!(ra.etag().is_some());
    }
    // An event a subscriber may not read is not shown to it: a stream for one tenant sees
    // only that tenant's changes, numbered as if the others did not exist.
    let mut only = cb.get_lines("/v1/events?tenant=contoso").await.unwrap();
    assert_eq!(put(&ca, "northwind", "n1").await, StatusCode::CREATED);
    assert_eq!(put(&ca, "contoso", "a3").await, StatusCode::CREATED);
    assert_eq!(
        events(&mut only, 1).await,
        ["contoso:contacts:a3:created:3"]
    );
    // One chain per tenant, whichever daemon verifies it.
    let counts_a = verify_all(&ca).await;
    let counts_b = verify_all(&cb).await;
    assert_eq!(counts_a, counts_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_sigkilled_under_16_writers_loses_no_acknowledged_write() {
    let (mut a, b) = fleet("");
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..16usize {
        // Half the writers go through A (killed), half through B (the survivor).
        let c = if w % 2 == 0 { a.client() } else { b.client() };
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let t = steward_testkit::config::TENANTS[n % 3];
                let name = format!("w{w}-n{n}");
                match c
                    .put_json(
                        &format!("/v1/tenants/{t}/contacts/{name}"),
                        &contact(&name),
                        None,
                    )
                    .await
                {
                    Ok(r) if r.status == StatusCode::CREATED => acked.push((t, name)),
                    Ok(r) => panic!("{t}/{name}: {} {:?}", r.status, r.body),
                    // The daemon died under us: this one may or may not have landed.
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| a.kill9());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut through_a = 0;
    for (w, h) in writers.into_iter().enumerate() {
        let mine = h.await.unwrap();
        if w % 2 == 0 {
            through_a += mine.len();
        }
        acked.extend(mine);
    }
    assert!(through_a > 16, "too few writes through A before the kill");
    let cb = b.client();
    for (t, name) in &acked {
        let (s, v) = get(&cb, &format!("/v1/tenants/{t}/contacts/{name}")).await;
        assert_eq!(s, StatusCode::OK, "{t}/{name} acknowledged, lost: {v}");
        assert_eq!(
            v["properties"]["emails"],
            Value::from(format!("{name}@example.com"))
        );
    }
    verify_all(&cb).await;
    // B still writes.
    assert_eq!(put(&cb, "contoso", "after").await, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jit_request_initiated_on_a_dead_daemon_expires_on_time() {
    let (mut a, b) = fleet("");
    let api_a = Api(a.client());
    let (s, v, _) = api_a
        .put("/v1/tenants/contoso/jit-policies/p", &policy("PT1H"), None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let end = in_secs(4.0);
    let (s, v, _) = api_a.ask("p", 22, end).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    // A, which leads the timers and created the request, dies before its end.
    tokio::task::block_in_place(|| a.kill9());
    let api_b = Api(b.client());
    let path = format!("/v1/tenants/contoso/jit-requests/{id}");
    let expired = poll(Duration::from_secs(10), || async {
        let (_, v, _) = api_b.get(&path).await;
        (reasons(&v) == ["Expired"]).then(jiff::Timestamp::now)
    })
    .await
    .expect("the port never expired");
    let late = end.duration_until(expired);
    assert!(late >= jiff::SignedDuration::ZERO, "expired {late:?} early");
    assert!(
        late <= jiff::SignedDuration::from_secs(2),
        "expired {late:?} after its end"
    );
    assert!(b.stderr_text().contains(LEADS), "B took over the timers");
    let (_, log, _) = api_b
        .get("/v1/tenants/contoso/audit?action=jit.expire&limit=1000")
        .await;
    let n = records(&log)
        .iter()
        .filter(|r| r["operationName"] == "jit.expire")
        .count();
    assert_eq!(n, 1, "one expiry: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_connection_drops_reconnects_and_reports_the_gap() {
    let url = postgres::database();
    let db = url
        .trim_start_matches("postgresql:///")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (a, b) = fleet_on(&url, "");
    let (ca, cb) = (a.client(), b.client());
    let mut on_b = cb.get_lines("/v1/events").await.unwrap();
    assert_eq!(put(&ca, "contoso", "before").await, StatusCode::CREATED);
    assert_eq!(
        events(&mut on_b, 1).await,
        ["contoso:contacts:before:created:1"]
    );
    // The server ends both daemons' listening sessions (a restart, a failover would).
    let out = postgres::shared().psql(
        &db,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query = 'LISTEN steward_events'",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2", "{out:?}");
    // B's subscriber hears that it may have missed events ...
    let v = next_event(&mut on_b, Duration::from_secs(10)).await;
    assert_eq!(v, serde_json::json!({"lagged": 0}));
    // ... and A's writes reach it again once B listens again (PUT until one crosses).
    let deadline = Instant::now() + Duration::from_secs(10);
    'crossed: loop {
        assert!(
            Instant::now() < deadline,
            "no event crossed after the reconnection"
        );
        assert!(put(&ca, "contoso", "after").await.is_success());
        while let Ok(line) =
            tokio::time::timeout(Duration::from_millis(500), on_b.next_line()).await
        {
            let v: Value = serde_json::from_slice(&line.unwrap().unwrap()).unwrap();
            if v["name"] == "after" {
                break 'crossed;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_opened_on_one_daemon_and_confirmed_on_the_other_is_vacuumed_once() {
    let url = postgres::database();
    let db = url
        .trim_start_matches("postgresql:///")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (a, b) = fleet_on(&url, "[dsr]\nscrub_within = \"2s\"\n");
    let (ca, cb) = (a.client(), b.client());
    let email = "zelda.quist@contoso.example";
    let r = ca
        .put_json(
            "/v1/tenants/contoso/contacts/z",
            &serde_json::json!({"properties": {"emails": email, "phone": "+1 555 0100"}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED);
    // Opened on A, confirmed (and so carried out) on B, followed on A.
    let path =
        steward_testkit::dsr::open(&ca, "contoso", "erase", serde_json::json!({"email": email}))
            .await;
    steward_testkit::dsr::confirm(&cb, &path).await;
    steward_testkit::dsr::wait_for(&ca, &path, "completed", Duration::from_secs(30)).await;
    let (_, left) = get(&ca, "/v1/tenants/contoso/contacts/z").await;
    assert!(!left.to_string().to_lowercase().contains(email), "{left}");
    // The leader (A) scrubs: VACUUM of the tables, then the request marked and audited.
    let done = poll(Duration::from_secs(15), || async {
        let (_, v) = get(&cb, &path).await;
        v["execution"]["scrubbedAt"].is_string().then_some(v)
    })
    .await
    .expect("the erasure was never scrubbed");
    assert!(done["execution"]["scrubbedAt"].is_string(), "{done}");
    let (_, log) = get(&cb, "/v1/tenants/contoso/audit?action=dsr.scrub&limit=100").await;
    let scrubs = records(&log);
    assert_eq!(scrubs.len(), 1, "one scrub: {log}");
    let reason = scrubs[0]["details"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("vacuumed"), "{reason}");
    let out = postgres::shared().psql(
        &db,
        "SELECT count(*) FROM pg_stat_user_tables
         WHERE relname IN ('records', 'record_subjects', 'audit', 'audit_subjects')
           AND last_vacuum IS NOT NULL",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4", "{out:?}");
    verify_all(&ca).await;
}

/// The records of an audit page.
fn records(page: &Value) -> Vec<Value> {
    page["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_sweep_runs_once_across_the_fleet() {
    let retention = "[retention]\njit_requests = \"1s\"\nsweep_interval = \"200ms\"\n";
    let (a, b) = fleet(retention);
    let (api_a, api_b) = (Api(a.client()), Api(b.client()));
    let (s, v, _) = api_b
        .put("/v1/tenants/contoso/jit-policies/p", &policy("PT1H"), None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut ids = Vec::new();
    // One request through each daemon, for different ports (a newer request for the
    // same port would revoke the older one).
    for (api, port) in [(&api_a, 22), (&api_b, 3389)] {
        let (s, v, _) = api.ask("p", port, in_secs(1.0)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let started = Instant::now();
    for id in &ids {
        let path = format!("/v1/tenants/contoso/jit-requests/{id}");
        poll(Duration::from_secs(10), || async {
            (api_b.get(&path).await.0 == StatusCode::NOT_FOUND).then_some(())
        })
        .await
        .expect("a JIT request outlived its retention");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // A few more sweeps of both daemons.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, log, _) = api_a.get("/v1/tenants/contoso/audit?limit=1000").await;
    let purged: BTreeMap<String, u64> = records(&log)
        .iter()
        .filter(|r| r["operationName"] == "retention.purge")
        .flat_map(|r| {
            r["details"]["counts"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .fold(BTreeMap::new(), |mut m, (k, n)| {
            *m.entry(k).or_default() += n.as_u64().unwrap_or(0);
            m
        });
    assert_eq!(purged.get("jit-request"), Some(&2), "{log}");
    let expiries = records(&log)
        .iter()
        .filter(|r| r["operationName"] == "jit.expire")
        .count();
    assert_eq!(expiries, 2, "each request expired once: {log}");
    // Only the leader swept.
    assert!(a.stderr_text().contains("retention sweep"));
    assert!(
        !b.stderr_text().contains("retention sweep"),
        "{}",
        b.stderr_text()
    );
    verify_all(&api_a.0).await;
}
