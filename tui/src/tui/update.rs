//! `update(&mut State, Action) -> Vec<Effect>`: every decision of the TUI.
//!
//! Keys become [`Command`]s through the keymap (or edits of the open form), backend
//! answers arrive as [`Msg`]s, and the only way out is the returned [`Effect`]s: a
//! [`Cmd`] for the backend task, bytes for the terminal (OSC 52), or quit. Nothing
//! here touches the terminal or the network, so all of it is tested without either.
//! Permission gating lives here too ([`disabled`]): an action the acting profile lacks
//! is answered with a toast and never becomes a `Cmd`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::Value;
use steward::permissions::Permission;
use tui_input::Input;

use super::export::{default_export_path, osc52};
use super::form::{ContactForm, FormOutcome, InitiateForm, TextArea, edit_input};
use super::keymap::Command;
use super::kinds::Tab;
use super::msg::{Cmd, Failure, Msg, Op, RecordPurpose};
use super::state::{
    Conn, EXPORT_FORMATS, ExportForm, ExportProgress, Intent, ListView, MAX_PAGES, Modal,
    PickerKind, PolicyEditor, Sort, State, Target, singular,
};

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal is now this size (columns, rows).
    Resize(u16, u16),
    /// 250 ms passed (spinner, toast expiry).
    Tick,
    /// The backend answered.
    Net(Msg),
}

/// What the event loop must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a request to the backend task.
    Send(Box<Cmd>),
    /// Write these bytes to the terminal (OSC 52 copy).
    Terminal(String),
    /// Leave the TUI (exit code 0).
    Quit,
}

/// Why a command is not available to the acting profile here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// The acting profile lacks this permission.
    Needs(Permission),
    /// The command does nothing on this tab.
    NotHere(&'static str),
}

/// The permissions a command needs somewhere (any one of them), for the help screen.
pub fn required(cmd: Command) -> &'static [Permission] {
    match cmd {
        Command::New | Command::Edit | Command::Delete => {
            &[Permission::ContactsWrite, Permission::JitWrite]
        }
        Command::Export => &[
            Permission::ContactsExport,
            Permission::JitExport,
            Permission::AlertsExport,
            Permission::AuditExport,
        ],
        Command::Initiate | Command::Revoke => &[Permission::JitRequest],
        _ => &[],
    }
}

/// Whether `cmd` is unavailable on the current tab for the acting profile, and why.
pub fn disabled(s: &State, cmd: Command) -> Option<DisabledReason> {
    let perms = s.session.permissions();
    let need = |p: Permission| (!perms.contains(p)).then_some(DisabledReason::Needs(p));
    match cmd {
        Command::New | Command::Edit | Command::Delete => match s.tab.write_permission() {
            None => Some(DisabledReason::NotHere("this kind is read-only")),
            Some(p) => need(p),
        },
        Command::Export => match s.tab.export_permission() {
            None => Some(DisabledReason::NotHere("this kind has no export")),
            Some(p) => need(p),
        },
        Command::Initiate if s.tab != Tab::JitPolicies => {
            Some(DisabledReason::NotHere("initiate works on a JIT policy"))
        }
        Command::Revoke if s.tab != Tab::JitRequests => {
            Some(DisabledReason::NotHere("revoke works on a JIT request"))
        }
        Command::Initiate | Command::Revoke => need(Permission::JitRequest),
        _ => None,
    }
}

/// Decides what an action changes and what must happen outside.
pub fn update(s: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Tick => {
            tick(s);
            Vec::new()
        }
        Action::Resize(_, h) => {
            s.view_rows = usize::from(h.saturating_sub(7)).max(1);
            keep_in_view(s);
            s.dirty = true;
            Vec::new()
        }
        Action::Key(k) => {
            if k.kind == KeyEventKind::Release {
                return Vec::new();
            }
            s.dirty = true;
            if s.modal.is_some() {
                modal_key(s, k)
            } else {
                match s.keymap.command_for(&k) {
                    Some(cmd) => command(s, cmd),
                    None => Vec::new(),
                }
            }
        }
        Action::Net(m) => {
            s.dirty = true;
            net(s, m)
        }
    }
}

