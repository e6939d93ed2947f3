//! The store's boundary: what the daemon asks of a storage backend, as two traits. Routes,
//! timers, DSR and ingest are written against them, never against redb.
//!
//! - [`TenantRead`]: a tenant-scoped read handle ([`super::Store::tenant`]); each call is
//!   one short, consistent read, and it never waits for writers.
//! - [`TenantWrite`]: a write job's tenant-scoped view ([`super::Writer::write`] hands a
//!   job `&mut dyn TenantWrite`). A job reads what it needs, stages changes and audit
//!   entries; the backend applies them in one transaction with the audit entries appended
//!   to the tenant's hash chain, or applies nothing (a job that fails, a change without an
//!   audit entry). Durable before the job's caller hears back.
//!
//! The redb implementation is [`super::TenantReader`] and [`super::TenantTxn`], with the
//! writer thread's group commit behind [`super::Writer`]. A second backend (PostgreSQL,
//! the fleet) implements both traits with the same guarantees: data reached only through
//! the tenant the handle is bound to, If-Match on etags, the time, expiry and subject
//! indexes, per-tenant chains appended in commit order. What stays redb-specific (the file,
//! its copies, compaction) lives beside them in `backup.rs`, `copy.rs`, `swap.rs`, `pace.rs`
//! and `online.rs`.

use steward::model::{AuditRecord, SubjectKey};
use steward::names::{ResourceName, TenantId};

use super::audit::{AuditEntry, VerifyReport};
use super::doc::{Doc, DocInput, Kind};
use super::error::{StoreError, WriteError};
use super::read::{DocText, Page, SubjectHit, TimeCursor};
use super::tables::Facets;
use super::time_scan::TimeQuery;
use super::txn::IfMatch;

/// Tenant-scoped reads: every call sees one tenant's data and one consistent moment.
pub trait TenantRead {
    /// The tenant this handle is bound to.
    fn tenant(&self) -> &TenantId;

