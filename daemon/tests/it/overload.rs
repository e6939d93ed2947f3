//! Overload and abuse of the real `stewardd` process, on its Unix socket only and bounded
//! in time:
//!
//! - 500 concurrent connections held open at once, a third of them slow-header clients
//!   (one byte of head every 200 ms) and a third slow-body clients (a full head, then one
//!   byte of body every 200 ms), while a well-behaved client keeps being served within a
//!   bounded latency and the slow ones are cut off by `header_timeout` / `request_timeout`;
//! - one uid (`nobody`, through `setpriv`) opening connections past its
//!   `max_connections_per_uid`: those past the cap get 429, and the well-behaved client
//!   (another uid) is still served.
//!
//! `cargo test -p steward-daemon --test it overload:: -- --nocapture` prints the figures; the
//! ignored `*_long` test holds 1000 connections for longer (`scripts/overload-long.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use steward_testkit::process::{RawReply, Stewardd, get, read_replies};
use steward_testkit::user::as_nobody;

/// Most a well-behaved request may take while the daemon is under abuse.
const BOUND: Duration = Duration::from_secs(2);

/// What the abusive clients saw.
#[derive(Debug, Default)]
struct Abuse {
    /// Slow-header connections the daemon cut off (closed or 408) in time.
    header_cut: AtomicUsize,
    /// Slow-body connections answered 408 (or closed) in time.
    body_cut: AtomicUsize,
    /// Idle connections closed by the daemon.
    idle_closed: AtomicUsize,
}

