//! The online rewrite (compaction and the data-subject scrub): the copy runs beside the
//! writer, and writes wait only for the catch-up, not for the copy.
//!
//! 1. Between two groups, the writer thread starts a copier thread and waits until it has
//!    opened its read transaction: that snapshot is the store as of the last commit.
//! 2. The copier copies every table of the snapshot into `steward.redb.copy` (`copy.rs`,
//!    the one copier) and commits it, while the writer goes on committing groups. Each
//!    group that commits also journals what it applied: per job its tenant, the group's
//!    clock, its staged changes and its audit entries — exactly the arguments of
//!    `txn::apply`, which is the only code that changes the tables.
//! 3. When the copy is done, the writer (between groups: writes wait from here) opens the
//!    copy, replays the journal through `txn::apply` in commit order, runs the rewrite's
//!    own jobs (the scrub's records), commits durably, and swaps the file in
//!    (`swap::swap_in`). `apply` is deterministic given its arguments and the state it
//!    starts from (the group's clock is in the journal, hashes are computed from what it
//!    reads), and the copy starts from the snapshot every journaled group followed, so the
//!    replayed copy holds exactly what the live file holds.
//!
//! The journal is bounded ([`JOURNAL_BYTES`] by default): past it, the writer stops taking
//! groups and waits for the copy (the pause the rewrite had before), and the copy, which
//! otherwise runs at idle priority (`pace.rs`), runs at normal priority until it is done. SIGKILL at any point leaves the
//! live file untouched; the next open removes the copy. When the store closes during a
//! copy, the copy is cancelled and removed.
//!
//! Not here: the copier and the swap (`copy.rs`), the writer's loop (`writer.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use steward::names::TenantId;

use redb::{Durability, ReadableDatabase};
use tokio::sync::mpsc::WeakSender;

use super::audit::{AuditEntry, HmacKey};
use super::copy::{self, CopyCounts};
use super::error::{StoreError, WriteError};
use super::pace::Control;
use super::slot::DbSlot;
use super::swap;
use super::txn::{self, Staged, TenantTxn};
use super::writer::{Job, Msg, Rewrite};

/// Most bytes (estimated) the journal holds before the writer waits for the copy, unless
/// [`super::StoreOptions::rewrite_journal_bytes`] says otherwise.
pub(crate) const JOURNAL_BYTES: usize = 64 << 20;

/// One job's applied changes, as `txn::apply` took them.
#[derive(Debug)]
pub(crate) struct Replay {
    /// The job's tenant.
    pub tenant: TenantId,
    /// The group's clock.
    pub now: i64,
    /// Its staged changes (none for a failed job's own audit records).
    pub staged: Vec<Staged>,
    /// Its audit entries.
    pub entries: Vec<AuditEntry>,
}

impl Replay {
    /// Roughly what it holds in memory.
    fn bytes(&self) -> usize {
        let staged: usize = self
            .staged
            .iter()
            .map(|s| match s {
                Staged::Put { name, doc, .. } => 128 + name.len() + doc.body_json.len(),
                Staged::Delete { name, .. } => 64 + name.len(),
                Staged::PurgeAudit { .. } => 128,
            })
            .sum();
        64 + self.tenant.len() + staged + 256 * self.entries.len()
    }
}

/// A finished copy: what it carried and its database, still open.
pub(crate) type Copied = (CopyCounts, redb::Database);

/// A rewrite whose copy is running.
pub(crate) struct Pending {
    /// The request: its jobs and whom to answer.
    rewrite: Rewrite,
    /// What committed since the snapshot, in commit order.
    journal: Vec<Replay>,
    /// [`Replay::bytes`] over the journal.
    journal_bytes: usize,
    /// The most `journal_bytes` before writes wait for the copy.
    journal_cap: usize,
    /// The copier's outcome.
    done: std_mpsc::Receiver<Result<Copied, WriteError>>,
    /// Cancels the copier, or makes it urgent (writes wait for it).
    control: Arc<Control>,
    /// The copier thread.
    thread: Option<std::thread::JoinHandle<()>>,
    /// The copy's file.
    dest: PathBuf,
    /// Size of the live file when the copy started.
    old_bytes: u64,
    /// How long writes waited for a full journal.
    waited: Duration,
}