fn tick(s: &mut State) {
    if s.list.loading.is_some() || s.export.is_some() {
        s.spinner = s.spinner.wrapping_add(1);
        s.dirty = true;
    }
    if let Some(t) = &mut s.toast {
        t.ttl = t.ttl.saturating_sub(1);
        if t.ttl == 0 {
            s.toast = None;
            s.dirty = true;
        }
    }
}

/// An effect sending `cmd` to the backend.
fn send(cmd: Cmd) -> Effect {
    Effect::Send(Box::new(cmd))
}

// ---------------------------------------------------------------- commands

/// Runs one keymap command (after the permission check).
pub fn command(s: &mut State, cmd: Command) -> Vec<Effect> {
    if let Some(reason) = disabled(s, cmd) {
        let text = match reason {
            DisabledReason::Needs(p) => format!(
                "{}: the {} profile lacks {p}",
                cmd.describe(),
                s.session.profile_label()
            ),
            DisabledReason::NotHere(why) => format!("{}: {why}", cmd.describe()),
        };
        s.toast(text, true);
        return Vec::new();
    }
    let page = s.view_rows.max(1) as i64;
    match cmd {
        Command::Quit => vec![Effect::Quit],
        Command::Up => move_by(s, -1),
        Command::Down => move_by(s, 1),
        Command::HalfPageUp => move_by(s, -(page / 2).max(1)),
        Command::HalfPageDown => move_by(s, (page / 2).max(1)),
        Command::PageUp => move_by(s, -page),
        Command::PageDown => move_by(s, page),
        Command::Top => go_top(s),
        Command::Bottom => go_bottom(s),
        Command::NextTab | Command::PrevTab => {
            let tabs = s.tabs();
            if tabs.is_empty() {
                return Vec::new();
            }
            let i = tabs.iter().position(|t| *t == s.tab).unwrap_or(0);
            let n = tabs.len();
            let j = if cmd == Command::NextTab {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            switch_tab(s, tabs[j])
        }
        Command::Open => {
            if let Some(v) = s.selected() {
                let title = format!("{}/{}", s.tab.segment(), s.tab.record_id(v));
                let text = serde_json::to_string_pretty(v).unwrap_or_default();
                s.modal = Some(Modal::Detail {
                    title,
                    text,
                    scroll: 0,
                });
            }
            Vec::new()
        }
        Command::Back => {
            if !s.list.filter.is_empty() {
                return apply_filter(s, String::new());
            }
            Vec::new()
        }
        Command::Filter => {
            s.modal = Some(Modal::Filter(Input::new(s.list.filter.clone())));
            Vec::new()
        }
        Command::CommandLine => {
            s.modal = Some(Modal::CommandLine(Input::default()));
            Vec::new()
        }
        Command::Help => {
            s.modal = Some(Modal::Help { scroll: 0 });
            Vec::new()
        }
        Command::Sort => {
            if s.tab == Tab::Alerts {
                s.toast("alerts come newest first from the daemon", false);
                return Vec::new();
            }
            s.list.sort = match s.list.sort {
                Sort::Server => Sort::FirstAsc,
                Sort::FirstAsc => Sort::FirstDesc,
                Sort::FirstDesc => Sort::Server,
            };
            let col = s.tab.columns().first().map_or("", |c| c.title);
            let text = match s.list.sort {
                Sort::Server => "daemon order".to_owned(),
                Sort::FirstAsc => format!("sorted by {col} ↑ (loaded rows only)"),
                Sort::FirstDesc => format!("sorted by {col} ↓ (loaded rows only)"),
            };
            s.toast(text, false);
            reanchor(s);
            Vec::new()
        }
        Command::Refresh => refresh(s),
        Command::Freeze => {
            s.frozen = !s.frozen;
            let t = if s.frozen {
                "live updates frozen (f resumes)"
            } else {
                "live updates resumed"
            };
            s.toast(t, false);
            if s.frozen { Vec::new() } else { refresh(s) }
        }
        Command::Tenant => {
            let items: Vec<String> = s.session.tenants.iter().map(|t| t.id.clone()).collect();
            if items.is_empty() {
                s.toast("no tenants: the daemon grants you none", true);
                return Vec::new();
            }
            let selected = items
                .iter()
                .position(|t| Some(t) == s.session.tenant.as_ref())
                .unwrap_or(0);
            s.modal = Some(Modal::Picker {
                kind: PickerKind::Tenant,
                items,
                selected,
            });
            Vec::new()
        }
        Command::Profile => {
            let Some(info) = s.session.tenant_info() else {
                return Vec::new();
            };
            let mut items = info.actable_profiles.clone();
            if items.is_empty() {
                items = info.profiles.clone();
            }
            let selected = items
                .iter()
                .position(|p| Some(p) == s.session.role.as_ref())
                .unwrap_or(items.len().saturating_sub(1));
            s.modal = Some(Modal::Picker {
                kind: PickerKind::Profile,
                items,
                selected,
            });
            Vec::new()
        }
        Command::New => {
            match s.tab {
                Tab::Contacts => s.modal = Some(Modal::ContactForm(Box::new(ContactForm::blank()))),
                _ => {
                    s.modal = Some(Modal::PolicyEditor(Box::new(PolicyEditor {
                        name: Input::new("default".into()),
                        new: true,
                        etag: None,
                        text: TextArea::new(&policy_template(s)),
                        on_name: true,
                        errors: Default::default(),
                        saving: false,
                    })))
                }
            }
            Vec::new()
        }
        Command::Edit => {
            let Some(v) = s.selected().cloned() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            match s.tab {
                Tab::Contacts => {
                    s.modal = Some(Modal::ContactForm(Box::new(ContactForm::from_record(&v))))
                }
                _ => {
                    let mut body = v.clone();
                    if let Some(o) = body.as_object_mut() {
                        for k in ["id", "type", "etag", "name"] {
                            o.remove(k);
                        }
                    }
                    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
                        p.remove("requests");
                        p.remove("provisioningState");
                    }
                    s.modal = Some(Modal::PolicyEditor(Box::new(PolicyEditor {
                        name: Input::new(s.tab.record_id(&v)),
                        new: false,
                        etag: v.get("etag").and_then(Value::as_str).map(str::to_owned),
                        text: TextArea::new(
                            &serde_json::to_string_pretty(&body).unwrap_or_default(),
                        ),
                        on_name: false,
                        errors: Default::default(),
                        saving: false,
                    })))
                }
            }
            Vec::new()
        }
        Command::Delete | Command::Revoke => {
            let Some(v) = s.selected() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            let id = s.tab.record_id(v);
            let intent = if cmd == Command::Delete {
                Intent::Delete {
                    tab: s.tab,
                    id,
                    etag: v.get("etag").and_then(Value::as_str).map(str::to_owned),
                }
            } else {
                Intent::Revoke { id }
            };
            s.modal = Some(Modal::Confirm {
                intent,
                on_confirm: false,
            });
            Vec::new()
        }
        Command::Initiate => {
            let Some(v) = s.selected() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            s.modal = Some(Modal::Initiate(Box::new(InitiateForm::for_policy(v))));
            Vec::new()
        }
        Command::Export => {
            let tenant = s.session.tenant.clone().unwrap_or_default();
            s.modal = Some(Modal::Export(Box::new(ExportForm {
                tab: s.tab,
                format: 0,
                path: Input::new(default_export_path(&tenant, s.tab, EXPORT_FORMATS[0])),
            })));
            Vec::new()
        }
        Command::Copy => {
            let Some(v) = s.selected() else {
                s.toast("nothing selected", true);
                return Vec::new();
            };
            let title = format!("{}/{}", s.tab.segment(), s.tab.record_id(v));
            let json = serde_json::to_string_pretty(v).unwrap_or_default();
            let (seq, truncated) = osc52(&json, s.in_tmux);
            let text = if truncated {
                format!("copied {title} as JSON, cut to the first 100 kB (OSC 52)")
            } else {
                format!("copied {title} as JSON ({} bytes, OSC 52)", json.len())
            };
            s.toast(text, truncated);
            vec![Effect::Terminal(seq)]
        }
    }
}

