//! Data-subject requests (GDPR access/erasure): our own resource, not an Azure shape.
//!
//! This module holds the request, its states and deadlines, and the parse of the POST body.
//! Finding and erasing the subject's data is the daemon's work; it records what it did in
//! [`DataSubjectRequest::report`].

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::subject::{SubjectKey, SubjectKind};
use super::validate::{Collector, ValidationErrors, join};

/// Export the subject's data, or erase it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DsrType {
    /// Write a bundle of every record naming the subject.
    Export,
    /// Remove what may be erased and report the rest.
    Erase,
}

/// Where a request stands: `pending_confirmation → confirmed → in_progress → completed |
/// failed`, or `rejected`. A failed request may be run again (back to `in_progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsrStatus {
    /// Opened, waiting for a tenant-admin to confirm or reject it.
    PendingConfirmation,
    /// Confirmed, not yet started.
    Confirmed,
    /// Being carried out.
    InProgress,
    /// Done.
    Completed,
    /// Stopped by an error; may be resumed.
    Failed,
    /// Rejected with a reason.
    Rejected,
}

impl DsrStatus {
    /// The JSON text of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingConfirmation => "pending_confirmation",
            Self::Confirmed => "confirmed",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }

    /// Whether a request in this state may move to `next`.
    pub fn can_become(self, next: DsrStatus) -> bool {
        use DsrStatus::*;
        matches!(
            (self, next),
            (PendingConfirmation, Confirmed | Rejected)
                | (Confirmed | Failed, InProgress)
                | (InProgress, Completed | Failed)
        )
    }

    /// Whether the request is finished (no deadline applies any more).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Rejected)
    }
}

/// The identifiers of one person, normalised as [`SubjectKey::normalise`] does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsrSubject {
    /// Email address, lower-cased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number, as its digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// IP address, canonical text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Account name, lower-cased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Host name, lower-cased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl DsrSubject {
    /// The subject's identifiers as index keys (field `subject.email`, …).
    pub fn keys(&self) -> Vec<SubjectKey> {
        [
            (SubjectKind::Email, &self.email),
            (SubjectKind::Phone, &self.phone),
            (SubjectKind::Ip, &self.ip),
            (SubjectKind::User, &self.user),
            (SubjectKind::Host, &self.host),
        ]
        .into_iter()
        .filter_map(|(kind, v)| {
            v.as_ref().map(|value| SubjectKey {
                kind,
                value: value.clone(),
                field: format!("subject.{}", kind.as_str()),
            })
        })
        .collect()
    }
}

impl DsrSubject {
    /// Whether it names nobody (after its identifiers were removed).
    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }

    /// Whether it shares at least one identifier (same kind and value) with `other`.
    pub fn shares_identifier(&self, other: &DsrSubject) -> bool {
        let theirs = other.keys();
        self.keys().iter().any(|k| {
            theirs
                .iter()
                .any(|o| o.kind == k.kind && o.value == k.value)
        })
    }
}

/// What is left of a request's subject once its identifiers were removed: which kinds it
/// named and their keyed HMACs (as audit records name the person), never the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectRemoved {
    /// When the identifiers were removed.
    pub at: Timestamp,
    /// The erase request that removed them (the request's own id when it is that erasure).
    pub by: String,
    /// The kinds of identifier the request named (`email`, `phone`, …).
    pub kinds: Vec<String>,
    /// The installation-keyed HMAC of each identifier, as the audit log names the person.
    pub hmacs: Vec<String>,
}

/// What happened to one record during an erase (or what an export found).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportOutcome {
    /// Removed (or the subject's identifier removed from it).
    Erased,
    /// Kept, for the reason given, until `leavesAt`.
    Retained,
}

/// One record's line in a request's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportEntry {
    /// Record kind: `contact`, `jit-request`, `alert`, `audit`, …
    pub kind: String,
    /// The record's key.
    pub id: String,
    /// Erased or retained.
    pub outcome: ReportOutcome,
    /// Why it was retained (e.g. "security data, GDPR art. 17(3)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When retention will remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaves_at: Option<Timestamp>,
}

