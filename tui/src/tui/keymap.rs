//! Keys as data: which key runs which [`Command`], the defaults, and overrides from a
//! TOML file (`[keys] delete = "D"`).
//!
//! [`COMMANDS`] is the one table of key commands: each row holds the command's name in
//! the keys file, its help text, its footer label, its default keys, where help lists
//! it and what gates it ([`Gate`]). The keymap's defaults, the help screen, the footer
//! and permission gating (`update::gate`) all read it, so adding a key is a variant of
//! [`Command`], a row here and its handler in `update::commands`. A conflicting override
//! (two commands on one key), an unknown command or key name, and a destructive command
//! on a Ctrl chord (they clash with tmux) are errors at start, naming what is wrong.
//! Text typed into a field or the command line never goes through the keymap.

mod key;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use steward::resource::Resource;

pub use key::Key;

/// Something the operator can ask for with one key. The variants are in the order of
/// [`COMMANDS`] (a test checks it), which is the order of help and footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// This help.
    Help,
    /// Quit.
    Quit,
    /// Open the selected record's details.
    Open,
    /// Close what is open, clear the filter.
    Back,
    /// Filter the list.
    Filter,
    /// Alerts: cycle the severity shown (all, High, Medium, Low, Informational).
    Severity,
    /// Alerts: cycle the status shown (all, Active, InProgress, Resolved, Dismissed).
    Status,
    /// Create a record.
    New,
    /// Edit the selected record.
    Edit,
    /// Delete the selected record (asks first).
    Delete,
    /// Request JIT access under the selected policy.
    Initiate,
    /// Revoke the selected JIT request (asks first).
    Revoke,
    /// Export the kind to a file.
    Export,
    /// DSR: confirm a pending request (it runs; an erasure erases).
    DsrConfirm,
    /// DSR: reject a pending request, with a reason.
    DsrReject,
    /// DSR: extend a request's deadline once, with a reason.
    DsrExtend,
    /// DSR: download a completed export's bundle.
    DsrBundle,
    /// Copy the selected record as JSON (OSC 52).
    Copy,
    /// Copy one field of the selected record (picked from a list).
    CopyField,
    /// The `:` command line.
    CommandLine,
    /// Reload the list.
    Refresh,
    /// Cycle the sort order.
    Sort,
    /// Freeze or resume live updates.
    Freeze,
    /// Pick the tenant.
    Tenant,
    /// Pick the acting profile.
    Profile,
    /// Selection up one row.
    Up,
    /// Selection down one row.
    Down,
    /// First record.
    Top,
    /// Last record (follows cursors to the last page).
    Bottom,
    /// Half a screen up.
    HalfPageUp,
    /// Half a screen down.
    HalfPageDown,
    /// A screen up.
    PageUp,
    /// A screen down.
    PageDown,
    /// Next tab.
    NextTab,
    /// Previous tab.
    PrevTab,
}

/// What a command needs before it runs (the daemon still decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Nothing.
    Always,
    /// The tab's kind is editable and the profile holds its write permission.
    Write,
    /// The tab's kind has an export and the profile holds its export permission.
    Export,
    /// Only on this kind's tab, with its action permission.
    ActionOn(Resource),
    /// Only on this kind's tab; reading it is enough.
    On(Resource),
}

/// Where help lists a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// One per line, with what it needs.
    Action,
    /// Three to a line under "Moving".
    Move,
}

/// One row of [`COMMANDS`].
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The command.
    pub command: Command,
    /// Its name in the keys file (`half_page_up`).
    pub name: &'static str,
    /// What it does, in help.
    pub describe: &'static str,
    /// Its footer label; `None` keeps it out of the footer.
    pub footer: Option<&'static str>,
    /// Its default keys (the first is shown in the footer).
    pub keys: &'static [Key],
    /// Where help lists it.
    pub group: Group,
    /// What it needs.
    pub gate: Gate,
    /// It destroys something: asks first, and never sits on a Ctrl chord.
    pub destructive: bool,
}

/// A row with the common defaults: an action, always allowed, not destructive.
const fn spec(
    command: Command,
    name: &'static str,
    describe: &'static str,
    footer: Option<&'static str>,
    keys: &'static [Key],
) -> Spec {
    Spec {
        command,
        name,
        describe,
        footer,
        keys,
        group: Group::Action,
        gate: Gate::Always,
        destructive: false,
    }
}

impl Spec {
    const fn gate(self, gate: Gate) -> Spec {
        Spec { gate, ..self }
    }
    const fn moving(self) -> Spec {
        Spec {
            group: Group::Move,
            ..self
        }
    }
    const fn destructive(self) -> Spec {
        Spec {
            destructive: true,
            ..self
        }
    }
}

