//! One regression test per defect of issue 19 ("The operator's TUI, round two"), named
//! for what was wrong, driven through `update` as the event loop drives it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::tui_fixtures::*;
use ratatui::crossterm::event::KeyCode;
use serde_json::Value;
use steward::client::paths;
use steward::resource::Resource;
use steward::wire::ErrorDetail;
use steward_tui::tui::backend::call;
use steward_tui::tui::msg::{Change, Failure, Msg, Request};
use steward_tui::tui::state::Modal;
use steward_tui::tui::update::{Action, update};

fn failure(status: u16, message: &str, target: Option<&str>) -> Failure {
    Failure {
        status: Some(status),
        error: ErrorDetail {
            code: "x".into(),
            message: message.into(),
            target: target.map(str::to_owned),
            details: vec![],
        },
    }
}

/// The one save among the effects.
fn the_save(fx: &[steward_tui::tui::update::Effect]) -> Change {
    match cmds(fx).as_slice() {
        [Request::Change(c @ Change::Save { .. })] => c.clone(),
        other => panic!("wanted one save, got {other:?}"),
    }
}

/// Defect 1: `n` prefilled `default` and the save replaced the existing contact.
#[test]
fn new_contact_never_replaces_an_existing_one() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    update(&mut s, Action::Key(key_of('n')));
    match &s.modal {
        Some(Modal::ContactForm(f)) => {
            assert_eq!(
                f.name.value(),
                "",
                "a new contact must not start with a name"
            );
            assert_eq!(f.focus, 0, "the name has focus");
        }
        other => panic!("no contact form: {other:?}"),
    }
    // Saving without a name is refused locally.
    let fx = update(&mut s, Action::Key(code(KeyCode::Enter)));
    assert!(cmds(&fx).is_empty());
    // The operator types the existing name anyway: the save is a create.
    typing(&mut s, "default\t");
    typing(&mut s, "carol@contoso.com");
    let change = the_save(&update(&mut s, Action::Key(code(KeyCode::Enter))));
    let http = call(&paths::tenant("contoso"), &change);
    assert!(http.create, "a create sends If-None-Match: *");
    assert_eq!(http.etag, None);
    // The daemon answers 412: the form stays, the name is marked, nothing typed is lost.
    update(
        &mut s,
        Action::Net(Msg::Written {
            change,
            result: Err(failure(412, "precondition failed", None)),
        }),
    );
    match &s.modal {
        Some(Modal::ContactForm(f)) => {
            assert!(!f.saving);
            assert!(
                f.errors["name"].contains("already exists"),
                "{:?}",
                f.errors
            );
            assert_eq!(f.emails.value(), "carol@contoso.com");
        }
        other => panic!("the form closed: {other:?}"),
    }
    let toast = s.toast.as_ref().expect("a toast").text.clone();
    assert!(toast.contains("already exists"), "{toast}");
}

/// Defect 1: editing is not a create (it sends `If-Match`, not `If-None-Match`).
#[test]
fn editing_a_contact_is_not_a_create() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    let change = the_save(&edit_in_editor(&mut s, |v| {
        v["properties"]["phone"] = "(214)275-4039".into();
    }));
    let http = call(&paths::tenant("contoso"), &change);
    assert!(!http.create);
    assert_eq!(http.etag.as_deref(), Some("e1"));
}

/// Defect 1: the new JIT policy template opened the port to every address (`*`).
#[test]
fn the_jit_template_opens_no_port_to_everyone() {
    let mut s = loaded("contoso", None, Resource::JitPolicies, vec![], None);
    update(&mut s, Action::Key(key_of('n')));
    let Some(Modal::PolicyEditor(ed)) = &s.modal else {
        panic!("no policy editor: {:?}", s.modal);
    };
    assert_eq!(
        ed.name.value(),
        "",
        "a new policy must not start with a name"
    );
    let v: Value = serde_json::from_str(&ed.text.text()).unwrap();
    let prefix = v
        .pointer("/properties/virtualMachines/0/ports/0/allowedSourceAddressPrefix")
        .and_then(Value::as_str)
        .unwrap();
    assert_ne!(prefix, "*");
    assert!(!ed.text.text().contains("\"*\""));
    typing(&mut s, "default");
    let change = the_save(&update(
        &mut s,
        Action::Key(ratatui::crossterm::event::KeyEvent::new(
            KeyCode::F(2),
            ratatui::crossterm::event::KeyModifiers::NONE,
        )),
    ));
    assert!(matches!(change, Change::Save { create: true, .. }));
}

