//! The redb store: one file, `data_dir/steward.redb`, holding every tenant's documents, their
//! indexes and the audit hash chains. Map:
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`tables`] | every table definition: the on-disk layout in one screen |
//! | `boundary` | [`TenantRead`], [`TenantWrite`]: what the daemon asks of a storage backend |
//! | `backend` | [`TenantReader`] (the read handle of either backend) and the timers' schedule view |
//! | [`codec`] | the format-version byte + postcard encoding of every value |
//! | `doc` | [`Doc`], [`DocInput`], [`Kind`], schedule entries |
//! | `audit` | audit entries, the hash chain over the stored records and its verification |
//! | `read` | [`RedbReader`]: tenant-scoped reads in short read transactions |
//! | `time_scan` | the time index walked newest or oldest first, and its facets counted (the overview) |
//! | `txn` | [`TenantTxn`]: a write job's tenant-scoped view; staging and applying changes |
//! | `view` | what a write job reads of the writer's transaction, per backend |
//! | `writer` | [`Writer`]: the handle to the one thread that owns write transactions |
//! | `group` | that thread's loop: run a group of jobs in one transaction, commit, answer |
//! | `slot` | the replaceable open `Database`, reopened after an I/O error (full disk) |
//! | `space` | how much of the file is in use (for compaction) |
//! | `reserve` | disk space kept back so refusals can be audited on a full disk |
//! | `copy` | the copier: every table of a snapshot into a fresh file (scrub, compaction, backup) |
//! | `pace` | how a copy yields the CPU: chunks on an idle-priority thread, with a progress floor |
//! | `swap` | the rewrite's swap of a finished copy in for the live file, and the old file's zeroing |
//! | `online` | the online rewrite: the copy beside the writer, then a catch-up of what committed meanwhile |
//! | `backup` | online backup to a file, the check of a copy, the verified restore |
//! | `check` | the full check of a file: page checksums and every audit chain |
//! | [`pg`] | the PostgreSQL backend (`[store] backend = "postgres"`): the same boundary on a shared database |
//!
//! Invariants: data is reached only through a handle bound to one tenant
//! ([`Store::tenant`], [`Writer::write`]); every change commits with its audit record in the
//! same transaction, and a job that fails changes nothing ([`TenantTxn`]); a write is
//! acknowledged only after a durable commit. The store knows no resource shapes: the
//! daemon's routes turn model types into [`DocInput`]s and audit entries.

pub mod codec;
pub mod tables;

mod audit;
mod backend;
mod backup;
mod boundary;
mod check;
mod copy;
mod doc;
mod error;
mod group;
mod online;
mod pace;
pub mod pg;
mod read;
mod reserve;
mod slot;
mod space;
mod swap;
mod time_scan;
mod txn;
mod view;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::TryRngCore;
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use steward::names::TenantId;

pub use audit::{
    AuditEntry, ChainPoint, GENESIS_HASH, HASHED_SEGMENT_PREFIX, VerifyReport, system_caller,
};
pub use backend::TenantReader;
pub use backup::{BackupReport, REPLACED_PREFIX, RESTORE_FILE, RestoreReport};
pub use boundary::{TenantRead, TenantWrite};
pub use check::CheckReport;
pub use codec::CodecError;
pub use copy::CopyCounts;
pub use doc::{Doc, DocInput, Kind, ScheduleAction, Scheduled};
pub use error::{StoreError, WriteError};
pub use read::{DocText, Page, RedbReader, SubjectHit, TimeCursor};
pub use reserve::{RESERVE_BYTES, RESERVE_FILE};
pub use space::Space;
pub use swap::{COPY_FILE, Retirement, RewriteReport, overwrite_with_zeros};
pub use time_scan::{TimeOrder, TimeQuery};
pub use txn::{IfMatch, TenantTxn};
pub use writer::{ChangeEvent, Handoff, JobError, Subscription, WriteJob, Writer, WriterStats};

use audit::HmacKey;
pub(crate) use audit::hex;
use backend::Schedule;
use slot::DbSlot;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "steward.redb";

