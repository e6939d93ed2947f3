//! The window of records of the current tab: fetching pages by cursor, keeping a few
//! around the selection, the selection anchored by record id across reloads, the
//! filter and the sort. Links of first pages come from `steward::client::paths`.

use serde_json::Value;
use steward::client::paths;
use steward::resource::Resource;

use super::{Effect, send};
use crate::tui::msg::Request;
use crate::tui::state::{ListView, MAX_PAGES, State, Target};

/// The first page's link of the current tab: `?limit=` and, for a kind the daemon
/// filters, `&q=`, `&severity=` and `&status=`.
fn base_link(s: &State) -> Option<String> {
    let tenant = s.session.tenant.as_deref()?;
    let mut query = vec![("limit", s.page_size.to_string())];
    query.extend(view_query(s));
    Some(paths::tenant(tenant).list(s.tab, &query))
}

/// The daemon-side filters and order of what the view shows (`q`, `severity`, `status`,
/// `orderby`): the list and an export of "what is on screen" ask for the same (the
/// export leaves out the order).
pub(crate) fn view_query(s: &State) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if s.tab.server_filter() && !s.list.filter.is_empty() {
        query.push(("q", s.list.filter.clone()));
    }
    if let Some(o) = s.orderby() {
        query.push(("orderby", o.to_owned()));
    }
    if s.tab.server_filter() {
        if let Some(v) = s.list.severity {
            query.push(("severity", v.to_owned()));
        }
        if let Some(v) = s.list.status {
            query.push(("status", v.to_owned()));
        }
    }
    query
}

/// Moves a facet filter to the next of `values` (after the last: no filter) and reloads.
pub(super) fn cycle_facet(
    s: &mut State,
    values: &'static [&'static str],
    get: fn(&mut ListView) -> &mut Option<&'static str>,
    what: &str,
) -> Vec<Effect> {
    let slot = get(&mut s.list);
    let next = match *slot {
        None => values.first().copied(),
        Some(cur) => values
            .iter()
            .position(|v| *v == cur)
            .and_then(|i| values.get(i + 1).copied()),
    };
    *slot = next;
    let text = match next {
        Some(v) => format!("{what}: {v} only"),
        None => format!("{what}: all"),
    };
    s.toast(text, false);
    reset_list(s)
}

fn fetch(
    s: &mut State,
    start_index: usize,
    link: String,
    count: usize,
    to_end: bool,
    target: Target,
) -> Vec<Effect> {
    let generation = s.gen_next();
    s.list.loading = Some(generation);
    s.list.pending = Some(target);
    vec![send(Request::Pages {
        generation,
        start_index,
        link,
        count,
        to_end,
        keep: if to_end { 2 } else { count },
    })]
}

/// Starts the current tab's list afresh from its first page.
pub(super) fn reset_list(s: &mut State) -> Vec<Effect> {
    let Some(link) = base_link(s) else {
        return Vec::new();
    };
    let filter = std::mem::take(&mut s.list.filter);
    let (severity, status, order) = (s.list.severity, s.list.status, s.list.order);
    s.list = ListView::default();
    s.list.filter = filter;
    s.list.severity = severity;
    s.list.status = status;
    s.list.order = order;
    fetch(s, 0, link, 1, false, Target::First)
}

/// Reloads the pages on screen; the selection follows its record.
pub(super) fn refresh(s: &mut State) -> Vec<Effect> {
    match s.list.links.get(s.list.first).cloned() {
        Some(link) if s.list.loaded => {
            let count = s.list.pages.len().max(1);
            let first = s.list.first;
            fetch(s, first, link, count, false, Target::Anchor)
        }
        _ => reset_list(s),
    }
}

/// Selects the visible row `pos` (or the last), anchoring the selection to its record.
pub(super) fn select(s: &mut State, pos: usize) {
    let len = s.visible().len();
    if len == 0 {
        s.list.selected = 0;
        s.list.anchor = None;
        return;
    }
    let pos = pos.min(len - 1);
    s.list.selected = pos;
    keep_in_view(s);
    s.list.anchor = s.selected().map(|v| s.tab.record_id(v));
}