/// Defect 3: `/High` was a text search; severity and status are one-key facets asked of
/// the daemon (`?severity=`, `?status=`) and shown above the table.
#[test]
fn severity_and_status_are_facets_asked_of_the_daemon() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=5).map(alert).collect(),
        None,
    );
    let fx = update(&mut s, Action::Key(key_of('v')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(link.contains("severity=High"), "{link}");
    assert!(!link.contains("q="), "{link}");
    answer(&mut s, &fx, vec![alert(4)], None);
    let fx = update(&mut s, Action::Key(key_of('a')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(
        link.contains("severity=High") && link.contains("status=Active"),
        "{link}"
    );
    answer(&mut s, &fx, vec![alert(4)], None);
    assert_eq!(
        (s.list.severity, s.list.status),
        (Some("High"), Some("Active"))
    );
    // The text filter keeps the facets.
    update(&mut s, Action::Key(key_of('/')));
    let fx = typing(&mut s, "powershell\n");
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(
        link.contains("q=powershell") && link.contains("severity=High"),
        "{link}"
    );
    // Cycling past the last severity shows all again.
    for _ in 0..3 {
        update(&mut s, Action::Key(key_of('v')));
    }
    let fx = update(&mut s, Action::Key(key_of('v')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(!link.contains("severity="), "{link}");
    assert_eq!(s.list.severity, None);
    // Elsewhere the keys say where they work.
    let mut s = loaded("contoso", None, Resource::Contacts, vec![], None);
    let fx = update(&mut s, Action::Key(key_of('v')));
    assert!(cmds(&fx).is_empty());
    assert!(s.toast.as_ref().unwrap().text.contains("alert"));
}

/// Defect 7: inside tmux the copy was wrapped for passthrough (off by default in tmux)
/// and the toast said "copied" although nothing could have reached the clipboard.
#[test]
fn a_copy_inside_tmux_is_plain_osc52_and_claims_nothing() {
    use steward_tui::tui::export::Clipboard;
    use steward_tui::tui::update::Effect;
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=3).map(alert).collect(),
        None,
    );
    s.clipboard = Clipboard {
        in_tmux: true,
        passthrough: false,
    };
    let fx = update(&mut s, Action::Key(key_of('y')));
    let seq = fx
        .iter()
        .find_map(|e| match e {
            Effect::Terminal(t) => Some(t.clone()),
            _ => None,
        })
        .expect("an OSC 52 sequence");
    assert!(seq.starts_with("\x1b]52;c;"), "not plain OSC 52: {seq:?}");
    let toast = s.toast.as_ref().unwrap().text.clone();
    assert!(!toast.contains("copied"), "{toast}");
    assert!(toast.contains("set-clipboard on"), "{toast}");
    // Passthrough only when asked.
    s.clipboard.passthrough = true;
    let fx = update(&mut s, Action::Key(key_of('y')));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Terminal(t) if t.starts_with("\x1bPtmux;")))
    );
}