/// Every key command, in the order of help and footer, one row each.
#[rustfmt::skip]
pub const COMMANDS: [Spec; 35] = {
    use Command as C;
    use KeyCode as K;
    [
        spec(C::Help, "help", "this help", Some("help"), &[Key::ch('?')]),
        spec(C::Quit, "quit", "quit (ctrl-c quits from anywhere)", Some("quit"), &[Key::ch('q'), Key::ctrl('c')]),
        spec(C::Open, "open", "show the record's details", Some("details"), &[Key::code(K::Enter)]),
        spec(C::Back, "back", "close, clear the filter", None, &[Key::code(K::Esc)]),
        spec(C::Filter, "filter", "filter", Some("filter"), &[Key::ch('/')]),
        spec(C::Severity, "severity", "alerts: cycle the severity shown", Some("severity"), &[Key::ch('v')])
            .gate(Gate::On(Resource::Alerts)),
        spec(C::Status, "status", "alerts: cycle the status shown", Some("status"), &[Key::ch('a')])
            .gate(Gate::On(Resource::Alerts)),
        spec(C::New, "new", "new record", Some("new"), &[Key::ch('n')]).gate(Gate::Write),
        spec(C::Edit, "edit", "edit the record", Some("edit"), &[Key::ch('e')]).gate(Gate::Write),
        spec(C::Delete, "delete", "delete the record", Some("delete"), &[Key::ch('d')])
            .gate(Gate::Write).destructive(),
        spec(C::Initiate, "initiate", "request JIT access", Some("initiate"), &[Key::ch('i')])
            .gate(Gate::ActionOn(Resource::JitPolicies)),
        spec(C::Revoke, "revoke", "revoke the JIT request", Some("revoke"), &[Key::ch('R')])
            .gate(Gate::ActionOn(Resource::JitRequests)).destructive(),
        spec(C::Export, "export", "export to a file", Some("export"), &[Key::ch('x')])
            .gate(Gate::Export),
        spec(C::DsrConfirm, "dsr_confirm", "confirm the data-subject request", Some("confirm"), &[Key::ch('C')])
            .gate(Gate::ActionOn(Resource::Dsr)).destructive(),
        spec(C::DsrReject, "dsr_reject", "reject the data-subject request", Some("reject"), &[Key::ch('X')])
            .gate(Gate::ActionOn(Resource::Dsr)).destructive(),
        spec(C::DsrExtend, "dsr_extend", "extend its deadline (once)", Some("extend"), &[Key::ch('E')])
            .gate(Gate::ActionOn(Resource::Dsr)),
        spec(C::DsrBundle, "dsr_bundle", "download the export's bundle", Some("bundle"), &[Key::ch('b')])
            .gate(Gate::ActionOn(Resource::Dsr)),
        spec(C::Copy, "copy", "copy the record as JSON", Some("copy"), &[Key::ch('y')]),
        spec(C::CopyField, "copy_field", "copy one field of the record", None, &[Key::ch('c')]),
        spec(C::CommandLine, "command", "command line (:alerts, :tenant NAME, :export csv)",
            Some("cmd"), &[Key::ch(':')]),
        spec(C::Refresh, "refresh", "refresh", Some("refresh"), &[Key::ch('r')]),
        spec(C::Sort, "sort", "cycle the sort order", None, &[Key::ch('s')]),
        spec(C::Freeze, "freeze", "freeze / resume live updates", Some("freeze"), &[Key::ch('f')]),
        spec(C::Tenant, "tenant", "pick the tenant", Some("tenant"), &[Key::ch('t')]),
        spec(C::Profile, "profile", "pick the acting profile", Some("profile"), &[Key::ch('p')]),
        spec(C::Up, "up", "move up", None, &[Key::ch('k'), Key::code(K::Up)]).moving(),
        spec(C::Down, "down", "move down", None, &[Key::ch('j'), Key::code(K::Down)]).moving(),
        spec(C::Top, "top", "go to the first record", None, &[Key::ch('g'), Key::code(K::Home)]).moving(),
        spec(C::Bottom, "bottom", "go to the last record", None, &[Key::ch('G'), Key::code(K::End)]).moving(),
        spec(C::HalfPageUp, "half_page_up", "half a page up", None, &[Key::ctrl('u')]).moving(),
        spec(C::HalfPageDown, "half_page_down", "half a page down", None, &[Key::ctrl('d')]).moving(),
        spec(C::PageUp, "page_up", "page up", None, &[Key::code(K::PageUp)]).moving(),
        spec(C::PageDown, "page_down", "page down", None, &[Key::code(K::PageDown)]).moving(),
        spec(C::NextTab, "next_tab", "next tab", None, &[Key::code(K::Tab), Key::code(K::Right)]).moving(),
        spec(C::PrevTab, "prev_tab", "previous tab", None, &[Key::code(K::BackTab), Key::code(K::Left)]).moving(),
    ]
};

