//! The Microsoft.Security mount: the ARM paths of every operation `azure-mgmt-security`
//! calls for security contacts, JIT network access policies and alerts
//! (`/subscriptions/{t}/[resourceGroups/{rg}/]providers/Microsoft.Security/...`), routed
//! to the very handlers of the `/v1` routes. A handler learns which mount it answers on
//! from [`Mount`] (put into the request by this module's `api-version` check) and only
//! shapes its answer by it: the permission, validation, audit record, etag and
//! `If-Match` are the same code on both mounts.
//!
//! What the mount adds: `api-version` is required and must be one this daemon serves for
//! the operation group (400 naming them, target `api-version`); contacts render in the
//! shape that version asks for; `nextLink` carries the version on. What it does not do:
//! identify anyone by the `Authorization` header (the OS user of the socket is the
//! identity; a bearer token an SDK sends is ignored). An ARM path not served answers 404
//! naming the nearest `/v1` route ([`not_found`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::request::Parts;
use steward::model::ContactShape;
use steward::names::TenantId;

use super::ctx::TenantCtx;
use super::{alerts, contacts, jit};
use crate::error::ApiError;
use crate::state::Shared;

/// Which mount a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// `/v1/tenants/{t}/...`: our own paths; `api-version` is ignored.
    V1,
    /// An ARM path, with the `api-version` it asked for (one this daemon serves).
    Arm(&'static str),
}

impl Mount {
    /// The query a `nextLink` carries on besides the cursor: the ARM mount's
    /// `api-version`.
    pub fn query(self) -> Vec<(&'static str, String)> {
        match self {
            Mount::V1 => Vec::new(),
            Mount::Arm(v) => vec![("api-version", v.to_owned())],
        }
    }

    /// Whether this is the ARM mount.
    pub fn is_arm(self) -> bool {
        matches!(self, Mount::Arm(_))
    }

    /// The shape contacts are served in: the one the `api-version` asks for on the ARM
    /// mount, the stored (2023-12-01-preview) one on `/v1`.
    pub fn contact_shape(self) -> ContactShape {
        match self {
            Mount::V1 => ContactShape::Preview2023,
            Mount::Arm(v) => ContactShape::from_api_version(v).unwrap_or(ContactShape::Preview2023),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Mount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Mount>()
            .copied()
            .unwrap_or(Mount::V1))
    }
}

/// Where a path points: the record's name, and on the ARM paths the resource group and
/// location (absent on `/v1`, and on the ARM paths that do not name them).
#[derive(Debug, Default, serde::Deserialize)]
pub struct At {
    /// `{rg}`: the resource group.
    rg: Option<String>,
    /// `{loc}`: the location.
    loc: Option<String>,
    /// `{name}`: the record.
    name: Option<String>,
}

impl At {
    /// The resource group and location, checked (400 naming the bad one).
    pub fn placement(&self) -> Result<(Option<String>, Option<String>), ApiError> {
        steward::model::jit::check_placement(self.rg.as_deref(), self.loc.as_deref())?;
        Ok((self.rg.clone(), self.loc.clone()))
    }

    /// The record's name.
    pub fn name(&self) -> Result<String, ApiError> {
        self.name
            .clone()
            .ok_or_else(|| ApiError::internal(&"a record route without {name}"))
    }

    /// A list's own path, for its `nextLink`: `/v1/tenants/{t}/{segment}`, or the ARM path
    /// of `arm_type` at this resource group and location. Call it after
    /// [`At::placement`] has checked them (so they hold no `?` or `#`).
    pub fn list_path(
        &self,
        ctx: &TenantCtx,
        mount: Mount,
        segment: &str,
        arm_type: &str,
    ) -> String {
        if !mount.is_arm() {
            return format!("{}/{segment}", ctx.base());
        }
        let rg = self
            .rg
            .as_deref()
            .map(|g| format!("/resourceGroups/{g}"))
            .unwrap_or_default();
        let loc = self
            .loc
            .as_deref()
            .map(|l| format!("/locations/{l}"))
            .unwrap_or_default();
        format!(
            "/subscriptions/{}{rg}/providers/Microsoft.Security{loc}/{arm_type}",
            ctx.tenant
        )
    }
}

