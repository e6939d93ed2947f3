//! Issue 19, defect 10 and the daemon's orders: the `steward` tables as a person reads them
//! (fitting the terminal, times to the second in the chosen zone, `subjects` as a table,
//! the JIT request's policy) and `?orderby=` paged by the daemon, against a real daemon.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use steward_testkit::config::ConfigBuilder;
use steward_testkit::inproc::Served;
use steward_testkit::me;

fn daemon() -> Served {
    Served::start(|dir| {
        ConfigBuilder::new(dir)
            .tenant("contoso", "Contoso")
            .tenant("fabrikam", "Fabrikam")
            .grant(&me(), "contoso", "tenant-admin")
            .grant(&me(), "contoso", "ingest")
            .grant(&me(), "fabrikam", "tenant-admin")
    })
}

/// `steward` on the daemon in tenant contoso, with `env` set (and nothing else steering).
fn run(d: &Served, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_steward"));
    c.env("STEWARD_SOCKET", &d.socket)
        .env("STEWARD_TENANT", "contoso")
        .env_remove("STEWARD_ROLE")
        .env_remove("STEWARD_TZ")
        .env_remove("COLUMNS")
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ingest(d: &Served, alerts: &[Value]) {
    let text: String = alerts.iter().map(|a| format!("{a}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("alerts.ndjson");
    std::fs::write(&f, text).unwrap();
    ok(&run(
        d,
        &[],
        &["--as", "ingest", "alerts", "ingest", f.to_str().unwrap()],
        None,
    ));
}

/// A table fits `COLUMNS` (the widest column gives way, cut cells end in `…`), `-o json`
/// keeps the whole value, and a pipe without `COLUMNS` is not cut.
#[test]
fn tables_fit_the_terminal_and_json_keeps_whole_values() {
    let d = daemon();
    let emails: Vec<String> = (0..8).map(|i| format!("person{i}@contoso.com")).collect();
    let emails = emails.join(";");
    let body =
        json!({"properties": {"emails": emails, "phone": "(214)275-4038", "isEnabled": true}});
    ok(&run(
        &d,
        &[],
        &["contacts", "put", "default", "-"],
        Some(&body.to_string()),
    ));
    let table = ok(&run(&d, &[("COLUMNS", "80")], &["contacts", "list"], None));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    for line in &lines {
        assert!(line.chars().count() <= 80, "{line:?} is wider than 80");
    }
    assert!(lines[0].starts_with("NAME     EMAILS"), "{table}");
    assert!(
        lines[1].contains("…  (214)275-4038  yes"),
        "the emails give way, the short columns stay whole: {table}"
    );
    let json: Value = serde_json::from_str(&ok(&run(
        &d,
        &[("COLUMNS", "80")],
        &["contacts", "list", "-o", "json"],
        None,
    )))
    .unwrap();
    assert_eq!(json["value"][0]["properties"]["emails"], emails.as_str());
    let piped = ok(&run(&d, &[], &["contacts", "list"], None));
    assert!(piped.contains(&emails), "{piped}");
}

/// Times in tables are to the second with the zone's name: UTC with `STEWARD_TZ=UTC`,
/// any IANA zone by name; JSON keeps the stored time; a zone that does not exist is a
/// usage error naming it.
#[test]
fn table_times_are_to_the_second_in_the_chosen_zone() {
    let d = daemon();
    ingest(
        &d,
        &[
            json!({"name": "a1", "properties": {"alertDisplayName": "Suspicious login",
        "severity": "High", "status": "Active", "timeGeneratedUtc": "2026-11-21T05:18:48.6859684Z"}}),
        ],
    );
    let utc = ok(&run(
        &d,
        &[("STEWARD_TZ", "UTC")],
        &["alerts", "list"],
        None,
    ));
    assert!(utc.contains("2026-11-21 05:18:48 UTC  High"), "{utc}");
    assert!(!utc.contains(".685"), "no fractions of a second: {utc}");
    let tokyo = ok(&run(
        &d,
        &[("STEWARD_TZ", "Asia/Tokyo")],
        &["alerts", "list"],
        None,
    ));
    assert!(tokyo.contains("2026-11-21 14:18:48 JST  High"), "{tokyo}");
    // TZ is the system zone's fallback when STEWARD_TZ is unset.
    let tz = ok(&run(
        &d,
        &[("TZ", "Europe/Berlin")],
        &["alerts", "list"],
        None,
    ));
    assert!(tz.contains("2026-11-21 06:18:48 CET"), "{tz}");
    let json = ok(&run(
        &d,
        &[("STEWARD_TZ", "Asia/Tokyo")],
        &["alerts", "list", "-o", "json"],
        None,
    ));
    assert!(json.contains("2026-11-21T05:18:48.6859684Z"), "{json}");
    let bad = run(
        &d,
        &[("STEWARD_TZ", "Mars/Olympus")],
        &["alerts", "list"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("STEWARD_TZ") && err.contains("Mars/Olympus"),
        "{err}"
    );
    assert!(bad.stdout.is_empty());
}

/// `subjects` is a table, one row per record naming the person, grouped by kind; the
/// JIT requests table names each request's policy.
#[test]
fn subjects_are_a_table_and_requests_name_their_policy() {
    let d = daemon();
    let contact = json!({"properties": {"emails": "alice@contoso.com", "isEnabled": true}});
    for name in ["default", "backup"] {
        ok(&run(
            &d,
            &[],
            &["contacts", "put", name, "-"],
            Some(&contact.to_string()),
        ));
    }
    let out = ok(&run(
        &d,
        &[],
        &["subjects", "--email", "alice@contoso.com"],
        None,
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["KIND", "ID", "FIELD", "MATCHED"],
        "{out}"
    );
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(kinds, ["contacts", "contacts"], "{out}");
    assert_eq!(rows[0][1], "backup", "rows in id order: {out}");
    assert_eq!(rows[1][1], "default", "{out}");
    assert_eq!(rows[0][2], "properties.emails", "{out}");
    assert!(rows.iter().all(|r| r[3] == "email"), "{out}");

    let vm =
        "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
    let policy = json!({"kind": "Basic", "properties": {"virtualMachines": [{"id": vm, "ports": [
        {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "10.0.0.1", "maxRequestAccessDuration": "PT1H"}]}]}});
    ok(&run(
        &d,
        &[],
        &["jit", "put", "web-tier", "-"],
        Some(&policy.to_string()),
    ));
    let end = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30)).to_string();
    let init = json!({"virtualMachines": [{"id": vm, "ports": [{"number": 22, "endTimeUtc": end, "allowedSourceAddressPrefix": "10.0.0.1"}]}]});
    ok(&run(
        &d,
        &[],
        &["jit", "initiate", "web-tier", "-"],
        Some(&init.to_string()),
    ));
    let out = ok(&run(
        &d,
        &[("STEWARD_TZ", "UTC")],
        &["jit-requests", "list"],
        None,
    ));
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header[1], "POLICY", "{out}");
    assert_eq!(
        lines[1].split_whitespace().nth(1),
        Some("web-tier"),
        "{out}"
    );
    assert!(lines[1].ends_with(" UTC"), "{out}");
}

fn names(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of `path` (following nextLink), the names in order.
fn walk(d: &Served, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = path.to_owned();
    loop {
        let page = d.api(&path);
        out.extend(names(&page));
        match page["nextLink"].as_str() {
            Some(next) => {
                path = steward::client::paths::resolve_next_link(&path, next).unwrap();
            }
            None => return out,
        }
    }
}

/// The daemon's error message and target for `GET path`.
fn error_of(d: &Served, path: &str) -> (u16, String, String) {
    let c = d.client();
    let r = d.block_on(async { c.get(path).await.unwrap() });
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    (
        r.status.as_u16(),
        v["error"]["message"].as_str().unwrap_or("").to_owned(),
        v["error"]["target"].as_str().unwrap_or("").to_owned(),
    )
}

/// `?orderby=` is paged by the daemon: names both ways on every name-keyed list, alerts
/// by time, name, severity (rank, newest first within) and status, across small pages
/// that split the buckets, with the filters kept; cursors are bound to their order and
/// tenant; an unknown field is a 400 naming the allowed ones.
#[test]
fn every_order_is_paged_by_the_daemon() {
    let d = daemon();
    for name in ["b", "d", "a", "c"] {
        let body = json!({"properties": {"emails": format!("{name}@x.y"), "isEnabled": true}});
        ok(&run(
            &d,
            &[],
            &["contacts", "put", name, "-"],
            Some(&body.to_string()),
        ));
    }
    let base = "/v1/tenants/contoso/contacts?limit=1";
    assert_eq!(walk(&d, base), ["a", "b", "c", "d"]);
    assert_eq!(
        walk(&d, &format!("{base}&orderby=name%20desc")),
        ["d", "c", "b", "a"]
    );
    assert_eq!(
        walk(&d, &format!("{base}&orderby=name%20asc")),
        ["a", "b", "c", "d"]
    );
    // JIT policies, requests and data-subject requests take the same order.
    for kind in ["jit-policies", "jit-requests", "dsr"] {
        let v = d.api(&format!("/v1/tenants/contoso/{kind}?orderby=name%20desc"));
        assert!(v["value"].is_array(), "{kind}: {v}");
    }
    // A descending cursor does not resume the ascending list, nor another tenant's.
    let desc = d.api(&format!("{base}&orderby=name%20desc"));
    let next = desc["nextLink"].as_str().unwrap();
    let cursor = next.split("cursor=").nth(1).unwrap();
    let (status, _, target) = error_of(&d, &format!("{base}&cursor={cursor}"));
    assert_eq!((status, target.as_str()), (400, "cursor"));
    let (status, _, target) = error_of(
        &d,
        &format!("/v1/tenants/fabrikam/contacts?limit=1&orderby=name%20desc&cursor={cursor}"),
    );
    assert_eq!((status, target.as_str()), (400, "cursor"));
    let (status, message, target) = error_of(&d, &format!("{base}&orderby=phone"));
    assert_eq!((status, target.as_str()), (400, "orderby"));
    assert!(message.contains("name"), "{message}");

    // Alerts: 12 over four severities and two statuses, one a severity of its own.
    let sev = ["High", "Medium", "Low", "Informational"];
    let mut alerts: Vec<Value> = (0..12)
        .map(|i| {
            json!({"name": format!("al-{:02}", 11 - i), "properties": {
                "alertDisplayName": format!("Alert {i}"), "severity": sev[i % 4],
                "status": if i % 3 == 0 { "Resolved" } else { "Active" },
                "timeGeneratedUtc": format!("2026-03-01T00:00:{i:02}Z")}})
        })
        .collect();
    alerts.push(
        json!({"name": "al-zz", "properties": {"alertDisplayName": "odd",
        "severity": "Mythic", "status": "Active", "timeGeneratedUtc": "2026-03-01T00:01:00Z"}}),
    );
    ingest(&d, &alerts);
    let at = |i: usize| format!("al-{:02}", 11 - i);
    let alerts_path = "/v1/tenants/contoso/alerts?limit=2";
    // Severity desc: High's alerts newest first, then Medium, Low, Informational, then
    // any other value.
    let mut want: Vec<String> = Vec::new();
    for s in 0..4 {
        want.extend((0..12).rev().filter(|i| i % 4 == s).map(at));
    }
    want.push("al-zz".into());
    assert_eq!(
        walk(&d, &format!("{alerts_path}&orderby=severity%20desc")),
        want
    );
    // Ascending: the ranks reversed, the other value still last, newest first inside.
    let mut want: Vec<String> = Vec::new();
    for s in (0..4).rev() {
        want.extend((0..12).rev().filter(|i| i % 4 == s).map(at));
    }
    want.push("al-zz".into());
    assert_eq!(
        walk(&d, &format!("{alerts_path}&orderby=severity%20asc")),
        want
    );
    // Status asc: Active (newest first), then Resolved; with a severity filter kept.
    let mut want: Vec<String> = vec!["al-zz".into()];
    want.extend((0..12).rev().filter(|i| i % 3 != 0).map(at));
    want.extend((0..12).rev().filter(|i| i % 3 == 0).map(at));
    assert_eq!(walk(&d, &format!("{alerts_path}&orderby=status")), want);
    let high: Vec<String> = [8, 4, 0]
        .into_iter()
        .filter(|i| i % 3 != 0)
        .map(at)
        .chain([8, 4, 0].into_iter().filter(|i| i % 3 == 0).map(at))
        .collect();
    assert_eq!(
        walk(
            &d,
            &format!("{alerts_path}&orderby=status%20asc&severity=High")
        ),
        high
    );
    // Name both ways, with a filter tested on each record.
    let mut all: Vec<String> = (0..12).map(at).collect();
    all.push("al-zz".into());
    all.sort();
    assert_eq!(walk(&d, &format!("{alerts_path}&orderby=name")), all);
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(walk(&d, &format!("{alerts_path}&orderby=name%20desc")), rev);
    let mut low: Vec<String> = (0..12).filter(|i| i % 4 == 2).map(at).collect();
    low.sort();
    assert_eq!(
        walk(&d, &format!("{alerts_path}&orderby=name&severity=low")),
        low
    );
    // Time both ways (the default is newest first).
    let newest = walk(&d, alerts_path);
    assert_eq!(newest[0], "al-zz");
    let mut oldest = newest.clone();
    oldest.reverse();
    assert_eq!(
        walk(&d, &format!("{alerts_path}&orderby=timeGeneratedUtc%20asc")),
        oldest
    );
    // A severity-order cursor does not resume the status order.
    let page = d.api(&format!("{alerts_path}&orderby=severity"));
    let cursor = page["nextLink"]
        .as_str()
        .unwrap()
        .split("cursor=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (status, _, target) =
        error_of(&d, &format!("{alerts_path}&orderby=status&cursor={cursor}"));
    assert_eq!((status, target.as_str()), (400, "cursor"));
    let (status, message, target) = error_of(&d, &format!("{alerts_path}&orderby=vendorName"));
    assert_eq!((status, target.as_str()), (400, "orderby"));
    for field in ["timeGeneratedUtc", "name", "severity", "status"] {
        assert!(message.contains(field), "{message}");
    }
}
