#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `steward` binary as a script sees it (exit codes, stdout, stderr and files), against
//! a real daemon on a temp socket: every subcommand, every exit code, `-o json` equal to the
//! API's own answer, the daemon's errors passed on as it said them, paging, exports of
//! 10,000 records in each format read back with the right count, and a really broken audit
//! chain. The cases that need no daemon (usage, a missing socket, local checks) run
//! against a socket that does not exist, which proves nothing was sent.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use steward_testkit::config::ConfigBuilder;
use steward_testkit::inproc::Served;
use steward_testkit::me;

/// A daemon served by a runtime of its own (stopped on drop): tenants contoso (where the
/// test's user is tenant-admin and ingest) and fabrikam (reader).
struct Daemon(Served);

impl Daemon {
    fn start() -> Daemon {
        Daemon(Served::start(|dir| {
            ConfigBuilder::new(dir)
                .tenant("contoso", "Contoso")
                .tenant("fabrikam", "Fabrikam")
                .grant(&me(), "contoso", "tenant-admin")
                .grant(&me(), "contoso", "ingest")
                .grant(&me(), "fabrikam", "reader")
        }))
    }

    fn steward(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_steward"));
        c.env("STEWARD_SOCKET", &self.0.socket)
            .env("STEWARD_TENANT", "contoso")
            .env_remove("STEWARD_ROLE")
            .env("STEWARD_TZ", "UTC")
            .env_remove("COLUMNS")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.steward().args(args).output().unwrap()
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .steward()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// The API's own answer, for comparing with `-o json`.
    fn api(&self, path: &str) -> Value {
        self.0.api(path)
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn alerts_file(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("alerts.ndjson");
    let mut f = std::fs::File::create(&p).unwrap();
    for i in 0..n {
        let sev = ["High", "Medium", "Low", "Informational"][i % 4];
        writeln!(
            f,
            "{}",
            json!({"name": format!("al-{i:05}"), "properties": {
                "alertDisplayName": format!("Alert {i}"), "severity": sev, "status": "Active",
                "timeGeneratedUtc": format!("2026-03-01T00:{:02}:{:02}Z", (i / 60) % 60, i % 60)}})
        )
        .unwrap();
    }
    p
}

#[test]
fn every_subcommand_against_a_real_daemon() {
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();

    // whoami / tenants / health: -o json is the API's body.
    assert_eq!(
        json_out(&d.run(&["whoami", "-o", "json"])),
        d.api("/v1/whoami")
    );
    assert_eq!(
        json_out(&d.run(&["tenants", "-o", "json"])),
        d.api("/v1/tenants")
    );
    assert!(ok(&d.run(&["health"])).contains("ok"));

    // contacts: put from stdin and from a file, list, get, delete.
    let c =
        r#"{"properties":{"emails":"alice@contoso.com;bob@contoso.com","phone":"(214)275-4038"}}"#;
    ok(&d.run_stdin(&["contacts", "put", "default"], c));
    let file = work.path().join("c.json");
    std::fs::write(&file, r#"{"properties":{"emails":"carol@contoso.com"}}"#).unwrap();
    ok(&d.run(&["contacts", "put", "second", file.to_str().unwrap()]));
    assert_eq!(
        json_out(&d.run(&["contacts", "list", "-o", "json"])),
        d.api("/v1/tenants/contoso/contacts")
    );
    let table = ok(&d.run(&["contacts", "list"]));
    assert!(
        table.contains("alice@contoso.com") && table.contains("second"),
        "{table}"
    );
    assert_eq!(
        json_out(&d.run(&["contacts", "get", "default", "-o", "json"]))["properties"]["phone"],
        "(214)275-4038"
    );
    ok(&d.run(&["contacts", "delete", "second", "--yes"]));
    assert_eq!(code(&d.run(&["contacts", "get", "second"])), 4);

    // jit: policy, initiate, requests, revoke.
    let vm =
        "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
    let policy = json!({"kind": "Basic", "properties": {"virtualMachines": [{"id": vm, "ports": [
        {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT1H"}]}]}});
    ok(&d.run_stdin(&["jit", "put", "default", "-"], &policy.to_string()));
    assert!(ok(&d.run(&["jit", "list"])).contains("default"));
    let end = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30)).to_string();
    let init = json!({"virtualMachines": [{"id": vm, "ports": [{"number": 22, "endTimeUtc": end, "allowedSourceAddressPrefix": "10.0.0.1"}]}]});
    let req = json_out(&d.run_stdin(
        &["jit", "initiate", "default", "-", "-o", "json"],
        &init.to_string(),
    ));
    let id = req["id"].as_str().unwrap().to_owned();
    assert_eq!(
        json_out(&d.run(&["jit-requests", "list", "-o", "json"])),
        d.api("/v1/tenants/contoso/jit-requests")
    );
    ok(&d.run(&["jit-requests", "revoke", &id]));
    let got = json_out(&d.run(&["jit-requests", "get", &id, "-o", "json"]));
    assert!(got.to_string().contains("UserRequested"), "{got}");
    ok(&d.run(&["jit", "delete", "default", "--yes"]));

    // alerts: ingest NDJSON, filtered list, --all paging, get.
    let f = alerts_file(work.path(), 250);
    ok(&d.run(&["--as", "ingest", "alerts", "ingest", f.to_str().unwrap()]));
    let high = json_out(&d.run(&[
        "alerts",
        "list",
        "--severity",
        "High",
        "--all",
        "-o",
        "json",
    ]));
    assert_eq!(high["value"].as_array().unwrap().len(), 63);
    let page = json_out(&d.run(&["alerts", "list", "--limit", "10", "-o", "json"]));
    assert_eq!(page, d.api("/v1/tenants/contoso/alerts?limit=10"));
    let nd = ok(&d.run(&["alerts", "list", "--all", "--limit", "100", "-o", "ndjson"]));
    assert_eq!(nd.lines().count(), 250);
    assert_eq!(
        json_out(&d.run(&["alerts", "get", "al-00007", "-o", "json"]))["name"],
        "al-00007"
    );

    // audit: list and verify.
    let log = json_out(&d.run(&["audit", "list", "--action", "contacts.write", "-o", "json"]));
    assert!(!log["value"].as_array().unwrap().is_empty());
    assert!(!log.to_string().contains("alice@contoso.com"));
    ok(&d.run(&["audit", "verify"]));

    // completions and man come from the clap definitions.
    assert!(ok(&d.run(&["completions", "bash"])).contains("steward"));
    assert!(ok(&d.run(&["man"])).contains(".TH"));
}

#[test]
fn exit_codes_and_messages() {
    let d = Daemon::start();
    let c = r#"{"properties":{"emails":"x@fabrikam.com"}}"#;
    // 3 forbidden, with the daemon's message naming the permission.
    let o = d.run_stdin(&["--tenant", "fabrikam", "contacts", "put", "default"], c);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("contacts.write"));
    // 4 not found: a record, and a tenant that is not granted.
    assert_eq!(code(&d.run(&["contacts", "get", "nosuch"])), 4);
    assert_eq!(
        code(&d.run(&["--tenant", "nowhere", "contacts", "list"])),
        4
    );
    // 5 conflict: a stale If-Match.
    ok(&d.run_stdin(&["contacts", "put", "default"], c));
    let o = d.run_stdin(&["contacts", "put", "default", "--if-match", "stale"], c);
    assert_eq!(code(&o), 5);
    // 1 error: invalid input, with the field named.
    let o = d.run_stdin(
        &["contacts", "put", "default"],
        r#"{"properties":{"emails":"nope"}}"#,
    );
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("properties.emails"));
    // 2 usage; delete without --yes and no terminal refuses and deletes nothing.
    assert_eq!(code(&d.run(&["contacts", "list", "--bogus"])), 2);
    assert_ne!(code(&d.run(&["contacts", "delete", "default"])), 0);
    ok(&d.run(&["contacts", "get", "default"]));
    // 6 unreachable.
    let o = d
        .steward()
        .args(["--socket", "/nonexistent/steward.sock", "whoami"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 6);
}

#[test]
fn exports_of_ten_thousand_records_parse_back_in_every_format() {
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let f = alerts_file(work.path(), 10_000);
    ok(&d.run(&["--as", "ingest", "alerts", "ingest", f.to_str().unwrap()]));
    for format in ["json", "ndjson", "csv"] {
        let out = work.path().join(format!("alerts.{format}"));
        let o = d.run(&[
            "export",
            "alerts",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        let msg = String::from_utf8_lossy(&o.stderr).into_owned();
        ok(&o);
        assert!(msg.contains("10000"), "{format}: {msg}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&out).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{format}");
        let text = std::fs::read_to_string(&out).unwrap();
        let n = match format {
            "json" => serde_json::from_str::<Vec<Value>>(&text).unwrap().len(),
            "ndjson" => text
                .lines()
                .filter(|l| serde_json::from_str::<Value>(l).unwrap().is_object())
                .count(),
            _ => csv::Reader::from_reader(text.as_bytes())
                .records()
                .map(Result::unwrap)
                .count(),
        };
        assert_eq!(n, 10_000, "{format}");
    }
    // To stdout too.
    let o = d.run(&["export", "contacts", "--format", "csv"]);
    assert!(ok(&o).starts_with("name,"));
}

/// CSV from every writer is neutralised against spreadsheet formulas (`steward::csv_cell`):
/// the CLI's `-o csv`, the CLI's export and the TUI's export (both save the daemon's CSV).
/// A phone `+1 …` becomes `'+1 …` in CSV; JSON keeps it as stored.
#[test]
fn csv_from_the_cli_and_the_tui_neutralises_formula_cells() {
    use std::os::unix::fs::PermissionsExt;
    use steward_tui::export_file::ExportFormat;
    use steward_tui::tui::msg::{Msg, Request};
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let c = r#"{"properties":{"emails":"alice@contoso.com","phone":"+1 555 867 5309"}}"#;
    ok(&d.run_stdin(&["contacts", "put", "default"], c));
    let want = "'+1 555 867 5309";
    // The CLI's own CSV.
    let listed = ok(&d.run(&["contacts", "list", "-o", "csv"]));
    assert!(listed.contains(want), "{listed}");
    // The CLI's export.
    let out = work.path().join("c.csv");
    ok(&d.run(&[
        "export",
        "contacts",
        "--format",
        "csv",
        "--out",
        out.to_str().unwrap(),
    ]));
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(exported.contains(want), "{exported}");
    // One list of columns (steward::resource): `-o csv` is the daemon's export CSV.
    assert_eq!(listed, exported, "the CLI's CSV and the export differ");
    // JSON is untouched.
    let json = ok(&d.run(&["contacts", "list", "-o", "json"]));
    assert!(json.contains("\"+1 555 867 5309\""), "{json}");
    // The TUI's export, through its backend task, over a world-readable file.
    let file = work.path().join("tui.csv");
    std::fs::write(&file, "old,contents\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let socket = d.0.socket.clone();
    let f = file.clone();
    d.0.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cmds = steward_tui::tui::backend::spawn(socket, None, tx);
        cmds.send(Request::SetSession {
            tenant: Some("contoso".into()),
            role: None,
        })
        .unwrap();
        cmds.send(Request::Export {
            kind: steward::resource::Resource::Contacts,
            format: ExportFormat::Csv,
            file: f,
            filters: Vec::new(),
        })
        .unwrap();
        let wait = async {
            loop {
                match rx.recv().await {
                    Some(Msg::ExportDone { records, .. }) => return records,
                    Some(Msg::ExportFailed(why)) => panic!("TUI export failed: {why:?}"),
                    Some(_) => {}
                    None => panic!("the backend stopped"),
                }
            }
        };
        let records = tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .unwrap();
        assert_eq!(records, 1);
    });
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains(want), "{saved}");
    assert!(!saved.contains("old,contents"), "{saved}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the old file's mode was kept");
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert_eq!(left.len(), 2, "a temp file was left behind: {left:?}");
}

/// The binary, with the environment cleared of anything that would steer it.
fn steward(socket: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.env_remove("STEWARD_TENANT")
        .env_remove("STEWARD_ROLE")
        .env("STEWARD_SOCKET", socket)
        .env("STEWARD_TZ", "UTC")
        .env_remove("COLUMNS")
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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
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

/// Issue 19, defect 8: without a terminal `steward` and `steward demo` panicked inside
/// ratatui (exit 101, an escape sequence on stdout) and the demo left its temp dir.
#[test]
fn the_tui_without_a_terminal_says_so_exits_2_and_leaves_nothing() {
    let (dir, socket) = missing_socket();
    let tmp = tempfile::tempdir().unwrap();
    for args in [&[][..], &["demo"][..]] {
        let out = steward(&socket)
            .args(args)
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            out.stdout.is_empty(),
            "{args:?} wrote to stdout: {:?}",
            out.stdout
        );
        let err = stderr(&out);
        assert!(err.contains("needs a terminal"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind");
    }
    drop(dir);
}

/// Issue 19, defect 10: `--severity Huge` printed an empty table and exited 0.
#[test]
fn an_unknown_severity_or_status_names_the_allowed_values_and_exits_2() {
    let (_dir, socket) = missing_socket();
    let out = steward(&socket)
        .args(["alerts", "list", "--severity", "Huge"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    for v in ["High", "Medium", "Low", "Informational", "Huge"] {
        assert!(err.contains(v), "{err}");
    }
    let out = steward(&socket)
        .args(["alerts", "list", "--status", "Open"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("InProgress"), "{}", stderr(&out));
    // Any case is fine: it gets past parsing to the (missing) daemon, exit 6.
    let out = steward(&socket)
        .args(["alerts", "list", "--severity", "high"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
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

/// The daemon's error as the API answered it: `steward: <code>: <message>`, plus
/// ` (at <target>)` when it names a field.
fn api_error_line(d: &Daemon, method: &str, path: &str, body: Option<&str>) -> String {
    let c = d.0.client();
    let r = d.0.block_on(async {
        match (method, body) {
            ("GET", _) => c.get(path).await,
            ("PUT", Some(b)) => {
                let v: Value = serde_json::from_str(b).unwrap();
                c.put_json(path, &v, None).await
            }
            _ => panic!("{method} {path}"),
        }
    });
    let v: Value = serde_json::from_slice(&r.unwrap().body).unwrap();
    let e = &v["error"];
    let mut line = format!(
        "steward: {}: {}",
        e["code"].as_str().unwrap(),
        e["message"].as_str().unwrap()
    );
    if let Some(t) = e["target"].as_str() {
        line.push_str(&format!(" (at {t})"));
    }
    line
}

#[test]
fn api_errors_map_to_exit_codes_with_the_daemons_message() {
    let d = Daemon::start();
    // 404: exit 4 and the daemon's code and message, as they are.
    let out = d.run(&["contacts", "get", "nosuch"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let want = api_error_line(&d, "GET", "/v1/tenants/contoso/contacts/nosuch", None);
    assert_eq!(stderr(&out), format!("{want}\n"));

    // `--as reader` is sent: the daemon judges the reader profile (403, exit 3, the
    // permission named), where the same PUT without it is stored as sent.
    let body = r#"{"properties":{"emails":"a@b.c"}}"#;
    let out = d.run_stdin(&["--as", "reader", "contacts", "put", "default"], body);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("contacts.write"), "{}", stderr(&out));
    ok(&d.run_stdin(&["contacts", "put", "default"], body));
    let stored = d.api("/v1/tenants/contoso/contacts/default");
    assert_eq!(stored["properties"]["emails"], "a@b.c", "{stored}");

    // If-Match is sent as the daemon expects it: a wrong one is 412 (exit 5) and deletes
    // nothing, the stored ETag deletes.
    let out = d.run(&[
        "contacts",
        "delete",
        "default",
        "--yes",
        "--if-match",
        "abc",
    ]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    ok(&d.run(&["contacts", "get", "default"]));
    let etag = stored["etag"]
        .as_str()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    ok(&d.run(&[
        "contacts",
        "delete",
        "default",
        "--yes",
        "--if-match",
        &etag,
    ]));
    assert_eq!(code(&d.run(&["contacts", "get", "default"])), 4);

    // 400 naming a field: exit 1 and ` (at <field>)`.
    let bad = r#"{"properties":{"emails":"nope"}}"#;
    let out = d.run_stdin(&["contacts", "put", "default"], bad);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let want = api_error_line(&d, "PUT", "/v1/tenants/contoso/contacts/default", Some(bad));
    assert!(want.ends_with("(at properties.emails)"), "{want}");
    assert_eq!(stderr(&out), format!("{want}\n"));
}

#[test]
fn lists_page_with_all_and_print_json_as_the_api_answered() {
    let d = Daemon::start();
    for (name, enabled) in [("a", true), ("b", true), ("c", false)] {
        let body = json!({"properties": {"emails": format!("{name}@x.y"), "isEnabled": enabled}});
        ok(&d.run_stdin(&["contacts", "put", name], &body.to_string()));
    }
    // One page, as the API answers it (with its nextLink).
    let page = json_out(&d.run(&["contacts", "list", "--limit", "2", "-o", "json"]));
    assert_eq!(page, d.api("/v1/tenants/contoso/contacts?limit=2"));
    assert!(page["nextLink"].is_string(), "{page}");
    // --all follows nextLink to the end.
    let out = d.run(&["contacts", "list", "--all", "--limit", "2", "-o", "ndjson"]);
    let names: Vec<String> = ok(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    // The table, every page.
    assert_eq!(
        ok(&d.run(&["contacts", "list", "--all", "--limit", "2"])),
        TABLE_ABC
    );
}

/// `contacts list` of contacts a, b (enabled) and c (disabled) with no phone.
const TABLE_ABC: &str = "NAME  EMAILS  PHONE  ENABLED\na     a@x.y          yes\nb     b@x.y          yes\nc     c@x.y          no\n";

#[test]
fn export_streams_to_a_private_file_and_counts_records() {
    let d = Daemon::start();
    ok(&d.run_stdin(
        &["contacts", "put", "default"],
        r#"{"properties":{"emails":"a@x.y;b@x.y"}}"#,
    ));
    ok(&d.run_stdin(
        &["contacts", "put", "other"],
        r#"{"properties":{"emails":"c@x.y"}}"#,
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.csv");
    let out = d.run(&[
        "export",
        "contacts",
        "-o",
        "csv",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let c = d.0.client();
    let api =
        d.0.block_on(c.get("/v1/tenants/contoso/export/contacts?format=csv"))
            .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), api.body.to_vec());
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        stderr(&out).contains(&format!("exported 2 records to {}", file.display())),
        "{}",
        stderr(&out)
    );

    // A refused export leaves no file, not even an empty one.
    let refused = dir.path().join("alerts.json");
    let out = d.run(&[
        "--as",
        "reader",
        "export",
        "alerts",
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(!refused.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn ingest_sends_ndjson_files_as_one_json_array() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.ndjson");
    std::fs::write(
        &file,
        "{\"name\":\"a1\",\"properties\":{}}\n{\"name\":\"a2\",\"properties\":{}}\n",
    )
    .unwrap();
    let out = d.run(&["--as", "ingest", "alerts", "ingest", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "ingested 2 alerts into tenant contoso\n");
    let list = d.api("/v1/tenants/contoso/alerts");
    let names: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(names.contains(&"a1") && names.contains(&"a2"), "{list}");
}

#[test]
fn a_broken_audit_chain_exits_1() {
    let mut d = Daemon::start();
    for i in 0..3 {
        let body = format!(r#"{{"properties":{{"emails":"u{i}@x.y"}}}}"#);
        ok(&d.run_stdin(&["contacts", "put", &format!("c{i}")], &body));
    }
    ok(&d.run(&["audit", "verify"]));
    // One bit of the second audit record flipped in the redb file, the daemon stopped.
    d.0.restart_after(|dir| {
        let db =
            redb::Database::open(dir.join("data").join(steward_daemon::store::DB_FILE)).unwrap();
        let wtx = db.begin_write().unwrap();
        {
            use redb::ReadableTable;
            let mut t = wtx
                .open_table(steward_daemon::store::tables::AUDIT)
                .unwrap();
            let mut v = t.get(("contoso", 2u64)).unwrap().unwrap().value().to_vec();
            let i = 40.min(v.len() - 1);
            v[i] ^= 0x01;
            t.insert(("contoso", 2u64), v.as_slice()).unwrap();
        }
        wtx.commit().unwrap();
    });
    let out = d.run(&["audit", "verify"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("broken at seq 2"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("firstBadSeq"),
        "the report is printed too"
    );
}

#[test]
fn empty_environment_variables_mean_their_defaults() {
    // An empty STEWARD_SOCKET falls back to the default socket (absent here: exit 6),
    // rather than failing as a usage error.
    let (dir, _) = missing_socket();
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .env("STEWARD_SOCKET", "")
        .env("XDG_RUNTIME_DIR", dir.path().join("none"))
        .arg("health")
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("none/steward/steward.sock"),
        "{}",
        stderr(&out)
    );
    // An empty STEWARD_ROLE acts as no role at all: the caller's every grant.
    let d = Daemon::start();
    let plain = ok(&d.run(&["whoami", "-o", "json"]));
    let out = d
        .steward()
        .env("STEWARD_ROLE", "")
        .args(["whoami", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(ok(&out), plain);
    assert_eq!(
        serde_json::from_str::<Value>(&plain).unwrap(),
        d.api("/v1/whoami")
    );
}

/// Issue 19, defect 2: `x` on a filtered alerts view exported every alert. The TUI's
/// export carries the view's filters; the daemon applies them (newest first, as listed),
/// audits which were given, and refuses them on a kind that has none.
#[test]
fn the_tuis_export_holds_what_the_filtered_view_shows() {
    use steward_tui::export_file::ExportFormat;
    use steward_tui::tui::msg::{Msg, Request};
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let f = alerts_file(work.path(), 200);
    ok(&d.run(&["--as", "ingest", "alerts", "ingest", f.to_str().unwrap()]));
    let file = work.path().join("high.ndjson");
    let socket = d.0.socket.clone();
    let target = file.clone();
    let run = |kind, filters: Vec<(&'static str, String)>, file: PathBuf| {
        let socket = socket.clone();
        d.0.block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let cmds = steward_tui::tui::backend::spawn(socket, None, tx);
            cmds.send(Request::SetSession {
                tenant: Some("contoso".into()),
                role: None,
            })
            .unwrap();
            cmds.send(Request::Export {
                kind,
                format: ExportFormat::Ndjson,
                file,
                filters,
            })
            .unwrap();
            let wait = async {
                loop {
                    match rx.recv().await {
                        Some(Msg::ExportDone { records, .. }) => return Ok(records),
                        Some(Msg::ExportFailed(why)) => return Err(why),
                        Some(_) => {}
                        None => panic!("the backend stopped"),
                    }
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(30), wait)
                .await
                .unwrap()
        })
    };
    let records = run(
        steward::resource::Resource::Alerts,
        vec![("severity", "High".into()), ("q", "Alert 1".into())],
        target,
    )
    .unwrap();
    // al-i is High when i % 4 == 0; "Alert 1" matches 1, 10-19, 100-199.
    let want: Vec<usize> = (0..200)
        .filter(|i| i % 4 == 0 && format!("Alert {i}").contains("Alert 1"))
        .collect();
    assert_eq!(records, want.len() as u64);
    let text = std::fs::read_to_string(&file).unwrap();
    let names: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut expected: Vec<String> = want.iter().map(|i| format!("al-{i:05}")).collect();
    expected.reverse(); // newest first, as the list shows them
    assert_eq!(names, expected);
    // The same as the list answers for the same filters.
    let listed = d.api("/v1/tenants/contoso/alerts?severity=High&q=Alert%201&limit=1000");
    assert_eq!(listed["value"].as_array().unwrap().len(), want.len());
    // The audit record names the filters, not the search text.
    let audit = ok(&d.run(&["audit", "list", "--all", "-o", "json"]));
    assert!(audit.contains("filter=severity=High&q"), "{audit}");
    assert!(
        !audit.contains("Alert 1"),
        "the search text reached the audit log"
    );
    // A filter on a kind without one is refused, naming it; nothing is written.
    let other = work.path().join("contacts.ndjson");
    let why = run(
        steward::resource::Resource::Contacts,
        vec![("severity", "High".into())],
        other.clone(),
    )
    .unwrap_err();
    assert_eq!(why.status, Some(400), "{why:?}");
    assert!(why.error.message.contains("severity"), "{why:?}");
    assert!(!other.exists());
}

/// Issue 19, defect 4 (daemon side): `?orderby=time asc` lists the oldest alerts first
/// from the time index, pages by a cursor of its own (tenant- and order-bound), keeps
/// the filters, and an unknown order is a 400 naming the ones there are.
#[test]
fn alerts_list_oldest_first_by_the_daemon() {
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let f = alerts_file(work.path(), 30);
    ok(&d.run(&["--as", "ingest", "alerts", "ingest", f.to_str().unwrap()]));
    let names = |v: &Value| -> Vec<String> {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = d.api("/v1/tenants/contoso/alerts?orderby=time%20asc&limit=10");
    assert_eq!(names(&first)[..3], ["al-00000", "al-00001", "al-00002"]);
    let next = first["nextLink"].as_str().unwrap().to_owned();
    assert!(next.contains("orderby=time+asc"), "{next}");
    let path =
        steward::client::paths::resolve_next_link("/v1/tenants/contoso/alerts", &next).unwrap();
    let second = d.api(&path);
    assert_eq!(names(&second)[0], "al-00010");
    // Every alert once, in order, across the pages.
    let all = d.api("/v1/tenants/contoso/alerts?orderby=time%20asc&limit=1000");
    let want: Vec<String> = (0..30).map(|i| format!("al-{i:05}")).collect();
    assert_eq!(names(&all), want);
    // Filters keep working, and the default is still newest first.
    let high = d.api("/v1/tenants/contoso/alerts?orderby=time%20asc&severity=High&limit=2");
    assert_eq!(names(&high), ["al-00000", "al-00004"]);
    let desc = d.api("/v1/tenants/contoso/alerts?limit=1");
    assert_eq!(names(&desc), ["al-00029"]);
    // A newest-first cursor is not accepted for the oldest-first list, nor the reverse.
    let desc_next = d.api("/v1/tenants/contoso/alerts?limit=5")["nextLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let cursor = desc_next
        .split("cursor=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let line = api_error_line(
        &d,
        "GET",
        &format!("/v1/tenants/contoso/alerts?orderby=time%20asc&cursor={cursor}"),
        None,
    );
    assert!(line.contains("cursor"), "{line}");
    // A field the daemon does not order by: refused, naming those it does.
    let line = api_error_line(
        &d,
        "GET",
        "/v1/tenants/contoso/alerts?orderby=vendorName",
        None,
    );
    assert!(
        line.contains("timeGeneratedUtc, name, severity, status") && line.contains("orderby"),
        "{line}"
    );
}

/// The documents holding the generated key table (README.md joins once its TUI section
/// carries the block).
const DOCS_WITH_KEYS: &[&str] = &["docs/KEYS.md", "README.md"];

/// The docs' key table is `steward keys --markdown`, not a second copy; the man page
/// has the ENVIRONMENT, FILES and KEYS sections (issue 19, defect 10 and "README's TUI
/// section lists the keys").
#[test]
fn the_documented_keys_and_the_man_page_come_from_the_keymap() {
    let (_dir, socket) = missing_socket();
    let out = steward(&socket)
        .args(["keys", "--markdown"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let generated = stdout(&out);
    assert!(
        generated.contains("| `d` | delete the record"),
        "{generated}"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for doc in DOCS_WITH_KEYS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let block = text
            .split("<!-- keys:begin -->\n")
            .nth(1)
            .and_then(|rest| rest.split("<!-- keys:end -->").next())
            .unwrap_or_else(|| panic!("{doc} has no keys block"));
        assert_eq!(
            block, generated,
            "{doc}'s keys differ from the keymap: run `steward keys --markdown`"
        );
    }
    let man = stdout(&steward(&socket).arg("man").output().unwrap());
    for section in [
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH KEYS",
        "STEWARD_SOCKET",
        "keys.toml",
    ] {
        assert!(man.contains(section), "the man page lacks {section}");
    }
    assert!(man.contains("delete the record"));
}

/// What the CLI could do with data-subject requests and the TUI could not (issue 19):
/// open, confirm, reject, extend and download the bundle, through the TUI's backend
/// against a real daemon, the bundle written 0600 through the one export writer.
#[test]
fn the_tui_opens_confirms_rejects_extends_and_downloads_dsr() {
    use steward_tui::tui::dsr::ReasonFor;
    use steward_tui::tui::msg::{Change, Msg, Request};
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let socket = d.0.socket.clone();
    // Sends one request through the backend and waits for its outcome.
    let run = |request: Request| -> Msg {
        let socket = socket.clone();
        d.0.block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let cmds = steward_tui::tui::backend::spawn(socket, None, tx);
            cmds.send(Request::SetSession {
                tenant: Some("contoso".into()),
                role: None,
            })
            .unwrap();
            cmds.send(request).unwrap();
            let wait = async {
                loop {
                    match rx.recv().await {
                        Some(
                            m @ (Msg::Written { .. }
                            | Msg::BundleDone { .. }
                            | Msg::ExportFailed(_)
                            | Msg::Verified(_)
                            | Msg::Subjects { .. }),
                        ) => {
                            return m;
                        }
                        Some(_) => {}
                        None => panic!("the backend stopped"),
                    }
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(30), wait)
                .await
                .unwrap()
        })
    };
    let written_ok = |m: Msg| match m {
        Msg::Written { result: Ok(()), .. } => {}
        other => panic!("not done: {other:?}"),
    };
    let ids = || -> Vec<String> {
        d.api("/v1/tenants/contoso/dsr?limit=100")["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let body = |kind: &str| json!({"type": kind, "subject": {"email": "alice@contoso.com"}});
    // A contact naming alice, for :subject to find.
    ok(&d.run_stdin(
        &["contacts", "put", "ops"],
        r#"{"properties": {"emails": "alice@contoso.com", "phone": "+1 555 0100", "alertNotifications": {"state": "On", "minimalSeverity": "High"}, "notificationsByRole": {"state": "Off", "roles": []}}}"#,
    ));
    match run(Request::Subject {
        key: "email",
        value: "alice@contoso.com".into(),
    }) {
        Msg::Subjects {
            result: Ok(hits), ..
        } => {
            assert!(
                hits.iter().any(|(k, id, _)| k == "contacts" && id == "ops"),
                "{hits:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    written_ok(run(Request::Change(Change::DsrOpen {
        body: body("export"),
    })));
    let export_id = ids().pop().unwrap();
    written_ok(run(Request::Change(Change::DsrConfirm {
        id: export_id.clone(),
    })));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v = d.api(&format!("/v1/tenants/contoso/dsr/{export_id}"));
        if v["status"] == "completed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never completed: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let file = work.path().join("bundle.json");
    match run(Request::Bundle {
        id: export_id,
        file: file.clone(),
    }) {
        Msg::BundleDone { bytes, .. } => assert!(bytes > 0),
        other => panic!("no bundle: {other:?}"),
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let _: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    // Reject one and extend another, each with its reason.
    for action in [ReasonFor::Reject, ReasonFor::Extend] {
        let before = ids();
        written_ok(run(Request::Change(Change::DsrOpen {
            body: body("erase"),
        })));
        let id = ids().into_iter().find(|i| !before.contains(i)).unwrap();
        written_ok(run(Request::Change(Change::DsrReason {
            id: id.clone(),
            action,
            reason: "asked twice".into(),
        })));
        let v = d.api(&format!("/v1/tenants/contoso/dsr/{id}"));
        match action {
            ReasonFor::Reject => assert_eq!(v["status"], "rejected", "{v}"),
            ReasonFor::Extend => assert!(v["extendedDueAt"].is_string(), "{v}"),
        }
    }
    // :verify and :subject through the same backend.
    match run(Request::Verify) {
        Msg::Verified(Ok(r)) => {
            assert!(r.ok);
            assert!(r.head.seq > 0 && !r.head.hash.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // An empty reason is the daemon's 400, naming the field.
    let id = ids().pop().unwrap();
    match run(Request::Change(Change::DsrReason {
        id,
        action: ReasonFor::Reject,
        reason: String::new(),
    })) {
        Msg::Written { result: Err(f), .. } => {
            assert_eq!(f.status, Some(400));
            assert_eq!(f.error.target.as_deref(), Some("reason"));
        }
        other => panic!("{other:?}"),
    }
}

/// The overview's alert counts come from the daemon (`/overview/alerts`): every day of
/// the period, by severity, from the time index; the top types among the newest alerts;
/// the period is bounded.
#[test]
fn the_overview_counts_alerts_per_day_and_severity() {
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let p = work.path().join("recent.ndjson");
    let mut f = std::fs::File::create(&p).unwrap();
    let now = jiff::Timestamp::now();
    for i in 0..40i64 {
        let sev = ["High", "Medium", "Low", "Informational"][(i % 4) as usize];
        let t = now - jiff::SignedDuration::from_hours(i * 3);
        let ty = if i % 5 == 0 { "VM_Rare" } else { "VM_Common" };
        writeln!(
            f,
            "{}",
            json!({"name": format!("r-{i:03}"), "properties": {
                "alertDisplayName": format!("Recent {i}"), "alertType": ty,
                "severity": sev, "status": "Active", "timeGeneratedUtc": t.to_string()}})
        )
        .unwrap();
    }
    // And one long ago, outside the period.
    writeln!(
        f,
        "{}",
        json!({"name": "old", "properties": {"severity": "High",
            "timeGeneratedUtc": "2020-01-01T00:00:00Z"}})
    )
    .unwrap();
    drop(f);
    ok(&d.run(&["--as", "ingest", "alerts", "ingest", p.to_str().unwrap()]));
    let o = d.api("/v1/tenants/contoso/overview/alerts?days=30");
    let days = o["perDay"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(o["total"], 40, "{o}");
    let sum = |k: &str| days.iter().map(|d| d[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (sum("high"), sum("medium"), sum("low"), sum("other")),
        (10, 10, 10, 10)
    );
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    assert_eq!(days[29]["date"], today.as_str());
    assert_eq!(o["topTypes"][0]["type"], "VM_Common");
    assert_eq!(o["topTypes"][0]["count"], 32);
    assert_eq!(o["typesFrom"], 41);
    let line = api_error_line(
        &d,
        "GET",
        "/v1/tenants/contoso/overview/alerts?days=0",
        None,
    );
    assert!(line.contains("days"), "{line}");
}