/// Scrolls so that the selection is on screen, and no row is hidden above a window
/// that has room for it (sorting 3 rows must not show "3 of 3" with two out of sight).
pub(super) fn keep_in_view(s: &mut State) {
    let h = s.view_rows.max(1);
    let len = s.visible().len();
    let l = &mut s.list;
    if l.selected < l.offset {
        l.offset = l.selected;
    } else if l.selected >= l.offset + h {
        l.offset = l.selected + 1 - h;
    }
    l.offset = l.offset.min(len.saturating_sub(h));
}

/// Puts the selection back on the anchored record, or the nearest row.
pub(super) fn reanchor(s: &mut State) {
    let rows: Vec<&Value> = s.list.rows().collect();
    let found = s.list.anchor.as_ref().and_then(|a| {
        s.visible()
            .iter()
            .position(|&i| s.tab.record_id(rows[i]) == *a)
    });
    match found {
        Some(p) => {
            // Rows came or went above: the screen moves with the record.
            let shift = p as i64 - s.list.selected as i64;
            s.list.offset = usize::try_from(s.list.offset as i64 + shift).unwrap_or(0);
            s.list.selected = p;
            keep_in_view(s);
        }
        None => {
            let p = s.list.selected;
            select(s, p);
        }
    }
}

pub(super) fn prefetch(s: &mut State) -> Vec<Effect> {
    if s.list.loading.is_some() {
        return Vec::new();
    }
    let len = s.visible().len();
    let margin = s.view_rows.max(1);
    if s.list.selected + margin >= len
        && let Some(link) = s.list.next_link().cloned()
    {
        let at = s.list.first + s.list.pages.len();
        return fetch(s, at, link, 1, false, Target::Append);
    }
    if s.list.selected < margin
        && s.list.first > 0
        && let Some(link) = s.list.links.get(s.list.first - 1).cloned()
    {
        let at = s.list.first - 1;
        return fetch(s, at, link, 1, false, Target::Prepend);
    }
    Vec::new()
}

/// Moves the selection by `delta` rows, fetching a page when near an edge.
pub(super) fn move_by(s: &mut State, delta: i64) -> Vec<Effect> {
    let len = s.visible().len() as i64;
    if len == 0 {
        return Vec::new();
    }
    let to = (s.list.selected as i64 + delta).clamp(0, len - 1);
    select(s, usize::try_from(to).unwrap_or(0));
    prefetch(s)
}

/// The first record of the list.
pub(super) fn go_top(s: &mut State) -> Vec<Effect> {
    if s.list.first == 0 {
        select(s, 0);
        return Vec::new();
    }
    match s.list.links.first().cloned() {
        Some(link) => fetch(s, 0, link, 1, false, Target::First),
        None => reset_list(s),
    }
}

/// Lists alerts in the other time order (newest ↔ oldest first), asked of the daemon:
/// the far end of 200k alerts is then one page away, not a walk through every page.
fn flip_time_order(s: &mut State) -> Vec<Effect> {
    s.list.order = usize::from(s.list.order == 0);
    let text = if s.list.order == 1 {
        "oldest first (the daemon's order by time; G flips back)"
    } else {
        "newest first"
    };
    s.toast(text, false);
    reset_list(s)
}

/// The next of the daemon's orders of this tab (`s`): the list is asked again in it, so
/// the order holds across every page, not only the loaded ones.
pub(super) fn next_order(s: &mut State) -> Vec<Effect> {
    let orders = s.tab.orders();
    if orders.len() < 2 {
        s.toast(
            format!("{} has one order, the daemon's", s.tab.title()),
            false,
        );
        return Vec::new();
    }
    let anchor = s.selected().map(|v| s.tab.record_id(v));
    s.list.order = (s.list.order + 1) % orders.len();
    let o = orders.get(s.list.order).copied().unwrap_or_default();
    s.toast(format!("ordered by {o} (by the daemon)"), false);
    let fx = reset_list(s);
    // The selection stays on its record when the first page holds it.
    s.list.anchor = anchor;
    if s.list.pending.is_some() {
        s.list.pending = Some(Target::Anchor);
    }
    fx
}

