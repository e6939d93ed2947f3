//! `update` without a terminal or a socket: navigation anchored by record id, paging by
//! cursors, permission gating, the delete confirmation, 412 and 400 handling, keymap
//! errors. Each test drives the state the way the event loop does: keys and backend
//! messages in, effects out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::tui_fixtures::*;
use ratatui::crossterm::event::KeyCode;
use serde_json::json;
use steward::client::paths;
use steward::permissions::Permission;
use steward::resource::Resource;
use steward::wire::{ErrorDetail, Event};
use steward_tui::tui::backend::call;
use steward_tui::tui::keymap::{Keymap, KeymapError};
use steward_tui::tui::msg::{Change, Failure, Msg, Request};
use steward_tui::tui::state::{Intent, Modal, State};
use steward_tui::tui::update::{Action, Effect, update};

fn selected_id(s: &steward_tui::tui::state::State) -> String {
    s.tab.record_id(s.selected().expect("a selected record"))
}

#[test]
fn the_selection_follows_its_record_across_a_reload() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=20).map(alert).collect(),
        None,
    );
    typing(&mut s, "jjj");
    assert_eq!(selected_id(&s), "a-004");
    // Two newer alerts arrive on top; the refresh keeps the same record selected.
    let fx = update(&mut s, Action::Key(key_of('r')));
    let mut page = vec![alert(900), alert(901)];
    page.extend((1..=20).map(alert));
    answer(&mut s, &fx, page, None);
    assert_eq!(selected_id(&s), "a-004");
    assert_eq!(s.list.selected, 5);
    // The record is gone after the next reload: the selection stays at the same row.
    let fx = update(&mut s, Action::Key(key_of('r')));
    answer(
        &mut s,
        &fx,
        (1..=20).filter(|i| *i != 4).map(alert).collect(),
        None,
    );
    assert_eq!(s.list.selected, 5);
    assert_eq!(selected_id(&s), "a-007");
}

#[test]
fn an_answer_to_an_older_request_is_dropped() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=5).map(alert).collect(),
        None,
    );
    let old = update(&mut s, Action::Key(key_of('r')));
    let new = update(&mut s, Action::Key(key_of('r')));
    answer(&mut s, &old, vec![alert(77)], None);
    assert_eq!(s.list.rows().count(), 5, "the stale answer was applied");
    answer(&mut s, &new, vec![alert(88)], None);
    assert_eq!(selected_id(&s), "a-088");
}

#[test]
fn g_follows_cursors_to_the_last_page_and_back() {
    // Contacts: a kind without a time order, so G walks the cursors (alerts flip order).
    let c = |i: usize| contact(&format!("c-{i:03}"), "e");
    let first: Vec<_> = (1..=100).map(c).collect();
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        first,
        Some("/v1/tenants/contoso/contacts?limit=100&cursor=c1"),
    );
    let fx = update(&mut s, Action::Key(key_of('G')));
    let (generation, start_index, link, to_end) = pages_cmd(&fx);
    assert!(to_end);
    assert_eq!(start_index, 1);
    assert!(link.ends_with("cursor=c1"));
    // The backend walked pages 1 and 2 and kept both (300 alerts in all).
    update(
        &mut s,
        Action::Net(Msg::Pages {
            generation,
            start_index,
            links: vec![
                link.clone(),
                "/v1/tenants/contoso/contacts?limit=100&cursor=c2".into(),
            ],
            pages: vec![(101..=200).map(c).collect(), (201..=300).map(c).collect()],
            next: None,
        }),
    );
    assert_eq!(selected_id(&s), "c-300");
    assert!(s.list.at_end());
    // The window holds pages 1 and 2 only, not the whole list.
    assert_eq!(s.list.first, 1);
    assert_eq!(s.list.rows().count(), 200);
    // g goes back to page 0 by its link.
    let fx = update(&mut s, Action::Key(key_of('g')));
    let (_, start, link, to_end) = pages_cmd(&fx);
    assert_eq!((start, to_end), (0, false));
    assert_eq!(link, "/v1/tenants/contoso/contacts?limit=100");
}

