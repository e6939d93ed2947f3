//! [`TenantTxn`]: one write job's view of the writer's transaction, bound to one tenant.
//!
//! Two invariants are made structural here rather than left to callers:
//!
//! - **A failed job changed nothing.** `put`, `delete` and `purge_audit_before` validate
//!   against the transaction's view (and this job's own earlier staged changes) and only
//!   *stage* the change; the writer applies the staged changes after the closure returns
//!   `Ok`. A closure that returns `Err` (or panics) after staging leaves no trace, without
//!   savepoints.
//! - **No change without its audit record.** The writer applies a job's staged changes
//!   only if the job also recorded at least one [`AuditEntry`] with
//!   [`TenantTxn::audit`]; otherwise the job fails with [`WriteError::Unaudited`]. The
//!   changes and their audit records are applied together and commit together.
//!
//! A job with only audit entries (a denied attempt) is fine. Entries given to
//! [`TenantTxn::audit_on_failure`] are kept when the job fails (a 412 audited as `Failed`).
//!
//! Reads: [`TenantTxn::get`] sees earlier jobs of the same group and this job's own staged
//! changes; `list` and `subjects` see earlier jobs but not this job's staged changes.

use std::collections::{BTreeSet, HashMap};

use redb::WriteTransaction;
use steward::model::SubjectKey;
use steward::names::{ResourceName, TenantId};

use super::audit::{self, AuditEntry, ChainPoint, HmacKey};
use super::boundary::TenantWrite;
use super::codec;
use super::doc::{Doc, DocInput, Kind, StoredDoc};
use super::error::{StoreError, WriteError};
use super::read::{self, Page, SubjectHit, TimeCursor};
use super::tables;
use super::time_scan::TimeQuery;
pub(crate) use super::view::TxnView;

/// A change staged by a job, applied by the writer once the job has succeeded.
#[derive(Debug)]
pub(crate) enum Staged {
    Put {
        kind: Kind,
        name: String,
        doc: StoredDoc,
        /// Nothing is stored under this name when the put applies (so `apply` need not
        /// look for an old record to unindex).
        new: bool,
        /// The time index's value ([`DocInput::facets`]).
        facets: (String, String),
    },
    Delete {
        kind: Kind,
        name: String,
    },
    PurgeAudit {
        first_seq: u64,
        through: ChainPoint,
    },
}

/// A change event a job produces (sent after commit).
#[derive(Debug, Clone)]
pub(crate) struct JobEvent {
    pub kind: Kind,
    pub name: String,
    pub action: String,
}

/// What the writer takes from a finished job.
pub(crate) struct Parts {
    pub staged: Vec<Staged>,
    pub audit: Vec<AuditEntry>,
    pub failure_audit: Vec<AuditEntry>,
    pub events: Vec<JobEvent>,
}

/// One job's tenant-bound view of the writer's transaction (see the module doc).
pub struct TenantTxn<'a> {
    /// The only tenant this job can touch: the first element of every key built here.
    tenant: &'a TenantId,
    /// The group's write transaction as the backend reads it; written only after the job
    /// (redb: [`apply`]).
    view: &'a dyn TxnView,
    /// For [`TenantTxn::hmac`].
    key: &'a HmacKey,
    /// The group's clock (Unix microseconds), one value for every job of the group.
    now_micros: i64,
    /// Changes to apply if the job succeeds, in order.
    staged: Vec<Staged>,
    /// This job's staged records by `(kind, name)`, so `get` sees them: the index of the
    /// latest [`Staged::Put`] in `staged`, or `None` if deleted.
    overlay: HashMap<(Kind, String), Option<usize>>,
    /// Audit entries to append if the job succeeds.
    audit: Vec<AuditEntry>,
    /// Audit entries to append if the job fails.
    failure_audit: Vec<AuditEntry>,
    /// Events to send after commit if the job succeeds.
    events: Vec<JobEvent>,
    /// Index of each record's event in `events`.
    event_of: HashMap<(Kind, String), usize>,
}

/// No record `name` of `kind` in this tenant.
fn not_found(kind: Kind, name: &str) -> WriteError {
    WriteError::NotFound {
        kind,
        name: name.to_string(),
    }
}

