//! The API's errors: one type that every handler returns and that renders as
//! `{"error": {"code", "message", "target"?, "details"?}}` with its HTTP status.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use steward::permissions::Permission;
use steward::wire::{ErrorBody, ErrorDetail, codes};

use crate::store::{StoreError, WriteError};

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub detail: ErrorDetail,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                target: None,
                details: Vec::new(),
            },
        }
    }

    /// Names the field the error is about.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.detail.target = Some(target.into());
        self
    }

    /// 400 invalid input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_INPUT, message)
    }

    /// 403, naming the permission needed.
    pub fn forbidden(needed: Permission) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            format!("this needs the `{needed}` permission, which the acting profile lacks"),
        )
    }

    /// 404 for a resource, or for a tenant that is missing or not granted.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, what)
    }

    /// 404 for a tenant: identical whether it does not exist or is not granted.
    pub fn no_tenant() -> Self {
        Self::not_found("no such tenant")
    }

    /// 405.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            message,
        )
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::CONFLICT, message)
    }

    /// 412.
    pub fn precondition_failed(current: Option<&str>) -> Self {
        let msg = match current {
            Some(etag) => format!(
                "If-Match does not match the current etag \"{etag}\": the record changed since you read it"
            ),
            None => "If-Match was given but the record does not exist".to_owned(),
        };
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            codes::PRECONDITION_FAILED,
            msg,
        )
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    /// 415.
    pub fn unsupported_media_type(allowed: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            format!("send the body as {allowed}"),
        )
    }

    /// 429.
    pub fn too_many_connections() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::TOO_MANY_CONNECTIONS,
            "too many connections open (in total or for your uid); close some and retry",
        )
    }

    /// 503.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::SHUTTING_DOWN,
            "the daemon is shutting down",
        )
    }

    /// 507.
    pub fn storage_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            codes::STORAGE_FULL,
            "the data disk is full; nothing was changed",
        )
    }

    /// 500. The cause goes to the log, not to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error; the daemon's log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.detail })).into_response()
    }
}

impl From<steward::model::ValidationErrors> for ApiError {
    /// 400 naming every invalid field: the first as `target`, all of them in `details`.
    fn from(e: steward::model::ValidationErrors) -> Self {
        let details: Vec<ErrorDetail> = e
            .errors()
            .iter()
            .map(|f| ErrorDetail {
                code: codes::INVALID_INPUT.to_owned(),
                message: format!("{}: {}", f.path, f.message),
                target: Some(f.path.clone()),
                details: Vec::new(),
            })
            .collect();
        let mut err = ApiError::invalid(e.to_string());
        err.detail.target = e.target().map(str::to_owned);
        err.detail.details = details;
        err
    }
}

/// How a failed write answers: the caller's fault (404, 412, 400) or the daemon's
/// (500, 507).
impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound { kind, name } => {
                ApiError::not_found(format!("no {kind} named `{name}`"))
            }
            WriteError::PreconditionFailed { current, .. } => {
                ApiError::precondition_failed(current.as_deref())
            }
            WriteError::Invalid(m) => ApiError::invalid(m),
            WriteError::Store(s) => s.into(),
            // Corrupt, Encode, Unaudited, Panicked: the daemon's own fault, logged whole
            // and answered 500 without details.
            other => ApiError::internal(&other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if matches!(e, StoreError::StorageFull) {
            ApiError::storage_full()
        } else {
            ApiError::internal(&e)
        }
    }
}
