//! `cargo bench --bench load`: the real `stewardd` process on a temp dir, measured from
//! outside against the machine's floors and against SQLite, all in one run so the ratios
//! hold on a noisy machine (this disk's fsync rate swings tenfold between runs).
//!
//! `STEWARD_BENCH_SCALE=quick` (default, under 3 minutes) or `full` (1M alerts);
//! `STEWARD_BENCH_WRITE=1` also writes the table to BENCHMARKS.md at the workspace root;
//! `STEWARD_BENCH_ONLY=phase,…` runs some phases (see [`measure_all`]) and
//! `STEWARD_BENCH_KEEP=1` keeps the data directory, for profiling.
//! The TUI row needs the `steward` binary beside `stewardd` (`cargo build --release`).
//! Not here: micro-benchmarks of store internals (they would not see the socket, the
//! runtime or the fsyncs that users wait for).

#[path = "load/client.rs"]
mod client;
#[path = "load/copies.rs"]
mod copies;
#[path = "load/daemon.rs"]
mod daemon;
#[path = "load/data.rs"]
mod data;
#[path = "load/floors.rs"]
mod floors;
#[path = "load/sqlite.rs"]
mod sqlite;
#[path = "load/table.rs"]
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, StatusCode};
use jiff::Timestamp;
use serde_json::Value;

use client::Conn;
use daemon::{Daemon, OTHER_TENANT, Settings, TENANT};
use floors::nanos;
use table::{Row, Table, mib, rate, time};

/// How much work each measurement does.
struct Scale {
    name: &'static str,
    /// Alerts stored (ingest, pages, export, purge, lookups all run at this size).
    alerts: u64,
    /// Round trips for the read latency (and the echo floor).
    reads: usize,
    /// Duration of each durable-write level, steward and SQLite alike.
    write_for: Duration,
    /// Requests per page or lookup measurement.
    queries: usize,
}

const QUICK: Scale = Scale {
    name: "quick",
    alerts: 100_000,
    reads: 20_000,
    write_for: Duration::from_secs(2),
    queries: 300,
};

const FULL: Scale = Scale {
    name: "full",
    alerts: 1_000_000,
    reads: 100_000,
    write_for: Duration::from_secs(5),
    queries: 1_000,
};

