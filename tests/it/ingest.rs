//! Alert ingestion against an in-process daemon: the API (idempotent on names, all or
//! nothing with every bad item listed) and the spool directory (good files to `done/`, a
//! file with one bad line rejected whole with a `.error` naming the line, `*.tmp` ignored
//! until renamed, files present before the start ingested at start).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use steward::model::AuditStatus;
use steward_testkit::api::strings;
use steward_testkit::inproc::{T, TestDaemon, poll};

/// The ingest profile beside tenant-admin.
fn ingest() -> String {
    format!(
        "[[grant]]\nuser = \"{}\"\ntenant = \"contoso\"\nrole = \"ingest\"\n",
        steward_testkit::me()
    )
}

fn alert(name: &str) -> Value {
    json!({"name": name, "properties": {
        "alertDisplayName": "Login from new IP", "severity": "Medium", "status": "Active",
        "timeGeneratedUtc": jiff::Timestamp::now().to_string(),
        "entities": [{"type": "account", "name": "carol", "upn": "carol@contoso.com"}]
    }})
}

fn spool(dir: &Path) -> PathBuf {
    dir.join("data/spool").join(T)
}

async fn alert_status(d: &TestDaemon, name: &str) -> StatusCode {
    d.client()
        .get(&format!("/v1/tenants/{T}/alerts/{name}"))
        .await
        .0
}