    /// One record, if it exists in this tenant.
    fn get(&self, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError>;

    /// Records of `kind` in name order, starting after the cursor `after`
    /// (`limit` is at least 1).
    fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError>;

    /// Records of `kind` in reverse name order, strictly before the cursor `before` (from
    /// the last name when `None`): `?orderby=name desc` (`limit` is at least 1).
    fn list_desc(
        &self,
        kind: Kind,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError>;

    /// Records of `kind` in name order after `after`, as [`DocText`] (name, etag and body
    /// only): what exports read.
    fn list_text(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DocText, String>, StoreError>;

    /// Records of `kind` that have a sort time, one page newest or oldest first as `q`
    /// asks: past its cursor, up to its bound (both bound the scan), keeping those whose
    /// time-index [`Facets`] `q.facets` accepts (tested before the record is read) and then
    /// those `q.filter` accepts (alerts: `?severity=&status=` test the facets, `?q=` the
    /// record).
    fn list_by_time(
        &self,
        kind: Kind,
        q: TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, StoreError>;

    /// Visits the time-index entries of `kind` at or after `since`, oldest first, with
    /// each one's sort time and facets; no record is read (the overview's counts).
    fn scan_time_facets(
        &self,
        kind: Kind,
        since: i64,
        visit: &mut dyn FnMut(i64, Facets<'_>),
    ) -> Result<(), StoreError>;

    /// Every record of this tenant that holds `key`, and the field that holds it.
    fn subjects(&self, key: &SubjectKey) -> Result<Vec<SubjectHit>, StoreError>;

    /// Audit records in sequence order after `after_seq` (0 for the start), keeping those
    /// `filter` accepts; `next` is the last seq returned when more may follow.
    fn audit(
        &self,
        after_seq: u64,
        limit: usize,
        filter: &mut dyn FnMut(&AuditRecord) -> bool,
    ) -> Result<Page<AuditRecord, u64>, StoreError>;

    /// Audit records that concern `key` (found by its HMAC), in sequence order.
    fn audit_for_subject(&self, key: &SubjectKey) -> Result<Vec<AuditRecord>, StoreError>;

    /// Checks this tenant's hash chain from its anchor to its head.
    fn audit_verify(&self) -> Result<VerifyReport, StoreError>;

    /// The HMAC by which audit records name `key` (hex).
    fn hmac(&self, key: &SubjectKey) -> String;
}

/// A write job's view of its tenant: reads that see the job's own staged changes, staged
/// changes, and the audit entries that commit with them.
pub trait TenantWrite {
    /// The tenant this job is bound to.
    fn tenant(&self) -> &TenantId;

    /// The group's clock, Unix microseconds (the `at` of this job's audit records).
    fn now_micros(&self) -> i64;

    /// One record as this job sees it.
    fn get(&self, kind: Kind, name: &str) -> Result<Option<Doc>, WriteError>;

    /// Whether a record exists as this job sees it (cheaper than [`TenantWrite::get`]: the
    /// stored record is not decoded).
    fn exists(&self, kind: Kind, name: &str) -> Result<bool, WriteError>;

    /// Records of `kind` in name order after `after` (without this job's staged changes).
    fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, WriteError>;

    /// Records of `kind` by sort time, as for [`TenantRead::list_by_time`] (without this
    /// job's staged changes).
    fn list_by_time(
        &self,
        kind: Kind,
        q: TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, WriteError>;

    /// Records holding `key` (without this job's staged changes).
    fn subjects(&self, key: &SubjectKey) -> Result<Vec<SubjectHit>, WriteError>;

    /// The HMAC by which audit records name `key` (hex).
    fn hmac(&self, key: &SubjectKey) -> String;

    /// Creates or replaces a record, returning it with its new etag. `if_match`: `None`
    /// writes unconditionally, `Some("*")` requires that it exists, `Some(etag)` that its
    /// current etag is `etag` (bare, without quotes). Staged: applied if the job succeeds.
    fn put(
        &mut self,
        kind: Kind,
        name: &ResourceName,
        input: DocInput,
        if_match: Option<&str>,
    ) -> Result<Doc, WriteError>;

    /// Replaces a record that exists, under the name it is stored by (a record this job
    /// found: a JIT request ending, a contact losing an address). Unconditional;
    /// [`WriteError::NotFound`] when there is none. Creating goes through
    /// [`TenantWrite::put`], which takes a checked [`ResourceName`]. Staged.
    fn update(&mut self, kind: Kind, name: &str, input: DocInput) -> Result<Doc, WriteError>;

    /// Creates or replaces `name` under the caller's `If-Match`: `Ok((doc, created))`.
    /// When the precondition does not hold, its failure entry is audited (the job's
    /// changes are discarded) and the job fails with [`WriteError::PreconditionFailed`].
    fn replace_if_match(
        &mut self,
        kind: Kind,
        name: &ResourceName,
        input: DocInput,
        cond: IfMatch,
    ) -> Result<(Doc, bool), WriteError>;

    /// Deletes `name` under the caller's `If-Match`, auditing a failed precondition the
    /// way [`TenantWrite::replace_if_match`] does. Returns the deleted record.
    fn delete_if_match(&mut self, kind: Kind, name: &str, cond: IfMatch)
    -> Result<Doc, WriteError>;

    /// Stores a record only if none is stored under `name` (ingest is idempotent on the
    /// name): `true` if it was staged, `false` if the name was taken. Staged.
    fn put_new(
        &mut self,
        kind: Kind,
        name: &ResourceName,
        input: DocInput,
    ) -> Result<bool, WriteError>;

    /// Deletes a record, returning what it was; `if_match` as for [`TenantWrite::put`].
    /// [`WriteError::NotFound`] if it does not exist. Staged.
    fn delete(&mut self, kind: Kind, name: &str, if_match: Option<&str>)
    -> Result<Doc, WriteError>;

    /// Records an audit entry, appended to the tenant's chain with this job's changes.
    fn audit(&mut self, entry: AuditEntry);

    /// Records an audit entry that is appended only if the job fails (its changes are
    /// still discarded), so a refused change can be audited as `Failed`.
    fn audit_on_failure(&mut self, entry: AuditEntry);

    /// Sets the action the change event for this record reports (default `created`,
    /// `updated` or `deleted`), e.g. `revoked`, `expired`, `ingested`.
    fn emit(&mut self, kind: Kind, name: &str, action: &str);

    /// Stages the removal of this tenant's oldest audit records committed before
    /// `before_micros`, at most `limit`, keeping the last removed record's `(seq, hash)` as
    /// the anchor so the remaining chain still verifies. Returns how many. Like any change
    /// it needs an audit entry in the same job.
    fn purge_audit_before(&mut self, before_micros: i64, limit: usize) -> Result<u64, WriteError>;
}
