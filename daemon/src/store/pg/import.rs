//! `stewardd migrate --from redb --to postgres`: a host's redb store moved into an empty
//! PostgreSQL database, everything included (records, their indexes and schedule, every
//! tenant's audit chain with its anchor, the idempotency keys, and the installation's HMAC
//! key, without which the audit log's subject HMACs would no longer find anyone).
//!
//! The move, in order:
//! 1. The redb file is opened (its lock keeps a daemon from starting on it meanwhile) and
//!    checked fully: schema version, every page, every audit chain.
//! 2. The database is migrated to this build's schema and locked against writers; no
//!    daemon may be connected to it (it would keep the key it read at start), and it must
//!    hold no steward data (a move never merges two installations' chains).
//! 3. One transaction copies every table with `COPY … FROM STDIN (FORMAT binary)`: the
//!    stored bytes as they are (the same codec on both backends, so the chains' hashes
//!    stay the same), replaces the database's HMAC key with the file's, and commits.
//! 4. The database is checked as `stewardd verify-store` checks it (every chain walked
//!    from what PostgreSQL now holds) and compared with the file: the same heads, the same
//!    records per tenant and kind. A copy that differs is removed again and the move
//!    fails; the redb file is never changed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Transaction};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};
use serde::Serialize;
use steward::model::AuditRecord;

use super::sql::seq_id;
use super::{PgOptions, pool, schema};
use crate::store::audit::{AuditHead, ChainPoint};
use crate::store::doc::{Kind, StoredDoc};
use crate::store::error::StoreError;
use crate::store::{DB_FILE, backup, check, codec, tables};

/// The tables a move fills, as one list for the lock, the emptiness check and a cleanup.
const TABLES: &str = "records, record_subjects, schedule, audit, audit_head, audit_subjects";

/// What a move copied, as checked on the PostgreSQL side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Records per tenant and kind (`contoso` → `alert` → 1200), equal on both sides.
    pub records: BTreeMap<String, BTreeMap<String, u64>>,
    /// Audit records copied, over every tenant.
    pub audit_records: u64,
    /// Every tenant's audit head `(seq, hash)`, verified in the database and equal to the
    /// file's.
    pub heads: BTreeMap<String, ChainPoint>,
    /// Rows written, over every table.
    pub rows: u64,
    /// How long the move took, checks included.
    #[serde(skip)]
    pub took: Duration,
}

/// Moves the redb store of `data_dir` into the empty database `options` names (see the
/// module doc). The daemon must be stopped: its lock on the file makes this fail with
/// [`StoreError::AlreadyOpen`] before anything is touched.
pub fn import_redb(data_dir: &Path, options: &PgOptions) -> Result<ImportReport, StoreError> {
    let started = Instant::now();
    let path = data_dir.join(DB_FILE);
    if let Err(e) = std::fs::symlink_metadata(&path) {
        return Err(StoreError::Refused(format!(
            "no store to move at {}: {e}",
            path.display()
        )));
    }
    let db = backup::open_existing(&path)?;
    backup::require_schema(&db, &path)?;
    let (db, source) = check::check(db, &path)?;
    let config = options.connect_config()?;
    // The driver's connections must live outside any async runtime (see `pool.rs`).
    let mut report = std::thread::Builder::new()
        .name("steward-pg-import".into())
        .spawn(move || -> Result<ImportReport, StoreError> {
            let mut client = pool::connect(&config)?;
            schema::migrate(&mut client)?;
            let copied = copy_all(&mut client, &db)?;
            if let Err(e) = compare(&mut client, &copied, &source.heads) {
                // The copy is not the file: leave the database as empty as it was found.
                let cleaned = client.batch_execute(&format!("TRUNCATE {TABLES}"));
                if let Err(c) = cleaned {
                    return Err(StoreError::Corrupted(format!(
                        "{e}; removing the copy failed too ({c}): drop the database's \
                         steward tables before using it"
                    )));
                }
                return Err(e);
            }
            // Fresh statistics, so the first queries plan on the real sizes.
            client.batch_execute(&format!("ANALYZE {TABLES}"))?;
            Ok(copied)
        })?
        .join()
        .map_err(|_| StoreError::Io(std::io::Error::other("the move to PostgreSQL panicked")))??;
    report.took = started.elapsed();
    Ok(report)
}

