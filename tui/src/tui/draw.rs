//! Drawing: a pure function of `&State` onto a ratatui `Frame`.
//!
//! Layout at 80×24: header (tenant, profile, `[RO]`/`[RW]`, connection), tabs, the
//! record table, a status line (toast, filter or command line, export progress), and a
//! footer of the keys that apply here — generated from the keymap, with what the acting
//! profile lacks left out. Below 60×15 only a message saying the size needed is drawn.
//! Nothing here changes state or does I/O.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, Gauge, Paragraph, Tabs, Wrap};
use tui_input::Input;

use super::form::ContactForm;
use super::keymap::{COMMANDS, Command, Group};
use super::state::{Conn, Modal, PickerKind, State};
use super::update::{DisabledReason, disabled, required};
use super::widgets::record_table;
use crate::export_file::ExportFormat;

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
        draw_modal(f, body, s, m);
    }
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
        let label = format!("exporting to {} — {} bytes", p.path, p.bytes);
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
        Some(Modal::Picker { .. }) => Some("↑/↓ choose  enter select  esc cancel"),
        Some(Modal::CommandLine(_) | Modal::Filter(_)) => Some("enter apply  esc cancel"),
        Some(Modal::Help { .. } | Modal::Detail { .. } | Modal::Conflict { .. }) => {
            Some("↑/↓ scroll  esc close")
        }
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