impl Pending {
    /// Whether the journal is full (the writer must wait for the copy).
    pub(crate) fn full(&self) -> bool {
        self.journal_bytes >= self.journal_cap
    }

    /// Adds a committed group's replays.
    pub(crate) fn journal(&mut self, replays: Vec<Replay>) {
        for r in replays {
            self.journal_bytes += r.bytes();
            self.journal.push(r);
        }
    }

    /// The copier's outcome if it is done; with `wait`, waits for it (and from then on the
    /// copy runs at normal priority: writes are waiting for it).
    pub(crate) fn poll(&mut self, wait: bool) -> Option<Result<Copied, WriteError>> {
        if wait {
            self.control.urgent.store(true, Ordering::SeqCst);
            let started = Instant::now();
            let r = self.done.recv().ok();
            self.waited += started.elapsed();
            Some(r.unwrap_or(Err(WriteError::Panicked)))
        } else {
            match self.done.try_recv() {
                Ok(r) => Some(r),
                Err(std_mpsc::TryRecvError::Empty) => None,
                Err(std_mpsc::TryRecvError::Disconnected) => Some(Err(WriteError::Panicked)),
            }
        }
    }

    /// Cancels the copy (the store is closing): stops the copier, removes its file, and
    /// answers the rewrite's callers that the store stopped.
    pub(crate) fn cancel(mut self) {
        self.control.cancel.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.dest);
        for job in self.rewrite.jobs {
            job.f
                .answer(Err(WriteError::Store(StoreError::WriterStopped)));
        }
        let _ = self
            .rewrite
            .reply
            .send(Err(WriteError::Store(StoreError::WriterStopped)));
    }
}

/// Starts the copy of a rewrite (step 1 of the module doc); on failure answers it and
/// returns `None`. `wake` wakes the writer when the copy is done; `journal_cap` bounds the
/// journal (bytes).
pub(crate) fn start(
    slot: &DbSlot,
    r: Rewrite,
    wake: WeakSender<Msg>,
    journal_cap: usize,
) -> Option<Pending> {
    let started = (|| {
        let old = slot.get()?;
        let old_bytes = std::fs::metadata(slot.path()).map(|m| m.len()).unwrap_or(0);
        let (dest, file) = swap::create_copy(slot)?;
        Ok::<_, StoreError>((old, old_bytes, dest, file))
    })();
    let (old, old_bytes, dest, file) = match started {
        Ok(s) => s,
        Err(e) => {
            refuse(r, WriteError::Store(e));
            return None;
        }
    };
    let control = Arc::new(Control::default());
    let (snap_tx, snap_rx) = std_mpsc::channel::<()>();
    let (done_tx, done) = std_mpsc::channel();
    let thread_control = control.clone();
    let spawned = std::thread::Builder::new()
        .name("steward-copy".into())
        .spawn(move || {
            let result = (|| {
                let rtx = old.begin_read()?;
                let _ = snap_tx.send(());
                copy::copy_open(&rtx, file, &thread_control, |_| Ok(()))
            })();
            drop(snap_tx);
            let _ = done_tx.send(result);
            if let Some(w) = wake.upgrade() {
                let _ = w.try_send(Msg::Wake);
            }
        });
    let thread = match spawned {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&dest);
            refuse(r, WriteError::Store(e.into()));
            return None;
        }
    };
    // The snapshot is taken before any later group commits (or the copier failed, and
    // says so through `done`).
    let _ = snap_rx.recv();
    Some(Pending {
        rewrite: r,
        journal: Vec::new(),
        journal_bytes: 0,
        journal_cap,
        done,
        control,
        thread: Some(thread),
        dest,
        old_bytes,
        waited: Duration::ZERO,
    })
}

