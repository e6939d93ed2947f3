//! Spool file names: which directory entries are the spool's business, which names a
//! file may carry to be ingested, and how any name is shown in logs and `.error` files
//! (escaped and bounded, so a name cannot forge a log line). No file system calls here.

/// Longest file name shown in logs and `.error` files, in characters.
const SHOWN_MAX: usize = 120;

/// Whether `name` is a file to ingest: `*.json` or `*.ndjson`, not a dotfile.
pub fn eligible(name: &str) -> bool {
    candidate(name.as_bytes())
}

/// Whether a directory entry is the spool's business: named like a file to ingest
/// (whatever else its name holds, and whatever it is).
pub(super) fn candidate(name: &[u8]) -> bool {
    !name.starts_with(b".") && (name.ends_with(b".json") || name.ends_with(b".ndjson"))
}

/// A file name as logs and `.error` files show it: invalid UTF-8 replaced, every control
/// or invisible character escaped (`\n`, `\u{202e}`), at most [`SHOWN_MAX`] characters.
pub fn shown(name: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in String::from_utf8_lossy(name).chars().enumerate() {
        if i == SHOWN_MAX {
            out.push('…');
            break;
        }
        if c == '"' || c == '\'' {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    out
}

/// The name as text, when a spool file may carry it: valid UTF-8 where every character
/// shows as itself (no control or invisible characters).
pub(super) fn valid_name(name: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(name).ok()?;
    s.chars()
        .all(|c| matches!(c, '"' | '\'' | '\\') || c.escape_debug().len() == 1)
        .then_some(s)
}
