//! `stewardd backup | restore | compact | verify-store | migrate`: the store's copies from
//! the command line (a module of the `stewardd` binary only).
//!
//! `backup` and `compact` work whether the daemon runs or not: they first try to open the
//! store file themselves; when a running daemon holds its lock, they ask that daemon over
//! its socket instead (which answers only its own user and root), and say which they did.
//! `restore` and `migrate` need the daemon stopped. Not here: the copies themselves (`store/backup.rs`,
//! `store/copy.rs`), the socket routes (`routes/upkeep.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use steward::config::Config;
use steward_daemon::routes::upkeep::{BackupRequest, CompactReport};
use steward_daemon::store::{BackupReport, CheckReport, Store, StoreError, StoreOptions};

/// How long a request to the daemon may wait for its answer's head (a backup of a large
/// store takes minutes on a slow disk).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A one-off runtime for the socket client or the writer.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Posts `body` to `path` on the daemon's socket and decodes a 2xx answer as `T`.
fn ask_daemon<T: serde::de::DeserializeOwned>(
    socket: &Path,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<T> {
    let client = steward::client::Client::new(socket).with_timeout(Some(SOCKET_TIMEOUT));
    let resp = runtime()?
        .block_on(client.post_json(path, body))
        .with_context(|| format!("asking the daemon at {}", socket.display()))?;
    let resp = resp
        .error_for_status()
        .map_err(|e| anyhow::anyhow!("the daemon refused: {e}"))?;
    resp.json::<T>()
        .with_context(|| format!("the daemon's answer to {path}"))
}

/// Prints what a backup holds.
fn print_backup(r: &BackupReport, how: &str, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "backup written: {} ({} bytes, schema {}, {} entries, {} ms) {how}",
        r.file.display(),
        r.bytes,
        r.schema_version,
        r.entries,
        r.took_ms
    );
    let records: Vec<String> = r.records.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("records: {}", records.join(", "));
    for (tenant, head) in &r.heads {
        println!("audit head {tenant}: seq {} hash {}", head.seq, head.hash);
    }
    Ok(())
}

/// `stewardd backup --out FILE`.
pub fn backup(config: &Config, out: &Path, json: bool) -> anyhow::Result<()> {
    let out = std::path::absolute(out).with_context(|| format!("{}", out.display()))?;
    let data_dir = &config.daemon.data_dir;
    match Store::backup_offline(data_dir, &out) {
        Ok(r) => print_backup(
            &r,
            "(no daemon running: copied from the store file directly)",
            json,
        ),
        Err(StoreError::AlreadyOpen { .. }) => {
            let socket = &config.daemon.socket;
            let body = serde_json::to_value(BackupRequest { out })?;
            let r: BackupReport = ask_daemon(socket, "/v1/store/backup", &body)?;
            print_backup(
                &r,
                &format!(
                    "(by the running daemon, over {}, while it kept serving)",
                    socket.display()
                ),
                json,
            )
        }
        Err(e) => Err(e).with_context(|| format!("backup of the store in {}", data_dir.display())),
    }
}

/// `stewardd compact`.
pub fn compact(config: &Config) -> anyhow::Result<()> {
    let data_dir = &config.daemon.data_dir;
    if !data_dir.join(steward_daemon::store::DB_FILE).exists() {
        bail!("no store in {}", data_dir.display());
    }
    match Store::open(data_dir, StoreOptions::default()) {
        Ok(store) => {
            let tenants = config.tenants.iter().map(|t| t.id.clone()).collect();
            let r = runtime()?.block_on(store.writer().compact(tenants))?;
            drop(store);
            println!(
                "store compacted: {} -> {} bytes, {} entries (no daemon running: compacted the file directly)",
                r.old_bytes, r.new_bytes, r.copied.entries
            );
            Ok(())
        }
        Err(StoreError::AlreadyOpen { .. }) => {
            let socket = &config.daemon.socket;
            let r: CompactReport = ask_daemon(socket, "/v1/store/compact", &serde_json::json!({}))?;
            println!(
                "store compacted: {} -> {} bytes, {} entries, writes paused {} ms (by the running daemon, over {})",
                r.old_bytes,
                r.new_bytes,
                r.entries,
                r.pause_ms,
                socket.display()
            );
            Ok(())
        }
        Err(e) => {
            Err(e).with_context(|| format!("compaction of the store in {}", data_dir.display()))
        }
    }
}

