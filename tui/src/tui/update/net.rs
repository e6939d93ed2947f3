//! The backend's answers: the session, pages, a change's outcome (a 412 shows the
//! newer version, a 400 lands at the fields it names), the connection, change events
//! and export progress.

use super::list::{apply_pages, prefetch, refresh};
use super::session::enter_session;
use super::{Effect, send};
use crate::tui::detail::DetailView;
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
            // Coalesced: the next tick refreshes once for however many events came
            // (200k alerts ingested are not 200k reloads and redraws).
            s.list.stale = true;
            s.dirty = false;
            Vec::new()
        }
        Msg::ExportProgress { bytes, total } => {
            if let Some(p) = &mut s.export {
                p.bytes = bytes;
                p.total = total;
            }
            Vec::new()
        }
        Msg::ExportDone { file, records } => {
            let late = s.export.take().is_none();
            let text = if late {
                format!(
                    "the export had finished before the cancel: {records} records in {}",
                    file.display()
                )
            } else {
                format!("exported {records} records to {}", file.display())
            };
            s.toast(text, late);
            Vec::new()
        }
        Msg::Overview(o) => {
            let has_alerts = o.alerts.as_ref().is_ok_and(|a| a.total > 0);
            if !s.touched && has_alerts {
                s.on_overview = true;
            }
            if let Ok(chain) = &o.chain {
                s.chain = Some(chain.clone());
            }
            s.overview = Some(o);
            Vec::new()
        }
        Msg::Verified(result) => {
            let tenant = s.session.tenant.clone().unwrap_or_default();
            match result {
                Ok(report) => {
                    let text = verify_text(&report);
                    let title = if report.ok {
                        format!("audit chain of {tenant}: intact")
                    } else {
                        format!("audit chain of {tenant}: BROKEN")
                    };
                    s.toast(title.clone(), !report.ok);
                    s.chain = Some(report);
                    s.modal = Some(Modal::Detail(Box::new(DetailView::new(title, text))));
                }
                Err(f) => s.toast(format!("verify: {}", f.text()), true),
            }
            Vec::new()
        }
        Msg::Subjects { what, result } => {
            match result {
                Ok(hits) => {
                    let mut text = if hits.is_empty() {
                        format!("No record of this tenant names {what}.\n")
                    } else {
                        format!("{} records name {what}:\n\n", hits.len())
                    };
                    for (kind, id, field) in &hits {
                        text.push_str(&format!("  {kind}/{id}    in {field}\n"));
                    }
                    text.push_str(
                        "\nThe search is audited with the identifier only as an HMAC. Open a request for this person with n on the DSR tab.",
                    );
                    s.modal = Some(Modal::Detail(Box::new(DetailView::new(
                        format!("subject {what}"),
                        text,
                    ))));
                }
                Err(f) => s.toast(format!("subject: {}", f.text()), true),
            }
            Vec::new()
        }
        Msg::BundleDone { file, bytes } => {
            let late = s.export.take().is_none();
            let text = if late {
                format!(
                    "the download had finished before the cancel: {}",
                    file.display()
                )
            } else {
                format!("bundle saved to {} ({bytes} bytes, 0600)", file.display())
            };
            s.toast(text, late);
            Vec::new()
        }
        Msg::ExportFailed(f) => {
            if s.export.take().is_none() {
                // The cancelled export's last word: the cancel already said it.
                return Vec::new();
            }
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
                Some(
                    Modal::ContactForm(_)
                        | Modal::PolicyEditor(_)
                        | Modal::Initiate(_)
                        | Modal::DsrForm(_)
                )
            ) {
                s.modal = None;
            }
            s.toast(format!("{verb} {what}"), false);
            refresh(s)
        }
        Err(f) => {
            if f.status == Some(412)
                && let Change::Save { create: true, .. } = change
            {
                return already_exists(s, &what);
            }
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
                    errors.push(field_error(t, &f.error.message));
                }
                for d in &f.error.details {
                    errors.push(field_error(
                        d.target.as_deref().unwrap_or_default(),
                        &d.message,
                    ));
                }
            }
            if errors.is_empty() {
                // No field named: the whole reason shows in the form, wrapped, not only
                // in a toast cut at the screen's edge.
                errors.push((String::new(), f.text()));
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
                Some(Modal::DsrForm(form)) => {
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

/// A create answered 412 (`If-None-Match: *`): a record of that name exists and was left
/// as it was. The form stays open with the name marked, so nothing typed is lost.
fn already_exists(s: &mut State, what: &str) -> Vec<Effect> {
    let why = "already exists: pick another name, or close and edit the existing one";
    match &mut s.modal {
        Some(Modal::ContactForm(form)) => {
            form.saving = false;
            form.errors.clear();
            form.errors.insert("name".into(), why.into());
            form.focus = 0;
        }
        Some(Modal::PolicyEditor(ed)) => {
            ed.saving = false;
            ed.errors.clear();
            ed.errors.insert("name".into(), why.into());
            ed.on_name = true;
        }
        _ => {}
    }
    s.toast(format!("{what} already exists; nothing was changed"), true);
    Vec::new()
}

/// A field's error as the form keeps it: its path, and the message without the path
/// the daemon may have put in front of it (so the field is named once).
fn field_error(target: &str, message: &str) -> (String, String) {
    let msg = message
        .strip_prefix(target)
        .and_then(|m| m.strip_prefix(':'))
        .filter(|_| !target.is_empty())
        .map_or(message, str::trim_start);
    (target.to_owned(), msg.to_owned())
}

/// The audit chain's check as the detail view shows it: the verdict, the head to save,
/// and where it breaks.
fn verify_text(r: &steward::wire::VerifyReport) -> String {
    let mut t = if r.ok {
        format!(
            "Intact: {} records chain to the anchor and hash correctly.\n\n",
            r.records
        )
    } else {
        format!(
            "BROKEN: the chain does not verify from record {}.\n{} records checked.\n\n",
            r.first_bad_seq.map_or("?".to_owned(), |s| s.to_string()),
            r.records
        )
    };
    t.push_str(&format!(
        "Head: seq {}\n      {}\n\nSave the head: a later check that finds it proves nothing was cut off.\n",
        r.head.seq, r.head.hash
    ));
    if let Some(a) = &r.anchor {
        t.push_str(&format!("\nAnchor (last purged record): {a}\n"));
    }
    t
}