/// An operation group of the SDK, with the `api-version`s served for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// `security_contacts`.
    Contacts,
    /// `jit_network_access_policies`.
    Jit,
    /// `alerts`.
    Alerts,
}

impl Group {
    /// The versions served, oldest first (`azure-mgmt-security` 7.0.0 sends
    /// 2020-01-01-preview, 2020-01-01 and 2022-01-01).
    fn served(self) -> &'static [&'static str] {
        const CONTACTS: [&str; 2] = [ContactShape::SERVED[0].0, ContactShape::SERVED[1].0];
        match self {
            Group::Contacts => &CONTACTS,
            Group::Jit => &["2020-01-01"],
            Group::Alerts => &["2022-01-01"],
        }
    }

    /// The served version `asked` is, or a 400 naming the served ones.
    fn version(self, asked: Option<&str>) -> Result<&'static str, ApiError> {
        let served = self.served();
        let list = served.join(", ");
        match asked {
            Some(a) => served.iter().copied().find(|v| *v == a).ok_or_else(|| {
                ApiError::invalid(format!(
                    "api-version `{a}` is not served for this path; served: {list}"
                ))
                .with_target("api-version")
            }),
            None => Err(ApiError::invalid(format!(
                "the api-version query parameter is required on Microsoft.Security paths; served for this path: {list}"
            ))
            .with_target("api-version")),
        }
    }
}

/// The `api-version` of a query string, if it names one (the last, if repeated).
fn api_version(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(q) = query else {
        return Ok(None);
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).map_err(|e| {
        ApiError::invalid(format!("the query is malformed: {e}")).with_target("query")
    })?;
    Ok(pairs
        .into_iter()
        .rev()
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v))
}

/// The `api-version` check of one group's routes: marks the request [`Mount::Arm`].
async fn versioned(group: Group, mut req: Request, next: Next) -> Response {
    let version = match api_version(req.uri().query()).and_then(|a| group.version(a.as_deref())) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(Mount::Arm(version));
    next.run(req).await
}

/// `/subscriptions/{t}/providers/Microsoft.Security`.
const SUB: &str = "/subscriptions/{t}/providers/Microsoft.Security";
/// `/subscriptions/{t}/resourceGroups/{rg}/providers/Microsoft.Security`.
const RG: &str = "/subscriptions/{t}/resourceGroups/{rg}/providers/Microsoft.Security";

/// Every ARM path served, on the `/v1` handlers.
pub fn router() -> Router<Arc<Shared>> {
    let contacts = Router::new()
        .route(&format!("{SUB}/securityContacts"), get(contacts::list))
        .route(
            &format!("{SUB}/securityContacts/{{name}}"),
            get(contacts::get)
                .put(contacts::put)
                .delete(contacts::delete),
        )
        .route_layer(middleware::from_fn(|r, n| versioned(Group::Contacts, r, n)));
    let policy = "jitNetworkAccessPolicies/{name}";
    let jit = Router::new()
        .route(
            &format!("{SUB}/jitNetworkAccessPolicies"),
            get(jit::list_policies),
        )
        .route(
            &format!("{SUB}/locations/{{loc}}/jitNetworkAccessPolicies"),
            get(jit::list_policies),
        )
        .route(
            &format!("{RG}/jitNetworkAccessPolicies"),
            get(jit::list_policies),
        )
        .route(
            &format!("{RG}/locations/{{loc}}/jitNetworkAccessPolicies"),
            get(jit::list_policies),
        )
        .route(
            &format!("{RG}/locations/{{loc}}/{policy}"),
            get(jit::get_policy)
                .put(jit::put_policy)
                .delete(jit::delete_policy),
        )
        .route(
            &format!("{RG}/locations/{{loc}}/{policy}/initiate"),
            post(jit::initiate),
        )
        .route_layer(middleware::from_fn(|r, n| versioned(Group::Jit, r, n)));
    let alerts = Router::new()
        .route(&format!("{SUB}/alerts"), get(alerts::list))
        .route(&format!("{RG}/alerts"), get(alerts::list))
        .route(
            &format!("{SUB}/locations/{{loc}}/alerts"),
            get(alerts::list),
        )
        .route(&format!("{RG}/locations/{{loc}}/alerts"), get(alerts::list))
        .route(
            &format!("{SUB}/locations/{{loc}}/alerts/{{name}}"),
            get(alerts::get),
        )
        .route(
            &format!("{RG}/locations/{{loc}}/alerts/{{name}}"),
            get(alerts::get),
        )
        .route_layer(middleware::from_fn(|r, n| versioned(Group::Alerts, r, n)));
    // The state actions (dismiss, resolve, …, simulate) answer 405 whatever the version:
    // alerts are read-only, and the refusal is audited.
    let read_only = Router::new()
        .route(
            &format!("{SUB}/locations/{{loc}}/alerts/{{name}}/{{action}}"),
            post(alerts::read_only),
        )
        .route(
            &format!("{RG}/locations/{{loc}}/alerts/{{name}}/{{action}}"),
            post(alerts::read_only),
        );
    contacts.merge(jit).merge(alerts).merge(read_only)
}

