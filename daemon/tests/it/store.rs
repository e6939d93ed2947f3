//! Integration tests of the store against a real redb file in a temp dir, grouped by concern:
//! tenant segregation, audit-with-every-change, the hash chain, codec versions, group commit,
//! personal data in the audit log, the subject and schedule indexes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use steward_daemon::store::TenantRead;
use steward_testkit::{rn, tid};

use redb::{ReadableDatabase, ReadableTable};
use steward::model::{AuditCaller, AuditStatus, SubjectKey, SubjectKind};
use steward_daemon::store::{
    AuditEntry, CodecError, DocInput, Kind, ScheduleAction, Store, StoreError, StoreOptions,
    TenantWrite, TimeCursor, TimeQuery, WriteError, Writer, tables,
};
use steward_daemon::timers::retention;

// ---------------------------------------------------------------- helpers

fn caller() -> AuditCaller {
    AuditCaller {
        uid: 1000,
        user: "operator".into(),
        profile: "owner".into(),
    }
}

/// A subject key of `kind` held at `field`.
fn key(kind: SubjectKind, raw: &str, field: &str) -> SubjectKey {
    SubjectKey::new(kind, raw, field).unwrap()
}

/// An email key as a contact holds it.
fn email(raw: &str) -> SubjectKey {
    key(SubjectKind::Email, raw, "properties.emails")
}

/// A phone key as a contact holds it.
fn phone(raw: &str) -> SubjectKey {
    key(SubjectKind::Phone, raw, "properties.phone")
}

fn entry(op: &str) -> AuditEntry {
    AuditEntry::named(caller(), op, AuditStatus::Succeeded)
}

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Puts one document with one audit record, in one job.
fn put(
    w: &Writer,
    tenant: &str,
    kind: Kind,
    name: &str,
    input: DocInput,
) -> Result<steward_daemon::store::Doc, WriteError> {
    let name = name.to_string();
    w.write_blocking(&tid(tenant), move |txn| {
        let doc = txn.put(kind, &rn(&name), input, None)?;
        txn.audit(entry("test.put").resource(format!("{kind}/{name}")));
        Ok(doc)
    })
}

/// Puts an empty contact `name` in contoso (with its audit record).
fn empty_contact(store: &Store, name: &str) {
    put(
        &store.writer(),
        "contoso",
        Kind::Contact,
        name,
        DocInput::new("{}"),
    )
    .unwrap();
}

fn audit_count(store: &Store, tenant: &str) -> usize {
    store
        .tenant(&tid(tenant))
        .audit(0, 100_000, &mut |_| true)
        .unwrap()
        .items
        .len()
}

