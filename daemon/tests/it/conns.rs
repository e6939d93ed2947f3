//! Connections, identities and event streams of the real `stewardd` process, with real OS
//! users (created with `useradd` and removed by a guard): the connection caps and file
//! descriptors under a flood, group membership that changes while a connection is open,
//! per-tenant event numbering, and sequential `Connection: close` clients.
//!
//! Actions of another user run this test binary again as that user (`setpriv`), in the
//! ignored `helper` test, which does nothing unless `STW_CONNS_HELPER` says what to do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;
use steward_testkit::api::next_event;
use steward_testkit::process::{Stewardd, get, raw};
use steward_testkit::user::{OsGroup, OsUser, can_act_as_others};

/// This test binary, run as `user` (its groups from the group database), doing `what`
/// in the `helper` test.
/// Its stdout is piped (the helper reports there), its stderr dropped, its stdin `stdin`.
fn helper_as(user: &OsUser, what: &str, stdin: Stdio) -> Helper {
    Helper(
        user.run_test("conns::helper")
            .env("STW_CONNS_HELPER", what)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A helper process, killed and reaped on drop (a failed assertion must not leave it
/// holding its user, which `userdel` would then refuse to remove).
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon whose socket the group `socket_group` may use, reachable through its dir.
fn daemon_for(limits: &str, extra: &str, socket_group: &str) -> Stewardd {
    let d = Stewardd::new(limits, extra);
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        cfg.replace(
            "[daemon]\n",
            &format!("[daemon]\nsocket_group = \"{socket_group}\"\n"),
        ),
    )
    .unwrap();
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    d
}

/// Starts `d` with its open-file limit (soft and hard) at `nofile`, the way a host's
/// `ulimit -n` or a unit's `LimitNOFILE=` would set it.
fn start_with_nofile(d: &mut Stewardd, nofile: u64) {
    let script = format!("ulimit -n {nofile} && exec \"$0\" \"$@\"");
    d.start_wrapped(&["sh", "-c", &script], Duration::from_secs(20));
}

/// The soft and hard open-file limits of process `pid`, from `/proc`.
fn nofile_of(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (v[0], v[1])
}

/// Open descriptors of process `pid`.
fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Reads lines of a helper's output until one holds `key` (libtest may print its own
/// words before it on the same line); returns the text from `key` on, trimmed.
fn read_until(out: &mut impl BufRead, key: &str) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(i) = line.find(key) {
            return Some(line[i..].trim().to_owned());
        }
    }
}

