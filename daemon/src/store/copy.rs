//! The store copier: every table of one read snapshot copied into a fresh redb file, and
//! the swap that puts such a copy in place of the live file (what SQLite's `VACUUM` does).
//! The one copier behind the data-subject scrub, compaction and backups.
//!
//! Why a copy: redb never zeroes a page it frees, so every superseded version of a record
//! (each put copies the pages on its path) stays readable in the file until the page is
//! reused, and the file never shrinks. A fresh file holds only what the snapshot holds: the
//! data-subject scrub rewrites the store after an erase so that no freed page keeps the
//! erased person (`crate::dsr::scrub`), compaction gives the space of purged records back,
//! and a backup (`backup.rs`) is the same copy written elsewhere, without the swap.
//!
//! A rewrite (scrub, compaction) copies beside the writer and catches up what committed
//! meanwhile (`online.rs`), then swaps:
//!
//! 1. copy every table of a read snapshot of the live file into `steward.redb.copy`
//!    (created `0600`, `O_EXCL|O_NOFOLLOW`), commit; then, with writes waiting, replay what
//!    committed since the snapshot and run the caller's changes (the scrub's own audit
//!    records commit with the new file), commit durably, close. The new file's only freed
//!    pages hold versions from after the snapshot;
//! 2. rename it over `steward.redb` and fsync the directory ([`swap_in`]): a crash before
//!    the rename leaves the old file (a leftover copy is removed at the next open,
//!    [`remove_leftover`]), after it the new one, never neither;
//! 3. open the new file and put it in the slot, so the writer and new readers move to it;
//!    readers already holding the old instance finish on their snapshot;
//! 4. once the last of them lets go ([`Retirement`], off the writer thread), overwrite the
//!    old file's bytes with zeros through a descriptor opened before the rename, fsync,
//!    close. The old name is already gone (the rename replaced it), so nothing of it is
//!    reachable under the data directory; the zeros keep its blocks from lingering readable
//!    in the file system's free space (best effort: a copy-on-write file system or an SSD's
//!    remapping may still keep old blocks, which only encryption at rest prevents).
//!
//! Not here: when to rewrite (`crate::dsr::scrub`, `crate::timers::compact`), the
//! catch-up (`online.rs`), the tables themselves (`tables.rs`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, Key, MultimapTableHandle, ReadTransaction, TableDefinition, TableHandle,
    Value, WriteTransaction,
};

use super::error::{StoreError, WriteError};
use super::slot::{self, DbSlot};
use super::tables;

/// The copy being written, next to the live file (same directory, so the rename is atomic).
pub const COPY_FILE: &str = "steward.redb.copy";

/// Every table the copier carries, one line each: a table added to `tables.rs` needs its
/// line here too. A table in the file but missing here makes every copy fail (an error
/// naming the table) rather than drop it; `copy_holds_every_record` tests the list.
fn copy_every_table(c: &mut Copier<'_>) -> Result<(), StoreError> {
    c.records()?;
    c.table(tables::TIME_INDEX)?;
    c.table(tables::SUBJECTS)?;
    c.table(tables::SCHEDULE)?;
    c.table(tables::AUDIT)?;
    c.table(tables::AUDIT_HEAD)?;
    c.table(tables::AUDIT_SUBJECTS)?;
    c.table(tables::META)?;
    Ok(())
}

/// What a copy carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyCounts {
    /// The tables copied, by name, in copy order.
    pub tables: Vec<String>,
    /// Entries copied, over every table.
    pub entries: u64,
    /// Entries copied per table, by name.
    pub per_table: BTreeMap<String, u64>,
    /// Documents copied per kind byte ([`super::Kind`]), from the records table.
    pub per_kind: BTreeMap<u8, u64>,
}

/// Copies tables from a snapshot into a write transaction, keeping count.
struct Copier<'a> {
    src: &'a ReadTransaction,
    dst: &'a WriteTransaction,
    counts: CopyCounts,
    /// Set when the copy must stop (the store is closing); looked at every
    /// [`CANCEL_EVERY`] entries.
    cancel: &'a AtomicBool,
}

/// How many entries a copy copies between two looks at its cancel flag.
const CANCEL_EVERY: u64 = 4096;

