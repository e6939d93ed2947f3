//! Keys as data: which key runs which [`Command`], the defaults, and overrides from a
//! TOML file (`[keys] delete = "D"`).
//!
//! The help screen and the footer are generated from the [`Keymap`], so they cannot
//! drift from what the keys do. A conflicting override (two commands on one key), an
//! unknown command or key name, and a destructive command on a Ctrl chord (they clash
//! with tmux) are errors at start, naming what is wrong. Text typed into a field or the
//! command line never goes through the keymap.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

/// Something the operator can ask for with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
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
    /// Open the selected record's details.
    Open,
    /// Close what is open, clear the filter.
    Back,
    /// Filter the list.
    Filter,
    /// The `:` command line.
    CommandLine,
    /// This help.
    Help,
    /// Cycle the sort order.
    Sort,
    /// Reload the list.
    Refresh,
    /// Freeze or resume live updates.
    Freeze,
    /// Pick the tenant.
    Tenant,
    /// Pick the acting profile.
    Profile,
    /// Quit.
    Quit,
    /// Create a record.
    New,
    /// Edit the selected record.
    Edit,
    /// Delete the selected record (asks first).
    Delete,
    /// Export the kind to a file.
    Export,
    /// Copy the selected record as JSON (OSC 52).
    Copy,
    /// Request JIT access under the selected policy.
    Initiate,
    /// Revoke the selected JIT request (asks first).
    Revoke,
}

impl Command {
    /// Every command, in help order.
    pub const ALL: [Command; 28] = [
        Command::Up,
        Command::Down,
        Command::Top,
        Command::Bottom,
        Command::HalfPageUp,
        Command::HalfPageDown,
        Command::PageUp,
        Command::PageDown,
        Command::NextTab,
        Command::PrevTab,
        Command::Open,
        Command::Back,
        Command::Filter,
        Command::CommandLine,
        Command::Help,
        Command::Sort,
        Command::Refresh,
        Command::Freeze,
        Command::Tenant,
        Command::Profile,
        Command::Quit,
        Command::New,
        Command::Edit,
        Command::Delete,
        Command::Export,
        Command::Copy,
        Command::Initiate,
        Command::Revoke,
    ];

    /// The name used in the keys file.
    pub fn name(self) -> &'static str {
        match self {
            Command::Up => "up",
            Command::Down => "down",
            Command::Top => "top",
            Command::Bottom => "bottom",
            Command::HalfPageUp => "half_page_up",
            Command::HalfPageDown => "half_page_down",
            Command::PageUp => "page_up",
            Command::PageDown => "page_down",
            Command::NextTab => "next_tab",
            Command::PrevTab => "prev_tab",
            Command::Open => "open",
            Command::Back => "back",
            Command::Filter => "filter",
            Command::CommandLine => "command",
            Command::Help => "help",
            Command::Sort => "sort",
            Command::Refresh => "refresh",
            Command::Freeze => "freeze",
            Command::Tenant => "tenant",
            Command::Profile => "profile",
            Command::Quit => "quit",
            Command::New => "new",
            Command::Edit => "edit",
            Command::Delete => "delete",
            Command::Export => "export",
            Command::Copy => "copy",
            Command::Initiate => "initiate",
            Command::Revoke => "revoke",
        }
    }

    /// What the command does, for the help screen.
    pub fn describe(self) -> &'static str {
        match self {
            Command::Up => "move up",
            Command::Down => "move down",
            Command::Top => "go to the first record",
            Command::Bottom => "go to the last record",
            Command::HalfPageUp => "half a page up",
            Command::HalfPageDown => "half a page down",
            Command::PageUp => "page up",
            Command::PageDown => "page down",
            Command::NextTab => "next tab",
            Command::PrevTab => "previous tab",
            Command::Open => "show the record's details",
            Command::Back => "close, clear the filter",
            Command::Filter => "filter",
            Command::CommandLine => "command line (:alerts, :tenant NAME, :export csv)",
            Command::Help => "this help",
            Command::Sort => "cycle the sort order",
            Command::Refresh => "refresh",
            Command::Freeze => "freeze / resume live updates",
            Command::Tenant => "pick the tenant",
            Command::Profile => "pick the acting profile",
            Command::Quit => "quit",
            Command::New => "new record",
            Command::Edit => "edit the record",
            Command::Delete => "delete the record",
            Command::Export => "export to a file",
            Command::Copy => "copy the record as JSON",
            Command::Initiate => "request JIT access",
            Command::Revoke => "revoke the JIT request",
        }
    }

    /// The short footer label.
    pub fn label(self) -> &'static str {
        match self {
            Command::Open => "details",
            Command::Filter => "filter",
            Command::CommandLine => "cmd",
            Command::Help => "help",
            Command::Refresh => "refresh",
            Command::Freeze => "freeze",
            Command::Quit => "quit",
            Command::New => "new",
            Command::Edit => "edit",
            Command::Delete => "delete",
            Command::Export => "export",
            Command::Copy => "copy",
            Command::Initiate => "initiate",
            Command::Revoke => "revoke",
            Command::Tenant => "tenant",
            Command::Profile => "profile",
            other => other.name(),
        }
    }

    /// Whether the command destroys something (never on a Ctrl chord).
    pub fn destructive(self) -> bool {
        matches!(self, Command::Delete | Command::Revoke)
    }

    fn from_name(s: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// One key, as the keymap stores it: a code and the modifiers that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Ctrl and Alt (Shift is folded into the character).
    pub mods: KeyModifiers,
}

