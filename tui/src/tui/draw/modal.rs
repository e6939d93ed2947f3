//! Drawing the open modal over the body: help (generated from the keymap's table, with
//! what the acting profile lacks), details, the 412 conflict view, confirmations,
//! pickers and the forms. A pure function of the state, like the rest of drawing.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::export_file::ExportFormat;
use crate::tui::detail;
use crate::tui::dsr::{ReasonFor, SUBJECT_KEYS};
use crate::tui::form::ContactForm;
use crate::tui::keymap::{COMMANDS, Command, Group};
use crate::tui::state::{Intent, Modal, PickerKind, State};
use crate::tui::update::session::absolute;
use crate::tui::update::{DisabledReason, disabled, required};

/// A `w`×`h` rectangle centred in `area`.
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

/// An error as a form lists it: `field: message`, the field named once (or only the
/// message when it names no field).
fn error_text(target: &str, msg: &str) -> String {
    if target.is_empty() {
        msg.to_owned()
    } else {
        format!("{target}: {msg}")
    }
}

/// The rows `texts` take wrapped at `width` columns (at least one per text).
pub(super) fn wrapped_height(texts: &[String], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    let rows: usize = texts
        .iter()
        .map(|t| t.chars().count().div_ceil(w).max(1))
        .sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// `line` with each case-insensitive match of `needle` (lower-case) in `hit`'s style.
fn highlight(line: &str, needle: &str, hit: Style) -> Line<'static> {
    if needle.is_empty() {
        return Line::raw(line.to_owned());
    }
    let lower = line.to_lowercase();
    if lower.len() != line.len() {
        // Lower-casing changed byte offsets: mark the whole line.
        return if lower.contains(needle) {
            Line::styled(line.to_owned(), hit)
        } else {
            Line::raw(line.to_owned())
        };
    }
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find(needle) {
        let start = at + i;
        let end = start + needle.len();
        spans.push(Span::raw(line[at..start].to_owned()));
        spans.push(Span::styled(line[start..end].to_owned(), hit));
        at = end;
    }
    spans.push(Span::raw(line[at..].to_owned()));
    Line::from(spans)
}

/// The help popup's lines: every key command from the keymap's table with what the
/// acting profile lacks, the moving keys, and the `:` commands.
pub(super) fn help_lines(s: &State) -> Vec<Line<'static>> {
    let t = s.theme;
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
            Span::raw(format!("{:<34}", cmd.describe())),
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
    lines.push(Line::styled(
        " 1–9 jump to the tab of that number. In a record's details: / search, n/N next/previous, w wrap or cut, G end.",
        t.dim(),
    ));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " :alerts :contacts :jit :requests :audit :dsr :tenant NAME :profile NAME :export csv|json|ndjson :verify :subject EMAIL|PHONE|IP|user NAME|host NAME :q",
        t.dim(),
    ));
    lines
}

