//! Data-subject requests and the subject search against an in-process daemon: an export
//! bundle holds exactly the records naming the subject and nothing of another tenant; an
//! erase removes the address from a contact with two and deletes a contact with one, keeps
//! alerts and JIT requests and says why and until when, after which the search finds only
//! retained records; `require_second_person`; reject and extend; overdue deadlines; and
//! the audit log never holds the subject's address.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use steward_testkit::{rn, tid};

use http::StatusCode;
use serde_json::{Value, json};
use steward::model::{AuditStatus, DataSubjectRequest, DsrInput};
use steward_daemon::dsr::DsrDoc;
use steward_daemon::store::{Kind, TenantWrite, WriteError};
use steward_testkit::inproc::{T, TestDaemon, in_secs, initiate, me, policy, poll};

const CAROL: &str = "carol@contoso.com";

fn base() -> String {
    format!("/v1/tenants/{T}")
}

/// Config extra: the ingest profile in contoso, and a second tenant `fabrikam`.
fn extra(more: &str) -> String {
    format!(
        r#"
[[grant]]
user = "{me}"
tenant = "contoso"
role = "ingest"

[[tenant]]
id = "fabrikam"
name = "Fabrikam"

[[grant]]
user = "{me}"
tenant = "fabrikam"
role = "tenant-admin"

{more}
"#,
        me = me()
    )
}

fn alert(name: &str, upn: Option<&str>) -> Value {
    let entities = match upn {
        Some(u) => {
            json!([{"type": "account", "name": "carol", "upn": u}, {"type": "ip", "address": "203.0.113.50"}])
        }
        None => json!([{"type": "host", "hostName": "vm9"}]),
    };
    json!({"name": name, "properties": {
        "alertDisplayName": "Login from new IP", "severity": "Medium",
        "timeGeneratedUtc": jiff::Timestamp::now().to_string(), "entities": entities}})
}