impl Copier<'_> {
    /// Copies one table entry for entry (in key order, which is also the cheapest order
    /// to insert). A table the snapshot does not have is created empty.
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        let mut out = self.dst.open_table(def)?;
        match self.src.open_table(def) {
            Ok(t) => {
                let mut n = 0u64;
                for item in redb::ReadableTable::iter(&t)? {
                    let (k, v) = item?;
                    out.insert(k.value(), v.value())?;
                    n += 1;
                    self.check_cancel(n)?;
                }
                self.counted(def.name(), n);
            }
            Err(redb::TableError::TableDoesNotExist(_)) => self.counted(def.name(), 0),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// [`Copier::table`] for [`tables::RECORDS`], also counting the documents per kind.
    fn records(&mut self) -> Result<(), StoreError> {
        let def = tables::RECORDS;
        let mut out = self.dst.open_table(def)?;
        let mut n = 0u64;
        match self.src.open_table(def) {
            Ok(t) => {
                for item in redb::ReadableTable::iter(&t)? {
                    let (k, v) = item?;
                    let key = k.value();
                    *self.counts.per_kind.entry(key.1).or_default() += 1;
                    out.insert(key, v.value())?;
                    n += 1;
                    self.check_cancel(n)?;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.counted(def.name(), n);
        Ok(())
    }

    /// Fails once the copy was cancelled (looked at every [`CANCEL_EVERY`] entries).
    fn check_cancel(&self, n: u64) -> Result<(), StoreError> {
        if n.is_multiple_of(CANCEL_EVERY) && self.cancel.load(Ordering::Relaxed) {
            return Err(StoreError::Refused(
                "the copy was cancelled: the store is closing".into(),
            ));
        }
        Ok(())
    }

    /// Records that table `name` was copied with `n` entries.
    fn counted(&mut self, name: &str, n: u64) {
        self.counts.tables.push(name.to_string());
        self.counts.entries += n;
        self.counts.per_table.insert(name.to_string(), n);
    }
}

/// Copies every table of the snapshot `src` into `dst` (a write transaction of an empty
/// file). Fails, copying nothing usable, if `src` holds a table the copier does not know.
pub(crate) fn copy_tables(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    cancel: &AtomicBool,
) -> Result<CopyCounts, StoreError> {
    let mut c = Copier {
        src,
        dst,
        counts: CopyCounts::default(),
        cancel,
    };
    copy_every_table(&mut c)?;
    for t in src.list_tables()? {
        if !c.counts.tables.iter().any(|n| n == t.name()) {
            return Err(StoreError::Corrupted(format!(
                "table {:?} is not in the copier's list (store/copy.rs): refusing a copy without it",
                t.name()
            )));
        }
    }
    if let Some(t) = src.list_multimap_tables()?.next() {
        return Err(StoreError::Corrupted(format!(
            "multimap table {:?} is not in the copier's list (store/copy.rs)",
            t.name()
        )));
    }
    Ok(c.counts)
}

/// What a rewrite did, for logs and the notes' pause figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteReport {
    /// What was copied.
    pub copied: CopyCounts,
    /// Size of the file before, bytes.
    pub old_bytes: u64,
    /// Size of the new file, bytes.
    pub new_bytes: u64,
    /// How long writes waited: the catch-up of what committed during the copy and the
    /// swap (plus any wait for the copy once the catch-up journal was full).
    pub pause: Duration,
}

/// The old file after a rewrite, until its last reader lets go and its bytes are zeroed.
#[derive(Debug)]
pub struct Retirement {
    /// The thread that waits for the readers, then zeroes; returns the bytes zeroed.
    thread: Option<std::thread::JoinHandle<std::io::Result<u64>>>,
}

impl Retirement {
    /// Waits until the old file's bytes are zeroed and synced; returns how many.
    pub fn wait(mut self) -> Result<u64, StoreError> {
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => Ok(r?),
            Some(Err(_)) => Err(StoreError::Io(std::io::Error::other(
                "the thread zeroing the old store file panicked",
            ))),
            None => Ok(0),
        }
    }
}

/// Removes a copy left by a rewrite that did not finish (the process died before the
/// rename). It holds only what the live file holds; the live file is never touched here.
pub(crate) fn remove_leftover(data_dir: &Path) -> Result<bool, StoreError> {
    let p = data_dir.join(COPY_FILE);
    match std::fs::symlink_metadata(&p) {
        Ok(_) => {
            std::fs::remove_file(&p)?;
            File::open(data_dir)?.sync_all()?;
            tracing::warn!(file = %p.display(), "removed the copy left by an unfinished store rewrite");
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the copy's file: `0600`, never through a symlink, never an existing file.
fn create_copy_file(path: &Path) -> Result<File, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?)
}

/// Writes a copy of the snapshot `src` to `dest` (a new file), runs `extra` in the copy's
/// write transaction, commits durably and closes it. On failure `dest` is removed.
#[cfg(test)]
fn write_copy(
    src: &ReadTransaction,
    dest: &Path,
    extra: impl FnOnce(&WriteTransaction) -> Result<(), WriteError>,
) -> Result<CopyCounts, WriteError> {
    let never = AtomicBool::new(false);
    let result = create_copy_file(dest)
        .map_err(WriteError::from)
        .and_then(|file| copy_into(src, file, &never, extra));
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

/// Writes a copy of the snapshot `src` into `file` (new and empty), runs `extra` in the
/// copy's write transaction, commits durably (redb fsyncs the file) and closes it. The
/// one copier behind the scrub's rewrite, compaction and backups. `cancel` stops it early
/// (with an error).
pub(crate) fn copy_into(
    src: &ReadTransaction,
    file: File,
    cancel: &AtomicBool,
    extra: impl FnOnce(&WriteTransaction) -> Result<(), WriteError>,
) -> Result<CopyCounts, WriteError> {
    copy_open(src, file, cancel, extra).map(|(counts, _closed)| counts)
}

/// [`copy_into`], handing back the copy's database still open (for a rewrite to catch up
/// in and swap in without opening the file again).
pub(crate) fn copy_open(
    src: &ReadTransaction,
    file: File,
    cancel: &AtomicBool,
    extra: impl FnOnce(&WriteTransaction) -> Result<(), WriteError>,
) -> Result<(CopyCounts, Database), WriteError> {
    let db = slot::builder().create_file(file)?;
    let mut wtx = db.begin_write()?;
    wtx.set_durability(Durability::Immediate)?;
    let counts = copy_tables(src, &wtx, cancel)?;
    extra(&wtx)?;
    wtx.commit()?;
    Ok((counts, db))
}

/// Swaps the finished copy at `dest` (committed; `new` is its open instance) in for the live file (steps 2–4 of
/// the module doc): renames it over the live name, fsyncs the directory, puts the new file
/// in the slot, and hands the old one to a [`Retirement`] that zeroes it once its last
/// reader is done. Runs on the writer thread between groups; `paused` is when writes
/// started waiting, for the report.
pub(crate) fn swap_in(
    slot: &DbSlot,
    dest: &Path,
    new: Database,
    old_bytes: u64,
    copied: CopyCounts,
    paused: Instant,
) -> Result<(RewriteReport, Retirement), WriteError> {
    let path = slot.path().to_path_buf();
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::Io(std::io::Error::other("the store file has no directory")))?
        .to_path_buf();
    // The old file, for zeroing once the readers are done: opened before the rename.
    let old_file = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(dest);
            return Err(StoreError::from(e).into());
        }
    };
    let retired = match slot.replace(|| Ok(std::fs::rename(dest, &path)?), Some(new)) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(dest);
            return Err(e.into());
        }
    };
    if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the data directory after the rewrite");
    }
    let pause = paused.elapsed();
    let new_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let thread = std::thread::Builder::new()
        .name("steward-retire".into())
        .spawn(move || zero_when_released(retired, old_file))
        .map_err(StoreError::from)?;
    Ok((
        RewriteReport {
            copied,
            old_bytes,
            new_bytes,
            pause,
        },
        Retirement {
            thread: Some(thread),
        },
    ))
}

