//! Turning stored documents into API resources, and the small checks every resource
//! route shares.

use http::HeaderValue;
use http::header::ETAG;
use serde_json::Value;
use steward::names::ResourceName;

use crate::error::ApiError;
use crate::store::Doc;

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
