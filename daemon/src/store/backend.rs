//! What the daemon needs of a storage backend beyond the two boundary traits, and the
//! handles that pick the backend at run time:
//!
//! - [`TenantReader`]: the read handle [`super::Store::tenant`] gives out, one variant per
//!   backend, each implementing [`TenantRead`] (routes, DSR and exports take it by name).
//! - [`Schedule`]: the timers' view of the schedule index across tenants (what is due, and
//!   when the next entry is), read off the writer.
//!
//! The writer handle ([`super::Writer`]: queue a job, wait for its commit, subscribe to
//! change events) is the same for every backend; only the thread behind its queue differs
//! (`group.rs` for redb). Opening, closing and the redb-only upkeep (backup, compaction)
//! are [`super::Store`]'s.

use steward::model::{AuditRecord, SubjectKey};
use steward::names::TenantId;

use super::audit::VerifyReport;
use super::boundary::TenantRead;
use super::doc::{Doc, Kind, ScheduleAction};
use super::error::StoreError;
use super::read::{DocText, Page, RedbReader, SubjectHit, TimeCursor};
use super::tables::Facets;
use super::time_scan::TimeQuery;
use super::{Due, due_entries, next_due_entry};

/// A tenant-scoped read handle of whichever backend the store runs on. Cheap to create and
/// to clone; see [`TenantRead`] for what it offers.
#[derive(Clone, Debug)]
pub enum TenantReader {
    /// The embedded redb file.
    Redb(RedbReader),
}

/// Calls `$call` on the backend's own reader.
macro_rules! each {
    ($self:ident, $r:ident => $call:expr) => {
        match $self {
            TenantReader::Redb($r) => $call,
        }
    };
}

impl TenantRead for TenantReader {
    fn tenant(&self) -> &TenantId {
        each!(self, r => r.tenant())
    }

    fn get(&self, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError> {
        each!(self, r => r.get(kind, name))
    }

    fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        each!(self, r => r.list(kind, after, limit))
    }

    fn list_desc(
        &self,
        kind: Kind,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        each!(self, r => r.list_desc(kind, before, limit))
    }

    fn list_text(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DocText, String>, StoreError> {
        each!(self, r => r.list_text(kind, after, limit))
    }

    fn list_by_time(
        &self,
        kind: Kind,
        q: TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, StoreError> {
        each!(self, r => r.list_by_time(kind, q))
    }

    fn scan_time_facets(
        &self,
        kind: Kind,
        since: i64,
        visit: &mut dyn FnMut(i64, Facets<'_>),
    ) -> Result<(), StoreError> {
        each!(self, r => r.scan_time_facets(kind, since, visit))
    }

    fn subjects(&self, key: &SubjectKey) -> Result<Vec<SubjectHit>, StoreError> {
        each!(self, r => r.subjects(key))
    }

    fn audit(
        &self,
        after_seq: u64,
        limit: usize,
        filter: &mut dyn FnMut(&AuditRecord) -> bool,
    ) -> Result<Page<AuditRecord, u64>, StoreError> {
        each!(self, r => r.audit(after_seq, limit, filter))
    }

    fn audit_for_subject(&self, key: &SubjectKey) -> Result<Vec<AuditRecord>, StoreError> {
        each!(self, r => r.audit_for_subject(key))
    }

    fn audit_verify(&self) -> Result<VerifyReport, StoreError> {
        each!(self, r => r.audit_verify())
    }

    fn hmac(&self, key: &SubjectKey) -> String {
        each!(self, r => r.hmac(key))
    }
}

/// The schedule index across tenants, as the timers read it. Each timer then writes
/// through the due record's tenant's job.
pub(crate) trait Schedule: Send + Sync + std::fmt::Debug {
    /// Entries of `action` due at or before `now_secs`, oldest first, at most `limit`.
    fn due(
        &self,
        action: ScheduleAction,
        now_secs: i64,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError>;

    /// The earliest time anything of `action` is scheduled, if any.
    fn next_due(&self, action: ScheduleAction) -> Result<Option<i64>, StoreError>;
}

impl Schedule for super::slot::DbSlot {
    fn due(
        &self,
        action: ScheduleAction,
        now_secs: i64,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.read(|db| due_entries(db, action, now_secs, limit))
    }

    fn next_due(&self, action: ScheduleAction) -> Result<Option<i64>, StoreError> {
        self.read(|db| next_due_entry(db, action))
    }
}
