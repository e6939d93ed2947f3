#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `steward` binary as a script sees it: exit codes, stdout, stderr and files.
//!
//! Until the daemon serves the API, requests go to a canned HTTP/1.1 responder on a
//! real Unix socket in a temp dir ([`Canned`]), which also records what the binary
//! sent. Tests against a real daemon come with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// The binary, with the environment cleared of anything that would steer it.
fn steward(socket: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.env_remove("STEWARD_TENANT")
        .env_remove("STEWARD_ROLE")
        .env("STEWARD_SOCKET", socket)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    cmd
}

/// Runs with `stdin` fed to the binary.
fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A request as the responder saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// `METHOD /path?query`.
    line: String,
    /// Header lines, lower-cased names.
    headers: Vec<(String, String)>,
    /// The body.
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A canned HTTP/1.1 responder on a real Unix socket: each connection gets one answer
/// from `answer(request)` (a whole raw HTTP response) and is closed.
struct Canned {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Canned {
    fn start(answer: impl Fn(&Seen) -> String + Send + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("steward.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
                }
                let len = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let request = Seen {
                    line: line.trim_end().trim_end_matches(" HTTP/1.1").to_owned(),
                    headers,
                    body: String::from_utf8(body).unwrap(),
                };
                let response = answer(&request);
                log.lock().unwrap().push(request);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self {
            _dir: dir,
            socket,
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A whole HTTP response with a JSON body.
fn json_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A whole chunked HTTP response, one chunk per element of `chunks`.
fn chunked_response(content_type: &str, chunks: &[&str]) -> String {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    for chunk in chunks {
        out.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    out.push_str("0\r\n\r\n");
    out
}

fn missing_socket() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nonexistent.sock");
    (dir, socket)
}

#[test]
fn an_unreachable_daemon_exits_6_and_names_the_socket() {
    let (_dir, socket) = missing_socket();
    let out = steward(&socket).arg("whoami").output().unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("steward: "), "{err}");
    assert!(err.contains(&socket.display().to_string()), "{err}");
    assert!(err.contains("stewardd"), "{err}");
    // --socket wins over $STEWARD_SOCKET.
    let out = steward(Path::new("/elsewhere.sock"))
        .args(["--socket", socket.to_str().unwrap(), "health"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6);
    assert!(stderr(&out).contains("nonexistent.sock"));
}

#[test]
fn usage_errors_exit_2() {
    let (_dir, socket) = missing_socket();
    for args in [
        &["contacts", "list", "--bogus-flag"][..],
        &["--tenant", "Not_A_Tenant", "whoami"],
        &["alerts", "list", "--since", "whenever"],
        &["contacts", "list", "--limit", "0"],
        &["subjects"],
        &["export", "nothing"],
    ] {
        let out = steward(&socket).args(args).output().unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn delete_without_yes_and_no_terminal_refuses_before_connecting() {
    // The socket does not exist: exit 2 (not 6) proves nothing was attempted.
    let (_dir, socket) = missing_socket();
    let out = steward(&socket)
        .args(["contacts", "delete", "default"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
}

#[test]
fn put_rejects_bad_json_locally() {
    let (_dir, socket) = missing_socket();
    let out = run_with_stdin(
        {
            let mut c = steward(&socket);
            c.args(["contacts", "put", "default"]);
            c
        },
        "{\"properties\": ",
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
}

#[test]
fn completions_and_man_come_from_the_clap_definitions() {
    let (_dir, socket) = missing_socket();
    let out = steward(&socket)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let bash = stdout(&out);
    assert!(bash.contains("steward"), "{bash}");
    assert!(bash.contains("jit-requests"), "subcommands are completed");
    let out = steward(&socket).arg("man").output().unwrap();
    assert_eq!(code(&out), 0);
    let man = stdout(&out);
    assert!(
        man.starts_with(".ie") || man.contains(".TH steward"),
        "{man}"
    );
    assert!(man.contains("Exit codes"), "the after-help is in the page");
    let out = steward(&socket).args(["dsr", "--help"]).output().unwrap();
    assert_eq!(code(&out), 0);
}

#[test]
fn api_errors_map_to_exit_codes_with_the_daemons_message() {
    let daemon = Canned::start(|req| match req.line.as_str() {
        l if l.starts_with("GET /v1/tenants/default/contacts/nosuch") => json_response(
            "404 Not Found",
            r#"{"error":{"code":"not_found","message":"no contact nosuch"}}"#,
        ),
        l if l.starts_with("PUT ") => json_response(
            "403 Forbidden",
            r#"{"error":{"code":"forbidden","message":"acting as reader (needs contacts.write)"}}"#,
        ),
        l if l.starts_with("DELETE ") => json_response(
            "412 Precondition Failed",
            r#"{"error":{"code":"precondition_failed","message":"etag mismatch"}}"#,
        ),
        _ => json_response(
            "400 Bad Request",
            r#"{"error":{"code":"invalid","message":"bad address","target":"properties.emails"}}"#,
        ),
    });
    let out = steward(&daemon.socket)
        .args(["contacts", "get", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(stderr(&out), "steward: not_found: no contact nosuch\n");

    let mut put = steward(&daemon.socket);
    put.args(["--as", "reader", "contacts", "put", "default"]);
    let out = run_with_stdin(put, r#"{"properties":{"emails":"a@b.c"}}"#);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("forbidden: acting as reader (needs contacts.write)"));

    let out = steward(&daemon.socket)
        .args([
            "contacts",
            "delete",
            "default",
            "--yes",
            "--if-match",
            "abc",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 5, "{}", stderr(&out));

    let out = steward(&daemon.socket)
        .args(["audit", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("(at properties.emails)"));

    let seen = daemon.seen();
    let put = seen.iter().find(|s| s.line.starts_with("PUT")).unwrap();
    assert_eq!(put.line, "PUT /v1/tenants/default/contacts/default");
    assert_eq!(put.header("x-steward-role"), Some("reader"));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.body, r#"{"properties":{"emails":"a@b.c"}}"#);
    let delete = seen.iter().find(|s| s.line.starts_with("DELETE")).unwrap();
    assert_eq!(delete.header("if-match"), Some("\"abc\""));
}

#[test]
fn lists_page_with_all_and_print_json_as_the_api_answered() {
    let page1 = r#"{"value":[{"name":"a","properties":{"emails":"a@x.y"}},{"name":"b","properties":{"emails":"b@x.y"}}],"nextLink":"/v1/tenants/contoso/contacts?cursor=p2&limit=2"}"#;
    let page2 = r#"{"value":[{"name":"c","properties":{"emails":"c@x.y","isEnabled":false}}]}"#;
    let daemon = Canned::start(move |req| {
        if req.line.contains("cursor=p2") {
            json_response("200 OK", page2)
        } else {
            json_response("200 OK", page1)
        }
    });
    let sock = &daemon.socket;

    let out = steward(sock)
        .args([
            "--tenant", "contoso", "contacts", "list", "--limit", "2", "-o", "json",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        body,
        serde_json::from_str::<serde_json::Value>(page1).unwrap()
    );

    let out = steward(sock)
        .args([
            "--tenant", "contoso", "contacts", "list", "--all", "--limit", "2", "-o", "ndjson",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["a", "b", "c"]);

    let out = steward(sock)
        .args(["--tenant", "contoso", "contacts", "list", "--all"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "NAME  EMAILS  PHONE  ENABLED\na     a@x.y\nb     b@x.y\nc     c@x.y          no\n"
    );

    let seen = daemon.seen();
    assert_eq!(seen[0].line, "GET /v1/tenants/contoso/contacts?limit=2");
    assert_eq!(seen[1].line, "GET /v1/tenants/contoso/contacts?limit=2");
    assert_eq!(
        seen[2].line,
        "GET /v1/tenants/contoso/contacts?cursor=p2&limit=2"
    );
    assert_eq!(seen[0].header("host"), Some("localhost"));
}

#[test]
fn export_streams_to_a_private_file_and_counts_records() {
    let daemon = Canned::start(|req| {
        if req.line.contains("format=csv") {
            chunked_response(
                "text/csv",
                &[
                    "name,emails\nde",
                    "fault,\"a@x.y;\nb@x.y\"\n",
                    "other,c@x.y\n",
                ],
            )
        } else {
            json_response(
                "403 Forbidden",
                r#"{"error":{"code":"forbidden","message":"needs alerts.export"}}"#,
            )
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.csv");
    let out = steward(&daemon.socket)
        .args([
            "export",
            "contacts",
            "-o",
            "csv",
            "--out",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "name,emails\ndefault,\"a@x.y;\nb@x.y\"\nother,c@x.y\n"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        stderr(&out).contains(&format!("exported 2 records to {}", file.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        daemon.seen()[0].line,
        "GET /v1/tenants/default/export/contacts?format=csv"
    );

    // A refused export leaves no file, not even an empty one.
    let refused = dir.path().join("alerts.json");
    let out = steward(&daemon.socket)
        .args(["export", "alerts", "--out", refused.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(!refused.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn ingest_sends_ndjson_files_as_one_json_array() {
    let daemon = Canned::start(|_| json_response("200 OK", r#"{"ingested":2}"#));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.ndjson");
    std::fs::write(
        &file,
        "{\"name\":\"a1\",\"properties\":{}}\n{\"name\":\"a2\",\"properties\":{}}\n",
    )
    .unwrap();
    let out = steward(&daemon.socket)
        .args(["--as", "ingest", "alerts", "ingest", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "ingested 2 alerts into tenant default\n");
    let seen = daemon.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].line, "POST /v1/tenants/default/alerts");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[test]
fn a_broken_audit_chain_exits_1() {
    let daemon = Canned::start(|_| {
        json_response(
            "200 OK",
            r#"{"ok":false,"records":3,"head":{"seq":3,"hash":"ab"},"anchor":null,"firstBadSeq":2}"#,
        )
    });
    let out = steward(&daemon.socket)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("broken at seq 2"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("firstBadSeq"),
        "the report is printed too"
    );
}

#[test]
fn empty_environment_variables_mean_their_defaults() {
    let daemon = Canned::start(|_| json_response("200 OK", r#"{"status":"ok"}"#));
    // An empty STEWARD_SOCKET falls back to the default socket (absent here: exit 6),
    // rather than failing as a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .env("STEWARD_SOCKET", "")
        .env(
            "XDG_RUNTIME_DIR",
            daemon.socket.parent().unwrap().join("none"),
        )
        .arg("health")
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("none/steward/steward.sock"),
        "{}",
        stderr(&out)
    );
    // An empty STEWARD_ROLE sends no role header.
    let out = steward(&daemon.socket)
        .env("STEWARD_ROLE", "")
        .arg("health")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "status  ok\n");
    assert_eq!(daemon.seen()[0].header("x-steward-role"), None);
}
