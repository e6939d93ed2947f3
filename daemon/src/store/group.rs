//! The writer thread's loop: takes what is queued, runs each job against a [`TenantTxn`] of
//! one write transaction, applies the successful jobs' changes with their audit records,
//! commits once (durably) and answers every job; rewrites and space queries run between
//! groups. The handle that queues jobs is `writer.rs`, which documents the guarantees.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::{Database, Durability};
use steward::names::TenantId;
use tokio::sync::mpsc;

use super::audit::HmacKey;
use super::error::{StoreError, WriteError};
use super::online;
use super::slot::DbSlot;
use super::space::space;
use super::txn::{self, TenantTxn, TxnView};
use super::writer::{Job, JobFn, Msg, Rewrite, Shared};

pub(super) fn writer_loop(
    slot: Arc<DbSlot>,
    key: HmacKey,
    mut rx: mpsc::Receiver<Msg>,
    wake: mpsc::WeakSender<Msg>,
    shared: Arc<Shared>,
    (max_group, journal_cap): (usize, usize),
) {
    // The rewrite whose copy runs beside the writer (`online.rs`), and those waiting.
    let mut pending: Option<online::Pending> = None;
    let mut waiting: std::collections::VecDeque<Rewrite> = std::collections::VecDeque::new();
    while let Some(first) = rx.blocking_recv() {
        let mut group = Vec::new();
        let mut take = |m: Msg, group: &mut Vec<Job>| match m {
            Msg::Job(j) => group.push(j),
            Msg::Rewrite(r) => waiting.push_back(r),
            Msg::Space(reply) => {
                let _ = reply.send(space(&slot));
            }
            Msg::Wake => {}
        };
        take(first, &mut group);
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(m) => take(m, &mut group),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            match slot.get() {
                Ok(db) => {
                    if run_group(&db, &slot, &key, &shared, group, pending.as_mut()) {
                        // The instance is latched by the I/O error: replace it now, so that
                        // the next group works as soon as there is space again. If it cannot
                        // be replaced yet, the next group's `get` or failure tries again.
                        let _ = slot.reopen(Some(db));
                    }
                }
                Err(e) => fail_all(&shared, &mut group.into_iter().map(|j| j.f), &e),
            }
        }
        // A copy that is done is caught up and swapped in now, between groups; with a full
        // journal, writes wait for the copy.
        if let Some(p) = pending.as_mut() {
            let full = p.full();
            if let Some(copied) = p.poll(full)
                && let Some(p) = pending.take()
            {
                online::finish(&slot, &key, p, copied);
            }
        }
        if pending.is_none()
            && let Some(r) = waiting.pop_front()
        {
            pending = online::start(&slot, r, wake.clone(), journal_cap);
        }
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
    }
    if let Some(p) = pending.take() {
        p.cancel();
    }
    // Jobs and rewrites still queued are dropped: their callers get `WriterStopped`.
}

/// A job that ran, waiting for the commit to be answered.
pub(crate) struct Ran {
    /// The job, answered after the commit.
    pub(crate) job: Box<dyn JobFn>,
    /// The closure returned `Ok` (else it answers with its own error).
    pub(crate) closure_ok: bool,
    /// Refused by the writer despite `Ok`: [`WriteError::Unaudited`] or a panic.
    pub(crate) refusal: Option<WriteError>,
    /// Its tenant.
    pub(crate) tenant: TenantId,
    /// The change events it sends once committed (none unless it landed).
    pub(crate) events: Vec<txn::JobEvent>,
}

/// What one job's run means for its group, whatever the backend: whether it landed, and
/// what to apply (its changes with their audit entries, or only the failure's entries).
pub(crate) struct Settled {
    /// The closure returned `Ok`.
    pub(crate) closure_ok: bool,
    /// Refused despite `Ok`: [`WriteError::Unaudited`] or a panic.
    pub(crate) refusal: Option<WriteError>,
    /// What to apply in the group's transaction: staged changes and audit entries.
    pub(crate) apply: Option<(Vec<txn::Staged>, Vec<super::AuditEntry>)>,
    /// Events to send after the commit (empty unless the job landed).
    pub(crate) events: Vec<txn::JobEvent>,
}

/// Runs one job of a group against `view` (the group's transaction, of either backend)
/// and settles it: what to apply, what to answer, which events to send.
pub(crate) fn run_job(
    tenant: &TenantId,
    view: &dyn TxnView,
    key: &HmacKey,
    now: i64,
    f: &mut dyn JobFn,
) -> Settled {
    let mut txn = TenantTxn::new(tenant, view, key, now);
    let outcome = catch_unwind(AssertUnwindSafe(|| f.run(&mut txn)));
    settle(outcome, txn.into_parts())
}

