//! Integration tests of the read paths that alert lists and exports use, against a real redb
//! file in a temp dir: the time index's facets (severity and status beside each entry, so a
//! filtered page reads only the records it returns), `since` as the scan's lower bound, and
//! that every path removing a record removes its time-index entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use steward_daemon::store::TenantRead;
use steward_testkit::{rn, tid};

use redb::{ReadableDatabase, ReadableTable};
use steward::model::{AuditCaller, AuditStatus};
use steward_daemon::store::tables::Facets;
use steward_daemon::store::{
    AuditEntry, Doc, DocInput, Kind, Store, StoreOptions, TenantReader, TimeCursor, TimeQuery,
    WriteError, Writer, tables,
};
use steward_daemon::timers::retention;

fn entry(op: &str) -> AuditEntry {
    AuditEntry::named(
        AuditCaller {
            uid: 1000,
            user: "operator".into(),
            profile: "owner".into(),
        },
        op,
        AuditStatus::Succeeded,
    )
}

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

/// An alert body with these severity and status values (`None`: the field is absent).
fn body(severity: Option<serde_json::Value>, status: Option<&str>) -> String {
    let mut p = serde_json::Map::new();
    if let Some(s) = severity {
        p.insert("severity".into(), s);
    }
    if let Some(s) = status {
        p.insert("status".into(), s.into());
    }
    serde_json::json!({ "properties": p }).to_string()
}

/// An alert's document as the ingest builds it: time, and the facets lower-cased from the
/// body (`""` where absent or not a string).
fn alert_input(body: String, time: i64) -> DocInput {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let facet = |k: &str| v["properties"][k].as_str().unwrap_or("").to_lowercase();
    let (severity, status) = (facet("severity"), facet("status"));
    DocInput::new(body).time(time).facets(severity, status)
}

/// Stores `alerts` (name, time, body) in one audited job.
fn put_alerts(w: &Writer, tenant: &str, alerts: Vec<(String, i64, String)>) {
    w.write_blocking(&tid(tenant), move |txn| {
        for (name, time, body) in alerts {
            txn.put(Kind::Alert, &rn(&name), alert_input(body, time), None)?;
        }
        txn.audit(entry("alerts.ingest"));
        Ok::<_, WriteError>(())
    })
    .unwrap();
}

/// What the filters compare, read from the record itself (the old path).
fn field(doc: &Doc, k: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&doc.body_json).unwrap();
    v["properties"][k].as_str().unwrap_or("").to_lowercase()
}

/// Every page of a newest-first scan, `limit` at a time, followed through its cursors.
fn walk(
    r: &TenantReader,
    since: Option<i64>,
    limit: usize,
    facets: impl Fn(Facets<'_>) -> bool,
) -> Vec<String> {
    let mut names = Vec::new();
    let mut before: Option<TimeCursor> = None;
    loop {
        let page = r
            .list_by_time(
                Kind::Alert,
                TimeQuery {
                    cursor: before.as_ref(),
                    bound: since,
                    facets: Box::new(&facets),
                    ..TimeQuery::newest_first(limit)
                },
            )
            .unwrap();
        assert!(page.items.len() <= limit);
        names.extend(page.items.into_iter().map(|d| d.name));
        match page.next {
            Some(c) => before = Some(c),
            None => return names,
        }
    }
}

/// 120 alerts of every severity and status spelling the filters must treat alike, with
/// times that collide (so the cursor must resume on the name too).
fn mixed_alerts() -> Vec<(String, i64, String)> {
    let sev = [
        Some("High".into()),
        Some("HIGH".into()),
        Some("low".into()),
        Some("Medium".into()),
        Some(serde_json::json!(3)),
        None,
    ];
    let st = [Some("Active"), Some("resolved"), Some("ACTIVE"), None];
    (0..120)
        .map(|i| {
            (
                format!("a-{i:03}"),
                1_000_000 * (i as i64 / 3),
                body(sev[i % sev.len()].clone(), st[i % st.len()]),
            )
        })
        .collect()
}

#[test]
fn facet_filtered_pages_equal_filtering_the_full_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    put_alerts(&w, "contoso", mixed_alerts());
    // Another tenant's alerts never show up in this one's scan.
    put_alerts(
        &w,
        "fabrikam",
        vec![("f-1".into(), 5_000_000, body(Some("High".into()), None))],
    );
    let r = store.tenant(&tid("contoso"));
    let full = r
        .list_by_time(Kind::Alert, TimeQuery::newest_first(1000))
        .unwrap()
        .items;
    assert_eq!(full.len(), 120);
    assert!(full.windows(2).all(|p| p[0].time >= p[1].time));
    for (severity, status) in [
        (Some("high"), None),
        (Some("low"), None),
        (Some(""), None),
        (None, Some("active")),
        (None, Some("")),
        (Some("high"), Some("active")),
        (Some("critical"), None),
    ] {
        let want: Vec<String> = full
            .iter()
            .filter(|d| severity.is_none_or(|s| field(d, "severity") == s))
            .filter(|d| status.is_none_or(|s| field(d, "status") == s))
            .map(|d| d.name.clone())
            .collect();
        for limit in [1, 7, 1000] {
            let got = walk(&r, None, limit, |f| {
                severity.is_none_or(|s| f.severity == s) && status.is_none_or(|s| f.status == s)
            });
            assert_eq!(
                got, want,
                "severity={severity:?} status={status:?} limit={limit}"
            );
        }
    }
}