fn popup(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_modal(f: &mut Frame, body: Rect, s: &State, m: &Modal) {
    let t = s.theme;
    match m {
        Modal::Help { scroll } => {
            let r = popup(body, 76, body.height);
            let perms = s.session.permissions();
            let mut lines = vec![Line::styled(
                format!(
                    "Keys (from the keymap; remap in keys.toml). Acting as {}.",
                    s.session.profile_label()
                ),
                t.dim(),
            )];
            let in_group = |g: Group| COMMANDS.iter().filter(move |c| c.group == g);
            for cmd in in_group(Group::Action).map(|c| c.command) {
                let keys = s.keymap.keys_of(cmd);
                let needs = required(cmd);
                let lacks = !needs.is_empty() && !needs.iter().any(|p| perms.contains(*p));
                let mut spans = vec![
                    Span::styled(format!(" {keys:<10}"), t.key()),
                    Span::raw(format!("{:<29}", cmd.describe())),
                ];
                if let Some(DisabledReason::Needs(p)) = disabled(s, cmd) {
                    spans.push(Span::styled(format!("needs {p}"), t.error()));
                } else if lacks {
                    let names: Vec<&str> = needs.iter().map(|p| p.as_str()).collect();
                    spans.push(Span::styled(
                        format!("needs {}", names.join(" or ")),
                        t.error(),
                    ));
                } else if let Some(DisabledReason::NotHere(_) | DisabledReason::OnlyOn(_)) =
                    disabled(s, cmd)
                {
                    spans.push(Span::styled("not on this tab", t.dim()));
                }
                lines.push(Line::from(spans));
            }
            lines.push(Line::styled(" Moving:", t.column_header()));
            let moves: Vec<Command> = in_group(Group::Move).map(|c| c.command).collect();
            for three in moves.chunks(3) {
                let mut spans = Vec::new();
                for cmd in three {
                    spans.push(Span::styled(
                        format!(" {}", s.keymap.keys_of(*cmd)),
                        t.key(),
                    ));
                    spans.push(Span::raw(format!(" {} ", cmd.describe())));
                }
                lines.push(Line::from(spans));
            }
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                " :alerts :contacts :jit :requests :audit :dsr :tenant NAME :profile NAME :export csv|json|ndjson :q",
                t.dim(),
            ));
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(lines)
                    .scroll((*scroll, 0))
                    .block(Block::bordered().title(Span::styled(" Help ", t.title()))),
                r,
            );
        }
        Modal::Detail {
            title,
            text,
            scroll,
        } => {
            let r = popup(body, body.width.saturating_sub(4), body.height);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(text.as_str())
                    .scroll((*scroll, 0))
                    .block(Block::bordered().title(Span::styled(format!(" {title} "), t.title()))),
                r,
            );
        }
        Modal::Conflict {
            title,
            mine,
            theirs,
            scroll,
        } => {
            let r = popup(body, body.width, body.height);
            f.render_widget(Clear, r);
            let outer = Block::bordered().title(Span::styled(
                format!(" {title} changed meanwhile: nothing was overwritten "),
                t.error(),
            ));
            let inner = outer.inner(r);
            f.render_widget(outer, r);
            let [a, b] =
                Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
            f.render_widget(
                Paragraph::new(mine.as_str())
                    .scroll((*scroll, 0))
                    .block(Block::bordered().title(" yours (not saved) ")),
                a,
            );
            f.render_widget(
                Paragraph::new(theirs.as_str())
                    .scroll((*scroll, 0))
                    .block(Block::bordered().title(" on the daemon now ")),
                b,
            );
        }
        Modal::Confirm { intent, on_confirm } => {
            let r = popup(body, 56, 7);
            f.render_widget(Clear, r);
            let verb = match intent {
                super::state::Intent::Delete { .. } => "Delete",
                super::state::Intent::Revoke { .. } => "Revoke",
            };
            let button = |label: &str, focused: bool| {
                if focused {
                    Span::styled(format!("> {label} <"), t.selected())
                } else {
                    Span::raw(format!("  {label}  "))
                }
            };
            let text = Text::from(vec![
                Line::raw(""),
                Line::raw(format!(" {}", intent.question())),
                Line::raw(""),
                Line::from(vec![
                    Span::raw("     "),
                    button("Cancel", !on_confirm),
                    Span::raw("     "),
                    button(verb, *on_confirm),
                ]),
            ]);
            f.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(" Confirm ", t.error()))),
                r,
            );
        }
        Modal::Picker {
            kind,
            items,
            selected,
        } => {
            let h = (items.len() as u16 + 2).min(body.height);
            let r = popup(body, 40, h);
            f.render_widget(Clear, r);
            let title = match kind {
                PickerKind::Tenant => " Tenant ",
                PickerKind::Profile => " Act as profile ",
            };
            let lines: Vec<Line> = items
                .iter()
                .enumerate()
                .map(|(i, it)| {
                    if i == *selected {
                        Line::styled(format!("> {it}"), t.selected())
                    } else {
                        Line::raw(format!("  {it}"))
                    }
                })
                .collect();
            f.render_widget(
                Paragraph::new(lines)
                    .block(Block::bordered().title(Span::styled(title, t.title()))),
                r,
            );
        }
        Modal::ContactForm(form) => {
            let r = popup(body, 70, body.height);
            f.render_widget(Clear, r);
            let mut lines = Vec::new();
            let first = if form.new { 0 } else { 1 };
            for (i, (label, path)) in ContactForm::FIELDS.iter().enumerate() {
                if i < first {
                    lines.push(Line::from(vec![
                        Span::styled(format!(" {label:<18}"), t.dim()),
                        Span::raw(form.value_of(i)),
                    ]));
                    continue;
                }
                let style = if i == form.focus {
                    t.selected()
                } else {
                    Style::new()
                };
                let marker = if i == form.focus { ">" } else { " " };
                lines.push(Line::from(vec![
                    Span::raw(marker),
                    Span::styled(format!("{label:<18}"), t.column_header()),
                    Span::styled(form.value_of(i), style),
                ]));
                for (target, msg) in &form.errors {
                    if ContactForm::field_of(target) == Some(i) && target.starts_with(path) {
                        lines.push(Line::styled(format!("   ↳ {target}: {msg}"), t.error()));
                    }
                }
            }
            for (target, msg) in &form.errors {
                if ContactForm::field_of(target).is_none() {
                    lines.push(Line::styled(format!(" {target} {msg}"), t.error()));
                }
            }
            if form.saving {
                lines.push(Line::styled(" saving…", t.dim()));
            }
            let title = if form.new {
                " New security contact ".to_owned()
            } else {
                format!(" Edit security contact {} ", form.name.value())
            };
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(title, t.title()))),
                r,
            );
        }
        Modal::PolicyEditor(ed) => {
            let r = popup(body, body.width, body.height);
            f.render_widget(Clear, r);
            let title = if ed.new {
                " New JIT policy ".to_owned()
            } else {
                format!(" Edit JIT policy {} ", ed.name.value())
            };
            let outer = Block::bordered().title(Span::styled(title, t.title()));
            let inner = outer.inner(r);
            f.render_widget(outer, r);
            let err_h = ed.errors.len().min(4) as u16;
            let [name_a, text_a, err_a] = Layout::vertical([
                Constraint::Length(1),
                Constraint::Min(1),
                Constraint::Length(err_h),
            ])
            .areas(inner);
            let name_style = if ed.on_name {
                t.selected()
            } else {
                Style::new()
            };
            f.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled("name: ", t.column_header()),
                    Span::styled(ed.name.value().to_owned(), name_style),
                ])),
                name_a,
            );
            let h = usize::from(text_a.height.max(1));
            let top = ed.text.row.saturating_sub(h - 1);
            let lines: Vec<Line> = ed
                .text
                .lines
                .iter()
                .skip(top)
                .take(h)
                .map(|l| Line::raw(l.clone()))
                .collect();
            f.render_widget(Paragraph::new(lines), text_a);
            if !ed.on_name {
                let x = text_a.x + ed.text.col as u16;
                let y = text_a.y + (ed.text.row - top) as u16;
                f.set_cursor_position((x.min(text_a.right().saturating_sub(1)), y));
            }
            let errs: Vec<Line> = ed
                .errors
                .iter()
                .map(|(k, v)| Line::styled(format!("{k}: {v}"), t.error()))
                .collect();
            f.render_widget(Paragraph::new(errs), err_a);
        }
        Modal::Initiate(form) => {
            let r = popup(body, 72, body.height);
            f.render_widget(Clear, r);
            let mut lines = Vec::new();
            let n = form.ports.len();
            for (i, p) in form.ports.iter().enumerate() {
                let vm = p.vm.rsplit('/').next().unwrap_or("");
                let text = format!(
                    "[{}] {vm} port {} (max {})",
                    if p.picked { "x" } else { " " },
                    p.number,
                    p.max
                );
                let style = if form.focus == i {
                    t.selected()
                } else {
                    Style::new()
                };
                lines.push(Line::styled(text, style));
            }
            let fields = [
                ("source (empty: the policy's)", &form.source, n),
                ("duration (ISO 8601)", &form.duration, n + 1),
                ("justification", &form.justification, n + 2),
            ];
            for (label, input, idx) in fields {
                let style = if form.focus == idx {
                    t.selected()
                } else {
                    Style::new()
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{label:<30}"), t.column_header()),
                    Span::styled(input.value().to_owned(), style),
                ]));
            }
            for (k, v) in &form.errors {
                lines.push(Line::styled(format!("{k}: {v}"), t.error()));
            }
            f.render_widget(
                Paragraph::new(lines).block(Block::bordered().title(Span::styled(
                    format!(" Request JIT access under {} ", form.policy),
                    t.title(),
                ))),
                r,
            );
        }
        Modal::Export(form) => {
            let r = popup(body, 72, 7);
            f.render_widget(Clear, r);
            let mut fmt = vec![Span::styled("format: ", t.column_header())];
            for format in ExportFormat::ALL {
                let name = format.as_str();
                if format == form.format {
                    fmt.push(Span::styled(format!("[{name}]"), t.selected()));
                } else {
                    fmt.push(Span::raw(format!(" {name} ")));
                }
                fmt.push(Span::raw(" "));
            }
            let lines = vec![
                Line::from(fmt),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("path: ", t.column_header()),
                    Span::raw(form.path.value().to_owned()),
                ]),
                Line::styled("the file is created 0600", t.dim()),
            ];
            f.render_widget(
                Paragraph::new(lines).block(Block::bordered().title(Span::styled(
                    format!(" Export {} ", form.kind.title()),
                    t.title(),
                ))),
                r,
            );
        }
        Modal::CommandLine(_) | Modal::Filter(_) => {}
    }
}
