//! The audit log against hostile callers, through the real API of an in-process daemon:
//! a flood of denied attempts costs a bounded number of records whose counts add up, and
//! personal data in path segments or spool file names never reaches the log in clear —
//! it is a keyed HMAC there, which a data-subject search still finds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use steward_daemon::store::TenantRead;
use steward_testkit::tid;

use http::StatusCode;
use serde_json::json;
use steward::model::{AuditRecord, AuditStatus, SubjectKey, SubjectKind};
use steward_testkit::inproc::{T, TestDaemon, poll, stored};

/// A short coalescing window and a small per-uid budget, so the test sees windows close.
const LIMITS: &str = "[limits]\ndenial_window = \"2s\"\ndenials_per_uid = 8\n";

fn denied(records: &[AuditRecord]) -> Vec<&AuditRecord> {
    records
        .iter()
        .filter(|r| r.status == AuditStatus::Denied)
        .collect()
}

fn attempts(records: &[&AuditRecord]) -> u64 {
    records
        .iter()
        .map(|r| r.details.counts.get("attempts").copied().unwrap_or(1))
        .sum()
}

/// Waits (for the sweep that closes windows) until the denied records count `want`
/// attempts; returns the denied records.
async fn settled(d: &TestDaemon, want: u64) -> Vec<AuditRecord> {
    let settled = poll(Duration::from_secs(20), || async {
        let all = d.audit().await;
        let got = attempts(&denied(&all));
        (got == want).then_some(all)
    })
    .await;
    match settled {
        Some(all) => all,
        None => {
            let all = d.audit().await;
            panic!(
                "denied attempts never added up to {want}: {} in {} records",
                attempts(&denied(&all)),
                denied(&all).len()
            )
        }
    }
}