fn check_if_match(
    kind: Kind,
    name: &str,
    current: Option<&Doc>,
    if_match: Option<&str>,
) -> Result<(), WriteError> {
    let ok = match (if_match, current) {
        (None, _) => true,
        (Some("*"), cur) => cur.is_some(),
        (Some(tag), Some(cur)) => cur.etag == tag,
        (Some(_), None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(WriteError::PreconditionFailed {
            kind,
            name: name.to_string(),
            current: current.map(|c| c.etag.clone()),
        })
    }
}

/// A caller's `If-Match` for a replace or delete, and the audit entry that records the
/// attempt as failed when it does not hold ([`TenantTxn::replace_if_match`],
/// [`TenantTxn::delete_if_match`]): every kind audits a 412 the same way.
#[derive(Debug)]
pub struct IfMatch {
    /// The tag the caller holds (`*`: any existing record); `None`: unconditional.
    pub tag: Option<String>,
    /// The entry recorded, with the reason `If-Match did not match`, when it does not hold.
    pub failed: AuditEntry,
}

impl<'a> TenantTxn<'a> {
    pub(crate) fn new(
        tenant: &'a TenantId,
        view: &'a dyn TxnView,
        key: &'a HmacKey,
        now_micros: i64,
    ) -> Self {
        TenantTxn {
            tenant,
            view,
            key,
            now_micros,
            staged: Vec::new(),
            overlay: HashMap::new(),
            audit: Vec::new(),
            failure_audit: Vec::new(),
            events: Vec::new(),
            event_of: HashMap::new(),
        }
    }

    pub(crate) fn into_parts(self) -> Parts {
        Parts {
            staged: self.staged,
            audit: self.audit,
            failure_audit: self.failure_audit,
            events: self.events,
        }
    }

    /// Audits `failed` when `e` is a failed precondition; passes `e` on.
    fn precondition_failed(&mut self, e: WriteError, failed: AuditEntry) -> WriteError {
        if matches!(e, WriteError::PreconditionFailed { .. }) {
            self.audit_on_failure(failed.reason("If-Match did not match"));
        }
        e
    }

    /// Stages a put over `current` (the record as this job sees it, `None` if there is
    /// none) and returns the record as staged.
    fn stage_replace(
        &mut self,
        kind: Kind,
        name: &str,
        input: DocInput,
        current: Option<&Doc>,
    ) -> Result<Doc, WriteError> {
        self.stage_put(kind, name, input, current.map(|c| c.created_at_micros));
        // The overlay now holds it.
        self.get(kind, name)?.ok_or_else(|| not_found(kind, name))
    }

    fn stage_put(&mut self, kind: Kind, name: &str, input: DocInput, created: Option<i64>) {
        let subjects: BTreeSet<_> = input.subjects.into_iter().collect();
        let schedule: BTreeSet<_> = input.schedule.into_iter().collect();
        let input_facets = input.facets;
        let stored = StoredDoc {
            etag: uuid::Uuid::now_v7().simple().to_string(),
            created_at_micros: created.unwrap_or(self.now_micros),
            updated_at_micros: self.now_micros,
            body_json: input.body_json,
            subjects: subjects.into_iter().collect(),
            schedule: schedule.into_iter().collect(),
            time: input.time,
        };
        // Nothing stored when it applies: neither now nor by an earlier change of this job
        // (a staged delete applies first, so a put after it is new too).
        let new = match self.overlay.get(&(kind, name.to_string())) {
            Some(staged) => staged.is_none(),
            None => created.is_none(),
        };
        let action = if created.is_some() {
            "updated"
        } else {
            "created"
        };
        self.set_event(kind, name, action);
        self.overlay
            .insert((kind, name.to_string()), Some(self.staged.len()));
        self.staged.push(Staged::Put {
            kind,
            name: name.to_string(),
            doc: stored,
            new,
            facets: input_facets,
        });
    }

    fn set_event(&mut self, kind: Kind, name: &str, action: &str) {
        // Bookkeeping, not a resource: nobody subscribes to it.
        if kind == Kind::IdempotencyKey {
            return;
        }
        match self.event_of.get(&(kind, name.to_string())) {
            Some(&i) => self.events[i].action = action.to_string(),
            None => {
                self.event_of
                    .insert((kind, name.to_string()), self.events.len());
                self.events.push(JobEvent {
                    kind,
                    name: name.to_string(),
                    action: action.to_string(),
                });
            }
        }
    }
}

impl TenantWrite for TenantTxn<'_> {
    fn tenant(&self) -> &TenantId {
        self.tenant
    }

    fn now_micros(&self) -> i64 {
        self.now_micros
    }

    fn get(&self, kind: Kind, name: &str) -> Result<Option<Doc>, WriteError> {
        if let Some(staged) = self.overlay.get(&(kind, name.to_string())) {
            return Ok(staged.and_then(|i| match &self.staged[i] {
                Staged::Put {
                    kind, name, doc, ..
                } => Some(Doc::from_stored(*kind, name, doc.clone())),
                _ => None,
            }));
        }
        Ok(self.view.get(self.tenant.as_str(), kind, name)?)
    }

    fn exists(&self, kind: Kind, name: &str) -> Result<bool, WriteError> {
        if let Some(staged) = self.overlay.get(&(kind, name.to_string())) {
            return Ok(staged.is_some());
        }
        Ok(self.view.exists(self.tenant.as_str(), kind, name)?)
    }

    fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, WriteError> {
        Ok(self.view.list(self.tenant.as_str(), kind, after, limit)?)
    }

    fn list_by_time(
        &self,
        kind: Kind,
        mut q: TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, WriteError> {
        let page = self.view.list_by_time(self.tenant.as_str(), kind, &mut q)?;
        Ok(page)
    }

    fn subjects(&self, key: &SubjectKey) -> Result<Vec<SubjectHit>, WriteError> {
        Ok(self.view.subjects(self.tenant.as_str(), key)?)
    }

    fn hmac(&self, key: &SubjectKey) -> String {
        self.key.subject(key)
    }

    fn put(
        &mut self,
        kind: Kind,
        name: &ResourceName,
        input: DocInput,
        if_match: Option<&str>,
    ) -> Result<Doc, WriteError> {
        let current = self.get(kind, name)?;
        check_if_match(kind, name, current.as_ref(), if_match)?;
        self.stage_replace(kind, name, input, current.as_ref())
    }

    fn update(&mut self, kind: Kind, name: &str, input: DocInput) -> Result<Doc, WriteError> {
        let current = self.get(kind, name)?.ok_or_else(|| not_found(kind, name))?;
        self.stage_replace(kind, name, input, Some(&current))
    }

    fn replace_if_match(
        &mut self,
        kind: Kind,
        name: &ResourceName,
        input: DocInput,
        cond: IfMatch,
    ) -> Result<(Doc, bool), WriteError> {
        let existed = self.get(kind, name)?.is_some();
        match self.put(kind, name, input, cond.tag.as_deref()) {
            Ok(doc) => Ok((doc, !existed)),
            Err(e) => Err(self.precondition_failed(e, cond.failed)),
        }
    }

    fn delete_if_match(
        &mut self,
        kind: Kind,
        name: &str,
        cond: IfMatch,
    ) -> Result<Doc, WriteError> {
        match self.delete(kind, name, cond.tag.as_deref()) {
            Ok(doc) => Ok(doc),
            Err(e) => Err(self.precondition_failed(e, cond.failed)),
        }
    }

    fn put_new(
        &mut self,
        kind: Kind,
        name: &ResourceName,
        input: DocInput,
    ) -> Result<bool, WriteError> {
        if self.exists(kind, name)? {
            return Ok(false);
        }
        self.stage_put(kind, name, input, None);
        Ok(true)
    }

    fn delete(
        &mut self,
        kind: Kind,
        name: &str,
        if_match: Option<&str>,
    ) -> Result<Doc, WriteError> {
        let doc = self.get(kind, name)?.ok_or_else(|| not_found(kind, name))?;
        check_if_match(kind, name, Some(&doc), if_match)?;
        self.staged.push(Staged::Delete {
            kind,
            name: name.to_string(),
        });
        self.overlay.insert((kind, name.to_string()), None);
        self.set_event(kind, name, "deleted");
        Ok(doc)
    }

    fn audit(&mut self, entry: AuditEntry) {
        self.audit.push(entry);
    }

    fn audit_on_failure(&mut self, entry: AuditEntry) {
        self.failure_audit.push(entry);
    }

    fn emit(&mut self, kind: Kind, name: &str, action: &str) {
        self.set_event(kind, name, action);
    }

    fn purge_audit_before(&mut self, before_micros: i64, limit: usize) -> Result<u64, WriteError> {
        let already = self.staged.iter().filter_map(|s| match s {
            Staged::PurgeAudit { through, .. } => Some(through.seq),
            _ => None,
        });
        let start = already.max().map_or(0, |s| s + 1);
        let oldest = self
            .view
            .audit_before(self.tenant.as_str(), start, before_micros, limit)?;
        let n = oldest.len() as u64;
        if let (Some(first), Some(through)) = (oldest.first(), oldest.last().cloned()) {
            let first_seq = first.seq;
            self.staged.push(Staged::PurgeAudit { first_seq, through });
        }
        Ok(n)
    }
}

/// Applies one successful job's staged changes, then appends its audit entries, inside the
/// group's transaction. An error here is a storage error: the writer aborts the group.
pub(crate) fn apply(
    wtx: &WriteTransaction,
    tenant: &str,
    key: &HmacKey,
    now_micros: i64,
    staged: &[Staged],
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    {
        let mut records = wtx.open_table(tables::RECORDS)?;
        let mut ix = Indexes {
            time: wtx.open_table(tables::TIME_INDEX)?,
            subjects: wtx.open_table(tables::SUBJECTS)?,
            schedule: wtx.open_table(tables::SCHEDULE)?,
        };
        let mut chain = audit::Chain::open(wtx)?;
        for op in staged {
            match op {
                Staged::Put {
                    kind,
                    name,
                    doc,
                    new,
                    facets,
                } => {
                    let k = kind.as_u8();
                    if !*new {
                        ix.remove(&records, tenant, *kind, name)?;
                    }
                    let bytes = codec::encode(doc)
                        .map_err(|e| StoreError::codec(format!("{kind} {name:?}"), e))?;
                    records.insert((tenant, k, name.as_str()), bytes.as_slice())?;
                    if let Some(t) = doc.time {
                        ix.time.insert(
                            (tenant, k, t, name.as_str()),
                            (facets.0.as_str(), facets.1.as_str()),
                        )?;
                    }
                    for s in &doc.subjects {
                        ix.subjects.insert(
                            (
                                tenant,
                                s.index_key().as_str(),
                                k,
                                name.as_str(),
                                s.field.as_str(),
                            ),
                            (),
                        )?;
                    }
                    for s in &doc.schedule {
                        ix.schedule
                            .insert((s.action.as_u8(), s.at_secs, k, tenant, name.as_str()), ())?;
                    }
                }
                Staged::Delete { kind, name } => {
                    ix.remove(&records, tenant, *kind, name)?;
                    records.remove((tenant, kind.as_u8(), name.as_str()))?;
                }
                Staged::PurgeAudit { first_seq, through } => {
                    chain.purge(tenant, *first_seq, through)?;
                }
            }
        }
        // The group's clock is the system clock, always within jiff's range; a clock outside
        // it is an OS fault, not something to record as 1970.
        let at = jiff::Timestamp::from_microsecond(now_micros).map_err(|e| {
            StoreError::Io(std::io::Error::other(format!(
                "the clock is out of range: {e}"
            )))
        })?;
        for entry in entries {
            chain.append(tenant, key, at, entry)?;
        }
    }
    Ok(())
}

type TimeTable<'t> =
    redb::Table<'t, (&'static str, u8, i64, &'static str), (&'static str, &'static str)>;
type SubjectTable<'t> =
    redb::Table<'t, (&'static str, &'static str, u8, &'static str, &'static str), ()>;
type ScheduleTable<'t> = redb::Table<'t, (u8, i64, u8, &'static str, &'static str), ()>;

/// The index tables a record's entries live in, open for one apply.
struct Indexes<'t> {
    /// `tables::TIME_INDEX`.
    time: TimeTable<'t>,
    /// `tables::SUBJECTS`.
    subjects: SubjectTable<'t>,
    /// `tables::SCHEDULE`.
    schedule: ScheduleTable<'t>,
}

impl Indexes<'_> {
    /// Removes every index entry the record stored as `name` put in place (none when
    /// nothing is stored under it).
    fn remove(
        &mut self,
        records: &impl read::Records,
        tenant: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(), StoreError> {
        let Some(old) = read::get_stored(records, tenant, kind, name)? else {
            return Ok(());
        };
        let k = kind.as_u8();
        if let Some(t) = old.time {
            self.time.remove((tenant, k, t, name))?;
        }
        for s in &old.subjects {
            self.subjects
                .remove((tenant, s.index_key().as_str(), k, name, s.field.as_str()))?;
        }
        for s in &old.schedule {
            self.schedule
                .remove((s.action.as_u8(), s.at_secs, k, tenant, name))?;
        }
        Ok(())
    }
}