/// A new policy's starting text, its VM in the session's tenant (the daemon refuses VM ids
/// of other subscriptions).
fn policy_template(s: &State) -> String {
    POLICY_TEMPLATE.replace("TENANT", s.session.tenant.as_deref().unwrap_or("TENANT"))
}

/// [`policy_template`] before the tenant is filled in.
const POLICY_TEMPLATE: &str = r#"{
  "kind": "Basic",
  "properties": {
    "virtualMachines": [
      {
        "id": "/subscriptions/TENANT/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1",
        "ports": [
          {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT3H"}
        ]
      }
    ]
  }
}"#;

// ---------------------------------------------------------------- navigation

fn tenant_path(s: &State) -> String {
    format!("/v1/tenants/{}", s.session.tenant.as_deref().unwrap_or(""))
}

fn base_link(s: &State) -> String {
    let mut link = format!(
        "{}/{}?limit={}",
        tenant_path(s),
        s.tab.segment(),
        s.page_size
    );
    if s.tab.server_filter() && !s.list.filter.is_empty() {
        let q: String = form_encode(&s.list.filter);
        link.push_str("&q=");
        link.push_str(&q);
    }
    link
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn form_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
    vec![send(Cmd::Pages {
        generation,
        start_index,
        link,
        count,
        to_end,
        keep: if to_end { 2 } else { count },
    })]
}

