//! Streaming a large body (an export, a data-subject bundle) to a file or stdout.
//!
//! Memory stays flat: chunks go to the destination as they arrive. A file is written
//! under a temporary name in the target's directory, created `0600` (it holds personal
//! data), synced and renamed over the target only when the whole body has arrived, so
//! a failed or interrupted export leaves no half file behind. Records are counted on
//! the way ([`RecordCounter`]) unless the daemon states the count in an
//! `X-Steward-Record-Count` header or trailer. A progress line goes to stderr only
//! when stderr is a terminal.

use std::fs::Permissions;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use steward::client::{HeaderMap, StreamResponse};

use super::args::ExportFormat;
use super::error::CliError;

/// The header (or trailer) in which a daemon may state how many records it exported.
pub const RECORD_COUNT_HEADER: &str = "x-steward-record-count";

/// What a finished stream wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes of body written.
    pub bytes: u64,
    /// Records in it, when the format is known.
    pub records: Option<u64>,
}

/// Streams the body of a 2xx `response` to `out` (or stdout), counting records of
/// `format` when given.
pub async fn stream_body(
    mut response: StreamResponse,
    out: Option<&Path>,
    format: Option<ExportFormat>,
) -> Result<Written, CliError> {
    let mut counter = format.map(RecordCounter::new);
    let progress = progress_bar();
    let mut destination = Destination::open(out)?;
    let mut bytes = 0u64;
    while let Some(chunk) = response.next_chunk().await? {
        destination.write_all(&chunk)?;
        bytes += chunk.len() as u64;
        progress.set_position(bytes);
        if let Some(counter) = counter.as_mut() {
            counter.feed(&chunk);
            progress.set_message(format!("{} records", counter.count()));
        }
    }
    destination.finish()?;
    progress.finish_and_clear();
    let stated =
        stated_count(&response.headers).or_else(|| response.trailers().and_then(stated_count));
    Ok(Written {
        bytes,
        records: stated.or_else(|| counter.map(|c| c.count())),
    })
}

