//! The single writer: one OS thread owns every write transaction (redb is synchronous) and
//! commits queued jobs in groups. This module is the handle the daemon holds ([`Writer`]:
//! queue a job, wait for its commit); the thread's loop is `group.rs`.
//!
//! The thread takes everything waiting (up to `max_group`), opens ONE write transaction with
//! `Durability::Immediate`, runs each job's closure against a [`TenantTxn`] of that same
//! transaction (later jobs see earlier jobs' changes), applies each successful job's staged
//! changes with its audit records, commits once, and only then answers every job (group
//! commit). A job that fails changed nothing and fails alone; a commit failure fails the whole
//! group with the same error (e.g. [`StoreError::StorageFull`] → HTTP 507). No savepoints.
//! After a group fails on an I/O error (a full disk), redb refuses every later transaction of
//! that instance, so the thread reopens the database (`slot.rs`) before the next group; if
//! the reopen cannot happen yet (the disk is still full), the next group tries again.
//! Change events go out on a broadcast channel after the commit. Not here: reads (`read.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use steward::resource::Operation;

use steward::model::AuditStatus;
use steward::names::TenantId;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::Due;
use super::audit::{AuditEntry, system_caller};
use super::backend::Schedule;
use super::boundary::TenantWrite;
use super::doc::{Kind, ScheduleAction};
use super::error::{StoreError, WriteError};
use super::reserve::Reserve;
use super::space::Space;
use super::swap::{Retirement, RewriteReport};

/// A change that committed, for the API's `/v1/events` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Increasing number since the daemon started, counted per tenant and kind of record:
    /// the numbers a subscriber sees say nothing about changes it may not read.
    pub seq: u64,
    /// Commit time of the group, Unix microseconds.
    pub at_micros: i64,
    /// Tenant of the record.
    pub tenant: TenantId,
    /// Kind of the record.
    pub kind: Kind,
    /// Name of the record.
    pub name: String,
    /// `created`, `updated`, `deleted`, `purged`, or what the job set with `emit`.
    pub action: String,
}

/// Counters of the writer, to observe group commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Jobs acknowledged as committed.
    pub jobs_committed: u64,
    /// Jobs that failed (their own error, or their group's).
    pub jobs_failed: u64,
}

/// A queued job with its type erased: run it against a view, then answer it after commit.
pub(super) trait JobFn: Send {
    /// Runs the closure once; `true` when it returned `Ok`.
    fn run(&mut self, txn: &mut dyn TenantWrite) -> bool;
    /// Answers the caller: its own error if it failed, else `outcome` (commit or refusal).
    fn answer(self: Box<Self>, outcome: Result<(), WriteError>);
}

struct TypedJob<F, T, E> {
    f: Option<F>,
    result: Option<Result<T, E>>,
    tx: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> JobFn for TypedJob<F, T, E>
where
    F: FnOnce(&mut dyn TenantWrite) -> Result<T, E> + Send,
    T: Send,
    E: From<WriteError> + Send,
{
    fn run(&mut self, txn: &mut dyn TenantWrite) -> bool {
        let Some(f) = self.f.take() else { return false };
        let r = f(txn);
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn answer(self: Box<Self>, outcome: Result<(), WriteError>) {
        let this = *self;
        let reply = match (this.result, outcome) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(_)) | None, Err(e)) => Err(E::from(e)),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(E::from(WriteError::Panicked)),
        };
        let _ = this.tx.send(reply);
    }
}

/// A queued job: the tenant its view is bound to, and the closure.
pub(super) struct Job {
    /// The tenant.
    pub(super) tenant: TenantId,
    /// The closure, type-erased.
    pub(super) f: Box<dyn JobFn>,
}

/// State shared by every [`Writer`] handle and the thread.
#[derive(Debug)]
pub(super) struct Shared {
    /// For [`Writer::due`]'s read of the schedule. Weak, so writer handles held
    /// by tasks do not keep the file (and its lock) open after the store is closed.
    schedule: Weak<dyn Schedule>,
    /// Transactions committed.
    pub(super) commits: AtomicU64,
    /// Jobs acknowledged as committed.
    pub(super) jobs_committed: AtomicU64,
    /// Jobs that failed.
    pub(super) jobs_failed: AtomicU64,
    /// The last event number of each tenant and kind (see [`ChangeEvent::seq`]).
    pub(super) event_seq: std::sync::Mutex<std::collections::HashMap<(TenantId, Kind), u64>>,
    /// Set by [`Writer::stop`]; the thread exits after its current group.
    pub(super) stopping: AtomicBool,
    /// Change events, sent after each commit.
    pub(super) events: broadcast::Sender<ChangeEvent>,
    /// Moved when events may have been missed by everyone (a fleet's listener lost its
    /// connection): every [`Subscription`] then reports a lag.
    pub(super) gaps: watch::Sender<u64>,
    /// Disk space kept for refusals' audit records (`reserve.rs`); none for a backend
    /// whose disk is not this host's.
    pub(super) reserve: Option<Reserve>,
}

