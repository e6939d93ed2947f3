//! The PostgreSQL backend's writer thread: the same queue and guarantees as redb's
//! (`writer.rs`, `group.rs`), over one connection of its own.
//!
//! A group of queued jobs runs in ONE transaction. It begins by locking the chain head
//! row of every tenant the group touches (`SELECT … FOR UPDATE`, in tenant order, so two
//! daemons locking the same tenants cannot deadlock): from then until the commit no other
//! daemon of a fleet can write those tenants, so a job's reads, its If-Match check and its
//! chain append see a tenant that nothing else changes. Each job runs against a
//! [`TenantTxn`] over that transaction (the staging rules are `txn.rs`'s, shared with
//! redb); a job that succeeds has its changes and audit records written, one that fails
//! only its failure entries; the group commits once, with `synchronous_commit = on`
//! (durable before any job hears back); a statement that fails rolls the whole group back
//! and every job gets the error. Change events go out after the commit, as with redb;
//! for the other daemons of a fleet they are also NOTIFYed inside the transaction
//! (`listen.rs`), so they are announced only if it commits.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use postgres::{Client, Config, Transaction};
use steward::model::SubjectKey;
use steward::names::TenantId;
use tokio::sync::mpsc;

use super::sql::{self, Head, kind_id, seq_id};
use super::{listen, pool};
use crate::store::audit::{AuditEntry, GENESIS_HASH, HmacKey, seal};
use crate::store::codec;
use crate::store::doc::{Doc, Kind};
use crate::store::error::StoreError;
use crate::store::group::{Ran, Settled, committed, fail_all, run_job};
use crate::store::read::{Page, SubjectHit, TimeCursor};
use crate::store::txn::{Staged, TxnView};
use crate::store::writer::{Job, Msg, Shared};
use crate::store::{ChainPoint, RewriteReport, TimeQuery};

/// The writer thread's loop: takes what is queued (up to `max_group` jobs), runs the
/// group, answers; reconnects a broken connection between groups.
pub(in crate::store) fn writer_loop(
    mut client: Client,
    config: Config,
    (key, origin): (HmacKey, String),
    mut rx: mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
    max_group: usize,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = Vec::new();
        let mut rewrites = Vec::new();
        let mut take = |m: Msg, group: &mut Vec<Job>| match m {
            Msg::Job(j) => group.push(j),
            Msg::Rewrite(r) => rewrites.push(r),
            Msg::Space(reply) => {
                let _ = reply.send(Err(StoreError::Refused(
                    "the store's file size is a redb matter; PostgreSQL reports its own \
                     (pg_database_size)"
                        .into(),
                )));
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
        if client.is_closed() {
            match pool::connect(&config) {
                Ok(c) => client = c,
                Err(e) => tracing::warn!(error = %e, "cannot reconnect to PostgreSQL"),
            }
        }
        if !group.is_empty() {
            run_group(&mut client, (&key, &origin), &shared, group);
        }
        // A rewrite (compaction, an erasure's scrub) is the redb file's: here its jobs
        // commit as a group of their own, and PostgreSQL's VACUUM reclaims the space.
        for r in rewrites {
            let (jobs, reply) = (r.jobs, r.reply);
            let failed = shared.jobs_failed.load(Ordering::SeqCst);
            run_group(&mut client, (&key, &origin), &shared, jobs);
            let outcome = if shared.jobs_failed.load(Ordering::SeqCst) == failed {
                Ok((RewriteReport::default(), crate::store::Retirement::none()))
            } else {
                Err(crate::store::WriteError::Store(StoreError::Refused(
                    "a job of the rewrite failed; nothing of it was applied".into(),
                )))
            };
            let _ = reply.send(outcome);
        }
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
    }
}

/// Runs and commits one group (see the module doc).
fn run_group(
    client: &mut Client,
    (key, origin): (&HmacKey, &str),
    shared: &Shared,
    group: Vec<Job>,
) {
    let now = jiff::Timestamp::now().as_microsecond();
    let mut tx = match client.transaction() {
        Ok(tx) => tx,
        Err(e) => return fail_all(shared, &mut group.into_iter().map(|j| j.f), &e.into()),
    };
    let tenants: BTreeSet<&str> = group.iter().map(|j| j.tenant.as_str()).collect();
    let mut heads = match lock_heads(&mut tx, &tenants) {
        Ok(h) => h,
        Err(e) => return fail_all(shared, &mut group.into_iter().map(|j| j.f), &e),
    };
    let mut ran: Vec<Ran> = Vec::with_capacity(group.len());
    let mut rest = group.into_iter();
    while let Some(Job { tenant, mut f }) = rest.next() {
        let Settled {
            closure_ok,
            refusal,
            apply,
            events,
        } = run_job(&tenant, &PgView(RefCell::new(&mut tx)), key, now, &mut *f);
        let applied = match apply {
            None => Ok(()),
            Some((staged, entries)) => {
                let head = heads.get_mut(tenant.as_str());
                match head {
                    Some(head) => apply_job(&mut tx, &tenant, key, now, &staged, &entries, head),
                    None => Err(StoreError::Corrupted(format!(
                        "the chain head of tenant {tenant} was not locked"
                    ))),
                }
            }
        };
        if let Err(e) = applied {
            drop(tx);
            let mut all = ran
                .into_iter()
                .map(|r| r.job)
                .chain(std::iter::once(f))
                .chain(rest.map(|j| j.f));
            return fail_all(shared, &mut all, &e);
        }
        ran.push(Ran {
            job: f,
            closure_ok,
            refusal,
            tenant,
            events,
        });
    }
    let announced = listen::payloads(origin, &ran, now);
    let done = store_heads(&mut tx, &heads)
        .and_then(|()| listen::notify(&mut tx, &announced))
        .and_then(|()| Ok(tx.commit()?));
    match done {
        Ok(()) => committed(shared, ran, now),
        Err(e) => fail_all(shared, &mut ran.into_iter().map(|r| r.job), &e),
    }
}

/// Locks (creating where missing) the chain head row of each tenant, in order.
fn lock_heads(
    tx: &mut Transaction<'_>,
    tenants: &BTreeSet<&str>,
) -> Result<HashMap<String, Head>, StoreError> {
    let names: Vec<&str> = tenants.iter().copied().collect();
    tx.execute(
        "INSERT INTO audit_head (tenant, head_seq, head_hash)
         SELECT t, 0, $2 FROM unnest($1::text[]) AS t ORDER BY t
         ON CONFLICT (tenant) DO NOTHING",
        &[&names, &GENESIS_HASH],
    )?;
    let rows = tx.query(
        "SELECT tenant, head_seq, head_hash, anchor_seq, anchor_hash FROM audit_head
         WHERE tenant = ANY($1) ORDER BY tenant FOR UPDATE",
        &[&names],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, sql::head_of(r, 1)?)))
        .collect()
}