impl Key {
    /// A plain character key.
    pub const fn ch(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            mods: KeyModifiers::NONE,
        }
    }

    const fn code(code: KeyCode) -> Key {
        Key {
            code,
            mods: KeyModifiers::NONE,
        }
    }

    const fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            mods: KeyModifiers::CONTROL,
        }
    }

    /// The key of a terminal event, Shift folded away.
    pub fn from_event(ev: &KeyEvent) -> Key {
        let mods = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match ev.code {
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        Key { code, mods }
    }

    /// Parses `D`, `ctrl-d`, `alt-x`, `enter`, `esc`, `tab`, `backtab`, `up`, `pgdn`, `f5`, `space`.
    pub fn parse(s: &str) -> Option<Key> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(if mods.is_empty() {
                c
            } else {
                c.to_ascii_lowercase()
            }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                f if f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
                _ => return None,
            },
        };
        Some(Key { code, mods })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("backtab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::F(n) => write!(f, "f{n}"),
            _ => f.write_str("?"),
        }
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
        use Command as C;
        let b: Vec<(Command, Vec<Key>)> = vec![
            (C::Up, vec![Key::ch('k'), Key::code(KeyCode::Up)]),
            (C::Down, vec![Key::ch('j'), Key::code(KeyCode::Down)]),
            (C::Top, vec![Key::ch('g'), Key::code(KeyCode::Home)]),
            (C::Bottom, vec![Key::ch('G'), Key::code(KeyCode::End)]),
            (C::HalfPageUp, vec![Key::ctrl('u')]),
            (C::HalfPageDown, vec![Key::ctrl('d')]),
            (C::PageUp, vec![Key::code(KeyCode::PageUp)]),
            (C::PageDown, vec![Key::code(KeyCode::PageDown)]),
            (
                C::NextTab,
                vec![Key::code(KeyCode::Tab), Key::code(KeyCode::Right)],
            ),
            (
                C::PrevTab,
                vec![Key::code(KeyCode::BackTab), Key::code(KeyCode::Left)],
            ),
            (C::Open, vec![Key::code(KeyCode::Enter)]),
            (C::Back, vec![Key::code(KeyCode::Esc)]),
            (C::Filter, vec![Key::ch('/')]),
            (C::CommandLine, vec![Key::ch(':')]),
            (C::Help, vec![Key::ch('?')]),
            (C::Sort, vec![Key::ch('s')]),
            (C::Refresh, vec![Key::ch('r')]),
            (C::Freeze, vec![Key::ch('f')]),
            (C::Tenant, vec![Key::ch('t')]),
            (C::Profile, vec![Key::ch('p')]),
            (C::Quit, vec![Key::ch('q')]),
            (C::New, vec![Key::ch('n')]),
            (C::Edit, vec![Key::ch('e')]),
            (C::Delete, vec![Key::ch('d')]),
            (C::Export, vec![Key::ch('x')]),
            (C::Copy, vec![Key::ch('y')]),
            (C::Initiate, vec![Key::ch('i')]),
            (C::Revoke, vec![Key::ch('R')]),
        ];
        Keymap {
            bindings: b.into_iter().collect(),
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
                    known: Command::ALL.map(Command::name).join(", "),
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
