//! Shared fixtures of the TUI tests: tenants as `/v1/tenants` answers them, alerts and
//! contacts as the daemon lists them, and a state driven through `update` to a loaded
//! tab — the same path the running TUI takes, without a terminal or a socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use steward::permissions::{Permission, PermissionSet, Profiles};
use steward::resource::Resource;
use steward::wire::TenantInfo;
use steward_tui::tui::keymap::Keymap;
use steward_tui::tui::msg::{Msg, Request};
use steward_tui::tui::state::{Conn, State};
use steward_tui::tui::update::{Action, Effect, update};

/// contoso as tenant-admin, fabrikam as reader (as the contract checks configure them).
pub fn tenants() -> Vec<TenantInfo> {
    let p = Profiles::builtin();
    vec![
        TenantInfo {
            id: "contoso".into(),
            display_name: "Contoso Ltd".into(),
            profiles: vec!["tenant-admin".into()],
            permissions: p.get("tenant-admin").unwrap(),
            actable_profiles: vec![
                "reader".into(),
                "contributor".into(),
                "owner".into(),
                "account-admin".into(),
                "tenant-admin".into(),
            ],
        },
        TenantInfo {
            id: "fabrikam".into(),
            display_name: "Fabrikam Inc".into(),
            profiles: vec!["reader".into()],
            permissions: p.get("reader").unwrap(),
            actable_profiles: vec!["reader".into()],
        },
    ]
}

/// The reader's permissions (for assertions).
pub fn reader() -> PermissionSet {
    Profiles::builtin().get("reader").unwrap()
}

/// Alert number `i` as the daemon lists it.
pub fn alert(i: usize) -> Value {
    let sev = match i % 4 {
        0 => "High",
        1 => "Medium",
        2 => "Low",
        _ => "Informational",
    };
    json!({
        "id": format!("/subscriptions/contoso/providers/Microsoft.Security/alerts/a-{i:03}"),
        "name": format!("a-{i:03}"),
        "type": "Microsoft.Security/Locations/alerts",
        "properties": {
            "alertDisplayName": format!("Alert number {i:03}"),
            "severity": sev,
            "status": "Active",
            "timeGeneratedUtc": "2026-11-20T10:00:00Z"
        }
    })
}

/// A contact as the daemon lists it.
pub fn contact(name: &str, etag: &str) -> Value {
    json!({
        "id": format!("/subscriptions/contoso/providers/Microsoft.Security/securityContacts/{name}"),
        "name": name,
        "type": "Microsoft.Security/securityContacts",
        "etag": etag,
        "properties": {
            "emails": "alice@contoso.com;bob@contoso.com",
            "phone": "(214)275-4038",
            "isEnabled": true,
            "notificationsByRole": {"state": "On", "roles": ["Owner"]},
            "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "High"}]
        }
    })
}

/// The backend commands among effects.
pub fn cmds(fx: &[Effect]) -> Vec<Request> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some((**c).clone()),
            _ => None,
        })
        .collect()
}

/// The last `Request::Pages` among effects (the one in flight: a filter typed key by
/// key sends one per key, and only the newest answer is applied).
pub fn pages_cmd(fx: &[Effect]) -> (u64, usize, String, bool) {
    cmds(fx)
        .into_iter()
        .filter_map(|c| match c {
            Request::Pages {
                generation,
                start_index,
                link,
                to_end,
                ..
            } => Some((generation, start_index, link, to_end)),
            _ => None,
        })
        .next_back()
        .unwrap_or_else(|| panic!("no page fetch in {fx:?}"))
}

/// Answers the page fetch among `fx` with one page.
pub fn answer(s: &mut State, fx: &[Effect], page: Vec<Value>, next: Option<&str>) -> Vec<Effect> {
    let (generation, start_index, link, _) = pages_cmd(fx);
    update(
        s,
        Action::Net(Msg::Pages {
            generation,
            start_index,
            links: vec![link],
            pages: vec![page],
            next: next.map(str::to_owned),
        }),
    )
}

/// A state in `tenant` (acting under `role`), session loaded, on `tab`, with the first
/// page answered by `page` (and `next` as its nextLink).
pub fn loaded(
    tenant: &str,
    role: Option<&str>,
    tab: Resource,
    page: Vec<Value>,
    next: Option<&str>,
) -> State {
    let mut s = State::new(
        Keymap::default(),
        Some(tenant.into()),
        role.map(str::to_owned),
    );
    s.theme.color = false;
    s.page_size = 100;
    update(&mut s, Action::Resize(80, 24));
    update(&mut s, Action::Net(Msg::Conn(Conn::Connected)));
    let fx = update(
        &mut s,
        Action::Net(Msg::Session(Ok(("alice".into(), tenants())))),
    );
    let fx = if s.tab == tab {
        fx
    } else {
        answer(&mut s, &fx, Vec::new(), None);
        steward_tui::tui::update::command(&mut s, steward_tui::tui::keymap::Command::CommandLine);
        for c in format!("{}\n", tab.segment()).chars() {
            let fx = update(&mut s, Action::Key(key_of(c)));
            if c == '\n' {
                return finish(s, fx, page, next);
            }
        }
        unreachable!()
    };
    finish(s, fx, page, next)
}