/// Contoso: `default` (carol and dave, phone), `solo` (carol), `other` (dave), alerts
/// `a-carol` (naming carol) and `a-none`; fabrikam: a contact naming carol.
async fn seed(d: &TestDaemon) {
    let c = d.client();
    for (name, emails) in [
        ("default", format!("{CAROL};dave@contoso.com")),
        ("solo", CAROL.to_owned()),
        ("other", "dave@contoso.com".to_owned()),
    ] {
        let mut props = json!({"emails": emails});
        if name == "default" {
            props["phone"] = json!("(214)275-4038");
        }
        let (s, v, _) = c
            .put(
                &format!("{}/contacts/{name}", base()),
                &json!({"properties": props}),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v, _) = c
        .post(
            &format!("{}/alerts", base()),
            &json!([alert("a-carol", Some(CAROL)), alert("a-none", None)]),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v, _) = c
        .put(
            "/v1/tenants/fabrikam/contacts/default",
            &json!({"properties": {"emails": CAROL}}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn open(d: &TestDaemon, body: &Value) -> String {
    let (s, v, _) = d.client().post(&format!("{}/dsr", base()), body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "pending_confirmation");
    assert!(v["dueAt"].is_string() && v["receivedAt"].is_string(), "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn completed(d: &TestDaemon, id: &str) -> Value {
    let p = format!("{}/dsr/{id}", base());
    poll(Duration::from_secs(10), || async {
        let (_, v, _) = d.client().get(&p).await;
        (v["status"] == "completed").then_some(v)
    })
    .await
    .unwrap_or_else(|| panic!("request {id} did not complete"))
}

async fn assert_no_address_in_audit(d: &TestDaemon, tenant: &str, needle: &str) {
    let records = d.audit_of(tenant).await;
    for r in &records {
        let text = format!("{r:?}");
        assert!(
            !text.contains(needle),
            "audit record holds {needle}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_search_answers_from_the_index_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), &extra("")).await;
    seed(&d).await;
    let c = d.client();
    let (s, v, _) = c
        .get(&format!("{}/subjects?email=Carol@Contoso.COM", base()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut hits: Vec<(String, String, String)> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["matched"], "email");
            (
                h["kind"].as_str().unwrap().to_owned(),
                h["id"].as_str().unwrap().to_owned(),
                h["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    hits.sort();
    assert_eq!(
        hits,
        [
            (
                "alerts".into(),
                "a-carol".into(),
                "properties.entities[0].upn".into()
            ),
            (
                "contacts".into(),
                "default".into(),
                "properties.emails".into()
            ),
            ("contacts".into(), "solo".into(), "properties.emails".into()),
        ],
        "{v}"
    );
    let (_, v, _) = c
        .get(&format!("{}/subjects?phone=%2B1%20214-275-4038", base()))
        .await;
    assert_eq!(
        v["value"].as_array().unwrap().len(),
        0,
        "digits differ: {v}"
    );
    let (_, v, _) = c
        .get(&format!("{}/subjects?phone=214.275.4038", base()))
        .await;
    assert_eq!(v["value"][0]["id"], "default", "{v}");
    let (_, v, _) = c.get(&format!("{}/subjects?ip=203.0.113.50", base())).await;
    assert_eq!(v["value"][0]["id"], "a-carol", "{v}");
    let (s, v, _) = c
        .get(&format!("{}/subjects?email=not-an-address", base()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["target"], "email");
    let (s, _, _) = c.get(&format!("{}/subjects", base())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        d.audit()
            .await
            .iter()
            .any(|r| r.operation_name == "subjects.search"
                && r.subjects.len() == 1
                && r.details.counts["hits"] == 3)
    );
    assert_no_address_in_audit(&d, T, CAROL).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_bundle_holds_exactly_the_records_naming_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), &extra("")).await;
    seed(&d).await;
    let c = d.client();
    let id = open(
        &d,
        &json!({"type": "export", "subject": {"email": "CAROL@contoso.com"}}),
    )
    .await;
    let bundle_path = format!("{}/dsr/{id}/bundle", base());
    let (s, _, _) = c.get(&bundle_path).await;
    assert_eq!(s, StatusCode::CONFLICT, "no bundle before confirmation");
    let (s, v, _) = c
        .post(&format!("{}/dsr/{id}/confirm", base()), &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let req = completed(&d, &id).await;
    assert_eq!(req["execution"]["bundleRecords"], 3, "{req}");
    let (s, b, _) = c.get(&bundle_path).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mut got: Vec<(String, String)> = b["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("alert".into(), "a-carol".into()),
            ("contact".into(), "default".into()),
            ("contact".into(), "solo".into()),
        ]
    );
    assert_eq!(b["tenant"], T);
    let text = b.to_string();
    assert!(!text.contains("fabrikam"), "another tenant's data: {text}");
    assert!(!text.contains("a-none"));
    // The audit part: records that concern the subject (its contact writes, the request).
    let ops: Vec<&str> = b["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operationName"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"contacts.write") && ops.contains(&"dsr.open"),
        "{ops:?}"
    );
    let file = dir.path().join(format!("data/dsr/{T}/{id}.json"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let ops: Vec<String> = d
        .audit()
        .await
        .into_iter()
        .map(|r| r.operation_name)
        .collect();
    for want in [
        "dsr.open",
        "dsr.confirm",
        "dsr.execute",
        "dsr.complete",
        "dsr.bundle",
    ] {
        assert!(ops.iter().any(|o| o == want), "{want} not audited: {ops:?}");
    }
    assert_no_address_in_audit(&d, T, CAROL).await;
    d.stop().await;
}

/// A bundle is a copy of a person's data: when retention removes its request, the sweep
/// removes the bundle file too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_leaves_with_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(
        dir.path(),
        &extra("[retention]\ndsr = \"3s\"\nsweep_interval = \"500ms\"\n"),
    )
    .await;
    seed(&d).await;
    let id = open(&d, &json!({"type": "export", "subject": {"email": CAROL}})).await;
    let (s, v, _) = d
        .client()
        .post(&format!("{}/dsr/{id}/confirm", base()), &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    completed(&d, &id).await;
    let file = d.dir.join(format!("data/dsr/{T}/{id}.json"));
    assert!(file.exists(), "no bundle at {}", file.display());
    let gone = poll(Duration::from_secs(20), || async {
        let (s, _, _) = d.client().get(&format!("{}/dsr/{id}", base())).await;
        (s == StatusCode::NOT_FOUND && !file.exists()).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "request purged: {}, bundle still there: {}",
        d.client().get(&format!("{}/dsr/{id}", base())).await.0 == StatusCode::NOT_FOUND,
        file.exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_what_it_may_and_reports_what_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), &extra("")).await;
    seed(&d).await;
    let c = d.client();
    // A JIT request by the current OS user, who is the subject's `user` here.
    let (s, v, _) = c
        .put(&format!("{}/jit-policies/p", base()), &policy("PT1H"), None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v, _) = c
        .post(
            &format!("{}/jit-policies/p/initiate", base()),
            &initiate(22, in_secs(600.0), "198.51.100.9"),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let jit_id = v["id"].as_str().unwrap().to_owned();

    let id = open(
        &d,
        &json!({"type": "erase", "subject": {"email": CAROL, "user": me()}}),
    )
    .await;
    let (s, _, _) = c.get(&format!("{}/dsr/{id}/bundle", base())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an erase has no bundle");
    let (s, v, _) = c
        .post(&format!("{}/dsr/{id}/confirm", base()), &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let req = completed(&d, &id).await;

    let (_, v, _) = c.get(&format!("{}/contacts/default", base())).await;
    assert_eq!(v["properties"]["emails"], "dave@contoso.com", "{v}");
    assert_eq!(
        v["properties"]["phone"], "(214)275-4038",
        "the phone was not asked for"
    );
    let (s, _, _) = c.get(&format!("{}/contacts/solo", base())).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a contact left with no address is deleted"
    );
    let (s, _, _) = c.get(&format!("{}/contacts/other", base())).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = c.get("/v1/tenants/fabrikam/contacts/default").await;
    assert_eq!(s, StatusCode::OK, "another tenant is not touched");
    let (s, _, _) = c.get(&format!("{}/alerts/a-carol", base())).await;
    assert_eq!(s, StatusCode::OK, "alerts are retained");

    let report = req["report"].as_array().unwrap();
    let line = |kind: &str, rid: &str| -> Value {
        report
            .iter()
            .find(|e| e["kind"] == kind && e["id"] == rid)
            .cloned()
            .unwrap_or_else(|| panic!("no report line for {kind} {rid}: {req}"))
    };
    assert_eq!(line("contact", "default")["outcome"], "erased");
    assert_eq!(line("contact", "solo")["outcome"], "erased");
    let a = line("alert", "a-carol");
    assert_eq!(a["outcome"], "retained");
    assert!(a["reason"].as_str().unwrap().contains("17(3)"), "{a}");
    let leaves: jiff::Timestamp = a["leavesAt"].as_str().unwrap().parse().unwrap();
    let days = (leaves - jiff::Timestamp::now()).get_seconds() / 86_400;
    assert!((729..=730).contains(&days), "alert leaves in {days} days");
    let j = line("jit-request", &jit_id);
    assert_eq!(j["outcome"], "retained");
    assert!(j["leavesAt"].is_string(), "{j}");
    let au = report.iter().find(|e| e["kind"] == "audit").unwrap();
    assert_eq!(au["outcome"], "retained");
    assert!(au["reason"].as_str().unwrap().contains("HMAC"), "{au}");
    assert_eq!(report.len(), 5, "{req}");

    // Afterwards the search finds only retained records.
    let (_, v, _) = c.get(&format!("{}/subjects?email={CAROL}", base())).await;
    let kinds: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["alerts"], "{v}");

    // Every step audited, never with the address.
    let recs = d.audit().await;
    let erases: Vec<&str> = recs
        .iter()
        .filter(|r| r.operation_name == "dsr.erase")
        .map(|r| r.resource_id.as_str())
        .collect();
    assert_eq!(erases, ["contacts/default", "contacts/solo"]);
    assert!(
        recs.iter()
            .all(|r| !r.subjects.is_empty() || !r.operation_name.starts_with("dsr."))
    );
    assert_no_address_in_audit(&d, T, CAROL).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_require_second_person_the_requester_cannot_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), &extra("[dsr]\nrequire_second_person = true\n")).await;
    let c = d.client();
    let id = open(&d, &json!({"type": "erase", "subject": {"email": CAROL}})).await;
    let (s, v, _) = c
        .post(&format!("{}/dsr/{id}/confirm", base()), &json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, v, _) = c.get(&format!("{}/dsr/{id}", base())).await;
    assert_eq!(v["status"], "pending_confirmation");
    assert!(v.get("confirmedBy").is_none());
    assert!(
        d.audit()
            .await
            .iter()
            .any(|r| r.operation_name == "dsr.confirm" && r.status == AuditStatus::Failed)
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_with_a_reason_and_extend_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), &extra("")).await;
    let c = d.client();
    let id = open(&d, &json!({"type": "export", "subject": {"email": CAROL}})).await;
    let p = format!("{}/dsr/{id}", base());
    let (s, _, _) = c.post(&format!("{p}/extend"), &json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a reason is required");
    let (s, v, _) = c
        .post(
            &format!("{p}/extend"),
            &json!({"reason": "identity check pending"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let due: jiff::Timestamp = v["dueAt"].as_str().unwrap().parse().unwrap();
    let ext: jiff::Timestamp = v["extendedDueAt"].as_str().unwrap().parse().unwrap();
    let days = (ext - due).get_seconds() / 86_400;
    assert!((59..=62).contains(&days), "extended by {days} days");
    let (s, _, _) = c
        .post(&format!("{p}/extend"), &json!({"reason": "again"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "extended only once");
    let (s, v, _) = c
        .post(
            &format!("{p}/reject"),
            &json!({"reason": "requester is not carol@contoso.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "rejected");
    let (s, _, _) = c.post(&format!("{p}/confirm"), &json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The reason is kept in the request, never in the audit log.
    assert_no_address_in_audit(&d, T, CAROL).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_raises_an_overdue_event() {
    let dir = tempfile::tempdir().unwrap();
    // A request received two months ago whose deadline falls in 3 s, stored the way the
    // route stores one, into the redb file of a daemon not yet serving (the API cannot
    // backdate a request).
    drop(steward_testkit::inproc::open(dir.path(), &extra("")));
    let input = DsrInput::parse(&json!({"type": "export", "subject": {"email": CAROL}})).unwrap();
    let received = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 62);
    let mut req = DataSubjectRequest::new("late-1", input, me(), received);
    req.due_at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let doc = DsrDoc::new(req);
    let retention = Duration::from_secs(3 * 365 * 86_400);
    steward_testkit::inproc::stored(dir.path())
        .writer()
        .write(&tid(T), move |txn: &mut dyn TenantWrite| {
            txn.put(Kind::Dsr, &rn("late-1"), doc.input(retention)?, None)?;
            txn.audit(doc.entry(steward_daemon::store::AuditEntry::named(
                steward_daemon::store::system_caller(),
                "dsr.open",
                AuditStatus::Succeeded,
            )));
            Ok::<_, WriteError>(())
        })
        .await
        .unwrap();
    // Served, and followed on the event stream before the deadline passes.
    let d = TestDaemon::start(dir.path(), &extra("")).await;
    let mut events = d
        .client()
        .0
        .get_lines(&format!("/v1/events?tenant={T}"))
        .await
        .unwrap();
    let overdue = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = events.next_line().await.unwrap() {
            let e: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
            if e["kind"] == "dsr" && e["action"] == "overdue" && e["name"] == "late-1" {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(overdue, Ok(true)), "no overdue event");
    let (_, v, _) = d.client().get(&format!("{}/dsr/late-1", base())).await;
    assert_eq!(v["overdue"], true, "{v}");
    let n = d
        .audit()
        .await
        .iter()
        .filter(|r| r.operation_name == "dsr.overdue")
        .count();
    assert_eq!(n, 1);
    // Raised once: the entry is gone until the deadline changes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        d.audit()
            .await
            .iter()
            .filter(|r| r.operation_name == "dsr.overdue")
            .count(),
        1
    );
    d.stop().await;
}
