//! The Microsoft.Security mount (the ARM paths) against the `/v1` one: one operation
//! mounted twice (same permission, audit, etags and `If-Match`), `api-version` per
//! operation group, contact shapes by version, JIT placement from the path,
//! `If-None-Match: *` creates, and the 404 of an unserved ARM path.

use http::{HeaderName, StatusCode};
use serde_json::{Value, json};
use steward::client::{Body, Method};
use steward::model::AuditStatus;
use steward_testkit::inproc::{Api, T, TestDaemon, VM, policy};

const SUB: &str = "/subscriptions/contoso/providers/Microsoft.Security";
const C20: &str = "api-version=2020-01-01-preview";
const C23: &str = "api-version=2023-12-01-preview";
const JIT: &str = "api-version=2020-01-01";

fn v1() -> String {
    format!("/v1/tenants/{T}")
}

/// The ARM path of policy `name` at `rg` and `loc`.
fn arm_policy(rg: &str, loc: &str, name: &str) -> String {
    format!(
        "/subscriptions/contoso/resourceGroups/{rg}/providers/Microsoft.Security/locations/{loc}/jitNetworkAccessPolicies/{name}?{JIT}"
    )
}

/// A request with extra headers: (status, body, etag).
async fn send(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&'static str, &str)],
) -> (StatusCode, Value) {
    let headers: Vec<(HeaderName, String)> = headers
        .iter()
        .map(|(k, v)| (HeaderName::from_static(k), (*v).to_owned()))
        .collect();
    let body = body.map(|b| Body::json(b).unwrap());
    let r = api.0.request(method, path, body, &headers).await.unwrap();
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    };
    (r.status, v)
}

