//! The timers against an in-process daemon: JIT ports expire at `endTimeUtc` (also across a
//! restart, before the socket answers), the `jit.on_change` hook runs with the request in
//! its environment (and a failing one is only audited), and the retention sweep removes
//! what expired and audits the counts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};
use steward::model::AuditStatus;
use steward_daemon::store::{AuditEntry, DocInput, Kind, TenantTxn, WriteError, system_caller};
use util::{T, TestDaemon, in_secs, initiate, policy, poll, reasons};

async fn with_policy(d: &TestDaemon) {
    let (s, v, _) = d
        .client()
        .put(
            &format!("/v1/tenants/{T}/jit-policies/p"),
            &policy("PT1H"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn open(d: &TestDaemon, port: u16, end: jiff::Timestamp) -> String {
    let (s, v, _) = d
        .client()
        .post(
            &format!("/v1/tenants/{T}/jit-policies/p/initiate"),
            &initiate(port, end, "198.51.100.9"),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn request(d: &TestDaemon, id: &str) -> (StatusCode, Value) {
    let (s, v, _) = d
        .client()
        .get(&format!("/v1/tenants/{T}/jit-requests/{id}"))
        .await;
    (s, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_expires_within_a_second_and_a_half_of_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    with_policy(&d).await;
    // A fractional end: the timer must not fire early nor wait for a sweep.
    let end = in_secs(2.3);
    let id = open(&d, 22, end).await;
    let (_, v) = request(&d, &id).await;
    assert_eq!(reasons(&v), ["UserRequested"]);
    let expired = poll(Duration::from_secs(6), || async {
        let (_, v) = request(&d, &id).await;
        (reasons(&v) == ["Expired"]).then(jiff::Timestamp::now)
    })
    .await
    .expect("the port never expired");
    let late = end.duration_until(expired);
    assert!(
        late >= jiff::SignedDuration::ZERO,
        "expired {late:?} before its end"
    );
    assert!(
        late <= jiff::SignedDuration::from_millis(1500),
        "expired {late:?} after its end"
    );
    let (_, v) = request(&d, &id).await;
    assert_eq!(v["virtualMachines"][0]["ports"][0]["status"], "Revoked");
    let rec = d
        .audit()
        .into_iter()
        .find(|r| r.operation_name == "jit.expire")
        .expect("expiry not audited");
    assert_eq!(rec.caller.profile, "system");
    assert_eq!(rec.details.counts.get("ports"), Some(&1));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_fell_due_while_stopped_is_expired_before_the_socket_opens() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    with_policy(&d).await;
    let end = in_secs(1.5);
    let id = open(&d, 3389, end).await;
    d.stop().await;
    let wait = Duration::try_from(jiff::Timestamp::now().duration_until(end)).unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(1200)).await;

    // Opened, not yet serving: the store already says Expired.
    let (daemon, shared) = util::open(dir.path(), "");
    let doc = shared
        .store
        .tenant(T)
        .get(Kind::JitRequest, &id)
        .unwrap()
        .unwrap();
    let body: Value = serde_json::from_str(&doc.body_json).unwrap();
    assert_eq!(reasons(&body), ["Expired"], "{body}");
    let d = TestDaemon::serve(dir.path(), daemon, shared);
    let (s, v) = request(&d, &id).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(reasons(&v), ["Expired"]);
    d.stop().await;
}

fn hook_config(script: &std::path::Path) -> String {
    format!("[jit]\non_change = \"{}\"\n", script.display())
}

fn write_script(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_runs_with_the_request_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hook.out");
    let script = dir.path().join("hook.sh");
    write_script(
        &script,
        &format!(
            "{{ env | grep '^STEWARD_' | sort; echo --; }} >> '{}'",
            out.display()
        ),
    );
    let d = TestDaemon::start(dir.path(), &hook_config(&script)).await;
    with_policy(&d).await;
    let id = open(&d, 22, in_secs(600.0)).await;
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    poll(Duration::from_secs(5), || async {
        read().contains("--").then_some(())
    })
    .await
    .expect("the hook did not run on initiate");
    let first = read();
    for want in [
        "STEWARD_TENANT=contoso".to_owned(),
        "STEWARD_POLICY=p".to_owned(),
        format!("STEWARD_REQUEST={id}"),
        "STEWARD_PORTS=22".to_owned(),
        "STEWARD_SOURCE=198.51.100.9".to_owned(),
        "STEWARD_STATUS=Initiated".to_owned(),
    ] {
        assert!(
            first.lines().any(|l| l == want),
            "{want} missing from:\n{first}"
        );
    }

    let (s, _, _) = d
        .client()
        .post(
            &format!("/v1/tenants/{T}/jit-requests/{id}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    poll(Duration::from_secs(5), || async {
        (read().matches("--").count() == 2).then_some(())
    })
    .await
    .expect("the hook did not run on revoke");
    let all = read();
    let second = all.split("--").nth(1).unwrap();
    assert!(
        second.lines().any(|l| l == "STEWARD_STATUS=Revoked"),
        "{second}"
    );
    assert!(
        second.lines().any(|l| l == "STEWARD_REASON=UserRequested"),
        "{second}"
    );
    assert!(!d.audit().iter().any(|r| r.operation_name == "jit.hook"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_is_audited_and_changes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hook.sh");
    write_script(&script, "exit 3");
    let d = TestDaemon::start(dir.path(), &hook_config(&script)).await;
    with_policy(&d).await;
    let id = open(&d, 22, in_secs(600.0)).await;
    let rec = poll(Duration::from_secs(5), || async {
        d.audit()
            .into_iter()
            .find(|r| r.operation_name == "jit.hook")
    })
    .await
    .expect("the failing hook was not audited");
    assert_eq!(rec.status, AuditStatus::Failed);
    assert_eq!(rec.details.reason.as_deref(), Some("exit code 3"));
    assert_eq!(rec.resource_id, format!("jit-requests/{id}"));
    let (_, v) = request(&d, &id).await;
    assert_eq!(v["virtualMachines"][0]["ports"][0]["status"], "Initiated");
    assert!(d.shared.store.tenant(T).audit_verify().unwrap().ok);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_what_expired_and_audits_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(
        dir.path(),
        "[retention]\njit_requests = \"1s\"\nalerts = \"1s\"\nsweep_interval = \"200ms\"\n",
    )
    .await;
    with_policy(&d).await;
    let id = open(&d, 22, in_secs(1.0)).await;
    // An alert whose purge time has passed, written as the alert routes write one.
    let past = jiff::Timestamp::now().as_second() - 1;
    d.shared
        .store
        .writer()
        .write(T, move |txn: &mut TenantTxn<'_>| {
            txn.put(
                Kind::Alert,
                "old",
                DocInput::new("{\"name\":\"old\"}").expires_at(past),
                None,
            )?;
            txn.audit(AuditEntry::new(
                system_caller(),
                "alerts.ingest",
                AuditStatus::Succeeded,
            ));
            Ok::<_, WriteError>(())
        })
        .await
        .unwrap();

    let started = Instant::now();
    poll(Duration::from_secs(8), || async {
        (request(&d, &id).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await
    .expect("the JIT request outlived its retention");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(
        d.shared
            .store
            .tenant(T)
            .get(Kind::Alert, "old")
            .unwrap()
            .is_none()
    );

    let purges: Vec<_> = d
        .audit()
        .into_iter()
        .filter(|r| r.operation_name == "retention.purge")
        .collect();
    let count = |k: &str| {
        purges
            .iter()
            .filter_map(|r| r.details.counts.get(k))
            .sum::<u64>()
    };
    assert_eq!(count("jit-request"), 1, "{purges:?}");
    assert_eq!(count("alert"), 1, "{purges:?}");
    assert!(d.shared.store.tenant(T).audit_verify().unwrap().ok);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_purges_old_audit_records_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(
        dir.path(),
        "[retention]\naudit = \"1s\"\nsweep_interval = \"200ms\"\n",
    )
    .await;
    with_policy(&d).await;
    let rec = poll(Duration::from_secs(5), || async {
        d.audit()
            .into_iter()
            .find(|r| r.operation_name == "audit.purge")
    })
    .await
    .expect("old audit records were not purged");
    assert!(rec.details.counts.get("records").copied().unwrap_or(0) >= 1);
    assert!(!d.audit().iter().any(|r| r.operation_name == "jit.write"));
    assert!(d.shared.store.tenant(T).audit_verify().unwrap().ok);
    d.stop().await;
}
