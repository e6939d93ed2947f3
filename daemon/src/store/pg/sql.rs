//! The PostgreSQL backend's queries, each over any [`GenericClient`] (a pooled connection
//! for reads, the writer's transaction for a job's reads) and each bound to the tenant it
//! is given: every statement here has `tenant = $1` in its `WHERE` (the schedule's
//! cross-tenant due scan, for the timers, is the one exception).
//!
//! Scans that filter with the caller's closures (the time index, the audit log) fetch owned
//! rows in batches and leave the filtering to [`page_by_time`] and its callers, so the
//! closures never cross to a pool thread.

use postgres::GenericClient;
use steward::model::{AuditRecord, SubjectKey};

use crate::store::doc::{Doc, Kind, ScheduleAction};
use crate::store::error::StoreError;
use crate::store::read::{
    DocText, Page, SubjectHit, TimeCursor, decode_audit, decode_doc, decode_text,
};
use crate::store::tables::Facets;
use crate::store::{Due, TimeOrder, TimeQuery};
use steward::names::TenantId;

/// Rows fetched per round trip by the batched scans.
pub(crate) const BATCH: usize = 512;

/// The kind's stored number.
pub(crate) fn kind_id(kind: Kind) -> i16 {
    i16::from(kind.as_u8())
}

/// The kind of a stored number.
fn kind_of(n: i16) -> Result<Kind, StoreError> {
    u8::try_from(n)
        .ok()
        .and_then(Kind::from_u8)
        .ok_or_else(|| StoreError::Corrupted(format!("unknown record kind {n}")))
}

/// A sequence number as stored (`bigint`).
pub(crate) fn seq_id(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A stored sequence number.
fn seq_of(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupted(format!("audit sequence {n}")))
}

/// One record.
pub(crate) fn get(
    c: &mut impl GenericClient,
    tenant: &str,
    kind: Kind,
    name: &str,
) -> Result<Option<Doc>, StoreError> {
    let row = c.query_opt(
        "SELECT doc FROM records WHERE tenant = $1 AND kind = $2 AND name = $3",
        &[&tenant, &kind_id(kind), &name],
    )?;
    match row {
        Some(r) => {
            let bytes: Vec<u8> = r.try_get(0)?;
            let s = decode_doc(tenant, kind, name, &bytes)?;
            Ok(Some(Doc::from_stored(kind, name, s)))
        }
        None => Ok(None),
    }
}

/// Whether a record exists.
pub(crate) fn exists(
    c: &mut impl GenericClient,
    tenant: &str,
    kind: Kind,
    name: &str,
) -> Result<bool, StoreError> {
    let row = c.query_opt(
        "SELECT 1 FROM records WHERE tenant = $1 AND kind = $2 AND name = $3",
        &[&tenant, &kind_id(kind), &name],
    )?;
    Ok(row.is_some())
}

