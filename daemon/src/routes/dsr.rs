//! Data-subject requests: open, list, get, confirm (which starts execution in the
//! background), reject, extend once, and fetch an export's bundle. Everything needs
//! `dsr.manage`; every step is audited with the subject only as HMACs — free text such as
//! a rejection reason is kept in the request, never in the audit log, since it may name
//! the person. Execution itself is [`crate::dsr`].

use crate::store::TenantRead;
use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use jiff::Timestamp;
use serde_json::Value;
use steward::model::{AuditStatus, DataSubjectRequest, DsrError, DsrInput, DsrStatus, DsrType};
use steward::names::ResourceName;
use steward::permissions::Permission;
use steward::resource::Operation;
use steward::wire::List;

use super::body;
use super::ctx::TenantCtx;
use super::extract::{P, Q};
use super::idempotency::{IdempotencyKey, Outcome};
use super::resource::{ListQuery, get_record, name_page};
use super::resource::{etag_header, resource_name};
use crate::dsr::{self, DsrDoc};
use crate::error::ApiError;
use crate::store::{Doc, Kind, TenantWrite};

/// Cursor list name.
const LIST: &str = "dsr";

/// The request as served: the stored request with `etag` and `overdue`.
fn served(doc: &Doc) -> Result<Value, ApiError> {
    let d = DsrDoc::parse(doc).map_err(|e| ApiError::internal(&e))?;
    let mut v = serde_json::to_value(&d).map_err(|e| ApiError::internal(&e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("etag".into(), Value::String(doc.etag.clone()));
        o.insert(
            "overdue".into(),
            Value::Bool(d.request.is_overdue(Timestamp::now())),
        );
    }
    Ok(v)
}

fn model_error(e: DsrError) -> ApiError {
    match e {
        DsrError::SamePerson => ApiError::new(
            StatusCode::FORBIDDEN,
            steward::wire::codes::FORBIDDEN,
            "[dsr] require_second_person is on: the request must be confirmed by someone other than who opened it",
        ),
        DsrError::MissingReason => ApiError::invalid("a reason is required").with_target("reason"),
        other => ApiError::conflict(other.to_string()),
    }
}

/// `POST /v1/tenants/{t}/dsr`: opens a request `pending_confirmation` (201).
pub async fn open(ctx: TenantCtx, headers: HeaderMap, raw: Body) -> Result<Response, ApiError> {
    ctx.require(Permission::DsrManage, LIST).await?;
    let value = body::object(&ctx.shared, &headers, raw).await?;
    let input = DsrInput::parse(&value)?;
    let key = IdempotencyKey::of(
        &ctx,
        &headers,
        Operation::DsrOpen.as_str(),
        value.to_string().as_bytes(),
    )?;
    let id = ResourceName::fresh();
    let by = ctx.caller.user.clone();
    let retention = ctx.shared.config().retention.dsr.0;
    let entry = ctx.entry(Operation::DsrOpen, AuditStatus::Succeeded);
    let (outcome, replayed) = ctx
        .write(move |txn: &mut dyn TenantWrite| {
            if let Some(k) = &key
                && let Some(o) = k.recorded(txn)?
            {
                return Ok((o, true));
            }
            let now =
                Timestamp::from_microsecond(txn.now_micros()).unwrap_or_else(|_| Timestamp::now());
            let d = DsrDoc::new(DataSubjectRequest::new(id.as_str(), input, by, now));
            let doc = txn.put(Kind::Dsr, &id, d.input(retention)?, None)?;
            let kind = match d.request.kind {
                DsrType::Export => "export",
                DsrType::Erase => "erase",
            };
            let mut e = d.entry(entry).field("type").reason(format!("type {kind}"));
            for k in d.request.subject.keys() {
                e = e.field(k.field);
            }
            txn.audit(e);
            let outcome =
                Outcome::json(StatusCode::CREATED, Some(doc.etag.clone()), &served(&doc)?)?;
            if let Some(k) = &key {
                k.record(txn, outcome.clone())?;
            }
            Ok((outcome, false))
        })
        .await?;
    Ok(outcome.into_response(replayed))
}

/// `GET /v1/tenants/{t}/dsr`: requests oldest first (ids are UUIDv7).
pub async fn list(ctx: TenantCtx, Q(q): Q<ListQuery>) -> Result<Json<List<Value>>, ApiError> {
    let path = format!("{}/dsr", ctx.base());
    let page = name_page(
        &ctx,
        Permission::DsrManage,
        Kind::Dsr,
        LIST,
        &q,
        (&path, super::arm::Mount::V1),
        served,
    )
    .await?;
    Ok(Json(page))
}

/// `GET /v1/tenants/{t}/dsr/{id}`. After an erasure completes, the request (and every
/// finished request naming the same person) shows `subject: {}` and `subjectRemoved`
/// (kinds and keyed HMACs of the identifiers, when and by which erasure), and an erasure
/// shows `execution.scrubDueAt` / `scrubbedAt`.
pub async fn get(ctx: TenantCtx, P((_, id)): P<(String, String)>) -> Result<Response, ApiError> {
    let missing = "no such data-subject request";
    let doc = get_record(&ctx, Permission::DsrManage, Kind::Dsr, &id, missing).await?;
    Ok((etag_header(&doc.etag), Json(served(&doc)?)).into_response())
}

/// What a state change does to a request inside its job.
type Change = Box<dyn FnOnce(&mut DsrDoc) -> Result<(), DsrError> + Send>;

/// Applies `change` to request `id` in one job, audited as `operation` (also when it is
/// refused), and answers the request.
async fn change(
    ctx: &TenantCtx,
    id: &str,
    operation: Operation,
    fields: &'static [&'static str],
    change: Change,
) -> Result<Doc, ApiError> {
    let id = resource_name(id)?;
    let retention = ctx.shared.config().retention.dsr.0;
    let ok = ctx.entry(operation, AuditStatus::Succeeded);
    let failed = ctx.entry(operation, AuditStatus::Failed);
    ctx.write(move |txn: &mut dyn TenantWrite| {
        let doc = txn
            .get(Kind::Dsr, id.as_str())?
            .ok_or_else(|| ApiError::not_found("no such data-subject request"))?;
        let mut d = DsrDoc::parse(&doc).map_err(|e| ApiError::internal(&e))?;
        if let Err(e) = change(&mut d) {
            txn.audit_on_failure(d.entry(failed).reason(e.to_string()));
            return Err(model_error(e));
        }
        let doc = txn.put(Kind::Dsr, &id, d.input(retention)?, None)?;
        let e = fields.iter().fold(d.entry(ok), |e, f| e.field(*f));
        txn.audit(e);
        Ok(doc)
    })
    .await
}

