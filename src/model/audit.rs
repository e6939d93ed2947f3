//! Audit records: the wire and stored shape of one entry of a tenant's audit log, with
//! fields after the Azure Activity Log (caller, operationName, status, correlationId,
//! resourceId).
//!
//! The same struct is encoded with postcard in the store and with JSON on the wire, so it
//! avoids everything postcard cannot do: no `skip_serializing_if` (postcard is not
//! self-describing, a skipped field would shift every later one), no `serde_json::Value`,
//! no untagged or flattened parts. Records name fields and hold HMACs of people, never
//! personal values. Hash-chaining is the daemon's job.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Position in the tenant's log, from 1, without gaps.
    pub seq: u64,
    /// When the action happened (commit time).
    pub at: Timestamp,
    /// Who acted.
    pub caller: AuditCaller,
    /// What was done: `contacts.write`, `alerts.ingest`, `retention.purge`, `config.reload`, …
    pub operation_name: String,
    /// How it ended.
    pub status: AuditStatus,
    /// Ties the record to the request's log line (the request id).
    pub correlation_id: String,
    /// The resource acted on, e.g. `contacts/default`; empty for tenant-wide actions.
    pub resource_id: String,
    /// Names of the fields touched (`properties.emails`), never their values.
    pub fields: Vec<String>,
    /// Keyed HMACs (hex) of the people concerned, so a data-subject search finds the record
    /// without the log holding the identifier.
    pub subjects: Vec<String>,
    /// Counts and a reason, for batch and failed actions.
    pub details: AuditDetails,
    /// `hash` of the previous record of the tenant (or the purge anchor); empty for the first.
    pub prev_hash: String,
    /// SHA-256 (hex) over this record with `hash` empty and `prev_hash` set.
    pub hash: String,
}

/// The caller of an audited action, from the socket's peer credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCaller {
    /// OS user id.
    pub uid: u32,
    /// OS user name (empty when the password database has none).
    pub user: String,
    /// The role profile acted under (`reader`, `tenant-admin`, …; `system` for timers).
    pub profile: String,
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditStatus {
    /// It happened.
    Succeeded,
    /// It was allowed but did not happen (invalid input, conflict, storage error).
    Failed,
    /// The caller lacked the permission.
    Denied,
}

impl AuditStatus {
    /// `Succeeded`, `Failed` or `Denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Denied => "Denied",
        }
    }
}

/// Extra facts of an audited action that are not personal: counts (`purged`, `records`,
/// `alerts`, …) and a short reason (the permission missing, the validation error's path).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDetails {
    /// Named counts, e.g. `{"alerts": 120, "jitRequests": 3}` for a retention purge.
    pub counts: BTreeMap<String, u64>,
    /// Why it failed or was denied; must not contain personal values.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuditRecord {
        AuditRecord {
            seq: 42,
            at: "2024-05-17T09:06:45.5691611Z".parse().unwrap(),
            caller: AuditCaller {
                uid: 1000,
                user: "alice".into(),
                profile: "owner".into(),
            },
            operation_name: "contacts.write".into(),
            status: AuditStatus::Denied,
            correlation_id: "0190f0e2-7a4c-7000-8000-000000000001".into(),
            resource_id: String::new(),
            fields: vec!["properties.emails".into()],
            subjects: vec!["ab12".into()],
            details: AuditDetails {
                counts: BTreeMap::from([("records".to_owned(), 3)]),
                reason: None,
            },
            prev_hash: String::new(),
            hash: "ff".into(),
        }
    }

    #[test]
    fn postcard_round_trip() {
        let r = sample();
        let bytes = postcard::to_allocvec(&r).unwrap();
        let back: AuditRecord = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        let mut r2 = r.clone();
        r2.details.reason = Some("needs contacts.write".into());
        let back: AuditRecord = postcard::from_bytes(&postcard::to_allocvec(&r2).unwrap()).unwrap();
        assert_eq!(back, r2);
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["operationName"], "contacts.write");
        assert_eq!(v["status"], "Denied");
        assert_eq!(v["at"], "2024-05-17T09:06:45.5691611Z");
        assert_eq!(v["caller"]["uid"], 1000);
        assert_eq!(v["prevHash"], "");
        assert_eq!(v["details"]["counts"]["records"], 3);
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
    }
}
