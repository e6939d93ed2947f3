//! Walks of the time index (`tables::TIME_INDEX`): one page newest or oldest first
//! ([`list_by_time`], as a [`TimeQuery`] asks), through one walker ([`page_by_time`]) that
//! tests the facets before reading a record. What it is not: the read handle
//! ([`super::read::RedbReader`]) or the index's upkeep (the writer's).

use std::ops::Bound;

use redb::ReadableTable;

use super::doc::{Doc, Kind};
use super::error::StoreError;
use super::read::{Page, Records, TimeCursor, get_doc};
use super::tables::Facets;

/// Which direction a [`TimeQuery`] walks the time index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOrder {
    /// Newest first: the cursor resumes strictly before it, the bound is `since`.
    NewestFirst,
    /// Oldest first: the cursor resumes strictly after it, the bound is `until`; the far
    /// end of a list costs one page, not a walk through every page before it.
    OldestFirst,
}

/// One page of a listing by sort time (see [`super::TenantRead::list_by_time`]). Build it
/// with [`TimeQuery::newest_first`] or [`TimeQuery::oldest_first`] and set what differs.
pub struct TimeQuery<'a> {
    /// Which end the page starts from.
    pub order: TimeOrder,
    /// Resume strictly past this `(time, name)`: `None` starts at the near end.
    pub cursor: Option<&'a TimeCursor>,
    /// The far end, a sort time that is included (`since` newest first, `until` oldest
    /// first); `None` runs to the end. Cursor and bound both bound the scan itself, so a
    /// page costs what lies between them, not what is stored outside.
    pub bound: Option<i64>,
    /// At most this many records (at least 1 is read).
    pub limit: usize,
    /// Tested on the index entry's facets, before the record is read (alerts'
    /// `?severity=&status=`).
    pub facets: Box<dyn FnMut(Facets<'_>) -> bool + 'a>,
    /// Tested on the record (alerts' `?q=`).
    pub filter: Box<dyn FnMut(&Doc) -> bool + 'a>,
}

impl<'a> TimeQuery<'a> {
    /// The newest `limit` records, none filtered out.
    pub fn newest_first(limit: usize) -> TimeQuery<'a> {
        TimeQuery::all(TimeOrder::NewestFirst, limit)
    }

    /// The oldest `limit` records, none filtered out.
    pub fn oldest_first(limit: usize) -> TimeQuery<'a> {
        TimeQuery::all(TimeOrder::OldestFirst, limit)
    }

    fn all(order: TimeOrder, limit: usize) -> TimeQuery<'a> {
        TimeQuery {
            order,
            cursor: None,
            bound: None,
            limit,
            facets: Box::new(|_| true),
            filter: Box::new(|_| true),
        }
    }
}

/// One page of `kind` in the tenant's range of the time index, as `q` asks (its filters
/// are called again if the read is retried).
pub(crate) fn list_by_time<I>(
    index: &I,
    records: &impl Records,
    tenant: &str,
    kind: Kind,
    q: &mut TimeQuery<'_>,
) -> Result<Page<Doc, TimeCursor>, StoreError>
where
    I: ReadableTable<(&'static str, u8, i64, &'static str), (&'static str, &'static str)>,
{
    let k = kind.as_u8();
    let past = q
        .cursor
        .map(|c| Bound::Excluded((tenant, k, c.time_micros, c.name.as_str())));
    let end = Bound::Excluded((tenant, k + 1, i64::MIN, ""));
    match q.order {
        TimeOrder::NewestFirst => {
            let lower = Bound::Included((tenant, k, q.bound.unwrap_or(i64::MIN), ""));
            let range = index.range((lower, past.unwrap_or(end)))?.rev();
            page_by_time(range, records, tenant, kind, q)
        }
        TimeOrder::OldestFirst => {
            let lower = past.unwrap_or(Bound::Included((tenant, k, i64::MIN, "")));
            let upper = match q.bound.and_then(|u| u.checked_add(1)) {
                Some(u) => Bound::Excluded((tenant, k, u, "")),
                None => end,
            };
            page_by_time(index.range((lower, upper))?, records, tenant, kind, q)
        }
    }
}

/// One page from a walk of the time index in either direction: the records whose facets
/// and then whole record are accepted, and the cursor of the last when more follow.
fn page_by_time<'a>(
    range: impl Iterator<
        Item = Result<
            (
                redb::AccessGuard<'a, (&'static str, u8, i64, &'static str)>,
                redb::AccessGuard<'a, (&'static str, &'static str)>,
            ),
            redb::StorageError,
        >,
    >,
    records: &impl Records,
    tenant: &str,
    kind: Kind,
    q: &mut TimeQuery<'_>,
) -> Result<Page<Doc, TimeCursor>, StoreError> {
    let docs = range.map(|item| {
        let (key, value) = item?;
        let (severity, status) = value.value();
        if !(q.facets)(Facets { severity, status }) {
            return Ok(None);
        }
        let (_, _, _, name) = key.value();
        Ok(get_doc(records, tenant, kind, name)?.filter(|d| (q.filter)(d)))
    });
    Page::fill(docs, q.limit.max(1), |d: &Doc| TimeCursor {
        time_micros: d.time.unwrap_or(i64::MIN),
        name: d.name.clone(),
    })
}
