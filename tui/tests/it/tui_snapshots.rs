//! Snapshots of the main screens at 80×24 (and the too-small message at 50×12), drawn
//! with ratatui's `TestBackend` from states built through `update`. Review changes with
//! `INSTA_UPDATE=always cargo test -p steward-tui --test it tui_snapshots::` and a diff of
//! `tests/snapshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::tui_fixtures::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use steward::resource::Resource;
use steward_tui::tui::draw::draw;
use steward_tui::tui::state::State;
use steward_tui::tui::update::{Action, update};

pub fn screen(s: &State, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, s)).unwrap();
    t.backend().to_string()
}

fn alerts_as(tenant: &str) -> State {
    loaded(
        tenant,
        None,
        Resource::Alerts,
        (1..=40).map(alert).collect(),
        Some("/next"),
    )
}

#[test]
fn alerts_as_tenant_admin() {
    let s = alerts_as("contoso");
    let out = screen(&s, 80, 24);
    assert!(out.contains("[RW]"));
    assert!(
        !out.contains("d delete"),
        "alerts are read-only for every profile"
    );
    insta::assert_snapshot!("alerts_tenant_admin", out);
}

#[test]
fn alerts_as_reader() {
    let s = alerts_as("fabrikam");
    let out = screen(&s, 80, 24);
    assert!(out.contains("[RO]"));
    assert!(!out.contains("d delete"));
    assert!(!out.contains("x export"), "a reader lacks alerts.export");
    insta::assert_snapshot!("alerts_reader", out);
}

#[test]
fn contacts_as_tenant_admin_shows_the_write_keys() {
    let s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    let out = screen(&s, 80, 24);
    assert!(out.contains("d delete") && out.contains("e edit"));
    insta::assert_snapshot!("contacts_tenant_admin", out);
}

#[test]
fn help_as_reader_lists_what_the_profile_lacks() {
    let mut s = alerts_as("fabrikam");
    update(&mut s, Action::Key(key_of('?')));
    let out = screen(&s, 80, 24);
    assert!(out.contains("export to a file"));
    assert!(out.contains("needs contacts.write or jit.write"));
    insta::assert_snapshot!("help_reader", out);
}

#[test]
fn delete_confirmation_names_the_record() {
    let mut s = loaded(
        "contoso",
        None,
        Resource::Contacts,
        vec![contact("default", "e1")],
        None,
    );
    update(&mut s, Action::Key(key_of('d')));
    let out = screen(&s, 80, 24);
    assert!(out.contains("Delete security contact `default`?"));
    assert!(out.contains("> Cancel <"));
    insta::assert_snapshot!("delete_confirmation", out);
}

#[test]
fn too_small_says_the_size_needed() {
    let s = alerts_as("contoso");
    let out = screen(&s, 50, 12);
    assert!(out.contains("60×15"));
    insta::assert_snapshot!("too_small", out);
}

/// The first frame, before any answer from the daemon, already shows the tenant asked
/// for and the whole tab bar (a check once saw the tenant but not yet the tabs).
#[test]
fn first_frame_shows_every_tab_before_the_daemon_answers() {
    let keymap = steward_tui::tui::keymap::Keymap::default();
    let mut s = State::new(keymap, Some("contoso".into()), None);
    update(&mut s, Action::Resize(80, 24));
    let out = screen(&s, 80, 24);
    assert!(out.contains("contoso"), "{out}");
    for tab in [
        "Contacts",
        "JIT policies",
        "JIT requests",
        "Alerts",
        "Audit",
    ] {
        assert!(
            out.contains(tab),
            "no `{tab}` tab in the first frame:\n{out}"
        );
    }
}

