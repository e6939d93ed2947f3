//! The editing forms: a security contact's fields, a JIT policy's JSON in a small text
//! area, and a JIT initiate (ports, source, duration).
//!
//! Forms turn keys into field edits and build the request body; they do not validate
//! beyond what is needed to build it (the daemon validates, and its 400 names the field,
//! which the form shows beside it). No I/O here.

use std::collections::BTreeMap;

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

/// What a key did to a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormOutcome {
    /// Nothing to do outside the form.
    Stay,
    /// Send it.
    Submit,
    /// Close it.
    Cancel,
}

/// Feeds a key to a single-line input.
pub fn edit_input(input: &mut Input, key: &KeyEvent) {
    input.handle_event(&Event::Key(*key));
}

/// The severities a contact can ask alerts from.
pub const SEVERITIES: [&str; 3] = ["Low", "Medium", "High"];

/// The security contact form.
#[derive(Debug)]
pub struct ContactForm {
    /// Creating (the name is editable) or editing.
    pub new: bool,
    /// The contact name.
    pub name: Input,
    /// `;`-separated emails.
    pub emails: Input,
    /// The phone as written.
    pub phone: Input,
    /// `isEnabled`.
    pub enabled: bool,
    /// `notificationsByRole.state` is `On`.
    pub by_role: bool,
    /// `notificationsByRole.roles`, comma-separated.
    pub roles: Input,
    /// Index into [`SEVERITIES`] of the alert minimal severity.
    pub severity: usize,
    /// The focused field (index into [`ContactForm::FIELDS`]).
    pub focus: usize,
    /// The etag loaded, sent as `If-Match`.
    pub etag: Option<String>,
    /// Errors by field path, from the daemon's 400.
    pub errors: BTreeMap<String, String>,
    /// A save is in flight.
    pub saving: bool,
}

impl ContactForm {
    /// Label and field path of each field, in order.
    pub const FIELDS: [(&'static str, &'static str); 7] = [
        ("Name", "name"),
        ("Emails", "properties.emails"),
        ("Phone", "properties.phone"),
        ("Enabled", "properties.isEnabled"),
        ("Notify by role", "properties.notificationsByRole.state"),
        ("Roles", "properties.notificationsByRole.roles"),
        ("Alert severity ≥", "properties.notificationsSources"),
    ];

    /// An empty form for a new contact. The name starts empty and focused: a prefilled
    /// name (`default`) would be an existing record's, and a create never replaces one.
    pub fn blank() -> ContactForm {
        ContactForm {
            new: true,
            name: Input::default(),
            emails: Input::default(),
            phone: Input::default(),
            enabled: true,
            by_role: true,
            roles: Input::new("Owner".into()),
            severity: 2,
            focus: 0,
            etag: None,
            errors: BTreeMap::new(),
            saving: false,
        }
    }