impl Shared {
    /// Sends one committed change to the subscribers, numbered per tenant and kind (see
    /// [`ChangeEvent::seq`]): for this daemon's commits and, on a fleet, for those another
    /// daemon announced (`pg/listen.rs`).
    pub(super) fn announce(
        &self,
        tenant: &TenantId,
        kind: Kind,
        name: String,
        action: String,
        at_micros: i64,
    ) {
        let seq = self.event_seq.lock().map_or(0, |mut last| {
            let n = last.entry((tenant.clone(), kind)).or_insert(0);
            *n += 1;
            *n
        });
        let _ = self.events.send(ChangeEvent {
            seq,
            at_micros,
            tenant: tenant.clone(),
            kind,
            name,
            action,
        });
    }

    /// Tells every subscriber that changes may have gone unannounced (they see a lag).
    pub(super) fn gap(&self) {
        self.gaps.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A subscriber's stream of change events ([`Writer::subscribe`]). A slow subscriber lags
/// and misses events rather than slowing the writer; it also sees a lag when events may
/// have been lost before reaching this daemon (a fleet's listener reconnected).
#[derive(Debug)]
pub struct Subscription {
    /// The events.
    rx: broadcast::Receiver<ChangeEvent>,
    /// Moves on a gap ([`Shared::gap`]).
    gaps: watch::Receiver<u64>,
}

impl Subscription {
    /// The next event; [`RecvError::Lagged`] when some were missed (`Lagged(0)`: an
    /// unknown number, lost before they reached this daemon), [`RecvError::Closed`] once
    /// the writer is gone. Cancel-safe.
    pub async fn recv(&mut self) -> Result<ChangeEvent, RecvError> {
        tokio::select! {
            biased;
            changed = self.gaps.changed() => match changed {
                Ok(()) => Err(RecvError::Lagged(0)),
                Err(_) => Err(RecvError::Closed),
            },
            ev = self.rx.recv() => ev,
        }
    }

    /// The next event if one is waiting, without waiting (as [`Subscription::recv`]).
    pub fn try_recv(&mut self) -> Result<ChangeEvent, TryRecvError> {
        if self.gaps.has_changed().unwrap_or(false) {
            self.gaps.mark_unchanged();
            return Err(TryRecvError::Lagged(0));
        }
        self.rx.try_recv()
    }
}

/// Whether a request has handed a write to the writer. Set (never cleared) when the
/// first job of the request is queued: from then on the request's answer is the commit's
/// outcome, never a timeout (the request timeout in `server/conn.rs` bounds only reading
/// the request and waiting for a queue slot). One per request.
#[derive(Debug, Default)]
pub struct Handoff(AtomicBool);

impl Handoff {
    /// Whether a write of this request is queued or done.
    pub fn handed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Marks the request as handed to the store without a write: a long store operation
    /// that has begun (a backup, a compaction) answers with its outcome however long it
    /// takes, not with the request timeout, which would drop the answer of a copy that goes
    /// on (and make a retrying script start a second one).
    pub fn mark(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A write job: run once on the writer thread against its tenant's view, answering its
/// caller with `Result<T, E>` (see [`Writer::write`]). Implemented by every such closure.
pub trait WriteJob<T, E>: FnOnce(&mut dyn TenantWrite) -> Result<T, E> + Send + 'static {}

impl<T, E, F> WriteJob<T, E> for F where
    F: FnOnce(&mut dyn TenantWrite) -> Result<T, E> + Send + 'static
{
}

/// A job's error type: the caller's own (e.g. the API error) or [`WriteError`], into which
/// the writer's own failures convert.
pub trait JobError: From<WriteError> + Send + 'static {}

impl<E: From<WriteError> + Send + 'static> JobError for E {}

/// Cloneable handle to the writer thread.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

fn stopped<E: From<WriteError>>() -> E {
    E::from(WriteError::Store(StoreError::WriterStopped))
}

impl Writer {
    /// Starts the writer thread, which runs `run` (the backend's loop over the queue:
    /// `group.rs` for redb); returns its handle and join handle.
    pub(super) fn start<R>(
        schedule: Weak<dyn Schedule>,
        reserve: Option<Reserve>,
        queue: usize,
        event_capacity: usize,
        run: R,
    ) -> Result<(Writer, std::thread::JoinHandle<()>), StoreError>
    where
        R: FnOnce(mpsc::Receiver<Msg>, mpsc::WeakSender<Msg>, Arc<Shared>) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (events, _) = broadcast::channel(event_capacity.max(1));
        let (gaps, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            schedule,
            commits: AtomicU64::new(0),
            jobs_committed: AtomicU64::new(0),
            jobs_failed: AtomicU64::new(0),
            event_seq: std::sync::Mutex::default(),
            stopping: AtomicBool::new(false),
            events,
            gaps,
            reserve,
        });
        let thread_shared = shared.clone();
        let wake = tx.downgrade();
        let handle = std::thread::Builder::new()
            .name("steward-writer".into())
            .spawn(move || run(rx, wake, thread_shared))?;
        Ok((Writer { tx, shared }, handle))
    }

    /// Runs `f` against a view of the writer's transaction bound to `tenant` and returns its
    /// result once the group it ran in has committed durably. See [`TenantWrite`] for what a
    /// job may do; `E` is the caller's error type (e.g. the API error) or [`WriteError`].
    /// While the disk is full and the space reserve has gone to refusals, fails with
    /// [`StoreError::StorageFull`] without running (see `reserve.rs`).
    pub async fn write<T: Send + 'static, E: JobError, F: WriteJob<T, E>>(
        &self,
        tenant: &TenantId,
        f: F,
    ) -> Result<T, E> {
        self.write_handing(tenant, f, None).await
    }

    /// [`Writer::write`], marking `handoff` at the moment the job is queued (no await
    /// between the two), so a caller that stops waiting before then knows nothing was
    /// handed over, and one that stops after knows the job will run.
    pub async fn write_handing<T: Send + 'static, E: JobError, F: WriteJob<T, E>>(
        &self,
        tenant: &TenantId,
        f: F,
        handoff: Option<&Handoff>,
    ) -> Result<T, E> {
        self.admit::<E>()?;
        self.submit(tenant, f, handoff).await
    }

