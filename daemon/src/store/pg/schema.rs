//! The PostgreSQL schema: versioned migrations applied at start, and the installation's
//! HMAC key, kept in the database so every daemon of a fleet names subjects alike.
//!
//! Every table leads with the tenant id (its primary key starts with it), so the schema
//! could later be distributed by tenant (Citus: `create_distributed_table(t, 'tenant')`
//! on each, `steward_meta` and `steward_schema` as reference tables); nothing here depends
//! on a single node beyond that. Names and subjects are `COLLATE "C"`: byte order, as
//! redb compares keys, so a listing pages the same on either backend.
//!
//! | table | key | holds |
//! | --- | --- | --- |
//! | `records` | `(tenant, kind, name)` | `codec(StoredDoc)` as redb stores it, the sort time and facets |
//! | `record_subjects` | `(tenant, subject, kind, name, field)` | the subject index |
//! | `schedule` | `(tenant, kind, name, action, at_secs)` | timer entries; indexed by `(action, at_secs)` |
//! | `audit` | `(tenant, seq)` | `codec(AuditRecord)`, the same bytes and hashes as redb's chain |
//! | `audit_head` | `tenant` | the chain's head and anchor; its row lock serializes appends |
//! | `audit_subjects` | `(tenant, hmac, seq)` | what touched a person |
//! | `steward_meta` | `name` | installation-wide: the HMAC key |
//! | `steward_schema` | `version` | the migrations applied |

use postgres::Client;
use rand::TryRngCore;

use crate::store::audit::HmacKey;
use crate::store::error::StoreError;

/// The schema version this build reads and writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Every migration, in order; migration `i` takes the schema from version `i` to `i + 1`.
/// Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE steward_meta (
        name text COLLATE "C" PRIMARY KEY,
        value bytea NOT NULL
    );
    CREATE TABLE records (
        tenant text COLLATE "C" NOT NULL,
        kind smallint NOT NULL,
        name text COLLATE "C" NOT NULL,
        doc bytea NOT NULL,
        time_micros bigint,
        severity text COLLATE "C" NOT NULL DEFAULT '',
        status text COLLATE "C" NOT NULL DEFAULT '',
        PRIMARY KEY (tenant, kind, name)
    );
    CREATE INDEX records_by_time ON records (tenant, kind, time_micros, name)
        WHERE time_micros IS NOT NULL;
    CREATE TABLE record_subjects (
        tenant text COLLATE "C" NOT NULL,
        subject text COLLATE "C" NOT NULL,
        kind smallint NOT NULL,
        name text COLLATE "C" NOT NULL,
        field text COLLATE "C" NOT NULL,
        PRIMARY KEY (tenant, subject, kind, name, field)
    );
    CREATE TABLE schedule (
        tenant text COLLATE "C" NOT NULL,
        kind smallint NOT NULL,
        name text COLLATE "C" NOT NULL,
        action smallint NOT NULL,
        at_secs bigint NOT NULL,
        PRIMARY KEY (tenant, kind, name, action, at_secs)
    );
    CREATE INDEX schedule_due ON schedule (action, at_secs);
    CREATE TABLE audit (
        tenant text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        at_micros bigint NOT NULL,
        record bytea NOT NULL,
        PRIMARY KEY (tenant, seq)
    );
    CREATE TABLE audit_head (
        tenant text COLLATE "C" PRIMARY KEY,
        head_seq bigint NOT NULL,
        head_hash text NOT NULL,
        anchor_seq bigint,
        anchor_hash text
    );
    CREATE TABLE audit_subjects (
        tenant text COLLATE "C" NOT NULL,
        hmac text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (tenant, hmac, seq)
    );
    "#,
];

/// The advisory lock key that serializes migrations between daemons starting at once
/// (`steward` in ASCII).
const MIGRATION_LOCK: i64 = 0x0073_7465_7761_7264;

/// Brings the database to [`SCHEMA_VERSION`] (in one transaction, under an advisory lock,
/// so two daemons starting together migrate once), refusing a database whose version is
/// newer than this build's. Returns the installation's HMAC key, created by the first
/// daemon and shared by the others.
pub(crate) fn migrate(client: &mut Client) -> Result<HmacKey, StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS steward_schema (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )?;
    let found: i32 = tx
        .query_one("SELECT COALESCE(max(version), 0) FROM steward_schema", &[])?
        .try_get(0)?;
    let found = u32::try_from(found)
        .map_err(|_| StoreError::Corrupted(format!("schema version {found} is negative")))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::UnsupportedSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO steward_schema (version) VALUES ($1)",
            &[&version],
        )?;
        tracing::info!(version, "PostgreSQL store schema migrated");
    }
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut fresh)
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("OS randomness: {e}"))))?;
    tx.execute(
        "INSERT INTO steward_meta (name, value) VALUES ('hmac_key', $1)
         ON CONFLICT (name) DO NOTHING",
        &[&fresh.as_slice()],
    )?;
    let key: Vec<u8> = tx
        .query_one(
            "SELECT value FROM steward_meta WHERE name = 'hmac_key'",
            &[],
        )?
        .try_get(0)?;
    tx.commit()?;
    if key.len() != 32 {
        return Err(StoreError::Corrupted(
            "the installation HMAC key in steward_meta is not 32 bytes".into(),
        ));
    }
    HmacKey::from_bytes(&key)
}
