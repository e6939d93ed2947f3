//! `stewardd migrate --from redb --to postgres` against a real PostgreSQL (the test kit's
//! cluster; missing PostgreSQL fails, saying how to install it): a store written by a
//! daemon on redb (every kind, a JIT request with its end scheduled, a DSR, idempotency
//! keys, audited reads and denials) is served the same from PostgreSQL after the move,
//! with every audit chain at the same head and still growing from it, and a data-subject
//! search still finds what the audit log says about a person (the HMAC key moved too).
//! Refused: while the daemon runs, while a daemon is connected to the database, into a
//! database already in use, and any other pair of backends; each leaves both stores as
//! they were.

use std::path::Path;

use http::StatusCode;
use serde_json::{Value, json};
use steward_testkit::config::{ConfigBuilder, TENANTS};
use steward_testkit::inproc::{Api, in_secs, initiate, policy};
use steward_testkit::postgres;
use steward_testkit::process::{Stewardd, temp_dir};

/// `stewardd --config CONFIG ARGS…`: (exit code, stdout, stderr).
fn stewardd(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(steward_testkit::bin::stewardd())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The move itself.
fn migrate(config: &Path) -> (Option<i32>, String, String) {
    stewardd(config, &["migrate", "--from", "redb", "--to", "postgres"])
}

/// Rows of steward's tables in the database `url` names (psql on the shared cluster).
fn rows_in(url: &str) -> String {
    let out = postgres::shared().psql(
        db_of(url),
        "SELECT (SELECT count(*) FROM records) || '/' || (SELECT count(*) FROM audit)",
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What a client sees of every tenant (none of it audited, so looking changes nothing):
/// each list whole, the audit log, and each chain's verification.
async fn everything(api: &Api) -> Value {
    let mut out = serde_json::Map::new();
    for t in TENANTS {
        for list in [
            "contacts",
            "jit-policies",
            "jit-requests",
            "alerts?limit=1000",
            "dsr",
            "audit?limit=1000",
        ] {
            let (s, v, _) = api.get(&format!("/v1/tenants/{t}/{list}")).await;
            assert_eq!(s, StatusCode::OK, "{t}/{list}: {v}");
            out.insert(format!("{t}/{list}"), v["value"].clone());
        }
        let (s, v, _) = api.get(&format!("/v1/tenants/{t}/audit/verify")).await;
        assert_eq!(s, StatusCode::OK, "{t}: {v}");
        assert_eq!(v["ok"], true, "{t}: {v}");
        out.insert(format!("{t}/verify"), v);
    }
    Value::Object(out)
}

/// A data-subject search for alice in `tenant` (audited, with her HMAC): the hits, and
/// the HMACs its audit record holds.
async fn search_alice(api: &Api, tenant: &str) -> (Value, Value) {
    let (s, hits, _) = api
        .get(&format!(
            "/v1/tenants/{tenant}/subjects?email=alice@contoso.example"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{hits}");
    let (_, log, _) = api
        .get(&format!(
            "/v1/tenants/{tenant}/audit?limit=1000&subjects=true"
        ))
        .await;
    let last = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["operationName"] == "subjects.search")
        .cloned()
        .unwrap_or_else(|| panic!("no subjects.search record in {log}"));
    (hits["value"].clone(), last["subjects"].clone())
}

/// Writes something of every kind through `api`, in every tenant.
async fn fill(api: &Api) {
    for t in TENANTS {
        let base = format!("/v1/tenants/{t}");
        let contact = json!({"properties": {
            "emails": "alice@contoso.example;bob@contoso.example",
            "phone": "+1 (555) 010-0000",
        }});
        let (s, v, _) = api
            .put(&format!("{base}/contacts/default"), &contact, None)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let vm = steward_testkit::inproc::VM.replace("/contoso/", &format!("/{t}/"));
        let mut p = policy("PT3H");
        p["properties"]["virtualMachines"][0]["id"] = json!(vm);
        let (s, v, _) = api.put(&format!("{base}/jit-policies/p1"), &p, None).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // Ends in an hour: the move must carry its scheduled end.
        let mut body = initiate(22, in_secs(3600.0), "198.51.100.7");
        body["virtualMachines"][0]["id"] = json!(vm);
        let (s, v, _) = api
            .post(&format!("{base}/jit-policies/p1/initiate"), &body)
            .await;
        assert!(s.is_success(), "{v}");
        let alerts: Vec<Value> = (0..30)
            .map(|i| {
                let severity = ["High", "Medium", "Low"][i % 3];
                json!({"name": format!("a{i}"), "properties": {
                    "alertDisplayName": format!("alert {i}"),
                    "severity": severity,
                    "status": "Active",
                    "timeGeneratedUtc": format!("2026-11-{:02}T10:00:00Z", 1 + i % 28),
                    "compromisedEntity": "vm1",
                    "entities": [{"type": "account", "upn": "alice@contoso.example"}]
                }})
            })
            .collect();
        let (s, v, _) = api.post(&format!("{base}/alerts"), &json!(alerts)).await;
        assert!(s.is_success(), "{v}");
        // An export request about alice, confirmed: the DSR and its audit trail.
        let (s, v, _) = api
            .post(
                &format!("{base}/dsr"),
                &json!({"type": "export", "subject": {"email": "alice@contoso.example"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // A denied write (alerts are read-only): audited as denied.
        let r = api
            .0
            .delete(&format!("{base}/alerts/a1"), None)
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

/// The database's name in a test cluster's URL.
fn db_of(url: &str) -> &str {
    url.trim_start_matches("postgresql:///")
        .split('?')
        .next()
        .unwrap()
}

#[test]
fn a_redb_store_moves_to_postgres_chains_and_all_and_serves_the_same() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = postgres::database();
    let mut redb = Stewardd::new("", "");
    redb.start();
    let data = redb.dir.path().join("data");
    // The daemon that will serve from PostgreSQL: its own dir, the same data dir (where
    // `migrate` finds the redb file).
    let pg_dir = temp_dir();
    let pg_config = ConfigBuilder::reliability(pg_dir.path(), "")
        .data_dir(&data)
        .postgres(&url);
    let (searched, before) = rt.block_on(async {
        let api = Api(redb.client());
        fill(&api).await;
        let searched = search_alice(&api, "contoso").await;
        (searched, everything(&api).await)
    });

    // While the daemon runs, its lock refuses the move and nothing reaches the database.
    let mut pg = Stewardd::with_config(pg_dir, &pg_config);
    let (code, out, err) = migrate(&pg.config);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("stop it first"), "{err}");
    assert!(
        !postgres::shared()
            .psql(db_of(&url), "SELECT 1 FROM records")
            .status
            .success(),
        "the refused move created no tables"
    );
    // Only redb -> postgres is a move this build makes.
    let (code, _, err) = stewardd(
        &pg.config,
        &["migrate", "--from", "postgres", "--to", "redb"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("only `--from redb --to postgres`"), "{err}");

    // Nor while a daemon runs on the target database (it would keep its own key).
    let busy_url = postgres::database();
    let busy_dir = temp_dir();
    let busy_config = ConfigBuilder::reliability(busy_dir.path(), "")
        .data_dir(&data)
        .postgres(&busy_url);
    let mut busy = Stewardd::with_config(busy_dir, &busy_config);
    busy.start();
    redb.stop();
    let (code, out, err) = migrate(&busy.config);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("stop every daemon"), "{err}");
    busy.stop();
    let (code, out, err) = migrate(&pg.config);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("checked there"), "{out}");
    for t in TENANTS {
        let head = &before[format!("{t}/verify")]["head"];
        let line = format!(
            "audit head {t}: seq {} hash {}",
            head["seq"],
            head["hash"].as_str().unwrap()
        );
        assert!(out.contains(&line), "{line} missing from: {out}");
    }
    // The redb file still holds the same chains (the move only reads it).
    let (code, checked, err) = stewardd(&redb.config, &["verify-store"]);
    assert_eq!(code, Some(0), "{checked}{err}");
    for line in checked.lines().filter(|l| l.starts_with("audit head")) {
        assert!(
            out.contains(line),
            "{line} (the redb file) missing from: {out}"
        );
    }

    // A second move into the same (now used) database is refused, changing nothing.
    let rows = rows_in(&url);
    let (code, out, err) = migrate(&pg.config);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("already holds steward data"), "{err}");
    assert_eq!(rows_in(&url), rows, "the refused move changed the database");

    // The daemon on PostgreSQL serves exactly what the redb daemon served...
    pg.start();
    let (after, searched_after) = rt.block_on(async {
        let api = Api(pg.client());
        let after = everything(&api).await;
        let searched = search_alice(&api, "contoso").await;
        // ...and every chain grows from the moved head.
        for t in TENANTS {
            let (s, v, _) = api
                .put(
                    &format!("/v1/tenants/{t}/contacts/second"),
                    &json!({"properties": {"emails": "carol@contoso.example"}}),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            let (_, v, _) = api.get(&format!("/v1/tenants/{t}/audit/verify")).await;
            assert_eq!(v["ok"], true, "{t}: {v}");
            let moved = before[format!("{t}/verify")]["head"]["seq"]
                .as_u64()
                .unwrap();
            let searches = u64::from(t == "contoso");
            assert_eq!(
                v["head"]["seq"].as_u64(),
                Some(moved + searches + 1),
                "{t}: {v}"
            );
        }
        // A data-subject export run after the move finds, through the moved audit
        // subject index, the search made before it.
        let done = steward_testkit::dsr::run(
            &api.0,
            "contoso",
            "export",
            json!({"email": "alice@contoso.example"}),
        )
        .await;
        let id = done["id"].as_str().unwrap();
        let (s, bundle, _) = api
            .get(&format!("/v1/tenants/contoso/dsr/{id}/bundle"))
            .await;
        assert_eq!(s, StatusCode::OK, "{bundle}");
        let moved = before["contoso/verify"]["head"]["seq"].as_u64().unwrap();
        let found_old_search = bundle["audit"].as_array().unwrap().iter().any(|r| {
            r["operationName"] == "subjects.search" && r["seq"].as_u64().unwrap() <= moved
        });
        assert!(
            found_old_search,
            "no pre-move search in the bundle: {bundle}"
        );
        (after, searched)
    });
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(&after[k], v, "{k} differs after the move");
    }
    // The same search finds the same records, and names alice by the same HMAC: the
    // installation key moved with the data.
    assert_eq!(searched_after.0, searched.0);
    assert!(!searched.0.as_array().unwrap().is_empty(), "{searched:?}");
    assert_eq!(
        searched_after.1, searched.1,
        "alice's HMAC changed with the move"
    );
    assert!(!searched.1.as_array().unwrap().is_empty(), "{searched:?}");
    pg.stop();
    let (code, out, err) = stewardd(&pg.config, &["verify-store"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("store sound: PostgreSQL"), "{out}");
}
