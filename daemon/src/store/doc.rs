//! Stored documents: what a record holds ([`Doc`]), what a write supplies ([`DocInput`]),
//! and schedule entries for the timers. The people a record names are the library's
//! [`SubjectKey`]s, indexed under [`SubjectKey::index_key`].
//!
//! The store is deliberately generic: it does not know contacts, JIT or alerts (the shared
//! library's model does). The resource body stays **JSON text** inside a postcard envelope
//! ([`StoredDoc`]): alerts are open-shaped and must be kept whole, field for field, and
//! postcard (a non-self-describing format) cannot encode a `serde_json::Value`. The envelope
//! (etag, timestamps, subjects, schedule) is postcard behind the format byte like every value.

use serde::{Deserialize, Serialize};
use steward::model::SubjectKey;
use steward::resource::Resource;

/// Declares the enums whose byte is on disk (never renumber): each variant with its byte
/// and its stable lower-case name, written once, and `ALL` (on-disk order), `as_u8`,
/// `from_u8`, `as_str` and `Display` from them.
macro_rules! stored_byte_enums {
    ($(
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$doc:meta])* $variant:ident = $byte:literal => $text:literal,)*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$doc])* $variant = $byte,)*
        }

        impl $name {
            /// Every value, in on-disk order.
            pub const ALL: [$name; [$($byte),*].len()] = [$($name::$variant,)*];

            /// The byte stored in keys.
            pub fn as_u8(self) -> u8 {
                self as u8
            }

            /// The value for a stored byte, if any.
            pub fn from_u8(b: u8) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.as_u8() == b)
            }

            /// Stable lower-case name (audit counts, messages).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

stored_byte_enums! {
    /// The kinds of record the store holds.
    pub enum Kind {
        /// A security contact.
        Contact = 1 => "contact",
        /// A JIT network access policy.
        JitPolicy = 2 => "jit-policy",
        /// A JIT network access request.
        JitRequest = 3 => "jit-request",
        /// A security alert (kept whole as the source sent it).
        Alert = 4 => "alert",
        /// A data-subject request.
        Dsr = 5 => "dsr",
        /// The recorded outcome of a creating `POST` under an `Idempotency-Key`, named
        /// `{uid}:{key}` (`routes/idempotency.rs`). Bookkeeping: no route lists it, no event
        /// announces it, and retention removes it a day after it was recorded.
        IdempotencyKey = 6 => "idempotency-key",
    }

    /// What a timer does with a record when its time comes.
    pub enum ScheduleAction {
        /// Retention: delete the record (`timers::retention::purge_expired`).
        Purge = 0 => "purge",
        /// JIT end: the request's ports close (`endTimeUtc`); the JIT timer rewrites the
        /// record.
        End = 1 => "end",
        /// A deadline (a data-subject request's due date): the timer raises an event.
        Deadline = 2 => "deadline",
        /// A completed erasure's scrub is due: the store is rewritten into a fresh file so
        /// no freed page keeps the erased data (`crate::dsr::scrub`).
        Scrub = 3 => "scrub",
    }
}

impl Kind {
    /// The API resource its records are served as; `None` for bookkeeping records
    /// (idempotency keys), which no route lists and no event announces.
    pub fn resource(self) -> Option<Resource> {
        match self {
            Kind::Contact => Some(Resource::Contacts),
            Kind::JitPolicy => Some(Resource::JitPolicies),
            Kind::JitRequest => Some(Resource::JitRequests),
            Kind::Alert => Some(Resource::Alerts),
            Kind::Dsr => Some(Resource::Dsr),
            Kind::IdempotencyKey => None,
        }
    }

    /// The kind that stores the records of `resource`; `None` for the audit log, which
    /// has tables of its own.
    pub fn of(resource: Resource) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.resource() == Some(resource))
    }
}

/// A record's entry in the schedule index: at `at_secs` (Unix seconds), do `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scheduled {
    /// When, in Unix seconds.
    pub at_secs: i64,
    /// What the timer does then.
    pub action: ScheduleAction,
}