/// Alerts per ingest request, steward and SQLite alike.
const BATCH: u64 = 1_000;
/// The contact the readers fetch.
const READ_CONTACT: &str = "bench-read";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // `cargo bench` passes `--bench`; the scale comes from the environment.
    let scale = match std::env::var("STEWARD_BENCH_SCALE").as_deref() {
        Ok("full") => FULL,
        Ok("quick") | Err(_) => QUICK,
        Ok(other) => anyhow::bail!("STEWARD_BENCH_SCALE must be quick or full, not {other}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let tmp = match std::env::var_os("STEWARD_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    eprintln!(
        "steward load bench, scale {} ({} alerts), in {}",
        scale.name,
        scale.alerts,
        tmp.path().display()
    );
    let write = std::env::var("STEWARD_BENCH_WRITE").is_ok_and(|v| !v.is_empty() && v != "0");
    anyhow::ensure!(
        !(write && std::env::var_os("STEWARD_BENCH_ONLY").is_some()),
        "STEWARD_BENCH_WRITE writes the whole table: unset STEWARD_BENCH_ONLY"
    );
    let table = rt.block_on(measure_all(&scale, tmp.path()))?;
    let elapsed = started.elapsed();
    let report = report(&scale, &table, elapsed);
    println!("{report}");
    if std::env::var_os("STEWARD_BENCH_KEEP").is_some() {
        eprintln!("kept {}", tmp.keep().display());
    }
    if write {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
        std::fs::write(&path, report).with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Every measurement, in an order where each leaves the store as the next needs it.
/// `STEWARD_BENCH_ONLY=pages,export` runs only the named phases (read, writes, ingest,
/// pages, subjects, export, copies, startup, tui, purge, maxingest), for profiling one of them;
/// the ingest runs whenever a later phase needs the alerts.
async fn measure_all(scale: &Scale, dir: &Path) -> Result<Table> {
    let only = std::env::var("STEWARD_BENCH_ONLY").ok();
    let runs = |phase: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p.trim() == phase))
    };
    let mut t = Table::default();
    let quiet = Settings {
        sweep_interval: "3650d",
    };
    let d = Daemon::start(dir, quiet).await?;
    let mut c = Conn::open(&d.socket).await?;
    let (s, _) = c
        .send(
            Method::PUT,
            &contact_path(READ_CONTACT),
            Some(Bytes::from(data::contact())),
        )
        .await?;
    anyhow::ensure!(s.is_success(), "PUT contact: {s}");

    if runs("read") {
        eprintln!("read round trip");
        read_round_trip(scale, dir, &d, &mut t).await?;
    }
    if runs("writes") {
        eprintln!("durable writes");
        durable_writes(scale, dir, &d, &mut t).await?;
    }
    let later = [
        "pages", "subjects", "export", "copies", "startup", "tui", "purge",
    ];
    if runs("ingest") || later.iter().any(|p| runs(p)) {
        eprintln!("alert ingest");
        let now = Timestamp::now();
        ingest(scale, dir, &d, now, &mut t).await?;
        if runs("pages") {
            eprintln!("pages");
            pages(scale, &d, now, &mut t).await?;
        }
    }
    if runs("subjects") {
        eprintln!("subject lookup");
        subject_lookup(scale, &d, &mut t).await?;
    }
    if runs("export") {
        eprintln!("export");
        export(scale, &d, &mut t).await?;
    }
    if runs("copies") {
        eprintln!("backup and compaction");
        copies::copies(&d, dir, scale.alerts, &mut t).await?;
    }
    d.stop()?;

    if runs("startup") || runs("tui") {
        eprintln!("restart with {} alerts", scale.alerts);
        let d = Daemon::start(dir, quiet).await?;
        if runs("startup") {
            startup_and_idle(scale, &d, &mut t).await?;
        }
        if runs("tui") {
            eprintln!("TUI");
            tui_rss(scale, &d, &mut t).await?;
        }
        d.stop()?;
    }

    if runs("purge") {
        eprintln!("retention purge");
        purge(dir, &mut t).await?;
    }
    if runs("maxingest") {
        eprintln!("maximal ingests");
        maximal_ingests(&dir.join("maximal"), quiet, &mut t).await?;
    }
    Ok(t)
}

/// The largest ingest body the default config accepts (`limits.max_ingest_body`).
const MAX_INGEST_BODY: usize = 16 << 20;

/// A body of tiny alerts (`{"name":…,"properties":{}}`) filling [`MAX_INGEST_BODY`]:
/// the most alerts one request can carry (~450k).
fn maximal_body(prefix: &str) -> (Bytes, u64) {
    let (s, n) = steward_testkit::api::alert_array(prefix, "{}", MAX_INGEST_BODY);
    (Bytes::from(s), n)
}

/// POSTs one ingest body on a connection of its own; fails unless it is stored.
async fn ingest_one(socket: PathBuf, body: Bytes) -> Result<()> {
    let mut c = Conn::open(&socket).await?;
    let path = format!("/v1/tenants/{TENANT}/alerts");
    let (s, b) = c.send(Method::POST, &path, Some(body)).await?;
    anyhow::ensure!(
        s.is_success(),
        "maximal ingest: {s} {}",
        String::from_utf8_lossy(&b)
    );
    Ok(())
}