/// Finishes a rewrite whose copy is done (step 3 of the module doc) and answers it.
pub(crate) fn finish(
    slot: &DbSlot,
    key: &HmacKey,
    mut p: Pending,
    copied: Result<Copied, WriteError>,
) {
    let paused = Instant::now()
        .checked_sub(p.waited)
        .unwrap_or_else(Instant::now);
    if let Some(t) = p.thread.take() {
        let _ = t.join();
    }
    let mut jobs = std::mem::take(&mut p.rewrite.jobs);
    let mut failed = None;
    let outcome = copied.and_then(|(counts, db)| {
        catch_up(&p, &db, key, &mut jobs, &mut failed)?;
        swap::swap_in(slot, &p.dest, db, p.old_bytes, counts, paused).map(|(mut r, old)| {
            r.journal_wait = p.waited;
            (r, old)
        })
    });
    if outcome.is_err() {
        let _ = std::fs::remove_file(&p.dest);
    }
    let result = match &outcome {
        Ok(_) => Ok(()),
        Err(e) => Err(match e {
            WriteError::Store(s) => slot.classify(s.duplicate()),
            other => StoreError::Io(std::io::Error::other(other.to_string())),
        }),
    };
    for (i, job) in jobs.into_iter().enumerate() {
        // The failed job answers with its own error; the others with the rewrite's.
        let answer = match (&result, failed == Some(i)) {
            (_, true) | (Ok(()), false) => Ok(()),
            (Err(e), false) => Err(WriteError::Store(e.duplicate())),
        };
        job.f.answer(answer);
    }
    let _ = p.rewrite.reply.send(outcome);
}

/// Replays the journal into the finished copy, then runs the rewrite's jobs there, and
/// commits durably.
fn catch_up(
    p: &Pending,
    db: &redb::Database,
    key: &HmacKey,
    jobs: &mut [Job],
    failed: &mut Option<usize>,
) -> Result<(), WriteError> {
    let mut wtx = db.begin_write()?;
    wtx.set_durability(Durability::Immediate)?;
    for r in &p.journal {
        txn::apply(&wtx, r.tenant.as_str(), key, r.now, &r.staged, &r.entries)?;
    }
    run_jobs(&wtx, key, jobs, failed)?;
    wtx.commit()?;
    Ok(())
}

/// Runs a rewrite's jobs in the new file's transaction; the first that fails fails all.
fn run_jobs(
    wtx: &redb::WriteTransaction,
    key: &HmacKey,
    jobs: &mut [Job],
    failed: &mut Option<usize>,
) -> Result<(), WriteError> {
    let now = jiff::Timestamp::now().as_microsecond();
    for (i, job) in jobs.iter_mut().enumerate() {
        let (ok, parts) = {
            let mut view = TenantTxn::new(&job.tenant, wtx, key, now);
            let ok = catch_unwind(AssertUnwindSafe(|| job.f.run(&mut view))).unwrap_or(false);
            (ok, view.into_parts())
        };
        if !ok {
            *failed = Some(i);
            return Err(WriteError::Invalid(
                "a change to commit with the rewritten store failed".into(),
            ));
        }
        if !parts.staged.is_empty() && parts.audit.is_empty() {
            return Err(WriteError::Unaudited);
        }
        txn::apply(
            wtx,
            job.tenant.as_str(),
            key,
            now,
            &parts.staged,
            &parts.audit,
        )?;
    }
    Ok(())
}

/// Answers a rewrite that did not start: each job with the error, then the caller.
fn refuse(r: Rewrite, err: WriteError) {
    let dup = |e: &WriteError| match e {
        WriteError::Store(s) => WriteError::Store(s.duplicate()),
        other => WriteError::Store(StoreError::Io(std::io::Error::other(other.to_string()))),
    };
    for job in r.jobs {
        job.f.answer(Err(dup(&err)));
    }
    let _ = r.reply.send(Err(err));
}