fn all_docs(store: &Store, tenant: &str, kind: Kind) -> Vec<steward_daemon::store::Doc> {
    let r = store.tenant(&tid(tenant));
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10_000 {
        let page = r.list(kind, after.as_deref(), 3).unwrap();
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
    panic!("pagination of {tenant}/{kind} does not end");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------- 1. tenant segregation

#[test]
fn tenant_handles_never_reach_another_tenants_records() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let tenant = "[a-z0-9][a-z0-9-]{0,12}";
    let name = "[A-Za-z0-9][A-Za-z0-9._-]{0,12}";
    let strategy = (
        tenant,
        tenant,
        proptest::collection::btree_set(name, 1..5),
        0..Kind::ALL.len(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 32,
        ..Config::default()
    });
    runner
        .run(&strategy, |(a, b, names, kind_ix)| {
            prop_assume!(a != b);
            let kind = Kind::ALL[kind_ix];
            let marker = uuid::Uuid::new_v4().simple().to_string();
            let email = email(&format!("{marker}@contoso.com"));
            // Tenant A writes its records (with subjects, a time and a schedule) and audits them.
            let mut a_docs = Vec::new();
            for n in &names {
                let input = DocInput::new(format!(r#"{{"marker":"{marker}"}}"#))
                    .subject(&email)
                    .time(1_000)
                    .expires_at(now_secs() + 3600);
                let key = email.clone();
                let n2 = n.clone();
                let doc = w
                    .write_blocking(&tid(&a), move |txn| {
                        let d = txn.put(kind, &rn(&n2), input, None)?;
                        txn.audit(entry("a.put").subject(&key));
                        Ok::<_, WriteError>(d)
                    })
                    .unwrap();
                a_docs.push(doc);
            }
            // Reads through B see none of it.
            let rb = store.tenant(&tid(&b));
            for n in &names {
                let got = rb.get(kind, n).unwrap();
                prop_assert!(got.is_none_or(|d| !d.body_json.contains(&marker)));
            }
            prop_assert!(
                all_docs(&store, &b, kind)
                    .iter()
                    .all(|d| !d.body_json.contains(&marker))
            );
            let by_time = rb
                .list_by_time(kind, TimeQuery::newest_first(1000))
                .unwrap();
            prop_assert!(by_time.items.iter().all(|d| !d.body_json.contains(&marker)));
            // A cursor taken from A's names only positions inside B's own range.
            for n in &names {
                let page = rb.list(kind, Some(n), 1000).unwrap();
                prop_assert!(page.items.iter().all(|d| !d.body_json.contains(&marker)));
                let c = TimeCursor {
                    time_micros: 1_000,
                    name: n.clone(),
                };
                let page = rb
                    .list_by_time(
                        kind,
                        TimeQuery {
                            cursor: Some(&c),
                            ..TimeQuery::newest_first(1000)
                        },
                    )
                    .unwrap();
                prop_assert!(page.items.iter().all(|d| !d.body_json.contains(&marker)));
            }
            prop_assert!(rb.subjects(&email).unwrap().is_empty());
            prop_assert!(rb.audit_for_subject(&email).unwrap().is_empty());
            let mac = rb.hmac(&email);
            let b_audit = rb.audit(0, 100_000, &mut |_| true).unwrap();
            prop_assert!(b_audit.items.iter().all(|r| !r.subjects.contains(&mac)));
            // Writes through B cannot see, delete or overwrite A's records.
            let (names2, key) = (names.clone(), email.clone());
            let seen = w
                .write_blocking(&tid(&b), move |txn: &mut dyn TenantWrite| {
                    let mut seen = Vec::new();
                    for n in &names2 {
                        if let Some(d) = txn.get(kind, n)? {
                            seen.push(d.body_json);
                        }
                        let _ = txn.delete(kind, n, None);
                        txn.put(kind, &rn(n), DocInput::new(r#"{"from":"b"}"#), None)?;
                    }
                    seen.extend(txn.subjects(&key)?.into_iter().map(|h| h.name));
                    txn.audit(entry("b.put"));
                    Ok::<_, WriteError>(seen)
                })
                .unwrap();
            prop_assert!(seen.iter().all(|s| !s.contains(&marker)));
            let ra = store.tenant(&tid(&a));
            for d in &a_docs {
                let now = ra.get(kind, &d.name).unwrap();
                prop_assert_eq!(now.as_ref().map(|x| &x.etag), Some(&d.etag));
            }
            prop_assert_eq!(ra.subjects(&email).unwrap().len(), names.len());
            prop_assert!(ra.audit_verify().unwrap().ok);
            prop_assert!(rb.audit_verify().unwrap().ok);
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------- 2. one audit record per change

#[test]
fn every_change_leaves_exactly_one_audit_record_and_a_failed_job_neither() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let t = "contoso";
    let mut changes = 0;
    for i in 0..5 {
        put(&w, t, Kind::Contact, &format!("c{i}"), DocInput::new("{}")).unwrap();
        changes += 1;
    }
    for i in 0..2 {
        put(
            &w,
            t,
            Kind::Contact,
            &format!("c{i}"),
            DocInput::new(r#"{"v":2}"#),
        )
        .unwrap();
        changes += 1;
    }
    let before = w.stats().commits;
    w.write_blocking(&tid(t), |txn| {
        txn.delete(Kind::Contact, "c4", None)?;
        txn.audit(entry("contacts.delete"));
        Ok::<_, WriteError>(())
    })
    .unwrap();
    changes += 1;
    assert_eq!(
        w.stats().commits,
        before + 1,
        "change and audit record commit together"
    );
    assert_eq!(audit_count(&store, t), changes);

    // A job that stages a change and then fails leaves neither change nor audit record.
    let r = w.write_blocking(&tid(t), |txn| {
        txn.put(Kind::Contact, &rn("ghost"), DocInput::new("{}"), None)?;
        txn.audit(entry("contacts.write"));
        Err::<(), _>(WriteError::Invalid(
            "validation failed after staging".into(),
        ))
    });
    assert!(matches!(r, Err(WriteError::Invalid(_))));
    // A job that changes something without an audit record is refused whole.
    let r = w.write_blocking(&tid(t), |txn| {
        txn.put(Kind::Contact, &rn("ghost"), DocInput::new("{}"), None)?;
        Ok::<_, WriteError>(())
    });
    assert!(matches!(r, Err(WriteError::Unaudited)), "{r:?}");
    // A panicking job changes nothing and the writer survives.
    let r = w.write_blocking(&tid(t), |txn| {
        txn.put(Kind::Contact, &rn("ghost"), DocInput::new("{}"), None)?;
        txn.audit(entry("contacts.write"));
        if txn.tenant() == "contoso" {
            panic!("job bug");
        }
        Ok::<_, WriteError>(())
    });
    assert!(matches!(r, Err(WriteError::Panicked)), "{r:?}");
    assert!(
        store
            .tenant(&tid(t))
            .get(Kind::Contact, "ghost")
            .unwrap()
            .is_none()
    );
    assert_eq!(audit_count(&store, t), changes);

    // A denied attempt: an audit record and no change.
    w.write_blocking(&tid(t), |txn| {
        txn.audit(
            AuditEntry::named(caller(), "contacts.write", AuditStatus::Denied)
                .reason("needs contacts.write"),
        );
        Ok::<_, WriteError>(())
    })
    .unwrap();
    // A refused change audited as Failed: the failure record lands, the change does not.
    let r = w.write_blocking(&tid(t), |txn| {
        txn.audit_on_failure(AuditEntry::named(
            caller(),
            "contacts.write",
            AuditStatus::Failed,
        ));
        txn.put(
            Kind::Contact,
            &rn("c0"),
            DocInput::new("{}"),
            Some("stale-etag"),
        )?;
        txn.audit(entry("contacts.write"));
        Ok::<_, WriteError>(())
    });
    assert!(
        matches!(r, Err(WriteError::PreconditionFailed { .. })),
        "{r:?}"
    );
    let recs = store
        .tenant(&tid(t))
        .audit(0, 1000, &mut |_| true)
        .unwrap()
        .items;
    assert_eq!(recs.len(), changes + 2);
    assert_eq!(recs[changes].status, AuditStatus::Denied);
    assert_eq!(recs[changes + 1].status, AuditStatus::Failed);
    assert_eq!(all_docs(&store, t, Kind::Contact).len(), 4);
    assert!(store.tenant(&tid(t)).audit_verify().unwrap().ok);
}

// ---------------------------------------------------------------- 3, 4. the hash chain

fn audited_changes(w: &Writer, t: &str, n: usize) {
    for i in 0..n {
        put(w, t, Kind::JitPolicy, &format!("p{i}"), DocInput::new("{}")).unwrap();
    }
}

fn rewrite_raw(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let wtx = db.begin_write().unwrap();
    f(&wtx);
    wtx.commit().unwrap();
}

#[test]
fn altering_a_stored_audit_record_fails_verify_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    audited_changes(&store.writer(), "contoso", 5);
    audited_changes(&store.writer(), "fabrikam", 2);
    let report = store.tenant(&tid("contoso")).audit_verify().unwrap();
    assert!(
        report.ok && report.records == 5 && report.first_bad_seq.is_none(),
        "{report:?}"
    );
    assert_eq!(report.head.as_ref().unwrap().seq, 5);
    let path = store.path().to_path_buf();
    store.close();

    for offset in [10usize, 40, 90] {
        rewrite_raw(&path, |wtx| {
            let mut t = wtx.open_table(tables::AUDIT).unwrap();
            let mut v = t.get(("contoso", 3u64)).unwrap().unwrap().value().to_vec();
            let i = offset.min(v.len() - 1);
            v[i] ^= 0x01;
            t.insert(("contoso", 3u64), v.as_slice()).unwrap();
        });
        let store = open(dir.path());
        let report = store.tenant(&tid("contoso")).audit_verify().unwrap();
        assert!(!report.ok, "{report:?}");
        assert_eq!(report.first_bad_seq, Some(3));
        assert_eq!(report.records, 2);
        assert!(
            store.tenant(&tid("fabrikam")).audit_verify().unwrap().ok,
            "other tenants unaffected"
        );
        store.close();
        // Restore for the next offset.
        rewrite_raw(&path, |wtx| {
            let mut t = wtx.open_table(tables::AUDIT).unwrap();
            let mut v = t.get(("contoso", 3u64)).unwrap().unwrap().value().to_vec();
            let i = offset.min(v.len() - 1);
            v[i] ^= 0x01;
            t.insert(("contoso", 3u64), v.as_slice()).unwrap();
        });
    }
    // Cutting off the newest record is detected against the head.
    rewrite_raw(&path, |wtx| {
        wtx.open_table(tables::AUDIT)
            .unwrap()
            .remove(("contoso", 5u64))
            .unwrap();
    });
    let store = open(dir.path());
    let report = store.tenant(&tid("contoso")).audit_verify().unwrap();
    assert_eq!(
        (report.ok, report.first_bad_seq),
        (false, Some(5)),
        "{report:?}"
    );
}

#[test]
fn purging_oldest_audit_records_keeps_the_chain_verifiable_from_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    audited_changes(&w, "contoso", 6);
    let r = store.tenant(&tid("contoso"));
    let recs = r.audit(0, 100, &mut |_| true).unwrap().items;
    let cut = recs[3].at.as_microsecond(); // records 1..=3 are older
    assert!(recs[2].at.as_microsecond() < cut);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = rt
        .block_on(retention::purge_audit(&w, &tid("contoso"), cut, 100))
        .unwrap();
    assert_eq!(n, 3);
    let report = r.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    let anchor = report.anchor.clone().unwrap();
    assert_eq!(
        (anchor.seq, anchor.hash.as_str()),
        (3, recs[2].hash.as_str())
    );
    assert_eq!(report.records, 4, "4, 5, 6 and the audit.purge record");
    assert_eq!(report.head.as_ref().unwrap().seq, 7);
    let left = r.audit(0, 100, &mut |_| true).unwrap().items;
    assert_eq!(left.first().unwrap().seq, 4);
    assert_eq!(left.last().unwrap().operation_name, "audit.purge");
    assert_eq!(left.last().unwrap().details.counts.get("records"), Some(&3));
    // Purging everything still leaves a verifiable (empty-but-anchored) chain.
    let n = rt
        .block_on(retention::purge_audit(&w, &tid("contoso"), i64::MAX, 100))
        .unwrap();
    assert_eq!(n, 4);
    let report = r.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.anchor.unwrap().seq, 7);
    // Tampering after the anchor is still caught.
    let path = store.path().to_path_buf();
    drop(r);
    store.close();
    rewrite_raw(&path, |wtx| {
        let mut t = wtx.open_table(tables::AUDIT).unwrap();
        let mut v = t.get(("contoso", 8u64)).unwrap().unwrap().value().to_vec();
        let last = v.len() - 1;
        v[last] ^= 0x20;
        t.insert(("contoso", 8u64), v.as_slice()).unwrap();
    });
    let store = open(dir.path());
    assert_eq!(
        store
            .tenant(&tid("contoso"))
            .audit_verify()
            .unwrap()
            .first_bad_seq,
        Some(8)
    );
}

// ---------------------------------------------------------------- 5. format versions, damaged files

#[test]
fn unknown_format_version_is_a_clear_error_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    empty_contact(&store, "default");
    empty_contact(&store, "other");
    let path = store.path().to_path_buf();
    store.close();
    rewrite_raw(&path, |wtx| {
        let mut t = wtx.open_table(tables::RECORDS).unwrap();
        let k = ("contoso", Kind::Contact.as_u8(), "default");
        let mut v = t.get(k).unwrap().unwrap().value().to_vec();
        v[0] = 0x7f;
        t.insert(k, v.as_slice()).unwrap();
    });
    let store = open(dir.path());
    let r = store.tenant(&tid("contoso"));
    let err = r.get(Kind::Contact, "default").unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Codec {
                source: CodecError::UnknownVersion { found: 0x7f },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 127"), "{err}");
    assert!(r.list(Kind::Contact, None, 10).is_err());
    assert!(
        r.get(Kind::Contact, "other").unwrap().is_some(),
        "other records still read"
    );
    // A job that touches it fails alone; others still commit.
    let bad = store.writer().write_blocking(&tid("contoso"), |txn| {
        txn.put(Kind::Contact, &rn("default"), DocInput::new("{}"), None)?;
        txn.audit(entry("contacts.write"));
        Ok::<_, WriteError>(())
    });
    assert!(
        matches!(bad, Err(WriteError::Store(StoreError::Codec { .. }))),
        "{bad:?}"
    );
    empty_contact(&store, "third");
}

#[test]
fn second_open_and_damaged_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    empty_contact(&store, "default");
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("another stewardd"), "{err}");
    let path = store.path().to_path_buf();
    store.close();
    // Closed: it opens again, with the same data and HMAC key.
    let store = open(dir.path());
    let k = email("alice@contoso.com");
    let mac = store.tenant(&tid("contoso")).hmac(&k);
    store.close();
    let store = open(dir.path());
    assert_eq!(
        store.tenant(&tid("contoso")).hmac(&k),
        mac,
        "the installation key is generated once"
    );
    assert!(
        store
            .tenant(&tid("contoso"))
            .get(Kind::Contact, "default")
            .unwrap()
            .is_some()
    );
    store.close();

    let full = std::fs::read(&path).unwrap();
    for cut in [full.len() / 2, 100, 7] {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(steward_daemon::store::DB_FILE), &full[..cut]).unwrap();
        let r = Store::open(d.path(), StoreOptions::default());
        assert!(r.is_err(), "truncated to {cut} bytes opened");
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join(steward_daemon::store::DB_FILE),
        vec![0x5au8; 8192],
    )
    .unwrap();
    let err = Store::open(d.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted(_)), "{err:?}");
}

// ---------------------------------------------------------------- 6, 7. group commit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_writers_are_acknowledged_and_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                w.write(&tid("contoso"), move |txn: &mut dyn TenantWrite| {
                    let d = txn.put(
                        Kind::Alert,
                        &rn(&format!("a{i:02}")),
                        DocInput::new("{}").time(i),
                        None,
                    )?;
                    txn.audit(entry("alerts.ingest"));
                    Ok::<_, WriteError>(d.etag)
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stats = w.stats();
    assert_eq!(stats.jobs_committed, 64);
    assert!(stats.commits < 64, "group commit: {stats:?}");
    drop(w);
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        store.close();
        let store = open(&path);
        let r = store.tenant(&tid("contoso"));
        assert_eq!(all_docs(&store, "contoso", Kind::Alert).len(), 64);
        let newest = r
            .list_by_time(Kind::Alert, TimeQuery::newest_first(5))
            .unwrap();
        let names: Vec<_> = newest.items.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a63", "a62", "a61", "a60", "a59"]);
        let next = r
            .list_by_time(
                Kind::Alert,
                TimeQuery {
                    cursor: newest.next.as_ref(),
                    ..TimeQuery::newest_first(2)
                },
            )
            .unwrap();
        assert_eq!(next.items[0].name, "a58");
        let report = r.audit_verify().unwrap();
        assert!(report.ok && report.records == 64, "{report:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_write_in_a_group_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let etag = w
        .write(&tid("contoso"), |txn: &mut dyn TenantWrite| {
            let d = txn.put(
                Kind::Contact,
                &rn("default"),
                DocInput::new(r#"{"v":1}"#),
                None,
            )?;
            txn.audit(entry("contacts.write"));
            Ok::<_, WriteError>(d.etag)
        })
        .await
        .unwrap();
    // Hold the writer inside a job so the next three queue up and run as one group.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = tokio::spawn({
        let w = w.clone();
        async move {
            w.write(&tid("contoso"), move |_txn: &mut dyn TenantWrite| {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, WriteError>(())
            })
            .await
        }
    });
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    let before = w.stats();
    let job = |name: &'static str, if_match: Option<String>| {
        let w = w.clone();
        tokio::spawn(async move {
            w.write(&tid("contoso"), move |txn: &mut dyn TenantWrite| {
                let d = txn.put(
                    Kind::Contact,
                    &rn(name),
                    DocInput::new(r#"{"v":2}"#),
                    if_match.as_deref(),
                )?;
                txn.audit(entry("contacts.write"));
                Ok::<_, WriteError>(d.etag)
            })
            .await
        })
    };
    let good1 = job("first", None);
    let bad = job("default", Some("not-the-etag".into()));
    let good2 = job("second", None);
    while w.queued() < 3 {
        tokio::task::yield_now().await;
    }
    release_tx.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    good1.await.unwrap().unwrap();
    good2.await.unwrap().unwrap();
    let err = bad.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::PreconditionFailed {
                kind: Kind::Contact,
                ..
            }
        ),
        "{err:?}"
    );
    let after = w.stats();
    assert_eq!(
        after.commits - before.commits,
        2,
        "blocker's group, then one group of three"
    );
    assert_eq!(after.jobs_failed - before.jobs_failed, 1);
    let r = store.tenant(&tid("contoso"));
    let default = r.get(Kind::Contact, "default").unwrap().unwrap();
    assert_eq!(
        (default.etag.as_str(), default.body_json.as_str()),
        (etag.as_str(), r#"{"v":1}"#)
    );
    assert!(r.get(Kind::Contact, "first").unwrap().is_some());
    assert!(r.get(Kind::Contact, "second").unwrap().is_some());
    // If-Match with the current etag and with `*` both succeed; `*` on a missing record fails.
    let ok = w
        .write(&tid("contoso"), move |txn: &mut dyn TenantWrite| {
            txn.put(
                Kind::Contact,
                &rn("default"),
                DocInput::new("{}"),
                Some(&etag),
            )?;
            txn.put(
                Kind::Contact,
                &rn("default"),
                DocInput::new("{}"),
                Some("*"),
            )?;
            txn.audit(entry("contacts.write"));
            Ok::<_, WriteError>(())
        })
        .await;
    ok.unwrap();
    let missing = w
        .write(&tid("contoso"), |txn: &mut dyn TenantWrite| {
            txn.delete(Kind::Contact, "nobody", Some("*"))?;
            txn.audit(entry("contacts.delete"));
            Ok::<_, WriteError>(())
        })
        .await;
    assert!(
        matches!(missing, Err(WriteError::NotFound { .. })),
        "{missing:?}"
    );
}