/// 10. Maximal ingests (issue 13, item 1), on a daemon of their own: the daemon's peak
///     RSS while three run at once, and another tenant's PUT latency while one runs.
async fn maximal_ingests(dir: &Path, s: Settings, t: &mut Table) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let d = Daemon::start(dir, s).await?;
    let bodies: Vec<(Bytes, u64)> = (0..4).map(|i| maximal_body(&format!("m{i}-"))).collect();
    let per = bodies[0].1;
    d.reset_peak()?;
    let before = d.rss()?;
    let mut tasks = Vec::new();
    for (body, _) in &bodies[..3] {
        tasks.push(tokio::spawn(ingest_one(d.socket.clone(), body.clone())));
    }
    for task in tasks {
        task.await??;
    }
    let peak = d.peak_rss()?;
    let limit = 256u64 << 20;
    t.push(Row {
        what: format!("Daemon peak RSS, 3 concurrent maximal ingests (16 MiB, {per} alerts each)"),
        steward: mib(peak),
        baseline: format!("{} before", mib(before)),
        ratio: String::new(),
        target: "≤ 256 MiB".into(),
        met: Some(peak <= limit),
    });
    // One more maximal ingest; meanwhile another tenant PUTs contacts one after another.
    let big = tokio::spawn(ingest_one(d.socket.clone(), bodies[3].0.clone()));
    let mut c = Conn::open(&d.socket).await?;
    let contact = Bytes::from(data::contact());
    let mut h = Histogram::<u64>::new(3)?;
    let mut n = 0u64;
    while !big.is_finished() {
        let path = format!("/v1/tenants/{OTHER_TENANT}/contacts/during-{n}");
        let start = Instant::now();
        let (st, b) = c.send(Method::PUT, &path, Some(contact.clone())).await?;
        anyhow::ensure!(
            st.is_success(),
            "PUT {path}: {st} {}",
            String::from_utf8_lossy(&b)
        );
        h.record(nanos(start.elapsed()))?;
        n += 1;
    }
    big.await??;
    let p99 = p(&h, 0.99);
    t.push(Row {
        what: format!("Another tenant's PUT during one maximal ingest ({n} PUTs), p99"),
        steward: time(p99),
        baseline: format!("p50 {}, max {}", time(p(&h, 0.5)), time(h.max())),
        ratio: String::new(),
        target: "≤ 250 ms".into(),
        met: Some(p99 <= 250_000_000),
    });
    d.stop()
}

fn contact_path(name: &str) -> String {
    format!("/v1/tenants/{TENANT}/contacts/{name}")
}

fn p(h: &Histogram<u64>, q: f64) -> u64 {
    h.value_at_quantile(q)
}

/// 1. `GET` one contact over a keep-alive connection, beside a bare echo of its size.
async fn read_round_trip(scale: &Scale, dir: &Path, d: &Daemon, t: &mut Table) -> Result<()> {
    let mut c = Conn::open(&d.socket).await?;
    let path = contact_path(READ_CONTACT);
    let size = c.get_ok(&path).await?.len();
    let h = latencies(&d.socket, &path, scale.reads).await?;
    let dir = dir.to_path_buf();
    let reads = scale.reads;
    let floor =
        tokio::task::spawn_blocking(move || floors::echo_round_trip(&dir, size, reads)).await??;
    for (q, name, target) in [(0.5, "p50", 3.0), (0.99, "p99", 5.0)] {
        let ratio = p(&h, q) as f64 / p(&floor, q) as f64;
        t.push(Row {
            what: format!("Read round trip {name} (GET contact, {size} B body, keep-alive)"),
            steward: time(p(&h, q)),
            baseline: format!("echo {}", time(p(&floor, q))),
            ratio: format!("{ratio:.1}×"),
            target: format!("≤ {target}× echo"),
            met: Some(ratio <= target),
        });
    }
    Ok(())
}

/// `n` sequential `GET path` on one keep-alive connection after a tenth as warm-up: their
/// latencies. The client runs on a thread of its own with a single-threaded runtime (as
/// curl is one thread), so its connection driver and the request share a thread and the
/// figure is the daemon's, not hand-offs inside the benchmark's own runtime.
async fn latencies(socket: &Path, path: &str, n: usize) -> Result<Histogram<u64>> {
    let (socket, path) = (socket.to_path_buf(), path.to_owned());
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut c = Conn::open(&socket).await?;
            let mut h = Histogram::new(3)?;
            for i in 0..n + n / 10 {
                let start = Instant::now();
                c.get_ok(&path).await?;
                if i >= n / 10 {
                    h.record(nanos(start.elapsed()))?;
                }
            }
            Ok(h)
        })
    })
    .await?
}