/// Tuning of the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most jobs committed in one transaction.
    pub max_group: usize,
    /// Jobs that may wait for the writer before `write` waits to enqueue (backpressure).
    pub queue_capacity: usize,
    /// Change events buffered per subscriber before a slow one lags.
    pub event_capacity: usize,
    /// Check every page and audit chain before opening for use (see [`Store::verify`]).
    pub verify_on_start: bool,
    /// Most bytes (estimated) of writes an online rewrite (compaction, the scrub) keeps to
    /// replay into its copy; past it, writes wait until the copy is done (`online.rs`).
    pub rewrite_journal_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_group: 256,
            queue_capacity: 4096,
            event_capacity: 1024,
            verify_on_start: false,
            rewrite_journal_bytes: online::JOURNAL_BYTES,
        }
    }
}

/// A schedule entry that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// When it was due, Unix seconds.
    pub at_secs: i64,
    /// What is due.
    pub action: ScheduleAction,
    /// The record's kind.
    pub kind: Kind,
    /// The record's tenant.
    pub tenant: TenantId,
    /// The record's name.
    pub name: String,
}

/// The open store. Dropping it stops the writer (after its current group) and joins its
/// thread, so in async code drop it inside `spawn_blocking`; the file lock is released once
/// every [`TenantReader`] is gone too ([`Writer`] handles do not hold the file).
#[derive(Debug)]
pub struct Store {
    /// The backend the data lives in.
    backend: Backend,
    /// Handle to the writer thread.
    writer: Writer,
    /// The writer thread, joined on drop.
    thread: Option<std::thread::JoinHandle<()>>,
    /// Whether this daemon runs the timers: always for redb; on PostgreSQL, while it
    /// holds the fleet's timer lock (`pg/leader.rs`).
    lead: Arc<tokio::sync::watch::Sender<bool>>,
}

/// The backends a [`Store`] runs on, with what each keeps open.
#[derive(Debug)]
enum Backend {
    /// The embedded redb file.
    Redb(RedbStore),
    /// A PostgreSQL database, perhaps shared with other daemons.
    Postgres(pg::PgStore),
}

/// What an open redb store keeps.
#[derive(Debug)]
struct RedbStore {
    /// The database, shared with readers and the writer thread, reopened after I/O errors.
    db: Arc<DbSlot>,
    /// The database file.
    path: PathBuf,
    /// The installation's HMAC key (from the meta table).
    key: HmacKey,
    /// Held while a backup runs: one at a time (each holds a snapshot, which keeps redb
    /// from reusing the pages freed meanwhile).
    backing_up: std::sync::Mutex<()>,
}

