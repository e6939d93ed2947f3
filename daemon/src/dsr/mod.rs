//! Carrying out data-subject requests (GDPR access and erasure) once a tenant-admin has
//! confirmed them. The HTTP side (open, confirm, reject, extend, bundle) is
//! `routes/dsr.rs`; the request itself and its state machine are
//! [`steward::model::DataSubjectRequest`].
//!
//! | module | what it holds |
//! | --- | --- |
//! | this one | the stored form ([`DsrDoc`]), the execution task ([`spawn`], [`resume_all`]) |
//! | [`bundle`] | export: every record of the tenant naming the subject, written 0600 |
//! | [`erase`] | erase: one step = one write job over a batch of records |
//! | [`scrub`] | after an erase: the store rewritten into a fresh file within `[dsr] scrub_within` |
//!
//! # Resumability
//!
//! Execution is a sequence of write jobs, each of which commits its changes *and* the
//! progress they represent in the request's own record, in one transaction:
//!
//! 1. `start`: `confirmed | failed → in_progress` (audited `dsr.execute`).
//! 2. export: the bundle is built from a read and written to a temp file renamed into place
//!    (redoing it after a crash rewrites the same file: nothing in the store changes);
//!    erase: repeated steps, each taking the next records (from the subject index) that
//!    have no line in the report yet, changing them and appending their report lines in the
//!    same job. A record with a report line is never touched again, so a step cut short by
//!    a crash either committed whole or left no trace.
//! 3. `complete`: `in_progress → completed` with the counts (audited `dsr.complete`). An
//!    erasure's completion also replaces the request's own identifiers with their HMACs
//!    and schedules the scrub ([`scrub`]): `scrubDueAt`, half of `[dsr] scrub_within` later.
//!
//! A failed step marks the request `failed` (audited, with the error) and is retried a few
//! times with a backoff; at startup every request `confirmed`, `in_progress` or `failed` is
//! resumed. Two runners of the same request cannot do anything twice either: each step
//! re-reads the report inside its own transaction.
//!
//! # What the request's record is not
//!
//! The request holds the subject's identifiers (it *is* the request), but its record is
//! stored **without subject-index entries**: a subject search or an erasure must find the
//! person's data, not the paperwork of their request, which is kept `[retention] dsr` as
//! proof that it was answered. Audit records name the subject only as HMACs. Once an
//! erasure completes, its request (and every finished request naming the same person)
//! keeps only the kinds and HMACs of the identifiers (`subjectRemoved`), so the proof
//! remains without the person.

pub mod bundle;
pub mod erase;
pub mod scrub;

use crate::store::TenantRead;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steward::names::TenantId;
use steward::resource::Operation;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use steward::model::{AuditStatus, DataSubjectRequest, DsrStatus, DsrType, SubjectKey};

use crate::state::Shared;
use crate::store::{self, AuditEntry, DocInput, Kind, ScheduleAction, TenantWrite, WriteError};

/// How many times a failed execution is retried by its task before waiting for a restart.
const ATTEMPTS: u32 = 3;
/// Records handled per erase step (one write job each).
pub const STEP: usize = 25;

/// Progress of a request's execution, kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// When execution first started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// How many times it was started (1 unless it failed or the daemon stopped).
    #[serde(default)]
    pub attempts: u32,
    /// Write jobs committed so far.
    #[serde(default)]
    pub steps: u32,
    /// Records in the export bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_records: Option<u64>,
    /// Audit records in the export bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_audit_records: Option<u64>,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// The last error, while failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// An erasure: by when the store is rewritten so that no freed page keeps what it
    /// erased (a `Scrub` schedule entry until then; `[dsr] scrub_within` after completion
    /// at the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub_due_at: Option<Timestamp>,
    /// An erasure: when that rewrite ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrubbed_at: Option<Timestamp>,
    /// An export: the erasure that removed its bundle (the bundle named the erased person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_removed_by: Option<String>,
}

/// A request as stored: the model's request plus its execution progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DsrDoc {
    /// The request.
    #[serde(flatten)]
    pub request: DataSubjectRequest,
    /// Progress, once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
    /// The deadline for which the overdue event was raised (so it is raised once per
    /// deadline; extending the request makes a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_raised_for: Option<Timestamp>,
}

impl DsrDoc {
    /// A new request's record.
    pub fn new(request: DataSubjectRequest) -> DsrDoc {
        DsrDoc {
            request,
            execution: None,
            overdue_raised_for: None,
        }
    }

    /// Parses a stored record.
    pub fn parse(doc: &store::Doc) -> Result<DsrDoc, WriteError> {
        serde_json::from_str(&doc.body_json)
            .map_err(|e| WriteError::Corrupt(format!("stored request {:?}: {e}", doc.name)))
    }