/// The `/v1` route nearest an unserved path, for its 404: the kind its segments name
/// (in the tenant its `subscriptions/{t}` names, when that is a tenant id).
pub fn nearest_v1(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let after = |name: &str| {
        segs.iter()
            .position(|s| s.eq_ignore_ascii_case(name))
            .and_then(|i| segs.get(i + 1).copied())
    };
    let tenant = after("subscriptions")
        .filter(|t| TenantId::parse(t).is_ok())
        .unwrap_or("{tenant}");
    let has = |name: &str| segs.iter().any(|s| s.eq_ignore_ascii_case(name));
    let kind = if has("securityContacts") || has("securityContact") {
        "contacts"
    } else if has("jitNetworkAccessPolicies") {
        "jit-policies"
    } else if has("jitNetworkAccessRequests") {
        "jit-requests"
    } else if has("alerts") {
        "alerts"
    } else {
        return format!("/v1/tenants/{tenant}/{{contacts|jit-policies|jit-requests|alerts|audit}}");
    };
    format!("/v1/tenants/{tenant}/{kind}")
}

/// The answer to a path no route serves: a 404 that, for a Microsoft.Security path,
/// names the nearest `/v1` route rather than a bare "no such route".
pub async fn not_found(uri: http::Uri) -> ApiError {
    let path = uri.path();
    if path.starts_with("/subscriptions/") || path.starts_with("/providers/") {
        ApiError::not_found(format!(
            "steward does not serve this Microsoft.Security path (only the security contacts, JIT network access policies and alerts operations of the API are served, each at its own path); the nearest route is {}",
            nearest_v1(path)
        ))
    } else {
        ApiError::not_found(format!(
            "no such route; the API is under /v1 (GET /v1/tenants lists your tenants; {} is a tenant's data)",
            nearest_v1(path)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_route_names_the_kind_and_tenant() {
        assert_eq!(
            nearest_v1(
                "/subscriptions/contoso/providers/Microsoft.Security/securityContact/default"
            ),
            "/v1/tenants/contoso/contacts"
        );
        assert_eq!(
            nearest_v1(
                "/subscriptions/contoso/providers/Microsoft.Security/jitNetworkAccessPolicies/x/revoke"
            ),
            "/v1/tenants/contoso/jit-policies"
        );
        assert_eq!(
            nearest_v1("/subscriptions/BAD%20ID/providers/Microsoft.Security/alerts/x/y/z"),
            "/v1/tenants/{tenant}/alerts"
        );
        assert_eq!(
            nearest_v1("/subscriptions/contoso/providers/Microsoft.Security/pricings"),
            "/v1/tenants/contoso/{contacts|jit-policies|jit-requests|alerts|audit}"
        );
    }

    #[test]
    fn versions_are_checked_per_group() {
        assert_eq!(
            Group::Contacts.version(Some("2020-01-01-preview")),
            Ok("2020-01-01-preview")
        );
        assert_eq!(Group::Jit.version(Some("2020-01-01")), Ok("2020-01-01"));
        let e = Group::Alerts.version(Some("2019-01-01")).unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        assert!(
            e.detail.message.contains("2022-01-01"),
            "{}",
            e.detail.message
        );
        assert_eq!(e.detail.target.as_deref(), Some("api-version"));
        assert!(Group::Contacts.version(None).is_err());
        assert_eq!(
            api_version(Some("a=1&api-version=2022-01-01"))
                .unwrap()
                .as_deref(),
            Some("2022-01-01")
        );
    }
}
