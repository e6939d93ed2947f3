//! The machine's floors, measured in the same run as the daemon: a bare Unix-socket echo
//! round trip (the least any request over the socket can cost) and write+fsync of a plain
//! file in the data directory's file system (the most durable commits one writer can
//! make per second).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;

/// Round trips of `size` bytes each way over a Unix socket to an echo thread, `n` times.
pub fn echo_round_trip(dir: &Path, size: usize, n: usize) -> Result<Histogram<u64>> {
    let path = dir.join("echo.sock");
    let listener = UnixListener::bind(&path)?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; size];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return Ok(());
            }
            s.write_all(&buf)?;
        }
    });
    let mut c = UnixStream::connect(&path)?;
    let out = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut h = Histogram::new(3)?;
    for i in 0..n + n / 10 {
        let t = Instant::now();
        c.write_all(&out)?;
        c.read_exact(&mut back)?;
        // The first tenth warms up.
        if i >= n / 10 {
            h.record(nanos(t.elapsed()))?;
        }
    }
    drop(c);
    let _ = server.join();
    std::fs::remove_file(&path)?;
    Ok(h)
}

/// `write` + `fsync` of `size` bytes to one plain file in `dir`, for `dur`: per second.
pub fn fsync_rate(dir: &Path, size: usize, dur: Duration) -> Result<f64> {
    let path = dir.join("fsync.floor");
    let mut f = std::fs::File::create(&path)?;
    let buf = vec![b'x'; size];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        f.write_all(&buf)?;
        f.sync_all()?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// A duration in nanoseconds for a histogram.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The storage engine's own floor for the ingest: the same alerts written straight into
/// redb, with the daemon's tables and key shapes (record, time index with its facets,
/// three subject rows, retention schedule, one audit row per batch), one durable commit per
/// batch — no HTTP, no JSON parsing, no validation. Alerts per second.
pub fn redb_ingest(dir: &Path, total: u64, batch: u64, now: jiff::Timestamp) -> Result<f64> {
    use redb::{Database, Durability, ReadableTable};
    use steward_daemon::store::{Kind, ScheduleAction, tables};
    let alert = Kind::Alert.as_u8();
    let purge = ScheduleAction::Purge.as_u8();
    let db = Database::builder()
        .set_cache_size(32 * 1024 * 1024)
        .create(dir.join("floor.redb"))?;
    let keep = 86_400i64;
    let tenant = super::daemon::TENANT;
    let start = Instant::now();
    let mut i = 0;
    let mut seq = 0u64;
    while i < total {
        let end = (i + batch).min(total);
        let mut w = db.begin_write()?;
        w.set_durability(Durability::Immediate)?;
        {
            let mut records = w.open_table(tables::RECORDS)?;
            let mut time = w.open_table(tables::TIME_INDEX)?;
            let mut subjects = w.open_table(tables::SUBJECTS)?;
            let mut schedule = w.open_table(tables::SCHEDULE)?;
            let mut audit = w.open_table(tables::AUDIT)?;
            for k in i..end {
                let a = super::data::alert(k, total, now);
                let name = a.name.as_str();
                let t = a.time.as_microsecond();
                if records.get((tenant, alert, name))?.is_some() {
                    continue;
                }
                records.insert((tenant, alert, name), a.json.as_bytes())?;
                let severity = a.severity.to_lowercase();
                time.insert((tenant, alert, t, name), (severity.as_str(), "active"))?;
                let host = format!("host:vm{}", k % 500);
                for (key, field) in [
                    (format!("user:{}", a.user), "properties.entities[0].name"),
                    (format!("ip:{}", a.ip), "properties.entities[1].address"),
                    (host, "properties.compromisedEntity"),
                ] {
                    subjects.insert((tenant, key.as_str(), alert, name, field), ())?;
                }
                schedule.insert((purge, a.time.as_second() + keep, alert, tenant, name), ())?;
            }
            seq += 1;
            audit.insert((tenant, seq), [0u8; 200].as_slice())?;
        }
        w.commit()?;
        i = end;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
