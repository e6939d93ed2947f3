//! The backend's answers: the session, pages, a change's outcome (a 412 shows the
//! newer version, a 400 lands at the fields it names), the connection, change events
//! and export progress.

use super::list::{apply_pages, prefetch, refresh};
use super::session::enter_session;
use super::{Effect, send};
use crate::tui::msg::{Change, Failure, Msg, Request};
use crate::tui::state::{Conn, Modal, State, Target};

/// Applies one answer of the backend.
pub(super) fn net(s: &mut State, m: Msg) -> Vec<Effect> {
    match m {
        Msg::Session(Ok((user, tenants))) => {
            s.session.user = user;
            s.session.tenants = tenants;
            s.session.loaded = true;
            let wanted = s.session.tenant.clone();
            let has = |t: &str| s.session.tenants.iter().any(|i| i.id == t);
            match wanted {
                Some(t) if has(&t) => {}
                other => {
                    if let Some(t) = other {
                        s.toast(format!("no tenant `{t}` you hold a grant in"), true);
                    }
                    s.session.tenant = s.session.tenants.first().map(|i| i.id.clone());
                }
            }
            if s.session.tenant.is_none() {
                s.toast("the daemon grants you no tenant", true);
                return Vec::new();
            }
            enter_session(s)
        }
        Msg::Session(Err(f)) => {
            s.toast(format!("cannot load the session: {}", f.text()), true);
            Vec::new()
        }
        Msg::Pages {
            generation,
            start_index,
            links,
            pages,
            next,
        } => {
            if s.list.loading != Some(generation) {
                return Vec::new();
            }
            s.list.loading = None;
            s.list.loaded = true;
            s.list.error = None;
            let target = s.list.pending.take().unwrap_or(Target::Anchor);
            apply_pages(s, target, start_index, links, pages, next);
            if s.list.stale {
                s.list.stale = false;
                return refresh(s);
            }
            if matches!(target, Target::Append | Target::Prepend) {
                return prefetch(s);
            }
            Vec::new()
        }
        Msg::PagesFailed {
            generation,
            failure,
        } => {
            if s.list.loading != Some(generation) {
                return Vec::new();
            }
            s.list.loading = None;
            s.list.pending = None;
            s.list.error = Some(failure.text());
            if failure.status.is_some() {
                s.toast(failure.text(), true);
            }
            Vec::new()
        }
        Msg::Newer {
            kind,
            name,
            mine,
            result,
        } => {
            let title = format!("{}/{name}", kind.segment());
            match result {
                Ok(theirs) => {
                    s.modal = Some(Modal::Conflict {
                        title,
                        mine: serde_json::to_string_pretty(&mine).unwrap_or_default(),
                        theirs: serde_json::to_string_pretty(&theirs).unwrap_or_default(),
                        scroll: 0,
                    })
                }
                Err(f) => s.toast(
                    format!("{title} changed meanwhile and cannot be read: {}", f.text()),
                    true,
                ),
            }
            Vec::new()
        }
        Msg::Written { change, result } => written(s, change, result),
        Msg::Conn(c) => {
            let was = std::mem::replace(&mut s.conn, c.clone());
            if c == Conn::Connected && was != Conn::Connected {
                if !s.session.loaded {
                    return vec![send(Request::LoadSession)];
                }
                return refresh(s);
            }
            if was == c {
                s.dirty = false;
            }
            Vec::new()
        }
        Msg::Event(e) => {
            if Some(&e.tenant) != s.session.tenant.as_ref() {
                s.dirty = false;
                return Vec::new();
            }
            if e.kind == "config" {
                return vec![send(Request::LoadSession)];
            }
            if s.frozen || e.kind != s.tab.segment() {
                s.dirty = false;
                return Vec::new();
            }
            if s.list.loading.is_some() {
                s.list.stale = true;
                return Vec::new();
            }
            refresh(s)
        }
        Msg::ExportProgress { bytes, total } => {
            if let Some(p) = &mut s.export {
                p.bytes = bytes;
                p.total = total;
            }
            Vec::new()
        }
        Msg::ExportDone { file, records } => {
            s.export = None;
            s.toast(
                format!("exported {records} records to {}", file.display()),
                false,
            );
            Vec::new()
        }
        Msg::ExportFailed(f) => {
            s.export = None;
            s.toast(format!("export failed: {}", f.text()), true);
            Vec::new()
        }
    }
}

/// A change's outcome: close its form and reload, or show why not.
fn written(s: &mut State, change: Change, result: Result<(), Failure>) -> Vec<Effect> {
    let what = change.what();
    match result {
        Ok(()) => {
            let verb = change.done();
            if matches!(
                s.modal,
                Some(Modal::ContactForm(_) | Modal::PolicyEditor(_) | Modal::Initiate(_))
            ) {
                s.modal = None;
            }
            s.toast(format!("{verb} {what}"), false);
            refresh(s)
        }
        Err(f) => {
            if f.status == Some(412) {
                if let Change::Save {
                    kind, name, body, ..
                } = change
                {
                    s.toast(
                        format!("{what} changed since you loaded it: showing the newer version"),
                        true,
                    );
                    return vec![send(Request::Newer {
                        kind,
                        name,
                        mine: body,
                    })];
                }
                s.toast(
                    format!("{what} changed since you loaded it: reloaded, not deleted"),
                    true,
                );
                return refresh(s);
            }
            let mut errors: Vec<(String, String)> = Vec::new();
            if f.status == Some(400) {
                if let Some(t) = &f.error.target {
                    errors.push((t.clone(), f.error.message.clone()));
                }
                for d in &f.error.details {
                    errors.push((d.target.clone().unwrap_or_default(), d.message.clone()));
                }
            }
            match &mut s.modal {
                Some(Modal::ContactForm(form)) => {
                    form.saving = false;
                    form.errors = errors.into_iter().collect();
                }
                Some(Modal::PolicyEditor(ed)) => {
                    ed.saving = false;
                    ed.errors = errors.into_iter().collect();
                }
                Some(Modal::Initiate(form)) => {
                    form.saving = false;
                    form.errors = errors.into_iter().collect();
                }
                _ => {}
            }
            s.toast(format!("{what}: {}", f.text()), true);
            Vec::new()
        }
    }
}