/// Writes back every locked head (unchanged ones too: one statement per tenant).
fn store_heads(tx: &mut Transaction<'_>, heads: &HashMap<String, Head>) -> Result<(), StoreError> {
    for (tenant, h) in heads {
        let (anchor_seq, anchor_hash) = match &h.anchor {
            Some((s, hash)) => (Some(seq_id(*s)), Some(hash.as_str())),
            None => (None, None),
        };
        tx.execute(
            "UPDATE audit_head SET head_seq = $2, head_hash = $3, anchor_seq = $4,
             anchor_hash = $5 WHERE tenant = $1",
            &[
                &tenant.as_str(),
                &seq_id(h.seq),
                &h.hash,
                &anchor_seq,
                &anchor_hash,
            ],
        )?;
    }
    Ok(())
}

/// Writes one successful job's staged changes, then appends its audit entries to the
/// tenant's chain (`head`, locked by the group).
fn apply_job(
    tx: &mut Transaction<'_>,
    tenant: &TenantId,
    key: &HmacKey,
    now_micros: i64,
    staged: &[Staged],
    entries: &[AuditEntry],
    head: &mut Head,
) -> Result<(), StoreError> {
    let t = tenant.as_str();
    for op in staged {
        match op {
            Staged::Put {
                kind,
                name,
                doc,
                new,
                facets,
            } => {
                let k = kind_id(*kind);
                if !new {
                    unindex(tx, t, k, name)?;
                }
                let bytes = codec::encode(doc)
                    .map_err(|e| StoreError::codec(format!("{kind} {name:?}"), e))?;
                tx.execute(
                    "INSERT INTO records (tenant, kind, name, doc, time_micros, severity, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (tenant, kind, name) DO UPDATE SET doc = EXCLUDED.doc,
                       time_micros = EXCLUDED.time_micros, severity = EXCLUDED.severity,
                       status = EXCLUDED.status",
                    &[&t, &k, name, &bytes, &doc.time, &facets.0, &facets.1],
                )?;
                for s in &doc.subjects {
                    tx.execute(
                        "INSERT INTO record_subjects (tenant, subject, kind, name, field)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[&t, &s.index_key(), &k, name, &s.field],
                    )?;
                }
                for s in &doc.schedule {
                    tx.execute(
                        "INSERT INTO schedule (tenant, kind, name, action, at_secs)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[&t, &k, name, &i16::from(s.action.as_u8()), &s.at_secs],
                    )?;
                }
            }
            Staged::Delete { kind, name } => {
                let k = kind_id(*kind);
                unindex(tx, t, k, name)?;
                tx.execute(
                    "DELETE FROM records WHERE tenant = $1 AND kind = $2 AND name = $3",
                    &[&t, &k, name],
                )?;
            }
            Staged::PurgeAudit { first_seq, through } => {
                let (from, to) = (seq_id(*first_seq), seq_id(through.seq));
                tx.execute(
                    "DELETE FROM audit_subjects WHERE tenant = $1 AND seq BETWEEN $2 AND $3",
                    &[&t, &from, &to],
                )?;
                tx.execute(
                    "DELETE FROM audit WHERE tenant = $1 AND seq BETWEEN $2 AND $3",
                    &[&t, &from, &to],
                )?;
                head.anchor = Some((through.seq, through.hash.clone()));
            }
        }
    }
    let at = jiff::Timestamp::from_microsecond(now_micros).map_err(|e| {
        StoreError::Io(std::io::Error::other(format!(
            "the clock is out of range: {e}"
        )))
    })?;
    for entry in entries {
        let seq = head.seq + 1;
        let (rec, bytes) = seal(t, key, at, entry, seq, head.hash.clone())?;
        tx.execute(
            "INSERT INTO audit (tenant, seq, at_micros, record) VALUES ($1, $2, $3, $4)",
            &[&t, &seq_id(seq), &now_micros, &bytes],
        )?;
        for mac in &rec.subjects {
            tx.execute(
                "INSERT INTO audit_subjects (tenant, hmac, seq) VALUES ($1, $2, $3)",
                &[&t, mac, &seq_id(seq)],
            )?;
        }
        head.seq = seq;
        head.hash = rec.hash;
    }
    Ok(())
}