/// Settles a job from its closure's `outcome` (`Err`: it panicked) and what it staged.
/// A change without an audit entry is refused; a failed job keeps only the entries it
/// asked to be kept on failure.
fn settle(outcome: std::thread::Result<bool>, parts: txn::Parts) -> Settled {
    let txn::Parts {
        staged,
        audit,
        failure_audit,
        events,
    } = parts;
    let (closure_ok, refusal, apply) = match outcome {
        Err(_) => (false, Some(WriteError::Panicked), None),
        Ok(false) => (false, None, Some((Vec::new(), failure_audit))),
        Ok(true) if !staged.is_empty() && audit.is_empty() => {
            (true, Some(WriteError::Unaudited), None)
        }
        Ok(true) => (true, None, Some((staged, audit))),
    };
    let events = if closure_ok && refusal.is_none() {
        events
    } else {
        Vec::new()
    };
    Settled {
        closure_ok,
        refusal,
        apply,
        events,
    }
}

/// Runs and commits one group; `true` when it failed on an I/O error that leaves the
/// database instance unusable (so the caller reopens it).
fn run_group(
    db: &Database,
    slot: &DbSlot,
    key: &HmacKey,
    shared: &Shared,
    group: Vec<Job>,
    pending: Option<&mut online::Pending>,
) -> bool {
    // What this group applies, for a rewrite's catch-up (`online.rs`) once it commits.
    let journaling = pending.is_some();
    let mut replays: Vec<online::Replay> = Vec::new();
    let now = jiff::Timestamp::now().as_microsecond();
    // Every job of the group gets the storage error; a latched instance's `PreviousIo`
    // after a full disk is still "storage full" (507) for the caller.
    let fail = |jobs: &mut dyn Iterator<Item = Box<dyn JobFn>>, e: StoreError| {
        let broken = e.breaks_instance();
        fail_all(shared, jobs, &slot.classify(e));
        broken
    };
    let mut wtx = match db.begin_write() {
        Ok(w) => w,
        Err(e) => return fail(&mut group.into_iter().map(|j| j.f), StoreError::from(e)),
    };
    if let Err(e) = wtx.set_durability(Durability::Immediate) {
        return fail(&mut group.into_iter().map(|j| j.f), StoreError::from(e));
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(group.len());
    let mut rest = group.into_iter();
    while let Some(Job { tenant, mut f }) = rest.next() {
        let Settled {
            closure_ok,
            refusal,
            apply,
            events,
        } = run_job(&tenant, &wtx, key, now, &mut *f);
        let applied = match apply {
            None => Ok(()),
            Some((staged, entries)) => {
                let r = txn::apply(&wtx, tenant.as_str(), key, now, &staged, &entries);
                if journaling && r.is_ok() && !(staged.is_empty() && entries.is_empty()) {
                    replays.push(online::Replay {
                        tenant: tenant.clone(),
                        now,
                        staged,
                        entries,
                    });
                }
                r
            }
        };
        if let Err(e) = applied {
            // The transaction may hold part of this job: abandon the whole group.
            drop(wtx);
            let mut all = ran
                .into_iter()
                .map(|r| r.job)
                .chain(std::iter::once(f))
                .chain(rest.map(|j| j.f));
            return fail(&mut all, e);
        }
        ran.push(Ran {
            job: f,
            closure_ok,
            refusal,
            tenant,
            events,
        });
    }
    match wtx.commit() {
        Ok(()) => {
            if let Some(p) = pending {
                p.journal(replays);
            }
            committed(shared, ran, now);
            false
        }
        Err(e) => fail(&mut ran.into_iter().map(|r| r.job), StoreError::from(e)),
    }
}

/// After a group's commit: counts it, sends the landed jobs' change events and answers
/// every job (the group's clock `now` is the events' time).
pub(crate) fn committed(shared: &Shared, ran: Vec<Ran>, now: i64) {
    shared.commits.fetch_add(1, Ordering::SeqCst);
    for r in ran {
        let landed = r.closure_ok && r.refusal.is_none();
        let counter = if landed {
            &shared.jobs_committed
        } else {
            &shared.jobs_failed
        };
        counter.fetch_add(1, Ordering::SeqCst);
        for ev in r.events {
            shared.announce(&r.tenant, ev.kind, ev.name, ev.action, now);
        }
        r.job.answer(r.refusal.map_or(Ok(()), Err));
    }
}

/// Answers every job with (a copy of) the group's storage error.
pub(crate) fn fail_all(
    shared: &Shared,
    jobs: &mut dyn Iterator<Item = Box<dyn JobFn>>,
    e: &StoreError,
) {
    for job in jobs {
        shared.jobs_failed.fetch_add(1, Ordering::SeqCst);
        job.answer(Err(WriteError::Store(e.duplicate())));
    }
}