/// `POST /v1/tenants/{t}/dsr/{id}/confirm`: confirms and starts execution (202).
pub async fn confirm(
    ctx: TenantCtx,
    P((_, id)): P<(String, String)>,
) -> Result<Response, ApiError> {
    ctx.require(Permission::DsrManage, &format!("dsr/{id}/confirm"))
        .await?;
    let by = ctx.caller.user.clone();
    let second = ctx.shared.config().dsr.require_second_person;
    let doc = change(
        &ctx,
        &id,
        Operation::DsrConfirm,
        &["status", "confirmedBy"],
        Box::new(move |d| d.request.confirm(&by, second)),
    )
    .await?;
    dsr::spawn(&ctx.shared, &ctx.tenant, &doc.name);
    Ok((
        StatusCode::ACCEPTED,
        etag_header(&doc.etag),
        Json(served(&doc)?),
    )
        .into_response())
}

/// A reason from a body `{"reason": "…"}`.
fn reason_of(v: &Value) -> Result<String, ApiError> {
    match v.get("reason") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 1024 => {
            Ok(s.trim().to_owned())
        }
        Some(Value::String(s)) if s.len() > 1024 => {
            Err(ApiError::invalid("at most 1024 bytes").with_target("reason"))
        }
        _ => Err(ApiError::invalid("a non-empty reason is required").with_target("reason")),
    }
}

