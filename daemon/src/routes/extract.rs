//! Extractors whose rejections are the API's JSON errors rather than axum's plain text.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{FromRequestParts, Path, Query};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Query<T>` answering a malformed query with a JSON 400.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Q(t))
            .map_err(|e| ApiError::invalid(e.body_text()).with_target("query"))
    }
}

/// `Path<T>` answering a malformed path (bad percent-encoding, …) with a JSON 400.
pub struct P<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| ApiError::invalid(e.body_text()).with_target("path"))
    }
}

/// A daemon-wide request number, for correlating log lines and audit records. The accept
/// loop (`server`) numbers each request and puts it in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub u64);

impl RequestId {
    /// The next request's number.
    pub fn next() -> RequestId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        RequestId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The request id the accept loop gave this request.
pub struct Rid(pub RequestId);

impl<S: Send + Sync> FromRequestParts<S> for Rid {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Rid(parts
            .extensions
            .get::<RequestId>()
            .copied()
            .unwrap_or(RequestId(0))))
    }
}