async fn wait_for_alert(d: &TestDaemon, name: &str) -> bool {
    poll(Duration::from_secs(5), || async {
        (alert_status(d, name).await == StatusCode::OK).then_some(())
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_alert_is_not_stored_twice() {
    let (_dir, d) = TestDaemon::in_temp(&ingest()).await;
    let c = d.client();
    let p = format!("/v1/tenants/{T}/alerts");
    let (s, v, _) = c
        .post(&p, &json!([alert("a1"), alert("a2"), alert("a1")]))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!({"ingested": 2, "duplicates": 1}));
    let (s, v, _) = c.post(&p, &alert("a1")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"ingested": 0, "duplicates": 1}));
    let (_, v, _) = c.get(&p).await;
    assert_eq!(v["value"].as_array().unwrap().len(), 2, "{v}");
    let ingests: Vec<_> = d
        .audited("alerts.ingest")
        .await
        .into_iter()
        .map(|r| (r.details.counts["ingested"], r.details.counts["duplicates"]))
        .collect();
    assert_eq!(ingests, [(2, 1), (0, 1)]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_item_changes_nothing_and_every_bad_item_is_listed() {
    let (_dir, d) = TestDaemon::in_temp(&ingest()).await;
    let c = d.client();
    let p = format!("/v1/tenants/{T}/alerts");
    let body = json!([alert("ok-1"), {"properties": {}}, {"name": "x", "properties": "no"}]);
    let (s, v, _) = c.post(&p, &body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let targets = strings(&v["error"]["details"], "target");
    assert_eq!(targets, ["[1].name", "[2].properties"], "{v}");
    assert_eq!(alert_status(&d, "ok-1").await, StatusCode::NOT_FOUND);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_spool_file_is_ingested_and_moved_to_done() {
    let (dir, d) = TestDaemon::in_temp(&ingest()).await;
    let sp = spool(dir.path());
    assert!(sp.join("done").is_dir() && sp.join("rejected").is_dir());
    let lines = format!("{}\n{}\n", alert("s-1"), alert("s-2"));
    std::fs::write(sp.join("b.tmp"), lines).unwrap();
    std::fs::rename(sp.join("b.tmp"), sp.join("b.ndjson")).unwrap();
    std::fs::write(
        sp.join("c.json"),
        json!([alert("s-3"), alert("s-1")]).to_string(),
    )
    .unwrap();
    assert!(wait_for_alert(&d, "s-2").await, "ndjson not ingested");
    assert!(wait_for_alert(&d, "s-3").await, "json not ingested");
    let moved = poll(Duration::from_secs(5), || async {
        (sp.join("done/b.ndjson").exists() && sp.join("done/c.json").exists()).then_some(())
    })
    .await;
    assert!(moved.is_some(), "files not moved to done/");
    assert!(!sp.join("b.ndjson").exists());
    let ingests: Vec<_> = d
        .audited("alerts.ingest")
        .await
        .into_iter()
        .map(|r| (r.resource_id, r.caller.profile, r.details.counts))
        .collect();
    assert_eq!(ingests.len(), 2, "{ingests:?}");
    assert!(ingests.iter().all(|(_, p, _)| p == "system"));
    let total: u64 = ingests.iter().map(|(_, _, c)| c["ingested"]).sum();
    let dups: u64 = ingests.iter().map(|(_, _, c)| c["duplicates"]).sum();
    assert_eq!((total, dups), (3, 1));
    assert!(ingests.iter().any(|(r, _, _)| r == "spool/b.ndjson"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_file_with_one_bad_line_is_rejected_whole() {
    let (dir, d) = TestDaemon::in_temp(&ingest()).await;
    let sp = spool(dir.path());
    std::fs::write(
        sp.join("bad.tmp"),
        format!("{}\nthis is not json\n{}\n", alert("r-1"), alert("r-3")),
    )
    .unwrap();
    std::fs::rename(sp.join("bad.tmp"), sp.join("bad.ndjson")).unwrap();
    std::fs::write(
        sp.join("arr.json"),
        json!([alert("r-4"), {"name": "r-5"}]).to_string(),
    )
    .unwrap();
    let rejected = poll(Duration::from_secs(5), || async {
        (sp.join("rejected/bad.ndjson").exists() && sp.join("rejected/arr.json").exists())
            .then_some(())
    })
    .await;
    assert!(rejected.is_some(), "files not moved to rejected/");
    let err = std::fs::read_to_string(sp.join("rejected/bad.ndjson.error")).unwrap();
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("line 1:") && !err.contains("line 3"), "{err}");
    let err = std::fs::read_to_string(sp.join("rejected/arr.json.error")).unwrap();
    assert!(err.contains("[1].properties"), "{err}");
    for name in ["r-1", "r-3", "r-4"] {
        assert_eq!(
            alert_status(&d, name).await,
            StatusCode::NOT_FOUND,
            "{name}"
        );
    }
    let failed: Vec<_> = d
        .audited("alerts.ingest")
        .await
        .into_iter()
        .map(|r| (r.status, r.resource_id))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|(s, _)| *s == AuditStatus::Failed));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmp_file_is_ignored_until_renamed() {
    let (dir, d) = TestDaemon::in_temp(&ingest()).await;
    let sp = spool(dir.path());
    std::fs::write(sp.join("w.tmp"), format!("{}\n", alert("t-1"))).unwrap();
    std::fs::write(sp.join(".hidden.json"), alert("t-2").to_string()).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(alert_status(&d, "t-1").await, StatusCode::NOT_FOUND);
    assert_eq!(alert_status(&d, "t-2").await, StatusCode::NOT_FOUND);
    assert!(sp.join("w.tmp").exists() && sp.join(".hidden.json").exists());
    std::fs::rename(sp.join("w.tmp"), sp.join("w.ndjson")).unwrap();
    assert!(wait_for_alert(&d, "t-1").await, "renamed file not ingested");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_present_before_the_start_is_ingested_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let sp = spool(dir.path());
    std::fs::create_dir_all(&sp).unwrap();
    std::fs::write(sp.join("early.json"), alert("e-1").to_string()).unwrap();
    let d = TestDaemon::start(dir.path(), &ingest()).await;
    assert!(
        wait_for_alert(&d, "e-1").await,
        "file present at start not ingested"
    );
    let moved = poll(Duration::from_secs(5), || async {
        sp.join("done/early.json").exists().then_some(())
    })
    .await;
    assert!(moved.is_some());
    d.stop().await;
}