/// Defect 5: errors were cut at the screen's edge, named the field twice, and a JIT
/// initiate's real reason (no field named) only flashed in a toast.
#[test]
fn errors_name_the_field_once_and_a_reason_without_a_field_stays_in_the_form() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    let change = the_save(&edit_in_editor(&mut s, |v| {
        v["properties"]["emails"] = "nobody".into();
    }));
    let mut f = failure(400, "invalid contact", None);
    f.error.details = vec![ErrorDetail {
        code: "x".into(),
        message: "properties.emails: address 1 has no '@'".into(),
        target: Some("properties.emails".into()),
        details: vec![],
    }];
    update(
        &mut s,
        Action::Net(Msg::Written {
            change,
            result: Err(f),
        }),
    );
    let Some(Modal::PolicyEditor(form)) = &s.modal else {
        panic!("the edit was not kept");
    };
    assert_eq!(form.errors["properties.emails"], "address 1 has no '@'");
    assert!(form.text.text().contains("nobody"), "the edit is kept");
    let screen = crate::tui_snapshots::screen(&s, 60, 20);
    assert_eq!(
        screen
            .matches("properties.emails: properties.emails")
            .count(),
        0,
        "the field is named once:\n{screen}"
    );
    assert!(screen.contains("address 1 has no '@'"), "{screen}");

    // An initiate refused for a reason naming no field: the whole reason, wrapped.
    let policy = serde_json::json!({"name": "p1", "properties": {"virtualMachines": [
        {"id": "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
         "ports": [{"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "10.0.0.1", "maxRequestAccessDuration": "PT3H"}]}]}});
    let mut s = loaded("contoso", None, Resource::JitPolicies, vec![policy], None);
    update(&mut s, Action::Key(key_of('i')));
    let Some(Modal::Initiate(_)) = &s.modal else {
        panic!("no initiate form: {:?}", s.modal);
    };
    let why = "the request overlaps an active request for vm1 port 22 until 14:05; revoke that one first or wait until it ends";
    update(
        &mut s,
        Action::Net(Msg::Written {
            change: Change::Initiate {
                policy: "p1".into(),
                body: Value::Null,
            },
            result: Err(failure(409, why, None)),
        }),
    );
    let Some(Modal::Initiate(form)) = &s.modal else {
        panic!("the form closed");
    };
    assert!(form.errors[""].contains("revoke that one first"));
    let screen = crate::tui_snapshots::screen(&s, 80, 24).replace(['\n', '│'], " ");
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("or wait until it ends"), "{screen}");
}

/// Defect 2: `x` on a filtered view exported every record, showed a relative path and
/// could not be stopped. The dialog says what the file will hold and where, the request
/// carries the view's filters, and `esc` cancels a running export.
#[test]
fn export_takes_the_views_filters_shows_the_absolute_path_and_can_be_cancelled() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=5).map(alert).collect(),
        None,
    );
    update(&mut s, Action::Key(key_of('/')));
    let fx = typing(&mut s, "powershell\n");
    answer(&mut s, &fx, vec![alert(4)], None);
    let fx = update(&mut s, Action::Key(key_of('v')));
    answer(&mut s, &fx, vec![alert(4)], None);
    update(&mut s, Action::Key(key_of('x')));
    let Some(Modal::Export(form)) = &s.modal else {
        panic!("no export dialog: {:?}", s.modal);
    };
    assert!(form.scope.contains("`powershell`") && form.scope.contains("High"));
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    assert!(screen.contains("as shown"), "{screen}");
    let cwd = std::env::current_dir().unwrap().display().to_string();
    let first = &cwd[..cwd.len().min(40)];
    assert!(screen.contains(first), "no absolute path:\n{screen}");
    let fx = update(&mut s, Action::Key(code(KeyCode::Enter)));
    match cmds(&fx).as_slice() {
        [Request::Export { file, filters, .. }] => {
            assert!(file.is_absolute(), "{file:?}");
            assert!(filters.contains(&("q", "powershell".to_owned())));
            assert!(filters.contains(&("severity", "High".to_owned())));
        }
        other => panic!("wanted one export, got {other:?}"),
    }
    assert!(s.export.is_some());
    // A second `x` while it runs does not start another.
    assert!(cmds(&update(&mut s, Action::Key(key_of('x')))).is_empty());
    // esc cancels it; its late failure is not reported as a new error.
    let fx = update(&mut s, Action::Key(code(KeyCode::Esc)));
    assert_eq!(cmds(&fx), vec![Request::CancelExport]);
    assert!(s.export.is_none());
    assert!(s.toast.as_ref().unwrap().text.contains("cancelled"));
    update(
        &mut s,
        Action::Net(Msg::ExportFailed(Failure::transport("aborted"))),
    );
    assert!(s.toast.as_ref().unwrap().text.contains("cancelled"));
    // The filter is still on: esc again clears it.
    assert_eq!(s.list.filter, "powershell");

    // A kind the daemon does not filter says its export is the whole kind.
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    update(&mut s, Action::Key(key_of('/')));
    typing(&mut s, "alice\n");
    update(&mut s, Action::Key(key_of('x')));
    let Some(Modal::Export(form)) = &s.modal else {
        panic!("no export dialog");
    };
    assert!(form.filters.is_empty());
    assert!(form.scope.contains("every record") && form.scope.contains("loaded rows"));
}

/// Defect 4: `G` on 200k alerts walked every page for ~13 s and `g` meanwhile landed at
/// the end 12 s later. On alerts `G` asks the daemon for the other order (one page);
/// elsewhere the walk is stopped by the next key, and its answer dropped.
#[test]
fn g_on_alerts_asks_the_daemon_and_a_long_walk_stops_at_the_next_key() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=100).map(alert).collect(),
        Some("/v1/tenants/contoso/alerts?limit=100&cursor=c1"),
    );
    let fx = update(&mut s, Action::Key(key_of('G')));
    let (_, start, link, to_end) = pages_cmd(&fx);
    assert!(!to_end, "G must not walk the pages");
    assert_eq!(start, 0);
    assert!(link.contains("orderby=timeGeneratedUtc+asc"), "{link}");
    answer(
        &mut s,
        &fx,
        (1..=100).rev().map(alert).collect(),
        Some("/n"),
    );
    assert_eq!(s.list.order, 1, "oldest first");
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    assert!(screen.contains("by timeGeneratedUtc asc"), "{screen}");
    // The facets and the text filter keep the order.
    let fx = update(&mut s, Action::Key(key_of('v')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(
        link.contains("orderby=timeGeneratedUtc+asc") && link.contains("severity=High"),
        "{link}"
    );
    answer(&mut s, &fx, vec![alert(4)], Some("/n"));
    // G flips back to newest first.
    let fx = update(&mut s, Action::Key(key_of('G')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(!link.contains("orderby"), "{link}");

    // A kind walked to its end: the next key stops the walk.
    let c = |i: usize| contact(&format!("c-{i:03}"), "e");
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        (1..=100).map(c).collect(),
        Some("/v1/tenants/contoso/contacts?limit=100&cursor=c1"),
    );
    let walk = update(&mut s, Action::Key(key_of('G')));
    let (_, _, _, to_end) = pages_cmd(&walk);
    assert!(to_end);
    let fx = update(&mut s, Action::Key(key_of('g')));
    assert!(cmds(&fx).contains(&Request::CancelPages), "{fx:?}");
    assert!(s.list.loading.is_none());
    assert_eq!(selected_id_of(&s), "c-001");
    // The walk's late answer changes nothing.
    answer(&mut s, &walk, (201..=300).map(c).collect(), None);
    assert_eq!(selected_id_of(&s), "c-001");
    assert_eq!(s.list.rows().count(), 100);
}

fn selected_id_of(s: &steward_tui::tui::state::State) -> String {
    s.tab.record_id(s.selected().expect("a selected record"))
}

/// Defect 6: details were raw JSON cut at the edge, PgDn scrolled into blank space, `G`
/// did nothing, and help was 76 columns even at 200×50, cutting its own lines.
#[test]
fn details_wrap_search_and_stop_at_the_end_and_help_fits_the_terminal() {
    use steward_tui::tui::detail::DetailView;
    let mut a = alert(1);
    a["properties"]["description"] = Value::String(format!(
        "{} the end of a long description",
        "word ".repeat(40)
    ));
    for i in 0..40 {
        a["properties"][format!("extra{i:02}")] = Value::String(format!("value {i}"));
    }
    let mut s = loaded("contoso", None, Resource::Alerts, vec![a], None);
    update(&mut s, Action::Key(code(KeyCode::Enter)));
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    let max = |s: &steward_tui::tui::state::State| match &s.modal {
        Some(Modal::Detail(d)) => (d.scroll, d.max_scroll(s.size)),
        other => panic!("no detail view: {other:?}"),
    };
    // Wrapped: the description's end is on screen although the line is 240 columns.
    assert!(screen.contains("word word"), "{screen}");
    let _ = flat;
    // G goes to the last line and no further; PgDn stops there too.
    update(&mut s, Action::Key(key_of('G')));
    let (scroll, end) = max(&s);
    assert!(end > 0);
    assert_eq!(scroll, end);
    update(&mut s, Action::Key(code(KeyCode::PageDown)));
    assert_eq!(max(&s).0, end, "scrolled past the end");
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    assert!(
        screen.contains('}'),
        "the last line is on screen:\n{screen}"
    );
    // Search: / extra07 scrolls to it; n finds again (wrapping around).
    update(&mut s, Action::Key(key_of('g')));
    update(&mut s, Action::Key(key_of('/')));
    typing(&mut s, "EXTRA07\n");
    let Some(Modal::Detail(d)) = &s.modal else {
        panic!()
    };
    assert!(d.scroll > 0);
    let line = d.text.lines().nth(usize::from(d.scroll));
    let _ = line;
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    let top_row = screen.lines().nth(3).unwrap_or("");
    assert!(top_row.contains("extra07"), "{screen}");
    // w cuts instead of wrapping, and the bound follows.
    update(&mut s, Action::Key(key_of('w')));
    let Some(Modal::Detail(d)) = &s.modal else {
        panic!()
    };
    assert!(!d.wrap);
    assert!(d.scroll <= d.max_scroll(s.size));
    let _ = DetailView::new(String::new(), String::new());

    // Help at 200×50 is wider than 76 columns and cuts nothing.
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
    update(&mut s, Action::Resize(200, 50));
    update(&mut s, Action::Key(key_of('?')));
    let screen = crate::tui_snapshots::screen(&s, 200, 50);
    assert!(
        screen.contains(":export csv|json|ndjson :verify"),
        "the help's last line is cut:\n{screen}"
    );
    // At 80×24 it scrolls to its end and stops there.
    update(&mut s, Action::Resize(80, 24));
    for _ in 0..50 {
        update(&mut s, Action::Key(key_of('j')));
    }
    let Some(Modal::Help { scroll }) = s.modal else {
        panic!()
    };
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    assert!(screen.contains(":q"), "{screen}");
    assert!(scroll > 0 && scroll < 50, "{scroll}");
}

/// Defect 9: sorting three rows showed "3 of 3" with two hidden above the window, and
/// every change event during a 200k ingest was a reload (56 CPU-seconds).
#[test]
fn sorting_hides_no_rows_and_change_events_are_coalesced() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("b", "e1"), contact("c", "e2"), contact("a", "e3")],
        None,
    );
    // b is selected; the daemon sorts (name desc) and b moves to the second row: the
    // window must not follow.
    let fx = update(&mut s, Action::Key(key_of('s')));
    let (_, _, link, _) = pages_cmd(&fx);
    assert!(link.contains("orderby=name+desc"), "{link}");
    answer(
        &mut s,
        &fx,
        vec![contact("c", "e2"), contact("b", "e1"), contact("a", "e3")],
        None,
    );
    assert_eq!(s.list.offset, 0, "rows hidden above a window with room");
    let screen = crate::tui_snapshots::screen(&s, 80, 24);
    for name in ["│  c ", "│> b ", "│  a "] {
        assert!(screen.contains(name), "{name} not shown:\n{screen}");
    }
    assert!(!screen.contains("loaded rows"), "{screen}");
    // A thousand events: no reload until the tick, then exactly one.
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
    let mut fx = Vec::new();
    for i in 0..1000 {
        fx.extend(update(
            &mut s,
            Action::Net(Msg::Event(steward::wire::Event {
                seq: i,
                at: "2026-11-20T10:00:00Z".into(),
                tenant: "contoso".into(),
                kind: "alerts".into(),
                name: format!("n-{i}"),
                action: "ingested".into(),
            })),
        ));
    }
    assert!(cmds(&fx).is_empty(), "{} requests", cmds(&fx).len());
    let fx = update(&mut s, Action::Tick);
    assert_eq!(cmds(&fx).len(), 1);
    // More events while that reload runs wait for it and the next tick.
    update(
        &mut s,
        Action::Net(Msg::Event(steward::wire::Event {
            seq: 2000,
            at: "2026-11-20T10:00:00Z".into(),
            tenant: "contoso".into(),
            kind: "alerts".into(),
            name: "late".into(),
            action: "ingested".into(),
        })),
    );
    assert!(
        update(&mut s, Action::Tick).is_empty(),
        "a reload is in flight"
    );
    let after = answer(&mut s, &fx, vec![alert(2), alert(1)], None);
    assert!(cmds(&after).is_empty(), "the answer reloaded at once");
    assert_eq!(cmds(&update(&mut s, Action::Tick)).len(), 1);
}

