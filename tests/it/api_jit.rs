//! The JIT API over a real socket against a daemon started in-process: policies with
//! etags, validation by field path, initiate rules, supersede, revoke, permissions and the
//! product's own policy path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::StatusCode;
use serde_json::json;
use steward::model::AuditStatus;
use steward_daemon::store::{DocInput, Kind, ScheduleAction, TenantRead};
use steward_testkit::inproc::{
    Api, T, TestDaemon, in_secs, initiate, policy, put_stored, reasons, stored, stored_audit,
};
use steward_testkit::tid;

fn base() -> String {
    format!("/v1/tenants/{T}")
}

/// Asserts that a PUT of the standard policy as `name` with its VM's id set to `id` is
/// refused, naming that id's field.
async fn vm_id_refused(c: &Api, name: &str, id: &str) {
    let mut body = policy("PT3H");
    body["properties"]["virtualMachines"][0]["id"] = json!(id);
    let (s, v, _) = c
        .put(&format!("{}/jit-policies/{name}", base()), &body, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{id:?}: {v}");
    assert_eq!(
        v["error"]["target"], "properties.virtualMachines[0].id",
        "{id:?}: {v}"
    );
}

/// A daemon (on a temp dir) with the standard policy `default` (22 up to 3 h); returns
/// the dir, the daemon and the policy's path.
async fn with_policy() -> (tempfile::TempDir, TestDaemon, String) {
    let (dir, d) = TestDaemon::in_temp("").await;
    let pol = format!("{}/jit-policies/default", base());
    d.client().put(&pol, &policy("PT3H"), None).await;
    (dir, d, pol)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_put_get_list_delete_with_etags() {
    let (_dir, d) = TestDaemon::in_temp("").await;
    let c = d.client();
    let p = format!("{}/jit-policies/default", base());

    let (s, v, etag) = c.put(&p, &policy("PT3H"), None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let etag = etag.unwrap();
    assert_eq!(v["etag"], etag.as_str());
    assert_eq!(
        v["type"],
        "Microsoft.Security/locations/jitNetworkAccessPolicies"
    );
    assert_eq!(
        v["id"],
        "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Security/locations/local/jitNetworkAccessPolicies/default"
    );

    let (s, v, e2) = c.get(&p).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e2.as_deref(), Some(etag.as_str()));
    assert_eq!(v["properties"]["requests"], json!([]));

    let (s, _, _) = c.put(&p, &policy("PT2H"), Some("stale")).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (s, v, etag2) = c.put(&p, &policy("PT2H"), Some(&etag)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let etag2 = etag2.unwrap();
    assert_ne!(etag2, etag);
    assert_eq!(
        v["properties"]["virtualMachines"][0]["ports"][0]["maxRequestAccessDuration"],
        "PT2H"
    );

    let (s, v, _) = c.get(&format!("{}/jit-policies", base())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    assert_eq!(v["value"][0]["name"], "default");

    let (s, _, _) = c.delete(&p, Some(&etag)).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (s, _, _) = c.delete(&p, Some(&etag2)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = c.get(&p).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let ops: Vec<(String, AuditStatus)> = d
        .audit()
        .await
        .into_iter()
        .map(|r| (r.operation_name, r.status))
        .collect();
    for want in [
        ("jit.write".to_owned(), AuditStatus::Succeeded),
        ("jit.write".to_owned(), AuditStatus::Failed),
        ("jit.delete".to_owned(), AuditStatus::Failed),
        ("jit.delete".to_owned(), AuditStatus::Succeeded),
    ] {
        assert!(ops.contains(&want), "{want:?} not audited: {ops:?}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_names_the_field() {
    let (_dir, d) = TestDaemon::in_temp("").await;
    let c = d.client();
    let mut bad = policy("PT3H");
    bad["properties"]["virtualMachines"][0]["ports"][0]["number"] = json!(70000);
    let (s, v, _) = c
        .put(&format!("{}/jit-policies/bad", base()), &bad, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v.to_string()
            .contains("properties.virtualMachines[0].ports[0].number"),
        "{v}"
    );
    let (s, v, _) = c
        .put(
            &format!("{}/jit-policies/bad", base()),
            &policy("P3D"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v.to_string()
            .contains("properties.virtualMachines[0].ports[0].maxRequestAccessDuration"),
        "{v}"
    );
    let (s, _, _) = c.get(&format!("{}/jit-policies/bad", base())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a refused policy is not stored");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initiate_rules_and_the_request_listing() {
    let (_dir, d, pol) = with_policy().await;
    let c = d.client();
    let init = format!("{pol}/initiate");

    let (s, v, _) = c
        .post(&init, &initiate(22, in_secs(5.0 * 3600.0), "198.51.100.9"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "past the port maximum: {v}");
    assert!(v.to_string().contains("endTimeUtc"), "{v}");
    let (s, v, _) = c
        .post(&init, &initiate(22, in_secs(3600.0), "192.0.2.1"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "outside the prefix: {v}");
    assert!(v.to_string().contains("allowedSourceAddressPrefix"), "{v}");
    let (s, v, _) = c
        .post(&init, &initiate(23, in_secs(3600.0), "198.51.100.9"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "unknown port: {v}");
    assert!(
        v.to_string().contains("virtualMachines[0].ports[0].number"),
        "{v}"
    );
    let (s, _, _) = c.ask("nope", 22, in_secs(60.0)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, req, _) = c
        .post(&init, &initiate(22, in_secs(3600.0), "198.51.100.9"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{req}");
    let id = req["id"].as_str().unwrap().to_owned();
    assert_eq!(req["policyName"], "default");
    assert_eq!(req["requestor"], steward_testkit::me());
    assert_eq!(req["virtualMachines"][0]["ports"][0]["status"], "Initiated");

    let (s, one, _) = c.get(&format!("{}/jit-requests/{id}", base())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["id"], id.as_str());
    let (_, list, _) = c.get(&format!("{}/jit-requests", base())).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, p, _) = c.get(&pol).await;
    assert_eq!(p["properties"]["requests"][0]["id"], id.as_str());

    // Audited with the people as HMACs only, and stored (read from the redb file once
    // the daemon has stopped) with its End and Purge entries.
    let rec = d.audited("jit.initiate").await.remove(0);
    assert_eq!(rec.resource_id, format!("jit-requests/{id}"));
    assert!(!rec.subjects.is_empty());
    assert!(!format!("{rec:?}").contains("198.51.100.9"));
    let dir = d.dir.clone();
    d.stop().await;
    let doc = stored(&dir)
        .tenant(&tid(T))
        .get(Kind::JitRequest, &id)
        .unwrap()
        .unwrap();
    assert!(doc.schedule.iter().any(|s| s.action == ScheduleAction::End));
    assert!(doc.expires_at().unwrap() > jiff::Timestamp::now().as_second() + 29 * 86400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_request_ends_the_older_and_revoke_ends_early() {
    let (_dir, d, pol) = with_policy().await;
    let c = d.client();
    let init = format!("{pol}/initiate");
    let (_, first, _) = c
        .post(&init, &initiate(22, in_secs(3600.0), "198.51.100.9"))
        .await;
    let (s, second, _) = c
        .post(&init, &initiate(22, in_secs(1800.0), "198.51.100.10"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let first_id = first["id"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();

    let (_, older, _) = c.get(&format!("{}/jit-requests/{first_id}", base())).await;
    assert_eq!(reasons(&older), ["NewerRequestInitiated"]);
    assert_eq!(older["virtualMachines"][0]["ports"][0]["status"], "Revoked");
    let (_, newer, _) = c.get(&format!("{}/jit-requests/{second_id}", base())).await;
    assert_eq!(
        newer["virtualMachines"][0]["ports"][0]["status"],
        "Initiated"
    );
    assert!(
        d.audit()
            .await
            .iter()
            .any(|r| r.operation_name == "jit.revoke"
                && r.resource_id == format!("jit-requests/{first_id}")
                && r.details.reason.as_deref() == Some("NewerRequestInitiated"))
    );

    let rv = format!("{}/jit-requests/{second_id}/revoke", base());
    let (s, revoked, _) = c.post(&rv, &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{revoked}");
    assert_eq!(reasons(&revoked), ["UserRequested"]);
    assert_eq!(
        revoked["virtualMachines"][0]["ports"][0]["status"],
        "Revoked"
    );
    let (s, _, _) = c.post(&rv, &json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing left to revoke");

    // Early end: no End entry left, purge counted from now (the stored record, read from
    // the redb file once the daemon has stopped).
    let expect = jiff::Timestamp::now().as_second() + 30 * 86400;
    let dir = d.dir.clone();
    d.stop().await;
    let doc = stored(&dir)
        .tenant(&tid(T))
        .get(Kind::JitRequest, second_id)
        .unwrap()
        .unwrap();
    assert!(!doc.schedule.iter().any(|s| s.action == ScheduleAction::End));
    let purge = doc.expires_at().unwrap();
    assert!((purge - expect).abs() <= 2, "purge {purge} vs {expect}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_may_look_but_not_change() {
    let (_dir, d) = TestDaemon::in_temp("").await;
    let admin = d.client();
    let reader = d.client_as("reader");
    let pol = format!("{}/jit-policies/default", base());
    admin.put(&pol, &policy("PT3H"), None).await;
    let (_, req, _) = admin
        .post(
            &format!("{pol}/initiate"),
            &initiate(22, in_secs(3600.0), "198.51.100.9"),
        )
        .await;
    let id = req["id"].as_str().unwrap();

    let (s, v, _) = reader.put(&pol, &policy("PT1H"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v.to_string().contains("jit.write"), "{v}");
    let (s, v, _) = reader.delete(&pol, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v.to_string().contains("jit.write"), "{v}");
    let (s, v, _) = reader
        .post(
            &format!("{pol}/initiate"),
            &initiate(22, in_secs(3600.0), "198.51.100.9"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v.to_string().contains("jit.request"), "{v}");
    let (s, v, _) = reader
        .post(&format!("{}/jit-requests/{id}/revoke", base()), &json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v.to_string().contains("jit.request"), "{v}");
    assert_eq!(reader.get(&pol).await.0, StatusCode::OK);
    assert_eq!(
        reader.get(&format!("{}/jit-requests", base())).await.0,
        StatusCode::OK
    );

    let (_, still, _) = admin.get(&format!("{}/jit-requests/{id}", base())).await;
    assert_eq!(
        still["virtualMachines"][0]["ports"][0]["status"],
        "Initiated"
    );
    // Every attempt is counted once the daemon has written its coalesced repeats (the PUT
    // and the DELETE are the same denial: `jit.write` on the policy).
    let dir = d.dir.clone();
    d.stop().await;
    let denied: u64 = stored_audit(&dir, T)
        .into_iter()
        .filter(|r| r.status == AuditStatus::Denied)
        .map(|r| r.details.counts.get("attempts").copied().unwrap_or(1))
        .sum();
    assert_eq!(denied, 4);
}

/// A hook script in `dir` appending each document it reads on stdin to `hook.out`.
fn recording_hook(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let out = dir.join("hook.out");
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\n{{ cat; echo; }} >> '{}'\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (
        format!("[jit]\non_change = \"{}\"\n", script.display()),
        out,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_cannot_name_another_tenants_vm_and_the_hook_never_sees_one() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, out) = recording_hook(dir.path());
    // Tenant-admin in contoso, only reader in fabrikam.
    let extra = format!(
        "{hook}\n[[tenant]]\nid = \"fabrikam\"\nname = \"Fabrikam\"\n\n\
         [[grant]]\nuser = \"{}\"\ntenant = \"fabrikam\"\nrole = \"reader\"\n",
        steward_testkit::me()
    );
    let d = TestDaemon::start(dir.path(), &extra).await;
    let c = d.client();
    let foreign = "/subscriptions/fabrikam/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
    for id in [
        foreign.to_owned(),
        foreign.replace("fabrikam", "FABRIKAM"),
        foreign.replace(
            "/subscriptions/fabrikam",
            "/subscriptions/contoso/../fabrikam",
        ),
    ] {
        vm_id_refused(&c, "steal", &id).await;
    }
    let (s, _, _) = c.get(&format!("{}/jit-policies/steal", base())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a refused policy is not stored");

    // A policy stored by an older version that did not check: initiate is refused too.
    let mut legacy = policy("PT3H");
    legacy["properties"]["virtualMachines"][0]["id"] = json!(foreign);
    legacy["name"] = json!("legacy");
    let text = legacy.to_string();
    // Written into the redb file while the daemon is stopped, then served again.
    let dir = d.dir.clone();
    d.stop().await;
    let legacy = (Kind::JitPolicy, "legacy");
    put_stored(&dir, T, legacy, DocInput::new(text), "jit.write").await;
    let d = TestDaemon::start(&dir, &extra).await;
    let mut asked = initiate(3389, in_secs(600.0), "198.51.100.9");
    asked["virtualMachines"][0]["id"] = json!(foreign);
    let (s, v, _) = c
        .post(&format!("{}/jit-policies/legacy/initiate", base()), &asked)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["target"], "virtualMachines[0].id", "{v}");
    let (s, v, _) = c.ask("legacy", 3389, in_secs(600.0)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Nothing reached the hook, and fabrikam's log holds nothing of it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !out.exists(),
        "the hook ran: {:?}",
        std::fs::read_to_string(&out)
    );
    d.stop().await;
    let fabrikam = stored_audit(&dir, "fabrikam");
    assert!(
        fabrikam
            .iter()
            .all(|r| !r.operation_name.starts_with("jit")),
        "{fabrikam:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_ids_outside_the_arm_grammar_are_refused_by_field() {
    let (_dir, d) = TestDaemon::in_temp("").await;
    let c = d.client();
    let vm = |rg: &str, name: &str| {
        format!(
            "/subscriptions/contoso/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
        )
    };
    for id in [
        vm(
            "rg1",
            "vm1,/subscriptions/fabrikam/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1",
        ),
        vm("rg1", "vm1,vm2"),
        vm("rg1,rg2", "vm1"),
        vm("rg1", "vm1\nSTEWARD_TENANT=fabrikam"),
        vm("rg1\n", "vm1"),
        vm("..", "vm1"),
        vm("rg1", ".."),
        vm("rg1", "vm 1"),
        vm("rg1", "vm1") + "/",
        vm("rg1", "vm1") + "/../../x",
        "/subscriptions/contoso/resourceGroups/rg1".to_owned(),
        "vm1".to_owned(),
    ] {
        vm_id_refused(&c, "p", &id).await;
        let mut asked = initiate(22, in_secs(600.0), "198.51.100.9");
        asked["virtualMachines"][0]["id"] = json!(id);
        let (s, v, _) = c
            .post(&format!("{}/jit-policies/p/initiate", base()), &asked)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{id:?}: {v}");
        assert_eq!(v["error"]["target"], "virtualMachines[0].id", "{id:?}: {v}");
    }
    d.stop().await;
}

/// A stored JIT request that cannot be read back is the daemon's fault, not the caller's:
/// 500 like the DSR route, never 400 "invalid input" (defect of the architecture round).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_stored_request_answers_500_not_400() {
    let dir = tempfile::tempdir().unwrap();
    // Written into the redb file of a stopped daemon: no route stores such a thing.
    TestDaemon::start(dir.path(), "").await.stop().await;
    put_stored(
        dir.path(),
        T,
        (Kind::JitRequest, "damaged"),
        DocInput::new("{\"not\": \"a request\"}".to_owned()),
        "test.seed",
    )
    .await;
    let d = TestDaemon::start(dir.path(), "").await;
    let (s, v, _) = d
        .client()
        .post(
            &format!("{}/jit-requests/damaged/revoke", base()),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert_ne!(v["error"]["code"], "InvalidInput", "{v}");
    d.stop().await;
}

/// A PUT answers with the policy it committed, even when a delete lands between its commit
/// and its answer: a committed write is never answered 404 (it read the policy back by name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_put_answers_what_it_wrote_under_concurrent_deletes() {
    let (_dir, d) = TestDaemon::in_temp("").await;
    let (puts, dels) = (d.client(), d.client());
    let p = format!("{}/jit-policies/racy", base());
    let deleter = {
        let p = p.clone();
        tokio::spawn(async move {
            for _ in 0..150 {
                dels.delete(&p, None).await;
            }
        })
    };
    for i in 0..150 {
        let (s, v, etag) = puts.put(&p, &policy("PT3H"), None).await;
        assert!(
            s == StatusCode::CREATED || s == StatusCode::OK,
            "put {i}: {s} {v}"
        );
        assert_eq!(v["name"], "racy", "put {i}: {v}");
        assert_eq!(v["etag"].as_str(), etag.as_deref(), "put {i}: {v}");
    }
    deleter.await.unwrap();
    d.stop().await;
}
