#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The socket API end to end against a real daemon on a temp socket: identity and
//! tenants, contacts, alerts, audit, exports, events, the Azure paths and the limits.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use steward::client::{Body, Method};
use steward_testkit::api::{ingest_body, next_event, strings};
use steward_testkit::inproc::{T, TestDaemon, me, stored_audit};

/// Three tenants: contoso (tenant-admin + ingest), fabrikam (reader), northwind (none).
fn tenants() -> String {
    format!(
        r#"
[[tenant]]
id = "fabrikam"
name = "Fabrikam Inc"

[[tenant]]
id = "northwind"
name = "Northwind Traders"

[[grant]]
user = "{me}"
tenant = "contoso"
role = "ingest"

[[grant]]
user = "{me}"
tenant = "fabrikam"
role = "reader"
"#,
        me = me()
    )
}

/// A daemon on a temp dir with the three [`tenants`].
async fn start() -> (tempfile::TempDir, TestDaemon) {
    TestDaemon::in_temp(&tenants()).await
}

fn contact() -> Value {
    json!({"properties": {
        "emails": "alice@contoso.com;bob@contoso.com",
        "phone": "(214)275-4038",
        "isEnabled": true,
        "notificationsByRole": {"state": "On", "roles": ["Owner"]},
        "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Medium"}]
    }})
}