/// Removes a record's subject and schedule entries (its row is replaced or deleted).
fn unindex(
    tx: &mut Transaction<'_>,
    tenant: &str,
    kind: i16,
    name: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM record_subjects WHERE tenant = $1 AND kind = $2 AND name = $3",
        &[&tenant, &kind, &name],
    )?;
    tx.execute(
        "DELETE FROM schedule WHERE tenant = $1 AND kind = $2 AND name = $3",
        &[&tenant, &kind, &name],
    )?;
    Ok(())
}

/// The group's transaction as a job reads it (interior mutability: the client needs
/// `&mut` for every statement, the view is shared by reference).
struct PgView<'t, 'c>(RefCell<&'t mut Transaction<'c>>);

impl PgView<'_, '_> {
    /// Runs `f` on the transaction.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = self.0.try_borrow_mut().map_err(|_| {
            StoreError::Refused("a job read its transaction from inside another read".into())
        })?;
        f(&mut tx)
    }
}

impl TxnView for PgView<'_, '_> {
    fn get(&self, tenant: &str, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError> {
        self.with(|tx| sql::get(tx, tenant, kind, name))
    }

    fn exists(&self, tenant: &str, kind: Kind, name: &str) -> Result<bool, StoreError> {
        self.with(|tx| sql::exists(tx, tenant, kind, name))
    }

    fn list(
        &self,
        tenant: &str,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        self.with(|tx| sql::list(tx, tenant, kind, after, limit))
    }

    fn list_by_time(
        &self,
        tenant: &str,
        kind: Kind,
        q: &mut TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, StoreError> {
        let scan = sql::TimeScan::of(q);
        let fetch = |scan: &sql::TimeScan, n: usize| {
            self.with(|tx| sql::time_rows(tx, tenant, kind, scan, n))
        };
        sql::page_by_time(
            tenant,
            kind,
            scan,
            q.limit,
            fetch,
            &mut *q.facets,
            &mut *q.filter,
        )
    }

    fn subjects(&self, tenant: &str, key: &SubjectKey) -> Result<Vec<SubjectHit>, StoreError> {
        self.with(|tx| sql::subjects(tx, tenant, key))
    }

    fn audit_before(
        &self,
        tenant: &str,
        start_seq: u64,
        before_micros: i64,
        limit: usize,
    ) -> Result<Vec<ChainPoint>, StoreError> {
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|tx| {
            let rows = tx.query(
                "SELECT seq, at_micros, record FROM audit WHERE tenant = $1 AND seq >= $2
                 ORDER BY seq LIMIT $3",
                &[&tenant, &seq_id(start_seq), &n],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                // As redb's walk: the oldest records, up to the first committed since.
                if r.try_get::<_, i64>(1)? >= before_micros {
                    break;
                }
                let seq = u64::try_from(r.try_get::<_, i64>(0)?)
                    .map_err(|_| StoreError::Corrupted("a negative audit sequence".into()))?;
                let bytes: Vec<u8> = r.try_get(2)?;
                let rec = crate::store::read::decode_audit(tenant, seq, &bytes)?;
                out.push(ChainPoint {
                    seq,
                    hash: rec.hash,
                });
            }
            Ok(out)
        })
    }
}
