//! The steps of a data-subject request as an operator takes them through the API: open
//! one, confirm it, wait until it reaches a status.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward::client::Client;

use crate::api::{expect_status, get};

/// Opens a `kind` request (`export`, `erase`, …) for `subject` in `tenant`; asserts 201
/// and returns the request's path (`/v1/tenants/<t>/dsr/<id>`).
pub async fn open(c: &Client, tenant: &str, kind: &str, subject: Value) -> String {
    let r = c
        .post_json(
            &format!("/v1/tenants/{tenant}/dsr"),
            &json!({"type": kind, "subject": subject}),
        )
        .await
        .unwrap();
    expect_status(&r, 201, &format!("open {kind}"));
    let id = serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    format!("/v1/tenants/{tenant}/dsr/{id}")
}

/// Confirms the request at `path`; asserts 202 (the work has started).
pub async fn confirm(c: &Client, path: &str) {
    let r = c
        .post_json(&format!("{path}/confirm"), &json!({}))
        .await
        .unwrap();
    expect_status(&r, 202, &format!("confirm {path}"));
}

/// Polls the request at `path` until its `status` is `status`, for at most `within`;
/// returns the request.
pub async fn wait_for(c: &Client, path: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, v) = get(c, path).await;
        if v["status"] == status {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} not {status} within {within:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens, confirms and waits (60 s) for a request to complete; returns it.
pub async fn run(c: &Client, tenant: &str, kind: &str, subject: Value) -> Value {
    let path = open(c, tenant, kind, subject).await;
    confirm(c, &path).await;
    wait_for(c, &path, "completed", Duration::from_secs(60)).await
}