impl Store {
    /// Opens (or creates) `data_dir/steward.redb`: creates every table, checks the schema
    /// version, loads or generates the installation's HMAC key, and starts the writer.
    /// A second open of the same file fails with [`StoreError::AlreadyOpen`]; a damaged file
    /// with [`StoreError::Corrupted`] (never a panic).
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(DB_FILE);
        swap::remove_leftover(data_dir)?;
        backup::remove_leftover(data_dir)?;
        let mut db = slot::open_database(&path)?;
        if options.verify_on_start {
            let (checked, report) = check::check(db, &path)?;
            log_check(&path, &report);
            db = checked;
        }
        // redb may panic on a damaged page instead of returning an error (a `&str` key that
        // is not UTF-8); at start that is a damaged file, not a crash.
        let (db, key) =
            slot::guarded(db, &path, "the meta table could not be read", |db| init(db))?;
        let key = key?;
        let db = Arc::new(DbSlot::new(db, &path));
        let (thread_db, thread_key) = (db.clone(), key.clone());
        let limits = (options.max_group.max(1), options.rewrite_journal_bytes);
        let schedule: std::sync::Weak<dyn Schedule> = Arc::downgrade(&db) as _;
        let (writer, thread) = Writer::start(
            schedule,
            Some(reserve::Reserve::open(data_dir)),
            options.queue_capacity,
            options.event_capacity,
            move |rx, wake, shared| {
                group::writer_loop(thread_db, thread_key, rx, wake, shared, limits)
            },
        )?;
        Ok(Store {
            backend: Backend::Redb(RedbStore {
                db,
                path,
                key,
                backing_up: std::sync::Mutex::new(()),
            }),
            writer,
            thread: Some(thread),
            lead: Arc::new(tokio::sync::watch::channel(true).0),
        })
    }

    /// Opens the PostgreSQL store `options` names: connects, applies the schema's
    /// migrations (refusing a database newer than this build:
    /// [`StoreError::UnsupportedSchema`]), loads or creates the installation's HMAC key in
    /// the database, opens the read pool and starts the writer on a connection of its own.
    /// With [`StoreOptions::verify_on_start`], every tenant's audit chain is checked first
    /// (PostgreSQL checks its own pages).
    pub fn open_postgres(
        options: &pg::PgOptions,
        store: StoreOptions,
    ) -> Result<Store, StoreError> {
        let pg::Opened {
            store: opened,
            writer: client,
            config,
            lead,
        } = pg::open(options)?;
        if store.verify_on_start {
            let report = pg::verify_all(options)?;
            tracing::info!(
                tenants = report.tenants,
                audit_records = report.audit_records,
                took_ms = report.took.as_millis() as u64,
                "PostgreSQL store's audit chains verified"
            );
        }
        let key = opened.key.clone();
        let max_group = store.max_group.max(1);
        let schedule: std::sync::Weak<dyn Schedule> = Arc::downgrade(&opened.pool) as _;
        // Each store announces its commits under a random id, by which its own listener
        // skips them (`pg/listen.rs`).
        let origin = uuid::Uuid::new_v4().to_string();
        let (writer, thread) = Writer::start(
            schedule,
            None,
            store.queue_capacity,
            store.event_capacity,
            move |rx, _wake, shared| {
                let weak = Arc::downgrade(&shared);
                if let Err(e) = pg::listen::spawn(config.clone(), origin.clone(), weak) {
                    tracing::error!(error = %e, "cannot start the fleet's event listener");
                }
                pg::writer_loop(client, config, (key, origin), rx, shared, max_group)
            },
        )?;
        Ok(Store {
            backend: Backend::Postgres(opened),
            writer,
            thread: Some(thread),
            lead,
        })
    }

    /// The redb store, or the refusal of an operation only the redb backend has.
    fn redb(&self, what: &str) -> Result<&RedbStore, StoreError> {
        match &self.backend {
            Backend::Redb(r) => Ok(r),
            Backend::Postgres(_) => Err(StoreError::Refused(format!(
                "{what} is only for the redb backend"
            ))),
        }
    }

    /// Whether the store is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The redb file's slot (the unit tests of the copier look at the live file).
    #[cfg(test)]
    pub(crate) fn redb_slot(&self) -> &Arc<DbSlot> {
        match &self.backend {
            Backend::Redb(r) => &r.db,
            Backend::Postgres(_) => panic!("not a redb store"),
        }
    }

    /// The timers' view of the schedule.
    fn schedule(&self) -> &dyn Schedule {
        match &self.backend {
            Backend::Redb(r) => &*r.db,
            Backend::Postgres(p) => &*p.pool,
        }
    }

    /// Online backup: copies one read snapshot (the whole store as of one moment) to
    /// `out`, an absolute path outside the data directory, while writes go on (see
    /// `backup.rs`). Blocking: call it off the async threads. A second backup while one
    /// runs is refused.
    pub fn backup(&self, out: &Path) -> Result<BackupReport, StoreError> {
        let redb =
            self.redb("an online backup (PostgreSQL has its own: pg_dump, pg_basebackup)")?;
        let _one = redb.backing_up.try_lock().map_err(|_| {
            StoreError::Refused("a backup is already running; try again when it is done".into())
        })?;
        let data_dir = redb.path.parent().unwrap_or(Path::new("/"));
        let db = redb.db.get()?;
        let rtx = db.begin_read()?;
        backup::write_backup(&rtx, out, data_dir)
    }

    /// Backup with no daemon running: opens `data_dir/steward.redb` (never creating it;
    /// [`StoreError::AlreadyOpen`] when a daemon holds it) and copies it to `out`.
    pub fn backup_offline(data_dir: &Path, out: &Path) -> Result<BackupReport, StoreError> {
        let path = existing(data_dir)?;
        let db = slot::open_database(&path)?;
        let rtx = db.begin_read()?;
        backup::write_backup(&rtx, out, data_dir)
    }

    /// Restores the backup `from` into `data_dir` with the daemon stopped: checks the copy
    /// fully first, keeps the replaced store aside (`steward.redb.replaced-…`, `0600`),
    /// refuses a copy of another schema version (see `backup.rs`).
    pub fn restore(data_dir: &Path, from: &Path) -> Result<RestoreReport, StoreError> {
        backup::restore(data_dir, from)
    }

    /// The full check of any store file (a backup too): schema version, every page's
    /// checksum, every audit chain. Not while a daemon has it open.
    pub fn verify_file(path: &Path) -> Result<CheckReport, StoreError> {
        backup::verify_file(path)
    }

    /// Checks an existing `data_dir/steward.redb` without starting anything: every page's
    /// checksum and every tenant's audit chain. The daemon must not be running on it
    /// ([`StoreError::AlreadyOpen`]); a missing file is an error, not created.
    pub fn verify(data_dir: &Path) -> Result<CheckReport, StoreError> {
        let path = existing(data_dir)?;
        let db = slot::open_database(&path)?;
        check::check(db, &path).map(|(_, report)| report)
    }

    /// The database file (redb); empty for a backend that has none.
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Redb(r) => &r.path,
            Backend::Postgres(_) => Path::new(""),
        }
    }

    /// A read handle bound to `tenant`: it sees that tenant's data and nothing else.
    pub fn tenant(&self, tenant: &TenantId) -> TenantReader {
        match &self.backend {
            Backend::Redb(r) => {
                TenantReader::Redb(RedbReader::new(r.db.clone(), tenant, r.key.clone()))
            }
            Backend::Postgres(p) => TenantReader::Postgres(p.reader(tenant)),
        }
    }

    /// Whether this daemon runs the timers now: a redb store always; on PostgreSQL the one
    /// daemon of the fleet holding the timer lock (`pg/leader.rs`).
    pub fn leads(&self) -> bool {
        *self.lead.borrow()
    }

    /// Follows [`Store::leads`]: the timers wait on it while another daemon leads.
    pub fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        self.lead.subscribe()
    }

    /// A handle to the writer (cloneable, for tasks).
    pub fn writer(&self) -> Writer {
        self.writer.clone()
    }

    /// Schedule entries of `action` due at or before `now_secs`, oldest first, at most
    /// `limit`, across tenants (for the timers, which then write through the tenant's job).
    pub fn due(
        &self,
        action: ScheduleAction,
        now_secs: i64,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.schedule().due(action, now_secs, limit)
    }

    /// The earliest time anything of `action` is scheduled, if any (for the JIT timer to
    /// sleep until the next end, to the second).
    pub fn next_due(&self, action: ScheduleAction) -> Result<Option<i64>, StoreError> {
        self.schedule().next_due(action)
    }

    /// After data-subject erasures, on PostgreSQL: VACUUMs the tables the erasures touched
    /// (`pg::vacuum_erased`); `Ok(true)` once done. `Ok(false)` on redb, whose scrub is
    /// the rewrite into a fresh file. Blocking: call it off the async threads.
    pub fn vacuum_after_erasure(&self) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Redb(_) => Ok(false),
            Backend::Postgres(p) => pg::vacuum_erased(&p.pool).map(|()| true),
        }
    }

    /// Stops the writer and closes the database (same as dropping the store).
    pub fn close(self) {}
}

