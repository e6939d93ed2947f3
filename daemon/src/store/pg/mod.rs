//! The PostgreSQL backend: the store's boundary on one database that several daemons (a
//! fleet) may share, with redb's guarantees (`boundary.rs`).
//!
//! | module | what it holds |
//! | --- | --- |
//! | `schema` | the tables, versioned migrations applied at start, the shared HMAC key |
//! | `sql` | every query, each bound to the tenant it is given |
//! | `pool` | the read connections, each on a thread of its own |
//! | `read` | [`PgReader`]: the tenant-scoped read handle |
//! | `write` | the writer thread: a group of jobs per transaction, chain heads locked |
//! | `import` | `stewardd migrate`: a redb store moved into an empty database, checked on both sides |
//! | `leader` | which daemon of a fleet runs the timers: an advisory lock on a connection of its own |
//! | `listen` | change events across the fleet: NOTIFY in the writer's transaction, a listener per daemon |
//!
//! Driver: the synchronous `postgres` crate (on tokio-postgres), because the boundary's
//! traits and the writer are synchronous; its connections run on threads of their own
//! (see `pool.rs`), never inside the daemon's runtime. No TLS yet: reach the server
//! through its Unix socket or a trusted network.

mod import;
mod leader;
pub(super) mod listen;
mod pool;
mod read;
mod schema;
mod sql;
mod write;

use std::path::PathBuf;
use std::sync::Arc;

pub use import::{ImportReport, import_redb};
pub use read::PgReader;
pub use schema::SCHEMA_VERSION;

use super::Due;
use super::audit::HmacKey;
use super::backend::Schedule;
use super::doc::ScheduleAction;
use super::error::StoreError;
use pool::Pool;

/// Where the PostgreSQL store is and how to reach it (`[store]` of the config).
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The database, as a `postgresql://` URL (no password in it).
    pub url: String,
    /// A file whose first line is the password, if the server asks for one.
    pub password_file: Option<PathBuf>,
    /// Read connections.
    pub pool_size: usize,
}

impl PgOptions {
    /// The options of a config's `[store]` section.
    pub fn from_config(store: &steward::config::StoreConfig) -> PgOptions {
        PgOptions {
            url: store.postgres_url.clone(),
            password_file: store.postgres_password_file.clone(),
            pool_size: store.pool_size,
        }
    }

    /// The driver's connection settings: the URL, the password read from its file, and
    /// `application_name = stewardd`.
    pub(crate) fn connect_config(&self) -> Result<postgres::Config, StoreError> {
        let mut config: postgres::Config = self.url.parse().map_err(|e| {
            StoreError::Refused(format!("[store] postgres_url {:?}: {e}", self.url))
        })?;
        if config.get_password().is_some() {
            return Err(StoreError::Refused(
                "[store] postgres_url holds a password; put it in postgres_password_file".into(),
            ));
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StoreError::Refused(format!(
                    "[store] postgres_password_file {}: {e}",
                    path.display()
                ))
            })?;
            let password = text.lines().next().unwrap_or("").to_owned();
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("stewardd");
        }
        Ok(config)
    }
}

/// What an open PostgreSQL store keeps: the read pool and the installation key.
#[derive(Debug)]
pub(crate) struct PgStore {
    /// The read connections (also the timers' schedule reads).
    pub(crate) pool: Arc<Pool>,
    /// The installation's HMAC key, from the database.
    pub(crate) key: HmacKey,
    /// The timers' leadership thread (`leader.rs`), stopped when the store closes.
    pub(crate) leader: leader::Leader,
}