#[test]
fn scrolling_down_fetches_the_next_page_and_drops_the_oldest() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (0..100).map(alert).collect(),
        Some("/n1"),
    );
    let mut fx = Vec::new();
    for _ in 0..90 {
        fx.extend(update(&mut s, Action::Key(key_of('j'))));
    }
    let (_, start, link, _) = pages_cmd(&fx);
    assert_eq!((start, link.as_str()), (1, "/n1"));
    let anchor = selected_id(&s);
    let fx = answer(&mut s, &fx, (100..200).map(alert).collect(), Some("/n2"));
    assert_eq!(selected_id(&s), anchor);
    assert!(fx.is_empty());
    // Two more pages: the window stays at three pages and the selection on its record.
    for (n, next) in [(2usize, "/n3"), (3, "/n4")] {
        let mut fx = Vec::new();
        while fx.is_empty() {
            fx = update(&mut s, Action::Key(key_of('j')));
        }
        let (_, start, _, _) = pages_cmd(&fx);
        assert_eq!(start, n);
        let anchor = selected_id(&s);
        answer(
            &mut s,
            &fx,
            (n * 100..(n + 1) * 100).map(alert).collect(),
            Some(next),
        );
        assert_eq!(selected_id(&s), anchor);
    }
    assert_eq!(s.list.pages.len(), 3);
    assert_eq!(s.list.first, 1);
}

#[test]
fn a_reader_is_told_and_nothing_is_sent() {
    let mut s = loaded(
        "fabrikam",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    assert!(!can(&s, Permission::ContactsWrite));
    for k in ['d', 'e', 'n'] {
        let fx = update(&mut s, Action::Key(key_of(k)));
        assert!(fx.is_empty(), "{k} sent {fx:?}");
        assert!(s.modal.is_none());
        let toast = s.toast.clone().expect("a toast");
        assert!(toast.text.contains("contacts.write"), "{}", toast.text);
    }
    let fx = update(&mut s, Action::Key(key_of('x')));
    assert!(fx.is_empty());
    assert!(s.toast.as_ref().unwrap().text.contains("contacts.export") || s.modal.is_some());
}

#[test]
fn a_new_policy_starts_with_a_vm_of_the_sessions_tenant() {
    let mut s = loaded("contoso", None, Resource::JitPolicies, vec![], None);
    update(&mut s, Action::Key(key_of('n')));
    let Some(Modal::PolicyEditor(ed)) = &s.modal else {
        panic!("no policy editor: {:?}", s.modal);
    };
    let text = ed.text.lines.join("\n");
    assert!(
        text.contains("\"/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1\""),
        "{text}"
    );
}

#[test]
fn acting_as_reader_in_a_tenant_admin_tenant_gates_like_a_reader() {
    let mut s = loaded(
        "contoso",
        Some("reader"),
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    assert_eq!(s.session.permissions(), reader());
    let fx = update(&mut s, Action::Key(key_of('d')));
    assert!(fx.is_empty());
    assert!(s.tabs().iter().all(|t| *t != Resource::Dsr));
}

#[test]
fn delete_asks_first_with_focus_on_cancel() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    let fx = update(&mut s, Action::Key(key_of('d')));
    assert!(fx.is_empty());
    match &s.modal {
        Some(Modal::Confirm { intent, on_confirm }) => {
            assert!(!on_confirm, "focus must start on Cancel");
            assert!(intent.question().contains("default"));
        }
        other => panic!("no confirmation: {other:?}"),
    }
    // Enter on Cancel: nothing sent.
    let fx = update(&mut s, Action::Key(code(KeyCode::Enter)));
    assert!(fx.is_empty());
    assert!(s.modal.is_none());
    // Move to Delete, Enter: the DELETE goes out with the loaded etag.
    update(&mut s, Action::Key(key_of('d')));
    update(&mut s, Action::Key(code(KeyCode::Right)));
    let fx = update(&mut s, Action::Key(code(KeyCode::Enter)));
    match cmds(&fx).as_slice() {
        [Request::Change(change)] => {
            assert_eq!(
                change,
                &Change::Delete {
                    kind: Resource::Contacts,
                    name: "default".into(),
                    etag: Some("e1".into()),
                }
            );
            // The backend sends it as a DELETE of the record with If-Match.
            let http = call(&paths::tenant("contoso"), change);
            assert_eq!(http.method, http::Method::DELETE);
            assert_eq!(http.path, "/v1/tenants/contoso/contacts/default");
            assert_eq!(http.etag.as_deref(), Some("e1"));
        }
        other => panic!("wanted one delete, got {other:?}"),
    }
}

#[test]
fn revoke_is_confirmed_too() {
    let req = json!({"id": "r-1", "policyName": "default", "requestor": "alice",
        "startTimeUtc": "2026-11-20T10:00:00Z", "virtualMachines": []});
    let mut s = loaded("contoso", None, Resource::JitRequests, vec![req], None);
    update(&mut s, Action::Key(key_of('R')));
    assert!(matches!(
        &s.modal,
        Some(Modal::Confirm { intent: Intent::Revoke { id }, on_confirm: false }) if id == "r-1"
    ));
}

fn failure(status: u16, target: Option<&str>) -> Failure {
    Failure {
        status: Some(status),
        error: ErrorDetail {
            code: "x".into(),
            message: "bad address".into(),
            target: target.map(str::to_owned),
            details: vec![],
        },
    }
}

#[test]
fn a_412_shows_the_newer_version_instead_of_overwriting() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    let fx = edit_in_editor(&mut s, |v| {
        v["properties"]["phone"] = "(214)275-4039".into();
    });
    assert!(matches!(s.modal, Some(Modal::PolicyEditor(_))));
    let change = match cmds(&fx).as_slice() {
        [Request::Change(change @ Change::Save { etag, .. })] => {
            assert_eq!(etag.as_deref(), Some("e1"));
            let http = call(&paths::tenant("contoso"), change);
            assert_eq!(http.method, http::Method::PUT);
            assert_eq!(http.path, "/v1/tenants/contoso/contacts/default");
            change.clone()
        }
        other => panic!("wanted one save, got {other:?}"),
    };
    let fx = update(
        &mut s,
        Action::Net(Msg::Written {
            change,
            result: Err(failure(412, None)),
        }),
    );
    let (kind, name, mine) = match cmds(&fx).as_slice() {
        [Request::Newer { kind, name, mine }] => {
            assert_eq!((*kind, name.as_str()), (Resource::Contacts, "default"));
            (*kind, name.clone(), mine.clone())
        }
        other => panic!("wanted a fetch of the newer version, got {other:?}"),
    };
    let theirs = contact("default", "e2");
    update(
        &mut s,
        Action::Net(Msg::Newer {
            kind,
            name,
            mine,
            result: Ok(theirs),
        }),
    );
    match &s.modal {
        Some(Modal::Conflict { mine, theirs, .. }) => {
            assert!(theirs.contains("e2"));
            assert!(mine.contains("alice@contoso.com"));
        }
        other => panic!("no conflict view: {other:?}"),
    }
}