impl Drop for Store {
    fn drop(&mut self) {
        self.writer.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Backend::Postgres(p) = &self.backend {
            p.pool.close();
            p.leader.stop();
        }
    }
}

/// `data_dir/steward.redb`, which must exist (a check or backup never creates it).
fn existing(data_dir: &Path) -> Result<PathBuf, StoreError> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such file", path.display()),
        )));
    }
    Ok(path)
}

/// The earliest `at_secs` of `action` in the schedule table, if any.
pub(crate) fn next_due_entry(
    db: &Database,
    action: ScheduleAction,
) -> Result<Option<i64>, StoreError> {
    let rtx = db.begin_read()?;
    let t = rtx.open_table(tables::SCHEDULE)?;
    let a = action.as_u8();
    let mut range = t.range((a, i64::MIN, 0u8, "", "")..(a + 1, i64::MIN, 0u8, "", ""))?;
    match range.next() {
        Some(item) => Ok(Some(item?.0.value().1)),
        None => Ok(None),
    }
}

pub(crate) fn due_entries(
    db: &Database,
    action: ScheduleAction,
    now_secs: i64,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    let rtx = db.begin_read()?;
    let t = rtx.open_table(tables::SCHEDULE)?;
    let a = action.as_u8();
    let upper = (a, now_secs.saturating_add(1), 0u8, "", "");
    let mut out = Vec::new();
    for item in t.range((a, i64::MIN, 0u8, "", "")..upper)? {
        if out.len() >= limit {
            break;
        }
        let (k, _) = item?;
        let (_, at_secs, kind, tenant, name) = k.value();
        let kind = Kind::from_u8(kind)
            .ok_or_else(|| StoreError::Corrupted(format!("unknown kind byte {kind}")))?;
        let tenant = TenantId::parse(tenant).map_err(|e| {
            StoreError::Corrupted(format!("a schedule entry's tenant {tenant:?}: {e}"))
        })?;
        out.push(Due {
            at_secs,
            action,
            kind,
            tenant,
            name: name.to_string(),
        });
    }
    Ok(out)
}