/// Records a window of `window_s` seconds may hold for one key: the first, the summary of
/// the window before, per window the flood spanned.
fn bound(elapsed: Duration, window_s: u64, keys: u64) -> usize {
    let windows = elapsed.as_secs() / window_s + 2;
    (2 * windows * keys) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_identical_denials_writes_a_bounded_number_of_records_with_the_right_count() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), LIMITS).await;
    let reader = d.client_as("reader");
    let n = 3000u64;
    let started = Instant::now();
    for _ in 0..n {
        let (s, _, _) = reader.get(&format!("/v1/tenants/{T}/export/alerts")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let elapsed = started.elapsed();
    let all = settled(&d, n).await;
    let records = denied(&all);
    assert!(
        records.len() <= bound(elapsed, 2, 1),
        "{} records for {n} denials in {elapsed:?}",
        records.len()
    );
    assert!(
        records
            .iter()
            .all(|r| r.operation_name == "alerts.export" && r.resource_id == "export/alerts")
    );
    let verify = d
        .client()
        .get(&format!("/v1/tenants/{T}/audit/verify"))
        .await
        .1;
    assert_eq!(verify["ok"], true, "{verify}");
    println!(
        "denial flood: {n} identical denials in {elapsed:?} -> {} audit records, attempts add up to {n}",
        records.len()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_denials_from_one_uid_are_bounded_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), LIMITS).await;
    let reader = d.client_as("reader");
    let n = 600u64;
    let started = Instant::now();
    for i in 0..n {
        let (s, _, _) = reader.get(&format!("/v1/tenants/{T}/dsr/probe-{i}")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let elapsed = started.elapsed();
    let all = settled(&d, n).await;
    let records = denied(&all);
    // Per window: at most 8 distinct keys (first records; no summaries, each seen once)
    // plus the overflow key's first record and summary.
    let windows = (elapsed.as_secs() / 2 + 2) as usize;
    assert!(
        records.len() <= windows * (8 + 2),
        "{} records for {n} distinct denials in {elapsed:?}",
        records.len()
    );
    assert!(
        records
            .iter()
            .any(|r| r.operation_name == "denied.coalesced" && r.details.counts["attempts"] > 1)
    );
    println!(
        "distinct denials: {n} in {elapsed:?} -> {} audit records, attempts add up to {n}",
        records.len()
    );
    d.stop().await;
}

/// The cases: a DSR id that is an email address, a JIT request id that is a phone
/// number, an alert action that is one, and a spool file named after a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_in_paths_and_spool_names_is_only_an_hmac_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[grant]]\nuser = \"{}\"\ntenant = \"contoso\"\nrole = \"ingest\"\n",
        steward_testkit::me()
    );
    let d = TestDaemon::start(dir.path(), &extra).await;
    let reader = d.client_as("reader");
    let email = "alice.pii@contoso.example";
    let (s, _, _) = reader.get(&format!("/v1/tenants/{T}/dsr/{email}")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = reader
        .post(
            &format!("/v1/tenants/{T}/jit-requests/+1-555-867-5309/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = d
        .client()
        .post(
            &format!("/v1/tenants/{T}/alerts/a1/+1-555-867-5309"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let spool = dir.path().join("data/spool").join(T);
    let alert = json!({"name": "sp-1", "properties": {"alertDisplayName": "x", "severity": "Low",
        "status": "Active", "timeGeneratedUtc": jiff::Timestamp::now().to_string()}});
    std::fs::write(spool.join("incoming.tmp"), json!([alert]).to_string()).unwrap();
    std::fs::rename(
        spool.join("incoming.tmp"),
        spool.join("jane.doe@contoso.example.json"),
    )
    .unwrap();
    let ingested = poll(Duration::from_secs(10), || async {
        d.audit()
            .await
            .into_iter()
            .find(|r| r.operation_name == "alerts.ingest")
    })
    .await
    .expect("the spool file was not ingested");
    assert!(
        ingested.resource_id.starts_with("spool/hmac:"),
        "{ingested:?}"
    );

    // Nothing of it in clear: the audit list, the JSON and CSV exports of the log.
    let admin = d.client();
    for path in [
        format!("/v1/tenants/{T}/audit?limit=1000"),
        format!("/v1/tenants/{T}/export/audit?format=json"),
        format!("/v1/tenants/{T}/export/audit?format=csv"),
    ] {
        let r = admin.0.get(&path).await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        for needle in [
            "alice.pii@",
            "contoso.example",
            "555-867-5309",
            "5558675309",
            "jane.doe",
        ] {
            assert!(!text.contains(needle), "{path} holds {needle:?}: {text}");
        }
    }

    // The hashes still correlate: the denied read names alice by the same HMAC that her
    // data-subject request names her by, and the subject index of the log finds it.
    let records = d.audit().await;
    let dsr_denied = records
        .iter()
        .find(|r| r.operation_name == "dsr.manage" && r.status == AuditStatus::Denied)
        .unwrap();
    let hashed = dsr_denied
        .resource_id
        .strip_prefix("dsr/hmac:")
        .unwrap_or_else(|| panic!("{}", dsr_denied.resource_id));
    assert!(dsr_denied.subjects.iter().any(|s| s == hashed));
    let (s, v, _) = admin
        .post(
            &format!("/v1/tenants/{T}/dsr"),
            &json!({"type": "export", "subject": {"email": email}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let open = d
        .audit()
        .await
        .into_iter()
        .find(|r| r.operation_name == "dsr.open")
        .unwrap();
    assert!(open.subjects.iter().any(|s| s == hashed), "{open:?}");
    // The subject index is the store's (the daemon's DSR steps use it): read it from the
    // redb file once the daemon has stopped.
    let dir = d.dir.clone();
    d.stop().await;
    let store = stored(&dir);
    let key = SubjectKey::new(SubjectKind::Email, email, "email").unwrap();
    let found = store.tenant(&tid(T)).audit_for_subject(&key).unwrap();
    assert!(found.iter().any(|r| r.seq == dsr_denied.seq));
    // The phone number in the JIT path: hashed as a phone, found by its digits.
    let phone = SubjectKey::new(SubjectKind::Phone, "+1 (555) 867-5309", "phone").unwrap();
    let found = store.tenant(&tid(T)).audit_for_subject(&phone).unwrap();
    assert!(
        found.iter().any(|r| r.operation_name == "jit.request"),
        "{found:?}"
    );
    assert!(found.iter().any(|r| r.operation_name == "alerts.action"));
}
