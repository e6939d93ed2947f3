#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `steward` subcommands against a real daemon on a temp socket: every subcommand,
//! every exit code, `-o json` equal to the API's own answer, and exports of 10,000
//! records in each format read back with the right count.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use steward::client::Client;
use steward::config::Config;
use tokio_util::sync::CancellationToken;

/// A daemon served by a runtime of its own, stopped on drop.
struct Daemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: CancellationToken,
    rt: tokio::runtime::Runtime,
    done: Option<tokio::task::JoinHandle<()>>,
}

fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let cfg = Config::parse(&format!(
            r#"
[daemon]
socket = "{d}/steward.sock"
data_dir = "{d}/data"
log_dir = "{d}/logs"
[[tenant]]
id = "contoso"
name = "Contoso"
[[tenant]]
id = "fabrikam"
name = "Fabrikam"
[[grant]]
user = "{me}"
tenant = "contoso"
role = "tenant-admin"
[[grant]]
user = "{me}"
tenant = "contoso"
role = "ingest"
[[grant]]
user = "{me}"
tenant = "fabrikam"
role = "reader"
"#,
            me = me()
        ))
        .unwrap();
        let socket = dir.path().join("steward.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stop = CancellationToken::new();
        let listener = {
            let _g = rt.enter();
            tokio::net::UnixListener::bind(&socket).unwrap()
        };
        let token = stop.clone();
        let done = rt.spawn(async move {
            steward_daemon::run(listener, cfg, token).await.unwrap();
        });
        Daemon {
            _dir: dir,
            socket,
            stop,
            rt,
            done: Some(done),
        }
    }

    fn steward(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_steward"));
        c.env("STEWARD_SOCKET", &self.socket)
            .env("STEWARD_TENANT", "contoso")
            .env_remove("STEWARD_ROLE")
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
        let c = Client::new(&self.socket);
        self.rt.block_on(async { c.get_json(path).await.unwrap() })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(h) = self.done.take() {
            let _ = self.rt.block_on(h);
        }
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
/// A phone `+1 …` becomes `'+1 …` in CSV; JSON keeps it as stored. The TUI's export
/// replaces an existing file (regression: it truncated it in place and kept its 0644).
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
    let socket = d.socket.clone();
    let f = file.clone();
    d.rt.block_on(async move {
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
