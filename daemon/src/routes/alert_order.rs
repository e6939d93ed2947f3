//! The orders of an alerts list (`?orderby=`) and how the daemon pages each one, so no
//! client sorts what it has loaded:
//!
//! - `timeGeneratedUtc desc|asc` (default `desc`): the time index, walked either way.
//! - `name asc|desc`: the records table by name, either way. The filters are tested on
//!   each record, and a page reads at most [`NAME_SCAN`] records: a short page with a
//!   `nextLink` when a selective filter finds few.
//! - `severity desc|asc` (rank: `desc` is High, Medium, Low, Informational, then any
//!   other value; `asc` the reverse) and `status asc|desc` (lifecycle: `asc` is Active,
//!   InProgress, Resolved, Dismissed, then any other value): one bucket per value, newest
//!   first inside a bucket. A bucket is a walk of the time index that keeps the entries
//!   whose facet is the bucket's value (tested on the index entry, before any record is
//!   read), so no new index is needed; the cursor carries the bucket.
//!
//! Each order's cursors carry the order's name ([`Order::list`]): a cursor of one order
//! is refused by another.

use steward::model::alert::{SEVERITIES, STATUSES};

use super::alerts::Filter;
use super::orderby::{self, Dir, Field};
use crate::error::ApiError;
use crate::store::tables::Facets;
use crate::store::{Doc, Kind, Page, TenantRead, TimeCursor, TimeOrder, TimeQuery};

/// The most records an alerts page by name reads (see the module doc).
pub(crate) const NAME_SCAN: usize = 5000;

/// The fields an alerts list orders by, in [`Order::parse`]'s order.
const FIELDS: &[Field] = &[
    Field {
        name: "timeGeneratedUtc",
        spellings: &["time", "timegeneratedutc", "properties/timegeneratedutc"],
        default_dir: Dir::Desc,
    },
    Field {
        name: "name",
        spellings: &["name"],
        default_dir: Dir::Asc,
    },
    Field {
        name: "severity",
        spellings: &["severity", "properties/severity"],
        default_dir: Dir::Desc,
    },
    Field {
        name: "status",
        spellings: &["status", "properties/status"],
        default_dir: Dir::Asc,
    },
];

/// The order of an alerts list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// By generation time (`Desc`, newest first, is the default).
    Time(Dir),
    /// By name.
    Name(Dir),
    /// By severity rank, newest first inside each severity.
    Severity(Dir),
    /// By status in lifecycle order, newest first inside each status.
    Status(Dir),
}

/// Where a page of an alerts list resumes, per order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Strictly past this time-index entry (time orders).
    Time(TimeCursor),
    /// Strictly past this name.
    Name(String),
    /// In bucket `.0`, strictly past the entry (or from the bucket's start).
    Bucket(usize, Option<TimeCursor>),
}

impl Order {
    /// `?orderby=` (absent: newest first); a 400 naming the fields otherwise.
    pub(crate) fn parse(v: Option<&str>) -> Result<Order, ApiError> {
        Ok(match orderby::parse(v, FIELDS)? {
            None => Order::Time(Dir::Desc),
            Some((0, d)) => Order::Time(d),
            Some((1, d)) => Order::Name(d),
            Some((2, d)) => Order::Severity(d),
            Some((_, d)) => Order::Status(d),
        })
    }

    /// The list's name in its cursors. Time descending keeps `alerts` and ascending
    /// `alerts-asc` (the cursors given out before the other orders still resume).
    pub(crate) fn list(self) -> String {
        match self {
            Order::Time(Dir::Desc) => "alerts".to_owned(),
            Order::Time(Dir::Asc) => "alerts-asc".to_owned(),
            Order::Name(d) => format!("alerts-name-{}", d.as_str()),
            Order::Severity(d) => format!("alerts-severity-{}", d.as_str()),
            Order::Status(d) => format!("alerts-status-{}", d.as_str()),
        }
    }

    /// The bucket values of a bucketed order, in order (lower case, as the facets hold
    /// them); the bucket after the last is "any other value".
    fn buckets(self) -> Option<Vec<String>> {
        let (values, rank_dir): (&[&str], Dir) = match self {
            Order::Severity(d) => (&SEVERITIES, flip(d)),
            Order::Status(d) => (&STATUSES, d),
            _ => return None,
        };
        let mut v: Vec<String> = values.iter().map(|s| s.to_lowercase()).collect();
        if rank_dir == Dir::Desc {
            v.reverse();
        }
        Some(v)
    }

    /// Reads a position from a cursor's text (`time:name`, `name`, `bucket:time:name` or
    /// `bucket:`); `None` when it is not one this order gives out.
    pub(crate) fn resume(self, pos: &str) -> Option<Resume> {
        let time = |s: &str| {
            let (t, n) = s.split_once(':')?;
            Some(TimeCursor {
                time_micros: t.parse().ok()?,
                name: n.to_owned(),
            })
        };
        match self {
            Order::Time(_) => time(pos).map(Resume::Time),
            Order::Name(_) => Some(Resume::Name(pos.to_owned())),
            Order::Severity(_) | Order::Status(_) => {
                let (b, rest) = pos.split_once(':')?;
                let b: usize = b.parse().ok()?;
                if b > self.buckets()?.len() {
                    return None;
                }
                if rest.is_empty() {
                    Some(Resume::Bucket(b, None))
                } else {
                    Some(Resume::Bucket(b, Some(time(rest)?)))
                }
            }
        }
    }
}

