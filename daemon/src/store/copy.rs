//! The store copier: every table of one read snapshot copied into a fresh redb file. The one
//! copier behind the data-subject scrub, compaction and backups.
//!
//! Why a copy: redb never zeroes a page it frees, so every superseded version of a record
//! (each put copies the pages on its path) stays readable in the file until the page is
//! reused, and the file never shrinks. A fresh file holds only what the snapshot holds: the
//! data-subject scrub rewrites the store after an erase so that no freed page keeps the
//! erased person (`crate::dsr::scrub`), compaction gives the space of purged records back
//! (both swap the copy in: `swap.rs`, after the catch-up of `online.rs`), and a backup
//! (`backup.rs`) is the same copy written elsewhere, without the swap.
//!
//! The copy is one write transaction of the new file, filled in key order table by table, in
//! chunks of a few milliseconds each: between chunks it may move between the copy's idle
//! priority thread and the caller's (`pace.rs`), so that it takes the CPU only when the
//! daemon's readers and writers do not want it, yet always finishes.
//!
//! Not here: the swap (`swap.rs`), the catch-up (`online.rs`), the pacing (`pace.rs`), the
//! tables themselves (`tables.rs`).

use std::collections::BTreeMap;
use std::fs::File;
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, Key, MultimapTableHandle, ReadTransaction, TableDefinition, TableHandle,
    Value, WriteTransaction,
};

use super::error::{StoreError, WriteError};
use super::pace::{self, Control, PaceReport};
use super::slot;
use super::tables;