    /// A form filled from a stored contact.
    pub fn from_record(v: &Value) -> ContactForm {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let roles = v
            .pointer("/properties/notificationsByRole/roles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let sev = v
            .pointer("/properties/notificationsSources")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|s| s.get("sourceType").and_then(Value::as_str) == Some("Alert"))
            })
            .and_then(|s| s.get("minimalSeverity").and_then(Value::as_str))
            .and_then(|m| SEVERITIES.iter().position(|x| x.eq_ignore_ascii_case(m)))
            .unwrap_or(2);
        ContactForm {
            new: false,
            name: Input::new(s("/name")),
            emails: Input::new(s("/properties/emails")),
            phone: Input::new(s("/properties/phone")),
            enabled: v
                .pointer("/properties/isEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            by_role: !s("/properties/notificationsByRole/state").eq_ignore_ascii_case("off"),
            roles: Input::new(roles),
            severity: sev,
            focus: 1,
            etag: v.get("etag").and_then(Value::as_str).map(str::to_owned),
            errors: BTreeMap::new(),
            saving: false,
        }
    }

    /// The PUT body.
    pub fn body(&self) -> Value {
        let roles: Vec<&str> = self
            .roles
            .value()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .collect();
        let mut props = serde_json::Map::new();
        let emails = self.emails.value().trim();
        if !emails.is_empty() {
            props.insert("emails".into(), json!(emails));
        }
        let phone = self.phone.value().trim();
        if !phone.is_empty() {
            props.insert("phone".into(), json!(phone));
        }
        props.insert("isEnabled".into(), json!(self.enabled));
        props.insert(
            "notificationsByRole".into(),
            json!({"state": if self.by_role { "On" } else { "Off" }, "roles": roles}),
        );
        props.insert(
            "notificationsSources".into(),
            json!([{"sourceType": "Alert", "minimalSeverity": SEVERITIES[self.severity % 3]}]),
        );
        json!({ "properties": props })
    }

    /// The name the record is saved under.
    pub fn record_name(&self) -> String {
        self.name.value().trim().to_owned()
    }

    /// The field an error path belongs to, if any.
    pub fn field_of(target: &str) -> Option<usize> {
        Self::FIELDS
            .iter()
            .enumerate()
            .rev()
            .find(|(_, (_, path))| target.starts_with(path))
            .map(|(i, _)| i)
    }

    /// Handles one key.
    pub fn key(&mut self, key: &KeyEvent) -> FormOutcome {
        let first = if self.new { 0 } else { 1 };
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancel,
            KeyCode::Enter => return FormOutcome::Submit,
            KeyCode::Tab | KeyCode::Down => {
                self.focus = if self.focus + 1 >= Self::FIELDS.len() {
                    first
                } else {
                    self.focus + 1
                }
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = if self.focus <= first {
                    Self::FIELDS.len() - 1
                } else {
                    self.focus - 1
                }
            }
            _ => match self.focus {
                0 => edit_input(&mut self.name, key),
                1 => edit_input(&mut self.emails, key),
                2 => edit_input(&mut self.phone, key),
                3 if matches!(
                    key.code,
                    KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right
                ) =>
                {
                    self.enabled = !self.enabled
                }
                4 if matches!(
                    key.code,
                    KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right
                ) =>
                {
                    self.by_role = !self.by_role
                }
                5 => edit_input(&mut self.roles, key),
                6 => match key.code {
                    KeyCode::Char(' ') | KeyCode::Right => self.severity = (self.severity + 1) % 3,
                    KeyCode::Left => self.severity = (self.severity + 2) % 3,
                    _ => {}
                },
                _ => {}
            },
        }
        FormOutcome::Stay
    }

    /// The text shown for field `i`.
    pub fn value_of(&self, i: usize) -> String {
        let onoff = |b: bool, on: &str, off: &str| if b { on } else { off }.to_owned();
        match i {
            0 => self.name.value().to_owned(),
            1 => self.emails.value().to_owned(),
            2 => self.phone.value().to_owned(),
            3 => onoff(self.enabled, "[x] yes", "[ ] no"),
            4 => onoff(self.by_role, "[x] On", "[ ] Off"),
            5 => self.roles.value().to_owned(),
            _ => format!("< {} >", SEVERITIES[self.severity % 3]),
        }
    }
}

/// A minimal multi-line text area (the JIT policy JSON). Cursor by line and character.
#[derive(Debug, Clone, Default)]
pub struct TextArea {
    /// The lines.
    pub lines: Vec<String>,
    /// Cursor line.
    pub row: usize,
    /// Cursor column, in characters.
    pub col: usize,
}

impl TextArea {
    /// A text area holding `text`.
    pub fn new(text: &str) -> TextArea {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        TextArea {
            lines,
            row: 0,
            col: 0,
        }
    }