/// Step 3: every table of the file into the database, in one transaction.
fn copy_all(client: &mut Client, db: &Database) -> Result<ImportReport, StoreError> {
    let rtx = db.begin_read()?;
    let key = hmac_key(&rtx)?;
    let mut tx = client.transaction()?;
    // Writers wait (a daemon already running on the database), readers do not.
    tx.batch_execute(&format!("LOCK TABLE {TABLES} IN EXCLUSIVE MODE"))?;
    // A daemon already running on the database would keep serving with the key it read
    // at start, not the moved one: every daemon of the fleet must be stopped.
    let daemons: i64 = tx
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND application_name = 'stewardd' AND pid <> pg_backend_pid()",
            &[],
        )?
        .try_get(0)?;
    if daemons > 0 {
        return Err(StoreError::Refused(format!(
            "{daemons} stewardd connections are open on the database: stop every daemon \
             using it before moving a store into it (a running daemon keeps the installation \
             key it read at start)"
        )));
    }
    let used: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM records LIMIT 1) r)
                  + (SELECT count(*) FROM (SELECT 1 FROM audit_head LIMIT 1) h)",
            &[],
        )?
        .try_get(0)?;
    if used > 0 {
        return Err(StoreError::Refused(
            "the database already holds steward data (a daemon has run on it): a move never \
             merges two installations' audit chains; move into a fresh database \
             (`createdb`), with no daemon started on it first"
                .into(),
        ));
    }
    tx.execute(
        "UPDATE steward_meta SET value = $1 WHERE name = 'hmac_key'",
        &[&key.as_slice()],
    )?;
    let mut report = ImportReport {
        records: BTreeMap::new(),
        audit_records: 0,
        heads: BTreeMap::new(),
        rows: 0,
        took: Duration::ZERO,
    };
    report.rows += copy_records(&mut tx, &rtx, &mut report.records)?;
    report.rows += copy_subjects(&mut tx, &rtx)?;
    report.rows += copy_schedule(&mut tx, &rtx)?;
    report.audit_records = copy_audit(&mut tx, &rtx)?;
    report.rows += report.audit_records;
    report.rows += copy_heads(&mut tx, &rtx, &mut report.heads)?;
    report.rows += copy_audit_subjects(&mut tx, &rtx)?;
    tx.commit()?;
    Ok(report)
}

/// The file's installation key (made when the daemon first opened the file, with its
/// schema version: a checked store has one).
fn hmac_key(rtx: &ReadTransaction) -> Result<Vec<u8>, StoreError> {
    let meta = rtx.open_table(tables::META)?;
    let key = meta
        .get(tables::META_HMAC_KEY)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| {
            StoreError::Corrupted("the store has no HMAC key in its meta table".into())
        })?;
    if key.len() != 32 {
        return Err(StoreError::Corrupted(
            "the store's HMAC key is not 32 bytes".into(),
        ));
    }
    Ok(key)
}

/// A table of the snapshot, or `None` where the file never had it (nothing to copy).
macro_rules! open_or_none {
    ($rtx:expr, $def:expr) => {
        match $rtx.open_table($def) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        }
    };
}

/// Starts a binary `COPY` into `table (columns)` of rows of `types`.
fn copy_in<'a>(
    tx: &'a mut Transaction<'_>,
    table: &str,
    columns: &str,
    types: &[Type],
) -> Result<BinaryCopyInWriter<'a>, StoreError> {
    let sink = tx.copy_in(&format!(
        "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
    ))?;
    Ok(BinaryCopyInWriter::new(sink, types))
}

/// Writes one row of a copy.
fn row(w: &mut BinaryCopyInWriter<'_>, values: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
    Ok(w.write(values)?)
}

/// A stored kind byte as the database keeps it, refusing one this build does not know.
fn kind_id(byte: u8) -> Result<i16, StoreError> {
    Kind::from_u8(byte)
        .map(super::sql::kind_id)
        .ok_or_else(|| StoreError::Corrupted(format!("unknown record kind {byte}")))
}

