//! Security contacts: list, get, create or replace (the 2023-12-01-preview shape, and
//! the 2020-01-01-preview one), delete.

use crate::store::TenantRead;
use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use steward::model::{AuditStatus, ContactInput, SecurityContact};
use steward::permissions::Permission;
use steward::resource::{Operation, Resource};
use steward::wire::List;

use super::body;
use super::ctx::TenantCtx;
use super::extract::{P, Q};
use super::resource::{self, ListQuery, doc_json, etag_header, name_page, resource_name};
use crate::error::ApiError;
use crate::store::{DocInput, IfMatch, Kind};

/// The name of this list in cursors.
const LIST: &str = "contacts";

/// Lists a tenant's contacts in name order: used by `GET …/contacts` and the Azure path.
pub async fn list_page(
    ctx: &TenantCtx,
    needed: Permission,
    q: ListQuery,
    path: &str,
) -> Result<List<Value>, ApiError> {
    name_page(ctx, needed, Kind::Contact, LIST, &q, path, doc_json).await
}

/// `GET /v1/tenants/{t}/contacts`.
pub async fn list(ctx: TenantCtx, Q(q): Q<ListQuery>) -> Result<Json<List<Value>>, ApiError> {
    let path = format!("{}/contacts", ctx.base());
    Ok(Json(
        list_page(&ctx, Permission::ContactsRead, q, &path).await?,
    ))
}

/// `GET /v1/tenants/{t}/contacts/{name}`.
pub async fn get(ctx: TenantCtx, P((_, name)): P<(String, String)>) -> Result<Response, ApiError> {
    ctx.require(Permission::ContactsRead, &format!("contacts/{name}"))
        .await?;
    let name = resource_name(&name)?;
    let doc = ctx
        .read(move |r| Ok(r.get(Kind::Contact, name.as_str())?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such contact"))?;
    Ok((etag_header(&doc.etag), Json(doc_json(&doc)?)).into_response())
}

/// `PUT /v1/tenants/{t}/contacts/{name}`: 201 when created, 200 when replaced.
pub async fn put(
    ctx: TenantCtx,
    headers: HeaderMap,
    P((_, name)): P<(String, String)>,
    raw: Body,
) -> Result<Response, ApiError> {
    let resource = format!("contacts/{name}");
    ctx.require(Permission::ContactsWrite, &resource).await?;
    let name = resource_name(&name)?;
    let if_match = body::if_match(&headers)?;
    let value = body::object(&ctx.shared, &headers, raw).await?;
    let props = ContactInput::parse(&value)?;
    let contact = SecurityContact::new(&ctx.tenant, &name, props, None);
    let keys = contact.properties.subject_keys();
    let mut input =
        DocInput::new(serde_json::to_string(&contact).map_err(|e| ApiError::internal(&e))?);
    let mut entry = ctx
        .entry(Operation::ContactsWrite, AuditStatus::Succeeded)
        .resource(&resource);
    for f in contact.properties.field_names() {
        entry = entry.field(f);
    }
    for k in &keys {
        input = input.subject(k);
        entry = entry.subject(k);
    }
    let cond = IfMatch {
        tag: if_match,
        failed: ctx
            .entry(Operation::ContactsWrite, AuditStatus::Failed)
            .resource(&resource),
    };
    let (doc, created) = ctx
        .write(move |txn| {
            let put = txn.replace_if_match(Kind::Contact, &name, input, cond)?;
            txn.audit(entry);
            Ok::<_, ApiError>(put)
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, etag_header(&doc.etag), Json(doc_json(&doc)?)).into_response())
}

/// `DELETE /v1/tenants/{t}/contacts/{name}`.
pub async fn delete(
    ctx: TenantCtx,
    headers: HeaderMap,
    P((_, name)): P<(String, String)>,
) -> Result<Response, ApiError> {
    let doc = resource::delete(&ctx, Resource::Contacts, &name, &headers).await?;
    Ok((StatusCode::OK, Json(doc_json(&doc)?)).into_response())
}
