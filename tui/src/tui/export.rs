//! Getting records out of the TUI: the export file's default name, and the OSC 52
//! sequence that copies text to the clipboard of the terminal the operator sits at
//! (through SSH and tmux).
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
/// boundary), wrapped for tmux passthrough when `tmux`; and whether it was cut.
pub fn osc52(text: &str, tmux: bool) -> (String, bool) {
    let mut end = text.len().min(OSC52_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[..end]);
    let seq = format!("\x1b]52;c;{b64}\x07");
    let seq = if tmux {
        format!("\x1bPtmux;{}\x1b\\", seq.replace('\x1b', "\x1b\x1b"))
    } else {
        seq
    };
    (seq, end < text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_is_base64_and_wrapped_for_tmux() {
        let (seq, cut) = osc52("hi", false);
        assert_eq!(seq, "\x1b]52;c;aGk=\x07");
        assert!(!cut);
        let (seq, _) = osc52("hi", true);
        assert_eq!(seq, "\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\");
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
