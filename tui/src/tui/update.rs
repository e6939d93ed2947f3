//! `update(&mut State, Action) -> Vec<Effect>`: every decision of the TUI.
//!
//! Keys become [`Command`](super::keymap::Command)s through the keymap (or edits of the
//! open modal), backend answers arrive as [`Msg`]s, and the only way out is the returned
//! [`Effect`]s: a [`Request`] for the backend task (an intent such as "delete this
//! contact with this etag", never a URL), bytes for the terminal (OSC 52), or quit.
//! Nothing here touches the terminal or the network, so all of it is tested without
//! either.
//!
//! | module | what it decides |
//! | --- | --- |
//! | [`gate`] | whether a key command is available to the acting profile here |
//! | [`commands`] | what each key command does on the list |
//! | [`modals`] | keys while a modal is open: forms, confirmations, pickers, help |
//! | [`list`] | the window of records: paging, selection anchored by id, filter, sort |
//! | [`session`] | tenant, profile and tab switches, the `:` command line, exports |
//! | [`net`] | the backend's answers |
//! | [`edit`] | `e`: a record to the operator's editor and what comes back |

pub mod commands;
pub mod edit;
pub mod gate;
pub mod list;
pub mod modals;
pub mod net;
pub mod session;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::keymap::Command;

pub use commands::command;
pub use gate::{DisabledReason, disabled, required};

use super::editor::EditJob;
use super::msg::{Msg, Request};
use super::state::State;

/// Something that happened.
///
/// One lives for a single `update` call, so a large answer is not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal is now this size (columns, rows).
    Resize(u16, u16),
    /// 250 ms passed (spinner, toast expiry, coalesced refreshes).
    Tick,
    /// The backend answered.
    Net(Msg),
    /// The editor `e` opened exited: the text it left, or why there is none.
    Edited {
        /// What was edited.
        job: EditJob,
        /// The edited text, or why the editor gave nothing back.
        result: Result<String, String>,
    },
}

/// What the event loop must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a request to the backend task.
    Send(Box<Request>),
    /// Write these bytes to the terminal (OSC 52 copy).
    Terminal(String),
    /// Leave the TUI (exit code 0).
    Quit,
    /// Suspend the TUI and open this record in the operator's editor; the event loop
    /// answers with [`Action::Edited`].
    Editor(Box<EditJob>),
}

/// Decides what an action changes and what must happen outside.
pub fn update(s: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Edited { job, result } => edit::edited(s, job, result),
        Action::Tick => tick(s),
        Action::Resize(w, h) => {
            s.size = (w, h);
            s.view_rows = usize::from(h.saturating_sub(7)).max(1);
            list::keep_in_view(s);
            s.dirty = true;
            Vec::new()
        }
        Action::Key(k) => {
            if k.kind == KeyEventKind::Release {
                return Vec::new();
            }
            s.dirty = true;
            s.touched = true;
            // Any key stops a walk to the last page (`G` on a long list).
            let mut fx = list::cancel_long_load(s);
            let cmd = s.keymap.command_for(&k);
            // The quit chord (ctrl-c) quits from anywhere, a modal open or not.
            if cmd == Some(Command::Quit) && k.modifiers.contains(KeyModifiers::CONTROL) {
                return vec![Effect::Quit];
            }
            if s.modal.is_none()
                && cmd.is_none()
                && let KeyCode::Char(d @ '1'..='9') = k.code
            {
                // 1–9 jump to the tabs shown, in order.
                let n = (d as usize) - ('1' as usize);
                if let Some(tab) = s.tabs().get(n).copied() {
                    fx.extend(session::switch_tab(s, tab));
                }
                return fx;
            }
            if s.modal.is_some() {
                fx.extend(modals::modal_key(s, k));
            } else if let Some(cmd) = cmd {
                fx.extend(command(s, cmd));
            }
            fx
        }
        Action::Net(m) => {
            s.dirty = true;
            net::net(s, m)
        }
    }
}

/// 250 ms passed: the spinner, the toast's time, and one refresh for the change events
/// that arrived since the last (at most four reloads a second however many come).
fn tick(s: &mut State) -> Vec<Effect> {
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
    if s.list.stale && s.list.loading.is_none() && !s.frozen {
        s.list.stale = false;
        return list::refresh(s);
    }
    Vec::new()
}

/// An effect sending `request` to the backend.
fn send(request: Request) -> Effect {
    Effect::Send(Box::new(request))
}
