//! What the operator is looking at: the tenant, the acting profile and the tab, the
//! `:` command line that switches them, and starting an export.

use steward::permissions::Permission;
use steward::resource::Resource;

use super::list::reset_list;
use super::{Effect, command, disabled, send};
use crate::export_file::ExportFormat;
use crate::tui::export::default_export_path;
use crate::tui::keymap::Command;
use crate::tui::msg::Request;
use crate::tui::state::{ExportProgress, ListView, State};

/// Shows another kind's tab, if the acting profile may read it.
pub(super) fn switch_tab(s: &mut State, tab: Resource) -> Vec<Effect> {
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
    let was_overview = std::mem::replace(&mut s.on_overview, false);
    if tab == s.tab && s.list.loaded {
        s.dirty |= was_overview;
        return Vec::new();
    }
    s.tab = tab;
    s.list = ListView::default();
    reset_list(s)
}

/// Runs a `:` command line.
pub(super) fn run_command_line(s: &mut State, line: &str) -> Vec<Effect> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Vec::new();
    };
    let arg = words.next();
    if let Some(tab) = Resource::from_word(first) {
        return switch_tab(s, tab);
    }
    match (first, arg) {
        ("q" | "quit" | "q!", _) => vec![Effect::Quit],
        ("help", _) => command(s, Command::Help),
        ("overview", days) => {
            let days = match days.map(str::parse::<u32>) {
                None => s.overview.as_ref().map_or(30, |o| o.days),
                Some(Ok(d)) if crate::tui::overview::PERIODS.contains(&d) => d,
                Some(_) => {
                    s.toast("overview: 30 or 90 days (:overview 90)", true);
                    return Vec::new();
                }
            };
            s.on_overview = true;
            load_overview(s, days)
        }
        ("verify", _) => {
            if !s.session.can(Permission::AuditRead) {
                let p = s.session.profile_label();
                s.toast(format!("verify: the {p} profile lacks audit.read"), true);
                return Vec::new();
            }
            s.toast("verifying the audit chain…", false);
            vec![send(Request::Verify)]
        }
        ("subject", None) => {
            s.toast(
                "subject: name the person, e.g. :subject alice@contoso.com (or :subject user NAME)",
                true,
            );
            Vec::new()
        }
        ("subject", Some(first)) => {
            if !s.session.can(Permission::DsrManage) {
                let p = s.session.profile_label();
                s.toast(format!("subject: the {p} profile lacks dsr.manage"), true);
                return Vec::new();
            }
            let rest: Vec<&str> = words.collect();
            match subject_query(first, &rest) {
                Ok((key, value)) => vec![send(Request::Subject { key, value })],
                Err(why) => {
                    s.toast(why, true);
                    Vec::new()
                }
            }
        }
        ("tenant", Some(t)) => set_tenant(s, t),
        ("profile" | "as", Some(p)) => set_profile(s, p),
        ("export", Some(f)) => {
            let Some(format) = ExportFormat::from_name(f) else {
                let names: Vec<&str> = ExportFormat::ALL.iter().map(|f| f.as_str()).collect();
                s.toast(format!("export formats: {}", names.join(", ")), true);
                return Vec::new();
            };
            if disabled(s, Command::Export).is_some() {
                return command(s, Command::Export);
            }
            let tenant = s.session.tenant.clone().unwrap_or_default();
            let (filters, _) = export_scope(s);
            start_export(
                s,
                s.tab,
                format,
                default_export_path(&tenant, s.tab, format),
                filters,
            )
        }
        _ => {
            s.toast(
                format!("unknown command `{line}` (try :alerts, :tenant NAME, :export csv, :verify, :subject EMAIL, :q)"),
                true,
            );
            Vec::new()
        }
    }
}

/// `:subject WHO` or `:subject KIND WHO`: the identifier's kind (`email`, `phone`, `ip`,
/// `user`, `host`) and value. A bare value is an email when it has an `@`, an IP when it
/// parses as one, a phone when it is digits (with `+ - ( ) .` and spaces); a user or
/// host name must say which.
pub fn subject_query(first: &str, rest: &[&str]) -> Result<(&'static str, String), String> {
    if let Some(key) = crate::tui::dsr::SUBJECT_KEYS.iter().find(|k| **k == first) {
        if rest.is_empty() {
            return Err(format!("subject {key}: the {key} is missing"));
        }
        return Ok((key, rest.join(" ")));
    }
    let value = std::iter::once(first)
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    if value.contains('@') {
        return Ok(("email", value));
    }
    if value.parse::<std::net::IpAddr>().is_ok() {
        return Ok(("ip", value));
    }
    let phone_chars = |c: char| c.is_ascii_digit() || "+-(). ".contains(c);
    if value.chars().all(phone_chars) && value.chars().filter(char::is_ascii_digit).count() >= 5 {
        return Ok(("phone", value));
    }
    Err(format!(
        "subject: is `{value}` a user or a host? say which: :subject user {value}"
    ))
}