/// 2. Contact PUTs per second from 1, 8 and 32 clients, beside write+fsync of a plain
///    file and SQLite doing the same durable writes from as many threads.
async fn durable_writes(scale: &Scale, dir: &Path, d: &Daemon, t: &mut Table) -> Result<()> {
    let dur = scale.write_for;
    let floor_dir = dir.to_path_buf();
    let floor = tokio::task::spawn_blocking(move || {
        floors::fsync_rate(&floor_dir, data::contact().len() + 200, dur)
    })
    .await??;
    let mut one = 0.0;
    for clients in [1usize, 8, 32] {
        let daemon_bytes = io_write_bytes(d.pid())?;
        let (ours, our_puts) = put_rate(&d.socket, clients, dur).await?;
        let daemon_bytes = io_write_bytes(d.pid())? - daemon_bytes;
        let sql_dir = dir.to_path_buf();
        let own_bytes = io_write_bytes(std::process::id())?;
        let (theirs, their_txns) =
            tokio::task::spawn_blocking(move || sqlite::durable_writes(&sql_dir, clients, dur))
                .await??;
        let sqlite_bytes = io_write_bytes(std::process::id())? - own_bytes;
        if clients == 1 {
            one = ours;
            let per = |bytes: u64, n: u64| bytes as f64 / n.max(1) as f64 / 1024.0;
            let (ours_kb, theirs_kb) = (per(daemon_bytes, our_puts), per(sqlite_bytes, their_txns));
            t.push(Row {
                what: "Bytes written per one-contact commit, 1 client (/proc/PID/io write_bytes)"
                    .into(),
                steward: format!("{ours_kb:.1} KB ({our_puts} PUTs)"),
                baseline: format!("SQLite {theirs_kb:.1} KB ({their_txns} txns)"),
                ratio: format!("{:.1}× SQLite", ours_kb / theirs_kb.max(0.001)),
                target: "≤ 24 KB".into(),
                met: Some(ours_kb <= 24.0),
            });
        }
        let vs_sql = ours / theirs;
        let (target, met) = match clients {
            32 => (
                format!("≥ 4× own 1-client ({:.1}×), ≥ 3× SQLite", ours / one),
                Some(ours >= 4.0 * one && vs_sql >= 3.0),
            ),
            _ => (String::new(), None),
        };
        t.push(Row {
            what: format!("Durable contact writes, {clients} client(s)"),
            steward: rate(ours, "PUT"),
            baseline: format!(
                "SQLite {clients} thr {}; fsync floor {}",
                rate(theirs, "txn"),
                rate(floor, "fsync")
            ),
            ratio: format!("{vs_sql:.2}× SQLite; {:.2}× fsync", ours / floor),
            target,
            met,
        });
    }
    Ok(())
}

