//! `e`: a record opened in the operator's own editor (`$EDITOR`, then `$VISUAL`, then
//! `vi`), as kubectl edit and k9s do.
//!
//! The editable JSON goes to a file only its owner can read (0600, in a fresh 0700
//! directory under `$TMPDIR`), which is removed on every way out of [`run`] (the editor
//! failing, the file unreadable, a panic unwinding); the event loop suspends the TUI
//! (leaves the alternate screen and raw mode) around it. What comes back is validated by
//! the daemon: `update` sends it as a PUT with `If-Match` and shows errors at their
//! field, keeping the edit for another round ([`EditJob`]).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::Command;

use steward::resource::Resource;

/// A record to edit: what the editor gets and what the save needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditJob {
    /// Its kind (contacts, JIT policies).
    pub kind: Resource,
    /// Its name.
    pub name: String,
    /// The etag it was loaded at (`If-Match` of the save); `None` for a create.
    pub etag: Option<String>,
    /// Whether the save creates it (`If-None-Match: *`): a new policy's text re-opened.
    pub create: bool,
    /// The JSON text handed to the editor.
    pub text: String,
}

/// Why the editor gave nothing back (the TUI says so; nothing is saved).
#[derive(Debug, thiserror::Error)]
pub enum EditorError {
    /// The private directory or file could not be made.
    #[error("cannot write the record to a private temp file: {0}")]
    Temp(std::io::Error),
    /// The editor could not be started.
    #[error("cannot start the editor `{editor}`: {why} (set EDITOR)")]
    Start {
        /// The editor command.
        editor: String,
        /// Why.
        why: std::io::Error,
    },
    /// The editor exited unsuccessfully (`:cq` in vi): the edit is abandoned.
    #[error("the editor `{editor}` exited with {status}: nothing saved")]
    Failed {
        /// The editor command.
        editor: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The edited file could not be read back (deleted, not UTF-8).
    #[error("cannot read the edited record back: {0}")]
    ReadBack(std::io::Error),
}

/// The editor command: the first of `EDITOR`, `VISUAL` that is set and not blank, else
/// `vi`. `var` reads the environment (a parameter so tests need not change theirs).
pub fn editor_command(var: impl Fn(&str) -> Option<String>) -> String {
    ["EDITOR", "VISUAL"]
        .into_iter()
        .filter_map(var)
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

/// The temp file's name: the kind and the record's name, reduced to safe characters (the
/// editor shows it; `.json` picks its syntax highlighting).
fn file_name(job: &EditJob) -> String {
    let name: String = job
        .name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{name}.json", job.kind.segment())
}

/// Writes `job.text` to a private temp file, runs `editor` on it (through `sh -c`, so
/// `EDITOR="code --wait"` works as it does for git) and returns the file's text after.
/// Blocks until the editor exits; the directory is removed whatever happens.
pub fn run(job: &EditJob, editor: &str) -> Result<String, EditorError> {
    let dir = tempfile::Builder::new()
        .prefix("steward-edit-")
        .tempdir()
        .map_err(EditorError::Temp)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(EditorError::Temp)?;
    let path = dir.path().join(file_name(job));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(EditorError::Temp)?;
    file.write_all(job.text.as_bytes())
        .map_err(EditorError::Temp)?;
    drop(file);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("steward-edit")
        .arg(&path)
        .status()
        .map_err(|why| EditorError::Start {
            editor: editor.to_owned(),
            why,
        })?;
    if !status.success() {
        return Err(EditorError::Failed {
            editor: editor.to_owned(),
            status,
        });
    }
    std::fs::read_to_string(&path).map_err(EditorError::ReadBack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn job() -> EditJob {
        EditJob {
            kind: Resource::Contacts,
            name: "default/../x".into(),
            etag: Some("e1".into()),
            create: false,
            text: "{\"properties\": {}}".into(),
        }
    }

    #[test]
    fn the_editor_is_editor_then_visual_then_vi() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            editor_command(env(&[("EDITOR", "nano"), ("VISUAL", "code")])),
            "nano"
        );
        assert_eq!(
            editor_command(env(&[("EDITOR", " "), ("VISUAL", "code -w")])),
            "code -w"
        );
        assert_eq!(editor_command(env(&[])), "vi");
    }

    /// The file is private while the editor runs, and gone afterwards, whether the edit
    /// succeeded or the editor failed.
    #[test]
    fn the_temp_file_is_private_and_removed_on_every_way_out() {
        let seen = tempfile::tempdir().unwrap();
        let log = seen.path().join("log");
        // An "editor" that records the file's path and modes, then edits it.
        let editor = format!(
            "f() {{ stat -c '%a' \"$(dirname \"$1\")\" \"$1\" > {log}; echo \"$1\" >> {log}; printf '{{\"edited\": true}}' > \"$1\"; }}; f",
            log = log.display()
        );
        let out = run(&job(), &editor).unwrap();
        assert_eq!(out, "{\"edited\": true}");
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["700", "600"], "{text}");
        let file = std::path::Path::new(lines[2]);
        assert!(
            file.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("contacts-default_.._x"),
            "{text}"
        );
        assert!(!file.exists(), "the file was left behind");
        assert!(
            !file.parent().unwrap().exists(),
            "the directory was left behind"
        );
        assert_eq!(
            std::fs::metadata(seen.path()).unwrap().uid(),
            nix::unistd::getuid().as_raw()
        );
        // A failing editor: an error, and nothing left either.
        let failing = format!(
            "f() {{ echo \"$1\" > {log}; exit 3; }}; f",
            log = log.display()
        );
        let err = run(&job(), &failing).unwrap_err();
        assert!(err.to_string().contains("nothing saved"), "{err}");
        let path = std::fs::read_to_string(&log).unwrap();
        assert!(!std::path::Path::new(path.trim()).exists());
    }
}