/// `POST /v1/tenants/{t}/dsr/{id}/reject` `{"reason": "…"}`.
pub async fn reject(
    ctx: TenantCtx,
    headers: HeaderMap,
    P((_, id)): P<(String, String)>,
    raw: Body,
) -> Result<Response, ApiError> {
    let fields = &["status", "rejectReason"];
    with_reason(
        ctx,
        headers,
        &id,
        raw,
        Operation::DsrReject,
        fields,
        |d, reason| d.request.reject(&reason),
    )
    .await
}

/// `POST /v1/tenants/{t}/dsr/{id}/extend` `{"reason": "…"}`: once, by two months.
pub async fn extend(
    ctx: TenantCtx,
    headers: HeaderMap,
    P((_, id)): P<(String, String)>,
    raw: Body,
) -> Result<Response, ApiError> {
    let fields = &["extendedDueAt", "extensionReason"];
    with_reason(
        ctx,
        headers,
        &id,
        raw,
        Operation::DsrExtend,
        fields,
        |d, reason| {
            if d.request.status.is_final() {
                return Err(DsrError::BadTransition {
                    from: d.request.status.as_str(),
                    to: "extended",
                });
            }
            d.request.extend(&reason)
        },
    )
    .await
}

/// A change that takes a `{"reason": "…"}` body (reject, extend): `dsr/{id}/{action}` is
/// checked against the manage permission, the reason read, then [`change`] applies `f`.
async fn with_reason(
    ctx: TenantCtx,
    headers: HeaderMap,
    id: &str,
    raw: Body,
    operation: Operation,
    fields: &'static [&'static str],
    f: impl FnOnce(&mut DsrDoc, String) -> Result<(), DsrError> + Send + 'static,
) -> Result<Response, ApiError> {
    let action = operation.as_str().trim_start_matches("dsr.");
    ctx.require(Permission::DsrManage, &format!("dsr/{id}/{action}"))
        .await?;
    let reason = reason_of(&body::object(&ctx.shared, &headers, raw).await?)?;
    let doc = change(&ctx, id, operation, fields, Box::new(move |d| f(d, reason))).await?;
    Ok((etag_header(&doc.etag), Json(served(&doc)?)).into_response())
}

/// `GET /v1/tenants/{t}/dsr/{id}/bundle`: an export's bundle once it has completed (404
/// for an erase request, 409 before completion, 410 once an erasure of the same person
/// removed it). Audited as `dsr.bundle`.
pub async fn bundle(ctx: TenantCtx, P((_, id)): P<(String, String)>) -> Result<Response, ApiError> {
    ctx.require(Permission::DsrManage, &format!("dsr/{id}/bundle"))
        .await?;
    let id = resource_name(&id)?;
    let i = id.clone();
    let doc = ctx
        .read(move |r| Ok(r.get(Kind::Dsr, i.as_str())?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such data-subject request"))?;
    let d = DsrDoc::parse(&doc).map_err(|e| ApiError::internal(&e))?;
    if d.request.kind != DsrType::Export {
        return Err(ApiError::not_found(
            "an erase request has no bundle: its report is in the request",
        ));
    }
    if d.request.status != DsrStatus::Completed {
        return Err(ApiError::conflict(format!(
            "the export is {}: the bundle is ready once it is completed",
            d.request.status.as_str()
        )));
    }
    if let Some(by) = d
        .execution
        .as_ref()
        .and_then(|x| x.bundle_removed_by.as_ref())
    {
        return Err(ApiError::new(
            StatusCode::GONE,
            steward::wire::codes::NOT_FOUND,
            format!(
                "the bundle was removed by erasure request {by}: it held the erased person's data"
            ),
        ));
    }
    let file = dsr::bundle::path(
        &ctx.shared.config().daemon.data_dir,
        &ctx.tenant,
        id.as_str(),
    );
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiError::internal(&format!("cannot read the bundle: {e}")))?;
    let entry = d.entry(ctx.entry(Operation::DsrBundle, AuditStatus::Succeeded));
    ctx.write(move |txn: &mut dyn TenantWrite| {
        txn.audit(entry);
        Ok(())
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}