/// Bytes process `pid` has caused to be written to storage so far (`write_bytes` of
/// `/proc/PID/io`: counted as pages are dirtied, so a page rewritten twice counts twice).
fn io_write_bytes(pid: u32) -> Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .with_context(|| format!("/proc/{pid}/io"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no write_bytes in /proc/{pid}/io"))
}

/// `clients` connections each PUTting new contacts for `dur`: acknowledged PUTs per second
/// and how many.
async fn put_rate(socket: &Path, clients: usize, dur: Duration) -> Result<(f64, u64)> {
    let body = Bytes::from(data::contact());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..clients {
        let mut c = Conn::open(socket).await?;
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < dur {
                let path = contact_path(&format!("w{clients}-{k}-{n}"));
                let (s, b) = c.send(Method::PUT, &path, Some(body.clone())).await?;
                anyhow::ensure!(
                    s.is_success(),
                    "PUT {path}: {s} {}",
                    String::from_utf8_lossy(&b)
                );
                n += 1;
            }
            Ok(n)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok((total as f64 / start.elapsed().as_secs_f64(), total))
}

/// 3. Alerts per second through the API, beside the same alerts into SQLite.
async fn ingest(
    scale: &Scale,
    dir: &Path,
    d: &Daemon,
    now: Timestamp,
    t: &mut Table,
) -> Result<()> {
    let total = scale.alerts;
    let mut c = Conn::open(&d.socket).await?;
    let path = format!("/v1/tenants/{TENANT}/alerts");
    let start = Instant::now();
    let mut i = 0;
    let mut stored = 0;
    while i < total {
        let end = (i + BATCH).min(total);
        let body = data::batch(i, end, total, now);
        let (s, b) = c.send(Method::POST, &path, Some(Bytes::from(body))).await?;
        anyhow::ensure!(
            s.is_success(),
            "ingest: {s} {}",
            String::from_utf8_lossy(&b)
        );
        let v: Value = serde_json::from_slice(&b)?;
        stored += v["ingested"].as_u64().unwrap_or(0);
        i = end;
    }
    let ours = total as f64 / start.elapsed().as_secs_f64();
    anyhow::ensure!(stored == total, "ingested {stored} of {total}");
    let sql_dir = dir.to_path_buf();
    let theirs =
        tokio::task::spawn_blocking(move || sqlite::ingest(&sql_dir, total, BATCH, now)).await??;
    let floor_dir = dir.to_path_buf();
    let engine =
        tokio::task::spawn_blocking(move || floors::redb_ingest(&floor_dir, total, BATCH, now))
            .await??;
    let ratio = ours / theirs;
    t.push(Row {
        what: format!("Alert ingest, {total} alerts in batches of {BATCH}, 1 client"),
        steward: rate(ours, "alerts"),
        baseline: format!(
            "SQLite {}; redb alone, same tables {}",
            rate(theirs, "alerts"),
            rate(engine, "alerts")
        ),
        ratio: format!("{ratio:.2}×"),
        target: "≥ 2× SQLite".into(),
        met: Some(ratio >= 2.0),
    });
    Ok(())
}

/// 4. p99 of the newest page of 100 alerts, with a severity filter, and deep in the cursor.
async fn pages(scale: &Scale, d: &Daemon, now: Timestamp, t: &mut Table) -> Result<()> {
    let mut c = Conn::open(&d.socket).await?;
    let base = format!("/v1/tenants/{TENANT}/alerts?limit=100");
    // A cursor half-way down: the page ending at the middle alert, then its nextLink.
    let middle = data::alert(scale.alerts / 2, scale.alerts, now).time;
    let first: Value = serde_json::from_slice(&c.get_ok(&format!("{base}&until={middle}")).await?)?;
    let deep = first["nextLink"]
        .as_str()
        .map(path_of)
        .context("a page half-way down has no nextLink")?;
    for (what, path) in [
        ("newest page of 100 alerts", base.clone()),
        (
            "newest page of 100, severity=High",
            format!("{base}&severity=High"),
        ),
        ("page of 100 half-way down the cursor", deep),
    ] {
        let h = latencies(&d.socket, &path, scale.queries).await?;
        t.push(latency_row(
            format!("p99 {what}, {} stored", scale.alerts),
            &h,
            5,
        ));
    }
    Ok(())
}

/// A latency row: p99 (and p50) of `h` against a p99 target of `target_ms`, no baseline.
fn latency_row(what: String, h: &Histogram<u64>, target_ms: u64) -> Row {
    Row {
        what,
        steward: format!("{} (p50 {})", time(p(h, 0.99)), time(p(h, 0.5))),
        baseline: String::new(),
        ratio: String::new(),
        target: format!("≤ {target_ms} ms"),
        met: Some(p(h, 0.99) <= target_ms * 1_000_000),
    }
}

/// A `nextLink`'s path and query (it may be absolute).
fn path_of(link: &str) -> String {
    match link.find("/v1/") {
        Some(i) => link[i..].to_owned(),
        None => link.to_owned(),
    }
}

/// 6. p99 of a subject lookup by account name (each names alerts/10 000 alerts).
async fn subject_lookup(scale: &Scale, d: &Daemon, t: &mut Table) -> Result<()> {
    let mut c = Conn::open(&d.socket).await?;
    let probe = format!("/v1/tenants/{TENANT}/subjects?user=user1");
    let (s, _) = c.send(Method::GET, &probe, None).await?;
    if s == StatusCode::NOT_FOUND {
        t.note("subject lookup skipped: `GET …/subjects` answers 404 in this build");
        return Ok(());
    }
    let mut h = Histogram::<u64>::new(3)?;
    for i in 0..scale.queries {
        let path = format!(
            "/v1/tenants/{TENANT}/subjects?user=user{}",
            (i as u64 * 7919) % data::USERS
        );
        let start = Instant::now();
        c.get_ok(&path).await?;
        h.record(nanos(start.elapsed()))?;
    }
    let what = format!(
        "p99 subject lookup (user=, {} hits each), {} stored",
        scale.alerts / data::USERS,
        scale.alerts
    );
    t.push(latency_row(what, &h, 10));
    Ok(())
}

/// 4. NDJSON export of every alert: records per second and the daemon's peak RSS.
async fn export(scale: &Scale, d: &Daemon, t: &mut Table) -> Result<()> {
    let mut c = Conn::open(&d.socket).await?;
    let at_start = d.rss()?;
    d.reset_peak()?;
    let start = Instant::now();
    let mut lines = 0u64;
    c.get_streaming(
        &format!("/v1/tenants/{TENANT}/export/alerts?format=ndjson"),
        |chunk| lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64,
    )
    .await?;
    let per_sec = lines as f64 / start.elapsed().as_secs_f64();
    let peak = d.peak_rss()?;
    anyhow::ensure!(lines >= scale.alerts, "export gave {lines} lines");
    t.push(Row {
        what: format!("NDJSON export, {lines} alerts"),
        steward: rate(per_sec, "records"),
        baseline: String::new(),
        ratio: String::new(),
        target: "≥ 250,000 records/s".into(),
        met: Some(per_sec >= 250_000.0),
    });
    t.push(Row {
        what: "daemon peak RSS during the export".into(),
        steward: format!("{} (at its start {})", mib(peak), mib(at_start)),
        baseline: String::new(),
        ratio: String::new(),
        target: "< 100 MiB".into(),
        met: Some(peak < 100 * 1024 * 1024),
    });
    Ok(())
}

/// 4. Start to ready with every alert stored, and the daemon's RSS idle after it.
async fn startup_and_idle(scale: &Scale, d: &Daemon, t: &mut Table) -> Result<()> {
    t.push(Row {
        what: format!("start to ready, {} alerts stored", scale.alerts),
        steward: time(nanos(d.startup)),
        baseline: String::new(),
        ratio: String::new(),
        target: "≤ 200 ms".into(),
        met: Some(d.startup <= Duration::from_millis(200)),
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    t.push(Row {
        what: "daemon RSS idle, after start".into(),
        steward: mib(d.rss()?),
        baseline: String::new(),
        ratio: String::new(),
        target: String::new(),
        met: None,
    });
    Ok(())
}

/// 4. The TUI's RSS while it browses the alerts tab of the full tenant (in a pty from
///    `script`, paging down a few screens).
async fn tui_rss(scale: &Scale, d: &Daemon, t: &mut Table) -> Result<()> {
    let Some(tui) = sibling_binary("steward") else {
        t.note("TUI RSS skipped: no `steward` binary beside stewardd (run `cargo build --release` first)");
        return Ok(());
    };
    let peak = tui::browse(&tui, &d.socket).await?;
    t.push(Row {
        what: format!("TUI RSS browsing alerts, {} stored", scale.alerts),
        steward: mib(peak),
        baseline: String::new(),
        ratio: String::new(),
        target: "≤ 30 MiB".into(),
        met: Some(peak <= 30 * 1024 * 1024),
    });
    Ok(())
}

mod tui {
    //! The TUI in a pseudo-terminal made by `script`, driven by keys on its stdin.

    use std::path::Path;
    use std::process::Stdio;
    use std::time::Duration;

    use anyhow::{Context, Result};
    use tokio::io::AsyncWriteExt;
    use tokio::process::Command;

    use super::daemon::{TENANT, proc_status_kib};

    /// Opens the TUI on the alerts tab, pages down, and answers its peak RSS in bytes.
    pub async fn browse(tui: &Path, socket: &Path) -> Result<u64> {
        let cmd = format!(
            "stty cols 160 rows 50; exec {} --socket {} --tenant {TENANT}",
            tui.display(),
            socket.display()
        );
        let mut script = Command::new("script")
            .args(["-qfc", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawn script (util-linux) for the TUI's pty")?;
        let mut keys = script.stdin.take().context("script's stdin")?;
        let pid = script.id().context("script's pid")?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let tui_pid = find_child(pid, "steward").context("the TUI did not start under script")?;
        // Tab three times: contacts → JIT policies → JIT requests → alerts.
        keys.write_all(b"\t\t\t").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..10 {
            keys.write_all(b"\x1b[6~").await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let peak = proc_status_kib(tui_pid, "VmHWM:")? * 1024;
        keys.write_all(b"q").await?;
        if tokio::time::timeout(Duration::from_secs(3), script.wait())
            .await
            .is_err()
        {
            script.kill().await?;
        }
        Ok(peak)
    }

    /// A descendant of `pid` whose command is `comm`.
    fn find_child(pid: u32, comm: &str) -> Option<u32> {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let name = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
            if name.trim() == comm {
                return Some(c);
            }
            if let Some(found) = find_child(c, comm) {
                return Some(found);
            }
        }
        None
    }
}

/// A binary built beside `stewardd`.
fn sibling_binary(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_stewardd"))
        .parent()?
        .join(name);
    p.exists().then_some(p)
}

/// 5. Purging every alert (all due): records per second from the purge's own audit
///    records, and readers' p99 during the purge against before it.
async fn purge(dir: &Path, t: &mut Table) -> Result<()> {
    let sweeping = Settings {
        sweep_interval: "3s",
    };
    let d = Daemon::start(dir, sweeping).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut c = Conn::open(&d.socket).await?;
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let path = contact_path(READ_CONTACT);
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                let start = Instant::now();
                c.get_ok(&path).await?;
                samples.push((Timestamp::now().as_microsecond(), nanos(start.elapsed())));
            }
            anyhow::Ok(samples)
        }));
    }
    // Done when the newest page is empty.
    let mut c = Conn::open(&d.socket).await?;
    let list = format!("/v1/tenants/{TENANT}/alerts?limit=1");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let v: Value = serde_json::from_slice(&c.get_ok(&list).await?)?;
        if v["value"].as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the purge did not finish in 600 s"
        );
    }
    stop.cancel();
    let mut samples = Vec::new();
    for r in readers {
        samples.extend(r.await??);
    }
    // The purge's window from its audit records (one per batch, at its commit).
    let mut at = Vec::new();
    let mut purged = 0u64;
    let mut next = Some(format!(
        "/v1/tenants/{TENANT}/audit?action=retention.purge&limit=1000"
    ));
    while let Some(path) = next {
        let v: Value = serde_json::from_slice(&c.get_ok(&path).await?)?;
        for r in v["value"].as_array().into_iter().flatten() {
            if let Some(ts) = r["at"].as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
                at.push(ts.as_microsecond());
            }
            purged += r["details"]["counts"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, n)| n.as_u64())
                .sum::<u64>();
        }
        next = v["nextLink"].as_str().map(path_of);
    }
    d.stop()?;
    at.sort_unstable();
    let (Some(&first), Some(&last)) = (at.first(), at.last()) else {
        t.note("purge: no retention.purge audit records found");
        return Ok(());
    };
    // The first record is written when the first batch commits: start one batch earlier.
    let batch_us = (last - first) / i64::try_from(at.len().saturating_sub(1).max(1))?;
    let begin = first - batch_us;
    let secs = (last - begin).max(1) as f64 / 1e6;
    let per_sec = purged as f64 / secs;
    let mut before = Histogram::<u64>::new(3)?;
    let mut during = Histogram::<u64>::new(3)?;
    for (end, ns) in samples {
        if end < begin {
            before.record(ns)?;
        } else if end <= last {
            during.record(ns)?;
        }
    }
    t.push(Row {
        what: format!(
            "retention purge of {purged} expired alerts ({} batches)",
            at.len()
        ),
        steward: rate(per_sec, "records"),
        baseline: String::new(),
        ratio: String::new(),
        target: String::new(),
        met: None,
    });
    let ratio = p(&during, 0.99) as f64 / p(&before, 0.99) as f64;
    t.push(Row {
        what: format!(
            "readers' p99 during the purge (2 readers, GET contact; {} / {} samples)",
            before.len(),
            during.len()
        ),
        steward: time(p(&during, 0.99)),
        baseline: format!("before: {}", time(p(&before, 0.99))),
        ratio: format!("{ratio:.1}×"),
        target: "≤ 2× before".into(),
        met: Some(ratio <= 2.0),
    });
    Ok(())
}

/// The whole report: what ran where, the table, and how to read it.
fn report(scale: &Scale, t: &Table, elapsed: Duration) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "# steward load benchmark\n\n\
         `STEWARD_BENCH_SCALE={scale} cargo bench -p steward-daemon --bench load` on {date}: \
         {cpus} CPUs, Linux {kernel}, run took {secs:.0} s. \
         The real `stewardd` runs as a child process on a temp dir and is measured over its \
         socket; every floor and SQLite figure is from the same run, so only the ratios \
         compare across runs (this disk's fsync rate swings from hundreds to over ten \
         thousand per second between runs). Regenerate with `STEWARD_BENCH_WRITE=1`.\n\n{table}",
        scale = scale.name,
        date = Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"),
        kernel = kernel.trim(),
        secs = elapsed.as_secs_f64(),
        table = t.markdown(),
    )
}
