//! The SQLite baseline: the same durable writes and the same alert batches as steward,
//! into one SQLite file (WAL, `synchronous=FULL`) with equivalent tables and indexes:
//! records keyed by (tenant, name), an alert time index, an expiry index, a subject
//! index, and an audit row chained by SHA-256 to the previous one in the same
//! transaction, as steward's audit log is.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::daemon::TENANT;
use super::data;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS contacts (tenant TEXT, name TEXT, etag TEXT, body TEXT,
    PRIMARY KEY (tenant, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (tenant TEXT, name TEXT, time INTEGER, expires INTEGER,
    severity TEXT, body TEXT, PRIMARY KEY (tenant, name)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_time ON alerts (tenant, time, name);
CREATE INDEX IF NOT EXISTS alerts_expiry ON alerts (expires, tenant, name);
CREATE TABLE IF NOT EXISTS subjects (tenant TEXT, key TEXT, kind TEXT, id TEXT,
    PRIMARY KEY (tenant, key, kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT,
    at INTEGER, action TEXT, resource TEXT, hash BLOB);
";

/// Opens the database in `dir` as every baseline connection does.
fn open(dir: &Path) -> Result<Connection> {
    let c = Connection::open(dir.join("baseline.sqlite"))?;
    c.busy_timeout(Duration::from_secs(30))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.execute_batch(SCHEMA)?;
    Ok(c)
}

/// Appends one audit row chained to the tenant's previous one.
fn audit(tx: &rusqlite::Transaction<'_>, action: &str, resource: &str) -> Result<()> {
    let prev: Vec<u8> = tx
        .query_row(
            "SELECT hash FROM audit WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1",
            [TENANT],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    let at = Timestamp::now().as_microsecond();
    let mut h = Sha256::new();
    h.update(&prev);
    h.update(format!("{TENANT}|{at}|{action}|{resource}").as_bytes());
    let hash = h.finalize().to_vec();
    tx.execute(
        "INSERT INTO audit (tenant, at, action, resource, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![TENANT, at, action, resource, hash],
    )?;
    Ok(())
}

/// Durable contact writes (the record and its audit row in one transaction) from
/// `threads` threads for `dur`: commits per second.
pub fn durable_writes(dir: &Path, threads: usize, dur: Duration) -> Result<(f64, u64)> {
    open(dir)?;
    let body = data::contact();
    let start = Instant::now();
    let counts = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let body = &body;
                s.spawn(move || -> Result<u64> {
                    let mut c = open(dir)?;
                    let mut n = 0u64;
                    while start.elapsed() < dur {
                        let name = format!("w{threads}-{t}-{n}");
                        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                        tx.execute(
                            "INSERT OR REPLACE INTO contacts (tenant, name, etag, body) VALUES (?1, ?2, ?3, ?4)",
                            params![TENANT, name, uuid::Uuid::now_v7().to_string(), body],
                        )?;
                        audit(&tx, "contacts.create", &name)?;
                        tx.commit()?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("writer thread panicked"))?
            })
            .collect::<Result<Vec<u64>>>()
    })?;
    let n = counts.iter().sum::<u64>();
    Ok((n as f64 / start.elapsed().as_secs_f64(), n))
}

/// Inserts alerts `0..total` in transactions of `batch` (alert rows, three subject rows
/// each, one audit row per batch): alerts per second.
pub fn ingest(dir: &Path, total: u64, batch: u64, now: Timestamp) -> Result<f64> {
    let mut c = open(dir)?;
    let keep = 86_400i64;
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let end = (i + batch).min(total);
        let tx = c.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR IGNORE INTO alerts (tenant, name, time, expires, severity, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut subj = tx.prepare_cached(
                "INSERT OR IGNORE INTO subjects (tenant, key, kind, id) VALUES (?1, ?2, 'alert', ?3)",
            )?;
            for k in i..end {
                let a = data::alert(k, total, now);
                let t = a.time.as_microsecond();
                let host = format!("host:vm{}", k % 500);
                if put.execute(params![
                    TENANT,
                    a.name,
                    t,
                    a.time.as_second() + keep,
                    a.severity,
                    a.json
                ])? == 1
                {
                    for key in [format!("user:{}", a.user), format!("ip:{}", a.ip), host] {
                        subj.execute(params![TENANT, key, a.name])?;
                    }
                }
            }
        }
        audit(&tx, "alerts.ingest", "alerts")?;
        tx.commit()?;
        i = end;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
