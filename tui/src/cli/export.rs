//! Streaming a large body (an export, a data-subject bundle) to a file or stdout.
//!
//! Memory stays flat: chunks go to the destination as they arrive. A file is written by
//! the writer the TUI uses too ([`steward_tui::export_file::ExportFile`]: `0600`,
//! renamed over the target only when the whole body has arrived). Records are counted
//! on the way ([`RecordCounter`]) unless the daemon states the count in an
//! `X-Steward-Record-Count` header or trailer. A progress line goes to stderr only
//! when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use steward::client::{HeaderMap, StreamResponse};
use steward_tui::export_file::{ExportFile, ExportFileError, ExportFormat, RecordCounter};

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
    /// A file, appearing only once complete.
    File(ExportFile),
}

impl From<ExportFileError> for CliError {
    fn from(e: ExportFileError) -> Self {
        CliError::Input {
            path: e.target().to_owned(),
            message: match e {
                ExportFileError::Create { dir, source, .. } => {
                    format!("cannot create a file in {}: {source}", dir.display())
                }
                ExportFileError::Write { source, .. } | ExportFileError::Persist { source, .. } => {
                    source.to_string()
                }
                other => other.to_string(),
            },
        }
    }
}

impl Destination {
    /// Opens stdout, or an export file for `out`.
    fn open(out: Option<&Path>) -> Result<Self, CliError> {
        Ok(match out {
            None => Self::Stdout(std::io::stdout().lock()),
            Some(target) => Self::File(ExportFile::create(target)?),
        })
    }

    /// Writes a chunk.
    fn write_all(&mut self, chunk: &[u8]) -> Result<(), CliError> {
        match self {
            Self::Stdout(out) => Ok(out.write_all(chunk)?),
            Self::File(file) => Ok(file.write_all(chunk)?),
        }
    }

    /// Flushes; for a file, syncs it and renames it onto the target.
    fn finish(self) -> Result<(), CliError> {
        match self {
            Self::Stdout(mut out) => Ok(out.flush()?),
            Self::File(file) => Ok(file.finish()?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