fn contact_2020() -> Value {
    json!({"properties": {
        "emails": "alice@contoso.com",
        "phone": "(214)275-4038",
        "alertNotifications": {"state": "On", "minimalSeverity": "Low"},
        "notificationsByRole": {"state": "On", "roles": ["Owner"]}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operation_on_both_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    let c = d.client();
    let arm = format!("{SUB}/securityContacts/default?{C20}");
    let (s, v, etag) = c.put(&arm, &contact_2020(), None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["properties"],
        contact_2020()["properties"],
        "2020 in, 2020 out"
    );
    let etag = etag.unwrap();
    // The same record through /v1: the same etag, in the 2023 shape.
    let (s, v, etag_v1) = c.get(&format!("{}/contacts/default", v1())).await;
    assert_eq!(
        (s, etag_v1.as_deref()),
        (StatusCode::OK, Some(etag.as_str()))
    );
    assert_eq!(
        v["properties"]["notificationsSources"],
        json!([{"sourceType": "Alert", "minimalSeverity": "Low"}])
    );
    assert_eq!(v["properties"].get("alertNotifications"), None);
    assert_eq!(v["etag"], json!(etag));
    // An ARM read in the 2023 shape equals the /v1 read.
    let (_, v23, _) = c
        .get(&format!("{SUB}/securityContacts/default?{C23}"))
        .await;
    assert_eq!(v23, v);
    // If-Match on the ARM path takes the etag /v1 gave, and refuses a stale one.
    let (s, _, newer) = c.put(&arm, &contact_2020(), Some(&etag)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e, _) = c.put(&arm, &contact_2020(), Some(&etag)).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{e}");
    let (s, _, _) = c
        .delete(&format!("{}/contacts/default", v1()), Some(&etag))
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    // The same permission: a reader may read on both mounts and write on neither.
    let reader = d.client_as("reader");
    assert_eq!(reader.get(&arm).await.0, StatusCode::OK);
    let (s, e, _) = reader.put(&arm, &contact_2020(), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(e.to_string().contains("contacts.write"), "{e}");
    assert_eq!(reader.delete(&arm, None).await.0, StatusCode::FORBIDDEN);
    // Delete on the ARM path: 200, then the spec's 204 for what is not there (/v1: 404).
    let (s, _, _) = c.delete(&arm, newer.as_deref()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c.delete(&arm, None).await.0, StatusCode::NO_CONTENT);
    let gone = format!("{}/contacts/default", v1());
    assert_eq!(c.delete(&gone, None).await.0, StatusCode::NOT_FOUND);
    // The same audit records, whichever the mount.
    let audit = d.audit().await;
    let of = |op: &str, st: AuditStatus| {
        audit
            .iter()
            .filter(|r| {
                r.operation_name == op
                    && r.status == st
                    && r.resource_id.ends_with("contacts/default")
            })
            .count()
    };
    assert_eq!(of("contacts.write", AuditStatus::Succeeded), 2);
    assert_eq!(of("contacts.write", AuditStatus::Failed), 1);
    assert_eq!(of("contacts.delete", AuditStatus::Failed), 1);
    assert_eq!(of("contacts.delete", AuditStatus::Succeeded), 1);
    assert!(of("contacts.write", AuditStatus::Denied) >= 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_star_only_creates_on_both_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    let c = d.client();
    let star = [("if-none-match", "*")];
    let pv1 = format!("{}/contacts/default", v1());
    let parm = format!("{SUB}/securityContacts/default?{C23}");
    let (s, v) = send(&c, Method::PUT, &pv1, Some(&contact_2020()), &star).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for path in [&pv1, &parm] {
        let other = json!({"properties": {"emails": "mallory@contoso.com"}});
        let (s, e) = send(&c, Method::PUT, path, Some(&other), &star).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{path}: {e}");
        assert_eq!(e["error"]["code"], "PreconditionFailed");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already exists"),
            "{e}"
        );
    }
    // Nothing was overwritten.
    let (_, v, _) = c.get(&pv1).await;
    assert_eq!(v["properties"]["emails"], "alice@contoso.com");
    // A JIT policy at its ARM path: created once, then 412.
    let pol = arm_policy("rg1", "westeurope", "p1");
    let (s, v) = send(&c, Method::PUT, &pol, Some(&policy("PT3H")), &star).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = send(&c, Method::PUT, &pol, Some(&policy("PT1H")), &star).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    // Only `*` means something on a PUT, and not beside If-Match.
    let (s, e) = send(
        &c,
        Method::PUT,
        &pv1,
        Some(&contact_2020()),
        &[("if-none-match", "\"x\"")],
    )
    .await;
    assert_eq!(
        (s, e["error"]["target"].as_str()),
        (StatusCode::BAD_REQUEST, Some("If-None-Match"))
    );
    let both = [("if-none-match", "*"), ("if-match", "*")];
    let (s, _) = send(&c, Method::PUT, &pv1, Some(&contact_2020()), &both).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Each refused create is audited as a failed write with its reason.
    let failed: Vec<_> = d
        .audit()
        .await
        .into_iter()
        .filter(|r| r.status == AuditStatus::Failed)
        .map(|r| (r.operation_name, r.details.reason.unwrap_or_default()))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(
        failed.iter().all(|(_, why)| why.contains("If-None-Match")),
        "{failed:?}"
    );
    assert_eq!(failed[2].0, "jit.write");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_version_is_required_and_picks_the_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    let c = d.client();
    for path in [
        format!("{SUB}/securityContacts"),
        format!("{SUB}/securityContacts?api-version=2017-08-01-preview"),
        format!("{SUB}/jitNetworkAccessPolicies?api-version=2020-01-01-preview"),
        format!("{SUB}/alerts?api-version=2021-01-01"),
    ] {
        let (s, e, _) = c.get(&path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {e}");
        assert_eq!(e["error"]["target"], "api-version", "{path}");
        let served = if path.contains("securityContacts") {
            "2020-01-01-preview, 2023-12-01-preview"
        } else if path.contains("jit") {
            "2020-01-01"
        } else {
            "2022-01-01"
        };
        assert!(
            e["error"]["message"].as_str().unwrap().contains(served),
            "{e}"
        );
    }
    // /v1 ignores api-version.
    let (s, _, _) = c
        .get(&format!("{}/contacts?api-version=1999-01-01", v1()))
        .await;
    assert_eq!(s, StatusCode::OK);
    // nextLink carries the version on, and pages resume in the same shape.
    for n in ["a", "b", "c"] {
        c.put(&format!("{}/contacts/{n}", v1()), &contact_2020(), None)
            .await;
    }
    let (s, page, _) = c
        .get(&format!("{SUB}/securityContacts?{C20}&limit=2"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let next = page["nextLink"].as_str().unwrap().to_owned();
    assert!(
        next.starts_with(&format!("{SUB}/securityContacts?")),
        "{next}"
    );
    assert!(next.contains(C20), "{next}");
    let (_, rest, _) = c.get(&next).await;
    assert_eq!(rest["value"][0]["name"], "c");
    assert_eq!(
        rest["value"][0]["properties"]["alertNotifications"]["state"],
        "On"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unserved_arm_path_names_the_nearest_v1_route() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    let c = d.client();
    for (path, near) in [
        (
            format!("{SUB}/pricings?api-version=2024-01-01"),
            "/v1/tenants/contoso/{",
        ),
        (
            format!("{SUB}/jitNetworkAccessRequests/x?{JIT}"),
            "/v1/tenants/contoso/jit-requests",
        ),
        (
            format!("{SUB}/securityContact/default?{C23}"),
            "/v1/tenants/contoso/contacts",
        ),
        (
            format!("{SUB}/locations/westeurope/alerts/a/b/c?api-version=2022-01-01"),
            "/v1/tenants/contoso/alerts",
        ),
        ("/nothing/here".to_owned(), "/v1/tenants/{tenant}/"),
    ] {
        let (s, e, _) = c.get(&path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(near), "{path}: {msg}");
        assert_ne!(msg, "no such route");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_path_places_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    let c = d.client();
    // The VM is in rg1; the path puts the policy in rg9 at westeurope (the body's
    // location, read-only in the API, gives way to the path's).
    let mut body = policy("PT3H");
    body["location"] = json!("eastus");
    let p = arm_policy("rg9", "westeurope", "p1");
    let (s, v, _) = c.put(&p, &body, None).await;
    assert_eq!(s, StatusCode::OK, "the SDK accepts only 200: {v}");
    assert_eq!(v["location"], "westeurope");
    assert_eq!(
        v["id"],
        "/subscriptions/contoso/resourceGroups/rg9/providers/Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies/p1"
    );
    assert_eq!(c.get(&p).await.0, StatusCode::OK);
    for elsewhere in [
        arm_policy("rg1", "westeurope", "p1"),
        arm_policy("rg9", "local", "p1"),
    ] {
        assert_eq!(
            c.get(&elsewhere).await.0,
            StatusCode::NOT_FOUND,
            "{elsewhere}"
        );
        // A delete elsewhere is the spec's 204 and deletes nothing.
        assert_eq!(c.delete(&elsewhere, None).await.0, StatusCode::NO_CONTENT);
        // A put elsewhere would make a second policy of one name: 409.
        let (s, e, _) = c.put(&elsewhere, &policy("PT3H"), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        let body = json!({"virtualMachines": [{"id": VM, "ports": [{"number": 22, "endTimeUtc": steward_testkit::inproc::in_secs(600.0).to_string(), "allowedSourceAddressPrefix": "198.51.100.7"}]}]});
        let init = elsewhere.replace("/p1?", "/p1/initiate?");
        let (s, _) = send(&c, Method::POST, &init, Some(&body), &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{init}");
    }
    // A /v1 replace without a location keeps the policy where it is.
    let (s, v, _) = c
        .put(&format!("{}/jit-policies/p1", v1()), &policy("PT1H"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(p.split('?').next().unwrap()));
    // A /v1 policy is at its first VM's group and `local`; the lists filter on both.
    c.put(&format!("{}/jit-policies/p2", v1()), &policy("PT1H"), None)
        .await;
    let list = |q: &str| format!("/subscriptions/contoso{q}/jitNetworkAccessPolicies?{JIT}");
    for (path, want) in [
        (list("/providers/Microsoft.Security"), vec!["p1", "p2"]),
        (
            list("/providers/Microsoft.Security/locations/WestEurope"),
            vec!["p1"],
        ),
        (
            list("/resourceGroups/rg1/providers/Microsoft.Security"),
            vec!["p2"],
        ),
        (
            list("/resourceGroups/rg1/providers/Microsoft.Security/locations/local"),
            vec!["p2"],
        ),
        (
            list("/resourceGroups/rg9/providers/Microsoft.Security/locations/local"),
            vec![],
        ),
    ] {
        let (s, v, _) = c.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        let names: Vec<&str> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, want, "{path}");
    }
    // A resource group that is no name is a 400 naming it.
    let (s, e, _) = c.get(&arm_policy("rg%3Fx", "westeurope", "p1")).await;
    assert_eq!(
        (s, e["error"]["target"].as_str()),
        (StatusCode::BAD_REQUEST, Some("resourceGroupName"))
    );
    d.stop().await;
}

/// A policy stored before policies could be placed by a path (its JSON text as the
/// daemon wrote it then) reads the same: the group its id names, which was its first
/// VM's, and its location.
#[test]
fn a_policy_stored_before_placement_reads_the_same() {
    let old = r#"{"id":"/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Security/locations/local/jitNetworkAccessPolicies/default","name":"default","type":"Microsoft.Security/locations/jitNetworkAccessPolicies","kind":"Basic","location":"local","properties":{"virtualMachines":[{"id":"/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1","ports":[{"number":22,"protocol":"TCP","allowedSourceAddressPrefix":"198.51.100.0/24","maxRequestAccessDuration":"PT3H"}]}],"provisioningState":"Succeeded"}}"#;
    let p: steward::model::JitPolicy = serde_json::from_str(old).unwrap();
    assert_eq!(p.resource_group(), Some("rg1"));
    assert!(p.is_at(Some("RG1"), Some("local")));
    assert!(!p.is_at(Some("rg2"), None));
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        old,
        "written back unchanged"
    );
}

/// An initiate's `Idempotency-Key` is bound to the path's placement: the same key and body
/// at another resource group is another request (422), not a replay of the first answer;
/// the same placement spelt in another case is the same request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initiate_key_is_bound_to_its_placement() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path(), "").await;
    let c = d.client();
    let p = arm_policy("rg9", "westeurope", "p1");
    assert_eq!(c.put(&p, &policy("PT3H"), None).await.0, StatusCode::OK);
    let body = json!({"virtualMachines": [{"id": VM, "ports": [{"number": 22, "endTimeUtc": steward_testkit::inproc::in_secs(600.0).to_string(), "allowedSourceAddressPrefix": "198.51.100.7"}]}]});
    let key = [("idempotency-key", "init-1")];
    let init = |rg: &str, loc: &str| arm_policy(rg, loc, "p1").replace("/p1?", "/p1/initiate?");
    let (s, first) = send(
        &c,
        Method::POST,
        &init("rg9", "westeurope"),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, again) = send(
        &c,
        Method::POST,
        &init("RG9", "WestEurope"),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(
        (s, &again),
        (StatusCode::ACCEPTED, &first),
        "a replay answers the first outcome"
    );
    let (s, e) = send(
        &c,
        Method::POST,
        &init("rg1", "westeurope"),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["target"], "Idempotency-Key", "{e}");
    // One request was made, not two.
    let (_, list, _) = c.get(&format!("{}/jit-requests", v1())).await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1), "{list}");
    d.stop().await;
}