/// Holds `n` connections: kinds cycle idle, slow-header, slow-body. Each runs on its own
/// thread until the daemon closes it or `give_up` passes.
fn abuse(
    socket: &std::path::Path,
    n: usize,
    give_up: Duration,
    stats: &Arc<Abuse>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    for i in 0..n {
        let socket = socket.to_path_buf();
        let stats = Arc::clone(stats);
        threads.push(
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let Ok(mut s) = UnixStream::connect(&socket) else {
                        return;
                    };
                    let started = Instant::now();
                    let mut reply = RawReply::default();
                    match i % 3 {
                        0 => {
                            read_replies(&mut s, give_up, 1, &mut reply);
                            if reply.closed {
                                stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        1 => {
                            let head = b"GET /v1/tenants/contoso/contacts HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
                            for b in head.iter() {
                                if s.write_all(&[*b]).is_err() || started.elapsed() > give_up {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            read_replies(&mut s, Duration::from_millis(500), 1, &mut reply);
                            if started.elapsed() < give_up
                                && (reply.closed || reply.statuses.iter().all(|s| *s >= 400))
                            {
                                stats.header_cut.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {
                            let _ = s.write_all(b"PUT /v1/tenants/contoso/contacts/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n");
                            let mut cut = false;
                            while started.elapsed() < give_up {
                                if s.write_all(b" ").is_err() {
                                    cut = true;
                                    break;
                                }
                                let _ = s.set_nonblocking(true);
                                let mut probe = [0u8; 512];
                                if let Ok(n) = std::io::Read::read(&mut s, &mut probe) {
                                    reply.bytes.extend_from_slice(&probe[..n]);
                                    cut = true;
                                    break;
                                }
                                let _ = s.set_nonblocking(false);
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            let _ = s.set_nonblocking(false);
                            if cut {
                                read_replies(&mut s, Duration::from_millis(500), 1, &mut reply);
                                if reply.statuses.iter().all(|s| *s == 408) {
                                    stats.body_cut.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                })
                .unwrap(),
        );
    }
    threads
}

/// A well-behaved client polling until `stop`: returns (requests, worst latency).
async fn well_behaved(d: &Stewardd, stop: Arc<AtomicBool>) -> (usize, Duration) {
    let c = d.client();
    let mut n = 0;
    let mut worst = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        for path in ["/v1/health", "/v1/tenants/contoso/contacts", "/v1/whoami"] {
            let t0 = Instant::now();
            let (st, v) = get(&c, path).await;
            let took = t0.elapsed();
            assert_eq!(st, StatusCode::OK, "{path}: {v}");
            assert!(took < BOUND, "{path} took {took:?} under load");
            worst = worst.max(took);
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (n, worst)
}

async fn many_connections(n: usize, hold: Duration) {
    let limits = format!(
        "max_connections = {}\nmax_connections_per_uid = {}\nheader_timeout = \"2s\"\nrequest_timeout = \"3s\"\nidle_timeout = \"4s\"",
        n + 100,
        n + 50
    );
    let mut d = Stewardd::started(&limits, "");
    let stats = Arc::new(Abuse::default());
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let threads = abuse(&d.socket, n, hold, &stats);
    let good = {
        let stop = Arc::clone(&stop);
        let d = &d;
        async move { well_behaved(d, stop).await }
    };
    let stopper = {
        let stop = Arc::clone(&stop);
        async move {
            tokio::time::sleep(hold).await;
            stop.store(true, Ordering::Relaxed);
        }
    };
    let ((served, worst), ()) = tokio::join!(good, stopper);
    tokio::task::spawn_blocking(move || {
        for t in threads {
            t.join().unwrap();
        }
    })
    .await
    .unwrap();
    let (slow_h, slow_b, idle) = (n.div_ceil(3), n / 3, n.div_ceil(3));
    println!(
        "overload: {n} connections for {:?}; well-behaved client served {served} requests, worst {worst:?}; \
         slow-header cut {}/{slow_h}, slow-body cut {}/{slow_b}, idle closed {}/{idle}",
        t0.elapsed(),
        stats.header_cut.load(Ordering::Relaxed),
        stats.body_cut.load(Ordering::Relaxed),
        stats.idle_closed.load(Ordering::Relaxed),
    );
    assert!(served > 0);
    assert!(d.alive(), "the daemon died: {}", d.stderr_text());
    assert_eq!(
        stats.header_cut.load(Ordering::Relaxed),
        slow_h,
        "slow-header clients not cut off"
    );
    assert_eq!(
        stats.body_cut.load(Ordering::Relaxed),
        slow_b,
        "slow-body clients not answered 408"
    );
    assert_eq!(
        stats.idle_closed.load(Ordering::Relaxed),
        idle,
        "idle connections not closed"
    );
    let (st, _) = get(&d.client(), "/v1/health").await;
    assert_eq!(st, StatusCode::OK);
    assert!(!d.stderr_text().contains("panicked"));
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_connections_and_slow_clients_do_not_starve_a_good_client() {
    many_connections(500, Duration::from_secs(8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long run: scripts/overload-long.sh"]
async fn many_connections_long() {
    let n = steward_testkit::env_number("STEWARD_OVERLOAD_CONNECTIONS").unwrap_or(1000);
    many_connections(n, Duration::from_secs(30)).await;
}

/// The HTTP status (as curl writes it, `000` when none came) of a contacts list asked
/// for by `nobody` on `socket`, with curl's `extra` options.
fn status_as_nobody(socket: &std::path::Path, extra: &[&str]) -> String {
    let out = as_nobody("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(extra)
        .arg("--unix-socket")
        .arg(socket)
        .arg("http://localhost/v1/tenants/contoso/contacts")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nobody` opens connections past its per-uid cap; the rest of the machine is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_uid_past_its_cap_gets_429_and_others_are_served() {
    if Command::new("setpriv").arg("--version").output().is_err()
        || !nix::unistd::getuid().is_root()
    {
        println!("skipped: needs root and setpriv to run clients as another uid");
        return;
    }
    const CAP: usize = 8;
    const TRIES: usize = 20;
    let limits = format!("max_connections_per_uid = {CAP}\nidle_timeout = \"30s\"");
    let mut d = Stewardd::new(
        &limits,
        "[[grant]]\nuid = 65534\ntenant = \"contoso\"\nrole = \"reader\"\n",
    );
    // The socket 0660 for group nogroup, reachable through the temp dir.
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        cfg.replace("[daemon]\n", "[daemon]\nsocket_group = \"nogroup\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    d.start();
    let url = "http://localhost/v1/events?tenant=contoso";
    // Streaming event requests hold their connections open.
    let mut holders = Vec::new();
    for _ in 0..CAP {
        holders.push(
            as_nobody("curl")
                .args(["-sN", "-o", "/dev/null", "--unix-socket"])
                .arg(&d.socket)
                .arg(url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    // Wait until the daemon counts them all (a ninth connection is refused).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut refused = 0;
    for _ in 0..TRIES {
        let out = tokio::task::spawn_blocking({
            let socket = d.socket.clone();
            move || status_as_nobody(&socket, &["--max-time", "5"])
        })
        .await
        .unwrap();
        let code = out;
        if code == "429" {
            refused += 1;
        }
        // Meanwhile this uid is served, within the bound.
        let t0 = Instant::now();
        let (st, _) = get(&d.client(), "/v1/tenants/contoso/contacts").await;
        assert_eq!(st, StatusCode::OK);
        assert!(t0.elapsed() < BOUND);
    }
    for mut h in holders {
        let _ = h.kill();
        let _ = h.wait();
    }
    println!("per-uid cap {CAP}: {refused}/{TRIES} connections past the cap answered 429");
    assert_eq!(
        refused, TRIES,
        "connections past the per-uid cap were not refused"
    );
    // Once the holders are gone, nobody is served again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_as_nobody(&d.socket, &[]), "200");
    d.stop();
}