    /// The whole text.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    fn byte_at(line: &str, col: usize) -> usize {
        line.char_indices().nth(col).map_or(line.len(), |(b, _)| b)
    }

    fn line_len(&self) -> usize {
        self.lines.get(self.row).map_or(0, |l| l.chars().count())
    }

    /// Handles an editing key; returns false for keys it does not use.
    pub fn key(&mut self, key: &KeyEvent) -> bool {
        if self.lines.is_empty() {
            self.lines.push(String::new());
        }
        self.row = self.row.min(self.lines.len() - 1);
        self.col = self.col.min(self.line_len());
        let row = self.row;
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                let b = Self::byte_at(&self.lines[row], self.col);
                self.lines[row].insert(b, c);
                self.col += 1;
            }
            KeyCode::Enter => {
                let b = Self::byte_at(&self.lines[row], self.col);
                let rest = self.lines[row].split_off(b);
                let indent: String = self.lines[row].chars().take_while(|c| *c == ' ').collect();
                self.col = indent.chars().count();
                self.lines.insert(row + 1, indent + &rest);
                self.row += 1;
            }
            KeyCode::Backspace => {
                if self.col > 0 {
                    let b = Self::byte_at(&self.lines[row], self.col - 1);
                    self.lines[row].remove(b);
                    self.col -= 1;
                } else if row > 0 {
                    let line = self.lines.remove(row);
                    self.row -= 1;
                    self.col = self.line_len();
                    self.lines[self.row].push_str(&line);
                }
            }
            KeyCode::Delete => {
                if self.col < self.line_len() {
                    let b = Self::byte_at(&self.lines[row], self.col);
                    self.lines[row].remove(b);
                } else if row + 1 < self.lines.len() {
                    let next = self.lines.remove(row + 1);
                    self.lines[row].push_str(&next);
                }
            }
            KeyCode::Left => {
                if self.col > 0 {
                    self.col -= 1;
                } else if row > 0 {
                    self.row -= 1;
                    self.col = self.line_len();
                }
            }
            KeyCode::Right => {
                if self.col < self.line_len() {
                    self.col += 1;
                } else if row + 1 < self.lines.len() {
                    self.row += 1;
                    self.col = 0;
                }
            }
            KeyCode::Up => self.row = self.row.saturating_sub(1),
            KeyCode::Down => self.row = (self.row + 1).min(self.lines.len() - 1),
            KeyCode::Home => self.col = 0,
            KeyCode::End => self.col = self.line_len(),
            KeyCode::PageUp => self.row = self.row.saturating_sub(10),
            KeyCode::PageDown => self.row = (self.row + 10).min(self.lines.len() - 1),
            _ => return false,
        }
        self.col = self.col.min(self.line_len());
        true
    }
}

/// One port a JIT initiate may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortChoice {
    /// The VM's id.
    pub vm: String,
    /// The port.
    pub number: u16,
    /// The policy's `maxRequestAccessDuration`.
    pub max: String,
    /// Asked for.
    pub picked: bool,
}

/// The JIT initiate form.
#[derive(Debug)]
pub struct InitiateForm {
    /// The policy's name.
    pub policy: String,
    /// The ports of the policy.
    pub ports: Vec<PortChoice>,
    /// The source address (empty: the policy's single allowed address).
    pub source: Input,
    /// How long, ISO 8601.
    pub duration: Input,
    /// Why.
    pub justification: Input,
    /// Focus: a port index, then source, duration, justification.
    pub focus: usize,
    /// Errors by field path from the daemon (or the duration parser).
    pub errors: BTreeMap<String, String>,
    /// A request is in flight.
    pub saving: bool,
}