impl Command {
    /// Every command, in help order.
    pub fn all() -> impl Iterator<Item = Command> {
        COMMANDS.iter().map(|s| s.command)
    }

    /// Its row in [`COMMANDS`].
    pub fn spec(self) -> &'static Spec {
        // The variants are declared in the table's order (checked by a test).
        &COMMANDS[self as usize]
    }

    /// The name used in the keys file.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// What the command does, for the help screen.
    pub fn describe(self) -> &'static str {
        self.spec().describe
    }

    /// Whether the command destroys something (never on a Ctrl chord).
    pub fn destructive(self) -> bool {
        self.spec().destructive
    }

    fn from_name(s: &str) -> Option<Command> {
        Command::all().find(|c| c.name() == s)
    }
}

/// Why the keymap could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    /// Two commands on one key.
    #[error("key `{key}` is bound to both `{first}` and `{second}` in {file}")]
    Conflict {
        /// The key.
        key: String,
        /// One command.
        first: &'static str,
        /// The other.
        second: &'static str,
        /// The keys file.
        file: String,
    },
    /// An unknown command name.
    #[error("unknown command `{name}` in {file} (known: {known})")]
    UnknownCommand {
        /// The name given.
        name: String,
        /// The keys file.
        file: String,
        /// The names that exist.
        known: String,
    },
    /// An unknown key name.
    #[error("`{key}` for `{command}` in {file} is not a key (try `D`, `ctrl-x`, `enter`, `f5`)")]
    UnknownKey {
        /// The text given.
        key: String,
        /// The command.
        command: &'static str,
        /// The keys file.
        file: String,
    },
    /// A destructive command on a Ctrl chord.
    #[error("`{command}` may not be on a ctrl chord (`{key}`) in {file}: it clashes with tmux")]
    DestructiveChord {
        /// The command.
        command: &'static str,
        /// The key.
        key: String,
        /// The keys file.
        file: String,
    },
    /// The file could not be read or parsed.
    #[error("cannot read the keys file {file}: {reason}")]
    File {
        /// The keys file.
        file: String,
        /// What went wrong.
        reason: String,
    },
}

/// The keys file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    /// Command name → one key or several.
    #[serde(default)]
    keys: BTreeMap<String, OneOrMany>,
}

/// `delete = "D"` or `down = ["j", "down"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    /// One key.
    One(String),
    /// Several keys.
    Many(Vec<String>),
}

/// Which keys run which commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    /// Per command, its keys (the first is shown in the footer).
    bindings: BTreeMap<Command, Vec<Key>>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: COMMANDS
                .iter()
                .map(|s| (s.command, s.keys.to_vec()))
                .collect(),
        }
    }
}

impl Keymap {
    /// Where the keys file is: `$STEWARD_KEYS`, else `$XDG_CONFIG_HOME/steward/keys.toml`
    /// (`~/.config/steward/keys.toml`).
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("STEWARD_KEYS") {
            return Some(PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("steward").join("keys.toml"))
    }