/// Starts the current tab's list afresh from its first page.
fn reset_list(s: &mut State) -> Vec<Effect> {
    if s.session.tenant.is_none() {
        return Vec::new();
    }
    let filter = std::mem::take(&mut s.list.filter);
    s.list = ListView {
        filter,
        ..ListView::default()
    };
    let link = base_link(s);
    fetch(s, 0, link, 1, false, Target::First)
}

fn switch_tab(s: &mut State, tab: Tab) -> Vec<Effect> {
    if !s.session.loaded {
        // Keys typed before the daemon answered (`:alerts` right at start) pick the tab
        // the session opens on; `enter_session` falls back if the profile cannot read it.
        s.tab = tab;
        s.dirty = true;
        return Vec::new();
    }
    if !s.session.can(tab.read_permission()) {
        s.toast(
            format!(
                "{}: the {} profile lacks {}",
                tab.title(),
                s.session.profile_label(),
                tab.read_permission()
            ),
            true,
        );
        return Vec::new();
    }
    if tab == s.tab && s.list.loaded {
        return Vec::new();
    }
    s.tab = tab;
    s.list = ListView::default();
    reset_list(s)
}

/// Reloads the pages on screen; the selection follows its record.
fn refresh(s: &mut State) -> Vec<Effect> {
    match s.list.links.get(s.list.first).cloned() {
        Some(link) if s.list.loaded => {
            let count = s.list.pages.len().max(1);
            let first = s.list.first;
            fetch(s, first, link, count, false, Target::Anchor)
        }
        _ => reset_list(s),
    }
}

fn select(s: &mut State, pos: usize) {
    let vis = s.visible();
    if vis.is_empty() {
        s.list.selected = 0;
        s.list.anchor = None;
        return;
    }
    let pos = pos.min(vis.len() - 1);
    s.list.selected = pos;
    keep_in_view(s);
    let tab = s.tab;
    let anchor = s.list.rows().nth(vis[pos]).map(|v| tab.record_id(v));
    s.list.anchor = anchor;
}

/// Scrolls so that the selection is on screen.
fn keep_in_view(s: &mut State) {
    let h = s.view_rows.max(1);
    let l = &mut s.list;
    if l.selected < l.offset {
        l.offset = l.selected;
    } else if l.selected >= l.offset + h {
        l.offset = l.selected + 1 - h;
    }
}

