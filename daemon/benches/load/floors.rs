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
