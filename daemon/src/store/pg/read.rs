//! [`PgReader`]: the PostgreSQL backend's tenant-scoped read handle. Each call is one
//! statement (one consistent snapshot) on a pooled connection, or, for a scan that
//! filters with the caller's closures, batches fetched on the pool and filtered here.
//! The chain check reads the head and every record in one repeatable-read snapshot.

use std::sync::Arc;

use postgres::{IsolationLevel, Transaction};
use steward::model::{AuditRecord, SubjectKey};
use steward::names::TenantId;

use super::pool::Pool;
use super::sql::{self, TimeScan};
use crate::store::TimeQuery;
use crate::store::audit::{ChainPoint, ChainWalk, HmacKey, VerifyReport};
use crate::store::boundary::TenantRead;
use crate::store::doc::{Doc, Kind};
use crate::store::error::StoreError;
use crate::store::read::{DocText, Page, SubjectHit, TimeCursor, decode_audit};
use crate::store::tables::Facets;

/// A tenant-scoped read handle on the PostgreSQL store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgReader {
    /// The read connections.
    pool: Arc<Pool>,
    /// The only tenant this handle can see: `tenant = $1` of every statement it runs.
    tenant: TenantId,
    /// For [`PgReader::hmac`] and subject lookups in the audit log.
    key: HmacKey,
}

impl PgReader {
    pub(crate) fn new(pool: Arc<Pool>, tenant: &TenantId, key: HmacKey) -> PgReader {
        PgReader {
            pool,
            tenant: tenant.clone(),
            key,
        }
    }

    /// A time scan page, fetching batches on the pool and filtering here.
    fn time_page(
        &self,
        kind: Kind,
        scan: TimeScan,
        limit: usize,
        facets: &mut dyn FnMut(Facets<'_>) -> bool,
        filter: &mut dyn FnMut(&Doc) -> bool,
    ) -> Result<Page<Doc, TimeCursor>, StoreError> {
        let fetch = |scan: &TimeScan, n: usize| {
            let (tenant, scan) = (self.tenant.clone(), scan.clone());
            self.pool
                .run(move |c| sql::time_rows(c, tenant.as_str(), kind, &scan, n))
        };
        sql::page_by_time(&self.tenant, kind, scan, limit, fetch, facets, filter)
    }
}

/// A read-only transaction that sees one snapshot for all its statements.
fn snapshot(c: &mut postgres::Client) -> Result<Transaction<'_>, StoreError> {
    Ok(c.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

impl TenantRead for PgReader {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn get(&self, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError> {
        let (tenant, name) = (self.tenant.clone(), name.to_owned());
        self.pool
            .run(move |c| sql::get(c, tenant.as_str(), kind, &name))
    }

    fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        let (tenant, after) = (self.tenant.clone(), after.map(str::to_owned));
        self.pool
            .run(move |c| sql::list(c, tenant.as_str(), kind, after.as_deref(), limit))
    }

    fn list_desc(
        &self,
        kind: Kind,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        let (tenant, before) = (self.tenant.clone(), before.map(str::to_owned));
        self.pool
            .run(move |c| sql::list_desc(c, tenant.as_str(), kind, before.as_deref(), limit))
    }

    fn list_text(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DocText, String>, StoreError> {
        let (tenant, after) = (self.tenant.clone(), after.map(str::to_owned));
        self.pool
            .run(move |c| sql::list_text(c, tenant.as_str(), kind, after.as_deref(), limit))
    }

    fn list_by_time(
        &self,
        kind: Kind,
        mut q: TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, StoreError> {
        let scan = TimeScan::of(&q);
        self.time_page(kind, scan, q.limit, &mut *q.facets, &mut *q.filter)
    }

    fn scan_time_facets(
        &self,
        kind: Kind,
        since: i64,
        visit: &mut dyn FnMut(i64, Facets<'_>),
    ) -> Result<(), StoreError> {
        let tenant = self.tenant.clone();
        let rows = self.pool.run(move |c| {
            let rows = c.query(
                "SELECT time_micros, severity, status FROM records
                 WHERE tenant = $1 AND kind = $2 AND time_micros >= $3
                 ORDER BY time_micros, name",
                &[&tenant.as_str(), &sql::kind_id(kind), &since],
            )?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<(i64, String, String)>, StoreError>>()
        })?;
        for (time, severity, status) in &rows {
            visit(*time, Facets { severity, status });
        }
        Ok(())
    }

    fn subjects(&self, key: &SubjectKey) -> Result<Vec<SubjectHit>, StoreError> {
        let (tenant, key) = (self.tenant.clone(), key.clone());
        self.pool
            .run(move |c| sql::subjects(c, tenant.as_str(), &key))
    }

    fn audit(
        &self,
        after_seq: u64,
        limit: usize,
        filter: &mut dyn FnMut(&AuditRecord) -> bool,
    ) -> Result<Page<AuditRecord, u64>, StoreError> {
        let limit = limit.max(1);
        let batch = (limit + 1).clamp(16, sql::BATCH);
        let mut items = Vec::new();
        let mut more = false;
        let mut from = after_seq;
        'scan: loop {
            let tenant = self.tenant.clone();
            let rows = self
                .pool
                .run(move |c| sql::audit_rows(c, tenant.as_str(), from, batch))?;
            let full = rows.len() == batch;
            for (seq, bytes) in rows {
                from = seq;
                let rec = decode_audit(&self.tenant, seq, &bytes)?;
                if !filter(&rec) {
                    continue;
                }
                if items.len() == limit {
                    more = true;
                    break 'scan;
                }
                items.push(rec);
            }
            if !full {
                break;
            }
        }
        let next = if more {
            items.last().map(|r: &AuditRecord| r.seq)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn audit_for_subject(&self, key: &SubjectKey) -> Result<Vec<AuditRecord>, StoreError> {
        let (tenant, mac) = (self.tenant.clone(), self.key.subject(key));
        self.pool
            .run(move |c| sql::audit_for_subject(c, tenant.as_str(), &mac))
    }

    fn audit_verify(&self) -> Result<VerifyReport, StoreError> {
        let tenant = self.tenant.clone();
        self.pool.run(move |c| verify(c, tenant.as_str()))
    }

    fn hmac(&self, key: &SubjectKey) -> String {
        self.key.subject(key)
    }
}

/// Checks `tenant`'s chain in one snapshot, with the walk every backend runs.
pub(crate) fn verify(c: &mut postgres::Client, tenant: &str) -> Result<VerifyReport, StoreError> {
    let mut tx = snapshot(c)?;
    let head = sql::head(&mut tx, tenant)?;
    let (head, anchor) = match head {
        Some(h) if h.seq > 0 => (
            Some(ChainPoint {
                seq: h.seq,
                hash: h.hash,
            }),
            h.anchor.map(|(seq, hash)| ChainPoint { seq, hash }),
        ),
        Some(h) => (None, h.anchor.map(|(seq, hash)| ChainPoint { seq, hash })),
        None => (None, None),
    };
    let mut walk = ChainWalk::new(tenant, anchor);
    let mut from = 0u64;
    'walk: loop {
        let rows = sql::audit_rows(&mut tx, tenant, from, sql::BATCH * 8)?;
        let full = rows.len() == sql::BATCH * 8;
        for (seq, bytes) in rows {
            from = seq;
            if !walk.step(seq, &bytes) {
                break 'walk;
            }
        }
        if !full {
            break;
        }
    }
    tx.commit()?;
    Ok(walk.finish(head))
}