/// Puts the selection back on the anchored record, or the nearest row.
fn reanchor(s: &mut State) {
    let vis = s.visible();
    let rows: Vec<&Value> = s.list.rows().collect();
    let found = s
        .list
        .anchor
        .as_ref()
        .and_then(|a| vis.iter().position(|&i| s.tab.record_id(rows[i]) == *a));
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

fn prefetch(s: &mut State) -> Vec<Effect> {
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

fn move_by(s: &mut State, delta: i64) -> Vec<Effect> {
    let len = s.visible().len() as i64;
    if len == 0 {
        return Vec::new();
    }
    let to = (s.list.selected as i64 + delta).clamp(0, len - 1);
    select(s, usize::try_from(to).unwrap_or(0));
    prefetch(s)
}

fn go_top(s: &mut State) -> Vec<Effect> {
    if s.list.first == 0 {
        select(s, 0);
        return Vec::new();
    }
    match s.list.links.first().cloned() {
        Some(link) => fetch(s, 0, link, 1, false, Target::First),
        None => reset_list(s),
    }
}

fn go_bottom(s: &mut State) -> Vec<Effect> {
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

fn apply_filter(s: &mut State, filter: String) -> Vec<Effect> {
    s.list.filter = filter;
    if s.tab.server_filter() {
        s.list.links.clear();
        reset_list(s)
    } else {
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

fn run_command_line(s: &mut State, line: &str) -> Vec<Effect> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Vec::new();
    };
    let arg = words.next();
    if let Some(tab) = Tab::from_command(first) {
        return switch_tab(s, tab);
    }
    match (first, arg) {
        ("q" | "quit" | "q!", _) => vec![Effect::Quit],
        ("help", _) => command(s, Command::Help),
        ("tenant", Some(t)) => set_tenant(s, t),
        ("profile" | "as", Some(p)) => set_profile(s, p),
        ("export", Some(f)) => {
            if !EXPORT_FORMATS.contains(&f) {
                s.toast(
                    format!("export formats: {}", EXPORT_FORMATS.join(", ")),
                    true,
                );
                return Vec::new();
            }
            if disabled(s, Command::Export).is_some() {
                return command(s, Command::Export);
            }
            let tenant = s.session.tenant.clone().unwrap_or_default();
            start_export(s, s.tab, f, default_export_path(&tenant, s.tab, f))
        }
        _ => {
            s.toast(
                format!("unknown command `{line}` (try :alerts, :tenant NAME, :profile NAME, :export csv, :q)"),
                true,
            );
            Vec::new()
        }
    }
}

fn set_tenant(s: &mut State, t: &str) -> Vec<Effect> {
    if !s.session.tenants.iter().any(|i| i.id == t) {
        s.toast(format!("no tenant `{t}` you hold a grant in"), true);
        return Vec::new();
    }
    s.session.tenant = Some(t.to_owned());
    s.session.role = None;
    enter_session(s)
}

fn set_profile(s: &mut State, p: &str) -> Vec<Effect> {
    let Some(info) = s.session.tenant_info() else {
        return Vec::new();
    };
    if !info.actable_profiles.iter().any(|a| a == p) && !info.profiles.iter().any(|a| a == p) {
        s.toast(
            format!(
                "cannot act as `{p}` here (you may: {})",
                info.actable_profiles.join(", ")
            ),
            true,
        );
        return Vec::new();
    }
    s.session.role = if info.profiles.len() == 1 && info.profiles[0] == p {
        None
    } else {
        Some(p.to_owned())
    };
    s.toast(format!("acting as {p}"), false);
    enter_session(s)
}

/// After the tenant or profile changed: tell the backend, pick a readable tab, reload.
fn enter_session(s: &mut State) -> Vec<Effect> {
    let mut fx = vec![send(Cmd::SetSession {
        tenant: s.session.tenant.clone(),
        role: s.session.role.clone(),
    })];
    let tabs = s.tabs();
    if !tabs.contains(&s.tab)
        && let Some(t) = tabs.first()
    {
        s.tab = *t;
    }
    s.list = ListView::default();
    if tabs.is_empty() {
        s.toast("this profile may read nothing here", true);
        return fx;
    }
    fx.extend(reset_list(s));
    fx
}

fn start_export(s: &mut State, tab: Tab, format: &str, file: String) -> Vec<Effect> {
    s.modal = None;
    s.export = Some(ExportProgress {
        path: file.clone(),
        bytes: 0,
        total: None,
    });
    vec![send(Cmd::Export {
        path: format!(
            "{}/export/{}?format={format}",
            tenant_path(s),
            tab.segment()
        ),
        file: file.into(),
        format: format.to_owned(),
    })]
}

// ---------------------------------------------------------------- modals

fn scroll(v: &mut u16, cmd: Option<Command>, page: u16) {
    match cmd {
        Some(Command::Up) => *v = v.saturating_sub(1),
        Some(Command::Down) => *v = v.saturating_add(1),
        Some(Command::PageUp | Command::HalfPageUp) => *v = v.saturating_sub(page),
        Some(Command::PageDown | Command::HalfPageDown) => *v = v.saturating_add(page),
        Some(Command::Top) => *v = 0,
        _ => {}
    }
}

fn modal_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
    let Some(modal) = s.modal.take() else {
        return Vec::new();
    };
    let cmd = s.keymap.command_for(&k);
    let page = u16::try_from(s.view_rows).unwrap_or(10).max(1);
    let close = matches!(cmd, Some(Command::Back | Command::Quit)) || k.code == KeyCode::Esc;
    match modal {
        Modal::Help { mut scroll } => {
            if close || cmd == Some(Command::Help) {
                return Vec::new();
            }
            self::scroll(&mut scroll, cmd, page);
            s.modal = Some(Modal::Help { scroll });
        }
        Modal::Detail {
            title,
            text,
            mut scroll,
        } => {
            if close || cmd == Some(Command::Open) {
                return Vec::new();
            }
            if cmd == Some(Command::Copy) {
                s.modal = Some(Modal::Detail {
                    title,
                    text,
                    scroll,
                });
                return command(s, Command::Copy);
            }
            self::scroll(&mut scroll, cmd, page);
            s.modal = Some(Modal::Detail {
                title,
                text,
                scroll,
            });
        }
        Modal::Conflict {
            title,
            mine,
            theirs,
            mut scroll,
        } => {
            if close || k.code == KeyCode::Enter {
                return refresh(s);
            }
            self::scroll(&mut scroll, cmd, page);
            s.modal = Some(Modal::Conflict {
                title,
                mine,
                theirs,
                scroll,
            });
        }
        Modal::Confirm { intent, on_confirm } => match k.code {
            KeyCode::Esc => {}
            KeyCode::Left | KeyCode::Right | KeyCode::Tab | KeyCode::BackTab => {
                s.modal = Some(Modal::Confirm {
                    intent,
                    on_confirm: !on_confirm,
                })
            }
            KeyCode::Char('h') | KeyCode::Char('l') => {
                s.modal = Some(Modal::Confirm {
                    intent,
                    on_confirm: !on_confirm,
                })
            }
            KeyCode::Enter if on_confirm => return confirmed(s, intent),
            KeyCode::Enter => {}
            _ => s.modal = Some(Modal::Confirm { intent, on_confirm }),
        },
        Modal::CommandLine(mut input) => match k.code {
            KeyCode::Esc => {}
            KeyCode::Enter => return run_command_line(s, input.value()),
            _ => {
                edit_input(&mut input, &k);
                s.modal = Some(Modal::CommandLine(input));
            }
        },
        Modal::Filter(mut input) => match k.code {
            KeyCode::Esc => {}
            KeyCode::Enter => return apply_filter(s, input.value().trim().to_owned()),
            _ => {
                edit_input(&mut input, &k);
                s.modal = Some(Modal::Filter(input));
            }
        },
        Modal::Picker {
            kind,
            items,
            mut selected,
        } => {
            match (k.code, cmd) {
                (KeyCode::Esc, _) | (_, Some(Command::Quit)) => return Vec::new(),
                (KeyCode::Enter, _) => {
                    let Some(choice) = items.get(selected).cloned() else {
                        return Vec::new();
                    };
                    return match kind {
                        PickerKind::Tenant => set_tenant(s, &choice),
                        PickerKind::Profile => set_profile(s, &choice),
                    };
                }
                (_, Some(Command::Up)) => selected = selected.saturating_sub(1),
                (_, Some(Command::Down)) => {
                    selected = (selected + 1).min(items.len().saturating_sub(1))
                }
                _ => {}
            }
            s.modal = Some(Modal::Picker {
                kind,
                items,
                selected,
            });
        }
        Modal::ContactForm(mut f) => {
            if f.saving {
                s.modal = Some(Modal::ContactForm(f));
                return Vec::new();
            }
            match f.key(&k) {
                FormOutcome::Cancel => {}
                FormOutcome::Stay => s.modal = Some(Modal::ContactForm(f)),
                FormOutcome::Submit => {
                    let name = f.record_name();
                    if name.is_empty() {
                        f.errors.insert("name".into(), "a name is needed".into());
                        s.modal = Some(Modal::ContactForm(f));
                        return Vec::new();
                    }
                    f.saving = true;
                    f.errors.clear();
                    let body = f.body();
                    let etag = f.etag.clone();
                    s.modal = Some(Modal::ContactForm(f));
                    return save(s, Tab::Contacts, name, body, etag);
                }
            }
        }
        Modal::PolicyEditor(mut ed) => {
            if ed.saving {
                s.modal = Some(Modal::PolicyEditor(ed));
                return Vec::new();
            }
            let submit = (k.code == KeyCode::Char('s')
                && k.modifiers.contains(KeyModifiers::CONTROL))
                || k.code == KeyCode::F(2);
            if k.code == KeyCode::Esc {
                return Vec::new();
            }
            if submit {
                let name = ed.name.value().trim().to_owned();
                match serde_json::from_str::<Value>(&ed.text.text()) {
                    Ok(body) if !name.is_empty() => {
                        ed.saving = true;
                        ed.errors.clear();
                        let etag = ed.etag.clone();
                        s.modal = Some(Modal::PolicyEditor(ed));
                        return save(s, Tab::JitPolicies, name, body, etag);
                    }
                    Ok(_) => {
                        ed.errors.insert("name".into(), "a name is needed".into());
                    }
                    Err(e) => {
                        ed.errors.insert(String::new(), format!("not JSON: {e}"));
                    }
                }
            } else if k.code == KeyCode::Tab && ed.new {
                ed.on_name = !ed.on_name;
            } else if ed.on_name {
                edit_input(&mut ed.name, &k);
            } else {
                ed.text.key(&k);
            }
            s.modal = Some(Modal::PolicyEditor(ed));
        }
        Modal::Initiate(mut f) => {
            if f.saving {
                s.modal = Some(Modal::Initiate(f));
                return Vec::new();
            }
            match f.key(&k) {
                FormOutcome::Cancel => {}
                FormOutcome::Stay => s.modal = Some(Modal::Initiate(f)),
                FormOutcome::Submit => match f.body(jiff::Timestamp::now()) {
                    Ok(body) => {
                        f.saving = true;
                        f.errors.clear();
                        let policy = f.policy.clone();
                        s.modal = Some(Modal::Initiate(f));
                        return vec![send(Cmd::Write {
                            op: Op::Initiate {
                                policy: policy.clone(),
                            },
                            method: http::Method::POST,
                            path: format!("{}/jit-policies/{policy}/initiate", tenant_path(s)),
                            body: Some(body),
                            etag: None,
                        })];
                    }
                    Err((field, why)) => {
                        f.errors.insert(field, why);
                        s.modal = Some(Modal::Initiate(f));
                    }
                },
            }
        }
        Modal::Export(mut f) => match k.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let path = f.path.value().trim().to_owned();
                let fmt = EXPORT_FORMATS[f.format % EXPORT_FORMATS.len()];
                return start_export(s, f.tab, fmt, path);
            }
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                let old = EXPORT_FORMATS[f.format % 3];
                f.format = if matches!(k.code, KeyCode::BackTab | KeyCode::Up) {
                    (f.format + 2) % 3
                } else {
                    (f.format + 1) % 3
                };
                let new = EXPORT_FORMATS[f.format];
                let p = f.path.value().to_owned();
                if let Some(stem) = p.strip_suffix(&format!(".{old}")) {
                    f.path = Input::new(format!("{stem}.{new}"));
                }
                s.modal = Some(Modal::Export(f));
            }
            _ => {
                edit_input(&mut f.path, &k);
                s.modal = Some(Modal::Export(f));
            }
        },
    }
    Vec::new()
}

