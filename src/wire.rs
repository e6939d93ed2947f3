//! The API's wire types: what goes over the socket besides the resources themselves.
//!
//! The list envelope, the error body, change events, and the small answers of
//! `/v1/health`, `/v1/whoami`, `/v1/tenants`, `…/audit/verify` and `…/overview/alerts`. Resource shapes live
//! in [`crate::model`]; HTTP plumbing lives in the daemon and the [`crate::client`].

use serde::{Deserialize, Serialize};

use crate::permissions::PermissionSet;

/// A page of a list: `{"value": [...], "nextLink": "…"}`. `nextLink` is absent on the
/// last page; when present it is a path with the same filters and an opaque cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    /// The items of this page.
    pub value: Vec<T>,
    /// Where the next page is, absent on the last page.
    #[serde(rename = "nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// The error body of every non-2xx answer: `{"error": {"code", "message", "target"?}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable machine-readable code, one of the [`codes`].
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The field path the error is about (`properties.emails`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Further errors (one per invalid field or item), when there are several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

/// The error codes the daemon answers with, by HTTP status.
pub mod codes {
    /// 400: the request is malformed or a field is invalid.
    pub const INVALID_INPUT: &str = "InvalidInput";
    /// 403: the acting profile lacks the permission named in the message.
    pub const FORBIDDEN: &str = "Forbidden";
    /// 404: no such resource — or a tenant that does not exist or is not granted.
    pub const NOT_FOUND: &str = "NotFound";
    /// 405: the kind is read-only (alerts) or the method is unknown.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// 409: the request conflicts with the resource's state.
    pub const CONFLICT: &str = "Conflict";
    /// 412: `If-Match` does not match the current etag.
    pub const PRECONDITION_FAILED: &str = "PreconditionFailed";
    /// 413: the body is larger than the configured limit.
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
    /// 415: a body with a content type other than JSON (or NDJSON for ingest).
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    /// 429: too many connections (in total or for this uid).
    pub const TOO_MANY_CONNECTIONS: &str = "TooManyConnections";
    /// 500: a bug or an unexpected storage error; the daemon logs the details.
    pub const INTERNAL: &str = "InternalError";
    /// 503: the daemon is shutting down.
    pub const SHUTTING_DOWN: &str = "ShuttingDown";
    /// 507: the data disk is full.
    pub const STORAGE_FULL: &str = "StorageFull";
}

/// One change event on `/v1/events`: one JSON line per committed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// A sequence number, increasing per tenant and kind of record since the daemon
    /// started (so it reveals nothing of changes the subscriber may not read).
    pub seq: u64,
    /// When the change committed (RFC 3339).
    pub at: String,
    /// The tenant the change happened in.
    pub tenant: String,
    /// The kind of record: `contacts`, `jit-policies`, `jit-requests`, `alerts`, `dsr`,
    /// `audit`, `config`.
    pub kind: String,
    /// The record's name or id (empty for batch events such as a purge).
    pub name: String,
    /// What happened: `created`, `updated`, `deleted`, `expired`, `revoked`, `purged`,
    /// `ingested`, `overdue`, …
    pub action: String,
}

/// The answer of `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` while serving, `shutting-down` while draining.
    pub status: String,
    /// The daemon's version.
    pub version: String,
}

/// One grant as `whoami` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    /// The tenant id.
    pub tenant: String,
    /// The profile the grant gives.
    pub profile: String,
}

/// The answer of `GET /v1/whoami`: the caller as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The caller's uid, from the socket's peer credentials.
    pub uid: u32,
    /// The caller's primary gid, from the peer credentials.
    pub gid: u32,
    /// The caller's user name from the password database (the uid when it has none).
    pub user: String,
    /// The names of the caller's groups.
    pub groups: Vec<String>,
    /// Every grant that applies to the caller, expanded per tenant.
    pub grants: Vec<GrantInfo>,
}

/// One tenant in `GET /v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    /// The tenant id.
    pub id: String,
    /// The tenant's display name from config.
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// The profiles the caller holds here.
    pub profiles: Vec<String>,
    /// The union of those profiles' permissions.
    pub permissions: PermissionSet,
    /// The profiles the caller may act under here (`X-Steward-Role`), lowest first.
    #[serde(default, rename = "actableProfiles")]
    pub actable_profiles: Vec<String>,
}

/// The head of an audit chain: the last record's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The last record's sequence number (0 when the chain is empty).
    pub seq: u64,
    /// The last record's hash (hex), or the anchor when every record was purged.
    pub hash: String,
}

/// The answer of `GET /v1/tenants/{t}/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether every remaining record chains to the anchor and hashes correctly.
    pub ok: bool,
    /// How many records were checked.
    pub records: u64,
    /// The chain's head, so anyone who saved an older head can check nothing was cut.
    pub head: ChainHead,
    /// The hash of the last purged record, from which the remaining chain starts
    /// (absent while nothing has been purged).
    pub anchor: Option<String>,
    /// The first record that does not verify, only when `ok` is false.
    #[serde(
        rename = "firstBadSeq",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub first_bad_seq: Option<u64>,
}

/// The name of the header that carries a lower profile to act under.
pub const ROLE_HEADER: &str = "x-steward-role";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_envelope_omits_next_link_on_the_last_page() {
        let l = List {
            value: vec![1, 2],
            next_link: None,
        };
        assert_eq!(serde_json::to_string(&l).unwrap(), r#"{"value":[1,2]}"#);
        let l = List {
            value: vec![1],
            next_link: Some("/v1/x?cursor=a".into()),
        };
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"value":[1],"nextLink":"/v1/x?cursor=a"}"#
        );
    }

    #[test]
    fn error_body_shape() {
        let e = ErrorBody {
            error: ErrorDetail {
                code: codes::INVALID_INPUT.into(),
                message: "bad".into(),
                target: Some("properties.emails".into()),
                details: vec![],
            },
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"error": {"code": "InvalidInput", "message": "bad", "target": "properties.emails"}})
        );
    }

    #[test]
    fn verify_report_names_the_first_bad_seq_only_when_not_ok() {
        let ok = VerifyReport {
            ok: true,
            records: 3,
            head: ChainHead {
                seq: 3,
                hash: "ab".into(),
            },
            anchor: None,
            first_bad_seq: None,
        };
        let v = serde_json::to_value(&ok).unwrap();
        assert!(v.get("firstBadSeq").is_none());
        assert_eq!(v["head"]["seq"], 3);
    }
}

/// Alerts of one UTC day by severity (`…/overview/alerts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// High (or critical).
    pub high: u64,
    /// Medium.
    pub medium: u64,
    /// Low.
    pub low: u64,
    /// Informational and anything else.
    pub other: u64,
}

impl Day {
    /// Every alert of the day.
    pub fn total(&self) -> u64 {
        self.high + self.medium + self.low + self.other
    }
}

/// One alert type and how often it came among the newest alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCount {
    /// `properties.alertType` (`(no alertType)` for alerts without one).
    #[serde(rename = "type")]
    pub kind: String,
    /// Alerts of it among the newest [`AlertOverview::types_from`].
    pub count: u64,
}

/// The answer of `GET /v1/tenants/{t}/overview/alerts?days=N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertOverview {
    /// The period's days, oldest first (days without alerts included).
    pub per_day: Vec<Day>,
    /// Alerts in the period.
    pub total: u64,
    /// The most frequent types among the newest alerts, most frequent first.
    pub top_types: Vec<TypeCount>,
    /// How many of the newest alerts the types were counted in.
    pub types_from: u64,
}