/// Draws the open modal over the body.
pub(super) fn draw_modal(f: &mut Frame, body: Rect, s: &State, m: &Modal) {
    let t = s.theme;
    match m {
        Modal::Help { scroll } => {
            let r = popup(body, detail::help_width(body.width), body.height);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(help_lines(s))
                    .wrap(Wrap { trim: false })
                    .scroll((*scroll, 0))
                    .block(Block::bordered().title(Span::styled(" Help ", t.title()))),
                r,
            );
        }
        Modal::Detail(d) => {
            let r = popup(
                body,
                body.width.saturating_sub(detail::DETAIL_MARGIN),
                body.height,
            );
            f.render_widget(Clear, r);
            let mode = if d.wrap { "w: cut" } else { "w: wrap" };
            let block = Block::bordered()
                .title(Span::styled(format!(" {} ", d.title), t.title()))
                .title_bottom(Line::styled(format!(" / search  n next  {mode} "), t.dim()));
            let inner = block.inner(r);
            f.render_widget(block, r);
            let needle = d.needle.to_lowercase();
            let lines: Vec<Line> = d
                .text
                .lines()
                .map(|l| highlight(l, &needle, t.selected()))
                .collect();
            let mut para = Paragraph::new(lines).scroll((d.scroll, 0));
            if d.wrap {
                para = para.wrap(Wrap { trim: false });
            }
            f.render_widget(para, inner);
            if let Some(input) = &d.typing {
                let row = Rect {
                    y: inner.bottom().saturating_sub(1),
                    height: 1,
                    ..inner
                };
                f.render_widget(Clear, row);
                f.render_widget(
                    Paragraph::new(Line::from(vec![
                        Span::styled("/", t.key()),
                        Span::raw(input.value().to_owned()),
                    ])),
                    row,
                );
            }
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
                Intent::Delete { .. } => "Delete",
                Intent::Revoke { .. } => "Revoke",
                Intent::DsrConfirm { .. } => "Confirm",
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
            let w = if *kind == PickerKind::Field {
                body.width.saturating_sub(4)
            } else {
                40
            };
            let r = popup(body, w, h);
            // The selection stays inside the popup when the items are more than fit.
            let top = selected.saturating_sub(usize::from(h.saturating_sub(3)));
            f.render_widget(Clear, r);
            let title = match kind {
                PickerKind::Tenant => " Tenant ",
                PickerKind::Profile => " Act as profile ",
                PickerKind::Field => " Copy which field? ",
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
                    .scroll((u16::try_from(top).unwrap_or(0), 0))
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
                        // The label names the field; a deeper path (`…emails[1]`) is shown.
                        let text = if target == path {
                            format!("   ↳ {msg}")
                        } else {
                            format!("   ↳ {target}: {msg}")
                        };
                        lines.push(Line::styled(text, t.error()));
                    }
                }
            }
            for (target, msg) in &form.errors {
                if ContactForm::field_of(target).is_none() {
                    lines.push(Line::styled(
                        format!(" {}", error_text(target, msg)),
                        t.error(),
                    ));
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
            let what = ed.kind.singular();
            let title = if ed.new {
                format!(" New {what} (ctrl-s saves, ctrl-e opens $EDITOR) ")
            } else {
                format!(
                    " Edit {what} {} (ctrl-s saves, ctrl-e opens $EDITOR) ",
                    ed.name.value()
                )
            };
            let outer = Block::bordered().title(Span::styled(title, t.title()));
            let inner = outer.inner(r);
            f.render_widget(outer, r);
            let texts: Vec<String> = ed.errors.iter().map(|(k, v)| error_text(k, v)).collect();
            // Every error, wrapped, in up to half the editor.
            let err_h = wrapped_height(&texts, inner.width).min(inner.height / 2);
            let errs = Paragraph::new(
                texts
                    .into_iter()
                    .map(|e| Line::styled(e, t.error()))
                    .collect::<Vec<_>>(),
            )
            .wrap(Wrap { trim: false });
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
            f.render_widget(errs, err_a);
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
                lines.push(Line::styled(error_text(k, v), t.error()));
            }
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(
                        format!(" Request JIT access under {} ", form.policy),
                        t.title(),
                    ))),
                r,
            );
        }
        Modal::DsrForm(form) => {
            let r = popup(body, 70, 13);
            f.render_widget(Clear, r);
            let row_style = |i: usize| {
                if form.focus == i {
                    t.selected()
                } else {
                    Style::new()
                }
            };
            let marker = |i: usize| if form.focus == i { ">" } else { " " };
            let kind = if form.erase {
                "erase (removes what may be erased)"
            } else {
                "export (a bundle of everything)"
            };
            let mut lines = vec![Line::from(vec![
                Span::raw(marker(0)),
                Span::styled(format!("{:<8}", "Type"), t.column_header()),
                Span::styled(kind, row_style(0)),
            ])];
            for (i, (key, input)) in SUBJECT_KEYS.iter().zip(&form.subject).enumerate() {
                lines.push(Line::from(vec![
                    Span::raw(marker(i + 1)),
                    Span::styled(format!("{key:<8}"), t.column_header()),
                    Span::styled(input.value().to_owned(), row_style(i + 1)),
                ]));
            }
            lines.push(Line::styled(
                " at least one identifier; it waits for a confirmation (C)",
                t.dim(),
            ));
            for (k, v) in &form.errors {
                lines.push(Line::styled(error_text(k, v), t.error()));
            }
            if form.saving {
                lines.push(Line::styled(" opening…", t.dim()));
            }
            f.render_widget(
                Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                    Block::bordered()
                        .title(Span::styled(" Open a data-subject request ", t.title())),
                ),
                r,
            );
        }
        Modal::Reason { action, id, input } => {
            let r = popup(body, 70, 6);
            f.render_widget(Clear, r);
            let note = match action {
                ReasonFor::Reject => "kept in the request, never in the audit log",
                ReasonFor::Extend => "once per request, by two months; kept in the request",
            };
            let lines = vec![
                Line::from(vec![
                    Span::styled("reason: ", t.column_header()),
                    Span::raw(input.value().to_owned()),
                ]),
                Line::styled(note, t.dim()),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(
                        format!(" {} data-subject request {id} ", action.verb()),
                        t.title(),
                    ))),
                r,
            );
        }
        Modal::Bundle { id, path } => {
            let r = popup(body, 76, 7);
            f.render_widget(Clear, r);
            let lines = vec![
                Line::from(vec![
                    Span::styled("path: ", t.column_header()),
                    Span::raw(path.value().to_owned()),
                ]),
                Line::styled(format!("= {}", absolute(path.value().trim())), t.dim()),
                Line::styled(
                    "created 0600 and written whole; it holds personal data: keep it safe",
                    t.dim(),
                ),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(
                        format!(" Download the bundle of {id} "),
                        t.title(),
                    ))),
                r,
            );
        }
        Modal::Export(form) => {
            let r = popup(body, 76, 11);
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
                Line::from(vec![
                    Span::styled("holds: ", t.column_header()),
                    Span::raw(form.scope.clone()),
                ]),
                Line::from(vec![
                    Span::styled("path: ", t.column_header()),
                    Span::raw(form.path.value().to_owned()),
                ]),
                Line::styled(format!("= {}", absolute(form.path.value().trim())), t.dim()),
                Line::styled("created 0600; esc cancels, also while it runs", t.dim()),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(
                        format!(" Export {} ", form.kind.title()),
                        t.title(),
                    ))),
                r,
            );
        }
        Modal::CommandLine(_) | Modal::Filter(_) => {}
    }
}