/// Defect 9: columns were fixed widths; now they fit what they show and the terminal.
#[test]
fn columns_fit_their_content_and_the_terminal() {
    let long = "a-very-long-contact-name-that-used-to-be-cut";
    let s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact(long, "e1")],
        None,
    );
    let wide = crate::tui_snapshots::screen(&s, 200, 30);
    assert!(wide.contains(long), "{wide}");
    assert!(wide.contains("alice@contoso.com;bob@contoso.com"), "{wide}");
    let narrow = crate::tui_snapshots::screen(&s, 60, 20);
    assert!(narrow.contains("(214)275-4038"), "{narrow}");
}

/// The DSR tab was read-only in the TUI (`n` said "read-only"): a tenant-admin opens a
/// request, confirms one (asked first), rejects or extends with a reason, downloads a
/// bundle; a reader sees none of it.
#[test]
fn dsr_actions_are_keys_gated_by_dsr_manage() {
    let rows = vec![
        dsr(
            "dsr-1",
            "erase",
            "pending_confirmation",
            "2026-12-01T09:00:00Z",
        ),
        dsr("dsr-2", "export", "completed", "2026-12-20T09:00:00Z"),
    ];
    let mut s = loaded("contoso", None, Resource::Dsr, rows.clone(), None);
    // n: the form, which needs an identifier before anything is sent.
    update(&mut s, Action::Key(key_of('n')));
    assert!(matches!(s.modal, Some(Modal::DsrForm(_))), "{:?}", s.modal);
    assert!(cmds(&update(&mut s, Action::Key(code(KeyCode::Enter)))).is_empty());
    typing(&mut s, "alice@contoso.com");
    match cmds(&update(&mut s, Action::Key(code(KeyCode::Enter)))).as_slice() {
        [Request::Change(Change::DsrOpen { body })] => {
            assert_eq!(body["subject"]["email"], "alice@contoso.com");
            assert_eq!(body["type"], "export");
        }
        other => panic!("{other:?}"),
    }
    s.modal = None;
    // C on an erasure: asked first, focus on Cancel, the question says it erases.
    update(&mut s, Action::Key(key_of('C')));
    match &s.modal {
        Some(Modal::Confirm {
            intent,
            on_confirm: false,
        }) => {
            assert!(intent.question().contains("cannot be undone"));
        }
        other => panic!("{other:?}"),
    }
    assert!(cmds(&update(&mut s, Action::Key(code(KeyCode::Enter)))).is_empty());
    update(&mut s, Action::Key(key_of('C')));
    update(&mut s, Action::Key(code(KeyCode::Right)));
    assert_eq!(
        cmds(&update(&mut s, Action::Key(code(KeyCode::Enter)))),
        vec![Request::Change(Change::DsrConfirm { id: "dsr-1".into() })]
    );
    // X: a reason is required.
    update(&mut s, Action::Key(key_of('X')));
    assert!(cmds(&update(&mut s, Action::Key(code(KeyCode::Enter)))).is_empty());
    let fx = typing(&mut s, "duplicate\n");
    assert!(matches!(
        cmds(&fx).as_slice(),
        [Request::Change(Change::DsrReason { id, reason, .. })] if id == "dsr-1" && reason == "duplicate"
    ));
    // b on an erasure: no bundle; on the export: a path, then the download.
    update(&mut s, Action::Key(key_of('b')));
    assert!(s.modal.is_none());
    update(&mut s, Action::Key(key_of('j')));
    update(&mut s, Action::Key(key_of('b')));
    let fx = update(&mut s, Action::Key(code(KeyCode::Enter)));
    match cmds(&fx).as_slice() {
        [Request::Bundle { id, file }] => {
            assert_eq!(id, "dsr-2");
            assert!(file.is_absolute());
        }
        other => panic!("{other:?}"),
    }
    // A reader: the keys are hidden and pressing them sends nothing.
    let mut s = loaded("contoso", Some("reader"), Resource::Alerts, vec![], None);
    update(&mut s, Action::Key(key_of(':')));
    typing(&mut s, "dsr\n");
    for k in ['n', 'C', 'X', 'E', 'b'] {
        assert!(
            cmds(&update(&mut s, Action::Key(key_of(k)))).is_empty(),
            "{k}"
        );
        assert!(s.modal.is_none(), "{k} opened {:?}", s.modal);
    }
}

