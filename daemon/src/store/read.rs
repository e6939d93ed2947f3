//! Reads, always through a handle bound to one tenant: [`RedbReader`] (its own short read
//! transactions, which never wait for the writer) and the helpers `txn.rs` shares for reads
//! inside the writer's transaction.
//!
//! Every key built here starts with the handle's tenant and every range ends before the next
//! tenant's first key, so no call can name or reach another tenant's data — cursors included:
//! a cursor only positions inside the handle's own range. Reads are synchronous (redb is);
//! the routes run them through `TenantCtx::read` (`routes/ctx.rs`): under
//! `tokio::task::block_in_place` on the multi-threaded runtime, `spawn_blocking` elsewhere.

use std::ops::Bound;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};
use steward::model::{AuditRecord, SubjectKey};
use steward::names::TenantId;

use super::audit::{self, HmacKey, VerifyReport};
use super::boundary::TenantRead;
use super::codec;
use super::doc::{Doc, Kind, StoredDoc};
use super::error::StoreError;
use super::slot::DbSlot;
use super::tables::{self, Facets};
use super::time_scan::{TimeQuery, list_by_time};

/// One page of a listing and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` at the end.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Up to `limit` items of a walk (each `Ok(None)` is one the walk's filters refused;
    /// an error ends it), and the cursor of the last when one more was accepted.
    pub(crate) fn fill(
        walk: impl Iterator<Item = Result<Option<T>, StoreError>>,
        limit: usize,
        cursor: impl Fn(&T) -> C,
    ) -> Result<Page<T, C>, StoreError> {
        let mut items = Vec::new();
        let mut more = false;
        for item in walk {
            let Some(item) = item? else {
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(item);
        }
        let next = if more { items.last().map(cursor) } else { None };
        Ok(Page { items, next })
    }
}

/// Position in a newest-first listing: resume strictly before this `(time, name)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCursor {
    /// Sort time of the last item returned, Unix microseconds.
    pub time_micros: i64,
    /// Name of the last item returned.
    pub name: String,
}

/// A document that holds a subject, from the subject index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubjectHit {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The field path holding the subject.
    pub field: String,
}

/// The smallest string greater than every string that starts with `s`'s full value and
/// continues: used as the exclusive end of "everything keyed `s`, then anything".
pub(crate) fn succ(s: &str) -> String {
    format!("{s}\0")
}

/// A readable `tables::RECORDS` (in a read transaction or the writer's): the one bound
/// every record read takes, named once.
pub(crate) trait Records:
    ReadableTable<(&'static str, u8, &'static str), &'static [u8]>
{
}

impl<T: ReadableTable<(&'static str, u8, &'static str), &'static [u8]>> Records for T {}

fn kind_of(b: u8) -> Result<Kind, StoreError> {
    Kind::from_u8(b).ok_or_else(|| StoreError::Corrupted(format!("unknown record kind byte {b}")))
}

pub(crate) fn decode_doc(
    tenant: &str,
    kind: Kind,
    name: &str,
    bytes: &[u8],
) -> Result<StoredDoc, StoreError> {
    codec::decode(bytes)
        .map_err(|e| StoreError::codec(format!("{kind} {name:?} of tenant {tenant:?}"), e))
}

