//! Every path of the socket API, built in one place for the CLI and the TUI alike.
//!
//! Paths are made from a [`Resource`] and names, never typed out by callers: each path
//! segment is percent-encoded (a record named `a/b` stays one segment), and query pairs
//! are form-encoded as the daemon decodes them. What it is not: the transport
//! ([`super::Client`] sends what is built here) nor the meaning of the answers.
//!
//! ```
//! use steward::client::paths::{self, RecordAction};
//! use steward::resource::Resource;
//! let t = paths::tenant("contoso");
//! assert_eq!(t.record(Resource::Contacts, "default"), "/v1/tenants/contoso/contacts/default");
//! assert_eq!(
//!     t.action(Resource::JitRequests, "r 1", RecordAction::Revoke),
//!     "/v1/tenants/contoso/jit-requests/r%201/revoke"
//! );
//! ```

use crate::resource::Resource;

/// Characters escaped in a path segment: everything but RFC 3986 unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/v1/whoami`: who the daemon sees the caller as.
pub fn whoami() -> String {
    "/v1/whoami".to_owned()
}

/// `/v1/tenants`: the tenants the caller holds a grant in.
pub fn tenants() -> String {
    "/v1/tenants".to_owned()
}

/// `/v1/health`.
pub fn health() -> String {
    "/v1/health".to_owned()
}

/// `/v1/events`, for one tenant when given.
pub fn events(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => with_query("/v1/events", &[("tenant", t.to_owned())]),
        None => "/v1/events".to_owned(),
    }
}

/// The paths under one tenant (`/v1/tenants/{t}/…`).
pub fn tenant(tenant: &str) -> TenantPaths {
    TenantPaths {
        base: format!("/v1/tenants/{}", encode(tenant)),
    }
}

/// Builds the paths under one tenant; see [`tenant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPaths {
    /// `/v1/tenants/{t}`, the tenant encoded.
    base: String,
}

/// An action on one record, posted to `…/{kind}/{id}/{action}` (the bundle is fetched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordAction {
    /// Request JIT access under a policy.
    Initiate,
    /// End a JIT request now.
    Revoke,
    /// Confirm a pending data-subject request.
    Confirm,
    /// Reject a pending data-subject request.
    Reject,
    /// Extend a data-subject request's deadline (once).
    Extend,
    /// The bundle of a completed data-subject export (a `GET`).
    Bundle,
}

impl RecordAction {
    /// Its last path segment.
    pub fn segment(self) -> &'static str {
        match self {
            RecordAction::Initiate => "initiate",
            RecordAction::Revoke => "revoke",
            RecordAction::Confirm => "confirm",
            RecordAction::Reject => "reject",
            RecordAction::Extend => "extend",
            RecordAction::Bundle => "bundle",
        }
    }
}

impl TenantPaths {
    /// A kind's collection, `…/{kind}?query` (a list, or the target of a creating POST).
    pub fn list(&self, kind: Resource, query: &[(&str, String)]) -> String {
        with_query(&format!("{}/{}", self.base, kind.segment()), query)
    }

    /// One record, `…/{kind}/{id}`.
    pub fn record(&self, kind: Resource, id: &str) -> String {
        format!("{}/{}/{}", self.base, kind.segment(), encode(id))
    }

    /// An action on one record, `…/{kind}/{id}/{action}`.
    pub fn action(&self, kind: Resource, id: &str, action: RecordAction) -> String {
        format!("{}/{}", self.record(kind, id), action.segment())
    }

    /// A whole kind exported, `…/export/{kind}?format={format}`.
    pub fn export(&self, kind: Resource, format: &str) -> String {
        self.export_where(kind, format, &[])
    }

    /// A kind exported as a filtered list shows it, `…/export/{kind}?format=…&severity=…`
    /// (the daemon takes the alert list's filters on an alerts export).
    pub fn export_where(&self, kind: Resource, format: &str, filters: &[(&str, String)]) -> String {
        let mut query = vec![("format", format.to_owned())];
        query.extend(filters.iter().cloned());
        with_query(&format!("{}/export/{}", self.base, kind.segment()), &query)
    }

