//! Security contacts: list, get, create or replace (the 2023-12-01-preview shape, and
//! the 2020-01-01-preview one), delete. Each handler answers on both mounts (`/v1` and
//! the ARM path, [`Mount`]): the mount picks the shape a contact is served in
//! ([`ContactShape`]) and whether deleting what is not there is 404 (`/v1`) or 204 (ARM).

use crate::records::Stored;
use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use steward::model::{AuditStatus, ContactInput, ContactShape, SecurityContact};
use steward::permissions::Permission;
use steward::resource::{Operation, Resource};
use steward::wire::List;

use super::arm::Mount;
use super::body;
use super::ctx::TenantCtx;
use super::extract::{P, Q};
use super::resource::{
    self, ListQuery, Precondition, etag_header, get_record, name_page, resource_name,
};
use crate::error::ApiError;
use crate::store::{Doc, Kind};

/// The name of this list in cursors.
const LIST: &str = "contacts";

/// A stored contact as served in `shape`, with its etag.
fn contact_json(doc: &Doc, shape: ContactShape) -> Result<Value, ApiError> {
    let contact = SecurityContact::from_doc(doc)?;
    let mut v = contact.render(shape).map_err(|e| ApiError::internal(&e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("etag".into(), Value::String(doc.etag.clone()));
    }
    Ok(v)
}

/// `GET /v1/tenants/{t}/contacts` and `GET /subscriptions/{t}/providers/
/// Microsoft.Security/securityContacts`: the tenant's contacts in name order.
pub async fn list(
    ctx: TenantCtx,
    mount: Mount,
    Q(q): Q<ListQuery>,
) -> Result<Json<List<Value>>, ApiError> {
    let path = match mount {
        Mount::V1 => format!("{}/contacts", ctx.base()),
        Mount::Arm(_) => format!(
            "/subscriptions/{}/providers/Microsoft.Security/securityContacts",
            ctx.tenant
        ),
    };
    let shape = mount.contact_shape();
    let page = name_page(
        &ctx,
        Permission::ContactsRead,
        Kind::Contact,
        LIST,
        &q,
        (&path, mount),
        |d| contact_json(d, shape),
    )
    .await?;
    Ok(Json(page))
}

/// `GET …/contacts/{name}` and `GET …/Microsoft.Security/securityContacts/{name}`.
pub async fn get(
    ctx: TenantCtx,
    mount: Mount,
    P((_, name)): P<(String, String)>,
) -> Result<Response, ApiError> {
    let missing = "no such contact";
    let doc = get_record(
        &ctx,
        Permission::ContactsRead,
        Kind::Contact,
        &name,
        missing,
    )
    .await?;
    let v = contact_json(&doc, mount.contact_shape())?;
    Ok((etag_header(&doc.etag), Json(v)).into_response())
}

/// `PUT …/contacts/{name}` on either mount: 201 when created, 200 when replaced (the
/// API's spec and its SDK accept both). A body in either shape is taken whatever the
/// `api-version`; the answer is in the mount's shape. `If-Match` replaces only that
/// version; `If-None-Match: *` only creates (412 when the name is taken).
pub async fn put(
    ctx: TenantCtx,
    mount: Mount,
    headers: HeaderMap,
    P((_, name)): P<(String, String)>,
    raw: Body,
) -> Result<Response, ApiError> {
    let resource = format!("contacts/{name}");
    ctx.require(Permission::ContactsWrite, &resource).await?;
    let name = resource_name(&name)?;
    let pre = Precondition::of(&headers)?;
    let value = body::object(&ctx.shared, &headers, raw).await?;
    let props = ContactInput::parse(&value)?;
    let contact = SecurityContact::new(&ctx.tenant, &name, props, None);
    let input = contact.to_input()?;
    let mut entry = ctx
        .entry(Operation::ContactsWrite, AuditStatus::Succeeded)
        .resource(&resource);
    for f in contact.properties.field_names() {
        entry = entry.field(f);
    }
    for k in &contact.subjects() {
        entry = entry.subject(k);
    }
    let failed = ctx
        .entry(Operation::ContactsWrite, AuditStatus::Failed)
        .resource(&resource);
    let (doc, created) = ctx
        .write(move |txn| {
            let put = resource::put_under(txn, Kind::Contact, &name, input, pre, failed)?;
            txn.audit(entry);
            Ok::<_, ApiError>(put)
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let v = contact_json(&doc, mount.contact_shape())?;
    Ok((status, etag_header(&doc.etag), Json(v)).into_response())
}

/// `DELETE …/contacts/{name}` on either mount: 200 with the deleted contact; when there
/// is none, 404 on `/v1` and 204 on the ARM path (as the API's spec answers).
pub async fn delete(
    ctx: TenantCtx,
    mount: Mount,
    headers: HeaderMap,
    P((_, name)): P<(String, String)>,
) -> Result<Response, ApiError> {
    match resource::delete(&ctx, Resource::Contacts, &name, &headers, |_| Ok(true)).await? {
        Some(doc) => {
            let v = contact_json(&doc, mount.contact_shape())?;
            Ok((StatusCode::OK, Json(v)).into_response())
        }
        None if mount.is_arm() => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(ApiError::not_found("no such contact")),
    }
}
