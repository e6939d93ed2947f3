//! Turning stored documents into API resources, and the small checks every resource
//! route shares.

use http::HeaderValue;
use http::header::ETAG;
use serde::Deserialize;
use serde_json::Value;
use steward::names::ResourceName;
use steward::permissions::Permission;
use steward::wire::List;

use super::ctx::TenantCtx;
use super::paging;
use crate::error::ApiError;
use crate::store::{Doc, Kind};

/// The resource as served: the stored JSON with the current `etag`.
pub fn doc_json(doc: &Doc) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_str(&doc.body_json).map_err(|e| ApiError::internal(&e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("etag".into(), Value::String(doc.etag.clone()));
    }
    Ok(v)
}

/// The `ETag` header (quoted) for an etag.
pub fn etag_header(etag: &str) -> [(http::HeaderName, HeaderValue); 1] {
    let v =
        HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"\""));
    [(ETAG, v)]
}

/// A resource name from the path, or 400.
pub fn resource_name(name: &str) -> Result<ResourceName, ApiError> {
    ResourceName::parse(name).map_err(|e| ApiError::invalid(e.to_string()).with_target("name"))
}

/// `?limit=&cursor=` of a list in name order (other parameters, such as the Azure paths'
/// `api-version`, are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Page size.
    pub limit: Option<usize>,
    /// Where to resume.
    pub cursor: Option<String>,
}

/// One page of a tenant's records of `kind` in name order, as the list envelope: checks
/// `needed`, resumes after the cursor of the list called `list`, serves each record
/// with `to_json`, and links the next page at `path`.
pub async fn name_page(
    ctx: &TenantCtx,
    needed: Permission,
    kind: Kind,
    list: &str,
    q: &ListQuery,
    path: &str,
    mut to_json: impl FnMut(&Doc) -> Result<Value, ApiError>,
) -> Result<List<Value>, ApiError> {
    ctx.require(needed, list).await?;
    let limit = paging::limit(q.limit)?;
    let after = match &q.cursor {
        Some(c) => Some(paging::decode(ctx.tenant.as_str(), list, c)?),
        None => None,
    };
    let page = ctx
        .read(move |r| Ok(r.list(kind, after.as_deref(), limit)?))
        .await?;
    let value = page
        .items
        .iter()
        .map(&mut to_json)
        .collect::<Result<Vec<_>, _>>()?;
    let next = page
        .next
        .map(|n| paging::encode(ctx.tenant.as_str(), list, &n));
    Ok(paging::page(value, path, &[], limit, next))
}