/// `stewardd restore FILE`.
pub fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    let data_dir = &config.daemon.data_dir;
    steward_daemon::private::own_dir(data_dir, steward_daemon::private::Dir::Data, None)
        .with_context(|| format!("the data directory {}", data_dir.display()))?;
    match Store::restore(data_dir, from) {
        Ok(r) => {
            println!(
                "restored {} into {}: {} bytes, every page's checksum and {} audit records in {} tenant chains verified",
                from.display(),
                data_dir.display(),
                r.check.file_bytes,
                r.check.audit_records,
                r.check.tenants
            );
            for (tenant, head) in &r.check.heads {
                println!("audit head {tenant}: seq {} hash {}", head.seq, head.hash);
            }
            match &r.kept_aside {
                Some(p) => println!("the replaced store is kept as {}", p.display()),
                None => println!("there was no store to replace"),
            }
            Ok(())
        }
        Err(StoreError::AlreadyOpen { path }) => bail!(
            "the daemon is running ({} is locked): stop it first (e.g. `systemctl stop stewardd`), \
             then restore; nothing was changed",
            path.display()
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "restore of {} refused; nothing was changed",
            from.display()
        ))),
    }
}

/// Prints a sound check.
fn print_check(r: &CheckReport) {
    println!(
        "store sound: {} bytes, every page's checksum verified, {} audit records in {} tenant chains verified, in {:.1} s",
        r.file_bytes,
        r.audit_records,
        r.tenants,
        r.took.as_secs_f64()
    );
    for (tenant, head) in &r.heads {
        println!("audit head {tenant}: seq {} hash {}", head.seq, head.hash);
    }
}

/// `stewardd verify-store [FILE]`: the configured store, or any store file (a backup).
pub fn verify(config: &Config, file: Option<PathBuf>) -> anyhow::Result<()> {
    let r = match file {
        Some(f) => Store::verify_file(&f).with_context(|| format!("{}", f.display()))?,
        None => {
            let dir = &config.daemon.data_dir;
            Store::verify(dir).with_context(|| format!("the store in {}", dir.display()))?
        }
    };
    print_check(&r);
    Ok(())
}

/// The store commands when `[store] backend = "postgres"`: `verify-store` (without a
/// FILE) checks every tenant's chain in the database; the others are the redb file's and
/// are refused, naming PostgreSQL's own tools.
pub fn postgres(config: &Config, cmd: &str, verify: bool) -> anyhow::Result<()> {
    if !verify {
        bail!(
            "`stewardd {cmd}` works on the redb file; with [store] backend = \"postgres\" use \
             PostgreSQL's own tools (pg_dump or pg_basebackup to back up, VACUUM to reclaim \
             space; `stewardd verify-store` without a FILE checks the audit chains)"
        );
    }
    let options = steward_daemon::store::pg::PgOptions::from_config(&config.store);
    let r = steward_daemon::store::pg::verify_all(&options)
        .with_context(|| format!("the store at {}", config.store.postgres_url))?;
    println!(
        "store sound: PostgreSQL database of {} bytes, {} audit records in {} tenant chains verified, in {:.1} s",
        r.file_bytes,
        r.audit_records,
        r.tenants,
        r.took.as_secs_f64()
    );
    for (tenant, head) in &r.heads {
        println!("audit head {tenant}: seq {} hash {}", head.seq, head.hash);
    }
    Ok(())
}

/// A store backend as `stewardd migrate` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendName {
    /// The embedded file `data_dir/steward.redb`.
    Redb,
    /// The database `[store] postgres_url` names.
    Postgres,
}

/// `stewardd migrate --from redb --to postgres`.
pub fn migrate(
    config: &Config,
    from: BackendName,
    to: BackendName,
    json: bool,
) -> anyhow::Result<()> {
    if (from, to) != (BackendName::Redb, BackendName::Postgres) {
        bail!(
            "only `--from redb --to postgres` is supported (a host joining a fleet); to take a \
             store out of PostgreSQL, back it up with pg_dump"
        );
    }
    let data_dir = &config.daemon.data_dir;
    let url = &config.store.postgres_url;
    let options = steward_daemon::store::pg::PgOptions::from_config(&config.store);
    let r = match steward_daemon::store::pg::import_redb(data_dir, &options) {
        Ok(r) => r,
        Err(StoreError::AlreadyOpen { path }) => bail!(
            "the daemon is running ({} is locked): stop it first (e.g. `systemctl stop \
             stewardd`), then migrate; nothing was changed",
            path.display()
        ),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "moving the store in {} to {url} failed; the redb file is unchanged",
                data_dir.display()
            )));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let mut kinds: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for per_kind in r.records.values() {
        for (kind, n) in per_kind {
            *kinds.entry(kind).or_default() += n;
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "moved the store in {} to {url}: {} rows in {:.1} s, checked there (every audit \
         chain verifies to the same head; the same records per tenant and kind)",
        data_dir.display(),
        r.rows,
        r.took.as_secs_f64()
    );
    println!("records: {}", kinds.join(", "));
    println!("audit records: {}", r.audit_records);
    for (tenant, head) in &r.heads {
        println!("audit head {tenant}: seq {} hash {}", head.seq, head.hash);
    }
    if config.store.backend != steward::config::StoreBackend::Postgres {
        println!(
            "next: set [store] backend = \"postgres\" in the config, then start stewardd; the \
             redb file is left as it was (remove it once the daemon serves from PostgreSQL)"
        );
    }
    Ok(())
}
