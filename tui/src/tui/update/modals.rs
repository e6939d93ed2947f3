//! Keys while a modal is open: help and detail scrolling, the destructive-action
//! confirmation (focus starts on Cancel), the command line and filter inputs, pickers,
//! the contact form, the JIT policy editor, the initiate form and the export form.
//! Submitting a form or confirming becomes a [`Change`] request here.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;
use steward::resource::Resource;
use tui_input::Input;

use super::list::{apply_filter, refresh};
use super::session::{run_command_line, set_profile, set_tenant, start_bundle, start_export};
use super::{Effect, command, send};
use crate::export_file::ExportFormat;
use crate::tui::detail;
use crate::tui::form::{FormOutcome, edit_input};
use crate::tui::keymap::Command;
use crate::tui::msg::{Change, Request};
use crate::tui::state::{Intent, Modal, PickerKind, State};

/// Scrolls a text modal by a moving command.
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

/// Copies the value of a picked `path = value` item by OSC 52.
fn copy_field(s: &mut State, item: &str) -> Vec<Effect> {
    let (path, value) = item.split_once(" = ").unwrap_or(("field", item));
    let (seq, cut) = crate::tui::export::osc52(value, s.clipboard.passthrough);
    let note = crate::tui::export::copy_note(path, value.len(), cut, s.clipboard);
    s.toast(note, cut);
    vec![Effect::Terminal(seq)]
}

/// The words the command line completes: tabs, then commands.
const COMMAND_WORDS: [&str; 16] = [
    "alerts", "contacts", "jit", "requests", "audit", "dsr", "overview", "verify", "subject",
    "tenant", "profile", "export", "help", "quit", "q", "as",
];

/// `line` completed at its last word: a command, a tenant after `tenant`, a profile
/// after `profile`, a format after `export`; unchanged when nothing or several match
/// (their common start then).
fn complete(s: &State, line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let last = words.last().copied().unwrap_or("");
    let candidates: Vec<String> = match words.as_slice() {
        [_] => COMMAND_WORDS.iter().map(|w| (*w).to_owned()).collect(),
        ["tenant", _] => s.session.tenants.iter().map(|t| t.id.clone()).collect(),
        ["profile" | "as", _] => s
            .session
            .tenant_info()
            .map(|i| i.actable_profiles.clone())
            .unwrap_or_default(),
        ["export", _] => ["csv", "json", "ndjson"].map(str::to_owned).to_vec(),
        ["overview", _] => ["30", "90"].map(str::to_owned).to_vec(),
        _ => Vec::new(),
    };
    let hits: Vec<&String> = candidates.iter().filter(|c| c.starts_with(last)).collect();
    let done = match hits.as_slice() {
        [] => return line.to_owned(),
        [one] => format!("{one} "),
        many => {
            let first = many[0].as_str();
            let common = (last.len()..=first.len())
                .rev()
                .find(|&n| many.iter().all(|m| m.get(..n) == first.get(..n)))
                .unwrap_or(last.len());
            first[..common].to_owned()
        }
    };
    let head = &line[..line.len() - last.len()];
    format!("{head}{done}")
}

/// The help popup's last scroll position on the current terminal.
fn help_max_scroll(s: &State) -> u16 {
    let lines = crate::tui::draw::help_text(s);
    let w = detail::help_width(s.size.0).saturating_sub(2);
    let (_, h) = detail::inner(s.size, 0);
    let total = detail::rows(lines.iter().map(String::as_str), w, true);
    u16::try_from(total.saturating_sub(usize::from(h))).unwrap_or(u16::MAX)
}

