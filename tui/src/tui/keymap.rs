//! Keys as data: which key runs which [`Command`], the defaults, and overrides from a
//! TOML file (`[keys] delete = "D"`).
//!
//! [`COMMANDS`] (in `keymap/commands.rs`) is the one table of key commands: each row
//! holds the command's name in the keys file, its help text, its footer label, its
//! default keys, where help lists it and what gates it ([`Gate`]). The keymap's defaults,
//! the help screen, the footer and permission gating (`update::gate`) all read it, so
//! adding a key is a variant of [`Command`] and a row there, and its handler in
//! `update::commands`. A conflicting override
//! (two commands on one key), an unknown command or key name, and a destructive command
//! on a Ctrl chord (they clash with tmux) are errors at start, naming what is wrong.
//! Text typed into a field or the command line never goes through the keymap.

mod commands;
mod key;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::crossterm::event::{KeyEvent, KeyModifiers};
use serde::Deserialize;

pub use commands::{COMMANDS, Command, Gate, Group, Spec};
pub use key::Key;

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
    use ratatui::crossterm::event::{KeyCode, KeyEventKind};

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