fn finish(mut s: State, fx: Vec<Effect>, page: Vec<Value>, next: Option<&str>) -> State {
    answer(&mut s, &fx, page, next);
    s.toast = None;
    s
}

/// A key event for a character (`\n` is Enter, `\x1b` is Esc).
pub fn key_of(c: char) -> ratatui::crossterm::event::KeyEvent {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let code = match c {
        '\n' => KeyCode::Enter,
        '\x1b' => KeyCode::Esc,
        '\t' => KeyCode::Tab,
        c => KeyCode::Char(c),
    };
    let mods = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    KeyEvent::new(code, mods)
}

/// A special key.
pub fn code(code: ratatui::crossterm::event::KeyCode) -> ratatui::crossterm::event::KeyEvent {
    ratatui::crossterm::event::KeyEvent::new(code, ratatui::crossterm::event::KeyModifiers::NONE)
}

/// Types `text` (one key per character) and returns the effects of every key.
pub fn typing(s: &mut State, text: &str) -> Vec<Effect> {
    let mut all = Vec::new();
    for c in text.chars() {
        all.extend(update(s, Action::Key(key_of(c))));
    }
    all
}

/// Whether the acting permissions hold `p`.
pub fn can(s: &State, p: Permission) -> bool {
    s.session.permissions().contains(p)
}

/// A data-subject request as the daemon lists it.
pub fn dsr(id: &str, kind: &str, status: &str, due: &str) -> Value {
    json!({
        "id": id,
        "type": kind,
        "status": status,
        "subject": {"email": "hmac:…"},
        "openedAt": "2026-11-01T09:00:00Z",
        "dueAt": due
    })
}

/// The overview's data as the backend answers it: 30 days of alerts rising and falling,
/// no JIT access now, an overdue and a later data-subject request, an intact chain.
pub fn overview_fixture() -> steward_tui::tui::overview::Overview {
    use steward_tui::tui::overview::{AlertOverview, Day, Overview, TypeCount};
    let per_day = (0..30u64)
        .map(|i| Day {
            date: format!("2026-11-{:02}", (i % 30) + 1),
            high: i % 5,
            medium: (i * 7) % 11,
            low: (i * 3) % 13,
            other: i % 3,
        })
        .collect::<Vec<_>>();
    let total = per_day.iter().map(Day::total).sum();
    Overview {
        days: 30,
        alerts: Ok(AlertOverview {
            per_day,
            total,
            top_types: vec![
                TypeCount {
                    kind: "VM_SuspiciousPowerShell".into(),
                    count: 412,
                },
                TypeCount {
                    kind: "SQL.VM_BruteForce".into(),
                    count: 230,
                },
                TypeCount {
                    kind: "Storage.Blob_AnonymousAccess".into(),
                    count: 95,
                },
            ],
            types_from: 1000,
        }),
        jit: Ok(vec![]),
        dsr: Ok(vec![
            dsr(
                "dsr-0001",
                "erase",
                "pending_confirmation",
                "2020-01-01T09:00:00Z",
            ),
            dsr("dsr-0002", "export", "in_progress", "2099-01-01T09:00:00Z"),
            dsr("dsr-0003", "export", "completed", "2020-02-01T09:00:00Z"),
        ]),
        chain: Ok(steward::wire::VerifyReport {
            ok: true,
            records: 1234,
            head: steward::wire::ChainHead {
                seq: 1234,
                hash: "9f2c".into(),
            },
            anchor: None,
            first_bad_seq: None,
        }),
    }
}

/// `e` on the selected record, then the editor's answer: its JSON changed by `change`.
/// Returns the effects of the answer (the save, when the edit is sent).
pub fn edit_in_editor(s: &mut State, change: impl FnOnce(&mut Value)) -> Vec<Effect> {
    let fx = update(s, Action::Key(key_of('e')));
    let job = match fx.as_slice() {
        [Effect::Editor(job)] => (**job).clone(),
        other => panic!("e did not open the editor: {other:?}"),
    };
    let mut v: Value = serde_json::from_str(&job.text).unwrap();
    change(&mut v);
    let text = serde_json::to_string_pretty(&v).unwrap();
    update(
        s,
        Action::Edited {
            job,
            result: Ok(text),
        },
    )
}
