//! The API's routes: one module per resource, each with its handlers and nothing else,
//! plus the helpers every tenant route uses to learn who is calling and what it may do.

mod alert_order;
mod alerts;
mod arm;
mod audit;
mod body;
mod contacts;
mod ctx;
mod dsr;
mod export;
mod extract;
pub mod idempotency;
mod jit;
mod orderby;
mod overview;
mod paging;
mod resource;
mod subjects;
mod system;
pub mod upkeep;

use std::sync::Arc;
use steward::names::TenantId;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::routing::{any, get, post};
use http::HeaderMap;
use http::request::Parts;
use steward::wire::ROLE_HEADER;

use crate::access::{self, Access, AccessError};
use crate::error::ApiError;
use crate::identity::Caller;
use crate::state::Shared;

pub use extract::RequestId;

/// Every route of the API.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/health", get(system::health))
        .route("/v1/whoami", get(system::whoami))
        .route("/v1/tenants", get(system::tenants))
        .route("/v1/events", get(system::events))
        .route("/v1/store/backup", post(upkeep::backup))
        .route("/v1/store/compact", post(upkeep::compact))
        .route("/v1/tenants/{t}/contacts", get(contacts::list))
        .route(
            "/v1/tenants/{t}/contacts/{name}",
            get(contacts::get)
                .put(contacts::put)
                .delete(contacts::delete),
        )
        .route(
            "/v1/tenants/{t}/alerts",
            get(alerts::list).post(alerts::ingest),
        )
        .route("/v1/tenants/{t}/overview/alerts", get(overview::alerts))
        .route(
            "/v1/tenants/{t}/alerts/{name}",
            get(alerts::get)
                .put(alerts::read_only)
                .patch(alerts::read_only)
                .delete(alerts::read_only)
                .post(alerts::read_only),
        )
        .route(
            "/v1/tenants/{t}/alerts/{name}/{action}",
            any(alerts::read_only),
        )
        .route("/v1/tenants/{t}/audit", get(audit::list))
        .route("/v1/tenants/{t}/audit/verify", get(audit::verify))
        .route("/v1/tenants/{t}/export/{kind}", get(export::export))
        .route("/v1/tenants/{t}/subjects", get(subjects::search))
        .route("/v1/tenants/{t}/dsr", get(dsr::list).post(dsr::open))
        .route("/v1/tenants/{t}/dsr/{id}", get(dsr::get))
        .route("/v1/tenants/{t}/dsr/{id}/confirm", post(dsr::confirm))
        .route("/v1/tenants/{t}/dsr/{id}/reject", post(dsr::reject))
        .route("/v1/tenants/{t}/dsr/{id}/extend", post(dsr::extend))
        .route("/v1/tenants/{t}/dsr/{id}/bundle", get(dsr::bundle))
        .route("/v1/tenants/{t}/jit-policies", get(jit::list_policies))
        .route(
            "/v1/tenants/{t}/jit-policies/{name}",
            get(jit::get_policy)
                .put(jit::put_policy)
                .delete(jit::delete_policy),
        )
        .route(
            "/v1/tenants/{t}/jit-policies/{name}/initiate",
            post(jit::initiate),
        )
        .route("/v1/tenants/{t}/jit-requests", get(jit::list_requests))
        .route("/v1/tenants/{t}/jit-requests/{id}", get(jit::get_request))
        .route(
            "/v1/tenants/{t}/jit-requests/{id}/revoke",
            post(jit::revoke),
        )
        .merge(arm::router())
        .fallback(arm::not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed("this method is not allowed on this path")
        })
        .with_state(shared)
}

/// The caller of the connection, put into each request by the accept loop.
pub struct CallerExt(pub Arc<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for CallerExt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Caller>>()
            .cloned()
            .map(CallerExt)
            .ok_or_else(|| ApiError::internal(&"request without a caller"))
    }
}

/// The profile named by `X-Steward-Role`, if any.
pub fn acting_role(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(ROLE_HEADER) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_owned())).map_err(|_| {
            ApiError::invalid("X-Steward-Role is not ASCII").with_target("X-Steward-Role")
        }),
    }
}

/// The tenant id a path or query names: 400 before any lookup when it is malformed. The
/// one place a request's tenant is parsed; it travels as a [`TenantId`] from here on.
pub fn parse_tenant(tenant: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(tenant).map_err(|_| {
        ApiError::invalid(format!(
            "`{tenant}` is not a tenant id ([a-z0-9][a-z0-9-]{{0,62}})"
        ))
        .with_target("tenant")
    })
}

/// The caller's access in `tenant`: 404 when it holds nothing there (exactly as for a
/// tenant that does not exist), 403 when it asks to act above what it holds.
pub fn tenant_access(
    shared: &Shared,
    caller: &Caller,
    tenant: &TenantId,
    acting: Option<&str>,
) -> Result<Access, ApiError> {
    let cfg = shared.config();
    access::resolve(&cfg, caller, tenant, acting).map_err(|e| match e {
        AccessError::NoTenant => ApiError::no_tenant(),
        AccessError::ActAs(e) => ApiError::new(
            http::StatusCode::FORBIDDEN,
            steward::wire::codes::FORBIDDEN,
            e.to_string(),
        )
        .with_target("X-Steward-Role"),
    })
}