// ---------------------------------------------------------------- 8. no personal values in the audit log

const EMAIL: &str = "alice@contoso.com";
const PHONE: &str = "+12142754038";

fn personal_needles() -> [&'static [u8]; 4] {
    [
        EMAIL.as_bytes(),
        PHONE.as_bytes(),
        b"12142754038",
        b"(214)275-4038",
    ]
}

#[test]
fn audit_log_never_holds_an_email_or_phone_in_clear() {
    let email = email(EMAIL);
    let phone = phone("+1 (214) 275-4038");
    assert_eq!(phone, self::phone(PHONE), "phones match by digits");

    // Phase 1: only audit records ever concern Alice (denied attempts, a refused change):
    // the whole file must not contain her address or number.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    for status in [AuditStatus::Denied, AuditStatus::Failed] {
        let (e, p) = (email.clone(), phone.clone());
        w.write_blocking(&tid("contoso"), move |txn| {
            txn.audit(
                AuditEntry::named(caller(), "dsr.manage", status)
                    .subject(&e)
                    .subject(&p)
                    .field("properties.emails")
                    .field("properties.phone"),
            );
            Ok::<_, WriteError>(())
        })
        .unwrap();
    }
    let body = format!(r#"{{"properties":{{"emails":"{EMAIL}","phone":"{PHONE}"}}}}"#);
    let (b, e) = (body.clone(), email.clone());
    let refused = w.write_blocking(&tid("contoso"), move |txn| {
        txn.put(
            Kind::Contact,
            &rn("default"),
            DocInput::new(b).subject(&e),
            None,
        )?;
        Err::<(), _>(WriteError::Invalid("refused".into()))
    });
    assert!(refused.is_err());
    let found = store
        .tenant(&tid("contoso"))
        .audit_for_subject(&email)
        .unwrap();
    assert_eq!(found.len(), 2, "the HMAC finds what touched Alice");
    let path = store.path().to_path_buf();
    drop(w);
    store.close();
    let raw = std::fs::read(&path).unwrap();
    for n in personal_needles() {
        assert!(
            !contains(&raw, n),
            "file holds {:?} in clear",
            String::from_utf8_lossy(n)
        );
    }

    // Phase 2: documents hold Alice (they must), the audit tables must not.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    for name in ["default", "backup"] {
        let input = DocInput::new(body.clone()).subject(&email).subject(&phone);
        let (e, p) = (email.clone(), phone.clone());
        w.write_blocking(&tid("contoso"), move |txn| {
            txn.put(Kind::Contact, &rn(name), input, None)?;
            txn.audit(
                entry("contacts.write")
                    .resource(format!("contacts/{name}"))
                    .field("properties.emails")
                    .field("properties.phone")
                    .subject(&e)
                    .subject(&p),
            );
            Ok::<_, WriteError>(())
        })
        .unwrap();
    }
    w.write_blocking(&tid("contoso"), |txn| {
        txn.delete(Kind::Contact, "backup", None)?;
        txn.audit(entry("contacts.delete").subject(&self::email(EMAIL)));
        Ok::<_, WriteError>(())
    })
    .unwrap();
    assert_eq!(
        store
            .tenant(&tid("contoso"))
            .audit_for_subject(&phone)
            .unwrap()
            .len(),
        2
    );
    let path = store.path().to_path_buf();
    drop(w);
    store.close();
    let db = redb::Database::open(&path).unwrap();
    let rtx = db.begin_read().unwrap();
    let mut audit_bytes = Vec::new();
    for item in rtx.open_table(tables::AUDIT).unwrap().iter().unwrap() {
        let (_, v) = item.unwrap();
        audit_bytes.extend_from_slice(v.value());
    }
    for item in rtx.open_table(tables::AUDIT_HEAD).unwrap().iter().unwrap() {
        let (_, v) = item.unwrap();
        audit_bytes.extend_from_slice(v.value());
    }
    for item in rtx
        .open_table(tables::AUDIT_SUBJECTS)
        .unwrap()
        .iter()
        .unwrap()
    {
        let (k, _) = item.unwrap();
        let (t, h, _) = k.value();
        audit_bytes.extend_from_slice(t.as_bytes());
        audit_bytes.extend_from_slice(h.as_bytes());
    }
    assert!(audit_bytes.len() > 300, "the audit tables were read");
    assert!(
        contains(&audit_bytes, b"properties.emails"),
        "field names are kept"
    );
    for n in personal_needles() {
        assert!(
            !contains(&audit_bytes, n),
            "audit holds {:?} in clear",
            String::from_utf8_lossy(n)
        );
    }
}