#[test]
fn since_bounds_the_scan_and_pages_stop_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    put_alerts(&w, "contoso", mixed_alerts());
    let r = store.tenant(&tid("contoso"));
    let full = r
        .list_by_time(Kind::Alert, TimeQuery::newest_first(1000))
        .unwrap()
        .items;
    for since in [
        i64::MIN,
        0,
        1,
        20_000_000,
        20_000_001,
        39_000_000,
        40_000_000,
    ] {
        let want: Vec<String> = full
            .iter()
            .filter(|d| d.time.unwrap() >= since)
            .map(|d| d.name.clone())
            .collect();
        for limit in [1, 3, 1000] {
            assert_eq!(
                walk(&r, Some(since), limit, |_| true),
                want,
                "since={since} limit={limit}"
            );
        }
    }
    // The last page before `since` says there is no more, rather than a cursor that would
    // lead to an empty page.
    let page = r
        .list_by_time(
            Kind::Alert,
            TimeQuery {
                bound: Some(39_000_000),
                ..TimeQuery::newest_first(3)
            },
        )
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.next.is_none(), "{:?}", page.next);
    // The doc filter never sees a record outside the range: `since` is not a filter.
    let mut seen = 0;
    let q = TimeQuery {
        bound: Some(30_000_000),
        filter: Box::new(|d| {
            assert!(d.time.unwrap() >= 30_000_000);
            seen += 1;
            true
        }),
        ..TimeQuery::newest_first(1000)
    };
    r.list_by_time(Kind::Alert, q).unwrap();
    assert_eq!(seen, 30);
}

/// Every `(tenant, name)` in the time index, with its facets.
fn time_index(path: &Path) -> Vec<(String, String, String, String)> {
    let db = redb::Database::open(path).unwrap();
    let rtx = db.begin_read().unwrap();
    let t = rtx.open_table(tables::TIME_INDEX).unwrap();
    t.iter()
        .unwrap()
        .map(|item| {
            let (k, v) = item.unwrap();
            let (tenant, _, _, name) = k.value();
            let (sev, st) = v.value();
            (tenant.into(), name.into(), sev.into(), st.into())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_that_removes_or_rewrites_a_record_keeps_the_time_index_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let w = store.writer();
    let now = jiff::Timestamp::now().as_second();
    w.write(&tid("contoso"), move |txn| {
        for (name, exp) in [
            ("expired", now - 10),
            ("deleted", now + 3600),
            ("kept", now + 3600),
            ("rewritten", now + 3600),
        ] {
            txn.put(
                Kind::Alert,
                &rn(name),
                alert_input(body(Some("High".into()), Some("Active")), 1_000).expires_at(exp),
                None,
            )?;
        }
        txn.audit(entry("alerts.ingest"));
        Ok::<_, WriteError>(())
    })
    .await
    .unwrap();
    // Retention removes through the same path as a data-subject erase or any delete
    // (`Staged::Delete`), and a put over a record replaces its entry.
    let purged = retention::purge_expired(&w, now, 100).await.unwrap();
    assert_eq!(purged.total(), 1);
    w.write(&tid("contoso"), |txn| {
        txn.delete(Kind::Alert, "deleted", None)?;
        txn.put(
            Kind::Alert,
            &rn("rewritten"),
            alert_input(body(Some("Low".into()), None), 2_000),
            None,
        )?;
        txn.audit(entry("test.change"));
        Ok::<_, WriteError>(())
    })
    .await
    .unwrap();
    let path = store.path().to_path_buf();
    drop(w);
    tokio::task::spawn_blocking(move || {
        store.close();
        assert_eq!(
            time_index(&path),
            [
                (
                    "contoso".into(),
                    "kept".into(),
                    "high".into(),
                    "active".into()
                ),
                (
                    "contoso".into(),
                    "rewritten".into(),
                    "low".into(),
                    String::new()
                ),
            ]
        );
    })
    .await
    .unwrap();
}
