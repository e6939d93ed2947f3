//! Drawing: a pure function of `&State` onto a ratatui `Frame`.
//!
//! Layout at 80×24: header (tenant, profile, `[RO]`/`[RW]`, connection), tabs, the
//! record table, a status line (toast, filter or command line, export progress), and a
//! footer of the keys that apply here — generated from the keymap, with what the acting
//! profile lacks left out. Below 60×15 only a message saying the size needed is drawn.
//! The modals are drawn by [`modal`].
//! Nothing here changes state or does I/O.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Tabs, Wrap};
use tui_input::Input;

mod modal;
mod overview;

use super::keymap::{COMMANDS, Command};
use super::state::{Conn, Modal, State};
use super::update::disabled;
use super::widgets::record_table;

/// The smallest terminal drawn normally.
pub const MIN_SIZE: (u16, u16) = (60, 15);

const SPINNER: [&str; 4] = ["⠋", "⠙", "⠸", "⠴"];

/// Draws the whole screen.
pub fn draw(f: &mut Frame, s: &State) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = format!(
            "steward needs a terminal of at least {}×{}; this one is {}×{}.",
            MIN_SIZE.0, MIN_SIZE.1, area.width, area.height
        );
        f.render_widget(
            Paragraph::new(msg)
                .wrap(Wrap { trim: true })
                .style(s.theme.error()),
            area,
        );
        return;
    }
    let [header, tabs, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, header, s);
    draw_tabs(f, tabs, s);
    draw_body(f, body, s);
    draw_status(f, status, s);
    draw_footer(f, footer, s);
    if let Some(m) = &s.modal {
        modal::draw_modal(f, body, s, m);
    }
}

/// The help popup's text, line by line (what `update` measures to bound its scroll).
pub fn help_text(s: &State) -> Vec<String> {
    modal::help_lines(s)
        .iter()
        .map(|l| l.spans.iter().map(|sp| sp.content.as_ref()).collect())
        .collect()
}

fn draw_header(f: &mut Frame, area: Rect, s: &State) {
    let t = s.theme;
    let sess = &s.session;
    let mut spans = vec![Span::styled(" steward ", t.title())];
    match sess.tenant_info() {
        Some(info) => {
            spans.push(Span::raw("│ "));
            spans.push(Span::styled(info.id.clone(), t.title()));
            if info.display_name != info.id {
                spans.push(Span::styled(format!(" ({})", info.display_name), t.dim()));
            }
            spans.push(Span::raw(" │ as "));
            spans.push(Span::raw(sess.profile_label()));
            spans.push(Span::raw(" "));
            if sess.permissions().can_write() {
                spans.push(Span::styled("[RW]", t.rw()));
            } else {
                spans.push(Span::styled("[RO]", t.ok()));
            }
        }
        None => spans.push(Span::styled(
            format!("│ {}", sess.tenant.as_deref().unwrap_or("loading…")),
            t.dim(),
        )),
    }
    spans.push(Span::raw(" │ "));
    spans.push(match &s.conn {
        Conn::Connecting => Span::styled("○ connecting…", t.dim()),
        Conn::Connected => Span::styled("● connected", t.ok()),
        Conn::Reconnecting { in_secs } => {
            Span::styled(format!("◌ reconnecting in {in_secs}s"), t.error())
        }
        Conn::Unreachable(_) => Span::styled("✗ unreachable", t.error()),
    });
    if s.frozen {
        spans.push(Span::styled(" │ frozen", t.rw()));
    }
    if s.list.loading.is_some() || s.export.is_some() {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(SPINNER[s.spinner % SPINNER.len()], t.key()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_tabs(f: &mut Frame, area: Rect, s: &State) {
    let tabs = s.tabs();
    let selected = tabs.iter().position(|t| *t == s.tab);
    let w = Tabs::new(tabs.iter().map(|t| t.title()))
        .select(selected)
        .highlight_style(s.theme.tab_active())
        .divider("│")
        .padding(" ", " ");
    f.render_widget(w, area);
}

fn draw_body(f: &mut Frame, area: Rect, s: &State) {
    if s.on_overview {
        return overview::draw_overview(f, area, s);
    }
    let t = s.theme;
    let l = &s.list;
    let vis = s.visible().len();
    let mut title = vec![Span::styled(format!(" {} ", s.tab.title()), t.title())];
    if vis > 0 {
        let page = s.page_size;
        let first = l.first * page + l.selected + 1;
        let more = if l.at_end() { "" } else { "+" };
        title.push(Span::raw(format!(
            "{first} of {}{more} ",
            l.first * page + vis
        )));
    }
    if !l.filter.is_empty() {
        let scope = if s.tab.server_filter() {
            "filter"
        } else {
            "filter (loaded rows)"
        };
        title.push(Span::styled(format!("│ {scope}: {} ", l.filter), t.rw()));
    }
    if let Some(o) = s.orderby() {
        title.push(Span::styled(format!("│ by {o} "), t.rw()));
    }
    for (name, value) in [("severity", l.severity), ("status", l.status)] {
        if let Some(v) = value.filter(|_| s.tab.server_filter()) {
            title.push(Span::styled(format!("│ {name}: {v} "), t.rw()));
        }
    }
    let block = Block::bordered().title(Line::from(title));
    if !s.session.loaded || (!l.loaded && vis == 0) {
        let text = match (&s.conn, &l.error) {
            (_, Some(e)) => e.clone(),
            (Conn::Unreachable(e), _) => format!("The daemon cannot be reached: {e}"),
            (Conn::Reconnecting { in_secs }, _) => {
                format!("Waiting for the daemon; trying again in {in_secs}s.")
            }
            _ => "Loading…".to_owned(),
        };
        f.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    if vis == 0 {
        let text = match &l.error {
            Some(e) => e.clone(),
            None if !l.filter.is_empty() => format!("Nothing matches `{}`.", l.filter),
            None if l.severity.is_some() || l.status.is_some() => format!(
                "Nothing has the severity/status shown ({} and {} cycle them).",
                s.keymap.first_key(Command::Severity),
                s.keymap.first_key(Command::Status)
            ),
            None => "Nothing here yet.".to_owned(),
        };
        f.render_widget(Paragraph::new(text).block(block).style(t.dim()), area);
        return;
    }
    record_table(f, area, s, block);
}

fn input_line(f: &mut Frame, area: Rect, prefix: &str, input: &Input, s: &State) {
    let width = usize::from(area.width.saturating_sub(prefix.len() as u16 + 1));
    let scroll = input.visual_scroll(width);
    let shown: String = input.value().chars().skip(scroll).collect();
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prefix.to_owned(), s.theme.key()),
            Span::raw(shown),
        ])),
        area,
    );
    let x = area.x
        + prefix.chars().count() as u16
        + (input.visual_cursor().saturating_sub(scroll)) as u16;
    f.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
}