fn log_check(path: &Path, r: &CheckReport) {
    tracing::info!(
        file = %path.display(),
        bytes = r.file_bytes,
        tenants = r.tenants,
        audit_records = r.audit_records,
        took_ms = r.took.as_millis() as u64,
        "store verified"
    );
}

/// Creates every table, checks the schema version and loads or generates the HMAC key.
fn init(db: &Database) -> Result<HmacKey, StoreError> {
    let mut wtx = db.begin_write()?;
    wtx.set_durability(Durability::Immediate)?;
    let key = {
        wtx.open_table(tables::RECORDS)?;
        wtx.open_table(tables::TIME_INDEX)?;
        wtx.open_table(tables::SUBJECTS)?;
        wtx.open_table(tables::SCHEDULE)?;
        wtx.open_table(tables::AUDIT)?;
        wtx.open_table(tables::AUDIT_HEAD)?;
        wtx.open_table(tables::AUDIT_SUBJECTS)?;
        let mut meta = wtx.open_table(tables::META)?;
        let version = meta
            .get(tables::META_SCHEMA_VERSION)?
            .map(|g| g.value().to_vec());
        match version {
            None => {
                meta.insert(
                    tables::META_SCHEMA_VERSION,
                    tables::SCHEMA_VERSION.to_le_bytes().as_slice(),
                )?;
            }
            Some(b) => {
                let bytes: [u8; 4] = b.as_slice().try_into().map_err(|_| {
                    StoreError::Corrupted(
                        "the schema version in the meta table is malformed".into(),
                    )
                })?;
                let found = u32::from_le_bytes(bytes);
                if found != tables::SCHEMA_VERSION {
                    return Err(StoreError::UnsupportedSchema {
                        found,
                        supported: tables::SCHEMA_VERSION,
                    });
                }
            }
        }
        let stored = meta.get(tables::META_HMAC_KEY)?.map(|g| g.value().to_vec());
        match stored {
            Some(k) if k.len() == 32 => HmacKey::from_bytes(&k)?,
            Some(_) => {
                return Err(StoreError::Corrupted(
                    "the installation HMAC key is not 32 bytes".into(),
                ));
            }
            None => {
                let mut k = [0u8; 32];
                rand::rngs::OsRng.try_fill_bytes(&mut k).map_err(|e| {
                    StoreError::Io(std::io::Error::other(format!("OS randomness: {e}")))
                })?;
                meta.insert(tables::META_HMAC_KEY, k.as_slice())?;
                HmacKey::from_bytes(&k)?
            }
        }
    };
    wtx.commit()?;
    Ok(key)
}
