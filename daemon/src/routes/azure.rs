//! The product's own paths for its documented export calls, so scripts written for the
//! Microsoft.Security API work with only the host changed. The subscription id is the
//! tenant id; `api-version` is accepted and ignored. Each needs the same permission as
//! the matching `/export/{kind}` call, and is audited as an export of the records it
//! served. The alert state actions of the public API
//! (dismiss, resolve, …) answer 405 here as everywhere: alerts are read-only.

use axum::Json;
use serde_json::Value;
use serde_json::value::RawValue;
use steward::model::AuditStatus;
use steward::permissions::Permission;
use steward::resource::Resource;
use steward::wire::List;

use super::alerts::{self, AlertQuery};
use super::contacts;
use super::ctx::TenantCtx;
use super::extract::Q;
use super::resource::ListQuery;
use crate::error::ApiError;

/// `GET /subscriptions/{t}/providers/Microsoft.Security/securityContacts`.
pub async fn contacts(ctx: TenantCtx, Q(q): Q<ListQuery>) -> Result<Json<List<Value>>, ApiError> {
    let path = format!(
        "/subscriptions/{}/providers/Microsoft.Security/securityContacts",
        ctx.tenant
    );
    let page = contacts::list_page(&ctx, Permission::ContactsExport, q, &path).await?;
    audit_export(
        &ctx,
        Resource::Contacts,
        "export/contacts",
        page.value.len(),
    )
    .await?;
    Ok(Json(page))
}

/// `GET /subscriptions/{t}/providers/Microsoft.Security/alerts`.
pub async fn alerts(
    ctx: TenantCtx,
    Q(q): Q<AlertQuery>,
) -> Result<Json<List<Box<RawValue>>>, ApiError> {
    let path = format!(
        "/subscriptions/{}/providers/Microsoft.Security/alerts",
        ctx.tenant
    );
    let page = alerts::list_page(&ctx, Permission::AlertsExport, q, &path).await?;
    audit_export(&ctx, Resource::Alerts, "export/alerts", page.value.len()).await?;
    Ok(Json(page))
}

/// Records an export at a product path (`{kind}.export` with the count served, like
/// `/export/{kind}`), before the records go out: if it cannot commit, nothing is served.
pub(super) async fn audit_export(
    ctx: &TenantCtx,
    kind: Resource,
    resource: &str,
    records: usize,
) -> Result<(), ApiError> {
    let op = kind
        .export_operation()
        .ok_or_else(|| ApiError::not_found(format!("cannot export `{kind}`")))?;
    let entry = ctx
        .entry(op, AuditStatus::Succeeded)
        .resource(resource)
        .field("format=arm")
        .count("records", records as u64);
    ctx.write(move |txn| {
        txn.audit(entry);
        Ok(())
    })
    .await?;
    Ok(())
}