/// Creates the copy's file next to the live one ([`COPY_FILE`]): `0600`, never through a
/// symbolic link, replacing a leftover.
pub(crate) fn create_copy(slot: &DbSlot) -> Result<(PathBuf, File), StoreError> {
    let dir = slot
        .path()
        .parent()
        .ok_or_else(|| StoreError::Io(std::io::Error::other("the store file has no directory")))?;
    let dest = dir.join(COPY_FILE);
    let file = create_copy_file(&dest)?;
    Ok((dest, file))
}

/// Waits for every reader of `old` to let go (reads are short transactions), closes it, then
/// overwrites the file's bytes with zeros and syncs them.
fn zero_when_released(old: Option<Arc<Database>>, file: File) -> std::io::Result<u64> {
    if let Some(mut db) = old {
        loop {
            match Arc::try_unwrap(db) {
                // The last reference: closing writes redb's clean-shutdown header into the
                // old file, which the zeros below then cover. It may also trim free pages
                // off the file's end: those return to the file system unzeroed (not
                // reachable under the data dir; see the module doc on best effort).
                Ok(d) => {
                    drop(d);
                    break;
                }
                Err(still) => {
                    db = still;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    let len = file.metadata()?.len();
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_all()?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use crate::store::TenantRead;
    use crate::testing::{rn, tid};
    use std::io::Read;

    use redb::{ReadableDatabase, ReadableTable};
    use steward::model::{AuditStatus, SubjectKey, SubjectKind};

    use super::*;
    use crate::store::{
        AuditEntry, DocInput, Kind, ScheduleAction, Store, StoreOptions, TenantWrite, system_caller,
    };

    /// Every entry of one table, as raw key and value bytes.
    type Rows = Vec<(Vec<u8>, Vec<u8>)>;

    fn rows<K: Key + 'static, V: Value + 'static>(
        rtx: &ReadTransaction,
        def: TableDefinition<K, V>,
    ) -> Rows {
        let t = rtx.open_table(def).unwrap();
        t.iter()
            .unwrap()
            .map(|i| {
                let (k, v) = i.unwrap();
                (
                    K::as_bytes(&k.value()).as_ref().to_vec(),
                    V::as_bytes(&v.value()).as_ref().to_vec(),
                )
            })
            .collect()
    }

    /// Every table's rows, by name: what "the same records" means for a copy.
    fn dump(db: &Database) -> Vec<(String, Rows)> {
        let r = db.begin_read().unwrap();
        vec![
            ("records".into(), rows(&r, tables::RECORDS)),
            ("time_index".into(), rows(&r, tables::TIME_INDEX)),
            ("subjects".into(), rows(&r, tables::SUBJECTS)),
            ("schedule".into(), rows(&r, tables::SCHEDULE)),
            ("audit".into(), rows(&r, tables::AUDIT)),
            ("audit_head".into(), rows(&r, tables::AUDIT_HEAD)),
            ("audit_subjects".into(), rows(&r, tables::AUDIT_SUBJECTS)),
            ("meta".into(), rows(&r, tables::META)),
        ]
    }

    fn seed(store: &Store) {
        for tenant in ["contoso", "fabrikam"] {
            for i in 0..300 {
                let key = SubjectKey::new(
                    SubjectKind::Email,
                    &format!("p{i}@{tenant}.example"),
                    "properties.emails",
                )
                .unwrap();
                store
                    .writer()
                    .write_blocking(&tid(tenant), move |txn: &mut dyn TenantWrite| {
                        let body = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(200));
                        txn.put(
                            Kind::Contact,
                            &rn(&format!("c{i:04}")),
                            DocInput::new(body.clone()).subject(&key),
                            None,
                        )?;
                        txn.put(
                            Kind::Alert,
                            &rn(&format!("a{i:04}")),
                            DocInput::new(body)
                                .time(1_700_000_000_000_000 + i64::from(i))
                                .facets("high", "active")
                                .expires_at(2_000_000_000 + i64::from(i))
                                .schedule(ScheduleAction::Deadline, 1_900_000_000),
                            None,
                        )?;
                        txn.audit(
                            AuditEntry::named(system_caller(), "test.seed", AuditStatus::Succeeded)
                                .subject(&key),
                        );
                        Ok::<_, WriteError>(())
                    })
                    .unwrap();
            }
            // Superseded versions and deletions leave freed pages behind.
            for i in 0..100 {
                store
                    .writer()
                    .write_blocking(&tid(tenant), move |txn: &mut dyn TenantWrite| {
                        txn.delete(Kind::Contact, &format!("c{i:04}"), None)?;
                        txn.audit(AuditEntry::named(
                            system_caller(),
                            "test.delete",
                            AuditStatus::Succeeded,
                        ));
                        Ok::<_, WriteError>(())
                    })
                    .unwrap();
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // An anchor in one chain.
        rt.block_on(crate::timers::retention::purge_audit(
            &store.writer(),
            &tid("contoso"),
            i64::MAX,
            10,
        ))
        .unwrap();
    }

    #[test]
    fn copy_holds_every_record_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        seed(&store);
        let before = dump(&store.db.get().unwrap());
        assert!(
            before.iter().all(|(_, r)| !r.is_empty()),
            "every table is seeded"
        );

        // A copy of a snapshot, through the copier's one-line list.
        let copy_path = dir.path().join("plain.redb");
        let counts = {
            let db = store.db.get().unwrap();
            let rtx = db.begin_read().unwrap();
            write_copy(&rtx, &copy_path, |_| Ok(())).unwrap()
        };
        assert_eq!(counts.tables.len(), before.len());
        assert_eq!(
            counts.entries,
            before.iter().map(|(_, r)| r.len() as u64).sum::<u64>()
        );
        let copy = slot::open_database(&copy_path).unwrap();
        assert_eq!(
            dump(&copy),
            before,
            "the copy holds exactly the same records"
        );
        let (copy, report) = super::super::check::check(copy, &copy_path).unwrap();
        assert_eq!(report.tenants, 2, "every audit chain verifies in the copy");
        drop(copy);
    }

    #[test]
    fn rewrite_swaps_in_the_copy_keeps_readers_and_zeroes_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        seed(&store);
        let before = dump(&store.db.get().unwrap());
        let reader = store.tenant(&tid("contoso"));
        let verified = reader.audit_verify().unwrap();
        // A reader in the middle of a read of the old file when the rewrite happens.
        let old = store.db.get().unwrap();
        let old_rtx = old.begin_read().unwrap();
        let mut old_file = File::open(store.path()).unwrap();

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let job = |txn: &mut dyn TenantWrite| {
            txn.audit(AuditEntry::named(
                system_caller(),
                "test.rewrite",
                AuditStatus::Succeeded,
            ));
            Ok(())
        };
        let (report, retirement) = rt
            .block_on(store.writer().rewrite(vec![(tid("contoso"), job)]))
            .unwrap();
        assert_eq!(report.copied.tables.len(), before.len());
        assert!(report.new_bytes <= report.old_bytes, "{report:?}");
        assert!(!dir.path().join(COPY_FILE).exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        // The old reader still reads its snapshot.
        let t = old_rtx.open_table(tables::RECORDS).unwrap();
        assert!(
            t.get(("contoso", Kind::Alert.as_u8(), "a0001"))
                .unwrap()
                .is_some()
        );
        drop(t);
        drop(old_rtx);
        // New reads see the new file: the same records plus the job's audit record.
        let after = reader.audit_verify().unwrap();
        assert!(after.ok);
        assert_eq!(after.records, verified.records + 1);
        let mut now = dump(&store.db.get().unwrap());
        let mut then = before.clone();
        for d in [&mut now, &mut then] {
            d.retain(|(n, _)| !n.starts_with("audit"));
        }
        assert_eq!(now, then, "the records and meta (HMAC key) are the same");
        // The old file is zeroed once its last reader lets go.
        drop(old);
        let zeroed = retirement.wait().unwrap();
        // redb may trim free space off the end of the file when it closes it.
        assert!(
            zeroed > 0 && zeroed <= report.old_bytes,
            "{zeroed} of {}",
            report.old_bytes
        );
        let mut bytes = Vec::new();
        old_file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, zeroed);
        assert!(
            bytes.iter().all(|b| *b == 0),
            "the old file still holds data"
        );
        // Writes go on in the new file.
        store
            .writer()
            .write_blocking(&tid("contoso"), |txn: &mut dyn TenantWrite| {
                txn.audit(AuditEntry::named(
                    system_caller(),
                    "test.after",
                    AuditStatus::Succeeded,
                ));
                Ok::<_, WriteError>(())
            })
            .unwrap();
        drop(reader);
        drop(store);
        assert!(Store::verify(dir.path()).unwrap().audit_records > 0);
    }

    #[test]
    fn a_table_missing_from_the_list_fails_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = slot::open_database(&dir.path().join("a.redb")).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(TableDefinition::<&str, u64>::new("not_listed"))
            .unwrap()
            .insert("k", 1)
            .unwrap();
        w.commit().unwrap();
        let rtx = db.begin_read().unwrap();
        let err = write_copy(&rtx, &dir.path().join("b.redb"), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("not_listed"), "{err}");
        assert!(!dir.path().join("b.redb").exists());
    }
}
