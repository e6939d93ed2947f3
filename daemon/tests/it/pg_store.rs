//! The PostgreSQL backend's own guarantees, against a real PostgreSQL (the test kit's
//! cluster, run as an OS user of its own; missing PostgreSQL fails these tests saying how
//! to install it): the audit chains it writes verify (and a record altered in the
//! database does not), a change whose audit record cannot be written does not happen,
//! a database newer than the binary is refused, and two stores on one database (two
//! daemons of a fleet) share the installation key and append each tenant's chain in
//! one order. The API suites run on this backend too (`STW_TEST_BACKEND=postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::json;
use steward::model::{AuditCaller, AuditStatus, SubjectKey, SubjectKind};
use steward_daemon::store::pg::{PgOptions, SCHEMA_VERSION};
use steward_daemon::store::{
    AuditEntry, DocInput, Kind, Store, StoreError, StoreOptions, TenantRead, TenantWrite,
    WriteError,
};
use steward_testkit::config::ConfigBuilder;
use steward_testkit::inproc::Api;
use steward_testkit::postgres::{self, Postgres};
use steward_testkit::process::Stewardd;
use steward_testkit::{rn, tid};

fn caller() -> AuditCaller {
    AuditCaller {
        uid: 1000,
        user: "operator".into(),
        profile: "owner".into(),
    }
}

fn entry(op: &str) -> AuditEntry {
    AuditEntry::named(caller(), op, AuditStatus::Succeeded)
}

fn options(url: &str) -> PgOptions {
    PgOptions {
        url: url.to_owned(),
        password_file: None,
        pool_size: 2,
    }
}

fn open(url: &str) -> Store {
    Store::open_postgres(&options(url), StoreOptions::default()).unwrap()
}

/// Puts `kind/name` in `tenant` with one audit record, in one job.
fn put(store: &Store, tenant: &str, kind: Kind, name: &str, input: DocInput) {
    let name = rn(name);
    store
        .writer()
        .write_blocking(&tid(tenant), move |txn: &mut dyn TenantWrite| {
            txn.put(kind, &name, input, None)?;
            txn.audit(entry("contacts.write").resource(format!("contacts/{name}")));
            Ok::<_, WriteError>(())
        })
        .unwrap();
}

/// The database name in a test cluster's URL.
fn db_of(url: &str) -> &str {
    url.trim_start_matches("postgresql:///")
        .split('?')
        .next()
        .unwrap()
}

#[test]
fn audit_chains_written_on_postgres_verify_and_an_altered_record_does_not() {
    let url = postgres::database();
    let store = open(&url);
    let alice = SubjectKey::new(SubjectKind::Email, "alice@contoso.example", "p.emails").unwrap();
    for i in 0..20 {
        let tenant = if i % 2 == 0 { "contoso" } else { "fabrikam" };
        let input = DocInput::new(format!(r#"{{"n":{i}}}"#)).subject(&alice);
        put(&store, tenant, Kind::Contact, &format!("c{i}"), input);
    }
    for tenant in ["contoso", "fabrikam"] {
        let r = store.tenant(&tid(tenant));
        let report = r.audit_verify().unwrap();
        assert!(report.ok, "{tenant}: {report:?}");
        assert_eq!(report.records, 10);
        assert_eq!(report.head.as_ref().map(|h| h.seq), Some(10));
        // The records read back are the library's AuditRecord, chained from genesis.
        let page = r.audit(0, 100, &mut |_| true).unwrap();
        assert_eq!(page.items.len(), 10);
        assert_eq!(page.items[0].prev_hash, steward_daemon::store::GENESIS_HASH);
        for pair in page.items.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        // The subject index of the audit log: alice's HMAC, never her address.
        let about = r.audit_for_subject(&alice).unwrap();
        assert_eq!(about.len(), 0, "the entries named no subject");
        let hits = r.subjects(&alice).unwrap();
        assert_eq!(hits.len(), 10, "every contact of the tenant names alice");
    }
    drop(store);
    // Alter one byte of contoso's record 4 in the database: verification names seq 4.
    let out = postgres::shared().psql(
        db_of(&url),
        "UPDATE audit SET record = overlay(record placing '\\x58'::bytea from 12 for 1)
         WHERE tenant = 'contoso' AND seq = 4",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = open(&url);
    let report = store.tenant(&tid("contoso")).audit_verify().unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, Some(4));
    assert!(store.tenant(&tid("fabrikam")).audit_verify().unwrap().ok);
    drop(store);
    // verify_on_start refuses to open it, naming the tenant and the record.
    let checked = StoreOptions {
        verify_on_start: true,
        ..StoreOptions::default()
    };
    let err = Store::open_postgres(&options(&url), checked).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted(_)), "{err}");
    assert!(
        err.to_string().contains("\"contoso\"") && err.to_string().contains("record 4"),
        "{err}"
    );
}