/// `:verify` shows the audit chain's verdict and its head; `:subject` searches a person
/// across kinds (the CLI could, the TUI could not).
#[test]
fn verify_shows_the_head_and_subject_guesses_the_identifier() {
    use steward_tui::tui::update::session::subject_query;
    let mut s = loaded("contoso", None, Resource::Alerts, vec![], None);
    let fx = typing(&mut s, ":verify\n");
    assert_eq!(cmds(&fx), vec![Request::Verify]);
    update(
        &mut s,
        Action::Net(Msg::Verified(Ok(steward::wire::VerifyReport {
            ok: true,
            records: 42,
            head: steward::wire::ChainHead {
                seq: 42,
                hash: "ab12cd".into(),
            },
            anchor: None,
            first_bad_seq: None,
        }))),
    );
    let Some(Modal::Detail(d)) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert!(d.title.contains("intact"));
    assert!(d.text.contains("seq 42") && d.text.contains("ab12cd"));
    assert!(s.chain.as_ref().is_some_and(|c| c.ok));
    s.modal = None;
    let fx = typing(&mut s, ":subject alice@contoso.com\n");
    assert_eq!(
        cmds(&fx),
        vec![Request::Subject {
            key: "email",
            value: "alice@contoso.com".into()
        }]
    );
    assert_eq!(subject_query("203.0.113.5", &[]).unwrap().0, "ip");
    assert_eq!(
        subject_query("+1", &["555", "867", "5309"]).unwrap().0,
        "phone"
    );
    assert_eq!(
        subject_query("user", &["bob"]).unwrap(),
        ("user", "bob".into())
    );
    assert!(
        subject_query("bob", &[])
            .unwrap_err()
            .contains(":subject user bob")
    );
    // A reader may verify but not search people.
    let mut s = loaded("fabrikam", None, Resource::Alerts, vec![], None);
    assert!(cmds(&typing(&mut s, ":subject alice@contoso.com\n")).is_empty());
    assert!(s.toast.as_ref().unwrap().text.contains("dsr.manage"));
}

