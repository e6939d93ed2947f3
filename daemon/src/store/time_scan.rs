//! Walks of the time index (`tables::TIME_INDEX`): a page newest first
//! ([`list_by_time`]), oldest first ([`list_by_time_asc`]), both through one walker
//! ([`page_by_time`]) that tests the facets before reading a record. What it is not: the
//! read handle ([`super::read::RedbReader`]) or the index's upkeep (the writer's).

use std::ops::Bound;

use redb::ReadableTable;

use super::doc::{Doc, Kind};
use super::error::StoreError;
use super::read::{Page, TimeCursor, get_doc};
use super::tables::Facets;

/// Newest first within `(since ..= before)`: strictly before the cursor `before` (or from
/// the newest), down to and including the sort time `since` (or the oldest). Both bound
/// the scan itself, so a page costs what lies between them, not what is stored outside.
#[allow(clippy::too_many_arguments)] // two tables, the tenant's range, and two filters
pub(crate) fn list_by_time<I, T>(
    index: &I,
    records: &T,
    tenant: &str,
    kind: Kind,
    before: Option<&TimeCursor>,
    since: Option<i64>,
    limit: usize,
    mut facets: impl FnMut(Facets<'_>) -> bool,
    mut filter: impl FnMut(&Doc) -> bool,
) -> Result<Page<Doc, TimeCursor>, StoreError>
where
    I: ReadableTable<(&'static str, u8, i64, &'static str), (&'static str, &'static str)>,
    T: ReadableTable<(&'static str, u8, &'static str), &'static [u8]>,
{
    let k = kind.as_u8();
    let lower = Bound::Included((tenant, k, since.unwrap_or(i64::MIN), ""));
    let upper = match before {
        Some(c) => Bound::Excluded((tenant, k, c.time_micros, c.name.as_str())),
        None => Bound::Excluded((tenant, k + 1, i64::MIN, "")),
    };
    let range = index.range((lower, upper))?.rev();
    page_by_time(
        range,
        records,
        tenant,
        kind,
        limit,
        &mut facets,
        &mut filter,
    )
}

/// Oldest first within `(after ..= until)`: strictly after the cursor `after` (or from
/// the oldest), up to and including the sort time `until` (or the newest). The mirror of
/// [`list_by_time`] on the same index, so the far end of a list costs one page, not a
/// walk through every page before it.
#[allow(clippy::too_many_arguments)] // as list_by_time
pub(crate) fn list_by_time_asc<I, T>(
    index: &I,
    records: &T,
    tenant: &str,
    kind: Kind,
    after: Option<&TimeCursor>,
    until: Option<i64>,
    limit: usize,
    mut facets: impl FnMut(Facets<'_>) -> bool,
    mut filter: impl FnMut(&Doc) -> bool,
) -> Result<Page<Doc, TimeCursor>, StoreError>
where
    I: ReadableTable<(&'static str, u8, i64, &'static str), (&'static str, &'static str)>,
    T: ReadableTable<(&'static str, u8, &'static str), &'static [u8]>,
{
    let k = kind.as_u8();
    let lower = match after {
        Some(c) => Bound::Excluded((tenant, k, c.time_micros, c.name.as_str())),
        None => Bound::Included((tenant, k, i64::MIN, "")),
    };
    let upper = match until.and_then(|u| u.checked_add(1)) {
        Some(u) => Bound::Excluded((tenant, k, u, "")),
        None => Bound::Excluded((tenant, k + 1, i64::MIN, "")),
    };
    let range = index.range((lower, upper))?;
    page_by_time(
        range,
        records,
        tenant,
        kind,
        limit,
        &mut facets,
        &mut filter,
    )
}

/// One page from a walk of the time index in either direction: the records whose facets
/// and then whole record are accepted, and the cursor of the last when more follow.
fn page_by_time<'a, T>(
    range: impl Iterator<
        Item = Result<
            (
                redb::AccessGuard<'a, (&'static str, u8, i64, &'static str)>,
                redb::AccessGuard<'a, (&'static str, &'static str)>,
            ),
            redb::StorageError,
        >,
    >,
    records: &T,
    tenant: &str,
    kind: Kind,
    limit: usize,
    facets: &mut impl FnMut(Facets<'_>) -> bool,
    filter: &mut impl FnMut(&Doc) -> bool,
) -> Result<Page<Doc, TimeCursor>, StoreError>
where
    T: ReadableTable<(&'static str, u8, &'static str), &'static [u8]>,
{
    let limit = limit.max(1);
    let mut items = Vec::new();
    let mut more = false;
    for item in range {
        let (key, value) = item?;
        let (severity, status) = value.value();
        if !facets(Facets { severity, status }) {
            continue;
        }
        let (_, _, _, name) = key.value();
        let Some(doc) = get_doc(records, tenant, kind, name)? else {
            continue;
        };
        if !filter(&doc) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(doc);
    }
    let next = if more {
        items.last().map(|d: &Doc| TimeCursor {
            time_micros: d.time.unwrap_or(i64::MIN),
            name: d.name.clone(),
        })
    } else {
        None
    };
    Ok(Page { items, next })
}
