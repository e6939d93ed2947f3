//! JSON helpers over the library's client (`steward::client::Client`): a GET decoded, every
//! page of a list, every tenant's audit chain verified, a contact body.

use http::StatusCode;
use serde_json::Value;
use steward::client::Client;

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

/// The `emails` of a stored contact.
pub fn emails_of(v: &Value) -> Option<String> {
    v["properties"]["emails"].as_str().map(str::to_owned)
}
