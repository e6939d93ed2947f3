//! The built-in JIT firewall (`[jit] firewall = "nftables"`) opening real doors, as root,
//! in network namespaces this test creates itself:
//!
//! ```text
//!  src ns  10.77.1.2 ──veth── 10.77.1.1  jump ns  10.77.2.1 ──veth── 10.77.2.2  target ns
//!  out ns  10.77.3.2 ──veth── 10.77.3.1  (stewardd runs here, forwards)         (TCP listeners)
//! ```
//!
//! `src` is inside the policy's allowed prefix (10.77.1.0/24), `out` is not. A probe is a
//! TCP connect (1 s limit) from a thread that entered the source namespace; the listener
//! in the target namespace checks the peer is really that source (no NAT in between).
//!
//! Proven here: a guarded port is closed before initiate, open after it for the request's
//! source only, closed after revoke, and closed at its end time with stewardd SIGKILLed
//! before it; `nft flush ruleset` then a restart, and a stranger element then a reload,
//! leave exactly the active requests' doors with their remaining time; a VM without a
//! target is refused with a 400 naming it; no `nft` or no CAP_NET_ADMIN stops the start
//! with a clear error.
//!
//! Skipped (with the reason printed) only where the machine forbids network namespaces or
//! the test is not root, and never under CI (`CI` set): then it fails.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};
use steward::client::Client;
use steward_testkit::process::{config_text, health, list_all, stewardd, temp_dir_named};

const VM1: &str =
    "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
const VM2: &str =
    "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm2";
/// Mapped to the same address as VM1 (a careless `[jit.targets]`).
const VM3: &str =
    "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm3";
const TARGET: &str = "10.77.2.2";
/// VM4's address: the target namespace's IPv6 one.
const TARGET6: &str = "fd77:2::2";
const VM4: &str =
    "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm4";
const SRC: &str = "10.77.1.2";
const OUT: &str = "10.77.3.2";
const PORT: u16 = 2222;
const PORT2: u16 = 2223;
const BASE: &str = "/v1/tenants/contoso";

/// Runs a command, panicking with its stderr if it fails.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the machine lets this test make namespaces; `Err(reason)` when it does not.
fn namespaces_allowed(probe: &str) -> Result<(), String> {
    if !nix::unistd::getuid().is_root() {
        return Err("not root".into());
    }
    let out = Command::new("ip").args(["netns", "add", probe]).output();
    match out {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", probe]).status();
            Ok(())
        }
        Ok(o) => Err(format!(
            "`ip netns add` refused: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `ip` ({e}): run .ci/install-deps")),
    }
}