// ---------------------------------------------------------------- 9. subject and schedule indexes

#[test]
fn subject_index_finds_documents_by_each_key_and_forgets_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let alice = email("Alice@Contoso.com");
    let phone = phone("(214)275-4038");
    let ip = key(SubjectKind::Ip, "10.0.0.1", "requestor.ip");
    let bob = email("bob@contoso.com");
    let input = DocInput::new("{}").subject(&alice).subject(&phone);
    put(&w, "contoso", Kind::Contact, "default", input).unwrap();
    put(
        &w,
        "contoso",
        Kind::JitRequest,
        "r1",
        DocInput::new("{}").subject(&ip),
    )
    .unwrap();
    let r = store.tenant(&tid("contoso"));
    let hits = r.subjects(&email("alice@contoso.COM")).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].kind, hits[0].name.as_str(), hits[0].field.as_str()),
        (Kind::Contact, "default", "properties.emails")
    );
    assert_eq!(
        r.subjects(&self::phone("214.275.4038")).unwrap()[0].field,
        "properties.phone"
    );
    assert_eq!(r.subjects(&ip).unwrap()[0].kind, Kind::JitRequest);
    // A key that is a prefix of another finds nothing extra.
    assert!(r.subjects(&email("alice@contoso.co")).unwrap().is_empty());
    // Overwrite: the old keys are forgotten, the new one found.
    put(
        &w,
        "contoso",
        Kind::Contact,
        "default",
        DocInput::new("{}").subject(&bob),
    )
    .unwrap();
    assert!(r.subjects(&alice).unwrap().is_empty());
    assert!(r.subjects(&phone).unwrap().is_empty());
    assert_eq!(r.subjects(&bob).unwrap().len(), 1);
    // Delete: forgotten.
    w.write_blocking(&tid("contoso"), |txn| {
        txn.delete(Kind::Contact, "default", None)?;
        txn.audit(entry("contacts.delete"));
        Ok::<_, WriteError>(())
    })
    .unwrap();
    assert!(r.subjects(&bob).unwrap().is_empty());
    assert_eq!(r.subjects(&ip).unwrap().len(), 1);
}