fn save(s: &mut State, tab: Tab, name: String, body: Value, etag: Option<String>) -> Vec<Effect> {
    vec![send(Cmd::Write {
        op: Op::Save {
            tab,
            name: name.clone(),
            body: body.clone(),
        },
        method: http::Method::PUT,
        path: format!("{}/{}/{name}", tenant_path(s), tab.segment()),
        body: Some(body),
        etag,
    })]
}

/// The confirmed half of a destructive action: only now does it become a request.
fn confirmed(s: &mut State, intent: Intent) -> Vec<Effect> {
    match intent {
        Intent::Delete { tab, id, etag } => vec![send(Cmd::Write {
            op: Op::Delete {
                tab,
                name: id.clone(),
            },
            method: http::Method::DELETE,
            path: format!("{}/{}/{id}", tenant_path(s), tab.segment()),
            body: None,
            etag,
        })],
        Intent::Revoke { id } => vec![send(Cmd::Write {
            op: Op::Revoke { id: id.clone() },
            method: http::Method::POST,
            path: format!("{}/jit-requests/{id}/revoke", tenant_path(s)),
            body: None,
            etag: None,
        })],
    }
}

// ---------------------------------------------------------------- backend answers

fn failure_text(f: &Failure) -> String {
    match f.status {
        Some(code) => format!("{} ({code})", f.error.message),
        None => f.error.message.clone(),
    }
}