#[test]
fn a_change_whose_audit_record_cannot_be_written_does_not_happen() {
    let url = postgres::database();
    let store = open(&url);
    put(
        &store,
        "contoso",
        Kind::Contact,
        "before",
        DocInput::new("{}"),
    );
    // From now on the database refuses every audit record.
    let out = postgres::shared().psql(
        db_of(&url),
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN RAISE EXCEPTION 'audit refused by the test'; END$$;
         CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = rn("lost");
    let err = store
        .writer()
        .write_blocking(&tid("contoso"), move |txn: &mut dyn TenantWrite| {
            txn.put(Kind::Contact, &name, DocInput::new("{}"), None)?;
            txn.delete(Kind::Contact, "before", None)?;
            txn.audit(entry("contacts.write"));
            Ok::<_, WriteError>(())
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("audit refused by the test"),
        "the job fails with the database's refusal: {err}"
    );
    let r = store.tenant(&tid("contoso"));
    assert_eq!(
        r.get(Kind::Contact, "lost").unwrap(),
        None,
        "the put did not happen"
    );
    assert!(
        r.get(Kind::Contact, "before").unwrap().is_some(),
        "nor the delete"
    );
    // A change with no audit entry at all is refused by the store itself.
    let name = rn("unaudited");
    let err = store
        .writer()
        .write_blocking(&tid("contoso"), move |txn: &mut dyn TenantWrite| {
            txn.put(Kind::Contact, &name, DocInput::new("{}"), None)?;
            Ok::<_, WriteError>(())
        })
        .unwrap_err();
    assert!(matches!(err, WriteError::Unaudited), "{err}");
    assert_eq!(r.get(Kind::Contact, "unaudited").unwrap(), None);
    // Once audit records can be written again, the chain is whole: the refused group
    // left no gap and no head that runs ahead of the records.
    let out = postgres::shared().psql(db_of(&url), "DROP TRIGGER refuse ON audit");
    assert!(out.status.success());
    put(
        &store,
        "contoso",
        Kind::Contact,
        "after",
        DocInput::new("{}"),
    );
    let report = r.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 2);
}

#[test]
fn a_database_newer_than_the_binary_is_refused_clearly() {
    let url = postgres::database();
    drop(open(&url));
    let (_, found) = steward_daemon::store::pg::check(&options(&url)).unwrap();
    assert_eq!(found, SCHEMA_VERSION);
    let newer = SCHEMA_VERSION + 1;
    let out = postgres::shared().psql(
        db_of(&url),
        &format!("INSERT INTO steward_schema (version) VALUES ({newer})"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = Store::open_postgres(&options(&url), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedSchema { found, supported }
            if found == newer && supported == SCHEMA_VERSION),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("schema version {newer}")),
        "{err}"
    );
    let err = steward_daemon::store::pg::check(&options(&url)).unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedSchema { .. }), "{err}");
}

#[test]
fn a_url_with_a_password_and_an_unreachable_server_are_errors_not_panics() {
    let err = Store::open_postgres(
        &options("postgresql://steward:secret@/steward?host=/nonexistent"),
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("password"), "{err}");
    let err = Store::open_postgres(
        &options("postgresql:///steward?host=/nonexistent"),
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Postgres(_)), "{err}");
}

#[test]
fn two_stores_on_one_database_share_the_key_and_append_one_chain_per_tenant() {
    let url = postgres::database();
    let a = open(&url);
    let b = open(&url);
    let alice = SubjectKey::new(SubjectKind::Email, "alice@contoso.example", "p.emails").unwrap();
    assert_eq!(
        a.tenant(&tid("contoso")).hmac(&alice),
        b.tenant(&tid("contoso")).hmac(&alice),
        "one installation key for the fleet"
    );
    // 16 writers, half through each store, all on one tenant's chain.
    std::thread::scope(|s| {
        for w in 0..16 {
            let store = if w % 2 == 0 { &a } else { &b };
            s.spawn(move || {
                for i in 0..10 {
                    put(
                        store,
                        "contoso",
                        Kind::Contact,
                        &format!("w{w}-{i}"),
                        DocInput::new("{}"),
                    );
                }
            });
        }
    });
    for store in [&a, &b] {
        let r = store.tenant(&tid("contoso"));
        let report = r.audit_verify().unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 160);
        let names: BTreeSet<String> = r
            .list(Kind::Contact, None, 1000)
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names.len(), 160, "each store sees the other's writes");
    }
}

#[test]
fn a_cluster_of_the_tests_own_stops_and_is_removed_on_drop() {
    let pg = Postgres::start();
    let url = pg.create_database("own");
    let store = open(&url);
    put(&store, "contoso", Kind::Contact, "c", DocInput::new("{}"));
    drop(store);
    let sock = pg.socket_dir();
    let role = pg.role().to_owned();
    drop(pg);
    assert!(!sock.exists(), "its files are gone");
    assert!(
        nix::unistd::User::from_name(&role).unwrap().is_none(),
        "its OS user is gone"
    );
}