/// Opens another tenant the caller holds a grant in.
pub(super) fn set_tenant(s: &mut State, t: &str) -> Vec<Effect> {
    if !s.session.tenants.iter().any(|i| i.id == t) {
        s.toast(format!("no tenant `{t}` you hold a grant in"), true);
        return Vec::new();
    }
    s.session.tenant = Some(t.to_owned());
    s.session.role = None;
    // Another tenant opens on its overview if it has alerts (keys typed before the first
    // session loaded, `:alerts` at start, still win there).
    s.touched = false;
    enter_session(s)
}

/// Acts under another profile from now on.
pub(super) fn set_profile(s: &mut State, p: &str) -> Vec<Effect> {
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
pub(super) fn enter_session(s: &mut State) -> Vec<Effect> {
    let mut fx = vec![send(Request::SetSession {
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
    s.overview = None;
    s.on_overview = false;
    if tabs.is_empty() {
        s.toast("this profile may read nothing here", true);
        return fx;
    }
    fx.extend(reset_list(s));
    if s.session.can(Permission::AlertsRead) {
        // The overview becomes the first screen if the tenant has alerts (see net).
        fx.extend(load_overview(s, 30));
    }
    fx
}

/// Asks for the overview's data of the last `days` days.
pub(super) fn load_overview(s: &mut State, days: u32) -> Vec<Effect> {
    vec![send(Request::Overview {
        days,
        alerts: s.session.can(Permission::AlertsRead),
    })]
}

/// Starts streaming `kind` (as `filters` narrow it) to `file`; the modal closes and
/// progress shows below, where `esc` cancels it.
pub(super) fn start_export(
    s: &mut State,
    kind: Resource,
    format: ExportFormat,
    file: String,
    filters: Vec<(&'static str, String)>,
) -> Vec<Effect> {
    s.modal = None;
    let file = absolute(&file);
    s.export = Some(ExportProgress {
        path: file.clone(),
        bytes: 0,
        total: None,
    });
    vec![send(Request::Export {
        kind,
        format,
        file: file.into(),
        filters,
    })]
}

/// Starts downloading a data-subject request's bundle to `file` (shown like an export,
/// and cancelled like one).
pub(super) fn start_bundle(s: &mut State, id: String, file: String) -> Vec<Effect> {
    if let Some(p) = &s.export {
        let text = format!("a download to {} is running (esc cancels it)", p.path);
        s.toast(text, true);
        return Vec::new();
    }
    s.modal = None;
    let file = absolute(&file);
    s.export = Some(ExportProgress {
        path: file.clone(),
        bytes: 0,
        total: None,
    });
    vec![send(Request::Bundle {
        id,
        file: file.into(),
    })]
}

/// Stops the running export (its partial file is removed by the backend).
pub(super) fn cancel_export(s: &mut State) -> Vec<Effect> {
    let Some(p) = s.export.take() else {
        return Vec::new();
    };
    s.toast(
        format!("export cancelled: {} was not written", p.path),
        false,
    );
    vec![send(Request::CancelExport)]
}

/// `path` made absolute against the directory `steward` runs in, as the dialog and the
/// toasts show it (unchanged if the directory cannot be read).
pub fn absolute(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_owned(), |p| p.display().to_string())
}

/// The filters of what the view shows that an export applies, and the export's scope in
/// words. Alerts are filtered by the daemon (text, severity, status); other kinds' filter
/// narrows only the loaded rows, so their export holds the whole kind, and says so.
pub(super) fn export_scope(s: &State) -> (Vec<(&'static str, String)>, String) {
    // The export is newest first whatever the view's order (only the filters apply).
    let filters: Vec<_> = super::list::view_query(s)
        .into_iter()
        .filter(|(k, _)| *k != "orderby")
        .collect();
    let plural = s.tab.title().to_lowercase();
    if filters.is_empty() {
        let scope = if s.list.filter.is_empty() {
            format!("every record of {plural}")
        } else {
            format!(
                "every record of {plural}: the filter `{}` narrows only the loaded rows",
                s.list.filter
            )
        };
        return (filters, scope);
    }
    let words: Vec<String> = filters
        .iter()
        .map(|(k, v)| match *k {
            "q" => format!("matching `{v}`"),
            k => format!("{k} {v}"),
        })
        .collect();
    (filters, format!("{plural} as shown: {}", words.join(", ")))
}