impl InitiateForm {
    /// A form for the policy `v`.
    pub fn for_policy(v: &Value) -> InitiateForm {
        let mut ports = Vec::new();
        for vm in v
            .pointer("/properties/virtualMachines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = vm
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            for p in vm
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(n) = p
                    .get("number")
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
                else {
                    continue;
                };
                ports.push(PortChoice {
                    vm: id.clone(),
                    number: n,
                    max: p
                        .get("maxRequestAccessDuration")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    picked: ports.is_empty(),
                });
            }
        }
        InitiateForm {
            policy: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            ports,
            source: Input::default(),
            duration: Input::new("PT1H".into()),
            justification: Input::default(),
            focus: 0,
            errors: BTreeMap::new(),
            saving: false,
        }
    }

    fn field_count(&self) -> usize {
        self.ports.len() + 3
    }

    /// Handles one key.
    pub fn key(&mut self, key: &KeyEvent) -> FormOutcome {
        let n = self.ports.len();
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancel,
            KeyCode::Enter => return FormOutcome::Submit,
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1) % self.field_count(),
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = (self.focus + self.field_count() - 1) % self.field_count()
            }
            _ if self.focus < n => {
                if key.code == KeyCode::Char(' ') {
                    self.ports[self.focus].picked = !self.ports[self.focus].picked;
                }
            }
            _ if self.focus == n => edit_input(&mut self.source, key),
            _ if self.focus == n + 1 => edit_input(&mut self.duration, key),
            _ => edit_input(&mut self.justification, key),
        }
        FormOutcome::Stay
    }

    /// The initiate body for `now`, or the error to show.
    pub fn body(&self, now: jiff::Timestamp) -> Result<Value, (String, String)> {
        let dur = steward::model::jit::parse_access_duration(self.duration.value().trim())
            .map_err(|e| ("duration".to_owned(), e.to_owned()))?;
        let end = now
            .checked_add(dur)
            .map_err(|_| ("duration".to_owned(), "too long".to_owned()))?;
        let mut vms: Vec<(String, Vec<Value>)> = Vec::new();
        for p in self.ports.iter().filter(|p| p.picked) {
            let mut port = json!({"number": p.number, "endTimeUtc": end.to_string()});
            let src = self.source.value().trim();
            if !src.is_empty() {
                port["allowedSourceAddressPrefix"] = json!(src);
            }
            match vms.iter_mut().find(|(id, _)| *id == p.vm) {
                Some((_, ports)) => ports.push(port),
                None => vms.push((p.vm.clone(), vec![port])),
            }
        }
        if vms.is_empty() {
            return Err(("ports".into(), "pick at least one port (space)".into()));
        }
        let mut body = json!({
            "virtualMachines": vms.into_iter().map(|(id, ports)| json!({"id": id, "ports": ports})).collect::<Vec<_>>()
        });
        let why = self.justification.value().trim();
        if !why.is_empty() {
            body["justification"] = json!(why);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::{KeyEventKind, KeyEventState};

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn contact_form_round_trips_a_record_into_a_body() {
        let v = json!({"name": "default", "etag": "e1", "properties": {
            "emails": "a@x.com", "phone": "(214)275-4038", "isEnabled": false,
            "notificationsByRole": {"state": "Off", "roles": ["Owner", "Contributor"]},
            "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Medium"}]}});
        let f = ContactForm::from_record(&v);
        assert_eq!(f.etag.as_deref(), Some("e1"));
        let b = f.body();
        assert_eq!(b["properties"]["emails"], "a@x.com");
        assert_eq!(b["properties"]["isEnabled"], false);
        assert_eq!(b["properties"]["notificationsByRole"]["state"], "Off");
        assert_eq!(
            b["properties"]["notificationsByRole"]["roles"],
            json!(["Owner", "Contributor"])
        );
        assert_eq!(
            b["properties"]["notificationsSources"][0]["minimalSeverity"],
            "Medium"
        );
        assert_eq!(ContactForm::field_of("properties.emails"), Some(1));
        assert_eq!(
            ContactForm::field_of("properties.notificationsSources[0].minimalSeverity"),
            Some(6)
        );
    }

    #[test]
    fn text_area_splits_and_joins_lines() {
        let mut t = TextArea::new("ab");
        t.key(&k(KeyCode::Right));
        t.key(&k(KeyCode::Enter));
        assert_eq!(t.lines, vec!["a", "b"]);
        t.key(&k(KeyCode::Backspace));
        assert_eq!(t.text(), "ab");
    }
}