/// `records`: each stored document's bytes as they are, with its sort time and the facets
/// its time index entry holds; counted per tenant and kind into `counts`.
fn copy_records(
    tx: &mut Transaction<'_>,
    rtx: &ReadTransaction,
    counts: &mut BTreeMap<String, BTreeMap<String, u64>>,
) -> Result<u64, StoreError> {
    let Some(records) = open_or_none!(rtx, tables::RECORDS) else {
        return Ok(0);
    };
    let index = open_or_none!(rtx, tables::TIME_INDEX);
    let mut w = copy_in(
        tx,
        "records",
        "tenant, kind, name, doc, time_micros, severity, status",
        &[
            Type::TEXT,
            Type::INT2,
            Type::TEXT,
            Type::BYTEA,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
        ],
    )?;
    let mut n = 0;
    for item in records.iter()? {
        let (k, v) = item?;
        let (tenant, kind, name) = k.value();
        let bytes = v.value();
        let doc: StoredDoc = codec::decode(bytes)
            .map_err(|e| StoreError::codec(format!("records[{tenant}, {kind}, {name}]"), e))?;
        let (severity, status) = match (doc.time, &index) {
            (None, _) => (String::new(), String::new()),
            (Some(t), Some(index)) => match index.get((tenant, kind, t, name))? {
                Some(f) => {
                    let (severity, status) = f.value();
                    (severity.to_owned(), status.to_owned())
                }
                None => return Err(unindexed(tenant, kind, name)),
            },
            (Some(_), None) => return Err(unindexed(tenant, kind, name)),
        };
        let kind_name = Kind::from_u8(kind).map_or("?", Kind::as_str);
        *counts
            .entry(tenant.to_owned())
            .or_default()
            .entry(kind_name.to_owned())
            .or_default() += 1;
        row(
            &mut w,
            &[
                &tenant,
                &kind_id(kind)?,
                &name,
                &bytes,
                &doc.time,
                &severity,
                &status,
            ],
        )?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// A record with a sort time but no time index entry: the file's indexes disagree.
fn unindexed(tenant: &str, kind: u8, name: &str) -> StoreError {
    StoreError::Corrupted(format!(
        "records[{tenant}, {kind}, {name}] has a sort time but no time index entry"
    ))
}

/// `record_subjects`: the subject index, key for key.
fn copy_subjects(tx: &mut Transaction<'_>, rtx: &ReadTransaction) -> Result<u64, StoreError> {
    let Some(t) = open_or_none!(rtx, tables::SUBJECTS) else {
        return Ok(0);
    };
    let mut w = copy_in(
        tx,
        "record_subjects",
        "tenant, subject, kind, name, field",
        &[Type::TEXT, Type::TEXT, Type::INT2, Type::TEXT, Type::TEXT],
    )?;
    let mut n = 0;
    for item in t.iter()? {
        let (k, _) = item?;
        let (tenant, subject, kind, name, field) = k.value();
        row(&mut w, &[&tenant, &subject, &kind_id(kind)?, &name, &field])?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// `schedule`: every timer entry (retention, JIT ends, deadlines, scrubs).
fn copy_schedule(tx: &mut Transaction<'_>, rtx: &ReadTransaction) -> Result<u64, StoreError> {
    let Some(t) = open_or_none!(rtx, tables::SCHEDULE) else {
        return Ok(0);
    };
    let mut w = copy_in(
        tx,
        "schedule",
        "tenant, kind, name, action, at_secs",
        &[Type::TEXT, Type::INT2, Type::TEXT, Type::INT2, Type::INT8],
    )?;
    let mut n = 0;
    for item in t.iter()? {
        let (k, _) = item?;
        let (action, at_secs, kind, tenant, name) = k.value();
        row(
            &mut w,
            &[
                &tenant,
                &kind_id(kind)?,
                &name,
                &i16::from(action),
                &at_secs,
            ],
        )?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// `audit`: every record's bytes as they are (so every hash stays what it was), with its
/// time for the retention sweep.
fn copy_audit(tx: &mut Transaction<'_>, rtx: &ReadTransaction) -> Result<u64, StoreError> {
    let Some(t) = open_or_none!(rtx, tables::AUDIT) else {
        return Ok(0);
    };
    let mut w = copy_in(
        tx,
        "audit",
        "tenant, seq, at_micros, record",
        &[Type::TEXT, Type::INT8, Type::INT8, Type::BYTEA],
    )?;
    let mut n = 0;
    for item in t.iter()? {
        let (k, v) = item?;
        let (tenant, seq) = k.value();
        let bytes = v.value();
        let rec: AuditRecord = codec::decode(bytes)
            .map_err(|e| StoreError::codec(format!("audit[{tenant}, {seq}]"), e))?;
        row(
            &mut w,
            &[&tenant, &seq_id(seq), &rec.at.as_microsecond(), &bytes],
        )?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// `audit_head`: each tenant's head and purge anchor; collected into `heads`.
fn copy_heads(
    tx: &mut Transaction<'_>,
    rtx: &ReadTransaction,
    heads: &mut BTreeMap<String, ChainPoint>,
) -> Result<u64, StoreError> {
    let Some(t) = open_or_none!(rtx, tables::AUDIT_HEAD) else {
        return Ok(0);
    };
    let mut w = copy_in(
        tx,
        "audit_head",
        "tenant, head_seq, head_hash, anchor_seq, anchor_hash",
        &[Type::TEXT, Type::INT8, Type::TEXT, Type::INT8, Type::TEXT],
    )?;
    let mut n = 0;
    for item in t.iter()? {
        let (k, v) = item?;
        let tenant = k.value();
        let h: AuditHead = codec::decode(v.value())
            .map_err(|e| StoreError::codec(format!("audit_head[{tenant}]"), e))?;
        let anchor_seq = h.anchor.as_ref().map(|a| seq_id(a.seq));
        let anchor_hash = h.anchor.as_ref().map(|a| a.hash.as_str());
        row(
            &mut w,
            &[
                &tenant,
                &seq_id(h.head.seq),
                &h.head.hash,
                &anchor_seq,
                &anchor_hash,
            ],
        )?;
        if h.head.seq > 0 {
            heads.insert(tenant.to_owned(), h.head);
        }
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// `audit_subjects`: which audit records concern which person's HMAC.
fn copy_audit_subjects(tx: &mut Transaction<'_>, rtx: &ReadTransaction) -> Result<u64, StoreError> {
    let Some(t) = open_or_none!(rtx, tables::AUDIT_SUBJECTS) else {
        return Ok(0);
    };
    let mut w = copy_in(
        tx,
        "audit_subjects",
        "tenant, hmac, seq",
        &[Type::TEXT, Type::TEXT, Type::INT8],
    )?;
    let mut n = 0;
    for item in t.iter()? {
        let (k, _) = item?;
        let (tenant, hmac, seq) = k.value();
        row(&mut w, &[&tenant, &hmac, &seq_id(seq)])?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// Step 4: the database checked as `verify-store` checks it, against the file: every
/// chain verifies from what PostgreSQL holds, to the file's heads, and every tenant and
/// kind has as many records as the file.
fn compare(
    client: &mut Client,
    copied: &ImportReport,
    file_heads: &BTreeMap<String, ChainPoint>,
) -> Result<(), StoreError> {
    let mismatch = |what: String| {
        StoreError::Corrupted(format!(
            "the copy in PostgreSQL differs from the file: {what}; the copy was removed"
        ))
    };
    let mut heads = BTreeMap::new();
    let tenants: Vec<String> = client
        .query("SELECT tenant FROM audit_head ORDER BY tenant", &[])?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    for tenant in tenants {
        let r = super::read::verify(client, &tenant)?;
        if !r.ok {
            return Err(mismatch(format!(
                "the audit chain of tenant {tenant:?} does not verify at record {}",
                r.first_bad_seq.unwrap_or(0)
            )));
        }
        if let Some(h) = r.head {
            heads.insert(tenant, h);
        }
    }
    if &heads != file_heads || heads != copied.heads {
        return Err(mismatch(format!(
            "audit heads {heads:?}, the file's {file_heads:?}"
        )));
    }
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in client.query(
        "SELECT tenant, kind, count(*) FROM records GROUP BY tenant, kind",
        &[],
    )? {
        let (tenant, kind, n): (String, i16, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let kind = u8::try_from(kind)
            .ok()
            .and_then(Kind::from_u8)
            .map_or("?", Kind::as_str);
        counts
            .entry(tenant)
            .or_default()
            .insert(kind.to_owned(), u64::try_from(n).unwrap_or(0));
    }
    if counts != copied.records {
        return Err(mismatch(format!(
            "records per tenant and kind {counts:?}, the file's {:?}",
            copied.records
        )));
    }
    Ok(())
}