/// `(name, stored bytes)` of up to `limit` records of `kind` in name order after `after`.
pub(crate) fn by_name(
    c: &mut impl GenericClient,
    tenant: &str,
    kind: Kind,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match after {
        Some(a) => c.query(
            "SELECT name, doc FROM records WHERE tenant = $1 AND kind = $2 AND name > $3
             ORDER BY name LIMIT $4",
            &[&tenant, &kind_id(kind), &a, &n],
        )?,
        None => c.query(
            "SELECT name, doc FROM records WHERE tenant = $1 AND kind = $2
             ORDER BY name LIMIT $3",
            &[&tenant, &kind_id(kind), &n],
        )?,
    };
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// A page of records in name order, decoded by `decode(name, bytes)`.
pub(crate) fn page_by_name<D>(
    rows: Vec<(String, Vec<u8>)>,
    limit: usize,
    mut decode: impl FnMut(&str, &[u8]) -> Result<D, StoreError>,
) -> Result<Page<D, String>, StoreError> {
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for (name, bytes) in rows.into_iter().take(limit) {
        items.push(decode(&name, &bytes)?);
        last = Some(name);
    }
    Ok(Page {
        items,
        next: if more { last } else { None },
    })
}

/// Records of `kind` in name order after `after` (`limit` at least 1).
pub(crate) fn list(
    c: &mut impl GenericClient,
    tenant: &str,
    kind: Kind,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<Doc, String>, StoreError> {
    let limit = limit.max(1);
    let rows = by_name(c, tenant, kind, after, limit + 1)?;
    page_by_name(rows, limit, |name, bytes| {
        Ok(Doc::from_stored(
            kind,
            name,
            decode_doc(tenant, kind, name, bytes)?,
        ))
    })
}

/// Records of `kind` in reverse name order strictly before `before` (`limit` at least 1).
pub(crate) fn list_desc(
    c: &mut impl GenericClient,
    tenant: &str,
    kind: Kind,
    before: Option<&str>,
    limit: usize,
) -> Result<Page<Doc, String>, StoreError> {
    let limit = limit.max(1);
    let n = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let rows = match before {
        Some(b) => c.query(
            "SELECT name, doc FROM records WHERE tenant = $1 AND kind = $2 AND name < $3
             ORDER BY name DESC LIMIT $4",
            &[&tenant, &kind_id(kind), &b, &n],
        )?,
        None => c.query(
            "SELECT name, doc FROM records WHERE tenant = $1 AND kind = $2
             ORDER BY name DESC LIMIT $3",
            &[&tenant, &kind_id(kind), &n],
        )?,
    };
    let rows = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<(String, Vec<u8>)>, StoreError>>()?;
    page_by_name(rows, limit, |name, bytes| {
        Ok(Doc::from_stored(
            kind,
            name,
            decode_doc(tenant, kind, name, bytes)?,
        ))
    })
}

/// [`list`] as [`DocText`].
pub(crate) fn list_text(
    c: &mut impl GenericClient,
    tenant: &str,
    kind: Kind,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<DocText, String>, StoreError> {
    let limit = limit.max(1);
    let rows = by_name(c, tenant, kind, after, limit + 1)?;
    page_by_name(rows, limit, |name, bytes| {
        decode_text(tenant, kind, name, bytes)
    })
}

/// A time-index row: sort time, name, severity, status, stored bytes.
pub(crate) type TimeRow = (i64, String, String, String, Vec<u8>);

/// Which way a time scan goes and where it is bounded.
#[derive(Debug, Clone)]
pub(crate) enum TimeScan {
    /// Newest first, strictly before the cursor, at or after `since`.
    Desc {
        /// Strictly before this `(time, name)`; `None` from the newest.
        before: Option<(i64, String)>,
        /// The oldest sort time included.
        since: i64,
    },
    /// Oldest first, strictly after the cursor, at or before `until`.
    Asc {
        /// Strictly after this `(time, name)`; `None` from the oldest.
        after: Option<(i64, String)>,
        /// The newest sort time included.
        until: i64,
    },
}

impl TimeScan {
    /// The scan a [`TimeQuery`] asks for.
    pub(crate) fn of(q: &TimeQuery<'_>) -> TimeScan {
        let cursor = q.cursor.map(|c| (c.time_micros, c.name.clone()));
        match q.order {
            TimeOrder::NewestFirst => TimeScan::Desc {
                before: cursor,
                since: q.bound.unwrap_or(i64::MIN),
            },
            TimeOrder::OldestFirst => TimeScan::Asc {
                after: cursor,
                until: q.bound.unwrap_or(i64::MAX),
            },
        }
    }

    /// The same scan resumed past `(time, name)`.
    fn past(&self, time: i64, name: String) -> TimeScan {
        match self {
            TimeScan::Desc { since, .. } => TimeScan::Desc {
                before: Some((time, name)),
                since: *since,
            },
            TimeScan::Asc { until, .. } => TimeScan::Asc {
                after: Some((time, name)),
                until: *until,
            },
        }
    }
}

/// Up to `limit` time-index rows of `kind` along `scan`.
pub(crate) fn time_rows(
    c: &mut impl GenericClient,
    tenant: &str,
    kind: Kind,
    scan: &TimeScan,
    limit: usize,
) -> Result<Vec<TimeRow>, StoreError> {
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let k = kind_id(kind);
    const COLS: &str = "SELECT time_micros, name, severity, status, doc FROM records
        WHERE tenant = $1 AND kind = $2 AND time_micros IS NOT NULL";
    let rows = match scan {
        TimeScan::Desc {
            before: Some((t, name)),
            since,
        } => c.query(
            &format!(
                "{COLS} AND time_micros >= $3 AND (time_micros, name) < ($4, $5)
                 ORDER BY time_micros DESC, name DESC LIMIT $6"
            ),
            &[&tenant, &k, since, t, name, &n],
        )?,
        TimeScan::Desc {
            before: None,
            since,
        } => c.query(
            &format!("{COLS} AND time_micros >= $3 ORDER BY time_micros DESC, name DESC LIMIT $4"),
            &[&tenant, &k, since, &n],
        )?,
        TimeScan::Asc {
            after: Some((t, name)),
            until,
        } => c.query(
            &format!(
                "{COLS} AND time_micros <= $3 AND (time_micros, name) > ($4, $5)
                 ORDER BY time_micros, name LIMIT $6"
            ),
            &[&tenant, &k, until, t, name, &n],
        )?,
        TimeScan::Asc { after: None, until } => c.query(
            &format!("{COLS} AND time_micros <= $3 ORDER BY time_micros, name LIMIT $4"),
            &[&tenant, &k, until, &n],
        )?,
    };
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        })
        .collect()
}

/// One page along `scan`: rows fetched by `fetch(scan, n)` in batches, kept when `facets`
/// accepts their facets and then `filter` the decoded record; the cursor of the last one
/// when another accepted record follows (as redb's walk of its time index).
pub(crate) fn page_by_time(
    tenant: &str,
    kind: Kind,
    mut scan: TimeScan,
    limit: usize,
    mut fetch: impl FnMut(&TimeScan, usize) -> Result<Vec<TimeRow>, StoreError>,
    facets: &mut dyn FnMut(Facets<'_>) -> bool,
    filter: &mut dyn FnMut(&Doc) -> bool,
) -> Result<Page<Doc, TimeCursor>, StoreError> {
    let limit = limit.max(1);
    let batch = (limit + 1).clamp(16, BATCH);
    let mut items: Vec<Doc> = Vec::new();
    let mut more = false;
    'scan: loop {
        let rows = fetch(&scan, batch)?;
        let full = rows.len() == batch;
        let mut last = None;
        for (time, name, severity, status, bytes) in rows {
            let wanted = facets(Facets {
                severity: &severity,
                status: &status,
            });
            if wanted {
                let stored = decode_doc(tenant, kind, &name, &bytes)?;
                let doc = Doc::from_stored(kind, &name, stored);
                if filter(&doc) {
                    if items.len() == limit {
                        more = true;
                        break 'scan;
                    }
                    items.push(doc);
                }
            }
            last = Some((time, name));
        }
        match last {
            Some((time, name)) if full => scan = scan.past(time, name),
            _ => break,
        }
    }
    let next = if more {
        items.last().map(|d| TimeCursor {
            time_micros: d.time.unwrap_or(i64::MIN),
            name: d.name.clone(),
        })
    } else {
        None
    };
    Ok(Page { items, next })
}

/// The records holding `key`, in `(kind, name, field)` order.
pub(crate) fn subjects(
    c: &mut impl GenericClient,
    tenant: &str,
    key: &SubjectKey,
) -> Result<Vec<SubjectHit>, StoreError> {
    let rows = c.query(
        "SELECT kind, name, field FROM record_subjects WHERE tenant = $1 AND subject = $2
         ORDER BY kind, name, field",
        &[&tenant, &key.index_key()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(SubjectHit {
                kind: kind_of(r.try_get(0)?)?,
                name: r.try_get(1)?,
                field: r.try_get(2)?,
            })
        })
        .collect()
}

/// Up to `limit` audit records after `after_seq`, in order: `(seq, stored bytes)`.
pub(crate) fn audit_rows(
    c: &mut impl GenericClient,
    tenant: &str,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT seq, record FROM audit WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&tenant, &seq_id(after_seq), &n],
    )?;
    rows.iter()
        .map(|r| Ok((seq_of(r.try_get(0)?)?, r.try_get(1)?)))
        .collect()
}