/// Stops a walk to the last page when the operator presses another key meanwhile: its
/// answer will be dropped and the backend stops fetching.
pub(super) fn cancel_long_load(s: &mut State) -> Vec<Effect> {
    if s.list.loading.is_none() || s.list.pending != Some(Target::Last) {
        return Vec::new();
    }
    s.list.loading = None;
    s.list.pending = None;
    s.toast("stopped going to the last record", false);
    vec![send(Request::CancelPages)]
}

/// The last record of the list: for alerts in a time order the other end of the
/// daemon's order ([`flip_time_order`]); elsewhere following cursors to the last page
/// (cancelled by the next key).
pub(super) fn go_bottom(s: &mut State) -> Vec<Effect> {
    if s.tab == Resource::Alerts && s.list.order < 2 && !s.list.at_end() {
        return flip_time_order(s);
    }
    match s.list.next_link().cloned() {
        None => {
            let n = s.visible().len();
            select(s, n.saturating_sub(1));
            Vec::new()
        }
        Some(link) => {
            let at = s.list.first + s.list.pages.len();
            fetch(s, at, link, 1, true, Target::Last)
        }
    }
}

/// Applies a filter: on the daemon for kinds it filters, else on the loaded window.
pub(super) fn apply_filter(s: &mut State, filter: String) -> Vec<Effect> {
    s.list.filter = filter;
    if s.tab.server_filter() {
        s.list.links.clear();
        reset_list(s)
    } else {
        s.reindex();
        if !s.list.filter.is_empty() {
            s.toast(
                "filtering the loaded rows only (this kind has no server filter)",
                false,
            );
        }
        select(s, 0);
        Vec::new()
    }
}

/// Puts fetched pages into the window, where `target` says, and re-selects.
pub(super) fn apply_pages(
    s: &mut State,
    target: Target,
    start_index: usize,
    links: Vec<String>,
    pages: Vec<Vec<Value>>,
    next: Option<String>,
) {
    let l = &mut s.list;
    match target {
        Target::Prepend => {
            if start_index + 1 != l.first {
                return;
            }
            for p in pages.into_iter().rev() {
                l.pages.push_front(p);
                l.first = l.first.saturating_sub(1);
            }
            while l.pages.len() > MAX_PAGES {
                l.pages.pop_back();
            }
            s.reindex();
            reanchor(s);
        }
        Target::Append => {
            if start_index != l.first + l.pages.len() {
                return;
            }
            let fetched = links.len();
            l.links.truncate(start_index);
            l.links.extend(links);
            l.links.extend(next);
            let skip = fetched.saturating_sub(pages.len());
            if skip > 0 {
                // Pages between the window and what came back were passed over.
                l.pages.clear();
                l.first = start_index + skip;
            }
            l.pages.extend(pages);
            while l.pages.len() > MAX_PAGES {
                l.pages.pop_front();
                l.first += 1;
            }
            s.reindex();
            reanchor(s);
        }
        Target::First | Target::Last | Target::Anchor => {
            let fetched = links.len();
            l.links.truncate(start_index);
            l.links.extend(links);
            l.links.extend(next);
            l.first = start_index + fetched.saturating_sub(pages.len());
            l.pages = pages.into_iter().collect();
            s.reindex();
            match target {
                Target::First => select(s, 0),
                Target::Last => {
                    let n = s.visible().len();
                    select(s, n.saturating_sub(1));
                }
                _ => reanchor(s),
            }
        }
    }
}