    /// Commits the audit record of a refusal (a denied attempt). On a full disk it may use
    /// the space reserve: if the record fails with [`StoreError::StorageFull`], the reserve
    /// is released and the record tried once more.
    pub async fn write_refusal(
        &self,
        tenant: &TenantId,
        entry: AuditEntry,
    ) -> Result<(), WriteError> {
        let job = |e: AuditEntry| {
            move |txn: &mut dyn TenantWrite| {
                txn.audit(e);
                Ok::<(), WriteError>(())
            }
        };
        match self.submit(tenant, job(entry.clone()), None).await {
            Err(WriteError::Store(StoreError::StorageFull))
                if self.shared.reserve.as_ref().is_some_and(Reserve::release) =>
            {
                self.submit(tenant, job(entry), None).await
            }
            other => other,
        }
    }

    /// Whether an ordinary write may run now (see `reserve.rs`).
    fn admit<E: From<WriteError>>(&self) -> Result<(), E> {
        match &self.shared.reserve {
            Some(r) => r.admit().map_err(|e| E::from(WriteError::Store(e))),
            None => Ok(()),
        }
    }

    /// Queues `f` (marking `handoff` as it is queued) and waits for its group's commit.
    async fn submit<T: Send + 'static, E: JobError, F: WriteJob<T, E>>(
        &self,
        tenant: &TenantId,
        f: F,
        handoff: Option<&Handoff>,
    ) -> Result<T, E> {
        let (job, rx) = make_job(tenant, f);
        let slot = self.tx.reserve().await.map_err(|_| stopped::<E>())?;
        if let Some(h) = handoff {
            h.0.store(true, Ordering::SeqCst);
        }
        slot.send(Msg::Job(job));
        rx.await.map_err(|_| stopped::<E>())?
    }

    /// [`Writer::write`] for synchronous callers (startup work, tests). Must not be called
    /// from inside an async task (it blocks the thread).
    pub fn write_blocking<T: Send + 'static, E: JobError, F: WriteJob<T, E>>(
        &self,
        tenant: &TenantId,
        f: F,
    ) -> Result<T, E> {
        self.admit::<E>()?;
        let (job, rx) = make_job(tenant, f);
        self.tx
            .blocking_send(Msg::Job(job))
            .map_err(|_| stopped::<E>())?;
        rx.blocking_recv().map_err(|_| stopped::<E>())?
    }

    /// Subscribes to change events (sent after each commit; on a fleet also those of the
    /// other daemons). A slow receiver lags and misses events rather than slowing the
    /// writer.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.shared.events.subscribe(),
            gaps: self.shared.gaps.subscribe(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.shared.commits.load(Ordering::SeqCst),
            jobs_committed: self.shared.jobs_committed.load(Ordering::SeqCst),
            jobs_failed: self.shared.jobs_failed.load(Ordering::SeqCst),
        }
    }

    /// Jobs waiting in the queue (not yet taken by the thread).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// [`super::Store::due`] for async callers: up to `limit` schedule entries of `action`
    /// due at or before `now_secs`, oldest first, read off the async threads. The timers
    /// decide what to do with them.
    pub async fn due(
        &self,
        action: ScheduleAction,
        now_secs: i64,
        limit: usize,
    ) -> Result<Vec<Due>, WriteError> {
        let schedule = self
            .shared
            .schedule
            .upgrade()
            .ok_or(WriteError::Store(StoreError::WriterStopped))?;
        let due = tokio::task::spawn_blocking(move || schedule.due(action, now_secs, limit))
            .await
            .map_err(|_| WriteError::Panicked)??;
        Ok(due)
    }

    /// Rewrites the store into a fresh file and swaps it in (`copy.rs`), as a job of its
    /// own: the copy runs beside the writer, and writes wait only while what committed
    /// during the copy is caught up and the new file swapped in (`online.rs`).
    /// `jobs` run in the new file's write transaction, after the copy, and commit with it
    /// (a job that fails fails the whole rewrite, which then changes nothing). The
    /// [`Retirement`] zeroes the old file once its last reader is done.
    pub async fn rewrite<F>(
        &self,
        jobs: Vec<(TenantId, F)>,
    ) -> Result<(RewriteReport, Retirement), WriteError>
    where
        F: FnOnce(&mut dyn TenantWrite) -> Result<(), WriteError> + Send + 'static,
    {
        let mut queued = Vec::with_capacity(jobs.len());
        let mut answers = Vec::with_capacity(jobs.len());
        for (tenant, f) in jobs {
            let (job, rx) = make_job(&tenant, f);
            queued.push(job);
            answers.push(rx);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Rewrite(Rewrite {
                jobs: queued,
                reply,
            }))
            .await
            .map_err(|_| stopped::<WriteError>())?;
        let outcome = rx.await.map_err(|_| stopped::<WriteError>())?;
        if outcome.is_err() {
            // A job's own error says more than "the rewrite failed".
            for a in answers {
                if let Ok(Err(e)) = a.await {
                    return Err(e);
                }
            }
        }
        outcome
    }

    /// Compaction: rewrites the store into a fresh file (the rewrite of `copy.rs`, the one
    /// copier), so the space of purged records goes back to the file system; one
    /// `store.compact` audit record per tenant of `tenants` commits with the new file.
    /// Writes wait only for the catch-up at the end (`online.rs`). The old file is zeroed in the
    /// background once its last reader is done.
    pub async fn compact(&self, tenants: Vec<TenantId>) -> Result<RewriteReport, WriteError> {
        let jobs = tenants
            .into_iter()
            .map(|t| {
                (t, |txn: &mut dyn TenantWrite| {
                    txn.audit(
                        AuditEntry::new(
                            system_caller(),
                            Operation::StoreCompact,
                            AuditStatus::Succeeded,
                        )
                        .resource("store"),
                    );
                    Ok(())
                })
            })
            .collect();
        let (report, _zeroing) = self.rewrite(jobs).await?;
        Ok(report)
    }

    /// The store file's size and the bytes its allocated pages take (the rest is free
    /// pages, reused by later writes but never given back without a compaction).
    pub async fn space(&self) -> Result<Space, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Space(reply))
            .await
            .map_err(|_| stopped::<WriteError>())?;
        rx.await
            .map_err(|_| stopped::<WriteError>())?
            .map_err(WriteError::Store)
    }

    /// Asks the thread to stop after its current group; later writes fail with
    /// [`StoreError::WriterStopped`].
    pub(crate) fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the thread if it is idle; a full queue means it is busy and will see the flag.
        let _ = self.tx.try_send(Msg::Wake);
    }
}

/// What the queue carries.
pub(super) enum Msg {
    /// A write job.
    Job(Job),
    /// Sent by [`Writer::stop`] to wake an idle thread.
    Wake,
    /// A rewrite of the file ([`Writer::rewrite`]), run alone between groups.
    Rewrite(Rewrite),
    /// [`Writer::space`], answered between groups.
    Space(oneshot::Sender<Result<Space, StoreError>>),
}

/// A queued [`Writer::rewrite`].
pub(super) struct Rewrite {
    /// Changes that commit with the new file.
    pub(super) jobs: Vec<Job>,
    /// Answered once the new file is in place (or nothing changed).
    pub(super) reply: oneshot::Sender<Result<(RewriteReport, Retirement), WriteError>>,
}

fn make_job<T: Send + 'static, E: JobError, F: WriteJob<T, E>>(
    tenant: &TenantId,
    f: F,
) -> (Job, oneshot::Receiver<Result<T, E>>) {
    let (tx, rx) = oneshot::channel();
    let job = Job {
        tenant: tenant.clone(),
        f: Box::new(TypedJob {
            f: Some(f),
            result: None,
            tx,
        }),
    };
    (job, rx)
}
