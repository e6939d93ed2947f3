//! The timers against an in-process daemon: JIT ports expire at `endTimeUtc` (also across a
//! restart, before the socket answers), the `jit.on_change` hook reads the change as one
//! JSON document on stdin (a failing one is only audited, a stuck one is killed), and the retention sweep removes
//! what expired and audits the counts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use steward_daemon::store::TenantRead;
use steward_testkit::tid;

use http::StatusCode;
use serde_json::{Value, json};
use steward::model::AuditStatus;
use steward_daemon::store::{DocInput, Kind};
use steward_testkit::inproc::{T, TestDaemon, in_secs, policy, poll, put_stored, reasons, stored};

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
    let (s, v, _) = d.client().ask("p", port, end).await;
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
    let (_dir, d) = TestDaemon::in_temp("").await;
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
        .audited("jit.expire")
        .await
        .into_iter()
        .next()
        .expect("expiry not audited");
    assert_eq!(rec.caller.profile, "system");
    assert_eq!(rec.details.counts.get("ports"), Some(&1));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_fell_due_while_stopped_is_expired_before_the_socket_opens() {
    let (dir, d) = TestDaemon::in_temp("").await;
    with_policy(&d).await;
    let end = in_secs(1.5);
    let id = open(&d, 3389, end).await;
    d.stop().await;
    let wait = Duration::try_from(jiff::Timestamp::now().duration_until(end)).unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(1200)).await;

    // Opened, never served: the redb file already says Expired.
    drop(steward_testkit::inproc::open(dir.path(), ""));
    let doc = stored(dir.path())
        .tenant(&tid(T))
        .get(Kind::JitRequest, &id)
        .unwrap()
        .unwrap();
    let body: Value = serde_json::from_str(&doc.body_json).unwrap();
    assert_eq!(reasons(&body), ["Expired"], "{body}");
    let d = TestDaemon::start(dir.path(), "").await;
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