fn draw_status(f: &mut Frame, area: Rect, s: &State) {
    let t = s.theme;
    match &s.modal {
        Some(Modal::CommandLine(input)) => return input_line(f, area, ":", input, s),
        Some(Modal::Filter(input)) => return input_line(f, area, "/", input, s),
        _ => {}
    }
    if let Some(p) = &s.export {
        let label = format!("exporting to {} — {} bytes (esc cancels)", p.path, p.bytes);
        let ratio = match p.total {
            Some(total) if total > 0 => (p.bytes as f64 / total as f64).min(1.0),
            _ => 0.0,
        };
        f.render_widget(
            Gauge::default()
                .ratio(ratio)
                .label(label)
                .gauge_style(t.key()),
            area,
        );
        return;
    }
    if let Some(toast) = &s.toast {
        let style = if toast.error { t.error() } else { t.ok() };
        f.render_widget(
            Paragraph::new(Span::styled(format!(" {}", toast.text), style)),
            area,
        );
    }
}

fn draw_footer(f: &mut Frame, area: Rect, s: &State) {
    let t = s.theme;
    let mut spans = Vec::new();
    let mut used = 0usize;
    let width = usize::from(area.width);
    let modal_hint: Option<&str> = match &s.modal {
        Some(Modal::Confirm { .. }) => Some("←/→ choose  enter confirm  esc cancel"),
        Some(Modal::ContactForm(_) | Modal::Initiate(_)) => {
            Some("tab/↑↓ field  space toggle  enter save  esc cancel")
        }
        Some(Modal::PolicyEditor(_)) => Some("ctrl-s/f2 save  tab name/text  esc cancel"),
        Some(Modal::Export(_)) => Some("tab format  enter start  esc cancel"),
        Some(Modal::DsrForm(_)) => Some("tab/↑↓ field  space type  enter open  esc cancel"),
        Some(Modal::Reason { .. } | Modal::Bundle { .. }) => Some("enter go  esc cancel"),
        Some(Modal::Picker { .. }) => Some("↑/↓ choose  enter select  esc cancel"),
        Some(Modal::CommandLine(_) | Modal::Filter(_)) => Some("enter apply  esc cancel"),
        Some(Modal::Detail(_)) => {
            Some("↑/↓ scroll  g/G top/end  / search  w wrap  y copy  esc close")
        }
        Some(Modal::Help { .. } | Modal::Conflict { .. }) => Some("↑/↓ scroll  esc close"),
        None => None,
    };
    if let Some(h) = modal_hint {
        f.render_widget(Paragraph::new(Span::styled(h, t.dim())), area);
        return;
    }
    for spec in COMMANDS.iter().filter(|c| c.footer.is_some()) {
        let cmd = spec.command;
        if disabled(s, cmd).is_some() {
            continue;
        }
        let key = s.keymap.first_key(cmd);
        if key.is_empty() {
            continue;
        }
        let label = if cmd == Command::Freeze && s.frozen {
            "resume"
        } else {
            spec.footer.unwrap_or_default()
        };
        let len = key.chars().count() + label.len() + 3;
        if used + len > width {
            break;
        }
        used += len;
        spans.push(Span::raw(" "));
        spans.push(Span::styled(key, t.key()));
        spans.push(Span::raw(format!(" {label} ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