/// Audit records naming the subject HMAC `mac`, in order.
pub(crate) fn audit_for_subject(
    c: &mut impl GenericClient,
    tenant: &str,
    mac: &str,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = c.query(
        "SELECT a.seq, a.record FROM audit_subjects s
         JOIN audit a ON a.tenant = s.tenant AND a.seq = s.seq
         WHERE s.tenant = $1 AND s.hmac = $2 ORDER BY s.seq",
        &[&tenant, &mac],
    )?;
    rows.iter()
        .map(|r| {
            let seq = seq_of(r.try_get(0)?)?;
            let bytes: Vec<u8> = r.try_get(1)?;
            decode_audit(tenant, seq, &bytes)
        })
        .collect()
}

/// A tenant's chain head and anchor as stored; `None` when it has no record yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The last record appended: `(seq, hash)`, seq 0 and the genesis hash when none.
    pub(crate) seq: u64,
    /// Its hash.
    pub(crate) hash: String,
    /// The last record purged, if any.
    pub(crate) anchor: Option<(u64, String)>,
}

/// Reads a head row's columns `head_seq, head_hash, anchor_seq, anchor_hash` from `at`.
pub(crate) fn head_of(r: &postgres::Row, at: usize) -> Result<Head, StoreError> {
    let anchor_seq: Option<i64> = r.try_get(at + 2)?;
    let anchor_hash: Option<String> = r.try_get(at + 3)?;
    let anchor = match (anchor_seq, anchor_hash) {
        (Some(s), Some(h)) => Some((seq_of(s)?, h)),
        _ => None,
    };
    Ok(Head {
        seq: seq_of(r.try_get(at)?)?,
        hash: r.try_get(at + 1)?,
        anchor,
    })
}