pub(crate) fn get_stored(
    t: &impl Records,
    tenant: &str,
    kind: Kind,
    name: &str,
) -> Result<Option<StoredDoc>, StoreError> {
    match t.get((tenant, kind.as_u8(), name))? {
        Some(g) => decode_doc(tenant, kind, name, g.value()).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn get_doc(
    t: &impl Records,
    tenant: &str,
    kind: Kind,
    name: &str,
) -> Result<Option<Doc>, StoreError> {
    Ok(get_stored(t, tenant, kind, name)?.map(|s| Doc::from_stored(kind, name, s)))
}

pub(crate) fn list_docs(
    t: &impl Records,
    tenant: &str,
    kind: Kind,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<Doc, String>, StoreError> {
    list_docs_in(t, tenant, kind, Walk::Asc(after), limit)
}

/// Which way a walk by name goes, and the name it resumes after (strictly).
#[derive(Debug, Clone, Copy)]
enum Walk<'a> {
    /// Name order, after this name (or from the first).
    Asc(Option<&'a str>),
    /// Reverse name order, before this name (or from the last).
    Desc(Option<&'a str>),
}

fn list_docs_in(
    t: &impl Records,
    tenant: &str,
    kind: Kind,
    walk: Walk<'_>,
    limit: usize,
) -> Result<Page<Doc, String>, StoreError> {
    list_by_name(
        t,
        tenant,
        kind,
        walk,
        limit,
        |d: &Doc| &d.name,
        |name, bytes| {
            Ok(Doc::from_stored(
                kind,
                name,
                decode_doc(tenant, kind, name, bytes)?,
            ))
        },
    )
}

/// Records of `kind` by name in the direction of `walk`, at most `limit`, each decoded by
/// `decode(name, bytes)`; `name_of` gives the next page's start from the last one.
fn list_by_name<D>(
    t: &impl Records,
    tenant: &str,
    kind: Kind,
    walk: Walk<'_>,
    limit: usize,
    name_of: impl Fn(&D) -> &str,
    mut decode: impl FnMut(&str, &[u8]) -> Result<D, StoreError>,
) -> Result<Page<D, String>, StoreError> {
    let limit = limit.max(1);
    let k = kind.as_u8();
    let first = Bound::Included((tenant, k, ""));
    let end = Bound::Excluded((tenant, k + 1, ""));
    let range: Box<dyn Iterator<Item = _>> = match walk {
        Walk::Asc(after) => {
            let lower = after.map_or(first, |a| Bound::Excluded((tenant, k, a)));
            Box::new(t.range((lower, end))?)
        }
        Walk::Desc(before) => {
            let upper = before.map_or(end, |b| Bound::Excluded((tenant, k, b)));
            Box::new(t.range((first, upper))?.rev())
        }
    };
    let mut items = Vec::with_capacity(limit.min(1024));
    let mut more = false;
    for item in range {
        let (key, v) = item?;
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(decode(key.value().2, v.value())?);
    }
    let next = if more {
        items.last().map(|d| name_of(d).to_owned())
    } else {
        None
    };
    Ok(Page { items, next })
}

/// A stored record's name, etag and body, without the rest of its envelope: what an export
/// writes. Decoding only these (see [`decode_text`]) skips the subject and schedule lists,
/// which were a quarter of an export's time (docs/PERFORMANCE.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocText {
    /// Its name.
    pub name: String,
    /// Its current etag.
    pub etag: String,
    /// The resource as JSON text.
    pub body_json: String,
}

/// The leading fields of [`StoredDoc`], in its order, borrowed from the stored bytes.
/// postcard writes fields in order with no schema, so a prefix of the struct decodes the
/// prefix of its bytes; `decode_text_matches_the_whole_envelope` keeps the two in step.
#[derive(serde::Deserialize)]
struct StoredHead<'a> {
    etag: &'a str,
    _created_at_micros: i64,
    _updated_at_micros: i64,
    body_json: &'a str,
}

/// Decodes the etag and body of a stored record (format version byte, then the envelope's
/// leading fields); the same errors as [`codec::decode`] for a value too short for them.
pub(crate) fn decode_text(
    tenant: &str,
    kind: Kind,
    name: &str,
    bytes: &[u8],
) -> Result<DocText, StoreError> {
    let head: StoredHead<'_> = codec::decode_prefix(bytes)
        .map_err(|e| StoreError::codec(format!("{kind} {name:?} of tenant {tenant:?}"), e))?;
    Ok(DocText {
        name: name.to_owned(),
        etag: head.etag.to_owned(),
        body_json: head.body_json.to_owned(),
    })
}

/// Like [`list_docs`], but each record as [`DocText`].
pub(crate) fn list_text(
    t: &impl Records,
    tenant: &str,
    kind: Kind,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<DocText, String>, StoreError> {
    list_by_name(
        t,
        tenant,
        kind,
        Walk::Asc(after),
        limit,
        |d: &DocText| &d.name,
        |name, bytes| decode_text(tenant, kind, name, bytes),
    )
}

pub(crate) fn subjects_of<S>(
    s: &S,
    tenant: &str,
    key: &SubjectKey,
) -> Result<Vec<SubjectHit>, StoreError>
where
    S: ReadableTable<(&'static str, &'static str, u8, &'static str, &'static str), ()>,
{
    let key = key.index_key();
    let end = succ(&key);
    let mut hits = Vec::new();
    for item in s.range((tenant, key.as_str(), 0u8, "", "")..(tenant, end.as_str(), 0u8, "", ""))? {
        let (k, _) = item?;
        let (_, _, kind, name, field) = k.value();
        hits.push(SubjectHit {
            kind: kind_of(kind)?,
            name: name.to_string(),
            field: field.to_string(),
        });
    }
    Ok(hits)
}

pub(crate) fn decode_audit(
    tenant: &str,
    seq: u64,
    bytes: &[u8],
) -> Result<AuditRecord, StoreError> {
    codec::decode(bytes)
        .map_err(|e| StoreError::codec(format!("audit record {seq} of tenant {tenant:?}"), e))
}

/// The redb backend's tenant-scoped read handle. Cheap to create and to clone; each call is one short read
/// transaction, so a handle never pins old data.
#[derive(Clone, Debug)]
pub struct RedbReader {
    /// The database, shared with the store and the writer (each call takes the open
    /// instance for one read transaction, so a reopen after an I/O error can close it).
    db: Arc<DbSlot>,
    /// The only tenant this handle can see; the first element of every key it builds.
    tenant: TenantId,
    /// For [`RedbReader::hmac`] and subject lookups in the audit log.
    key: HmacKey,
}

impl RedbReader {
    pub(crate) fn new(db: Arc<DbSlot>, tenant: &TenantId, key: HmacKey) -> RedbReader {
        RedbReader {
            db,
            tenant: tenant.clone(),
            key,
        }
    }

    fn audit_page(
        &self,
        db: &Database,
        after_seq: u64,
        limit: usize,
        mut filter: impl FnMut(&AuditRecord) -> bool,
    ) -> Result<Page<AuditRecord, u64>, StoreError> {
        let rtx = db.begin_read()?;
        let t = rtx.open_table(tables::AUDIT)?;
        let tenant = self.tenant.as_str();
        let start = after_seq.saturating_add(1);
        let records = t.range((tenant, start)..=(tenant, u64::MAX))?.map(|item| {
            let (k, v) = item?;
            let rec = decode_audit(tenant, k.value().1, v.value())?;
            Ok(filter(&rec).then_some(rec))
        });
        Page::fill(records, limit, |r: &AuditRecord| r.seq)
    }
}

impl TenantRead for RedbReader {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn get(&self, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            get_doc(&rtx.open_table(tables::RECORDS)?, &self.tenant, kind, name)
        })
    }

    fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            list_docs(
                &rtx.open_table(tables::RECORDS)?,
                &self.tenant,
                kind,
                after,
                limit,
            )
        })
    }

    fn list_desc(
        &self,
        kind: Kind,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page<Doc, String>, StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            list_docs_in(
                &rtx.open_table(tables::RECORDS)?,
                &self.tenant,
                kind,
                Walk::Desc(before),
                limit,
            )
        })
    }

    fn list_text(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DocText, String>, StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            list_text(
                &rtx.open_table(tables::RECORDS)?,
                &self.tenant,
                kind,
                after,
                limit,
            )
        })
    }

    fn list_by_time(
        &self,
        kind: Kind,
        mut q: TimeQuery<'_>,
    ) -> Result<Page<Doc, TimeCursor>, StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            let index = rtx.open_table(tables::TIME_INDEX)?;
            let records = rtx.open_table(tables::RECORDS)?;
            list_by_time(&index, &records, &self.tenant, kind, &mut q)
        })
    }

    fn scan_time_facets(
        &self,
        kind: Kind,
        since: i64,
        visit: &mut dyn FnMut(i64, Facets<'_>),
    ) -> Result<(), StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            let index = rtx.open_table(tables::TIME_INDEX)?;
            let k = kind.as_u8();
            let tenant: &str = &self.tenant;
            let lower = Bound::Included((tenant, k, since, ""));
            let upper = Bound::Excluded((tenant, k + 1, i64::MIN, ""));
            for item in index.range((lower, upper))? {
                let (key, value) = item?;
                let (_, _, time, _) = key.value();
                let (severity, status) = value.value();
                visit(time, Facets { severity, status });
            }
            Ok(())
        })
    }

    fn subjects(&self, key: &SubjectKey) -> Result<Vec<SubjectHit>, StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            subjects_of(&rtx.open_table(tables::SUBJECTS)?, &self.tenant, key)
        })
    }

    fn audit(
        &self,
        after_seq: u64,
        limit: usize,
        filter: &mut dyn FnMut(&AuditRecord) -> bool,
    ) -> Result<Page<AuditRecord, u64>, StoreError> {
        let limit = limit.max(1);
        self.db
            .read(|db| self.audit_page(db, after_seq, limit, &mut *filter))
    }

    fn audit_for_subject(&self, key: &SubjectKey) -> Result<Vec<AuditRecord>, StoreError> {
        let mac = self.key.subject(key);
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            let index = rtx.open_table(tables::AUDIT_SUBJECTS)?;
            let audit = rtx.open_table(tables::AUDIT)?;
            let tenant = self.tenant.as_str();
            let mut out = Vec::new();
            for item in
                index.range((tenant, mac.as_str(), 0u64)..=(tenant, mac.as_str(), u64::MAX))?
            {
                let (k, _) = item?;
                let seq = k.value().2;
                if let Some(v) = audit.get((tenant, seq))? {
                    out.push(decode_audit(tenant, seq, v.value())?);
                }
            }
            Ok(out)
        })
    }

    fn audit_verify(&self) -> Result<VerifyReport, StoreError> {
        self.db.read(|db| {
            let rtx = db.begin_read()?;
            let a = rtx.open_table(tables::AUDIT)?;
            let h = rtx.open_table(tables::AUDIT_HEAD)?;
            audit::verify(&a, &h, &self.tenant)
        })
    }

    fn hmac(&self, key: &SubjectKey) -> String {
        self.key.subject(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward::model::{SubjectKey, SubjectKind};

    use crate::store::doc::{ScheduleAction, Scheduled};

    #[test]
    fn decode_text_matches_the_whole_envelope() {
        let doc = StoredDoc {
            etag: "0190abc".into(),
            created_at_micros: -5,
            updated_at_micros: i64::MAX,
            body_json: r#"{"name":"a","properties":{"x":"é"}}"#.into(),
            subjects: vec![SubjectKey::new(SubjectKind::Email, "a@b.example", "p.e").unwrap()],
            schedule: vec![Scheduled {
                at_secs: 9,
                action: ScheduleAction::Purge,
            }],
            time: Some(3),
        };
        let bytes = codec::encode(&doc).unwrap();
        let text = decode_text("t", Kind::Alert, "a", &bytes).unwrap();
        let whole = decode_doc("t", Kind::Alert, "a", &bytes).unwrap();
        assert_eq!(
            (text.etag.as_str(), text.body_json.as_str()),
            (whole.etag.as_str(), whole.body_json.as_str())
        );
        // The same errors as the whole decode: empty, unknown version, truncated.
        assert!(decode_text("t", Kind::Alert, "a", &[]).is_err());
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(
            decode_text("t", Kind::Alert, "a", &other)
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
        assert!(decode_text("t", Kind::Alert, "a", &bytes[..12]).is_err());
    }
}