/// The position a [`Resume`] is written as in a cursor ([`Order::resume`] reads it).
pub(crate) fn position(r: &Resume) -> String {
    let time = |c: &TimeCursor| format!("{}:{}", c.time_micros, c.name);
    match r {
        Resume::Time(c) => time(c),
        Resume::Name(n) => n.clone(),
        Resume::Bucket(b, None) => format!("{b}:"),
        Resume::Bucket(b, Some(c)) => format!("{b}:{}", time(c)),
    }
}

/// Severity ranks run High first in the list, so `severity desc` (most severe first)
/// walks it forward.
fn flip(d: Dir) -> Dir {
    match d {
        Dir::Asc => Dir::Desc,
        Dir::Desc => Dir::Asc,
    }
}

/// One page of alerts in `order`, resuming at `resume`, filtered by `filter`.
pub(crate) fn page(
    r: &dyn TenantRead,
    order: Order,
    resume: Option<Resume>,
    filter: &Filter,
    limit: usize,
) -> Result<Page<Doc, Resume>, ApiError> {
    let (since, until) = (filter.since, filter.until);
    // Newest first, a walk starts just after `until` and ends at `since`; oldest first,
    // it starts just before `since` and ends at `until`.
    let newest_start = || {
        until.map(|u| TimeCursor {
            time_micros: u.saturating_add(1),
            name: String::new(),
        })
    };
    let mut accepts = |d: &Doc| filter.accepts(d);
    match order {
        Order::Time(dir) => {
            let cursor = match resume {
                Some(Resume::Time(c)) => Some(c),
                _ if dir == Dir::Desc => newest_start(),
                _ => since.map(|s| TimeCursor {
                    time_micros: s.saturating_sub(1),
                    name: String::new(),
                }),
            };
            let (order, bound) = match dir {
                Dir::Desc => (TimeOrder::NewestFirst, since),
                Dir::Asc => (TimeOrder::OldestFirst, until),
            };
            let p = r.list_by_time(
                Kind::Alert,
                TimeQuery {
                    order,
                    cursor: cursor.as_ref(),
                    bound,
                    limit,
                    facets: Box::new(|f: Facets<'_>| filter.accepts_facets(f)),
                    filter: Box::new(&mut accepts),
                },
            )?;
            Ok(Page {
                items: p.items,
                next: p.next.map(Resume::Time),
            })
        }
        Order::Name(dir) => {
            let mut at = match resume {
                Some(Resume::Name(n)) => Some(n),
                _ => None,
            };
            let mut items = Vec::new();
            let mut read = 0;
            loop {
                let want = (limit - items.len() + 1).min(NAME_SCAN - read).max(1);
                let p = match dir {
                    Dir::Asc => r.list(Kind::Alert, at.as_deref(), want)?,
                    Dir::Desc => r.list_desc(Kind::Alert, at.as_deref(), want)?,
                };
                for doc in p.items {
                    read += 1;
                    at = Some(doc.name.clone());
                    if !filter.accepts_record(&doc) {
                        continue;
                    }
                    if items.len() == limit {
                        // One more matches: the page is full and more follow.
                        let last = items.last().map(|d: &Doc| Resume::Name(d.name.clone()));
                        return Ok(Page { items, next: last });
                    }
                    items.push(doc);
                }
                if p.next.is_none() {
                    return Ok(Page { items, next: None });
                }
                if read >= NAME_SCAN {
                    // A selective filter: a short page, resuming after what was read.
                    return Ok(Page {
                        items,
                        next: at.map(Resume::Name),
                    });
                }
            }
        }
        Order::Severity(_) | Order::Status(_) => {
            let buckets = order.buckets().unwrap_or_default();
            let (mut b, mut cursor) = match resume {
                Some(Resume::Bucket(b, c)) => (b, c.or_else(newest_start)),
                _ => (0, newest_start()),
            };
            let severity = matches!(order, Order::Severity(_));
            let mut items: Vec<Doc> = Vec::new();
            while b <= buckets.len() {
                let value = buckets.get(b).map(String::as_str);
                let facets = |f: Facets<'_>| {
                    let v = if severity { f.severity } else { f.status };
                    let here = match value {
                        Some(want) => v == want,
                        None => !buckets.iter().any(|k| k == v),
                    };
                    here && filter.accepts_facets(f)
                };
                let p = r.list_by_time(
                    Kind::Alert,
                    TimeQuery {
                        order: TimeOrder::NewestFirst,
                        cursor: cursor.as_ref(),
                        bound: since,
                        limit: limit - items.len(),
                        facets: Box::new(facets),
                        filter: Box::new(&mut accepts),
                    },
                )?;
                items.extend(p.items);
                if let Some(c) = p.next {
                    return Ok(Page {
                        items,
                        next: Some(Resume::Bucket(b, Some(c))),
                    });
                }
                b += 1;
                cursor = newest_start();
                if items.len() == limit {
                    let next = (b <= buckets.len()).then_some(Resume::Bucket(b, None));
                    return Ok(Page { items, next });
                }
            }
            Ok(Page { items, next: None })
        }
    }
}