/// The three namespaces and their veths, removed on drop.
struct Net {
    src: String,
    out: String,
    jump: String,
    target: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.src, &self.out, &self.jump, &self.target] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread that entered namespace `ns` (the caller's thread stays where it is).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from(format!("/run/netns/{ns}"));
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

impl Net {
    /// Builds the topology with names unique to this process and `tag`; `None` (after
    /// printing why) where namespaces are forbidden outside CI.
    fn new(tag: &str) -> Option<Net> {
        let pid = std::process::id();
        let name = |role: &str| format!("stw{role}{tag}{pid}");
        if let Err(why) = namespaces_allowed(&name("p")) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: the JIT firewall tests need network namespaces: {why}"
            );
            eprintln!("SKIPPED: JIT firewall namespace test: {why}");
            return None;
        }
        let net = Net {
            src: name("s"),
            out: name("o"),
            jump: name("j"),
            target: name("t"),
        };
        for ns in [&net.src, &net.out, &net.jump, &net.target] {
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // (namespace, its address, the jump's address on that link, gateway, link name);
        // IPv6 alongside: fd77:N::2 / fd77:N::1 for 10.77.N.2 / 10.77.N.1.
        let links = [
            (&net.src, 1, "a"),
            (&net.out, 3, "b"),
            (&net.target, 2, "c"),
        ];
        for (ns, n, l) in links {
            let (addr, jaddr, gw) = (
                format!("10.77.{n}.2/24"),
                format!("10.77.{n}.1/24"),
                format!("10.77.{n}.1"),
            );
            let (addr6, jaddr6, gw6) = (
                format!("fd77:{n}::2/64"),
                format!("fd77:{n}::1/64"),
                format!("fd77:{n}::1"),
            );
            // Made inside the namespaces: no name is ever in the host's namespace.
            let (far, near) = (format!("v{l}f"), format!("v{l}n"));
            let peer = ["peer", "name", &near, "netns", &net.jump];
            let mut add = vec!["ip", "-n", ns, "link", "add", &far, "type", "veth"];
            add.extend_from_slice(&peer);
            run(&add);
            run(&["ip", "-n", ns, "addr", "add", &addr, "dev", &far]);
            run(&["ip", "-n", ns, "addr", "add", &addr6, "dev", &far, "nodad"]);
            run(&["ip", "-n", ns, "link", "set", &far, "up"]);
            run(&["ip", "-n", ns, "route", "add", "default", "via", &gw]);
            run(&["ip", "-n", ns, "-6", "route", "add", "default", "via", &gw6]);
            run(&["ip", "-n", &net.jump, "addr", "add", &jaddr, "dev", &near]);
            run(&[
                "ip", "-n", &net.jump, "addr", "add", &jaddr6, "dev", &near, "nodad",
            ]);
            run(&["ip", "-n", &net.jump, "link", "set", &near, "up"]);
        }
        in_ns(&net.jump, || {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
            std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1").unwrap();
        });
        Some(net)
    }

    /// `nft ARGS` in the jump namespace.
    fn nft(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.jump, "nft"];
        all.extend_from_slice(args);
        run(&all)
    }

    /// The allow elements in force: (source, target, proto, port, timeout, comment).
    fn allow4(&self) -> Vec<(String, u64, String)> {
        let text = self.nft(&["-j", "list", "set", "inet", "steward", "allow4"]);
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut out = Vec::new();
        for obj in v["nftables"].as_array().unwrap() {
            for e in obj["set"]["elem"].as_array().into_iter().flatten() {
                let c = &e["elem"]["val"]["concat"];
                let src = match &c[0] {
                    Value::String(s) => format!("{s}/32"),
                    p => format!(
                        "{}/{}",
                        p["prefix"]["addr"].as_str().unwrap(),
                        p["prefix"]["len"]
                    ),
                };
                let key = format!(
                    "{src} . {} . {} . {}",
                    c[1].as_str().unwrap(),
                    c[2].as_str().unwrap(),
                    c[3]
                );
                out.push((
                    key,
                    e["elem"]["expires"].as_u64().unwrap_or(0),
                    e["elem"]["comment"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        out.sort();
        out
    }
}

/// A TCP listener on `port` in the target namespace.
struct Listener {
    sock: TcpListener,
}

impl Listener {
    fn new(net: &Net, port: u16) -> Listener {
        Self::on(net, "0.0.0.0", port)
    }

    /// On `[::]` (IPv6 and IPv4).
    fn new6(net: &Net, port: u16) -> Listener {
        Self::on(net, "::", port)
    }

    fn on(net: &Net, ip: &'static str, port: u16) -> Listener {
        let sock = in_ns(&net.target, move || TcpListener::bind((ip, port)).unwrap());
        sock.set_nonblocking(true).unwrap();
        Listener { sock }
    }

    /// Accepts what is queued; returns the peers' addresses.
    fn drain(&self) -> Vec<String> {
        let mut peers = Vec::new();
        while let Ok((_, a)) = self.sock.accept() {
            peers.push(a.ip().to_string());
        }
        peers
    }
}

/// Whether a TCP connection from namespace `ns` to the target's `port` is established
/// within 1 s; a connection that is must reach `l` from `source`, unchanged.
fn reaches(ns: &str, l: &Listener, port: u16, source: &str) -> bool {
    reaches_at(ns, l, TARGET.parse().unwrap(), port, source)
}

/// As [`reaches`], to `target`.
fn reaches_at(ns: &str, l: &Listener, target: std::net::IpAddr, port: u16, source: &str) -> bool {
    l.drain();
    let addr = SocketAddr::new(target, port);
    let ok = in_ns(ns, move || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    });
    if ok {
        std::thread::sleep(Duration::from_millis(50));
        let peers = l.drain();
        assert_eq!(
            peers,
            vec![source.to_owned()],
            "the listener saw another peer"
        );
    }
    ok
}

/// Waits (at most 10 s) until the unguarded path from `ns` reaches `l`: the first packets
/// wait for neighbour discovery, which must not be mistaken for a closed door later.
fn settle(ns: &str, l: &Listener, target: std::net::IpAddr, port: u16, source: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reaches_at(ns, l, target, port, source) {
        assert!(
            Instant::now() < deadline,
            "the topology does not forward to {target}"
        );
    }
}

/// Once the unguarded paths from the source and the outsider namespaces (from `sources`,
/// theirs) reach `l` at `target`, starts the daemon and puts the standard [`policy`].
async fn guarded(
    net: &Net,
    l: &Listener,
    target: std::net::IpAddr,
    sources: [&str; 2],
) -> (Daemon, Client) {
    settle(&net.src, l, target, PORT, sources[0]);
    settle(&net.out, l, target, PORT, sources[1]);
    let mut d = Daemon::new(net);
    d.start();
    let c = d.client();
    let (s, v) = send(&c, true, &format!("{BASE}/jit-policies/default"), &policy()).await;
    assert!(s.is_success(), "{v}");
    (d, c)
}

/// Revokes the request `id`; asserts 200.
async fn revoke(c: &Client, id: &str) {
    let path = format!("{BASE}/jit-requests/{id}/revoke");
    let (s, v) = send(c, false, &path, &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// `stewardd` with `[jit] firewall = "nftables"` running inside the jump namespace.
struct Daemon {
    dir: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
    jump: String,
    child: Option<Child>,
}

fn firewall_config(dir: &Path) -> String {
    let extra = format!(
        "[jit]\nfirewall = \"nftables\"\n\n[jit.targets]\n\"{VM1}\" = \"{TARGET}\"\n\"{VM3}\" = \"{TARGET}\"\n\"{VM4}\" = \"{TARGET6}\"\n"
    );
    config_text(dir, &dir.join("data"), "", &extra)
}

impl Daemon {
    fn new(net: &Net) -> Daemon {
        let dir = temp_dir_named("steward-fw-");
        let config = dir.path().join("steward.toml");
        std::fs::write(&config, firewall_config(dir.path())).unwrap();
        let socket = dir.path().join("run/steward.sock");
        Daemon {
            dir,
            config,
            socket,
            jump: net.jump.clone(),
            child: None,
        }
    }

    /// `ip netns exec JUMP [prefix…] stewardd --config FILE`, not waited for (`prefix`
    /// runs it through `env` or `setpriv`).
    fn spawn(&self, prefix: &[&str]) -> Child {
        let err = File::create(self.dir.path().join("stderr.log")).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.jump])
            .args(prefix)
            .arg(stewardd());
        cmd.arg("--config").arg(&self.config);
        cmd.env("RUST_LOG", "warn")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn start(&mut self) {
        let mut child = self.spawn(&[]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !health(&self.socket) {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("stewardd exited at start ({st}): {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "no answer in 20 s: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Runs a start that must fail; returns its stderr.
    fn start_fails(&self, prefix: &[&str]) -> String {
        let mut child = self.spawn(prefix);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(!st.success(), "stewardd started: {}", self.stderr());
                return self.stderr();
            }
            if health(&self.socket) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("stewardd served although its firewall could not be set up");
            }
            assert!(
                Instant::now() < deadline,
                "stewardd neither served nor exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.socket).with_timeout(Some(Duration::from_secs(30)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn policy() -> Value {
    let port = |n: u16| {
        json!({"number": n, "protocol": "TCP", "allowedSourceAddressPrefixes": ["10.77.1.0/24"],
               "maxRequestAccessDuration": "PT1H"})
    };
    json!({"properties": {"virtualMachines": [
        {"id": VM1, "ports": [port(PORT), port(PORT2)]},
        {"id": VM2, "ports": [port(22)]},
        {"id": VM3, "ports": [port(PORT)]},
        {"id": VM4, "ports": [{"number": PORT, "protocol": "TCP",
            "allowedSourceAddressPrefixes": ["fd77:1::/64", "10.77.1.0/24"], "maxRequestAccessDuration": "PT1H"}]}
    ]}})
}

fn initiate_body(vm: &str, port: u16, secs: f64, source: &str) -> Value {
    let end = jiff::Timestamp::now() + jiff::SignedDuration::from_secs_f64(secs);
    json!({"virtualMachines": [{"id": vm, "ports": [
        {"number": port, "endTimeUtc": end.to_string(), "allowedSourceAddressPrefix": source}
    ]}]})
}

async fn send(c: &Client, put: bool, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = if put {
        c.put_json(path, body, None).await.unwrap()
    } else {
        c.post_json(path, body).await.unwrap()
    };
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

async fn initiate(c: &Client, vm: &str, port: u16, secs: f64, source: &str) -> (StatusCode, Value) {
    let path = format!("{BASE}/jit-policies/default/initiate");
    send(c, false, &path, &initiate_body(vm, port, secs, source)).await
}

/// Closed before initiate, open after for the request's source only, closed after revoke,
/// and closed at its end with the daemon SIGKILLed before it; a VM without a target and a
/// source outside the policy are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_opens_for_the_request_and_closes_on_revoke_and_with_the_daemon_dead() {
    let Some(net) = Net::new("a") else { return };
    let l = Listener::new(&net, PORT);
    let t4: std::net::IpAddr = TARGET.parse().unwrap();
    let (mut d, c) = guarded(&net, &l, t4, [SRC, OUT]).await;
    assert!(
        !reaches(&net.src, &l, PORT, SRC),
        "a guarded port is open before initiate"
    );
    assert!(!reaches(&net.out, &l, PORT, OUT));

    // A VM with no [jit.targets] entry: 400 naming it, nothing stored as open.
    let (s, v) = initiate(&c, VM2, 22, 600.0, SRC).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v.to_string().contains("vm2") && v.to_string().contains("jit.targets"),
        "{v}"
    );
    // A source outside the policy's prefixes: 400.
    let (s, v) = initiate(&c, VM1, PORT, 600.0, OUT).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let (s, req) = initiate(&c, VM1, PORT, 600.0, SRC).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{req}");
    let id = req["id"].as_str().unwrap().to_owned();
    assert!(reaches(&net.src, &l, PORT, SRC), "the door did not open");
    assert!(
        !reaches(&net.out, &l, PORT, OUT),
        "a source outside the policy got through"
    );
    let doors = net.allow4();
    assert_eq!(doors.len(), 1, "{doors:?}");
    assert_eq!(doors[0].0, format!("{SRC}/32 . {TARGET} . tcp . {PORT}"));
    assert!(
        (590..=600).contains(&doors[0].1),
        "kernel timeout {doors:?}"
    );
    assert_eq!(doors[0].2, format!("contoso/{id}"));

    revoke(&c, &id).await;
    assert!(
        !reaches(&net.src, &l, PORT, SRC),
        "the door stayed open after revoke"
    );
    assert!(net.allow4().is_empty());

    // Ends in 4 s; the daemon dies at once; the kernel closes the door on time.
    let (s, req) = initiate(&c, VM1, PORT, 4.0, SRC).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{req}");
    let end: jiff::Timestamp = req["virtualMachines"][0]["ports"][0]["endTimeUtc"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reaches(&net.src, &l, PORT, SRC),
        "the short door did not open"
    );
    d.kill9();
    assert!(
        reaches(&net.src, &l, PORT, SRC),
        "the door closed when the daemon died"
    );
    let wait = jiff::Timestamp::now()
        .duration_until(end)
        .as_secs_f64()
        .max(0.0)
        + 0.5;
    std::thread::sleep(Duration::from_secs_f64(wait));
    assert!(
        !reaches(&net.src, &l, PORT, SRC),
        "the door outlived its end time with the daemon dead"
    );
    assert!(net.allow4().is_empty());
}

/// `nft flush ruleset` then a restart, and a stranger element then a reload, leave exactly
/// the doors of the active requests with their remaining time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_restores_exactly_the_active_requests() {
    let Some(net) = Net::new("b") else { return };
    let l1 = Listener::new(&net, PORT);
    let l2 = Listener::new(&net, PORT2);
    let t4: std::net::IpAddr = TARGET.parse().unwrap();
    let (mut d, c) = guarded(&net, &l1, t4, [SRC, OUT]).await;
    let (s, v) = initiate(&c, VM1, PORT2, 900.0, SRC).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let revoked = v["id"].as_str().unwrap().to_owned();
    revoke(&c, &revoked).await;
    let (s, v) = initiate(&c, VM1, PORT, 900.0, SRC).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let open = v["id"].as_str().unwrap().to_owned();
    let want_key = format!("{SRC}/32 . {TARGET} . tcp . {PORT}");
    let want = |doors: &[(String, u64, String)], max: u64| {
        assert_eq!(doors.len(), 1, "{doors:?}");
        assert_eq!(doors[0].0, want_key);
        assert_eq!(doors[0].2, format!("contoso/{open}"));
        assert!(
            doors[0].1 <= max && doors[0].1 + 60 > max,
            "remaining time {doors:?}"
        );
    };
    want(&net.allow4(), 900);

    // Another VM key mapped to the same address, asking for an overlapping source: the
    // kernel cannot hold both, so the newer is refused (409), closed FirewallFailed and
    // audited; the older door stays exactly as it was.
    let (s, v) = initiate(&c, VM3, PORT, 900.0, "10.77.1.0/24").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("overlapping"), "{v}");
    let clash = list_all(&c, &format!("{BASE}/jit-requests"))
        .await
        .into_iter()
        .find(|r| r["virtualMachines"][0]["id"] == VM3)
        .unwrap();
    let port = &clash["virtualMachines"][0]["ports"][0];
    assert_eq!(port["status"], "Revoked", "{clash}");
    assert_eq!(port["statusReason"], "FirewallFailed", "{clash}");
    let audit = list_all(&c, &format!("{BASE}/audit")).await;
    assert!(
        audit
            .iter()
            .any(|a| a["operationName"] == "jit.firewall" && a["status"] == "Failed"),
        "no failed jit.firewall record"
    );
    assert!(
        audit
            .iter()
            .any(|a| a["operationName"] == "jit.firewall" && a["status"] == "Succeeded")
    );
    want(&net.allow4(), 900);

    // A flush while the daemon is down: everything is open (no guard), until it starts.
    d.kill9();
    net.nft(&["flush", "ruleset"]);
    assert!(reaches(&net.src, &l2, PORT2, SRC));
    std::thread::sleep(Duration::from_millis(1100));
    d.start();
    want(&net.allow4(), 899);
    assert!(reaches(&net.src, &l1, PORT, SRC));
    assert!(
        !reaches(&net.src, &l2, PORT2, SRC),
        "the revoked request's port is open"
    );
    assert!(!reaches(&net.out, &l1, PORT, OUT));

    // A stranger door added by hand goes at the next reload.
    let stranger = format!("{{ 10.77.3.0/24 . {TARGET} . tcp . {PORT} timeout 1h }}");
    net.nft(&["add", "element", "inet", "steward", "allow4", &stranger]);
    assert!(
        reaches(&net.out, &l1, PORT, OUT),
        "the stranger element is not in force"
    );
    let mut text = std::fs::read_to_string(&d.config).unwrap();
    text.push_str("\n# touched by the test\n");
    std::fs::write(&d.config, text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while net.allow4().len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the reload did not rebuild: {:?}",
            net.allow4()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    want(&net.allow4(), 899);
    assert!(
        !reaches(&net.out, &l1, PORT, OUT),
        "the stranger survived the reload"
    );
    assert!(reaches(&net.src, &l1, PORT, SRC));

    // A reload that turns the firewall off removes the table (no stale guards or doors).
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace("firewall = \"nftables\"\n", "")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = Command::new("ip")
            .args(["netns", "exec", &net.jump, "nft", "list", "tables"])
            .output()
            .unwrap();
        if !String::from_utf8_lossy(&listed.stdout).contains("steward") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the table outlived the firewall's reload off"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        reaches(&net.src, &l2, PORT2, SRC),
        "a guard outlived the table"
    );
}

/// With the firewall on, a daemon that cannot run `nft`, or lacks CAP_NET_ADMIN, does not
/// serve: it exits with an error that says what is missing.
#[test]
fn no_nft_or_no_capability_stops_the_start() {
    let Some(net) = Net::new("c") else { return };
    let d = Daemon::new(&net);
    let err = d.start_fails(&["env", "PATH=/nonexistent"]);
    assert!(err.contains("install nftables"), "{err}");
    let err = d.start_fails(&[
        "setpriv",
        "--bounding-set=-net_admin",
        "--inh-caps=-net_admin",
    ]);
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert!(
        Command::new("ip")
            .args([
                "netns", "exec", &net.jump, "nft", "list", "table", "inet", "steward"
            ])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true),
        "a table was left although the start failed"
    );
}

/// IPv6 too: a guarded IPv6 target is closed before initiate and open after it for the
/// request's IPv6 source only; an IPv4 source for an IPv6 target is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_door_opens_for_its_source_only() {
    let Some(net) = Net::new("d") else { return };
    let l = Listener::new6(&net, PORT);
    let target: std::net::IpAddr = TARGET6.parse().unwrap();
    let (_d, c) = guarded(&net, &l, target, ["fd77:1::2", "fd77:3::2"]).await;
    assert!(
        !reaches_at(&net.src, &l, target, PORT, "fd77:1::2"),
        "guarded IPv6 port open"
    );
    let (s, v) = initiate(&c, VM4, PORT, 600.0, SRC).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("IPv4"), "{v}");
    let (s, v) = initiate(&c, VM4, PORT, 600.0, "fd77:1::2").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert!(
        reaches_at(&net.src, &l, target, PORT, "fd77:1::2"),
        "the IPv6 door did not open"
    );
    assert!(
        !reaches_at(&net.out, &l, target, PORT, "fd77:3::2"),
        "an outsider got through"
    );
    let listed = net.nft(&["list", "set", "inet", "steward", "allow6"]);
    assert!(
        listed.contains(&format!("fd77:1::2 . {TARGET6} . tcp . {PORT}")),
        "{listed}"
    );
}