/// Several changes to one name in one job: each sees the one before, and the index holds
/// exactly the last one's keys (a put after a put unindexes the first; a put after a
/// delete is new). `put_new` refuses a taken name, also one taken earlier in the job.
#[test]
fn changes_to_one_name_within_a_job_index_only_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let (a, b, c, d) = (
        email("a@contoso.com"),
        email("b@contoso.com"),
        email("c@contoso.com"),
        email("d@contoso.com"),
    );
    put(
        &w,
        "contoso",
        Kind::Contact,
        "x",
        DocInput::new("{}").subject(&a),
    )
    .unwrap();
    let e = email("e@contoso.com");
    let (a2, b2, c2, d2, e2) = (a.clone(), b.clone(), c.clone(), d.clone(), e.clone());
    let stored = w
        .write_blocking(&tid("contoso"), move |txn| {
            txn.put(
                Kind::Contact,
                &rn("x"),
                DocInput::new("{\"v\":1}").subject(&b2),
                None,
            )?;
            assert_eq!(txn.get(Kind::Contact, "x")?.unwrap().body_json, "{\"v\":1}");
            txn.delete(Kind::Contact, "x", None)?;
            assert!(!txn.exists(Kind::Contact, "x")?);
            assert!(txn.put_new(
                Kind::Contact,
                &rn("x"),
                DocInput::new("{\"v\":2}").subject(&c2)
            )?);
            assert!(!txn.put_new(Kind::Contact, &rn("x"), DocInput::new("{}").subject(&a2))?);
            assert!(txn.put_new(Kind::Contact, &rn("y"), DocInput::new("{}").subject(&d2))?);
            assert!(!txn.put_new(Kind::Contact, &rn("y"), DocInput::new("{}"))?);
            txn.put(
                Kind::Contact,
                &rn("y"),
                DocInput::new("{}").subject(&e2),
                None,
            )?;
            txn.audit(entry("test.put"));
            Ok::<_, WriteError>(txn.get(Kind::Contact, "x")?.unwrap())
        })
        .unwrap();
    let r = store.tenant(&tid("contoso"));
    assert_eq!(stored.body_json, "{\"v\":2}");
    assert_eq!(
        r.get(Kind::Contact, "x").unwrap().unwrap().body_json,
        "{\"v\":2}"
    );
    assert!(
        r.subjects(&a).unwrap().is_empty(),
        "a put-over record's key stayed"
    );
    assert!(
        r.subjects(&b).unwrap().is_empty(),
        "a deleted record's key stayed"
    );
    assert_eq!(r.subjects(&c).unwrap().len(), 1);
    assert!(
        r.subjects(&d).unwrap().is_empty(),
        "a put-over record's key stayed"
    );
    assert_eq!(r.subjects(&e).unwrap().len(), 1);
    assert_eq!(all_docs(&store, "contoso", Kind::Contact).len(), 2);
    // put_new of a name stored by an earlier job.
    let again = w
        .write_blocking(&tid("contoso"), |txn| {
            let stored = txn.put_new(Kind::Contact, &rn("x"), DocInput::new("{}"))?;
            txn.audit(entry("test.put"));
            Ok::<_, WriteError>(stored)
        })
        .unwrap();
    assert!(!again);
    assert_eq!(
        r.get(Kind::Contact, "x").unwrap().unwrap().body_json,
        "{\"v\":2}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_index_yields_due_records_and_purge_removes_them_with_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let mut events = w.subscribe();
    let now = now_secs();
    let alice = key(SubjectKind::Email, "alice@contoso.com", "entities.upn");
    let docs = [
        ("contoso", Kind::Alert, "old-alert", Some(now - 10), Some(5)),
        (
            "contoso",
            Kind::Alert,
            "new-alert",
            Some(now + 3600),
            Some(6),
        ),
        ("fabrikam", Kind::JitRequest, "old-req", Some(now - 5), None),
        ("fabrikam", Kind::Contact, "kept", None, None),
    ];
    for (t, kind, name, exp, time) in docs {
        let mut input = DocInput::new("{}").subject(&alice);
        if let Some(e) = exp {
            input = input.expires_at(e);
        }
        if let Some(tm) = time {
            input = input.time(tm);
        }
        let w = w.clone();
        w.write(&tid(t), move |txn: &mut dyn TenantWrite| {
            txn.put(kind, &rn(name), input, None)?;
            txn.audit(entry("test.put"));
            Ok::<_, WriteError>(())
        })
        .await
        .unwrap();
    }
    // A JIT end is its own schedule: due, but never purged.
    w.write(&tid("fabrikam"), move |txn: &mut dyn TenantWrite| {
        txn.put(
            Kind::JitRequest,
            &rn("active"),
            DocInput::new("{}").schedule(ScheduleAction::End, now - 1),
            None,
        )?;
        txn.audit(entry("jit.request"));
        Ok::<_, WriteError>(())
    })
    .await
    .unwrap();
    let due = store.due(ScheduleAction::Purge, now, 100).unwrap();
    let due_names: BTreeSet<_> = due
        .iter()
        .map(|d| (d.tenant.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(
        due_names,
        BTreeSet::from([("contoso", "old-alert"), ("fabrikam", "old-req")])
    );
    assert_eq!(
        store.due(ScheduleAction::End, now, 100).unwrap()[0].name,
        "active"
    );
    assert_eq!(
        store.next_due(ScheduleAction::Purge).unwrap(),
        Some(now - 10)
    );

    // Bounded batches: one at a time, `more` says to come back.
    let first = retention::purge_expired(&w, now, 1).await.unwrap();
    assert_eq!((first.total(), first.more), (1, true));
    let second = retention::purge_expired(&w, now, 1).await.unwrap();
    assert_eq!(second.total(), 1);
    let third = retention::purge_expired(&w, now, 1).await.unwrap();
    assert_eq!((third.total(), third.more), (0, false));

    let c = store.tenant(&tid("contoso"));
    let f = store.tenant(&tid("fabrikam"));
    assert!(c.get(Kind::Alert, "old-alert").unwrap().is_none());
    assert!(f.get(Kind::JitRequest, "old-req").unwrap().is_none());
    assert!(c.get(Kind::Alert, "new-alert").unwrap().is_some());
    assert!(f.get(Kind::JitRequest, "active").unwrap().is_some());
    assert!(
        store
            .due(ScheduleAction::Purge, now, 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due(ScheduleAction::Purge).unwrap(),
        Some(now + 3600)
    );
    assert_eq!(
        c.subjects(&alice).unwrap().len(),
        1,
        "only new-alert remains indexed"
    );
    assert_eq!(
        f.subjects(&alice).unwrap().len(),
        1,
        "only kept remains indexed"
    );
    let by_time = c
        .list_by_time(Kind::Alert, TimeQuery::newest_first(10))
        .unwrap();
    assert_eq!(
        by_time
            .items
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["new-alert"]
    );
    // One retention.purge record per tenant per batch, with counts.
    let purge_recs = c
        .audit(0, 100, &mut |r| r.operation_name == "retention.purge")
        .unwrap()
        .items;
    assert_eq!(purge_recs.len(), 1);
    assert_eq!(purge_recs[0].details.counts.get("alert"), Some(&1));
    assert!(c.audit_verify().unwrap().ok && f.audit_verify().unwrap().ok);
    let mut purged = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if ev.action == "purged" {
            purged.push((ev.tenant, ev.name));
        }
    }
    assert_eq!(purged.len(), 2, "{purged:?}");

    // Raw check: no index entry points at a purged record.
    drop((c, f));
    let path = store.path().to_path_buf();
    drop(w);
    tokio::task::spawn_blocking(move || {
        store.close();
        let db = redb::Database::open(&path).unwrap();
        let rtx = db.begin_read().unwrap();
        for item in rtx.open_table(tables::SCHEDULE).unwrap().iter().unwrap() {
            let (k, _) = item.unwrap();
            assert!(!["old-alert", "old-req"].contains(&k.value().4));
        }
        for item in rtx.open_table(tables::TIME_INDEX).unwrap().iter().unwrap() {
            let (k, _) = item.unwrap();
            assert_ne!(k.value().3, "old-alert");
        }
        for item in rtx.open_table(tables::SUBJECTS).unwrap().iter().unwrap() {
            let (k, _) = item.unwrap();
            assert!(!["old-alert", "old-req"].contains(&k.value().3));
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_events_follow_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let mut rx = w.subscribe();
    w.write(&tid("contoso"), |txn: &mut dyn TenantWrite| {
        txn.put(Kind::JitRequest, &rn("r1"), DocInput::new("{}"), None)?;
        txn.put(Kind::JitRequest, &rn("r1"), DocInput::new("{}"), None)?;
        txn.emit(Kind::JitRequest, "r1", "revoked");
        txn.audit(entry("jit.revoke"));
        Ok::<_, WriteError>(())
    })
    .await
    .unwrap();
    let ev = rx.try_recv().unwrap();
    assert_eq!(
        (
            ev.tenant.as_str(),
            ev.kind,
            ev.name.as_str(),
            ev.action.as_str()
        ),
        ("contoso", Kind::JitRequest, "r1", "revoked")
    );
    assert!(rx.try_recv().is_err(), "one event per record per job");
    // A failed job sends nothing.
    let _ = w
        .write(&tid("contoso"), |txn: &mut dyn TenantWrite| {
            txn.put(Kind::JitRequest, &rn("r2"), DocInput::new("{}"), None)?;
            Ok::<_, WriteError>(())
        })
        .await;
    assert!(rx.try_recv().is_err());
    drop(w);
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
}

// ---------------------------------------------------------------- full disk

/// Unmounts a tmpfs on drop (lazily, so a still-open file never leaves it behind).
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// After ENOSPC redb latches its instance ("Previous I/O error"); the store must reopen it:
/// later writes are `StorageFull` (not a generic database error) while full, readers — even
/// handles taken before the failure — keep working, and writes succeed again once space is
/// freed, with nothing acknowledged lost and nothing refused stored.
#[test]
fn full_disk_is_storage_full_and_writes_resume_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        println!("skipped: cannot mount a small tmpfs here");
        return;
    }
    let _mount = Tmpfs(mnt.clone());
    let store = open(&mnt.join("data"));
    let w = store.writer();
    let reader = store.tenant(&tid("t"));
    std::fs::write(mnt.join("filler"), vec![0u8; 1024 * 1024]).unwrap();
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(64 * 1024));
    let mut acked = BTreeSet::new();
    let mut refused = 0;
    for i in 0..200 {
        let name = format!("d{i}");
        match put(&w, "t", Kind::Contact, &name, DocInput::new(body.clone())) {
            Ok(_) => {
                assert_eq!(refused, 0, "a write succeeded on a full disk");
                acked.insert(name);
            }
            Err(WriteError::Store(StoreError::StorageFull)) => {
                refused += 1;
                // Reads keep answering, through a handle taken before the failure too.
                assert_eq!(all_docs(&store, "t", Kind::Contact).len(), acked.len());
                assert!(reader.get(Kind::Contact, "d0").unwrap().is_some());
                if refused == 4 {
                    break;
                }
            }
            Err(e) => panic!("write {i} on a full disk: {e:?}"),
        }
    }
    assert_eq!(refused, 4, "the disk never filled up");
    assert!(reader.audit_verify().unwrap().ok);
    std::fs::remove_file(mnt.join("filler")).unwrap();
    put(&w, "t", Kind::Contact, "after", DocInput::new(body.clone())).unwrap();
    acked.insert("after".into());
    let names: BTreeSet<String> = all_docs(&store, "t", Kind::Contact)
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        names, acked,
        "lost an acknowledged write or kept a refused one"
    );
    let report = reader.audit_verify().unwrap();
    assert!(report.ok);
    assert_eq!(report.records, acked.len() as u64);
    drop(reader);
    drop(store);
}