/// A `stewardd` process on the reliability config, its store on the database `url`.
fn stewardd_on(url: &str) -> Stewardd {
    let dir = steward_testkit::process::temp_dir();
    let b = ConfigBuilder::reliability(dir.path(), "").postgres(url);
    let mut d = Stewardd::with_config(dir, &b);
    d.start();
    d
}

/// `stewardd ARGS… --config`-less run of a subcommand on `config`: (exit code, stdout,
/// stderr).
fn stewardd_cmd(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(steward_testkit::bin::stewardd())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn two_stewardd_processes_on_one_database_serve_one_store() {
    let url = postgres::database();
    let a = stewardd_on(&url);
    let b = stewardd_on(&url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (api_a, api_b) = (Api(a.client()), Api(b.client()));
        let path = "/v1/tenants/contoso/contacts/default";
        let body =
            json!({"properties": {"emails": "alice@contoso.example", "phone": "+1 555 0100"}});
        let (s, _, etag) = api_a.put(path, &body, None).await;
        assert_eq!(s, StatusCode::CREATED);
        let etag = etag.unwrap();
        // B reads what A wrote, with A's etag, and B's If-Match sees A's record.
        let (s, seen, etag_b) = api_b.get(path).await;
        assert_eq!(s, StatusCode::OK, "{seen}");
        assert_eq!(etag_b.as_deref(), Some(etag.as_str()));
        let (s, _, _) = api_b.put(path, &body, Some("\"stale\"")).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED);
        let (s, _, _) = api_b.put(path, &body, Some(&etag)).await;
        assert_eq!(s, StatusCode::OK);
        // A's stale etag is now refused by A.
        let (s, _, _) = api_a.delete(path, Some(&etag)).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED);
        // One chain for the tenant, whichever daemon is asked.
        for api in [&api_a, &api_b] {
            let (s, v, _) = api.get("/v1/tenants/contoso/audit/verify").await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(v["ok"], true, "{v}");
        }
    });
    // check-config reaches the database; verify-store checks its chains.
    let (code, out, err) = stewardd_cmd(&["check-config", &a.config.display().to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("PostgreSQL") && out.contains("schema version 1"),
        "{out}"
    );
    let (code, out, err) =
        stewardd_cmd(&["--config", &a.config.display().to_string(), "verify-store"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("store sound: PostgreSQL"), "{out}");
    let (code, _, err) = stewardd_cmd(&[
        "--config",
        &a.config.display().to_string(),
        "backup",
        "--out",
        "/tmp/never-written.redb",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("pg_dump"), "{err}");
}

#[test]
fn check_config_fails_naming_an_unreachable_database() {
    let dir = steward_testkit::process::temp_dir();
    let b = ConfigBuilder::single(dir.path()).postgres("postgresql:///steward?host=/nonexistent");
    let config = b.write();
    let (code, out, err) = stewardd_cmd(&["check-config", &config.display().to_string()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("postgres_url") && err.contains("/nonexistent"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_builder_daemon_on_postgres_keeps_its_data_in_the_database_not_a_file() {
    // The path the API suites take with STW_TEST_BACKEND=postgres: the builder's
    // [store] section, read by Daemon::open.
    let url = postgres::database();
    let dir = tempfile::tempdir().unwrap();
    let b = ConfigBuilder::single(dir.path()).postgres(&url);
    let d = steward_testkit::inproc::TestDaemon::start_config(dir.path(), &b).await;
    let (s, v, _) = d
        .client()
        .put(
            "/v1/tenants/contoso/contacts/default",
            &json!({"properties": {"emails": "alice@contoso.example"}}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A compaction over the socket is refused before anything is audited: there is no
    // file to rewrite.
    let r = d
        .client()
        .0
        .request(
            steward::client::Method::POST,
            "/v1/store/compact",
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(String::from_utf8_lossy(&r.body).contains("VACUUM"));
    d.stop().await;
    assert!(
        !dir.path().join("data").join("steward.redb").exists(),
        "no redb file beside a postgres store"
    );
    let out = postgres::shared().psql(
        db_of(&url),
        "SELECT count(*) FROM records WHERE tenant = 'contoso' AND name = 'default'",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // What a stopped daemon left behind is read from the database too.
    let audit = steward_testkit::inproc::stored_audit(dir.path(), "contoso");
    assert!(
        audit.iter().any(|r| r.operation_name == "contacts.write"),
        "{audit:?}"
    );
    assert!(
        !audit.iter().any(|r| r.operation_name == "store.compact"),
        "a refused compaction is not recorded as done: {audit:?}"
    );
}