/// A data-subject request as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSubjectRequest {
    /// The request's id.
    pub id: String,
    /// Export or erase.
    #[serde(rename = "type")]
    pub kind: DsrType,
    /// Whom it concerns.
    pub subject: DsrSubject,
    /// Where it stands.
    pub status: DsrStatus,
    /// When it was received.
    pub received_at: Timestamp,
    /// One calendar month after receipt (GDPR art. 12(3)).
    pub due_at: Timestamp,
    /// Two more months, when extended once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_due_at: Option<Timestamp>,
    /// Why it was extended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    /// OS user who opened it.
    pub requested_by: String,
    /// OS user who confirmed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// Record-by-record outcome.
    #[serde(default)]
    pub report: Vec<ReportEntry>,
    /// Set when the subject's identifiers were removed from this request (its own erasure
    /// completed, or a later erasure of the same person superseded it); `subject` is then
    /// empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_removed: Option<SubjectRemoved>,
}

/// A validated `POST …/dsr` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrInput {
    /// Export or erase.
    pub kind: DsrType,
    /// The normalised identifiers (at least one).
    pub subject: DsrSubject,
}

/// Why a state change of a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DsrError {
    /// The request is not in a state that allows this step.
    #[error("a request that is {from} cannot become {to}")]
    BadTransition {
        /// Current state.
        from: &'static str,
        /// Asked state.
        to: &'static str,
    },
    /// `require_second_person` is on and the confirmer opened the request.
    #[error("the request must be confirmed by someone other than who opened it")]
    SamePerson,
    /// The request was already extended once.
    #[error("the deadline was already extended once")]
    AlreadyExtended,
    /// A reason is required and was empty.
    #[error("a reason is required")]
    MissingReason,
}