/// The parts [`super::Store::open_postgres`] assembles: the store, and the writer
/// thread's connection and settings.
pub(crate) struct Opened {
    /// The store's read side.
    pub(crate) store: PgStore,
    /// The writer's own connection.
    pub(crate) writer: postgres::Client,
    /// To reconnect the writer.
    pub(crate) config: postgres::Config,
    /// Whether this daemon runs the fleet's timers (`leader.rs`); the leader thread
    /// follows it and ends when it is dropped.
    pub(crate) lead: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Connects, migrates the schema (refusing a newer one) and opens the read pool.
pub(crate) fn open(options: &PgOptions) -> Result<Opened, StoreError> {
    let config = options.connect_config()?;
    // Connections are made on a thread outside any async runtime (see `pool.rs`).
    let cfg = config.clone();
    let size = options.pool_size;
    std::thread::Builder::new()
        .name("steward-pg-open".into())
        .spawn(move || {
            let mut writer = pool::connect(&cfg)?;
            let key = schema::migrate(&mut writer)?;
            let pool = Pool::open(&cfg, size)?;
            let lead = Arc::new(tokio::sync::watch::channel(false).0);
            let leader = leader::start(&cfg, Arc::downgrade(&lead))?;
            Ok(Opened {
                store: PgStore { pool, key, leader },
                writer,
                config: cfg,
                lead,
            })
        })?
        .join()
        .map_err(|_| StoreError::Io(std::io::Error::other("opening PostgreSQL panicked")))?
}

/// Checks that the database can be reached and its schema is one this build reads,
/// without changing anything (`stewardd check-config`): the server version and the
/// schema version found (0 for a database not yet used).
pub fn check(options: &PgOptions) -> Result<(String, u32), StoreError> {
    let config = options.connect_config()?;
    std::thread::Builder::new()
        .name("steward-pg-check".into())
        .spawn(move || {
            let mut c = pool::connect(&config)?;
            let server: String = c.query_one("SHOW server_version", &[])?.try_get(0)?;
            let found: i32 = c
                .query_one(
                    "SELECT CASE WHEN to_regclass('steward_schema') IS NULL THEN 0
                     ELSE (SELECT COALESCE(max(version), 0) FROM steward_schema) END",
                    &[],
                )?
                .try_get(0)?;
            let found = u32::try_from(found).unwrap_or(0);
            if found > SCHEMA_VERSION {
                return Err(StoreError::UnsupportedSchema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Ok((server, found))
        })?
        .join()
        .map_err(|_| StoreError::Io(std::io::Error::other("checking PostgreSQL panicked")))?
}

/// `stewardd verify-store` on PostgreSQL: checks every tenant's audit chain (each in one
/// snapshot) without starting anything; a chain that does not verify is
/// [`StoreError::Corrupted`] naming the tenant and the first bad record. PostgreSQL checks
/// its own pages (`data_checksums`, `pg_amcheck`); `file_bytes` is the database's size.
pub fn verify_all(options: &PgOptions) -> Result<super::CheckReport, StoreError> {
    let config = options.connect_config()?;
    std::thread::Builder::new()
        .name("steward-pg-verify".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let mut c = pool::connect(&config)?;
            let size: i64 = c
                .query_one("SELECT pg_database_size(current_database())", &[])?
                .try_get(0)?;
            let tenants: Vec<String> = c
                .query("SELECT tenant FROM audit_head ORDER BY tenant", &[])?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let mut report = super::CheckReport {
                file_bytes: u64::try_from(size).unwrap_or(0),
                tenants: 0,
                audit_records: 0,
                heads: std::collections::BTreeMap::new(),
                took: std::time::Duration::ZERO,
            };
            for tenant in tenants {
                let r = read::verify(&mut c, &tenant)?;
                if !r.ok {
                    return Err(StoreError::Corrupted(format!(
                        "the audit chain of tenant {tenant:?} does not verify at record {}",
                        r.first_bad_seq.unwrap_or(0)
                    )));
                }
                report.audit_records += r.records;
                if let Some(head) = r.head {
                    report.tenants += 1;
                    report.heads.insert(tenant, head);
                }
            }
            report.took = started.elapsed();
            Ok(report)
        })?
        .join()
        .map_err(|_| StoreError::Io(std::io::Error::other("verifying PostgreSQL panicked")))?
}

impl PgStore {
    /// A read handle bound to `tenant`.
    pub(crate) fn reader(&self, tenant: &steward::names::TenantId) -> PgReader {
        PgReader::new(self.pool.clone(), tenant, self.key.clone())
    }
}

pub(super) use write::writer_loop;

/// The tables that hold record bodies, their subject index and audit records: what an
/// erasure's superseded row versions are in.
const ERASURE_TABLES: &str = "records, record_subjects, schedule, audit, audit_subjects";

/// After a data-subject erasure (the scrub, `dsr/scrub.rs`): `VACUUM` of the tables the
/// erasure touched, with index cleanup, so the dead row versions that still held the
/// subject are removed from the tables and their indexes and their space is reused.
/// VACUUM does not zero the freed space of a page, and the WAL, replicas and base
/// backups keep the old bytes until they are recycled or expire (see DECISIONS).
pub(crate) fn vacuum_erased(pool: &Pool) -> Result<(), StoreError> {
    pool.run(|c| {
        c.batch_execute(&format!("VACUUM (INDEX_CLEANUP ON) {ERASURE_TABLES}"))?;
        Ok(())
    })
}

impl Schedule for Pool {
    fn due(
        &self,
        action: ScheduleAction,
        now_secs: i64,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.run(move |c| sql::due(c, action, now_secs, limit))
    }

    fn next_due(&self, action: ScheduleAction) -> Result<Option<i64>, StoreError> {
        self.run(move |c| sql::next_due(c, action))
    }
}
