//! How much of the store file is in use: what `[store] compact_when_free_over` and
//! `stewardd compact`'s report look at. Measured by the writer thread between groups
//! ([`super::Writer::space`]), since redb gives the figures only to a write transaction.

use super::error::StoreError;
use super::slot::DbSlot;

/// What [`super::Writer::space`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// The file's size, bytes.
    pub file_bytes: u64,
    /// Bytes of the pages in use.
    pub used_bytes: u64,
}

impl Space {
    /// The share of the file that is free pages, 0 to 1.
    pub fn free_fraction(&self) -> f64 {
        if self.file_bytes == 0 {
            return 0.0;
        }
        self.file_bytes.saturating_sub(self.used_bytes) as f64 / self.file_bytes as f64
    }
}

/// Measures the file (a write transaction, opened and dropped: call it between groups,
/// on the writer thread).
pub(super) fn space(slot: &DbSlot) -> Result<Space, StoreError> {
    let db = slot.get()?;
    let wtx = db.begin_write()?;
    let stats = wtx.stats()?;
    drop(wtx);
    let file_bytes = std::fs::metadata(slot.path()).map(|m| m.len())?;
    Ok(Space {
        file_bytes,
        used_bytes: stats
            .allocated_pages()
            .saturating_mul(stats.page_size() as u64),
    })
}