/// A key while a modal is open.
pub(super) fn modal_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
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
            let max = help_max_scroll(s);
            if cmd == Some(Command::Bottom) {
                scroll = max;
            }
            self::scroll(&mut scroll, cmd, page);
            s.modal = Some(Modal::Help {
                scroll: scroll.min(max),
            });
        }
        Modal::Detail(mut d) => {
            if let Some(mut input) = d.typing.take() {
                match k.code {
                    KeyCode::Esc => {}
                    KeyCode::Enter => {
                        d.needle = input.value().trim().to_owned();
                        if !d.find(s.size, true) && !d.needle.is_empty() {
                            s.toast(format!("`{}` is not in this record", d.needle), true);
                        }
                    }
                    _ => {
                        edit_input(&mut input, &k);
                        d.typing = Some(input);
                    }
                }
                s.modal = Some(Modal::Detail(d));
                return Vec::new();
            }
            if close || cmd == Some(Command::Open) {
                return Vec::new();
            }
            match k.code {
                KeyCode::Char('/') => d.typing = Some(Input::default()),
                KeyCode::Char('n') | KeyCode::Char('N') => {
                    let forward = k.code == KeyCode::Char('n');
                    if !d.find(s.size, forward) {
                        s.toast("nothing to find: / searches this record", false);
                    }
                }
                KeyCode::Char('w') => {
                    d.wrap = !d.wrap;
                    d.scroll = d.scroll.min(d.max_scroll(s.size));
                }
                _ if cmd == Some(Command::Copy) => {
                    s.modal = Some(Modal::Detail(d));
                    return command(s, Command::Copy);
                }
                _ if cmd == Some(Command::Bottom) => d.scroll = d.max_scroll(s.size),
                _ => {
                    self::scroll(&mut d.scroll, cmd, page);
                    d.scroll = d.scroll.min(d.max_scroll(s.size));
                }
            }
            s.modal = Some(Modal::Detail(d));
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
            KeyCode::Enter if on_confirm => return confirmed(intent),
            KeyCode::Enter => {}
            _ => s.modal = Some(Modal::Confirm { intent, on_confirm }),
        },
        Modal::CommandLine(mut input) => match k.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let line = input.value().trim().to_owned();
                if !line.is_empty() && s.history.last() != Some(&line) {
                    s.history.push(line.clone());
                }
                return run_command_line(s, &line);
            }
            KeyCode::Tab => {
                input = Input::new(complete(s, input.value()));
                s.modal = Some(Modal::CommandLine(input));
            }
            KeyCode::Up | KeyCode::Down => {
                let at = s.history.iter().position(|h| h == input.value());
                let next = match (k.code, at) {
                    (KeyCode::Up, None) => s.history.last(),
                    (KeyCode::Up, Some(i)) => s.history.get(i.saturating_sub(1)),
                    (_, Some(i)) => s.history.get(i + 1),
                    (_, None) => None,
                };
                input = Input::new(next.cloned().unwrap_or_default());
                s.modal = Some(Modal::CommandLine(input));
            }
            _ => {
                edit_input(&mut input, &k);
                s.modal = Some(Modal::CommandLine(input));
            }
        },
        Modal::Filter(mut input) => match k.code {
            KeyCode::Esc => {
                // Back to the filter there was before `/`.
                let before = s.filter_before.take().unwrap_or_default();
                if before != s.list.filter {
                    return apply_filter(s, before);
                }
            }
            KeyCode::Enter => {
                s.filter_before = None;
                let value = input.value().trim().to_owned();
                if value != s.list.filter {
                    return apply_filter(s, value);
                }
            }
            _ => {
                edit_input(&mut input, &k);
                let value = input.value().trim().to_owned();
                s.modal = Some(Modal::Filter(input));
                // Filtered as it is typed (a newer list fetch cancels the older one).
                if value != s.list.filter {
                    let fx = apply_filter(s, value);
                    s.toast = None;
                    return fx;
                }
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
                        PickerKind::Field => copy_field(s, &choice),
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
                    let create = f.new;
                    s.modal = Some(Modal::ContactForm(f));
                    return save(Resource::Contacts, name, body, etag, create);
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
            if k.code == KeyCode::Char('e') && k.modifiers.contains(KeyModifiers::CONTROL) {
                // The text (a kept edit included) into $EDITOR; the modal stays meanwhile.
                let job = super::edit::job_of(&ed);
                s.modal = Some(Modal::PolicyEditor(ed));
                return vec![Effect::Editor(Box::new(job))];
            }
            if submit {
                let name = ed.name.value().trim().to_owned();
                match serde_json::from_str::<Value>(&ed.text.text()) {
                    Ok(body) if !name.is_empty() => {
                        ed.saving = true;
                        ed.errors.clear();
                        let etag = ed.etag.clone();
                        let create = ed.new;
                        let kind = ed.kind;
                        s.modal = Some(Modal::PolicyEditor(ed));
                        return save(kind, name, body, etag, create);
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
                        return vec![send(Request::Change(Change::Initiate { policy, body }))];
                    }
                    Err((field, why)) => {
                        f.errors.insert(field, why);
                        s.modal = Some(Modal::Initiate(f));
                    }
                },
            }
        }
        Modal::DsrForm(mut f) => {
            if f.saving {
                s.modal = Some(Modal::DsrForm(f));
                return Vec::new();
            }
            match f.key(&k) {
                FormOutcome::Cancel => {}
                FormOutcome::Stay => s.modal = Some(Modal::DsrForm(f)),
                FormOutcome::Submit => match f.body() {
                    Ok(body) => {
                        f.saving = true;
                        f.errors.clear();
                        s.modal = Some(Modal::DsrForm(f));
                        return vec![send(Request::Change(Change::DsrOpen { body }))];
                    }
                    Err((field, why)) => {
                        f.errors.insert(field, why);
                        s.modal = Some(Modal::DsrForm(f));
                    }
                },
            }
        }
        Modal::Reason {
            action,
            id,
            mut input,
        } => match k.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let reason = input.value().trim().to_owned();
                if reason.is_empty() {
                    s.toast(format!("{}: a reason is required", action.verb()), true);
                    s.modal = Some(Modal::Reason { action, id, input });
                    return Vec::new();
                }
                return vec![send(Request::Change(Change::DsrReason {
                    id,
                    action,
                    reason,
                }))];
            }
            _ => {
                edit_input(&mut input, &k);
                s.modal = Some(Modal::Reason { action, id, input });
            }
        },
        Modal::Bundle { id, mut path } => match k.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let file = path.value().trim().to_owned();
                if file.is_empty() {
                    s.toast("bundle: a file path is needed", true);
                    s.modal = Some(Modal::Bundle { id, path });
                    return Vec::new();
                }
                return start_bundle(s, id, file);
            }
            _ => {
                edit_input(&mut path, &k);
                s.modal = Some(Modal::Bundle { id, path });
            }
        },
        Modal::Export(mut f) => match k.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let path = f.path.value().trim().to_owned();
                if path.is_empty() {
                    s.toast("export: a file path is needed", true);
                    s.modal = Some(Modal::Export(f));
                    return Vec::new();
                }
                return start_export(s, f.kind, f.format, path, f.filters);
            }
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                let old = f.format.as_str();
                let all = ExportFormat::ALL;
                let n = all.len();
                let i = all.iter().position(|x| *x == f.format).unwrap_or(0);
                let back = matches!(k.code, KeyCode::BackTab | KeyCode::Up);
                f.format = all[if back { (i + n - 1) % n } else { (i + 1) % n }];
                let new = f.format.as_str();
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

/// The request saving a record; `create` refuses to replace one of that name.
pub(super) fn save(
    kind: Resource,
    name: String,
    body: Value,
    etag: Option<String>,
    create: bool,
) -> Vec<Effect> {
    vec![send(Request::Change(Change::Save {
        kind,
        name,
        body,
        etag,
        create,
    }))]
}

/// The confirmed half of a destructive action: only now does it become a request.
fn confirmed(intent: Intent) -> Vec<Effect> {
    let change = match intent {
        Intent::Delete { kind, name, etag } => Change::Delete { kind, name, etag },
        Intent::Revoke { id } => Change::Revoke { id },
        Intent::DsrConfirm { id, .. } => Change::DsrConfirm { id },
    };
    vec![send(Request::Change(change))]
}