/// What a write supplies for a record; the store adds etag and timestamps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocInput {
    /// The resource as JSON text, kept as given.
    pub body_json: String,
    /// Identifiers of people the body holds (each with its field), for the subject index.
    pub subjects: Vec<SubjectKey>,
    /// Timer entries (retention, JIT end, deadline); replaced wholesale on every put.
    pub schedule: Vec<Scheduled>,
    /// Sort time in Unix microseconds (an alert's `timeGeneratedUtc`) for the time index.
    pub time: Option<i64>,
    /// What the time index holds beside the entry, for filtering a list without reading
    /// the record: `(severity, status)` as the caller wants them compared (the alert
    /// routes lower-case them); empty when not given. See [`super::tables::Facets`].
    pub facets: (String, String),
}

impl DocInput {
    /// A document with this body and nothing else.
    pub fn new(body_json: impl Into<String>) -> DocInput {
        DocInput {
            body_json: body_json.into(),
            ..DocInput::default()
        }
    }

    /// Adds a person the body names: indexed under [`SubjectKey::index_key`] at
    /// [`SubjectKey::field`].
    pub fn subject(mut self, key: &SubjectKey) -> DocInput {
        self.subjects.push(key.clone());
        self
    }

    /// Retention: purge at `at_secs`.
    pub fn expires_at(mut self, at_secs: i64) -> DocInput {
        self.schedule.push(Scheduled {
            at_secs,
            action: ScheduleAction::Purge,
        });
        self
    }

    /// Adds a schedule entry of any action.
    pub fn schedule(mut self, action: ScheduleAction, at_secs: i64) -> DocInput {
        self.schedule.push(Scheduled { at_secs, action });
        self
    }

    /// Sets the sort time (Unix microseconds) for the time index.
    pub fn time(mut self, micros: i64) -> DocInput {
        self.time = Some(micros);
        self
    }

    /// Sets the time index's facets (see [`DocInput::facets`]).
    pub fn facets(mut self, severity: impl Into<String>, status: impl Into<String>) -> DocInput {
        self.facets = (severity.into(), status.into());
        self
    }
}

/// The envelope stored in [`super::tables::RECORDS`] (postcard behind the format byte).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredDoc {
    pub etag: String,
    pub created_at_micros: i64,
    pub updated_at_micros: i64,
    pub body_json: String,
    pub subjects: Vec<SubjectKey>,
    pub schedule: Vec<Scheduled>,
    pub time: Option<i64>,
}

/// A stored record as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Its kind.
    pub kind: Kind,
    /// Its name within the tenant and kind.
    pub name: String,
    /// Opaque tag, new on every change (for `If-Match`).
    pub etag: String,
    /// When it was first stored, Unix microseconds.
    pub created_at_micros: i64,
    /// When it was last changed, Unix microseconds.
    pub updated_at_micros: i64,
    /// The resource as JSON text.
    pub body_json: String,
    /// Identifiers of people it holds, each with the field holding it.
    pub subjects: Vec<SubjectKey>,
    /// Its timer entries.
    pub schedule: Vec<Scheduled>,
    /// Its sort time, if any.
    pub time: Option<i64>,
}

impl Doc {
    pub(crate) fn from_stored(kind: Kind, name: &str, s: StoredDoc) -> Doc {
        Doc {
            kind,
            name: name.to_string(),
            etag: s.etag,
            created_at_micros: s.created_at_micros,
            updated_at_micros: s.updated_at_micros,
            body_json: s.body_json,
            subjects: s.subjects,
            schedule: s.schedule,
            time: s.time,
        }
    }

    /// Parses the body.
    pub fn body(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.body_json)
    }

    /// When the retention timer purges it, if scheduled.
    pub fn expires_at(&self) -> Option<i64> {
        self.schedule
            .iter()
            .find(|s| s.action == ScheduleAction::Purge)
            .map(|s| s.at_secs)
    }
}
