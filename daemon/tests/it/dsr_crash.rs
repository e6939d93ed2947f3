//! An erasure interrupted by SIGKILL completes after a restart without doing anything
//! twice: the real `stewardd` binary is killed while the request is `in_progress`, started
//! again on the same data, and the request must complete with one report line per record
//! and one `dsr.erase` audit record per contact changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward::client::Client;
use steward_testkit::api::post_alerts;
use steward_testkit::config::ConfigBuilder;
use steward_testkit::dsr;
use steward_testkit::inproc::stored_audit;
use steward_testkit::me;
use steward_testkit::process::{Stewardd, get};

const T: &str = "contoso";
const CAROL: &str = "carol@contoso.com";
/// Contacts naming the subject: even ones with a second address, odd ones with only hers.
const CONTACTS: usize = 120;
/// Alerts naming the subject (each gets a `retained` line).
const ALERTS: usize = 2000;

/// A daemon on a temp dir: tenant `contoso`, the test's user tenant-admin and ingest.
fn daemon() -> Stewardd {
    let dir = steward_testkit::process::temp_dir();
    let config = ConfigBuilder::new(dir.path())
        .tenant("contoso", "Contoso")
        .grant(&me(), "contoso", "tenant-admin")
        .grant(&me(), "contoso", "ingest");
    Stewardd::with_config(dir, &config)
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
    post_alerts(c, T, &alerts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_killed_midway_completes_after_restart_without_doing_anything_twice() {
    let mut d = daemon();
    d.start();
    let c = d.client();
    seed(&c).await;

    let p = dsr::open(&c, T, "erase", json!({"email": CAROL})).await;
    dsr::confirm(&c, &p).await;

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
            d.kill9();
            break n;
        }
        assert!(Instant::now() < deadline, "execution never started: {v}");
    };
    assert!(lines_at_kill < CONTACTS + ALERTS);
    eprintln!("killed with {lines_at_kill} report lines committed");

    d.start();
    let c = d.client();
    let req = dsr::wait_for(&c, &p, "completed", Duration::from_secs(60)).await;
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

    d.stop();

    // The audit log: each contact changed exactly once, the resume recorded, no address.
    let audit = stored_audit(d.dir.path(), T);
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
}
