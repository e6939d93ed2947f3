//! List paging: `?limit=` and the opaque `?cursor=` that `nextLink` carries.
//!
//! A cursor is URL-safe base64 of a small JSON object naming the tenant and the list it
//! belongs to and the position to resume after. It only ever resumes the same tenant's
//! same list: one from another tenant or list is a 400, never a peek elsewhere (and the
//! store reads through a tenant-scoped handle regardless).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use steward::names::TenantId;
use steward::wire::List;

use crate::error::ApiError;

/// Items per page when `?limit=` is absent.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `?limit=`.
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct CursorBody {
    /// Tenant.
    t: String,
    /// Which list.
    l: String,
    /// Where to resume (after this position).
    p: String,
}

/// Encodes a resume position of `list` in `tenant`.
pub fn encode(tenant: &TenantId, list: &str, position: &str) -> String {
    let body = CursorBody {
        t: tenant.to_string(),
        l: list.to_owned(),
        p: position.to_owned(),
    };
    // Serialising three strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

/// Decodes a cursor of `list` in `tenant` into its position.
pub fn decode(tenant: &TenantId, list: &str, cursor: &str) -> Result<String, ApiError> {
    let bad =
        || ApiError::invalid("the cursor is not one this list gave out").with_target("cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if body.t != tenant.as_str() || body.l != list {
        return Err(bad());
    }
    Ok(body.p)
}

/// A checked `?limit=`.
pub fn limit(raw: Option<usize>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(
            ApiError::invalid(format!("limit must be between 1 and {MAX_LIMIT}"))
                .with_target("limit"),
        ),
    }
}

/// Builds a page: `nextLink` is `path?` + the filters in `query` (without any old
/// cursor) + `limit` + the new cursor.
pub fn page<T>(
    value: Vec<T>,
    path: &str,
    query: &[(&str, String)],
    limit: usize,
    next: Option<String>,
) -> List<T> {
    let next_link = next.map(|cursor| {
        let mut ser = form_urlencoded_pairs(query);
        ser.push(("limit".to_owned(), limit.to_string()));
        ser.push(("cursor".to_owned(), cursor));
        // Encoding pairs of strings cannot fail.
        let qs = serde_urlencoded::to_string(&ser).unwrap_or_default();
        format!("{path}?{qs}")
    });
    List { value, next_link }
}

fn form_urlencoded_pairs(query: &[(&str, String)]) -> Vec<(String, String)> {
    query
        .iter()
        .filter(|(k, _)| *k != "cursor" && *k != "limit")
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tid;

    #[test]
    fn a_cursor_resumes_only_its_own_tenant_and_list() {
        let c = encode(&tid("contoso"), "contacts", "default");
        assert_eq!(decode(&tid("contoso"), "contacts", &c).unwrap(), "default");
        assert!(decode(&tid("fabrikam"), "contacts", &c).is_err());
        assert!(decode(&tid("contoso"), "alerts", &c).is_err());
        assert!(decode(&tid("contoso"), "contacts", "not-base64!").is_err());
    }

    #[test]
    fn next_link_keeps_filters_and_replaces_the_cursor() {
        let p = page::<()>(
            vec![],
            "/v1/tenants/t/alerts",
            &[
                ("severity", "High".into()),
                ("q", "a b".into()),
                ("cursor", "old".into()),
            ],
            10,
            Some("NEW".into()),
        );
        assert_eq!(
            p.next_link.as_deref(),
            Some("/v1/tenants/t/alerts?severity=High&q=a+b&limit=10&cursor=NEW")
        );
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
    }
}