    /// The defaults with the overrides of `path` applied; a missing file is no override.
    pub fn load(path: Option<&Path>) -> Result<Keymap, KeymapError> {
        let Some(path) = path else {
            return Ok(Keymap::default());
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Keymap::from_toml(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keymap::default()),
            Err(e) => Err(KeymapError::File {
                file: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// The defaults with the overrides of a keys file's text (`file` names it in errors).
    pub fn from_toml(text: &str, file: &str) -> Result<Keymap, KeymapError> {
        let parsed: KeysFile = toml::from_str(text).map_err(|e| KeymapError::File {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        let mut map = Keymap::default();
        for (name, keys) in parsed.keys {
            let Some(cmd) = Command::from_name(&name) else {
                return Err(KeymapError::UnknownCommand {
                    name,
                    file: file.to_owned(),
                    known: Command::all()
                        .map(Command::name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            let texts = match keys {
                OneOrMany::One(k) => vec![k],
                OneOrMany::Many(ks) => ks,
            };
            let mut parsed_keys = Vec::new();
            for t in texts {
                let key = Key::parse(&t).ok_or_else(|| KeymapError::UnknownKey {
                    key: t.clone(),
                    command: cmd.name(),
                    file: file.to_owned(),
                })?;
                if cmd.destructive() && key.mods.contains(KeyModifiers::CONTROL) {
                    return Err(KeymapError::DestructiveChord {
                        command: cmd.name(),
                        key: t,
                        file: file.to_owned(),
                    });
                }
                parsed_keys.push(key);
            }
            map.bindings.insert(cmd, parsed_keys);
        }
        let mut seen: BTreeMap<String, Command> = BTreeMap::new();
        for (cmd, keys) in &map.bindings {
            for k in keys {
                if let Some(other) = seen.insert(k.to_string(), *cmd)
                    && other != *cmd
                {
                    return Err(KeymapError::Conflict {
                        key: k.to_string(),
                        first: other.name(),
                        second: cmd.name(),
                        file: file.to_owned(),
                    });
                }
            }
        }
        Ok(map)
    }

    /// The command a key runs, if any.
    pub fn command_for(&self, ev: &KeyEvent) -> Option<Command> {
        let key = Key::from_event(ev);
        self.bindings
            .iter()
            .find(|(_, keys)| keys.contains(&key))
            .map(|(c, _)| *c)
    }

    /// The keys of a command, as shown in help (`j/↓`).
    pub fn keys_of(&self, cmd: Command) -> String {
        self.bindings
            .get(&cmd)
            .map(|ks| {
                ks.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default()
    }

    /// One row per command in help order: its keys and what it does, with the
    /// permission it needs when it needs one (what `steward keys` and the man page print).
    pub fn rows(&self) -> Vec<(Vec<String>, String)> {
        Command::all()
            .map(|cmd| {
                let needs = crate::tui::update::required(cmd);
                let mut what = cmd.describe().to_owned();
                if !needs.is_empty() {
                    let names: Vec<&str> = needs.iter().map(|p| p.as_str()).collect();
                    what.push_str(&format!(" (needs {})", names.join(" or ")));
                }
                let keys = self
                    .bindings
                    .get(&cmd)
                    .map(|ks| ks.iter().map(ToString::to_string).collect())
                    .unwrap_or_default();
                (keys, what)
            })
            .collect()
    }

    /// The keys as a Markdown table, for README's TUI section (a test keeps the copy in
    /// the docs equal to this).
    pub fn markdown(&self) -> String {
        let mut md = String::from("| Keys | What it does |\n| --- | --- |\n");
        for (keys, what) in self.rows() {
            let keys = keys
                .iter()
                .map(|k| format!("`{}`", k.replace('|', "\\|")))
                .collect::<Vec<_>>()
                .join(" ");
            md.push_str(&format!("| {keys} | {} |\n", what.replace('|', "\\|")));
        }
        md
    }

    /// The first key of a command, as shown in the footer.
    pub fn first_key(&self, cmd: Command) -> String {
        self.bindings
            .get(&cmd)
            .and_then(|ks| ks.first())
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventKind;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: mods,
            kind: KeyEventKind::Press,
            state: ratatui::crossterm::event::KeyEventState::NONE,
        }
    }

    #[test]
    fn the_table_is_in_the_order_of_the_variants() {
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(
                spec.command as usize, i,
                "{:?} is out of place",
                spec.command
            );
        }
        let mut names: Vec<&str> = Command::all().map(Command::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len(), "two commands share a name");
        for spec in COMMANDS.iter().filter(|s| s.destructive) {
            assert!(
                spec.keys
                    .iter()
                    .all(|k| !k.mods.contains(KeyModifiers::CONTROL))
            );
        }
    }

    #[test]
    fn defaults_have_no_conflicts_and_map_vim_keys() {
        let km = Keymap::from_toml("", "test").unwrap();
        assert_eq!(km, Keymap::default());
        assert_eq!(
            km.command_for(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Command::Bottom)
        );
        assert_eq!(
            km.command_for(&ev(KeyCode::Char('d'), KeyModifiers::CONTROL)),
            Some(Command::HalfPageDown)
        );
        assert_eq!(
            km.command_for(&ev(KeyCode::Char('d'), KeyModifiers::NONE)),
            Some(Command::Delete)
        );
    }

    #[test]
    fn an_override_moves_the_key() {
        let km = Keymap::from_toml("[keys]\ndelete = \"D\"\n", "k.toml").unwrap();
        assert_eq!(
            km.command_for(&ev(KeyCode::Char('D'), KeyModifiers::SHIFT)),
            Some(Command::Delete)
        );
        assert_eq!(
            km.command_for(&ev(KeyCode::Char('d'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn a_conflicting_override_names_both_commands() {
        let err = Keymap::from_toml("[keys]\ndelete = \"e\"\n", "k.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`delete`") && msg.contains("`edit`"), "{msg}");
        assert!(msg.contains("k.toml"), "{msg}");
    }

    #[test]
    fn destructive_commands_refuse_ctrl_chords_and_unknown_names_fail() {
        let err = Keymap::from_toml("[keys]\ndelete = \"ctrl-x\"\n", "k").unwrap_err();
        assert!(matches!(err, KeymapError::DestructiveChord { .. }));
        let err = Keymap::from_toml("[keys]\nexplode = \"z\"\n", "k").unwrap_err();
        assert!(matches!(err, KeymapError::UnknownCommand { .. }));
        let err = Keymap::from_toml("[keys]\nquit = \"hyper-q\"\n", "k").unwrap_err();
        assert!(matches!(err, KeymapError::UnknownKey { .. }));
    }
}