/// A screen with its styles: the text, then one line per styled run (`row col..col
/// fg/bg/modifiers`), so a theme's snapshot shows what it colours and how.
pub fn styled_screen(s: &State, w: u16, h: u16) -> String {
    use ratatui::style::{Color, Modifier};
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, s)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = t.backend().to_string();
    out.push_str("--- styles ---\n");
    for y in 0..h {
        let mut run: Option<(u16, String)> = None;
        let flush = |run: &mut Option<(u16, String)>, end: u16, out: &mut String| {
            if let Some((start, style)) = run.take() {
                out.push_str(&format!("{y:>2} {start:>2}..{end:<2} {style}\n"));
            }
        };
        for x in 0..w {
            let c = &buf[(x, y)];
            let mut parts = Vec::new();
            if c.fg != Color::Reset {
                parts.push(format!("fg={:?}", c.fg));
            }
            if c.bg != Color::Reset {
                parts.push(format!("bg={:?}", c.bg));
            }
            if c.modifier != Modifier::empty() {
                parts.push(format!("{:?}", c.modifier));
            }
            let style = parts.join(" ");
            match &run {
                Some((_, cur)) if *cur == style => {}
                _ => {
                    flush(&mut run, x, &mut out);
                    if !style.is_empty() {
                        run = Some((x, style));
                    }
                }
            }
        }
        flush(&mut run, w, &mut out);
    }
    out
}

/// The themes every screen is snapshotted in: (name, STEWARD_THEME, NO_COLOR).
pub const THEMES: [(&str, Option<&str>, bool); 3] = [
    ("dark", None, false),
    ("light", Some("light"), false),
    ("mono", None, true),
];

/// The DSR tab as tenant-admin: pending, running and overdue requests, the action keys
/// in the footer; in every theme.
#[test]
fn dsr_screen_in_every_theme() {
    for (name, theme, no_color) in THEMES {
        let mut s = loaded(
            "contoso",
            None,
            Resource::Dsr,
            vec![
                dsr(
                    "dsr-0001",
                    "export",
                    "pending_confirmation",
                    "2026-12-01T09:00:00Z",
                ),
                dsr("dsr-0002", "erase", "in_progress", "2099-01-01T09:00:00Z"),
                dsr("dsr-0003", "export", "completed", "2026-01-20T09:00:00Z"),
                dsr("dsr-0004", "erase", "in_progress", "2026-06-01T09:00:00Z"),
            ],
            None,
        );
        s.theme = steward_tui::tui::theme::Theme::named(theme, no_color);
        let out = screen(&s, 80, 24);
        assert!(
            out.contains("dsr-0001") && out.contains("C confirm"),
            "{out}"
        );
        // Overdue (open, past its deadline) reads in words too; a request not yet due
        // and a completed one past its date are not overdue.
        let line = |id: &str| {
            out.lines()
                .find(|l| l.contains(id))
                .unwrap_or("")
                .to_owned()
        };
        assert!(line("dsr-0001").contains("OVERDUE"), "{out}");
        assert!(!line("dsr-0002").contains("OVERDUE"), "{out}");
        assert!(!line("dsr-0003").contains("OVERDUE"), "{out}");
        assert!(line("dsr-0004").contains("OVERDUE"), "{out}");
        insta::assert_snapshot!(format!("dsr_{name}"), styled_screen(&s, 80, 24));
        update(&mut s, Action::Key(key_of('C')));
        let out = screen(&s, 80, 24);
        assert!(out.contains("> Cancel <"), "{out}");
        insta::assert_snapshot!(format!("dsr_confirm_{name}"), styled_screen(&s, 80, 24));
    }
}

/// The overview at 80×24 in every theme: charts, top types, DSR due dates (the overdue
/// one marked in words too), the chain.
#[test]
fn overview_in_every_theme() {
    for (name, theme, no_color) in THEMES {
        let mut s = loaded("contoso", None, Resource::Alerts, vec![alert(1)], None);
        s.touched = false;
        update(
            &mut s,
            Action::Net(steward_tui::tui::msg::Msg::Overview(Box::new(
                overview_fixture(),
            ))),
        );
        assert!(
            s.on_overview,
            "the overview is the first screen with alerts"
        );
        s.theme = steward_tui::tui::theme::Theme::named(theme, no_color);
        let out = screen(&s, 80, 24);
        for want in [
            "Alerts per day",
            "High",
            "VM_SuspiciousPowerShell",
            "OVERDUE",
            "dsr-0001",
            "intact",
        ] {
            assert!(out.contains(want), "{name}: no {want}:\n{out}");
        }
        assert!(!out.contains("dsr-0003"), "a completed request is not due");
        insta::assert_snapshot!(format!("overview_{name}"), styled_screen(&s, 80, 24));
    }
}