/// Reads one HTTP response (Content-Length body) from `s`: its status and body.
fn read_response(s: &mut UnixStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            return (0, String::from_utf8_lossy(&buf).into_owned());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn put_contact(name: &str) -> Vec<u8> {
    let body = steward_testkit::process::contact(name).to_string();
    format!(
        "PUT /v1/tenants/contoso/contacts/{name}?api-version=2023-12-01-preview HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What another user does, run by the tests above through [`helper_as`]:
///
/// - `flood:SOCKET:N`: opens N connections and sends nothing on them, waits a second,
///   prints `refused=R held=H closed=C` (429 answers, connections still open without an
///   answer, connections closed without one), then holds every connection until stdin
///   closes;
/// - `keepalive:SOCKET`: on ONE connection, PUTs a contact and prints `first=STATUS`, waits
///   for a line on stdin, PUTs another and prints `second=STATUS BODY`;
/// - `events:SOCKET`: follows `/v1/events?tenant=contoso` and prints every body line
///   until the stream's last chunk (or 30 s), then `ended=true|false`.
#[test]
#[ignore = "run by the other tests as another user"]
fn helper() {
    let Ok(what) = std::env::var("STW_CONNS_HELPER") else {
        return;
    };
    let mut parts = what.splitn(3, ':');
    let mode = parts.next().unwrap();
    let socket = Path::new(parts.next().unwrap()).to_owned();
    match mode {
        "flood" => {
            let n: usize = parts.next().unwrap().parse().unwrap();
            let (_, hard) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
                .unwrap();
            let mut conns = Vec::new();
            for _ in 0..n {
                if let Ok(s) = UnixStream::connect(&socket) {
                    conns.push(s);
                }
            }
            std::thread::sleep(Duration::from_secs(1));
            let (mut refused, mut held, mut closed) = (0, 0, 0);
            let mut keep = Vec::new();
            for mut s in conns {
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 1024];
                match s.read(&mut buf) {
                    Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 429") => refused += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        held += 1;
                        keep.push(s);
                    }
                    _ => closed += 1,
                }
            }
            println!("refused={refused} held={held} closed={closed}");
            std::io::stdout().flush().unwrap();
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            drop(keep);
        }
        "keepalive" => {
            let mut s = UnixStream::connect(&socket).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(&put_contact("kept-1")).unwrap();
            let (st, _) = read_response(&mut s);
            println!("first={st}");
            std::io::stdout().flush().unwrap();
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            s.write_all(&put_contact("kept-2")).unwrap();
            let (st, body) = read_response(&mut s);
            println!("second={st} {body}");
        }
        "events" => {
            let mut s = UnixStream::connect(&socket).unwrap();
            s.write_all(b"GET /v1/events?tenant=contoso HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut r = BufReader::new(s);
            let mut ended = false;
            let mut line = String::new();
            while Instant::now() < deadline {
                line.clear();
                r.get_ref()
                    .set_read_timeout(Some(
                        deadline
                            .saturating_duration_since(Instant::now())
                            .max(Duration::from_millis(1)),
                    ))
                    .unwrap();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let l = line.trim_end();
                if l == "0" {
                    ended = true;
                    break;
                }
                if l.starts_with('{') {
                    println!("line={l}");
                    std::io::stdout().flush().unwrap();
                }
            }
            println!("ended={ended}");
        }
        other => panic!("unknown helper mode {other}"),
    }
}

/// A user with no grant opens 2000 connections to a daemon whose open-file limit is 256
/// and sends nothing: the connections past its per-uid cap are answered 429 at once
/// (not held until the header timeout), the daemon's descriptors stay under its limit,
/// it logs no accept errors, and a granted user is still served (never a 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_refused_at_once_and_granted_users_are_served() {
    if !can_act_as_others() {
        return;
    }
    const N: usize = 2000;
    const NOFILE: u64 = 256;
    let attacker = OsUser::new("connsf");
    let mut d = daemon_for(
        "header_timeout = \"30s\"\nidle_timeout = \"60s\"",
        "",
        &attacker.name,
    );
    start_with_nofile(&mut d, NOFILE);
    let pid = d.child.as_ref().unwrap().id();
    assert_eq!(
        nofile_of(pid),
        (NOFILE, NOFILE),
        "the test's own limit took"
    );
    let mut flood = helper_as(
        &attacker,
        &format!("flood:{}:{N}", d.socket.display()),
        Stdio::piped(),
    );
    let mut out = BufReader::new(flood.0.stdout.take().unwrap());
    let counts = read_until(&mut out, "refused=").expect("the flood helper ended early");
    let n = |k: &str| -> usize {
        counts
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (refused, held, closed) = (n("refused="), n("held="), n("closed="));
    let fds = fds_of(pid);
    // While the flood holds its connections, the granted user is served.
    let (st, v) = get(&d.client(), "/v1/tenants/contoso/contacts").await;
    let errors = d
        .stderr_text()
        .lines()
        .filter(|l| l.contains("accept failed"))
        .count();
    println!(
        "{N} connections, no request sent, daemon RLIMIT_NOFILE {NOFILE}: {refused} answered 429 within 1 s, \
         {held} held (the per-uid cap), {closed} closed unanswered; daemon fds {fds}; \
         {errors} accept-error log lines; granted user: {st}"
    );
    drop(flood.0.stdin.take());
    let _ = flood.0.wait();
    assert_eq!(held, 64, "exactly the per-uid cap is held: {counts}");
    assert_eq!(
        refused,
        N - 64,
        "every connection past the cap got 429 at once"
    );
    assert_eq!(closed, 0);
    assert!(fds < NOFILE as usize, "daemon fds {fds}");
    assert_eq!(errors, 0, "{}", d.stderr_text());
    assert_eq!(st, StatusCode::OK, "the granted user: {v}");
    d.stop();
}

/// Group membership removed while a connection is open: `gpasswd -d` takes the grant
/// away from the keep-alive connection's next request and ends the event stream with
/// a last line saying why, within `identity_refresh` (here 500 ms), without a reload.
#[test]
fn group_removal_reaches_open_connections_and_event_streams() {
    group_removal(true);
}

/// The same with the refresh at its 30 s default: a config reload (SIGHUP) is what
/// makes the daemon look the groups up again.
#[test]
fn a_reload_re_resolves_groups_of_open_connections_and_event_streams() {
    group_removal(false);
}

fn group_removal(by_timer: bool) {
    if !can_act_as_others() {
        return;
    }
    let bob = OsUser::new(if by_timer { "connsb" } else { "connsr" });
    let secops = OsGroup::new(if by_timer { "connsg" } else { "connsh" });
    let out = Command::new("gpasswd")
        .args(["-a", &bob.name, &secops.0])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let limits = if by_timer {
        "identity_refresh = \"500ms\""
    } else {
        "identity_refresh = \"30s\""
    };
    let grant = format!(
        "[[grant]]\ngroup = \"{}\"\ntenant = \"contoso\"\nrole = \"contributor\"\n",
        secops.0
    );
    let mut d = daemon_for(limits, &grant, &bob.name);
    d.start();
    let socket = d.socket.display().to_string();
    let mut events = helper_as(&bob, &format!("events:{socket}"), Stdio::inherit());
    let mut keep = helper_as(&bob, &format!("keepalive:{socket}"), Stdio::piped());
    let mut keep_out = BufReader::new(keep.0.stdout.take().unwrap());
    let first = read_until(&mut keep_out, "first=");
    assert_eq!(
        first.as_deref(),
        Some("first=201"),
        "bob creates while in the group"
    );
    let mut ev_out = BufReader::new(events.0.stdout.take().unwrap());
    let mut ev_lines = Vec::new();
    // Bob's stream sees his write.
    loop {
        let l = read_until(&mut ev_out, "line=").expect("the events helper ended");
        ev_lines.push(l.clone());
        if l.contains("kept-1") {
            break;
        }
    }
    let out = Command::new("gpasswd")
        .args(["-d", &bob.name, &secops.0])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let removed = Instant::now();
    // Generous waits (six refresh periods; a reload is done in well under one) so a
    // loaded CI machine does not make the check race the refresh.
    if by_timer {
        std::thread::sleep(Duration::from_millis(3000));
    } else {
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(d.child.as_ref().unwrap().id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        std::thread::sleep(Duration::from_millis(3000));
    }
    // The open connection's next write.
    writeln!(keep.0.stdin.as_mut().unwrap()).unwrap();
    let second = read_until(&mut keep_out, "second=").unwrap_or_default();
    let _ = keep.0.wait();
    // The stream's end.
    let mut ended = String::new();
    let mut raw_line = String::new();
    while ev_out.read_line(&mut raw_line).unwrap_or(0) > 0 {
        if let Some(i) = raw_line.find("ended=") {
            ended = raw_line[i..].trim().to_owned();
            break;
        }
        if let Some(i) = raw_line.find("line=") {
            ev_lines.push(raw_line[i..].trim().to_owned());
        }
        raw_line.clear();
    }
    let took = removed.elapsed();
    drop(events);
    println!(
        "after gpasswd -d ({}): keep-alive write -> {second}; stream {ended} in {took:?}, last line {:?}",
        if by_timer { "refresh 500ms" } else { "SIGHUP" },
        ev_lines.last()
    );
    assert!(
        second.starts_with("second=404"),
        "the open connection still writes: {second}"
    );
    assert_eq!(ended, "ended=true", "the stream did not end: {ev_lines:?}");
    let last: Value =
        serde_json::from_str(ev_lines.last().unwrap().trim_start_matches("line=")).unwrap();
    assert_eq!(last["closed"], "GrantRevoked", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("contoso"),
        "{last}"
    );
    assert!(took < Duration::from_secs(25), "took {took:?}");
    d.stop();
}

/// Event numbers count per tenant (and kind): a subscriber of one tenant sees 1, 2, 3
/// whatever happens in tenants it cannot read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_numbers_count_per_tenant() {
    let mut d = Stewardd::started("", "");
    let c = d.client();
    let mut lines = c.get_lines("/v1/events").await.unwrap();
    let body = steward_testkit::process::contact("x");
    for (t, name) in [
        ("contoso", "a"),
        ("fabrikam", "a"),
        ("fabrikam", "b"),
        ("contoso", "b"),
        ("northwind", "a"),
        ("contoso", "c"),
    ] {
        let r = c
            .put_json(
                &format!("/v1/tenants/{t}/contacts/{name}?api-version=2023-12-01-preview"),
                &body,
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{t}/{name}");
    }
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let v = next_event(&mut lines, Duration::from_secs(10)).await;
        seen.push(format!("{}:{}", v["tenant"].as_str().unwrap(), v["seq"]));
    }
    assert_eq!(
        seen,
        [
            "contoso:1",
            "fabrikam:1",
            "fabrikam:2",
            "contoso:2",
            "northwind:1",
            "contoso:3"
        ]
    );
    d.stop();
}

/// 500 clients in a row, each `Connection: close`, under a per-uid cap of 1: a connection
/// whose last answer the client has read no longer counts against it, so none is
/// refused (on main about half were: the slot outlived the answer).
#[test]
fn sequential_connection_close_clients_are_never_refused() {
    let mut d = Stewardd::started("max_connections_per_uid = 1", "");
    let req = b"GET /v1/tenants/contoso/contacts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut refused = 0;
    let mut other = Vec::new();
    for _ in 0..500 {
        let r = raw(&d.socket, req, Duration::from_secs(10), 1);
        match r.statuses.first() {
            Some(200) => {}
            Some(429) => refused += 1,
            s => other.push(format!("{s:?} {r:?}")),
        }
    }
    println!("500 sequential Connection: close clients, per-uid cap 1: {refused} answered 429");
    assert_eq!(refused, 0, "sequential clients under the cap were refused");
    assert!(other.is_empty(), "{other:?}");
    d.stop();
}