/// The overview opens first when the tenant has alerts (unless the operator already
/// pressed a key), `:overview 90` asks for 90 days, `esc` goes to the list, `r` reloads.
#[test]
fn the_overview_is_first_when_there_are_alerts() {
    use steward_tui::tui::overview::AlertOverview;
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
    let mut o = overview_fixture();
    s.touched = false;
    update(&mut s, Action::Net(Msg::Overview(Box::new(o.clone()))));
    assert!(s.on_overview);
    update(&mut s, Action::Key(code(KeyCode::Esc)));
    assert!(!s.on_overview);
    let fx = typing(&mut s, ":overview 90\n");
    assert_eq!(
        cmds(&fx),
        vec![Request::Overview {
            days: 90,
            alerts: true
        }]
    );
    assert!(s.on_overview);
    assert!(cmds(&typing(&mut s, ":overview 7\n")).is_empty());
    let fx = update(&mut s, Action::Key(key_of('r')));
    assert!(matches!(cmds(&fx).as_slice(), [Request::Overview { .. }]));
    // An export from an oldest-first view carries the filters, not the order (the
    // daemon's export has no orderby and would refuse it).
    update(&mut s, Action::Key(code(KeyCode::Esc)));
    let fx = update(&mut s, Action::Key(key_of('s')));
    answer(&mut s, &fx, vec![alert(1)], None);
    assert_eq!(s.list.order, 1, "oldest first");
    update(&mut s, Action::Key(key_of('x')));
    let Some(Modal::Export(form)) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert!(
        form.filters.iter().all(|(k, _)| *k != "orderby"),
        "{:?}",
        form.filters
    );
    s.modal = None;
    // No alerts, or a key already pressed: the list stays.
    let mut s = loaded("contoso", None, Resource::Alerts, vec![], None);
    s.touched = false;
    o.alerts = Ok(AlertOverview::default());
    update(&mut s, Action::Net(Msg::Overview(Box::new(o.clone()))));
    assert!(!s.on_overview);
    o = overview_fixture();
    s.touched = true;
    update(&mut s, Action::Net(Msg::Overview(Box::new(o))));
    assert!(!s.on_overview);
    // The session asks for it on opening.
    let mut st = steward_tui::tui::state::State::new(
        steward_tui::tui::keymap::Keymap::default(),
        Some("contoso".into()),
        None,
    );
    let fx = update(
        &mut st,
        Action::Net(Msg::Session(Ok(("alice".into(), tenants())))),
    );
    assert!(
        cmds(&fx)
            .iter()
            .any(|c| matches!(c, Request::Overview { days: 30, .. }))
    );
    // `:alerts` typed before the daemon answered wins over the overview.
    let mut st = steward_tui::tui::state::State::new(
        steward_tui::tui::keymap::Keymap::default(),
        Some("contoso".into()),
        None,
    );
    typing(&mut st, ":alerts\n");
    update(
        &mut st,
        Action::Net(Msg::Session(Ok(("alice".into(), tenants())))),
    );
    update(
        &mut st,
        Action::Net(Msg::Overview(Box::new(overview_fixture()))),
    );
    assert!(!st.on_overview, "the overview took over the tab asked for");
    assert_eq!(st.tab, Resource::Alerts);
}

