//! One writer for export files, shared by the CLI (`steward export --out`, `dsr bundle
//! --out`) and the TUI (`x`): the body goes to a temporary file beside the target,
//! created `0600` (an export holds personal data), synced, and renamed over the target
//! only when the whole body has arrived. So an existing file is replaced, never
//! truncated in place (its old mode and owner go with it), and a failed or interrupted
//! export leaves no half file behind and the old one intact.
//!
//! Also here: the export formats ([`ExportFormat`]) and a [`RecordCounter`] that counts
//! the records of a format while it streams. What it is not: the network side (each
//! client streams the daemon's answer into an [`ExportFile`] itself).

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The formats an export can be in (`?format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON document.
    Json,
    /// One JSON record per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

impl ExportFormat {
    /// Every format, in the order the TUI offers them.
    pub const ALL: [ExportFormat; 3] =
        [ExportFormat::Json, ExportFormat::Ndjson, ExportFormat::Csv];

    /// The value of `?format=`, also the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }

    /// The format named `name` (`json`, `ndjson`, `csv`).
    pub fn from_name(name: &str) -> Option<ExportFormat> {
        ExportFormat::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// Why an export file could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportFileError {
    /// The temporary file could not be created in the target's directory.
    #[error("{}: cannot create a file in {}: {source}", target.display(), dir.display())]
    Create {
        /// The file asked for.
        target: PathBuf,
        /// Its directory, where the temporary file goes.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing or syncing the temporary file failed.
    #[error("{}: {source}", target.display())]
    Write {
        /// The file asked for.
        target: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The finished file could not be renamed onto the target.
    #[error("{}: {source}", target.display())]
    Persist {
        /// The file asked for.
        target: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ExportFileError {
    /// The file the export was for.
    pub fn target(&self) -> &Path {
        match self {
            Self::Create { target, .. }
            | Self::Write { target, .. }
            | Self::Persist { target, .. } => target,
        }
    }
}

/// An export being written: a `0600` temporary file beside its target, renamed onto it
/// by [`ExportFile::finish`]. Dropped before that, it is deleted and the target is
/// untouched.
#[derive(Debug)]
pub struct ExportFile {
    /// The temporary file (deleted if dropped before `finish`).
    temp: tempfile::NamedTempFile,
    /// The file it becomes once the body is complete.
    target: PathBuf,
}

impl ExportFile {
    /// Creates the temporary file in the directory of `target` (`.` for a bare name).
    pub fn create(target: &Path) -> Result<ExportFile, ExportFileError> {
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".steward-export-")
            .suffix(".part")
            .permissions(Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|source| ExportFileError::Create {
                target: target.to_owned(),
                dir: dir.to_owned(),
                source,
            })?;
        Ok(ExportFile {
            temp,
            target: target.to_owned(),
        })
    }

    /// The file this export becomes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes a chunk.
    pub fn write_all(&mut self, chunk: &[u8]) -> Result<(), ExportFileError> {
        self.temp
            .write_all(chunk)
            .map_err(|source| ExportFileError::Write {
                target: self.target.clone(),
                source,
            })
    }

    /// Syncs the file and renames it onto the target (replacing what was there).
    pub fn finish(self) -> Result<(), ExportFileError> {
        let target = self.target;
        self.temp
            .as_file()
            .sync_all()
            .map_err(|source| ExportFileError::Write {
                target: target.clone(),
                source,
            })?;
        self.temp
            .persist(&target)
            .map_err(|e| ExportFileError::Persist {
                target: target.clone(),
                source: e.error,
            })?;
        Ok(())
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
    use std::os::unix::fs::MetadataExt;

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
    fn a_file_appears_only_when_finished_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let mut f = ExportFile::create(&target).unwrap();
        f.write_all(b"a,b\n").unwrap();
        assert!(!target.exists());
        f.finish().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a,b\n");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // Dropped before finishing (a failed export): nothing is left behind.
        let other = dir.path().join("failed.csv");
        let mut f = ExportFile::create(&other).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert!(!other.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// The TUI's export used to truncate an existing file in place, keeping its old mode
    /// (a 0644 file stayed world-readable with personal data in it).
    #[test]
    fn an_existing_file_is_replaced_not_truncated_and_loses_its_old_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("contacts.json");
        std::fs::write(&target, b"old contents").unwrap();
        std::fs::set_permissions(&target, Permissions::from_mode(0o644)).unwrap();
        let old_inode = std::fs::metadata(&target).unwrap().ino();

        // A failed export leaves the old file as it was.
        let mut f = ExportFile::create(&target).unwrap();
        f.write_all(b"[{\"half\"").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&target).unwrap(), b"old contents");

        let mut f = ExportFile::create(&target).unwrap();
        f.write_all(b"[]").unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"old contents",
            "touched before the end"
        );
        f.finish().unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"[]");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_ne!(meta.ino(), old_inode, "written in place");
    }

    #[test]
    fn a_directory_that_cannot_take_the_file_is_named() {
        let err = ExportFile::create(Path::new("/nonexistent-steward-dir/x.csv")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-steward-dir"),
            "{err}"
        );
        assert_eq!(err.target(), Path::new("/nonexistent-steward-dir/x.csv"));
    }

    #[test]
    fn formats_are_named_once() {
        for f in ExportFormat::ALL {
            assert_eq!(ExportFormat::from_name(f.as_str()), Some(f));
        }
        assert_eq!(ExportFormat::from_name("xml"), None);
    }
}
