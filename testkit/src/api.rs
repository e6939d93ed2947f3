//! JSON helpers over the library's client (`steward::client::Client`): a GET decoded, every
//! page of a list, every tenant's audit chain verified, a contact body, a status checked
//! with the body shown, alerts posted (and the biggest array of them), the next event of a
//! stream, one field of each item.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;
use steward::client::{Body, Client, Lines, Method, Response};

use crate::config::TENANTS;

/// GET `path` with a well-behaved client, decoding the JSON body (`Null` when none).
pub async fn get(c: &Client, path: &str) -> (StatusCode, Value) {
    let r = c.get(path).await.unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// Every item of a list, following `nextLink`.
pub async fn list_all(c: &Client, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(format!("{path}?limit=1000"));
    while let Some(p) = next {
        let (st, v) = get(c, &p).await;
        assert_eq!(st, StatusCode::OK, "{p}: {v}");
        out.extend(v["value"].as_array().cloned().unwrap_or_default());
        next = v["nextLink"].as_str().map(str::to_owned);
    }
    out
}

/// Asserts that the audit chain of every one of the [`TENANTS`] verifies; returns each
/// tenant's record count.
pub async fn verify_all(c: &Client) -> Vec<u64> {
    let mut counts = Vec::new();
    for t in TENANTS {
        let (st, v) = get(c, &format!("/v1/tenants/{t}/audit/verify")).await;
        assert_eq!(st, StatusCode::OK, "verify {t}: {v}");
        assert_eq!(
            v["ok"],
            Value::Bool(true),
            "audit chain of {t} is broken: {v}"
        );
        counts.push(v["records"].as_u64().unwrap_or(0));
    }
    counts
}

/// A contact body (2023-12-01-preview shape) whose emails carry `tag`.
pub fn contact(tag: &str) -> Value {
    serde_json::json!({
        "properties": {
            "emails": format!("{tag}@example.com"),
            "phone": "+1 (555) 010-0000",
            "isEnabled": true,
            "notificationsByRole": {"state": "On", "roles": ["Owner"]},
            "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Low"}]
        }
    })
}

/// A JSON array of as many alerts `{"name":"<prefix><i>","properties":<properties>}` as
/// fit in `limit` bytes, and how many that is (the biggest ingest body of that shape).
pub fn alert_array(prefix: &str, properties: &str, limit: usize) -> (String, u64) {
    let mut s = String::with_capacity(limit);
    s.push('[');
    let mut n = 0u64;
    loop {
        let a = format!("{{\"name\":\"{prefix}{n}\",\"properties\":{properties}}}");
        if s.len() + a.len() + 2 > limit {
            break;
        }
        if n > 0 {
            s.push(',');
        }
        s.push_str(&a);
        n += 1;
    }
    s.push(']');
    (s, n)
}

/// The `emails` of a stored contact.
pub fn emails_of(v: &Value) -> Option<String> {
    v["properties"]["emails"].as_str().map(str::to_owned)
}

/// Asserts that `r` answered `want`, showing `what` and the body when it did not.
pub fn expect_status(r: &Response, want: u16, what: &str) {
    assert_eq!(
        r.status.as_u16(),
        want,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

/// Posts an ingest `body` (JSON or NDJSON, as built) to `tenant`'s alerts, whatever it
/// holds; the caller judges the answer.
pub async fn ingest_body(c: &Client, tenant: &str, body: Body) -> Response {
    let path = format!("/v1/tenants/{tenant}/alerts");
    c.request(Method::POST, &path, Some(body), &[])
        .await
        .unwrap()
}

/// Posts `alerts` (a JSON array) to `tenant`'s alerts; asserts 201 (all were ingested).
pub async fn post_alerts(c: &Client, tenant: &str, alerts: &[Value]) {
    let r = c
        .post_json(&format!("/v1/tenants/{tenant}/alerts"), alerts)
        .await
        .unwrap();
    expect_status(&r, 201, "ingest");
}

/// The next event of an event stream, decoded; fails the test when none comes within
/// `within` or the stream ends.
pub async fn next_event(lines: &mut Lines, within: Duration) -> Value {
    let line = tokio::time::timeout(within, lines.next_line())
        .await
        .expect("no event in time")
        .unwrap()
        .expect("the event stream ended");
    serde_json::from_slice(&line).unwrap()
}

/// The string `field` of every item of the JSON array `items` (the `target` of each error
/// detail, the `operationName` of each record); fails the test when `items` is not an
/// array or an item has no such string.
pub fn strings<'a>(items: &'a Value, field: &str) -> Vec<&'a str> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("no string {field:?} in {item}"))
        })
        .collect()
}
