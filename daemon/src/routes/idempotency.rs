//! `Idempotency-Key` on the creating `POST`s (alerts batch, DSR open, JIT initiate): a
//! retry with the same key and the same request answers the first outcome (status, ETag
//! and body) without acting twice; the same key with a different request is 422.
//!
//! Keys belong to one caller in one tenant: the record is named `{uid}-{sha256(key)}` under the
//! tenant ([`Kind::IdempotencyKey`]), so a key sent by another uid (or in another tenant)
//! never replays this one's answer — an answer can carry what only its caller may see (a
//! DSR's subject). The outcome is recorded by the write job that acts, so it commits in
//! the same transaction as the change (no change without its record, and a job that fails
//! records nothing: a failed request retried runs again). It is kept [`KEEP`] and then
//! removed by the retention sweep. The permission check of a route runs before any replay.
//! Not here: what each route does (its own module).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use steward::names::ResourceName;

use super::ctx::TenantCtx;
use crate::error::ApiError;
use crate::store::{DocInput, Kind, TenantWrite, hex};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// Longest key accepted.
pub const MAX_LEN: usize = 128;

/// How long an outcome is kept for replay.
pub const KEEP: Duration = Duration::from_secs(24 * 60 * 60);

/// Set on a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// One request's key, bound to its caller and to what it asks.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The record's name: `{uid}-{hex sha256 of the key}`.
    name: ResourceName,
    /// SHA-256 of the operation and the body: a retry must ask the same thing.
    fingerprint: String,
}

/// An answer as recorded for replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The HTTP status.
    pub status: u16,
    /// The `ETag` header, bare, when the answer had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The JSON body, as text.
    pub body: String,
}

/// What is stored under the key.
#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    fingerprint: String,
    outcome: Outcome,
}

/// Checks a key's grammar: 1 to [`MAX_LEN`] of `A-Z a-z 0-9 . _ : -` (a UUID fits).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl IdempotencyKey {
    /// The request's key, if it sent one (400 naming the header when it is malformed or
    /// sent twice). `operation` names what the route does to what (e.g.
    /// `jit.initiate jit-policies/web`), so a key reused on another route is a different
    /// request.
    pub fn of(
        ctx: &TenantCtx,
        headers: &HeaderMap,
        operation: &str,
        body: &[u8],
    ) -> Result<Option<IdempotencyKey>, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(v) = values.next() else {
            return Ok(None);
        };
        let bad = |why: &str| {
            ApiError::invalid(format!(
                "{HEADER} {why}: it must be 1 to {MAX_LEN} characters of A-Z, a-z, 0-9, `.`, `_`, `:`, `-` (a UUID fits), sent once"
            ))
            .with_target(HEADER)
        };
        if values.next().is_some() {
            return Err(bad("is sent more than once"));
        }
        let key = v.to_str().map_err(|_| bad("is not ASCII"))?;
        if !valid_key(key) {
            return Err(bad("is malformed"));
        }
        let mut h = Sha256::new();
        h.update(operation.as_bytes());
        h.update([0u8]);
        h.update(body);
        let fingerprint = hex(&h.finalize());
        // `{uid}-{sha256(key)}`: a resource name whatever characters the key holds.
        let key_hash = hex(&Sha256::digest(key.as_bytes()));
        let name = ResourceName::parse(&format!("{}-{key_hash}", ctx.caller.uid))
            .map_err(|e| ApiError::internal(&e))?;
        Ok(Some(IdempotencyKey { name, fingerprint }))
    }

    /// In a write job: the outcome recorded under this key, if any; 422 naming the
    /// header when the key was recorded for a different request.
    pub fn recorded(&self, txn: &dyn TenantWrite) -> Result<Option<Outcome>, ApiError> {
        let Some(doc) = txn.get(Kind::IdempotencyKey, &self.name)? else {
            return Ok(None);
        };
        let r: Recorded =
            serde_json::from_str(&doc.body_json).map_err(|e| ApiError::internal(&e))?;
        if r.fingerprint != self.fingerprint {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IdempotencyKeyReused",
                format!(
                    "this {HEADER} was already used for a different request (another body or route); use a new key for a new request"
                ),
            )
            .with_target(HEADER));
        }
        Ok(Some(r.outcome))
    }

    /// In the write job that acts: records `outcome` under the key, committed with the
    /// job's change and kept for [`KEEP`]. A key recorded meanwhile (a concurrent retry
    /// of a chunked ingest) is left as it is.
    pub fn record(&self, txn: &mut dyn TenantWrite, outcome: Outcome) -> Result<(), ApiError> {
        let r = Recorded {
            fingerprint: self.fingerprint.clone(),
            outcome,
        };
        let json = serde_json::to_string(&r).map_err(|e| ApiError::internal(&e))?;
        let keep = i64::try_from(KEEP.as_secs()).unwrap_or(i64::MAX);
        let until = (txn.now_micros() / 1_000_000).saturating_add(keep);
        txn.put_new(
            Kind::IdempotencyKey,
            &self.name,
            DocInput::new(json).expires_at(until),
        )?;
        Ok(())
    }
}

impl Outcome {
    /// An answer with a JSON body.
    pub fn json(
        status: StatusCode,
        etag: Option<String>,
        body: &impl Serialize,
    ) -> Result<Outcome, ApiError> {
        Ok(Outcome {
            status: status.as_u16(),
            etag,
            body: serde_json::to_string(body).map_err(|e| ApiError::internal(&e))?,
        })
    }

    /// The answer; `replayed` adds `Idempotent-Replayed: true`.
    pub fn into_response(self, replayed: bool) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut resp = (status, self.body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(tag) = self
            .etag
            .and_then(|t| HeaderValue::from_str(&format!("\"{t}\"")).ok())
        {
            h.insert(header::ETAG, tag);
        }
        if replayed {
            h.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_grammar() {
        assert!(valid_key("0190b8c2-7d1e-7c3a-9f00-1234567890ab"));
        assert!(valid_key("a"));
        assert!(!valid_key(""));
        assert!(!valid_key(&"a".repeat(MAX_LEN + 1)));
        assert!(!valid_key("a b"));
        assert!(!valid_key("a/b"));
    }
}
