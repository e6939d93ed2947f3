//! The full check of a database file: every page's checksum (redb's `check_integrity`)
//! and every tenant's audit hash chain. Run before serving when `[daemon] verify_on_start`
//! is set, and offline by `stewardd verify-store`.
//!
//! Not run on every start by default: it reads the whole file (about 1.5 s per GB on the
//! build machine), while an ordinary start reads only the header and the meta table. A
//! crash needs no full check: redb verifies the checksums itself when it opens a file that
//! was not closed cleanly, and rolls back to the last good commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable};

use super::audit::{self, ChainPoint};
use super::error::StoreError;
use super::slot;
use super::tables;

/// What a full check found on a sound file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The file's size in bytes.
    pub file_bytes: u64,
    /// Tenants with an audit chain.
    pub tenants: usize,
    /// Audit records verified, over every tenant.
    pub audit_records: u64,
    /// Every tenant's audit head `(seq, hash)`, as verified.
    pub heads: BTreeMap<String, ChainPoint>,
    /// How long the check took.
    pub took: Duration,
}

/// Checks every page and every audit chain of the open file at `path`, and gives it back
/// if it is sound. A damaged page or a chain that does not verify is
/// [`StoreError::Corrupted`], naming what is wrong.
pub(crate) fn check(db: Database, path: &Path) -> Result<(Database, CheckReport), StoreError> {
    let started = Instant::now();
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let (db, pages) = slot::guarded(
        db,
        path,
        "a page could not be read while checking the file",
        |db| db.check_integrity(),
    )?;
    match pages {
        Ok(true) => {}
        // redb repaired the file in place by going back to the commit before the damaged
        // one: consistent again, but acknowledged changes are gone. Loud, not silent.
        Ok(false) => {
            return Err(StoreError::Corrupted(format!(
                "{}: the last commit was damaged and has been rolled back to the commit \
                 before it; changes acknowledged in it are lost (the file is consistent \
                 now and the next start serves it)",
                path.display()
            )));
        }
        Err(e) => {
            return Err(StoreError::Corrupted(format!(
                "{}: the page checksums do not verify: {e}",
                path.display()
            )));
        }
    }
    let (db, chains) = slot::guarded(
        db,
        path,
        "a page could not be read while verifying the audit chains",
        |db| check_chains(db),
    )?;
    let (heads, audit_records) = chains.map_err(|e| match e {
        StoreError::Corrupted(m) => StoreError::Corrupted(format!("{}: {m}", path.display())),
        other => other,
    })?;
    let report = CheckReport {
        file_bytes,
        tenants: heads.len(),
        audit_records,
        heads,
        took: started.elapsed(),
    };
    Ok((db, report))
}

/// Verifies every tenant's audit chain: (each tenant's head, records).
fn check_chains(db: &Database) -> Result<(BTreeMap<String, ChainPoint>, u64), StoreError> {
    let rtx = db.begin_read()?;
    let heads = match rtx.open_table(tables::AUDIT_HEAD) {
        Ok(t) => t,
        // A file that has never been opened by the daemon has no tables yet.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((BTreeMap::new(), 0)),
        Err(e) => return Err(e.into()),
    };
    let audit_t = rtx.open_table(tables::AUDIT)?;
    let mut tenants = Vec::new();
    for item in heads.iter()? {
        tenants.push(item?.0.value().to_string());
    }
    let mut records = 0;
    let mut out = BTreeMap::new();
    for tenant in &tenants {
        let report = audit::verify(&audit_t, &heads, tenant)?;
        if !report.ok {
            return Err(StoreError::Corrupted(format!(
                "tenant {tenant:?}: the audit chain does not verify at record {}",
                report
                    .first_bad_seq
                    .map_or_else(|| "?".to_string(), |s| s.to_string())
            )));
        }
        records += report.records;
        if let Some(h) = report.head {
            out.insert(tenant.clone(), h);
        }
    }
    Ok((out, records))
}