    /// The stored form: no subject-index entries (see the module doc), a `Deadline` entry
    /// while open and not yet reported overdue for the deadline in force, and a `Purge`
    /// entry `[retention] dsr` after receipt.
    pub fn input(&self, retention: Duration) -> Result<DocInput, WriteError> {
        let body = serde_json::to_string(self)
            .map_err(|e| WriteError::Encode(format!("data-subject request: {e}")))?;
        let mut input = DocInput::new(body);
        let deadline = self.request.deadline();
        if !self.request.status.is_final() && self.overdue_raised_for != Some(deadline) {
            input = input.schedule(ScheduleAction::Deadline, deadline.as_second());
        }
        if let Some(x) = &self.execution
            && let (Some(due), None) = (x.scrub_due_at, x.scrubbed_at)
        {
            input = input.schedule(ScheduleAction::Scrub, due.as_second());
        }
        let keep = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        Ok(input.expires_at(self.request.received_at.as_second().saturating_add(keep)))
    }

    /// The subject's identifiers (for the index and audit HMACs).
    pub fn subject_keys(&self) -> Vec<SubjectKey> {
        self.request.subject.keys()
    }

    /// An audit entry about this request, naming the subject only as HMACs.
    pub fn entry(&self, entry: AuditEntry) -> AuditEntry {
        let mut e = entry.resource(format!("dsr/{}", self.request.id));
        for k in &self.subject_keys() {
            e = e.subject(k);
        }
        e
    }

    fn exec(&mut self) -> &mut Execution {
        self.execution.get_or_insert_with(Execution::default)
    }
}

/// Reads a request inside a job.
pub fn load(txn: &dyn TenantWrite, id: &str) -> Result<DsrDoc, WriteError> {
    found(txn.get(Kind::Dsr, id)?, id)
}

/// Reads request `id` outside a job, through a reader of its tenant.
pub fn read(reader: &store::TenantReader, id: &str) -> Result<DsrDoc, WriteError> {
    found(reader.get(Kind::Dsr, id)?, id)
}

/// Request `id` from what a read found: [`WriteError::NotFound`] when nothing was.
fn found(doc: Option<store::Doc>, id: &str) -> Result<DsrDoc, WriteError> {
    let doc = doc.ok_or_else(|| WriteError::NotFound {
        kind: Kind::Dsr,
        name: id.to_string(),
    })?;
    DsrDoc::parse(&doc)
}

/// Writes a request back inside a job.
pub fn save(txn: &mut dyn TenantWrite, d: &DsrDoc, retention: Duration) -> Result<(), WriteError> {
    txn.update(Kind::Dsr, &d.request.id, d.input(retention)?)?;
    Ok(())
}

fn now_of(txn: &dyn TenantWrite) -> Timestamp {
    Timestamp::from_microsecond(txn.now_micros()).unwrap_or_else(|_| Timestamp::now())
}

fn system(op: Operation, status: AuditStatus) -> AuditEntry {
    AuditEntry::new(store::system_caller(), op, status)
}

/// What `start` found.
enum Started {
    /// Runs now, of this type.
    Run(DsrType),
    /// Nothing to do (finished, rejected, or not confirmed).
    Nothing,
}

/// Job: `confirmed | failed → in_progress` (an `in_progress` request resumes as it is).
fn start(txn: &mut dyn TenantWrite, id: &str, retention: Duration) -> Result<Started, WriteError> {
    let mut d = load(txn, id)?;
    let kind = d.request.kind;
    match d.request.status {
        DsrStatus::Confirmed | DsrStatus::Failed | DsrStatus::InProgress => {}
        _ => return Ok(Started::Nothing),
    }
    let resumed = d.request.status == DsrStatus::InProgress;
    if !resumed {
        d.request
            .transition(DsrStatus::InProgress)
            .map_err(|e| WriteError::Invalid(e.to_string()))?;
    }
    let now = now_of(txn);
    let x = d.exec();
    x.started_at.get_or_insert(now);
    x.attempts += 1;
    x.last_error = None;
    save(txn, &d, retention)?;
    let mut e = d.entry(system(Operation::DsrExecute, AuditStatus::Succeeded));
    if resumed {
        e = e.reason("resumed after an interruption");
    }
    txn.audit(e);
    Ok(Started::Run(kind))
}

/// Job: `in_progress → failed`, recording the error.
fn fail(
    txn: &mut dyn TenantWrite,
    id: &str,
    error: &str,
    retention: Duration,
) -> Result<(), WriteError> {
    let mut d = load(txn, id)?;
    if d.request.status != DsrStatus::InProgress {
        return Ok(());
    }
    d.request
        .transition(DsrStatus::Failed)
        .map_err(|e| WriteError::Invalid(e.to_string()))?;
    d.exec().last_error = Some(error.to_string());
    save(txn, &d, retention)?;
    txn.audit(
        d.entry(system(Operation::DsrExecute, AuditStatus::Failed))
            .reason(error.to_string()),
    );
    Ok(())
}

/// Replaces the identifiers of `d` with their kinds and HMACs (see
/// [`steward::model::SubjectRemoved`]); `by` is the erasure doing it.
pub(crate) fn remove_subject(txn: &dyn TenantWrite, d: &mut DsrDoc, by: &str) {
    let hmacs = d.subject_keys().iter().map(|k| txn.hmac(k)).collect();
    d.request.remove_subject(now_of(txn), by, hmacs);
}