    /// The records naming a data subject, `…/subjects?email=…`.
    pub fn subjects(&self, query: &[(&str, String)]) -> String {
        with_query(&format!("{}/subjects", self.base), query)
    }

    /// The overview's alert counts, `…/overview/alerts?days=…`.
    pub fn overview_alerts(&self, days: u32) -> String {
        with_query(
            &format!("{}/overview/alerts", self.base),
            &[("days", days.to_string())],
        )
    }

    /// The audit chain's check, `…/audit/verify`.
    pub fn audit_verify(&self) -> String {
        format!("{}/{}/verify", self.base, Resource::Audit.segment())
    }
}

/// Percent-encodes one path segment.
pub fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// `path?k=v&…` with the pairs form-encoded (nothing appended when there are none).
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("{path}?{}", query.finish())
}

/// The request target of a list's `nextLink`: a path (`/v1/…?cursor=…`) as is, an
/// absolute URL by its path and query, a bare query (`?cursor=…`) on the list's own
/// path (`list_path`, its query dropped). `None` when it is none of these.
pub fn resolve_next_link(list_path: &str, link: &str) -> Option<String> {
    if link.starts_with('/') {
        return Some(link.to_owned());
    }
    if link.starts_with('?') {
        let path = list_path.split('?').next().unwrap_or(list_path);
        return Some(format!("{path}{link}"));
    }
    link.parse::<http::Uri>()
        .ok()
        .filter(|uri| uri.scheme().is_some())
        .and_then(|uri| uri.path_and_query().map(|pq| pq.as_str().to_owned()))
        .filter(|pq| pq.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        let t = tenant("contoso");
        assert_eq!(
            t.record(Resource::Contacts, "default"),
            "/v1/tenants/contoso/contacts/default"
        );
        assert_eq!(
            t.record(Resource::Alerts, "a/b?c d"),
            "/v1/tenants/contoso/alerts/a%2Fb%3Fc%20d"
        );
        assert_eq!(
            t.record(Resource::Alerts, "x_y-z.1~"),
            "/v1/tenants/contoso/alerts/x_y-z.1~"
        );
        assert_eq!(
            t.action(Resource::JitPolicies, "p", RecordAction::Initiate),
            "/v1/tenants/contoso/jit-policies/p/initiate"
        );
        assert_eq!(t.audit_verify(), "/v1/tenants/contoso/audit/verify");
        assert_eq!(
            tenant("../x").list(Resource::Dsr, &[]),
            "/v1/tenants/..%2Fx/dsr"
        );
    }

    #[test]
    fn queries_are_form_encoded() {
        assert_eq!(with_query("/p", &[]), "/p");
        assert_eq!(
            with_query(
                "/p",
                &[
                    ("since", "2024-05-01T00:00:00+02:00".into()),
                    ("q", "a b&c".into())
                ]
            ),
            "/p?since=2024-05-01T00%3A00%3A00%2B02%3A00&q=a+b%26c"
        );
        assert_eq!(
            tenant("t").export(Resource::JitRequests, "csv"),
            "/v1/tenants/t/export/jit-requests?format=csv"
        );
        assert_eq!(events(Some("t")), "/v1/events?tenant=t");
        assert_eq!(
            tenant("t").export_where(Resource::Alerts, "json", &[("severity", "High".into())]),
            "/v1/tenants/t/export/alerts?format=json&severity=High"
        );
    }

    #[test]
    fn next_links_resolve_to_request_targets() {
        let p = "/v1/tenants/t/alerts?limit=5";
        assert_eq!(
            resolve_next_link(p, "/v1/tenants/t/alerts?cursor=x").as_deref(),
            Some("/v1/tenants/t/alerts?cursor=x")
        );
        assert_eq!(
            resolve_next_link(p, "?cursor=x").as_deref(),
            Some("/v1/tenants/t/alerts?cursor=x")
        );
        assert_eq!(
            resolve_next_link(p, "http://localhost/v1/tenants/t/alerts?cursor=x&limit=5")
                .as_deref(),
            Some("/v1/tenants/t/alerts?cursor=x&limit=5")
        );
        assert_eq!(resolve_next_link(p, "cursor"), None);
    }
}
