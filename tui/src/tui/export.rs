//! Getting records out of the TUI: the export file's default name, and the OSC 52
//! sequence that copies text to the clipboard of the terminal the operator sits at
//! (through SSH and tmux).
//!
//! Whether the sequence reaches a clipboard is up to the terminal (and tmux), which
//! never answers: [`copy_note`] says what was sent and what enables it, and never that
//! a copy happened.
//!
//! The streaming itself is the backend task's (`backend.rs`), into the writer the CLI
//! uses too ([`crate::export_file`]); this module holds the pure parts.

use base64::Engine;
use steward::resource::Resource;

use crate::export_file::ExportFormat;

/// The most JSON copied through OSC 52; terminals drop longer sequences.
pub const OSC52_MAX: usize = 100 * 1024;

/// `./steward-<tenant>-<kind>-<timestamp>.<ext>`, in UTC.
pub fn default_export_path(tenant: &str, kind: Resource, format: ExportFormat) -> String {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    format!(
        "./steward-{tenant}-{}-{now}.{}",
        kind.segment(),
        format.as_str()
    )
}

/// The OSC 52 sequence that copies `text` (cut to [`OSC52_MAX`] bytes on a character
/// boundary), wrapped in tmux's DCS passthrough only when `passthrough` (asked for
/// with `STEWARD_OSC52=passthrough`: it needs tmux's `allow-passthrough on`, while a
/// plain sequence is handled by tmux's own `set-clipboard`); and whether it was cut.
pub fn osc52(text: &str, passthrough: bool) -> (String, bool) {
    let mut end = text.len().min(OSC52_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[..end]);
    let seq = format!("\x1b]52;c;{b64}\x07");
    let seq = if passthrough {
        format!("\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b"))
    } else {
        seq
    };
    (seq, end < text.len())
}

/// How OSC 52 is sent: plain, or wrapped for tmux passthrough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clipboard {
    /// Running inside tmux (`$TMUX` set).
    pub in_tmux: bool,
    /// `STEWARD_OSC52=passthrough`: wrap for tmux's `allow-passthrough`.
    pub passthrough: bool,
}

impl Clipboard {
    /// From `$TMUX` and `$STEWARD_OSC52`.
    pub fn from_env() -> Clipboard {
        Clipboard {
            in_tmux: std::env::var_os("TMUX").is_some_and(|v| !v.is_empty()),
            passthrough: std::env::var("STEWARD_OSC52").is_ok_and(|v| v == "passthrough"),
        }
    }
}

/// The toast after sending `bytes` bytes of `what` by OSC 52: what was sent, and where it
/// depends on a setting, which one. It never claims the clipboard has it.
pub fn copy_note(what: &str, bytes: usize, cut: bool, clip: Clipboard) -> String {
    let cut = if cut { ", cut to the first 100 kB" } else { "" };
    let how = match (clip.in_tmux, clip.passthrough) {
        (true, true) => "; tmux passes it on with `set -g allow-passthrough on`",
        (true, false) => "; tmux keeps it with `set -g set-clipboard on`",
        (false, _) => "; your terminal must allow OSC 52 clipboard writes",
    };
    format!("sent {what} ({bytes} bytes{cut}) to the clipboard by OSC 52{how}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_is_base64_and_wrapped_only_when_passthrough_is_asked() {
        let (seq, cut) = osc52("hi", false);
        assert_eq!(seq, "\x1b]52;c;aGk=\x07");
        assert!(!cut);
        let (seq, _) = osc52("hi", true);
        assert_eq!(seq, "\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\");
    }

    #[test]
    fn the_copy_note_names_the_setting_and_claims_nothing() {
        let tmux = Clipboard {
            in_tmux: true,
            passthrough: false,
        };
        let note = copy_note("alerts/a-1", 10, false, tmux);
        assert!(note.contains("set-clipboard on"), "{note}");
        assert!(!note.starts_with("copied"), "{note}");
        let pass = Clipboard {
            in_tmux: true,
            passthrough: true,
        };
        assert!(copy_note("x", 1, true, pass).contains("allow-passthrough on"));
        assert!(copy_note("x", 1, true, pass).contains("cut"));
    }

    #[test]
    fn osc52_caps_the_size_on_a_char_boundary() {
        let big = "é".repeat(OSC52_MAX);
        let (seq, cut) = osc52(&big, false);
        assert!(cut);
        assert!(seq.len() < OSC52_MAX * 2);
    }

    #[test]
    fn the_default_path_names_tenant_and_kind() {
        let p = default_export_path("contoso", Resource::Alerts, ExportFormat::Csv);
        assert!(
            p.starts_with("./steward-contoso-alerts-") && p.ends_with(".csv"),
            "{p}"
        );
    }
}
