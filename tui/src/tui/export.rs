//! Getting records out of the TUI: the export file's default name, counting the records
//! of a finished export, and the OSC 52 sequence that copies text to the clipboard of
//! the terminal the operator sits at (through SSH and tmux).
//!
//! The streaming itself is the backend task's (`backend.rs`); this module holds the
//! pure parts so they can be tested alone.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use base64::Engine;

use super::kinds::Tab;

/// The most JSON copied through OSC 52; terminals drop longer sequences.
pub const OSC52_MAX: usize = 100 * 1024;

/// `./steward-<tenant>-<kind>-<timestamp>.<ext>`, in UTC.
pub fn default_export_path(tenant: &str, tab: Tab, ext: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    format!("./steward-{tenant}-{}-{now}.{ext}", tab.segment())
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

/// Counts the records of an export file without holding them: lines for NDJSON, lines
/// past the header for CSV (quoted newlines read by the csv crate), array items for
/// JSON (an array, or an object with `value`).
pub fn count_records(path: &Path, format: &str) -> std::io::Result<u64> {
    let file = File::open(path)?;
    match format {
        "ndjson" => {
            let mut n = 0;
            for line in BufReader::new(file).lines() {
                if !line?.trim().is_empty() {
                    n += 1;
                }
            }
            Ok(n)
        }
        "csv" => {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_reader(BufReader::new(file));
            let mut n = 0;
            let mut rec = csv::ByteRecord::new();
            while r
                .read_byte_record(&mut rec)
                .map_err(std::io::Error::other)?
            {
                n += 1;
            }
            Ok(n)
        }
        _ => {
            #[derive(serde::Deserialize)]
            #[serde(untagged)]
            enum Shape {
                Array(Vec<serde::de::IgnoredAny>),
                Envelope { value: Vec<serde::de::IgnoredAny> },
            }
            let shape: Shape =
                serde_json::from_reader(BufReader::new(file)).map_err(std::io::Error::other)?;
            Ok(match shape {
                Shape::Array(v) | Shape::Envelope { value: v } => v.len() as u64,
            })
        }
    }
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
    fn records_are_counted_per_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        assert_eq!(count_records(&p, "ndjson").unwrap(), 2);
        std::fs::write(&p, "name,emails\ndefault,\"a@x.com\nb\"\nother,x\n").unwrap();
        assert_eq!(count_records(&p, "csv").unwrap(), 2);
        std::fs::write(&p, "[{\"a\":1},{},{}]").unwrap();
        assert_eq!(count_records(&p, "json").unwrap(), 3);
        std::fs::write(&p, "{\"value\":[{}]}").unwrap();
        assert_eq!(count_records(&p, "json").unwrap(), 1);
    }

    #[test]
    fn the_default_path_names_tenant_and_kind() {
        let p = default_export_path("contoso", Tab::Alerts, "csv");
        assert!(
            p.starts_with("./steward-contoso-alerts-") && p.ends_with(".csv"),
            "{p}"
        );
    }
}