/// The stored head of `tenant`'s chain, if the tenant has a head row.
pub(crate) fn head(c: &mut impl GenericClient, tenant: &str) -> Result<Option<Head>, StoreError> {
    let row = c.query_opt(
        "SELECT head_seq, head_hash, anchor_seq, anchor_hash FROM audit_head WHERE tenant = $1",
        &[&tenant],
    )?;
    row.map(|r| head_of(&r, 0)).transpose()
}

/// Schedule entries of `action` due at or before `now_secs`, across tenants, oldest first.
pub(crate) fn due(
    c: &mut impl GenericClient,
    action: ScheduleAction,
    now_secs: i64,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let a = i16::from(action.as_u8());
    let rows = c.query(
        "SELECT at_secs, kind, tenant, name FROM schedule WHERE action = $1 AND at_secs <= $2
         ORDER BY at_secs, kind, tenant, name LIMIT $3",
        &[&a, &now_secs, &n],
    )?;
    rows.iter()
        .map(|r| {
            let tenant: String = r.try_get(2)?;
            Ok(Due {
                at_secs: r.try_get(0)?,
                action,
                kind: kind_of(r.try_get(1)?)?,
                tenant: TenantId::parse(&tenant).map_err(|e| {
                    StoreError::Corrupted(format!("a schedule entry's tenant {tenant:?}: {e}"))
                })?,
                name: r.try_get(3)?,
            })
        })
        .collect()
}

/// The earliest time anything of `action` is scheduled.
pub(crate) fn next_due(
    c: &mut impl GenericClient,
    action: ScheduleAction,
) -> Result<Option<i64>, StoreError> {
    let a = i16::from(action.as_u8());
    let row = c.query_one("SELECT min(at_secs) FROM schedule WHERE action = $1", &[&a])?;
    Ok(row.try_get(0)?)
}
