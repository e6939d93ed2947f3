//! Request bodies: the content type, the size limit (counted while reading, so a huge
//! body is refused without being held), and JSON decoding with errors that say where.

use crate::strict_json::json_value;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, header};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::error::ApiError;

/// What a route accepts as its body's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// `application/json` only.
    Json,
    /// `application/json` or `application/x-ndjson` (alert ingestion).
    JsonOrNdjson,
}

/// The body's format, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON value.
    Json,
    /// One JSON value per line.
    Ndjson,
}

fn format_of(headers: &HeaderMap, accept: Accept) -> Result<Format, ApiError> {
    let allowed = match accept {
        Accept::Json => "application/json",
        Accept::JsonOrNdjson => "application/json or application/x-ndjson",
    };
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::unsupported_media_type(allowed));
    };
    let mime = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match (mime.as_str(), accept) {
        ("application/json", _) => Ok(Format::Json),
        ("application/x-ndjson", Accept::JsonOrNdjson) => Ok(Format::Ndjson),
        _ => Err(ApiError::unsupported_media_type(allowed)),
    }
}

/// The body's size as its `Content-Length` declares it, if it does.
pub fn declared_len(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads the whole body, refusing it past `limit` bytes (413) or with a content type
/// `accept` does not allow (415). The body is read into one buffer sized by its
/// `Content-Length`, so it is held once, never a copy of its frames beside it.
pub async fn read(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
    accept: Accept,
) -> Result<(Format, Bytes), ApiError> {
    let format = format_of(headers, accept)?;
    let declared = declared_len(headers);
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit));
    let mut buf = BytesMut::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::invalid(format!("the body could not be read: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(ApiError::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((format, buf.freeze()))
}

/// Parses a JSON body that must be an object (400 naming the line and column when it
/// is not JSON at all, or names a key twice).
pub fn json_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let v: Value = json_value(bytes).map_err(|e| {
        ApiError::invalid(format!("the body is not valid JSON: {e}")).with_target("body")
    })?;
    if !v.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object").with_target("body"));
    }
    Ok(v)
}

/// Reads and parses a JSON object body with the normal body limit.
pub async fn object(
    shared: &crate::state::Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    let limit = shared.config().limits.max_body.bytes();
    let (_, bytes) = read(headers, body, limit, Accept::Json).await?;
    json_object(&bytes)
}

/// The etag of an `If-Match` header: quoted or bare, or `*`.
pub fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::invalid("If-Match is not ASCII").with_target("If-Match"))?
        .trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    let tag = s
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s);
    if tag.is_empty() {
        return Err(ApiError::invalid("If-Match is empty").with_target("If-Match"));
    }
    Ok(Some(tag.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_quoted_bare_and_star() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        h.insert(header::IF_MATCH, "\"abc\"".parse().unwrap());
        assert_eq!(if_match(&h).unwrap().as_deref(), Some("abc"));
        h.insert(header::IF_MATCH, "abc".parse().unwrap());
        assert_eq!(if_match(&h).unwrap().as_deref(), Some("abc"));
        h.insert(header::IF_MATCH, "*".parse().unwrap());
        assert_eq!(if_match(&h).unwrap().as_deref(), Some("*"));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(json_object(br#"{"a":1,"b":{"c":[{"d":1}]}}"#).is_ok());
        assert!(json_object(br#"{"a":1,"a":2}"#).is_err());
        assert!(json_object(br#"{"p":{"e":"x","e":"y"}}"#).is_err());
        assert!(json_object(br#"{"p":[{"n":1,"n":2}]}"#).is_err());
        assert!(json_value(b"[1,2.5,-3,null,true,\"s\"]").is_ok());
        assert!(json_value(&[b'['; 200]).is_err());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(format_of(&h, Accept::Json).is_err());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(format_of(&h, Accept::Json).unwrap(), Format::Json);
        h.insert(
            header::CONTENT_TYPE,
            "application/x-ndjson".parse().unwrap(),
        );
        assert!(format_of(&h, Accept::Json).is_err());
        assert_eq!(format_of(&h, Accept::JsonOrNdjson).unwrap(), Format::Ndjson);
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(format_of(&h, Accept::JsonOrNdjson).is_err());
    }
}