/// Adds calendar months in UTC (saturating at the end of time, which no clock reaches).
fn add_months(t: Timestamp, months: i64) -> Timestamp {
    t.to_zoned(TimeZone::UTC)
        .checked_add(months.months())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

impl DsrInput {
    /// Parses `{"type": "export"|"erase", "subject": {"email"?, "phone"?, "ip"?, "user"?,
    /// "host"?}}`: at least one identifier, each valid for its kind and normalised. Unknown
    /// fields are refused inside `subject` (a typo must not silently narrow an erasure) and
    /// ignored outside it.
    pub fn parse(body: &Value) -> Result<Self, ValidationErrors> {
        let Value::Object(m) = body else {
            return Err(ValidationErrors::one("", "the body must be a JSON object"));
        };
        let mut c = Collector::new();
        let kind = c.req_str(m, "type", "", 16).and_then(|t| match t.as_str() {
            "export" => Some(DsrType::Export),
            "erase" => Some(DsrType::Erase),
            _ => {
                c.push("type", "must be export or erase");
                None
            }
        });
        let mut subject = DsrSubject::default();
        match m.get("subject") {
            Some(Value::Object(s)) => {
                for key in s.keys() {
                    if SubjectKind::parse(key).is_none() {
                        c.push(
                            join("subject", key),
                            "is not an identifier kind (email, phone, ip, user, host)",
                        );
                    }
                }
                for kind in SubjectKind::ALL {
                    let Some(raw) = c.opt_str(s, kind.as_str(), "subject", 320) else {
                        continue;
                    };
                    let Some(v) = SubjectKey::normalise(kind, &raw) else {
                        c.push(
                            join("subject", kind.as_str()),
                            format!("is not a valid {}", kind.as_str()),
                        );
                        continue;
                    };
                    let slot = match kind {
                        SubjectKind::Email => &mut subject.email,
                        SubjectKind::Phone => &mut subject.phone,
                        SubjectKind::Ip => &mut subject.ip,
                        SubjectKind::User => &mut subject.user,
                        SubjectKind::Host => &mut subject.host,
                    };
                    *slot = Some(v);
                }
                if c.is_ok() && subject.keys().is_empty() {
                    c.push(
                        "subject",
                        "must name at least one of email, phone, ip, user, host",
                    );
                }
            }
            None | Some(Value::Null) => c.push("subject", "is required"),
            Some(_) => c.push("subject", "must be an object"),
        }
        let kind = c.finish_opt(kind)?;
        Ok(DsrInput { kind, subject })
    }
}

impl DataSubjectRequest {
    /// Opens a request `pending_confirmation`, due one calendar month after `received_at`
    /// (UTC calendar: 31 January → 29 February in a leap year).
    pub fn new(
        id: impl Into<String>,
        input: DsrInput,
        requested_by: impl Into<String>,
        received_at: Timestamp,
    ) -> Self {
        Self {
            id: id.into(),
            kind: input.kind,
            subject: input.subject,
            status: DsrStatus::PendingConfirmation,
            received_at,
            due_at: add_months(received_at, 1),
            extended_due_at: None,
            extension_reason: None,
            requested_by: requested_by.into(),
            confirmed_by: None,
            reject_reason: None,
            report: Vec::new(),
            subject_removed: None,
        }
    }

    /// Replaces the subject's identifiers with what [`SubjectRemoved`] keeps: their kinds
    /// and `hmacs` (computed by the caller, who holds the key). `by` is the erasure doing it.
    pub fn remove_subject(&mut self, at: Timestamp, by: &str, hmacs: Vec<String>) {
        let kinds = self
            .subject
            .keys()
            .into_iter()
            .map(|k| k.kind.as_str().to_owned())
            .collect();
        self.subject = DsrSubject::default();
        self.subject_removed = Some(SubjectRemoved {
            at,
            by: by.to_owned(),
            kinds,
            hmacs,
        });
    }

    /// The deadline in force: the extended one when there is one.
    pub fn deadline(&self) -> Timestamp {
        self.extended_due_at.unwrap_or(self.due_at)
    }

    /// Whether the deadline has passed at `now` while the request is still open.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        !self.status.is_final() && now > self.deadline()
    }

    /// Extends the deadline once by two months, with a recorded reason.
    pub fn extend(&mut self, reason: &str) -> Result<(), DsrError> {
        if self.extended_due_at.is_some() {
            return Err(DsrError::AlreadyExtended);
        }
        if reason.trim().is_empty() {
            return Err(DsrError::MissingReason);
        }
        self.extended_due_at = Some(add_months(self.due_at, 2));
        self.extension_reason = Some(reason.trim().to_owned());
        Ok(())
    }

    /// Moves to `next` when the state machine allows it.
    pub fn transition(&mut self, next: DsrStatus) -> Result<(), DsrError> {
        if !self.status.can_become(next) {
            return Err(DsrError::BadTransition {
                from: self.status.as_str(),
                to: next.as_str(),
            });
        }
        self.status = next;
        Ok(())
    }

    /// Confirms the request as `by`; with `require_second_person`, `by` must differ from
    /// `requested_by`.
    pub fn confirm(&mut self, by: &str, require_second_person: bool) -> Result<(), DsrError> {
        if require_second_person && by == self.requested_by {
            return Err(DsrError::SamePerson);
        }
        self.transition(DsrStatus::Confirmed)?;
        self.confirmed_by = Some(by.to_owned());
        Ok(())
    }

    /// Rejects the request with a reason.
    pub fn reject(&mut self, reason: &str) -> Result<(), DsrError> {
        if reason.trim().is_empty() {
            return Err(DsrError::MissingReason);
        }
        self.transition(DsrStatus::Rejected)?;
        self.reject_reason = Some(reason.trim().to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parse_normalises_and_reports_all() {
        let i = DsrInput::parse(&json!({"type": "erase", "subject": {"email": " Alice@Contoso.com", "phone": "+44 20 7946 0958"}})).unwrap();
        assert_eq!(i.kind, DsrType::Erase);
        assert_eq!(i.subject.email.as_deref(), Some("alice@contoso.com"));
        assert_eq!(i.subject.phone.as_deref(), Some("442079460958"));
        let e = DsrInput::parse(
            &json!({"type": "delete", "subject": {"email": "nope", "ip": "1.2.3", "nick": "x"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.paths(),
            vec!["type", "subject.nick", "subject.email", "subject.ip"]
        );
        let e = DsrInput::parse(&json!({"type": "export", "subject": {}})).unwrap_err();
        assert_eq!(e.paths(), vec!["subject"]);
        assert_eq!(
            DsrInput::parse(&json!({"type": "export"}))
                .unwrap_err()
                .paths(),
            vec!["subject"]
        );
    }

    #[test]
    fn due_one_calendar_month_later_and_extension() {
        let i = DsrInput::parse(&json!({"type": "export", "subject": {"user": "bob"}})).unwrap();
        let mut r = DataSubjectRequest::new("r1", i, "alice", ts("2024-01-31T10:00:00Z"));
        assert_eq!(r.due_at, ts("2024-02-29T10:00:00Z"));
        assert!(!r.is_overdue(ts("2024-02-29T10:00:00Z")));
        assert!(r.is_overdue(ts("2024-02-29T10:00:01Z")));
        r.extend("complex request").unwrap();
        assert_eq!(r.extended_due_at, Some(ts("2024-04-29T10:00:00Z")));
        assert_eq!(r.extend("again"), Err(DsrError::AlreadyExtended));
        let v = serde_json::to_value(&r).unwrap();
        for k in [
            "id",
            "type",
            "subject",
            "status",
            "receivedAt",
            "dueAt",
            "extendedDueAt",
            "extensionReason",
            "requestedBy",
            "report",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["status"], "pending_confirmation");
        let back: DataSubjectRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn state_machine() {
        let i = DsrInput::parse(&json!({"type": "erase", "subject": {"host": "vm1"}})).unwrap();
        let mut r = DataSubjectRequest::new("r1", i, "alice", ts("2024-01-01T00:00:00Z"));
        assert_eq!(r.confirm("alice", true), Err(DsrError::SamePerson));
        assert!(r.transition(DsrStatus::Completed).is_err());
        r.confirm("bob", true).unwrap();
        assert_eq!(r.confirmed_by.as_deref(), Some("bob"));
        r.transition(DsrStatus::InProgress).unwrap();
        r.transition(DsrStatus::Failed).unwrap();
        r.transition(DsrStatus::InProgress).unwrap();
        r.transition(DsrStatus::Completed).unwrap();
        assert!(!r.is_overdue(ts("2030-01-01T00:00:00Z")));
        assert!(r.reject("late").is_err());
    }

    #[test]
    fn removing_the_subject_keeps_kinds_and_hmacs_only() {
        let i = DsrInput::parse(
            &json!({"type": "erase", "subject": {"email": "Carol@Contoso.com", "phone": "+1 214 275 4038"}}),
        )
        .unwrap();
        let other = DsrSubject {
            email: Some("carol@contoso.com".into()),
            ..DsrSubject::default()
        };
        assert!(i.subject.shares_identifier(&other));
        assert!(!other.shares_identifier(&DsrSubject {
            email: Some("dave@contoso.com".into()),
            ..DsrSubject::default()
        }));
        let mut r = DataSubjectRequest::new("r1", i, "alice", ts("2024-01-01T00:00:00Z"));
        r.remove_subject(
            ts("2024-01-02T00:00:00Z"),
            "r1",
            vec!["ab".into(), "cd".into()],
        );
        assert!(r.subject.is_empty());
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("carol"), "{text}");
        assert!(!text.contains("2142754038"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["subject"], json!({}));
        assert_eq!(v["subjectRemoved"]["kinds"], json!(["email", "phone"]));
        assert_eq!(v["subjectRemoved"]["by"], "r1");
    }
}
