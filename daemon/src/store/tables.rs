//! Every redb table of the store, as `const`s in one place: this file *is* the on-disk layout.
//!
//! Keys are redb tuples, compared element by element (strings byte-wise), so "everything of
//! tenant `t`" is a contiguous key range and every scan below costs what it returns.
//! Values are postcard behind a one-byte format version (see [`super::codec`]); index values
//! are `()` where the key says everything, and small redb tuples where a scan needs more
//! than the key without reading the record ([`TIME_INDEX`]).
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | [`RECORDS`] | `(tenant, kind, name)` | `codec(StoredDoc)` |
//! | [`TIME_INDEX`] | `(tenant, kind, time_micros, name)` | `(severity, status)` ([`Facets`]) |
//! | [`SUBJECTS`] | `(tenant, subject, kind, name, field)` | `()` |
//! | [`SCHEDULE`] | `(action, at_secs, kind, tenant, name)` | `()` |
//! | [`AUDIT`] | `(tenant, seq)` | `codec(AuditRecord)` |
//! | [`AUDIT_HEAD`] | `tenant` | `codec(AuditHead)` |
//! | [`AUDIT_SUBJECTS`] | `(tenant, subject_hmac, seq)` | `()` |
//! | [`META`] | `name` | bytes |
//!
//! Not here: what the bytes mean (`doc.rs`, `audit.rs`), and who may touch which key
//! (`read.rs`, `txn.rs`: every key they build starts with their handle's tenant).

use redb::TableDefinition;

/// Documents of every kind: `(tenant, kind, name)` → `codec(StoredDoc)`.
///
/// One table for all kinds (rather than one per kind) so a tenant's whole data is one key
/// range and a new kind needs no new table; `kind` is [`super::Kind`]'s stable byte.
pub const RECORDS: TableDefinition<(&str, u8, &str), &[u8]> = TableDefinition::new("records");

/// Time index (alerts newest-first): `(tenant, kind, time_micros, name)` →
/// `(severity, status)`, the record's [`Facets`]. Holds an entry only for documents stored
/// with a `time`.
///
/// The facets are in the value, rather than in a second index keyed `(tenant, kind,
/// severity, time, name)`, because one table serves every filter the list has (severity,
/// status, both, neither) with one scan in time order, and is kept and removed by the same
/// `insert`/`remove` as before (`unindex` removes by key, so no path that removes a record
/// can leave a stale facet). The cost is that a filtered page scans the index entries it
/// skips: for `severity=High` (a quarter of the bench's alerts) ~400 entries per page of
/// 100, each a few hundred nanoseconds and no record read; a filter matching one alert in
/// 100,000 would scan them all. The facets never go stale: alerts are read-only once
/// stored, and any put rewrites its entry.
pub const TIME_INDEX: TableDefinition<(&str, u8, i64, &str), (&str, &str)> =
    TableDefinition::new("time_index");

/// What [`TIME_INDEX`] holds beside each key: the record's severity and status as the
/// writer gave them ([`super::DocInput::facets`]; for alerts `properties.severity` and
/// `properties.status`, lower-cased, `""` where absent or not a string: the values the
/// alert filters compare). Read without the record, so a `?severity=`/`?status=` page
/// reads only the records it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facets<'a> {
    /// `properties.severity`, lower-cased.
    pub severity: &'a str,
    /// `properties.status`, lower-cased.
    pub status: &'a str,
}

/// Subject index (data-subject lookups): `(tenant, subject, kind, name, field)` → `()`.
/// `subject` is a normalised [`super::SubjectKey`] such as `email:alice@contoso.com`;
/// `field` is the field path that holds it. Kept in the same transaction as the record.
pub const SUBJECTS: TableDefinition<(&str, &str, u8, &str, &str), ()> =
    TableDefinition::new("subjects");

/// Schedule index (retention, JIT end, deadlines): `(action, at_secs, kind, tenant, name)` → `()`.
///
/// The action comes first so each timer scans only its own schedule, in time order: a sweep
/// costs what it finds due, whatever else is stored or scheduled.
pub const SCHEDULE: TableDefinition<(u8, i64, u8, &str, &str), ()> =
    TableDefinition::new("schedule");

/// Audit log, one hash chain per tenant: `(tenant, seq)` → `codec(AuditRecord)`; `seq` from 1.
pub const AUDIT: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("audit");

/// Head of each tenant's chain: `tenant` → `codec(AuditHead)` (last seq and hash, anchor).
pub const AUDIT_HEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_head");

/// Audit records by the HMAC of a subject they concern: `(tenant, hmac_hex, seq)` → `()`.
pub const AUDIT_SUBJECTS: TableDefinition<(&str, &str, u64), ()> =
    TableDefinition::new("audit_subjects");

/// Installation-wide settings: [`META_SCHEMA_VERSION`], [`META_HMAC_KEY`].
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Meta key: the layout version of this file, `u32` little-endian.
pub const META_SCHEMA_VERSION: &str = "schema_version";
/// Meta key: the installation's 32-byte HMAC key for subject identifiers; generated once.
pub const META_HMAC_KEY: &str = "hmac_key";
/// The layout version this build reads and writes. 2: [`TIME_INDEX`]'s value became
/// [`Facets`] (was `()`); a store of version 1 is refused with a clear error rather than
/// redb's table type mismatch.
pub const SCHEMA_VERSION: u32 = 2;