/// The hook documents (one JSON line each) and environments of the runs recorded in
/// `out` so far (a run still writing is left out).
fn hook_runs(out: &std::path::Path) -> Vec<(Value, Vec<String>)> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut runs: Vec<&str> = text.split("--\n").collect();
    runs.pop();
    runs.into_iter()
        .map(|run| {
            let mut lines = run.lines();
            let doc = serde_json::from_str(lines.next().unwrap_or("")).unwrap_or(Value::Null);
            (doc, lines.map(str::to_owned).collect())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_reads_the_change_as_one_json_document_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hook.out");
    let script = dir.path().join("hook.sh");
    write_script(
        &script,
        &format!(
            "{{ cat; echo; env | grep '^STEWARD_' | sort; echo --; }} >> '{}'",
            out.display()
        ),
    );
    let d = TestDaemon::start(dir.path(), &hook_config(&script)).await;
    with_policy(&d).await;
    let end = in_secs(600.0);
    let id = open(&d, 22, end).await;
    poll(Duration::from_secs(5), || async {
        (hook_runs(&out).len() == 1).then_some(())
    })
    .await
    .expect("the hook did not run on initiate");
    let (doc, env) = hook_runs(&out).remove(0);
    let (_, req) = request(&d, &id).await;
    assert_eq!(
        doc,
        json!({
            "version": 1,
            "action": "opened",
            "tenant": "contoso",
            "requestId": id,
            "policyName": "p",
            "status": "Initiated",
            "reason": "UserRequested",
            "startTimeUtc": req["startTimeUtc"],
            "virtualMachines": [{
                "id": steward_testkit::inproc::VM,
                "resourceGroup": "rg1",
                "name": "vm1",
                "ports": [{
                    "number": 22,
                    "sourceAddressPrefixes": ["198.51.100.9"],
                    "endTimeUtc": req["virtualMachines"][0]["ports"][0]["endTimeUtc"],
                    "status": "Initiated",
                    "statusReason": "UserRequested"
                }]
            }]
        })
    );
    // Scalars only in the environment: no comma-joined lists.
    assert_eq!(
        env,
        vec![
            "STEWARD_ACTION=opened".to_owned(),
            "STEWARD_POLICY=p".to_owned(),
            "STEWARD_REASON=UserRequested".to_owned(),
            format!("STEWARD_REQUEST={id}"),
            "STEWARD_STATUS=Initiated".to_owned(),
            "STEWARD_TENANT=contoso".to_owned(),
        ]
    );

    let (s, _, _) = d
        .client()
        .post(
            &format!("/v1/tenants/{T}/jit-requests/{id}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    poll(Duration::from_secs(5), || async {
        (hook_runs(&out).len() == 2).then_some(())
    })
    .await
    .expect("the hook did not run on revoke");
    let (doc, env) = hook_runs(&out).remove(1);
    assert_eq!(doc["action"], "revoked");
    assert_eq!(doc["status"], "Revoked");
    assert_eq!(doc["reason"], "UserRequested");
    assert_eq!(doc["virtualMachines"][0]["ports"][0]["number"], 22);
    assert_eq!(doc["virtualMachines"][0]["ports"][0]["status"], "Revoked");
    assert!(
        env.contains(&"STEWARD_ACTION=revoked".to_owned()),
        "{env:?}"
    );
    assert!(
        !d.audit()
            .await
            .iter()
            .any(|r| r.operation_name == "jit.hook")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_never_reads_its_stdin_is_killed_at_the_timeout() {
    use steward_daemon::timers::hook::{HookEvent, HookFailure, run_one};
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hook.sh");
    write_script(&script, "exec sleep 60");
    // A document far larger than a pipe's buffer: a blocking write would never return.
    let vms: Vec<Value> = (0..2000)
        .map(|i| {
            json!({"id": format!("{}-{i}", steward_testkit::inproc::VM), "ports": [{"number": 22,
                "allowedSourceAddressPrefix": "198.51.100.9", "endTimeUtc": "2030-01-01T00:00:00Z",
                "status": "Initiated", "statusReason": "UserRequested"}]})
        })
        .collect();
    let req: steward::model::JitRequest = serde_json::from_value(json!({
        "id": "r1", "policyName": "p", "virtualMachines": vms,
        "startTimeUtc": "2029-12-31T23:00:00Z", "requestor": "alice"
    }))
    .unwrap();
    let ev = HookEvent::opened(&tid(T), &req);
    assert!(serde_json::to_vec(&ev).unwrap().len() > 256 * 1024);
    let ran = tokio::time::timeout(
        Duration::from_secs(20),
        run_one(&script, &ev, Duration::from_millis(500)),
    )
    .await
    .expect("run_one did not return: the hook held the daemon");
    assert_eq!(ran, Err(HookFailure::Timeout));
}

/// The hook gets its own `STEWARD_*` scalars and `PATH`, and nothing else of the daemon's
/// environment (here the test process's, where cargo has set `CARGO_*` variables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_gets_only_its_own_variables_of_the_daemons_environment() {
    use steward_daemon::timers::hook::{HookEvent, run_one};
    assert!(
        std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("CARGO")),
        "the test needs a variable of the daemon's own to look for (cargo sets CARGO_*)"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hook.sh");
    let out = dir.path().join("env.txt");
    write_script(
        &script,
        &format!("cat >/dev/null; env > '{}'", out.display()),
    );
    let req: steward::model::JitRequest = serde_json::from_value(json!({
        "id": "r1", "policyName": "p", "virtualMachines": [{"id": steward_testkit::inproc::VM,
            "ports": [{"number": 22, "allowedSourceAddressPrefix": "198.51.100.9",
            "endTimeUtc": "2030-01-01T00:00:00Z", "status": "Initiated",
            "statusReason": "UserRequested"}]}],
        "startTimeUtc": "2029-12-31T23:00:00Z", "requestor": "alice"
    }))
    .unwrap();
    let ev = HookEvent::opened(&tid(T), &req);
    run_one(&script, &ev, Duration::from_secs(10))
        .await
        .unwrap();
    let env = std::fs::read_to_string(&out).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    assert!(names.contains(&"STEWARD_TENANT"), "{env}");
    assert!(names.contains(&"PATH"), "{env}");
    let foreign: Vec<&&str> = names
        .iter()
        .filter(|k| {
            !k.starts_with("STEWARD_")
                && !matches!(
                    **k,
                    "PATH"
                        | "LANG"
                        | "LC_ALL"
                        | "LC_CTYPE"
                        | "TZ"
                        | "TMPDIR"
                        | "PWD"
                        | "SHLVL"
                        | "_"
                )
        })
        .collect();
    assert!(foreign.is_empty(), "the hook saw the daemon's {foreign:?}");
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
        d.audited("jit.hook").await.into_iter().next()
    })
    .await
    .expect("the failing hook was not audited");
    assert_eq!(rec.status, AuditStatus::Failed);
    assert_eq!(rec.details.reason.as_deref(), Some("exit code 3"));
    assert_eq!(rec.resource_id, format!("jit-requests/{id}"));
    let (_, v) = request(&d, &id).await;
    assert_eq!(v["virtualMachines"][0]["ports"][0]["status"], "Initiated");
    assert!(d.audit_verifies().await);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_what_expired_and_audits_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let retention =
        "[retention]\njit_requests = \"1s\"\nalerts = \"1s\"\nsweep_interval = \"200ms\"\n";
    // An alert whose purge time has passed, written as the alert routes write one, into
    // the redb file before the daemon serves (the API cannot backdate a purge time).
    drop(steward_testkit::inproc::open(dir.path(), retention));
    let past = jiff::Timestamp::now().as_second() - 1;
    put_stored(
        dir.path(),
        T,
        (Kind::Alert, "old"),
        DocInput::new("{\"name\":\"old\"}").expires_at(past),
        "alerts.ingest",
    )
    .await;
    let d = TestDaemon::start(dir.path(), retention).await;
    with_policy(&d).await;
    let id = open(&d, 22, in_secs(1.0)).await;

    let started = Instant::now();
    poll(Duration::from_secs(8), || async {
        (request(&d, &id).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await
    .expect("the JIT request outlived its retention");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(
        d.client()
            .get(&format!("/v1/tenants/{T}/alerts/old"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let purges = d.audited("retention.purge").await;
    let count = |k: &str| {
        purges
            .iter()
            .filter_map(|r| r.details.counts.get(k))
            .sum::<u64>()
    };
    assert_eq!(count("jit-request"), 1, "{purges:?}");
    assert_eq!(count("alert"), 1, "{purges:?}");
    assert!(d.audit_verifies().await);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_purges_old_audit_records_and_the_chain_still_verifies() {
    let (_dir, d) =
        TestDaemon::in_temp("[retention]\naudit = \"1s\"\nsweep_interval = \"200ms\"\n").await;
    with_policy(&d).await;
    let rec = poll(Duration::from_secs(5), || async {
        d.audited("audit.purge").await.into_iter().next()
    })
    .await
    .expect("old audit records were not purged");
    assert!(rec.details.counts.get("records").copied().unwrap_or(0) >= 1);
    assert!(
        !d.audit()
            .await
            .iter()
            .any(|r| r.operation_name == "jit.write")
    );
    assert!(d.audit_verifies().await);
    d.stop().await;
}
