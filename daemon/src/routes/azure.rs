//! The product's own paths for its documented export calls, so scripts written for the
//! Microsoft.Security API work with only the host changed. The subscription id is the
//! tenant id; `api-version` is accepted and ignored. Each needs the same permission as
//! the matching `/export/{kind}` call. The alert state actions of the public API
//! (dismiss, resolve, …) answer 405 here as everywhere: alerts are read-only.

use axum::Json;
use serde_json::Value;
use serde_json::value::RawValue;
use steward::permissions::Permission;
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
    Ok(Json(
        contacts::list_page(&ctx, Permission::ContactsExport, q, &path).await?,
    ))
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
    Ok(Json(
        alerts::list_page(&ctx, Permission::AlertsExport, q, &path).await?,
    ))
}