#[cfg(test)]
mod tests {
    use crate::store::TenantRead;
    use crate::testing::{rn, tid};
    use steward::model::AuditStatus;

    use crate::store::{
        AuditEntry, DocInput, Kind, RewriteReport, Store, StoreOptions, TenantWrite, system_caller,
    };

    use super::super::error::WriteError;

    fn audit(txn: &mut dyn TenantWrite, op: &str) {
        txn.audit(AuditEntry::named(
            system_caller(),
            op,
            AuditStatus::Succeeded,
        ));
    }

    /// 20,000 alerts of about 300 bytes in contoso (`a{j}-{i}`), with sort times and facets
    /// when `indexed`: enough to copy that writes happen meanwhile.
    fn seed(store: &Store, indexed: bool) {
        for j in 0..10 {
            store
                .writer()
                .write_blocking(&tid("contoso"), move |txn: &mut dyn TenantWrite| {
                    for i in 0..2000 {
                        let body = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(300));
                        let mut input = DocInput::new(body);
                        if indexed {
                            input = input
                                .time(1_700_000_000_000_000 + i64::from(i))
                                .facets("low", "active");
                        }
                        txn.put(Kind::Alert, &rn(&format!("a{j}-{i}")), input, None)?;
                    }
                    audit(txn, "test.seed");
                    Ok::<_, WriteError>(())
                })
                .unwrap();
        }
    }

    /// A runtime, and the compaction of both tenants running on it.
    fn start_compaction(
        store: &Store,
    ) -> (
        tokio::runtime::Runtime,
        tokio::task::JoinHandle<Result<RewriteReport, WriteError>>,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let w = store.writer();
        let rewrite =
            rt.spawn(async move { w.compact(vec![tid("contoso"), tid("fabrikam")]).await });
        (rt, rewrite)
    }

    #[test]
    fn writes_during_a_rewrite_commit_while_it_copies_and_are_in_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        // Enough to copy that writes can happen meanwhile.
        seed(&store, true);
        // Superseded versions and deletions, so there is something to give back.
        store
            .writer()
            .write_blocking(&tid("contoso"), |txn: &mut dyn TenantWrite| {
                for i in 0..2000 {
                    txn.delete(Kind::Alert, &format!("a0-{i}"), None)?;
                }
                audit(txn, "test.delete");
                Ok::<_, WriteError>(())
            })
            .unwrap();
        let (rt, rewrite) = start_compaction(&store);
        // Writes (puts, a delete of a record the copy holds, audit records) while it runs.
        let mut n = 0u32;
        let mut during = 0u32;
        while !rewrite.is_finished() {
            store
                .writer()
                .write_blocking(&tid("fabrikam"), move |txn: &mut dyn TenantWrite| {
                    txn.put(
                        Kind::Contact,
                        &rn(&format!("c{n}")),
                        DocInput::new(format!("{{\"n\":{n}}}")),
                        None,
                    )?;
                    audit(txn, "test.during");
                    Ok::<_, WriteError>(())
                })
                .unwrap();
            if n == 0 {
                store
                    .writer()
                    .write_blocking(&tid("contoso"), |txn: &mut dyn TenantWrite| {
                        txn.delete(Kind::Alert, "a1-7", None)?;
                        audit(txn, "test.delete-during");
                        Ok::<_, WriteError>(())
                    })
                    .unwrap();
            }
            if !rewrite.is_finished() {
                during += 1;
            }
            n += 1;
        }
        let report = rt.block_on(rewrite).unwrap().unwrap();
        assert!(
            during > 1,
            "writes waited for the copy: {during} committed while it ran ({report:?})"
        );
        assert!(report.new_bytes <= report.old_bytes, "{report:?}");
        eprintln!("{report:?} with {during} writes during the copy");
        // The live file is the new one, and it holds every write, those during the copy too.
        let fabrikam = store.tenant(&tid("fabrikam"));
        for k in 0..n {
            assert!(
                fabrikam
                    .get(Kind::Contact, &format!("c{k}"))
                    .unwrap()
                    .is_some(),
                "c{k}, written during the copy, is missing"
            );
        }
        let contoso = store.tenant(&tid("contoso"));
        assert!(contoso.get(Kind::Alert, "a1-7").unwrap().is_none());
        assert!(contoso.get(Kind::Alert, "a1-8").unwrap().is_some());
        assert!(contoso.get(Kind::Alert, "a0-8").unwrap().is_none());
        for t in [&fabrikam, &contoso] {
            let v = t.audit_verify().unwrap();
            assert!(v.ok, "{v:?}");
        }
        // The compaction record is the last of each chain.
        let last = fabrikam.audit_verify().unwrap().records;
        assert_eq!(u64::from(n) + 1, last);
        drop((fabrikam, contoso));
        drop(store);
        let checked = Store::verify(dir.path()).unwrap();
        assert_eq!(checked.tenants, 2);
    }

    #[test]
    fn a_full_journal_makes_writes_wait_for_the_copy_then_they_commit_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        // A journal smaller than one of the writes below: the first write journaled during
        // the copy fills it.
        let cap = 16 << 10;
        let options = StoreOptions {
            rewrite_journal_bytes: cap,
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), options).unwrap();
        // Enough to copy that writes commit meanwhile.
        seed(&store, false);
        let (rt, rewrite) = start_compaction(&store);
        // Writes of 8 records of 4 KiB each (over the cap) while the rewrite runs, and a few
        // after it, so that one write certainly waited behind the full journal.
        let pad = "y".repeat(4096);
        let (mut n, mut during, mut after) = (0u32, 0u32, 0u32);
        while after < 3 {
            let body = format!("{{\"pad\":\"{pad}\"}}");
            store
                .writer()
                .write_blocking(&tid("fabrikam"), move |txn: &mut dyn TenantWrite| {
                    for k in 0..8 {
                        let doc = DocInput::new(body.clone());
                        txn.put(Kind::Contact, &rn(&format!("c{n}-{k}")), doc, None)?;
                    }
                    audit(txn, "test.during");
                    Ok::<_, WriteError>(())
                })
                .unwrap();
            if rewrite.is_finished() {
                after += 1;
            } else {
                during += 1;
            }
            n += 1;
        }
        let report = rt.block_on(rewrite).unwrap().unwrap();
        eprintln!("{report:?} with {during} writes during the rewrite, {n} in all");
        assert!(
            report.journal_wait > std::time::Duration::ZERO,
            "the journal (cap {cap} bytes) never filled, so no write waited: the copy was too \
             quick for this test ({during} writes committed during it; {report:?})"
        );
        assert!(report.pause >= report.journal_wait, "{report:?}");
        assert!(during >= 1, "no write committed while the copy ran");
        // Every write is in the live (new) file: those journaled and replayed, the one that
        // waited, and those after.
        let fabrikam = store.tenant(&tid("fabrikam"));
        for i in 0..n {
            for k in 0..8 {
                assert!(
                    fabrikam
                        .get(Kind::Contact, &format!("c{i}-{k}"))
                        .unwrap()
                        .is_some(),
                    "c{i}-{k} is missing after the rewrite"
                );
            }
        }
        let v = fabrikam.audit_verify().unwrap();
        assert!(v.ok, "{v:?}");
        // Each write's audit record, and the compaction's.
        assert_eq!(v.records, u64::from(n) + 1);
        let contoso = store.tenant(&tid("contoso"));
        assert!(contoso.get(Kind::Alert, "a9-1999").unwrap().is_some());
        drop((fabrikam, contoso));
        drop(store);
        let checked = Store::verify(dir.path()).unwrap();
        assert_eq!(checked.tenants, 2);
    }
}