fn net(s: &mut State, m: Msg) -> Vec<Effect> {
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
            s.toast(
                format!("cannot load the session: {}", failure_text(&f)),
                true,
            );
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
            s.list.error = Some(failure_text(&failure));
            if failure.status.is_some() {
                s.toast(failure_text(&failure), true);
            }
            Vec::new()
        }
        Msg::Record { purpose, result } => {
            let RecordPurpose::Conflict { title, mine } = purpose;
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
                    format!(
                        "{title} changed meanwhile and cannot be read: {}",
                        failure_text(&f)
                    ),
                    true,
                ),
            }
            Vec::new()
        }
        Msg::Written { op, result } => written(s, op, result),
        Msg::Conn(c) => {
            let was = std::mem::replace(&mut s.conn, c.clone());
            if c == Conn::Connected && was != Conn::Connected {
                if !s.session.loaded {
                    return vec![send(Cmd::LoadSession)];
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
                return vec![send(Cmd::LoadSession)];
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
            s.toast(format!("export failed: {}", failure_text(&f)), true);
            Vec::new()
        }
    }
}

fn apply_pages(
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
            reanchor(s);
        }
        Target::First | Target::Last | Target::Anchor => {
            let fetched = links.len();
            l.links.truncate(start_index);
            l.links.extend(links);
            l.links.extend(next);
            l.first = start_index + fetched.saturating_sub(pages.len());
            l.pages = pages.into_iter().collect();
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

fn written(s: &mut State, op: Op, result: Result<(), Failure>) -> Vec<Effect> {
    let what = match &op {
        Op::Save { tab, name, .. } => format!("{} `{name}`", singular(*tab)),
        Op::Delete { tab, name } => format!("{} `{name}`", singular(*tab)),
        Op::Initiate { policy } => format!("JIT access under `{policy}`"),
        Op::Revoke { id } => format!("JIT request `{id}`"),
    };
    match result {
        Ok(()) => {
            let verb = match &op {
                Op::Save { .. } => "saved",
                Op::Delete { .. } => "deleted",
                Op::Initiate { .. } => "requested",
                Op::Revoke { .. } => "revoked",
            };
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
                if let Op::Save { tab, name, body } = op {
                    s.toast(
                        format!("{what} changed since you loaded it: showing the newer version"),
                        true,
                    );
                    let path = format!("{}/{}/{name}", tenant_path(s), tab.segment());
                    return vec![send(Cmd::Record {
                        purpose: RecordPurpose::Conflict {
                            title: format!("{}/{name}", tab.segment()),
                            mine: body,
                        },
                        path,
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
            s.toast(format!("{what}: {}", failure_text(&f)), true);
            Vec::new()
        }
    }
}