#[test]
fn a_400_lands_at_the_field_it_names() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    let fx = edit_in_editor(&mut s, |v| {
        v["properties"]["emails"] = "nobody".into();
    });
    let Some(Request::Change(change)) = cmds(&fx).into_iter().next() else {
        panic!("no save");
    };
    update(
        &mut s,
        Action::Net(Msg::Written {
            change,
            result: Err(failure(400, Some("properties.emails"))),
        }),
    );
    match &s.modal {
        Some(Modal::PolicyEditor(f)) => {
            assert_eq!(
                f.errors.get("properties.emails").map(String::as_str),
                Some("bad address")
            );
            assert!(!f.saving);
        }
        other => panic!("the form closed: {other:?}"),
    }
}

#[test]
fn an_event_for_the_tab_refreshes_unless_frozen() {
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
    let ev = Event {
        seq: 1,
        at: "2026-11-20T10:00:00Z".into(),
        tenant: "contoso".into(),
        kind: "alerts".into(),
        name: "a-2".into(),
        action: "ingested".into(),
    };
    assert!(update(&mut s, Action::Net(Msg::Event(ev.clone()))).is_empty());
    let fx = update(&mut s, Action::Tick);
    answer(&mut s, &fx, vec![alert(2), alert(1)], None);
    assert_eq!(selected_id(&s), "a-001");
    update(&mut s, Action::Key(key_of('f')));
    let fx = update(&mut s, Action::Net(Msg::Event(ev.clone())));
    assert!(fx.is_empty());
    assert!(update(&mut s, Action::Tick).is_empty(), "frozen");
    let other = Event {
        tenant: "fabrikam".into(),
        ..ev
    };
    update(&mut s, Action::Key(key_of('f')));
    let _ = update(&mut s, Action::Key(key_of('r')));
    assert!(update(&mut s, Action::Net(Msg::Event(other))).is_empty());
}

#[test]
fn the_tenant_command_switches_and_marks_a_reader_read_only() {
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
    assert!(s.session.permissions().can_write());
    let fx = typing(&mut s, ":tenant fabrikam\n");
    assert!(cmds(&fx).iter().any(|c| matches!(c,
        Request::SetSession { tenant: Some(t), role: None } if t == "fabrikam")));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(link.starts_with("/v1/tenants/fabrikam/alerts?"), "{link}");
    assert!(!s.session.permissions().can_write());
}

#[test]
fn the_alert_filter_goes_to_the_server_and_others_filter_the_window() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=3).map(alert).collect(),
        None,
    );
    let fx = typing(&mut s, "/number 150\n");
    let (_, _, link, _) = pages_cmd(&fx);
    assert_eq!(link, "/v1/tenants/contoso/alerts?limit=100&q=number+150");
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1"), contact("other", "e2")],
        None,
    );
    let fx = typing(&mut s, "/other\n");
    assert!(fx.is_empty());
    assert_eq!(s.visible().len(), 1);
    assert_eq!(selected_id(&s), "other");
    update(&mut s, Action::Key(code(KeyCode::Esc)));
    assert_eq!(s.visible().len(), 2);
}