/// Every table the copier carries, one line each: a table added to `tables.rs` needs its
/// line here too. A table in the file but missing here makes every copy fail (an error
/// naming the table) rather than drop it; `copy_holds_every_record` tests the list.
fn every_table(src: &ReadTransaction) -> Result<Vec<Box<dyn TableCopy>>, StoreError> {
    Ok(vec![
        Rows::open(src, tables::RECORDS, Some(|k| k.1))?,
        Rows::open(src, tables::TIME_INDEX, None)?,
        Rows::open(src, tables::SUBJECTS, None)?,
        Rows::open(src, tables::SCHEDULE, None)?,
        Rows::open(src, tables::AUDIT, None)?,
        Rows::open(src, tables::AUDIT_HEAD, None)?,
        Rows::open(src, tables::AUDIT_SUBJECTS, None)?,
        Rows::open(src, tables::META, None)?,
    ])
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

impl CopyCounts {
    /// Records that table `name` was copied with `n` entries.
    fn counted(&mut self, name: &str, n: u64) {
        self.tables.push(name.to_string());
        self.entries += n;
        self.per_table.insert(name.to_string(), n);
    }
}

/// Wall time after which a chunk ends (looked at every [`CLOCK_EVERY`] entries), besides
/// [`pace::CHUNK_ENTRIES`] and [`pace::CHUNK_BYTES`].
const CHUNK_TIME: Duration = Duration::from_millis(2);

/// Entries copied between two looks at the clock.
const CLOCK_EVERY: u64 = 32;

/// One table being copied: the rest of its rows in the snapshot, resumable chunk by chunk.
trait TableCopy: Send {
    /// Copies the next chunk of rows into `dst`; true once the table is done (and counted).
    fn copy_some(
        &mut self,
        dst: &WriteTransaction,
        counts: &mut CopyCounts,
    ) -> Result<bool, StoreError>;
}

/// A kind byte read from a records key, for the per-kind counts.
type KindOf<K> = fn(&<K as Value>::SelfType<'_>) -> u8;

/// The rows of one table of the snapshot not copied yet.
struct Rows<K: Key + 'static, V: Value + 'static> {
    def: TableDefinition<'static, K, V>,
    /// The snapshot's rows from the next one to copy (none: the snapshot has no such table).
    rest: Option<redb::Range<'static, K, V>>,
    /// Rows copied so far.
    n: u64,
    /// Counts documents per kind (the records table).
    kind_of: Option<KindOf<K>>,
}

impl<K: Key + 'static, V: Value + 'static> Rows<K, V> {
    /// All the rows of `def` in the snapshot `src`, in key order (the cheapest order to
    /// insert). A table the snapshot does not have is copied as an empty one.
    fn open(
        src: &ReadTransaction,
        def: TableDefinition<'static, K, V>,
        kind_of: Option<KindOf<K>>,
    ) -> Result<Box<dyn TableCopy>, StoreError>
    where
        Self: TableCopy,
    {
        let rest = match src.open_table(def) {
            Ok(t) => Some(t.range::<K::SelfType<'_>>(..)?),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Box::new(Rows {
            def,
            rest,
            n: 0,
            kind_of,
        }))
    }
}

impl<K: Key + 'static, V: Value + 'static> TableCopy for Rows<K, V>
where
    Self: Send,
{
    fn copy_some(
        &mut self,
        dst: &WriteTransaction,
        counts: &mut CopyCounts,
    ) -> Result<bool, StoreError> {
        let mut out = dst.open_table(self.def)?;
        let started = Instant::now();
        let (mut entries, mut bytes) = (0u64, 0usize);
        if let Some(rest) = self.rest.as_mut() {
            while entries < pace::CHUNK_ENTRIES && bytes < pace::CHUNK_BYTES {
                let Some(item) = rest.next() else {
                    self.rest = None;
                    break;
                };
                let (k, v) = item?;
                let (key, value) = (k.value(), v.value());
                if let Some(kind_of) = self.kind_of {
                    *counts.per_kind.entry(kind_of(&key)).or_default() += 1;
                }
                bytes += K::as_bytes(&key).as_ref().len() + V::as_bytes(&value).as_ref().len();
                out.insert(key, value)?;
                entries += 1;
                if entries.is_multiple_of(CLOCK_EVERY) && started.elapsed() >= CHUNK_TIME {
                    break;
                }
            }
            self.n += entries;
            if self.rest.is_some() {
                return Ok(false);
            }
        }
        counts.counted(self.def.name(), self.n);
        Ok(true)
    }
}

/// A copy between two chunks: what moves between the copy's threads.
struct Copying {
    dst: WriteTransaction,
    tables: Vec<Box<dyn TableCopy>>,
    /// The table being copied (an index into `tables`).
    next: usize,
    counts: CopyCounts,
}

/// One chunk of the copy; true once every table is done.
fn chunk(c: &mut Copying) -> Result<bool, StoreError> {
    let Some(t) = c.tables.get_mut(c.next) else {
        return Ok(true);
    };
    if t.copy_some(&c.dst, &mut c.counts)? {
        c.next += 1;
    }
    Ok(c.next >= c.tables.len())
}

/// Copies every table of the snapshot `src` into `dst` (a write transaction of an empty
/// file), paced (`pace.rs`); hands `dst` back with what was copied. Fails, copying nothing
/// usable, if `src` holds a table the copier does not know.
pub(crate) fn copy_tables(
    src: &ReadTransaction,
    dst: WriteTransaction,
    control: &Control,
) -> Result<(WriteTransaction, CopyCounts, PaceReport), StoreError> {
    let state = Copying {
        dst,
        tables: every_table(src)?,
        next: 0,
        counts: CopyCounts::default(),
    };
    let stopped = |why: &str| StoreError::Refused(why.to_string());
    let (done, paced) = pace::run(state, control, stopped, chunk)?;
    for t in src.list_tables()? {
        if !done.counts.tables.iter().any(|n| n == t.name()) {
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
    Ok((done.dst, done.counts, paced))
}

/// Writes a copy of the snapshot `src` to `dest` (a new file), runs `extra` in the copy's
/// write transaction, commits durably and closes it. On failure `dest` is removed.
#[cfg(test)]
fn write_copy(
    src: &ReadTransaction,
    dest: &std::path::Path,
    extra: impl FnOnce(&WriteTransaction) -> Result<(), WriteError>,
) -> Result<CopyCounts, WriteError> {
    let result = super::swap::create_copy_file(dest)
        .map_err(WriteError::from)
        .and_then(|file| copy_into(src, file, &Control::default(), extra));
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

/// Writes a copy of the snapshot `src` into `file` (new and empty), runs `extra` in the
/// copy's write transaction, commits durably (redb fsyncs the file) and closes it. The
/// one copier behind the scrub's rewrite, compaction and backups. `control` cancels it
/// (with an error) or makes it urgent.
pub(crate) fn copy_into(
    src: &ReadTransaction,
    file: File,
    control: &Control,
    extra: impl FnOnce(&WriteTransaction) -> Result<(), WriteError>,
) -> Result<CopyCounts, WriteError> {
    copy_open(src, file, control, extra).map(|(counts, _closed)| counts)
}

/// [`copy_into`], handing back the copy's database still open (for a rewrite to catch up
/// in and swap in without opening the file again).
pub(crate) fn copy_open(
    src: &ReadTransaction,
    file: File,
    control: &Control,
    extra: impl FnOnce(&WriteTransaction) -> Result<(), WriteError>,
) -> Result<(CopyCounts, Database), WriteError> {
    let db = slot::builder().create_file(file)?;
    let mut wtx = db.begin_write()?;
    wtx.set_durability(Durability::Immediate)?;
    let (wtx, counts, _paced) = copy_tables(src, wtx, control)?;
    extra(&wtx)?;
    wtx.commit()?;
    Ok((counts, db))
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::testing::{rn, tid};
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
    pub(crate) fn dump(db: &Database) -> Vec<(String, Rows)> {
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

    /// Two tenants' records of every kind of table, with superseded versions, deletions
    /// and an audit anchor.
    pub(crate) fn seed(store: &Store) {
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
        let before = dump(&store.redb_slot().get().unwrap());
        assert!(
            before.iter().all(|(_, r)| !r.is_empty()),
            "every table is seeded"
        );

        // A copy of a snapshot, through the copier's one-line list.
        let copy_path = dir.path().join("plain.redb");
        let counts = {
            let db = store.redb_slot().get().unwrap();
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
