//! How the backend puts a request to the daemon: a [`Change`] as one [`Call`] (method,
//! path from `steward::client::paths`, body, `If-Match`/`If-None-Match`, an
//! `Idempotency-Key` on a POST), a GET decoded from JSON, a download streamed into an
//! [`ExportFile`], and every answer that is not a 2xx as a [`Failure`]. What it is not:
//! the task that decides what to ask (`backend.rs`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use steward::client::paths::{RecordAction, TenantPaths};
use steward::client::{
    Body, Client, ClientError, Method, StatusCode, header, idempotency_header, if_match_header,
};
use steward::resource::Resource;
use steward::wire::{ErrorBody, ErrorDetail};
use tokio::sync::mpsc::UnboundedSender;

use crate::export_file::{ExportFile, ExportFileError, ExportFormat, RecordCounter};
use crate::tui::dsr::ReasonFor;
use crate::tui::msg::{Change, Failure, Msg};

/// A [`Change`] as HTTP: the method, the path, the JSON body and the `If-Match` etag.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `PUT`, `DELETE` or `POST`.
    pub method: Method,
    /// The path, from `steward::client::paths`.
    pub path: String,
    /// The JSON body.
    pub body: Option<Value>,
    /// The etag loaded, sent as `If-Match`.
    pub etag: Option<String>,
    /// Send `If-None-Match: *`: the call creates, and must not replace a record.
    pub create: bool,
}

/// How a change is asked of the daemon in `tenant`.
pub fn call(tenant: &TenantPaths, change: &Change) -> Call {
    let post = |path: String, body: Option<Value>| Call {
        method: Method::POST,
        path,
        body,
        etag: None,
        create: false,
    };
    match change {
        Change::Save {
            kind,
            name,
            body,
            etag,
            create,
        } => Call {
            method: Method::PUT,
            path: tenant.record(*kind, name),
            body: Some(body.clone()),
            etag: etag.clone(),
            create: *create,
        },
        Change::Delete { kind, name, etag } => Call {
            method: Method::DELETE,
            path: tenant.record(*kind, name),
            body: None,
            etag: etag.clone(),
            create: false,
        },
        Change::Initiate { policy, body } => post(
            tenant.action(Resource::JitPolicies, policy, RecordAction::Initiate),
            Some(body.clone()),
        ),
        Change::Revoke { id } => post(
            tenant.action(Resource::JitRequests, id, RecordAction::Revoke),
            None,
        ),
        Change::DsrOpen { body } => post(tenant.list(Resource::Dsr, &[]), Some(body.clone())),
        Change::DsrConfirm { id } => post(
            tenant.action(Resource::Dsr, id, RecordAction::Confirm),
            None,
        ),
        Change::DsrReason { id, action, reason } => {
            let action = match action {
                ReasonFor::Reject => RecordAction::Reject,
                ReasonFor::Extend => RecordAction::Extend,
            };
            post(
                tenant.action(Resource::Dsr, id, action),
                Some(serde_json::json!({ "reason": reason })),
            )
        }
    }
}

/// The failure of a request about records sent before any tenant was chosen.
pub(super) fn no_tenant() -> Failure {
    Failure::transport("no tenant chosen yet")
}

pub(super) fn failure(status: StatusCode, body: &[u8]) -> Failure {
    let error = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| ErrorDetail {
            code: status.canonical_reason().unwrap_or("error").to_owned(),
            message: {
                let t = String::from_utf8_lossy(body).trim().to_owned();
                if t.is_empty() || t.len() > 300 {
                    status.canonical_reason().unwrap_or("error").to_lowercase()
                } else {
                    t
                }
            },
            target: None,
            details: Vec::new(),
        });
    Failure {
        status: Some(status.as_u16()),
        error,
    }
}

pub(super) fn net_failure(e: ClientError) -> Failure {
    Failure::transport(e.to_string())
}

pub(super) async fn get_json<T: serde::de::DeserializeOwned>(
    c: &Client,
    path: &str,
) -> Result<T, Failure> {
    let r = c
        .request(Method::GET, path, None, &[])
        .await
        .map_err(net_failure)?;
    if !r.status.is_success() {
        return Err(failure(r.status, &r.body));
    }
    serde_json::from_slice(&r.body).map_err(|e| Failure {
        status: Some(r.status.as_u16()),
        error: ErrorDetail {
            code: "Decode".into(),
            message: format!("unexpected answer from the daemon: {e}"),
            target: None,
            details: Vec::new(),
        },
    })
}