/// Gaps against k9s/lazygit: ctrl-c quits from anywhere, 1–9 jump to tabs, the filter
/// applies as it is typed (esc puts the old one back), `:` completes and remembers,
/// `c` copies one field.
#[test]
fn ctrl_c_digits_live_filter_completion_history_and_field_copy() {
    use ratatui::crossterm::event::{KeyEvent, KeyModifiers};
    use steward_tui::tui::update::Effect;
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let mut s = loaded(
        "contoso",
        None,
        Resource::Alerts,
        (1..=3).map(alert).collect(),
        None,
    );
    update(&mut s, Action::Key(key_of('?')));
    assert_eq!(update(&mut s, Action::Key(ctrl_c)), vec![Effect::Quit]);
    s.modal = None;
    // 1 is the first tab shown (Contacts), 4 Alerts.
    let fx = update(&mut s, Action::Key(key_of('1')));
    assert_eq!(s.tab, Resource::Contacts);
    answer(
        &mut s,
        &fx,
        vec![contact("default", "e1"), contact("ops", "e2")],
        None,
    );
    // Live filter on a client-side kind, and esc restores.
    update(&mut s, Action::Key(key_of('/')));
    typing(&mut s, "ops");
    assert_eq!(s.visible().len(), 1, "not filtered while typing");
    update(&mut s, Action::Key(code(KeyCode::Esc)));
    assert_eq!(s.list.filter, "");
    assert_eq!(s.visible().len(), 2);
    // On alerts, each key asks the daemon (the backend drops the older fetch).
    let fx = update(&mut s, Action::Key(key_of('4')));
    assert_eq!(s.tab, Resource::Alerts);
    answer(&mut s, &fx, (1..=3).map(alert).collect(), None);
    update(&mut s, Action::Key(key_of('/')));
    let fx = typing(&mut s, "po");
    let links: Vec<String> = cmds(&fx)
        .into_iter()
        .filter_map(|c| match c {
            Request::Pages { link, .. } => Some(link),
            _ => None,
        })
        .collect();
    assert_eq!(links.len(), 2);
    assert!(links[1].contains("q=po"), "{links:?}");
    update(&mut s, Action::Key(code(KeyCode::Enter)));
    assert_eq!(s.list.filter, "po");
    // : completes a command and a tenant, and ↑ brings the last line back.
    update(&mut s, Action::Key(key_of(':')));
    typing(&mut s, "ten");
    update(&mut s, Action::Key(code(KeyCode::Tab)));
    typing(&mut s, "fab");
    update(&mut s, Action::Key(code(KeyCode::Tab)));
    let Some(Modal::CommandLine(input)) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert_eq!(input.value(), "tenant fabrikam ");
    update(&mut s, Action::Key(code(KeyCode::Esc)));
    typing(&mut s, ":verify\n");
    update(&mut s, Action::Key(key_of(':')));
    update(&mut s, Action::Key(code(KeyCode::Up)));
    let Some(Modal::CommandLine(input)) = &s.modal else {
        panic!()
    };
    assert_eq!(input.value(), "verify");
    s.modal = None;
    // c: pick a field, copy its value alone.
    let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(4)], None);
    update(&mut s, Action::Key(key_of('c')));
    let Some(Modal::Picker { items, .. }) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    let at = items
        .iter()
        .position(|i| i == "properties.severity = High")
        .unwrap_or_else(|| panic!("{items:?}"));
    for _ in 0..at {
        update(&mut s, Action::Key(key_of('j')));
    }
    let fx = update(&mut s, Action::Key(code(KeyCode::Enter)));
    match fx.as_slice() {
        [Effect::Terminal(seq)] => assert_eq!(seq, "\x1b]52;c;SGlnaA==\x07"),
        other => panic!("{other:?}"),
    }
}