/// The record count a daemon stated in a header or trailer.
fn stated_count(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(RECORD_COUNT_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A spinner with bytes and records on stderr, or nothing when stderr is not a terminal.
fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {bytes} ({binary_bytes_per_sec}) {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Where streamed bytes go.
enum Destination {
    /// Standard output, as it comes.
    Stdout(std::io::StdoutLock<'static>),
    /// A temporary file beside the target, renamed onto it by [`Destination::finish`].
    File {
        /// The temporary file (deleted if dropped before `finish`).
        temp: tempfile::NamedTempFile,
        /// The file it becomes once the body is complete.
        target: std::path::PathBuf,
    },
}

impl Destination {
    /// Opens stdout, or a `0600` temporary file in the directory of `out`.
    fn open(out: Option<&Path>) -> Result<Self, CliError> {
        let Some(target) = out else {
            return Ok(Self::Stdout(std::io::stdout().lock()));
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".steward-export-")
            .suffix(".part")
            .permissions(Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| CliError::Input {
                path: target.to_owned(),
                message: format!("cannot create a file in {}: {e}", dir.display()),
            })?;
        Ok(Self::File {
            temp,
            target: target.to_owned(),
        })
    }

    /// Writes a chunk.
    fn write_all(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Stdout(out) => out.write_all(chunk),
            Self::File { temp, .. } => temp.write_all(chunk),
        }
    }

    /// Flushes; for a file, syncs it and renames it onto the target.
    fn finish(self) -> Result<(), CliError> {
        match self {
            Self::Stdout(mut out) => Ok(out.flush()?),
            Self::File { temp, target } => {
                temp.as_file().sync_all()?;
                temp.persist(&target).map_err(|e| CliError::Input {
                    path: target.clone(),
                    message: e.error.to_string(),
                })?;
                Ok(())
            }
        }
    }
}

/// Counts the records of an export while it streams, without holding it: NDJSON
/// lines, CSV rows (quoted newlines included) minus the header, or the items of the
/// first JSON array met (`[…]` or `{"value": […]}`; an array nested in a field before
/// `value` would be miscounted, which is why a stated count wins).
#[derive(Debug, Clone)]
pub struct RecordCounter {
    /// The format being counted.
    format: ExportFormat,
    /// Complete records (NDJSON lines, CSV rows including the header) seen so far.
    complete: u64,
    /// The current line or row has non-whitespace content.
    open: bool,
    /// CSV: inside a quoted field. JSON: inside a string.
    quoted: bool,
    /// JSON: the previous byte was a backslash inside a string.
    escaped: bool,
    /// JSON: nesting depth.
    depth: usize,
    /// JSON: depth just inside the outermost array, once it has been met.
    target: Option<usize>,
    /// JSON: the outermost array has closed; nothing more counts.
    closed: bool,
    /// JSON: commas directly inside the outermost array.
    commas: u64,
}

impl RecordCounter {
    /// A counter for `format`, before any byte.
    pub fn new(format: ExportFormat) -> Self {
        Self {
            format,
            complete: 0,
            open: false,
            quoted: false,
            escaped: false,
            depth: 0,
            target: None,
            closed: false,
            commas: 0,
        }
    }

    /// Counts the records in the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            match self.format {
                ExportFormat::Ndjson => self.feed_line(b, false),
                ExportFormat::Csv => {
                    if b == b'"' {
                        self.quoted = !self.quoted;
                    }
                    let quoted = self.quoted;
                    self.feed_line(b, quoted);
                }
                ExportFormat::Json => self.feed_json(b),
            }
        }
    }

    /// One byte of a line-based format; a newline ends a record unless `quoted`.
    fn feed_line(&mut self, b: u8, quoted: bool) {
        if b == b'\n' && !quoted {
            if self.open {
                self.complete += 1;
            }
            self.open = false;
        } else if !b.is_ascii_whitespace() {
            self.open = true;
        }
    }

    /// One byte of JSON.
    fn feed_json(&mut self, b: u8) {
        let at_target = !self.closed && self.target == Some(self.depth);
        if self.quoted {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.quoted = false;
            }
            return;
        }
        match b {
            b'"' => {
                self.open |= at_target;
                self.quoted = true;
            }
            b'[' | b'{' => {
                self.open |= at_target;
                self.depth += 1;
                if b == b'[' && self.target.is_none() {
                    self.target = Some(self.depth);
                }
            }
            b']' | b'}' => {
                if at_target {
                    self.closed = true;
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b',' if at_target => self.commas += 1,
            b if b.is_ascii_whitespace() || b == b',' || b == b':' => {}
            _ => self.open |= at_target,
        }
    }

    /// Records counted so far (a last line without a newline included).
    pub fn count(&self) -> u64 {
        match self.format {
            ExportFormat::Ndjson => self.complete + u64::from(self.open),
            ExportFormat::Csv => (self.complete + u64::from(self.open)).saturating_sub(1),
            ExportFormat::Json if self.open => self.commas + 1,
            ExportFormat::Json => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts `text` fed in chunks of every size from 1 to 7, which must all agree.
    fn count(format: ExportFormat, text: &str) -> u64 {
        let counts: Vec<u64> = (1..=7)
            .map(|size| {
                let mut c = RecordCounter::new(format);
                for chunk in text.as_bytes().chunks(size) {
                    c.feed(chunk);
                }
                c.count()
            })
            .collect();
        assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
        counts[0]
    }

    #[test]
    fn ndjson_counts_lines() {
        assert_eq!(count(ExportFormat::Ndjson, ""), 0);
        assert_eq!(count(ExportFormat::Ndjson, "{\"a\":1}\n{\"a\":2}\n"), 2);
        assert_eq!(count(ExportFormat::Ndjson, "{\"a\":1}\n\n{\"a\":2}"), 2);
    }

    #[test]
    fn csv_counts_rows_minus_the_header() {
        assert_eq!(count(ExportFormat::Csv, "name,emails\n"), 0);
        assert_eq!(
            count(
                ExportFormat::Csv,
                "name,emails\na,x@y.z\nb,\"two\nlines, \"\"quoted\"\"\"\n"
            ),
            2
        );
        assert_eq!(count(ExportFormat::Csv, "name\r\na\r\nb"), 2);
    }

    #[test]
    fn json_counts_the_items_of_the_outer_array() {
        assert_eq!(count(ExportFormat::Json, "[]"), 0);
        assert_eq!(count(ExportFormat::Json, "{\"value\": []}"), 0);
        assert_eq!(
            count(ExportFormat::Json, "[{\"a\":[1,2,3]},{\"b\":\"x,]\\\"[\"}]"),
            2
        );
        assert_eq!(
            count(
                ExportFormat::Json,
                "{\"meta\":{\"k\":\"v,\"},\"value\":[{\"x\":{\"y\":[1,2]}},{},{}],\"other\":[1,2]}"
            ),
            3
        );
        assert_eq!(count(ExportFormat::Json, "[1, 2 ,3]"), 3);
    }

    #[test]
    fn a_stated_count_is_read_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(stated_count(&h), None);
        h.insert(
            RECORD_COUNT_HEADER,
            steward::client::HeaderValue::from_static("42"),
        );
        assert_eq!(stated_count(&h), Some(42));
    }

    #[test]
    fn a_file_destination_appears_only_when_finished_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let mut d = Destination::open(Some(&target)).unwrap();
        d.write_all(b"a,b\n").unwrap();
        assert!(!target.exists());
        d.finish().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a,b\n");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // Dropped before finishing (a failed export): nothing is left behind.
        let other = dir.path().join("failed.csv");
        let mut d = Destination::open(Some(&other)).unwrap();
        d.write_all(b"partial").unwrap();
        drop(d);
        assert!(!other.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