#[test]
fn q_quits_and_help_lists_every_command() {
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
    update(&mut s, Action::Key(key_of('?')));
    assert!(matches!(s.modal, Some(Modal::Help { .. })));
    // q closes the help first, then quits.
    assert!(update(&mut s, Action::Key(key_of('q'))).is_empty());
    assert_eq!(update(&mut s, Action::Key(key_of('q'))), vec![Effect::Quit]);
}

#[test]
fn a_conflicting_keys_file_is_an_error_naming_both_actions() {
    let err = Keymap::from_toml("[keys]\nexport = \"y\"\n", "keys.toml").unwrap_err();
    assert!(matches!(err, KeymapError::Conflict { .. }));
    let msg = err.to_string();
    assert!(msg.contains("export") && msg.contains("copy"), "{msg}");
}

/// `:alerts` typed before the daemon answered (a check types it as soon as the tenant
/// shows) is kept: the session opens on the alerts tab instead of refusing it.
#[test]
fn a_tab_chosen_before_the_session_loads_is_opened_with_it() {
    let mut s =
        steward_tui::tui::state::State::new(Keymap::default(), Some("contoso".into()), None);
    update(&mut s, Action::Resize(80, 24));
    typing(&mut s, ":alerts\n");
    assert_eq!(s.tab, Resource::Alerts);
    assert!(s.toast.is_none(), "refused: {:?}", s.toast);
    let fx = update(
        &mut s,
        Action::Net(Msg::Session(Ok(("alice".into(), tenants())))),
    );
    assert_eq!(s.tab, Resource::Alerts);
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(link.contains("/alerts"), "{link}");
}

/// `s` asks the daemon for its next order (never sorts the loaded rows): the list is
/// fetched again with `?orderby=`, shown as the daemon sends it, the selection stays on
/// its record, and a refresh keeps the order; the audit log has one order and says so.
#[test]
fn sorting_asks_the_daemon_and_the_selection_follows_its_record() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("a", "e3"), contact("b", "e1"), contact("c", "e2")],
        None,
    );
    update(&mut s, Action::Key(key_of('j')));
    assert_eq!(selected_id(&s), "b");
    let fx = update(&mut s, Action::Key(key_of('s')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(link.contains("orderby=name+desc"), "{link}");
    // Until the daemon answers, nothing is reordered here.
    let order = |s: &State| -> Vec<String> {
        s.visible()
            .iter()
            .map(|&i| Resource::Contacts.record_id(s.list.rows().nth(i).unwrap()))
            .collect()
    };
    answer(
        &mut s,
        &fx,
        vec![contact("c", "e2"), contact("b", "e1"), contact("a", "e3")],
        None,
    );
    assert_eq!(order(&s), ["c", "b", "a"], "the daemon's order, as sent");
    assert_eq!(selected_id(&s), "b");
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    assert!(screen.contains("by name desc"), "{screen}");
    // A refresh asks in the same order.
    let fx = update(&mut s, Action::Key(key_of('r')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(link.contains("orderby=name+desc"), "{link}");
    answer(
        &mut s,
        &fx,
        vec![contact("d", "e4"), contact("b", "e1")],
        None,
    );
    assert_eq!(selected_id(&s), "b");
    assert_eq!(s.list.selected, 1, "descending: d, b");
    // Back to the default order: no orderby sent.
    let fx = update(&mut s, Action::Key(key_of('s')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(!link.contains("orderby"), "{link}");
    // Alerts cycle through time, severity, status and name.
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
    let mut asked = Vec::new();
    for _ in 0..6 {
        let fx = update(&mut s, Action::Key(key_of('s')));
        let (_, _, link, _) = pages_cmd(&fx);
        asked.push(link);
        answer(&mut s, &fx, vec![alert(1)], None);
    }
    for (link, want) in asked.iter().zip([
        "orderby=timeGeneratedUtc+asc",
        "orderby=severity+desc",
        "orderby=status+asc",
        "orderby=name+asc",
        "orderby=name+desc",
    ]) {
        assert!(link.contains(want), "{link} lacks {want}");
    }
    assert!(!asked[5].contains("orderby"), "{}", asked[5]);
    // The audit log has one order.
    let mut s = loaded("contoso", None, Resource::Audit, vec![], None);
    let fx = update(&mut s, Action::Key(key_of('s')));
    assert!(cmds(&fx).is_empty(), "{fx:?}");
}