fn alert(name: &str, severity: &str, at: &str) -> Value {
    json!({"name": name, "properties": {
        "alertDisplayName": format!("Suspicious {name}"),
        "alertType": "VM_Test",
        "severity": severity,
        "status": "Active",
        "timeGeneratedUtc": at,
        "compromisedEntity": "vm1",
        "entities": [{"type": "ip", "address": "203.0.113.7"}, {"type": "account", "name": "mallory"}],
        "someVendorField": {"kept": [1, 2, 3]}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_and_tenants_show_only_granted_tenants() {
    let (_dir, d) = start().await;
    let api = d.client();
    let (s, who, _) = api.get("/v1/whoami").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(who["user"], me());
    assert_eq!(who["uid"], nix::unistd::getuid().as_raw());
    let (_, t, _) = api.get("/v1/tenants").await;
    let ids = strings(&t["value"], "id");
    assert_eq!(ids, ["contoso", "fabrikam"]);
    let contoso = &t["value"][0];
    assert!(
        contoso["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("dsr.manage"))
    );
    assert!(
        contoso["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("alerts.ingest"))
    );
    assert_eq!(t["value"][1]["profiles"], json!(["reader"]));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ungranted_tenant_is_indistinguishable_from_a_missing_one() {
    let (_dir, d) = start().await;
    let api = d.client();
    let (s1, b1, _) = api.get("/v1/tenants/northwind/contacts").await;
    let (s2, b2, _) = api.get("/v1/tenants/no-such/contacts").await;
    assert_eq!(s1, StatusCode::NOT_FOUND);
    assert_eq!((s1, &b1), (s2, &b2));
    for bad in [
        "/v1/tenants/..%2Fcontoso/contacts",
        "/v1/tenants/Contoso/contacts",
        "/v1/tenants/a%00b/contacts",
    ] {
        let (s, b, _) = api.get(bad).await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND,
            "{bad}: {s} {b}"
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_round_trip_with_etags_and_field_errors() {
    let (_dir, d) = start().await;
    let api = d.client();
    let path = format!("/v1/tenants/{T}/contacts/default");
    let (s, created, etag) = api.put(&path, &contact(), None).await;
    assert_eq!(s, StatusCode::CREATED);
    let etag = etag.unwrap();
    assert_eq!(created["etag"], etag.trim_matches('"'));
    assert_eq!(
        created["properties"]["emails"],
        "alice@contoso.com;bob@contoso.com"
    );
    assert_eq!(
        created["id"],
        "/subscriptions/contoso/providers/Microsoft.Security/securityContacts/default"
    );

    // A stale If-Match is refused and changes nothing; the current one works.
    let (s, _, _) = api.put(&path, &contact(), Some("\"stale\"")).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (s, _, new_etag) = api.put(&path, &contact(), Some(&etag)).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(new_etag.unwrap(), etag);

    // Every bad field is named.
    let bad =
        json!({"properties": {"emails": "alice@contoso.com;not-an-address", "phone": "12ab"}});
    let (s, e, _) = api.put(&path, &bad, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let targets = strings(&e["error"]["details"], "target");
    assert!(
        targets.contains(&"properties.emails") && targets.contains(&"properties.phone"),
        "{e}"
    );

    // The 2020-01-01-preview shape is accepted.
    let old = json!({"properties": {"emails": "a@contoso.com", "alertNotifications": {"state": "On", "minimalSeverity": "High"}}});
    let (s, v, _) = api
        .put(&format!("/v1/tenants/{T}/contacts/legacy"), &old, None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["properties"]["notificationsSources"][0]["minimalSeverity"],
        "High"
    );

    let (_, list, _) = api.get(&format!("/v1/tenants/{T}/contacts")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 2);

    let (s, _, _) = api.delete(&path, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = api.get(&path).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_names_the_permission_and_is_audited_as_denied() {
    let (_dir, d) = start().await;
    let (s, e, _) = d
        .client()
        .put("/v1/tenants/fabrikam/contacts/default", &contact(), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contacts.write")
    );
    // Acting under a lower profile drops permissions; acting above what is held is refused.
    let (s, _, _) = d
        .client_as("reader")
        .put(
            &format!("/v1/tenants/{T}/contacts/default"),
            &contact(),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = d
        .client_as("reader")
        .get(&format!("/v1/tenants/{T}/contacts"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = d
        .client_as("tenant-admin")
        .get("/v1/tenants/fabrikam/contacts")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The test's user may not read fabrikam's log: read the store once stopped.
    let dir = d.dir.clone();
    d.stop().await;
    let denied: Vec<_> = stored_audit(&dir, "fabrikam")
        .into_iter()
        .filter(|r| r.status == steward::model::AuditStatus::Denied)
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].operation_name, "contacts.write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_ingest_is_idempotent_filtered_paged_and_read_only() {
    let (_dir, d) = start().await;
    let api = d.client();
    let base = format!("/v1/tenants/{T}/alerts");
    let batch: Vec<Value> = (0..25)
        .map(|i| {
            let sev = if i % 5 == 0 { "High" } else { "Low" };
            alert(
                &format!("a-{i:02}"),
                sev,
                &format!("2026-01-01T00:00:{i:02}Z"),
            )
        })
        .collect();
    let (s, r, _) = api.post(&base, &Value::Array(batch.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r, json!({"ingested": 25, "duplicates": 0}));
    let (s, r, _) = api.post(&base, &batch[0]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r, json!({"ingested": 0, "duplicates": 1}));

    // An invalid item anywhere stores nothing and names its index.
    let mixed = json!([alert("new-1", "Low", "2026-01-02T00:00:00Z"), {"properties": {}}]);
    let (s, e, _) = api.post(&base, &mixed).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e.to_string().contains("[1]"), "{e}");
    assert_eq!(
        api.get(&format!("{base}/new-1")).await.0,
        StatusCode::NOT_FOUND
    );

    // Kept whole, unknown fields included.
    let (_, one, _) = api.get(&format!("{base}/a-03")).await;
    assert_eq!(
        one["properties"]["someVendorField"],
        json!({"kept": [1, 2, 3]})
    );

    // Newest first; filters; paging that resumes where it stopped.
    let (_, all, _) = api.get(&format!("{base}?limit=10")).await;
    let names = strings(&all["value"], "name");
    assert_eq!(names[0], "a-24");
    let mut seen = names.len();
    let mut next = all["nextLink"].as_str().map(str::to_owned);
    while let Some(link) = next {
        let (_, page, _) = api.get(&link).await;
        seen += page["value"].as_array().unwrap().len();
        next = page["nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 25);
    let (_, high, _) = api.get(&format!("{base}?severity=high")).await;
    assert_eq!(high["value"].as_array().unwrap().len(), 5);
    let (_, q, _) = api.get(&format!("{base}?q=suspicious%20a-07")).await;
    assert_eq!(q["value"].as_array().unwrap().len(), 1);
    let (_, window, _) = api
        .get(&format!(
            "{base}?since=2026-01-01T00:00:10Z&until=2026-01-01T00:00:12Z"
        ))
        .await;
    assert_eq!(window["value"].as_array().unwrap().len(), 3);

    // A cursor never crosses into another tenant.
    let cursor = all["nextLink"]
        .as_str()
        .unwrap()
        .split("cursor=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (s, _, _) = api
        .get(&format!("/v1/tenants/fabrikam/alerts?cursor={cursor}"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Read-only: every update, delete or state action is 405 and audited as denied.
    assert_eq!(
        api.put(&format!("{base}/a-01"), &batch[1], None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        api.delete(&format!("{base}/a-01"), None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        api.post(&format!("{base}/a-01/dismiss"), &json!({}))
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let dismiss = "/subscriptions/contoso/providers/Microsoft.Security/locations/centralus/alerts/a-01/dismiss";
    assert_eq!(
        api.post(dismiss, &json!({})).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(api.get(&format!("{base}/a-01")).await.0, StatusCode::OK);
    // Every attempt is counted once the daemon has written its coalesced repeats.
    let dir = d.dir.clone();
    d.stop().await;
    let denied: u64 = stored_audit(&dir, T)
        .into_iter()
        .filter(|r| r.status == steward::model::AuditStatus::Denied)
        .map(|r| r.details.counts.get("attempts").copied().unwrap_or(1))
        .sum();
    assert_eq!(denied, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_ingest_names_the_bad_line() {
    let (_dir, d) = start().await;
    let body = format!(
        "{}\nnot json\n",
        alert("n-1", "Low", "2026-01-01T00:00:00Z")
    );
    let r = ingest_body(&d.client().0, T, Body::ndjson_bytes(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&r.body).contains("line 2"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_names_fields_not_values_and_verifies() {
    let (_dir, d) = start().await;
    let api = d.client();
    api.put(
        &format!("/v1/tenants/{T}/contacts/default"),
        &contact(),
        None,
    )
    .await;
    let (_, log, _) = api
        .get(&format!("/v1/tenants/{T}/audit?action=contacts.write"))
        .await;
    let rec = &log["value"][0];
    assert_eq!(rec["operationName"], "contacts.write");
    assert_eq!(rec["caller"]["user"], me());
    assert!(
        rec["fields"]
            .as_array()
            .unwrap()
            .contains(&json!("properties.emails"))
    );
    assert_eq!(rec["subjectCount"], 3, "two emails and a phone");
    assert!(rec.get("subjects").is_none(), "HMACs only when asked for");
    let (_, full, _) = api
        .get(&format!(
            "/v1/tenants/{T}/audit?action=contacts.write&subjects=true"
        ))
        .await;
    let hmacs = full["value"][0]["subjects"].as_array().unwrap();
    assert_eq!(hmacs.len(), 3, "two emails and a phone, as HMACs");
    assert!(hmacs.iter().all(|h| h.as_str().unwrap().len() == 64));
    let text = format!("{log}{full}");
    assert!(
        !text.contains("alice@contoso.com") && !text.contains("2142754038"),
        "{text}"
    );
    let (_, v, _) = api.get(&format!("/v1/tenants/{T}/audit/verify")).await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["head"]["seq"], v["records"]);
    assert!(v.get("firstBadSeq").is_none());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_every_record_in_each_format_under_their_permission() {
    let (_dir, d) = start().await;
    let api = d.client();
    let batch: Vec<Value> = (0..1200)
        .map(|i| alert(&format!("x-{i:04}"), "Medium", "2026-02-01T00:00:00Z"))
        .collect();
    assert_eq!(
        api.post(&format!("/v1/tenants/{T}/alerts"), &Value::Array(batch))
            .await
            .0,
        StatusCode::CREATED
    );
    let export = |f: &str| format!("/v1/tenants/{T}/export/alerts?format={f}");
    let r = api.0.get(&export("json")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let arr: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(arr.len(), 1200);
    let r = api.0.get(&export("ndjson")).await.unwrap();
    assert_eq!(
        r.body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        1200
    );
    let r = api.0.get(&export("csv")).await.unwrap();
    let mut rd = csv::Reader::from_reader(&r.body[..]);
    assert_eq!(rd.headers().unwrap().get(0), Some("name"));
    assert_eq!(rd.records().count(), 1200);
    // The export is audited with its count.
    let rec = d.audited("alerts.export.end").await.pop().unwrap();
    assert_eq!(rec.details.counts.get("records"), Some(&1200));
    // ... in a second record: the first committed before any byte was sent.
    assert!(
        d.audit()
            .await
            .iter()
            .any(|r| r.operation_name == "alerts.export" && r.correlation_id == rec.correlation_id)
    );
    // Owners may not export alerts; readers may export contacts.
    let (s, e, _) = d.client_as("owner").get(&export("json")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(e.to_string().contains("alerts.export"));
    assert_eq!(
        d.client_as("reader")
            .get(&format!("/v1/tenants/{T}/export/contacts"))
            .await
            .0,
        StatusCode::OK
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_only_what_the_caller_may_see() {
    let (_dir, d) = start().await;
    let mut all = d.client().0.get_lines("/v1/events").await.unwrap();
    let mut fab = d
        .client()
        .0
        .get_lines("/v1/events?tenant=fabrikam")
        .await
        .unwrap();
    let (s, _, _) = d.client().get("/v1/events?tenant=northwind").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    d.client()
        .put(
            &format!("/v1/tenants/{T}/contacts/default"),
            &contact(),
            None,
        )
        .await;
    let ev = next_event(&mut all, Duration::from_secs(5)).await;
    assert_eq!(
        (
            ev["tenant"].as_str(),
            ev["kind"].as_str(),
            ev["action"].as_str()
        ),
        (Some("contoso"), Some("contacts"), Some("created"))
    );
    // Nothing of contoso reaches a fabrikam-only stream.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), fab.next_line())
            .await
            .is_err()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_and_typed() {
    let (_dir, d) = TestDaemon::in_temp("[limits]\nmax_body = \"1KiB\"").await;
    let api = d.client();
    let path = format!("/v1/tenants/{T}/contacts/default");
    let big = json!({"properties": {"emails": "a@contoso.com", "phone": "1".repeat(2000)}});
    assert_eq!(
        api.put(&path, &big, None).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let r = api
        .0
        .request(Method::PUT, &path, Some(Body::ndjson_bytes("{}")), &[])
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, e, _) = api.put(&path, &json!([1, 2]), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e, _) = api.put(&path, &json!({"properties": "x"}), None).await;
    assert_eq!(
        (s, e["error"]["target"].as_str()),
        (StatusCode::BAD_REQUEST, Some("properties"))
    );
    let (s, e, _) = api.get("/v1/nope").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
    let (s, _, _) = api.get(&format!("/v1/tenants/{T}/contacts?limit=0")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    d.stop().await;
}

/// A refused If-Match is audited as failed the same way for every kind: a contact's
/// delete too (it used to leave no trace, while JIT's was recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_is_audited_as_failed_for_contacts_and_policies() {
    let (_dir, d) = start().await;
    let api = d.client();
    let contact_path = format!("/v1/tenants/{T}/contacts/default");
    let (s, _, etag) = api.put(&contact_path, &contact(), None).await;
    assert_eq!(s, StatusCode::CREATED);
    let policy_path = format!("/v1/tenants/{T}/jit-policies/p1");
    let (s, _, _) = api
        .put(&policy_path, &steward_testkit::inproc::policy("PT3H"), None)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for (path, body) in [
        (&contact_path, contact()),
        (&policy_path, steward_testkit::inproc::policy("PT2H")),
    ] {
        let (s, v, _) = api.delete(path, Some("\"stale\"")).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{path}: {v}");
        let (s, v, _) = api.put(path, &body, Some("\"stale\"")).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{path}: {v}");
    }
    let (s, _, now) = api.get(&contact_path).await;
    assert_eq!((s, now), (StatusCode::OK, etag), "the contact is unchanged");
    let failed: Vec<(String, String)> = d
        .audit()
        .await
        .into_iter()
        .filter(|r| r.status == steward::model::AuditStatus::Failed)
        .map(|r| (r.operation_name, r.details.reason.unwrap_or_default()))
        .collect();
    let want = |op: &str| (op.to_owned(), "If-Match did not match".to_owned());
    assert_eq!(
        failed,
        [
            want("contacts.delete"),
            want("contacts.write"),
            want("jit.delete"),
            want("jit.write")
        ]
    );
    d.stop().await;
}
