//! Data-subject requests in the TUI: the form that opens one (`n` on the DSR tab), the
//! reason a rejection or an extension records, and the bundle download's path — what a
//! tenant-admin does with `steward dsr …`, without leaving the TUI.
//!
//! What it is not: the rules (the daemon's `dsr` module decides what may happen when;
//! a confirmation of an erasure is asked first like any destructive action).

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use serde_json::{Map, Value, json};
use tui_input::Input;

use super::form::{FormOutcome, edit_input};

/// The identifiers a request can name a person by, as the API's `subject` keys.
pub const SUBJECT_KEYS: [&str; 5] = ["email", "phone", "ip", "user", "host"];

/// `n` on the DSR tab: the type and who it is about.
#[derive(Debug)]
pub struct DsrForm {
    /// Erase (true) or export (false).
    pub erase: bool,
    /// One input per [`SUBJECT_KEYS`] entry.
    pub subject: [Input; 5],
    /// The focused row: 0 is the type, then the identifiers.
    pub focus: usize,
    /// Errors by field (`subject.email`, or `""` for the request as a whole).
    pub errors: std::collections::BTreeMap<String, String>,
    /// A request is in flight.
    pub saving: bool,
}

impl Default for DsrForm {
    fn default() -> Self {
        DsrForm {
            erase: false,
            subject: Default::default(),
            focus: 1,
            errors: Default::default(),
            saving: false,
        }
    }
}

impl DsrForm {
    /// The rows: the type, then one per identifier.
    pub const ROWS: usize = 1 + SUBJECT_KEYS.len();

    /// Handles one key.
    pub fn key(&mut self, key: &KeyEvent) -> FormOutcome {
        match key.code {
            KeyCode::Esc => FormOutcome::Cancel,
            KeyCode::Enter => FormOutcome::Submit,
            KeyCode::Tab | KeyCode::Down => {
                self.focus = (self.focus + 1) % Self::ROWS;
                FormOutcome::Stay
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = (self.focus + Self::ROWS - 1) % Self::ROWS;
                FormOutcome::Stay
            }
            KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right if self.focus == 0 => {
                self.erase = !self.erase;
                FormOutcome::Stay
            }
            _ => {
                if let Some(input) = self
                    .focus
                    .checked_sub(1)
                    .and_then(|i| self.subject.get_mut(i))
                {
                    edit_input(input, key);
                }
                FormOutcome::Stay
            }
        }
    }

    /// The request body, or the field that is wrong and why (at least one identifier).
    pub fn body(&self) -> Result<Value, (String, String)> {
        let subject: Map<String, Value> = SUBJECT_KEYS
            .iter()
            .zip(&self.subject)
            .filter(|(_, i)| !i.value().trim().is_empty())
            .map(|(k, i)| ((*k).to_owned(), Value::String(i.value().trim().to_owned())))
            .collect();
        if subject.is_empty() {
            return Err((
                "subject".into(),
                "name the person by at least one of email, phone, ip, user, host".into(),
            ));
        }
        let kind = if self.erase { "erase" } else { "export" };
        Ok(json!({"type": kind, "subject": subject}))
    }
}

/// What a reason is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonFor {
    /// Rejecting a pending request.
    Reject,
    /// Extending a request's deadline (once, by two months).
    Extend,
}

impl ReasonFor {
    /// The verb, for titles and toasts.
    pub fn verb(self) -> &'static str {
        match self {
            ReasonFor::Reject => "Reject",
            ReasonFor::Extend => "Extend",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn k(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn the_form_needs_an_identifier_and_sends_only_those_given() {
        let mut f = DsrForm::default();
        assert_eq!(f.body().unwrap_err().0, "subject");
        for c in "alice@contoso.com".chars() {
            f.key(&k(c));
        }
        f.focus = 0;
        f.key(&k(' '));
        assert_eq!(
            f.body().unwrap(),
            json!({"type": "erase", "subject": {"email": "alice@contoso.com"}})
        );
    }
}
