//! 11. Store copies (issue 17): an online backup and a compaction of the store holding the
//!     ingested alerts, through the socket as an operator's cron job would ask for them.
//!     Rows: each one's throughput (MB of store file per second) beside a plain copy of
//!     the same file (`cp` + fsync, the floor), and the p99 of a reader (GET contact) and of
//!     writers (PUT contact, 4 connections) while it runs, beside the same load just before.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Method;
use serde_json::Value;

use crate::client::Conn;
use crate::daemon::{Daemon, OTHER_TENANT};
use crate::floors::nanos;
use crate::table::{Row, Table, time};
use crate::{READ_CONTACT, contact_path, data, p};

/// Writer connections of the load.
const WRITERS: usize = 4;

/// The reader's and the writers' latencies while the load ran.
struct Load {
    reads: Histogram<u64>,
    writes: Histogram<u64>,
}

/// Runs one reader and [`WRITERS`] writers against `socket` until `stop` is set.
async fn load(socket: PathBuf, stop: Arc<AtomicBool>, tag: &'static str) -> Result<Load> {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let socket = socket.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&socket).await?;
            let body = Bytes::from(data::contact());
            let mut h = Histogram::<u64>::new(3)?;
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let path = format!("/v1/tenants/{OTHER_TENANT}/contacts/{tag}-{w}-{n}");
                let start = Instant::now();
                let (s, _) = c.send(Method::PUT, &path, Some(body.clone())).await?;
                anyhow::ensure!(s.is_success(), "PUT {path}: {s}");
                h.record(nanos(start.elapsed()))?;
                n += 1;
            }
            Ok::<_, anyhow::Error>(h)
        }));
    }
    let reader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut c = Conn::open(&socket).await?;
            let path = contact_path(READ_CONTACT);
            let mut h = Histogram::<u64>::new(3)?;
            while !stop.load(Ordering::SeqCst) {
                let start = Instant::now();
                c.get_ok(&path).await?;
                h.record(nanos(start.elapsed()))?;
            }
            Ok::<_, anyhow::Error>(h)
        })
    };
    let mut writes = Histogram::<u64>::new(3)?;
    for t in tasks {
        writes.add(t.await??)?;
    }
    let reads = reader.await??;
    Ok(Load { reads, writes })
}

/// The load for `dur` with nothing else running.
async fn load_for(socket: &Path, dur: Duration) -> Result<Load> {
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(socket.to_path_buf(), stop.clone(), "before"));
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::SeqCst);
    running.await?
}

/// The load while `path` is POSTed with `body`: (its answer, how long it took, the load).
async fn load_during(
    socket: &Path,
    path: &str,
    body: Option<Bytes>,
    tag: &'static str,
) -> Result<(Value, Duration, Load)> {
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(socket.to_path_buf(), stop.clone(), tag));
    // Let the load settle before the copy starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = Conn::open(socket).await?;
    let start = Instant::now();
    let (s, b) = c.send(Method::POST, path, body).await?;
    let took = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    anyhow::ensure!(
        s.is_success(),
        "POST {path}: {s} {}",
        String::from_utf8_lossy(&b)
    );
    let v: Value = serde_json::from_slice(&b)?;
    Ok((v, took, running.await??))
}

/// Copies `from` to `to` and fsyncs it: MB/s, the floor of any copy of the file.
fn cp_rate(from: &Path, to: &Path) -> Result<f64> {
    let start = Instant::now();
    let n = std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()?;
    let rate = n as f64 / 1e6 / start.elapsed().as_secs_f64();
    std::fs::remove_file(to)?;
    Ok(rate)
}

/// The p99 rows of one copy: reader and writers during it beside before.
fn p99_rows(t: &mut Table, what: &str, before: &Load, during: &Load) {
    for (who, b, d) in [
        ("reader (GET contact)", &before.reads, &during.reads),
        (
            "writers (PUT contact, 4 connections)",
            &before.writes,
            &during.writes,
        ),
    ] {
        let ratio = p(d, 0.99) as f64 / p(b, 0.99).max(1) as f64;
        t.push(Row {
            what: format!("p99 of a {who} during {what} ({} requests)", d.len()),
            steward: time(p(d, 0.99)),
            baseline: format!("before: {} ({} requests)", time(p(b, 0.99)), b.len()),
            ratio: format!("{ratio:.1}×"),
            target: "≤ 2× before".into(),
            met: Some(ratio <= 2.0),
        });
    }
}

/// 11. Backup and compaction of the store as the earlier phases left it.
pub async fn copies(d: &Daemon, dir: &Path, alerts: u64, t: &mut Table) -> Result<()> {
    let store = dir.join("data/steward.redb");
    let store_bytes = std::fs::metadata(&store)
        .with_context(|| store.display().to_string())?
        .len();
    let cp = {
        let (from, to) = (store.clone(), dir.join("cp-floor.redb"));
        tokio::task::spawn_blocking(move || cp_rate(&from, &to)).await??
    };
    let before = load_for(&d.socket, Duration::from_secs(3)).await?;

    let out = dir.join("backup.redb");
    let body = serde_json::json!({"out": out}).to_string();
    let (report, took, during) = load_during(
        &d.socket,
        "/v1/store/backup",
        Some(Bytes::from(body)),
        "backup",
    )
    .await?;
    let bytes = report["bytes"].as_u64().unwrap_or(0);
    let rate = store_bytes as f64 / 1e6 / took.as_secs_f64();
    t.push(Row {
        what: format!(
            "Online backup over the socket, {alerts} alerts ({:.0} MB store, {:.0} MB copy)",
            store_bytes as f64 / 1e6,
            bytes as f64 / 1e6
        ),
        steward: format!("{rate:.1} MB/s ({})", time(nanos(took))),
        baseline: format!("cp + fsync of the file {cp:.1} MB/s"),
        ratio: format!("{:.2}× cp", rate / cp),
        target: String::new(),
        met: None,
    });
    p99_rows(t, "the backup", &before, &during);
    std::fs::remove_file(&out)?;

    let store_bytes = std::fs::metadata(&store)?.len();
    let (report, took, during) =
        load_during(&d.socket, "/v1/store/compact", None, "compact").await?;
    let rate = store_bytes as f64 / 1e6 / took.as_secs_f64();
    t.push(Row {
        what: format!(
            "Compaction over the socket, {alerts} alerts ({:.0} MB -> {:.0} MB)",
            report["oldBytes"].as_u64().unwrap_or(0) as f64 / 1e6,
            report["newBytes"].as_u64().unwrap_or(0) as f64 / 1e6
        ),
        steward: format!(
            "{rate:.1} MB/s ({}; writes paused {} ms)",
            time(nanos(took)),
            report["pauseMs"]
        ),
        baseline: format!("cp + fsync of the file {cp:.1} MB/s"),
        ratio: format!("{:.2}× cp", rate / cp),
        target: String::new(),
        met: None,
    });
    p99_rows(t, "the compaction", &before, &during);
    t.note(
        "Compaction copies beside the writer, then catches up what committed meanwhile and \
         swaps the file in: writes wait only for that catch-up (the pause above).",
    );
    Ok(())
}