/// Sends a change; `Ok` on a 2xx.
pub(super) async fn send_change(c: &Client, call: &Call) -> Result<(), Failure> {
    let body = call
        .body
        .as_ref()
        .map(|b| Body::json_bytes(serde_json::to_vec(b).unwrap_or_default()));
    let mut headers = if_match_header(call.etag.as_deref());
    if call.create {
        headers.push((header::IF_NONE_MATCH, "*".to_owned()));
    }
    // One key per action: a creating POST is then never acted on twice.
    if call.method == Method::POST {
        headers.push(idempotency_header());
    }
    match c
        .request(call.method.clone(), &call.path, body, &headers)
        .await
    {
        Ok(r) if r.status.is_success() => Ok(()),
        Ok(r) => Err(failure(r.status, &r.body)),
        Err(e) => Err(net_failure(e)),
    }
}

/// Streams an export into `file` through [`ExportFile`] (nothing appears, and nothing
/// that was there changes, unless it completes), counting its records.
pub(super) async fn export(
    c: &Client,
    path: &str,
    file: &Path,
    format: ExportFormat,
    out: &UnboundedSender<Msg>,
) -> Result<u64, Failure> {
    let mut counter = RecordCounter::new(format);
    download_counting(c, path, file, out, Some(&mut counter)).await?;
    Ok(counter.count())
}

/// Streams `path` into `file` through [`ExportFile`]: its size.
pub(super) async fn download(
    c: &Client,
    path: &str,
    file: &Path,
    out: &UnboundedSender<Msg>,
) -> Result<u64, Failure> {
    download_counting(c, path, file, out, None).await
}

/// Streams `path` into `file` (0600, renamed into place only once complete), feeding
/// `counter` when given and reporting progress; the bytes written.
async fn download_counting(
    c: &Client,
    path: &str,
    file: &Path,
    out: &UnboundedSender<Msg>,
    mut counter: Option<&mut RecordCounter>,
) -> Result<u64, Failure> {
    let mut body = c
        .request_streaming(Method::GET, path, None, &[])
        .await
        .map_err(net_failure)?;
    if !body.status.is_success() {
        let r = body.collect().await.map_err(net_failure)?;
        return Err(failure(r.status, &r.body));
    }
    let total = body
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let local = |e: ExportFileError| Failure::transport(e.to_string());
    let mut f = ExportFile::create(file).map_err(local)?;
    let mut bytes = 0u64;
    let mut last = tokio::time::Instant::now();
    while let Some(chunk) = body.next_chunk().await.map_err(net_failure)? {
        f.write_all(&chunk).map_err(local)?;
        if let Some(counter) = counter.as_deref_mut() {
            counter.feed(&chunk);
        }
        bytes += chunk.len() as u64;
        if last.elapsed() > Duration::from_millis(100) {
            last = tokio::time::Instant::now();
            let _ = out.send(Msg::ExportProgress { bytes, total });
        }
    }
    f.finish().map_err(local)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward::client::paths;

    #[test]
    fn each_change_is_one_call_with_its_path_from_the_library() {
        let t = paths::tenant("contoso");
        let initiate = call(
            &t,
            &Change::Initiate {
                policy: "p 1".into(),
                body: serde_json::json!({"justification": "x"}),
            },
        );
        assert_eq!(initiate.method, Method::POST);
        assert_eq!(
            initiate.path,
            "/v1/tenants/contoso/jit-policies/p%201/initiate"
        );
        assert!(initiate.body.is_some() && initiate.etag.is_none());
        let revoke = call(&t, &Change::Revoke { id: "r/1".into() });
        assert_eq!(revoke.path, "/v1/tenants/contoso/jit-requests/r%2F1/revoke");
        let save = call(
            &t,
            &Change::Save {
                kind: Resource::JitPolicies,
                name: "default".into(),
                body: serde_json::json!({}),
                etag: Some("e1".into()),
                create: false,
            },
        );
        assert!(!save.create);
        assert_eq!(
            (save.method, save.path.as_str(), save.etag.as_deref()),
            (
                Method::PUT,
                "/v1/tenants/contoso/jit-policies/default",
                Some("e1")
            )
        );
    }
}