/// Job: `in_progress → completed`, with `counts` in the audit record. `scrub_within`: an
/// erasure, whose request keeps only HMACs of the identifiers from now on and whose scrub
/// is scheduled (half the window from now, leaving the other half for the rewrite).
pub(crate) fn complete(
    txn: &mut dyn TenantWrite,
    d: &mut DsrDoc,
    counts: &[(&str, u64)],
    retention: Duration,
    scrub_within: Option<Duration>,
) -> Result<(), WriteError> {
    d.request
        .transition(DsrStatus::Completed)
        .map_err(|e| WriteError::Invalid(e.to_string()))?;
    let now = now_of(txn);
    // Named by HMAC while the identifiers are still there.
    let mut e = d.entry(system(Operation::DsrComplete, AuditStatus::Succeeded));
    for (k, n) in counts {
        e = e.count(*k, *n);
    }
    if let Some(within) = scrub_within {
        let id = d.request.id.clone();
        remove_subject(txn, d, &id);
        let half = jiff::SignedDuration::try_from(within / 2).unwrap_or(jiff::SignedDuration::ZERO);
        d.exec().scrub_due_at = Some(now.checked_add(half).unwrap_or(now));
        e = e.field("subject");
    }
    let x = d.exec();
    x.completed_at = Some(now);
    x.steps += 1;
    save(txn, d, retention)?;
    txn.audit(e);
    txn.emit(Kind::Dsr, &d.request.id, "completed");
    Ok(())
}

/// Requests being executed by a task of this process, so one is not run twice at once
/// (doing so would be harmless, only wasteful).
fn running() -> &'static Mutex<HashSet<(TenantId, String)>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashSet<(TenantId, String)>>> =
        std::sync::OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Starts executing request `id` of `tenant` in the background (no-op when it is already
/// running here, or not confirmed).
pub fn spawn(shared: &Arc<Shared>, tenant: &TenantId, id: &str) {
    let key = (tenant.clone(), id.to_string());
    if let Ok(mut set) = running().lock()
        && !set.insert(key.clone())
    {
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        run(&shared, &key.0, &key.1).await;
        if let Ok(mut set) = running().lock() {
            set.remove(&key);
        }
    });
}

/// Executes a request to the end, retrying a failure a few times with a backoff.
async fn run(shared: &Arc<Shared>, tenant: &TenantId, id: &str) {
    for attempt in 0..ATTEMPTS {
        if shared.shutdown.is_cancelled() {
            return;
        }
        match execute(shared, tenant, id).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(tenant = %tenant, request = id, error = %e, "data-subject request failed");
                let retention = shared.config().retention.dsr.0;
                let msg = e.to_string();
                let (t, i) = (tenant.clone(), id.to_string());
                let marked: Result<(), WriteError> = shared
                    .store
                    .writer()
                    .write(&t, move |txn: &mut dyn TenantWrite| {
                        fail(txn, &i, &msg, retention)
                    })
                    .await;
                if let Err(e) = marked {
                    tracing::error!(tenant = %tenant, request = id, error = %e, "could not record the failure");
                }
                let wait = Duration::from_millis(500u64 << attempt);
                tokio::select! {
                    () = shared.shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// One attempt: start, the type's steps, complete.
async fn execute(shared: &Arc<Shared>, tenant: &TenantId, id: &str) -> Result<(), WriteError> {
    let writer = shared.store.writer();
    let retention = shared.config().retention.dsr.0;
    let i = id.to_string();
    let started = writer
        .write(tenant, move |txn: &mut dyn TenantWrite| {
            start(txn, &i, retention)
        })
        .await?;
    match started {
        Started::Nothing => Ok(()),
        Started::Run(DsrType::Export) => bundle::run(shared, tenant, id).await,
        Started::Run(DsrType::Erase) => erase::run(shared, tenant, id).await,
    }
}

/// Resumes, in the background, every request of the configured tenants that is
/// `confirmed`, `in_progress` or `failed` (after a restart). Returns how many.
pub async fn resume_all(shared: &Arc<Shared>) -> usize {
    let cfg = shared.config();
    let mut n = 0;
    for t in &cfg.tenants {
        let reader = shared.store.tenant(&t.id);
        let ids = tokio::task::spawn_blocking(move || -> Result<Vec<String>, WriteError> {
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = reader.list(Kind::Dsr, after.as_deref(), 500)?;
                for doc in &page.items {
                    let d = DsrDoc::parse(doc)?;
                    if matches!(
                        d.request.status,
                        DsrStatus::Confirmed | DsrStatus::InProgress | DsrStatus::Failed
                    ) {
                        out.push(doc.name.clone());
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => return Ok(out),
                }
            }
        })
        .await;
        match ids {
            Ok(Ok(ids)) => {
                for id in ids {
                    tracing::info!(tenant = %t.id, request = %id, "resuming a data-subject request");
                    spawn(shared, &t.id, &id);
                    n += 1;
                }
            }
            Ok(Err(e)) => {
                tracing::error!(tenant = %t.id, error = %e, "cannot list data-subject requests")
            }
            Err(e) => {
                tracing::error!(tenant = %t.id, error = %e, "cannot list data-subject requests")
            }
        }
    }
    n
}
